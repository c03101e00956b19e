//! A socket-free test harness: simulated clients driving a [`Router`] in microseconds.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use wsgw_core::{
    Authorization, Backends, ConnectionId, ConnectionStore, Error, GatewayError, HistoryStore,
    Payload, Reply, Request, Router,
};

use crate::ids::{new_api_id, new_connection_id, random_id};
use crate::{MemoryHistory, MemorySink, MemoryStore};

/// Stage name the harness and the local gateway report.
pub const LOCAL_STAGE: &str = "local";

/// The domain name the harness reports (`requestContext.domainName`).
const HARNESS_DOMAIN: &str = "localhost";

/// The close code API Gateway closes a connection with when its client sends a binary
/// frame: 1003 (unsupported data).
pub(crate) const UNSUPPORTED_DATA: u16 = 1003;

/// The close reason sent with [`UNSUPPORTED_DATA`].
pub(crate) const BINARY_FRAME_REASON: &str = "Binary frames are not supported";

/// Why [`Harness::connect`] did not open a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The authorizer or `$connect` refused the handshake with this HTTP status.
    #[error("handshake refused with HTTP {status}")]
    Refused {
        /// The status the client would see.
        status: u16,
        /// The `$connect` reply, when a handler produced one.
        reply: Option<Reply>,
    },
    /// The authorizer or `$connect` handler failed (the client would see HTTP 500 for a
    /// failed authorizer, 502 for a failed `$connect` integration, as on AWS).
    #[error("$connect failed: {0}")]
    Failed(#[source] Error),
}

/// How a simulated client connects: query string, headers, address.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    source_ip: Option<String>,
    user_agent: Option<String>,
}

impl ConnectOptions {
    /// No query string or headers, address 127.0.0.1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a query string parameter.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.insert(name.into(), value.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// Sets the client address.
    pub fn source_ip(mut self, ip: impl Into<String>) -> Self {
        self.source_ip = Some(ip.into());
        self
    }

    /// Sets the user agent.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }
}

/// Runs a [`Router`] on in-memory backends ([`MemoryStore`], [`MemorySink`],
/// [`MemoryHistory`]; `with_*` swaps them) and simulates its clients the way API Gateway
/// treats them: the authorizer and `$connect` decide the handshake, the connection is
/// reachable only afterwards, messages are routed by the selection expression, only
/// two-way routes' reply bodies reach the caller, a rejection's error frame reaches the
/// caller, a failed handler's caller gets API Gateway's `Internal server error` frame, a
/// binary frame closes the connection with 1003, `$disconnect` runs on close, also when a
/// handler closes a connection through the sink. Each event carries a request id and the
/// harness's API id in API Gateway's formats.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use wsgw_core::{Context, Json, Request, Router};
/// use wsgw_memory::Harness;
///
/// let router = Router::new().two_way_route("whoami", |_ctx: Context, request: Request| async move {
///     Ok(Json(serde_json::json!({ "connection_id": request.connection_id })))
/// });
/// let harness = Harness::new(router);
/// let client = harness.connect().await.expect("connects");
/// client.send_json(&serde_json::json!({ "action": "whoami" })).await?;
/// assert_eq!(client.received_json()[0]["connection_id"], client.id().as_str());
/// # Ok(())
/// # }
/// ```
pub struct Harness<S = ()> {
    router: Router<S>,
    sink: Arc<MemorySink>,
    backends: Backends,
    api_id: Arc<str>,
}

impl<S> Clone for Harness<S> {
    fn clone(&self) -> Self {
        Harness {
            router: self.router.clone(),
            sink: Arc::clone(&self.sink),
            backends: self.backends.clone(),
            api_id: Arc::clone(&self.api_id),
        }
    }
}

