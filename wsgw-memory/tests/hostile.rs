//! Hostile input against the LocalGateway itself, at API Gateway's real limits (128 KB
//! messages, 32 KB frames): oversized and malformed frames, invalid UTF-8, deeply nested
//! JSON, oversized query strings and headers, path traversal in static file requests, and
//! abuse of the `@connections` Management API. Real WebSocket clients (tokio-tungstenite)
//! and raw HTTP over loopback.
//!
//! Every case checks the answer (reply, close code or HTTP status), that a bystander
//! connected all along still gets its replies, and that the gateway still accepts new
//! connections.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsgw_core::{Context, Payload, Reply, Request, Router, DEFAULT};
use wsgw_memory::gateway::{Assets, LocalGateway, RunningGateway};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);
const KB: usize = 1024;

/// `echo` answers the body back (two-way); `whoami` the connection id; `$default` says
/// what it got.
fn router() -> Router {
    Router::new()
        .two_way_route("echo", |_ctx: Context, request: Request| async move {
            Ok(Reply::with_body(
                request.body.unwrap_or_else(|| Payload::text("")),
            ))
        })
        .two_way_route("whoami", |_ctx: Context, request: Request| async move {
            Reply::json(&json!({ "connection_id": request.connection_id }))
        })
        .two_way_route(DEFAULT, |_ctx: Context, request: Request| async move {
            let body = request.body.as_ref();
            Reply::json(&json!({
                "route": "$default",
                "binary": body.is_some_and(|body| !body.is_text()),
                "bytes": body.map_or(0, Payload::len),
            }))
        })
}

struct Gateway {
    running: RunningGateway,
    bystander: Client,
}

impl Gateway {
    /// The gateway at its default limits, with a bystander connected.
    async fn start() -> Gateway {
        let running = LocalGateway::new(router())
            .assets(Assets::new().file("/index.html", "<h1>page</h1>"))
            .bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("binds loopback");
        let bystander = connect(&running.ws_url()).await;
        Gateway { running, bystander }
    }

    async fn client(&self) -> Client {
        connect(&self.running.ws_url()).await
    }

