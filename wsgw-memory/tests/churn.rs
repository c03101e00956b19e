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
    Backends, BroadcastOptions, Connection, ConnectionId, ConnectionStore, Context, MessageSink,
    PageRequest, Payload, Reply, Request, Router,
};
use wsgw_memory::gateway::{Limits, LocalGateway, RouterIntegration};
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
fn blasting_router(seen: Arc<Seen>) -> Router<Arc<Seen>> {
    Router::with_state(seen)
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
        .two_way_route(
            "blast",
            |ctx: Context<Arc<Seen>>, request: Request| async move {
                let body: Value = request.json()?;
                let first = body["first"].as_u64().unwrap_or(0);
                let count = body["count"].as_u64().unwrap_or(0);
                let size = body["size"].as_u64().unwrap_or(0) as usize;
                let ctx = ctx.with_broadcast_options(
                    BroadcastOptions::default()
                        .max_attempts(6)
                        .backoff(Duration::from_millis(2), Duration::from_millis(16)),
                );
                for seq in first..first + count {
                    let mut text = format!("{seq:08} ");
                    text.push_str(&"x".repeat(size));
                    let report = ctx
                        .broadcast_payload(Payload::text(text))
                        .to_group(ROOM)
                        .await?;
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
    const OUTBOX: usize = 256;
    const MESSAGES: u64 = 640;
    const SIZE: usize = 64 * 1024;
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryStore::new());
    let sockets = Arc::new(MemorySink::new());
    let seen = Arc::new(Seen::default());
    let gateway = LocalGateway::new(blasting_router(seen.clone()))
        .with_store(store.clone())
        .with_sockets(sockets.clone())
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
    let read_all = |mut client: soak::Client| async move {
        for next in 0..MESSAGES {
            let message = tokio::time::timeout(WAIT, client.next())
                .await
                .expect("the readers are not stalled")
                .expect("open")
                .expect("a frame");
            let text = message.into_text().expect("text");
            let seq: u64 = text[..8].parse().expect("a sequence number");
            assert_eq!(seq, next, "in order, once");
            assert_eq!(text.len(), 9 + SIZE);
        }
        client
    };
    let mut tasks = Vec::new();
    for reader in readers {
        tasks.push(tokio::spawn(read_all(reader)));
    }
    // One message per round trip of the sender, which reads its own copy and the answer
    // before the next: a producer no faster than a reader, so only the stuck client
    // falls behind.
    for seq in 0..MESSAGES {
        sender
            .send(Message::text(
                json!({ "action": "blast", "first": seq, "count": 1, "size": SIZE }).to_string(),
            ))
            .await
            .unwrap();
        for expected in [format!("{seq:08} "), r#"{"type":"done"}"#.to_owned()] {
            let message = tokio::time::timeout(WAIT, sender.next())
                .await
                .expect("the sender is not stalled")
                .expect("open")
                .expect("a frame");
            let text = message.into_text().expect("text");
            assert!(
                text.starts_with(&expected),
                "{seq}: {}",
                &text[..20.min(text.len())]
            );
        }
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
    let gateway = LocalGateway::new(blasting_router(seen.clone()))
        .with_store(store.clone())
        .with_sockets(sockets.clone())
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

/// What the faulty-broadcast router records.
#[derive(Default)]
struct Fanout {
    pruned: Mutex<Vec<ConnectionId>>,
    failed: AtomicUsize,
    disconnected: Mutex<Vec<(ConnectionId, u16)>>,
}

#[tokio::test(flavor = "multi_thread")]
async fn broadcast_through_a_faulty_sink_reaches_every_live_socket_once_and_prunes_exactly_the_gone(
) {
    const CLIENTS: usize = 60;
    const MESSAGES: u64 = 12;
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryStore::new());
    let sockets = Arc::new(MemorySink::new());
    let faulty = Arc::new(
        wsgw_memory::FaultySink::new(sockets.clone(), 0xc0ffee)
            .gone(0.01)
            .throttled(0.25)
            .timeouts(0.1, Duration::from_millis(5))
            .max_transient_run(3),
    );
    let fanout = Arc::new(Fanout::default());
    let router = Router::with_state(fanout.clone())
        .on_connect(|ctx: Context<Arc<Fanout>>, request: Request| async move {
            // The sender listens to nobody; everyone else is in the audience.
            let connection = Connection::new(request.connection_id.clone());
            let connection = if request.query_param("sender").is_some() {
                connection
            } else {
                connection.with_group("audience")
            };
            ctx.store().put(connection).await?;
            Ok(Reply::ok())
        })
        .on_disconnect(|ctx: Context<Arc<Fanout>>, request: Request| async move {
            ctx.store().delete(&request.connection_id).await?;
            let code = request.disconnect.map_or(0, |info| info.status_code);
            ctx.state()
                .disconnected
                .lock()
                .unwrap()
                .push((request.connection_id.clone(), code));
            Ok(Reply::ok())
        })
        .two_way_route(
            "whoami",
            |_ctx: Context<Arc<Fanout>>, request: Request| async move {
                Reply::json(&json!({ "id": request.connection_id }))
            },
        )
        .two_way_route(
            "shout",
            |ctx: Context<Arc<Fanout>>, request: Request| async move {
                let ctx = ctx.with_broadcast_options(
                    BroadcastOptions::default()
                        .max_attempts(4)
                        .backoff(Duration::from_millis(1), Duration::from_millis(8)),
                );
                let payload = Payload::text(request.text().unwrap_or_default());
                let report = ctx.broadcast_payload(payload).to_group("audience").await?;
                let state = ctx.state();
                state.pruned.lock().unwrap().extend(report.pruned.clone());
                state
                    .failed
                    .fetch_add(report.failed.len(), Ordering::SeqCst);
                // The two-way reply goes through the gateway, not the faulty sink.
                Reply::json(&json!({ "type": "done" }))
            },
        );
    // Handlers send through the faulty sink; the gateway's own answers go straight to
    // the sockets.
    let integration = RouterIntegration::new(router, Backends::new(store.clone(), faulty.clone()));
    let gateway = LocalGateway::for_integration(integration)
        .with_sockets(sockets.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    let mut audience = Vec::new();
    for _ in 0..CLIENTS {
        let (mut client, _) = tokio_tungstenite::connect_async(gateway.ws_url())
            .await
            .unwrap();
        client
            .send(Message::text(r#"{"action":"whoami"}"#))
            .await
            .unwrap();
        let reply = tokio::time::timeout(WAIT, client.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
        audience.push((ConnectionId::new(reply["id"].as_str().unwrap()), client));
    }
    let (mut sender, _) =
        tokio_tungstenite::connect_async(format!("{}/?sender=1", gateway.ws_url()))
            .await
            .unwrap();
    for seq in 0..MESSAGES {
        sender
            .send(Message::text(
                json!({ "action": "shout", "seq": seq }).to_string(),
            ))
            .await
            .unwrap();
        let done = tokio::time::timeout(WAIT, sender.next())
            .await
            .expect("the broadcast finishes")
            .unwrap()
            .unwrap();
        assert_eq!(done.to_text().unwrap(), r#"{"type":"done"}"#);
    }

    let gone = faulty.gone_connections();
    assert!(!gone.is_empty(), "some connections were dealt Gone");
    assert!(faulty.injected_count(wsgw_memory::Fault::Throttled) > 0);
    assert!(faulty.injected_count(wsgw_memory::Fault::Timeout) > 0);
    assert_eq!(fanout.failed.load(Ordering::SeqCst), 0, "nothing given up");
    let mut pruned = fanout.pruned.lock().unwrap().clone();
    pruned.sort();
    assert_eq!(pruned, gone, "exactly the gone ones pruned");

    let mut still_open = Vec::new();
    for (id, mut client) in audience {
        let mut received = Vec::new();
        let closed = loop {
            match tokio::time::timeout(WAIT, client.next())
                .await
                .expect("no stall")
            {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(text.as_str()).unwrap();
                    received.push(message["seq"].as_u64().unwrap());
                    if received.len() as u64 == MESSAGES {
                        break false;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break true,
                Some(Ok(_)) => {}
            }
        };
        let expected: Vec<u64> = (0..received.len() as u64).collect();
        assert_eq!(received, expected, "{id}: each once, in order");
        if gone.contains(&id) {
            assert!(closed, "{id} was closed when it went");
            assert!(store.get(&id).await.unwrap().is_none());
        } else {
            assert_eq!(received.len() as u64, MESSAGES, "{id} got everything");
            assert!(store.get(&id).await.unwrap().is_some());
        }
        still_open.push(client);
    }
    // Every gone connection's $disconnect ran, with 1000 (closed through the sink).
    let deadline = tokio::time::Instant::now() + WAIT;
    while fanout.disconnected.lock().unwrap().len() < gone.len() {
        assert!(tokio::time::Instant::now() < deadline, "$disconnect ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(fanout
        .disconnected
        .lock()
        .unwrap()
        .iter()
        .all(|(id, code)| gone.contains(id) && *code == 1000));
    drop(still_open);
    tokio::time::timeout(WAIT, gateway.shutdown())
        .await
        .unwrap()
        .unwrap();
}
