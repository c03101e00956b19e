//! The chat's application state: its histories, its limits, and the records it keeps.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use wsgw_core::connection_log::{append_event, ConnectionRecord};
use wsgw_core::{ConnectionId, HistoryStore};

use crate::ChatMessage;

/// How long messages, session records and events are kept by default: 30 days.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// History partition of the session records (one per connection).
pub const SESSIONS_PARTITION: &str = "sessions";
/// History partition of the chat messages.
pub const MESSAGES_PARTITION: &str = "messages";
/// History partition of the audit log (connect, disconnect, message and error events).
pub const EVENTS_PARTITION: &str = "events";

/// Limits and retention. The defaults are the documented protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Largest chat message in UTF-8 bytes: 4096 (4 KB).
    pub max_message_bytes: usize,
    /// Most sessions one message may address: 100.
    pub max_session_ids: usize,
    /// Longest session id, in characters: 128.
    pub max_session_id_chars: usize,
    /// Longest display name, in characters: 64.
    pub max_name_chars: usize,
    /// Messages a `history` request returns without a `limit`: 50.
    pub default_history: usize,
    /// Largest `limit` of a `history` request: 200.
    pub max_history: usize,
    /// Most stored messages one `history` request reads while skipping messages
    /// addressed to other sessions: 2000. Keeps every request's cost bounded.
    pub history_scan_limit: usize,
    /// How long messages, session records and events are kept:
    /// [`DEFAULT_RETENTION_DAYS`] (30 days) by default; `None` keeps them until deleted.
    /// On DynamoDB this becomes the items' TTL.
    pub retention: Option<Duration>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_message_bytes: 4096,
            max_session_ids: 100,
            max_session_id_chars: 128,
            max_name_chars: 64,
            default_history: 50,
            max_history: 200,
            history_scan_limit: 2000,
            retention: Some(days(DEFAULT_RETENTION_DAYS)),
        }
    }
}

fn days(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 24 * 60 * 60)
}

impl ChatConfig {
    /// Sets the retention of every record.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Sets the retention in days, as `--retention-days` and `CHAT_RETENTION_DAYS` give
    /// it: `0` keeps records until deleted.
    ///
    /// ```
    /// use chat::ChatConfig;
    ///
    /// let week = ChatConfig::default().retention_days(7);
    /// assert_eq!(week.retention.map(|r| r.as_secs()), Some(7 * 86_400));
    /// assert_eq!(ChatConfig::default().retention_days(0).retention, None);
    /// assert_eq!(ChatConfig::default().retention.map(|r| r.as_secs()), Some(30 * 86_400));
    /// ```
    pub fn retention_days(self, retention_days: u32) -> Self {
        self.retention((retention_days > 0).then(|| days(retention_days)))
    }

    /// Sets the largest chat message in bytes.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets the most sessions one message may address.
    pub fn max_session_ids(mut self, count: usize) -> Self {
        self.max_session_ids = count.max(1);
        self
    }

    /// Sets the most stored messages one `history` request reads.
    pub fn history_scan_limit(mut self, records: usize) -> Self {
        self.history_scan_limit = records.max(1);
        self
    }
}

/// What the chat's handlers share: the limits and retention. Session records, messages
/// and audit events go to the history store the chat is served with
/// ([`Context::history`](wsgw_core::Context::history)), under the
/// [`SESSIONS_PARTITION`], [`MESSAGES_PARTITION`] and [`EVENTS_PARTITION`].
///
/// ```
/// use chat::{ChatConfig, ChatState};
///
/// let state = ChatState::new().with_config(ChatConfig::default().max_message_bytes(1024));
/// assert_eq!(state.config().max_message_bytes, 1024);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ChatState {
    config: ChatConfig,
}

impl ChatState {
    /// The documented limits and a 30-day retention.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the limits and retention.
    pub fn with_config(mut self, config: ChatConfig) -> Self {
        self.config = config;
        self
    }

    /// The limits and retention.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// Appends an audit event to the [`EVENTS_PARTITION`] of `history`, kept for the
    /// retention; a failure is logged, not returned ([`append_event`]).
    pub(crate) async fn log_event(
        &self,
        history: &dyn HistoryStore,
        time: DateTime<Utc>,
        event: AuditEvent,
    ) {
        append_event(
            history,
            EVENTS_PARTITION,
            time,
            &event,
            self.config.retention,
        )
        .await
    }
}

