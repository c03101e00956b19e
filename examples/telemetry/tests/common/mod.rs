//! End-to-end checks shared by the LocalGateway tests (memory) and the DynamoDB tests:
//! real WebSocket clients and plain HTTP against a running gateway.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
// Each test binary uses part of these.
#[allow(unused_imports)]
pub use wsgw_memory::testing::ws::{
    close_code, drain, next_json, send_json as send, Client as Socket, WAIT,
};

pub async fn connect(ws_url: &str, query: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(format!("{ws_url}/?{query}"))
        .await
        .unwrap_or_else(|e| panic!("connect with {query}: {e}"));
    socket
}

pub async fn device(ws_url: &str, device_id: &str) -> Socket {
    connect(ws_url, &format!("role=device&device_id={device_id}")).await
}

pub fn reading(device_id: &str, seq: u64, ts_ms: i64) -> Value {
    json!({
        "action": "RealTimeDataUpdate",
        "device_id": device_id,
        "seq": seq,
        "ts_ms": ts_ms,
        "readings": {"temperature_c": 20.0 + (seq % 10) as f64 / 10.0, "rssi_dbm": -61}
    })
}

pub async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("HTTP answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Pages through `/history` and returns every item and the number of pages.
pub async fn all_history(http: &str, query: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next: Option<String> = None;
    loop {
        let mut url = format!("{http}/history?{query}");
        if let Some(token) = &next {
            url.push_str("&next=");
            url.push_str(&encode(token));
        }
        let (status, body) = get_json(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages += 1;
        items.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["next"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => return (items, pages),
        }
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A device stores `count` readings (1 ms apart, ending now); `/history` then returns
/// each exactly once, oldest first, over several pages, and a range returns its slice.
pub async fn history_paginates_over_every_reading_once_ascending(
    ws_url: &str,
    http: &str,
    device_id: &str,
) {
    const COUNT: u64 = 230;
    let mut socket = device(ws_url, device_id).await;
    let start = chrono::Utc::now().timestamp_millis() - COUNT as i64 - 1000;
    for seq in 0..COUNT {
        send(&mut socket, &reading(device_id, seq, start + seq as i64)).await;
    }
    // Every reading is stored once the device's socket has drained its messages. Each
    // costs a few store requests, which a loaded DynamoDB emulator serves slowly: the
    // wait fails when storing stalls for `WAIT`, not when it is merely slow (the count
    // rises at most COUNT times, so the loop is bounded).
    let mut stored = 0;
    let mut stalled_at = tokio::time::Instant::now() + WAIT;
    loop {
        let (items, _) = all_history(http, &format!("device_id={device_id}&limit=1000")).await;
        if items.len() as u64 >= COUNT {
            break;
        }
        if items.len() > stored {
            stored = items.len();
            stalled_at = tokio::time::Instant::now() + WAIT;
        }
        assert!(
            tokio::time::Instant::now() < stalled_at,
            "only {stored} of {COUNT} readings stored, none more for {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (items, pages) = all_history(http, &format!("device_id={device_id}&limit=50")).await;
    assert_eq!(pages, 5);
    let seqs: Vec<u64> = items.iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..COUNT).collect::<Vec<_>>());
    let times: Vec<i64> = items.iter().map(|i| i["ts_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "ascending by time");
    assert_eq!(items[0]["readings"]["rssi_dbm"], -61.0);

    let (from, to) = (start + 100, start + 149);
    let (slice, pages) = all_history(
        http,
        &format!("device_id={device_id}&from_ms={from}&to_ms={to}&limit=20"),
    )
    .await;
    assert_eq!(pages, 3);
    let seqs: Vec<u64> = slice.iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (100..150).collect::<Vec<_>>());

    let (status, body) =
        get_json(&format!("{http}/history?device_id={device_id}&limit=5000")).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("limit"));
    let (status, _) = get_json(&format!(
        "{http}/history?device_id={device_id}&next=not-a-token"
    ))
    .await;
    assert_eq!(status, 400);
    let _ = socket.close(None).await;
}
