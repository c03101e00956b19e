//! The chat when its backends fail: mocked history and connection stores.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use wsgw_core::{
    Backends, ConnectionId, ConnectionStoreExt, Error, MockConnectionStore, MockHistoryStore,
    MockMessageSink, Request,
};
use wsgw_memory::{ConnectError, ConnectOptions, Harness, MemorySink};

use chat::{ChatState, EVENTS_PARTITION, MESSAGES_PARTITION, SESSIONS_PARTITION};

fn unavailable() -> Error {
    Error::backend(
        "dynamodb",
        "put on table chat-history: service unavailable",
        None,
    )
}

/// A history whose appends to `failing` partitions fail; the rest succeed.
fn history_failing_on(failing: &'static [&'static str]) -> MockHistoryStore {
    let mut history = MockHistoryStore::new();
    history.expect_append().returning(move |record| {
        if failing.contains(&record.partition.as_str()) {
            Err(unavailable())
        } else {
            Ok(())
        }
    });
    history
}

fn harness_over(history: MockHistoryStore) -> Harness<ChatState> {
    Harness::new(chat::router(ChatState::new())).with_history(Arc::new(history))
}

/// Runs one event through the chat's router on these backends.
async fn handle(
    store: MockConnectionStore,
    sink: MockMessageSink,
    history: MockHistoryStore,
    request: Request,
) -> wsgw_core::Result<wsgw_core::Reply> {
    let backends = Backends::new(Arc::new(store), Arc::new(sink)).with_history(Arc::new(history));
    chat::router(ChatState::new())
        .handle(&backends, request)
        .await
}

#[tokio::test]
async fn a_message_that_cannot_be_stored_fails_the_route_and_reaches_nobody() {
    let harness = harness_over(history_failing_on(&[MESSAGES_PARTITION]));
    let ada = harness
        .connect_with(ConnectOptions::new().query("session_id", "s1"))
        .await
        .expect("connects");
    let bob = harness.connect().await.expect("connects");

    let outcome = ada
        .send_json(&json!({"action": "sendmessage", "message": "hi"}))
        .await;

    assert!(
        outcome.is_err(),
        "the integration fails, as API Gateway reports it"
    );
    assert!(bob.received().is_empty());
    let answers = ada.received_json();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["message"], "Internal server error");
}

#[tokio::test]
async fn an_audit_log_failure_does_not_stop_the_chat() {
    let harness = harness_over(history_failing_on(&[EVENTS_PARTITION]));
    let ada = harness
        .connect()
        .await
        .expect("connects despite the audit log");
    let bob = harness
        .connect()
        .await
        .expect("connects despite the audit log");

    ada.send_json(&json!({"action": "sendmessage", "message": "hi"}))
        .await
        .expect("the message route succeeds");
    ada.send_json(&json!({"action": "nope"}))
        .await
        .expect("the refusal is still answered");

    assert_eq!(bob.received_json()[0]["message"], "hi");
    let answers = ada.received_json();
    assert_eq!(answers[0]["message"], "hi");
    assert_eq!(answers[1]["error"], "unknown_action");
}

#[tokio::test]
async fn a_connect_whose_session_record_cannot_be_written_is_refused_and_undone() {
    let harness = harness_over(history_failing_on(&[SESSIONS_PARTITION]));

    let refused = harness.connect().await;

    assert!(matches!(refused, Err(ConnectError::Failed(_))), "HTTP 500");
    assert!(
        harness.store().connections().next().await.is_none(),
        "no broadcast will target a refused connection"
    );
}

#[tokio::test]
async fn a_connect_is_refused_when_the_connection_store_fails() {
    let mut store = MockConnectionStore::new();
    store.expect_put().returning(|_| Err(unavailable()));
    let mut history = MockHistoryStore::new();
    history.expect_append().never();
    let outcome = handle(
        store,
        MockMessageSink::new(),
        history,
        Request::connect(ConnectionId::new("a=")),
    )
    .await;

    assert!(matches!(outcome, Err(Error::Backend { .. })), "{outcome:?}");
}

#[tokio::test]
async fn a_message_fails_when_the_sessions_cannot_be_listed() {
    let mut store = MockConnectionStore::new();
    store.expect_get().returning(|_| Ok(None));
    store
        .expect_list_group()
        .returning(|_, _| Err(unavailable()));
    let mut sink = MockMessageSink::new();
    sink.expect_send().never();
    let outcome = handle(
        store,
        sink,
        history_failing_on(&[]),
        Request::message(
            ConnectionId::new("a="),
            r#"{"action":"sendmessage","message":"hi","session_ids":["s2"]}"#,
        ),
    )
    .await;

    assert!(matches!(outcome, Err(Error::Backend { .. })), "{outcome:?}");
}

#[tokio::test]
async fn a_payload_the_sink_refuses_is_reported_not_retried_forever() {
    // A sink with a 200-byte limit: the 4 KB message is within the chat's limit but too
    // big for this gateway; the broadcast reports it as failed and the route succeeds.
    let harness = Harness::new(chat::router(ChatState::new()))
        .with_sink(MemorySink::new().with_max_payload(200));
    let ada = harness.connect().await.expect("connects");

    ada.send_json(&json!({"action": "sendmessage", "message": "x".repeat(1000)}))
        .await
        .expect("the route succeeds");

    assert!(ada.received().is_empty());
    let page = harness
        .history()
        .query(wsgw_core::HistoryQuery::new(EVENTS_PARTITION))
        .await
        .unwrap();
    let message = page
        .items
        .iter()
        .find(|record| record.data["event"] == "message")
        .expect("a message event");
    assert_eq!(message.data["delivered"], 0);
    assert_eq!(message.data["failed"], 1);
}