impl<S: Send + Sync + 'static> Harness<S> {
    /// Serves `router` on a fresh [`MemoryStore`], [`MemorySink`] and [`MemoryHistory`].
    pub fn new(router: Router<S>) -> Self {
        let sink = Arc::new(MemorySink::new());
        let backends = Backends::new(Arc::new(MemoryStore::new()), sink.clone())
            .with_history(Arc::new(MemoryHistory::new()));
        Harness {
            router,
            sink,
            backends,
            api_id: Arc::from(new_api_id()),
        }
    }

    /// The same harness on another store (a DynamoDB one, a store injecting faults).
    pub fn with_store(mut self, store: Arc<dyn ConnectionStore>) -> Self {
        self.backends = self.backends.with_store(store);
        self
    }

    /// The same harness on another history store.
    pub fn with_history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.backends = self.backends.with_history(history);
        self
    }

    /// The same harness on a configured sink (for example a smaller payload limit).
    pub fn with_sink(mut self, sink: MemorySink) -> Self {
        self.sink = Arc::new(sink);
        self.backends = self.backends.with_sink(self.sink.clone());
        self
    }

    /// The API id every event reports (`requestContext.apiId`), made up per harness.
    pub fn api_id(&self) -> &str {
        &self.api_id
    }

    /// A request as API Gateway would send it for this harness: endpoint, API id and a
    /// fresh request id.
    fn event(&self, request: Request) -> Request {
        request
            .with_endpoint(HARNESS_DOMAIN, LOCAL_STAGE)
            .with_api_id(&*self.api_id)
            .with_request_id(random_id())
    }

    /// The store handlers write to.
    pub fn store(&self) -> &dyn ConnectionStore {
        &**self.backends.store()
    }

    /// The history handlers write to.
    pub fn history(&self) -> &dyn HistoryStore {
        &**self.backends.history()
    }

    /// The sink handlers send through.
    pub fn sink(&self) -> &MemorySink {
        &self.sink
    }

    /// The backends every event is handled with (for driving the router directly:
    /// `harness.router().handle(harness.backends(), request)`).
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The router under test.
    pub fn router(&self) -> &Router<S> {
        &self.router
    }

    /// Connects a client with no query string or headers.
    pub async fn connect(&self) -> Result<TestClient<S>, ConnectError> {
        self.connect_with(ConnectOptions::new()).await
    }

    /// Connects a client: runs the authorizer and `$connect`, then registers it.
    pub async fn connect_with(
        &self,
        options: ConnectOptions,
    ) -> Result<TestClient<S>, ConnectError> {
        let id = new_connection_id();
        let connected_at = Utc::now();
        let source_ip = options.source_ip.unwrap_or_else(|| "127.0.0.1".to_owned());
        let mut request = self
            .event(Request::connect(id.clone()))
            .with_source_ip(source_ip.clone())
            .with_connected_at(connected_at);
        request.query = options.query;
        request.headers = options.headers;
        if let Some(user_agent) = options.user_agent.clone() {
            request = request.with_user_agent(user_agent);
        }
        let authorizer = match self.router.authorize(&self.backends, &request).await {
            Ok(Authorization::Allow(context)) => context,
            Ok(Authorization::Deny(status)) => {
                return Err(ConnectError::Refused {
                    status,
                    reply: None,
                })
            }
            Err(error) => return Err(ConnectError::Failed(error)),
        };
        let request = request.with_authorizer(authorizer.clone());
        let reply = self
            .router
            .handle(&self.backends, request)
            .await
            .map_err(ConnectError::Failed)?;
        if reply.is_rejection() {
            return Err(ConnectError::Refused {
                status: reply.status,
                reply: Some(reply),
            });
        }
        self.sink
            .open(&id, Some(source_ip.clone()), options.user_agent.clone());
        Ok(TestClient {
            id,
            harness: self.clone(),
            authorizer,
            connected_at,
            source_ip,
            user_agent: options.user_agent,
        })
    }

    /// Runs `$disconnect` for every connection a handler closed through the sink.
    async fn settle_server_closes(&self) -> wsgw_core::Result<()> {
        for id in self.sink.take_closed_by_server() {
            let request = self.event(Request::disconnect(id, 1000, ""));
            self.router.handle(&self.backends, request).await?;
        }
        Ok(())
    }
}

/// A simulated client of a [`Harness`].
pub struct TestClient<S = ()> {
    id: ConnectionId,
    harness: Harness<S>,
    authorizer: Value,
    connected_at: chrono::DateTime<Utc>,
    source_ip: String,
    user_agent: Option<String>,
}

