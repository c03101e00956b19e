//! Fan-out: bounded concurrency, pruning of gone connections, retries on throttling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use wsgw_core::{
    broadcast, broadcast_to_group, BroadcastOptions, ConnectionId, ConnectionInfo, Error,
    MessageSink, MockConnectionStore, Page, PageToken, Payload,
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

fn fast_retries() -> BroadcastOptions {
    BroadcastOptions::default().backoff(Duration::from_millis(1), Duration::from_millis(5))
}

#[tokio::test]
async fn broadcast_prunes_gone_connections_and_delivers_to_the_rest() {
    let sink = ScriptedSink::default().fail("b", vec![gone("b")]);
    let mut store = MockConnectionStore::new();
    store
        .expect_delete()
        .withf(|id| id.as_str() == "b")
        .times(1)
        .returning(|_| Ok(None));
    let report = broadcast(
        &store,
        &sink,
        ids(&["a", "b", "c"]),
        &Payload::text("hi"),
        &fast_retries(),
    )
    .await;
    let mut delivered = report.delivered.clone();
    delivered.sort();
    assert_eq!(delivered, ids(&["a", "c"]));
    assert_eq!(report.pruned, ids(&["b"]));
    assert!(report.failed.is_empty());
    assert_eq!(report.attempted(), 3);
}

#[tokio::test]
async fn throttled_sends_are_retried_until_they_succeed() {
    let sink = ScriptedSink::default().fail("a", vec![throttled(), throttled()]);
    let store = MockConnectionStore::new();
    let report = broadcast(
        &store,
        &sink,
        ids(&["a"]),
        &Payload::text("hi"),
        &fast_retries(),
    )
    .await;
    assert_eq!(report.delivered, ids(&["a"]));
}

#[tokio::test]
async fn throttling_past_the_attempt_limit_is_reported_as_failed() {
    let sink = ScriptedSink::default().fail("a", vec![throttled(), throttled(), throttled()]);
    let store = MockConnectionStore::new();
    let options = fast_retries().max_attempts(3);
    let report = broadcast(
        &store,
        &sink,
        ids(&["a", "b"]),
        &Payload::text("hi"),
        &options,
    )
    .await;
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
    let sink = ScriptedSink::default()
        .fail("a", vec![timed_out(), throttled(), timed_out()])
        .fail("b", vec![timed_out(), timed_out(), timed_out()]);
    let store = MockConnectionStore::new();
    let options = fast_retries().max_attempts(4);
    let report = broadcast(
        &store,
        &sink,
        ids(&["a", "b"]),
        &Payload::text("hi"),
        &options.clone().max_attempts(3),
    )
    .await;
    assert!(report.delivered.is_empty());
    assert_eq!(report.failed.len(), 2);
    assert!(report.failed.iter().all(|(_, error)| error.is_timeout()));

    let sink = ScriptedSink::default()
        .fail("a", vec![timed_out(), throttled(), timed_out()])
        .fail("b", vec![timed_out(), timed_out(), timed_out()]);
    let report = broadcast(
        &store,
        &sink,
        ids(&["a", "b"]),
        &Payload::text("hi"),
        &options,
    )
    .await;
    let mut delivered = report.delivered.clone();
    delivered.sort();
    assert_eq!(delivered, ids(&["a", "b"]));
    assert!(report.failed.is_empty());
}

#[tokio::test]
async fn other_errors_are_reported_with_their_reason_and_nothing_is_pruned() {
    let too_large = Error::PayloadTooLarge { size: 10, limit: 5 };
    let sink = ScriptedSink::default().fail("a", vec![too_large]);
    let store = MockConnectionStore::new(); // any delete would panic: none is expected
    let report = broadcast(
        &store,
        &sink,
        ids(&["a"]),
        &Payload::text("0123456789"),
        &fast_retries(),
    )
    .await;
    assert!(matches!(report.failed[0].1, Error::PayloadTooLarge { .. }));
    assert!(report.pruned.is_empty());
}

#[tokio::test]
async fn a_gone_connection_that_cannot_be_deleted_is_reported_as_failed() {
    let sink = ScriptedSink::default().fail("a", vec![gone("a")]);
    let mut store = MockConnectionStore::new();
    store
        .expect_delete()
        .returning(|_| Err(Error::backend("test", "table unavailable", None)));
    let report = broadcast(
        &store,
        &sink,
        ids(&["a"]),
        &Payload::text("hi"),
        &fast_retries(),
    )
    .await;
    assert!(report.pruned.is_empty());
    assert!(matches!(report.failed[0].1, Error::Backend { .. }));
}

#[tokio::test]
async fn no_more_than_the_configured_sends_are_in_flight() {
    let sink = ScriptedSink {
        delay: Duration::from_millis(5),
        ..Default::default()
    };
    let store = MockConnectionStore::new();
    let targets: Vec<ConnectionId> = (0..50)
        .map(|n| ConnectionId::new(format!("c{n}")))
        .collect();
    let options = fast_retries().concurrency(4);
    let report = broadcast(&store, &sink, targets, &Payload::text("hi"), &options).await;
    assert_eq!(report.delivered.len(), 50);
    let peak = sink.max_in_flight.load(Ordering::SeqCst);
    assert!(peak <= 4, "peak {peak} sends in flight");
    assert!(peak >= 2, "sends ran concurrently (peak {peak})");
}

#[tokio::test]
async fn group_broadcast_walks_every_page_of_members() {
    let sink = ScriptedSink::default();
    let mut store = MockConnectionStore::new();
    store.expect_list_group().returning(|group, page| {
        assert_eq!(group, "room:1");
        Ok(match page.token {
            None => Page {
                items: ids(&["a", "b"]),
                next: Some(PageToken("p2".into())),
            },
            Some(PageToken(token)) if token == "p2" => Page {
                items: ids(&["c"]),
                next: None,
            },
            Some(other) => panic!("unexpected token {other:?}"),
        })
    });
    let report = broadcast_to_group(
        &store,
        &sink,
        "room:1",
        &Payload::text("hi"),
        &fast_retries().page_size(2),
    )
    .await
    .unwrap();
    let mut delivered = report.delivered;
    delivered.sort();
    assert_eq!(delivered, ids(&["a", "b", "c"]));
}

#[tokio::test]
async fn group_broadcast_fails_when_the_group_cannot_be_listed() {
    let sink = ScriptedSink::default();
    let mut store = MockConnectionStore::new();
    store
        .expect_list_group()
        .returning(|_, _| Err(Error::backend("test", "query failed on table t", None)));
    let result = broadcast_to_group(
        &store,
        &sink,
        "room:1",
        &Payload::text("hi"),
        &fast_retries(),
    )
    .await;
    assert!(result.is_err());
}
