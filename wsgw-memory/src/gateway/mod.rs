//! `LocalGateway`: API Gateway WebSocket APIs on a laptop (feature `gateway`).
//!
//! A real WebSocket server on tokio and axum that runs a [`Router`] in process with API
//! Gateway's semantics, so handlers that work here work deployed:
//!
//! - **Stage.** Clients connect to `ws://ADDR/{stage}` (default stage `local`, see
//!   [`LocalGateway::stage`]); an upgrade on any other `/{name}` is refused at the
//!   handshake with 403, as API Gateway refuses an unknown stage. *Deliberate
//!   difference:* `ws://ADDR/` is accepted too, as the stage, so laptop commands stay
//!   short.
//! - **`$connect`** decides the handshake: a non-2xx reply refuses it with that status;
//!   a failing handler with 502, one past the integration timeout with 504, as API
//!   Gateway answers a failed integration; a failing authorizer with 500.
//! - **Messages** are routed by the selection expression, each in its own task of work:
//!   the messages of one connection are handled concurrently and may finish out of
//!   order, as each is its own invocation on AWS. Only two-way routes
//!   ([`Router::two_way_route`]) send their reply body back; a message with no route and
//!   no `$default` gets API Gateway's `Forbidden` frame, a failed handler `Internal
//!   server error`, one past the integration timeout `Endpoint request timed out`
//!   ([`wsgw_core::GatewayError`]), each with the event's `requestId`, and the
//!   connection stays open. *Resource bound:* at most
//!   [`Limits::max_concurrent_messages`] messages of a connection are handled at once;
//!   beyond that the gateway stops reading that socket until one finishes (nothing is
//!   dropped; TCP holds the rest). `Limits::default().max_concurrent_messages(1)`
//!   handles them one after another in arrival order, which AWS does **not** do: for
//!   tests that want determinism only.
//! - **Binary frames** from a client close the connection with 1003, as API Gateway
//!   rejects them (send base64 in a text frame instead).
//! - **`$disconnect`** runs after every close with the real close code.
//! - **Limits** (message and frame size, idle timeout, maximum duration, integration
//!   timeout) are API Gateway's, each configurable ([`Limits`]).
//! - **Resource bounds** of the gateway's own, with defaults for a laptop, so no client
//!   can take its memory or sockets ([`Limits`], live figures in
//!   [`RunningGateway::resources`] and `/metrics`): at most
//!   [`Limits::max_connections`] WebSocket connections (1,000; beyond, the upgrade is
//!   refused with 429 `{"message":"Too Many Requests"}`, API Gateway's throttling
//!   answer); per connection, [`Limits::max_inbound_bytes`] of messages being handled
//!   and [`Limits::max_outbox_bytes`] queued for it (512 KiB each; beyond, the gateway
//!   stops reading that socket, or answers posts 429 `LimitExceededException`); and
//!   [`Limits::handshake_timeout`] (10 s) to send a request's head, then its body, so
//!   half-sent requests and upgrades (slowloris) are closed.
//! - **Request context**: `requestId` (per event), `apiId` (per gateway, ten lower-case
//!   letters and digits), `messageDirection` `IN`, `messageId`, `stage`, and
//!   `domainName` without the port, in API Gateway's formats.
//! - **Management API** (`POST`/`GET`/`DELETE /{stage}/@connections/{id}`) answers on
//!   the same port exactly as AWS does, so the real `aws-sdk-apigatewaymanagement`
//!   client works against it, and checks SigV4 signatures as AWS does
//!   ([`ManagementAccess`]). *Deliberate differences:* unsigned calls from loopback are
//!   let in (for `curl`; [`ManagementAccess::trust_loopback`] turns that off), and
//!   `/@connections/{id}` without the stage works too.
//! - **No web page reaches `@connections` or the metrics.** A page open in the user's
//!   browser is a loopback caller too, so both answer only requests whose `Host` names
//!   the gateway as it is reached (loopback names, its listen address, names given with
//!   [`ManagementAccess::allow_host`]; a page that rebinds its own domain to 127.0.0.1
//!   sends its domain), and refuse requests a browser marks as coming from a page of
//!   another origin (`Origin`, `Sec-Fetch-Site`) unless
//!   [`ManagementAccess::allow_origin`] names it: 403 `ForbiddenException`.
//! - **WebSocket upgrades are accepted from pages of any origin**, as API Gateway
//!   accepts them (it has no origin check): pages elsewhere legitimately connect to an
//!   API, and the credentials the authorizers read (a token in a header, the query or
//!   the subprotocol) are ones a foreign page does not hold, unlike cookies. `$connect`
//!   sees the `Origin` header and may refuse it; an app that trusts a cookie in
//!   `$connect` must, here as on AWS.
//!
//! `GET /metrics` answers with the router's counters (connects, disconnects, messages by
//! route, broadcast deliveries, Gone prunes, throttles, handler errors, a handler latency
//! histogram) and the gateway's resources ([`ResourceUsage`]) in Prometheus's text
//! format; see [`LocalGateway::metrics_path`].

