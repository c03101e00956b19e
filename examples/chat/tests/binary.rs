//! The `chat` binary as a user runs it: `cargo run -p chat`, the page and real WebSocket
//! clients, then SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Kills the child if the test fails before it stops it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command for the chat binary with none of the environment that would change its
/// mode (Lambda, DynamoDB) or address.
fn chat_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
    for variable in [
        "AWS_LAMBDA_RUNTIME_API",
        "WSGW_DYNAMODB_ENDPOINT",
        "WSGW_LISTEN",
        "WSGW_CONNECTIONS_TABLE",
        "WSGW_HISTORY_TABLE",
        "CHAT_RETENTION_DAYS",
        "WSGW_JWT_SECRET",
        "WSGW_JWT_PUBLIC_KEY_FILE",
    ] {
        command.env_remove(variable);
    }
    command
}

/// Starts the binary on a free port; returns it with its first line's `http://` and
/// `ws://` addresses.
fn start_chat() -> (Running, String, String) {
    let mut child = chat_command()
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the chat binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let find = |prefix: &str| {
        line.split(|c: char| c.is_whitespace() || c == ')' || c == ';')
            .find(|word| word.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} address in {line:?}"))
            .to_owned()
    };
    let (page, ws) = (find("http://"), find("ws://"));
    (Running(child), page, ws)
}

async fn next_json(client: &mut Client) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(10), client.next())
        .await
        .expect("an answer within 10 s")
        .expect("open")
        .expect("a frame");
    serde_json::from_str(message.to_text().expect("text")).expect("JSON")
}

async fn send(client: &mut Client, body: Value) {
    client
        .send(Message::text(body.to_string()))
        .await
        .expect("sent");
}

#[tokio::test]
async fn binary_prints_the_page_and_ws_addresses_serves_the_chat_and_stops_cleanly_on_sigterm() {
    let (mut running, page_url, ws_url) = start_chat();
    assert!(page_url.ends_with('/'), "{page_url}");
    assert_eq!(
        page_url.trim_start_matches("http://"),
        format!("{}/", ws_url.trim_start_matches("ws://"))
    );

    let page = reqwest::get(&page_url).await.expect("the page loads");
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.expect("a body"), chat::INDEX_HTML);

    let (mut ada, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/?session_id=s1&name=ada"))
            .await
            .expect("ada connects to the printed address");
    let (mut bob, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/?session_id=s2&name=bob"))
            .await
            .expect("bob connects");

    send(
        &mut ada,
        json!({"action": "sendmessage", "message": "hi bob", "session_ids": ["s2"]}),
    )
    .await;
    assert_eq!(next_json(&mut ada).await["type"], "sent");
    let received = next_json(&mut bob).await;
    assert_eq!(received["message"], "hi bob");
    assert_eq!(received["name"], "ada");
    send(&mut bob, json!({"action": "history"})).await;
    let history = next_json(&mut bob).await;
    assert_eq!(history["messages"][0]["message"], "hi bob");
    send(&mut bob, json!({"action": "heartbeat"})).await;
    assert_eq!(next_json(&mut bob).await, json!({"type": "heartbeat"}));

    let pid = running.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    for client in [&mut ada, &mut bob] {
        let closed = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .expect("closed within 10 s");
        match closed {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected a 1001 close frame, got {other:?}"),
        }
    }
    let status = running.0.wait().expect("exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[test]
fn binary_refuses_an_address_it_cannot_listen_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("an address").to_string();

    let output = chat_command()
        .args(["--listen", &addr])
        .output()
        .expect("runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn lambda_mode_without_its_tables_exits_naming_the_missing_variable() {
    let output = chat_command()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WSGW_CONNECTIONS_TABLE"), "{stderr}");
}
