//! Property tests of Lambda event decoding (proptest): generated API Gateway WebSocket
//! and REST proxy events decode with every field carried over; mutated events (a field
//! removed, or replaced by a value of another type) and arbitrary JSON never panic and
//! are refused with an error that names what is wrong.

use std::collections::BTreeMap;

use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use wsgw_aws::lambda::{
    decode_event, decode_rest_event, decode_websocket_event, ApiGatewayEvent, EventError,
};
use wsgw_core::{EventType, HttpRequestExt};

#[derive(Debug, Clone)]
enum Body {
    None,
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone)]
struct WsEvent {
    event_type: &'static str,
    connection_id: String,
    route_key: String,
    domain_name: String,
    stage: String,
    message_id: Option<String>,
    source_ip: String,
    user_agent: Option<String>,
    connected_at: i64,
    request_time: i64,
    disconnect_code: Option<u16>,
    body: Body,
    headers: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9=_-]{1,24}"
}

/// Header names as HTTP allows them, in mixed case but distinct in lower case; values
/// as printable ASCII.
fn headers() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z][a-z0-9-]{0,12}", "[ -~]{0,24}", 0..5).prop_map(|headers| {
        headers
            .into_iter()
            .enumerate()
            .map(|(index, (name, value))| {
                let name = if index % 2 == 0 {
                    name.to_ascii_uppercase()
                } else {
                    name
                };
                (name, value)
            })
            .collect()
    })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::None),
        any::<String>().prop_map(Body::Text),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Binary),
    ]
}

prop_compose! {
    fn ws_event()(
        event_type in prop_oneof![Just("CONNECT"), Just("MESSAGE"), Just("DISCONNECT")],
        connection_id in token(),
        route_key in prop_oneof![Just("$connect".to_owned()), Just("$default".to_owned()), "[a-zA-Z]{1,12}"],
        domain_name in "[a-z0-9]{1,10}\\.execute-api\\.[a-z0-9-]{1,12}\\.amazonaws\\.com",
        stage in "[a-z]{1,10}",
        message_id in proptest::option::of(token()),
        source_ip in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        user_agent in proptest::option::of("[ -~]{1,40}"),
        connected_at in 1i64..4_000_000_000_000,
        request_time in 1i64..4_000_000_000_000,
        disconnect_code in proptest::option::of(1000u16..5000),
        body in body(),
        headers in headers(),
        query in prop::collection::btree_map("[a-z_]{1,8}", any::<String>(), 0..4),
    ) -> WsEvent {
        WsEvent {
            event_type, connection_id, route_key, domain_name, stage, message_id, source_ip,
            user_agent, connected_at, request_time, disconnect_code, body, headers, query,
        }
    }
}

impl WsEvent {
    fn to_json(&self) -> Value {
        let mut context = json!({
            "eventType": self.event_type,
            "connectionId": self.connection_id,
            "routeKey": self.route_key,
            "domainName": self.domain_name,
            "stage": self.stage,
            "apiId": "abcdef1234",
            "connectedAt": self.connected_at,
            "requestTimeEpoch": self.request_time,
            "messageDirection": "IN",
            "identity": { "sourceIp": self.source_ip, "userAgent": self.user_agent },
        });
        if let Some(id) = &self.message_id {
            context["messageId"] = json!(id);
        }
        if let Some(code) = self.disconnect_code {
            context["disconnectStatusCode"] = json!(code);
            context["disconnectReason"] = json!("bye");
        }
        let mut event = json!({
            "requestContext": context,
            "headers": self.headers,
            "queryStringParameters": self.query,
        });
        match &self.body {
            Body::None => {}
            Body::Text(text) => {
                event["body"] = json!(text);
                event["isBase64Encoded"] = json!(false);
            }
            Body::Binary(bytes) => {
                event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                event["isBase64Encoded"] = json!(true);
            }
        }
        event
    }
}