mod access;
mod assets;
mod connection;
mod integration;
mod lambda_emulator;
pub mod lambda_function;
mod management;
mod metrics;
mod rest;
mod server;
mod sigv4;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wsgw_core::metrics::{Counters, MetricsSnapshot};
use wsgw_core::{Backends, ConnectionStore, HistoryStore, Router};

#[cfg(feature = "cli")]
pub use access::ManagementArgs;
pub use access::{
    AccessError, AllowedHost, AllowedOrigin, ManagementAccess, ManagementCredentials,
};
pub use assets::Assets;
pub use integration::{Integration, RouterIntegration};
pub use lambda_emulator::{
    Invocation, LambdaRuntimeEmulator, ManagementCall, ManagementRecorder, RuntimeSettings,
};
pub use metrics::{render as render_prometheus, PROMETHEUS_CONTENT_TYPE};

use crate::ids::new_api_id;
use crate::{
    MemoryHistory, MemorySink, MemoryStore, OutboxLimits, DEFAULT_OUTBOX_BYTES,
    DEFAULT_OUTBOX_CAPACITY, LOCAL_STAGE, MAX_PAYLOAD_BYTES,
};

/// Re-export of the axum version the gateway is built on, for [`LocalGateway::http_routes`].
pub use axum;

/// API Gateway's WebSocket limits, and the gateway's own resource bounds, each
/// configurable (small values make tests fast).
///
/// The resource bounds (`max_connections`, `max_inbound_bytes`, `max_outbox_bytes`,
/// `max_concurrent_messages`, `handshake_timeout`) keep a client that floods, stops
/// reading, holds requests half-sent or opens connections without end from taking the
/// laptop's memory and sockets. With the defaults the messages a gateway holds are at most
/// `max_connections × (max_inbound_bytes + max_outbox_bytes + 2 × max_message_bytes)`,
/// about 1.2 GiB, reached only when a thousand clients all flood slow routes and all
/// stop reading (each idle connection costs about 10 KiB more); a half-sent request
/// holds its socket for at most `handshake_timeout`. Lower them for a gateway others
/// can reach (`--listen 0.0.0.0:8080`).
///
/// ```
/// use std::time::Duration;
/// use wsgw_memory::gateway::Limits;
///
/// let limits = Limits::default()
///     .max_connections(200)
///     .max_inbound_bytes(256 * 1024)
///     .max_outbox_bytes(256 * 1024)
///     .handshake_timeout(Duration::from_secs(5));
/// assert_eq!(limits.max_connections, 200);
/// assert_eq!(Limits::default().max_connections, 1_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message, in either direction: 128 KB. Bigger incoming → close 1009;
    /// bigger `@connections` posts → 413.
    pub max_message_bytes: usize,
    /// Largest incoming frame: 32 KB. Bigger → close 1009.
    pub max_frame_bytes: usize,
    /// A connection with no message in either direction for this long is closed with
    /// 1001: 10 minutes.
    pub idle_timeout: Duration,
    /// Any connection is closed with 1001 after this long: 2 hours.
    pub max_connection_duration: Duration,
    /// A route handler (or authorizer) running longer than this fails like API Gateway's
    /// integration timeout: 29 seconds.
    pub handler_timeout: Duration,
    /// Messages queued per connection (posted, not yet written to its socket) before
    /// `@connections` posts to it answer 429 `LimitExceededException`: 1,024.
    pub outbox_capacity: usize,
    /// Bytes queued per connection before `@connections` posts to it answer 429
    /// `LimitExceededException`, as API Gateway throttles: 512 KiB (four of the largest
    /// messages). The socket's own buffers come first, so only a client that stops
    /// reading fills it; a message is always taken while nothing is queued, so one
    /// larger than this still goes out, alone.
    pub max_outbox_bytes: usize,
    /// Messages of one connection handled at once: 64. API Gateway sets no such limit
    /// (each message is its own invocation); the gateway keeps one so a flooding client
    /// cannot hold unbounded memory: at the limit it stops reading that socket until a
    /// message finishes, and nothing is dropped. `1` handles each connection's messages
    /// one after another in arrival order, which API Gateway does not do (tests only).
    pub max_concurrent_messages: usize,
    /// Bytes of one connection's messages handled at once: 512 KiB. Past it the gateway
    /// stops reading that socket until a message finishes (nothing is dropped; TCP holds
    /// the rest), like `max_concurrent_messages`; a connection with nothing in flight
    /// is always read, so this is exceeded by at most one message.
    pub max_inbound_bytes: usize,
    /// WebSocket connections at once: 1,000. A connection counts from its upgrade
    /// request until its `$disconnect` ran and its last message was handled (messages
    /// still being handled when the client leaves finish, as invocations do on AWS, and
    /// keep their connection's place until then). Beyond it the upgrade is refused with
    /// 429 `{"message":"Too Many Requests"}` before any handler runs, as API Gateway
    /// refuses connections beyond its account's quota (500 new connections a second; it
    /// sets no limit on open ones). Plain HTTP requests are not counted.
    pub max_connections: usize,
    /// How long a client may take to send an HTTP request's head (the WebSocket upgrade
    /// request included), and then its body; and how long an idle keep-alive connection
    /// stays open: 10 seconds. A client that sends half a request (slowloris) is
    /// disconnected when it runs out. API Gateway's own is not documented.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: MAX_PAYLOAD_BYTES,
            max_frame_bytes: 32 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_connection_duration: Duration::from_secs(2 * 60 * 60),
            handler_timeout: Duration::from_secs(29),
            outbox_capacity: DEFAULT_OUTBOX_CAPACITY,
            max_outbox_bytes: DEFAULT_OUTBOX_BYTES,
            max_concurrent_messages: DEFAULT_MAX_CONCURRENT_MESSAGES,
            max_inbound_bytes: DEFAULT_MAX_INBOUND_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl Limits {
    /// Sets the largest message.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets the largest frame.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes;
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the maximum connection duration.
    pub fn max_connection_duration(mut self, duration: Duration) -> Self {
        self.max_connection_duration = duration;
        self
    }

    /// Sets the handler timeout.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// Sets how many messages a connection's outbox holds (at least 1).
    pub fn outbox_capacity(mut self, capacity: usize) -> Self {
        self.outbox_capacity = capacity.max(1);
        self
    }

    /// Sets how many bytes a connection's outbox holds.
    pub fn max_outbox_bytes(mut self, bytes: usize) -> Self {
        self.max_outbox_bytes = bytes;
        self
    }

    /// Sets how many messages of one connection are handled at once (at least 1; 1 is
    /// the ordered mode, not API Gateway's behaviour).
    pub fn max_concurrent_messages(mut self, messages: usize) -> Self {
        self.max_concurrent_messages = messages.max(1);
        self
    }

    /// Sets how many bytes of one connection's messages are handled at once.
    pub fn max_inbound_bytes(mut self, bytes: usize) -> Self {
        self.max_inbound_bytes = bytes;
        self
    }

    /// Sets how many WebSocket connections the gateway holds at once (at least 1).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// Sets how long a client may take to send a request's head, then its body.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// What a live connection's outbox holds before posts are throttled.
    fn outbox(&self) -> OutboxLimits {
        OutboxLimits::new(self.outbox_capacity, self.max_outbox_bytes)
    }
}

