//! The backends a router is served on: given where it is served, per request.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    AttributeUpdate, Connection, ConnectionId, ConnectionInfo, ConnectionStore, Error,
    HistoryQuery, HistoryRecord, HistoryStore, MessageSink, Page, PageRequest, Payload, Result,
};

/// The store, the sink and the history a request is handled with.
///
/// A [`Router`](crate::Router) holds routes, not backends: whoever serves it gives them,
/// for each request. The `Harness` and the LocalGateway (`wsgw-memory`) give in-memory
/// ones, the Lambda glue and `invoke` (`wsgw-aws`) DynamoDB and the Management API, with
/// the sink bound to the request's own endpoint. Handlers reach them through the
/// [`Context`](crate::Context). Cheap to clone (three `Arc`s).
///
/// A backend that was not given is [`NotConfigured`]: using it is an error naming what
/// to configure, so a system that never touches its history needs none.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use wsgw_core::{Backends, ConnectionId, HistoryQuery, MockConnectionStore, MockMessageSink};
///
/// let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
/// let error = backends.history().query(HistoryQuery::new("room")).await.unwrap_err();
/// assert!(error.to_string().contains("no history store"), "{error}");
/// # }
/// ```
#[derive(Clone)]
pub struct Backends {
    store: Arc<dyn ConnectionStore>,
    sink: Arc<dyn MessageSink>,
    history: Arc<dyn HistoryStore>,
}

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends").finish_non_exhaustive()
    }
}

impl Backends {
    /// A store and a sink; no history store.
    pub fn new(store: Arc<dyn ConnectionStore>, sink: Arc<dyn MessageSink>) -> Self {
        Backends {
            store,
            sink,
            history: Arc::new(NotConfigured::new(
                "history store",
                "give one where the router is served (Harness::with_history, LocalGateway::with_history, LambdaApp::with_history)",
            )),
        }
    }

    /// The same backends with another store.
    pub fn with_store(mut self, store: Arc<dyn ConnectionStore>) -> Self {
        self.store = store;
        self
    }

    /// The same backends with another sink (a request's own endpoint).
    pub fn with_sink(mut self, sink: Arc<dyn MessageSink>) -> Self {
        self.sink = sink;
        self
    }

    /// The same backends with a history store.
    pub fn with_history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.history = history;
        self
    }

    /// The connection store.
    pub fn store(&self) -> &Arc<dyn ConnectionStore> {
        &self.store
    }

    /// The message sink.
    pub fn sink(&self) -> &Arc<dyn MessageSink> {
        &self.sink
    }

    /// The history store.
    pub fn history(&self) -> &Arc<dyn HistoryStore> {
        &self.history
    }
}

/// A backend that was not given: every call fails with an
/// [`Error::Backend`] saying which backend is missing and how to give one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use wsgw_core::{ConnectionId, ConnectionStore, NotConfigured};
///
/// let store = NotConfigured::new("connection store", "set WSGW_CONNECTIONS_TABLE");
/// let error = store.get(&ConnectionId::new("a=")).await.unwrap_err();
/// assert_eq!(error.to_string(), "connection store: no connection store is configured: set WSGW_CONNECTIONS_TABLE");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct NotConfigured {
    what: &'static str,
    how: String,
}

impl NotConfigured {
    /// `what` is missing (`"connection store"`); `how` says how to give it.
    pub fn new(what: &'static str, how: impl Into<String>) -> Self {
        NotConfigured {
            what,
            how: how.into(),
        }
    }

    fn fail<T>(&self) -> Result<T> {
        Err(Error::backend(
            self.what,
            format!("no {} is configured: {}", self.what, self.how),
            None,
        ))
    }
}

#[async_trait]
impl ConnectionStore for NotConfigured {
    async fn put(&self, _connection: Connection) -> Result<()> {
        self.fail()
    }
    async fn get(&self, _id: &ConnectionId) -> Result<Option<Connection>> {
        self.fail()
    }
    async fn delete(&self, _id: &ConnectionId) -> Result<Option<Connection>> {
        self.fail()
    }
    async fn update_attributes(
        &self,
        _id: &ConnectionId,
        _update: AttributeUpdate,
    ) -> Result<Connection> {
        self.fail()
    }
    async fn add_to_group(&self, _id: &ConnectionId, _group: &str) -> Result<()> {
        self.fail()
    }
    async fn remove_from_group(&self, _id: &ConnectionId, _group: &str) -> Result<()> {
        self.fail()
    }
    async fn list_group(&self, _group: &str, _page: PageRequest) -> Result<Page<ConnectionId>> {
        self.fail()
    }
    async fn list_all(&self, _page: PageRequest) -> Result<Page<Connection>> {
        self.fail()
    }
}

#[async_trait]
impl MessageSink for NotConfigured {
    async fn send(&self, _id: &ConnectionId, _payload: Payload) -> Result<()> {
        self.fail()
    }
    async fn connection_info(&self, _id: &ConnectionId) -> Result<ConnectionInfo> {
        self.fail()
    }
    async fn disconnect(&self, _id: &ConnectionId) -> Result<()> {
        self.fail()
    }
}

#[async_trait]
impl HistoryStore for NotConfigured {
    async fn append(&self, _record: HistoryRecord) -> Result<()> {
        self.fail()
    }
    async fn query(&self, _query: HistoryQuery) -> Result<Page<HistoryRecord>> {
        self.fail()
    }
}
