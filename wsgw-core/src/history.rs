//! Append-only, time-ordered records: message history, session history, telemetry.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Page, PageToken, Result};

/// One record in a [`HistoryStore`].
///
/// Records are keyed by `(partition, time, id)`: `partition` groups them (a room, a
/// session, a device), `time` orders them and `id` tells apart records of the same
/// instant. Appending a record with an existing key replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryRecord {
    /// The partition (a room, a session id, a device id).
    pub partition: String,
    /// The sort time (millisecond precision is kept).
    pub time: DateTime<Utc>,
    /// Unique within `(partition, time)`, for example a message id.
    pub id: String,
    /// The record's content.
    pub data: serde_json::Value,
    /// After this instant the record is no longer returned and may be deleted.
    pub expires_at: Option<DateTime<Utc>>,
}

impl HistoryRecord {
    /// A record without expiry.
    pub fn new(
        partition: impl Into<String>,
        time: DateTime<Utc>,
        id: impl Into<String>,
        data: serde_json::Value,
    ) -> Self {
        HistoryRecord {
            partition: partition.into(),
            time,
            id: id.into(),
            data,
            expires_at: None,
        }
    }

    /// Sets the expiry.
    pub fn expiring_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Keeps the record for `retention` after its time (`None`: until deleted), as an
    /// app's retention setting gives it. A retention beyond the calendar keeps it until
    /// deleted too.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wsgw_core::HistoryRecord;
    ///
    /// let at = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
    /// let kept = HistoryRecord::new("messages", at, "m1", "hi".into());
    /// let week = kept.clone().retained_for(Duration::from_secs(7 * 86_400));
    /// assert_eq!(week.expires_at, Some(at + chrono::Duration::days(7)));
    /// assert_eq!(kept.clone().retained_for(None).expires_at, None);
    /// assert_eq!(kept.retained_for(Duration::MAX).expires_at, None);
    /// ```
    pub fn retained_for(self, retention: impl Into<Option<std::time::Duration>>) -> Self {
        let expiry = retention
            .into()
            .and_then(|retention| chrono::Duration::from_std(retention).ok())
            .and_then(|retention| self.time.checked_add_signed(retention));
        match expiry {
            Some(at) => self.expiring_at(at),
            None => self,
        }
    }

    /// The record's data read as `T`, the type the app stored; `None`, with a warning
    /// naming the record, when it does not read as one (written by another version of
    /// the app, or by hand): a reader skips such a record rather than fail on it.
    ///
    /// ```
    /// use wsgw_core::HistoryRecord;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Message {
    ///     text: String,
    /// }
    /// let at = chrono::Utc::now();
    /// let stored = HistoryRecord::new("messages", at, "m1", serde_json::json!({"text": "hi"}));
    /// assert_eq!(stored.data_as::<Message>().map(|message| message.text).as_deref(), Some("hi"));
    /// let edited = HistoryRecord::new("messages", at, "m2", serde_json::json!({"txt": "hi"}));
    /// assert!(edited.data_as::<Message>().is_none());
    /// ```
    pub fn data_as<T: serde::de::DeserializeOwned>(self) -> Option<T> {
        match serde_json::from_value(self.data) {
            Ok(data) => Some(data),
            Err(error) => {
                tracing::warn!(partition = %self.partition, id = %self.id, %error, "skipping an unreadable history record");
                None
            }
        }
    }
}

/// Which way a query walks through time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Order {
    /// Oldest first.
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// A query over one partition.
///
/// ```
/// use chrono::{Duration, Utc};
/// use wsgw_core::{HistoryQuery, Order};
///
/// let last_hour = HistoryQuery::new("esp32-01")
///     .since(Utc::now() - Duration::hours(1))
///     .order(Order::NewestFirst)
///     .limit(50);
/// assert_eq!(last_hour.limit, 50);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistoryQuery {
    /// The partition to read.
    pub partition: String,
    /// Only records at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only records before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// Direction.
    pub order: Order,
    /// Most records in the page.
    pub limit: usize,
    /// Continue after the page that returned this token.
    pub token: Option<PageToken>,
}

impl HistoryQuery {
    /// Every record of the partition, oldest first, 100 per page.
    pub fn new(partition: impl Into<String>) -> Self {
        HistoryQuery {
            partition: partition.into(),
            from: None,
            until: None,
            order: Order::OldestFirst,
            limit: 100,
            token: None,
        }
    }

    /// Only records at or after `from`.
    pub fn since(mut self, from: DateTime<Utc>) -> Self {
        self.from = Some(from);
        self
    }

    /// Only records before `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Sets the direction.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Continues from a token.
    pub fn after(mut self, token: Option<PageToken>) -> Self {
        self.token = token;
        self
    }
}

/// Time-ordered records under a partition key, with optional expiry.
///
/// Implementations: `wsgw_memory::MemoryHistory` and `wsgw_aws::DynamoHistory`. Expired
/// records are never returned, even if the backend has not deleted them yet (DynamoDB's
/// TTL deletes lazily).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Stores a record (replacing one with the same `(partition, time, id)`).
    async fn append(&self, record: HistoryRecord) -> Result<()>;

    /// One page of a partition's records in the query's order and time range.
    async fn query(&self, query: HistoryQuery) -> Result<Page<HistoryRecord>>;
}

#[async_trait]
impl<T: HistoryStore + ?Sized> HistoryStore for Arc<T> {
    async fn append(&self, record: HistoryRecord) -> Result<()> {
        (**self).append(record).await
    }
    async fn query(&self, query: HistoryQuery) -> Result<Page<HistoryRecord>> {
        (**self).query(query).await
    }
}
