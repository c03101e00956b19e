//! The seam between the LocalGateway and what runs behind it, as API Gateway calls its
//! integration: the gateway owns the sockets, the stage, the limits and `@connections`;
//! the integration selects routes and handles events.

use std::sync::Arc;

use async_trait::async_trait;
use wsgw_core::metrics::Metrics;
use wsgw_core::{
    Authorization, Backends, HttpRequest, HttpResponse, Payload, Reply, Request, Result, Router,
};

/// What the [`LocalGateway`](super::LocalGateway) runs behind its sockets: the route
/// table and the handlers, as API Gateway sees its routes and their integrations.
///
/// The gateway calls nothing else: it selects the route of each message here, runs the
/// authorizer and the `$connect`, message and `$disconnect` integrations, and the REST
/// routes. [`RouterIntegration`] is the in-process one
/// ([`LocalGateway::new`](super::LocalGateway::new) makes it from a [`Router`] and the
/// gateway's backends). Another implementation plugs in with
/// [`LocalGateway::for_integration`](super::LocalGateway::for_integration): for example
/// one that takes the route table, route responses and authorizer from a SAM template
/// and invokes each route's function as its own process through the Lambda Runtime API
/// (handlers then post through the gateway's `@connections`, as deployed).
///
/// Failures follow API Gateway: an `Err` (or a panic, or a call past
/// [`Limits::handler_timeout`](super::Limits::handler_timeout)) is an integration
/// failure, which the gateway answers with API Gateway's frames and statuses.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use std::sync::Arc;
/// use wsgw_core::{Backends, ConnectionId, Context, Payload, Request, Router};
/// use wsgw_memory::gateway::{Integration, RouterIntegration};
/// use wsgw_memory::{MemorySink, MemoryStore};
///
/// let router = Router::new().two_way_route("ping", |_ctx: Context, _req: Request| async { Ok("pong") });
/// let backends = Backends::new(Arc::new(MemoryStore::new()), Arc::new(MemorySink::new()));
/// let integration = RouterIntegration::new(router, backends);
///
/// // What the gateway does with a message: select its route, then invoke it.
/// let body = Payload::text(r#"{"action":"ping"}"#);
/// let route = integration.select_route(&body);
/// let reply = integration
///     .message(Request::message(ConnectionId::new("a="), body).with_route_key(route))
///     .await?;
/// assert_eq!(reply.body, Some(Payload::text("pong")));
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Integration: Send + Sync + 'static {
    /// The route key a message body selects (`$default` when no route matches).
    fn select_route(&self, body: &Payload) -> String;

    /// The `$connect` authorizer's decision (allow with a context, or deny with a status).
    async fn authorize(&self, request: &Request) -> Result<Authorization>;

    /// The `$connect` integration: a non-2xx reply refuses the handshake with its status;
    /// a `sec-websocket-protocol` header picks the subprotocol.
    async fn connect(&self, request: Request) -> Result<Reply>;

    /// A message's integration (`request.route_key` is the selected route). The reply's
    /// body is what API Gateway sends the caller: a body only from a route with a route
    /// response (a two-way route; a one-way route's body is dropped), or API Gateway's
    /// own `Forbidden` frame when no route matches and there is no `$default` route.
    async fn message(&self, request: Request) -> Result<Reply>;

    /// The `$disconnect` integration, after the socket closed.
    async fn disconnect(&self, request: Request) -> Result<Reply>;

    /// Whether a REST route's pattern matches `path` (whatever its method): such
    /// requests go to [`http`](Self::http) before static files.
    fn has_http_route(&self, path: &str) -> bool;

    /// The REST route `method` and `path` run, as its metrics label
    /// (`GET /history/{device}`).
    fn http_route(&self, method: &str, path: &str) -> Option<String>;

    /// A REST request.
    async fn http(&self, request: HttpRequest) -> Result<HttpResponse>;

    /// Where the gateway reports what the integration could not count itself: a call
    /// that panicked or timed out.
    fn observer(&self) -> &dyn Metrics;
}

/// A [`Router`] served in process on [`Backends`]: the integration
/// [`LocalGateway::new`](super::LocalGateway::new) runs.
///
/// ```
/// use std::sync::Arc;
/// use wsgw_core::{Backends, Router};
/// use wsgw_memory::gateway::{Integration, LocalGateway, RouterIntegration};
/// use wsgw_memory::{MemorySink, MemoryStore};
///
/// // Handlers sending through another sink than the gateway's sockets (here a second
/// // memory sink; an `ApiGatewaySink` at the gateway's own @connections in practice).
/// let backends = Backends::new(Arc::new(MemoryStore::new()), Arc::new(MemorySink::new()));
/// let integration = RouterIntegration::new(Router::new(), backends);
/// assert_eq!(integration.select_route(&wsgw_core::Payload::text("{}")), "$default");
/// let gateway = LocalGateway::for_integration(integration);
/// # drop(gateway);
/// ```
pub struct RouterIntegration<S = ()> {
    router: Router<S>,
    backends: Backends,
}

impl<S> std::fmt::Debug for RouterIntegration<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterIntegration")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> RouterIntegration<S> {
    /// `router` handling every event on `backends`.
    pub fn new(router: Router<S>, backends: Backends) -> Self {
        RouterIntegration { router, backends }
    }

    /// The router.
    pub fn router(&self) -> &Router<S> {
        &self.router
    }

    /// The backends every event is handled with.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }
}

#[async_trait]
impl<S: Send + Sync + 'static> Integration for RouterIntegration<S> {
    fn select_route(&self, body: &Payload) -> String {
        self.router.select_route(Some(body))
    }

    async fn authorize(&self, request: &Request) -> Result<Authorization> {
        self.router.authorize(&self.backends, request).await
    }

    async fn connect(&self, request: Request) -> Result<Reply> {
        self.router.handle(&self.backends, request).await
    }

    async fn message(&self, request: Request) -> Result<Reply> {
        self.router.handle(&self.backends, request).await
    }

    async fn disconnect(&self, request: Request) -> Result<Reply> {
        self.router.handle(&self.backends, request).await
    }

    fn has_http_route(&self, path: &str) -> bool {
        self.router.has_http_route(path)
    }

    fn http_route(&self, method: &str, path: &str) -> Option<String> {
        self.router.http_route(method, path).map(str::to_owned)
    }

    async fn http(&self, request: HttpRequest) -> Result<HttpResponse> {
        self.router.handle_http(&self.backends, request).await
    }

    fn observer(&self) -> &dyn Metrics {
        self.router.observer()
    }
}

#[async_trait]
impl<T: Integration + ?Sized> Integration for Arc<T> {
    fn select_route(&self, body: &Payload) -> String {
        (**self).select_route(body)
    }
    async fn authorize(&self, request: &Request) -> Result<Authorization> {
        (**self).authorize(request).await
    }
    async fn connect(&self, request: Request) -> Result<Reply> {
        (**self).connect(request).await
    }
    async fn message(&self, request: Request) -> Result<Reply> {
        (**self).message(request).await
    }
    async fn disconnect(&self, request: Request) -> Result<Reply> {
        (**self).disconnect(request).await
    }
    fn has_http_route(&self, path: &str) -> bool {
        (**self).has_http_route(path)
    }
    fn http_route(&self, method: &str, path: &str) -> Option<String> {
        (**self).http_route(method, path)
    }
    async fn http(&self, request: HttpRequest) -> Result<HttpResponse> {
        (**self).http(request).await
    }
    fn observer(&self) -> &dyn Metrics {
        (**self).observer()
    }
}
