//! What a device is told at start-up.

use core::fmt;

use telemetry_protocol::{
    validate_device_id, validate_reset_reason, validate_sample_interval, DeviceId, ResetReason,
    DEFAULT_SAMPLE_INTERVAL_MS,
};

use crate::backoff::BackoffConfig;

/// API Gateway closes a WebSocket connection after 10 minutes without a message.
pub const API_GATEWAY_IDLE_TIMEOUT_MS: u32 = 10 * 60 * 1_000;
/// API Gateway closes every WebSocket connection after 2 hours.
pub const API_GATEWAY_MAX_CONNECTION_MS: u32 = 2 * 60 * 60 * 1_000;

/// A device's settings; [`Config::new`] gives the defaults, `with_*` change them.
///
/// All times are in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The id the device connects and reports with.
    pub device_id: DeviceId,
    /// Sample interval until a `control` message changes it (protocol bounds apply).
    pub sample_interval_ms: u32,
    /// Send a heartbeat when nothing went over the connection for this long. Default
    /// 4 minutes: well inside API Gateway's 10-minute idle timeout even if one
    /// heartbeat is delayed.
    pub heartbeat_interval_ms: u32,
    /// Close and reopen a connection this long after it opened, before API Gateway's
    /// 2-hour limit cuts it mid-message. Default 110 minutes; each connection's
    /// deadline is moved earlier by a random 0–5 % so a fleet does not renew in
    /// lockstep.
    pub max_connection_age_ms: u32,
    /// How reconnect attempts are spaced.
    pub backoff: BackoffConfig,
    /// Readings kept while offline, at most the buffer's capacity `N`; when full, the
    /// oldest is dropped (and counted). `None`: the whole capacity.
    pub buffer_limit: Option<usize>,
    /// Spacing between buffered readings sent after a reconnect, so a backlog does
    /// not arrive as one burst of Lambda invocations. Default 20 ms (50 per second).
    pub backlog_interval_ms: u32,
    /// Readings sent this shortly before a connection drops are sent again after the
    /// reconnect (at least once delivery: a server going away or a dead link can lose
    /// what the last writes handed to TCP). Default 2 s; 0 turns it off.
    pub resend_window_ms: u32,
    /// How long a driver should give one connection attempt (Wi-Fi, DNS, TCP, TLS and
    /// the WebSocket handshake together) before reporting it failed. Default 20 s.
    pub connect_timeout_ms: u32,
    /// Seed of the jitter generator: the firmware passes a hardware random number,
    /// tests a constant.
    pub seed: u64,
    /// How long to wait before trying again when the network is not up yet (no
    /// Wi-Fi or DHCP lease). Default 1 s. Such waits are not failures: the backoff
    /// does not grow.
    pub network_poll_ms: u32,
    /// Why the device started ([`crate::reset_reason`]): sent with the first reading
    /// (again if that reading had to be resent). `None`: not reported.
    pub reset_reason: Option<ResetReason>,
    /// Unix time (ms) the firmware was built: the wall clock never goes below it
    /// ([`crate::WallClock`]). Default 0.
    pub build_time_ms: u64,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Not a valid protocol device id (1–64 of `[A-Za-z0-9_.:-]`).
    DeviceId,
    /// The sample interval is outside the protocol's bounds (250 ms – 1 h).
    SampleInterval,
    /// The heartbeat interval is zero or not inside API Gateway's idle timeout.
    HeartbeatInterval,
    /// The maximum connection age is zero or beyond API Gateway's 2-hour limit.
    MaxConnectionAge,
    /// Not a protocol reset reason (1–32 of `[a-z0-9_]`).
    ResetReason,
    /// A zero buffer limit: every offline reading would be lost.
    BufferLimit,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::DeviceId => "device_id must be 1-64 characters of A-Z a-z 0-9 _ . : -",
            ConfigError::SampleInterval => "the sample interval must be 250 ms - 1 h",
            ConfigError::HeartbeatInterval => {
                "the heartbeat interval must be above 0 and below the 10-minute idle timeout"
            }
            ConfigError::MaxConnectionAge => {
                "the maximum connection age must be above 0 and at most 2 hours"
            }
            ConfigError::BufferLimit => "the offline buffer limit must be at least 1",
            ConfigError::ResetReason => "the reset reason must be 1-32 characters of a-z 0-9 _",
        })
    }
}

impl core::error::Error for ConfigError {}

impl Config {
    /// The defaults for `device_id`.
    pub fn new(device_id: &str) -> Result<Self, ConfigError> {
        validate_device_id(device_id).map_err(|_| ConfigError::DeviceId)?;
        let mut id = DeviceId::new();
        id.push_str(device_id).map_err(|_| ConfigError::DeviceId)?;
        Ok(Config {
            device_id: id,
            sample_interval_ms: DEFAULT_SAMPLE_INTERVAL_MS,
            heartbeat_interval_ms: 4 * 60 * 1_000,
            max_connection_age_ms: 110 * 60 * 1_000,
            backoff: BackoffConfig::default(),
            buffer_limit: None,
            backlog_interval_ms: 20,
            resend_window_ms: 2_000,
            connect_timeout_ms: 20_000,
            seed: 0x5EED_0FDE_C1CE,
            network_poll_ms: 1_000,
            reset_reason: None,
            build_time_ms: 0,
        })
    }

