//! The telemetry routes on the socket-free harness, with a clock moved by hand.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use telemetry::{ManualClock, Telemetry};
use wsgw_core::{HistoryQuery, HistoryStore, HttpRequest, HttpResponse, Payload, Request};
use wsgw_memory::{ConnectError, ConnectOptions, Harness, MemoryHistory, TestClient};

/// 2100-01-01T00:00:00Z: handlers run on a manual clock, and the memory history
/// expires records by the real clock, so test readings are dated in the future.
const T0: i64 = 4_102_444_800_000;

struct World {
    harness: Harness<Telemetry>,
    clock: ManualClock,
    history: Arc<MemoryHistory>,
}

fn world() -> World {
    world_with(|state| state)
}

fn world_with(configure: impl FnOnce(Telemetry) -> Telemetry) -> World {
    let clock = ManualClock::new(Utc.timestamp_millis_opt(T0).unwrap());
    let history = Arc::new(MemoryHistory::new());
    let state = configure(Telemetry::new().with_clock(clock.clone()));
    let harness = Harness::new(telemetry::router(state)).with_history(history.clone());
    World {
        harness,
        clock,
        history,
    }
}

impl World {
    async fn device(&self, device_id: &str) -> TestClient<Telemetry> {
        self.harness
            .connect_with(
                ConnectOptions::new()
                    .query("role", "device")
                    .query("device_id", device_id),
            )
            .await
            .expect("device connects")
    }

    async fn dashboard(&self) -> TestClient<Telemetry> {
        self.harness
            .connect_with(ConnectOptions::new().query("role", "client"))
            .await
            .expect("dashboard connects")
    }

    async fn follower(&self, device_id: &str) -> TestClient<Telemetry> {
        self.harness
            .connect_with(
                ConnectOptions::new()
                    .query("role", "client")
                    .query("device_id", device_id),
            )
            .await
            .expect("dashboard connects")
    }

    fn advance_ms(&self, ms: i64) {
        self.clock.advance(Duration::milliseconds(ms));
    }

    fn now_ms(&self) -> i64 {
        use telemetry::Clock;
        self.clock.now().timestamp_millis()
    }

    async fn http(&self, request: HttpRequest) -> HttpResponse {
        self.harness
            .router()
            .handle_http(self.harness.backends(), request)
            .await
            .expect("REST route answers")
    }

    async fn history(&self, query: &[(&str, &str)]) -> (u16, Value) {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let response = self
            .http(request("GET", &format!("/history?{query}")))
            .await;
        let body = response
            .body()
            .as_text()
            .filter(|text| !text.is_empty())
            .map(|text| serde_json::from_str(text).expect("JSON body"))
            .unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }
}

fn request(method: &str, uri: &str) -> HttpRequest {
    wsgw_core::http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Payload::default())
        .expect("a valid request")
}

fn update(device_id: &str, seq: u64, ts_ms: i64, temperature: f64) -> Value {
    json!({
        "action": "RealTimeDataUpdate",
        "device_id": device_id,
        "seq": seq,
        "ts_ms": ts_ms,
        "readings": {"temperature_c": temperature, "humidity_pct": 41.0}
    })
}

fn of_type(messages: &[Value], kind: &str) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m["type"] == kind)
        .cloned()
        .collect()
}

