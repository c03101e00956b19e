//! The LocalGateway's resource bounds under attack (issue 20, finding 6): requests left
//! half-sent (slowloris), clients flooding a slow route, clients that stop reading, and
//! more connections than the gateway holds. Raw TCP clients write exactly the bytes an
//! attacker would (hand-made WebSocket frames, half an HTTP request); real WebSocket
//! clients (tokio-tungstenite) are the bystanders that must still be served.
//!
//! What the gateway holds is read through [`RunningGateway::resources`] (the gauges
//! `GET /metrics` shows) and, for the whole process, its resident set size.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/soak.rs"]
mod soak;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clients::{next_text, whoami, Client, WAIT};
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use wsgw_core::{Context, Payload, Reply, Request, Router};
use wsgw_memory::gateway::{Limits, LocalGateway, ResourceUsage, RunningGateway};

const KIB: usize = 1024;

/// What the handlers count, and the gate `slow` waits at.
struct Gate {
    open: watch::Receiver<bool>,
    /// `$connect` runs.
    connects: AtomicUsize,
    /// `slow` handlers that started.
    slow_started: AtomicUsize,
}

/// `echo` answers the body and `whoami` the connection id (two-way); `slow` waits until
/// the test opens the gate.
fn router(gate: Arc<Gate>) -> Router<Arc<Gate>> {
    Router::with_state(gate)
        .on_connect(|ctx: Context<Arc<Gate>>, _request: Request| async move {
            ctx.state().connects.fetch_add(1, Ordering::SeqCst);
            Ok(Reply::ok())
        })
        .two_way_route(
            "echo",
            |_ctx: Context<Arc<Gate>>, request: Request| async move {
                Ok(Reply::with_body(
                    request.body.unwrap_or_else(|| Payload::text("")),
                ))
            },
        )
        .two_way_route(
            "whoami",
            |_ctx: Context<Arc<Gate>>, request: Request| async move {
                Reply::json(&json!({ "connection_id": request.connection_id }))
            },
        )
        .route(
            "slow",
            |ctx: Context<Arc<Gate>>, request: Request| async move {
                ctx.state().slow_started.fetch_add(1, Ordering::SeqCst);
                let mut open = ctx.state().open.clone();
                let _ = open.wait_for(|open| *open).await;
                // Like any handler working on its message, it holds the body until it is done.
                Ok(Reply::status(if request.body.is_some() {
                    200
                } else {
                    400
                }))
            },
        )
}

struct Fixture {
    gateway: RunningGateway,
    gate: Arc<Gate>,
    open_gate: watch::Sender<bool>,
}

