//! Fan-out: one payload to many connections, with bounded concurrency, pruning of gone
//! connections and retries on throttling.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};

use crate::{ConnectionId, ConnectionStore, Error, MessageSink, Payload, Result};

/// How a [`Broadcast`](crate::Broadcast) fans out
/// ([`Router::broadcast_options`](crate::Router::broadcast_options)).
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
    /// Connections the broadcast's filter left out
    /// ([`Broadcast::filter`](crate::Broadcast::filter)).
    pub skipped: Vec<ConnectionId>,
    /// Connections the message did not reach, with the reason (throttled after every
    /// attempt, payload too large, a gone connection that could not be deleted, a
    /// filter that failed ...).
    pub failed: Vec<(ConnectionId, Error)>,
}

impl BroadcastReport {
    /// How many targets there were.
    pub fn attempted(&self) -> usize {
        self.delivered.len() + self.pruned.len() + self.skipped.len() + self.failed.len()
    }
}

enum Outcome {
    Delivered(ConnectionId),
    Pruned(ConnectionId),
    Skipped(ConnectionId),
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

/// Decides per target whether a broadcast sends to it.
pub(crate) type Filter<'a> =
    Box<dyn Fn(ConnectionId) -> BoxFuture<'a, Result<bool>> + Send + Sync + 'a>;

/// Sends one payload to every target the stream yields, with at most
/// `options.concurrency` sends in flight, each after `filter` (when given) let it
/// through. What [`Broadcast`](crate::Broadcast) runs; the only fan-out there is, so
/// every broadcast is counted.
///
/// - `Gone`: the connection is deleted from `store` and reported as pruned; the other
///   targets still get the message.
/// - `Throttled` and `Timeout`: retried with exponential backoff and full jitter, up to
///   `options.max_attempts` attempts; what still fails then is reported in `failed`.
///   A send that timed out may have arrived all the same, so a retried timeout can
///   deliver a message twice (at least once, never silently dropped).
/// - Anything else: reported in `failed` with its reason.
///
/// Fails only when the targets cannot be listed (a group's page); delivery problems are
/// in the report.
pub(crate) async fn fan_out(
    store: &dyn ConnectionStore,
    sink: &dyn MessageSink,
    targets: BoxStream<'_, Result<ConnectionId>>,
    payload: &Payload,
    options: &BroadcastOptions,
    filter: Option<&Filter<'_>>,
) -> Result<BroadcastReport> {
    let mut report = BroadcastReport::default();
    let mut listing_failed = None;
    let mut outcomes = targets
        .map(|target| async move {
            let id = target?;
            if let Some(filter) = filter {
                match filter(id.clone()).await {
                    Ok(true) => {}
                    Ok(false) => return Ok(Outcome::Skipped(id)),
                    Err(error) => return Ok(Outcome::Failed(id, error)),
                }
            }
            Ok(send_one(store, sink, id, payload, options).await)
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Ok(Outcome::Delivered(id)) => report.delivered.push(id),
            Ok(Outcome::Pruned(id)) => report.pruned.push(id),
            Ok(Outcome::Skipped(id)) => report.skipped.push(id),
            Ok(Outcome::Failed(id, error)) => {
                tracing::warn!(connection_id = %id, %error, "broadcast delivery failed");
                report.failed.push((id, error));
            }
            Err(error) => listing_failed = Some(error),
        }
    }
    match listing_failed {
        Some(error) => Err(error),
        None => Ok(report),
    }
}