/// [`Limits::max_concurrent_messages`] unless set.
pub const DEFAULT_MAX_CONCURRENT_MESSAGES: usize = 64;

/// [`Limits::max_inbound_bytes`] unless set: 512 KiB.
pub const DEFAULT_MAX_INBOUND_BYTES: usize = 512 * 1024;

/// [`Limits::max_connections`] unless set.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_000;

/// [`Limits::handshake_timeout`] unless set.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where [`LocalGateway`] serves its metrics unless told otherwise.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// What a running gateway holds at one moment: the figures its resource [`Limits`]
/// bound. `GET /metrics` shows them as gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// WebSocket connections counted against [`Limits::max_connections`]: from the
    /// upgrade request until `$disconnect` ran and the last message was handled
    /// (`wsgw_connections`).
    pub connections: usize,
    /// WebSocket connections open, reachable through `@connections`
    /// (`wsgw_connections_open`).
    pub connections_open: usize,
    /// TCP connections speaking HTTP: requests (upgrade requests included) being read
    /// or answered, and idle keep-alive connections (`wsgw_http_connections`).
    pub http_connections: usize,
    /// Bytes of client messages read and being handled ([`Limits::max_inbound_bytes`]
    /// per connection; `wsgw_inbound_queued_bytes`).
    pub inbound_bytes: usize,
    /// Bytes posted to connections and not yet taken by their sockets
    /// ([`Limits::max_outbox_bytes`] per connection; `wsgw_outbound_queued_bytes`).
    pub outbound_bytes: usize,
}

