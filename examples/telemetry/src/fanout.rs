//! Pushing readings to dashboards at most once per interval, without timers.
//!
//! Each dashboard's record holds its interval and, per device, when it was last sent a
//! reading. When a reading arrives, it is broadcast to every dashboard following the
//! device with a filter: if a dashboard's interval has passed, a conditional update moves
//! "last sent" from the value read to now, and only the invocation whose update succeeds
//! sends. Two invocations handling readings at once can therefore never both push to the
//! same dashboard in one interval.
//!
//! The same update keeps the record bounded: it drops the "last sent" times of devices
//! that have been quiet for their interval plus [`STALE_AFTER_MS`] (those would be due
//! anyway), and beyond [`Telemetry::max_tracked_devices`] the least recently pushed
//! ones. A device id that sends once, or thousands of them minted by a client, cannot
//! grow a dashboard's record without bound.

use chrono::{DateTime, Utc};
use telemetry_protocol::DEFAULT_CLIENT_INTERVAL_MS;
use wsgw_core::{AttributeUpdate, ConnectionId, Context, Error, Payload, Result};

use crate::keys;
use crate::Telemetry;

/// A "last sent" time older than the dashboard's interval plus this is dropped by the
/// next push to the dashboard: 1 minute. Devices reporting more often than that keep
/// their entry (so a push never races the removal of its own entry).
pub const STALE_AFTER_MS: i64 = 60_000;

/// The groups of every dashboard following `device_id`: those following every device
/// and those following this one.
pub(crate) fn followers(device_id: &str) -> [String; 2] {
    [
        keys::CLIENTS_GROUP.to_owned(),
        keys::follow_group(device_id),
    ]
}

/// Pushes `payload` (a reading of `device_id`) to each follower whose interval has
/// passed at `now`, through the context's broadcast: throttled sends are retried, gone
/// dashboards pruned, deliveries and prunes counted.
pub(crate) async fn push_reading(
    ctx: &Context<Telemetry>,
    device_id: &str,
    payload: &Payload,
    now: DateTime<Utc>,
) -> Result<()> {
    let now_ms = now.timestamp_millis();
    let report = ctx
        .broadcast_payload(payload.clone())
        .to_groups(followers(device_id))
        .filter(|client| async move { claim_if_due(ctx, &client, device_id, now_ms).await })
        .await?;
    tracing::debug!(
        device_id,
        sent = report.delivered.len(),
        not_due = report.skipped.len(),
        pruned = report.pruned.len(),
        failed = report.failed.len(),
        "reading pushed"
    );
    Ok(())
}

/// Whether `client` is due a reading of `device_id` at `now_ms`; if so, claims it by
/// moving its "last sent" time from the value read to now with a conditional update, so
/// of two invocations at once only one pushes. `false` when not due, when another
/// invocation claimed it first, or when the dashboard's record is gone.
async fn claim_if_due(
    ctx: &Context<Telemetry>,
    client: &ConnectionId,
    device_id: &str,
    now_ms: i64,
) -> Result<bool> {
    let Some(connection) = ctx.store().get(client).await? else {
        return Ok(false);
    };
    let interval_ms = connection
        .attribute::<i64>(keys::INTERVAL_MS)
        .ok()
        .flatten()
        .unwrap_or(DEFAULT_CLIENT_INTERVAL_MS.into());
    let sent_key = keys::sent_key(device_id);
    let last_sent = connection.attributes.get(&sent_key).cloned();
    if let Some(last_ms) = last_sent.as_ref().and_then(serde_json::Value::as_i64) {
        // A clock that went backwards by more than an interval (another invocation's
        // host) must not silence the dashboard forever.
        let backwards = now_ms < last_ms - interval_ms;
        if now_ms < last_ms + interval_ms && !backwards {
            return Ok(false);
        }
    }
    let mut update = AttributeUpdate::new().set(sent_key.clone(), now_ms);
    for stale in entries_to_drop(
        &connection.attributes,
        &sent_key,
        now_ms,
        interval_ms,
        ctx.state().max_tracked_devices(),
    ) {
        update = update.remove(stale);
    }
    let update = match last_sent {
        Some(value) => update.expect_value(sent_key, value),
        None => update.expect_absent(sent_key),
    };
    match ctx.store().update_attributes(client, update).await {
        Ok(_) => Ok(true),
        // Another invocation pushed first, or the dashboard left.
        Err(Error::Precondition { .. } | Error::NotFound { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The `sent:` entries of a dashboard's attributes to drop while setting `keep`: those
/// stale at `now_ms` (older than `interval_ms` + [`STALE_AFTER_MS`], or not a time), then
/// the least recently pushed until at most `max` remain with `keep`.
fn entries_to_drop(
    attributes: &wsgw_core::Attributes,
    keep: &str,
    now_ms: i64,
    interval_ms: i64,
    max: usize,
) -> Vec<String> {
    let stale_before = now_ms
        .saturating_sub(interval_ms)
        .saturating_sub(STALE_AFTER_MS);
    let mut drop = Vec::new();
    let mut fresh: Vec<(i64, &String)> = Vec::new();
    for (name, value) in attributes {
        if !name.starts_with(keys::SENT_PREFIX) || name == keep {
            continue;
        }
        match value.as_i64() {
            Some(sent_ms) if sent_ms > stale_before => fresh.push((sent_ms, name)),
            _ => drop.push(name.clone()),
        }
    }
    // `keep` takes one place.
    let over = (fresh.len() + 1).saturating_sub(max.max(1));
    if over > 0 {
        fresh.sort_unstable();
        drop.extend(fresh[..over].iter().map(|(_, name)| (*name).clone()));
    }
    drop
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stale_and_excess_entries_are_dropped_and_the_kept_one_never() {
        let attributes: wsgw_core::Attributes = serde_json::from_value(json!({
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
        let mut dropped = entries_to_drop(&attributes, "sent:keep", 101_000, 1000, 3);
        dropped.sort();
        // Stale: quiet (older than 101 000 - 1 000 - 60 000) and garbage; then a, the
        // oldest of a, b and c, so that b, c and keep make 3.
        assert_eq!(dropped, ["sent:a", "sent:garbage", "sent:quiet"]);
        assert!(
            entries_to_drop(&attributes, "sent:keep", 101_000, 1000, 100)
                .iter()
                .all(|name| name != "sent:a")
        );
    }
}
