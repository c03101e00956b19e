//! The churn soak, shared by wsgw-memory's test (on `MemoryStore`) and wsgw-aws's (on
//! `DynamoStore` against moto's server): `#[path]`-included by both.
//!
//! Waves of real WebSocket clients over loopback against a LocalGateway whose router
//! keeps connections in the given store. In each wave every client connects to a room
//! (`?room=R`, stored as the group `room:R`), waits until the whole wave is in, sends
//! numbered messages that the `say` route broadcasts to its room, and reads until it has
//! every message of every roommate. Then each client asks `fin` and reads until the
//! answer: anything else arriving is a duplicate. Clients leave in three ways: a close
//! frame, a dropped TCP connection (FIN, no close frame) and a TCP reset (`SO_LINGER` 0,
//! RST). After every wave the store must hold no connection and no group membership;
//! the first waves warm the allocator up, and the process's RSS over the next three
//! waves is the baseline the last three waves' RSS is compared with.
//!
//! Parameters from the environment: `WSGW_SOAK_CLIENTS` (clients per wave),
//! `WSGW_SOAK_WAVES` (fewest waves, at least the warm-up + 6), `WSGW_SOAK_SECONDS`
//! (fewest seconds: waves continue until both are reached), `WSGW_SOAK_WARMUP` (warm-up
//! waves, default 3), `WSGW_SOAK_MESSAGES` (messages each client sends per wave),
//! `WSGW_SOAK_ROOM` (clients per room), `WSGW_SOAK_CONCURRENCY` (clients connecting, or
//! leaving, at once; default 128).

// Each test binary including this uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::SinkExt;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsgw_core::{
    Connection, ConnectionStore, Context, PageRequest, Payload, Reply, Request, Router,
};
use wsgw_memory::gateway::{Limits, LocalGateway, RunningGateway};

/// A WebSocket client over plain TCP.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest a wave step may take before the soak fails (a hang, not a slowness).
const STEP_LIMIT: Duration = Duration::from_secs(120);

/// How the soak runs; see the module docs for the variables.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Clients connected at once in each wave.
    pub clients: usize,
    /// Fewest waves (the first one is the warm-up).
    pub waves: usize,
    /// Fewest seconds of waves.
    pub seconds: u64,
    /// Messages each client sends per wave.
    pub messages: usize,
    /// Clients per room.
    pub room: usize,
    /// Waves before RSS is measured (the allocator's fragmentation settles over the
    /// first few).
    pub warmup: usize,
    /// Clients connecting, or leaving, at once (the rest queue).
    pub connect_concurrency: usize,
}

fn env_or(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

impl SoakConfig {
    /// These defaults, each overridden by its `WSGW_SOAK_*` variable.
    pub fn from_env(clients: usize, waves: usize, seconds: u64, messages: usize) -> Self {
        SoakConfig {
            clients: env_or("WSGW_SOAK_CLIENTS", clients).max(1),
            // The warm-up, three waves to measure the start, three to measure the end.
            waves: env_or("WSGW_SOAK_WAVES", waves).max(env_or("WSGW_SOAK_WARMUP", 3) + 6),
            warmup: env_or("WSGW_SOAK_WARMUP", 3).max(1),
            seconds: env_or("WSGW_SOAK_SECONDS", seconds as usize) as u64,
            messages: env_or("WSGW_SOAK_MESSAGES", messages).max(1),
            room: env_or("WSGW_SOAK_ROOM", 25).max(1),
            connect_concurrency: env_or("WSGW_SOAK_CONCURRENCY", 128).max(1),
        }
    }
}

/// What the soak measured.
#[derive(Debug, Default, Clone)]
pub struct SoakReport {
    /// Waves run, the warm-up included.
    pub waves: usize,
    /// Client connections opened over every wave.
    pub connections: usize,
    /// Messages the clients sent.
    pub sent: usize,
    /// Messages that reached a client (each delivery to each roommate).
    pub delivered: usize,
    /// Deliveries a client had already received (must be 0).
    pub duplicates: usize,
    /// Deliveries expected and never received (must be 0).
    pub lost: usize,
    /// Deliveries that overtook an earlier message of the same sender. Allowed: as on
    /// AWS, where each message is its own invocation, a sender's messages are handled
    /// concurrently, so broadcasts of messages sent back to back may arrive in either
    /// order.
    pub out_of_order: usize,
    /// `$disconnect` events by close code.
    pub disconnect_codes: BTreeMap<u16, usize>,
    /// The process's resident set after the three waves following the warm-up (their
    /// median), KiB, each read once the allocator returned its free pages
    /// ([`settled_rss_kib`]).
    pub rss_start_kib: u64,
    /// The same over the last three waves.
    pub rss_end_kib: u64,
    /// The largest RSS seen after a wave (before trimming), KiB.
    pub rss_peak_kib: u64,
    /// How long the waves took.
    pub elapsed: Duration,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} waves in {:.1} s: {} connections, {} messages sent, {} deliveries, {} duplicates, \
             {} lost, {} out of order; $disconnect codes {:?}; RSS after warm-up {} KiB, \
             at the end {} KiB ({:+.1} %), peak after a wave {} KiB",
            self.waves,
            self.elapsed.as_secs_f64(),
            self.connections,
            self.sent,
            self.delivered,
            self.duplicates,
            self.lost,
            self.out_of_order,
            self.disconnect_codes,
            self.rss_start_kib,
            self.rss_end_kib,
            (self.rss_end_kib as f64 / self.rss_start_kib.max(1) as f64 - 1.0) * 100.0,
            self.rss_peak_kib,
        )
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}

