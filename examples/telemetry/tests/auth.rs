//! Telemetry with auth on (device and dashboard keys), on the LocalGateway with real
//! WebSocket clients: who gets in, devices only speak for their own device id, only
//! operators change a device's sample interval, and the simulator and the dashboard's
//! way of presenting a key (subprotocol) work.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use telemetry::Telemetry;
use telemetry_simulator::{Simulator, SimulatorConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::testing::ws::refused;
use wsgw_memory::testing::{ChildProcess, ServerProcess};
use wsgw_memory::{MemoryHistory, MemorySink, MemoryStore};

const DEVICE_KEYS: &str = "esp32-01=k-dev-01,esp32-02=k-dev-02,sim-01=k-sim-01";
const DASHBOARD_KEYS: &str = "ada=k-ops-ada=operator,bob=k-view-bob";

async fn start() -> (RunningGateway, String, Arc<MemoryStore>) {
    let keys = telemetry::access::authorizer(Some(DEVICE_KEYS), Some(DASHBOARD_KEYS))
        .expect("key lists")
        .expect("auth on");
    let sockets = Arc::new(MemorySink::new());
    let store = Arc::new(MemoryStore::new());
    let state = Telemetry::new().with_keys(keys);
    let router = telemetry::router(state);
    let running = LocalGateway::new(router)
        .with_sockets(sockets)
        .with_store(store.clone())
        .assets(telemetry::dashboard())
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    let ws = running.ws_url();
    (running, ws, store)
}

/// A dashboard presenting its key as the page does: subprotocols `wsgw.bearer`, KEY.
async fn dashboard(ws: &str, key: &str) -> Socket {
    let mut request = format!("{ws}/?role=client")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("wsgw.bearer, {key}").parse().expect("header"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the dashboard connects");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("wsgw.bearer")
    );
    socket
}

#[tokio::test]
async fn without_a_valid_key_or_with_someone_elses_nobody_gets_in_and_nothing_is_stored() {
    let (_gateway, ws, store) = start().await;
    // No key, a wrong key: 401.
    assert_eq!(
        refused(&format!("{ws}/?role=device&device_id=esp32-01")).await,
        401
    );
    assert_eq!(
        refused(&format!(
            "{ws}/?role=device&device_id=esp32-01&token=k-dev-0"
        ))
        .await,
        401
    );
    assert_eq!(refused(&format!("{ws}/?role=client")).await, 401);
    assert_eq!(
        refused(&format!("{ws}/?role=client&token=k-ops-ad")).await,
        401
    );
    // A valid key for something it does not grant: 403.
    assert_eq!(
        refused(&format!(
            "{ws}/?role=device&device_id=esp32-02&token=k-dev-01"
        ))
        .await,
        403,
        "a device key opens only its own device"
    );
    assert_eq!(
        refused(&format!("{ws}/?role=client&token=k-dev-01")).await,
        403
    );
    assert_eq!(
        refused(&format!("{ws}/?role=device&device_id=ada&token=k-ops-ada")).await,
        403
    );
    assert!(store.is_empty(), "no refused client left a record");
    // The firmware's form gets in.
    let _device = connect(&ws, "role=device&device_id=esp32-01&token=k-dev-01").await;
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_device_only_sends_readings_for_its_own_device_id() {
    let (_gateway, ws, _store) = start().await;
    let mut watcher = dashboard(&ws, "k-view-bob").await;
    let mut device = connect(&ws, "role=device&device_id=esp32-01&token=k-dev-01").await;
    let now = chrono::Utc::now().timestamp_millis();

    send(&mut device, &reading("esp32-02", 1, now)).await;
    let error = next_json(&mut device).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "device_id_mismatch");

    send(&mut device, &reading("esp32-01", 2, now)).await;
    let pushed = next_json(&mut watcher).await;
    assert_eq!(pushed["type"], "reading");
    assert_eq!(pushed["device_id"], "esp32-01");
    assert_eq!(
        pushed["seq"], 2,
        "the other device's reading never reached anyone"
    );
}

#[tokio::test]
async fn only_operators_change_a_devices_sample_interval() {
    let (_gateway, ws, _store) = start().await;
    let mut device = connect(&ws, "role=device&device_id=esp32-01&token=k-dev-01").await;
    let mut viewer = dashboard(&ws, "k-view-bob").await;
    let mut operator = dashboard(&ws, "k-ops-ada").await;
    let command =
        json!({"action": "ControlCmd", "device_id": "esp32-01", "sample_interval_ms": 2000});

    send(&mut viewer, &command).await;
    let error = next_json(&mut viewer).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "wrong_role");
    assert!(
        drain(&mut device, Duration::from_millis(300))
            .await
            .is_empty(),
        "the device was not told anything"
    );
    // A viewer still sets its own push interval.
    send(
        &mut viewer,
        &json!({"action": "ControlCmd", "interval_ms": 2000}),
    )
    .await;
    assert_eq!(
        next_json(&mut viewer).await,
        json!({"type": "interval", "interval_ms": 2000})
    );

    send(&mut operator, &command).await;
    assert_eq!(
        next_json(&mut device).await,
        json!({"type": "control", "sample_interval_ms": 2000})
    );
}