/// The counts behind [`ResourceUsage`], shared by the gateway's tasks.
#[derive(Debug)]
struct Usage {
    connection_slots: Arc<Semaphore>,
    max_connections: usize,
    http_connections: Arc<AtomicUsize>,
    inbound_bytes: AtomicUsize,
    sockets: Arc<MemorySink>,
}

impl Usage {
    fn new(limits: &Limits, sockets: Arc<MemorySink>) -> Self {
        // The field may have been set directly, past what a semaphore holds.
        let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Usage {
            connection_slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            http_connections: Arc::new(AtomicUsize::new(0)),
            inbound_bytes: AtomicUsize::new(0),
            sockets,
        }
    }

    fn snapshot(&self) -> ResourceUsage {
        ResourceUsage {
            connections: self
                .max_connections
                .saturating_sub(self.connection_slots.available_permits()),
            connections_open: self.sockets.open_connections().len(),
            http_connections: self.http_connections.load(Ordering::Acquire),
            inbound_bytes: self.inbound_bytes.load(Ordering::Acquire),
            outbound_bytes: self.sockets.queued_bytes(),
        }
    }
}

struct Shared {
    integration: Arc<dyn Integration>,
    sockets: Arc<MemorySink>,
    limits: Limits,
    /// The address the gateway listens on.
    local_addr: SocketAddr,
    /// What the resource limits bound, live.
    usage: Arc<Usage>,
    assets: Assets,
    counters: Arc<Counters>,
    metrics_path: Option<String>,
    stage: String,
    api_id: String,
    access: ManagementAccess,
    management_latency: Duration,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// A local stand-in for an API Gateway WebSocket API; see the [module docs](self).
///
/// It serves a [`Router`] on its own backends: its sockets' [`MemorySink`] as the sink
/// (what handlers send reaches the sockets), and a [`MemoryStore`] and [`MemoryHistory`]
/// unless given others ([`with_store`](Self::with_store),
/// [`with_history`](Self::with_history): DynamoDB at a local endpoint, say).
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// use wsgw_core::{Context, Request, Router};
/// use wsgw_memory::gateway::LocalGateway;
///
/// // Two-way: "pong" goes back to the caller (deployed, the route needs a route
/// // response in the template).
/// let router = Router::new().two_way_route("ping", |_ctx: Context, _req: Request| async { Ok("pong") });
/// let running = LocalGateway::new(router).bind("127.0.0.1:8080".parse().unwrap()).await?;
/// let url = running.stage_url();
/// // Ctrl-C and SIGTERM are obeyed from here on, before the address is out.
/// let stopped = running.run_until_signal();
/// println!("listening on {url}");
/// stopped.await
/// # }
/// ```
pub struct LocalGateway {
    integration: Pending,
    sockets: Arc<MemorySink>,
    store: Arc<dyn ConnectionStore>,
    history: Arc<dyn HistoryStore>,
    limits: Limits,
    assets: Assets,
    http: Option<axum::Router>,
    counters: Arc<Counters>,
    metrics_path: Option<String>,
    stage: String,
    api_id: String,
    access: ManagementAccess,
    management_latency: Duration,
}

/// The integration a gateway will run once it knows its backends.
enum Pending {
    /// A router, served on the gateway's backends when it starts.
    Router(Box<dyn FnOnce(Backends) -> Arc<dyn Integration> + Send>),
    /// An integration given whole.
    Ready(Arc<dyn Integration>),
}

impl std::fmt::Debug for LocalGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGateway")
            .field("stage", &self.stage)
            .field("api_id", &self.api_id)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl LocalGateway {
    /// A gateway serving `router`: handlers send through the gateway's own sink
    /// (deliveries go straight to the sockets), and keep connections in a fresh
    /// [`MemoryStore`] and history in a fresh [`MemoryHistory`] unless given others.
    ///
    /// The gateway adds a [`Counters`] observer to the router (see
    /// [`Router::observe`]): that is what `GET /metrics` shows.
    pub fn new<S: Send + Sync + 'static>(router: Router<S>) -> Self {
        let counters = Arc::new(Counters::new());
        let router = router.observe(counters.clone());
        let integrate = move |backends: Backends| -> Arc<dyn Integration> {
            Arc::new(RouterIntegration::new(router, backends))
        };
        LocalGateway::with_pending(Pending::Router(Box::new(integrate)), counters)
    }

