//! The telemetry system on DynamoDB: the history tests of `gateway.rs` against
//! `DynamoHistory`, the conditional push-interval update against `DynamoStore`, and the
//! binary's `--dynamodb-endpoint` keeping history across a restart.
//!
//! Compiled with the `integration` feature only; the server is named by
//! `AWS_ENDPOINT_URL_DYNAMODB` (`cargo xtask test` starts moto's and runs this).
#![cfg(feature = "integration")]

mod common;

use std::process::Command;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use serde_json::json;
use telemetry::{ManualClock, Telemetry};
use wsgw_aws::dynamo::local::unique_name as unique;
use wsgw_aws::dynamo::{local, DynamoHistory, DynamoStore, DYNAMODB_ENDPOINT_ENV};
use wsgw_core::{Backends, ConnectionId, Request, Router};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::testing::{successful_json, ServerProcess};
use wsgw_memory::MemorySink;

fn endpoint() -> String {
    local::endpoint_from_env().unwrap_or_else(|missing| panic!("{missing}"))
}

/// New tables of this test's own, created as the SAM template would.
async fn tables() -> (DynamoStore, DynamoHistory) {
    local::unique_tables(&endpoint(), "telemetry")
        .await
        .expect("the tables are created")
}

async fn start_on_dynamodb() -> (RunningGateway, String, String) {
    let (store, history) = tables().await;
    let sockets = Arc::new(MemorySink::new());
    let state = Telemetry::new();
    let router = telemetry::router(state);
    let running = LocalGateway::new(router)
        .with_sockets(sockets)
        .with_store(Arc::new(store))
        .with_history(Arc::new(history))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds");
    let ws = running.ws_url();
    let http = format!("http://{}", running.local_addr());
    (running, ws, http)
}

#[tokio::test]
async fn history_pages_over_http_return_every_reading_once_in_order_on_dynamodb() {
    let (gateway, ws, http) = start_on_dynamodb().await;
    history_paginates_over_every_reading_once_ascending(&ws, &http, "esp32-dynamo").await;
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_invocations_push_once_per_interval_with_dynamodb_conditional_updates() {
    let (store, history) = tables().await;
    let sink = Arc::new(MemorySink::new());
    // Dated in the future: DynamoHistory hides records whose TTL passed by the real clock.
    let clock = ManualClock::new(Utc.timestamp_millis_opt(4_102_444_800_000).unwrap());
    let state = Telemetry::new().with_clock(clock.clone());
    let router: Router<Telemetry> = telemetry::router(state);
    let backends = Backends::new(Arc::new(store), sink.clone()).with_history(Arc::new(history));

    let open = |id: &str, query: &[(&str, &str)]| {
        let id = ConnectionId::new(id);
        let mut request = Request::connect(id.clone());
        for (name, value) in query {
            request = request.with_query(*name, *value);
        }
        let router = router.clone();
        let sink = sink.clone();
        let backends = backends.clone();
        async move {
            let reply = router
                .handle(&backends, request)
                .await
                .expect("$connect runs");
            assert_eq!(reply.status, 200);
            sink.open(&id, None, None);
            id
        }
    };
    let device = open(
        "DEVICEconnAAAA=",
        &[("role", "device"), ("device_id", "esp32-01")],
    )
    .await;
    let dashboards = [
        open("DASHconnAAAAAA=", &[("role", "client")]).await,
        open(
            "DASHconnBBBBBB=",
            &[("role", "client"), ("device_id", "esp32-01")],
        )
        .await,
    ];

    for round in 0..4u64 {
        let reading =
            |seq: u64| Request::message(device.clone(), reading("esp32-01", seq, 0).to_string());
        let (one, two, three) = tokio::join!(
            router.handle(&backends, reading(3 * round)),
            router.handle(&backends, reading(3 * round + 1)),
            router.handle(&backends, reading(3 * round + 2)),
        );
        for outcome in [one, two, three] {
            outcome.expect("the reading is handled");
        }
        clock.advance(Duration::milliseconds(1000));
    }
    for dashboard in &dashboards {
        let pushed = sink.take_sent(dashboard);
        assert_eq!(pushed.len(), 4, "one push per interval: {pushed:?}");
    }
    assert!(sink.take_sent(&device).is_empty(), "no error replies");
}

fn start_binary(connections: &str, history: &str) -> (ServerProcess, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--dynamodb-endpoint",
            &endpoint(),
        ])
        .args([
            "--connections-table",
            connections,
            "--history-table",
            history,
        ])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove(DYNAMODB_ENDPOINT_ENV)
        .env_remove("TELEMETRY_DEVICE_TOKEN");
    let server = ServerProcess::start(command);
    assert!(
        server.first_line().contains("in DynamoDB"),
        "{:?}",
        server.first_line()
    );
    let ws = server.url("ws://");
    (server, ws)
}

