//! Pushing readings to dashboards at most once per interval, without timers.
//!
//! Each dashboard's record holds its interval and, per device, when it was last sent a
//! reading. When a reading arrives, every dashboard following the device is checked: if
//! its interval has passed, a conditional update moves "last sent" from the value read to
//! now, and only the invocation whose update succeeds sends. Two invocations handling
//! readings at once can therefore never both push to the same dashboard in one interval.

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde_json::Value;
use telemetry_protocol::DEFAULT_CLIENT_INTERVAL_MS;
use wsgw_core::metrics::Counter;
use wsgw_core::{AttributeUpdate, ConnectionId, Context, Error, Payload, Result};

use crate::keys;
use crate::Telemetry;

/// Dashboards checked at once per reading.
const CONCURRENCY: usize = 32;

/// Every dashboard following `device_id`: those following every device and those
/// following this one.
pub(crate) async fn followers(
    ctx: &Context<Telemetry>,
    device_id: &str,
) -> Result<Vec<ConnectionId>> {
    let mut targets = keys::all_members(ctx, keys::CLIENTS_GROUP).await?;
    targets.extend(keys::all_members(ctx, &keys::follow_group(device_id)).await?);
    Ok(targets)
}

/// What happened for one dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    NotDue,
    LostRace,
    /// The dashboard's record was already gone.
    Gone,
    /// The gateway said the dashboard was gone; its record was deleted.
    Pruned,
}

/// Pushes `payload` (a reading of `device_id`) to each follower whose interval has
/// passed at `now`.
pub(crate) async fn push_reading(
    ctx: &Context<Telemetry>,
    device_id: &str,
    payload: &Payload,
    now: DateTime<Utc>,
) -> Result<()> {
    let targets = followers(ctx, device_id).await?;
    let now_ms = now.timestamp_millis();
    let outcomes: Vec<Result<Outcome>> = stream::iter(targets)
        .map(|client| async move { push_if_due(ctx, &client, device_id, payload, now_ms).await })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let (mut sent, mut not_due, mut lost, mut pruned) = (0, 0, 0, 0);
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Sent) => sent += 1,
            Ok(Outcome::NotDue) => not_due += 1,
            Ok(Outcome::LostRace) => lost += 1,
            Ok(Outcome::Pruned) => pruned += 1,
            Ok(Outcome::Gone) => {}
            Err(error) => tracing::warn!(device_id, %error, "could not push a reading"),
        }
    }
    // Counted as broadcast's own deliveries and prunes are (CloudWatch, /metrics).
    ctx.count(Counter::BroadcastDeliveries, sent);
    ctx.count(Counter::GonePrunes, pruned);
    tracing::debug!(device_id, sent, not_due, lost_race = lost, "reading pushed");
    Ok(())
}

async fn push_if_due(
    ctx: &Context<Telemetry>,
    client: &ConnectionId,
    device_id: &str,
    payload: &Payload,
    now_ms: i64,
) -> Result<Outcome> {
    let Some(connection) = ctx.store().get(client).await? else {
        return Ok(Outcome::Gone);
    };
    let interval_ms = connection
        .attributes
        .get(keys::INTERVAL_MS)
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_CLIENT_INTERVAL_MS.into());
    let sent_key = keys::sent_key(device_id);
    let last_sent = connection.attributes.get(&sent_key).cloned();
    if let Some(last_ms) = last_sent.as_ref().and_then(Value::as_i64) {
        // A clock that went backwards by more than an interval (another invocation's
        // host) must not silence the dashboard forever.
        let backwards = now_ms < last_ms - interval_ms;
        if now_ms < last_ms + interval_ms && !backwards {
            return Ok(Outcome::NotDue);
        }
    }
    let update = AttributeUpdate::new().set(sent_key.clone(), now_ms);
    let update = match last_sent {
        Some(value) => update.expect_value(sent_key, value),
        None => update.expect_absent(sent_key),
    };
    match ctx.store().update_attributes(client, update).await {
        Ok(_) => {}
        Err(Error::Precondition { .. }) => return Ok(Outcome::LostRace),
        Err(Error::NotFound { .. }) => return Ok(Outcome::Gone),
        Err(error) => return Err(error),
    }
    match ctx.sink().send(client, payload.clone()).await {
        Ok(()) => Ok(Outcome::Sent),
        Err(error) if error.is_gone() => {
            ctx.store().delete(client).await?;
            Ok(Outcome::Pruned)
        }
        Err(error) => Err(error),
    }
}
