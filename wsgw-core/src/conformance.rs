//! The shared test suite every backend must pass (feature `conformance`).
//!
//! Each function exercises one behaviour and panics with a message saying what broke,
//! so a backend's test file is a list of one-line tests:
//!
//! ```text
//! #[tokio::test]
//! async fn group_pagination() {
//!     wsgw_core::conformance::group_pagination(&MyStore::new()).await;
//! }
//! ```
//!
//! Ids and partitions are unique per call, so the suite can run against a shared table
//! (a DynamoDB emulator) without cleaning it between tests.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde_json::json;

use crate::{
    AttributeUpdate, Connection, ConnectionId, ConnectionStore, ConnectionStoreExt, Error,
    HistoryQuery, HistoryRecord, HistoryStore, HistoryStoreExt, MessageSink, Order, Page,
    PageRequest, PageToken, Payload,
};

/// A name no other call in this process (or a recent process) has used.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{prefix}-{nanos:x}-{n}")
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// `put` then `get` returns the same record (timestamps to the millisecond); `delete`
/// returns it and removes it; deleting again is not an error.
pub async fn put_get_delete(store: &dyn ConnectionStore) {
    let id = ConnectionId::new(unique("conn"));
    assert_eq!(
        store.get(&id).await.expect("get unknown"),
        None,
        "unknown id must read as None"
    );

    let connection = Connection::new(id.clone())
        .with_source_ip("203.0.113.9")
        .with_user_agent("conformance/1.0")
        .with_attribute("name", "ada")
        .with_attribute("nested", json!({"a": [1, 2, {"b": null}]}));
    store.put(connection.clone()).await.expect("put");

    let stored = store
        .get(&id)
        .await
        .expect("get")
        .expect("stored connection is found");
    assert_eq!(stored.id, id);
    assert_eq!(millis(stored.connected_at), millis(connection.connected_at));
    assert_eq!(
        millis(stored.last_active_at),
        millis(connection.last_active_at)
    );
    assert_eq!(stored.source_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(stored.user_agent.as_deref(), Some("conformance/1.0"));
    assert_eq!(
        stored.attributes, connection.attributes,
        "attributes round-trip"
    );

    let replaced = connection.clone().with_attribute("name", "grace");
    store.put(replaced).await.expect("put replaces");
    let stored = store.get(&id).await.expect("get").expect("still stored");
    assert_eq!(
        stored.attributes["name"],
        json!("grace"),
        "put replaces the record"
    );

    let deleted = store.delete(&id).await.expect("delete");
    assert_eq!(
        deleted.map(|c| c.id),
        Some(id.clone()),
        "delete returns what was stored"
    );
    assert_eq!(store.get(&id).await.expect("get after delete"), None);
    assert_eq!(store.delete(&id).await.expect("delete twice is fine"), None);
}

/// Attribute updates set and remove atomically, honour their conditions and fail on
/// unknown connections.
pub async fn update_attributes(store: &dyn ConnectionStore) {
    let id = ConnectionId::new(unique("attrs"));
    let missing = store
        .update_attributes(&id, AttributeUpdate::new().set("a", 1))
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "update of unknown id: {missing:?}"
    );

    store
        .put(
            Connection::new(id.clone())
                .with_attribute("keep", true)
                .with_attribute("drop", 1),
        )
        .await
        .expect("put");
    let updated = store
        .update_attributes(
            &id,
            AttributeUpdate::new()
                .set("interval_ms", 5000)
                .remove("drop"),
        )
        .await
        .expect("update");
    assert_eq!(updated.attributes.get("interval_ms"), Some(&json!(5000)));
    assert_eq!(updated.attributes.get("drop"), None);
    assert_eq!(updated.attributes.get("keep"), Some(&json!(true)));

    // A compare-and-set: exactly one of two racing updates with the same expectation wins.
    let first = store
        .update_attributes(
            &id,
            AttributeUpdate::new()
                .set("last_sent", 2)
                .expect_absent("last_sent"),
        )
        .await;
    assert!(first.is_ok(), "condition on an absent attribute: {first:?}");
    let second = store
        .update_attributes(
            &id,
            AttributeUpdate::new()
                .set("last_sent", 3)
                .expect_absent("last_sent"),
        )
        .await;
    assert!(
        matches!(second, Err(Error::Precondition { .. })),
        "stale condition: {second:?}"
    );
    let third = store
        .update_attributes(
            &id,
            AttributeUpdate::new()
                .set("last_sent", 4)
                .expect_value("last_sent", 2),
        )
        .await
        .expect("condition on current value");
    assert_eq!(third.attributes["last_sent"], json!(4));

    let stored = store.get(&id).await.expect("get").expect("stored");
    assert_eq!(
        stored.attributes["last_sent"],
        json!(4),
        "failed condition changed nothing"
    );
    store.delete(&id).await.expect("cleanup");
}

