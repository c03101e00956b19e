//! Route handlers and the context they run with.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::broadcast::{broadcast, broadcast_to_group, BroadcastOptions, BroadcastReport};
use crate::metrics::{Counter, MeteredSink, Metrics, Observers, NO_ROUTE};
use crate::{ConnectionId, ConnectionStore, MessageSink, Payload, Reply, Request, Result};

/// What every handler gets besides the request: the backends and the application state.
///
/// Cheap to clone (a few `Arc`s).
pub struct Context<S = ()> {
    store: Arc<dyn ConnectionStore>,
    /// The sink handlers use: `raw_sink`, wrapped to count throttled sends when there
    /// are observers.
    sink: Arc<dyn MessageSink>,
    raw_sink: Arc<dyn MessageSink>,
    state: Arc<S>,
    broadcast_options: Arc<BroadcastOptions>,
    observers: Arc<Observers>,
    route: Option<Arc<str>>,
}

impl<S> Clone for Context<S> {
    fn clone(&self) -> Self {
        Context {
            store: Arc::clone(&self.store),
            sink: Arc::clone(&self.sink),
            raw_sink: Arc::clone(&self.raw_sink),
            state: Arc::clone(&self.state),
            broadcast_options: Arc::clone(&self.broadcast_options),
            observers: Arc::clone(&self.observers),
            route: self.route.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Context<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("route", &self.route)
            .field("broadcast_options", &self.broadcast_options)
            .finish_non_exhaustive()
    }
}

impl<S> Context<S> {
    /// The same context reporting to `observers` as well.
    pub(crate) fn with_observer(mut self, observer: Arc<dyn Metrics>) -> Self {
        self.observers = Arc::new(self.observers.with(observer));
        self.rewrap_sink();
        self
    }

    /// The context a handler of `route` runs with: the router's observers plus `extra`,
    /// and the sink reporting throttled sends under `route`.
    pub(crate) fn for_route(&self, route: &str, extra: Option<&Arc<dyn Metrics>>) -> Self {
        let mut context = self.clone();
        if let Some(extra) = extra {
            context.observers = Arc::new(context.observers.with(Arc::clone(extra)));
        }
        context.route = Some(Arc::from(route));
        context.rewrap_sink();
        context
    }

    /// Everyone observing this context, as one.
    pub(crate) fn observers(&self) -> &Observers {
        &self.observers
    }

    fn rewrap_sink(&mut self) {
        self.sink = if self.observers.is_empty() {
            Arc::clone(&self.raw_sink)
        } else {
            Arc::new(MeteredSink {
                inner: Arc::clone(&self.raw_sink),
                observers: Arc::clone(&self.observers),
                route: self.route.clone().unwrap_or_else(|| Arc::from(NO_ROUTE)),
            })
        };
    }

    fn count_broadcast(&self, report: &BroadcastReport) {
        let route = self.route.as_deref().unwrap_or(NO_ROUTE);
        let observers = &self.observers;
        observers.count(
            Counter::BroadcastDeliveries,
            route,
            report.delivered.len() as u64,
        );
        observers.count(Counter::GonePrunes, route, report.pruned.len() as u64);
    }
}

impl<S: Send + Sync + 'static> Context<S> {
    /// A context over these backends and state.
    pub fn new(
        store: Arc<dyn ConnectionStore>,
        sink: Arc<dyn MessageSink>,
        state: Arc<S>,
        broadcast_options: BroadcastOptions,
    ) -> Self {
        Context {
            store,
            sink: Arc::clone(&sink),
            raw_sink: sink,
            state,
            broadcast_options: Arc::new(broadcast_options),
            observers: Arc::new(Observers::default()),
            route: None,
        }
    }

    /// The route whose handler runs with this context (`sendmessage`, `$connect`,
    /// `GET /history/{device}`); `None` outside a handler.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// The connection store.
    pub fn store(&self) -> &dyn ConnectionStore {
        &*self.store
    }

    /// The message sink. With metrics observers on the router, it reports throttled
    /// sends ([`Counter::Throttles`](crate::metrics::Counter::Throttles)).
    pub fn sink(&self) -> &dyn MessageSink {
        &*self.sink
    }

    /// The connection store, shared.
    pub fn store_arc(&self) -> Arc<dyn ConnectionStore> {
        Arc::clone(&self.store)
    }

    /// The message sink, shared.
    pub fn sink_arc(&self) -> Arc<dyn MessageSink> {
        Arc::clone(&self.sink)
    }

    /// The same context with other broadcast options.
    pub fn with_broadcast_options(mut self, options: BroadcastOptions) -> Self {
        self.broadcast_options = Arc::new(options);
        self
    }