fn seqs(messages: &[Value]) -> Vec<u64> {
    of_type(messages, "reading")
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

fn error_code(messages: &[Value]) -> String {
    assert_eq!(messages.len(), 1, "exactly one answer: {messages:?}");
    assert_eq!(messages[0]["type"], "error", "{messages:?}");
    assert!(
        messages[0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{messages:?}"
    );
    messages[0]["code"].as_str().unwrap().to_owned()
}

/// Sends a reading every `every_ms` for `count` readings, the clock moving with them.
async fn stream_readings(
    w: &World,
    device: &TestClient<Telemetry>,
    id: &str,
    count: u64,
    every_ms: i64,
) {
    for seq in 0..count {
        device
            .send_json(&update(id, seq, w.now_ms(), 20.0 + seq as f64))
            .await
            .unwrap();
        w.advance_ms(every_ms);
    }
}

// ---------------------------------------------------------------- readings and intervals

#[tokio::test]
async fn a_reading_reaches_a_dashboard_as_sent_and_is_stored_under_the_device() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;

    device
        .send_json(&update("esp32-01", 17, T0 - 500, 23.5))
        .await
        .unwrap();

    assert_eq!(
        dashboard.received_json(),
        vec![
            json!({"type": "reading", "device_id": "esp32-01", "seq": 17, "ts_ms": T0 - 500,
                    "readings": {"temperature_c": 23.5, "humidity_pct": 41.0}})
        ]
    );
    assert!(device.received().is_empty(), "no answer to a good reading");
    let page = w
        .history
        .query(HistoryQuery::new("esp32-01"))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let record = &page.items[0];
    assert_eq!(record.time.timestamp_millis(), T0 - 500);
    assert_eq!(record.data["seq"], 17);
    assert_eq!(record.data["received_ms"], T0);
    assert_eq!(
        record.expires_at.unwrap().timestamp_millis(),
        T0 - 500 + Duration::days(30).num_milliseconds()
    );
}

#[tokio::test]
async fn a_device_without_a_clock_is_stamped_with_the_receive_time() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    device
        .send_json(&update("esp32-01", 1, 0, 20.0))
        .await
        .unwrap();
    assert_eq!(dashboard.received_json()[0]["ts_ms"], T0);
    let page = w
        .history
        .query(HistoryQuery::new("esp32-01"))
        .await
        .unwrap();
    assert_eq!(page.items[0].time.timestamp_millis(), T0);
}

#[tokio::test]
async fn a_dashboard_gets_at_most_one_reading_per_second_by_default() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;

    // 40 readings, one every 250 ms: 10 seconds.
    stream_readings(&w, &device, "esp32-01", 40, 250).await;

    // Pushed at 0, 1000, 2000 … 9000 ms: every fourth reading.
    assert_eq!(
        seqs(&dashboard.received_json()),
        (0..40).step_by(4).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn each_dashboard_gets_readings_at_the_interval_it_chose() {
    let w = world();
    let device = w.device("esp32-01").await;
    let fast = w.dashboard().await;
    let slow = w.dashboard().await;
    let default = w.dashboard().await;
    fast.send_json(&json!({"action": "ControlCmd", "interval_ms": 500}))
        .await
        .unwrap();
    slow.send_json(&json!({"action": "ControlCmd", "interval_ms": 5000}))
        .await
        .unwrap();
    assert_eq!(
        fast.received_json(),
        vec![json!({"type": "interval", "interval_ms": 500})]
    );
    assert_eq!(
        slow.received_json(),
        vec![json!({"type": "interval", "interval_ms": 5000})]
    );

    stream_readings(&w, &device, "esp32-01", 40, 250).await;

    assert_eq!(seqs(&fast.received_json()).len(), 20);
    assert_eq!(seqs(&slow.received_json()), vec![0, 20]);
    assert_eq!(seqs(&default.received_json()).len(), 10);
}

#[tokio::test]
async fn the_reading_pushed_is_the_one_that_arrives_once_the_interval_has_passed() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    // Readings every 300 ms; pushes at 0, 1200 (first reading ≥ 1000 after 0), 2400 …
    stream_readings(&w, &device, "esp32-01", 10, 300).await;
    assert_eq!(seqs(&dashboard.received_json()), vec![0, 4, 8]);
}

