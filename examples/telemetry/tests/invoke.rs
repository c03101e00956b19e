//! `telemetry invoke --event FILE.json`: every WebSocket and REST event shipped in
//! `events/`, alone and as one session of a device and a dashboard, on the in-memory
//! backend with no AWS credentials or configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use wsgw_aws::metrics::check_emf_line;
use wsgw_memory::testing::successful_json;

const DEVICE: &str = "Bq9A2fKpjoECH1Q=";
const DASHBOARD: &str = "Bq9A4XdXjoECF3g=";

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The binary with an empty environment: no credentials, no region, no DynamoDB.
fn telemetry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_telemetry"))
        .env_clear()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the telemetry binary runs")
}

fn invoke(files: &[&str]) -> Vec<Value> {
    invoke_with(&[], files)
}

/// `telemetry invoke` with these settings on these events: one answer per event.
fn invoke_with(settings: &[&str], files: &[&str]) -> Vec<Value> {
    let mut args = vec!["invoke", "--metrics"];
    args.extend(settings);
    for file in files {
        args.extend(["--event", file]);
    }
    let output = telemetry(&args);
    let outputs = successful_json(&output);
    assert_eq!(outputs.len(), files.len(), "one object per event");
    for out in &outputs {
        for document in out["metrics"].as_array().unwrap() {
            check_emf_line(&document.to_string()).unwrap_or_else(|error| panic!("{error}"));
        }
    }
    outputs
}

/// `(recipient, message)` per post, times (`ts_ms`) checked to be numbers and left out.
fn posts(out: &Value) -> Vec<(String, Value)> {
    assert_eq!(out["rejected"], json!([]), "{out}");
    out["posted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| {
            let mut message = post["json"].clone();
            if let Some(ts) = message.as_object_mut().and_then(|m| m.remove("ts_ms")) {
                assert!(ts.is_u64(), "{ts}");
            }
            (post["connection_id"].as_str().unwrap().to_owned(), message)
        })
        .collect()
}

fn body(out: &Value) -> Value {
    assert_eq!(out["response"]["statusCode"], 200, "{out}");
    assert_eq!(
        out["response"]["headers"]["content-type"], "application/json",
        "{out}"
    );
    assert_eq!(
        out["response"]["headers"]["access-control-allow-origin"], "*",
        "CORS"
    );
    serde_json::from_str(out["response"]["body"].as_str().expect("a body")).expect("JSON body")
}

fn error(code: &str) -> Value {
    json!({"type": "error", "code": code})
}

#[test]
fn each_shipped_event_alone_gives_the_answer_a_fresh_backend_gives() {
    let mut expected: BTreeMap<&str, Vec<(String, Value)>> = BTreeMap::from([
        ("connect-device.json", vec![]),
        ("connect-dashboard.json", vec![]),
        ("disconnect-dashboard.json", vec![]),
        ("disconnect-device.json", vec![]),
    ]);
    // Alone, the callers never connected: the function tells them so.
    for (file, caller) in [
        ("realtimedataupdate.json", DEVICE),
        ("controlack.json", DEVICE),
        ("controlcmd-device.json", DASHBOARD),
        ("controlcmd-interval.json", DASHBOARD),
        ("default.json", DASHBOARD),
    ] {
        expected.insert(file, vec![(caller.to_owned(), Value::Null)]);
    }
    let rest = [
        "history.json",
        "history-http-api.json",
        "history-function-url.json",
        "devices.json",
    ];

    let mut shipped: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    let mut listed: Vec<String> = expected
        .keys()
        .chain(rest.iter())
        .map(|name| (*name).to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        shipped, listed,
        "every file in events/ has an expectation here"
    );

    for (name, posted) in expected {
        let path = format!("events/{name}");
        let out = &invoke(&[&path])[0];
        assert_eq!(out["response"]["statusCode"], 200, "{name}: {out}");
        let actual = posts(out);
        assert_eq!(actual.len(), posted.len(), "{name}: {actual:?}");
        for ((to, message), (expected_to, expected_message)) in actual.iter().zip(&posted) {
            assert_eq!(to, expected_to, "{name}");
            if expected_message.is_null() {
                assert_eq!(message["type"], "error", "{name}: {message}");
            } else {
                assert_eq!(message, expected_message, "{name}");
            }
        }
        assert_eq!(out["metrics"][0]["FunctionName"], "telemetry", "{name}");
        assert_eq!(out["metrics"][0]["HandlerErrors"], 0, "{name}");
    }

    for file in &rest[..3] {
        let history = &invoke(&[&format!("events/{file}")])[0];
        assert_eq!(
            body(history),
            json!({"device_id": "esp32-01", "items": [], "next": null}),
            "{file}"
        );
        assert_eq!(history["metrics"][0]["Route"], "GET /history", "{file}");
        assert_eq!(history["metrics"][0]["EventType"], "REST", "{file}");
        assert_eq!(history["metrics"][0]["HttpRequests"], 1, "{file}");
    }
    let devices = &invoke(&["events/devices.json"])[0];
    assert_eq!(body(devices), json!({"devices": []}));
}

