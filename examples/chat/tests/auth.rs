//! The chat with a JWT required (WSGW_JWT_SECRET), on the LocalGateway and as the binary,
//! with real WebSocket clients: refusals and their status, nothing stored for a refused
//! client, the token's name in the chat, the page's subprotocol form.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::{MemoryHistory, MemorySink, MemoryStore};

use chat::{ChatState, JwtSettings};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &str = "chat-test-secret-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn token(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signs")
}

fn ada() -> String {
    token(json!({"sub": "u-ada", "name": "Ada", "aud": "wsgw-chat", "exp": now() + 600}))
}

async fn start() -> (RunningGateway, Arc<MemoryStore>) {
    let settings = JwtSettings {
        secret: Some(SECRET.to_owned()),
        audience: Some("wsgw-chat".to_owned()),
        ..JwtSettings::default()
    };
    let store = Arc::new(MemoryStore::new());
    let sockets = Arc::new(MemorySink::new());
    let router = chat::router_with_auth(
        store.clone(),
        sockets.clone(),
        ChatState::new(Arc::new(MemoryHistory::new())),
        settings.authorizer().expect("settings"),
    );
    let running = LocalGateway::new(router, sockets)
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    (running, store)
}

async fn refused(url: String) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

async fn next_json(client: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

#[tokio::test]
async fn without_a_valid_token_the_chat_refuses_and_stores_nothing() {
    let (gateway, store) = start().await;
    let ws = gateway.ws_url();
    assert_eq!(refused(format!("{ws}/?session_id=s1")).await, 401);
    let expired = token(json!({"sub": "u-ada", "aud": "wsgw-chat", "exp": now() - 600}));
    assert_eq!(
        refused(format!("{ws}/?session_id=s1&token={expired}")).await,
        401
    );
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "u-ada", "aud": "wsgw-chat", "exp": now() + 600}),
        &EncodingKey::from_secret(b"not the chat's secret at all"),
    )
    .expect("signs");
    assert_eq!(
        refused(format!("{ws}/?session_id=s1&token={forged}")).await,
        401
    );
    let other_api = token(json!({"sub": "u-ada", "aud": "another-api", "exp": now() + 600}));
    assert_eq!(
        refused(format!("{ws}/?session_id=s1&token={other_api}")).await,
        403
    );
    assert!(store.is_empty(), "no refused client left a record");
}

#[tokio::test]
async fn a_valid_token_chats_under_the_tokens_name_through_query_or_subprotocol() {
    let (gateway, store) = start().await;
    let ws = gateway.ws_url();
    // A script: ?token=, and a ?name= that the token overrides.
    let (mut by_query, _) = tokio_tungstenite::connect_async(format!(
        "{ws}/?session_id=s1&name=Mallory&token={}",
        ada()
    ))
    .await
    .expect("allowed");
    // The page: subprotocols "wsgw.bearer", TOKEN.
    let mut request = format!("{ws}/?session_id=s2")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("wsgw.bearer, {}", ada()).parse().expect("header"),
    );
    let (mut by_subprotocol, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("allowed");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("wsgw.bearer")
    );
    assert_eq!(store.len(), 2);

    by_query
        .send(Message::text(
            json!({"action": "sendmessage", "message": "hi"}).to_string(),
        ))
        .await
        .expect("sent");
    let seen = next_json(&mut by_subprotocol).await;
    assert_eq!(seen["type"], "message");
    assert_eq!(seen["message"], "hi");
    assert_eq!(seen["name"], "Ada", "the token's name, not ?name=Mallory");
}

#[tokio::test]
async fn the_binary_requires_a_token_when_wsgw_jwt_secret_is_set() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("WSGW_DYNAMODB_ENDPOINT")
        .env_remove("WSGW_LISTEN")
        .env_remove("WSGW_JWT_PUBLIC_KEY_FILE")
        .env_remove("WSGW_JWT_ISSUER")
        .env("WSGW_JWT_SECRET", SECRET)
        .env("WSGW_JWT_AUDIENCE", "wsgw-chat")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the chat binary starts");
    let stdout = child.stdout.take().expect("stdout");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _running = Kill(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("text");
    let ws = first
        .split(|c: char| c.is_whitespace() || c == ')')
        .find(|word| word.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no ws:// in {first:?}"))
        .to_owned();
    let second = lines.next().expect("a second line").expect("text");
    assert!(second.starts_with("auth is on"), "{second:?}");
    assert_eq!(refused(format!("{ws}/?session_id=s1")).await, 401);
    let (mut client, _) =
        tokio_tungstenite::connect_async(format!("{ws}/?session_id=s1&token={}", ada()))
            .await
            .expect("allowed with a token");
    client
        .send(Message::text(r#"{"action":"heartbeat"}"#))
        .await
        .expect("sent");
    assert_eq!(next_json(&mut client).await["type"], "heartbeat");
}