    /// Reports `value` to the router's metrics observers under this context's route
    /// (see [`metrics`](crate::metrics)): for handlers that fan out or prune on their
    /// own instead of through [`broadcast`](Self::broadcast), so their deliveries
    /// ([`Counter::BroadcastDeliveries`]) and prunes ([`Counter::GonePrunes`]) are
    /// counted alike. Does nothing when nobody observes.
    pub fn count(&self, counter: Counter, value: u64) {
        let route = self.route.as_deref().unwrap_or(NO_ROUTE);
        self.observers.count(counter, route, value);
    }

    /// The application state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The application state, shared.
    pub fn state_arc(&self) -> Arc<S> {
        Arc::clone(&self.state)
    }

    /// The options [`broadcast`](Context::broadcast) uses.
    pub fn broadcast_options(&self) -> &BroadcastOptions {
        &self.broadcast_options
    }

    /// Sends `value` as JSON to one connection.
    pub async fn send_json<T: Serialize + ?Sized>(
        &self,
        id: &ConnectionId,
        value: &T,
    ) -> Result<()> {
        self.sink.send(id, Payload::json(value)?).await
    }

    /// Sends one payload to many connections; see [`broadcast`](crate::broadcast()).
    /// Deliveries and prunes are reported to the router's metrics observers.
    pub async fn broadcast<I>(&self, targets: I, payload: &Payload) -> BroadcastReport
    where
        I: IntoIterator<Item = ConnectionId>,
    {
        let report = broadcast(
            &*self.store,
            &*self.sink,
            targets,
            payload,
            &self.broadcast_options,
        )
        .await;
        self.count_broadcast(&report);
        report
    }

    /// Sends one payload to every member of a group; see
    /// [`broadcast_to_group`](crate::broadcast_to_group()).
    pub async fn broadcast_to_group(
        &self,
        group: &str,
        payload: &Payload,
    ) -> Result<BroadcastReport> {
        let report = broadcast_to_group(
            &*self.store,
            &*self.sink,
            group,
            payload,
            &self.broadcast_options,
        )
        .await?;
        self.count_broadcast(&report);
        Ok(report)
    }
}

/// Handles one route.
///
/// Any `async fn(Context<S>, Request) -> Result<Reply>` or closure returning such a future
/// is a handler, so most code never implements this trait by hand:
///
/// ```
/// use wsgw_core::{Context, Reply, Request, Result, RouteHandler};
///
/// // Its body reaches the caller when registered with `Router::two_way_route`.
/// async fn pong(_ctx: Context, _request: Request) -> Result<Reply> {
///     Ok(Reply::with_body("pong"))
/// }
///
/// fn assert_handler<H: RouteHandler<()>>(_: H) {}
/// assert_handler(pong);
/// assert_handler(|_ctx: Context, _req: Request| async { Ok(Reply::ok()) });
/// ```
///
/// Handlers must not panic on outside input: return
/// [`Error::InvalidInput`](crate::Error::InvalidInput) or an error reply instead.
#[async_trait]
pub trait RouteHandler<S = ()>: Send + Sync + 'static {
    /// Handles one request.
    async fn call(&self, ctx: Context<S>, request: Request) -> Result<Reply>;
}

#[async_trait]
impl<S, F, Fut> RouteHandler<S> for F
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply>> + Send + 'static,
{
    async fn call(&self, ctx: Context<S>, request: Request) -> Result<Reply> {
        (self)(ctx, request).await
    }
}

/// The decision of a `$connect` authorizer.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// Let the client in; the context (principal, roles, claims) is handed to every later
    /// route in [`Request::authorizer`]. Give it a `principalId`
    /// ([`Principal::context`](crate::auth::Principal::context)), as API Gateway does: a
    /// `$connect` whose context carries no principal runs the router's authorizer again.
    Allow(serde_json::Value),
    /// Refuse the handshake with this HTTP status (401 or 403).
    Deny(u16),
}

/// Decides on `$connect` whether a client may connect, as an API Gateway Lambda
/// authorizer does. Closures `Fn(Context<S>, Request) -> impl Future<Output =
/// Result<Authorization>>` are authorizers.
#[async_trait]
pub trait Authorizer<S = ()>: Send + Sync + 'static {
    /// Inspects the `$connect` request (query string, headers, subprotocols).
    async fn authorize(&self, ctx: Context<S>, request: Request) -> Result<Authorization>;

    /// The subprotocol marker this authorizer reads a token after (see
    /// [`auth`](crate::auth)), if any: the router answers an allowed `$connect` that
    /// offered it with `Sec-WebSocket-Protocol: <marker>`, as browsers require. `None`
    /// by default.
    fn subprotocol(&self) -> Option<&str> {
        None
    }
}

#[async_trait]
impl<S, F, Fut> Authorizer<S> for F
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Authorization>> + Send + 'static,
{
    async fn authorize(&self, ctx: Context<S>, request: Request) -> Result<Authorization> {
        (self)(ctx, request).await
    }
}