/// One connection's session record, in the [`SESSIONS_PARTITION`] keyed by
/// `(connected_at, connection_id)`: written on `$connect`, completed on `$disconnect`
/// (address, `User-Agent`, duration and close code as every connection's log has them,
/// [`ConnectionRecord`]), with the chat's [`ChatSession`] fields.
pub type SessionRecord = ConnectionRecord<ChatSession>;

/// Who a connection is: what the chat adds to its [`SessionRecord`], and its attributes
/// in the connection store (`session_id`, and `name` when it gave one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSession {
    /// Its session (the `session_id` it connected with, or its connection id).
    pub session_id: String,
    /// The display name it connected with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatSession {
    /// The session of a connection nothing is known of: its own, without a name.
    pub(crate) fn unnamed(id: &ConnectionId) -> Self {
        ChatSession {
            session_id: id.to_string(),
            name: None,
        }
    }
}

/// A chat message as stored in the [`MESSAGES_PARTITION`], keyed by `(timestamp,
/// message_id)`: the [`ChatMessage`] clients receive, and beside its fields in the same
/// JSON object the sender's connection id, which clients are not sent. Its fields read
/// through to the message's (`stored.message_id`).
///
/// ```
/// use chat::StoredMessage;
/// use serde_json::json;
///
/// // A record as every version wrote it (one without a name may lack `name`).
/// let record = json!({"message_id": "1-a", "connection_id": "c1", "session_id": "s1",
///     "message": "hi", "timestamp": "2026-11-22T09:15:02.113Z", "session_ids": ["s2"]});
/// let stored: StoredMessage = serde_json::from_value(record.clone())?;
/// assert_eq!((stored.connection_id.as_str(), stored.message.as_str()), ("c1", "hi"));
/// assert_eq!(stored.name, None);
/// let mut written = serde_json::to_value(&stored)?;
/// assert_eq!(written["name"], json!(null));
/// written.as_object_mut().unwrap().remove("name");
/// assert_eq!(written, record, "the same fields, in one object");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The sender's connection id.
    pub connection_id: String,
    /// The message as clients receive it.
    #[serde(flatten)]
    pub sent: ChatMessage,
}

impl std::ops::Deref for StoredMessage {
    type Target = ChatMessage;

    fn deref(&self) -> &ChatMessage {
        &self.sent
    }
}

impl StoredMessage {
    /// Whether a connection of `session_id` may read it: messages to everyone, messages
    /// addressed to its session, and messages its own session sent.
    pub fn visible_to(&self, session_id: &str, connection_id: &str) -> bool {
        match &self.session_ids {
            None => true,
            Some(targets) => {
                targets.iter().any(|target| target == session_id)
                    || self.session_id == session_id
                    || self.connection_id == connection_id
            }
        }
    }
}

/// One entry of the audit log ([`EVENTS_PARTITION`]): what happened, to which
/// connection, when (RFC 3339 UTC). Serialised with an `event` field naming the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A client connected.
    Connect {
        /// The connection.
        connection_id: String,
        /// Its session.
        session_id: String,
        /// Its display name.
        name: Option<String>,
        /// Its address.
        source_ip: Option<String>,
        /// When.
        timestamp: String,
    },
    /// A client disconnected (or its connection was found gone).
    Disconnect {
        /// The connection.
        connection_id: String,
        /// Its session, when known.
        session_id: Option<String>,
        /// Whole seconds it was connected, when known.
        duration_seconds: Option<i64>,
        /// The WebSocket close code.
        close_code: Option<u16>,
        /// When.
        timestamp: String,
    },
    /// A chat message was sent.
    Message {
        /// The sender's connection.
        connection_id: String,
        /// The sender's session.
        session_id: String,
        /// The message.
        message_id: String,
        /// The sessions addressed; absent for everyone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_ids: Option<Vec<String>>,
        /// Connections reached.
        delivered: usize,
        /// Gone connections removed from the store.
        pruned: usize,
        /// Connections not reached for another reason.
        failed: usize,
        /// When.
        timestamp: String,
    },
    /// A client's request was refused (bad input, unknown action, refused connect).
    Error {
        /// The connection.
        connection_id: String,
        /// The route (`sendmessage`, `$default`, `$connect` ...).
        route: String,
        /// The action the client named, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<String>,
        /// The error code sent to the client.
        error: String,
        /// The detail sent to the client.
        detail: String,
        /// When.
        timestamp: String,
    },
}