/// The most items a listing may yield before the suite calls it endless.
const MAX_ITEMS: usize = 100_000;

/// Every item of a listing stream (the extension traits' streams over the backend's
/// pages), failing with `what` on an error or a listing that does not end.
async fn collect_all<T>(listing: BoxStream<'_, crate::Result<T>>, what: &str) -> Vec<T> {
    let all: Vec<T> = listing
        .take(MAX_ITEMS)
        .try_collect()
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(all.len() < MAX_ITEMS, "{what} never returned a last page");
    all
}

/// Asserts that one page of a listing holds at most `limit` items.
fn assert_page_within<T>(page: &Page<T>, limit: usize, what: &str) {
    assert!(
        page.items.len() <= limit,
        "{what}: page larger than its limit"
    );
}

/// Typed attributes round-trip through the store as JSON ([`ConnectionStoreExt`]):
/// a struct, a float and a string come back as they were set; a missing connection or
/// attribute reads as `None`; setting on an unknown connection is `NotFound`.
pub async fn typed_attributes(store: &dyn ConnectionStore) {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Follow {
        device: String,
        interval_ms: u64,
    }
    let id = ConnectionId::new(unique("typed"));
    let missing = store.set_attribute(&id, "room", "lobby").await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "set on unknown id: {missing:?}"
    );
    assert_eq!(
        store.attribute::<String>(&id, "room").await.expect("get"),
        None
    );

    store.put(Connection::new(id.clone())).await.expect("put");
    let follow = Follow {
        device: "esp32-01".to_owned(),
        interval_ms: 1500,
    };
    store
        .set_attribute(&id, "follow", &follow)
        .await
        .expect("set struct");
    store
        .set_attribute(&id, "ratio", &0.1)
        .await
        .expect("set float");
    store
        .set_attribute(&id, "room", "lobby")
        .await
        .expect("set string");
    assert_eq!(
        store.attribute(&id, "follow").await.expect("get"),
        Some(follow)
    );
    assert_eq!(
        store.attribute::<f64>(&id, "ratio").await.expect("get"),
        Some(0.1)
    );
    assert_eq!(
        store
            .attribute::<String>(&id, "room")
            .await
            .expect("get")
            .as_deref(),
        Some("lobby")
    );
    assert_eq!(
        store.attribute::<String>(&id, "absent").await.expect("get"),
        None
    );
    let wrong = store.attribute::<u64>(&id, "room").await;
    assert!(
        matches!(wrong, Err(Error::Json(_))),
        "a string read as a number: {wrong:?}"
    );
    store.delete(&id).await.expect("cleanup");
}

async fn members(store: &dyn ConnectionStore, group: &str, page_size: usize) -> Vec<ConnectionId> {
    collect_all(store.members_paged(group, page_size), "list_group").await
}

fn sorted(ids: impl IntoIterator<Item = ConnectionId>) -> Vec<ConnectionId> {
    let mut ids: Vec<ConnectionId> = ids.into_iter().collect();
    ids.sort();
    ids
}