#[tokio::test]
async fn the_interval_applies_to_each_device_separately() {
    let w = world();
    let a = w.device("esp32-a").await;
    let b = w.device("esp32-b").await;
    let dashboard = w.dashboard().await;
    for seq in 0..4 {
        a.send_json(&update("esp32-a", seq, 0, 1.0)).await.unwrap();
        b.send_json(&update("esp32-b", seq, 0, 2.0)).await.unwrap();
        w.advance_ms(500);
    }
    let got: Vec<(String, u64)> = of_type(&dashboard.received_json(), "reading")
        .iter()
        .map(|m| {
            (
                m["device_id"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("esp32-a".to_owned(), 0),
            ("esp32-b".to_owned(), 0),
            ("esp32-a".to_owned(), 2),
            ("esp32-b".to_owned(), 2)
        ]
    );
}

#[tokio::test]
async fn a_dashboard_following_one_device_gets_only_that_device() {
    let w = world();
    let a = w.device("esp32-a").await;
    let b = w.device("esp32-b").await;
    let follower = w.follower("esp32-b").await;
    a.send_json(&update("esp32-a", 1, 0, 1.0)).await.unwrap();
    b.send_json(&update("esp32-b", 1, 0, 2.0)).await.unwrap();
    let got = follower.received_json();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["device_id"], "esp32-b");
}

#[tokio::test]
async fn two_concurrent_invocations_push_to_a_dashboard_only_once_per_interval() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboards = [
        w.dashboard().await,
        w.dashboard().await,
        w.follower("esp32-01").await,
    ];
    for round in 0..5 {
        // Two readings handled at the same instant by two invocations.
        let first = Request::message(
            device.id().clone(),
            update("esp32-01", 2 * round, 0, 1.0).to_string(),
        );
        let second = Request::message(
            device.id().clone(),
            update("esp32-01", 2 * round + 1, 0, 2.0).to_string(),
        );
        let router = w.harness.router();
        let backends = w.harness.backends();
        let (one, two) = tokio::join!(
            router.handle(backends, first),
            router.handle(backends, second)
        );
        one.unwrap();
        two.unwrap();
        w.advance_ms(1000);
    }
    for dashboard in &dashboards {
        let got = seqs(&dashboard.received_json());
        assert_eq!(got.len(), 5, "one push per interval, got {got:?}");
    }
}

#[tokio::test]
async fn a_new_interval_takes_effect_from_the_next_reading() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    stream_readings(&w, &device, "esp32-01", 8, 250).await; // 2 s at 1 s: 2 pushes
    dashboard
        .send_json(&json!({"action": "ControlCmd", "interval_ms": 500}))
        .await
        .unwrap();
    stream_readings(&w, &device, "esp32-01", 8, 250).await; // 2 s at 500 ms: 4 pushes
    let got = dashboard.received_json();
    assert_eq!(of_type(&got, "interval").len(), 1);
    assert_eq!(seqs(&got).len(), 6);
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn client_intervals_outside_half_a_second_to_an_hour_are_refused() {
    let w = world();
    let dashboard = w.dashboard().await;
    for bad in [0, 499, 3_600_001] {
        dashboard
            .send_json(&json!({"action": "ControlCmd", "interval_ms": bad}))
            .await
            .unwrap();
        assert_eq!(
            error_code(&dashboard.received_json()),
            "interval_out_of_range"
        );
    }
    for good in [500, 3_600_000] {
        dashboard
            .send_json(&json!({"action": "ControlCmd", "interval_ms": good}))
            .await
            .unwrap();
        assert_eq!(
            dashboard.received_json(),
            vec![json!({"type": "interval", "interval_ms": good})]
        );
    }
    assert!(dashboard.is_open());
}

