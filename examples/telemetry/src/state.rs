//! The application state every handler sees: clock and settings. Readings go to the
//! history store the system is served with.

use std::fmt;
use std::sync::Arc;

use chrono::Duration;
use wsgw_core::auth::ApiKeyAuthorizer;

use crate::access::{CorsOrigins, DeviceSecret};
use wsgw_core::clock::{Clock, SystemClock};

/// How long readings are kept unless configured otherwise: 30 days.
pub const DEFAULT_HISTORY_TTL_DAYS: u32 = 30;

/// How many devices a dashboard's record tracks "last pushed" times for by default
/// (`sent:<device id>` attributes): 256. Beyond that the least recently pushed are
/// dropped (those devices may then be pushed once more within an interval), so device
/// ids minted by the thousand cannot grow a record toward DynamoDB's 400 KB item limit.
pub const DEFAULT_MAX_TRACKED_DEVICES: usize = 256;

/// The telemetry system's state: what time it is, and the settings. Readings are kept in
/// the history store it is served with ([`Context::history`](wsgw_core::Context::history)).
///
/// ```
/// use telemetry::Telemetry;
///
/// let secret = telemetry::access::device_secret("fleet-secret-0123456789abcdef-0123456789")?;
/// let state = Telemetry::new()
///     .with_history_ttl_days(7)
///     .with_device_secret(secret);
/// assert_eq!(state.history_ttl().num_days(), 7);
/// # Ok::<(), telemetry::access::AccessError>(())
/// ```
#[derive(Clone)]
pub struct Telemetry {
    clock: Arc<dyn Clock>,
    history_ttl: Duration,
    device_secret: Option<DeviceSecret>,
    keys: Option<ApiKeyAuthorizer>,
    cors_origins: Option<CorsOrigins>,
    max_tracked_devices: usize,
}

impl Telemetry {
    /// System clock, 30-day TTL, no device secret, no keys, the default CORS origins
    /// (see [`CorsOrigins`]).
    pub fn new() -> Self {
        Telemetry {
            clock: Arc::new(SystemClock),
            history_ttl: Duration::days(DEFAULT_HISTORY_TTL_DAYS.into()),
            device_secret: None,
            keys: None,
            cors_origins: None,
            max_tracked_devices: DEFAULT_MAX_TRACKED_DEVICES,
        }
    }

    /// Uses another clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Keeps readings for `days` days (at least 1).
    pub fn with_history_ttl_days(mut self, days: u32) -> Self {
        self.history_ttl = Duration::days(days.max(1).into());
        self
    }

    /// Devices must connect with their own token derived from this secret
    /// ([`DerivedTokens::token_for`](wsgw_core::auth::DerivedTokens::token_for)); others are refused with 401.
    pub fn with_device_secret(mut self, secret: DeviceSecret) -> Self {
        self.device_secret = Some(secret);
        self
    }

    /// Tracks "last pushed" times for at most `devices` devices per dashboard record
    /// (at least 1; default [`DEFAULT_MAX_TRACKED_DEVICES`]).
    pub fn with_max_tracked_devices(mut self, devices: usize) -> Self {
        self.max_tracked_devices = devices.max(1);
        self
    }

    /// The most devices a dashboard's record tracks.
    pub fn max_tracked_devices(&self) -> usize {
        self.max_tracked_devices
    }

    /// Turns auth on: every client presents one of these keys on `$connect`, and the
    /// rules of [`access`](crate::access) apply.
    pub fn with_keys(mut self, keys: ApiKeyAuthorizer) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The keys, when auth is on.
    pub fn keys(&self) -> Option<&ApiKeyAuthorizer> {
        self.keys.as_ref()
    }

    /// Whether auth is on (keys are set): then routes refuse what no principal may do.
    pub fn auth_required(&self) -> bool {
        self.keys.is_some()
    }

    /// Whether devices prove who they are (keys or a device secret): then only an
    /// operator's key changes a device's sample interval.
    pub fn devices_protected(&self) -> bool {
        self.keys.is_some() || self.device_secret.is_some()
    }

    /// The origins whose pages may call the REST API.
    pub fn with_cors_origins(mut self, origins: CorsOrigins) -> Self {
        self.cors_origins = Some(origins);
        self
    }

    /// The origins whose pages may call the REST API: as set, else any without keys and
    /// none with keys.
    pub fn cors_origins(&self) -> &CorsOrigins {
        static ANY: CorsOrigins = CorsOrigins::Any;
        static NONE: CorsOrigins = CorsOrigins::Only(Vec::new());
        match (&self.cors_origins, self.auth_required()) {
            (Some(origins), _) => origins,
            (None, false) => &ANY,
            (None, true) => &NONE,
        }
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// How long a reading is kept after its time.
    pub fn history_ttl(&self) -> Duration {
        self.history_ttl
    }

    /// The secret devices' tokens are derived from, if set.
    pub fn device_secret(&self) -> Option<&DeviceSecret> {
        self.device_secret.as_ref()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("history_ttl_days", &self.history_ttl.num_days())
            // DerivedTokens' Debug never shows the secret.
            .field("device_secret", &self.device_secret)
            .field("keys", &self.keys.as_ref().map(ApiKeyAuthorizer::len))
            .field("cors_origins", &self.cors_origins())
            .field("max_tracked_devices", &self.max_tracked_devices)
            .finish_non_exhaustive()
    }
}
