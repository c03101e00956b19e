//! A log of connections: one record per connection in a history partition, written on
//! `$connect` and completed on `$disconnect` with when it ended, how long it lasted and
//! how it was closed — who was connected when, for support and audits.
//!
//! A [`ConnectionRecord`] carries what the gateway tells about every connection (its
//! address, its `User-Agent`, its close code and reason); the app adds its own fields
//! (a session, a user, a room) as `T`, flattened into the same JSON object. Beside it,
//! [`append_event`] keeps an audit log of what happened (connects, messages, refusals)
//! in a partition of its own.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wsgw_core::Result<()> {
//! use chrono::{Duration, TimeZone, Utc};
//! use serde::{Deserialize, Serialize};
//! use wsgw_core::connection_log::ConnectionRecord;
//! use wsgw_core::{ConnectionId, DisconnectInfo, HistoryStore, HistoryStoreExt};
//! use wsgw_memory::MemoryHistory;
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Room {
//!     room: String,
//! }
//!
//! let history = MemoryHistory::new();
//! let opened = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
//! // $connect
//! let record = ConnectionRecord::new("c1", opened, Room { room: "lobby".into() });
//! history.append(record.to_history("connections", None)?).await?;
//! // $disconnect, 95 s later
//! let id = ConnectionId::new("c1");
//! let mut record = ConnectionRecord::<Room>::find(&history, "connections", &id, opened)
//!     .await?
//!     .expect("written on $connect");
//! let close = DisconnectInfo { status_code: 1001, reason: "going away".into() };
//! record.complete(opened + Duration::seconds(95), Some(&close));
//! history.append(record.to_history("connections", None)?).await?;
//!
//! let stored = history.find("connections", opened, "c1").await?.expect("stored").data;
//! assert_eq!(stored["room"], "lobby");
//! assert_eq!(stored["duration_seconds"], 95);
//! assert_eq!(stored["close_code"], 1001);
//! assert_eq!(stored["disconnected_at"], "2026-11-22T09:01:35.000Z");
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ids::{rfc3339_millis, time_ordered_id};
use crate::{
    Connection, ConnectionId, DisconnectInfo, HistoryRecord, HistoryStore, HistoryStoreExt, Request,
};

/// One connection's record, keyed `(connected_at, connection_id)` in its partition; `T`
/// holds the app's own fields, serialised beside these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord<T> {
    /// The connection.
    pub connection_id: String,
    /// The app's fields, flattened into the record's JSON object.
    #[serde(flatten)]
    pub app: T,
    /// The client's address as the gateway saw it.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// When it connected (RFC 3339 UTC, milliseconds).
    pub connected_at: String,
    /// When it disconnected (RFC 3339 UTC, milliseconds); absent while connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<String>,
    /// Whole seconds between connecting and disconnecting; absent while connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// The WebSocket close code (1000 normal, 1001 going away, 1006 dropped ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    /// The close reason, absent when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
}

impl<T> ConnectionRecord<T> {
    /// The record of connection `connection_id`, opened at `connected_at`, with no
    /// address or `User-Agent` known.
    pub fn new(connection_id: impl Into<String>, connected_at: DateTime<Utc>, app: T) -> Self {
        ConnectionRecord {
            connection_id: connection_id.into(),
            app,
            source_ip: None,
            user_agent: None,
            connected_at: rfc3339_millis(connected_at),
            disconnected_at: None,
            duration_seconds: None,
            close_code: None,
            close_reason: None,
        }
    }

    /// The record of the connection a `$connect` request opens at `connected_at`, with
    /// the client's address and `User-Agent`.
    ///
    /// ```
    /// use wsgw_core::connection_log::ConnectionRecord;
    /// use wsgw_core::{ConnectionId, Request};
    ///
    /// let connect = Request::connect(ConnectionId::new("c1"))
    ///     .with_source_ip("203.0.113.7")
    ///     .with_user_agent("curl/8");
    /// let record = ConnectionRecord::opened(&connect, connect.request_time, ());
    /// assert_eq!(record.connection_id, "c1");
    /// assert_eq!(record.source_ip.as_deref(), Some("203.0.113.7"));
    /// assert_eq!(record.user_agent.as_deref(), Some("curl/8"));
    /// ```
    pub fn opened(request: &Request, connected_at: DateTime<Utc>, app: T) -> Self {
        ConnectionRecord {
            source_ip: request.source_ip.clone(),
            user_agent: request.user_agent.clone(),
            ..ConnectionRecord::new(request.connection_id.as_str(), connected_at, app)
        }
    }

