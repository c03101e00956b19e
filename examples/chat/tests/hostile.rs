//! Hostile input against every chat route, through the LocalGateway with real WebSocket
//! clients (tokio-tungstenite): each bad message gets its `{"type":"error"}` code, the
//! connection stays open, a bystander hears nothing of it, and nothing is stored for it;
//! the sender's next valid message still reaches everyone once.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsgw_core::{HistoryQuery, HistoryStore};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::MemoryHistory;

use chat::{ChatState, MESSAGES_PARTITION};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

struct Chat {
    running: RunningGateway,
    history: Arc<MemoryHistory>,
}

impl Chat {
    async fn start() -> Chat {
        let history = Arc::new(MemoryHistory::new());
        let running = LocalGateway::new(chat::router(ChatState::new()))
            .with_history(history.clone())
            .bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("binds loopback");
        Chat { running, history }
    }

    async fn join(&self, query: &str) -> Client {
        tokio_tungstenite::connect_async(format!("{}/?{query}", self.running.ws_url()))
            .await
            .expect("the chat accepts the client")
            .0
    }

    async fn stored_messages(&self) -> Vec<Value> {
        self.history
            .query(HistoryQuery::new(MESSAGES_PARTITION))
            .await
            .expect("readable")
            .items
            .into_iter()
            .map(|record| record.data)
            .collect()
    }
}