/// A connection can be in several groups; membership follows `put`, `add_to_group`,
/// `remove_from_group` and `delete`.
pub async fn groups(store: &dyn ConnectionStore) {
    let room = unique("room");
    let session = unique("session");
    let a = ConnectionId::new(unique("a"));
    let b = ConnectionId::new(unique("b"));
    store
        .put(
            Connection::new(a.clone())
                .with_group(&room)
                .with_group(&session),
        )
        .await
        .expect("put a");
    store
        .put(Connection::new(b.clone()).with_group(&room))
        .await
        .expect("put b");

    assert_eq!(
        sorted(members(store, &room, 10).await),
        sorted([a.clone(), b.clone()])
    );
    assert_eq!(members(store, &session, 10).await, vec![a.clone()]);

    store.add_to_group(&b, &session).await.expect("add");
    store
        .add_to_group(&b, &session)
        .await
        .expect("adding twice is fine");
    assert_eq!(
        sorted(members(store, &session, 10).await),
        sorted([a.clone(), b.clone()])
    );
    let stored_b = store.get(&b).await.expect("get").expect("b stored");
    assert!(
        stored_b.groups.contains(&session),
        "get shows the added group"
    );

    store.remove_from_group(&a, &room).await.expect("remove");
    store
        .remove_from_group(&a, &room)
        .await
        .expect("removing a non-member is fine");
    assert_eq!(members(store, &room, 10).await, vec![b.clone()]);
    let stored_a = store.get(&a).await.expect("get").expect("a stored");
    assert_eq!(stored_a.groups, BTreeSet::from([session.clone()]));

    let unknown = ConnectionId::new(unique("nobody"));
    let added = store.add_to_group(&unknown, &room).await;
    assert!(
        matches!(added, Err(Error::NotFound { .. })),
        "add of unknown id: {added:?}"
    );

    // `put` sets exactly the groups of the record it stores.
    store
        .put(Connection::new(a.clone()).with_group(&room))
        .await
        .expect("re-put a");
    assert_eq!(members(store, &session, 10).await, vec![b.clone()]);
    assert_eq!(
        sorted(members(store, &room, 10).await),
        sorted([a.clone(), b.clone()])
    );

    store.delete(&b).await.expect("delete b");
    assert_eq!(
        members(store, &room, 10).await,
        vec![a.clone()],
        "delete removes membership"
    );
    assert!(members(store, &session, 10).await.is_empty());
    store.delete(&a).await.expect("cleanup");
    assert!(members(store, &room, 10).await.is_empty());
}

/// Listing a group across many pages returns every member exactly once.
pub async fn group_pagination(store: &dyn ConnectionStore) {
    let group = unique("big-room");
    let mut expected = Vec::new();
    for n in 0..27 {
        let id = ConnectionId::new(unique(&format!("m{n}")));
        store
            .put(Connection::new(id.clone()).with_group(&group))
            .await
            .expect("put");
        expected.push(id);
    }
    let listed = members(store, &group, 10).await;
    assert_eq!(
        listed.len(),
        expected.len(),
        "every member exactly once across pages"
    );
    assert_eq!(sorted(listed), sorted(expected.clone()));

    let first = store
        .list_group(&group, PageRequest::first(10))
        .await
        .expect("page 1");
    assert_page_within(&first, 10, "list_group");
    assert!(
        first.next.is_some(),
        "a group larger than the page has a next token"
    );
    for id in &expected {
        store.delete(id).await.expect("cleanup");
    }
}

/// `list_all` pages through every stored connection.
pub async fn list_all_pagination(store: &dyn ConnectionStore) {
    let mut expected = BTreeSet::new();
    for n in 0..12 {
        let id = ConnectionId::new(unique(&format!("all{n}")));
        store.put(Connection::new(id.clone())).await.expect("put");
        expected.insert(id);
    }
    let first = store
        .list_all(PageRequest::first(5))
        .await
        .expect("list_all");
    assert_page_within(&first, 5, "list_all");
    let seen: Vec<ConnectionId> = collect_all(store.connections_paged(5), "list_all")
        .await
        .into_iter()
        .map(|connection| connection.id)
        .filter(|id| expected.contains(id))
        .collect();
    assert_eq!(seen.len(), expected.len(), "each connection exactly once");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
    for id in &expected {
        store.delete(id).await.expect("cleanup");
    }
}

