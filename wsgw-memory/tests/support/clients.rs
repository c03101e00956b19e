//! What the gateway tests' WebSocket clients do again and again beyond
//! `wsgw_memory::testing::ws` (re-exported here): ask `whoami`. `#[path]`-included by the test files that use it.

// Each test binary including this uses part of it.
#![allow(dead_code)]

use futures::SinkExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
#[allow(unused_imports)]
pub use wsgw_memory::testing::ws::{next_text, Client, WAIT};

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
