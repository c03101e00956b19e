//! Paced fan-out: each receiver gets at most one message per its own interval from each
//! source, without timers, and safely when several invocations fan out at once.
//!
//! Each receiver's connection record holds its interval (an attribute, in milliseconds)
//! and, per source, when it was last sent something (`<prefix><source>`, epoch
//! milliseconds). [`Pacing::claim`] is a [`Broadcast::filter`](crate::Broadcast::filter):
//! if the receiver's interval has passed, a conditional update moves "last sent" from
//! the value read to now, and only the invocation whose update succeeds sends. Two
//! invocations fanning out at once can therefore never both send to the same receiver
//! within one interval.
//!
//! The same update keeps the record bounded: it drops the "last sent" times of sources
//! quiet for the receiver's interval plus [`Pacing::stale_after_ms`] (those would be due
//! anyway), and beyond [`Pacing::max_tracked`] the least recently sent ones. A source id
//! that sends once, or thousands of them minted by a client, cannot grow a receiver's
//! record without bound.

use crate::{AttributeUpdate, Attributes, ConnectionId, ConnectionStore, Error, Result};

/// How a paced fan-out reads and moves its receivers' records; see the
/// [module](self).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use wsgw_core::pacing::Pacing;
/// use wsgw_core::{Connection, ConnectionId, ConnectionStore};
/// use wsgw_memory::MemoryStore;
///
/// let store = MemoryStore::new();
/// let dashboard = ConnectionId::new("d=");
/// store.put(Connection::new(dashboard.clone()).with_attribute("interval_ms", 1000)).await?;
///
/// let pacing = Pacing::new("interval_ms", "sent:", 1000);
/// assert!(pacing.claim(&store, &dashboard, "esp32-01", 10_000).await?, "first: due");
/// assert!(!pacing.claim(&store, &dashboard, "esp32-01", 10_500).await?, "within its interval");
/// assert!(pacing.claim(&store, &dashboard, "esp32-02", 10_500).await?, "another source");
/// assert!(pacing.claim(&store, &dashboard, "esp32-01", 11_000).await?, "an interval later");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    interval_attribute: String,
    last_sent_prefix: String,
    default_interval_ms: i64,
    max_tracked: usize,
    stale_after_ms: i64,
}

/// A "last sent" time older than the receiver's interval plus this is dropped by the
/// next send to the receiver, by default: 1 minute. Sources sending more often keep their
/// entry (so a send never races the removal of its own entry).
pub const DEFAULT_STALE_AFTER_MS: i64 = 60_000;

/// Sources whose "last sent" times a receiver's record keeps, by default: 256.
pub const DEFAULT_MAX_TRACKED: usize = 256;

impl Pacing {
    /// Receivers' intervals in the attribute `interval_attribute` (`default_interval_ms`
    /// when absent or not a number), "last sent" times in `<last_sent_prefix><source>`.
    pub fn new(
        interval_attribute: impl Into<String>,
        last_sent_prefix: impl Into<String>,
        default_interval_ms: i64,
    ) -> Self {
        Pacing {
            interval_attribute: interval_attribute.into(),
            last_sent_prefix: last_sent_prefix.into(),
            default_interval_ms,
            max_tracked: DEFAULT_MAX_TRACKED,
            stale_after_ms: DEFAULT_STALE_AFTER_MS,
        }
    }

    /// Sets how many sources' "last sent" times a receiver's record keeps (at least 1).
    pub fn max_tracked(mut self, sources: usize) -> Self {
        self.max_tracked = sources.max(1);
        self
    }

    /// Sets how long past its interval a quiet source's "last sent" time is kept.
    pub fn stale_after_ms(mut self, ms: i64) -> Self {
        self.stale_after_ms = ms;
        self
    }

    /// The attribute holding when a receiver was last sent something from `source`.
    pub fn last_sent_attribute(&self, source: &str) -> String {
        format!("{}{source}", self.last_sent_prefix)
    }

