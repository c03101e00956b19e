//! The events a local gateway sends functions, encoded from a core `Request` as API
//! Gateway shapes them, checked by reading them back with the decoders Lambda mode uses
//! (and against the fixtures recorded from AWS); the functions' answers decoded back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use wsgw_aws::authorizer::{
    connect_method_arn, decode_authorizer_answer, decode_authorizer_event, encode_authorizer_event,
    policy,
};
use wsgw_aws::lambda::{
    decode_proxy_response, decode_websocket_event, encode_reply, encode_websocket_event,
};
use wsgw_core::{Authorization, EventType, Payload, Reply, Request};

fn at(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap()
}

fn stamped(mut request: Request) -> Request {
    request = request.with_endpoint(
        "abc1234567.execute-api.us-east-1.amazonaws.com",
        "production",
    );
    request.api_id = "abc1234567".to_owned();
    request.request_id = "Bq8PZH5ejoEFuNw=".to_owned();
    request.request_time = at(1_795_336_801_234);
    request.connected_at = Some(at(1_795_336_800_000));
    request.source_ip = Some("203.0.113.10".to_owned());
    request.user_agent = Some("wscat".to_owned());
    request
}

fn connect() -> Request {
    let mut request = stamped(Request::connect("GXLKAfX1FiACHqQ=".into()));
    request.query = BTreeMap::from([("room".to_owned(), "r1".to_owned())]);
    request.headers = BTreeMap::from([
        (
            "host".to_owned(),
            "abc1234567.execute-api.us-east-1.amazonaws.com".to_owned(),
        ),
        (
            "sec-websocket-protocol".to_owned(),
            "wsgw.bearer, t0k3n".to_owned(),
        ),
        ("user-agent".to_owned(), "wscat".to_owned()),
    ]);
    request
}

#[test]
fn a_connect_event_round_trips_with_its_query_headers_and_identity() {
    let request = connect();

    let event = encode_websocket_event(&request);

    let context = &event["requestContext"];
    assert_eq!(context["eventType"], "CONNECT");
    assert_eq!(context["routeKey"], "$connect");
    assert_eq!(context["messageDirection"], "IN");
    assert_eq!(context["requestTime"], "22/Nov/2026:08:40:01 +0000");
    assert_eq!(context["connectedAt"], 1_795_336_800_000_i64);
    assert_eq!(context["identity"]["sourceIp"], "203.0.113.10");
    assert_eq!(
        event["multiValueQueryStringParameters"]["room"],
        json!(["r1"])
    );
    assert_eq!(event["isBase64Encoded"], false);
    assert!(
        context.get("messageId").is_none(),
        "CONNECT events carry no messageId"
    );
    assert_eq!(decode_websocket_event(event).unwrap(), request);
}

#[test]
fn a_message_event_round_trips_text_and_binary_bodies_and_the_authorizer_context() {
    let mut text = stamped(Request::message(
        "GXLKAfX1FiACHqQ=".into(),
        Payload::text(r#"{"action":"sendmessage","message":"hello"}"#),
    ))
    .with_route_key("sendmessage");
    text.message_id = Some("GXLKJfX4FiACG1w=".to_owned());
    text.authorizer = Some(json!({"principalId": "user-42", "roles": "operator"}));

    let event = encode_websocket_event(&text);

    assert!(
        event.get("headers").is_none(),
        "MESSAGE events carry no headers"
    );
    assert_eq!(event["requestContext"]["messageId"], "GXLKJfX4FiACG1w=");
    assert_eq!(
        event["requestContext"]["authorizer"]["principalId"],
        "user-42"
    );
    assert_eq!(decode_websocket_event(event).unwrap(), text);

    let mut binary = text.clone();
    binary.body = Some(Payload::binary(vec![0_u8, 159, 146, 150]));
    let event = encode_websocket_event(&binary);
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(decode_websocket_event(event).unwrap(), binary);
}

#[test]
fn a_disconnect_event_round_trips_its_close_code_and_reason() {
    let request = stamped(Request::disconnect(
        "GXLKAfX1FiACHqQ=".into(),
        1001,
        "Going away",
    ));

    let event = encode_websocket_event(&request);

    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1001);
    assert_eq!(event["requestContext"]["disconnectReason"], "Going away");
    assert_eq!(decode_websocket_event(event).unwrap(), request);
}

#[test]
fn an_encoded_message_has_the_fields_of_the_documented_aws_event() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/documented-websocket-message.json")).unwrap();
    let request = decode_websocket_event(fixture.clone()).unwrap();

    let event = encode_websocket_event(&request);

    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&event), keys(&fixture));
    assert_eq!(
        keys(&event["requestContext"]),
        keys(&fixture["requestContext"])
    );
    // The same format (the fixture's text and epoch are of different instants).
    let time = event["requestContext"]["requestTime"].as_str().unwrap();
    let documented = fixture["requestContext"]["requestTime"].as_str().unwrap();
    assert_eq!(time.len(), documented.len());
    assert_eq!(
        time.split([' ', '/', ':']).count(),
        documented.split([' ', '/', ':']).count()
    );
    assert_eq!(event["body"], fixture["body"]);
}

