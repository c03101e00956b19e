//! Fan-out through `Context::broadcast`: bounded concurrency, pruning of gone
//! connections, retries on throttling, groups listed page by page, filters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use wsgw_core::metrics::{Counter, Counters};
use wsgw_core::{
    Backends, BroadcastOptions, BroadcastReport, ConnectionId, ConnectionInfo, Error, MessageSink,
    MockConnectionStore, Page, PageToken, Payload, Result, Router,
};

/// A sink scripted per connection: answers from a queue of outcomes, then `Ok`.
#[derive(Default)]
struct ScriptedSink {
    script: Mutex<HashMap<ConnectionId, Vec<Error>>>,
    delivered: Mutex<Vec<ConnectionId>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Duration,
}

impl ScriptedSink {
    fn fail(self, id: &str, errors: Vec<Error>) -> Self {
        self.script
            .lock()
            .unwrap()
            .insert(ConnectionId::new(id), errors);
        self
    }
}

#[async_trait]
impl MessageSink for ScriptedSink {
    async fn send(&self, id: &ConnectionId, _payload: Payload) -> wsgw_core::Result<()> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let next = {
            let mut script = self.script.lock().unwrap();
            script
                .get_mut(id)
                .filter(|errors| !errors.is_empty())
                .map(|errors| errors.remove(0))
        };
        match next {
            Some(error) => Err(error),
            None => {
                self.delivered.lock().unwrap().push(id.clone());
                Ok(())
            }
        }
    }
    async fn connection_info(&self, id: &ConnectionId) -> wsgw_core::Result<ConnectionInfo> {
        Err(Error::Gone {
            connection_id: id.clone(),
        })
    }
    async fn disconnect(&self, _id: &ConnectionId) -> wsgw_core::Result<()> {
        Ok(())
    }
}

fn ids(names: &[&str]) -> Vec<ConnectionId> {
    names.iter().map(|n| ConnectionId::new(*n)).collect()
}

fn gone(id: &str) -> Error {
    Error::Gone {
        connection_id: ConnectionId::new(id),
    }
}

fn throttled() -> Error {
    Error::Throttled {
        backend: "test",
        message: "slow down".into(),
    }
}

/// One broadcast of `payload` to `targets` through a router's context, as a handler
/// sends it.
async fn broadcast(
    store: MockConnectionStore,
    sink: &Arc<ScriptedSink>,
    targets: Vec<ConnectionId>,
    payload: &Payload,
    options: BroadcastOptions,
) -> Result<BroadcastReport> {
    let backends = Backends::new(Arc::new(store), sink.clone());
    let ctx = Router::new().broadcast_options(options).context(&backends);
    ctx.broadcast_payload(payload.clone()).to(targets).await
}

fn fast_retries() -> BroadcastOptions {
    BroadcastOptions::default().backoff(Duration::from_millis(1), Duration::from_millis(5))
}

#[tokio::test]
async fn broadcast_prunes_gone_connections_and_delivers_to_the_rest() {
    let sink = Arc::new(ScriptedSink::default().fail("b", vec![gone("b")]));
    let mut store = MockConnectionStore::new();
    store
        .expect_delete()
        .withf(|id| id.as_str() == "b")
        .times(1)
        .returning(|_| Ok(None));
    let report = broadcast(
        store,
        &sink,
        ids(&["a", "b", "c"]),
        &Payload::text("hi"),
        fast_retries(),
    )
    .await
    .unwrap();
    let mut delivered = report.delivered.clone();
    delivered.sort();
    assert_eq!(delivered, ids(&["a", "c"]));
    assert_eq!(report.pruned, ids(&["b"]));
    assert!(report.failed.is_empty());
    assert_eq!(report.attempted(), 3);
}

#[tokio::test]
async fn throttled_sends_are_retried_until_they_succeed() {
    let sink = Arc::new(ScriptedSink::default().fail("a", vec![throttled(), throttled()]));
    let store = MockConnectionStore::new();
    let report = broadcast(
        store,
        &sink,
        ids(&["a"]),
        &Payload::text("hi"),
        fast_retries(),
    )
    .await
    .unwrap();
    assert_eq!(report.delivered, ids(&["a"]));
}

#[tokio::test]
async fn throttling_past_the_attempt_limit_is_reported_as_failed() {
    let sink =
        Arc::new(ScriptedSink::default().fail("a", vec![throttled(), throttled(), throttled()]));
    let store = MockConnectionStore::new();
    let options = fast_retries().max_attempts(3);
    let report = broadcast(
        store,
        &sink,
        ids(&["a", "b"]),
        &Payload::text("hi"),
        options,
    )
    .await
    .unwrap();
    assert_eq!(report.delivered, ids(&["b"]));
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].1.is_throttled());
}