    /// `connected_at` parsed back: the record's sort time (the epoch when unreadable,
    /// which only a hand-edited record can be).
    pub fn connected_at_time(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.connected_at)
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// Completes the record: `disconnected_at`, `duration_seconds` (never negative), and
    /// the close code and reason when the gateway told them.
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use wsgw_core::connection_log::ConnectionRecord;
    ///
    /// let opened = Utc::now();
    /// let mut record = ConnectionRecord::new("c1", opened, ());
    /// record.complete(opened + Duration::milliseconds(2_500), None);
    /// assert_eq!(record.duration_seconds, Some(2));
    /// assert_eq!(record.close_code, None);
    /// ```
    pub fn complete(&mut self, disconnected_at: DateTime<Utc>, close: Option<&DisconnectInfo>) {
        let duration = disconnected_at - self.connected_at_time();
        self.disconnected_at = Some(rfc3339_millis(disconnected_at));
        self.duration_seconds = Some(duration.num_seconds().max(0));
        self.close_code = close.map(|close| close.status_code);
        self.close_reason = close
            .map(|close| close.reason.clone())
            .filter(|reason| !reason.is_empty());
    }
}

impl<T: Serialize> ConnectionRecord<T> {
    /// The record as a history record of `partition`, keyed `(connected_at,
    /// connection_id)` (so writing it again replaces it), kept for `retention` (`None`:
    /// until deleted).
    pub fn to_history(
        &self,
        partition: &str,
        retention: Option<Duration>,
    ) -> crate::Result<HistoryRecord> {
        let data = serde_json::to_value(self)?;
        let time = self.connected_at_time();
        Ok(
            HistoryRecord::new(partition, time, self.connection_id.clone(), data)
                .retained_for(retention),
        )
    }
}

impl<T: Serialize> ConnectionRecord<T> {
    /// Writes the record to `partition` of `history` ([`to_history`](Self::to_history)),
    /// replacing an earlier write of the same connection.
    pub async fn store(
        &self,
        history: &dyn HistoryStore,
        partition: &str,
        retention: Option<Duration>,
    ) -> crate::Result<()> {
        history.append(self.to_history(partition, retention)?).await
    }
}

impl<T: Serialize + DeserializeOwned> ConnectionRecord<T> {
    /// `$disconnect`'s part of the log: the record of the connection that `request`
    /// reports closed, opened at `connected_at`, completed with the request's time and
    /// close code ([`complete`](Self::complete)) and stored again for `retention`.
    ///
    /// A record is written even when there is none to complete (its `$connect` write
    /// failed, or it expired): `missing` makes it, from what the app still knows of the
    /// connection. The completed record is returned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use chrono::{Duration, TimeZone, Utc};
    /// use wsgw_core::connection_log::ConnectionRecord;
    /// use wsgw_core::{ConnectionId, HistoryStoreExt, Request};
    /// use wsgw_memory::MemoryHistory;
    ///
    /// #[derive(Debug, serde::Serialize, serde::Deserialize)]
    /// struct Room {
    ///     room: String,
    /// }
    /// let room = |name: &str| Room { room: name.to_owned() };
    ///
    /// let history = MemoryHistory::new();
    /// let opened = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    /// let connect = Request::connect(ConnectionId::new("c1")).with_source_ip("203.0.113.7");
    /// ConnectionRecord::opened(&connect, opened, room("lobby"))
    ///     .store(&history, "connections", None)
    ///     .await?;
    ///
    /// let mut disconnect = Request::disconnect(ConnectionId::new("c1"), 1000, "bye");
    /// disconnect.request_time = opened + Duration::seconds(30);
    /// let closed = ConnectionRecord::close(&history, "connections", &disconnect, opened, None, || {
    ///     ConnectionRecord::new("c1", opened, room("unknown"))
    /// })
    /// .await?;
    /// assert_eq!(closed.app.room, "lobby", "the record written on $connect, completed");
    /// assert_eq!(closed.source_ip.as_deref(), Some("203.0.113.7"));
    /// assert_eq!(closed.duration_seconds, Some(30));
    /// let stored = history.find("connections", opened, "c1").await?.expect("stored").data;
    /// assert_eq!((stored["close_code"].as_u64(), stored["close_reason"].as_str()), (Some(1000), Some("bye")));
    ///
    /// // A connection whose record is missing gets one now, made by `missing`.
    /// let mut lost = Request::disconnect(ConnectionId::new("c2"), 1006, "");
    /// lost.request_time = opened + Duration::seconds(5);
    /// let written = ConnectionRecord::close(&history, "connections", &lost, opened, None, || {
    ///     ConnectionRecord::new("c2", opened, room("unknown"))
    /// })
    /// .await?;
    /// assert_eq!((written.app.room.as_str(), written.duration_seconds), ("unknown", Some(5)));
    /// let stored = history.find("connections", opened, "c2").await?.expect("written").data;
    /// assert_eq!(stored["close_code"], 1006);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(
        history: &dyn HistoryStore,
        partition: &str,
        request: &Request,
        connected_at: DateTime<Utc>,
        retention: Option<Duration>,
        missing: impl FnOnce() -> Self + Send,
    ) -> crate::Result<Self> {
        let id = &request.connection_id;
        let found = Self::find(history, partition, id, connected_at).await?;
        let mut record = found.unwrap_or_else(|| {
            tracing::warn!(connection_id = %id, partition, "no connection record to complete; writing one");
            missing()
        });
        record.complete(request.request_time, request.disconnect.as_ref());
        record.store(history, partition, retention).await?;
        Ok(record)
    }
}

