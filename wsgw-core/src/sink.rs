//! How messages reach connections.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ConnectionId, Payload, Result};

/// What the gateway knows about a live connection (the Management API's
/// `GET @connections/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// When the connection opened.
    pub connected_at: DateTime<Utc>,
    /// When it last sent or received a message.
    pub last_active_at: DateTime<Utc>,
    /// The client's address.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

impl ConnectionInfo {
    /// Info for a connection that opened at `connected_at` and has been idle since.
    pub fn new(
        connected_at: DateTime<Utc>,
        source_ip: Option<String>,
        user_agent: Option<String>,
    ) -> Self {
        ConnectionInfo {
            connected_at,
            last_active_at: connected_at,
            source_ip,
            user_agent,
        }
    }
}

/// Delivers messages to connections and manages them: API Gateway's Management API.
///
/// Errors to handle: [`Error::Gone`](crate::Error::Gone) (the connection is closed;
/// delete it from the store), [`Error::Throttled`](crate::Error::Throttled) (retry with
/// backoff) and [`Error::PayloadTooLarge`](crate::Error::PayloadTooLarge).
///
/// On AWS a connection is not open until its `$connect` handler has returned, so sending
/// to the connecting client from `$connect` fails with `Gone`. Send from a later route.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait MessageSink: Send + Sync + 'static {
    /// Sends one message to one connection.
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()>;

    /// What the gateway knows about the connection.
    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo>;

    /// Closes the connection; its `$disconnect` route runs afterwards.
    async fn disconnect(&self, id: &ConnectionId) -> Result<()>;
}

#[async_trait]
impl<T: MessageSink + ?Sized> MessageSink for Arc<T> {
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()> {
        (**self).send(id, payload).await
    }
    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        (**self).connection_info(id).await
    }
    async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        (**self).disconnect(id).await
    }
}
