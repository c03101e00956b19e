//! Simulated ESP32 telemetry devices that run the firmware's own logic.
//!
//! Each simulated device is a [`telemetry_device::Device`] — the very state machine the
//! ESP32-C3 firmware runs — driven by tokio and a `tokio-tungstenite` WebSocket client
//! instead of esp-hal and embassy-net. It samples drifting sensors
//! (`temperature_c`, `humidity_pct`, `rssi_dbm`, `uptime_s`), sends
//! `RealTimeDataUpdate`s, obeys `{"type":"control",…}` and acknowledges it, sends
//! heartbeats, renews its connection before API Gateway's 2-hour limit, reconnects
//! with jittered exponential backoff and buffers readings while offline, sending them
//! in order after the reconnect.
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() -> Result<(), telemetry_simulator::SimulatorError> {
//! use telemetry_simulator::{run_devices, SimulatorConfig};
//!
//! let config = SimulatorConfig::new("ws://127.0.0.1:8080", 3);
//! let reports = run_devices(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! for report in reports {
//!     println!("{}: {} readings sent", report.device_id, report.stats.readings_sent);
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod cli;
mod run;
mod sensor;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use telemetry_device::{BackoffConfig, Config, ConfigError, Endpoint, Stats, UrlError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wsgw_core::auth::DerivedTokens;

pub use sensor::Sensors;
pub use telemetry_device;

/// Readings one simulated device keeps while offline (the firmware keeps fewer: RAM).
pub const BUFFER_CAPACITY: usize = 1_024;

/// What to simulate; [`SimulatorConfig::new`] gives the firmware's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorConfig {
    /// `ws://HOST[:PORT][/STAGE]` or `wss://…` (an API Gateway URL).
    pub url: String,
    /// How many devices.
    pub devices: usize,
    /// Device ids are this prefix and a two-digit number from 01: `sim-01`, `sim-02` …
    pub id_prefix: String,
    /// Sent as `?token=` when the gateway wants one.
    pub token: Option<String>,
    /// Per-device tokens (device id → token), sent as `?token=` instead of `token`.
    pub tokens: BTreeMap<String, String>,
    /// Sample interval until a `control` message changes it.
    pub sample_interval_ms: u32,
    /// Seed of device `i` is `seed + i`: same seed, same readings and jitter.
    pub seed: u64,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// See [`Config::heartbeat_interval_ms`].
    pub heartbeat_interval_ms: u32,
    /// See [`Config::max_connection_age_ms`].
    pub max_connection_age_ms: u32,
    /// Offline readings kept, at most [`BUFFER_CAPACITY`].
    pub buffer_limit: usize,
    /// See [`Config::backlog_interval_ms`].
    pub backlog_interval_ms: u32,
    /// See [`Config::resend_window_ms`].
    pub resend_window_ms: u32,
    /// See [`Config::connect_timeout_ms`].
    pub connect_timeout_ms: u32,
}

impl SimulatorConfig {
    /// `devices` devices against `url`, with the firmware's defaults.
    pub fn new(url: impl Into<String>, devices: usize) -> Self {
        let defaults = Config::new("sim").expect("a valid id");
        SimulatorConfig {
            url: url.into(),
            devices,
            id_prefix: "sim-".to_owned(),
            token: None,
            tokens: BTreeMap::new(),
            sample_interval_ms: defaults.sample_interval_ms,
            seed: 1,
            backoff: defaults.backoff,
            heartbeat_interval_ms: defaults.heartbeat_interval_ms,
            max_connection_age_ms: defaults.max_connection_age_ms,
            buffer_limit: BUFFER_CAPACITY,
            backlog_interval_ms: defaults.backlog_interval_ms,
            resend_window_ms: defaults.resend_window_ms,
            connect_timeout_ms: defaults.connect_timeout_ms,
        }
    }

    /// The id of device `index` (from 0).
    pub fn device_id(&self, index: usize) -> String {
        format!("{}{:02}", self.id_prefix, index + 1)
    }

    /// Each device presents what `credentials` give it: the token derived from the fleet
    /// secret for its id, else its key (devices with neither present [`token`](Self::token)).
    ///
    /// ```
    /// use telemetry_simulator::{Credentials, SimulatorConfig};
    /// use wsgw_core::auth::DerivedTokens;
    ///
    /// let secret = DerivedTokens::new("fleet-secret-0123456789abcdef-0123456789")?;
    /// let credentials = Credentials { secret: Some(secret.clone()), ..Credentials::default() };
    /// let config = SimulatorConfig::new("ws://127.0.0.1:8080", 2).with_credentials(&credentials);
    /// assert_eq!(config.tokens["sim-02"], secret.token_for("sim-02"));
    /// # Ok::<(), wsgw_core::auth::AuthError>(())
    /// ```
    pub fn with_credentials(mut self, credentials: &Credentials) -> Self {
        self.tokens = credentials.keys.clone();
        if let Some(secret) = &credentials.secret {
            for index in 0..self.devices {
                let id = self.device_id(index);
                let token = secret.token_for(&id);
                self.tokens.insert(id, token);
            }
        }
        self
    }

    /// The device logic's settings for device `index`.
    pub fn device_config(&self, index: usize) -> Result<Config, SimulatorError> {
        let id = self.device_id(index);
        let config = Config::new(&id)
            .map_err(|source| SimulatorError::Config {
                device_id: id.clone(),
                source,
            })?
            .with_sample_interval_ms(self.sample_interval_ms)
            .with_backoff(self.backoff)
            .with_heartbeat_interval_ms(self.heartbeat_interval_ms)
            .with_max_connection_age_ms(self.max_connection_age_ms)
            .with_buffer_limit(self.buffer_limit.min(BUFFER_CAPACITY))
            .with_backlog_interval_ms(self.backlog_interval_ms)
            .with_resend_window_ms(self.resend_window_ms)
            .with_connect_timeout_ms(self.connect_timeout_ms)
            .with_seed(self.seed.wrapping_add(index as u64));
        config.validate().map_err(|source| SimulatorError::Config {
            device_id: id,
            source,
        })?;
        Ok(config)
    }

    /// The URL device `index` connects to, built exactly as the firmware builds it.
    pub fn device_url(&self, index: usize) -> Result<String, SimulatorError> {
        let endpoint = Endpoint::parse(&self.url).map_err(|source| SimulatorError::Url {
            url: self.url.clone(),
            source,
        })?;
        let url_error = |source| SimulatorError::Url {
            url: self.url.clone(),
            source,
        };
        let id = self.device_id(index);
        let target = endpoint
            .device_target(
                &id,
                self.tokens
                    .get(&id)
                    .or(self.token.as_ref())
                    .map(String::as_str),
            )
            .map_err(url_error)?;
        let host = endpoint.host_header().map_err(url_error)?;
        let scheme = if endpoint.tls { "wss" } else { "ws" };
        Ok(format!("{scheme}://{host}{target}"))
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatorError {
    /// The gateway URL is not usable.
    #[error("invalid gateway URL {url:?}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        source: UrlError,
    },
    /// A device's settings are invalid.
    #[error("invalid settings for device {device_id}: {source}")]
    Config {
        /// The device.
        device_id: String,
        /// What is wrong.
        source: ConfigError,
    },
}

/// What simulated devices present to a gateway that checks who they are: their own keys
/// (device id → key, as the gateway's key list has them), or the tokens derived from the
/// fleet secret for their ids ([`DerivedTokens`]).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Device id → key.
    pub keys: BTreeMap<String, String>,
    /// The fleet secret the devices' own tokens are derived from.
    pub secret: Option<DerivedTokens>,
}

/// How one simulated device is doing, updated after every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    /// Its id.
    pub device_id: String,
    /// Its counters.
    pub stats: Stats,
    /// Its sample interval now.
    pub sample_interval_ms: u32,
    /// Whether it is connected now.
    pub online: bool,
}