fn timed_out() -> Error {
    Error::Timeout {
        backend: "test",
        message: "no answer in 1 s".into(),
    }
}

#[tokio::test]
async fn timed_out_sends_are_retried_like_throttled_ones_up_to_the_attempt_limit() {
    let sink = Arc::new(
        ScriptedSink::default()
            .fail("a", vec![timed_out(), throttled(), timed_out()])
            .fail("b", vec![timed_out(), timed_out(), timed_out()]),
    );
    let store = MockConnectionStore::new();
    let options = fast_retries().max_attempts(4);
    let report = broadcast(
        store,
        &sink,
        ids(&["a", "b"]),
        &Payload::text("hi"),
        options.clone().max_attempts(3),
    )
    .await
    .unwrap();
    assert!(report.delivered.is_empty());
    assert_eq!(report.failed.len(), 2);
    assert!(report.failed.iter().all(|(_, error)| error.is_timeout()));

    let sink = Arc::new(
        ScriptedSink::default()
            .fail("a", vec![timed_out(), throttled(), timed_out()])
            .fail("b", vec![timed_out(), timed_out(), timed_out()]),
    );
    let store = MockConnectionStore::new();
    let report = broadcast(
        store,
        &sink,
        ids(&["a", "b"]),
        &Payload::text("hi"),
        options,
    )
    .await
    .unwrap();
    let mut delivered = report.delivered.clone();
    delivered.sort();
    assert_eq!(delivered, ids(&["a", "b"]));
    assert!(report.failed.is_empty());
}

#[tokio::test]
async fn other_errors_are_reported_with_their_reason_and_nothing_is_pruned() {
    let too_large = Error::PayloadTooLarge { size: 10, limit: 5 };
    let sink = Arc::new(ScriptedSink::default().fail("a", vec![too_large]));
    let store = MockConnectionStore::new(); // any delete would panic: none is expected
    let report = broadcast(
        store,
        &sink,
        ids(&["a"]),
        &Payload::text("0123456789"),
        fast_retries(),
    )
    .await
    .unwrap();
    assert!(matches!(report.failed[0].1, Error::PayloadTooLarge { .. }));
    assert!(report.pruned.is_empty());
}

#[tokio::test]
async fn a_gone_connection_that_cannot_be_deleted_is_reported_as_failed() {
    let sink = Arc::new(ScriptedSink::default().fail("a", vec![gone("a")]));
    let mut store = MockConnectionStore::new();
    store
        .expect_delete()
        .returning(|_| Err(Error::backend("test", "table unavailable", None)));
    let report = broadcast(
        store,
        &sink,
        ids(&["a"]),
        &Payload::text("hi"),
        fast_retries(),
    )
    .await
    .unwrap();
    assert!(report.pruned.is_empty());
    assert!(matches!(report.failed[0].1, Error::Backend { .. }));
}

#[tokio::test]
async fn no_more_than_the_configured_sends_are_in_flight() {
    let sink = Arc::new(ScriptedSink {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let store = MockConnectionStore::new();
    let targets: Vec<ConnectionId> = (0..50)
        .map(|n| ConnectionId::new(format!("c{n}")))
        .collect();
    let options = fast_retries().concurrency(4);
    let report = broadcast(store, &sink, targets, &Payload::text("hi"), options)
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 50);
    let peak = sink.max_in_flight.load(Ordering::SeqCst);
    assert!(peak <= 4, "peak {peak} sends in flight");
    assert!(peak >= 2, "sends ran concurrently (peak {peak})");
}

fn two_pages_of(
    expected_group: &'static str,
    first: &'static [&'static str],
    second: &'static [&'static str],
) -> MockConnectionStore {
    let mut store = MockConnectionStore::new();
    store.expect_list_group().returning(move |group, page| {
        assert_eq!(group, expected_group);
        Ok(match page.token {
            None => Page {
                items: ids(first),
                next: Some(PageToken("p2".into())),
            },
            Some(PageToken(token)) if token == "p2" => Page {
                items: ids(second),
                next: None,
            },
            Some(other) => panic!("unexpected token {other:?}"),
        })
    });
    store
}