#[tokio::test]
async fn invalid_readings_are_refused_with_the_reason_and_not_stored_or_pushed() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("m{i}"), json!(i))).collect();
    let cases = [
        (update("esp32-02", 1, 0, 1.0), "device_id_mismatch"),
        (
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": 1, "ts_ms": 0, "readings": many}),
            "too_many_metrics",
        ),
        (
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": 1, "ts_ms": 0, "readings": {"t": null}}),
            "non_finite_reading",
        ),
        (
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": 1, "ts_ms": 0, "readings": {"t": "hot"}}),
            "non_finite_reading",
        ),
        (
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": 1, "ts_ms": 0, "readings": {"bad name": 1}}),
            "invalid_metric_name",
        ),
        (
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": -1, "ts_ms": 0, "readings": {}}),
            "invalid_message",
        ),
        (
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": 1, "readings": {}}),
            "invalid_message",
        ),
        (
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": 1, "ts_ms": 0, "readings": [1, 2]}),
            "invalid_message",
        ),
    ];
    for (message, code) in cases {
        device.send_json(&message).await.unwrap();
        assert_eq!(error_code(&device.received_json()), code, "{message}");
    }
    // 1e999 cannot be written by serde_json: send it raw.
    device
        .send(Payload::text(
            r#"{"action":"RealTimeDataUpdate","device_id":"esp32-01","seq":1,"ts_ms":0,"readings":{"m":1e999}}"#,
        ))
        .await
        .unwrap();
    assert_eq!(error_code(&device.received_json()), "invalid_message");

    assert!(device.is_open());
    assert!(dashboard.received().is_empty());
    assert!(w
        .history
        .query(HistoryQuery::new("esp32-01"))
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn roles_are_enforced_per_action() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    dashboard
        .send_json(&update("esp32-01", 1, 0, 1.0))
        .await
        .unwrap();
    assert_eq!(error_code(&dashboard.received_json()), "wrong_role");
    dashboard
        .send_json(
            &json!({"action": "ControlAck", "device_id": "esp32-01", "sample_interval_ms": 1000}),
        )
        .await
        .unwrap();
    assert_eq!(error_code(&dashboard.received_json()), "wrong_role");
    device
        .send_json(&json!({"action": "ControlCmd", "interval_ms": 1000}))
        .await
        .unwrap();
    assert_eq!(error_code(&device.received_json()), "wrong_role");
}

#[tokio::test]
async fn default_route_names_the_problem_and_keeps_the_connection() {
    let w = world();
    let dashboard = w.dashboard().await;
    dashboard
        .send_json(&json!({"action": "reboot"}))
        .await
        .unwrap();
    let got = dashboard.received_json();
    assert_eq!(got[0]["code"], "unknown_action");
    assert!(got[0]["message"].as_str().unwrap().contains("\"reboot\""));
    dashboard.send(Payload::text("not json")).await.unwrap();
    assert_eq!(error_code(&dashboard.received_json()), "invalid_message");
    dashboard.send_json(&json!({"hello": 1})).await.unwrap();
    assert_eq!(error_code(&dashboard.received_json()), "unknown_action");
    dashboard
        .send_json(&json!({"action": "ControlCmd"}))
        .await
        .unwrap();
    assert_eq!(error_code(&dashboard.received_json()), "invalid_control");
    assert!(dashboard.is_open());
}

/// AWS: a binary frame closes the connection with 1003 and no route runs.
#[tokio::test]
async fn a_binary_frame_closes_the_connection_with_1003() {
    let w = world();
    let dashboard = w.dashboard().await;
    dashboard
        .send(Payload::binary(vec![1, 2, 3]))
        .await
        .expect_err("API Gateway refuses binary frames");
    assert!(!dashboard.is_open());
    assert!(dashboard.received_json().is_empty());
}

