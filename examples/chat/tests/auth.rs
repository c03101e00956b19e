//! The chat with a JWT required (WSGW_JWT_SECRET), on the LocalGateway and as the binary,
//! with real WebSocket clients: refusals and their status, nothing stored for a refused
//! client, the token's name in the chat, the page's subprotocol form.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::SinkExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::testing::ws::{next_json, refused, send_json, Client, WAIT};
use wsgw_memory::testing::ServerProcess;
use wsgw_memory::MemoryStore;

use chat::ChatState;
use wsgw_core::auth::JwtSettings;

const SECRET: &str = "chat-test-secret-0123456789abcdef";
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
    let authorizer = settings
        .authorizer()
        .expect("settings")
        .expect("auth is on");
    let router = chat::router(ChatState::new()).authorizer(authorizer);
    let running = LocalGateway::new(router)
        .with_store(store.clone())
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    (running, store)
}

#[tokio::test]
async fn without_a_valid_token_the_chat_refuses_and_stores_nothing() {
    let (gateway, store) = start().await;
    let ws = gateway.ws_url();
    assert_eq!(refused(&format!("{ws}/?session_id=s1")).await, 401);
    let expired = token(json!({"sub": "u-ada", "aud": "wsgw-chat", "exp": now() - 600}));
    assert_eq!(
        refused(&format!("{ws}/?session_id=s1&token={expired}")).await,
        401
    );
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "u-ada", "aud": "wsgw-chat", "exp": now() + 600}),
        &EncodingKey::from_secret(b"not the chat's secret at all"),
    )
    .expect("signs");
    assert_eq!(
        refused(&format!("{ws}/?session_id=s1&token={forged}")).await,
        401
    );
    let other_api = token(json!({"sub": "u-ada", "aud": "another-api", "exp": now() + 600}));
    assert_eq!(
        refused(&format!("{ws}/?session_id=s1&token={other_api}")).await,
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
        "{ws}/?session_id=u-ada&name=Mallory&token={}",
        ada()
    ))
    .await
    .expect("allowed");
    // The page: subprotocols "wsgw.bearer", TOKEN.
    let mut request = format!("{ws}/").into_client_request().expect("request");
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("WSGW_LISTEN")
        .env_remove("WSGW_JWT_PUBLIC_KEY_FILE")
        .env_remove("WSGW_JWT_ISSUER")
        .env("WSGW_JWT_SECRET", SECRET)
        .env("WSGW_JWT_AUDIENCE", "wsgw-chat");
    let mut running = ServerProcess::start(command);
    let ws = running.url("ws://");
    let second = running.next_line().expect("a second line");
    assert!(second.starts_with("auth is on"), "{second:?}");
    assert_eq!(refused(&format!("{ws}/?session_id=s1")).await, 401);
    let (mut client, _) = tokio_tungstenite::connect_async(format!("{ws}/?token={}", ada()))
        .await
        .expect("allowed with a token");
    client
        .send(Message::text(r#"{"action":"heartbeat"}"#))
        .await
        .expect("sent");
    assert_eq!(next_json(&mut client).await["type"], "heartbeat");
}

// --- The attacks of issue 20 ---------------------------------------------------------

/// Every stored connection (at most 100: the tests hold a few).
async fn stored(store: &MemoryStore) -> Vec<wsgw_core::Connection> {
    use wsgw_core::{ConnectionStore, PageRequest};
    store
        .list_all(PageRequest::first(100))
        .await
        .expect("lists")
        .items
}

fn token_of(sub: &str, name: &str) -> String {
    token(json!({"sub": sub, "name": name, "aud": "wsgw-chat", "exp": now() + 600}))
}

/// A client signed in as `sub` (with the token on the query string, as a script may).
async fn signed_in(ws: &str, sub: &str, name: &str) -> Client {
    let (client, _) =
        tokio_tungstenite::connect_async(format!("{ws}/?token={}", token_of(sub, name)))
            .await
            .unwrap_or_else(|error| panic!("{sub} connects: {error}"));
    client
}

/// Messages until one of type `kind` arrives; returns it.
async fn next_of_type(client: &mut Client, kind: &str) -> Value {
    loop {
        let message = next_json(client).await;
        if message["type"] == kind {
            return message;
        }
    }
}

#[tokio::test]
async fn with_auth_a_client_cannot_receive_read_or_send_as_another_principals_session() {
    let (gateway, _store) = start().await;
    let ws = gateway.ws_url();
    let mut ada = signed_in(&ws, "u-ada", "Ada").await;
    let mut bob = signed_in(&ws, "u-bob", "Bob").await;
    // Ada writes to everyone: everyone learns the session her messages come from.
    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "hello all"}),
    )
    .await;
    let public = next_of_type(&mut bob, "message").await;
    let ada_session = public["session_id"].as_str().expect("a session").to_owned();
    // Bob writes to Ada alone.
    send_json(
        &mut bob,
        &json!({"action": "sendmessage", "message": "for ada only", "session_ids": [ada_session]}),
    )
    .await;
    assert_eq!(next_of_type(&mut bob, "sent").await["delivered"], 1);

    // Mallory, with her own valid token, asks for Ada's session: refused.
    let mallory = token_of("u-mallory", "Mallory");
    assert_eq!(
        refused(&format!("{ws}/?session_id={ada_session}&token={mallory}")).await,
        403,
        "another principal's session"
    );
    // As herself she reads no private message of Ada's, and what she sends is hers.
    let (mut mallory, _) = tokio_tungstenite::connect_async(format!("{ws}/?token={mallory}"))
        .await
        .expect("mallory connects as herself");
    send_json(&mut mallory, &json!({"action": "history"})).await;
    let history = next_of_type(&mut mallory, "history").await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    assert_eq!(texts, ["hello all"], "nothing private of Ada's");
    send_json(
        &mut mallory,
        &json!({"action": "sendmessage", "message": "it is me, ada"}),
    )
    .await;
    let spoof = next_of_type(&mut ada, "message").await;
    let spoof = if spoof["message"] == "hello all" || spoof["message"] == "for ada only" {
        loop {
            let next = next_of_type(&mut ada, "message").await;
            if next["message"] == "it is me, ada" {
                break next;
            }
        }
    } else {
        spoof
    };
    assert_eq!(spoof["session_id"], "u-mallory");
    assert_eq!(spoof["name"], "Mallory");
}

