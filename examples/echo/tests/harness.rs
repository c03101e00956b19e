//! The echo/whoami protocol, driven through simulated clients on the in-memory backend.

use echo::ROUTE_SELECTION;
use serde_json::{json, Value};
use wsgw_core::Payload;
use wsgw_memory::{Harness, TestClient};

fn harness() -> Harness {
    Harness::new(echo::router())
}

async fn connected(harness: &Harness) -> TestClient {
    harness
        .connect()
        .await
        .expect("the echo system accepts every client")
}

fn unknown_action() -> Value {
    json!({ "type": "error", "error": "unknown_action", "available": ["message", "whoami"] })
}

#[tokio::test]
async fn routes_are_selected_by_the_action_field_of_the_body() {
    let harness = harness();

    assert_eq!(harness.router().selection().expression(), ROUTE_SELECTION);
    assert_eq!(
        harness.router().route_keys(),
        vec!["$connect", "$default", "$disconnect", "message", "whoami"]
    );
}

#[tokio::test]
async fn a_client_connects_and_receives_nothing_until_it_asks() {
    let harness = harness();

    let client = connected(&harness).await;

    assert!(client.is_open());
    assert!(client.received().is_empty());
}

#[tokio::test]
async fn message_is_echoed_to_the_sender() {
    let harness = harness();
    let client = connected(&harness).await;

    client
        .send_json(&json!({ "action": "message", "message": "hello" }))
        .await
        .expect("the message route succeeds");

    assert_eq!(
        client.received_json(),
        vec![json!({ "type": "message", "message": "hello" })]
    );
}

#[tokio::test]
async fn nested_json_message_is_echoed_unchanged() {
    let harness = harness();
    let client = connected(&harness).await;
    let message = json!({
        "text": "grüße 👋",
        "numbers": [1, -2.5, 1e100, 18446744073709551615u64],
        "flags": { "on": true, "off": false, "unset": null },
        "deep": [[{ "a": [{ "b": "c" }] }], []],
    });

    client
        .send_json(&json!({ "action": "message", "message": message }))
        .await
        .expect("the message route succeeds");

    assert_eq!(
        client.received_json(),
        vec![json!({ "type": "message", "message": message })]
    );
}

#[tokio::test]
async fn message_values_of_every_json_type_are_echoed_unchanged() {
    let harness = harness();
    let client = connected(&harness).await;
    let values = [
        json!("text"),
        json!(42),
        json!(-0.5),
        json!(true),
        json!(null),
        json!([1, "two"]),
        json!({}),
    ];

    for value in &values {
        client
            .send_json(&json!({ "action": "message", "message": value }))
            .await
            .expect("the message route succeeds");
    }

    let expected: Vec<Value> = values
        .iter()
        .map(|value| json!({ "type": "message", "message": value }))
        .collect();
    assert_eq!(client.received_json(), expected);
}

#[tokio::test]
async fn message_without_message_field_answers_missing_field_error() {
    let harness = harness();
    let client = connected(&harness).await;

    client
        .send_json(&json!({ "action": "message", "text": "wrong field" }))
        .await
        .expect("a missing field is answered, not an error of the route");

    assert_eq!(
        client.received_json(),
        vec![json!({ "type": "error", "error": "missing_field", "field": "message" })]
    );
}

#[tokio::test]
async fn whoami_answers_the_callers_connection_id() {
    let harness = harness();
    let client = connected(&harness).await;

    client
        .send_json(&json!({ "action": "whoami" }))
        .await
        .expect("the whoami route succeeds");

    assert_eq!(
        client.received_json(),
        vec![json!({ "type": "whoami", "connection_id": client.id().as_str() })]
    );
}

#[tokio::test]
async fn whoami_ids_differ_per_client() {
    let harness = harness();
    let first = connected(&harness).await;
    let second = connected(&harness).await;

    first
        .send_json(&json!({ "action": "whoami" }))
        .await
        .expect("whoami succeeds");
    second
        .send_json(&json!({ "action": "whoami" }))
        .await
        .expect("whoami succeeds");

    let first_id = first.received_json()[0]["connection_id"].clone();
    let second_id = second.received_json()[0]["connection_id"].clone();
    assert_eq!(first_id, first.id().as_str());
    assert_eq!(second_id, second.id().as_str());
    assert_ne!(first_id, second_id);
}

#[tokio::test]
async fn unknown_action_answers_unknown_action_error_listing_available_actions() {
    let harness = harness();
    let client = connected(&harness).await;

    client
        .send_json(&json!({ "action": "dance" }))
        .await
        .expect("the $default route succeeds");

    assert_eq!(client.received_json(), vec![unknown_action()]);
}

#[tokio::test]
async fn json_without_action_answers_unknown_action_error() {
    let harness = harness();
    let client = connected(&harness).await;

    client
        .send_json(&json!({ "message": "no action" }))
        .await
        .expect("the $default route succeeds");

    assert_eq!(client.received_json(), vec![unknown_action()]);
}

#[tokio::test]
async fn malformed_json_answers_unknown_action_error() {
    let harness = harness();
    let client = connected(&harness).await;

    client
        .send(r#"{"action": "message", "message": "#)
        .await
        .expect("malformed JSON goes to $default, which succeeds");

    assert_eq!(client.received_json(), vec![unknown_action()]);
}

/// AWS: a binary frame from a client is rejected and the connection closed with 1003;
/// no route runs.
#[tokio::test]
async fn a_binary_frame_closes_the_connection_with_1003_and_runs_no_route() {
    let harness = harness();
    let client = connected(&harness).await;

    let error = client
        .send(Payload::binary(br#"{"action":"whoami"}"#.to_vec()))
        .await
        .expect_err("API Gateway refuses binary frames");

    assert!(error.to_string().contains("1003"), "{error}");
    assert!(!client.is_open());
    assert_eq!(client.received_json(), Vec::<serde_json::Value>::new());
}

#[tokio::test]
async fn answers_arrive_as_messages_not_as_two_way_replies() {
    let harness = harness();
    let client = connected(&harness).await;

    let reply = client
        .send_json(&json!({ "action": "whoami" }))
        .await
        .expect("the whoami route succeeds");

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, None);
    assert_eq!(client.received().len(), 1);
}

#[tokio::test]
async fn error_answers_keep_the_connection_open() {
    let harness = harness();
    let client = connected(&harness).await;

    client.send("not json").await.expect("$default succeeds");
    client
        .send_json(&json!({ "action": "message" }))
        .await
        .expect("a missing field is answered");

    assert!(client.is_open());
    assert_eq!(client.received().len(), 2);
}

#[tokio::test]
async fn a_client_never_receives_another_clients_echo() {
    let harness = harness();
    let sender = connected(&harness).await;
    let bystander = connected(&harness).await;

    sender
        .send_json(&json!({ "action": "message", "message": "only for me" }))
        .await
        .expect("the message route succeeds");
    sender
        .send_json(&json!({ "action": "whoami" }))
        .await
        .expect("the whoami route succeeds");

    assert_eq!(sender.received().len(), 2);
    assert!(bystander.received().is_empty());
}

#[tokio::test]
async fn disconnect_succeeds_and_closes_the_connection() {
    let harness = harness();
    let client = connected(&harness).await;
    let id = client.id().clone();

    let reply = client
        .disconnect_with(1001, "going away")
        .await
        .expect("the $disconnect route succeeds");

    assert_eq!(reply.status, 200);
    assert!(!harness.sink().is_open(&id));
}