#[tokio::test]
async fn a_device_cannot_pass_for_a_dashboard_to_send_commands() {
    let (_gateway, ws, _store) = start().await;
    let mut device = connect(&ws, "role=device&device_id=esp32-01&token=k-dev-01").await;
    send(
        &mut device,
        &json!({"action": "ControlCmd", "device_id": "esp32-02", "sample_interval_ms": 500}),
    )
    .await;
    assert_eq!(next_json(&mut device).await["code"], "wrong_role");
}

#[tokio::test]
async fn simulated_devices_present_their_own_keys() {
    let (_gateway, ws, _store) = start().await;
    let mut watcher = dashboard(&ws, "k-view-bob").await;
    let mut config = SimulatorConfig::new(ws.clone(), 2);
    config.sample_interval_ms = 250;
    config.tokens = telemetry::access::device_tokens(DEVICE_KEYS);
    let simulator = Simulator::start(config).expect("starts");
    // sim-01 has a key and is seen; sim-02 has none and never gets in.
    let got = drain(&mut watcher, Duration::from_secs(2)).await;
    let reports = simulator.shutdown().await;
    assert!(
        got.iter()
            .any(|m| m["type"] == "reading" && m["device_id"] == "sim-01"),
        "{got:?}"
    );
    assert!(got.iter().all(|m| m["device_id"] != "sim-02"), "{got:?}");
    let sim02 = reports
        .iter()
        .find(|r| r.device_id == "sim-02")
        .expect("a report");
    assert_eq!(sim02.stats.readings_sent, 0);
}

#[tokio::test]
async fn the_binary_turns_auth_on_from_the_environment_and_its_simulator_gets_in() {
    use std::process::Command;

    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .args(["--listen", "127.0.0.1:0", "--simulate", "1"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("TELEMETRY_DEVICE_TOKEN")
        .env_remove("TELEMETRY_DEVICE_SECRET")
        .env("TELEMETRY_DEVICE_KEYS", "sim-01=k-sim-01")
        .env("TELEMETRY_DASHBOARD_KEYS", "ada=k-ops-ada=operator");
    let mut running = ServerProcess::start(command);
    let ws = running.url("ws://");
    let second = running.next_line().expect("a second line");
    assert!(second.starts_with("auth is on"), "{second:?}");

    assert_eq!(refused(&format!("{ws}/?role=client")).await, 401);
    assert_eq!(
        refused(&format!("{ws}/?role=device&device_id=sim-01")).await,
        401
    );
    let mut operator = dashboard(&ws, "k-ops-ada").await;
    let got = drain(&mut operator, Duration::from_secs(3)).await;
    assert!(
        got.iter()
            .any(|m| m["type"] == "reading" && m["device_id"] == "sim-01"),
        "the in-process simulator presented its key: {got:?}"
    );
    drop(running);
}

fn authorizer_event(token: &str) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../wsgw-aws/tests/events/authorizer-request.json"
    );
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture")).expect("JSON");
    event["queryStringParameters"]["token"] = json!(token);
    event["multiValueQueryStringParameters"]["token"] = json!([token]);
    event
}

