//! A real WebSocket client's reads and writes, each with a deadline ([`WAIT`]) so a test
//! that gets no answer fails saying so instead of hanging.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use serde_json::json;
//! use wsgw_core::{Context, Request, Result, Router};
//! use wsgw_memory::gateway::LocalGateway;
//! use wsgw_memory::testing::ws;
//!
//! async fn echo(ctx: Context, request: Request) -> Result<()> {
//!     ctx.reply(&request.json::<serde_json::Value>()?).await
//! }
//!
//! let gateway = LocalGateway::new(Router::new().route("echo", echo))
//!     .bind(([127, 0, 0, 1], 0).into())
//!     .await
//!     .expect("binds");
//! let mut client = ws::connect(&gateway.ws_url()).await;
//! ws::send_json(&mut client, &json!({ "action": "echo", "n": 1 })).await;
//! assert_eq!(ws::next_json(&mut client).await["n"], 1);
//! ws::assert_silent_for(&mut client, Duration::from_millis(50)).await;
//! gateway.shutdown().await.expect("stops");
//! # }
//! ```

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket client over plain TCP.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a read waits for a message before failing the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// Connects to `url` (`ws://…`, with any path and query).
///
/// # Panics
/// When the handshake fails (a refused `$connect` included: see
/// `tokio_tungstenite::connect_async` to inspect a refusal).
pub async fn connect(url: &str) -> Client {
    let (client, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
    client
}

/// The next message other than a ping or pong.
///
/// # Panics
/// When none arrives within [`WAIT`], the socket closed, or the frame is invalid.
pub async fn next_message(client: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .unwrap_or_else(|_| panic!("a message within {WAIT:?}"))
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// The next text message (pings and pongs skipped).
///
/// # Panics
/// As [`next_message`], or when the message is not text.
pub async fn next_text(client: &mut Client) -> String {
    match next_message(client).await {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The next text message, parsed as JSON.
///
/// # Panics
/// As [`next_text`], or when the text is not JSON.
pub async fn next_json(client: &mut Client) -> Value {
    let text = next_text(client).await;
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("JSON, got {text:?}: {error}"))
}

/// Sends `value` as a text message.
///
/// # Panics
/// When the socket is closed.
pub async fn send_json(client: &mut Client, value: &Value) {
    send_text(client, &value.to_string()).await;
}

/// Sends `text` as a text message.
///
/// # Panics
/// When the socket is closed.
pub async fn send_text(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.expect("sent");
}

/// Every JSON text message that arrives within `window` (other messages skipped).
pub async fn drain(client: &mut Client, window: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, client.next()).await {
        if let Message::Text(text) = message {
            got.push(serde_json::from_str(&text).unwrap_or(Value::String(text.to_string())));
        }
    }
    got
}

/// How long [`assert_silent`] listens: long enough for a loopback gateway to deliver
/// what a route sent, short enough to use it often.
pub const QUIET: Duration = Duration::from_millis(300);

/// Asserts that nothing but pings and pongs arrives within [`QUIET`].
///
/// # Panics
/// When a message arrives, naming it.
pub async fn assert_silent(client: &mut Client) {
    assert_silent_for(client, QUIET).await;
}

/// Asserts that nothing but pings and pongs arrives within `window`.
///
/// # Panics
/// When a message arrives, naming it.
pub async fn assert_silent_for(client: &mut Client, window: Duration) {
    let deadline = tokio::time::Instant::now() + window;
    loop {
        match tokio::time::timeout_at(deadline, client.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame and returns its code (1005 for a close frame
/// without one; other messages skipped).
///
/// # Panics
/// As [`close_frame`].
pub async fn close_code(client: &mut Client) -> u16 {
    close_frame(client).await.0
}

/// Reads until the server's close frame and returns its code and reason (1005 and no
/// reason for a close frame without a code, RFC 6455 7.1.5; other messages skipped).
///
/// # Panics
/// When no close frame arrives within [`WAIT`] or the socket ends or fails without one.
pub async fn close_frame(client: &mut Client) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .unwrap_or_else(|_| panic!("closed within {WAIT:?}"))
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned())
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// The HTTP status with which the handshake to `url` is refused (a `$connect` that
/// rejects, an authorizer that denies).
///
/// # Panics
/// When the handshake succeeds or fails otherwise.
pub async fn refused(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("{url}: expected a refusal, got {:?}", other.map(|_| ())),
    }
}

/// Sends `text` and returns the next JSON message: a request and its answer.
///
/// # Panics
/// As [`send_text`] and [`next_json`].
pub async fn ask(client: &mut Client, text: &str) -> Value {
    send_text(client, text).await;
    next_json(client).await
}
