//! API Gateway's route selection, in process.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::broadcast::BroadcastOptions;
use crate::handler::{Authorization, Authorizer, Context, RouteHandler};
use crate::http::{HttpHandler, HttpRequest, HttpResponse, PathPattern};
use crate::request::{CONNECT, DEFAULT, DISCONNECT};
use crate::{ConnectionStore, Error, EventType, MessageSink, Payload, Reply, Request, Result};

/// A route selection expression such as `$request.body.action` or
/// `$request.body.meta.kind`: a JSON path into the message body.
///
/// ```
/// use wsgw_core::{Payload, RouteSelection};
///
/// let selection = RouteSelection::parse("$request.body.meta.kind").unwrap();
/// let body = Payload::text(r#"{"meta":{"kind":"ping"}}"#);
/// assert_eq!(selection.select(Some(&body)).as_deref(), Some("ping"));
/// assert!(RouteSelection::parse("$request.header.x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSelection {
    expression: String,
    path: Vec<String>,
}

impl RouteSelection {
    const PREFIX: &'static str = "$request.body";

    /// Parses an expression of the form `$request.body.a.b…`.
    pub fn parse(expression: &str) -> Result<Self> {
        let rest = expression.strip_prefix(Self::PREFIX).ok_or_else(|| {
            Error::invalid_input(format!(
                "route selection expression `{expression}` must start with `$request.body.`"
            ))
        })?;
        let rest = rest.strip_prefix('.').ok_or_else(|| {
            Error::invalid_input(format!(
                "route selection expression `{expression}` names no field after `$request.body`"
            ))
        })?;
        let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(Error::invalid_input(format!(
                "route selection expression `{expression}` has an empty field name"
            )));
        }
        Ok(RouteSelection {
            expression: expression.to_owned(),
            path,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The route key the body selects: the value at the path as a string (numbers and
    /// booleans as written in JSON), or `None` for binary or non-JSON bodies, a missing
    /// field, or an object, array or null.
    pub fn select(&self, body: Option<&Payload>) -> Option<String> {
        let text = body?.as_text()?;
        let value: Value = serde_json::from_str(text).ok()?;
        let mut current = &value;
        for field in &self.path {
            current = current.get(field)?;
        }
        match current {
            Value::String(key) => Some(key.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }
}

impl Default for RouteSelection {
    fn default() -> Self {
        RouteSelection {
            expression: "$request.body.action".to_owned(),
            path: vec!["action".to_owned()],
        }
    }
}

impl fmt::Display for RouteSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

type SharedHandler<S> = Arc<dyn RouteHandler<S>>;

struct HttpRoute<S> {
    method: String,
    pattern: PathPattern,
    handler: Arc<dyn HttpHandler<S>>,
}

impl<S> Clone for HttpRoute<S> {
    fn clone(&self) -> Self {
        HttpRoute {
            method: self.method.clone(),
            pattern: self.pattern.clone(),
            handler: Arc::clone(&self.handler),
        }
    }
}

struct Routes<S> {
    routes: HashMap<String, SharedHandler<S>>,
    http_routes: Vec<HttpRoute<S>>,
    selection: RouteSelection,
    authorizer: Option<Arc<dyn Authorizer<S>>>,
    context: Context<S>,
}

/// Dispatches gateway events to route handlers the way API Gateway does.
///
/// `$connect`, `$disconnect` and `$default` are routes like any other; messages are routed
/// by the [`RouteSelection`] (default `$request.body.action`); a message that selects no
/// registered route goes to `$default`, and without `$default` the caller gets an error
/// reply while the connection stays open.
///
/// Cheap to clone, and its futures are `Send`, so it fits `lambda_runtime` and
/// `tokio::spawn`.
///
/// ```
/// # use std::sync::Arc;
/// # use wsgw_core::*;
/// # fn backends() -> (Arc<dyn ConnectionStore>, Arc<dyn MessageSink>) {
/// #     (Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()))
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let (store, sink) = backends();
/// let router = Router::new(store, sink)
///     .route("ping", |_ctx: Context, _req: Request| async { Ok(Reply::with_body("pong")) });
///
/// let reply = router
///     .handle(Request::message(ConnectionId::new("abc="), r#"{"action":"ping"}"#))
///     .await?;
/// assert_eq!(reply.body, Some(Payload::text("pong")));
/// # Ok(())
/// # }
/// ```
pub struct Router<S = ()> {
    inner: Arc<Routes<S>>,
}

impl<S> Clone for Router<S> {
    fn clone(&self) -> Self {
        Router {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.inner.routes.keys().collect();
        keys.sort();
        f.debug_struct("Router")
            .field("routes", &keys)
            .field("selection", &self.inner.selection.expression)
            .field("authorizer", &self.inner.authorizer.is_some())
            .finish()
    }
}

impl Router<()> {
    /// A router with no application state.
    pub fn new(store: Arc<dyn ConnectionStore>, sink: Arc<dyn MessageSink>) -> Self {
        Router::with_state(store, sink, ())
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    /// A router whose handlers see `state` through [`Context::state`].
    pub fn with_state(
        store: Arc<dyn ConnectionStore>,
        sink: Arc<dyn MessageSink>,
        state: S,
    ) -> Self {
        Router {
            inner: Arc::new(Routes {
                routes: HashMap::new(),
                http_routes: Vec::new(),
                selection: RouteSelection::default(),
                authorizer: None,
                context: Context::new(store, sink, Arc::new(state), BroadcastOptions::default()),
            }),
        }
    }

    fn edit(self, change: impl FnOnce(&mut Routes<S>)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            // Cloned before configuration finished: copy the table so the clone keeps its own.
            Err(shared) => Routes {
                routes: shared.routes.clone(),
                http_routes: shared.http_routes.clone(),
                selection: shared.selection.clone(),
                authorizer: shared.authorizer.clone(),
                context: shared.context.clone(),
            },
        };
        change(&mut inner);
        Router {
            inner: Arc::new(inner),
        }
    }

    /// Registers a handler for a route key (a custom key, or `$connect`, `$disconnect`,
    /// `$default`). Registering a key again replaces its handler.
    pub fn route(self, route_key: impl Into<String>, handler: impl RouteHandler<S>) -> Self {
        let route_key = route_key.into();
        let handler: SharedHandler<S> = Arc::new(handler);
        self.edit(|routes| {
            routes.routes.insert(route_key, handler);
        })
    }

    /// Registers the `$connect` handler. Its reply status decides the handshake.
    pub fn on_connect(self, handler: impl RouteHandler<S>) -> Self {
        self.route(CONNECT, handler)
    }

    /// Registers the `$disconnect` handler.
    pub fn on_disconnect(self, handler: impl RouteHandler<S>) -> Self {
        self.route(DISCONNECT, handler)
    }

    /// Registers the `$default` handler.
    pub fn on_default(self, handler: impl RouteHandler<S>) -> Self {
        self.route(DEFAULT, handler)
    }

    /// Registers a REST route: `method` (`GET`, `POST` ...) and a path pattern whose
    /// `{name}` segments are captured into [`HttpRequest::path_params`].
    pub fn http(self, method: &str, pattern: &str, handler: impl HttpHandler<S>) -> Self {
        let route = HttpRoute {
            method: method.to_ascii_uppercase(),
            pattern: PathPattern::parse(pattern),
            handler: Arc::new(handler),
        };
        self.edit(|routes| routes.http_routes.push(route))
    }

    /// Whether some REST route's pattern matches `path` (whatever its method).
    pub fn has_http_route(&self, path: &str) -> bool {
        self.inner
            .http_routes
            .iter()
            .any(|route| route.pattern.matches(path).is_some())
    }

    /// Handles a REST request: the first route whose method and pattern match runs;
    /// 404 when no pattern matches, 405 when only the method differs. Client errors from
    /// the handler ([`Error::InvalidInput`], [`Error::NotFound`] ...) become 4xx JSON
    /// responses; other errors are returned for the gateway to answer 500.
    pub async fn handle_http(&self, mut request: HttpRequest) -> Result<HttpResponse> {
        let mut path_matched = false;
        for route in &self.inner.http_routes {
            let Some(captures) = route.pattern.matches(&request.path) else {
                continue;
            };
            path_matched = true;
            if route.method != request.method {
                continue;
            }
            request.path_params = captures;
            return match route
                .handler
                .call(self.inner.context.clone(), request)
                .await
            {
                Ok(response) => Ok(response),
                Err(error) => HttpResponse::for_client_error(&error).ok_or(error),
            };
        }
        Ok(if path_matched {
            HttpResponse::error(
                405,
                format!("{} is not allowed on {}", request.method, request.path),
            )
        } else {
            HttpResponse::error(404, format!("no route for {}", request.path))
        })
    }

    /// Sets the route selection expression.
    pub fn route_selection(self, selection: RouteSelection) -> Self {
        self.edit(|routes| routes.selection = selection)
    }

    /// Sets the `$connect` authorizer. It runs before the `$connect` handler; a denial
    /// refuses the handshake and the handler never runs.
    pub fn authorizer(self, authorizer: impl Authorizer<S>) -> Self {
        let authorizer: Arc<dyn Authorizer<S>> = Arc::new(authorizer);
        self.edit(|routes| routes.authorizer = Some(authorizer))
    }

    /// Sets how [`Context::broadcast`] fans out.
    pub fn broadcast_options(self, options: BroadcastOptions) -> Self {
        self.edit(|routes| routes.context = routes.context.clone().with_broadcast_options(options))
    }

    /// The context handlers receive.
    pub fn context(&self) -> &Context<S> {
        &self.inner.context
    }

    /// The route selection expression in use.
    pub fn selection(&self) -> &RouteSelection {
        &self.inner.selection
    }

    /// The registered route keys, sorted.
    pub fn route_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.inner.routes.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    /// The route key a message body selects: the evaluated expression when a route with
    /// that key exists, otherwise `$default` (as API Gateway does).
    pub fn select_route(&self, body: Option<&Payload>) -> String {
        match self.inner.selection.select(body) {
            Some(key) if self.inner.routes.contains_key(&key) => key,
            _ => DEFAULT.to_owned(),
        }
    }

    /// Runs the authorizer, if one is set, on a `$connect` request. Without one every
    /// client is allowed with no context.
    pub async fn authorize(&self, request: &Request) -> Result<Authorization> {
        match &self.inner.authorizer {
            Some(authorizer) => {
                authorizer
                    .authorize(self.inner.context.clone(), request.clone())
                    .await
            }
            None => Ok(Authorization::Allow(Value::Null)),
        }
    }

    /// Handles one event and returns the reply for the gateway.
    ///
    /// - CONNECT: runs the authorizer unless `request.authorizer` is already set (by the
    ///   gateway's own authorizer step), then `$connect`; no handler means 200.
    /// - MESSAGE: selects the route when `request.route_key` is empty, then runs it; with no
    ///   matching route and no `$default`, replies 403 with a JSON error body naming the
    ///   route key, which the gateway sends to the caller.
    /// - DISCONNECT: runs `$disconnect`; no handler means 200.
    ///
    /// A handler's `Err` is returned as is: the gateway turns it into API Gateway's
    /// "Internal server error" (or a 500 handshake refusal on `$connect`).
    pub async fn handle(&self, mut request: Request) -> Result<Reply> {
        match request.event_type {
            EventType::Connect => {
                if request.authorizer.is_none() && self.inner.authorizer.is_some() {
                    match self.authorize(&request).await? {
                        Authorization::Allow(context) => request.authorizer = Some(context),
                        Authorization::Deny(status) => return Ok(Reply::status(status)),
                    }
                }
                request.route_key = CONNECT.to_owned();
                self.run_optional(request).await
            }
            EventType::Disconnect => {
                request.route_key = DISCONNECT.to_owned();
                self.run_optional(request).await
            }
            EventType::Message => {
                if request.route_key.is_empty() {
                    request.route_key = self.select_route(request.body.as_ref());
                }
                let handler = self
                    .inner
                    .routes
                    .get(&request.route_key)
                    .or_else(|| self.inner.routes.get(DEFAULT));
                match handler {
                    Some(handler) => handler.call(self.inner.context.clone(), request).await,
                    None => {
                        let selected = self.inner.selection.select(request.body.as_ref());
                        Reply::json(&serde_json::json!({
                            "message": "Forbidden",
                            "error": "no_route",
                            "detail": format!(
                                "no route matches {} and no $default route is set",
                                selected.map_or_else(|| "this message".to_owned(), |key| format!("`{key}`"))
                            ),
                            "connectionId": request.connection_id.as_str(),
                        }))
                        .map(|reply| reply.with_status(403))
                    }
                }
            }
        }
    }

    async fn run_optional(&self, request: Request) -> Result<Reply> {
        match self.inner.routes.get(&request.route_key) {
            Some(handler) => handler.call(self.inner.context.clone(), request).await,
            None => Ok(Reply::ok()),
        }
    }
}
