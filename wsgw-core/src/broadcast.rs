//! Fan-out: one payload to many connections, with bounded concurrency, pruning of gone
//! connections and retries on throttling.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::{ConnectionId, ConnectionStore, Error, MessageSink, PageRequest, Payload, Result};

/// How [`broadcast`] fans out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Most sends in flight at once.
    pub concurrency: usize,
    /// Attempts per connection when the sink answers `Throttled` or `Timeout` (1 = no
    /// retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each retry, with full jitter.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// Page size when listing a group's members.
    pub page_size: usize,
}

impl Default for BroadcastOptions {
    fn default() -> Self {
        BroadcastOptions {
            concurrency: 64,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
            page_size: 500,
        }
    }
}

impl BroadcastOptions {
    /// Sets the most sends in flight.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets the attempts per connection on throttling.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the first and the largest backoff.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the page size used to list group members.
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    fn backoff_for(&self, retry: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        // Full jitter, so throttled senders do not retry in lockstep. `RandomState` is
        // seeded per instance, which is all the randomness this needs.
        let random = RandomState::new().build_hasher().finish();
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random % nanos.saturating_add(1))
    }
}

/// What happened to each target of a broadcast.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BroadcastReport {
    /// Connections the message reached.
    pub delivered: Vec<ConnectionId>,
    /// Connections that were gone and have been deleted from the store.
    pub pruned: Vec<ConnectionId>,
    /// Connections the message did not reach, with the reason (throttled after every
    /// attempt, payload too large, a gone connection that could not be deleted, ...).
    pub failed: Vec<(ConnectionId, Error)>,
}

impl BroadcastReport {
    /// How many targets there were.
    pub fn attempted(&self) -> usize {
        self.delivered.len() + self.pruned.len() + self.failed.len()
    }

    fn merge(&mut self, other: BroadcastReport) {
        self.delivered.extend(other.delivered);
        self.pruned.extend(other.pruned);
        self.failed.extend(other.failed);
    }
}

enum Outcome {
    Delivered(ConnectionId),
    Pruned(ConnectionId),
    Failed(ConnectionId, Error),
}

async fn send_one(
    store: &dyn ConnectionStore,
    sink: &dyn MessageSink,
    id: ConnectionId,
    payload: &Payload,
    options: &BroadcastOptions,
) -> Outcome {
    let mut attempt = 1;
    loop {
        match sink.send(&id, payload.clone()).await {
            Ok(()) => return Outcome::Delivered(id),
            Err(Error::Gone { .. }) => {
                return match store.delete(&id).await {
                    Ok(_) => {
                        tracing::debug!(connection_id = %id, "pruned gone connection");
                        Outcome::Pruned(id)
                    }
                    Err(error) => Outcome::Failed(id, error),
                };
            }
            Err(error) if error.is_retryable() && attempt < options.max_attempts => {
                tracing::debug!(connection_id = %id, %error, attempt, "retrying send");
                tokio::time::sleep(options.backoff_for(attempt - 1)).await;
                attempt += 1;
            }
            Err(error) => return Outcome::Failed(id, error),
        }
    }
}

/// Sends one payload to every target with at most `options.concurrency` sends in
/// flight.
///
/// - `Gone`: the connection is deleted from `store` and reported as pruned; the other
///   targets still get the message.
/// - `Throttled` and `Timeout`: retried with exponential backoff and full jitter, up to
///   `options.max_attempts` attempts; what still fails then is reported in `failed`.
///   A send that timed out may have arrived all the same, so a retried timeout can
///   deliver a message twice (at least once, never silently dropped).
/// - Anything else: reported in `failed` with its reason.
///
/// ```
/// # use std::sync::Arc;
/// # use wsgw_core::*;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut sink = MockMessageSink::new();
/// sink.expect_send().returning(|id, _| {
///     if id.as_str() == "gone=" {
///         Err(Error::Gone { connection_id: id.clone() })
///     } else {
///         Ok(())
///     }
/// });
/// let mut store = MockConnectionStore::new();
/// store.expect_delete().times(1).returning(|_| Ok(None));
///
/// let targets = ["a=", "gone=", "b="].map(ConnectionId::new);
/// let report = broadcast(&store, &sink, targets, &Payload::text("hi"), &BroadcastOptions::default()).await;
/// assert_eq!(report.delivered.len(), 2);
/// assert_eq!(report.pruned, vec![ConnectionId::new("gone=")]);
/// # }
/// ```
pub async fn broadcast<I>(
    store: &dyn ConnectionStore,
    sink: &dyn MessageSink,
    targets: I,
    payload: &Payload,
    options: &BroadcastOptions,
) -> BroadcastReport
where
    I: IntoIterator<Item = ConnectionId>,
{
    let mut report = BroadcastReport::default();
    let mut outcomes = stream::iter(targets)
        .map(|id| send_one(store, sink, id, payload, options))
        .buffer_unordered(options.concurrency.max(1));
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Outcome::Delivered(id) => report.delivered.push(id),
            Outcome::Pruned(id) => report.pruned.push(id),
            Outcome::Failed(id, error) => {
                tracing::warn!(connection_id = %id, %error, "broadcast delivery failed");
                report.failed.push((id, error));
            }
        }
    }
    report
}

/// Sends one payload to every member of `group`, listing members page by page (a keyed
/// query, never a scan). Fails only if listing the group fails; delivery problems are in
/// the report.
pub async fn broadcast_to_group(
    store: &dyn ConnectionStore,
    sink: &dyn MessageSink,
    group: &str,
    payload: &Payload,
    options: &BroadcastOptions,
) -> Result<BroadcastReport> {
    let mut report = BroadcastReport::default();
    let mut token = None;
    loop {
        let page = store
            .list_group(group, PageRequest::after(options.page_size, token))
            .await?;
        report.merge(broadcast(store, sink, page.items, payload, options).await);
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(report),
        }
    }
}