/// A token the store never issued is refused with [`Error::InvalidToken`].
pub async fn rejects_foreign_tokens(store: &dyn ConnectionStore) {
    let result = store
        .list_group(
            "any",
            PageRequest::after(10, Some(PageToken("not a token!".into()))),
        )
        .await;
    assert!(
        matches!(result, Err(Error::InvalidToken { .. })),
        "foreign token: {result:?}"
    );
}

/// Every [`ConnectionStore`] test, one after the other.
pub async fn connection_store_suite(store: &dyn ConnectionStore) {
    put_get_delete(store).await;
    update_attributes(store).await;
    typed_attributes(store).await;
    groups(store).await;
    group_pagination(store).await;
    list_all_pagination(store).await;
    rejects_foreign_tokens(store).await;
}

/// What the sink suite needs besides the sink: a way to open real connections and to
/// see what reached them.
#[async_trait]
pub trait SinkProbe: Send + Sync {
    /// Opens a connection the sink can reach and returns its id.
    async fn open(&self) -> ConnectionId;
    /// The next message the connection received, waiting up to `timeout`.
    async fn next_message(&self, id: &ConnectionId, timeout: Duration) -> Option<Payload>;
    /// Whether the connection has been closed (waiting up to `timeout` for it).
    async fn closed(&self, id: &ConnectionId, timeout: Duration) -> bool;
}

const WAIT: Duration = Duration::from_secs(5);

/// Text and binary messages arrive, in order, unchanged.
pub async fn sink_delivers_in_order(sink: &dyn MessageSink, probe: &dyn SinkProbe) {
    let id = probe.open().await;
    let sent = [
        Payload::text("first"),
        Payload::binary(vec![0u8, 159, 146, 150]),
        Payload::text("ünïcödé ✓"),
    ];
    for payload in &sent {
        sink.send(&id, payload.clone())
            .await
            .expect("send to a live connection");
    }
    for payload in &sent {
        let received = probe.next_message(&id, WAIT).await;
        assert_eq!(
            received.as_ref(),
            Some(payload),
            "delivered unchanged and in order"
        );
    }
    sink.disconnect(&id).await.expect("cleanup");
}

/// `connection_info` describes a live connection.
pub async fn sink_connection_info(sink: &dyn MessageSink, probe: &dyn SinkProbe) {
    let before = Utc::now() - TimeDelta::seconds(5);
    let id = probe.open().await;
    let info = sink
        .connection_info(&id)
        .await
        .expect("info of a live connection");
    assert!(
        info.connected_at >= before,
        "connected_at {} is too old",
        info.connected_at
    );
    assert!(
        info.connected_at <= Utc::now() + TimeDelta::seconds(5),
        "connected_at in the future"
    );
    assert!(info.last_active_at >= info.connected_at - TimeDelta::seconds(1));
    sink.disconnect(&id).await.expect("cleanup");
}

/// Unknown ids are `Gone` for send, info and disconnect, naming the id.
pub async fn sink_unknown_is_gone(sink: &dyn MessageSink) {
    let id = ConnectionId::new(unique("never"));
    for (call, result) in [
        ("send", sink.send(&id, Payload::text("x")).await.err()),
        ("connection_info", sink.connection_info(&id).await.err()),
        ("disconnect", sink.disconnect(&id).await.err()),
    ] {
        match result {
            Some(Error::Gone { connection_id }) => {
                assert_eq!(connection_id, id, "{call} names the id")
            }
            other => panic!("{call} to an unknown id must be Gone, got {other:?}"),
        }
    }
}

/// After `disconnect` the connection is closed and further sends are `Gone`.
pub async fn sink_disconnect_then_gone(sink: &dyn MessageSink, probe: &dyn SinkProbe) {
    let id = probe.open().await;
    sink.disconnect(&id)
        .await
        .expect("disconnect a live connection");
    assert!(
        probe.closed(&id, WAIT).await,
        "disconnect closes the connection"
    );
    let result = sink.send(&id, Payload::text("late")).await;
    assert!(
        matches!(result, Err(Error::Gone { .. })),
        "send after disconnect: {result:?}"
    );
}