async fn start(limits: Limits) -> Fixture {
    let (open_gate, open) = watch::channel(false);
    let gate = Arc::new(Gate {
        open,
        connects: AtomicUsize::new(0),
        slow_started: AtomicUsize::new(0),
    });
    let state = gate.clone();
    let gateway = LocalGateway::new(router(state))
        .limits(limits)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback");
    Fixture {
        gateway,
        gate,
        open_gate,
    }
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }

    async fn client(&self) -> Client {
        tokio_tungstenite::connect_async(self.gateway.stage_url())
            .await
            .expect("handshake")
            .0
    }

    /// Waits until `done` holds for the gateway's resources, failing after [`WAIT`].
    async fn resources_until(&self, what: &str, done: impl Fn(&ResourceUsage) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let resources = self.gateway.resources();
            if done(&resources) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: still {resources:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A bystander's round trip: `echo` answered.
async fn echo_round_trip(client: &mut Client, text: &str) {
    let message = json!({"action": "echo", "text": text}).to_string();
    client
        .send(Message::text(message.clone()))
        .await
        .expect("send");
    assert_eq!(
        next_text(client).await,
        message,
        "the bystander is answered"
    );
}

/// A WebSocket client made by hand on a raw TCP stream: the handshake, then whatever
/// bytes the test writes. `receive_buffer` shrinks the socket's receive buffer first (a
/// client that reads nothing then fills quickly).
async fn raw_websocket(addr: SocketAddr, receive_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    }
    let mut stream = socket.connect(addr).await.expect("TCP connect");
    stream
        .write_all(
            format!(
                "GET /local HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("upgrade answered")
            .expect("read");
        assert_eq!(read, 1, "the gateway closed during the upgrade");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A text message as a client sends it: frames of at most `frame` bytes, masked with a
/// zero key (allowed, and the payload then goes as it is).
fn client_frames(message: &[u8], frame: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = message.chunks(frame).collect();
    let mut out = Vec::with_capacity(message.len() + chunks.len() * 14);
    for (index, chunk) in chunks.iter().enumerate() {
        let opcode = if index == 0 { 0x1 } else { 0x0 };
        let fin = if index + 1 == chunks.len() { 0x80 } else { 0 };
        out.push(fin | opcode);
        match chunk.len() {
            small @ 0..=125 => out.push(0x80 | small as u8),
            medium @ 126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(medium as u16).to_be_bytes());
            }
            large => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(large as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(chunk);
    }
    out
}

/// A JSON message for `action` of exactly `size` bytes.
fn message_of_size(action: &str, size: usize) -> Vec<u8> {
    let empty = json!({"action": action, "pad": ""}).to_string();
    json!({"action": action, "pad": "p".repeat(size - empty.len())})
        .to_string()
        .into_bytes()
}

/// Reads until the server closes the connection (EOF or reset); how long that took.
async fn until_closed(mut stream: TcpStream, started: Instant) -> Duration {
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buffer))
            .await
            .expect("the gateway closes a half-sent request within 10 s")
        {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_closed_within_the_handshake_timeout() {
    let timeout = Duration::from_millis(700);
    let fixture = start(Limits::default().handshake_timeout(timeout)).await;
    let addr = fixture.addr();
    let mut bystander = fixture.client().await;
    let half_sent: [(&str, &[u8]); 5] = [
        ("nothing at all", b""),
        ("half an upgrade request", b"GET /local HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upg"),
        ("half a request line", b"GET /met"),
        ("a head without its blank line", b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        (
            "a POST with 10 of its 100 body bytes",
            b"POST /local/@connections/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789",
        ),
    ];
    let mut closing = Vec::new();
    for (what, bytes) in half_sent {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(bytes).await.expect("write");
        closing.push((what, tokio::spawn(until_closed(stream, Instant::now()))));
    }
    // A slowloris that keeps sending a byte of its head every 100 ms.
    let mut dribbling = TcpStream::connect(addr).await.expect("connect");
    let dribble_started = Instant::now();
    let dribble = tokio::spawn(async move {
        for byte in b"GET /local HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if dribbling.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        until_closed(dribbling, dribble_started).await
    });
    // An idle keep-alive connection after one complete request.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let idle_closed = tokio::spawn(until_closed(idle, Instant::now()));
    fixture
        .resources_until("the half-sent requests are counted", |r| {
            r.http_connections >= 7
        })
        .await;

    echo_round_trip(&mut bystander, "served meanwhile").await;
    for (what, closed) in closing {
        let after = closed.await.expect("reader");
        assert!(
            after >= timeout.mul_f32(0.8) && after < timeout * 4,
            "{what}: closed after {after:?}, the timeout is {timeout:?}"
        );
    }
    let after = dribble.await.expect("dribbler");
    assert!(
        after < timeout * 4,
        "a head sent a byte at a time is cut off too, after {after:?}"
    );
    let after = idle_closed.await.expect("reader");
    assert!(
        after < timeout * 4,
        "an idle keep-alive connection after {after:?}"
    );
    fixture
        .resources_until("every half-sent request is gone", |r| {
            r.http_connections == 0
        })
        .await;
    echo_round_trip(&mut bystander, "still served").await;
    assert_eq!(
        fixture.gate.connects.load(Ordering::SeqCst),
        1,
        "no half-sent upgrade reached $connect"
    );
}

#[tokio::test]
async fn beyond_max_connections_the_upgrade_is_refused_with_429_until_one_leaves() {
    let fixture = start(Limits::default().max_connections(3)).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(fixture.client().await);
    }
    let refused = tokio_tungstenite::connect_async(fixture.gateway.stage_url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = response.body().as_deref().unwrap_or_default();
            assert_eq!(
                serde_json::from_slice::<Value>(body).expect("JSON"),
                json!({"message": "Too Many Requests"})
            );
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert_eq!(
        fixture.gate.connects.load(Ordering::SeqCst),
        3,
        "$connect did not run for it"
    );
    assert_eq!(fixture.gateway.resources().connections, 3);
    // Plain HTTP is not counted: the metrics still answer, and say what happened.
    let metrics = reqwest::get(format!("http://{}/metrics", fixture.addr()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(metrics.contains("wsgw_connections 3\n"), "{metrics}");
    assert!(
        metrics.contains("wsgw_connects_refused_total{route=\"$connect\"} 1\n"),
        "{metrics}"
    );
    echo_round_trip(&mut clients[0], "the connected are served").await;

    let mut leaving = clients.pop().expect("a client");
    leaving.close(None).await.expect("close");
    fixture
        .resources_until("the place is free once $disconnect ran", |r| {
            r.connections == 2
        })
        .await;
    let mut next = fixture.client().await;
    echo_round_trip(&mut next, "in").await;
}

#[tokio::test]
async fn posts_to_a_client_that_stopped_reading_answer_429_once_its_outbox_bytes_are_full() {
    const OUTBOX: usize = 64 * KIB;
    const MESSAGE: usize = 16 * KIB;
    let fixture = start(Limits::default().max_outbox_bytes(OUTBOX)).await;
    let mut bystander = fixture.client().await;
    let bystander_id = whoami(&mut bystander).await;
    // The stalled client learns its id like any client, then never reads again.
    let mut stalled = raw_websocket(fixture.addr(), Some(4 * KIB as u32)).await;
    stalled
        .write_all(&client_frames(br#"{"action":"whoami"}"#, 1024))
        .await
        .expect("write");
    let answer: Value =
        serde_json::from_slice(&read_server_frame(&mut stalled).await).expect("JSON");
    let stalled_id = answer["connection_id"].as_str().expect("id").to_owned();

    let http = reqwest::Client::new();
    let management = fixture.gateway.management_endpoint();
    let endpoint = format!("{management}/@connections/{stalled_id}");
    let payload = "x".repeat(MESSAGE);
    let mut delivered = 0;
    let refused = loop {
        let answer = http
            .post(&endpoint)
            .body(payload.clone())
            .send()
            .await
            .expect("post");
        if answer.status() != 200 {
            break answer;
        }
        delivered += 1;
        assert!(
            delivered < 2_000,
            "32 MB posted to a client that reads nothing, never throttled"
        );
    };
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some("LimitExceededException")
    );
    let queued = fixture.gateway.resources().outbound_bytes;
    assert!(
        queued <= OUTBOX && queued + MESSAGE > OUTBOX,
        "{queued} bytes queued for a {OUTBOX}-byte outbox (after {delivered} posts went through)"
    );
    // Nobody else is held up.
    let posted = http
        .post(format!("{management}/@connections/{bystander_id}"))
        .body("for the bystander")
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 200);
    assert_eq!(next_text(&mut bystander).await, "for the bystander");
    echo_round_trip(&mut bystander, "served").await;
    // Closing the stalled client gives its bytes back.
    let closed = http.delete(&endpoint).send().await.expect("delete");
    assert_eq!(closed.status(), 204);
    fixture
        .resources_until("the closed client's outbox is freed", |r| {
            r.outbound_bytes == 0
        })
        .await;
    drop(stalled);
}

/// One unfragmented frame from the gateway (unmasked), read by hand: its payload.
async fn read_server_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 2];
    tokio::time::timeout(WAIT, stream.read_exact(&mut head))
        .await
        .expect("a frame")
        .expect("read");
    let length = match head[1] & 0x7f {
        126 => {
            let mut extended = [0u8; 2];
            stream.read_exact(&mut extended).await.expect("length");
            usize::from(u16::from_be_bytes(extended))
        }
        127 => panic!("a frame over 64 KiB"),
        small => usize::from(small),
    };
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.expect("payload");
    payload
}

/// The attack of issue 20's finding 6 at once: hundreds of handshakes left half-sent,
/// and clients flooding a route whose handler does not finish (it waits at the test's
/// gate), each with 16 messages of 128 KB. Before the byte bound a connection had up to
/// 64 messages in flight, so these 48 clients alone held 96 MiB; now each holds at most
/// `max_inbound_bytes` plus one message, the half-sent handshakes are closed after the
/// handshake timeout, and bystanders are served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshakes_and_a_flooded_slow_route_keep_memory_bounded_and_bystanders_served() {
    const FLOODERS: usize = 48;
    const MESSAGES_EACH: usize = 16;
    const MESSAGE: usize = 128 * KIB;
    const INBOUND: usize = 256 * KIB;
    const SLOW_HANDSHAKES: usize = 200;
    let timeout = Duration::from_secs(2);
    let fixture = start(
        Limits::default()
            .max_connections(FLOODERS + 4)
            .max_inbound_bytes(INBOUND)
            .handler_timeout(Duration::from_secs(60))
            .handshake_timeout(timeout),
    )
    .await;
    let addr = fixture.addr();
    let mut bystander = fixture.client().await;
    echo_round_trip(&mut bystander, "warm").await;
    let rss_before = soak::settled_rss_kib();

    let handshakes_started = Instant::now();
    let mut slow_handshakes = Vec::new();
    for _ in 0..SLOW_HANDSHAKES {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /local HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nSec-WebSocket-Ver")
            .await
            .expect("write");
        slow_handshakes.push(tokio::spawn(until_closed(stream, Instant::now())));
    }

    let flood = Arc::new(client_frames(&message_of_size("slow", MESSAGE), 32 * KIB));
    let mut flooders = Vec::new();
    for _ in 0..FLOODERS {
        let mut stream = raw_websocket(addr, None).await;
        let flood = flood.clone();
        // The writes stall once the gateway stops reading: the task holds the socket
        // until it is aborted.
        flooders.push(tokio::spawn(async move {
            for _ in 0..MESSAGES_EACH {
                if stream.write_all(&flood).await.is_err() {
                    break;
                }
            }
            std::future::pending::<()>().await;
            drop(stream);
        }));
    }
    let in_flight_each = INBOUND.div_ceil(MESSAGE);
    let deadline = Instant::now() + WAIT;
    while fixture.gate.slow_started.load(Ordering::SeqCst) < FLOODERS * in_flight_each {
        assert!(
            Instant::now() < deadline,
            "the flood never reached its bound: {} slow handlers, {:?}",
            fixture.gate.slow_started.load(Ordering::SeqCst),
            fixture.gateway.resources()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The gateway holds what its limits allow, and no more, while it serves others.
    let mut peak = fixture.gateway.resources();
    let mut rss_peak = soak::rss_kib();
    let sampling = Instant::now();
    let mut newcomer = fixture.client().await;
    echo_round_trip(&mut newcomer, "a new client connects during the attack").await;
    echo_round_trip(&mut bystander, "a connected one is answered").await;
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("plain HTTP is served during the attack");
    assert_eq!(metrics.status(), 200);
    while sampling.elapsed() < Duration::from_millis(500) {
        let now = fixture.gateway.resources();
        peak.inbound_bytes = peak.inbound_bytes.max(now.inbound_bytes);
        peak.http_connections = peak.http_connections.max(now.http_connections);
        rss_peak = rss_peak.max(soak::rss_kib());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let slow_started = fixture.gate.slow_started.load(Ordering::SeqCst);
    let rss_growth_kib = rss_peak.saturating_sub(rss_before);
    println!(
        "resources under attack: {FLOODERS} flooders × {MESSAGES_EACH} × {MESSAGE} B, {SLOW_HANDSHAKES} half-sent handshakes: \
         peak {} B of messages in flight ({slow_started} handlers waiting), {} HTTP connections; \
         RSS {rss_before} KiB settled before → {rss_peak} KiB peak (+{rss_growth_kib} KiB)",
        peak.inbound_bytes, peak.http_connections
    );
    assert!(
        peak.inbound_bytes <= FLOODERS * (INBOUND + MESSAGE),
        "{} bytes in flight for {FLOODERS} connections bounded at {INBOUND}",
        peak.inbound_bytes
    );
    assert!(
        slow_started <= FLOODERS * (in_flight_each + 1),
        "{slow_started} messages in flight"
    );
    assert!(
        peak.http_connections >= SLOW_HANDSHAKES,
        "the half-sent handshakes were open meanwhile: {peak:?}"
    );
    // The flood holds 96 MiB of messages when unbounded; bounded, 12 MiB plus the
    // connections' buffers.
    assert!(
        rss_growth_kib < 64 * 1024,
        "the process grew by {rss_growth_kib} KiB under the attack"
    );

    for closed in slow_handshakes {
        let after = closed.await.expect("reader");
        assert!(
            after >= timeout.mul_f32(0.8) && after < timeout * 3,
            "a half-sent handshake closed after {after:?}, the timeout is {timeout:?}"
        );
    }
    assert!(handshakes_started.elapsed() < timeout * 4);

    // The flooders leave; what they sent before is handled once the handlers finish,
    // and everything they held is given back.
    for flooder in &flooders {
        flooder.abort();
    }
    fixture.open_gate.send_replace(true);
    fixture
        .resources_until("the flood drained", |r| {
            r.connections == 2 && r.inbound_bytes == 0 && r.http_connections == 0
        })
        .await;
    assert!(fixture.gate.slow_started.load(Ordering::SeqCst) <= FLOODERS * MESSAGES_EACH);
    echo_round_trip(&mut bystander, "after").await;
}