#[tokio::test]
async fn with_auth_the_session_is_the_tokens_subject_and_naming_it_is_allowed() {
    let (gateway, store) = start().await;
    let ws = gateway.ws_url();
    let (_ada, _) = tokio_tungstenite::connect_async(format!(
        "{ws}/?session_id=u-ada&token={}",
        token_of("u-ada", "Ada")
    ))
    .await
    .expect("her own session by name");
    let _tab = signed_in(&ws, "u-ada", "Ada").await;
    let sessions: Vec<String> = stored(&store)
        .await
        .iter()
        .filter_map(|c| c.attributes.get("session_id")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        sessions,
        ["u-ada", "u-ada"],
        "both tabs in the subject's session"
    );
}

#[tokio::test]
async fn public_messages_carry_no_connection_id() {
    let (gateway, store) = start().await;
    let ws = gateway.ws_url();
    let mut ada = signed_in(&ws, "u-ada", "Ada").await;
    let mut bob = signed_in(&ws, "u-bob", "Bob").await;
    send_json(&mut ada, &json!({"action": "sendmessage", "message": "hi"})).await;
    let public = next_of_type(&mut bob, "message").await;
    send_json(&mut bob, &json!({"action": "history"})).await;
    let history = next_of_type(&mut bob, "history").await;
    let connection_ids: Vec<String> = stored(&store)
        .await
        .iter()
        .map(|c| c.id.as_str().to_owned())
        .collect();
    for seen in [public.to_string(), history.to_string()] {
        for id in &connection_ids {
            assert!(!seen.contains(id.as_str()), "{id} leaks in {seen}");
        }
    }
    assert!(public.get("from").is_none(), "{public}");
}

/// What the binary did with this environment: its exit status if it stopped by itself
/// (`None`: it started serving and was stopped), its first stdout line, its stderr.
fn chat_binary_with(env: &[(&str, &str)]) -> (Option<std::process::ExitStatus>, String, String) {
    use std::io::Read;
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("WSGW_LISTEN")
        .env_remove("WSGW_JWT_SECRET")
        .env_remove("WSGW_JWT_PUBLIC_KEY_FILE")
        .env_remove("WSGW_JWT_AUDIENCE")
        .env_remove("WSGW_JWT_ISSUER")
        .env_remove("WSGW_JWT_ANY_AUDIENCE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the chat binary starts");
    let stdout = child.stdout.take().expect("stdout");
    // The first line says it serves; end of output says it stopped.
    let (lines, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(stdout).lines().next().and_then(Result::ok);
        let _ = lines.send(line);
    });
    let first = first.recv_timeout(WAIT).ok().flatten();
    let status = match first {
        Some(_) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
        None => {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                if let Some(status) = child.try_wait().expect("waits") {
                    break Some(status);
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("the binary neither served nor stopped within {WAIT:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status, first.unwrap_or_default(), stderr)
}

#[test]
fn the_binary_refuses_to_start_with_a_short_jwt_secret() {
    let (status, _, stderr) = chat_binary_with(&[("WSGW_JWT_SECRET", "s3cret")]);
    assert!(status.is_some_and(|s| !s.success()), "it started: {stderr}");
    assert!(
        stderr.contains("WSGW_JWT_SECRET") && stderr.contains("32"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "never the secret: {stderr}");
}

#[test]
fn the_binary_refuses_an_rs256_key_without_an_audience_unless_told_any_is_fine() {
    let dir = std::env::temp_dir().join(format!("chat-rs256-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pem = dir.join("public.pem");
    std::fs::write(
        &pem,
        include_bytes!("../../../wsgw-core/tests/keys/test-rsa-public.pem"),
    )
    .expect("writes the key");
    let pem = pem.to_str().expect("utf-8 path");
    let (status, _, stderr) = chat_binary_with(&[("WSGW_JWT_PUBLIC_KEY_FILE", pem)]);
    assert!(status.is_some_and(|s| !s.success()), "it started: {stderr}");
    assert!(
        stderr.contains("WSGW_JWT_AUDIENCE") && stderr.contains("WSGW_JWT_ANY_AUDIENCE"),
        "{stderr}"
    );
    // With the explicit opt-out, or an audience, it serves.
    for opt_in in [
        ("WSGW_JWT_ANY_AUDIENCE", "true"),
        ("WSGW_JWT_AUDIENCE", "wsgw-chat"),
    ] {
        let (status, first, stderr) =
            chat_binary_with(&[("WSGW_JWT_PUBLIC_KEY_FILE", pem), opt_in]);
        assert!(status.is_none(), "{opt_in:?}: {stderr}");
        assert!(
            first.starts_with("chat listening on") && first.contains("data kept in memory"),
            "{first}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
