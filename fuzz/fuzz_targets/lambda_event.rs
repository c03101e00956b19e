//! Lambda event decoding (`wsgw_aws::lambda`): whatever JSON arrives, decoding returns a
//! request or an error that says what is wrong, never panics, a decoded WebSocket event
//! keeps the event type and text body it was sent with, and an HTTP request comes from a
//! REST proxy event or an HTTP API (payload 2.0) / Function URL event; a response carrying
//! that request's headers and body encodes in either format without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wsgw_aws::lambda::{
    decode_event, decode_rest_event, decode_websocket_event, encode_http_response,
    ApiGatewayEvent, HttpEventFormat,
};
use wsgw_core::EventType;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match decode_event(raw.clone()) {
        Ok(ApiGatewayEvent::WebSocket(request)) => {
            let expected = match raw.pointer("/requestContext/eventType") {
                Some(Value::String(kind)) if kind == "CONNECT" => EventType::Connect,
                Some(Value::String(kind)) if kind == "MESSAGE" => EventType::Message,
                Some(Value::String(kind)) if kind == "DISCONNECT" => EventType::Disconnect,
                other => panic!("decoded an event whose eventType is {other:?}"),
            };
            assert_eq!(request.event_type, expected);
            assert_eq!(
                request.disconnect.is_some(),
                expected == EventType::Disconnect
            );
            if raw.get("isBase64Encoded") != Some(&Value::Bool(true)) {
                if let Some(Value::String(body)) = raw.get("body") {
                    let decoded = request.body.as_ref().and_then(|body| body.as_text());
                    assert_eq!(decoded, Some(body.as_str()));
                }
            }
        }
        Ok(ApiGatewayEvent::Rest(request)) => {
            // A REST API proxy event, or an HTTP API (payload 2.0) / Function URL event.
            let payload_2 = raw.get("version") == Some(&Value::String("2.0".to_owned()))
                && raw.pointer("/requestContext/http").is_some();
            assert!(raw.get("httpMethod").is_some() || payload_2, "{raw}");
            let _ = format!("{request:?}");
            let (parts, body) = request.into_parts();
            let mut response = wsgw_core::HttpResponse::new(body);
            *response.headers_mut() = parts.headers;
            for format in [HttpEventFormat::RestApi, HttpEventFormat::PayloadV2] {
                let encoded = encode_http_response(&response, format);
                assert!(serde_json::to_value(&encoded).is_ok(), "{encoded:?}");
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    if let Err(error) = decode_websocket_event(raw.clone()) {
        assert!(!error.to_string().is_empty());
    }
    if let Err(error) = decode_rest_event(raw) {
        assert!(!error.to_string().is_empty());
    }
});
