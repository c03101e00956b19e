//! How the echo routes react to their backends, with mockall mocks of the sink and store.
//!
//! The store mock never gets an expectation: the echo system keeps no state, so any call
//! to it fails the test.

use std::sync::Arc;

use serde_json::{json, Value};
use wsgw_core::{
    Backends, ConnectionId, Error, MockConnectionStore, MockMessageSink, Payload, Reply, Request,
};

fn caller() -> ConnectionId {
    ConnectionId::new("caller=")
}

/// Runs one event through the echo router on a store mock and `sink`.
async fn handle(sink: MockMessageSink, request: Request) -> wsgw_core::Result<Reply> {
    let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(sink));
    echo::router().handle(&backends, request).await
}

fn message(body: Value) -> Request {
    Request::message(caller(), body.to_string())
}

fn sink_answering(error: fn(&ConnectionId) -> Error) -> MockMessageSink {
    let mut sink = MockMessageSink::new();
    sink.expect_send()
        .times(1)
        .returning(move |id, _payload| Err(error(id)));
    sink
}

fn gone(id: &ConnectionId) -> Error {
    Error::Gone {
        connection_id: id.clone(),
    }
}

fn throttled(_id: &ConnectionId) -> Error {
    Error::Throttled {
        backend: "apigateway",
        message: "LimitExceededException".to_owned(),
    }
}

#[tokio::test]
async fn message_route_sends_one_answer_to_the_caller_only() {
    let mut sink = MockMessageSink::new();
    sink.expect_send()
        .withf(|id, payload| {
            *id == caller()
                && payload.parse_json::<Value>().ok()
                    == Some(json!({ "type": "message", "message": [1, { "a": null }] }))
        })
        .times(1)
        .returning(|_, _| Ok(()));

    let reply = handle(
        sink,
        message(json!({ "action": "message", "message": [1, { "a": null }] })),
    )
    .await
    .expect("the message route succeeds");

    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn message_route_returns_ok_when_the_sink_answers_gone() {
    let reply = handle(
        sink_answering(gone),
        message(json!({ "action": "message", "message": "hi" })),
    )
    .await
    .expect("a caller that left is not an error");

    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn whoami_route_returns_ok_when_the_sink_answers_gone() {
    let reply = handle(sink_answering(gone), message(json!({ "action": "whoami" })))
        .await
        .expect("a caller that left is not an error");

    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn default_route_returns_ok_when_the_sink_answers_gone() {
    let reply = handle(
        sink_answering(gone),
        Request::message(caller(), Payload::text("not JSON")),
    )
    .await
    .expect("a caller that left is not an error");

    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn message_route_returns_the_error_when_the_sink_answers_throttled() {
    let error = handle(
        sink_answering(throttled),
        message(json!({ "action": "message", "message": "hi" })),
    )
    .await
    .expect_err("throttling is the route's error");

    assert!(error.is_throttled(), "unexpected error: {error}");
}

#[tokio::test]
async fn missing_field_answer_returns_the_error_when_the_sink_answers_throttled() {
    let error = handle(
        sink_answering(throttled),
        message(json!({ "action": "message" })),
    )
    .await
    .expect_err("throttling is the route's error");

    assert!(error.is_throttled(), "unexpected error: {error}");
}

#[tokio::test]
async fn message_route_returns_the_error_when_the_payload_is_too_large() {
    let mut sink = MockMessageSink::new();
    sink.expect_send().times(1).returning(|_, payload| {
        Err(Error::PayloadTooLarge {
            size: payload.len(),
            limit: 16,
        })
    });

    let error = handle(
        sink,
        message(json!({ "action": "message", "message": "a longer message" })),
    )
    .await
    .expect_err("a payload the sink refuses is the route's error");

    assert!(
        matches!(error, Error::PayloadTooLarge { limit: 16, .. }),
        "unexpected error: {error}"
    );
}

#[tokio::test]
async fn connect_accepts_without_touching_store_or_sink() {
    let reply = handle(
        MockMessageSink::new(),
        Request::connect(caller()).with_source_ip("203.0.113.7"),
    )
    .await
    .expect("$connect succeeds");

    assert!(!reply.is_rejection());
}

#[tokio::test]
async fn disconnect_succeeds_without_touching_store_or_sink() {
    let reply = handle(
        MockMessageSink::new(),
        Request::disconnect(caller(), 1006, "dropped"),
    )
    .await
    .expect("$disconnect succeeds");

    assert_eq!(reply.status, 200);
}