impl<S: Send + Sync + 'static> TestClient<S> {
    /// The connection id API Gateway would have given it.
    pub fn id(&self) -> &ConnectionId {
        &self.id
    }

    /// Sends a message as the client, as API Gateway treats it; returns the route's
    /// reply.
    ///
    /// - A text message is routed. The reply's body is delivered to this client only
    ///   from a two-way route (the router drops it on a one-way route). A handler's
    ///   rejection reaches the client as its error frame and the reply is a plain 200. A
    ///   handler error is returned, and the client receives API Gateway's `Internal
    ///   server error` frame ([`GatewayError::InternalServerError`]).
    /// - A binary message is refused as API Gateway refuses binary frames: the
    ///   connection is closed with 1003, `$disconnect` runs with that code, and
    ///   [`Error::InvalidInput`] is returned; no handler sees the message. Send binary
    ///   data as base64 in a text message instead.
    pub async fn send(&self, body: impl Into<Payload>) -> wsgw_core::Result<Reply> {
        let harness = &self.harness;
        if !harness.sink.is_open(&self.id) {
            return Err(Error::Gone {
                connection_id: self.id.clone(),
            });
        }
        let body = body.into();
        if !body.is_text() {
            if harness.sink.close_recorded(&self.id) {
                self.run_disconnect(UNSUPPORTED_DATA, BINARY_FRAME_REASON)
                    .await?;
            }
            return Err(Error::invalid_input(format!(
                "API Gateway does not accept binary frames from clients: connection {} was closed with {UNSUPPORTED_DATA} ({BINARY_FRAME_REASON}); send binary data as base64 in a text message",
                self.id
            )));
        }
        harness.sink.touch(&self.id);
        let mut request = self
            .event(Request::message(self.id.clone(), body))
            .with_message_id(random_id());
        let request_id = request.request_id.clone();
        if let Some(user_agent) = &self.user_agent {
            request = request.with_user_agent(user_agent.clone());
        }
        let outcome = harness.router.handle(&harness.backends, request).await;
        match &outcome {
            Ok(reply) => {
                if let Some(body) = &reply.body {
                    harness.sink.record(&self.id, body.clone());
                }
            }
            Err(_) => {
                let frame = GatewayError::InternalServerError.frame(&self.id, &request_id);
                harness.sink.record(&self.id, frame);
            }
        }
        harness.settle_server_closes().await?;
        outcome
    }

    /// An event of this connection: the harness's endpoint, API id and a fresh request
    /// id, and what `$connect` learned about the client.
    fn event(&self, request: Request) -> Request {
        self.harness
            .event(request)
            .with_source_ip(self.source_ip.clone())
            .with_connected_at(self.connected_at)
            .with_authorizer(self.authorizer.clone())
    }

    async fn run_disconnect(&self, status_code: u16, reason: &str) -> wsgw_core::Result<Reply> {
        let request = self.event(Request::disconnect(self.id.clone(), status_code, reason));
        self.harness
            .router
            .handle(&self.harness.backends, request)
            .await
    }

    /// Sends `value` as a JSON text message.
    pub async fn send_json(&self, value: &Value) -> wsgw_core::Result<Reply> {
        self.send(Payload::text(value.to_string())).await
    }

    /// Takes every message this client received since the last call, oldest first.
    pub fn received(&self) -> Vec<Payload> {
        self.harness.sink.take_sent(&self.id)
    }

    /// Takes every message received, parsed as JSON (`Value::Null` for non-JSON ones).
    pub fn received_json(&self) -> Vec<Value> {
        self.received()
            .iter()
            .map(|payload| {
                payload
                    .as_text()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or(Value::Null)
            })
            .collect()
    }

    /// Whether the connection is still open (a handler may have closed it).
    pub fn is_open(&self) -> bool {
        self.harness.sink.is_open(&self.id)
    }

    /// Closes the connection from the client side with a close code and reason; runs
    /// `$disconnect` and returns its reply. A connection the server closed already (a
    /// handler through the sink, a binary frame) had its `$disconnect` then: it does not
    /// run twice, and the reply is a plain 200.
    pub async fn disconnect_with(self, status_code: u16, reason: &str) -> wsgw_core::Result<Reply> {
        let was_open = self.harness.sink.is_open(&self.id);
        self.harness.sink.remove(&self.id);
        if !was_open {
            return Ok(Reply::ok());
        }
        self.run_disconnect(status_code, reason).await
    }

    /// Closes the connection normally (1000).
    pub async fn disconnect(self) -> wsgw_core::Result<Reply> {
        self.disconnect_with(1000, "").await
    }
}