#[test]
fn the_shipped_events_in_order_are_a_device_and_a_dashboard_at_work() {
    let outs = invoke(&[
        "events/connect-device.json",
        "events/connect-dashboard.json",
        "events/controlcmd-interval.json",
        "events/realtimedataupdate.json",
        "events/controlcmd-device.json",
        "events/controlack.json",
        "events/history.json",
        "events/devices.json",
        "events/default.json",
        "events/disconnect-dashboard.json",
        "events/disconnect-device.json",
    ]);
    let readings = json!({"temperature_c": 23.5, "humidity_pct": 41.2, "rssi_dbm": -61.0});

    assert_eq!(outs[0]["metrics"][0]["Connects"], 1);
    assert_eq!(
        posts(&outs[2]),
        vec![(
            DASHBOARD.to_owned(),
            json!({"type": "interval", "interval_ms": 5000})
        )]
    );
    assert_eq!(
        posts(&outs[3]),
        vec![(
            DASHBOARD.to_owned(),
            json!({"type": "reading", "device_id": "esp32-01", "seq": 42, "readings": readings})
        )],
        "the following dashboard gets the reading"
    );
    assert_eq!(outs[3]["metrics"][0]["BroadcastDeliveries"], 1);
    assert_eq!(
        posts(&outs[4]),
        vec![(
            DEVICE.to_owned(),
            json!({"type": "control", "sample_interval_ms": 2000})
        )]
    );
    assert_eq!(
        posts(&outs[5]),
        vec![(
            DASHBOARD.to_owned(),
            json!({"type": "control_ack", "device_id": "esp32-01", "sample_interval_ms": 2000})
        )]
    );

    let history = body(&outs[6]);
    assert_eq!(history["device_id"], "esp32-01");
    assert_eq!(history["next"], Value::Null);
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{history}");
    assert_eq!(items[0]["seq"], 42);
    assert_eq!(items[0]["readings"], readings);

    let devices = body(&outs[7]);
    assert_eq!(devices["devices"][0]["device_id"], "esp32-01");
    assert_eq!(devices["devices"][0]["sample_interval_ms"], 2000);

    let unknown = posts(&outs[8]);
    assert_eq!(unknown[0].0, DASHBOARD);
    assert_eq!(unknown[0].1["code"], error("unknown_action")["code"]);
    assert_eq!(outs[10]["metrics"][0]["Disconnects"], 1);
}

