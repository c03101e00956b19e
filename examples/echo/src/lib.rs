//! # echo — the echo/whoami system on wsgw
//!
//! The smallest complete wsgw system: a client sends JSON messages and gets answers back
//! on its own connection. The same [`router`] runs on AWS (API Gateway WebSocket API +
//! Lambda) and locally on the in-memory backend.
//!
//! ## Protocol
//!
//! Routes are selected by `$request.body.action` ([`ROUTE_SELECTION`]). Every answer is a
//! JSON text message with a `type` field, sent to the caller's connection only:
//!
//! | the client sends                            | the client receives                                                       |
//! |---------------------------------------------|---------------------------------------------------------------------------|
//! | `{"action":"message","message":<any JSON>}` | `{"type":"message","message":<the same JSON, unchanged>}`                 |
//! | `{"action":"message"}` (no `message`)       | `{"type":"error","error":"missing_field","field":"message"}`              |
//! | `{"action":"whoami"}`                       | `{"type":"whoami","connection_id":"<the caller's connection id>"}`        |
//! | anything else: another action, no action, malformed JSON | `{"type":"error","error":"unknown_action","available":["message","whoami"]}` |
//! | a binary frame | nothing: the connection is closed with 1003, as API Gateway does |
//!
//! `$connect` and `$disconnect` only log (connection id, source ip; close code and
//! reason on disconnect) and accept. If the caller is already gone when its answer is
//! sent, the answer is dropped and the route still succeeds; any other send failure
//! (throttling, a payload that is too large, a backend error) is returned as the route's
//! error.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wsgw_core::Result<()> {
//! use serde_json::json;
//! use wsgw_memory::Harness;
//!
//! let harness = Harness::new(echo::router);
//! let client = harness.connect().await.expect("connects");
//!
//! client.send_json(&json!({ "action": "message", "message": "hi" })).await?;
//! client.send_json(&json!({ "action": "whoami" })).await?;
//! assert_eq!(
//!     client.received_json(),
//!     vec![
//!         json!({ "type": "message", "message": "hi" }),
//!         json!({ "type": "whoami", "connection_id": client.id().as_str() }),
//!     ]
//! );
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use wsgw_core::{
    ConnectionId, ConnectionStore, Context, MessageSink, Reply, Request, Result, RouteSelection,
    Router,
};

/// The route selection expression of the echo system.
pub const ROUTE_SELECTION: &str = "$request.body.action";

/// Route key that echoes the `message` field back to the caller.
pub const MESSAGE: &str = "message";

/// Route key that tells the caller its connection id.
pub const WHOAMI: &str = "whoami";

/// The actions a client can send, as listed in the `unknown_action` error.
pub const ACTIONS: [&str; 2] = [MESSAGE, WHOAMI];

/// Builds the echo/whoami router over these backends.
///
/// Routes: `$connect`, `$disconnect`, [`MESSAGE`], [`WHOAMI`] and `$default`, selected by
/// [`ROUTE_SELECTION`]; see the [crate documentation](crate) for the protocol. The store is
/// not used by any route, the sink carries every answer.
pub fn router(store: Arc<dyn ConnectionStore>, sink: Arc<dyn MessageSink>) -> Router {
    Router::new(store, sink)
        .route_selection(RouteSelection::default())
        .on_connect(on_connect)
        .on_disconnect(on_disconnect)
        .route(MESSAGE, on_message)
        .route(WHOAMI, on_whoami)
        .on_default(on_default)
}

/// `$connect`: logs who connected and accepts.
async fn on_connect(_ctx: Context, request: Request) -> Result<Reply> {
    tracing::info!(
        connection_id = %request.connection_id,
        source_ip = request.source_ip.as_deref().unwrap_or("unknown"),
        "connected"
    );
    Ok(Reply::ok())
}

/// `$disconnect`: logs who left, with close code and reason.
async fn on_disconnect(_ctx: Context, request: Request) -> Result<Reply> {
    let (status_code, reason) = match &request.disconnect {
        Some(info) => (Some(info.status_code), info.reason.as_str()),
        None => (None, ""),
    };
    tracing::info!(
        connection_id = %request.connection_id,
        source_ip = request.source_ip.as_deref().unwrap_or("unknown"),
        status_code,
        reason,
        "disconnected"
    );
    Ok(Reply::ok())
}

/// The `message` field of a body, as the JSON text the client wrote.
#[derive(Deserialize)]
struct MessageField<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    message: Option<&'a RawValue>,
}

/// A field that is present, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// `{"type":"message","message":…}` with the message exactly as sent.
#[derive(Serialize)]
struct Echoed<'a> {
    message: &'a RawValue,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `message`: echoes the `message` field, whatever JSON it holds.
///
/// The field's JSON text goes back as written: numbers beyond `f64` (`1e400`,
/// `18446744073709551617`) and key order come back unchanged rather than re-encoded.
async fn on_message(ctx: Context, request: Request) -> Result<Reply> {
    // The route was selected from a JSON body, but a gateway may also set the route key
    // itself: treat a body that is not JSON like one without the field.
    let text = request.text().unwrap_or("");
    match serde_json::from_str::<MessageField<'_>>(text) {
        Ok(MessageField {
            message: Some(message),
        }) => {
            let answer = Echoed {
                message,
                kind: MESSAGE,
            };
            answer_caller(&ctx, &request.connection_id, &answer).await
        }
        Ok(MessageField { message: None }) => missing_message(&ctx, &request).await,
        // A repeated `message` key: the last one counts, as for any JSON object.
        Err(_) => match request
            .json::<Value>()
            .ok()
            .and_then(|mut body| body.get_mut(MESSAGE).map(Value::take))
        {
            Some(message) => {
                let answer = json!({ "type": "message", "message": message });
                answer_caller(&ctx, &request.connection_id, &answer).await
            }
            None => missing_message(&ctx, &request).await,
        },
    }
}

async fn missing_message(ctx: &Context, request: &Request) -> Result<Reply> {
    let answer = json!({ "type": "error", "error": "missing_field", "field": MESSAGE });
    answer_caller(ctx, &request.connection_id, &answer).await
}

/// `whoami`: tells the caller its connection id.
async fn on_whoami(ctx: Context, request: Request) -> Result<Reply> {
    let answer = json!({ "type": "whoami", "connection_id": request.connection_id });
    answer_caller(&ctx, &request.connection_id, &answer).await
}

/// `$default`: unknown actions and malformed JSON (and binary bodies, which only reach a
/// router directly: API Gateway closes a connection that sends a binary frame).
async fn on_default(ctx: Context, request: Request) -> Result<Reply> {
    let answer = json!({ "type": "error", "error": "unknown_action", "available": ACTIONS });
    answer_caller(&ctx, &request.connection_id, &answer).await
}

/// Sends `answer` to the caller. A caller that is gone is no failure of the route: it is
/// logged and the route succeeds. Every other error is returned.
async fn answer_caller<T: Serialize>(
    ctx: &Context,
    caller: &ConnectionId,
    answer: &T,
) -> Result<Reply> {
    match ctx.send_json(caller, answer).await {
        Ok(()) => Ok(Reply::ok()),
        Err(error) if error.is_gone() => {
            tracing::info!(connection_id = %caller, "caller left before its answer was sent");
            Ok(Reply::ok())
        }
        Err(error) => {
            tracing::warn!(connection_id = %caller, %error, "could not answer the caller");
            Err(error)
        }
    }
}

/// The code examples of the workspace README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
