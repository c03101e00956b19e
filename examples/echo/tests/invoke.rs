//! `echo invoke --event FILE.json`: every event shipped in `events/` run through the
//! binary as Lambda would run it, with no AWS credentials or configuration at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use wsgw_aws::metrics::check_emf_line;
use wsgw_memory::testing::printed_json;

const CONNECTION: &str = "Bq8N1dUyjoECJ3A=";

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The binary with an empty environment: no credentials, no region, no profile.
fn echo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_echo"))
        .env_clear()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the echo binary runs")
}

/// What each shipped event makes the function post to its caller, and the counter its
/// metrics line must carry. A new file in `events/` fails the test until it is listed.
fn expectations() -> BTreeMap<&'static str, (Vec<Value>, &'static str, &'static str)> {
    BTreeMap::from([
        ("connect.json", (vec![], "$connect", "Connects")),
        (
            "message.json",
            (
                vec![json!({"type": "message", "message": {"text": "hello", "n": [1, 2, 3]}})],
                "message",
                "Messages",
            ),
        ),
        (
            "whoami.json",
            (
                vec![json!({"type": "whoami", "connection_id": CONNECTION})],
                "whoami",
                "Messages",
            ),
        ),
        (
            "default.json",
            (
                vec![
                    json!({"type": "error", "error": "unknown_action", "available": ["message", "whoami"]}),
                ],
                "$default",
                "Messages",
            ),
        ),
        ("disconnect.json", (vec![], "$disconnect", "Disconnects")),
    ])
}

#[test]
fn every_shipped_event_gives_its_response_posts_and_metrics_line() {
    let expected = expectations();
    let mut shipped: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    assert_eq!(
        shipped,
        expected
            .keys()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
        "every file in events/ has an expectation here"
    );

    for (name, (posts, route, counter)) in expected {
        let path = format!("events/{name}");
        let output = echo(&["invoke", "--event", &path, "--metrics"]);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed = printed_json(&output);
        assert_eq!(printed.len(), 1, "{name}: one object per event");
        let out = &printed[0];
        assert_eq!(out["event"], path);
        assert_eq!(
            out["response"],
            json!({"statusCode": 200, "headers": {}, "multiValueHeaders": {}, "isBase64Encoded": false}),
            "{name}"
        );
        let posted: Vec<Value> = out["posted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|post| {
                assert_eq!(post["connection_id"], CONNECTION, "{name}: to the caller");
                assert_eq!(
                    serde_json::from_str::<Value>(post["data"].as_str().unwrap()).unwrap(),
                    post["json"],
                    "{name}: json is data parsed"
                );
                post["json"].clone()
            })
            .collect();
        assert_eq!(posted, posts, "{name}");
        assert_eq!(out["rejected"], json!([]), "{name}");
        assert_eq!(out["disconnected"], json!([]), "{name}");

        let metrics = out["metrics"].as_array().expect("metrics with --metrics");
        assert_eq!(metrics.len(), 1, "{name}: one EMF document per invocation");
        let line = check_emf_line(&metrics[0].to_string())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "wsgw");
        assert_eq!(line["FunctionName"], "echo");
        assert_eq!(line["Route"], route, "{name}");
        assert_eq!(line[counter], 1, "{name}");
        assert_eq!(line["HandlerErrors"], 0, "{name}");
        assert_eq!(line["ConnectionId"], CONNECTION);
    }
}

#[test]
fn several_events_run_in_order_one_object_each() {
    let output = echo(&[
        "invoke",
        "--event",
        "events/connect.json",
        "--event",
        "events/whoami.json",
        "--event",
        "events/disconnect.json",
        "--compact",
    ]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 3, "--compact: one line each");
    let events: Vec<Value> = printed_json(&output)
        .iter()
        .map(|out| out["event"].clone())
        .collect();
    assert_eq!(
        events,
        vec![
            json!("events/connect.json"),
            json!("events/whoami.json"),
            json!("events/disconnect.json")
        ]
    );
}

#[test]
fn an_event_on_stdin_is_read_with_a_dash() {
    let event = std::fs::read(events_dir().join("whoami.json")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo"))
        .env_clear()
        .args(["invoke", "--event", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&event).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        printed_json(&output)[0]["posted"][0]["json"]["type"],
        "whoami"
    );
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("echo-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn a_malformed_event_is_refused_naming_the_field_with_exit_status_2() {
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(events_dir().join("whoami.json")).unwrap()).unwrap();
    event["requestContext"]["connectedAt"] = json!("2026-11-22T09:20:57Z");
    let bad = temp_file("bad-field.json", &event.to_string());

    let output = echo(&["invoke", "--event", bad.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "nothing printed for a refused event"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "malformed API Gateway WebSocket event: field `requestContext.connectedAt`: invalid type: string \"2026-11-22T09:20:57Z\", expected i64"
        ),
        "{stderr}"
    );
}

#[test]
fn unreadable_non_json_and_non_api_gateway_events_are_refused_with_exit_status_2() {
    let not_json = temp_file("not-json.json", "{\"requestContext\": ");
    let not_apigw = temp_file("s3.json", r#"{"Records": [{"eventSource": "aws:s3"}]}"#);
    let missing = temp_file("placeholder.json", "{}").with_file_name("missing.json");
    for (path, expected) in [
        (&missing, "cannot read"),
        (&not_json, "is not JSON: EOF while parsing"),
        (
            &not_apigw,
            "not an API Gateway WebSocket, REST proxy, HTTP API (payload 2.0) or Function URL event",
        ),
    ] {
        let output = echo(&["invoke", "--event", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", path.display());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "names the file: {stderr}"
        );
    }
}
