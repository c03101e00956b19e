//! The `echo` binary as a user runs it: `cargo run -p echo`, a real WebSocket client,
//! then SIGTERM.

use std::process::Command;

use serde_json::json;
use wsgw_memory::testing::ws::{close_code, connect, next_json, send_json};
use wsgw_memory::testing::ServerProcess;

fn start_echo() -> (ServerProcess, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_echo"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("AWS_LAMBDA_RUNTIME_API");
    let server = ServerProcess::start(command);
    let url = server.url("ws://");
    (server, url)
}

#[tokio::test]
async fn binary_prints_its_address_serves_echo_and_whoami_and_stops_cleanly_on_sigterm() {
    let (mut running, url) = start_echo();
    let mut client = connect(&url).await;

    send_json(&mut client, &json!({"action": "whoami"})).await;
    let whoami = next_json(&mut client).await;
    assert_eq!(whoami["type"], "whoami");
    assert!(whoami["connection_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));

    send_json(
        &mut client,
        &json!({"action": "message", "message": {"nested": [1, 2]}}),
    )
    .await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"type": "message", "message": {"nested": [1, 2]}})
    );

    running.send_sigterm().expect("kill runs");
    assert_eq!(close_code(&mut client).await, 1001);
    let status = running.wait().expect("exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}