impl<T: Serialize + DeserializeOwned> ConnectionRecord<T> {
    /// `$disconnect`'s part of the log for a connection the app has just removed from its
    /// store (`removed`; `None` when it was gone already, pruned or expired):
    /// [`close`](Self::close) at its connect time, the stored one, else the event's
    /// `connectedAt`. A record missing then is made from what is known: the address and
    /// `User-Agent` of the stored connection (else of the request) and `app()`.
    ///
    /// `Ok(None)` when neither tells the connect time (logged): no record can be keyed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use chrono::{Duration, Utc};
    /// use wsgw_core::connection_log::ConnectionRecord;
    /// use wsgw_core::{Connection, ConnectionId, Request};
    /// use wsgw_memory::MemoryHistory;
    ///
    /// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    /// struct Room {
    ///     room: String,
    /// }
    /// let unknown = || Room { room: "unknown".to_owned() };
    ///
    /// let history = MemoryHistory::new();
    /// let opened = Utc::now();
    /// let removed = Connection::new(ConnectionId::new("c1"))
    ///     .with_connected_at(opened)
    ///     .with_source_ip("203.0.113.7");
    /// let mut disconnect = Request::disconnect(ConnectionId::new("c1"), 1001, "");
    /// disconnect.request_time = opened + Duration::seconds(9);
    /// let closed = ConnectionRecord::close_connection(&history, "connections", &disconnect, Some(&removed), None, unknown)
    ///     .await?
    ///     .expect("the connect time is known");
    /// assert_eq!((closed.app, closed.source_ip.as_deref()), (unknown(), Some("203.0.113.7")));
    /// assert_eq!(closed.duration_seconds, Some(9));
    ///
    /// // Gone from the store, and an event without `connectedAt`: nothing to key a record by.
    /// let lost = Request::disconnect(ConnectionId::new("c2"), 1006, "");
    /// let closed = ConnectionRecord::close_connection(&history, "connections", &lost, None, None, unknown);
    /// assert_eq!(closed.await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close_connection(
        history: &dyn HistoryStore,
        partition: &str,
        request: &Request,
        removed: Option<&Connection>,
        retention: Option<Duration>,
        app: impl FnOnce() -> T + Send,
    ) -> crate::Result<Option<Self>> {
        let id = &request.connection_id;
        let Some(connected_at) = removed.map(|c| c.connected_at).or(request.connected_at) else {
            tracing::warn!(connection_id = %id, partition, "connect time unknown: connection record not completed");
            return Ok(None);
        };
        let missing = || ConnectionRecord {
            source_ip: removed
                .and_then(|c| c.source_ip.clone())
                .or_else(|| request.source_ip.clone()),
            user_agent: removed
                .and_then(|c| c.user_agent.clone())
                .or_else(|| request.user_agent.clone()),
            ..ConnectionRecord::new(id.as_str(), connected_at, app())
        };
        Self::close(
            history,
            partition,
            request,
            connected_at,
            retention,
            missing,
        )
        .await
        .map(Some)
    }
}

