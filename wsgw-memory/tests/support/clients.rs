//! What the gateway tests' WebSocket clients do again and again: read the next text
//! message, ask `whoami`. `#[path]`-included by the test files that use it.

// Each test binary including this uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket client over plain TCP.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for a message before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// The next text message (pings and pongs skipped); fails after [`WAIT`] or on anything
/// else.
pub async fn next_text(client: &mut Client) -> String {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("valid frame")
        {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// The client's connection id, from a two-way `whoami` route answering
/// `{"connection_id": …}`.
pub async fn whoami(client: &mut Client) -> String {
    client
        .send(Message::text(r#"{"action":"whoami"}"#))
        .await
        .expect("send");
    let answer: Value = serde_json::from_str(&next_text(client).await).expect("JSON");
    answer["connection_id"]
        .as_str()
        .expect("a connection_id")
        .to_owned()
}