async fn next_json(client: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("an answer in time")
            .expect("socket open")
            .expect("valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

async fn ask(client: &mut Client, body: &str) -> Value {
    client
        .send(Message::text(body.to_owned()))
        .await
        .expect("sent");
    next_json(client).await
}

async fn assert_silent(client: &mut Client) {
    if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(300), client.next()).await
    {
        panic!("expected nothing, got {message:?}");
    }
}

/// A `sendmessage` body whose `message` is `bytes` long.
fn message_of(bytes: usize) -> String {
    json!({"action": "sendmessage", "message": "m".repeat(bytes)}).to_string()
}

#[tokio::test]
async fn every_bad_message_gets_its_error_code_and_nothing_leaks_or_is_stored() {
    let chat = Chat::start().await;
    let mut bystander = chat.join("session_id=s-by&name=by").await;
    let mut hostile = chat.join("session_id=s-h&name=mallory").await;

    let too_many: Vec<String> = (0..101).map(|n| format!("s{n}")).collect();
    let deep = format!(
        r#"{{"action":"sendmessage","message":"hi","x":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<(String, &str)> = vec![
        // Malformed JSON and non-objects: no action can be read.
        (
            r#"{"action":"sendmessage","message":"#.into(),
            "unknown_action",
        ),
        ("hello".into(), "unknown_action"),
        ("[]".into(), "unknown_action"),
        ("null".into(), "unknown_action"),
        ("".into(), "unknown_action"),
        // Wrong types and unknown or reserved actions.
        (r#"{"action":7}"#.into(), "unknown_action"),
        (r#"{"action":["sendmessage"]}"#.into(), "unknown_action"),
        (r#"{"action":"SendMessage"}"#.into(), "unknown_action"),
        (r#"{"action":"$connect"}"#.into(), "unknown_action"),
        (r#"{"action":"$disconnect"}"#.into(), "unknown_action"),
        (r#"{"action":"$default"}"#.into(), "unknown_action"),
        (r#"{"message":"no action"}"#.into(), "unknown_action"),
        // sendmessage: missing field, wrong types, empty, too large.
        (r#"{"action":"sendmessage"}"#.into(), "missing_field"),
        (
            r#"{"action":"sendmessage","message":123}"#.into(),
            "invalid_type",
        ),
        (
            r#"{"action":"sendmessage","message":null}"#.into(),
            "invalid_type",
        ),
        (
            r#"{"action":"sendmessage","message":["hi"]}"#.into(),
            "invalid_type",
        ),
        (
            r#"{"action":"sendmessage","message":{"text":"hi"}}"#.into(),
            "invalid_type",
        ),
        (
            r#"{"action":"sendmessage","message":" \n\t "}"#.into(),
            "empty_message",
        ),
        (message_of(4097), "message_too_large"),
        // sendmessage: bad session_ids.
        (
            r#"{"action":"sendmessage","message":"hi","session_ids":"s-by"}"#.into(),
            "invalid_session_ids",
        ),
        (
            r#"{"action":"sendmessage","message":"hi","session_ids":[]}"#.into(),
            "invalid_session_ids",
        ),
        (
            r#"{"action":"sendmessage","message":"hi","session_ids":[1]}"#.into(),
            "invalid_session_ids",
        ),
        (
            r#"{"action":"sendmessage","message":"hi","session_ids":["s by"]}"#.into(),
            "invalid_session_ids",
        ),
        (
            r#"{"action":"sendmessage","message":"hi","session_ids":[""]}"#.into(),
            "invalid_session_ids",
        ),
        (
            json!({"action": "sendmessage", "message": "hi", "session_ids": ["x".repeat(129)]})
                .to_string(),
            "invalid_session_ids",
        ),
        (
            json!({"action": "sendmessage", "message": "hi", "session_ids": too_many}).to_string(),
            "invalid_session_ids",
        ),
        // history: absurd limits.
        (r#"{"action":"history","limit":0}"#.into(), "invalid_limit"),
        (r#"{"action":"history","limit":-1}"#.into(), "invalid_limit"),
        (
            r#"{"action":"history","limit":201}"#.into(),
            "invalid_limit",
        ),
        (
            r#"{"action":"history","limit":1.5}"#.into(),
            "invalid_limit",
        ),
        (
            r#"{"action":"history","limit":"10"}"#.into(),
            "invalid_limit",
        ),
        (
            r#"{"action":"history","limit":18446744073709551616}"#.into(),
            "invalid_limit",
        ),
        (
            r#"{"action":"history","limit":1e400}"#.into(),
            "invalid_json",
        ),
        // Valid JSON the chat will not read: numbers beyond f64, nesting beyond 128.
        (
            r#"{"action":"sendmessage","message":"hi","n":1e400}"#.into(),
            "invalid_json",
        ),
        (deep, "invalid_json"),
    ];
    for (body, code) in &cases {
        let answer = ask(&mut hostile, body).await;
        assert_eq!(answer["type"], "error", "{body:.80}: {answer}");
        assert_eq!(answer["error"], *code, "{body:.80}: {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{answer}"
        );
    }
    // The detail of invalid_json says what could not be read.
    let answer = ask(
        &mut hostile,
        r#"{"action":"sendmessage","message":"hi","n":1e400}"#,
    )
    .await;
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("number out of range")),
        "{answer}"
    );
    let answer = ask(&mut hostile, &cases[cases.len() - 1].0).await;
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("recursion limit")),
        "{answer}"
    );
    assert_silent(&mut bystander).await;
    assert!(chat.stored_messages().await.is_empty(), "nothing stored");

    // The hostile client is still a full member: its next valid message reaches
    // everyone exactly once.
    hostile
        .send(Message::text(
            json!({"action": "sendmessage", "message": "hello"}).to_string(),
        ))
        .await
        .expect("sent");
    for client in [&mut bystander, &mut hostile] {
        let got = next_json(client).await;
        assert_eq!(
            (got["type"].as_str(), got["message"].as_str()),
            (Some("message"), Some("hello"))
        );
    }
    assert_silent(&mut bystander).await;
    assert_eq!(chat.stored_messages().await.len(), 1);
    assert_eq!(
        ask(
            &mut bystander,
            r#"{"action":"heartbeat","junk":[1,2,{"x":null}]}"#
        )
        .await,
        json!({"type": "heartbeat"})
    );
    chat.running.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn bad_connect_parameters_are_refused_with_400_and_nothing_else_breaks() {
    let chat = Chat::start().await;
    let mut bystander = chat.join("session_id=s-by").await;
    for query in [
        "session_id=has%20space".to_owned(),
        "session_id=tab%09".to_owned(),
        format!("session_id={}", "s".repeat(129)),
        format!("name={}", "n".repeat(65)),
        "name=bell%07".to_owned(),
    ] {
        let url = format!("{}/?{query}", chat.running.ws_url());
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 400, "{query:.60}");
            }
            other => panic!("{query:.60} was not refused with 400: {:?}", other.err()),
        }
    }
    assert_eq!(
        ask(&mut bystander, r#"{"action":"heartbeat"}"#).await,
        json!({"type": "heartbeat"})
    );
    chat.running.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn oversized_frames_invalid_utf8_and_binary_frames_close_only_the_sender() {
    let chat = Chat::start().await;
    let mut bystander = chat.join("session_id=s-by").await;

    let mut big_frame = chat.join("session_id=s-f").await;
    big_frame
        .send(Message::text(message_of(32 * 1024)))
        .await
        .expect("sent");
    let mut big_message = chat.join("session_id=s-m").await;
    let body = message_of(128 * 1024);
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(16 * 1024).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        let code = if index == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        big_message
            .send(Message::Frame(Frame::message(
                chunk.to_vec(),
                OpCode::Data(code),
                index + 1 == chunks.len(),
            )))
            .await
            .expect("sent");
    }
    let mut not_utf8 = chat.join("session_id=s-u").await;
    not_utf8
        .send(Message::Frame(Frame::message(
            b"{\"action\":\"sendmessage\",\"message\":\"\xed\xa0\x80\"}".to_vec(),
            OpCode::Data(Data::Text),
            true,
        )))
        .await
        .expect("sent");
    // A binary frame, even one spelling a valid message: API Gateway closes with 1003.
    let mut binary = chat.join("session_id=s-b").await;
    binary
        .send(Message::binary(
            br#"{"action":"sendmessage","message":"hi"}"#.to_vec(),
        ))
        .await
        .expect("sent");

    for (client, code) in [
        (&mut big_frame, 1009),
        (&mut big_message, 1009),
        (&mut not_utf8, 1007),
        (&mut binary, 1003),
    ] {
        let close = loop {
            match tokio::time::timeout(WAIT, client.next())
                .await
                .expect("in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(close, code);
    }
    assert_silent(&mut bystander).await;
    assert!(chat.stored_messages().await.is_empty());
    assert_eq!(
        ask(&mut bystander, r#"{"action":"heartbeat"}"#).await,
        json!({"type": "heartbeat"})
    );
    chat.running.shutdown().await.expect("shuts down");
}