    /// Whether `receiver` is due a message from `source` at `now_ms`; if so, claims it by
    /// moving its "last sent" time from the value read to now with a conditional update,
    /// so of two invocations at once only one sends. `false` when not due, when another
    /// invocation claimed it first, or when the receiver's record is gone.
    pub async fn claim(
        &self,
        store: &dyn ConnectionStore,
        receiver: &ConnectionId,
        source: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let Some(connection) = store.get(receiver).await? else {
            return Ok(false);
        };
        let interval_ms = connection
            .attribute::<i64>(&self.interval_attribute)
            .ok()
            .flatten()
            .unwrap_or(self.default_interval_ms);
        let sent_key = self.last_sent_attribute(source);
        let last_sent = connection.attributes.get(&sent_key).cloned();
        if let Some(last_ms) = last_sent.as_ref().and_then(serde_json::Value::as_i64) {
            // A clock that went backwards by more than an interval (another invocation's
            // host) must not silence the receiver forever.
            let backwards = now_ms < last_ms - interval_ms;
            if now_ms < last_ms + interval_ms && !backwards {
                return Ok(false);
            }
        }
        let mut update = AttributeUpdate::new().set(sent_key.clone(), now_ms);
        for stale in self.entries_to_drop(&connection.attributes, &sent_key, now_ms, interval_ms) {
            update = update.remove(stale);
        }
        let update = match last_sent {
            Some(value) => update.expect_value(sent_key, value),
            None => update.expect_absent(sent_key),
        };
        match store.update_attributes(receiver, update).await {
            Ok(_) => Ok(true),
            // Another invocation sent first, or the receiver left.
            Err(Error::Precondition { .. } | Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The "last sent" entries of a receiver's attributes to drop while setting `keep`:
    /// those stale at `now_ms` (older than `interval_ms` + the stale margin, or not a
    /// time), then the least recently sent until at most `max_tracked` remain with `keep`.
    fn entries_to_drop(
        &self,
        attributes: &Attributes,
        keep: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Vec<String> {
        let stale_before = now_ms
            .saturating_sub(interval_ms)
            .saturating_sub(self.stale_after_ms);
        let mut drop = Vec::new();
        let mut fresh: Vec<(i64, &String)> = Vec::new();
        for (name, value) in attributes {
            if !name.starts_with(&self.last_sent_prefix) || name == keep {
                continue;
            }
            match value.as_i64() {
                Some(sent_ms) if sent_ms > stale_before => fresh.push((sent_ms, name)),
                _ => drop.push(name.clone()),
            }
        }
        // `keep` takes one place.
        let over = (fresh.len() + 1).saturating_sub(self.max_tracked);
        if over > 0 {
            fresh.sort_unstable();
            drop.extend(fresh[..over].iter().map(|(_, name)| (*name).clone()));
        }
        drop
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stale_and_excess_entries_are_dropped_and_the_kept_one_never() {
        let attributes: Attributes = serde_json::from_value(json!({
            "role": "client",
            "interval_ms": 1000,
            "sent:quiet": 1_000,
            "sent:garbage": "x",
            "sent:a": 100_000,
            "sent:b": 100_500,
            "sent:c": 100_900,
            "sent:keep": 10,
        }))
        .expect("attributes");
        let pacing = Pacing::new("interval_ms", "sent:", 1000);
        let mut dropped =
            pacing
                .clone()
                .max_tracked(3)
                .entries_to_drop(&attributes, "sent:keep", 101_000, 1000);
        dropped.sort();
        // Stale: quiet (older than 101 000 - 1 000 - 60 000) and garbage; then a, the
        // oldest of a, b and c, so that b, c and keep make 3.
        assert_eq!(dropped, ["sent:a", "sent:garbage", "sent:quiet"]);
        assert!(pacing
            .max_tracked(100)
            .entries_to_drop(&attributes, "sent:keep", 101_000, 1000)
            .iter()
            .all(|name| name != "sent:a"));
    }
}
