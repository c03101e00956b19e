//! The `telemetry` binary in Lambda mode, as AWS runs it, on DynamoDB:
//! `AWS_LAMBDA_RUNTIME_API` points at a Lambda Runtime API on loopback, the tables are
//! on a DynamoDB-compatible server, Management API posts land in a recorder, and REST
//! proxy events from the history API come in next to the WebSocket events.
//!
//! Compiled with the `integration` feature only; the server is named by
//! `AWS_ENDPOINT_URL_DYNAMODB` (`cargo xtask test` starts moto's and runs this).
#![cfg(feature = "integration")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use wsgw_aws::dynamo::{local, DynamoHistory, DynamoStore, DYNAMODB_ENDPOINT_ENV};
use wsgw_core::{ConnectionId, ConnectionStore};
use wsgw_memory::gateway::lambda_function::{assert_arm64_answers_as_host, LambdaFunction};
use wsgw_memory::gateway::{Invocation, LambdaRuntimeEmulator, ManagementRecorder};
use wsgw_memory::testing::events::{connect, disconnect, message, rest};

const WAIT: Duration = Duration::from_secs(30);
const DEVICE: &str = "DEVICEconnAAAA=";
const DASHBOARD: &str = "DASHconnAAAAAA=";

fn endpoint() -> String {
    local::endpoint_from_env().unwrap_or_else(|missing| panic!("{missing}"))
}

/// New tables of this test's own, created as the SAM template would.
async fn tables() -> (DynamoStore, DynamoHistory) {
    local::unique_tables(&endpoint(), "telemetry")
        .await
        .expect("the tables are created")
}

async fn response(runtime: &LambdaRuntimeEmulator, event: Value) -> Value {
    match runtime.invoke(event, WAIT).await {
        Some(Invocation::Response(response)) => response,
        other => panic!("expected a response, got {other:?}"),
    }
}

async fn invoke(runtime: &LambdaRuntimeEmulator, event: Value) -> i64 {
    response(runtime, event).await["statusCode"]
        .as_i64()
        .unwrap_or(-1)
}

/// What was posted, per connection, as JSON.
fn posted(management: &ManagementRecorder) -> BTreeMap<String, Vec<Value>> {
    let mut by_connection: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for call in management.take_calls() {
        assert_eq!(call.method, "POST", "{call:?}");
        by_connection
            .entry(call.connection_id)
            .or_default()
            .push(serde_json::from_slice(&call.body).unwrap_or(Value::Null));
    }
    by_connection
}

fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"]
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str())
}

