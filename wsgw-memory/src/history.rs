//! `MemoryHistory`: time-ordered records per partition.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use wsgw_core::{Error, HistoryQuery, HistoryRecord, HistoryStore, Order, Page, Result};

use crate::token;

type SortKey = (i64, String);

/// A [`HistoryStore`] in process memory.
///
/// Times are kept to the millisecond, as in DynamoDB, so both backends order alike.
/// Expired records are dropped when their partition is next written.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use chrono::Utc;
/// use wsgw_core::{HistoryQuery, HistoryRecord, HistoryStore};
/// use wsgw_memory::MemoryHistory;
///
/// let history = MemoryHistory::new();
/// history.append(HistoryRecord::new("room:1", Utc::now(), "m1", serde_json::json!("hi"))).await?;
/// let page = history.query(HistoryQuery::new("room:1")).await?;
/// assert_eq!(page.items[0].data, "hi");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryHistory {
    partitions: Mutex<BTreeMap<String, BTreeMap<SortKey, HistoryRecord>>>,
}

impl MemoryHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, BTreeMap<SortKey, HistoryRecord>>> {
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn truncate_to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

fn encode_key((millis, id): &SortKey) -> wsgw_core::PageToken {
    token::encode(&format!("{millis}:{id}"))
}

fn decode_key(token: &wsgw_core::PageToken) -> Result<SortKey> {
    let text = token::decode(token)?;
    let (millis, id) = text.split_once(':').ok_or_else(|| Error::InvalidToken {
        message: format!("`{}` is not a history token", token.0),
    })?;
    let millis = millis.parse().map_err(|_| Error::InvalidToken {
        message: format!("`{}` is not a history token", token.0),
    })?;
    Ok((millis, id.to_owned()))
}

#[async_trait]
impl HistoryStore for MemoryHistory {
    async fn append(&self, mut record: HistoryRecord) -> Result<()> {
        record.time = truncate_to_millis(record.time);
        let now = Utc::now();
        let mut partitions = self.lock();
        let partition = partitions.entry(record.partition.clone()).or_default();
        partition.retain(|_, existing| existing.expires_at.is_none_or(|at| at > now));
        partition.insert((record.time.timestamp_millis(), record.id.clone()), record);
        Ok(())
    }

    async fn query(&self, query: HistoryQuery) -> Result<Page<HistoryRecord>> {
        let after = query.token.as_ref().map(decode_key).transpose()?;
        let lowest: Bound<SortKey> = match query.from {
            Some(from) => Bound::Included((from.timestamp_millis(), String::new())),
            None => Bound::Unbounded,
        };
        let highest: Bound<SortKey> = match query.until {
            Some(until) => Bound::Excluded((until.timestamp_millis(), String::new())),
            None => Bound::Unbounded,
        };
        let (lowest, highest) = match (after, query.order) {
            (Some(key), Order::OldestFirst) => (Bound::Excluded(key), highest),
            (Some(key), Order::NewestFirst) => (lowest, Bound::Excluded(key)),
            (None, _) => (lowest, highest),
        };
        let now = Utc::now();
        let limit = query.limit.max(1);
        let partitions = self.lock();
        let Some(partition) = partitions.get(&query.partition) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        if let (
            Bound::Included(low) | Bound::Excluded(low),
            Bound::Included(high) | Bound::Excluded(high),
        ) = (&lowest, &highest)
        {
            if low > high {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                });
            }
        }
        let range = partition.range((lowest, highest));
        let live =
            |(_, record): &(&SortKey, &HistoryRecord)| record.expires_at.is_none_or(|at| at > now);
        let mut items: Vec<(&SortKey, &HistoryRecord)> = match query.order {
            Order::OldestFirst => range.filter(live).take(limit + 1).collect(),
            Order::NewestFirst => range.rev().filter(live).take(limit + 1).collect(),
        };
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|(key, _)| encode_key(key))
        } else {
            None
        };
        Ok(Page {
            items: items
                .into_iter()
                .map(|(_, record)| record.clone())
                .collect(),
            next,
        })
    }
}
