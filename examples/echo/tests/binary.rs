//! The `echo` binary as a user runs it: `cargo run -p echo`, a real WebSocket client,
//! then SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Kills the child if the test fails before it stops it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_echo() -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the echo binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no ws:// address in {line:?}"))
        .to_owned();
    (Running(child), url)
}

async fn next_json(
    client: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(10), client.next())
        .await
        .expect("reply within 10 s")
        .expect("open")
        .expect("frame");
    serde_json::from_str(message.to_text().expect("text")).expect("JSON")
}

#[tokio::test]
async fn binary_prints_its_address_serves_echo_and_whoami_and_stops_cleanly_on_sigterm() {
    let (mut running, url) = start_echo();
    let (mut client, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects to the printed address");

    client
        .send(Message::text(json!({"action": "whoami"}).to_string()))
        .await
        .unwrap();
    let whoami = next_json(&mut client).await;
    assert_eq!(whoami["type"], "whoami");
    assert!(whoami["connection_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));

    client
        .send(Message::text(
            json!({"action": "message", "message": {"nested": [1, 2]}}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut client).await,
        json!({"type": "message", "message": {"nested": [1, 2]}})
    );

    let pid = running.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let closed = tokio::time::timeout(Duration::from_secs(10), client.next())
        .await
        .expect("closed within 10 s");
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a 1001 close frame, got {other:?}"),
    }
    let status = running.0.wait().expect("exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}