#[tokio::test]
async fn connecting_requires_a_role_and_a_valid_device_id() {
    let w = world();
    let refused = |options: ConnectOptions| {
        let harness = w.harness.clone();
        async move {
            match harness.connect_with(options).await {
                Err(ConnectError::Refused { status, .. }) => status,
                Err(other) => panic!("refused expected, got {other}"),
                Ok(_) => panic!("refused expected, got a connection"),
            }
        }
    };
    assert_eq!(refused(ConnectOptions::new()).await, 400);
    assert_eq!(
        refused(ConnectOptions::new().query("role", "admin")).await,
        400
    );
    assert_eq!(
        refused(ConnectOptions::new().query("role", "device")).await,
        400
    );
    assert_eq!(
        refused(
            ConnectOptions::new()
                .query("role", "device")
                .query("device_id", "no spaces")
        )
        .await,
        400
    );
    assert_eq!(
        refused(
            ConnectOptions::new()
                .query("role", "client")
                .query("device_id", "x".repeat(65))
        )
        .await,
        400
    );
}

#[tokio::test]
async fn with_a_device_secret_each_device_must_present_its_own_token() {
    let secret = telemetry::access::DeviceSecret::new("fleet-secret-0123456789abcdef-0123456789")
        .expect("a long secret");
    let token = secret.token_for("esp32-01");
    let w = world_with(|state| state.with_device_secret(secret));
    let device = |token: Option<&str>| {
        let mut options = ConnectOptions::new()
            .query("role", "device")
            .query("device_id", "esp32-01");
        if let Some(token) = token {
            options = options.query("token", token);
        }
        let harness = w.harness.clone();
        async move { harness.connect_with(options).await }
    };
    assert!(matches!(
        device(None).await,
        Err(ConnectError::Refused { status: 401, .. })
    ));
    assert!(matches!(
        device(Some("guess")).await,
        Err(ConnectError::Refused { status: 401, .. })
    ));
    assert!(device(Some(&token)).await.is_ok());
    // Dashboards need no token.
    w.dashboard().await;
}

// ---------------------------------------------------------------- control

#[tokio::test]
async fn a_sample_interval_command_reaches_the_device_and_its_ack_reaches_the_dashboards() {
    let w = world();
    let device = w.device("esp32-01").await;
    let other_device = w.device("esp32-02").await;
    let asking = w.follower("esp32-02").await; // follows another device, but asked
    let watching = w.dashboard().await;
    let unrelated = w.follower("esp32-02").await;

    asking
        .send_json(
            &json!({"action": "ControlCmd", "device_id": "esp32-01", "sample_interval_ms": 2000}),
        )
        .await
        .unwrap();
    assert_eq!(
        device.received_json(),
        vec![json!({"type": "control", "sample_interval_ms": 2000})]
    );
    assert!(other_device.received().is_empty());
    assert!(
        asking.received().is_empty(),
        "no answer until the device acknowledges"
    );

    device
        .send_json(
            &json!({"action": "ControlAck", "device_id": "esp32-01", "sample_interval_ms": 2000}),
        )
        .await
        .unwrap();
    let ack = json!({"type": "control_ack", "device_id": "esp32-01", "sample_interval_ms": 2000});
    assert_eq!(asking.received_json(), vec![ack.clone()]);
    assert_eq!(watching.received_json(), vec![ack]);
    assert!(unrelated.received().is_empty());
    assert!(device.received().is_empty());

    let response = w.http(request("GET", "/devices")).await;
    let body: Value = serde_json::from_str(response.body().as_text().unwrap()).unwrap();
    let listed: Vec<(String, Value)> = body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().to_owned(),
                d["sample_interval_ms"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("esp32-01".to_owned(), json!(2000)),
            ("esp32-02".to_owned(), Value::Null)
        ]
    );
}

#[tokio::test]
async fn a_heartbeat_ack_restating_the_known_interval_tells_no_dashboard() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    let ack = json!({"action": "ControlAck", "device_id": "esp32-01", "sample_interval_ms": 1000});
    // The first one tells the dashboards what the device samples at.
    device.send_json(&ack).await.unwrap();
    assert_eq!(of_type(&dashboard.received_json(), "control_ack").len(), 1);
    // Heartbeats restating it do not.
    device.send_json(&ack).await.unwrap();
    device.send_json(&ack).await.unwrap();
    assert!(dashboard.received().is_empty());
    assert!(device.received().is_empty());
}

