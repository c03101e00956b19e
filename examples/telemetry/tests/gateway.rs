//! The telemetry system end to end on the LocalGateway: real WebSocket devices and
//! dashboards, real HTTP for the REST API and the dashboard page.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use telemetry::Telemetry;
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::{MemorySink, MemoryStore};

async fn start() -> (RunningGateway, String, String) {
    let sockets = Arc::new(MemorySink::new());
    let state = Telemetry::new();
    let router = telemetry::router(state);
    let running = LocalGateway::new(router)
        .with_sockets(sockets)
        .assets(telemetry::dashboard())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds");
    let ws = running.ws_url();
    let http = format!("http://{}", running.local_addr());
    (running, ws, http)
}

async fn set_interval(dashboard: &mut Socket, interval_ms: u64) {
    send(
        dashboard,
        &json!({"action": "ControlCmd", "interval_ms": interval_ms}),
    )
    .await;
    assert_eq!(
        next_json(dashboard).await,
        json!({"type": "interval", "interval_ms": interval_ms})
    );
}

#[tokio::test]
async fn dashboards_with_different_intervals_get_the_latest_readings_at_their_own_pace() {
    let (gateway, ws, _) = start().await;
    let mut fast = connect(&ws, "role=client").await;
    let mut slow = connect(&ws, "role=client").await;
    let mut elsewhere = connect(&ws, "role=client&device_id=esp32-other").await;
    set_interval(&mut fast, 500).await;
    set_interval(&mut slow, 1500).await;

    // A device sampling every 50 ms for 3 s.
    let mut device = device(&ws, "esp32-01").await;
    let sender = tokio::spawn(async move {
        for seq in 0..60u64 {
            let now = chrono::Utc::now().timestamp_millis();
            send(&mut device, &reading("esp32-01", seq, now)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        device
    });
    let (fast_got, slow_got, elsewhere_got) = tokio::join!(
        drain(&mut fast, Duration::from_millis(3400)),
        drain(&mut slow, Duration::from_millis(3400)),
        drain(&mut elsewhere, Duration::from_millis(3400)),
    );
    let _device = sender.await.unwrap();

    // Exact counts are the harness tests' job (manual clock); here real sockets and a
    // busy machine allow some slack.
    for (got, interval_ms, expected) in [(&fast_got, 500, 4..=7), (&slow_got, 1500, 2..=3)] {
        assert!(got
            .iter()
            .all(|m| m["type"] == "reading" && m["device_id"] == "esp32-01"));
        assert!(
            expected.contains(&got.len()),
            "{interval_ms} ms over 3 s: {} pushes",
            got.len()
        );
        let seqs: Vec<u64> = got.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs[0], 0, "the first reading is pushed at once");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        // Never two pushes within one interval (device timestamps; 150 ms for readings
        // queued behind one another on their way in).
        let times: Vec<i64> = got.iter().map(|m| m["ts_ms"].as_i64().unwrap()).collect();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] >= interval_ms - 150),
            "{interval_ms}: {times:?}"
        );
    }
    assert!(elsewhere_got.is_empty(), "{elsewhere_got:?}");
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn history_pages_over_http_return_every_reading_once_in_order() {
    let (gateway, ws, http) = start().await;
    history_paginates_over_every_reading_once_ascending(&ws, &http, "esp32-hist").await;
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_sample_interval_command_travels_to_the_device_and_the_ack_back() {
    let (gateway, ws, http) = start().await;
    let mut device = device(&ws, "esp32-01").await;
    let mut dashboard = connect(&ws, "role=client").await;
    send(
        &mut dashboard,
        &json!({"action": "ControlCmd", "device_id": "esp32-01", "sample_interval_ms": 2000}),
    )
    .await;
    assert_eq!(
        next_json(&mut device).await,
        json!({"type": "control", "sample_interval_ms": 2000})
    );
    send(
        &mut device,
        &json!({"action": "ControlAck", "device_id": "esp32-01", "sample_interval_ms": 2000}),
    )
    .await;
    assert_eq!(
        next_json(&mut dashboard).await,
        json!({"type": "control_ack", "device_id": "esp32-01", "sample_interval_ms": 2000})
    );
    let (status, body) = get_json(&format!("{http}/devices")).await;
    assert_eq!(status, 200);
    assert_eq!(body["devices"][0]["device_id"], "esp32-01");
    assert_eq!(body["devices"][0]["sample_interval_ms"], 2000);

    send(&mut device, &json!({"action": "Hello"})).await;
    assert_eq!(next_json(&mut device).await["code"], "unknown_action");
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_rest_api_answers_cors_preflights_and_the_page_is_served_at_the_root() {
    let (gateway, _ws, http) = start().await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{http}/history"))
        .header("origin", "https://dashboard.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let bad = client.get(format!("{http}/history")).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(bad.headers()["access-control-allow-origin"], "*");

    let page = client.get(format!("{http}/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("ESP32 telemetry"));
    let script = client
        .get(format!("{http}/dashboard.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status().as_u16(), 200);
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_device_with_a_bad_query_is_refused_at_the_handshake() {
    let (gateway, ws, _) = start().await;
    let refused = tokio_tungstenite::connect_async(format!("{ws}/?role=device")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400)
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    gateway.shutdown().await.unwrap();
}

/// The `sent:<device>` attributes of every dashboard record in `store`, and the
/// largest record's attributes as JSON bytes.
async fn sent_entries(store: &MemoryStore) -> (Vec<usize>, usize) {
    use wsgw_core::{ConnectionStore, PageRequest};
    let mut counts = Vec::new();
    let mut largest = 0;
    let page = store
        .list_all(PageRequest::first(1000))
        .await
        .expect("lists");
    for connection in page.items {
        if connection.attributes.get("role").and_then(|r| r.as_str()) != Some("client") {
            continue;
        }
        counts.push(
            connection
                .attributes
                .keys()
                .filter(|k| k.starts_with(telemetry::keys::SENT_PREFIX))
                .count(),
        );
        let bytes = serde_json::to_vec(&connection.attributes)
            .expect("JSON")
            .len();
        largest = largest.max(bytes);
    }
    (counts, largest)
}

#[tokio::test]
async fn minted_device_ids_cannot_grow_a_dashboards_record() {
    // Without keys anyone may connect as any device id: 600 ids, each sending once.
    const MINTED: usize = 600;
    let store = Arc::new(MemoryStore::new());
    let sockets = Arc::new(MemorySink::new());
    let state = Telemetry::new();
    let router = telemetry::router(state);
    let gateway = LocalGateway::new(router)
        .with_sockets(sockets)
        .with_store(store.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds");
    let ws = gateway.ws_url();
    let mut watcher = connect(&ws, "role=client").await;
    let now = chrono::Utc::now().timestamp_millis();
    for batch in (0..MINTED).collect::<Vec<_>>().chunks(25) {
        let minting = batch.iter().map(|i| {
            let ws = ws.clone();
            async move {
                let id = format!("minted-{i:04}");
                let mut socket = device(&ws, &id).await;
                send(&mut socket, &reading(&id, 1, now)).await;
                socket
            }
        });
        let sockets = futures::future::join_all(minting).await;
        // Each first reading of a device is due: the watcher gets all of them.
        for _ in batch {
            assert_eq!(next_json(&mut watcher).await["type"], "reading");
        }
        drop(sockets);
    }
    let (counts, largest) = sent_entries(&store).await;
    assert_eq!(counts.len(), 1);
    assert!(
        counts[0] <= telemetry::DEFAULT_MAX_TRACKED_DEVICES,
        "{} sent: entries after {MINTED} minted ids",
        counts[0]
    );
    // Bounded bytes, far from DynamoDB's 400 KB item limit whatever is minted.
    assert!(largest < 32 * 1024, "{largest} bytes");
}
