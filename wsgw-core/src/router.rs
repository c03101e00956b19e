//! API Gateway's route selection, in process.
//!
//! The [`Router`] is not a `tower::Service`, by choice (issue 16 asked whether it should
//! be). What tower layers would carry is already one place each here: the authorizer runs
//! on `$connect` ([`Router::authorizer`]), metrics are observers of every handled request
//! ([`Router::handle_observed`]), client mistakes meet one [`Router::on_rejection`], and
//! the HTTP routes' CORS and default headers are answered by the router as `tower-http`
//! would. A `Service` would put `poll_ready`, boxed futures and layer types into every
//! signature a new team reads (the Lambda glue, the LocalGateway, the `Harness`) and move
//! no code out of an app, so it would add rather than simplify.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::broadcast::BroadcastOptions;
use crate::handler::{Authorization, Authorizer, RejectionHandler, RouteHandler};
use ::http::header::{HeaderName, HeaderValue, ORIGIN};
use ::http::{Method, StatusCode};

use crate::cors::Cors;
use crate::http_answers::{HttpAnswers, ServerErrors};
use crate::http_routes::{
    http_error, HttpHandler, HttpRequest, HttpResponse, IntoHttpResponse, MatchedPath, PathParams,
    PathPattern,
};
use crate::metrics::{Counter, Metrics, Observers};
use crate::request::{CONNECT, DEFAULT, DISCONNECT};
use crate::{
    Backends, ConnectionId, Context, Error, EventType, GatewayError, Payload, Rejection, Reply,
    Request, Result,
};

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
    ///
    /// Only the selected path is looked at: elsewhere in the body the JSON must be well
    /// formed, but numbers of any size and nesting of any depth are fine (they are
    /// skipped without building a value, and without recursion), so a reading of `1e400`
    /// or a deeply nested payload does not hide the action. Of repeated keys the last
    /// one counts, as when parsing into a `serde_json::Value`.
    pub fn select(&self, body: Option<&Payload>) -> Option<String> {
        let text = body?.as_text()?;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let selected = SelectPath(&self.path).deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        selected
    }
}

