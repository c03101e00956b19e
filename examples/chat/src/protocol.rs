//! The wire protocol: what clients send, what they receive, and how input is checked.
//!
//! Everything a client sends is outside input: its fields are read one by one
//! ([`JsonObject`]) so that each mistake gets its own error code and a detail that says
//! how to fix it, and nothing here panics whatever the input.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::{Display, IntoStaticStr};
use wsgw_core::input::{json_type, BodyError, FieldError, JsonObject, Unrouted};
use wsgw_core::{Rejection, Request};

use crate::ChatConfig;

/// Route key: send a chat message to everyone or to chosen sessions.
pub const SENDMESSAGE: &str = "sendmessage";
/// Route key: the caller asks for recent messages.
pub const HISTORY: &str = "history";
/// Route key: keep-alive, answered to the caller only.
pub const HEARTBEAT: &str = "heartbeat";

/// The actions a client can send, as listed in the `unknown_action` error.
pub const ACTIONS: [&str; 3] = [SENDMESSAGE, HISTORY, HEARTBEAT];

/// A chat message as clients receive it, live (`"type":"message"`) or in a history
/// answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique id: epoch milliseconds, `-`, 16 random hex digits (sorts by time).
    pub message_id: String,
    /// The sender's session id (with auth on, the sender's principal). The sender's
    /// connection id is not sent: it is the gateway's handle on that client, for no
    /// other client to use.
    pub session_id: String,
    /// The sender's display name, `null` when it gave none.
    pub name: Option<String>,
    /// The text, exactly as sent.
    pub message: String,
    /// When the gateway received it, RFC 3339 UTC with milliseconds
    /// (`2026-11-22T09:15:02.113Z`).
    pub timestamp: String,
    /// The sessions it was addressed to; absent when it went to everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ids: Option<Vec<String>>,
}

/// Every message the server sends a client: a JSON object whose `type` says which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outgoing {
    /// A chat message (to everyone, or to the connections of chosen sessions).
    Message(ChatMessage),
    /// To the sender of a message addressed to sessions: how many connections got it.
    Sent {
        /// The message's id.
        message_id: String,
        /// Connections the message reached (the sender's included when its session was
        /// addressed).
        delivered: usize,
    },
    /// The answer to `history`: the most recent messages the caller may see, oldest
    /// first.
    History {
        /// The messages, oldest first.
        messages: Vec<ChatMessage>,
    },
    /// The answer to `heartbeat`.
    Heartbeat,
    /// The caller's request was not acceptable; its connection stays open.
    Error {
        /// Machine-readable code, see [`ErrorCode`].
        error: ErrorCode,
        /// What was wrong and how to fix it.
        detail: String,
        /// For `unknown_action`: the actions there are.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        available: Option<Vec<String>>,
    },
}

/// The `error` codes of [`Outgoing::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(IntoStaticStr, Display)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The `action` names no route (or the frame is not a JSON object with an action).
    UnknownAction,
    /// The body is not a JSON object the chat can read (numbers must fit a 64-bit float,
    /// nesting stay within 128 levels).
    InvalidJson,
    /// A required field is missing.
    MissingField,
    /// A field has the wrong JSON type.
    InvalidType,
    /// The message is empty or only whitespace.
    EmptyMessage,
    /// The message is longer than the limit (4 KB by default).
    MessageTooLarge,
    /// `session_ids` is not a non-empty list of valid session ids.
    InvalidSessionIds,
    /// `limit` is not a whole number in the allowed range (1–200 by default).
    InvalidLimit,
    /// The `session_id` query parameter of the connect URL is not valid.
    InvalidSessionId,
    /// The `name` query parameter of the connect URL is not valid.
    InvalidName,
    /// With auth on, the `session_id` of the connect URL is not the token's principal.
    SessionMismatch,
}

impl ErrorCode {
    /// The code as it appears on the wire (`message_too_large`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The client's input refused with this code: `{"type":"error","error":CODE,"detail":…}`
    /// to the caller, the [`Outgoing::Error`] frame.
    ///
    /// ```
    /// use chat::protocol::ErrorCode;
    ///
    /// let refused = ErrorCode::EmptyMessage.reject("`message` is empty");
    /// assert_eq!(
    ///     refused.to_payload().as_text(),
    ///     Some(r#"{"type":"error","error":"empty_message","detail":"`message` is empty"}"#)
    /// );
    /// ```
    pub fn reject(self, detail: impl Into<String>) -> Rejection {
        Rejection::new(self.as_str()).with_detail(detail)
    }
}

/// A checked `sendmessage` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    /// The text, exactly as sent.
    pub message: String,
    /// The sessions to reach, without duplicates, in the order given; `None` for
    /// everyone.
    pub session_ids: Option<Vec<String>>,
}

