//! Hostile input against every echo route, through the LocalGateway with real WebSocket
//! clients (tokio-tungstenite): malformed JSON, wrong types, missing fields, unknown
//! actions, huge numbers, deep nesting, binary frames (closed with 1003, as API Gateway
//! does), invalid UTF-8 and oversized frames and messages. Each gets its documented
//! answer, and a bystander connected all along is still answered.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn start() -> RunningGateway {
    LocalGateway::new(echo::router())
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds loopback")
}

async fn connect(gateway: &RunningGateway) -> Client {
    tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .expect("handshake")
        .0
}

async fn next_text(client: &mut Client) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("an answer in time")
            .expect("socket open")
            .expect("valid frame");
        match message {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

async fn ask(client: &mut Client, body: impl Into<String>) -> Value {
    client.send(Message::text(body.into())).await.expect("sent");
    serde_json::from_str(&next_text(client).await).expect("JSON answer")
}

async fn close_code(client: &mut Client) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// The bystander still gets its echo.
async fn assert_served(bystander: &mut Client) {
    assert_eq!(
        ask(bystander, r#"{"action":"message","message":"still here"}"#).await,
        json!({"type": "message", "message": "still here"})
    );
}

fn unknown_action() -> Value {
    json!({"type": "error", "error": "unknown_action", "available": ["message", "whoami"]})
}

#[tokio::test]
async fn malformed_wrong_typed_and_unknown_input_gets_its_error_and_nobody_else_notices() {
    let gateway = start().await;
    let mut bystander = connect(&gateway).await;
    assert_served(&mut bystander).await;
    let mut client = connect(&gateway).await;
    let missing = json!({"type": "error", "error": "missing_field", "field": "message"});
    let cases: Vec<(String, Value)> = vec![
        // Malformed JSON.
        (r#"{"action":"message","message":"#.into(), unknown_action()),
        (
            r#"{"action":"message" "message":1}"#.into(),
            unknown_action(),
        ),
        ("not json at all".into(), unknown_action()),
        (
            r#"{"action":"message","message":"hi"} trailing"#.into(),
            unknown_action(),
        ),
        ("".into(), unknown_action()),
        // Wrong types for the action.
        (r#"{"action":123}"#.into(), unknown_action()),
        (r#"{"action":["message"]}"#.into(), unknown_action()),
        (r#"{"action":{"name":"message"}}"#.into(), unknown_action()),
        (r#"{"action":null}"#.into(), unknown_action()),
        (r#"{"action":true}"#.into(), unknown_action()),
        (r#"["message"]"#.into(), unknown_action()),
        (r#""message""#.into(), unknown_action()),
        // Unknown actions: route keys are case-sensitive and exact.
        (r#"{"action":"MESSAGE"}"#.into(), unknown_action()),
        (r#"{"action":"message "}"#.into(), unknown_action()),
        (r#"{"action":"$connect"}"#.into(), unknown_action()),
        (r#"{"action":"$disconnect"}"#.into(), unknown_action()),
        (r#"{"action":"$default"}"#.into(), unknown_action()),
        (r#"{"no_action":"message"}"#.into(), unknown_action()),
        // Missing field.
        (r#"{"action":"message"}"#.into(), missing.clone()),
        (
            r#"{"action":"message","Message":"hi"}"#.into(),
            missing.clone(),
        ),
        // Any JSON is a message, null and nesting included.
        (
            r#"{"action":"message","message":null}"#.into(),
            json!({"type": "message", "message": null}),
        ),
        (
            r#"{"action":"message","message":{"n":[1,{"m":[]}]}}"#.into(),
            json!({"type": "message", "message": {"n": [1, {"m": []}]}}),
        ),
        // whoami ignores whatever else comes with it.
        (
            r#"{"action":"whoami","connection_id":"someone-else"}"#.into(),
            Value::Null,
        ),
    ];
    for (body, expected) in cases {
        let answer = ask(&mut client, body.clone()).await;
        if expected.is_null() {
            assert_eq!(answer["type"], "whoami", "{body}");
            assert_ne!(answer["connection_id"], "someone-else", "{body}");
        } else {
            assert_eq!(answer, expected, "{body}");
        }
    }
    assert_served(&mut bystander).await;
    gateway.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn huge_numbers_are_echoed_exactly_as_sent() {
    let gateway = start().await;
    let mut bystander = connect(&gateway).await;
    let mut client = connect(&gateway).await;
    for number in [
        "1e400",
        "-1e400",
        "18446744073709551616",
        "18446744073709551617",
        "-9223372036854775809",
        "123456789012345678901234567890.123456789012345678901234567890",
        "4.9e-325",
    ] {
        client
            .send(Message::text(format!(
                r#"{{"action":"message","message":{number}}}"#
            )))
            .await
            .expect("sent");
        assert_eq!(
            next_text(&mut client).await,
            format!(r#"{{"message":{number},"type":"message"}}"#),
            "{number} comes back unchanged"
        );
    }
    // Key order and escapes inside the message are kept too.
    client
        .send(Message::text(
            r#"{"action":"message","message":{"b":1,"a":"\u00e9\n"}}"#,
        ))
        .await
        .expect("sent");
    assert_eq!(
        next_text(&mut client).await,
        r#"{"message":{"b":1,"a":"\u00e9\n"},"type":"message"}"#
    );
    // A huge number next to the action does not hide it.
    assert_eq!(
        ask(
            &mut client,
            r#"{"action":"message","pad":1e400,"message":"x"}"#
        )
        .await,
        json!({"type": "message", "message": "x"})
    );
    // A repeated key: the last one counts.
    assert_eq!(
        ask(
            &mut client,
            r#"{"action":"message","message":1,"message":2}"#
        )
        .await,
        json!({"type": "message", "message": 2})
    );
    assert_served(&mut bystander).await;
    gateway.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn deep_nesting_binary_frames_and_invalid_utf8_are_handled() {
    let gateway = start().await;
    let mut bystander = connect(&gateway).await;
    let mut client = connect(&gateway).await;
    // 30,000 levels is 60 KB: two frames under 32 KB each.
    let deep = format!(
        r#"{{"action":"message","message":{}0{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    let bytes = deep.as_bytes();
    let half = bytes.len() / 2;
    client
        .send(Message::Frame(Frame::message(
            bytes[..half].to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await
        .expect("sent");
    client
        .send(Message::Frame(Frame::message(
            bytes[half..].to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await
        .expect("sent");
    let expected = format!(
        r#"{{"message":{}0{},"type":"message"}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    assert!(
        next_text(&mut client).await == expected,
        "30,000 levels echoed unchanged"
    );

    // 100,000 unclosed brackets: not JSON.
    let open = "[".repeat(100_000);
    for chunk in open.as_bytes().chunks(30_000).enumerate() {
        let (index, bytes) = chunk;
        let last = (index + 1) * 30_000 >= open.len();
        let code = if index == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        client
            .send(Message::Frame(Frame::message(
                bytes.to_vec(),
                OpCode::Data(code),
                last,
            )))
            .await
            .expect("sent");
    }
    assert_eq!(
        serde_json::from_str::<Value>(&next_text(&mut client).await).expect("JSON"),
        unknown_action()
    );

    // Invalid UTF-8 in a text frame: closed with 1007.
    client
        .send(Message::Frame(Frame::message(
            b"{\"action\":\"message\",\"message\":\"\xc0\xaf\"}".to_vec(),
            OpCode::Data(Data::Text),
            true,
        )))
        .await
        .expect("sent");
    assert_eq!(close_code(&mut client).await, 1007);
    assert_served(&mut bystander).await;

    // Binary frames, even ones spelling a valid action: closed with 1003, as API Gateway
    // rejects binary frames from clients.
    let mut client = connect(&gateway).await;
    client
        .send(Message::binary(
            br#"{"action":"message","message":"hi"}"#.to_vec(),
        ))
        .await
        .expect("sent");
    assert_eq!(close_code(&mut client).await, 1003);
    assert_served(&mut bystander).await;
    gateway.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn oversized_frames_and_messages_close_with_1009() {
    let gateway = start().await;
    let mut bystander = connect(&gateway).await;

    let mut frame = connect(&gateway).await;
    let body = json!({"action": "message", "message": "f".repeat(32 * 1024)}).to_string();
    frame.send(Message::text(body)).await.expect("sent");
    assert_eq!(close_code(&mut frame).await, 1009);

    let mut message = connect(&gateway).await;
    let body = json!({"action": "message", "message": "m".repeat(128 * 1024)}).to_string();
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(16 * 1024).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        let code = if index == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        message
            .send(Message::Frame(Frame::message(
                chunk.to_vec(),
                OpCode::Data(code),
                index + 1 == chunks.len(),
            )))
            .await
            .expect("sent");
    }
    assert_eq!(close_code(&mut message).await, 1009);
    assert_served(&mut bystander).await;
    gateway.shutdown().await.expect("shuts down");
}
