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
//!   `session_id` and `name` attributes, so "everyone" and "these sessions" are group
//!   queries, never scans. Broadcasts use wsgw-core's broadcast: gone connections are
//!   pruned, the rest still delivered.
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
//! use std::sync::Arc;
//! use serde_json::json;
//! use wsgw_memory::{ConnectOptions, Harness, MemoryHistory};
//!
//! let harness = Harness::new(|store, sink| {
//!     chat::router(store, sink, chat::ChatState::new(Arc::new(MemoryHistory::new())))
//! });
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
mod ids;
pub mod protocol;
mod state;

use std::sync::Arc;

use wsgw_core::auth::{AuthError, JwtAuthorizer};
use wsgw_core::{ConnectionStore, MessageSink, RouteSelection, Router};

pub use ids::{new_message_id, rfc3339};
pub use protocol::{ChatMessage, ErrorCode, Outgoing, ACTIONS, HEARTBEAT, HISTORY, SENDMESSAGE};
pub use state::{
    AuditEvent, ChatConfig, ChatState, SessionRecord, StoredMessage, DEFAULT_RETENTION_DAYS,
    EVENTS_PARTITION, MESSAGES_PARTITION, SESSIONS_PARTITION,
};

/// The route selection expression of the chat.
pub const ROUTE_SELECTION: &str = "$request.body.action";

/// The group every connected client is in: "everyone" is a group query.
pub const ALL_GROUP: &str = "chat:all";

/// The connection attribute holding the session id.
pub const SESSION_ID_ATTRIBUTE: &str = "session_id";

/// The connection attribute holding the display name.
pub const NAME_ATTRIBUTE: &str = "name";

/// The web page, served at `/` by the local binary; deployable to any static host.
pub const INDEX_HTML: &str = include_str!("../web/index.html");

/// The group of a session's connections: `session:<session_id>`.
pub fn session_group(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// Environment variable: an HS256 secret of at least 32 bytes
/// ([`MIN_HS256_SECRET_BYTES`](wsgw_core::auth::MIN_HS256_SECRET_BYTES)); when set,
/// clients must present a JWT signed with it (the subprotocols `wsgw.bearer, TOKEN`,
/// `Authorization: Bearer`, or `?token=`).
pub const JWT_SECRET_ENV: &str = "WSGW_JWT_SECRET";
/// Environment variable: a PEM file with an RSA public key; when set, clients must
/// present an RS256 JWT it verifies, for [`JWT_AUDIENCE_ENV`].
pub const JWT_PUBLIC_KEY_FILE_ENV: &str = "WSGW_JWT_PUBLIC_KEY_FILE";
/// Environment variable: the audience tokens must name (`aud`); required with
/// [`JWT_PUBLIC_KEY_FILE_ENV`] unless [`JWT_ANY_AUDIENCE_ENV`] is `true`.
pub const JWT_AUDIENCE_ENV: &str = "WSGW_JWT_AUDIENCE";
/// Environment variable: `true` accepts RS256 tokens for any audience (only for a key
/// that signs tokens for this chat alone).
pub const JWT_ANY_AUDIENCE_ENV: &str = "WSGW_JWT_ANY_AUDIENCE";
/// Environment variable: the issuer tokens must name (`iss`), optional.
pub const JWT_ISSUER_ENV: &str = "WSGW_JWT_ISSUER";

/// Why the JWT settings cannot be used; every message names the variable to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSettingsError {
    /// The HS256 secret is refused (too short).
    #[error("{var}: {0}", var = JWT_SECRET_ENV)]
    Secret(#[source] AuthError),
    /// The public key file cannot be read or used.
    #[error("{var}: {0}", var = JWT_PUBLIC_KEY_FILE_ENV)]
    PublicKey(String),
    /// RS256 without an audience and without the explicit opt-out.
    #[error(
        "{} needs {}: an RSA key usually signs tokens for many applications, and without the audience check a token for any of them would open the chat; set {}=<the aud of the chat's tokens>, or {}=true to accept any audience",
        JWT_PUBLIC_KEY_FILE_ENV, JWT_AUDIENCE_ENV, JWT_AUDIENCE_ENV, JWT_ANY_AUDIENCE_ENV
    )]
    AudienceRequired,
    /// A variable holding something else than it takes.
    #[error("{name}={value:?}: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it holds.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
}

/// The chat's optional JWT settings; [`JwtSettings::authorizer`] is `None` (auth off)
/// unless a secret or a public key is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtSettings {
    /// HS256 shared secret (at least 32 bytes).
    pub secret: Option<String>,
    /// RS256 public key, PEM text.
    pub public_key_pem: Option<String>,
    /// Required `aud` (required itself with a public key, unless `any_audience`).
    pub audience: Option<String>,
    /// With a public key and no audience: accept tokens for any audience.
    pub any_audience: bool,
    /// Required `iss`.
    pub issuer: Option<String>,
}