    /// Sets the initial sample interval.
    pub fn with_sample_interval_ms(mut self, ms: u32) -> Self {
        self.sample_interval_ms = ms;
        self
    }

    /// Sets the heartbeat interval.
    pub fn with_heartbeat_interval_ms(mut self, ms: u32) -> Self {
        self.heartbeat_interval_ms = ms;
        self
    }

    /// Sets the maximum connection age.
    pub fn with_max_connection_age_ms(mut self, ms: u32) -> Self {
        self.max_connection_age_ms = ms;
        self
    }

    /// Sets the reconnect backoff.
    pub fn with_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Limits the offline buffer below its capacity.
    pub fn with_buffer_limit(mut self, limit: usize) -> Self {
        self.buffer_limit = Some(limit);
        self
    }

    /// Sets the spacing of backlog readings.
    pub fn with_backlog_interval_ms(mut self, ms: u32) -> Self {
        self.backlog_interval_ms = ms;
        self
    }

    /// Sets the resend window (0: off).
    pub fn with_resend_window_ms(mut self, ms: u32) -> Self {
        self.resend_window_ms = ms;
        self
    }

    /// Sets the connect timeout drivers use.
    pub fn with_connect_timeout_ms(mut self, ms: u32) -> Self {
        self.connect_timeout_ms = ms;
        self
    }

    /// Sets the jitter seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the wait while the network is not up.
    pub fn with_network_poll_ms(mut self, ms: u32) -> Self {
        self.network_poll_ms = ms;
        self
    }

    /// Reports `reason` with the first reading (checked by [`validate`](Self::validate)).
    pub fn with_reset_reason(mut self, reason: &str) -> Self {
        let mut text = ResetReason::new();
        // Too long: left empty, which validate refuses.
        let _ = text.push_str(reason);
        self.reset_reason = Some(text);
        self
    }

    /// Sets the build time (Unix ms), the wall clock's floor.
    pub fn with_build_time_ms(mut self, ms: u64) -> Self {
        self.build_time_ms = ms;
        self
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_device_id(&self.device_id).map_err(|_| ConfigError::DeviceId)?;
        validate_sample_interval(self.sample_interval_ms.into())
            .map_err(|_| ConfigError::SampleInterval)?;
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms >= API_GATEWAY_IDLE_TIMEOUT_MS
        {
            return Err(ConfigError::HeartbeatInterval);
        }
        if self.max_connection_age_ms == 0
            || self.max_connection_age_ms > API_GATEWAY_MAX_CONNECTION_MS
        {
            return Err(ConfigError::MaxConnectionAge);
        }
        if self.buffer_limit == Some(0) {
            return Err(ConfigError::BufferLimit);
        }
        if let Some(reason) = &self.reset_reason {
            validate_reset_reason(reason).map_err(|_| ConfigError::ResetReason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_stay_inside_api_gateways_limits() {
        let config = Config::new("esp32-01").unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.heartbeat_interval_ms * 2 <= API_GATEWAY_IDLE_TIMEOUT_MS);
        assert!(config.max_connection_age_ms < API_GATEWAY_MAX_CONNECTION_MS);
        assert_eq!(config.sample_interval_ms, DEFAULT_SAMPLE_INTERVAL_MS);
    }

    #[test]
    fn invalid_settings_are_refused_with_the_reason() {
        assert_eq!(Config::new("bad id").unwrap_err(), ConfigError::DeviceId);
        assert_eq!(Config::new("").unwrap_err(), ConfigError::DeviceId);
        let ok = Config::new("d").unwrap();
        let cases = [
            (
                ok.clone().with_sample_interval_ms(100),
                ConfigError::SampleInterval,
            ),
            (
                ok.clone().with_heartbeat_interval_ms(0),
                ConfigError::HeartbeatInterval,
            ),
            (
                ok.clone()
                    .with_heartbeat_interval_ms(API_GATEWAY_IDLE_TIMEOUT_MS),
                ConfigError::HeartbeatInterval,
            ),
            (
                ok.clone()
                    .with_max_connection_age_ms(API_GATEWAY_MAX_CONNECTION_MS + 1),
                ConfigError::MaxConnectionAge,
            ),
            (ok.clone().with_buffer_limit(0), ConfigError::BufferLimit),
            (
                ok.clone().with_reset_reason("Panic!"),
                ConfigError::ResetReason,
            ),
            (
                ok.clone().with_reset_reason(&"r".repeat(40)),
                ConfigError::ResetReason,
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error));
        }
    }
}
