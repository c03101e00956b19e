//! Decoding real API Gateway event payloads, and the Lambda handler end to end.

use std::sync::Arc;

use aws_lambda_events::encodings::Body;
use serde_json::{json, Value};
use wsgw_aws::lambda::{
    decode_event, decode_http_v2_event, decode_rest_event, decode_websocket_event, ApiGatewayEvent,
    EventError, InvocationError, LambdaApp,
};
use wsgw_core::{
    Context, Error, EventType, HttpRequest, HttpResponse, MockConnectionStore, MockMessageSink,
    Payload, Reply, Request, Router,
};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

#[test]
fn an_http_api_payload_2_event_decodes_method_path_repeated_query_headers_cookies_and_body() {
    let raw = fixture("example-apigw-v2-request-multi-value-parameters.json");
    let request = decode_http_v2_event(raw.clone()).unwrap();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/my/path", "stage $default: rawPath as it is");
    assert_eq!(
        request.query_param("Parameter1"),
        Some("value2"),
        "a repeated name: its last value, as for a REST event"
    );
    assert_eq!(request.header("Header2"), Some("value1,value2"));
    assert_eq!(request.header("Cookie"), Some("cookie1; cookie2"));
    assert_eq!(
        request.body.as_ref().and_then(Payload::as_text),
        Some("{\r\n\t\"a\": 1\r\n}")
    );
    assert!(
        matches!(decode_event(raw), Ok(ApiGatewayEvent::Rest(decoded)) if decoded == request),
        "Lambda mode recognises it as an HTTP request"
    );
}

#[test]
fn connect_fixture_decodes_query_headers_identity_and_authorizer_context() {
    let request = decode_websocket_event(fixture("example-apigw-websocket-request.json")).unwrap();
    assert_eq!(request.event_type, EventType::Connect);
    assert_eq!(request.route_key, "$connect");
    assert_eq!(request.connection_id.as_str(), "TWegAcC4EowCHnA=");
    assert_eq!(request.stage, "testStage");
    assert_eq!(request.api_id, "gy415nuibc");
    assert_eq!(request.request_id, "deef4878-7910-11e6-8f14-25afc3e9ae33");
    assert_eq!(request.message_direction, "IN");
    assert_eq!(
        request.domain_name,
        "*.execute-api.eu-central-1.amazonaws.com"
    );
    assert_eq!(request.query_param("name"), Some("me"));
    assert_eq!(request.header("cloudfront-forwarded-proto"), Some("https"));
    assert_eq!(request.source_ip.as_deref(), Some("192.168.196.186"));
    assert_eq!(
        request.connected_at.map(|at| at.timestamp_millis()),
        Some(1547230720092)
    );
    assert_eq!(
        request.authorizer,
        Some(json!({"principalId": "admin", "clientId": 1, "clientName": "Exata"}))
    );
}

#[test]
fn disconnect_fixture_carries_status_code_and_reason() {
    let request = decode_websocket_event(fixture(
        "example-apigw-websocket-request-disconnect-route.json",
    ))
    .unwrap();
    assert_eq!(request.event_type, EventType::Disconnect);
    let info = request.disconnect.expect("disconnect info");
    assert_eq!(info.status_code, 1005);
    assert_eq!(info.reason, "Client-side close frame status not set");
    assert_eq!(request.request_time.timestamp_millis(), 1707503008941);
}

#[test]
fn connect_without_method_fixture_decodes() {
    let request = decode_websocket_event(fixture(
        "example-apigw-websocket-request-without-method.json",
    ))
    .unwrap();
    assert_eq!(request.event_type, EventType::Connect);
    assert_eq!(request.header("x-api-key"), Some("asdfasdf"));
    assert_eq!(request.stage, "dev");
}