/// A checked `history` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRequest {
    /// How many messages at most.
    pub limit: usize,
}

/// A body that is not a JSON object the chat can read: `invalid_json`, its detail saying
/// why ([`BodyError`]) and what to send.
pub fn invalid_json(error: BodyError) -> Rejection {
    ErrorCode::InvalidJson.reject(format!(
        "{error}: send for example {{\"action\":\"{SENDMESSAGE}\",\"message\":\"hi\"}}"
    ))
}

/// The rejection of a field the client got wrong: `code`, with the field's error as
/// detail.
fn invalid(code: ErrorCode) -> impl Fn(FieldError) -> Rejection {
    move |error| code.reject(error.to_string())
}

/// Checks a session id (from the connect URL or a `session_ids` entry): 1 to
/// `config.max_session_id_chars` characters, none of them whitespace or control
/// characters. Returns what is wrong.
pub fn check_session_id(id: &str, config: &ChatConfig) -> Result<(), String> {
    let chars = id.chars().count();
    if chars == 0 {
        return Err("a session id cannot be empty".to_owned());
    }
    if chars > config.max_session_id_chars {
        return Err(format!(
            "a session id has at most {} characters, this one has {chars}",
            config.max_session_id_chars
        ));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "a session id cannot contain whitespace or control characters: {id:?}"
        ));
    }
    Ok(())
}

