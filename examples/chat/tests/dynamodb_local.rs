//! `cargo run -p chat -- --dynamodb-endpoint URL`: the local gateway on DynamoDB instead
//! of memory, so connections and history live in tables and survive a restart.
//!
//! Compiled with the `integration` feature only; the server is named by
//! `AWS_ENDPOINT_URL_DYNAMODB` (`cargo xtask test` starts moto's and runs this).
#![cfg(feature = "integration")]

use std::process::Command;

use serde_json::{json, Value};
use wsgw_aws::dynamo::local::unique_name as unique;
use wsgw_aws::dynamo::{local, DynamoHistory, DYNAMODB_ENDPOINT_ENV};
use wsgw_core::{HistoryQuery, HistoryStore};
use wsgw_memory::testing::ws::{next_json, send_json};
use wsgw_memory::testing::{successful_json, ServerProcess};

use chat::{SessionRecord, SESSIONS_PARTITION};

fn endpoint() -> String {
    local::endpoint_from_env().unwrap_or_else(|missing| panic!("{missing}"))
}

/// Starts the binary on DynamoDB; returns it, its first line and its `ws://` address.
fn start(connections: &str, history: &str) -> (ServerProcess, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
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
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE");
    let server = ServerProcess::start(command);
    let (line, url) = (server.first_line().to_owned(), server.url("ws://"));
    (server, line, url)
}

#[tokio::test]
async fn on_a_dynamodb_endpoint_the_chat_creates_its_tables_and_keeps_history_across_restarts() {
    let (connections, history_table) = (unique("chat-connections"), unique("chat-history"));

    let (first, line, url) = start(&connections, &history_table);
    assert!(line.contains("DynamoDB"), "{line}");
    assert!(line.contains(&history_table), "{line}");
    let (mut ada, _) = tokio_tungstenite::connect_async(format!("{url}/?session_id=s1&name=ada"))
        .await
        .expect("ada connects");
    let (mut bob, _) = tokio_tungstenite::connect_async(format!("{url}/?session_id=s2&name=bob"))
        .await
        .expect("bob connects");
    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "before the restart"}),
    )
    .await;
    assert_eq!(next_json(&mut ada).await["message"], "before the restart");
    assert_eq!(next_json(&mut bob).await["message"], "before the restart");
    first.assert_graceful_stop();

    let (_second, _, url) = start(&connections, &history_table);
    let (mut cyd, _) = tokio_tungstenite::connect_async(format!("{url}/?session_id=s3"))
        .await
        .expect("cyd connects");
    send_json(&mut cyd, &json!({"action": "history"})).await;
    let history = next_json(&mut cyd).await;
    assert_eq!(history["messages"][0]["message"], "before the restart");
    assert_eq!(history["messages"][0]["name"], "ada");
    send_json(
        &mut cyd,
        &json!({"action": "sendmessage", "message": "after"}),
    )
    .await;
    assert_eq!(next_json(&mut cyd).await["message"], "after");

    let table = DynamoHistory::builder()
        .with_endpoint(endpoint())
        .with_table(history_table)
        .build()
        .await
        .expect("the history builds");
    let sessions: Vec<SessionRecord> = table
        .query(HistoryQuery::new(SESSIONS_PARTITION))
        .await
        .expect("readable")
        .items
        .into_iter()
        .map(|record| serde_json::from_value(record.data).expect("a session record"))
        .collect();
    assert_eq!(sessions.len(), 3);
    for record in sessions
        .iter()
        .filter(|record| record.app.session_id != "s3")
    {
        assert_eq!(
            record.close_code,
            Some(1001),
            "closed by the shutdown: {record:?}"
        );
    }
}

/// `chat invoke` with the DynamoDB flags, environment emptied (no credentials).
fn invoke_on_dynamodb(connections: &str, history: &str, events: &[&str]) -> Vec<Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
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
    successful_json(&command.output().expect("chat invoke runs"))
}

#[test]
fn invoke_on_a_dynamodb_endpoint_keeps_its_state_between_runs() {
    let (connections, history) = (unique("invoke-connections"), unique("invoke-history"));

    let first = invoke_on_dynamodb(
        &connections,
        &history,
        &[
            "events/connect.json",
            "events/connect-bob.json",
            "events/sendmessage.json",
        ],
    );
    let mut reached: Vec<&str> = first[2]["posted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| post["connection_id"].as_str().unwrap())
        .collect();
    reached.sort_unstable();
    assert_eq!(reached, vec!["Bq8N1dUyjoECJ3A=", "Bq8N7cKkjoECFtQ="]);

    // Another process: the connections and the message are in the tables.
    let second = invoke_on_dynamodb(
        &connections,
        &history,
        &["events/history.json", "events/sendmessage-to-session.json"],
    );
    assert_eq!(
        second[0]["posted"][0]["json"]["messages"][0]["message"],
        "hi everyone"
    );
    assert_eq!(second[1]["posted"][0]["connection_id"], "Bq8N7cKkjoECFtQ=");
    assert_eq!(second[1]["posted"][1]["json"]["delivered"], 1);
}