    /// A gateway running another [`Integration`] than an in-process router (see the
    /// trait for when): it brings its own backends, so the store and history set here
    /// are not used. What its handlers send must reach the gateway's sockets: through
    /// the gateway's `@connections` endpoint, or in process through the sink given with
    /// [`with_sockets`](Self::with_sockets).
    pub fn for_integration(integration: impl Integration) -> Self {
        LocalGateway::with_pending(
            Pending::Ready(Arc::new(integration)),
            Arc::new(Counters::new()),
        )
    }

    fn with_pending(integration: Pending, counters: Arc<Counters>) -> Self {
        LocalGateway {
            integration,
            sockets: Arc::new(MemorySink::new()),
            store: Arc::new(MemoryStore::new()),
            history: Arc::new(MemoryHistory::new()),
            limits: Limits::default(),
            assets: Assets::new(),
            http: None,
            counters,
            metrics_path: Some(DEFAULT_METRICS_PATH.to_owned()),
            stage: LOCAL_STAGE.to_owned(),
            api_id: new_api_id(),
            access: ManagementAccess::default(),
            management_latency: Duration::ZERO,
        }
    }

    /// Keeps connections in `store` (DynamoDB at a local endpoint, say) instead of a
    /// fresh [`MemoryStore`].
    pub fn with_store(mut self, store: Arc<dyn ConnectionStore>) -> Self {
        self.store = store;
        self
    }

    /// Delivers to the sockets through `sockets` (default: a fresh [`MemorySink`]), which
    /// is also the handlers' sink of a router ([`new`](Self::new)).
    pub fn with_sockets(mut self, sockets: Arc<MemorySink>) -> Self {
        self.sockets = sockets;
        self
    }