#[tokio::test]
async fn control_for_a_device_that_is_not_connected_is_an_error() {
    let w = world();
    let dashboard = w.dashboard().await;
    dashboard
        .send_json(
            &json!({"action": "ControlCmd", "device_id": "esp32-09", "sample_interval_ms": 2000}),
        )
        .await
        .unwrap();
    assert_eq!(
        error_code(&dashboard.received_json()),
        "device_not_connected"
    );

    let device = w.device("esp32-09").await;
    device.disconnect().await.unwrap();
    dashboard
        .send_json(
            &json!({"action": "ControlCmd", "device_id": "esp32-09", "sample_interval_ms": 2000}),
        )
        .await
        .unwrap();
    assert_eq!(
        error_code(&dashboard.received_json()),
        "device_not_connected"
    );
}

#[tokio::test]
async fn sample_intervals_outside_the_device_bounds_are_refused_and_not_forwarded() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    for bad in [0, 249, 3_600_001] {
        dashboard
            .send_json(&json!({"action": "ControlCmd", "device_id": "esp32-01", "sample_interval_ms": bad}))
            .await
            .unwrap();
        assert_eq!(
            error_code(&dashboard.received_json()),
            "sample_interval_out_of_range"
        );
    }
    assert!(device.received().is_empty());
    device
        .send_json(
            &json!({"action": "ControlAck", "device_id": "esp32-01", "sample_interval_ms": 10}),
        )
        .await
        .unwrap();
    assert_eq!(
        error_code(&device.received_json()),
        "sample_interval_out_of_range"
    );
}

#[tokio::test]
async fn a_disconnected_dashboard_is_forgotten() {
    let w = world();
    let device = w.device("esp32-01").await;
    let dashboard = w.dashboard().await;
    let id = dashboard.id().clone();
    dashboard.disconnect().await.unwrap();
    assert!(w.harness.store().get(&id).await.unwrap().is_none());
    device
        .send_json(&update("esp32-01", 1, 0, 1.0))
        .await
        .unwrap();
}

// ---------------------------------------------------------------- REST history

async fn store_readings(w: &World, device_id: &str, count: u64) -> Vec<i64> {
    let device = w.device(device_id).await;
    let mut times = Vec::new();
    for seq in 0..count {
        let ts = T0 - 100_000 + seq as i64 * 10;
        device
            .send_json(&update(device_id, seq, ts, seq as f64))
            .await
            .unwrap();
        times.push(ts);
    }
    assert!(device.received().is_empty());
    times
}

#[tokio::test]
async fn history_pages_through_every_reading_once_oldest_first() {
    let w = world();
    store_readings(&w, "esp32-01", 25).await;
    store_readings(&w, "esp32-02", 3).await;

    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("device_id", "esp32-01"), ("limit", "7")];
        if let Some(token) = &next {
            query.push(("next", token.as_str()));
        }
        let (status, body) = w.history(&query).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["device_id"], "esp32-01");
        pages += 1;
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        seen.extend(items.iter().map(|item| item["seq"].as_u64().unwrap()));
        match body["next"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
}

#[tokio::test]
async fn history_items_carry_the_reading_and_its_times() {
    let w = world();
    store_readings(&w, "esp32-01", 1).await;
    let (_, body) = w.history(&[("device_id", "esp32-01")]).await;
    assert_eq!(
        body,
        json!({"device_id": "esp32-01", "next": null, "items": [{
            "device_id": "esp32-01", "seq": 0, "ts_ms": T0 - 100_000, "received_ms": T0,
            "readings": {"temperature_c": 0.0, "humidity_pct": 41.0}
        }]})
    );
}

