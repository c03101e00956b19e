//! `chat invoke --event FILE.json`: every event shipped in `events/`, alone and as one
//! conversation on the in-memory backend, with no AWS credentials or configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use wsgw_aws::metrics::check_emf_line;
use wsgw_memory::testing::successful_json;

const ADA: &str = "Bq8N1dUyjoECJ3A=";
const BOB: &str = "Bq8N7cKkjoECFtQ=";

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The binary with an empty environment: no credentials, no region, no DynamoDB.
fn chat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chat"))
        .env_clear()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the chat binary runs")
}

/// `(recipient, message)` for each post, the random message id and the response checked
/// and left out.
fn posts(out: &Value) -> Vec<(String, Value)> {
    assert_eq!(out["response"]["statusCode"], 200, "{out}");
    assert_eq!(out["rejected"], json!([]), "{out}");
    out["posted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| {
            let mut message = post["json"].clone();
            if let Some(object) = message.as_object_mut() {
                if let Some(id) = object.remove("message_id") {
                    assert!(id.as_str().is_some_and(|id| !id.is_empty()));
                }
            }
            (post["connection_id"].as_str().unwrap().to_owned(), message)
        })
        .collect()
}

fn invoke(files: &[&str]) -> Vec<Value> {
    let mut args = vec!["invoke", "--metrics"];
    for file in files {
        args.push("--event");
        args.push(file);
    }
    let outputs = successful_json(&chat(&args));
    assert_eq!(outputs.len(), files.len(), "one object per event");
    for out in &outputs {
        for document in out["metrics"].as_array().unwrap() {
            check_emf_line(&document.to_string()).unwrap_or_else(|error| panic!("{error}"));
        }
    }
    outputs
}

#[test]
fn each_shipped_event_alone_gives_the_answer_a_fresh_backend_gives() {
    let error_dance = json!({
        "type": "error", "error": "unknown_action",
        "detail": "`dance` is not an action (actions are case-sensitive)",
        "available": ["sendmessage", "history", "heartbeat"]
    });
    // Alone, nobody else is connected: a broadcast reaches no one and history is empty.
    let expected: BTreeMap<&str, Vec<(String, Value)>> = BTreeMap::from([
        ("connect.json", vec![]),
        ("connect-bob.json", vec![]),
        ("sendmessage.json", vec![]),
        (
            "sendmessage-to-session.json",
            vec![(ADA.to_owned(), json!({"type": "sent", "delivered": 0}))],
        ),
        (
            "history.json",
            vec![(BOB.to_owned(), json!({"type": "history", "messages": []}))],
        ),
        (
            "heartbeat.json",
            vec![(BOB.to_owned(), json!({"type": "heartbeat"}))],
        ),
        ("default.json", vec![(ADA.to_owned(), error_dance)]),
        ("disconnect.json", vec![]),
    ]);
    let mut shipped: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    let mut listed: Vec<String> = expected.keys().map(|name| (*name).to_owned()).collect();
    listed.sort();
    assert_eq!(
        shipped, listed,
        "every file in events/ has an expectation here"
    );

    for (name, posted) in expected {
        let path = format!("events/{name}");
        let out = &invoke(&[&path])[0];
        assert_eq!(posts(out), posted, "{name}");
        let metrics = &out["metrics"][0];
        assert_eq!(metrics["FunctionName"], "chat", "{name}");
        assert_eq!(metrics["HandlerErrors"], 0, "{name}");
    }
}

#[test]
fn the_shipped_events_in_order_are_a_whole_conversation() {
    let outs = invoke(&[
        "events/connect.json",
        "events/connect-bob.json",
        "events/sendmessage.json",
        "events/sendmessage-to-session.json",
        "events/history.json",
        "events/heartbeat.json",
        "events/default.json",
        "events/disconnect.json",
    ]);

    assert_eq!(posts(&outs[0]), vec![]);
    assert_eq!(outs[0]["metrics"][0]["Connects"], 1);
    assert_eq!(posts(&outs[1]), vec![]);

    let hi = json!({
        "type": "message", "session_id": "s1", "name": "ada",
        "message": "hi everyone", "timestamp": "2026-11-22T09:21:01.223Z"
    });
    let mut everyone = posts(&outs[2]);
    everyone.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        everyone,
        vec![(ADA.to_owned(), hi.clone()), (BOB.to_owned(), hi.clone())]
    );
    assert_eq!(outs[2]["metrics"][0]["BroadcastDeliveries"], 2);
    assert_eq!(outs[2]["metrics"][0]["Route"], "sendmessage");

    let to_bob = json!({
        "type": "message", "session_id": "s1", "name": "ada",
        "message": "hi bob", "timestamp": "2026-11-22T09:21:03.423Z", "session_ids": ["s2"]
    });
    assert_eq!(
        posts(&outs[3]),
        vec![
            (BOB.to_owned(), to_bob.clone()),
            (ADA.to_owned(), json!({"type": "sent", "delivered": 1}))
        ]
    );

    let history = posts(&outs[4]);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].0, BOB);
    let messages: Vec<&str> = history[0].1["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, vec!["hi everyone", "hi bob"], "oldest first");

    assert_eq!(
        posts(&outs[5]),
        vec![(BOB.to_owned(), json!({"type": "heartbeat"}))]
    );
    assert_eq!(posts(&outs[6])[0].1["error"], "unknown_action");
    assert_eq!(posts(&outs[7]), vec![]);
    assert_eq!(outs[7]["metrics"][0]["Disconnects"], 1);
}

#[test]
fn a_malformed_event_is_refused_naming_the_field_with_exit_status_2() {
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(events_dir().join("sendmessage.json")).unwrap())
            .unwrap();
    // The classic mistake of a hand-written event: the body as a JSON object, where API
    // Gateway sends a string.
    event["body"] = json!({"action": "sendmessage", "message": "hi"});
    let dir = std::env::temp_dir().join(format!("chat-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("body-object.json");
    std::fs::write(&bad, event.to_string()).unwrap();

    let output = chat(&["invoke", "--event", bad.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "malformed API Gateway WebSocket event: field `body`: invalid type: map, expected a string"
        ),
        "{stderr}"
    );
}
