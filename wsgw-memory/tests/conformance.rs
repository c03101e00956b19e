//! The wsgw-core conformance suite against the in-memory backends.

use std::time::Duration;

use async_trait::async_trait;
use wsgw_core::conformance::{self, SinkProbe};
use wsgw_core::{ConnectionId, Payload};
use wsgw_memory::{new_connection_id, MemoryHistory, MemorySink, MemoryStore};

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            conformance::$name(&MemoryStore::new()).await;
        }
    )*};
}

store_tests!(
    put_get_delete,
    update_attributes,
    typed_attributes,
    groups,
    group_pagination,
    list_all_pagination,
    rejects_foreign_tokens
);

macro_rules! history_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            conformance::$name(&MemoryHistory::new()).await;
        }
    )*};
}

history_tests!(
    history_ordering,
    history_range,
    history_pagination,
    history_ttl,
    history_replace
);

/// Opens recorded connections and reads what the sink recorded.
struct RecordingProbe<'a>(&'a MemorySink);

#[async_trait]
impl SinkProbe for RecordingProbe<'_> {
    async fn open(&self) -> ConnectionId {
        let id = new_connection_id();
        self.0.open(&id, Some("127.0.0.1".into()), None);
        id
    }

    async fn next_message(&self, id: &ConnectionId, _timeout: Duration) -> Option<Payload> {
        let mut sent = self.0.take_sent(id);
        if sent.is_empty() {
            return None;
        }
        let first = sent.remove(0);
        for rest in sent {
            self.0.record(id, rest);
        }
        Some(first)
    }

    async fn closed(&self, id: &ConnectionId, _timeout: Duration) -> bool {
        !self.0.is_open(id)
    }
}

/// Opens live connections and reads their outboxes, as the local gateway does.
struct LiveProbe<'a> {
    sink: &'a MemorySink,
    outboxes: std::sync::Mutex<std::collections::HashMap<ConnectionId, wsgw_memory::Outbox>>,
}

#[async_trait]
impl SinkProbe for LiveProbe<'_> {
    async fn open(&self) -> ConnectionId {
        let id = new_connection_id();
        let info =
            wsgw_core::ConnectionInfo::new(chrono::Utc::now(), Some("127.0.0.1".into()), None);
        let outbox = self.sink.attach(&id, info, 16);
        self.outboxes.lock().unwrap().insert(id.clone(), outbox);
        id
    }

    async fn next_message(&self, id: &ConnectionId, _timeout: Duration) -> Option<Payload> {
        self.outboxes
            .lock()
            .unwrap()
            .get_mut(id)?
            .messages
            .try_recv()
            .ok()
    }

    async fn closed(&self, id: &ConnectionId, _timeout: Duration) -> bool {
        let mut outboxes = self.outboxes.lock().unwrap();
        outboxes
            .get_mut(id)
            .is_some_and(|outbox| outbox.close.try_recv().is_ok())
    }
}

#[tokio::test]
async fn recording_sink_passes_the_sink_suite() {
    let sink = MemorySink::new().with_max_payload(4096);
    conformance::message_sink_suite(&sink, &RecordingProbe(&sink), 4096).await;
}

#[tokio::test]
async fn live_sink_passes_the_sink_suite() {
    let sink = MemorySink::new().with_max_payload(4096);
    let probe = LiveProbe {
        sink: &sink,
        outboxes: Default::default(),
    };
    conformance::message_sink_suite(&sink, &probe, 4096).await;
}

#[tokio::test]
async fn live_sink_throttles_when_the_outbox_is_full() {
    let sink = MemorySink::new();
    let id = new_connection_id();
    let info = wsgw_core::ConnectionInfo::new(chrono::Utc::now(), None, None);
    let mut outbox = sink.attach(&id, info, 2);
    use wsgw_core::MessageSink;
    sink.send(&id, Payload::text("1")).await.unwrap();
    sink.send(&id, Payload::text("2")).await.unwrap();
    let third = sink.send(&id, Payload::text("3")).await;
    assert!(third.as_ref().is_err_and(|e| e.is_throttled()), "{third:?}");
    assert_eq!(outbox.messages.recv().await, Some(Payload::text("1")));
    sink.send(&id, Payload::text("3"))
        .await
        .expect("room again after a read");
}

#[tokio::test]
async fn live_sink_throttles_by_bytes_and_frees_them_when_taken_or_dropped() {
    use wsgw_core::MessageSink;
    let sink = MemorySink::new();
    let info = || wsgw_core::ConnectionInfo::new(chrono::Utc::now(), None, None);
    let (a, b) = (new_connection_id(), new_connection_id());
    let mut outbox = sink.attach(&a, info(), wsgw_memory::OutboxLimits::new(100, 10));
    let other = sink.attach(&b, info(), wsgw_memory::OutboxLimits::new(100, 10));
    // Larger than the bound, but the outbox is empty: it goes, alone.
    sink.send(&a, Payload::text("0123456789ab")).await.unwrap();
    let full = sink.send(&a, Payload::text("c")).await;
    assert!(full.as_ref().is_err_and(|e| e.is_throttled()), "{full:?}");
    sink.send(&b, Payload::text("12345")).await.unwrap();
    sink.send(&b, Payload::text("67890")).await.unwrap();
    assert!(sink
        .send(&b, Payload::text("x"))
        .await
        .is_err_and(|e| e.is_throttled()));
    assert_eq!(sink.queued_bytes(), 22);
    assert_eq!(outbox.messages.queued_bytes(), 12);

    assert_eq!(
        outbox.messages.recv().await,
        Some(Payload::text("0123456789ab"))
    );
    assert_eq!(sink.queued_bytes(), 10);
    sink.send(&a, Payload::text("c"))
        .await
        .expect("room after a read");
    drop(other);
    assert_eq!(
        sink.queued_bytes(),
        1,
        "what a dropped outbox held is freed"
    );
    assert!(sink
        .send(&b, Payload::text("late"))
        .await
        .is_err_and(|e| e.is_gone()));
    assert_eq!(sink.queued_bytes(), 1);
}

#[tokio::test]
async fn live_sink_is_gone_once_the_socket_task_dropped_its_outbox() {
    let sink = MemorySink::new();
    let id = new_connection_id();
    let info = wsgw_core::ConnectionInfo::new(chrono::Utc::now(), None, None);
    drop(sink.attach(&id, info, 2));
    use wsgw_core::MessageSink;
    let result = sink.send(&id, Payload::text("late")).await;
    assert!(result.is_err_and(|e| e.is_gone()));
}
