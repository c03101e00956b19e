//! `ConnectionRecord::close_connection`: `$disconnect`'s part of the connection log.

use chrono::{Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use wsgw_core::connection_log::ConnectionRecord;
use wsgw_core::{Connection, ConnectionId, Request};
use wsgw_memory::MemoryHistory;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    session_id: String,
}

fn session(id: &str) -> Session {
    Session {
        session_id: id.to_owned(),
    }
}

#[tokio::test]
async fn a_connection_gone_from_the_store_is_closed_at_the_events_connect_time() {
    let history = MemoryHistory::new();
    let opened = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let mut request = Request::disconnect(ConnectionId::new("c1"), 1006, "")
        .with_connected_at(opened)
        .with_source_ip("203.0.113.7")
        .with_user_agent("curl/8");
    request.request_time = opened + Duration::seconds(42);

    let closed =
        ConnectionRecord::close_connection(&history, "sessions", &request, None, None, || {
            session("c1")
        })
        .await
        .unwrap()
        .expect("keyed by the event's connectedAt");
    assert_eq!(closed.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(closed.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(
        (closed.duration_seconds, closed.close_code),
        (Some(42), Some(1006))
    );
    let id = ConnectionId::new("c1");
    let stored = ConnectionRecord::<Session>::find(&history, "sessions", &id, opened)
        .await
        .unwrap();
    assert_eq!(stored, Some(closed));
}

#[tokio::test]
async fn the_record_written_on_connect_is_completed_not_replaced() {
    let history = MemoryHistory::new();
    let opened = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let connect = Request::connect(ConnectionId::new("c1")).with_user_agent("browser");
    ConnectionRecord::opened(&connect, opened, session("s1"))
        .store(&history, "sessions", None)
        .await
        .unwrap();
    // The store's record says when it opened; the event's `connectedAt` is not needed.
    let removed = Connection::new(ConnectionId::new("c1"))
        .with_connected_at(opened)
        .with_user_agent("other");
    let mut request = Request::disconnect(ConnectionId::new("c1"), 1000, "bye");
    request.request_time = opened + Duration::seconds(5);

    let closed = ConnectionRecord::close_connection(
        &history,
        "sessions",
        &request,
        Some(&removed),
        None,
        || -> Session { panic!("a record exists: nothing to make") },
    )
    .await
    .unwrap()
    .expect("closed");
    assert_eq!(closed.app, session("s1"));
    assert_eq!(closed.user_agent.as_deref(), Some("browser"));
    assert_eq!(closed.close_reason.as_deref(), Some("bye"));
}