/// Walks a JSON document along a path, skipping everything else (see
/// [`RouteSelection::select`]).
struct SelectPath<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for SelectPath<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SelectPath<'_> {
    type Value = Option<String>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| Number::from(value).to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| Number::from(value).to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(self
            .0
            .is_empty()
            .then(|| Number::from_f64(value).map(|number| number.to_string()))
            .flatten())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut selected = None;
        while let Some(key) = map.next_key::<String>()? {
            match self.0.split_first() {
                Some((field, rest)) if *field == key => {
                    selected = map.next_value_seed(SelectPath(rest))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(selected)
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

/// A registered WebSocket route.
struct Route<S> {
    /// The route key, shared by every context of the route.
    label: Arc<str>,
    handler: SharedHandler<S>,
    /// Registered with [`Router::two_way_route`]: the reply body goes back to the caller.
    two_way: bool,
    /// Whether a dropped reply body of this one-way route was warned about already: once
    /// per registration, then at debug level, so a busy route does not flood the log.
    warned_dropped_body: Arc<AtomicBool>,
}

impl<S> Clone for Route<S> {
    fn clone(&self) -> Self {
        Route {
            label: Arc::clone(&self.label),
            handler: Arc::clone(&self.handler),
            two_way: self.two_way,
            warned_dropped_body: Arc::clone(&self.warned_dropped_body),
        }
    }
}

struct HttpRoute<S> {
    method: String,
    pattern: PathPattern,
    /// `METHOD pattern`, the route's metrics label.
    label: Arc<str>,
    /// `OPTIONS pattern`, the label of the CORS preflights the router answers on it.
    preflight_label: Arc<str>,
    /// The pattern as registered, the handler's [`MatchedPath`].
    matched_path: Arc<str>,
    handler: Arc<dyn HttpHandler<S>>,
}

impl<S> Clone for HttpRoute<S> {
    fn clone(&self) -> Self {
        HttpRoute {
            method: self.method.clone(),
            pattern: self.pattern.clone(),
            label: Arc::clone(&self.label),
            preflight_label: Arc::clone(&self.preflight_label),
            matched_path: Arc::clone(&self.matched_path),
            handler: Arc::clone(&self.handler),
        }
    }
}

/// The `$connect` reply header naming the subprotocol the handshake accepts.
const SUBPROTOCOL_HEADER: &str = "sec-websocket-protocol";

/// The metrics label of REST requests that match no route.
const UNMATCHED_HTTP: &str = "(unmatched)";

/// A map keyed by route key. foldhash rather than SipHash: a message looks its route up
/// several times, and keys from clients are only looked up, never inserted, so there is
/// no table for them to flood.
type RouteMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

struct Routes<S> {
    routes: RouteMap<Route<S>>,
    http_routes: Vec<HttpRoute<S>>,
    http_answers: HttpAnswers,
    selection: RouteSelection,
    authorizer: Option<Arc<dyn Authorizer<S>>>,
    on_rejection: Option<Arc<dyn RejectionHandler<S>>>,
    state: Arc<S>,
    broadcast_options: Arc<BroadcastOptions>,
    observers: Arc<Observers>,
    /// The labels of the built-in routes, for their contexts when they have no handler.
    builtin: [Arc<str>; 3],
}

impl<S> Clone for Routes<S> {
    fn clone(&self) -> Self {
        Routes {
            routes: self.routes.clone(),
            http_routes: self.http_routes.clone(),
            http_answers: self.http_answers.clone(),
            selection: self.selection.clone(),
            authorizer: self.authorizer.clone(),
            on_rejection: self.on_rejection.clone(),
            state: Arc::clone(&self.state),
            broadcast_options: Arc::clone(&self.broadcast_options),
            observers: Arc::clone(&self.observers),
            builtin: self.builtin.clone(),
        }
    }
}

impl<S> Routes<S> {
    /// The label of a WebSocket route key (registered or built in).
    fn label(&self, route: &str) -> Arc<str> {
        match self.routes.get(route) {
            Some(registered) => Arc::clone(&registered.label),
            None => self
                .builtin
                .iter()
                .find(|label| &***label == route)
                .cloned()
                .unwrap_or_else(|| Arc::from(route)),
        }
    }

    /// The context a handler of `route` runs with for `caller`, on `backends`, reporting
    /// to `extra` as well.
    fn context(
        &self,
        backends: &Backends,
        route: Option<Arc<str>>,
        caller: Option<ConnectionId>,
        extra: Option<&Arc<dyn Metrics>>,
    ) -> Context<S> {
        let observers = match extra {
            Some(extra) => Arc::new(self.observers.with(Arc::clone(extra))),
            None => Arc::clone(&self.observers),
        };
        Context::new(
            backends.clone(),
            Arc::clone(&self.state),
            Arc::clone(&self.broadcast_options),
            observers,
            route,
            caller,
        )
    }
}

/// Dispatches gateway events to route handlers the way API Gateway does.
///
/// A router holds routes (and the application state), not backends: whoever serves it
/// gives the [`Backends`] for each request, the `Harness` and the LocalGateway
/// (`wsgw-memory`), the Lambda glue and `invoke` (`wsgw-aws`).
///
/// `$connect`, `$disconnect` and `$default` are routes like any other; messages are routed
/// by the [`RouteSelection`] (default `$request.body.action`); a message that selects no
/// registered route goes to `$default`, and without `$default` the caller gets API
/// Gateway's `Forbidden` frame ([`GatewayError::Forbidden`]) while the connection stays
/// open.
///
/// Routes are one-way, as on API Gateway, unless registered with
/// [`two_way_route`](Self::two_way_route): only a two-way route's reply body goes back to
/// the caller. A one-way route answers through [`Context::reply`].
///
/// A handler's `Err` holding a [`Rejection`] answers the client (an error frame, a
/// refused handshake, a 4xx); any other `Err` fails the invocation.
///
/// Cheap to clone, and its futures are `Send`, so it fits `lambda_runtime` and
/// `tokio::spawn`.
///
/// ```
/// # use std::sync::Arc;
/// # use wsgw_core::*;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// # let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
/// let pong = |_ctx: Context, _req: Request| async { Ok("pong") };
/// let router = Router::new()
///     .two_way_route("ping", pong)
///     // One-way: API Gateway drops its reply body, and so does the router.
///     .route("ping-one-way", pong);
///
/// let reply = router
///     .handle(&backends, Request::message(ConnectionId::new("abc="), r#"{"action":"ping"}"#))
///     .await?;
/// assert_eq!(reply.body, Some(Payload::text("pong")));
///
/// let reply = router
///     .handle(&backends, Request::message(ConnectionId::new("abc="), r#"{"action":"ping-one-way"}"#))
///     .await?;
/// assert_eq!(reply.body, None);
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
        f.debug_struct("Router")
            .field("routes", &self.route_keys())
            .field("two_way_routes", &self.two_way_routes())
            .field("selection", &self.inner.selection.expression)
            .field("authorizer", &self.inner.authorizer.is_some())
            .finish()
    }
}

impl<S> Router<S> {
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

    /// The keys of the routes registered with [`two_way_route`](Self::two_way_route),
    /// sorted: the routes whose template routes need a route response.
    pub fn two_way_routes(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .inner
            .routes
            .iter()
            .filter(|(_, route)| route.two_way)
            .map(|(key, _)| key.as_str())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Whether `route_key` is a two-way route (registered with
    /// [`two_way_route`](Self::two_way_route)).
    pub fn is_two_way(&self, route_key: &str) -> bool {
        self.inner
            .routes
            .get(route_key)
            .is_some_and(|route| route.two_way)
    }

    /// The application state handlers see.
    pub fn state(&self) -> &S {
        &self.inner.state
    }
}

impl Router<()> {
    /// A router with no application state and no routes.
    pub fn new() -> Self {
        Router::with_state(())
    }
}

impl Default for Router<()> {
    fn default() -> Self {
        Router::new()
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    /// A router whose handlers see `state` through [`Context::state`].
    pub fn with_state(state: S) -> Self {
        Router {
            inner: Arc::new(Routes {
                routes: RouteMap::default(),
                http_routes: Vec::new(),
                http_answers: HttpAnswers::default(),
                selection: RouteSelection::default(),
                authorizer: None,
                on_rejection: None,
                state: Arc::new(state),
                broadcast_options: Arc::new(BroadcastOptions::default()),
                observers: Arc::new(Observers::default()),
                builtin: [CONNECT, DISCONNECT, DEFAULT].map(Arc::from),
            }),
        }
    }

    fn edit(self, change: impl FnOnce(&mut Routes<S>)) -> Self {
        // Cloned before configuration finished: copy the table so the clone keeps its own.
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| (*shared).clone());
        change(&mut inner);
        Router {
            inner: Arc::new(inner),
        }
    }

    /// Registers a handler for a one-way route (a custom key, or `$connect`,
    /// `$disconnect`, `$default`), as API Gateway routes are by default: the handler
    /// answers through [`Context::reply`] (or [`Context::sink`]), and a body in its
    /// reply is dropped (with a warning naming the route and how to make it two-way).
    /// Registering a key again replaces its handler.
    pub fn route(self, route_key: impl Into<String>, handler: impl RouteHandler<S>) -> Self {
        self.register(route_key.into(), Arc::new(handler), false)
    }

    /// Registers a handler for a two-way route: the body of its reply goes back to the
    /// caller, as API Gateway sends the integration's response on a route that has a
    /// route response. Deployed, the template's route needs
    /// `RouteResponseSelectionExpression: $default` and an `AWS::ApiGatewayV2::RouteResponse`
    /// with `RouteResponseKey: $default` (`wsgw_aws::template` checks the template against
    /// the router). Registering a key again replaces its handler.
    ///
    /// Only messages are answered this way: `$connect` and `$disconnect` never send a
    /// body to the client, whichever way they are registered.
    ///
    /// ```
    /// use wsgw_core::{Context, Json, Request, Result, Router};
    ///
    /// async fn whoami(_ctx: Context, request: Request) -> Result<Json<serde_json::Value>> {
    ///     Ok(Json(serde_json::json!({ "connection_id": request.connection_id })))
    /// }
    ///
    /// let router = Router::new().two_way_route("whoami", whoami);
    /// assert_eq!(router.two_way_routes(), ["whoami"]);
    /// ```
    pub fn two_way_route(
        self,
        route_key: impl Into<String>,
        handler: impl RouteHandler<S>,
    ) -> Self {
        self.register(route_key.into(), Arc::new(handler), true)
    }

    fn register(self, route_key: String, handler: SharedHandler<S>, two_way: bool) -> Self {
        let route = Route {
            label: Arc::from(route_key.as_str()),
            handler,
            two_way,
            warned_dropped_body: Arc::new(AtomicBool::new(false)),
        };
        self.edit(|routes| {
            routes.routes.insert(route_key, route);
        })
    }

    /// Registers the `$connect` handler. Its reply status decides the handshake; a
    /// [`Rejection`] refuses it with the rejection's status.
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

    /// Registers an HTTP route: `method` (`GET`, `POST` ...) and a path pattern whose
    /// `{name}` segments are captured into the request's [`PathParams`] (read with
    /// [`HttpRequestExt::path_param`](crate::HttpRequestExt::path_param)).
    pub fn http(self, method: &str, pattern: &str, handler: impl HttpHandler<S>) -> Self {
        let method = method.to_ascii_uppercase();
        let route = HttpRoute {
            label: Arc::from(format!("{method} {pattern}")),
            preflight_label: Arc::from(format!("OPTIONS {pattern}")),
            matched_path: Arc::from(pattern),
            method,
            pattern: PathPattern::parse(pattern),
            handler: Arc::new(handler),
        };
        self.edit(|routes| routes.http_routes.push(route))
    }

    /// Answers the CORS of the HTTP routes, as [`tower-http`'s `CorsLayer`] does for an
    /// axum router: every answer of an HTTP route gets `cors`' headers for the request's
    /// `Origin` (its own, a [`Rejection`], a [server error](Self::server_errors) and the
    /// router's 404 and 405 alike), and an `OPTIONS` request on the path of any route is
    /// the preflight, answered `204 No Content` with them (unless an `OPTIONS` route of
    /// its own matches). Browsers send preflights without credentials, so they never
    /// reach a handler that checks them.
    ///
    /// Behind a REST API (proxy integrations) and a function URL CORS is the function's
    /// job, so this is how it is done; the preflights reach it when the API routes
    /// `OPTIONS` to it. An HTTP API with a `CorsConfiguration` answers the preflights
    /// itself and overrides the function's CORS headers: leave this unset there.
    ///
    /// [`tower-http`'s `CorsLayer`]: https://docs.rs/tower-http/latest/tower_http/cors/
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsgw_core::*;
    /// use wsgw_core::cors::{Cors, CorsOrigins};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    /// # let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
    /// let devices = |_ctx: Context, _req: HttpRequest| async { Ok(Json(serde_json::json!([]))) };
    /// let router = Router::new()
    ///     .http("GET", "/devices", devices)
    ///     .cors(Cors::new(CorsOrigins::parse("https://dash.example")?));
    ///
    /// let preflight = http::Request::options("/devices")
    ///     .header("Origin", "https://dash.example")
    ///     .header("Access-Control-Request-Method", "GET")
    ///     .body(Payload::default())
    ///     .unwrap();
    /// let answer = router.handle_http(&backends, preflight).await?;
    /// assert_eq!(answer.status(), 204);
    /// assert_eq!(answer.headers()["access-control-allow-origin"], "https://dash.example");
    /// assert_eq!(router.http_route("OPTIONS", "/devices"), Some("OPTIONS /devices"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn cors(self, cors: Cors) -> Self {
        self.edit(|routes| routes.http_answers.cors = Some(cors))
    }

    /// Adds a header every answer of an HTTP route carries unless its handler set one
    /// of that name (`Cache-Control: no-store` on an API whose answers must not be
    /// cached), as `tower-http`'s `SetResponseHeaderLayer::if_not_present` does.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsgw_core::*;
    /// use wsgw_core::http::header::{HeaderValue, CACHE_CONTROL};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// # let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
    /// let router = Router::new()
    ///     .http("GET", "/now", |_ctx: Context, _req: HttpRequest| async { Ok((http::StatusCode::OK, "12:00")) })
    ///     .http_header(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    /// let request = http::Request::get("/now").body(Payload::default()).unwrap();
    /// let answer = router.handle_http(&backends, request).await?;
    /// assert_eq!(answer.headers()["cache-control"], "no-store");
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_header(self, name: HeaderName, value: HeaderValue) -> Self {
        self.edit(|routes| routes.http_answers.headers.push((name, value)))
    }

    /// The shape of the error bodies of the HTTP routes: a [`Rejection`] with the
    /// standard frame (and a [server error](Self::server_errors)) is answered with
    /// `shape(code, detail)` (the detail `""` when none), followed by its other fields,
    /// instead of `{"type":"error","error":…,"detail":…}`. A frame made with
    /// [`Rejection::json`] is sent as it is, and WebSocket routes keep the standard
    /// frame.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsgw_core::*;
    /// use serde_json::json;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// # let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
    /// async fn item(_ctx: Context, _req: HttpRequest) -> Result<Json<serde_json::Value>> {
    ///     Err(Rejection::new("not_found").with_detail("no such item").with_status(404).into())
    /// }
    /// let router = Router::new()
    ///     .http("GET", "/items/{id}", item)
    ///     .http_error_shape(|code, message| json!({ "error": code, "message": message }));
    /// let request = http::Request::get("/items/7").body(Payload::default()).unwrap();
    /// let answer = router.handle_http(&backends, request).await?;
    /// assert_eq!(answer.status(), 404);
    /// assert_eq!(answer.body().as_text(), Some(r#"{"error":"not_found","message":"no such item"}"#));
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_error_shape(
        self,
        shape: impl Fn(&str, &str) -> Value + Send + Sync + 'static,
    ) -> Self {
        self.edit(|routes| routes.http_answers.error_shape = Some(Arc::new(shape)))
    }

    /// Answers an HTTP route whose handler failed with a server-side [`Error`] as
    /// `errors` says (500, or 503 with `Retry-After` for a throttled backend), with the
    /// router's CORS and headers, instead of failing the invocation. The error is
    /// logged and counted as a handler error either way; only its answer changes. A
    /// handler that panics or runs out of time is still the gateway's to answer (API
    /// Gateway's `Internal server error`, `Endpoint request timed out`).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsgw_core::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// # let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
    /// async fn busy(_ctx: Context, _req: HttpRequest) -> Result<http::StatusCode> {
    ///     Err(Error::Throttled { backend: "dynamodb", message: "rate exceeded".into() })
    /// }
    /// let router = Router::new().http("GET", "/history", busy).server_errors(ServerErrors::new());
    /// let request = http::Request::get("/history").body(Payload::default()).unwrap();
    /// let answer = router.handle_http(&backends, request).await?;
    /// assert_eq!(answer.status(), 503);
    /// assert_eq!(answer.headers()["retry-after"], "1");
    /// # Ok(())
    /// # }
    /// ```
    pub fn server_errors(self, errors: ServerErrors) -> Self {
        self.edit(|routes| routes.http_answers.server_errors = Some(errors))
    }

    /// The REST route a request would run, as its metrics label `METHOD pattern`
    /// (`GET /history/{device}`); `None` when no route's method and pattern match. With
    /// [`cors`](Self::cors), an `OPTIONS` request on a route's path is its preflight,
    /// `OPTIONS pattern`.
    pub fn http_route(&self, method: &str, path: &str) -> Option<&str> {
        let mut matching = self
            .inner
            .http_routes
            .iter()
            .filter(|route| route.pattern.matches(path).is_some());
        let first = matching.clone().next()?;
        match matching.find(|route| route.method.eq_ignore_ascii_case(method)) {
            Some(route) => Some(&route.label),
            None if self.answers_preflight(method) => Some(&first.preflight_label),
            None => None,
        }
    }

    /// Whether the router answers a request of `method` on a route's path that no route
    /// of that method has: the preflights, with [`cors`](Self::cors).
    fn answers_preflight(&self, method: &str) -> bool {
        self.inner.http_answers.cors.is_some()
            && method.eq_ignore_ascii_case(Method::OPTIONS.as_str())
    }

    /// Whether some REST route's pattern matches `path` (whatever its method).
    pub fn has_http_route(&self, path: &str) -> bool {
        self.inner
            .http_routes
            .iter()
            .any(|route| route.pattern.matches(path).is_some())
    }

    /// Handles a REST request on `backends`: the first route whose method and pattern
    /// match runs; 404 when no pattern matches, 405 when only the method differs (and,
    /// with [`cors`](Self::cors), `OPTIONS` is the preflight). A handler's [`Rejection`]
    /// is answered with its status and frame as a JSON body (in the
    /// [error shape](Self::http_error_shape) if set); other errors are answered as
    /// [`server_errors`](Self::server_errors) says, or returned for the gateway to answer
    /// 500 when it is not set. Every answer gets the [CORS](Self::cors) and
    /// [default](Self::http_header) headers.
    ///
    /// Reported to the metrics observers as [`Counter::HttpRequests`] under
    /// `METHOD pattern` (`(unmatched)` for 404 and 405), with the handler's latency and,
    /// for a returned error, [`Counter::HandlerErrors`].
    pub async fn handle_http(
        &self,
        backends: &Backends,
        request: HttpRequest,
    ) -> Result<HttpResponse> {
        self.dispatch_http(backends, request, None).await
    }

    /// [`handle_http`](Self::handle_http), reporting to `observer` as well as to the
    /// router's observers (a gateway measuring one invocation).
    pub async fn handle_http_observed(
        &self,
        backends: &Backends,
        request: HttpRequest,
        observer: Arc<dyn Metrics>,
    ) -> Result<HttpResponse> {
        self.dispatch_http(backends, request, Some(observer)).await
    }

    async fn dispatch_http(
        &self,
        backends: &Backends,
        mut request: HttpRequest,
        extra: Option<Arc<dyn Metrics>>,
    ) -> Result<HttpResponse> {
        let answers = &self.inner.http_answers;
        let origin = request.headers().get(ORIGIN).cloned();
        let mut path_matched: Option<&HttpRoute<S>> = None;
        for route in &self.inner.http_routes {
            let Some(captures) = route.pattern.matches(request.uri().path()) else {
                continue;
            };
            path_matched = path_matched.or(Some(route));
            if route.method != request.method().as_str() {
                continue;
            }
            request.extensions_mut().insert(PathParams(captures));
            request
                .extensions_mut()
                .insert(MatchedPath(Arc::clone(&route.matched_path)));
            let context = self.inner.context(
                backends,
                Some(Arc::clone(&route.label)),
                None,
                extra.as_ref(),
            );
            let started = Instant::now();
            let outcome = route.handler.call(context.clone(), request).await;
            let observers = context.observers();
            observers.count(Counter::HttpRequests, &route.label, 1);
            observers.latency(&route.label, started.elapsed());
            let response = match outcome {
                Ok(response) => response,
                Err(Error::Rejected(rejection)) => {
                    tracing::info!(route = %route.label, %rejection, "REST request rejected");
                    answers.rejection(&rejection)
                }
                Err(error) => {
                    observers.count(Counter::HandlerErrors, &route.label, 1);
                    let Some(answer) = answers.server_error(&error) else {
                        return Err(error);
                    };
                    tracing::error!(route = %route.label, %error, "REST request failed");
                    answer
                }
            };
            return Ok(answers.finish(origin.as_ref(), response));
        }
        // A preflight of a route's path without an `OPTIONS` route of its own: 204, the
        // CORS headers added by `finish`.
        let preflight = path_matched.filter(|_| self.answers_preflight(request.method().as_str()));
        if let Some(route) = preflight {
            let context = self.inner.context(backends, None, None, extra.as_ref());
            let observers = context.observers();
            observers.count(Counter::HttpRequests, &route.preflight_label, 1);
            let answer = StatusCode::NO_CONTENT.into_http_response()?;
            return Ok(answers.finish(origin.as_ref(), answer));
        }
        let context = self.inner.context(backends, None, None, extra.as_ref());
        context
            .observers()
            .count(Counter::HttpRequests, UNMATCHED_HTTP, 1);
        let path = request.uri().path();
        let answer = if path_matched.is_some() {
            http_error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {path}", request.method()),
            )
        } else {
            http_error(StatusCode::NOT_FOUND, format!("no route for {path}"))
        };
        Ok(answers.finish(origin.as_ref(), answer))
    }

    /// Sets the route selection expression.
    pub fn route_selection(self, selection: RouteSelection) -> Self {
        self.edit(|routes| routes.selection = selection)
    }

    /// Sets the `$connect` authorizer. It runs before the `$connect` handler; a denial
    /// refuses the handshake and the handler never runs. Ready ones are in
    /// [`auth`](crate::auth); when the authorizer reads a token from a subprotocol the
    /// client offered, an allowed `$connect` reply echoes that subprotocol's marker.
    pub fn authorizer(self, authorizer: impl Authorizer<S>) -> Self {
        let authorizer: Arc<dyn Authorizer<S>> = Arc::new(authorizer);
        self.edit(|routes| routes.authorizer = Some(authorizer))
    }

    /// Sets the handler that sees every [`Rejection`] a WebSocket route handler returns,
    /// before the client is answered ([`RejectionHandler`]). With one set, each request
    /// is cloned before its handler runs, as the handler consumes it.
    pub fn on_rejection(self, handler: impl RejectionHandler<S>) -> Self {
        let handler: Arc<dyn RejectionHandler<S>> = Arc::new(handler);
        self.edit(|routes| routes.on_rejection = Some(handler))
    }

    /// Adds a metrics observer: from now on it sees every event the router handles and
    /// every broadcast, prune and throttled send of its handlers (see
    /// [`metrics`](crate::metrics)). Several observers may be added; each sees
    /// everything.
    pub fn observe(self, observer: impl Metrics) -> Self {
        let observer: Arc<dyn Metrics> = Arc::new(observer);
        self.edit(|routes| routes.observers = Arc::new(routes.observers.with(observer)))
    }

    /// Every observer added with [`observe`](Self::observe), as one (reporting to it
    /// does nothing when there is none). Gateways use it for what happens outside the
    /// router: a handler that timed out or panicked.
    pub fn observer(&self) -> &dyn Metrics {
        &*self.inner.observers
    }

    /// Sets how [`Context::broadcast`] fans out.
    pub fn broadcast_options(self, options: BroadcastOptions) -> Self {
        self.edit(|routes| routes.broadcast_options = Arc::new(options))
    }

    /// A context on `backends` for work outside a handler (a background task, a
    /// benchmark): its broadcasts and sends are counted for the router's observers under
    /// [`NO_ROUTE`](crate::metrics::NO_ROUTE), and it has no caller.
    pub fn context(&self, backends: &Backends) -> Context<S> {
        self.inner.context(backends, None, None, None)
    }

    /// The route key a message body selects: the evaluated expression when a route with
    /// that key exists, otherwise `$default` (as API Gateway does).
    ///
    /// `$connect` and `$disconnect` are never selected by a message: a body saying
    /// `{"action":"$disconnect"}` goes to `$default` like any unknown action.
    pub fn select_route(&self, body: Option<&Payload>) -> String {
        match self.inner.selection.select(body) {
            Some(key) if self.is_message_route(&key) => key,
            _ => DEFAULT.to_owned(),
        }
    }

    /// Whether a message may run the route `key`: a registered route other than
    /// `$connect` and `$disconnect`, which only connection events run.
    fn is_message_route(&self, key: &str) -> bool {
        key != CONNECT && key != DISCONNECT && self.inner.routes.contains_key(key)
    }

    /// Runs the authorizer, if one is set, on a `$connect` request served on `backends`.
    /// Without one every client is allowed with no context. An authorizer's
    /// [`Rejection`] denies with its status.
    ///
    /// A denial or a failure ends the `$connect`, so it is reported to the metrics
    /// observers here ([`Counter::Connects`], [`Counter::ConnectsRefused`], and
    /// [`Counter::HandlerErrors`] for a failure); an allowed client is counted by
    /// [`handle`](Self::handle).
    pub async fn authorize(&self, backends: &Backends, request: &Request) -> Result<Authorization> {
        let context = self.inner.context(
            backends,
            Some(self.inner.label(CONNECT)),
            Some(request.connection_id.clone()),
            None,
        );
        let started = Instant::now();
        let outcome = self.run_authorizer(&context, request).await;
        if !matches!(outcome, Ok(Authorization::Allow(_))) {
            let observers = context.observers();
            observers.count(Counter::Connects, CONNECT, 1);
            observers.count(Counter::ConnectsRefused, CONNECT, 1);
            if outcome.is_err() {
                observers.count(Counter::HandlerErrors, CONNECT, 1);
            }
            observers.latency(CONNECT, started.elapsed());
        }
        outcome
    }

    async fn run_authorizer(
        &self,
        context: &Context<S>,
        request: &Request,
    ) -> Result<Authorization> {
        let outcome = match &self.inner.authorizer {
            Some(authorizer) => authorizer.authorize(context.clone(), request.clone()).await,
            None => Ok(Authorization::Allow(Value::Null)),
        };
        match outcome {
            Err(Error::Rejected(rejection)) => {
                tracing::info!(connection_id = %request.connection_id, %rejection, "$connect denied by the authorizer");
                Ok(Authorization::Deny(rejection.status()))
            }
            outcome => outcome,
        }
    }

    /// Handles one event on `backends` (the store, the sink bound to the event's
    /// endpoint, the history) and returns the reply for the gateway.
    ///
    /// - CONNECT: runs the authorizer unless `request.authorizer` already carries a
    ///   principal (set by the gateway's own authorizer step: the LocalGateway's, or API
    ///   Gateway's Lambda authorizer), then `$connect`; no handler means 200. A context
    ///   without a principal does not skip the authorizer. A [`Rejection`] refuses the
    ///   handshake with its status.
    /// - MESSAGE: selects the route when `request.route_key` is empty, then runs it. The
    ///   reply's body is kept only on a two-way route (see
    ///   [`two_way_route`](Self::two_way_route)): on a one-way route it is dropped, as API
    ///   Gateway drops it, with a warning the first time. A [`Rejection`] is sent to the
    ///   caller as its error frame through the backends' sink (a caller that left is no
    ///   failure) and the reply is a plain 200. With no matching route and no
    ///   `$default`, replies 403 with API Gateway's `Forbidden` frame
    ///   ([`GatewayError::Forbidden`], quoting `request.request_id`) as the body, which the
    ///   gateway sends to the caller.
    /// - DISCONNECT: runs `$disconnect`; no handler means 200.
    ///
    /// Any other `Err` from a handler is returned as is: the gateway turns it into API
    /// Gateway's "Internal server error" frame ([`GatewayError::InternalServerError`]),
    /// or on `$connect` a 502 handshake refusal.
    ///
    /// Reported to the metrics observers: [`Counter::Connects`] (and
    /// [`Counter::ConnectsRefused`] for a refusal), [`Counter::Disconnects`] or
    /// [`Counter::Messages`] under the route whose handler ran, the handler's latency,
    /// and [`Counter::HandlerErrors`] for an `Err` that is not a rejection.
    ///
    /// Logged (`tracing`, level INFO): an accepted `$connect` as "connected" and every
    /// `$disconnect` as "disconnected", with the connection id and source IP (and the
    /// close code and reason), so a system's handlers need not log its lifecycle.
    pub async fn handle(&self, backends: &Backends, request: Request) -> Result<Reply> {
        self.dispatch(backends, request, None).await
    }

    /// [`handle`](Self::handle), reporting to `observer` as well as to the router's
    /// observers: how a gateway measures one invocation on its own (`wsgw-aws` writes
    /// one CloudWatch metrics line per Lambda invocation this way).
    pub async fn handle_observed(
        &self,
        backends: &Backends,
        request: Request,
        observer: Arc<dyn Metrics>,
    ) -> Result<Reply> {
        self.dispatch(backends, request, Some(observer)).await
    }

    async fn dispatch(
        &self,
        backends: &Backends,
        mut request: Request,
        extra: Option<Arc<dyn Metrics>>,
    ) -> Result<Reply> {
        let started = Instant::now();
        let (route, counter): (&str, Counter) = match request.event_type {
            EventType::Connect => (CONNECT, Counter::Connects),
            EventType::Disconnect => (DISCONNECT, Counter::Disconnects),
            EventType::Message => {
                if request.route_key.is_empty() {
                    request.route_key = self.select_route(request.body.as_ref());
                }
                let route = match self.inner.routes.get_key_value(&request.route_key) {
                    Some((key, _)) if key != CONNECT && key != DISCONNECT => key.as_str(),
                    _ => DEFAULT,
                };
                (route, Counter::Messages)
            }
        };
        let context = self.inner.context(
            backends,
            Some(self.inner.label(route)),
            Some(request.connection_id.clone()),
            extra.as_ref(),
        );
        let outcome = match request.event_type {
            EventType::Connect => {
                request.route_key = CONNECT.to_owned();
                let (id, source_ip) = (request.connection_id.clone(), request.source_ip.clone());
                let outcome = self.connect(&context, request).await;
                if matches!(&outcome, Ok(reply) if !reply.is_rejection()) {
                    tracing::info!(
                        connection_id = %id,
                        source_ip = source_ip.as_deref().unwrap_or("unknown"),
                        "connected"
                    );
                }
                outcome
            }
            EventType::Disconnect => {
                request.route_key = DISCONNECT.to_owned();
                log_disconnect(&request);
                self.run_optional(&context, request).await
            }
            EventType::Message => self.message(&context, route, request).await,
        };
        let observers = context.observers();
        observers.count(counter, route, 1);
        match &outcome {
            Ok(reply) if counter == Counter::Connects && reply.is_rejection() => {
                observers.count(Counter::ConnectsRefused, route, 1);
            }
            Ok(_) => {}
            Err(_) => {
                if counter == Counter::Connects {
                    observers.count(Counter::ConnectsRefused, route, 1);
                }
                observers.count(Counter::HandlerErrors, route, 1);
            }
        }
        observers.latency(route, started.elapsed());
        outcome
    }

    async fn connect(&self, context: &Context<S>, mut request: Request) -> Result<Reply> {
        let authorized = crate::auth::Principal::of(&request).is_some();
        if !authorized && self.inner.authorizer.is_some() {
            match self.run_authorizer(context, &request).await? {
                Authorization::Allow(authorized) => request.authorizer = Some(authorized),
                Authorization::Deny(status) => return Ok(Reply::status(status)),
            }
        }
        let marker = self
            .inner
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.subprotocol())
            .filter(|marker| crate::auth::offered_subprotocols(&request).any(|p| p == *marker))
            .map(str::to_owned);
        let mut reply = match self.run_optional(context, request).await {
            Err(Error::Rejected(rejection)) => {
                tracing::info!(route = CONNECT, %rejection, "$connect rejected");
                let mut refused = Reply::status(rejection.status());
                refused.body = Some(rejection.to_payload());
                return Ok(refused);
            }
            outcome => outcome?,
        };
        if let Some(marker) = marker {
            if !reply.is_rejection() && !reply.headers.contains_key(SUBPROTOCOL_HEADER) {
                reply.headers.insert(SUBPROTOCOL_HEADER.to_owned(), marker);
            }
        }
        Ok(reply)
    }

    /// Runs the handler of `route`, the message route `dispatch` resolved (`$default`
    /// for a message that selects no registered one).
    async fn message(&self, context: &Context<S>, route: &str, request: Request) -> Result<Reply> {
        let Some(registered) = self.inner.routes.get(route) else {
            let selected = self.inner.selection.select(request.body.as_ref());
            tracing::warn!(
                connection_id = %request.connection_id,
                selected = selected.as_deref().unwrap_or(""),
                "no route matches the message and no $default route is set: the caller gets API Gateway's Forbidden"
            );
            let frame = GatewayError::Forbidden.frame(&request.connection_id, &request.request_id);
            return Ok(Reply::with_body(frame).with_status(403));
        };
        let mut reply = match self.call(registered, context, request).await {
            Err(Error::Rejected(rejection)) => return reject(context, route, &rejection).await,
            outcome => outcome?,
        };
        if !registered.two_way && reply.body.is_some() {
            reply.body = None;
            if registered.warned_dropped_body.swap(true, Ordering::Relaxed) {
                tracing::debug!(route, "reply body of a one-way route dropped");
            } else {
                tracing::warn!(
                    route,
                    "route `{route}` is one-way, so its reply body is dropped, as API Gateway drops it: \
                     register it with Router::two_way_route(\"{route}\", ...) and give the template's route a route \
                     response (RouteResponseSelectionExpression: $default and an AWS::ApiGatewayV2::RouteResponse) \
                     to send the body back to the caller, or send it with ctx.reply()"
                );
            }
        }
        Ok(reply)
    }

    /// Runs `route`'s handler; a rejection it returns is shown to the
    /// [`on_rejection`](Self::on_rejection) handler, if any, before it is answered.
    async fn call(
        &self,
        route: &Route<S>,
        context: &Context<S>,
        request: Request,
    ) -> Result<Reply> {
        let Some(on_rejection) = &self.inner.on_rejection else {
            return route.handler.call(context.clone(), request).await;
        };
        let kept = request.clone();
        let outcome = route.handler.call(context.clone(), request).await;
        if let Err(Error::Rejected(rejection)) = &outcome {
            let rejection = rejection.clone();
            on_rejection
                .rejected(context.clone(), kept, rejection)
                .await;
        }
        outcome
    }

    async fn run_optional(&self, context: &Context<S>, request: Request) -> Result<Reply> {
        match self.inner.routes.get(&request.route_key) {
            Some(route) => match self.call(route, context, request).await {
                // `$disconnect` has nobody to answer: the connection is closed.
                Err(Error::Rejected(rejection)) if route.label.as_ref() == DISCONNECT => {
                    tracing::info!(route = DISCONNECT, %rejection, "$disconnect rejected: nobody to answer");
                    Ok(Reply::ok())
                }
                outcome => outcome,
            },
            None => Ok(Reply::ok()),
        }
    }
}

/// Answers a message's rejection: its frame to the caller through the request's sink,
/// on one-way and two-way routes alike. A caller that already left is no failure; any
/// other send failure is the invocation's.
async fn reject<S>(context: &Context<S>, route: &str, rejection: &Rejection) -> Result<Reply> {
    tracing::info!(route, %rejection, "request rejected");
    match context.caller() {
        Some(caller) => match context.sink().send(caller, rejection.to_payload()).await {
            Ok(()) => Ok(Reply::ok()),
            Err(error) if error.is_gone() => {
                tracing::debug!(connection_id = %caller, "caller left before its rejection was sent");
                Ok(Reply::ok())
            }
            Err(error) => Err(error),
        },
        None => Ok(Reply::status(rejection.status())),
    }
}

/// The lifecycle line every system logs: who left, with the close code and reason.
fn log_disconnect(request: &Request) {
    let (status_code, reason) = match &request.disconnect {
        Some(info) => (Some(info.status_code), info.reason.as_str()),
        None => (None, ""),
    };
    tracing::info!(
        connection_id = %request.connection_id,
        source_ip = request.source_ip.as_deref().unwrap_or("unknown"),
        status_code,
        reason,
        "disconnected"
    );
}