/// Hands the allocator's free pages back to the OS (glibc's `malloc_trim`), so RSS
/// shows what is live rather than what the allocator keeps for later.
pub fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        malloc_trim(0);
    }
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

/// RSS in KiB right after [`trim_allocator`]: live memory, not the allocator's cache.
pub fn settled_rss_kib() -> u64 {
    trim_allocator();
    rss_kib()
}

/// This process's resident set size in KiB (`VmRSS` in `/proc/self/status`).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line in kB")
}

/// What the soak's handlers record.
pub struct SoakState {
    disconnects: Mutex<BTreeMap<u16, usize>>,
    disconnected: AtomicUsize,
    handler_errors: AtomicUsize,
}

impl SoakState {
    /// `$disconnect` events so far, by close code.
    pub fn disconnect_codes(&self) -> BTreeMap<u16, usize> {
        self.disconnects.lock().expect("not poisoned").clone()
    }

    /// Waits (bounded) until `count` `$disconnect` events have run in all.
    pub async fn wait_for_disconnects(&self, count: usize) {
        let deadline = Instant::now() + STEP_LIMIT;
        while self.disconnected.load(Ordering::SeqCst) < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} $disconnect events ran",
                self.disconnected.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn new() -> Self {
        SoakState {
            disconnects: Mutex::new(BTreeMap::new()),
            disconnected: AtomicUsize::new(0),
            handler_errors: AtomicUsize::new(0),
        }
    }
}

fn room_group(room: &str) -> String {
    format!("room:{room}")
}