#[tokio::test]
async fn group_broadcast_walks_every_page_of_members() {
    let sink = Arc::new(ScriptedSink::default());
    let store = two_pages_of("room:1", &["a", "b"], &["c"]);
    let backends = Backends::new(Arc::new(store), sink.clone());
    let ctx = Router::new()
        .broadcast_options(fast_retries().page_size(2))
        .context(&backends);
    let report = ctx
        .broadcast_payload(Payload::text("hi"))
        .to_group("room:1")
        .await
        .unwrap();
    let mut delivered = report.delivered;
    delivered.sort();
    assert_eq!(delivered, ids(&["a", "b", "c"]));
}

#[tokio::test]
async fn group_broadcast_fails_when_the_group_cannot_be_listed() {
    let sink = Arc::new(ScriptedSink::default());
    let mut store = MockConnectionStore::new();
    store
        .expect_list_group()
        .returning(|_, _| Err(Error::backend("test", "query failed on table t", None)));
    let backends = Backends::new(Arc::new(store), sink.clone());
    let ctx = Router::new().context(&backends);
    let result = ctx.broadcast(&"hi").to_group("room:1").await;
    assert!(matches!(result, Err(Error::Backend { .. })), "{result:?}");
}

#[tokio::test]
async fn several_groups_and_ids_reach_each_connection_once() {
    let sink = Arc::new(ScriptedSink::default());
    let mut store = MockConnectionStore::new();
    store.expect_list_group().returning(|group, _| {
        Ok(Page {
            items: match group {
                "follow:esp32-01" => ids(&["a", "b"]),
                "clients" => ids(&["b", "c"]),
                other => panic!("unexpected group {other}"),
            },
            next: None,
        })
    });
    let backends = Backends::new(Arc::new(store), sink.clone());
    let ctx = Router::new().context(&backends);
    let report = ctx
        .broadcast(&serde_json::json!({"type": "control_ack"}))
        .to_groups(["follow:esp32-01", "clients"])
        .to(ids(&["c", "d"]))
        .await
        .unwrap();
    let mut delivered = report.delivered;
    delivered.sort();
    assert_eq!(delivered, ids(&["a", "b", "c", "d"]));
    let mut sent = sink.delivered.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent, ids(&["a", "b", "c", "d"]), "each connection once");
}

#[tokio::test]
async fn a_filter_leaves_targets_out_and_a_failing_filter_is_reported_as_failed() {
    let sink = Arc::new(ScriptedSink::default());
    let backends = Backends::new(Arc::new(MockConnectionStore::new()), sink.clone());
    let ctx = Router::new().context(&backends);
    let report = ctx
        .broadcast(&"tick")
        .to(ids(&["due", "not-due", "broken"]))
        .filter(|id| async move {
            match id.as_str() {
                "due" => Ok(true),
                "not-due" => Ok(false),
                _ => Err(Error::backend("test", "conditional update failed", None)),
            }
        })
        .await
        .unwrap();
    assert_eq!(report.delivered, ids(&["due"]));
    assert_eq!(report.skipped, ids(&["not-due"]));
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, ConnectionId::new("broken"));
    assert_eq!(report.attempted(), 3);
    assert_eq!(*sink.delivered.lock().unwrap(), ids(&["due"]));
}

#[tokio::test]
async fn every_broadcast_is_counted_for_the_routers_observers() {
    let sink = Arc::new(ScriptedSink::default().fail("gone", vec![gone("gone")]));
    let mut store = MockConnectionStore::new();
    store.expect_delete().times(1).returning(|_| Ok(None));
    let backends = Backends::new(Arc::new(store), sink.clone());
    let counters = Arc::new(Counters::new());
    let ctx = Router::new().observe(counters.clone()).context(&backends);
    ctx.broadcast(&"hi")
        .to(ids(&["a", "b", "gone"]))
        .await
        .unwrap();
    assert_eq!(counters.get(Counter::BroadcastDeliveries, "(none)"), 2);
    assert_eq!(counters.get(Counter::GonePrunes, "(none)"), 1);
}

#[tokio::test]
async fn a_message_that_does_not_serialise_fails_the_broadcast_before_any_send() {
    struct Unserialisable;
    impl serde::Serialize for Unserialisable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no JSON for this"))
        }
    }
    let sink = Arc::new(ScriptedSink::default());
    let backends = Backends::new(Arc::new(MockConnectionStore::new()), sink.clone());
    let ctx = Router::new().context(&backends);
    let result = ctx.broadcast(&Unserialisable).to(ids(&["a"])).await;
    assert!(matches!(result, Err(Error::Json(_))), "{result:?}");
    assert!(sink.delivered.lock().unwrap().is_empty());
}