    /// Keeps history in `history` instead of a fresh [`MemoryHistory`].
    pub fn with_history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.history = history;
        self
    }

    /// Where `GET` answers with the metrics in Prometheus's text format (default
    /// [`DEFAULT_METRICS_PATH`]); `None` turns the endpoint off. A REST route of the
    /// router on the same path wins; a WebSocket upgrade there is refused like any path
    /// that is not the stage.
    pub fn metrics_path(mut self, path: Option<&str>) -> Self {
        self.metrics_path = path.map(str::to_owned);
        self
    }

    /// The counters `GET /metrics` shows, live.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Shows `counters` at `GET /metrics` instead: for a gateway running another
    /// [`Integration`] (see [`for_integration`](Self::for_integration)), the counters it
    /// counts its events into and gives as its [`observer`](Integration::observer), where
    /// the gateway also reports its own refusals and aborted calls.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsgw_core::metrics::{Counter, Counters, Metrics};
    /// use wsgw_core::{Backends, Router};
    /// use wsgw_memory::gateway::{LocalGateway, RouterIntegration};
    /// use wsgw_memory::{MemorySink, MemoryStore};
    ///
    /// let counters = Arc::new(Counters::new());
    /// let router = Router::new().observe(counters.clone());
    /// let backends = Backends::new(Arc::new(MemoryStore::new()), Arc::new(MemorySink::new()));
    /// let gateway = LocalGateway::for_integration(RouterIntegration::new(router, backends))
    ///     .with_counters(counters.clone());
    /// counters.count(Counter::Messages, "sendmessage", 1);
    /// assert_eq!(gateway.counters().snapshot().get(Counter::Messages, "sendmessage"), 1);
    /// ```
    pub fn with_counters(mut self, counters: Arc<Counters>) -> Self {
        self.counters = counters;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves these static files to plain HTTP `GET`s.
    pub fn assets(mut self, assets: Assets) -> Self {
        self.assets = assets;
        self
    }

    /// Adds REST routes (for example a history endpoint), served before static assets.
    pub fn http_routes(mut self, routes: axum::Router) -> Self {
        self.http = Some(match self.http.take() {
            Some(existing) => existing.merge(routes),
            None => routes,
        });
        self
    }

    /// The API's one stage (default `local`): clients connect to `ws://HOST/{stage}`
    /// (or `ws://HOST/`, a deliberate difference from AWS), the Management API answers at
    /// `/{stage}/@connections/{id}`, and every request reports it. Upgrades on any other
    /// path are refused with 403, as API Gateway refuses an unknown stage.
    pub fn stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = stage.into();
        self
    }

    /// The API id every request reports (`requestContext.apiId`; default: made up at
    /// start, ten lower-case letters and digits as on AWS).
    pub fn api_id(mut self, api_id: impl Into<String>) -> Self {
        self.api_id = api_id.into();
        self
    }

    /// Who may call `@connections` and read the metrics (default:
    /// [`ManagementAccess::default`]: generated credentials, unsigned calls from loopback
    /// let in, no extra host names or web origins).
    ///
    /// ```
    /// use wsgw_core::Router;
    /// use wsgw_memory::gateway::{LocalGateway, ManagementAccess, ManagementCredentials};
    ///
    /// let access = ManagementAccess::new(ManagementCredentials::new("AKIDLOCAL", "secret"))
    ///     .trust_loopback(false);
    /// let gateway = LocalGateway::new(Router::new()).management_access(access);
    /// assert_eq!(gateway.access().credentials().access_key_id(), "AKIDLOCAL");
    /// ```
    pub fn management_access(mut self, access: ManagementAccess) -> Self {
        self.access = access;
        self
    }

    /// Who may call `@connections`.
    pub fn access(&self) -> &ManagementAccess {
        &self.access
    }

    /// Answers every Management API (`@connections`) request only this long after it
    /// came in (default none), the way API Gateway's answers reach a Lambda over the
    /// network, a few to tens of milliseconds away. A post is still delivered to its
    /// socket at once. With it, code that waits for each post in turn (a sequential
    /// broadcast loop) is as slow locally as it will be deployed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wsgw_core::Router;
    /// use wsgw_memory::gateway::LocalGateway;
    ///
    /// let gateway = LocalGateway::new(Router::new())
    ///     .management_latency(Duration::from_millis(5));
    /// # drop(gateway);
    /// ```
    pub fn management_latency(mut self, latency: Duration) -> Self {
        self.management_latency = latency;
        self
    }

    /// The sink that delivers to this gateway's sockets: the handlers' sink.
    pub fn sockets(&self) -> Arc<MemorySink> {
        self.sockets.clone()
    }

    /// Binds to `addr` and starts serving in the background.
    pub async fn bind(self, addr: SocketAddr) -> std::io::Result<RunningGateway> {
        self.serve_on(TcpListener::bind(addr).await?)
    }

    /// Starts serving on a listener the caller bound (useful when handlers must know the
    /// gateway's address before it starts, for example to reach its `@connections`).
    pub fn serve_on(self, listener: TcpListener) -> std::io::Result<RunningGateway> {
        let local_addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let integration = match self.integration {
            Pending::Router(integrate) => integrate(
                Backends::new(self.store, self.sockets.clone()).with_history(self.history),
            ),
            Pending::Ready(integration) => integration,
        };
        let usage = Arc::new(Usage::new(&self.limits, self.sockets.clone()));
        let handshake_timeout = self.limits.handshake_timeout;
        let shared = Arc::new(Shared {
            integration,
            sockets: self.sockets,
            limits: self.limits,
            local_addr,
            usage: usage.clone(),
            assets: self.assets,
            counters: self.counters.clone(),
            metrics_path: self.metrics_path,
            stage: self.stage,
            api_id: self.api_id,
            access: self.access,
            management_latency: self.management_latency,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        });
        let gateway_routes = axum::Router::new()
            .route("/@connections/{id}", any(management::unstaged))
            .route("/{stage}/@connections/{id}", any(management::staged))
            // Other methods on `/` and `/{name}` are REST routes (a CORS preflight on
            // `/history`, a POST on `/devices`), not stages.
            .route("/", get(upgrade_root).fallback(fallback))
            .route("/{stage}", get(upgrade_staged).fallback(fallback))
            .fallback(fallback)
            .with_state(shared.clone());
        let app = match self.http {
            Some(http) => http.merge(gateway_routes),
            None => gateway_routes,
        };
        let server = tokio::spawn(server::serve(
            listener,
            app,
            handshake_timeout,
            shutdown.clone(),
            usage.http_connections.clone(),
        ));
        tracing::info!(%local_addr, stage = %shared.stage, api_id = %shared.api_id, "local gateway listening");
        let running = RunningGateway {
            local_addr,
            shutdown,
            tracker,
            server,
            counters: self.counters,
            usage,
            stage: shared.stage.clone(),
            api_id: shared.api_id.clone(),
            access: shared.access.clone(),
        };
        match running.exposure_notice() {
            Some(notice) if !access::is_loopback(local_addr.ip()) => tracing::warn!("{notice}"),
            Some(notice) => tracing::info!("{notice}"),
            None => {}
        }
        Ok(running)
    }
}

/// A gateway accepting connections; stop it with [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct RunningGateway {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    counters: Arc<Counters>,
    usage: Arc<Usage>,
    stage: String,
    api_id: String,
    access: ManagementAccess,
}

