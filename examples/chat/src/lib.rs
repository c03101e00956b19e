//! # chat — a chat with a session hub and an audit log, on wsgw
//!
//! Clients connect over WebSocket, optionally naming a session and a display name; a
//! message goes to every connected client, or only to the connections of chosen
//! sessions. Sessions, messages and every event are kept in history. The same
//! [`router`] runs on AWS (API Gateway WebSocket API + Lambda + DynamoDB) and locally on
//! the in-memory backend behind the LocalGateway, which also serves the web page
//! ([`INDEX_HTML`]).
//!
//! ## Protocol
//!
//! Connect to `ws://HOST/?session_id=S&name=N`; both parameters are optional
//! (`session_id` defaults to the connection id, an empty value counts as absent). A
//! session id has 1–128 characters without whitespace or control characters, a name at
//! most 64 characters: anything else refuses the handshake with HTTP 400.
//!
//! With auth on (a JWT authorizer), the session is the token's principal (`sub`): a
//! `session_id` naming another session refuses the handshake with HTTP 403, and the
//! name is the token's `name` claim (else `sub`). Only then are sessions, and messages
//! addressed to them, private: without auth a session id is an address anyone may
//! connect with, and every message shows its sender's.
//!
//! Frames are JSON text; the route is selected by `$request.body.action`. Every answer
//! is a JSON object with a `type` ([`Outgoing`]); timestamps are RFC 3339 UTC with
//! milliseconds.
//!
//! | the client sends | who receives what |
//! |---|---|
//! | `{"action":"sendmessage","message":"hi"}` | every connected client, the sender included: `{"type":"message","message_id":"…","session_id":"<sender's session>","name":"…"\|null,"message":"hi","timestamp":"…"}` (no connection id: see the CHANGELOG) |
//! | `{"action":"sendmessage","message":"hi","session_ids":["s1","s2"]}` | only the connections of `s1` and `s2` get the message (with `"session_ids":["s1","s2"]` added); the sender gets `{"type":"sent","message_id":"…","delivered":N}` |
//! | `{"action":"history","limit":50}` | the sender: `{"type":"history","messages":[…]}`, the most recent messages it may see, oldest first (`limit` 1–200, default 50) |
//! | `{"action":"heartbeat"}` | the sender: `{"type":"heartbeat"}` |
//! | anything else | the sender: `{"type":"error","error":"unknown_action","detail":"…","available":["sendmessage","history","heartbeat"]}` |
//!
//! Invalid input is answered to the sender with `{"type":"error","error":"<code>",
//! "detail":"…"}` ([`ErrorCode`]) and the connection stays open: `invalid_json`,
//! `missing_field`, `invalid_type`, `empty_message`, `message_too_large` (over 4096
//! bytes), `invalid_session_ids` (not a non-empty array of at most 100 valid session
//! ids), `invalid_limit`.
//!
//! A message addressed to sessions is private to them: `history` shows it only to
//! connections of those sessions and of the sender's session.
//!
//! ## What is kept
//!
//! - **Connections** ([`ConnectionStore`](wsgw_core::ConnectionStore)): each in the
//!   group `session:<session_id>` ([`session_group`]) and in [`ALL_GROUP`], with
//!   `session_id` and `name` attributes ([`ChatSession`]), so "everyone" and "these sessions" are group
//!   queries, never scans. Messages go out with the context's broadcast: gone
//!   connections are pruned, the rest still delivered, a connection of several
//!   addressed sessions gets it once.
//! - **Session history** ([`SESSIONS_PARTITION`]): a [`SessionRecord`] per connection
//!   (`connection_id`, `session_id`, `source_ip`, `connected_at`), completed on
//!   `$disconnect` with `disconnected_at`, `duration_seconds` and the close code.
//! - **Message history** ([`MESSAGES_PARTITION`]): a [`StoredMessage`] per message
//!   (`message_id`, `connection_id`, `message`, `timestamp`, sender session and name).
//! - **Audit log** ([`EVENTS_PARTITION`]): an [`AuditEvent`] for every connect,
//!   disconnect, message and refused request, with connection id and time.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wsgw_core::Result<()> {
//! use serde_json::json;
//! use wsgw_memory::{ConnectOptions, Harness};
//!
//! let harness = Harness::new(chat::router(chat::ChatState::new()));
//! let ada = harness.connect_with(ConnectOptions::new().query("session_id", "s1").query("name", "ada")).await.expect("connects");
//! let bob = harness.connect_with(ConnectOptions::new().query("session_id", "s2")).await.expect("connects");
//!
//! ada.send_json(&json!({"action": "sendmessage", "message": "hi bob", "session_ids": ["s2"]})).await?;
//! let received = bob.received_json();
//! assert_eq!(received[0]["message"], "hi bob");
//! assert_eq!(received[0]["name"], "ada");
//! assert_eq!(ada.received_json()[0]["type"], "sent");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod handlers;
pub mod protocol;
mod state;

use wsgw_core::{RouteSelection, Router};

pub use protocol::{ChatMessage, ErrorCode, Outgoing, ACTIONS, HEARTBEAT, HISTORY, SENDMESSAGE};
pub use state::{
    AuditEvent, ChatConfig, ChatSession, ChatState, SessionRecord, StoredMessage,
    DEFAULT_RETENTION_DAYS, EVENTS_PARTITION, MESSAGES_PARTITION, SESSIONS_PARTITION,
};

/// The route selection expression of the chat.
pub const ROUTE_SELECTION: &str = "$request.body.action";

/// The group every connected client is in: "everyone" is a group query.
pub const ALL_GROUP: &str = "chat:all";

/// The web page, served at `/` by the local binary; deployable to any static host.
pub const INDEX_HTML: &str = include_str!("../web/index.html");

/// The group of a session's connections: `session:<session_id>`.
pub fn session_group(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// The chat's router with `state`'s limits. It keeps connections in the store and
/// session records, messages and events in the history store it is served with.
///
/// Routes: `$connect`, `$disconnect`, [`SENDMESSAGE`], [`HISTORY`], [`HEARTBEAT`] and
/// `$default`, selected by [`ROUTE_SELECTION`]; see the [crate documentation](crate) for
/// the protocol. Every answer goes through the sink (no two-way route responses), so the
/// API Gateway routes need no route responses. With auth on, the router's `$connect`
/// authorizer is a JWT one ([`JwtSettings`](wsgw_core::auth::JwtSettings), which the
/// binary reads from `WSGW_JWT_*`).
pub fn router(state: ChatState) -> Router<ChatState> {
    Router::with_state(state)
        .route_selection(RouteSelection::default())
        .on_connect(handlers::on_connect)
        .on_disconnect(handlers::on_disconnect)
        .route(SENDMESSAGE, handlers::on_sendmessage)
        .route(HISTORY, handlers::on_history)
        .route(HEARTBEAT, handlers::on_heartbeat)
        .on_default(handlers::on_default)
        .on_rejection(handlers::on_rejection)
}