/// Running simulated devices; stop them with [`Simulator::shutdown`].
#[derive(Debug)]
pub struct Simulator {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    reports: Vec<Arc<Mutex<DeviceReport>>>,
}

impl Simulator {
    /// Starts every device of `config` on the current tokio runtime.
    pub fn start(config: SimulatorConfig) -> Result<Self, SimulatorError> {
        let shutdown = CancellationToken::new();
        let mut plans = Vec::with_capacity(config.devices);
        for index in 0..config.devices {
            plans.push(run::Plan {
                device_id: config.device_id(index),
                config: config.device_config(index)?,
                url: config.device_url(index)?,
                sensor_seed: config.seed.wrapping_add(index as u64),
            });
        }
        let mut tasks = JoinSet::new();
        let mut reports = Vec::with_capacity(plans.len());
        for plan in plans {
            let report = Arc::new(Mutex::new(DeviceReport {
                device_id: plan.device_id.clone(),
                stats: Stats::default(),
                sample_interval_ms: plan.config.sample_interval_ms,
                online: false,
            }));
            reports.push(report.clone());
            tasks.spawn(run::device(plan, report, shutdown.clone()));
        }
        Ok(Simulator {
            shutdown,
            tasks,
            reports,
        })
    }

    /// How each device is doing now, in device order.
    pub fn reports(&self) -> Vec<DeviceReport> {
        self.reports
            .iter()
            .map(|report| lock(report).clone())
            .collect()
    }

