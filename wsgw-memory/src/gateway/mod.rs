//! `LocalGateway`: API Gateway WebSocket APIs on a laptop (feature `gateway`).
//!
//! A real WebSocket server on tokio and axum that runs a [`Router`] in process with API
//! Gateway's semantics: `$connect` decides the handshake, messages are routed by the
//! selection expression, two-way replies reach the caller, `$disconnect` runs after every
//! close with the real close code, API Gateway's limits are enforced, and the Management
//! API (`POST`/`GET`/`DELETE /@connections/{id}`) answers on the same port exactly as
//! AWS does, so the real `aws-sdk-apigatewaymanagement` client works against it.
//!
//! `GET /metrics` answers with the router's counters (connects, disconnects, messages by
//! route, broadcast deliveries, Gone prunes, throttles, handler errors, a handler latency
//! histogram, open connections) in Prometheus's text format; see
//! [`LocalGateway::metrics_path`].

mod assets;
mod connection;
mod lambda_emulator;
pub mod lambda_function;
mod management;
mod metrics;
mod rest;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wsgw_core::metrics::{Counters, MetricsSnapshot};
use wsgw_core::{ConnectionStore, MessageSink, Router};

pub use assets::Assets;
pub use lambda_emulator::{Invocation, LambdaRuntimeEmulator, ManagementCall, ManagementRecorder};
pub use metrics::{render as render_prometheus, PROMETHEUS_CONTENT_TYPE};

use crate::{MemorySink, MemoryStore, DEFAULT_OUTBOX_CAPACITY, LOCAL_STAGE, MAX_PAYLOAD_BYTES};

/// Re-export of the axum version the gateway is built on, for [`LocalGateway::http_routes`].
pub use axum;

/// API Gateway's WebSocket limits, each configurable (small values make tests fast).
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
    /// Messages queued per connection before `@connections` posts answer 429.
    pub outbox_capacity: usize,
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

    /// Sets the per-connection outbox capacity.
    pub fn outbox_capacity(mut self, capacity: usize) -> Self {
        self.outbox_capacity = capacity.max(1);
        self
    }
}

/// Where [`LocalGateway`] serves its metrics unless told otherwise.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

struct Shared<S> {
    router: Router<S>,
    sockets: Arc<MemorySink>,
    limits: Limits,
    assets: Assets,
    counters: Arc<Counters>,
    metrics_path: Option<String>,
    default_stage: String,
    management_latency: Duration,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// A local stand-in for an API Gateway WebSocket API; see the [module docs](self).
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// use wsgw_core::{Context, Reply, Request, Router};
/// use wsgw_memory::gateway::LocalGateway;
///
/// let gateway = LocalGateway::build(|store, sink| {
///     Router::new(store, sink).route("ping", |_ctx: Context, _req: Request| async {
///         Ok(Reply::with_body("pong"))
///     })
/// });
/// let running = gateway.bind("127.0.0.1:8080".parse().unwrap()).await?;
/// println!("listening on {}", running.ws_url());
/// running.run_until_signal().await
/// # }
/// ```
pub struct LocalGateway<S = ()> {
    router: Router<S>,
    sockets: Arc<MemorySink>,
    limits: Limits,
    assets: Assets,
    http: Option<axum::Router>,
    counters: Arc<Counters>,
    metrics_path: Option<String>,
    default_stage: String,
    management_latency: Duration,
}

impl<S: Send + Sync + 'static> LocalGateway<S> {
    /// A gateway over a fresh [`MemoryStore`], with handlers sending through the gateway's
    /// own sink (deliveries go straight to the sockets).
    pub fn build(
        build: impl FnOnce(Arc<dyn ConnectionStore>, Arc<dyn MessageSink>) -> Router<S>,
    ) -> Self {
        let sockets = Arc::new(MemorySink::new());
        let router = build(Arc::new(MemoryStore::new()), sockets.clone());
        LocalGateway::new(router, sockets)
    }

