//! Who may connect and what they may do.
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
//!   set its own push interval;
//! - the REST API (`/history`, `/devices`) wants a dashboard key as
//!   `Authorization: Bearer KEY` (401 without one, 403 for a device key), and answers
//!   CORS requests only from the configured origins ([`CorsOrigins`]).
//!
//! Without keys, a fleet secret (`--device-secret` / `TELEMETRY_DEVICE_SECRET`,
//! [`DeviceSecret`]) still keeps impostors out of the devices' side: each device
//! presents its own token, derived from the secret and its device id, so a token opens
//! only its own device id. Dashboards and the REST API stay open then, but nobody may
//! change a device's sample interval (there is no operator to ask). Keys and a fleet
//! secret are not combined: with keys, give each device a key.
//!
//! ```
//! let keys = telemetry::access::authorizer(Some("esp32-01=k-dev-1"), Some("ada=k-ops=operator"))?
//!     .expect("keys are set");
//! assert_eq!(keys.len(), 2);
//! assert!(telemetry::access::authorizer(None, Some(""))?.is_none(), "auth stays off");
//! # Ok::<(), wsgw_core::auth::AuthError>(())
//! ```

use std::collections::BTreeMap;

use wsgw_core::auth::{
    key_list, ApiKeyAuthorizer, AuthError, DerivedTokens, MIN_DERIVED_SECRET_BYTES,
};
use wsgw_core::cors::InvalidOrigin;

/// Environment variable: device keys, `device_id=KEY` separated by commas.
pub const DEVICE_KEYS_ENV: &str = "TELEMETRY_DEVICE_KEYS";
/// Environment variable: dashboard keys, `name=KEY` or `name=KEY=operator`, separated by
/// commas.
pub const DASHBOARD_KEYS_ENV: &str = "TELEMETRY_DASHBOARD_KEYS";
/// Environment variable: the fleet secret devices' tokens are derived from
/// ([`DeviceSecret`]).
pub const DEVICE_SECRET_ENV: &str = "TELEMETRY_DEVICE_SECRET";
/// Environment variable of 0.1: one token shared by every device. Refused now (see
/// [`AccessError::SharedDeviceToken`]).
pub const SHARED_DEVICE_TOKEN_ENV: &str = "TELEMETRY_DEVICE_TOKEN";
/// Environment variable: the origins allowed to call the REST API from a browser
/// ([`CorsOrigins`]).
pub const CORS_ORIGIN_ENV: &str = "TELEMETRY_CORS_ORIGIN";

/// The role of every device key.
pub const DEVICE_ROLE: &str = "device";
/// The role of every dashboard key.
pub const CLIENT_ROLE: &str = "client";
/// The role that may change a device's sample interval.
pub const OPERATOR_ROLE: &str = "operator";

/// The shortest fleet secret accepted: 32 bytes, the HMAC-SHA256 key size.
pub const MIN_DEVICE_SECRET_BYTES: usize = MIN_DERIVED_SECRET_BYTES;

/// Why the access settings cannot be used; every message names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A key list is refused.
    #[error(transparent)]
    Keys(#[from] AuthError),
    /// The fleet secret is too short.
    #[error("{var}: the device secret needs at least {min} bytes, this one has {bytes}: use a long random secret (for example `openssl rand -base64 48`)", var = DEVICE_SECRET_ENV)]
    SecretTooShort {
        /// Its length in bytes.
        bytes: usize,
        /// [`MIN_DEVICE_SECRET_BYTES`].
        min: usize,
    },
    /// Keys and a fleet secret at once.
    #[error("{secret} cannot be combined with {devices} or {dashboards}: with keys, give each device a key", secret = DEVICE_SECRET_ENV, devices = DEVICE_KEYS_ENV, dashboards = DASHBOARD_KEYS_ENV)]
    KeysAndSecret,
    /// The 0.1 setting, one token for every device.
    #[error("{old} is no longer read: one token shared by every device let any holder send as any device id. Set {new} to a random secret of 32+ bytes instead and give each device its own token, `telemetry device-token <device id>` (the firmware's DEVICE_TOKEN), or give each device a key ({keys})", old = SHARED_DEVICE_TOKEN_ENV, new = DEVICE_SECRET_ENV, keys = DEVICE_KEYS_ENV)]
    SharedDeviceToken,
    /// An allowed origin that is not one.
    #[error("{var}: {0}", var = CORS_ORIGIN_ENV)]
    Cors(#[from] InvalidOrigin),
}

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

/// Device id → key, from a device key list (for simulated devices to present theirs);
/// malformed entries are left out ([`authorizer`] refuses them).
pub fn device_tokens(device_keys: &str) -> BTreeMap<String, String> {
    key_list(device_keys)
        .filter_map(Result::ok)
        .map(|entry| (entry.principal, entry.key))
        .collect()
}

/// The fleet secret each device's own token is derived from ([`DerivedTokens`], the
/// identity being the device id): a device holds only its token, so a device that leaks
/// it exposes only its own device id.
pub type DeviceSecret = DerivedTokens;

/// The fleet secret given as [`DEVICE_SECRET_ENV`], or what is wrong with it.
///
/// ```
/// let secret = telemetry::access::device_secret("fleet-secret-0123456789abcdef-0123456789")?;
/// let token = secret.token_for("esp32-01");
/// assert!(secret.verify("esp32-01", &token));
/// assert!(!secret.verify("esp32-02", &token), "bound to its device id");
/// let short = telemetry::access::device_secret("s3cret").unwrap_err();
/// assert!(short.to_string().starts_with("TELEMETRY_DEVICE_SECRET: the device secret needs at least 32 bytes"));
/// # Ok::<(), telemetry::access::AccessError>(())
/// ```
pub fn device_secret(secret: &str) -> Result<DeviceSecret, AccessError> {
    DerivedTokens::new(secret).map_err(|error| match error {
        AuthError::DerivedSecretTooShort { bytes, min } => {
            AccessError::SecretTooShort { bytes, min }
        }
        other => AccessError::Keys(other),
    })
}

/// The origins a browser may call the REST API from (`Access-Control-Allow-Origin`):
/// `*` or a comma-separated list, parsed as [`CORS_ORIGIN_ENV`] gives it.
///
/// Unset, it is [`CorsOrigins::Any`] without keys (the data is public then) and no
/// origin at all with keys (the dashboard served by the same origin needs none); see
/// [`Telemetry::cors_origins`](crate::Telemetry::cors_origins).
pub use wsgw_core::cors::CorsOrigins;