/// The history endpoint deployed behind a REST API (payload 1.0), an HTTP API (payload
/// 2.0) and a Function URL (payload 2.0): the same status, headers and JSON for the same
/// query, in events AWS captured (see the README's "Where the history events come from");
/// each answered in its own response format (payload 2.0 answers carry `cookies`,
/// payload 1.0 ones do not).
#[test]
fn history_answers_the_same_to_a_rest_api_an_http_api_and_a_function_url_event() {
    let outs = invoke(&[
        "events/connect-device.json",
        "events/realtimedataupdate.json",
        "events/history.json",
        "events/history-http-api.json",
        "events/history-function-url.json",
    ]);
    let [rest, http_api, function_url] = [&outs[2], &outs[3], &outs[4]];
    let history = body(rest);
    assert_eq!(history["items"][0]["seq"], 42, "{history}");
    assert!(rest["response"].get("cookies").is_none(), "{rest}");
    for (kind, out) in [("HTTP API", http_api), ("Function URL", function_url)] {
        for field in ["statusCode", "headers", "isBase64Encoded"] {
            assert_eq!(
                out["response"][field], rest["response"][field],
                "{kind} {field}"
            );
        }
        assert_eq!(
            out["response"]["cookies"],
            json!([]),
            "{kind}: a payload 2.0 answer"
        );
        assert_eq!(body(out), history, "{kind}");
        assert_eq!(out["metrics"][0]["Route"], "GET /history", "{kind}");
        assert_eq!(out["metrics"][0]["HttpRequests"], 1, "{kind}");
    }
}

#[test]
fn a_malformed_rest_event_is_refused_naming_the_field_with_exit_status_2() {
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(events_dir().join("history.json")).unwrap()).unwrap();
    event["queryStringParameters"]["limit"] = json!(10);
    // Its own directory: another test removes the one `history_event` writes to.
    let dir =
        std::env::temp_dir().join(format!("telemetry-invoke-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("history-number.json");
    std::fs::write(&bad, event.to_string()).unwrap();

    let output = telemetry(&["invoke", "--event", bad.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("malformed API Gateway REST proxy event: field `queryStringParameters"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The REST event of `events/history.json` as a file in a scratch directory, with an
/// `Authorization` header when `key` is given.
fn history_event(name: &str, key: Option<&str>) -> PathBuf {
    let text = std::fs::read_to_string(events_dir().join("history.json")).expect("the event");
    let mut event: Value = serde_json::from_str(&text).expect("JSON");
    if let Some(key) = key {
        event["headers"]["Authorization"] = json!(format!("Bearer {key}"));
        event["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {key}")]);
    }
    let dir = std::env::temp_dir().join(format!("telemetry-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, event.to_string()).expect("writes the event");
    path
}

#[test]
fn deployed_with_keys_the_functions_rest_handler_wants_a_dashboard_key() {
    let anonymous = history_event("anonymous.json", None);
    let viewer = history_event("viewer.json", Some("k-view-bob"));
    let device = history_event("device.json", Some("k-dev-01"));
    let outputs = invoke_with(
        &[
            "--device-keys",
            "esp32-01=k-dev-01",
            "--dashboard-keys",
            "bob=k-view-bob",
        ],
        &[
            anonymous.to_str().expect("utf-8"),
            viewer.to_str().expect("utf-8"),
            device.to_str().expect("utf-8"),
        ],
    );
    let status = |out: &Value| out["response"]["statusCode"].as_u64();
    assert_eq!(status(&outputs[0]), Some(401), "{}", outputs[0]);
    let refusal: Value = serde_json::from_str(outputs[0]["response"]["body"].as_str().unwrap())
        .expect("a JSON body");
    assert_eq!(refusal["error"], "unauthorized");
    assert_eq!(
        outputs[0]["response"]["headers"].get("access-control-allow-origin"),
        None,
        "no CORS grant to an unlisted origin with keys on"
    );
    assert_eq!(status(&outputs[1]), Some(200), "{}", outputs[1]);
    assert_eq!(status(&outputs[2]), Some(403), "{}", outputs[2]);
    let _ = std::fs::remove_dir_all(anonymous.parent().expect("the scratch directory"));
}
