//! Decoding real API Gateway event payloads, and the Lambda handler end to end.

use std::sync::Arc;

use aws_lambda_events::encodings::Body;
use serde_json::{json, Value};
use wsgw_aws::lambda::ProxyResponse;
use wsgw_aws::lambda::{
    decode_event, decode_http_v2_event, decode_rest_event, decode_websocket_event, ApiGatewayEvent,
    EventError, InvocationError, LambdaApp,
};
use wsgw_core::http::{header, Response};
use wsgw_core::{
    Context, Error, EventType, HttpRequest, HttpRequestExt, Json, MockConnectionStore,
    MockMessageSink, Payload, Reply, Request, Router,
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
    assert_eq!(request.method(), "GET");
    assert_eq!(
        request.uri(),
        "/my/path?Parameter1=value1&Parameter1=value2",
        "stage $default: rawPath as it is, rawQueryString as the client sent it"
    );
    assert_eq!(request.query_params("Parameter1"), ["value1", "value2"]);
    assert_eq!(request.header_text("Header2"), Some("value1,value2"));
    assert_eq!(request.header_text("Cookie"), Some("cookie1; cookie2"));
    assert_eq!(request.body().as_text(), Some("{\r\n\t\"a\": 1\r\n}"));
    assert!(
        matches!(decode_event(raw), Ok(ApiGatewayEvent::Rest(decoded)) if decoded.uri() == request.uri()),
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
    assert_eq!(request.method(), "POST");
    assert_eq!(request.uri().path(), "/hello/world");
    assert_eq!(request.query_param("name").as_deref(), Some("me"));
    assert!(request.body().as_text().unwrap().contains("\"a\": 1"));
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
                Ok(Json(json!({"hello": request.path_param("who")})))
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
    assert_eq!(response.status_code(), 200);
    assert_eq!(
        response.body(),
        Some(&Body::Text(r#"{"echo":"hello"}"#.to_owned()))
    );
}

#[tokio::test]
async fn connect_events_answer_with_the_connect_status() {
    let response = app()
        .handle(fixture("example-apigw-websocket-request.json"))
        .await
        .unwrap();
    assert_eq!(response.status_code(), 200);
    let refused = app()
        .handle(fixture(
            "example-apigw-websocket-request-without-method.json",
        ))
        .await
        .unwrap();
    assert_eq!(refused.status_code(), 403);
}

#[tokio::test]
async fn rest_events_reach_the_rest_routes() {
    let response = app()
        .handle(fixture("example-apigw-request.json"))
        .await
        .unwrap();
    assert_eq!(response.status_code(), 200);
    assert_eq!(
        response.body(),
        Some(&Body::Text(r#"{"hello":"world"}"#.to_owned()))
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

/// What an HTTP route saw of a request: every value of every query parameter and header.
async fn seen(_ctx: Context, request: HttpRequest) -> wsgw_core::Result<Json<Value>> {
    let mut headers = serde_json::Map::new();
    for name in request.headers().keys() {
        let values: Vec<&str> = request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        headers.insert(name.to_string(), json!(values));
    }
    Ok(Json(json!({
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "query": request.query_pairs(),
        "headers": headers,
    })))
}

/// The body of an answer as JSON.
fn answered(response: &ProxyResponse) -> Value {
    match response.body() {
        Some(Body::Text(text)) => serde_json::from_str(text).expect("a JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// A Function URL event: payload 2.0 from a `*.lambda-url.*.on.aws` domain, on the
/// `$default` route and stage (the format AWS documents for Function URLs; the crate
/// ships no captured one).
fn function_url_event() -> Value {
    let mut event = fixture("example-apigw-v2-request-multi-value-parameters.json");
    event["requestContext"]["domainName"] = json!("abcdefghijkl.lambda-url.us-east-1.on.aws");
    event["requestContext"]["domainPrefix"] = json!("abcdefghijkl");
    event["requestContext"]["apiId"] = json!("abcdefghijkl");
    event["headers"]["x-tag"] = json!("one,two");
    event
}

fn echo_app() -> LambdaApp {
    LambdaApp::new(
        Router::new()
            .http("POST", "/hello/world", seen)
            .http("GET", "/my/path", seen),
    )
    .with_store(Arc::new(MockConnectionStore::new()))
    .with_sink(Arc::new(MockMessageSink::new()))
}

#[tokio::test]
async fn repeated_headers_and_query_values_reach_the_handler_from_rest_http_api_and_function_url_events(
) {
    let rest = answered(
        &echo_app()
            .handle(fixture("example-apigw-request-multi-value-parameters.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        (&rest["method"], &rest["path"]),
        (&json!("POST"), &json!("/hello/world"))
    );
    assert_eq!(rest["query"], json!([["name", "me"], ["name", "me2"]]));
    assert_eq!(
        rest["headers"]["headername"],
        json!(["headerValue", "headerValue2"])
    );

    let http_api = answered(
        &echo_app()
            .handle(fixture(
                "example-apigw-v2-request-multi-value-parameters.json",
            ))
            .await
            .unwrap(),
    );
    assert_eq!(
        (&http_api["method"], &http_api["path"]),
        (&json!("GET"), &json!("/my/path"))
    );
    assert_eq!(
        http_api["query"],
        json!([["Parameter1", "value1"], ["Parameter1", "value2"]])
    );
    // Payload 2.0 joins a repeated header's values with commas before the function sees it.
    assert_eq!(http_api["headers"]["header2"], json!(["value1,value2"]));
    assert_eq!(http_api["headers"]["cookie"], json!(["cookie1; cookie2"]));

    let function_url = answered(&echo_app().handle(function_url_event()).await.unwrap());
    assert_eq!(function_url["query"], http_api["query"]);
    assert_eq!(function_url["headers"]["x-tag"], json!(["one,two"]));
    assert_eq!(
        function_url["headers"]["cookie"],
        json!(["cookie1; cookie2"])
    );
}

#[tokio::test]
async fn a_response_with_two_cookies_and_a_binary_body_is_encoded_for_the_event_format() {
    let app = LambdaApp::new(Router::new().http(
        "GET",
        "/my/path",
        |_ctx: Context, _request: HttpRequest| async {
            Ok(Response::builder()
                .header(header::SET_COOKIE, "a=1; Secure")
                .header(header::SET_COOKIE, "b=2")
                .header("x-part", "1")
                .header("x-part", "2")
                .header(header::CONTENT_TYPE, "image/png")
                .body(vec![0x89_u8, b'P', b'N', b'G', 0xff])
                .unwrap())
        },
    ))
    .with_store(Arc::new(MockConnectionStore::new()))
    .with_sink(Arc::new(MockMessageSink::new()));
    let base64 = "iVBOR/8=";

    let mut rest_event = fixture("example-apigw-request.json");
    rest_event["httpMethod"] = json!("GET");
    rest_event["path"] = json!("/my/path");
    let rest = serde_json::to_value(app.handle(rest_event).await.unwrap()).unwrap();
    assert_eq!(
        rest["multiValueHeaders"]["set-cookie"],
        json!(["a=1; Secure", "b=2"])
    );
    assert_eq!(rest["multiValueHeaders"]["x-part"], json!(["1", "2"]));
    assert_eq!(rest["headers"]["content-type"], "image/png");
    assert!(rest["headers"].get("set-cookie").is_none(), "{rest}");
    assert_eq!(
        (&rest["body"], &rest["isBase64Encoded"]),
        (&json!(base64), &json!(true))
    );

    for event in [
        fixture("example-apigw-v2-request-multi-value-parameters.json"),
        function_url_event(),
    ] {
        let v2 = serde_json::to_value(app.handle(event).await.unwrap()).unwrap();
        assert_eq!(v2["cookies"], json!(["a=1; Secure", "b=2"]));
        assert!(v2["headers"].get("set-cookie").is_none(), "{v2}");
        assert_eq!(v2["headers"]["x-part"], "1, 2");
        assert_eq!(v2["statusCode"], 200);
        assert_eq!(
            (&v2["body"], &v2["isBase64Encoded"]),
            (&json!(base64), &json!(true))
        );
    }
}

#[tokio::test]
async fn with_server_errors_a_throttled_rest_route_is_a_503_response_not_a_failed_invocation() {
    use wsgw_core::cors::{Cors, CorsOrigins};
    use wsgw_core::ServerErrors;
    let app = LambdaApp::new(
        Router::new()
            .http(
                "GET",
                "/my/path",
                |_ctx: Context, _request: HttpRequest| async {
                    Err::<Json<Value>, _>(Error::Throttled {
                        backend: "dynamodb",
                        message: "rate exceeded".into(),
                    })
                },
            )
            .cors(Cors::new(CorsOrigins::Any))
            .server_errors(ServerErrors::new()),
    )
    .with_store(Arc::new(MockConnectionStore::new()))
    .with_sink(Arc::new(MockMessageSink::new()));
    let mut rest_event = fixture("example-apigw-request.json");
    rest_event["httpMethod"] = json!("GET");
    rest_event["path"] = json!("/my/path");
    let mut preflight_event = rest_event.clone();
    preflight_event["httpMethod"] = json!("OPTIONS");
    for event in [
        rest_event,
        fixture("example-apigw-v2-request-multi-value-parameters.json"),
        function_url_event(),
    ] {
        let answer = serde_json::to_value(app.handle(event).await.expect("answered")).unwrap();
        assert_eq!(answer["statusCode"], 503, "{answer}");
        assert_eq!(answer["headers"]["retry-after"], "1", "{answer}");
        assert_eq!(answer["headers"]["access-control-allow-origin"], "*");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "server_error");
    }
    let preflight = app.handle(preflight_event).await.expect("answered");
    assert_eq!(preflight.status_code(), 204);
}