/// Every path to a value inside `value`, as JSON pointers.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let pointer = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                pointers(inner, pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{index}");
                out.push(pointer.clone());
                pointers(inner, pointer, out);
            }
        }
        _ => {}
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        Just(json!("CONNECT")),
        Just(json!("GET")),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("requestContext".to_owned()),
                        Just("eventType".to_owned()),
                        Just("connectionId".to_owned()),
                        Just("httpMethod".to_owned()),
                        Just("body".to_owned()),
                        Just("isBase64Encoded".to_owned()),
                        Just("headers".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The error must say something a person can act on.
fn assert_explains(error: &EventError) {
    let text = error.to_string();
    assert!(!text.is_empty());
    if let EventError::Malformed { path, .. } = error {
        assert!(text.contains("malformed"), "{text}");
        if path != "." && !path.is_empty() {
            assert!(text.contains(path.as_str()), "{text} names {path}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_websocket_events_decode_with_every_field(event in ws_event()) {
        let request = decode_websocket_event(event.to_json()).expect("a well-formed event decodes");
        let expected_type = match event.event_type {
            "CONNECT" => EventType::Connect,
            "MESSAGE" => EventType::Message,
            _ => EventType::Disconnect,
        };
        prop_assert_eq!(request.event_type, expected_type);
        prop_assert_eq!(request.connection_id.as_str(), event.connection_id.as_str());
        prop_assert_eq!(&request.route_key, &event.route_key);
        prop_assert_eq!(&request.domain_name, &event.domain_name);
        prop_assert_eq!(&request.stage, &event.stage);
        prop_assert_eq!(&request.message_id, &event.message_id);
        prop_assert_eq!(request.source_ip.as_deref(), Some(event.source_ip.as_str()));
        prop_assert_eq!(&request.user_agent, &event.user_agent.clone().or_else(|| {
            event.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("user-agent")).map(|(_, v)| v.clone())
        }));
        prop_assert_eq!(request.connected_at.map(|at| at.timestamp_millis()), Some(event.connected_at));
        prop_assert_eq!(request.request_time.timestamp_millis(), event.request_time);
        prop_assert_eq!(&request.query, &event.query);
        for (name, value) in &event.headers {
            prop_assert_eq!(request.headers.get(&name.to_ascii_lowercase()), Some(value), "{}", name);
        }
        match &event.body {
            Body::None => prop_assert!(request.body.is_none()),
            Body::Text(text) => prop_assert_eq!(request.body.as_ref().and_then(|b| b.as_text()), Some(text.as_str())),
            Body::Binary(bytes) => prop_assert_eq!(request.body.as_ref().map(|b| b.as_bytes().to_vec()), Some(bytes.clone())),
        }
        if expected_type == EventType::Disconnect {
            let info = request.disconnect.as_ref().expect("a disconnect carries its code");
            prop_assert_eq!(info.status_code, event.disconnect_code.unwrap_or(1005));
        } else {
            prop_assert!(request.disconnect.is_none());
        }
        // decode_event recognises it as a WebSocket event.
        prop_assert!(matches!(decode_event(event.to_json()), Ok(ApiGatewayEvent::WebSocket(_))));
    }

    #[test]
    fn generated_rest_events_decode_with_every_field(
        method in prop_oneof![Just("GET"), Just("POST"), Just("OPTIONS"), Just("DELETE")],
        path in "(/[a-z0-9._%-]{0,8}){1,4}",
        query in prop::collection::btree_map("[a-z_]{1,8}", any::<String>(), 0..4),
        headers in headers(),
        body in body(),
    ) {
        let mut event = json!({
            "httpMethod": method,
            "path": path,
            "resource": path,
            "queryStringParameters": query,
            "headers": headers,
            "requestContext": { "stage": "prod", "httpMethod": method },
        });
        match &body {
            Body::None => {}
            Body::Text(text) => { event["body"] = json!(text); event["isBase64Encoded"] = json!(false); }
            Body::Binary(bytes) => {
                event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                event["isBase64Encoded"] = json!(true);
            }
        }
        let request = decode_rest_event(event.clone()).expect("a well-formed REST event decodes");
        prop_assert_eq!(request.method().as_str(), method);
        prop_assert_eq!(request.uri().path(), path.as_str());
        let decoded_query: BTreeMap<String, String> = request.query_pairs().into_iter().collect();
        prop_assert_eq!(&decoded_query, &query);
        for (name, value) in &headers {
            prop_assert_eq!(request.header_text(name), Some(value.as_str()));
        }
        match &body {
            Body::None => prop_assert!(request.body().is_empty()),
            Body::Text(text) => prop_assert_eq!(request.body().as_text(), Some(text.as_str())),
            Body::Binary(bytes) => prop_assert_eq!(request.body().as_bytes(), bytes.as_slice()),
        }
        prop_assert!(matches!(decode_event(event), Ok(ApiGatewayEvent::Rest(_))));
    }

    #[test]
    fn mutated_events_never_panic_and_errors_explain(
        event in ws_event(),
        pick in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            Just(None),
            arbitrary_json().prop_map(Some),
        ],
    ) {
        let mut raw = event.to_json();
        let mut all = Vec::new();
        pointers(&raw, String::new(), &mut all);
        let target = pick.get(&all).clone();
        let (parent, key) = target.rsplit_once('/').expect("a pointer has a parent");
        let key = key.replace("~1", "/").replace("~0", "~");
        match raw.pointer_mut(parent) {
            Some(Value::Object(map)) => match &replacement {
                None => { map.remove(&key); }
                Some(value) => { map.insert(key, value.clone()); }
            },
            Some(Value::Array(items)) => {
                if let Ok(index) = key.parse::<usize>() {
                    if let Some(value) = &replacement { items[index] = value.clone(); } else { items.remove(index); }
                }
            }
            _ => {}
        }
        for outcome in [
            decode_websocket_event(raw.clone()).map(drop),
            decode_event(raw.clone()).map(drop),
            decode_rest_event(raw.clone()).map(drop),
        ] {
            if let Err(error) = outcome {
                assert_explains(&error);
            }
        }
        // Removing a required field is refused, naming it.
        if replacement.is_none() && (target == "/requestContext/eventType" || target == "/requestContext/connectionId") {
            let error = decode_websocket_event(raw).expect_err("a required field is missing");
            let field = target.trim_start_matches('/').replace('/', ".");
            prop_assert!(error.to_string().contains(&field), "{} names {}", error, field);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(raw in arbitrary_json()) {
        for outcome in [
            decode_websocket_event(raw.clone()).map(drop),
            decode_event(raw.clone()).map(drop),
            decode_rest_event(raw).map(drop),
        ] {
            if let Err(error) = outcome {
                assert_explains(&error);
            }
        }
    }
}

/// Found by `mutated_events_never_panic_and_errors_explain`: a query parameter with an
/// empty list made the decoder panic inside `QueryMap`'s iterator.
#[test]
fn a_query_parameter_with_an_empty_list_is_left_out_instead_of_panicking() {
    for (kind, mut event) in [
        (
            "WebSocket",
            json!({"requestContext": {"eventType": "CONNECT", "connectionId": "c=", "connectedAt": 1, "requestTimeEpoch": 1, "identity": {"sourceIp": "1.2.3.4"}, "apiId": "a", "stage": "s", "domainName": "d"}}),
        ),
        (
            "REST",
            json!({"httpMethod": "GET", "path": "/history", "requestContext": {"stage": "prod", "httpMethod": "GET"}}),
        ),
    ] {
        event["queryStringParameters"] =
            json!({"token": [], "device_id": "esp32-01", "many": ["a", "b"]});
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        match kind {
            "WebSocket" => assert_eq!(
                decode_websocket_event(event).expect("decodes").query,
                BTreeMap::from([pair("device_id", "esp32-01"), pair("many", "b")]),
            ),
            // An HTTP request keeps every value.
            _ => assert_eq!(
                decode_rest_event(event).expect("decodes").query_pairs(),
                [
                    pair("device_id", "esp32-01"),
                    pair("many", "a"),
                    pair("many", "b")
                ],
            ),
        }
    }
}