    /// The bystander still gets its replies, and a new client can connect and talk.
    async fn assert_unaffected(&mut self) {
        let body = json!({"action": "echo", "n": 1}).to_string();
        self.bystander
            .send(Message::text(body.clone()))
            .await
            .expect("bystander sends");
        assert_eq!(next_text(&mut self.bystander).await, body);
        let mut fresh = self.client().await;
        fresh
            .send(Message::text(r#"{"action":"whoami"}"#))
            .await
            .expect("fresh client sends");
        let answer: Value = serde_json::from_str(&next_text(&mut fresh).await).expect("JSON");
        assert!(answer["connection_id"].is_string(), "{answer}");
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.running.local_addr()
    }
}

async fn connect(ws_url: &str) -> Client {
    let (client, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("handshake");
    client
}

async fn next_message(client: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("valid frame");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

async fn next_text(client: &mut Client) -> String {
    match next_message(client).await {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn next_json(client: &mut Client) -> Value {
    serde_json::from_str(&next_text(client).await).expect("JSON")
}

/// Reads until the server's close frame: its code.
async fn close_code(client: &mut Client) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("socket error before a close frame: {error}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

/// Sends `bytes` as one message in fragments of at most `fragment` bytes.
async fn send_fragmented(client: &mut Client, opcode: Data, bytes: &[u8], fragment: usize) {
    let chunks: Vec<&[u8]> = bytes.chunks(fragment).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        let code = if index == 0 { opcode } else { Data::Continue };
        let last = index + 1 == chunks.len();
        client
            .send(Message::Frame(Frame::message(
                chunk.to_vec(),
                OpCode::Data(code),
                last,
            )))
            .await
            .expect("fragment sent");
    }
}

/// A JSON `echo` message of exactly `size` bytes.
fn echo_of_size(size: usize) -> String {
    let empty = json!({"action": "echo", "pad": ""}).to_string();
    json!({"action": "echo", "pad": "p".repeat(size - empty.len())}).to_string()
}

/// One raw HTTP/1.1 exchange: the status and the body (no normalisation of the path
/// by a client library, so `..` and `%2e%2e` reach the server as written).
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("TCP connect");
    // The server may answer and close before reading all of an oversized request: a
    // failed write or a reset after the answer are part of that.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("answered in time")
        {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A WebSocket upgrade request for `target`, as raw bytes.
fn upgrade_request(target: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

async fn get(addr: std::net::SocketAddr, target: &str) -> (u16, String) {
    raw_http(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
}

#[tokio::test]
async fn a_frame_of_32_kb_plus_one_closes_with_1009_and_32_kb_passes() {
    let mut gateway = Gateway::start().await;
    let mut client = gateway.client().await;
    let at_limit = echo_of_size(32 * KB);
    client.send(Message::text(at_limit.clone())).await.unwrap();
    assert_eq!(next_text(&mut client).await, at_limit);

    client
        .send(Message::text(echo_of_size(32 * KB + 1)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, 1009);
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn a_message_of_128_kb_plus_one_in_small_frames_closes_with_1009_and_128_kb_passes() {
    let mut gateway = Gateway::start().await;
    let mut client = gateway.client().await;
    let at_limit = echo_of_size(128 * KB);
    send_fragmented(&mut client, Data::Text, at_limit.as_bytes(), 16 * KB).await;
    assert_eq!(next_text(&mut client).await.len(), 128 * KB);

    let over = echo_of_size(128 * KB + 1);
    send_fragmented(&mut client, Data::Text, over.as_bytes(), 16 * KB).await;
    assert_eq!(close_code(&mut client).await, 1009);
    gateway.assert_unaffected().await;
}

/// AWS ("Binary media types for WebSocket APIs"): binary frames from clients are
/// rejected and the connection closed with 1003, whatever they hold.
#[tokio::test]
async fn binary_frames_close_the_connection_with_1003_and_bystanders_are_unaffected() {
    for frame in [
        // Binary that even spells a valid action.
        br#"{"action":"echo"}"#.to_vec(),
        vec![0xff, 0xfe, 0x00],
        Vec::new(),
    ] {
        let mut gateway = Gateway::start().await;
        let mut client = gateway.client().await;
        client.send(Message::binary(frame.clone())).await.unwrap();
        assert_eq!(close_code(&mut client).await, 1003, "{frame:?}");
        gateway.assert_unaffected().await;
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let mut gateway = Gateway::start().await;
    let mut client = gateway.client().await;
    client
        .send(Message::Frame(Frame::message(
            b"{\"action\":\"echo\",\"x\":\"\xff\xfe\"}".to_vec(),
            OpCode::Data(Data::Text),
            true,
        )))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, 1007);
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn invalid_utf8_split_across_fragments_closes_with_1007() {
    let mut gateway = Gateway::start().await;
    let mut client = gateway.client().await;
    // "é" is 0xC3 0xA9: the first byte ends one fragment, a wrong continuation starts
    // the next.
    send_fragmented(&mut client, Data::Text, b"{\"x\":\"\xc3\x28\"}", 7).await;
    assert_eq!(close_code(&mut client).await, 1007);
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn deeply_nested_json_goes_to_default_without_overflowing_the_stack() {
    let mut gateway = Gateway::start().await;
    let mut client = gateway.client().await;
    for nested in [
        "[".repeat(100_000),
        format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)),
        format!(
            "{{\"action\":\"echo\",\"deep\":{}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
        "{\"a\":".repeat(16_000) + "1" + &"}".repeat(16_000),
    ] {
        send_fragmented(&mut client, Data::Text, nested.as_bytes(), 16 * KB).await;
        let answer = next_text(&mut client).await;
        if nested.starts_with("{\"action\":\"echo\"") {
            // Valid JSON naming a route: routed there, whatever lies next to the action.
            assert_eq!(answer, nested);
        } else {
            assert_eq!(
                serde_json::from_str::<Value>(&answer).expect("JSON")["route"],
                "$default"
            );
        }
    }
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn huge_numbers_do_not_hide_the_action() {
    let mut gateway = Gateway::start().await;
    let mut client = gateway.client().await;
    for body in [
        r#"{"action":"echo","n":1e400}"#,
        r#"{"n":-1e400,"action":"echo"}"#,
        r#"{"action":"echo","n":18446744073709551616}"#,
        r#"{"action":"echo","n":123456789012345678901234567890123456789012345678901234567890}"#,
    ] {
        client.send(Message::text(body)).await.unwrap();
        assert_eq!(next_text(&mut client).await, body, "routed to echo");
    }
    // 1e400 as the action itself is no route key.
    client
        .send(Message::text(r#"{"action":1e400}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut client).await["route"], "$default");
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn an_oversized_query_string_is_refused_before_connect_and_nothing_else_breaks() {
    let mut gateway = Gateway::start().await;
    // 1 MB of query string (more than an HTTP client library even lets through): the
    // upgrade is answered with an HTTP error before `$connect` runs.
    let (status, _) = raw_http(
        gateway.addr(),
        &upgrade_request(&format!("/?a={}", "q".repeat(1024 * KB))),
    )
    .await;
    assert_eq!(status, 431, "over the server's 400 KB header buffer");
    // 100 KB: over the 64 KB a URI may have.
    let (status, _) = raw_http(
        gateway.addr(),
        &upgrade_request(&format!("/?a={}", "q".repeat(100 * KB))),
    )
    .await;
    assert_eq!(status, 414);
    // Large but sane (8 KB) still connects.
    let url = format!("{}/?a={}", gateway.running.ws_url(), "q".repeat(8 * KB));
    let (mut client, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("an 8 KB query string is fine");
    client
        .send(Message::text(r#"{"action":"whoami"}"#))
        .await
        .unwrap();
    assert!(next_json(&mut client).await["connection_id"].is_string());
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn path_traversal_in_static_requests_never_leaves_the_assets() {
    let mut gateway = Gateway::start().await;
    let addr = gateway.addr();
    assert_eq!(get(addr, "/").await, (200, "<h1>page</h1>".to_owned()));
    for target in [
        "/../Cargo.toml",
        "/../../../../etc/passwd",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/..%2fCargo.toml",
        "/..%2F..%2FCargo.toml",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/index.html/../../Cargo.toml",
        "/./index.html/..",
        "//etc/passwd",
        "/..\\..\\Cargo.toml",
        "/%5c..%5cCargo.toml",
        "/%00/index.html",
        "/index.html%00.js",
        "/tests/hostile.rs",
        "/src/lib.rs",
    ] {
        let (status, body) = get(addr, target).await;
        assert_eq!(status, 404, "{target}: {body}");
        assert!(!body.contains("[package]"), "{target} leaked a file");
        assert!(!body.contains("root:"), "{target} leaked a file");
    }
    // Not even a request line a browser could send.
    let (status, _) = get(addr, "../Cargo.toml").await;
    assert_eq!(status, 400);
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn malformed_and_oversized_http_requests_get_4xx_and_the_gateway_keeps_serving() {
    let mut gateway = Gateway::start().await;
    let addr = gateway.addr();
    let (status, _) = raw_http(addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(status, 400);
    let (status, _) = raw_http(
        addr,
        format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "h".repeat(1024 * KB)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status, 431);
    let (status, _) = get(addr, &format!("/?{}", "q".repeat(1024 * KB))).await;
    assert_eq!(status, 431);
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn management_api_abuse_answers_like_api_gateway_and_loses_nothing() {
    let mut gateway = Gateway::start().await;
    let mut target = gateway.client().await;
    target
        .send(Message::text(r#"{"action":"whoami"}"#))
        .await
        .unwrap();
    let id = next_json(&mut target).await["connection_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let http = reqwest::Client::new();
    let base = format!("http://{}", gateway.addr());
    let post = |path: String, body: Vec<u8>| {
        let request = http.post(format!("{base}{path}")).body(body);
        async move {
            let response = request.send().await.expect("answered");
            let status = response.status().as_u16();
            let kind = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (status, kind)
        }
    };

    // 128 KB + 1: PayloadTooLarge, nothing delivered; exactly 128 KB is delivered.
    assert_eq!(
        post(format!("/@connections/{id}"), vec![b'a'; 128 * KB + 1]).await,
        (413, Some("PayloadTooLargeException".to_owned()))
    );
    // Far over any limit: refused too (by the body limit before the Management API).
    assert_eq!(
        post(format!("/@connections/{id}"), vec![b'a'; 3 * 1024 * KB])
            .await
            .0,
        413
    );
    assert_eq!(
        post(format!("/@connections/{id}"), vec![b'b'; 128 * KB]).await,
        (200, None)
    );
    assert_eq!(next_text(&mut target).await, "b".repeat(128 * KB));

    // Invalid UTF-8 arrives as a binary frame, byte for byte.
    assert_eq!(
        post(format!("/@connections/{id}"), vec![0xc3, 0x28, 0xff]).await,
        (200, None)
    );
    assert_eq!(
        next_message(&mut target).await,
        Message::binary(vec![0xc3u8, 0x28, 0xff])
    );

    // Ids that are no connection: Gone, whatever they look like.
    for bad in [
        "nope".to_owned(),
        "%2e%2e%2f%2e%2e%2fCargo.toml".to_owned(),
        format!("{id}%00"),
        format!("{id}x"),
        "x".repeat(16 * KB),
        "%F0%9F%92%A9".to_owned(),
    ] {
        assert_eq!(
            post(format!("/@connections/{bad}"), b"hi".to_vec()).await,
            (410, Some("GoneException".to_owned())),
            "{bad:.40}"
        );
    }
    // The wrong methods.
    let put = http
        .put(format!("{base}/@connections/{id}"))
        .body("x")
        .send()
        .await
        .expect("answered");
    assert_eq!(put.status().as_u16(), 405);
    // The target got nothing it should not have, and still works.
    target
        .send(Message::text(r#"{"action":"echo","after":"abuse"}"#))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut target).await,
        r#"{"action":"echo","after":"abuse"}"#
    );
    gateway.assert_unaffected().await;
}

#[tokio::test]
async fn control_frames_and_empty_messages_are_harmless() {
    let mut gateway = Gateway::start().await;
    let mut client = gateway.client().await;
    client
        .send(Message::Ping(vec![1u8; 125].into()))
        .await
        .unwrap();
    client.send(Message::text("")).await.unwrap();
    assert_eq!(
        next_json(&mut client).await,
        json!({"route": "$default", "binary": false, "bytes": 0})
    );
    client
        .send(Message::Pong(vec![2u8; 10].into()))
        .await
        .unwrap();
    client.send(Message::text("")).await.unwrap();
    assert_eq!(next_json(&mut client).await["route"], "$default");
    gateway.assert_unaffected().await;
}
