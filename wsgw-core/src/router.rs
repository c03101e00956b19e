//! API Gateway's route selection, in process.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::broadcast::BroadcastOptions;
use crate::handler::{Authorization, Authorizer, Context, RouteHandler};
use crate::http::{HttpHandler, HttpRequest, HttpResponse, PathPattern};
use crate::metrics::{Counter, Metrics};
use crate::request::{CONNECT, DEFAULT, DISCONNECT};
use crate::{
    ConnectionStore, Error, EventType, GatewayError, MessageSink, Payload, Reply, Request, Result,
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
    label: String,
    handler: Arc<dyn HttpHandler<S>>,
}

impl<S> Clone for HttpRoute<S> {
    fn clone(&self) -> Self {
        HttpRoute {
            method: self.method.clone(),
            pattern: self.pattern.clone(),
            label: self.label.clone(),
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
    selection: RouteSelection,
    authorizer: Option<Arc<dyn Authorizer<S>>>,
    context: Context<S>,
    /// The context of every WebSocket route, made once rather than per event.
    route_contexts: RouteMap<Context<S>>,
}

impl<S> Routes<S> {
    /// The context a handler of `route` runs with, reporting to `extra` as well.
    fn context_for(&self, route: &str, extra: Option<&Arc<dyn Metrics>>) -> Context<S> {
        match (extra, self.route_contexts.get(route)) {
            (None, Some(context)) => context.clone(),
            _ => self.context.for_route(route, extra),
        }
    }

    fn refresh_route_contexts(&mut self) {
        let keys = self
            .routes
            .keys()
            .map(String::as_str)
            .chain([CONNECT, DISCONNECT, DEFAULT]);
        self.route_contexts = keys
            .map(|key| (key.to_owned(), self.context.for_route(key, None)))
            .collect();
    }
}

/// Dispatches gateway events to route handlers the way API Gateway does.
///
/// `$connect`, `$disconnect` and `$default` are routes like any other; messages are routed
/// by the [`RouteSelection`] (default `$request.body.action`); a message that selects no
/// registered route goes to `$default`, and without `$default` the caller gets API
/// Gateway's `Forbidden` frame ([`GatewayError::Forbidden`]) while the connection stays
/// open.
///
/// Routes are one-way, as on API Gateway, unless registered with
/// [`two_way_route`](Self::two_way_route): only a two-way route's reply body goes back to
/// the caller. A one-way route answers through [`Context::sink`].
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
/// let pong = |_ctx: Context, _req: Request| async { Ok(Reply::with_body("pong")) };
/// let router = Router::new(store, sink)
///     .two_way_route("ping", pong)
///     // One-way: API Gateway drops its reply body, and so does the router.
///     .route("ping-one-way", pong);
///
/// let reply = router
///     .handle(Request::message(ConnectionId::new("abc="), r#"{"action":"ping"}"#))
///     .await?;
/// assert_eq!(reply.body, Some(Payload::text("pong")));
///
/// let reply = router
///     .handle(Request::message(ConnectionId::new("abc="), r#"{"action":"ping-one-way"}"#))
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
                routes: RouteMap::default(),
                http_routes: Vec::new(),
                selection: RouteSelection::default(),
                authorizer: None,
                context: Context::new(store, sink, Arc::new(state), BroadcastOptions::default()),
                route_contexts: RouteMap::default(),
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
                route_contexts: RouteMap::default(),
            },
        };
        change(&mut inner);
        inner.refresh_route_contexts();
        Router {
            inner: Arc::new(inner),
        }
    }

    /// Registers a handler for a one-way route (a custom key, or `$connect`,
    /// `$disconnect`, `$default`), as API Gateway routes are by default: the handler
    /// answers through [`Context::sink`], and a body in its [`Reply`] is dropped (with a
    /// warning naming the route and how to make it two-way). Registering a key again
    /// replaces its handler.
    pub fn route(self, route_key: impl Into<String>, handler: impl RouteHandler<S>) -> Self {
        self.register(route_key.into(), Arc::new(handler), false)
    }

    /// Registers a handler for a two-way route: the body of its [`Reply`] goes back to the
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
    /// # use std::sync::Arc;
    /// # use wsgw_core::*;
    /// # let (store, sink): (Arc<dyn ConnectionStore>, Arc<dyn MessageSink>) =
    /// #     (Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
    /// async fn whoami(_ctx: Context, request: Request) -> Result<Reply> {
    ///     Reply::json(&serde_json::json!({ "connection_id": request.connection_id }))
    /// }
    ///
    /// let router = Router::new(store, sink).two_way_route("whoami", whoami);
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
            handler,
            two_way,
            warned_dropped_body: Arc::new(AtomicBool::new(false)),
        };
        self.edit(|routes| {
            routes.routes.insert(route_key, route);
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
        let method = method.to_ascii_uppercase();
        let route = HttpRoute {
            label: format!("{method} {pattern}"),
            method,
            pattern: PathPattern::parse(pattern),
            handler: Arc::new(handler),
        };
        self.edit(|routes| routes.http_routes.push(route))
    }

    /// The REST route a request would run, as its metrics label `METHOD pattern`
    /// (`GET /history/{device}`); `None` when no route's method and pattern match.
    pub fn http_route(&self, method: &str, path: &str) -> Option<&str> {
        self.inner
            .http_routes
            .iter()
            .find(|route| {
                route.method.eq_ignore_ascii_case(method) && route.pattern.matches(path).is_some()
            })
            .map(|route| route.label.as_str())
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
    ///
    /// Reported to the metrics observers as [`Counter::HttpRequests`] under
    /// `METHOD pattern` (`(unmatched)` for 404 and 405), with the handler's latency and,
    /// for a returned error, [`Counter::HandlerErrors`].
    pub async fn handle_http(&self, request: HttpRequest) -> Result<HttpResponse> {
        self.dispatch_http(request, None).await
    }

    /// [`handle_http`](Self::handle_http), reporting to `observer` as well as to the
    /// router's observers (a gateway measuring one invocation).
    pub async fn handle_http_observed(
        &self,
        request: HttpRequest,
        observer: Arc<dyn Metrics>,
    ) -> Result<HttpResponse> {
        self.dispatch_http(request, Some(observer)).await
    }

    async fn dispatch_http(
        &self,
        mut request: HttpRequest,
        extra: Option<Arc<dyn Metrics>>,
    ) -> Result<HttpResponse> {
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
            let context = self.inner.context.for_route(&route.label, extra.as_ref());
            let started = Instant::now();
            let outcome = route.handler.call(context.clone(), request).await;
            let observers = context.observers();
            observers.count(Counter::HttpRequests, &route.label, 1);
            observers.latency(&route.label, started.elapsed());
            return match outcome {
                Ok(response) => Ok(response),
                Err(error) => HttpResponse::for_client_error(&error).ok_or_else(|| {
                    observers.count(Counter::HandlerErrors, &route.label, 1);
                    error
                }),
            };
        }
        let context = self.inner.context.for_route(UNMATCHED_HTTP, extra.as_ref());
        context
            .observers()
            .count(Counter::HttpRequests, UNMATCHED_HTTP, 1);
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
    /// refuses the handshake and the handler never runs. Ready ones are in
    /// [`auth`](crate::auth); when the authorizer reads a token from a subprotocol the
    /// client offered, an allowed `$connect` reply echoes that subprotocol's marker.
    pub fn authorizer(self, authorizer: impl Authorizer<S>) -> Self {
        let authorizer: Arc<dyn Authorizer<S>> = Arc::new(authorizer);
        self.edit(|routes| routes.authorizer = Some(authorizer))
    }

    /// Adds a metrics observer: from now on it sees every event the router handles and
    /// every broadcast, prune and throttled send of its handlers (see
    /// [`metrics`](crate::metrics)). Several observers may be added; each sees
    /// everything.
    pub fn observe(self, observer: impl Metrics) -> Self {
        let observer: Arc<dyn Metrics> = Arc::new(observer);
        self.edit(|routes| routes.context = routes.context.clone().with_observer(observer))
    }

    /// Every observer added with [`observe`](Self::observe), as one (reporting to it
    /// does nothing when there is none). Gateways use it for what happens outside the
    /// router: a handler that timed out or panicked.
    pub fn observer(&self) -> &dyn Metrics {
        self.inner.context.observers()
    }

    /// Sets how [`Context::broadcast`] fans out.
    pub fn broadcast_options(self, options: BroadcastOptions) -> Self {
        self.edit(|routes| routes.context = routes.context.clone().with_broadcast_options(options))
    }

    /// The context handlers receive.
    pub fn context(&self) -> &Context<S> {
        &self.inner.context
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

    /// Runs the authorizer, if one is set, on a `$connect` request. Without one every
    /// client is allowed with no context.
    ///
    /// A denial or a failure ends the `$connect`, so it is reported to the metrics
    /// observers here ([`Counter::Connects`], [`Counter::ConnectsRefused`], and
    /// [`Counter::HandlerErrors`] for a failure); an allowed client is counted by
    /// [`handle`](Self::handle).
    pub async fn authorize(&self, request: &Request) -> Result<Authorization> {
        let context = self.inner.context_for(CONNECT, None);
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
        match &self.inner.authorizer {
            Some(authorizer) => authorizer.authorize(context.clone(), request.clone()).await,
            None => Ok(Authorization::Allow(Value::Null)),
        }
    }

    /// Handles one event and returns the reply for the gateway.
    ///
    /// - CONNECT: runs the authorizer unless `request.authorizer` already carries a
    ///   principal (set by the gateway's own authorizer step: the LocalGateway's, or API
    ///   Gateway's Lambda authorizer), then `$connect`; no handler means 200. A context
    ///   without a principal does not skip the authorizer.
    /// - MESSAGE: selects the route when `request.route_key` is empty, then runs it. The
    ///   reply's body is kept only on a two-way route (see
    ///   [`two_way_route`](Self::two_way_route)): on a one-way route it is dropped, as API
    ///   Gateway drops it, with a warning the first time. With no matching route and no
    ///   `$default`, replies 403 with API Gateway's `Forbidden` frame
    ///   ([`GatewayError::Forbidden`], quoting `request.request_id`) as the body, which the
    ///   gateway sends to the caller.
    /// - DISCONNECT: runs `$disconnect`; no handler means 200.
    ///
    /// A handler's `Err` is returned as is: the gateway turns it into API Gateway's
    /// "Internal server error" frame ([`GatewayError::InternalServerError`]), or on
    /// `$connect` a 502 handshake refusal.
    ///
    /// Reported to the metrics observers: [`Counter::Connects`] (and
    /// [`Counter::ConnectsRefused`] for a refusal), [`Counter::Disconnects`] or
    /// [`Counter::Messages`] under the route whose handler ran, the handler's latency,
    /// and [`Counter::HandlerErrors`] for an `Err`.
    pub async fn handle(&self, request: Request) -> Result<Reply> {
        self.dispatch(request, None).await
    }

    /// [`handle`](Self::handle), reporting to `observer` as well as to the router's
    /// observers: how a gateway measures one invocation on its own (`wsgw-aws` writes
    /// one CloudWatch metrics line per Lambda invocation this way).
    pub async fn handle_observed(
        &self,
        request: Request,
        observer: Arc<dyn Metrics>,
    ) -> Result<Reply> {
        self.dispatch(request, Some(observer)).await
    }

    async fn dispatch(
        &self,
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
        let context = self.inner.context_for(route, extra.as_ref());
        let outcome = match request.event_type {
            EventType::Connect => {
                request.route_key = CONNECT.to_owned();
                self.connect(&context, request).await
            }
            EventType::Disconnect => {
                request.route_key = DISCONNECT.to_owned();
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
        let mut reply = self.run_optional(context, request).await?;
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
        let mut reply = registered.handler.call(context.clone(), request).await?;
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
                     to send the body back to the caller, or send it with ctx.sink()"
                );
            }
        }
        Ok(reply)
    }

    async fn run_optional(&self, context: &Context<S>, request: Request) -> Result<Reply> {
        match self.inner.routes.get(&request.route_key) {
            Some(route) => route.handler.call(context.clone(), request).await,
            None => Ok(Reply::ok()),
        }
    }
}