    /// Closes every device's connection (close code 1000) and waits for them to stop;
    /// returns their final reports.
    pub async fn shutdown(mut self) -> Vec<DeviceReport> {
        self.shutdown.cancel();
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "a simulated device task failed");
            }
        }
        self.reports()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs the devices of `config` until `shutdown` completes, then stops them cleanly and
/// returns their reports. This is what `telemetry simulate` and the
/// `telemetry-simulator` binary call ([`cli::run_until_stopped`]).
pub async fn run_devices(
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Vec<DeviceReport>, SimulatorError> {
    let simulator = Simulator::start(config)?;
    shutdown.await;
    Ok(simulator.shutdown().await)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_get_numbered_ids_and_the_firmwares_url() {
        let mut config = SimulatorConfig::new("ws://127.0.0.1:8080", 12);
        config.token = Some("s3cret".to_owned());
        assert_eq!(config.device_id(0), "sim-01");
        assert_eq!(config.device_id(11), "sim-12");
        assert_eq!(
            config.device_url(1).unwrap(),
            "ws://127.0.0.1:8080/?role=device&device_id=sim-02&token=s3cret"
        );
        let api = SimulatorConfig::new("wss://abc.execute-api.eu-west-1.amazonaws.com/prod", 1);
        assert_eq!(
            api.device_url(0).unwrap(),
            "wss://abc.execute-api.eu-west-1.amazonaws.com/prod?role=device&device_id=sim-01"
        );
    }

    #[test]
    fn bad_settings_are_reported_before_anything_starts() {
        let bad_url = SimulatorConfig::new("http://x", 1);
        assert!(matches!(
            bad_url.device_url(0),
            Err(SimulatorError::Url { .. })
        ));
        let mut bad_interval = SimulatorConfig::new("ws://x", 1);
        bad_interval.sample_interval_ms = 1;
        assert!(matches!(
            bad_interval.device_config(0),
            Err(SimulatorError::Config { .. })
        ));
        let mut bad_prefix = SimulatorConfig::new("ws://x", 1);
        bad_prefix.id_prefix = "no spaces ".to_owned();
        let error = bad_prefix.device_config(0).unwrap_err();
        assert!(error.to_string().contains("no spaces 01"), "{error}");
    }
}