    /// A gateway running `router` and delivering to sockets through `sockets`.
    ///
    /// The router may use `sockets` as its sink, or any other sink, such as
    /// `wsgw_aws::ApiGatewaySink` pointed at this gateway's own `@connections` endpoint.
    ///
    /// The gateway adds a [`Counters`] observer to the router (see
    /// [`Router::observe`]): that is what `GET /metrics` shows.
    pub fn new(router: Router<S>, sockets: Arc<MemorySink>) -> Self {
        let counters = Arc::new(Counters::new());
        LocalGateway {
            router: router.observe(counters.clone()),
            sockets,
            limits: Limits::default(),
            assets: Assets::new(),
            http: None,
            counters,
            metrics_path: Some(DEFAULT_METRICS_PATH.to_owned()),
            default_stage: LOCAL_STAGE.to_owned(),
            management_latency: Duration::ZERO,
        }
    }

    /// Where `GET` answers with the metrics in Prometheus's text format (default
    /// [`DEFAULT_METRICS_PATH`]); `None` turns the endpoint off. A REST route of the
    /// router on the same path wins; a WebSocket upgrade there still opens a connection
    /// on that stage.
    pub fn metrics_path(mut self, path: Option<&str>) -> Self {
        self.metrics_path = path.map(str::to_owned);
        self
    }

    /// The counters `GET /metrics` shows, live.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
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

    /// The stage reported for connections on `ws://HOST/` (default `local`).
    pub fn default_stage(mut self, stage: impl Into<String>) -> Self {
        self.default_stage = stage.into();
        self
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
    /// let gateway = LocalGateway::build(Router::new)
    ///     .management_latency(Duration::from_millis(5));
    /// # drop(gateway);
    /// ```
    pub fn management_latency(mut self, latency: Duration) -> Self {
        self.management_latency = latency;
        self
    }

    /// The sink that delivers to this gateway's sockets.
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
        let shared = Arc::new(Shared {
            router: self.router,
            sockets: self.sockets,
            limits: self.limits,
            assets: self.assets,
            counters: self.counters.clone(),
            metrics_path: self.metrics_path,
            default_stage: self.default_stage,
            management_latency: self.management_latency,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        });
        let gateway_routes = axum::Router::new()
            .route("/@connections/{id}", any(management::default_stage))
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
        let serve_shutdown = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { serve_shutdown.cancelled().await })
            .await
        });
        tracing::info!(%local_addr, "local gateway listening");
        Ok(RunningGateway {
            local_addr,
            shutdown,
            tracker,
            server,
            counters: self.counters,
            default_stage: shared.default_stage.clone(),
        })
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
    default_stage: String,
}

impl RunningGateway {
    /// What `GET /metrics` shows, as data.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.counters.snapshot()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://ADDR` for clients.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// `http://ADDR/STAGE`, the endpoint to give a Management API client.
    pub fn management_endpoint(&self) -> String {
        format!("http://{}/{}", self.local_addr, self.default_stage)
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
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down: closing every connection with 1001");
        self.shutdown().await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

type UpgradeResult =
    Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

async fn upgrade_root<S: Send + Sync + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: UpgradeResult,
) -> Response {
    let stage = shared.default_stage.clone();
    route_get(shared, peer, stage, uri, headers, upgrade).await
}

async fn upgrade_staged<S: Send + Sync + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: UpgradeResult,
) -> Response {
    route_get(shared, peer, stage, uri, headers, upgrade).await
}

async fn route_get<S: Send + Sync + 'static>(
    shared: Arc<Shared<S>>,
    peer: SocketAddr,
    stage: String,
    uri: Uri,
    headers: HeaderMap,
    upgrade: UpgradeResult,
) -> Response {
    match upgrade {
        Ok(upgrade) => connection::handshake(shared, peer, stage, uri, headers, upgrade).await,
        // A plain GET of `/` or `/{name}` is a REST route or a file, not a stage.
        Err(_) => serve_plain(&shared, Method::GET, &uri, &headers, Bytes::new()).await,
    }
}

async fn fallback<S: Send + Sync + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_plain(&shared, method, &uri, &headers, body).await
}

/// Plain HTTP: the router's REST routes first, then the metrics, then static assets.
async fn serve_plain<S: Send + Sync + 'static>(
    shared: &Shared<S>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if shared.router.has_http_route(uri.path()) {
        return rest::respond(shared, method, uri, headers, body).await;
    }
    if shared.metrics_path.as_deref() == Some(uri.path()) && method == Method::GET {
        return metrics::respond(
            &shared.counters.snapshot(),
            shared.sockets.open_connections().len(),
        );
    }
    if method == Method::GET || method == Method::HEAD {
        shared.assets.respond(uri.path())
    } else {
        (StatusCode::NOT_FOUND, "no such route\n").into_response()
    }
}