#[tokio::test]
async fn the_binary_on_dynamodb_keeps_history_across_a_restart() {
    let (connections, history) = (unique("telemetry-bin-conn"), unique("telemetry-bin-hist"));
    let (running, ws) = start_binary(&connections, &history);
    let mut dashboard = connect(&ws, "role=client").await;
    let mut device = device(&ws, "esp32-keep").await;
    let now = Utc::now().timestamp_millis();
    for seq in 0..3 {
        send(
            &mut device,
            &reading("esp32-keep", seq, now - 3 + seq as i64),
        )
        .await;
    }
    // Messages of one connection are handled concurrently (as on API Gateway), so the
    // dashboard's first reading may be any of the three; the history holds all of them
    // before the restart.
    let first = next_json(&mut dashboard).await;
    assert_eq!(first["device_id"], "esp32-keep", "{first}");
    let before = ws.replace("ws://", "http://");
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = all_history(&before, "device_id=esp32-keep").await.0;
        if stored.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        stored.len(),
        3,
        "the readings stored before the restart: {stored:?}"
    );
    drop(device);
    drop(dashboard);
    running.assert_graceful_stop();

    let (running, ws) = start_binary(&connections, &history);
    let http = ws.replace("ws://", "http://");
    let (items, _) = all_history(&http, "device_id=esp32-keep").await;
    let seqs: Vec<u64> = items.iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    let (status, body) = get_json(&format!("{http}/devices")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"devices": []}),
        "the device left before the restart"
    );
    running.assert_graceful_stop();
}

/// `telemetry invoke` with the DynamoDB flags, environment emptied (no credentials).
fn invoke_on_dynamodb(connections: &str, history: &str, events: &[&str]) -> Vec<serde_json::Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .env_clear()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["invoke", "--dynamodb-endpoint", &endpoint()])
        .args([
            "--connections-table",
            connections,
            "--history-table",
            history,
        ]);
    for event in events {
        command.args(["--event", event]);
    }
    successful_json(&command.output().expect("telemetry invoke runs"))
}

#[test]
fn invoke_on_a_dynamodb_endpoint_keeps_readings_and_devices_between_runs() {
    let (connections, history) = (unique("invoke-connections"), unique("invoke-history"));

    let first = invoke_on_dynamodb(
        &connections,
        &history,
        &[
            "events/connect-device.json",
            "events/connect-dashboard.json",
            "events/realtimedataupdate.json",
        ],
    );
    assert_eq!(first[2]["posted"][0]["json"]["type"], "reading");

    // Another process: the device's connection and its reading are in the tables.
    let second = invoke_on_dynamodb(
        &connections,
        &history,
        &["events/history.json", "events/devices.json"],
    );
    let body = |out: &serde_json::Value| -> serde_json::Value {
        serde_json::from_str(out["response"]["body"].as_str().expect("a body")).expect("JSON")
    };
    assert_eq!(body(&second[0])["items"][0]["seq"], 42);
    assert_eq!(body(&second[1])["devices"][0]["device_id"], "esp32-01");
}
