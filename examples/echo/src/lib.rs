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
//! `$connect` and `$disconnect` accept; the router logs them (connection id, source ip;
//! close code and reason on disconnect). If the caller is already gone when its answer is
//! sent, the answer is dropped and the route still succeeds; any other send failure
//! (throttling, a payload that is too large, a backend error) is returned as the route's
//! error. The two error answers are client rejections ([`wsgw_core::Rejection`]): the
//! invocation succeeds.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wsgw_core::Result<()> {
//! use serde_json::json;
//! use wsgw_memory::Harness;
//!
//! let harness = Harness::new(echo::router());
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

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use wsgw_core::{Context, Rejection, Request, Result, RouteSelection, Router};

/// The route selection expression of the echo system.
pub const ROUTE_SELECTION: &str = "$request.body.action";

/// Route key that echoes the `message` field back to the caller.
pub const MESSAGE: &str = "message";

/// Route key that tells the caller its connection id.
pub const WHOAMI: &str = "whoami";

/// The actions a client can send, as listed in the `unknown_action` error.
pub const ACTIONS: [&str; 2] = [MESSAGE, WHOAMI];

/// The echo/whoami router.
///
/// Routes: `$connect`, `$disconnect`, [`MESSAGE`], [`WHOAMI`] and `$default`, selected by
/// [`ROUTE_SELECTION`]; see the [crate documentation](crate) for the protocol. No route
/// uses the store; every answer goes to the caller through the request's sink.
pub fn router() -> Router {
    Router::new()
        .route_selection(RouteSelection::default())
        .on_connect(accept)
        .on_disconnect(accept)
        .route(MESSAGE, on_message)
        .route(WHOAMI, on_whoami)
        .on_default(on_default)
}

/// `$connect` and `$disconnect`: accept (the router logs both, with the caller).
async fn accept(_ctx: Context, _request: Request) -> Result<()> {
    Ok(())
}

/// `{"type":"message","message":…}` with the message exactly as sent.
#[derive(Serialize)]
struct Echoed {
    message: Box<RawValue>,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `message`: echoes the `message` field, whatever JSON it holds.
///
/// The field's JSON text goes back as written ([`Request::raw_field`]): numbers beyond
/// `f64` (`1e400`, `18446744073709551617`) and key order come back unchanged rather than
/// re-encoded; of a repeated `message` key the last one counts. The route was selected
/// from a JSON body, but a gateway may also set the route key itself: a body that is not
/// JSON is treated like one without the field.
async fn on_message(ctx: Context, request: Request) -> Result<()> {
    let message = request.raw_field(MESSAGE).ok_or_else(missing_message)?;
    let kind = MESSAGE;
    ctx.reply(&Echoed { message, kind }).await
}

/// `{"type":"error","error":"missing_field","field":"message"}`.
fn missing_message() -> wsgw_core::Error {
    Rejection::new("missing_field")
        .with_field("field", MESSAGE)
        .into()
}

/// `whoami`: tells the caller its connection id.
async fn on_whoami(ctx: Context, request: Request) -> Result<()> {
    ctx.reply(&json!({ "type": "whoami", "connection_id": request.connection_id }))
        .await
}

/// `$default`: unknown actions and malformed JSON (and binary bodies, which only reach a
/// router directly: API Gateway closes a connection that sends a binary frame).
async fn on_default(_ctx: Context, _request: Request) -> Result<()> {
    Err(Rejection::new("unknown_action")
        .with_field("available", ACTIONS.as_slice())
        .into())
}

/// The code examples of the workspace README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