#[tokio::test]
async fn history_range_is_inclusive_at_both_ends() {
    let w = world();
    let times = store_readings(&w, "esp32-01", 10).await;
    let (from, to) = (times[2].to_string(), times[5].to_string());
    let (status, body) = w
        .history(&[
            ("device_id", "esp32-01"),
            ("from_ms", &from),
            ("to_ms", &to),
        ])
        .await;
    assert_eq!(status, 200);
    let got: Vec<u64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![2, 3, 4, 5]);
    let (_, body) = w
        .history(&[
            ("device_id", "esp32-01"),
            ("from_ms", &from),
            ("to_ms", &from),
        ])
        .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn history_of_an_unknown_device_is_empty() {
    let w = world();
    let (status, body) = w.history(&[("device_id", "nobody")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"device_id": "nobody", "items": [], "next": null})
    );
}

#[tokio::test]
async fn history_refuses_bad_parameters_with_400_and_a_json_message() {
    let w = world();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "device_id is required"),
        (vec![("device_id", "has space")], "device_id"),
        (vec![("device_id", "d"), ("limit", "0")], "limit"),
        (vec![("device_id", "d"), ("limit", "1001")], "limit"),
        (vec![("device_id", "d"), ("limit", "ten")], "limit"),
        (vec![("device_id", "d"), ("from_ms", "-5")], "from_ms"),
        (vec![("device_id", "d"), ("to_ms", "soon")], "to_ms"),
        (
            vec![("device_id", "d"), ("from_ms", "10"), ("to_ms", "5")],
            "after",
        ),
        (vec![("device_id", "d"), ("next", "garbage!")], "next"),
        (vec![("device_id", "d"), ("next", "")], "next"),
        (
            vec![("device_id", "d"), ("from", "10")],
            "unknown parameter from",
        ),
    ];
    for (query, needle) in cases {
        let (status, body) = w.history(&query).await;
        assert_eq!(status, 400, "{query:?}: {body}");
        assert_eq!(body["error"], "bad_request");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{query:?}: {message}");
    }
    let (status, _) = w.history(&[("device_id", "d"), ("limit", "1000")]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn rest_answers_carry_cors_headers_and_the_preflight_is_answered() {
    let w = world();
    let ok = w.http(request("GET", "/history?device_id=d")).await;
    let bad = w.http(request("GET", "/history")).await;
    let devices = w.http(request("GET", "/devices")).await;
    let mut preflight = request("OPTIONS", "/history");
    preflight.headers_mut().insert(
        "origin",
        "https://dashboard.example".parse().expect("a header value"),
    );
    preflight.headers_mut().insert(
        "access-control-request-method",
        "GET".parse().expect("a header value"),
    );
    let preflight = w.http(preflight).await;
    for response in [&ok, &bad, &devices, &preflight] {
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert!(response.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("GET"));
    }
    assert_eq!(preflight.status(), 204);
    assert_eq!(ok.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn a_history_parameter_given_twice_is_refused_naming_it() {
    let w = world();
    let (status, body) = w.history(&[("device_id", "a"), ("device_id", "b")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "device_id is given more than once");
    let (status, body) = w
        .history(&[("device_id", "a"), ("limit", "5"), ("limit", "6")])
        .await;
    assert_eq!(
        (status, &body["message"]),
        (400, &json!("limit is given more than once"))
    );
}

#[tokio::test]
async fn readings_older_than_the_history_ttl_are_not_returned() {
    let w = world_with(|state| state.with_history_ttl_days(1));
    let device = w.device("esp32-01").await;
    let now = Utc::now().timestamp_millis();
    w.clock.set(Utc::now());
    device
        .send_json(&update(
            "esp32-01",
            1,
            now - Duration::days(2).num_milliseconds(),
            1.0,
        ))
        .await
        .unwrap();
    device
        .send_json(&update("esp32-01", 2, now - 1000, 2.0))
        .await
        .unwrap();
    let (_, body) = w.history(&[("device_id", "esp32-01")]).await;
    let got: Vec<u64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![2]);
}
