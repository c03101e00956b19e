//! In-process hot paths, with criterion: route selection, Lambda event decoding,
//! MemoryStore operations, and broadcast over the memory sink at 10,000 connections.
//!
//! Shared by `wsgw-bench hot-paths` (which `cargo xtask bench` runs, so the release build
//! of the bench serves every benchmark) and `cargo bench -p wsgw-bench --bench hot_paths`.
//! Inputs are built here, so the `expect`s below are on the benchmark's own data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use serde_json::json;
use wsgw_core::{
    Backends, Connection, ConnectionId, ConnectionInfo, ConnectionStore, PageRequest, Payload,
    RouteSelection, Router,
};
use wsgw_memory::{MemorySink, MemoryStore};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn route_selection(c: &mut Criterion) {
    let selection = RouteSelection::default();
    let body = Payload::text(r#"{"action":"sendmessage","message":"hello, world","room":"lobby"}"#);
    c.bench_function("route selection: $request.body.action", |b| {
        b.iter(|| selection.select(Some(std::hint::black_box(&body))))
    });
    let nested = RouteSelection::parse("$request.body.meta.kind").expect("an expression");
    let body = Payload::text(r#"{"meta":{"kind":"telemetry","v":2},"data":[1,2,3,4,5,6,7,8]}"#);
    c.bench_function("route selection: $request.body.meta.kind", |b| {
        b.iter(|| nested.select(Some(std::hint::black_box(&body))))
    });
}

fn lambda_decoding(c: &mut Criterion) {
    let event = json!({
        "requestContext": {
            "routeKey": "sendmessage", "eventType": "MESSAGE", "messageDirection": "IN",
            "messageId": "msg-1", "stage": "production", "connectedAt": 1795336800000i64,
            "requestTimeEpoch": 1795336801234i64, "identity": { "sourceIp": "203.0.113.10" },
            "requestId": "req-1", "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "connectionId": "GXLKAfX1FiACHqQ=", "apiId": "abc123"
        },
        "body": r#"{"action":"sendmessage","message":"hello"}"#,
        "isBase64Encoded": false
    });
    let text = event.to_string();
    c.bench_function("Lambda WebSocket event: JSON text → Request", |b| {
        b.iter_batched(
            || text.clone(),
            |text| {
                let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                wsgw_aws::lambda::decode_websocket_event(value).expect("an event")
            },
            BatchSize::SmallInput,
        )
    });
}

fn memory_store(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryStore::new();
    rt.block_on(async {
        for i in 0..10_000 {
            let id = ConnectionId::new(format!("conn-{i}="));
            store.put(Connection::new(id.clone())).await.expect("put");
            if i % 10 == 0 {
                store.add_to_group(&id, "room").await.expect("group");
            }
        }
    });
    let probe = ConnectionId::new("conn-4242=");
    c.bench_function("MemoryStore get (10,000 stored)", |b| {
        b.iter(|| rt.block_on(store.get(&probe)).expect("get"))
    });
    let mut next = 0u64;
    c.bench_function("MemoryStore put + delete", |b| {
        b.iter(|| {
            next += 1;
            let id = ConnectionId::new(format!("new-{next}="));
            rt.block_on(async {
                store.put(Connection::new(id.clone())).await.expect("put");
                store.delete(&id).await.expect("delete")
            })
        })
    });
    c.bench_function("MemoryStore list_group page of 500 (1,000 members)", |b| {
        b.iter(|| {
            rt.block_on(store.list_group("room", PageRequest::after(500, None)))
                .expect("list")
        })
    });
}

fn broadcast_memory(c: &mut Criterion) {
    let rt = runtime();
    let sink = Arc::new(MemorySink::new());
    let backends = Backends::new(Arc::new(MemoryStore::new()), sink.clone());
    let ctx = Router::new().context(&backends);
    let ids: Vec<ConnectionId> = (0..10_000)
        .map(|i| ConnectionId::new(format!("conn-{i}=")))
        .collect();
    let mut outboxes: Vec<_> = ids
        .iter()
        .map(|id| sink.attach(id, ConnectionInfo::new(chrono::Utc::now(), None, None), 4))
        .collect();
    let payload = Payload::text(r#"{"type":"broadcast","message":"hello, everyone"}"#);
    let mut group = c.benchmark_group("broadcast");
    group.sample_size(20);
    group.bench_function("memory sink, 10,000 connections", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let report = rt
                    .block_on(
                        ctx.broadcast_payload(payload.clone())
                            .to(ids.iter().cloned())
                            .send(),
                    )
                    .expect("no group to list");
                total += started.elapsed();
                assert_eq!(report.delivered.len(), ids.len());
                for outbox in &mut outboxes {
                    while outbox.messages.try_recv().is_ok() {}
                }
            }
            total
        })
    });
    group.finish();
}

/// Every hot path, in order.
pub fn all(c: &mut Criterion) {
    route_selection(c);
    lambda_decoding(c);
    memory_store(c);
    broadcast_memory(c);
}
