//! Faults a client can cause, through the LocalGateway with real sockets: a TCP reset
//! (no close frame) runs `$disconnect` with 1006 and leaves no record behind; a client
//! that never reads neither stalls its roommates nor makes the gateway queue without
//! bound, and can still be closed.
#![cfg(feature = "gateway")]

#[path = "support/soak.rs"]
mod soak;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use wsgw_core::{
    BroadcastOptions, Connection, ConnectionId, ConnectionStore, Context, MessageSink, PageRequest,
    Payload, Reply, Request, Router,
};
use wsgw_memory::gateway::{Limits, LocalGateway};
use wsgw_memory::{MemorySink, MemoryStore};

/// Long enough for anything that should happen to happen; only a hang reaches it.
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_tcp_reset_runs_disconnect_with_1006_and_removes_the_connection_and_its_groups() {
    let store = Arc::new(MemoryStore::new());
    let (gateway, state) = soak::soak_gateway(store.clone()).await;
    let (client, _) = tokio_tungstenite::connect_async(format!("{}/?room=r1", gateway.ws_url()))
        .await
        .expect("handshake");
    let (bystander, _) = tokio_tungstenite::connect_async(format!("{}/?room=r1", gateway.ws_url()))
        .await
        .expect("handshake");
    assert_eq!(store.len(), 2);

    soak::reset(client);
    state.wait_for_disconnects(1).await;

    assert_eq!(state.disconnect_codes(), [(1006, 1)].into_iter().collect());
    assert_eq!(store.len(), 1, "only the bystander is left");
    let members = store
        .list_group("room:r1", PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(members.items.len(), 1);

    soak::leave(bystander, soak::Leave::Reset).await;
    state.wait_for_disconnects(2).await;
    soak::assert_store_empty(&*store, &["room:r1".to_owned()], "after both resets").await;
    gateway.shutdown().await.unwrap();
}

/// What the slow-consumer router records.
#[derive(Default)]
struct Seen {
    connected: Mutex<Vec<ConnectionId>>,
    disconnected: Mutex<Vec<(ConnectionId, u16)>>,
    undelivered: AtomicUsize,
    undelivered_to: Mutex<Vec<ConnectionId>>,
}

const ROOM: &str = "room";

/// `blast` broadcasts `count` numbered messages of `size` bytes to the room, in order,
/// giving a connection up after six throttled attempts over at most ~46 ms (a reader
/// keeping up never needs that long to make room in its outbox).
fn blasting_router(
    store: Arc<dyn ConnectionStore>,
    sink: Arc<dyn MessageSink>,
    seen: Arc<Seen>,
) -> Router<Arc<Seen>> {
    Router::with_state(store, sink, seen)
        .on_connect(|ctx: Context<Arc<Seen>>, request: Request| async move {
            ctx.store()
                .put(Connection::new(request.connection_id.clone()).with_group(ROOM))
                .await?;
            ctx.state()
                .connected
                .lock()
                .unwrap()
                .push(request.connection_id.clone());
            Ok(Reply::ok())
        })
        .on_disconnect(|ctx: Context<Arc<Seen>>, request: Request| async move {
            ctx.store().delete(&request.connection_id).await?;
            let code = request.disconnect.map_or(0, |info| info.status_code);
            ctx.state()
                .disconnected
                .lock()
                .unwrap()
                .push((request.connection_id.clone(), code));
            Ok(Reply::ok())
        })
        .route(
            "blast",
            |ctx: Context<Arc<Seen>>, request: Request| async move {
                let body: Value = request.json()?;
                let count = body["count"].as_u64().unwrap_or(0);
                let size = body["size"].as_u64().unwrap_or(0) as usize;
                let ctx = ctx.with_broadcast_options(
                    BroadcastOptions::default()
                        .max_attempts(6)
                        .backoff(Duration::from_millis(2), Duration::from_millis(16)),
                );
                for seq in 0..count {
                    let mut text = format!("{seq:08} ");
                    text.push_str(&"x".repeat(size));
                    let report = ctx.broadcast_to_group(ROOM, &Payload::text(text)).await?;
                    for (id, error) in &report.failed {
                        assert!(error.is_throttled(), "{id}: {error}");
                        ctx.state().undelivered_to.lock().unwrap().push(id.clone());
                    }
                    ctx.state()
                        .undelivered
                        .fetch_add(report.failed.len(), Ordering::SeqCst);
                }
                Reply::json(&json!({ "type": "done" }))
            },
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_neither_stalls_the_others_nor_queues_without_bound() {
    const OUTBOX: usize = 64;
    const MESSAGES: u64 = 400;
    const SIZE: usize = 64 * 1024;
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryStore::new());
    let sockets = Arc::new(MemorySink::new());
    let seen = Arc::new(Seen::default());
    let gateway = LocalGateway::new(
        blasting_router(store.clone(), sockets.clone(), seen.clone()),
        sockets.clone(),
    )
    .limits(Limits::default().outbox_capacity(OUTBOX))
    .bind("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let url = gateway.ws_url();

    // The stuck client connects first and never reads again.
    let (stuck, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let stuck_id = seen.connected.lock().unwrap()[0].clone();
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(tokio_tungstenite::connect_async(&url).await.unwrap().0);
    }

    let mut sender = readers.remove(0);
    sender
        .send(Message::text(
            json!({ "action": "blast", "count": MESSAGES, "size": SIZE }).to_string(),
        ))
        .await
        .unwrap();
    let read_all = |mut client: soak::Client, expect_done: bool| async move {
        let mut next = 0u64;
        let mut done = !expect_done;
        while next < MESSAGES || !done {
            let message = tokio::time::timeout(WAIT, client.next())
                .await
                .expect("the readers are not stalled")
                .expect("open")
                .expect("a frame");
            let text = message.into_text().expect("text");
            if text.starts_with('{') {
                assert_eq!(text.as_str(), r#"{"type":"done"}"#);
                done = true;
                continue;
            }
            let seq: u64 = text[..8].parse().expect("a sequence number");
            assert_eq!(seq, next, "in order, once");
            assert_eq!(text.len(), 9 + SIZE);
            next += 1;
        }
        client
    };
    let mut tasks = vec![tokio::spawn(read_all(sender, true))];
    for reader in readers {
        tasks.push(tokio::spawn(read_all(reader, false)));
    }
    let mut readers = Vec::new();
    for task in tasks {
        readers.push(task.await.expect("every reader got every message in order"));
    }

    // The stuck client's socket buffers filled, then its outbox, then the gateway refused
    // more (throttled, and given up after the attempts): what it holds for it is bounded.
    let undelivered = seen.undelivered.load(Ordering::SeqCst);
    assert!(undelivered > 0, "the stuck client was throttled");
    assert!(undelivered < MESSAGES as usize);
    assert!(
        seen.undelivered_to
            .lock()
            .unwrap()
            .iter()
            .all(|id| *id == stuck_id),
        "only the stuck client missed messages"
    );

    // Closing it through the Management API works though its socket takes no more bytes.
    sockets.disconnect(&stuck_id).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.disconnected.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "$disconnect of the stuck client ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        seen.disconnected.lock().unwrap()[0],
        (stuck_id.clone(), 1000)
    );
    assert!(store.get(&stuck_id).await.unwrap().is_none());
    drop(stuck);

    tokio::time::timeout(WAIT, gateway.shutdown())
        .await
        .expect("shutdown does not hang")
        .unwrap();
    drop(readers);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_does_not_wait_for_a_client_that_never_reads() {
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryStore::new());
    let sockets = Arc::new(MemorySink::new());
    let seen = Arc::new(Seen::default());
    let gateway = LocalGateway::new(
        blasting_router(store.clone(), sockets.clone(), seen.clone()),
        sockets.clone(),
    )
    .limits(Limits::default().outbox_capacity(4))
    .bind("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let (mut stuck, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .unwrap();
    // Ask for more than the socket buffers hold, and never read.
    stuck
        .send(Message::text(
            json!({ "action": "blast", "count": 400, "size": 64 * 1024 }).to_string(),
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.undelivered.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the outbox filled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    tokio::time::timeout(WAIT, gateway.shutdown())
        .await
        .expect("shutdown does not hang on the stuck socket")
        .unwrap();
    assert_eq!(seen.disconnected.lock().unwrap().len(), 1);
    assert!(store
        .list_all(PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    drop(stuck);
}