impl RunningGateway {
    /// What `GET /metrics` shows, as data.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.counters.snapshot()
    }

    /// What the gateway holds now: connections, and the bytes of messages queued in
    /// either direction (see [`Limits`]).
    pub fn resources(&self) -> ResourceUsage {
        self.usage.snapshot()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://ADDR` for clients: the stage without naming it, a deliberate difference
    /// from AWS (see [`stage_url`](Self::stage_url)).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// `ws://ADDR/STAGE`, the URL clients use deployed (`wss://{domain}/{stage}`).
    pub fn stage_url(&self) -> String {
        format!("ws://{}/{}", self.local_addr, self.stage)
    }

    /// `http://ADDR/STAGE`, the endpoint to give a Management API client.
    pub fn management_endpoint(&self) -> String {
        format!("http://{}/{}", self.local_addr, self.stage)
    }

    /// The API's stage.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The API id requests report.
    pub fn api_id(&self) -> &str {
        &self.api_id
    }

    /// Who may call `@connections`: the credentials an in-process or external
    /// Management API client signs with.
    pub fn management_access(&self) -> &ManagementAccess {
        &self.access
    }

    /// What is reachable from other machines, when the gateway listens beyond loopback
    /// (`--listen 0.0.0.0:8080` for devices on the LAN), and how `@connections` must be
    /// signed, whenever some caller must sign; `None` on loopback with unsigned
    /// loopback calls let in. Binaries print it at start (the gateway also logs it as a
    /// warning).
    ///
    /// It names the WebSocket stage, the open plain-HTTP paths (metrics, static files,
    /// REST routes) and the signing key: the access key id, and the secret when it was
    /// generated at start (a given one is not repeated).
    pub fn exposure_notice(&self) -> Option<String> {
        exposure_notice(self.local_addr, &self.stage, &self.access)
    }

    /// Closes every socket with 1001 "Going away", runs `$disconnect` for each, and
    /// stops serving.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        match self.server.await {
            Ok(result) => result,
            Err(join_error) => Err(std::io::Error::other(join_error)),
        }
    }

    /// Serves until Ctrl-C or SIGTERM, then shuts down gracefully.
    ///
    /// The signals are listened for from this call on, not from the first poll of the
    /// future: call it before printing the address, so a supervisor that stops the
    /// binary as soon as it printed is obeyed (a SIGTERM in between would otherwise kill
    /// the process without closing any connection). Must be called inside a tokio
    /// runtime.
    pub fn run_until_signal(self) -> impl Future<Output = std::io::Result<()>> + Send {
        let signal = shutdown_signal();
        async move {
            signal.await;
            tracing::info!("shutting down: closing every connection with 1001");
            self.shutdown().await
        }
    }
}

/// Ctrl-C or SIGTERM, listened for from this call on (the handlers are installed now,
/// not when the future is first polled).
#[cfg(unix)]
fn shutdown_signal() -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind, name: &'static str| {
        let stream = signal(kind)
            .inspect_err(|error| tracing::warn!(%error, "cannot listen for {name}"))
            .ok();
        async move {
            match stream {
                Some(mut stream) => {
                    stream.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "Ctrl-C");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = interrupt => {},
            () = terminate => {},
        }
    }
}

/// Ctrl-C (the only signal there is elsewhere).
#[cfg(not(unix))]
fn shutdown_signal() -> impl Future<Output = ()> + Send {
    async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

type UpgradeResult =
    Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

/// The notice of [`RunningGateway::exposure_notice`].
fn exposure_notice(addr: SocketAddr, stage: &str, access: &ManagementAccess) -> Option<String> {
    let beyond_loopback = !access::is_loopback(addr.ip());
    if !beyond_loopback && access.trusts_loopback() {
        return None;
    }
    let credentials = access.credentials();
    let secret = if credentials.is_generated() {
        format!(
            "secret access key {} (generated at start; give your own with --access-key-id/--secret-access-key or WSGW_LOCAL_ACCESS_KEY_ID/WSGW_LOCAL_SECRET_ACCESS_KEY)",
            credentials.secret_access_key()
        )
    } else {
        "the secret access key you gave".to_owned()
    };
    let loopback = if access.trusts_loopback() {
        "; unsigned calls are accepted from this machine (loopback) only"
    } else {
        ""
    };
    let reachable = if beyond_loopback {
        format!(
            "listening on {addr}, reachable from other machines: anyone who can reach it may open WebSocket connections (ws://HOST:{port}/{stage}; the app's $connect and authorizer decide who stays, so set its keys or tokens), read the metrics and static files, and call the REST routes; ",
            port = addr.port()
        )
    } else {
        String::new()
    };
    Some(format!(
        "{reachable}@connections (POST/GET/DELETE http://HOST:{port}/{stage}/@connections/ID) must be signed with AWS Signature Version 4 (service execute-api, any region) with access key id {id} and {secret}{loopback}; @connections and the metrics answer only requests naming this machine by one of its addresses, localhost or a name given with --allowed-host, and refuse web pages of other origins (--allowed-origin lets one in)",
        port = addr.port(),
        id = credentials.access_key_id(),
    ))
}

/// The answer to a WebSocket upgrade on a path that is not the stage, as API Gateway
/// answers an unknown stage.
fn unknown_stage() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"message":"Forbidden"}"#,
    )
        .into_response()
}

