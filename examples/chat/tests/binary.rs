//! The `chat` binary as a user runs it: `cargo run -p chat`, the page and real WebSocket
//! clients, then SIGTERM.

use std::process::Command;

use serde_json::json;
use wsgw_memory::testing::ws::{close_code, next_json, send_json};
use wsgw_memory::testing::ServerProcess;

/// A command for the chat binary with none of the environment that would change its
/// mode (Lambda, DynamoDB) or address.
fn chat_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
    for variable in [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_ENDPOINT_URL_DYNAMODB",
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
fn start_chat() -> (ServerProcess, String, String) {
    let mut command = chat_command();
    command.args(["--listen", "127.0.0.1:0"]);
    let server = ServerProcess::start(command);
    let (page, ws) = (server.url("http://"), server.url("ws://"));
    (server, page, ws)
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

    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "hi bob", "session_ids": ["s2"]}),
    )
    .await;
    assert_eq!(next_json(&mut ada).await["type"], "sent");
    let received = next_json(&mut bob).await;
    assert_eq!(received["message"], "hi bob");
    assert_eq!(received["name"], "ada");
    send_json(&mut bob, &json!({"action": "history"})).await;
    let history = next_json(&mut bob).await;
    assert_eq!(history["messages"][0]["message"], "hi bob");
    send_json(&mut bob, &json!({"action": "heartbeat"})).await;
    assert_eq!(next_json(&mut bob).await, json!({"type": "heartbeat"}));

    running.send_sigterm().expect("kill runs");
    for client in [&mut ada, &mut bob] {
        assert_eq!(close_code(client).await, 1001);
    }
    let status = running.wait().expect("exits");
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