#[test]
fn the_authorizer_event_round_trips_and_matches_the_recorded_shape() {
    let request = connect();
    let arn = connect_method_arn("us-east-1", "123456789012", "abc1234567", "production");
    let variables = BTreeMap::from([("mode".to_owned(), "strict".to_owned())]);

    let event = encode_authorizer_event(&request, &arn, &variables);

    assert_eq!(event["type"], "REQUEST");
    assert_eq!(
        event["methodArn"],
        "arn:aws:execute-api:us-east-1:123456789012:abc1234567/production/$connect"
    );
    assert_eq!(event["stageVariables"]["mode"], "strict");
    assert!(event.get("body").is_none());
    let recorded: Value =
        serde_json::from_str(include_str!("events/authorizer-request.json")).unwrap();
    let mut keys: Vec<&String> = event.as_object().unwrap().keys().collect();
    let mut expected: Vec<&String> = recorded.as_object().unwrap().keys().collect();
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected);
    let decoded = decode_authorizer_event(event).unwrap();
    assert_eq!(decoded.method_arn, arn);
    assert_eq!(decoded.request, request);
    assert_eq!(decoded.request.event_type, EventType::Connect);
}

#[test]
fn proxy_responses_decode_back_into_the_reply_they_encode() {
    let mut reply = Reply::with_body(r#"{"you":"c1"}"#);
    reply.headers.insert(
        "sec-websocket-protocol".to_owned(),
        "wsgw.bearer".to_owned(),
    );
    let binary = Reply::with_body(Payload::binary(vec![1_u8, 2, 255]));

    for reply in [reply, binary, Reply::status(403), Reply::ok()] {
        let answer = serde_json::to_value(encode_reply(&reply)).unwrap();
        assert_eq!(decode_proxy_response(answer).unwrap(), reply);
    }
}

#[test]
fn answers_of_functions_not_written_with_wsgw_decode_as_api_gateway_reads_them() {
    let decoded = decode_proxy_response(
        json!({"statusCode": "401", "headers": {"Sec-WebSocket-Protocol": "p"}}),
    )
    .unwrap();
    assert_eq!(decoded.status, 401);
    assert_eq!(decoded.headers["sec-websocket-protocol"], "p");
    assert_eq!(
        decode_proxy_response(json!("pong")).unwrap(),
        Reply::with_body("pong")
    );
    assert_eq!(
        decode_proxy_response(json!({"a": 1})).unwrap(),
        Reply::with_body(r#"{"a":1}"#)
    );
    assert!(decode_proxy_response(json!({"statusCode": 99})).is_err());
    assert!(decode_proxy_response(
        json!({"statusCode": 200, "body": "%%", "isBase64Encoded": true})
    )
    .is_err());
    assert!(decode_proxy_response(json!({"statusCode": 200, "body": {"not": "text"}})).is_err());
}

#[test]
fn authorizer_answers_decode_into_allow_deny_and_unauthorized() {
    let arn = connect_method_arn("us-east-1", "123456789012", "abc1234567", "production");
    let context = json!({"roles": "device", "count": 3});

    let allow = policy("esp32-01", "Allow", &arn, &context);
    assert_eq!(
        decode_authorizer_answer(Ok(&allow), &arn).unwrap(),
        Authorization::Allow(json!({"principalId": "esp32-01", "roles": "device", "count": 3}))
    );
    let wildcard = policy(
        "p",
        "Allow",
        "arn:aws:execute-api:us-east-1:123456789012:abc1234567/*/*",
        &json!({}),
    );
    assert!(matches!(
        decode_authorizer_answer(Ok(&wildcard), &arn).unwrap(),
        Authorization::Allow(_)
    ));
    let elsewhere = policy(
        "p",
        "Allow",
        "arn:aws:execute-api:us-east-1:123456789012:other/*",
        &json!({}),
    );
    assert_eq!(
        decode_authorizer_answer(Ok(&elsewhere), &arn).unwrap(),
        Authorization::Deny(403)
    );
    let deny = policy("p", "Deny", &arn, &json!({}));
    assert_eq!(
        decode_authorizer_answer(Ok(&deny), &arn).unwrap(),
        Authorization::Deny(403)
    );
    assert_eq!(
        decode_authorizer_answer(Err("Unauthorized"), &arn).unwrap(),
        Authorization::Deny(401)
    );
    assert!(decode_authorizer_answer(Err("boom"), &arn).is_err());
    assert!(decode_authorizer_answer(Ok(&json!({"principalId": "p"})), &arn).is_err());
}