async fn upgrade_root(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: UpgradeResult,
) -> Response {
    match upgrade {
        Ok(upgrade) => connection::handshake(shared, peer, uri, headers, upgrade).await,
        // A plain GET of `/` is a REST route or a file.
        Err(_) => serve_plain(&shared, Method::GET, &uri, &headers, Bytes::new()).await,
    }
}

async fn upgrade_staged(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: UpgradeResult,
) -> Response {
    match upgrade {
        Ok(upgrade) if stage == shared.stage => {
            connection::handshake(shared, peer, uri, headers, upgrade).await
        }
        Ok(_) => {
            tracing::info!(path = uri.path(), stage = %shared.stage, "upgrade refused: not the stage");
            unknown_stage()
        }
        // A plain GET of `/{name}` is a REST route or a file, not a stage.
        Err(_) => serve_plain(&shared, Method::GET, &uri, &headers, Bytes::new()).await,
    }
}

async fn fallback(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_plain(&shared, method, &uri, &headers, body).await
}

/// Plain HTTP: the router's REST routes first, then the metrics, then static assets.
async fn serve_plain(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if shared.integration.has_http_route(uri.path()) {
        return rest::respond(shared, method, uri, headers, body).await;
    }
    if shared.metrics_path.as_deref() == Some(uri.path()) && method == Method::GET {
        if let Err(refusal) = shared.access.check_origin(shared.local_addr, headers) {
            tracing::warn!(path = uri.path(), message = %refusal.message, "metrics request refused");
            return (StatusCode::FORBIDDEN, format!("{}\n", refusal.message)).into_response();
        }
        return metrics::respond(&shared.counters.snapshot(), &shared.usage.snapshot());
    }
    if method == Method::GET || method == Method::HEAD {
        shared.assets.respond(uri.path())
    } else {
        (StatusCode::NOT_FOUND, "no such route\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_listeners_letting_loopback_in_unsigned_print_nothing() {
        let access = ManagementAccess::default();
        for addr in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.2:9000"] {
            assert_eq!(
                exposure_notice(addr.parse().unwrap(), "local", &access),
                None
            );
        }
    }

    #[test]
    fn listening_beyond_loopback_names_the_stage_the_open_paths_and_the_signing_key() {
        let access = ManagementAccess::default();
        let generated = access.credentials().clone();
        let notice = exposure_notice("0.0.0.0:8080".parse().unwrap(), "local", &access)
            .expect("0.0.0.0 is reachable from other machines");
        for expected in [
            "0.0.0.0:8080",
            "ws://HOST:8080/local",
            "metrics",
            "REST routes",
            "@connections",
            "Signature Version 4",
            "execute-api",
            generated.access_key_id(),
            generated.secret_access_key(),
            "loopback",
            "$connect",
            "--allowed-host",
            "web pages of other origins",
        ] {
            assert!(notice.contains(expected), "{expected:?} in {notice}");
        }

        let strict_loopback = ManagementAccess::default().trust_loopback(false);
        let notice = exposure_notice("127.0.0.1:8080".parse().unwrap(), "local", &strict_loopback)
            .expect("loopback callers must sign: they need the key");
        assert!(notice.contains(strict_loopback.credentials().secret_access_key()));
        assert!(
            !notice.contains("reachable from other machines"),
            "{notice}"
        );

        let given = ManagementAccess::new(ManagementCredentials::new("AKIDGIVEN", "not-printed"))
            .trust_loopback(false);
        let notice = exposure_notice("192.168.1.20:8080".parse().unwrap(), "dev", &given)
            .expect("a LAN address is reachable");
        assert!(notice.contains("AKIDGIVEN") && notice.contains("/dev"));
        assert!(!notice.contains("not-printed"), "{notice}");
        assert!(!notice.contains("unsigned"), "{notice}");
    }
}
