//! A socket-free test harness: simulated clients driving a [`Router`] in microseconds.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use wsgw_core::{
    Authorization, ConnectionId, ConnectionStore, Error, MessageSink, Payload, Reply, Request,
    Router,
};

use crate::ids::{new_connection_id, random_id};
use crate::{MemorySink, MemoryStore};

/// Stage name the harness and the local gateway report.
pub const LOCAL_STAGE: &str = "local";

/// The message API Gateway sends a caller when the integration failed.
pub fn internal_error_message(connection_id: &ConnectionId, request_id: &str) -> Payload {
    Payload::text(
        serde_json::json!({
            "message": "Internal server error",
            "connectionId": connection_id.as_str(),
            "requestId": request_id,
        })
        .to_string(),
    )
}

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
    /// The authorizer or `$connect` handler failed (the client would see HTTP 500).
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

/// Runs a [`Router`] on [`MemoryStore`] and [`MemorySink`] and simulates its clients the
/// way API Gateway treats them: the authorizer and `$connect` decide the handshake, the
/// connection is reachable only afterwards, messages are routed by the selection
/// expression, two-way replies reach the caller, `$disconnect` runs on close, also when
/// a handler closes a connection through the sink.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use wsgw_core::{Context, Reply, Request, Router};
/// use wsgw_memory::Harness;
///
/// let harness = Harness::new(|store, sink| {
///     Router::new(store, sink).route("whoami", |_ctx: Context, request: Request| async move {
///         Reply::json(&serde_json::json!({ "connection_id": request.connection_id }))
///     })
/// });
/// let client = harness.connect().await.expect("connects");
/// client.send_json(&serde_json::json!({ "action": "whoami" })).await?;
/// assert_eq!(client.received_json()[0]["connection_id"], client.id().as_str());
/// # Ok(())
/// # }
/// ```
pub struct Harness<S = ()> {
    router: Router<S>,
    store: Arc<MemoryStore>,
    sink: Arc<MemorySink>,
}

impl<S> Clone for Harness<S> {
    fn clone(&self) -> Self {
        Harness {
            router: self.router.clone(),
            store: Arc::clone(&self.store),
            sink: Arc::clone(&self.sink),
        }
    }
}

impl<S: Send + Sync + 'static> Harness<S> {
    /// Builds the router over a fresh store and sink.
    pub fn new(
        build: impl FnOnce(Arc<dyn ConnectionStore>, Arc<dyn MessageSink>) -> Router<S>,
    ) -> Self {
        Self::with_sink(MemorySink::new(), build)
    }

    /// Like [`new`](Self::new) with a configured sink (for example a smaller payload limit).
    pub fn with_sink(
        sink: MemorySink,
        build: impl FnOnce(Arc<dyn ConnectionStore>, Arc<dyn MessageSink>) -> Router<S>,
    ) -> Self {
        let store = Arc::new(MemoryStore::new());
        let sink = Arc::new(sink);
        let router = build(store.clone(), sink.clone());
        Harness {
            router,
            store,
            sink,
        }
    }

    /// The store handlers write to.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The sink handlers send through.
    pub fn sink(&self) -> &MemorySink {
        &self.sink
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
        let mut request = Request::connect(id.clone())
            .with_endpoint("localhost", LOCAL_STAGE)
            .with_source_ip(source_ip.clone())
            .with_connected_at(connected_at);
        request.query = options.query;
        request.headers = options.headers;
        if let Some(user_agent) = options.user_agent.clone() {
            request = request.with_user_agent(user_agent);
        }
        let authorizer = match self.router.authorize(&request).await {
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
            .handle(request)
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
            let request = Request::disconnect(id, 1000, "").with_endpoint("localhost", LOCAL_STAGE);
            self.router.handle(request).await?;
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

    /// Sends a message (text or binary) as the client; returns the route's reply. Its
    /// body, if any, is delivered to this client as on a two-way route. A handler error
    /// is returned, and the client receives API Gateway's "Internal server error".
    pub async fn send(&self, body: impl Into<Payload>) -> wsgw_core::Result<Reply> {
        let harness = &self.harness;
        if !harness.sink.is_open(&self.id) {
            return Err(Error::Gone {
                connection_id: self.id.clone(),
            });
        }
        harness.sink.touch(&self.id);
        let message_id = random_id();
        let mut request = Request::message(self.id.clone(), body)
            .with_endpoint("localhost", LOCAL_STAGE)
            .with_source_ip(self.source_ip.clone())
            .with_connected_at(self.connected_at)
            .with_message_id(message_id.clone())
            .with_authorizer(self.authorizer.clone());
        if let Some(user_agent) = &self.user_agent {
            request = request.with_user_agent(user_agent.clone());
        }
        let outcome = harness.router.handle(request).await;
        match &outcome {
            Ok(reply) => {
                if let Some(body) = &reply.body {
                    harness.sink.record(&self.id, body.clone());
                }
            }
            Err(_) => {
                harness
                    .sink
                    .record(&self.id, internal_error_message(&self.id, &message_id));
            }
        }
        harness.settle_server_closes().await?;
        outcome
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
    /// `$disconnect` and returns its reply.
    pub async fn disconnect_with(self, status_code: u16, reason: &str) -> wsgw_core::Result<Reply> {
        self.harness.sink.remove(&self.id);
        let request = Request::disconnect(self.id.clone(), status_code, reason)
            .with_endpoint("localhost", LOCAL_STAGE)
            .with_connected_at(self.connected_at)
            .with_source_ip(self.source_ip.clone())
            .with_authorizer(self.authorizer.clone());
        self.harness.router.handle(request).await
    }

    /// Closes the connection normally (1000).
    pub async fn disconnect(self) -> wsgw_core::Result<Reply> {
        self.disconnect_with(1000, "").await
    }
}