/// Checks a display name from the connect URL: trimmed; empty means none; at most
/// `config.max_name_chars` characters and no control characters.
pub fn check_name(name: Option<&str>, config: &ChatConfig) -> Result<Option<String>, Rejection> {
    let Some(name) = name.map(str::trim).filter(|name| !name.is_empty()) else {
        return Ok(None);
    };
    let chars = name.chars().count();
    if chars > config.max_name_chars {
        return Err(ErrorCode::InvalidName.reject(format!(
            "`name` has at most {} characters, got {chars}",
            config.max_name_chars
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ErrorCode::InvalidName.reject("`name` cannot contain control characters"));
    }
    Ok(Some(name.to_owned()))
}

/// The session of a client that signed in as `principal`: the principal itself. A
/// `session_id` naming anything else is [`ErrorCode::SessionMismatch`]; a principal that
/// is not a valid session id is [`ErrorCode::InvalidSessionId`].
///
/// ```
/// use chat::protocol::{session_of_principal, ErrorCode};
/// use chat::ChatConfig;
///
/// let config = ChatConfig::default();
/// assert_eq!(session_of_principal(None, "u-ada", &config).unwrap(), "u-ada");
/// assert_eq!(session_of_principal(Some("u-ada"), "u-ada", &config).unwrap(), "u-ada");
/// let taken = session_of_principal(Some("u-ada"), "u-mallory", &config).unwrap_err();
/// assert_eq!(taken.code(), Some(ErrorCode::SessionMismatch.as_str()));
/// ```
pub fn session_of_principal(
    session_id: Option<&str>,
    principal: &str,
    config: &ChatConfig,
) -> Result<String, Rejection> {
    if let Err(problem) = check_session_id(principal, config) {
        return Err(ErrorCode::InvalidSessionId.reject(format!(
            "the token's subject cannot be a session: {problem}"
        )));
    }
    match session_id.filter(|id| !id.is_empty()) {
        Some(id) if id != principal => Err(ErrorCode::SessionMismatch.reject("`session_id` must be the token's subject (or left out): a session belongs to its principal",
        )),
        _ => Ok(principal.to_owned()),
    }
}

/// The session of a connecting client without auth: the `session_id` query parameter,
/// or the connection id when it is absent or empty.
pub fn session_from_query(
    session_id: Option<&str>,
    connection_id: &str,
    config: &ChatConfig,
) -> Result<String, Rejection> {
    let Some(id) = session_id.filter(|id| !id.is_empty()) else {
        return Ok(connection_id.to_owned());
    };
    check_session_id(id, config)
        .map(|()| id.to_owned())
        .map_err(|problem| ErrorCode::InvalidSessionId.reject(format!("`session_id`: {problem}")))
}

/// Parses and checks a `sendmessage` body.
///
/// ```
/// use chat::protocol::{parse_send, ErrorCode};
/// use chat::ChatConfig;
/// use serde_json::json;
///
/// let config = ChatConfig::default();
/// let send = parse_send(&json!({"action": "sendmessage", "message": "hi", "session_ids": ["s1", "s1", "s2"]}), &config).unwrap();
/// assert_eq!(send.session_ids, Some(vec!["s1".to_owned(), "s2".to_owned()]));
///
/// let error = parse_send(&json!({"action": "sendmessage", "message": "  "}), &config).unwrap_err();
/// assert_eq!(error.code(), Some(ErrorCode::EmptyMessage.as_str()));
/// ```
pub fn parse_send(body: &Value, config: &ChatConfig) -> Result<SendMessage, Rejection> {
    let object = JsonObject::new(body).map_err(invalid_json)?;
    let message: &str = object.required("message").map_err(|error| match error {
        FieldError::Missing { .. } => ErrorCode::MissingField.reject(format!(
            "{error}: send {{\"action\":\"{SENDMESSAGE}\",\"message\":\"hi\"}}"
        )),
        _ => invalid(ErrorCode::InvalidType)(error),
    })?;
    if message.trim().is_empty() {
        return Err(ErrorCode::EmptyMessage.reject("`message` is empty: write some text"));
    }
    if message.len() > config.max_message_bytes {
        return Err(ErrorCode::MessageTooLarge.reject(format!(
            "`message` is {} bytes (UTF-8); at most {} bytes are allowed",
            message.len(),
            config.max_message_bytes
        )));
    }
    let session_ids = object
        .optional("session_ids")
        .map_err(invalid(ErrorCode::InvalidSessionIds))?;
    Ok(SendMessage {
        message: message.to_owned(),
        session_ids: session_ids
            .map(|ids| check_session_ids(ids, config))
            .transpose()?,
    })
}

/// The sessions a message is addressed to, each once in the order given: at least one,
/// at most `config.max_session_ids`, each a valid session id.
fn check_session_ids(entries: Vec<&str>, config: &ChatConfig) -> Result<Vec<String>, Rejection> {
    let invalid = |detail: String| ErrorCode::InvalidSessionIds.reject(detail);
    if entries.is_empty() {
        return Err(invalid(
            "`session_ids` is empty: name at least one session, or leave `session_ids` out to send to everyone"
                .to_owned(),
        ));
    }
    if entries.len() > config.max_session_ids {
        return Err(invalid(format!(
            "`session_ids` names {} sessions; at most {} are allowed",
            entries.len(),
            config.max_session_ids
        )));
    }
    let mut ids: Vec<String> = Vec::with_capacity(entries.len());
    for (index, id) in entries.into_iter().enumerate() {
        if let Err(problem) = check_session_id(id, config) {
            return Err(invalid(format!("`session_ids[{index}]`: {problem}")));
        }
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// Parses and checks a `history` body: `limit` is optional (default
/// `config.default_history`) and must be a whole number from 1 to `config.max_history`.
///
/// ```
/// use chat::protocol::{parse_history, ErrorCode};
/// use chat::ChatConfig;
/// use serde_json::json;
///
/// let config = ChatConfig::default();
/// assert_eq!(parse_history(&json!({"action": "history"}), &config).unwrap().limit, 50);
/// assert_eq!(parse_history(&json!({"action": "history", "limit": 201}), &config).unwrap_err().code(), Some(ErrorCode::InvalidLimit.as_str()));
/// ```
pub fn parse_history(body: &Value, config: &ChatConfig) -> Result<HistoryRequest, Rejection> {
    let limit = JsonObject::new(body)
        .map_err(invalid_json)?
        .optional_in("limit", 1..=config.max_history)
        .map_err(invalid(ErrorCode::InvalidLimit))?;
    Ok(HistoryRequest {
        limit: limit.unwrap_or(config.default_history),
    })
}

/// Why a message went to `$default`, for the `detail` of `unknown_action`, and the
/// action it named (shortened) when that was a string.
pub fn unknown_action_detail(request: &Request) -> (String, Option<String>) {
    match Unrouted::of(request, "action") {
        Unrouted::Empty => ("the message is empty".to_owned(), None),
        Unrouted::Binary => (
            "binary frames are not understood: send JSON text such as {\"action\":\"heartbeat\"}"
                .to_owned(),
            None,
        ),
        Unrouted::NotJson => (
            "the message is not JSON: send an object such as {\"action\":\"heartbeat\"}".to_owned(),
            None,
        ),
        Unrouted::UnknownAction(Value::String(action)) => {
            let action = shorten(&action, 64);
            (
                format!("`{action}` is not an action (actions are case-sensitive)"),
                Some(action),
            )
        }
        Unrouted::UnknownAction(other) => (
            format!("`action` must be a string, got {}", json_type(&other)),
            None,
        ),
        Unrouted::NoAction => (
            "the message has no `action` field: send {\"action\":\"sendmessage\",\"message\":\"hi\"}"
                .to_owned(),
            None,
        ),
    }
}

/// At most `chars` characters of `text`, with `…` when cut.
fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