#[test]
fn documented_message_event_decodes_body_route_and_message_id() {
    let request = decode_websocket_event(fixture("documented-websocket-message.json")).unwrap();
    assert_eq!(request.event_type, EventType::Message);
    assert_eq!(request.route_key, "sendmessage");
    assert_eq!(request.message_id.as_deref(), Some("GXLKJfX4FiACG1w="));
    assert_eq!(request.request_id, "GXLKJHy7FiAF1VA=");
    assert_eq!(request.api_id, "abc123");
    assert_eq!(request.message_direction, "IN");
    assert_eq!(
        request.text(),
        Some(r#"{"action":"sendmessage","message":"hello"}"#)
    );
    assert_eq!(
        request.user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    assert_eq!(
        request.authorizer.as_ref().map(|a| &a["roles"]),
        Some(&json!("operator"))
    );
}

#[test]
fn base64_message_bodies_decode_to_binary_payloads() {
    let request =
        decode_websocket_event(fixture("documented-websocket-binary-message.json")).unwrap();
    assert_eq!(request.body, Some(Payload::binary(vec![0u8, 1, 2, 3, 255])));
}

#[test]
fn rest_fixture_decodes_method_path_query_and_body() {
    let request = decode_rest_event(fixture("example-apigw-request.json")).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hello/world");
    assert_eq!(request.query_param("name"), Some("me"));
    assert!(request
        .body
        .unwrap()
        .as_text()
        .unwrap()
        .contains("\"a\": 1"));
}

#[test]
fn malformed_events_give_clear_errors_not_panics() {
    let cases = [
        (
            json!({"requestContext": {"eventType": "MESSAGE", "connectedAt": 1, "requestTimeEpoch": 1}}),
            "connectionId",
        ),
        (
            json!({"requestContext": {"eventType": "UPGRADE", "connectionId": "a=", "connectedAt": 1, "requestTimeEpoch": 1}}),
            "UPGRADE",
        ),
        (
            json!({"requestContext": {"eventType": "MESSAGE", "connectionId": "a=", "connectedAt": "yesterday", "requestTimeEpoch": 1}}),
            "malformed",
        ),
        (
            json!({"requestContext": {"eventType": "MESSAGE", "connectionId": "a=", "connectedAt": 1, "requestTimeEpoch": 1}, "body": "%%%", "isBase64Encoded": true}),
            "base64",
        ),
    ];
    for (event, expected) in cases {
        let error = decode_websocket_event(event.clone()).unwrap_err();
        assert!(error.to_string().contains(expected), "{event}: {error}");
    }
}

#[test]
fn a_malformed_event_names_the_field_that_is_wrong() {
    let cases = [
        (
            json!({"requestContext": {"eventType": "MESSAGE", "connectionId": "a=", "connectedAt": "yesterday", "requestTimeEpoch": 1}}),
            "malformed API Gateway WebSocket event: field `requestContext.connectedAt`: invalid type: string \"yesterday\", expected i64",
        ),
        (
            json!({"requestContext": {"eventType": "MESSAGE", "connectionId": "a=", "identity": {"sourceIp": 7}}}),
            "field `requestContext.identity.sourceIp`",
        ),
        (
            json!({"requestContext": {"eventType": "MESSAGE", "connectionId": "a="}, "isBase64Encoded": "no"}),
            "field `isBase64Encoded`",
        ),
    ];
    for (event, expected) in cases {
        let error = decode_websocket_event(event.clone()).unwrap_err();
        assert!(error.to_string().contains(expected), "{event}: {error}");
        match error {
            EventError::Malformed { path, .. } => assert!(expected.contains(&path), "{path}"),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
    let rest = decode_rest_event(json!({"httpMethod": "GET", "path": ["/history"]})).unwrap_err();
    assert!(
        rest.to_string()
            .starts_with("malformed API Gateway REST proxy event: field `path`"),
        "{rest}"
    );
}

fn app() -> LambdaApp {
    let mut sink = MockMessageSink::new();
    sink.expect_send().returning(|_, _| Ok(()));
    let router = Router::new()
        .two_way_route(
            "sendmessage",
            |_ctx: Context, request: Request| async move {
                Reply::json(&json!({"echo": request.json::<Value>()?["message"]}))
            },
        )
        .route("fails", |_ctx: Context, _request: Request| async move {
            Err::<Reply, _>(Error::backend("test", "table unavailable", None))
        })
        .on_connect(|_ctx: Context, request: Request| async move {
            Ok(if request.query_param("name") == Some("me") {
                Reply::ok()
            } else {
                Reply::status(403)
            })
        })
        .http(
            "POST",
            "/hello/{who}",
            |_ctx: Context, request: HttpRequest| async move {
                HttpResponse::json(&json!({"hello": request.path_param("who")}))
            },
        );
    LambdaApp::new(router)
        .with_store(Arc::new(MockConnectionStore::new()))
        .with_sink(Arc::new(sink))
}

#[tokio::test]
async fn message_events_answer_with_the_two_way_reply_body() {
    let response = app()
        .handle(fixture("documented-websocket-message.json"))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response.body,
        Some(Body::Text(r#"{"echo":"hello"}"#.to_owned()))
    );
}

#[tokio::test]
async fn connect_events_answer_with_the_connect_status() {
    let response = app()
        .handle(fixture("example-apigw-websocket-request.json"))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    let refused = app()
        .handle(fixture(
            "example-apigw-websocket-request-without-method.json",
        ))
        .await
        .unwrap();
    assert_eq!(refused.status_code, 403);
}

#[tokio::test]
async fn rest_events_reach_the_rest_routes() {
    let response = app()
        .handle(fixture("example-apigw-request.json"))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response.body,
        Some(Body::Text(r#"{"hello":"world"}"#.to_owned()))
    );
}

#[tokio::test]
async fn handler_errors_become_invocation_errors() {
    let mut event = fixture("documented-websocket-message.json");
    event["requestContext"]["routeKey"] = json!("fails");
    let error = app().handle(event).await.unwrap_err();
    assert!(error.to_string().contains("table unavailable"), "{error}");
    assert_eq!(error.error_type(), "wsgw::Backend");
}

#[tokio::test]
async fn unrecognised_events_are_refused_with_a_reason() {
    let error = app().handle(json!({"Records": []})).await.unwrap_err();
    assert!(
        matches!(error, InvocationError::Event(EventError::Unrecognised)),
        "{error}"
    );
    assert_eq!(error.error_type(), "wsgw::InvalidEvent");
    assert!(error.to_string().contains("not an API Gateway"), "{error}");
}
