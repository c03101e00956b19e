//! Who may connect and what they may do, when keys are configured.
//!
//! Auth is off unless device or dashboard keys are set (`--device-keys` /
//! `TELEMETRY_DEVICE_KEYS`, `--dashboard-keys` / `TELEMETRY_DASHBOARD_KEYS`). With keys:
//!
//! - every client presents a key on `$connect` (`?token=KEY` as the firmware sends it,
//!   `Authorization: Bearer KEY`, or the subprotocols `wsgw.bearer, KEY` as the dashboard
//!   page does); no key or an unknown one → 401;
//! - a device key (`esp32-01=KEY`) names its device: it opens only
//!   `?role=device&device_id=esp32-01` (another id or `role=client` → 403), and its
//!   `RealTimeDataUpdate` and `ControlAck` must carry that `device_id`;
//! - a dashboard key (`ada=KEY`, or `ada=KEY=operator` for an operator) opens only
//!   `role=client` (403 otherwise); only operators send a device's `sample_interval_ms`
//!   (`ControlCmd` with `device_id`), others get a `wrong_role` error; any dashboard may
//!   set its own push interval.
//!
//! ```
//! let keys = telemetry::access::authorizer(Some("esp32-01=k-dev-1"), Some("ada=k-ops=operator"))?
//!     .expect("keys are set");
//! assert_eq!(keys.len(), 2);
//! assert!(telemetry::access::authorizer(None, Some(""))?.is_none(), "auth stays off");
//! # Ok::<(), wsgw_core::auth::AuthError>(())
//! ```

use std::collections::BTreeMap;

use wsgw_core::auth::{ApiKeyAuthorizer, AuthError};

/// Environment variable: device keys, `device_id=KEY` separated by commas.
pub const DEVICE_KEYS_ENV: &str = "TELEMETRY_DEVICE_KEYS";
/// Environment variable: dashboard keys, `name=KEY` or `name=KEY=operator`, separated by
/// commas.
pub const DASHBOARD_KEYS_ENV: &str = "TELEMETRY_DASHBOARD_KEYS";

/// The role of every device key.
pub const DEVICE_ROLE: &str = "device";
/// The role of every dashboard key.
pub const CLIENT_ROLE: &str = "client";
/// The role that may change a device's sample interval.
pub const OPERATOR_ROLE: &str = "operator";

/// The `$connect` authorizer for these key lists; `None` (auth off) when both are unset
/// or empty.
pub fn authorizer(
    device_keys: Option<&str>,
    dashboard_keys: Option<&str>,
) -> Result<Option<ApiKeyAuthorizer>, AuthError> {
    let keys = ApiKeyAuthorizer::new()
        .parse(device_keys.unwrap_or(""), &[DEVICE_ROLE])?
        .parse(dashboard_keys.unwrap_or(""), &[CLIENT_ROLE])?;
    Ok((!keys.is_empty()).then_some(keys))
}

/// Device id → key, from a device key list (for simulated devices to present theirs).
pub fn device_tokens(device_keys: &str) -> BTreeMap<String, String> {
    device_keys
        .split([',', '\n'])
        .filter_map(|entry| {
            let mut parts = entry.trim().splitn(3, '=');
            let id = parts.next()?.trim();
            let key = parts.next()?.trim();
            (!id.is_empty() && !key.is_empty()).then(|| (id.to_owned(), key.to_owned()))
        })
        .collect()
}
