//! The `telemetry` binary as a user runs it: `cargo run -p telemetry`, a device, a
//! dashboard, the REST API and the page on the printed address, then SIGTERM.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::json;
use wsgw_memory::testing::{ChildProcess, ServerProcess};

fn start(args: &[&str]) -> (ServerProcess, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("TELEMETRY_DEVICE_TOKEN")
        .env_remove("TELEMETRY_DEVICE_SECRET")
        .env_remove("TELEMETRY_DEVICE_KEYS")
        .env_remove("TELEMETRY_DASHBOARD_KEYS")
        .env_remove("TELEMETRY_CORS_ORIGIN");
    let server = ServerProcess::start(command);
    let (line, url) = (server.first_line(), server.url("ws://"));
    assert!(
        line.contains("http://"),
        "the line names the dashboard: {line:?}"
    );
    (server, url)
}

#[tokio::test]
async fn binary_serves_devices_dashboards_history_and_the_page_and_stops_on_sigterm() {
    let (mut running, ws) = start(&["--history-ttl-days", "7"]);
    let http = ws.replace("ws://", "http://");

    let mut dashboard = connect(&ws, "role=client").await;
    let mut device = device(&ws, "esp32-bin").await;
    let now = chrono::Utc::now().timestamp_millis();
    send(&mut device, &reading("esp32-bin", 1, now)).await;
    let pushed = next_json(&mut dashboard).await;
    assert_eq!(pushed["type"], "reading");
    assert_eq!(pushed["seq"], 1);

    let (status, body) = get_json(&format!("{http}/history?device_id=esp32-bin")).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"][0]["seq"], 1);
    assert_eq!(body["next"], json!(null));
    let page = reqwest::get(format!("{http}/")).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);

    running.send_sigterm().expect("kill runs");
    assert_eq!(close_code(&mut dashboard).await, 1001);
    let status = running.wait().expect("exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

const FLEET_SECRET: &str = "fleet-secret-0123456789abcdef-0123456789";

/// `telemetry device-token ID` with the fleet secret in the environment.
fn device_token(device_id: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_telemetry"))
        .args(["device-token", device_id])
        .env("TELEMETRY_DEVICE_SECRET", FLEET_SECRET)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("text")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn with_a_device_secret_only_devices_presenting_their_own_token_connect() {
    let (_running, ws) = start(&["--device-secret", FLEET_SECRET]);
    let token = device_token("d1");
    assert_eq!(token.len(), 64, "{token}");
    for query in [
        "role=device&device_id=d1".to_owned(),
        format!("role=device&device_id=d2&token={token}"),
        format!("role=device&device_id=d1&token={FLEET_SECRET}"),
    ] {
        match tokio_tungstenite::connect_async(format!("{ws}/?{query}")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{query}")
            }
            other => panic!("{query}: expected HTTP 401, got {:?}", other.map(|_| ())),
        }
    }
    connect(&ws, &format!("role=device&device_id=d1&token={token}")).await;
    connect(&ws, "role=client").await;
}

/// The binary's exit status and stderr with this argument list and environment.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("TELEMETRY_DEVICE_TOKEN")
        .env_remove("TELEMETRY_DEVICE_SECRET")
        .env_remove("TELEMETRY_DEVICE_KEYS")
        .env_remove("TELEMETRY_DASHBOARD_KEYS")
        .env_remove("TELEMETRY_CORS_ORIGIN")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    // Each of these refuses before listening, so the process ends by itself.
    let output = command.output().expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "it started: {stderr}");
    stderr
}

#[test]
fn settings_that_would_weaken_device_auth_refuse_to_start_with_a_clear_message() {
    // The 0.1 shared token: any holder could send as any device id.
    let stderr = refused_start(&[], &[("TELEMETRY_DEVICE_TOKEN", "s3cret")]);
    assert!(
        stderr.contains("TELEMETRY_DEVICE_TOKEN") && stderr.contains("TELEMETRY_DEVICE_SECRET"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // A short fleet secret.
    let stderr = refused_start(&["--device-secret", "s3cret"], &[]);
    assert!(
        stderr.contains("TELEMETRY_DEVICE_SECRET") && stderr.contains("32"),
        "{stderr}"
    );
    // A fleet secret with keys.
    let stderr = refused_start(
        &[
            "--device-secret",
            FLEET_SECRET,
            "--dashboard-keys",
            "ada=k-1",
        ],
        &[],
    );
    assert!(stderr.contains("cannot be combined"), "{stderr}");
    // A key given twice, and a CORS origin that is not one.
    let stderr = refused_start(&["--device-keys", "a=k-1,b=k-1"], &[]);
    assert!(
        stderr.contains("same API key") && !stderr.contains("k-1"),
        "{stderr}"
    );
    let stderr = refused_start(&["--cors-origin", "dash.example/x"], &[]);
    assert!(stderr.contains("TELEMETRY_CORS_ORIGIN"), "{stderr}");
}

/// Readings from each of `devices` arrive at a dashboard within the wait.
async fn dashboard_sees(ws: &str, devices: &[&str]) {
    let mut dashboard = connect(ws, "role=client").await;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < devices.len() {
        let message = next_json(&mut dashboard).await;
        if message["type"] == "reading" {
            seen.insert(message["device_id"].as_str().unwrap().to_owned());
        }
    }
    let want: std::collections::BTreeSet<String> = devices.iter().map(|d| d.to_string()).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn with_simulate_n_the_dashboard_shows_n_live_devices_at_once() {
    let (mut running, ws) = start(&["--simulate", "2"]);
    dashboard_sees(&ws, &["sim-01", "sim-02"]).await;
    let http = ws.replace("ws://", "http://");
    let (_, body) = get_json(&format!("{http}/devices")).await;
    assert_eq!(body["devices"].as_array().unwrap().len(), 2);

    // The simulated devices obey control.
    let mut dashboard = connect(&ws, "role=client").await;
    send(
        &mut dashboard,
        &json!({"action": "ControlCmd", "device_id": "sim-01", "sample_interval_ms": 500}),
    )
    .await;
    loop {
        let message = next_json(&mut dashboard).await;
        if message["type"] == "control_ack" {
            assert_eq!(message["device_id"], "sim-01");
            assert_eq!(message["sample_interval_ms"], 500);
            break;
        }
    }
    running.send_sigterm().expect("kill runs");
    assert!(running.wait().expect("exits").success());
}

#[tokio::test]
async fn the_simulate_command_drives_devices_against_a_running_api() {
    let (_server, ws) = start(&[]);
    let simulator = ChildProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_telemetry"))
            .args([
                "simulate",
                "--devices",
                "1",
                "--url",
                &ws,
                "--prefix",
                "cli-",
            ])
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env_remove("TELEMETRY_DEVICE_TOKEN")
            .env_remove("TELEMETRY_DEVICE_SECRET")
            .env_remove("TELEMETRY_DEVICE_KEYS")
            .env_remove("TELEMETRY_DASHBOARD_KEYS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .expect("the simulator starts");
    dashboard_sees(&ws, &["cli-01"]).await;
    let output = simulator.terminate_with_output().expect("stops");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(printed.contains("cli-01: "), "{printed}");
}