/// A payload of exactly `limit` bytes is delivered; one byte more is `PayloadTooLarge`
/// and the connection stays usable.
pub async fn sink_payload_limit(sink: &dyn MessageSink, probe: &dyn SinkProbe, limit: usize) {
    let id = probe.open().await;
    let too_large = sink.send(&id, Payload::text("x".repeat(limit + 1))).await;
    match too_large {
        Err(Error::PayloadTooLarge {
            size,
            limit: reported,
        }) => {
            assert_eq!(size, limit + 1);
            assert_eq!(reported, limit);
        }
        other => panic!("payload over the limit must be PayloadTooLarge, got {other:?}"),
    }
    sink.send(&id, Payload::text("y".repeat(limit)))
        .await
        .expect("payload at the limit");
    let received = probe
        .next_message(&id, WAIT)
        .await
        .expect("payload at the limit arrives");
    assert_eq!(received.len(), limit);
    sink.disconnect(&id).await.expect("cleanup");
}

/// Every [`MessageSink`] test, one after the other.
pub async fn message_sink_suite(
    sink: &dyn MessageSink,
    probe: &dyn SinkProbe,
    payload_limit: usize,
) {
    sink_delivers_in_order(sink, probe).await;
    sink_connection_info(sink, probe).await;
    sink_unknown_is_gone(sink).await;
    sink_disconnect_then_gone(sink, probe).await;
    sink_payload_limit(sink, probe, payload_limit).await;
}

fn record(partition: &str, at: DateTime<Utc>, n: usize) -> HistoryRecord {
    HistoryRecord::new(partition, at, format!("r{n:03}"), json!({ "n": n }))
}

fn numbers(records: &[HistoryRecord]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r.data["n"].as_i64().unwrap_or(-1))
        .collect()
}

async fn all_pages(history: &dyn HistoryStore, query: HistoryQuery) -> Vec<HistoryRecord> {
    let first = history.query(query.clone()).await.expect("history query");
    assert_page_within(&first, query.limit, "history query");
    collect_all(history.records(query), "history query").await
}

/// Records come back in time order (then by id), either direction, whatever order they
/// were appended in; partitions do not mix; millisecond times are kept.
pub async fn history_ordering(history: &dyn HistoryStore) {
    let partition = unique("hist");
    let other = unique("hist-other");
    let base = Utc::now() - TimeDelta::minutes(10);
    for n in [3usize, 0, 4, 1, 2] {
        let at = base + TimeDelta::milliseconds(n as i64 * 7);
        history
            .append(record(&partition, at, n))
            .await
            .expect("append");
    }
    // Two records of the same instant are told apart by id.
    history
        .append(record(&partition, base + TimeDelta::milliseconds(28), 5))
        .await
        .expect("append");
    history
        .append(record(&other, base, 99))
        .await
        .expect("append other");

    let oldest = all_pages(history, HistoryQuery::new(&partition)).await;
    assert_eq!(numbers(&oldest), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        oldest[1].time.timestamp_millis(),
        (base + TimeDelta::milliseconds(7)).timestamp_millis(),
        "millisecond precision kept"
    );
    let newest = all_pages(
        history,
        HistoryQuery::new(&partition).order(Order::NewestFirst),
    )
    .await;
    assert_eq!(numbers(&newest), vec![5, 4, 3, 2, 1, 0]);
    let others = all_pages(history, HistoryQuery::new(&other)).await;
    assert_eq!(numbers(&others), vec![99], "partitions are separate");
}

/// `since` is inclusive, `until` exclusive, in both directions.
pub async fn history_range(history: &dyn HistoryStore) {
    let partition = unique("range");
    let base = Utc::now() - TimeDelta::hours(1);
    for n in 0..10 {
        history
            .append(record(&partition, base + TimeDelta::seconds(n as i64), n))
            .await
            .expect("append");
    }
    let window = HistoryQuery::new(&partition)
        .since(base + TimeDelta::seconds(3))
        .until(base + TimeDelta::seconds(7));
    assert_eq!(
        numbers(&all_pages(history, window.clone()).await),
        vec![3, 4, 5, 6]
    );
    assert_eq!(
        numbers(&all_pages(history, window.order(Order::NewestFirst)).await),
        vec![6, 5, 4, 3]
    );
    let tail = HistoryQuery::new(&partition).since(base + TimeDelta::seconds(8));
    assert_eq!(numbers(&all_pages(history, tail).await), vec![8, 9]);
}

