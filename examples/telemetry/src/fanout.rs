//! Pushing readings to dashboards at most once per interval, without timers: a paced
//! broadcast ([`wsgw_core::pacing`]) whose receivers are the dashboards following the
//! device and whose sources are device ids.
//!
//! Each dashboard's record holds its interval ([`keys::INTERVAL_MS`]) and, per device,
//! when it was last sent a reading ([`keys::SENT_PREFIX`]); a conditional update claims each
//! push, so two invocations handling readings at once never both push to the same
//! dashboard in one interval. Beyond [`Telemetry::max_tracked_devices`] the least
//! recently pushed devices' times are dropped, and those of devices quiet for a minute
//! past the interval, so a dashboard's record stays bounded.

use chrono::{DateTime, Utc};
use telemetry_protocol::DEFAULT_CLIENT_INTERVAL_MS;
use wsgw_core::pacing::Pacing;
use wsgw_core::{Context, Payload, Result};

use crate::keys;
use crate::Telemetry;

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
    let pacing = Pacing::new(
        keys::INTERVAL_MS,
        keys::SENT_PREFIX,
        DEFAULT_CLIENT_INTERVAL_MS.into(),
    )
    .max_tracked(ctx.state().max_tracked_devices());
    let pacing = &pacing;
    let report = ctx
        .broadcast_payload(payload.clone())
        .to_groups(followers(device_id))
        .filter(|client| async move {
            let store = ctx.store();
            pacing.claim(store, &client, device_id, now_ms).await
        })
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
