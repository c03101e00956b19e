//! API Gateway events as AWS sends them to a Lambda function: WebSocket `$connect`,
//! message and `$disconnect` events (stage `production`, API `abc123` in `eu-west-1`,
//! source IP `203.0.113.10`) and REST proxy events, as `serde_json::Value`s to feed a
//! [`LambdaRuntimeEmulator`](super::LambdaRuntimeEmulator) or `invoke`.
//!
//! ```
//! use serde_json::json;
//! use wsgw_memory::testing::events;
//!
//! let connect = events::connect("c1", json!({ "room": "lobby" }));
//! assert_eq!(connect["requestContext"]["eventType"], "CONNECT");
//! assert_eq!(connect["queryStringParameters"]["room"], "lobby");
//!
//! let say = events::message("c1", &json!({ "action": "say", "text": "hi" }));
//! assert_eq!(say["requestContext"]["routeKey"], "say");
//! assert_eq!(say["body"], r#"{"action":"say","text":"hi"}"#);
//! ```

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The stage of every event.
pub const STAGE: &str = "production";

/// The domain of the WebSocket API the events come from.
pub const DOMAIN: &str = "abc123.execute-api.eu-west-1.amazonaws.com";

/// The source IP of every event.
pub const SOURCE_IP: &str = "203.0.113.10";

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// When the connections of these events connected (`connectedAt`, milliseconds since
/// the epoch): five minutes before the first event was built, the same for every event of
/// a test binary.
pub fn connected_at_millis() -> i64 {
    static AT: OnceLock<i64> = OnceLock::new();
    *AT.get_or_init(|| now_millis() - 300_000)
}

/// A WebSocket event: `event_type` is `CONNECT`, `MESSAGE` or `DISCONNECT`; `body` is
/// the frame's text, sent as it is. A message carries a `messageId`; a disconnect the
/// close code 1001 and reason "Going away".
pub fn websocket(
    event_type: &str,
    route_key: &str,
    connection_id: &str,
    body: Option<&str>,
) -> Value {
    let mut event = json!({
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": STAGE,
            "connectedAt": connected_at_millis(),
            "requestTimeEpoch": now_millis(),
            "identity": { "sourceIp": SOURCE_IP },
            "requestId": "req-1",
            "domainName": DOMAIN,
            "connectionId": connection_id,
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    });
    if event_type == "MESSAGE" {
        event["requestContext"]["messageId"] = json!(format!("msg-{route_key}"));
    }
    if event_type == "DISCONNECT" {
        event["requestContext"]["disconnectStatusCode"] = json!(1001);
        event["requestContext"]["disconnectReason"] = json!("Going away");
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

/// A `$connect` event with the URL's query parameters (`null` or `{}` for none).
pub fn connect(connection_id: &str, query: Value) -> Value {
    let mut event = websocket("CONNECT", "$connect", connection_id, None);
    event["queryStringParameters"] = query;
    event
}

/// A message event whose route is the body's `action` (`$default` without one), as
/// `$request.body.action` selects it.
pub fn message(connection_id: &str, body: &Value) -> Value {
    let route = body["action"].as_str().unwrap_or("$default");
    websocket("MESSAGE", route, connection_id, Some(&body.to_string()))
}

/// A `$disconnect` event (close code 1001, "Going away").
pub fn disconnect(connection_id: &str) -> Value {
    websocket("DISCONNECT", "$disconnect", connection_id, None)
}

/// A REST API proxy event (Lambda proxy integration) with no body, from the origin
/// `https://dashboard.example`, with `query`'s string fields as its query parameters.
///
/// ```
/// use serde_json::json;
/// use wsgw_memory::testing::events;
///
/// let get = events::rest("GET", "/history", json!({ "limit": "10" }));
/// assert_eq!(get["httpMethod"], "GET");
/// assert_eq!(get["multiValueQueryStringParameters"]["limit"], json!(["10"]));
/// ```
pub fn rest(method: &str, path: &str, query: Value) -> Value {
    let multi: Map<String, Value> = query
        .as_object()
        .map(|q| q.iter().map(|(k, v)| (k.clone(), json!([v]))).collect())
        .unwrap_or_default();
    json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Accept": "application/json", "Origin": "https://dashboard.example"},
        "multiValueHeaders": {"Accept": ["application/json"], "Origin": ["https://dashboard.example"]},
        "queryStringParameters": if multi.is_empty() { Value::Null } else { query },
        "multiValueQueryStringParameters": if multi.is_empty() { Value::Null } else { Value::Object(multi) },
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "path": format!("/{STAGE}{path}"),
            "stage": STAGE,
            "domainName": "rest123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "rest123",
            "requestId": "rest-req-1",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "203.0.113.20"},
            "resourcePath": path,
            "httpMethod": method,
            "requestTime": "22/Nov/2026:00:00:00 +0000",
            "requestTimeEpoch": 1795305600000i64,
            "apiId": "rest123"
        },
        "body": null,
        "isBase64Encoded": false
    })
}