/// `command` (the telemetry binary, or its arm64 build under qemu) configured as the
/// template configures the function, on the tables `store` and `history`, quiet.
fn on_tables(mut command: Command, store: &DynamoStore, history: &DynamoHistory) -> Command {
    command
        .env(DYNAMODB_ENDPOINT_ENV, endpoint())
        .env("WSGW_CONNECTIONS_TABLE", store.table())
        .env("WSGW_HISTORY_TABLE", history.table())
        .env("TELEMETRY_HISTORY_TTL_DAYS", "7")
        .env("TELEMETRY_DEVICE_TOKEN", "")
        .env("TELEMETRY_CORS_ORIGIN", "https://dashboard.example")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[tokio::test]
async fn telemetry_runs_as_a_lambda_for_websocket_routes_and_rest_history() {
    let (store, history) = tables().await;
    let function = LambdaFunction::start(on_tables(
        Command::new(env!("CARGO_BIN_EXE_telemetry")),
        &store,
        &history,
    ))
    .await
    .expect("telemetry starts");
    let (runtime, management) = (function.runtime(), function.management());

    // $connect: a device and a dashboard; a device without an id is refused.
    let device = connect(DEVICE, json!({"role": "device", "device_id": "esp32-01"}));
    assert_eq!(invoke(runtime, device).await, 200);
    assert_eq!(
        invoke(runtime, connect(DASHBOARD, json!({"role": "client"}))).await,
        200
    );
    assert_eq!(
        invoke(runtime, connect("BAD=", json!({"role": "device"}))).await,
        400
    );
    let stored = store
        .get(&ConnectionId::new(DEVICE))
        .await
        .expect("readable")
        .expect("the device is stored");
    assert!(stored.groups.contains("device:esp32-01"));

    // The dashboard's interval, then a reading pushed to it.
    let interval = message(
        DASHBOARD,
        &json!({"action": "ControlCmd", "interval_ms": 2000}),
    );
    assert_eq!(invoke(runtime, interval).await, 200);
    let now = chrono::Utc::now().timestamp_millis();
    for seq in 0..3 {
        let reading = message(
            DEVICE,
            &json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": seq,
                   "ts_ms": now - 10 + seq, "readings": {"temperature_c": 21.5, "uptime_s": seq}}),
        );
        assert_eq!(invoke(runtime, reading).await, 200);
    }
    let calls = posted(management);
    assert_eq!(
        calls[DASHBOARD][0],
        json!({"type": "interval", "interval_ms": 2000})
    );
    assert_eq!(
        calls[DASHBOARD].len(),
        2,
        "one reading within 2 s: {calls:?}"
    );
    assert_eq!(calls[DASHBOARD][1]["type"], "reading");
    assert_eq!(calls[DASHBOARD][1]["seq"], 0);
    assert!(!calls.contains_key(DEVICE), "no error replies: {calls:?}");

    // Control to the device, its ack to the dashboard.
    let control = message(
        DASHBOARD,
        &json!({"action": "ControlCmd", "device_id": "esp32-01", "sample_interval_ms": 5000}),
    );
    assert_eq!(invoke(runtime, control).await, 200);
    assert_eq!(
        posted(management)[DEVICE],
        vec![json!({"type": "control", "sample_interval_ms": 5000})]
    );
    let ack = message(
        DEVICE,
        &json!({"action": "ControlAck", "device_id": "esp32-01", "sample_interval_ms": 5000}),
    );
    assert_eq!(invoke(runtime, ack).await, 200);
    assert_eq!(
        posted(management)[DASHBOARD],
        vec![json!({"type": "control_ack", "device_id": "esp32-01", "sample_interval_ms": 5000})]
    );

    // The REST history API: two pages, CORS on every answer, 400s, the preflight.
    let first = response(
        runtime,
        rest(
            "GET",
            "/history",
            json!({"device_id": "esp32-01", "limit": "2"}),
        ),
    )
    .await;
    assert_eq!(first["statusCode"], 200, "{first}");
    assert_eq!(
        header(&first, "access-control-allow-origin"),
        Some("https://dashboard.example")
    );
    let body: Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert_eq!(body["items"][0]["seq"], 0);
    let next = body["next"].as_str().expect("a next token").to_owned();
    let second = response(
        runtime,
        rest(
            "GET",
            "/history",
            json!({"device_id": "esp32-01", "limit": "2", "next": next}),
        ),
    )
    .await;
    let body: Value = serde_json::from_str(second["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["items"][0]["seq"], 2);
    assert_eq!(
        body["items"][0]["readings"],
        json!({"temperature_c": 21.5, "uptime_s": 2.0})
    );
    assert_eq!(body["next"], Value::Null);

    let bad = response(runtime, rest("GET", "/history", json!({"limit": "2"}))).await;
    assert_eq!(bad["statusCode"], 400);
    assert_eq!(
        header(&bad, "access-control-allow-origin"),
        Some("https://dashboard.example")
    );
    let preflight = response(runtime, rest("OPTIONS", "/history", json!({}))).await;
    assert_eq!(preflight["statusCode"], 204);
    assert!(header(&preflight, "access-control-allow-methods")
        .unwrap()
        .contains("GET"));
    let devices = response(runtime, rest("GET", "/devices", json!({}))).await;
    let body: Value = serde_json::from_str(devices["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["devices"][0]["device_id"], "esp32-01");
    assert_eq!(body["devices"][0]["sample_interval_ms"], 5000);

    // $disconnect forgets the device.
    let leave = disconnect(DEVICE);
    assert_eq!(invoke(runtime, leave).await, 200);
    assert_eq!(
        store
            .get(&ConnectionId::new(DEVICE))
            .await
            .expect("readable"),
        None
    );
}

#[tokio::test]
#[ignore = "needs qemu-aarch64 and the arm64 bootstrap: cargo xtask test installs, builds and runs it"]
async fn the_arm64_bootstrap_under_qemu_answers_the_shipped_events_as_this_build_does() {
    // Ids and clocks made while handling differ in every run; everything else must be
    // equal. Each build runs on tables of its own, empty as a new stack's.
    assert_arm64_answers_as_host(
        Path::new(env!("CARGO_BIN_EXE_telemetry")),
        "telemetry",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("events"),
        &[
            "ts_ms",
            "timestamp",
            "connected_at",
            "last_active_at",
            "expires_at",
        ],
        2,
        |command| async {
            let (store, history) = tables().await;
            on_tables(command, &store, &history)
        },
    )
    .await;
}
