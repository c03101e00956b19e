//! `broadcast` through a `FaultySink`: every live connection gets the message exactly
//! once, exactly the connections drawn gone are pruned, and a send is given up only when
//! every attempt it was allowed met a transient fault.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use wsgw_core::{
    Backends, BroadcastOptions, BroadcastReport, Connection, ConnectionId, ConnectionStore,
    MessageSink, PageRequest, Payload, Router,
};
use wsgw_memory::{Fault, FaultySink, InjectedFault, MemorySink, MemoryStore};

const GROUP: &str = "room:soak";
const MAX_ATTEMPTS: u32 = 4;

fn options() -> BroadcastOptions {
    BroadcastOptions::default()
        .concurrency(32)
        .max_attempts(MAX_ATTEMPTS)
        .backoff(Duration::from_millis(1), Duration::from_millis(4))
        .page_size(100)
}

/// `count` connections in one group, each open in the sink.
async fn connections(count: usize, sink: &MemorySink) -> (Arc<MemoryStore>, Vec<ConnectionId>) {
    let store = Arc::new(MemoryStore::new());
    let mut ids = Vec::new();
    for i in 0..count {
        let id = ConnectionId::new(format!("conn-{i:04}="));
        store
            .put(Connection::new(id.clone()).with_group(GROUP))
            .await
            .expect("stored");
        sink.open(&id, None, None);
        ids.push(id);
    }
    (store, ids)
}

/// One broadcast of `payload` to the group, as a handler sends it (through a router's
/// context) on `store` and `sink`.
async fn broadcast_to_group(
    store: &Arc<MemoryStore>,
    sink: &Arc<FaultySink<MemorySink>>,
    payload: &Payload,
) -> wsgw_core::Result<BroadcastReport> {
    let backends = Backends::new(store.clone(), sink.clone());
    Router::new()
        .broadcast_options(options())
        .context(&backends)
        .broadcast_payload(payload.clone())
        .to_group(GROUP)
        .await
}

fn sorted(ids: impl IntoIterator<Item = ConnectionId>) -> Vec<ConnectionId> {
    let set: BTreeSet<ConnectionId> = ids.into_iter().collect();
    set.into_iter().collect()
}

async fn members(store: &MemoryStore) -> Vec<ConnectionId> {
    let page = store
        .list_group(GROUP, PageRequest::first(10_000))
        .await
        .expect("lists");
    sorted(page.items)
}

/// The faults each connection was dealt, in call order.
fn by_connection(injected: &[InjectedFault]) -> BTreeMap<ConnectionId, Vec<(u64, Fault)>> {
    let mut faults: BTreeMap<ConnectionId, Vec<(u64, Fault)>> = BTreeMap::new();
    for fault in injected {
        faults
            .entry(fault.connection_id.clone())
            .or_default()
            .push((fault.call, fault.fault));
    }
    for calls in faults.values_mut() {
        calls.sort_by_key(|(call, _)| *call);
    }
    faults
}

/// Checks a report of one broadcast over fresh connections against what the sink dealt.
async fn check_against_injected(
    report: &BroadcastReport,
    sink: &FaultySink<MemorySink>,
    store: &MemoryStore,
    ids: &[ConnectionId],
    payload: &Payload,
) {
    assert_eq!(report.attempted(), ids.len(), "every member was a target");
    let faults = by_connection(&sink.injected());
    let gone = sink.gone_connections();

    // Pruned: exactly the connections drawn gone; they are deleted and closed.
    assert_eq!(sorted(report.pruned.clone()), gone);
    for id in &gone {
        assert!(store.get(id).await.expect("reads").is_none(), "{id} pruned");
        assert!(!sink.inner().is_open(id), "{id} closed by the faulty sink");
        assert!(sink.inner().sent_to(id).is_empty(), "{id} got nothing");
    }

    // Failed: only after `MAX_ATTEMPTS` transient faults in a row, from the first call.
    for (id, error) in &report.failed {
        assert!(error.is_retryable(), "{id} failed for {error}");
        let dealt = faults.get(id).cloned().unwrap_or_default();
        let expected: Vec<u64> = (1..=u64::from(MAX_ATTEMPTS)).collect();
        assert_eq!(
            dealt.iter().map(|(call, _)| *call).collect::<Vec<_>>(),
            expected,
            "{id} was given up on although an attempt would have passed: {dealt:?}"
        );
        assert!(dealt.iter().all(|(_, fault)| fault.is_transient()));
        assert!(sink.inner().sent_to(id).is_empty());
        assert!(store.get(id).await.expect("reads").is_some(), "{id} kept");
    }

    // Delivered: everything else, exactly once.
    let failed: BTreeSet<&ConnectionId> = report.failed.iter().map(|(id, _)| id).collect();
    let expected_delivered: Vec<ConnectionId> = ids
        .iter()
        .filter(|id| !gone.contains(id) && !failed.contains(id))
        .cloned()
        .collect();
    assert_eq!(sorted(report.delivered.clone()), sorted(expected_delivered));
    for id in &report.delivered {
        assert_eq!(sink.inner().sent_to(id), vec![payload.clone()], "{id}");
    }

    // The group holds the live connections, and only them.
    let live: Vec<ConnectionId> = ids
        .iter()
        .filter(|id| !gone.contains(id))
        .cloned()
        .collect();
    assert_eq!(members(store).await, sorted(live));
}