impl JwtSettings {
    /// From [`JWT_SECRET_ENV`], [`JWT_PUBLIC_KEY_FILE_ENV`] (read here),
    /// [`JWT_AUDIENCE_ENV`], [`JWT_ANY_AUDIENCE_ENV`] and [`JWT_ISSUER_ENV`]; empty values
    /// are unset.
    pub fn from_env() -> std::result::Result<Self, JwtSettingsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let public_key_pem = match var(JWT_PUBLIC_KEY_FILE_ENV) {
            Some(path) => Some(std::fs::read_to_string(path.trim()).map_err(|error| {
                JwtSettingsError::PublicKey(format!("cannot read {path}: {error}"))
            })?),
            None => None,
        };
        let any_audience = match var(JWT_ANY_AUDIENCE_ENV).as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(JwtSettingsError::Invalid {
                    name: JWT_ANY_AUDIENCE_ENV,
                    value: other.to_owned(),
                    expected: "true or false",
                })
            }
        };
        Ok(JwtSettings {
            secret: var(JWT_SECRET_ENV),
            public_key_pem,
            audience: var(JWT_AUDIENCE_ENV),
            any_audience,
            issuer: var(JWT_ISSUER_ENV),
        })
    }

    /// The `$connect` authorizer these settings ask for (RS256 when a public key is
    /// given, else HS256), or `None`. A secret shorter than 32 bytes, and a public key
    /// without an audience (unless `any_audience`), are refused.
    ///
    /// ```
    /// let off = chat::JwtSettings::default();
    /// assert!(off.authorizer().unwrap().is_none());
    /// let on = chat::JwtSettings {
    ///     secret: Some("a random secret of at least 32 bytes".into()),
    ///     ..Default::default()
    /// };
    /// assert!(on.authorizer().unwrap().is_some());
    /// let weak = chat::JwtSettings { secret: Some("s3cret".into()), ..Default::default() };
    /// let error = weak.authorizer().unwrap_err().to_string();
    /// assert!(error.starts_with("WSGW_JWT_SECRET: ") && error.contains("32 bytes"));
    /// ```
    pub fn authorizer(&self) -> std::result::Result<Option<JwtAuthorizer>, JwtSettingsError> {
        let authorizer = match (&self.public_key_pem, &self.secret) {
            (Some(pem), _) => match (&self.audience, self.any_audience) {
                (Some(audience), _) => JwtAuthorizer::rs256_pem(pem.as_bytes(), audience.clone()),
                (None, true) => JwtAuthorizer::rs256_pem_any_audience(pem.as_bytes()),
                (None, false) => return Err(JwtSettingsError::AudienceRequired),
            }
            .map_err(|error| JwtSettingsError::PublicKey(error.to_string()))?,
            (None, Some(secret)) => {
                let authorizer =
                    JwtAuthorizer::hs256(secret.as_bytes()).map_err(JwtSettingsError::Secret)?;
                match &self.audience {
                    Some(audience) => authorizer.audience(audience.clone()),
                    None => authorizer,
                }
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(match &self.issuer {
            Some(issuer) => authorizer.issuer(issuer.clone()),
            None => authorizer,
        }))
    }
}

/// [`router`] with `authorizer` deciding `$connect` when it is set.
pub fn router_with_auth(
    store: Arc<dyn ConnectionStore>,
    sink: Arc<dyn MessageSink>,
    state: ChatState,
    authorizer: Option<JwtAuthorizer>,
) -> Router<ChatState> {
    let router = router(store, sink, state);
    match authorizer {
        Some(authorizer) => router.authorizer(authorizer),
        None => router,
    }
}

/// Builds the chat's router over these backends and state.
///
/// Routes: `$connect`, `$disconnect`, [`SENDMESSAGE`], [`HISTORY`], [`HEARTBEAT`] and
/// `$default`, selected by [`ROUTE_SELECTION`]; see the [crate documentation](crate) for
/// the protocol. Every answer goes through the sink (no two-way route responses), so the
/// API Gateway routes need no route responses.
pub fn router(
    store: Arc<dyn ConnectionStore>,
    sink: Arc<dyn MessageSink>,
    state: ChatState,
) -> Router<ChatState> {
    Router::with_state(store, sink, state)
        .route_selection(RouteSelection::default())
        .on_connect(handlers::on_connect)
        .on_disconnect(handlers::on_disconnect)
        .route(SENDMESSAGE, handlers::on_sendmessage)
        .route(HISTORY, handlers::on_history)
        .route(HEARTBEAT, handlers::on_heartbeat)
        .on_default(handlers::on_default)
}