/// Paging with continuation tokens returns every record exactly once in order; a limit of
/// N on the newest-first query gives the N most recent records.
pub async fn history_pagination(history: &dyn HistoryStore) {
    let partition = unique("pages");
    let base = Utc::now() - TimeDelta::hours(2);
    for n in 0..23 {
        history
            .append(record(
                &partition,
                base + TimeDelta::milliseconds(n as i64 * 10),
                n,
            ))
            .await
            .expect("append");
    }
    let forward = all_pages(history, HistoryQuery::new(&partition).limit(10)).await;
    assert_eq!(numbers(&forward), (0..23).collect::<Vec<i64>>());
    let backward = all_pages(
        history,
        HistoryQuery::new(&partition)
            .limit(4)
            .order(Order::NewestFirst),
    )
    .await;
    assert_eq!(numbers(&backward), (0..23).rev().collect::<Vec<i64>>());

    let latest = history
        .query(
            HistoryQuery::new(&partition)
                .limit(5)
                .order(Order::NewestFirst),
        )
        .await
        .expect("latest five");
    assert_eq!(numbers(&latest.items), vec![22, 21, 20, 19, 18]);
    assert!(latest.next.is_some(), "more records remain");

    let foreign = history
        .query(HistoryQuery::new(&partition).after(Some(PageToken("not a token!".into()))))
        .await;
    assert!(
        matches!(foreign, Err(Error::InvalidToken { .. })),
        "foreign token: {foreign:?}"
    );
}

/// Expired records are never returned; the expiry of live ones round-trips (to the
/// second, the resolution of DynamoDB TTL).
pub async fn history_ttl(history: &dyn HistoryStore) {
    let partition = unique("ttl");
    let now = Utc::now();
    history
        .append(
            record(&partition, now - TimeDelta::seconds(3), 0)
                .expiring_at(now - TimeDelta::seconds(1)),
        )
        .await
        .expect("append expired");
    let expires = now + TimeDelta::days(30);
    history
        .append(record(&partition, now - TimeDelta::seconds(2), 1).expiring_at(expires))
        .await
        .expect("append expiring");
    history
        .append(record(&partition, now - TimeDelta::seconds(1), 2))
        .await
        .expect("append forever");
    let records = all_pages(history, HistoryQuery::new(&partition)).await;
    assert_eq!(
        numbers(&records),
        vec![1, 2],
        "expired record is not returned"
    );
    assert_eq!(
        records[0].expires_at.map(|at| at.timestamp()),
        Some(expires.timestamp()),
        "expiry round-trips"
    );
    assert_eq!(records[1].expires_at, None);
}

/// Appending a record with an existing `(partition, time, id)` replaces it.
pub async fn history_replace(history: &dyn HistoryStore) {
    let partition = unique("replace");
    let at = Utc::now() - TimeDelta::minutes(1);
    history
        .append(HistoryRecord::new(
            &partition,
            at,
            "session-1",
            json!({"state": "open"}),
        ))
        .await
        .expect("append");
    history
        .append(HistoryRecord::new(
            &partition,
            at,
            "session-1",
            json!({"state": "closed"}),
        ))
        .await
        .expect("replace");
    let records = all_pages(history, HistoryQuery::new(&partition)).await;
    assert_eq!(records.len(), 1, "same key replaces");
    assert_eq!(records[0].data, json!({"state": "closed"}));
}

/// Every [`HistoryStore`] test, one after the other.
pub async fn history_store_suite(history: &dyn HistoryStore) {
    history_ordering(history).await;
    history_range(history).await;
    history_pagination(history).await;
    history_ttl(history).await;
    history_replace(history).await;
}