#[tokio::test]
async fn broadcast_under_faults_prunes_exactly_the_gone_and_gives_up_only_after_every_attempt_failed(
) {
    let (store, ids) = connections(600, &MemorySink::new()).await;
    let sink = Arc::new(
        FaultySink::new(MemorySink::new(), 0x5eed)
            .gone(0.04)
            .throttled(0.30)
            .timeouts(0.15, Duration::from_millis(2)),
    );
    for id in &ids {
        sink.inner().open(id, None, None);
    }
    let payload = Payload::text(r#"{"type":"message","seq":1}"#);

    let report = broadcast_to_group(&store, &sink, &payload)
        .await
        .expect("the group lists");

    check_against_injected(&report, &sink, &store, &ids, &payload).await;
    // Every kind of fault was dealt, and at 45 % transient faults some sends ran out of
    // attempts: the test saw each case it checks.
    assert!(sink.injected_count(Fault::Gone) > 0);
    assert!(sink.injected_count(Fault::Throttled) > 0);
    assert!(sink.injected_count(Fault::Timeout) > 0);
    assert!(!report.failed.is_empty(), "some sends ran out of attempts");
    assert!(!report.pruned.is_empty());
}

#[tokio::test]
async fn with_fewer_transient_faults_in_a_row_than_attempts_every_live_connection_gets_it() {
    let (store, ids) = connections(600, &MemorySink::new()).await;
    let sink = Arc::new(
        FaultySink::new(MemorySink::new(), 0xfa11)
            .gone(0.03)
            .throttled(0.35)
            .timeouts(0.15, Duration::from_millis(2))
            .max_transient_run(MAX_ATTEMPTS - 1),
    );
    for id in &ids {
        sink.inner().open(id, None, None);
    }
    let payload = Payload::text("hello");

    let report = broadcast_to_group(&store, &sink, &payload)
        .await
        .expect("the group lists");

    check_against_injected(&report, &sink, &store, &ids, &payload).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        report.delivered.len() + report.pruned.len(),
        ids.len(),
        "every connection delivered or pruned"
    );
    // Retries happened: more faults than there were gone connections.
    assert!(sink.injected_count(Fault::Throttled) + sink.injected_count(Fault::Timeout) > 100);
}

#[tokio::test]
async fn many_broadcasts_in_a_row_deliver_each_message_once_in_order_to_every_survivor() {
    let (store, ids) = connections(200, &MemorySink::new()).await;
    let sink = Arc::new(
        FaultySink::new(MemorySink::new(), 99)
            .gone(0.002)
            .throttled(0.2)
            .timeouts(0.05, Duration::from_millis(1))
            .max_transient_run(MAX_ATTEMPTS - 1),
    );
    for id in &ids {
        sink.inner().open(id, None, None);
    }

    let messages: Vec<Payload> = (0..40).map(|seq| Payload::text(format!("{seq}"))).collect();
    for payload in &messages {
        let report = broadcast_to_group(&store, &sink, payload)
            .await
            .expect("the group lists");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }

    let gone = sink.gone_connections();
    assert!(!gone.is_empty(), "some connections went during the run");
    let live: Vec<&ConnectionId> = ids.iter().filter(|id| !gone.contains(id)).collect();
    for id in &live {
        assert_eq!(sink.inner().sent_to(id), messages, "{id}");
    }
    for id in &gone {
        // A gone connection got a prefix of the messages: those before it went.
        let got = sink.inner().sent_to(id);
        assert_eq!(got[..], messages[..got.len()], "{id}");
    }
    assert_eq!(members(&store).await.len(), live.len());
}

#[tokio::test]
async fn the_same_seed_deals_the_same_faults_whatever_the_order_of_sends() {
    let ids: Vec<ConnectionId> = (0..300)
        .map(|i| ConnectionId::new(format!("c{i}=")))
        .collect();
    let run = |seed: u64, order: Vec<ConnectionId>| async move {
        let sink = FaultySink::new(MemorySink::new(), seed)
            .gone(0.1)
            .throttled(0.2)
            .timeouts(0.1, Duration::ZERO);
        for id in &order {
            sink.inner().open(id, None, None);
        }
        for _round in 0..3 {
            for id in &order {
                let _ = sink.send(id, Payload::text("x")).await;
            }
        }
        let mut injected = sink.injected();
        injected.sort_by(|a, b| (&a.connection_id, a.call).cmp(&(&b.connection_id, b.call)));
        injected
    };
    let forwards = run(1, ids.clone()).await;
    let backwards = run(1, ids.iter().rev().cloned().collect()).await;
    let other_seed = run(2, ids.clone()).await;

    assert!(!forwards.is_empty());
    assert_eq!(forwards, backwards);
    assert_ne!(forwards, other_seed);
}

#[tokio::test]
async fn a_gone_connection_stays_gone_and_the_rates_are_roughly_kept() {
    let sink = FaultySink::new(MemorySink::new(), 3)
        .throttled(0.25)
        .close_gone(false);
    let ids: Vec<ConnectionId> = (0..4000)
        .map(|i| ConnectionId::new(format!("r{i}=")))
        .collect();
    for id in &ids {
        sink.inner().open(id, None, None);
        let _ = sink.send(id, Payload::text("x")).await;
    }
    let throttled = sink.injected_count(Fault::Throttled);
    // 25 % of 4,000 is 1,000; the binomial's standard deviation is about 27.
    assert!((850..1150).contains(&throttled), "{throttled}");
    assert_eq!(sink.passed() as usize + throttled, ids.len());

    let sink = FaultySink::new(MemorySink::new(), 3)
        .gone(1.0)
        .close_gone(false);
    let id = ConnectionId::new("a=");
    sink.inner().open(&id, None, None);
    for _ in 0..3 {
        assert!(sink
            .send(&id, Payload::text("x"))
            .await
            .unwrap_err()
            .is_gone());
    }
    assert!(sink.connection_info(&id).await.unwrap_err().is_gone());
    assert!(
        sink.inner().is_open(&id),
        "close_gone(false) leaves it open"
    );
    assert_eq!(sink.gone_connections(), vec![id]);
}
