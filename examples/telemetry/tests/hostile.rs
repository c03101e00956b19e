//! Hostile input against every telemetry route, through the LocalGateway with real
//! WebSocket clients and raw HTTP: each bad device or dashboard message is answered with
//! its `{"type":"error","code":…}`, the connection stays open, a dashboard following the
//! device hears nothing of it and nothing is stored for it; a device cannot speak for
//! another device; bad REST parameters are 400, path traversal 404.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use telemetry::Telemetry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::MemorySink;

async fn start() -> (RunningGateway, String, String) {
    let sockets = Arc::new(MemorySink::new());
    let state = Telemetry::new();
    let router = telemetry::router(state);
    let running = LocalGateway::new(router)
        .with_sockets(sockets)
        .assets(telemetry::dashboard())
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds loopback");
    let ws = running.ws_url();
    let http = format!("http://{}", running.local_addr());
    (running, ws, http)
}

async fn ask(socket: &mut Socket, body: &str) -> Value {
    socket
        .send(Message::text(body.to_owned()))
        .await
        .expect("sent");
    next_json(socket).await
}

async fn assert_silent(socket: &mut Socket) {
    if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(300), socket.next()).await
    {
        panic!("expected nothing, got {message:?}");
    }
}

/// Sends each body and checks the error code of the answer.
async fn expect_errors(socket: &mut Socket, cases: &[(String, &str)]) {
    for (body, code) in cases {
        let answer = ask(socket, body).await;
        assert_eq!(answer["type"], "error", "{body:.100}: {answer}");
        assert_eq!(answer["code"], *code, "{body:.100}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
}

fn update(device_id: &str, readings: &str) -> String {
    format!(
        r#"{{"action":"RealTimeDataUpdate","device_id":"{device_id}","seq":1,"ts_ms":0,"readings":{readings}}}"#
    )
}

#[tokio::test]
async fn bad_device_messages_are_refused_and_a_device_cannot_speak_for_another() {
    let (gateway, ws, http) = start().await;
    let mut follower = connect(&ws, "role=client&device_id=esp32-a").await;
    let mut other_follower = connect(&ws, "role=client&device_id=esp32-b").await;
    let _victim = device(&ws, "esp32-b").await;
    let mut device = device(&ws, "esp32-a").await;

    let many: String = (0..33)
        .map(|n| format!(r#""m{n}":1"#))
        .collect::<Vec<_>>()
        .join(",");
    let cases: Vec<(String, &str)> = vec![
        // Malformed JSON and unknown actions.
        (r#"{"action":"RealTimeDataUpdate","device_id":"#.into(), "invalid_message"),
        ("\u{1}garbage".into(), "invalid_message"),
        (r#"{"action":"realtimedataupdate"}"#.into(), "unknown_action"),
        (r#"{"action":"$disconnect"}"#.into(), "unknown_action"),
        (r#"{"action":"$connect"}"#.into(), "unknown_action"),
        (r#"{"action":42}"#.into(), "unknown_action"),
        (r#"{"device_id":"esp32-a"}"#.into(), "unknown_action"),
        // Missing fields and wrong types.
        (r#"{"action":"RealTimeDataUpdate","device_id":"esp32-a","ts_ms":0,"readings":{}}"#.into(), "invalid_message"),
        (r#"{"action":"RealTimeDataUpdate","seq":1,"ts_ms":0,"readings":{}}"#.into(), "invalid_message"),
        (r#"{"action":"RealTimeDataUpdate","device_id":"esp32-a","seq":"1","ts_ms":0,"readings":{}}"#.into(), "invalid_message"),
        (r#"{"action":"RealTimeDataUpdate","device_id":7,"seq":1,"ts_ms":0,"readings":{}}"#.into(), "invalid_message"),
        (update("esp32-a", "[1,2]"), "invalid_message"),
        (update("esp32-a", r#"{"t":"hot"}"#), "non_finite_reading"),
        (update("esp32-a", r#"{"t":null}"#), "non_finite_reading"),
        (update("esp32-a", r#"{"t":{"v":1}}"#), "non_finite_reading"),
        // Huge and negative numbers.
        (update("esp32-a", r#"{"t":1e400}"#), "invalid_message"),
        (r#"{"action":"RealTimeDataUpdate","device_id":"esp32-a","seq":-1,"ts_ms":0,"readings":{}}"#.into(), "invalid_message"),
        (r#"{"action":"RealTimeDataUpdate","device_id":"esp32-a","seq":18446744073709551616,"ts_ms":0,"readings":{}}"#.into(), "invalid_message"),
        (r#"{"action":"RealTimeDataUpdate","device_id":"esp32-a","seq":4294967296,"ts_ms":0,"readings":{}}"#.into(), "invalid_message"),
        (r#"{"action":"RealTimeDataUpdate","device_id":"esp32-a","seq":1,"ts_ms":-5,"readings":{}}"#.into(), "invalid_message"),
        // Bad names and too many metrics.
        (update("esp32-a", r#"{"bad name":1}"#), "invalid_metric_name"),
        (update("esp32-a", &format!(r#"{{"{}":1}}"#, "n".repeat(33))), "invalid_metric_name"),
        (update("esp32-a", &format!("{{{many}}}")), "too_many_metrics"),
        (update(&"d".repeat(65), "{}"), "invalid_device_id"),
        // Another device's id, in a reading and in an acknowledgement.
        (update("esp32-b", r#"{"t":1}"#), "device_id_mismatch"),
        (update("../esp32-a", r#"{"t":1}"#), "device_id_mismatch"),
        (r#"{"action":"ControlAck","device_id":"esp32-b","sample_interval_ms":1000}"#.into(), "device_id_mismatch"),
        // Absurd acknowledgements, and what only dashboards send.
        (r#"{"action":"ControlAck","device_id":"esp32-a","sample_interval_ms":-1}"#.into(), "invalid_message"),
        (r#"{"action":"ControlAck","device_id":"esp32-a","sample_interval_ms":1e400}"#.into(), "invalid_message"),
        (r#"{"action":"ControlAck","device_id":"esp32-a"}"#.into(), "invalid_message"),
        (r#"{"action":"ControlCmd","interval_ms":1000}"#.into(), "wrong_role"),
    ];
    expect_errors(&mut device, &cases).await;
    // A binary frame, even a valid reading: API Gateway closes that connection with 1003.
    let mut binary = connect(&ws, "role=client").await;
    binary
        .send(Message::binary(
            update("esp32-a", r#"{"t":1}"#).into_bytes(),
        ))
        .await
        .expect("sent");
    assert_eq!(close_code(&mut binary).await, 1003);

    assert_silent(&mut follower).await;
    assert_silent(&mut other_follower).await;
    let (status, body) = get_json(&format!("{http}/history?device_id=esp32-b")).await;
    assert_eq!(
        (status, body["items"].clone()),
        (200, json!([])),
        "nothing filed under esp32-b"
    );
    let (_, body) = get_json(&format!("{http}/history?device_id=esp32-a")).await;
    assert_eq!(body["items"], json!([]), "nothing filed under esp32-a");

    // The device is still itself: its next valid reading is stored and pushed.
    send(&mut device, &reading("esp32-a", 7, 0)).await;
    let pushed = next_json(&mut follower).await;
    assert_eq!(
        (pushed["type"].clone(), pushed["seq"].clone()),
        (json!("reading"), json!(7))
    );
    assert_silent(&mut other_follower).await;
    let (_, body) = get_json(&format!("{http}/history?device_id=esp32-a")).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    gateway.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn negative_absurd_and_malformed_intervals_are_refused() {
    let (gateway, ws, _) = start().await;
    let mut device = device(&ws, "esp32-a").await;
    let mut dashboard = connect(&ws, "role=client").await;
    let mut bystander = connect(&ws, "role=client").await;
    let cmd = |fields: &str| format!(r#"{{"action":"ControlCmd",{fields}}}"#);
    let cases: Vec<(String, &str)> = vec![
        (cmd(r#""interval_ms":0"#), "interval_out_of_range"),
        (cmd(r#""interval_ms":499"#), "interval_out_of_range"),
        (cmd(r#""interval_ms":3600001"#), "interval_out_of_range"),
        (cmd(r#""interval_ms":4294967296"#), "interval_out_of_range"),
        (
            cmd(r#""interval_ms":18446744073709551615"#),
            "interval_out_of_range",
        ),
        (
            cmd(r#""interval_ms":18446744073709551616"#),
            "invalid_message",
        ),
        (cmd(r#""interval_ms":-1000"#), "invalid_message"),
        (cmd(r#""interval_ms":1.5"#), "invalid_message"),
        (cmd(r#""interval_ms":1e400"#), "invalid_message"),
        (cmd(r#""interval_ms":"1000""#), "invalid_message"),
        (cmd(r#""interval_ms":null"#), "invalid_control"),
        (r#"{"action":"ControlCmd"}"#.into(), "invalid_control"),
        (
            cmd(r#""interval_ms":1000,"device_id":"esp32-a","sample_interval_ms":1000"#),
            "invalid_control",
        ),
        (cmd(r#""device_id":"esp32-a""#), "invalid_control"),
        (
            cmd(r#""device_id":"esp32-a","sample_interval_ms":0"#),
            "sample_interval_out_of_range",
        ),
        (
            cmd(r#""device_id":"esp32-a","sample_interval_ms":249"#),
            "sample_interval_out_of_range",
        ),
        (
            cmd(r#""device_id":"esp32-a","sample_interval_ms":4294967296"#),
            "sample_interval_out_of_range",
        ),
        (
            cmd(r#""device_id":"esp32-a","sample_interval_ms":-250"#),
            "invalid_message",
        ),
        (
            cmd(r#""device_id":"../esp32-a","sample_interval_ms":1000"#),
            "invalid_device_id",
        ),
        (
            cmd(r#""device_id":"","sample_interval_ms":1000"#),
            "invalid_device_id",
        ),
        (
            cmd(&format!(
                r#""device_id":"{}","sample_interval_ms":1000"#,
                "d".repeat(65)
            )),
            "invalid_message",
        ),
        (
            cmd(r#""device_id":"esp32-nobody","sample_interval_ms":1000"#),
            "device_not_connected",
        ),
        (update("esp32-a", r#"{"t":1}"#), "wrong_role"),
        (
            r#"{"action":"ControlAck","device_id":"esp32-a","sample_interval_ms":1000}"#.into(),
            "wrong_role",
        ),
    ];
    expect_errors(&mut dashboard, &cases).await;
    // No command reached the device, and the bystander dashboard heard nothing.
    assert_silent(&mut device).await;
    assert_silent(&mut bystander).await;
    // The dashboard still works: the bounds themselves are accepted.
    assert_eq!(
        ask(&mut dashboard, &cmd(r#""interval_ms":500"#)).await,
        json!({"type": "interval", "interval_ms": 500})
    );
    assert_eq!(
        ask(&mut dashboard, &cmd(r#""interval_ms":3600000"#)).await,
        json!({"type": "interval", "interval_ms": 3600000})
    );
    gateway.shutdown().await.expect("shuts down");
}

/// One raw HTTP/1.1 GET: the status (no client library to normalise the path).
async fn raw_get(http: &str, target: &str) -> (u16, String) {
    let addr = http.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("TCP connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("answered in time")
        {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:.200}"));
    (status, answer)
}

#[tokio::test]
async fn bad_rest_parameters_are_400_and_path_traversal_is_404() {
    let (gateway, ws, http) = start().await;
    let mut dashboard = connect(&ws, "role=client").await;
    for query in [
        String::new(),
        "device_id=".into(),
        "device_id=../../etc/passwd".into(),
        "device_id=..%2F..%2Fetc%2Fpasswd".into(),
        format!("device_id={}", "d".repeat(65)),
        "device_id=esp32-a&limit=0".into(),
        "device_id=esp32-a&limit=1001".into(),
        "device_id=esp32-a&limit=-1".into(),
        "device_id=esp32-a&limit=1e400".into(),
        "device_id=esp32-a&limit=18446744073709551616".into(),
        "device_id=esp32-a&from_ms=-1".into(),
        "device_id=esp32-a&from_ms=1e400".into(),
        "device_id=esp32-a&to_ms=99999999999999999999".into(),
        "device_id=esp32-a&from_ms=9223372036854775807".into(),
        "device_id=esp32-a&from_ms=20&to_ms=10".into(),
        "device_id=esp32-a&next=".into(),
        "device_id=esp32-a&next=not-a-token".into(),
        "device_id=esp32-a&unknown=1".into(),
        format!("device_id=esp32-a&pad={}", "q".repeat(60 * 1024)),
    ] {
        let (status, body) = raw_get(&http, &format!("/history?{query}")).await;
        assert_eq!(status, 400, "{query:.80}: {body:.300}");
        assert!(body.contains(r#""error":"bad_request""#), "{body:.300}");
    }
    let (status, _) = raw_get(&http, "/devices?x=1").await;
    assert_eq!(status, 400);
    // Over the server's header buffer: refused before any route runs.
    let (status, _) = raw_get(
        &http,
        &format!("/history?device_id={}", "q".repeat(1024 * 1024)),
    )
    .await;
    assert_eq!(status, 431);
    let (status, _) = raw_get(
        &http,
        &format!("/history?device_id={}", "q".repeat(100 * 1024)),
    )
    .await;
    assert_eq!(status, 414, "over the 64 KB a URI may have");

    for target in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/dashboard.js/../../Cargo.toml",
        "/history/../../Cargo.toml",
        "//etc/passwd",
        "/web/index.html",
        "/src/lib.rs",
    ] {
        let (status, body) = raw_get(&http, target).await;
        assert_eq!(status, 404, "{target}: {body:.300}");
        assert!(!body.contains("[package]"), "{target} leaked a file");
    }
    let (status, _) = raw_get(&http, "/dashboard.js").await;
    assert_eq!(status, 200);
    // The WebSocket side is unaffected.
    assert_eq!(
        ask(
            &mut dashboard,
            r#"{"action":"ControlCmd","interval_ms":2000}"#
        )
        .await,
        json!({"type": "interval", "interval_ms": 2000})
    );
    gateway.shutdown().await.expect("shuts down");
}