#[tokio::test]
async fn the_binary_in_authorizer_role_answers_api_gateway_with_policies() {
    use std::process::{Command, Stdio};
    use wsgw_memory::gateway::{Invocation, LambdaRuntimeEmulator};

    let runtime = LambdaRuntimeEmulator::start().await.expect("runtime API");
    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .envs(runtime.function_env())
        .env("WSGW_LAMBDA_ROLE", "authorizer")
        .env("TELEMETRY_DEVICE_KEYS", "esp32-01=k-esp32-01")
        .env("TELEMETRY_DASHBOARD_KEYS", "")
        .env("TELEMETRY_DEVICE_TOKEN", "")
        // Names only: the authorizer touches no table.
        .env("WSGW_CONNECTIONS_TABLE", "unused-connections")
        .env("WSGW_HISTORY_TABLE", "unused-history")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_PROFILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _function = ChildProcess::spawn(&mut command).expect("telemetry starts");
    let wait = Duration::from_secs(20);

    let allowed = runtime
        .invoke(authorizer_event("k-esp32-01"), wait)
        .await
        .expect("an answer");
    let Invocation::Response(policy) = allowed else {
        panic!("expected a policy, got {allowed:?}")
    };
    assert_eq!(policy["principalId"], "esp32-01");
    assert_eq!(policy["context"]["roles"], "device");
    let statement = &policy["policyDocument"]["Statement"][0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "execute-api:Invoke");
    assert_eq!(
        statement["Resource"],
        "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/production/$connect"
    );

    match runtime
        .invoke(authorizer_event("k-guess"), wait)
        .await
        .expect("an answer")
    {
        Invocation::Error(error) => assert_eq!(error["errorMessage"], "Unauthorized"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    // In the authorizer role, a route event is refused rather than run.
    let mut connect = authorizer_event("k-esp32-01");
    let object = connect.as_object_mut().expect("object");
    object.remove("type");
    object.remove("methodArn");
    match runtime.invoke(connect, wait).await.expect("an answer") {
        Invocation::Error(error) => assert!(
            error["errorMessage"]
                .as_str()
                .is_some_and(|m| m.contains("authorizer events only")),
            "{error}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn with_keys_routes_without_a_principal_refuse_rather_than_trust() {
    use wsgw_core::{Backends, ConnectionId, HistoryQuery, HistoryStore, Request};

    // As deployed without the API Gateway authorizer: $connect runs the router's own
    // authorizer, but later events arrive with no requestContext.authorizer.
    let keys = telemetry::access::authorizer(Some(DEVICE_KEYS), Some(DASHBOARD_KEYS))
        .expect("key lists")
        .expect("auth on");
    let store = Arc::new(MemoryStore::new());
    let sink = Arc::new(MemorySink::new());
    let history = Arc::new(MemoryHistory::new());
    let router = telemetry::router(Telemetry::new().with_keys(keys));
    let backends = Backends::new(store.clone(), sink.clone()).with_history(history.clone());
    let device = ConnectionId::new("dev=");
    let ops = ConnectionId::new("ops=");
    for id in [&device, &ops] {
        sink.open(id, None, None);
    }
    let connect = |id: &ConnectionId, query: &[(&str, &str)]| {
        query
            .iter()
            .fold(Request::connect(id.clone()), |request, (name, value)| {
                request.with_query(*name, *value)
            })
    };
    let status = |reply: wsgw_core::Result<wsgw_core::Reply>| reply.expect("handled").status;
    assert_eq!(
        status(
            router
                .handle(&backends, connect(&device, &[("role", "client")]))
                .await
        ),
        401
    );
    assert_eq!(
        status(
            router
                .handle(
                    &backends,
                    connect(
                        &device,
                        &[
                            ("role", "device"),
                            ("device_id", "esp32-01"),
                            ("token", "k-dev-01")
                        ]
                    )
                )
                .await
        ),
        200
    );
    assert_eq!(
        status(
            router
                .handle(
                    &backends,
                    connect(&ops, &[("role", "client"), ("token", "k-ops-ada")])
                )
                .await
        ),
        200
    );

    let now = chrono::Utc::now().timestamp_millis();
    let update = Request::message(device.clone(), reading("esp32-01", 1, now).to_string());
    assert_eq!(status(router.handle(&backends, update).await), 200);
    let told: Vec<serde_json::Value> = sink
        .sent_to(&device)
        .iter()
        .filter_map(|p| p.as_text().and_then(|t| serde_json::from_str(t).ok()))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["code"], "device_id_mismatch");
    let stored = history
        .query(HistoryQuery::new("esp32-01"))
        .await
        .expect("readable");
    assert!(
        stored.items.is_empty(),
        "nothing stored without a principal"
    );

    let command =
        json!({"action": "ControlCmd", "device_id": "esp32-01", "sample_interval_ms": 2000});
    let command = Request::message(ops.clone(), command.to_string());
    assert_eq!(status(router.handle(&backends, command).await), 200);
    let told: Vec<serde_json::Value> = sink
        .sent_to(&ops)
        .iter()
        .filter_map(|p| p.as_text().and_then(|t| serde_json::from_str(t).ok()))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["code"], "wrong_role");
    assert_eq!(
        sink.sent_to(&device).len(),
        1,
        "the device was told nothing more"
    );
}

// --- The attacks of issue 20 ---------------------------------------------------------

/// A REST GET with these headers: the status, the body as JSON and the CORS origin.
async fn rest(url: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an HTTP answer");
    let status = response.status().as_u16();
    let origin = response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        origin,
    )
}

#[tokio::test]
async fn with_keys_the_rest_history_and_devices_refuse_whoever_has_no_dashboard_key() {
    let (gateway, ws, _store) = start().await;
    let http = ws.replacen("ws://", "http://", 1);
    // A device files a reading, so there is something to steal.
    let mut device = connect(&ws, "role=device&device_id=esp32-01&token=k-dev-01").await;
    let mut watcher = dashboard(&ws, "k-view-bob").await;
    send(
        &mut device,
        &reading("esp32-01", 1, chrono::Utc::now().timestamp_millis()),
    )
    .await;
    assert_eq!(next_json(&mut watcher).await["type"], "reading");

    let history = format!("{http}/history?device_id=esp32-01");
    let devices = format!("{http}/devices");
    let evil = ("origin", "https://evil.example");
    for url in [&history, &devices] {
        // Anyone, from any website.
        let (status, body, origin) = rest(url, &[evil]).await;
        assert_eq!(status, 401, "{url}: {body}");
        assert_eq!(body["error"], "unauthorized", "{body}");
        assert!(body["message"].is_string(), "{body}");
        assert_eq!(origin, None, "{url}: no CORS grant to another site");
        // A wrong key, a key in the URL (keys never travel in URLs), a device's key.
        assert_eq!(
            rest(url, &[("authorization", "Bearer k-view-bo")]).await.0,
            401
        );
        let in_url = if url.contains('?') {
            format!("{url}&token=k-view-bob")
        } else {
            format!("{url}?token=k-view-bob")
        };
        assert_ne!(rest(&in_url, &[]).await.0, 200, "{in_url}");
        let (status, body, _) = rest(url, &[("authorization", "Bearer k-dev-01")]).await;
        assert_eq!(status, 403, "a device key reads no history: {body}");
        assert_eq!(body["error"], "forbidden", "{body}");
        // A dashboard's key.
        let (status, body, _) = rest(url, &[("authorization", "Bearer k-view-bob")]).await;
        assert_eq!(status, 200, "{url}: {body}");
    }
    let (_, body, _) = rest(&history, &[("authorization", "Bearer k-view-bob")]).await;
    assert_eq!(body["items"][0]["seq"], 1);
    drop(gateway);
}

#[tokio::test]
async fn with_keys_cors_names_only_the_configured_origins() {
    let keys = telemetry::access::authorizer(Some(DEVICE_KEYS), Some(DASHBOARD_KEYS))
        .expect("key lists")
        .expect("auth on");
    let sockets = Arc::new(MemorySink::new());
    let state = Telemetry::new().with_keys(keys).with_cors_origins(
        telemetry::access::CorsOrigins::parse("https://dash.example").expect("an origin"),
    );
    let router = telemetry::router(state);
    let running = LocalGateway::new(router)
        .with_sockets(sockets)
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    let url = format!(
        "{}/devices",
        running.ws_url().replacen("ws://", "http://", 1)
    );
    let key = ("authorization", "Bearer k-view-bob");
    let (status, _, origin) = rest(&url, &[key, ("origin", "https://dash.example")]).await;
    assert_eq!(
        (status, origin.as_deref()),
        (200, Some("https://dash.example"))
    );
    let (_, _, origin) = rest(&url, &[key, ("origin", "https://evil.example")]).await;
    assert_eq!(origin, None);
}

const DEVICE_SECRET: &str = "fleet-secret-0123456789abcdef-0123456789";

async fn start_with_device_secret() -> (RunningGateway, String) {
    let sockets = Arc::new(MemorySink::new());
    let secret = telemetry::access::DeviceSecret::new(DEVICE_SECRET).expect("a long secret");
    let state = Telemetry::new().with_device_secret(secret);
    let router = telemetry::router(state);
    let running = LocalGateway::new(router)
        .with_sockets(sockets)
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    let ws = running.ws_url();
    (running, ws)
}

#[tokio::test]
async fn with_only_a_device_secret_no_anonymous_dashboard_controls_devices() {
    let (_gateway, ws) = start_with_device_secret().await;
    let token = telemetry::access::DeviceSecret::new(DEVICE_SECRET)
        .expect("a long secret")
        .token_for("esp32-01");
    let mut device = connect(
        &ws,
        &format!("role=device&device_id=esp32-01&token={token}"),
    )
    .await;
    let mut anyone = connect(&ws, "role=client").await;
    send(
        &mut anyone,
        &json!({"action": "ControlCmd", "device_id": "esp32-01", "sample_interval_ms": 250}),
    )
    .await;
    let answer = next_json(&mut anyone).await;
    assert_eq!(answer["code"], "wrong_role", "{answer}");
    assert!(
        drain(&mut device, Duration::from_millis(300))
            .await
            .is_empty(),
        "the device was told nothing"
    );
}

#[tokio::test]
async fn a_device_token_opens_only_its_own_device_id() {
    let (_gateway, ws) = start_with_device_secret().await;
    let token = telemetry::access::DeviceSecret::new(DEVICE_SECRET)
        .expect("a long secret")
        .token_for("esp32-01");
    let _own = connect(
        &ws,
        &format!("role=device&device_id=esp32-01&token={token}"),
    )
    .await;
    // The same token for another device, the fleet secret itself, a near miss: 401.
    for (id, presented) in [
        ("esp32-02", token.clone()),
        ("esp32-01", DEVICE_SECRET.to_owned()),
        ("esp32-01", token[..token.len() - 1].to_owned()),
        ("esp32-01", String::new()),
    ] {
        assert_eq!(
            refused(&format!(
                "{ws}/?role=device&device_id={id}&token={presented}"
            ))
            .await,
            401,
            "{id} with {presented:?}"
        );
    }
}
