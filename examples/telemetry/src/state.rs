//! The application state every handler sees: history, clock and settings.

use std::fmt;
use std::sync::Arc;

use chrono::Duration;
use wsgw_core::auth::ApiKeyAuthorizer;
use wsgw_core::HistoryStore;

use crate::clock::{Clock, SystemClock};

/// How long readings are kept unless configured otherwise: 30 days.
pub const DEFAULT_HISTORY_TTL_DAYS: u32 = 30;

/// How far ahead of the server's clock a device's `ts_ms` may be before the server's
/// receive time is used instead: 5 minutes.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// The telemetry system's state: where readings go, what time it is, and the settings.
///
/// ```
/// use std::sync::Arc;
/// use telemetry::Telemetry;
/// use wsgw_memory::MemoryHistory;
///
/// let state = Telemetry::new(Arc::new(MemoryHistory::new()))
///     .with_history_ttl_days(7)
///     .with_device_token("s3cret");
/// assert_eq!(state.history_ttl().num_days(), 7);
/// ```
#[derive(Clone)]
pub struct Telemetry {
    history: Arc<dyn HistoryStore>,
    clock: Arc<dyn Clock>,
    history_ttl: Duration,
    device_token: Option<String>,
    keys: Option<ApiKeyAuthorizer>,
    cors_origin: String,
}

impl Telemetry {
    /// Readings go to `history`; system clock, 30-day TTL, no device token, CORS `*`.
    pub fn new(history: Arc<dyn HistoryStore>) -> Self {
        Telemetry {
            history,
            clock: Arc::new(SystemClock),
            history_ttl: Duration::days(DEFAULT_HISTORY_TTL_DAYS.into()),
            device_token: None,
            keys: None,
            cors_origin: "*".to_owned(),
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

    /// Devices must connect with `&token=<token>`; others are refused with 401.
    pub fn with_device_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.device_token = (!token.is_empty()).then_some(token);
        self
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

    /// The `Access-Control-Allow-Origin` of the REST answers (default `*`).
    pub fn with_cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origin = origin.into();
        self
    }

    /// Where readings are stored.
    pub fn history(&self) -> &dyn HistoryStore {
        &*self.history
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// How long a reading is kept after its time.
    pub fn history_ttl(&self) -> Duration {
        self.history_ttl
    }

    /// The token devices must present, if any.
    pub fn device_token(&self) -> Option<&str> {
        self.device_token.as_deref()
    }

    /// The CORS origin of the REST answers.
    pub fn cors_origin(&self) -> &str {
        &self.cors_origin
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("history_ttl_days", &self.history_ttl.num_days())
            .field("device_token", &self.device_token.as_ref().map(|_| "<set>"))
            .field("keys", &self.keys.as_ref().map(ApiKeyAuthorizer::len))
            .field("cors_origin", &self.cors_origin)
            .finish_non_exhaustive()
    }
}