/// `$connect` stores the connection in its room; `say` broadcasts the message to the
/// room; `fin` answers the sender; `$disconnect` deletes the connection.
pub fn soak_router(state: Arc<SoakState>) -> Router<Arc<SoakState>> {
    Router::with_state(state)
        .on_connect(|ctx: Context<Arc<SoakState>>, request: Request| async move {
            let room = request
                .query_param("room")
                .ok_or_else(|| wsgw_core::Rejection::new("missing_room"))?
                .to_owned();
            let stored = ctx
                .store()
                .put(Connection::new(request.connection_id.clone()).with_group(room_group(&room)))
                .await;
            if let Err(error) = &stored {
                eprintln!("soak: $connect could not store {}: {error}", request.connection_id);
            }
            stored?;
            Ok(Reply::ok())
        })
        .route("say", |ctx: Context<Arc<SoakState>>, request: Request| async move {
            let body: Value = request.json()?;
            let room = body["room"].as_str().unwrap_or_default().to_owned();
            let payload = Payload::text(request.text().unwrap_or_default());
            let report = ctx
                .broadcast_payload(payload)
                .to_group(room_group(&room))
                .await
                .inspect_err(|error| eprintln!("soak: listing {room}: {error}"))?;
            if !report.failed.is_empty() || !report.pruned.is_empty() {
                ctx.state().handler_errors.fetch_add(1, Ordering::SeqCst);
                tracing::error!(failed = ?report.failed, pruned = ?report.pruned, "soak broadcast");
            }
            Ok(Reply::ok())
        })
        .two_way_route("fin", |_ctx: Context<Arc<SoakState>>, _request: Request| async move {
            Reply::json(&json!({ "type": "fin" }))
        })
        .on_disconnect(|ctx: Context<Arc<SoakState>>, request: Request| async move {
            let code = request.disconnect.as_ref().map_or(0, |info| info.status_code);
            let deleted = ctx.store().delete(&request.connection_id).await;
            if let Err(error) = &deleted {
                eprintln!("soak: $disconnect could not delete {}: {error}", request.connection_id);
            }
            let state = ctx.state();
            *state
                .disconnects
                .lock()
                .expect("not poisoned")
                .entry(code)
                .or_default() += 1;
            state.disconnected.fetch_add(1, Ordering::SeqCst);
            deleted?;
            Ok(Reply::ok())
        })
}

/// How a client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// A close frame with code 1000.
    Close,
    /// The TCP connection closed without a close frame (FIN).
    Drop,
    /// A TCP reset: `SO_LINGER` 0, then the socket is dropped.
    Reset,
}

impl Leave {
    fn for_client(index: usize) -> Self {
        match index % 3 {
            0 => Leave::Close,
            1 => Leave::Drop,
            _ => Leave::Reset,
        }
    }
}

/// Sends a TCP RST to the server: no close frame, no FIN.
pub fn reset(client: Client) {
    if let MaybeTlsStream::Plain(tcp) = client.get_ref() {
        tcp.set_zero_linger().expect("SO_LINGER 0");
    }
    drop(client);
}

/// Closes, drops or resets the client.
pub async fn leave(mut client: Client, how: Leave) {
    match how {
        Leave::Close => {
            let _ = client
                .close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                }))
                .await;
            // Read the server's close reply so the handshake completes.
            let _ = tokio::time::timeout(STEP_LIMIT, async {
                while let Some(Ok(_)) = client.next().await {}
            })
            .await;
        }
        Leave::Drop => drop(client),
        Leave::Reset => reset(client),
    }
}

/// A gateway over `store`, and the state its handlers record into.
pub async fn soak_gateway(store: Arc<dyn ConnectionStore>) -> (RunningGateway, Arc<SoakState>) {
    let state = Arc::new(SoakState::new());
    // Waves of thousands of clients (WSGW_SOAK_CLIENTS) are the point: no connection cap.
    let gateway = LocalGateway::new(soak_router(state.clone()))
        .with_store(store)
        .limits(Limits::default().max_connections(usize::MAX))
        .bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("bind loopback");
    (gateway, state)
}

/// One client's tally for a wave.
#[derive(Default)]
struct Tally {
    delivered: usize,
    duplicates: usize,
    lost: usize,
    out_of_order: usize,
}

/// Reads one text message (skipping pings), failing the soak on a hang or a closed socket.
async fn next_json(client: &mut Client, who: &str) -> Value {
    loop {
        let message = tokio::time::timeout(STEP_LIMIT, client.next())
            .await
            .unwrap_or_else(|_| panic!("{who}: nothing arrived in {STEP_LIMIT:?}"))
            .unwrap_or_else(|| panic!("{who}: socket closed"))
            .unwrap_or_else(|error| panic!("{who}: {error}"));
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("{who}: unexpected {other:?}"),
        }
    }
}

/// Records a `say` message into `seen` (the sequence numbers received per sender),
/// counting duplicates, and deliveries that overtook an earlier message of their sender.
fn record(message: &Value, seen: &mut BTreeMap<String, BTreeSet<usize>>, tally: &mut Tally) {
    let (Some(from), Some(seq)) = (message["from"].as_str(), message["seq"].as_u64()) else {
        panic!("not a soak message: {message}");
    };
    let (from, seq) = (from.to_owned(), seq as usize);
    let seen = seen.entry(from).or_default();
    if !seen.insert(seq) {
        tally.duplicates += 1;
        return;
    }
    tally.delivered += 1;
    if seen.last().is_some_and(|latest| *latest > seq) {
        tally.out_of_order += 1;
    }
}