impl<T: DeserializeOwned> ConnectionRecord<T> {
    /// The record of connection `id` opened at `connected_at` in `partition`, if there
    /// is one; a record that does not read as a `ConnectionRecord<T>` is logged and
    /// taken as missing (the caller writes a new one).
    pub async fn find(
        history: &dyn HistoryStore,
        partition: &str,
        id: &ConnectionId,
        connected_at: DateTime<Utc>,
    ) -> crate::Result<Option<Self>> {
        let found = history.find(partition, connected_at, id.as_str()).await?;
        Ok(found.and_then(HistoryRecord::data_as))
    }
}

/// Appends `event` to the audit log `partition` at `time`, kept for `retention` (`None`:
/// until deleted), under a [time-ordered id](time_ordered_id) so that events of one
/// millisecond keep their order. A failure is logged, not returned: the action the event
/// records has already happened, and what the caller is answered must not depend on its
/// log.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use futures::TryStreamExt;
/// use serde_json::json;
/// use wsgw_core::connection_log::append_event;
/// use wsgw_core::{HistoryQuery, HistoryStoreExt};
/// use wsgw_memory::MemoryHistory;
///
/// let history = MemoryHistory::new();
/// let at = chrono::Utc::now();
/// append_event(&history, "events", at, &json!({"event": "connect", "connection_id": "c1"}), None).await;
/// append_event(&history, "events", at, &json!({"event": "message", "connection_id": "c1"}), None).await;
/// let logged: Vec<_> = history.records(HistoryQuery::new("events")).try_collect().await?;
/// assert_eq!(logged[0].data["event"], "connect", "same millisecond, still in order");
/// assert_eq!(logged[1].data["event"], "message");
/// # Ok(())
/// # }
/// ```
pub async fn append_event<E: Serialize + ?Sized>(
    history: &dyn HistoryStore,
    partition: &str,
    time: DateTime<Utc>,
    event: &E,
    retention: Option<Duration>,
) {
    let data = match serde_json::to_value(event) {
        Ok(data) => data,
        Err(error) => {
            tracing::error!(%error, partition, "cannot serialise an audit event");
            return;
        }
    };
    let record = HistoryRecord::new(partition, time, time_ordered_id(time), data.clone())
        .retained_for(retention);
    if let Err(error) = history.append(record).await {
        tracing::error!(%error, partition, event = %data, "audit event not stored");
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Session {
        session_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_apps_fields_sit_beside_the_gateways_in_one_json_object_and_read_back() {
        let session = Session {
            session_id: "s1".into(),
            name: None,
        };
        let mut record = ConnectionRecord::new("c1", at(0), session.clone());
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            json!({"connection_id": "c1", "session_id": "s1", "source_ip": null, "connected_at": "2026-11-18T11:06:40.000Z"})
        );
        let close = DisconnectInfo {
            status_code: 1006,
            reason: String::new(),
        };
        record.complete(at(61), Some(&close));
        let data = serde_json::to_value(&record).unwrap();
        assert_eq!(data["duration_seconds"], 61);
        assert_eq!(data["close_code"], 1006);
        assert!(
            data.get("close_reason").is_none(),
            "an empty reason is left out"
        );
        let back: ConnectionRecord<Session> = serde_json::from_value(data).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_disconnect_before_the_connect_time_lasts_zero_seconds() {
        let mut record = ConnectionRecord::new("c1", at(10), ());
        record.complete(at(5), None);
        assert_eq!(record.duration_seconds, Some(0));
    }

    #[test]
    fn the_history_record_is_keyed_by_connect_time_and_connection_and_kept_for_the_retention() {
        let record = ConnectionRecord::new("c1", at(0), ());
        let history = record
            .to_history("sessions", Some(Duration::from_secs(3_600)))
            .unwrap();
        assert_eq!(
            (
                history.partition.as_str(),
                history.time,
                history.id.as_str()
            ),
            ("sessions", at(0), "c1")
        );
        assert_eq!(history.expires_at, Some(at(3_600)));
    }

    #[tokio::test]
    async fn an_event_the_history_refuses_is_not_the_callers_error() {
        let mut history = crate::MockHistoryStore::new();
        history
            .expect_append()
            .withf(|record| record.partition == "events" && record.data["event"] == "connect")
            .times(1)
            .returning(|_| Err(crate::Error::invalid_input("the table is gone")));
        // Returns (), and does not panic: the failure is in the log.
        append_event(
            &history,
            "events",
            at(0),
            &json!({"event": "connect"}),
            None,
        )
        .await;
    }
}