/// Waits at a barrier, failing the soak rather than waiting forever.
async fn barrier(barrier: &Barrier, who: &str) {
    tokio::time::timeout(STEP_LIMIT, barrier.wait())
        .await
        .unwrap_or_else(|_| panic!("{who}: the wave did not meet at a barrier in {STEP_LIMIT:?}"));
}

#[allow(clippy::too_many_arguments)]
async fn run_client(
    url: String,
    wave: usize,
    index: usize,
    room: String,
    roommates: usize,
    messages: usize,
    connected: Arc<Barrier>,
    received_all: Arc<Barrier>,
    connect_slots: Arc<tokio::sync::Semaphore>,
) -> Tally {
    let who = format!("wave {wave} client {index}");
    let mut client = {
        let _slot = connect_slots.acquire().await.expect("semaphore open");
        let (client, _) = tokio::time::timeout(
            STEP_LIMIT,
            tokio_tungstenite::connect_async(format!("{url}/?room={room}")),
        )
        .await
        .unwrap_or_else(|_| panic!("{who}: no handshake in {STEP_LIMIT:?}"))
        .unwrap_or_else(|error| panic!("{who}: handshake: {error}"));
        client
    };
    // Everyone is stored before anyone speaks, so every message has all roommates live.
    barrier(&connected, &who).await;

    let from = format!("w{wave}c{index}");
    let mut tally = Tally::default();
    let mut seen: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let expected = roommates * messages;
    let mut received = 0;
    for seq in 0..messages {
        let say = json!({ "action": "say", "room": room, "from": from, "seq": seq });
        client
            .send(Message::text(say.to_string()))
            .await
            .unwrap_or_else(|error| panic!("{who}: send: {error}"));
    }
    while received < expected {
        let message = next_json(&mut client, &who).await;
        record(&message, &mut seen, &mut tally);
        received += 1;
    }
    // Every roommate has everything: whatever arrives before `fin`'s answer is extra.
    barrier(&received_all, &who).await;
    client
        .send(Message::text(json!({ "action": "fin" }).to_string()))
        .await
        .unwrap_or_else(|error| panic!("{who}: send fin: {error}"));
    loop {
        let message = next_json(&mut client, &who).await;
        if message["type"] == "fin" {
            break;
        }
        record(&message, &mut seen, &mut tally);
    }
    // Each roommate's messages arrived once each: anything short of that is lost.
    tally.lost = expected.saturating_sub(tally.delivered);
    let _slot = connect_slots.acquire().await.expect("semaphore open");
    leave(client, Leave::for_client(index)).await;
    tally
}

/// Waits (bounded) until the store holds no connection and none of these groups has a
/// member; fails the soak otherwise.
pub async fn assert_store_empty(store: &dyn ConnectionStore, groups: &[String], what: &str) {
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let connections = store
            .list_all(PageRequest::first(100))
            .await
            .expect("the store lists")
            .items
            .len();
        let mut members = 0;
        for group in groups {
            members += store
                .list_group(group, PageRequest::first(100))
                .await
                .expect("the store lists the group")
                .items
                .len();
        }
        if connections == 0 && members == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {connections} connections and {members} group memberships still stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_wave(
    gateway: &RunningGateway,
    state: &SoakState,
    store: &dyn ConnectionStore,
    config: &SoakConfig,
    wave: usize,
    report: &mut SoakReport,
) {
    let connected = Arc::new(Barrier::new(config.clients));
    let received_all = Arc::new(Barrier::new(config.clients));
    let connect_slots = Arc::new(tokio::sync::Semaphore::new(config.connect_concurrency));
    let disconnected_before = state.disconnected.load(Ordering::SeqCst);
    let mut rooms = Vec::new();
    let mut clients = Vec::new();
    for index in 0..config.clients {
        let room_index = index / config.room;
        let room = format!("w{wave}r{room_index}");
        let first = room_index * config.room;
        let roommates = (first + config.room).min(config.clients) - first;
        if index == first {
            rooms.push(room_group(&room));
        }
        clients.push(tokio::spawn(run_client(
            gateway.ws_url(),
            wave,
            index,
            room,
            roommates,
            config.messages,
            connected.clone(),
            received_all.clone(),
            connect_slots.clone(),
        )));
    }
    // The first client to fail fails the wave at once (the others would wait at a
    // barrier for it).
    let mut clients: futures::stream::FuturesUnordered<_> = clients.into_iter().collect();
    while let Some(tally) = clients.next().await {
        let tally = tally.unwrap_or_else(|error| panic!("wave {wave}: a client failed: {error}"));
        report.delivered += tally.delivered;
        report.duplicates += tally.duplicates;
        report.lost += tally.lost;
        report.out_of_order += tally.out_of_order;
    }
    report.connections += config.clients;
    report.sent += config.clients * config.messages;
    report.waves += 1;

    // Every client's `$disconnect` ran, then nothing of the wave is stored.
    let deadline = Instant::now() + STEP_LIMIT;
    while state.disconnected.load(Ordering::SeqCst) - disconnected_before < config.clients {
        assert!(
            Instant::now() < deadline,
            "wave {wave}: {} of {} $disconnect events ran",
            state.disconnected.load(Ordering::SeqCst) - disconnected_before,
            config.clients
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_store_empty(store, &rooms, &format!("after wave {wave}")).await;
}

/// Runs the soak over `store` (which must start empty) and checks what the module docs
/// promise; returns the figures.
pub async fn run_soak(store: Arc<dyn ConnectionStore>, config: &SoakConfig) -> SoakReport {
    let (gateway, state) = soak_gateway(store.clone()).await;
    let mut report = SoakReport::default();
    let started = Instant::now();

    // The first waves warm the allocator up; RSS is compared between the median of the
    // next three waves and the median of the last three, once the allocator has
    // returned its free pages, so one noisy reading decides nothing.
    for wave in 0..config.warmup {
        run_wave(&gateway, &state, &*store, config, wave, &mut report).await;
    }
    let mut settled = Vec::new();
    let mut wave = config.warmup;
    while wave < config.waves || started.elapsed() < Duration::from_secs(config.seconds) {
        run_wave(&gateway, &state, &*store, config, wave, &mut report).await;
        let rss = rss_kib();
        settled.push(settled_rss_kib());
        eprintln!(
            "soak: wave {wave}: RSS {rss} KiB, {} KiB once the allocator's free pages are returned",
            settled[settled.len() - 1]
        );
        report.rss_peak_kib = report.rss_peak_kib.max(rss);
        wave += 1;
    }
    report.rss_start_kib = median(&settled[..3]);
    report.rss_end_kib = median(&settled[settled.len() - 3..]);
    report.elapsed = started.elapsed();
    report.disconnect_codes = state.disconnects.lock().expect("not poisoned").clone();
    gateway.shutdown().await.expect("the gateway stops");

    eprintln!("soak: {report}");
    let expected = report.connections * config.messages * config.room.min(config.clients);
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert!(report.delivered > 0 && report.delivered <= expected);
    assert_eq!(
        state.handler_errors.load(Ordering::SeqCst),
        0,
        "a broadcast pruned or failed a live connection"
    );
    assert_eq!(
        report.disconnect_codes.values().sum::<usize>(),
        report.connections,
        "one $disconnect per connection"
    );
    // Clients that closed with a frame say 1000; dropped and reset ones are 1006.
    let closed = (0..config.clients)
        .filter(|i| Leave::for_client(*i) == Leave::Close)
        .count()
        * report.waves;
    assert_eq!(
        report.disconnect_codes.get(&1000).copied().unwrap_or(0),
        closed
    );
    assert_eq!(
        report.disconnect_codes.get(&1006).copied().unwrap_or(0),
        report.connections - closed
    );
    assert!(
        report.rss_end_kib * 10 <= report.rss_start_kib * 11,
        "RSS grew more than 10 % after the warm-up: {report}"
    );
    report
}
