//! The ESP32 telemetry device's logic, without hardware: what the firmware
//! (`firmware/`, ESP32-C3) and the std simulator (`telemetry-simulator`) both run, so
//! the behaviour the simulator proves against the LocalGateway is the firmware's.
//!
//! [`Device`] is a sans-IO state machine. It reads no clock and does no I/O: the driver
//! passes the time in, performs the [`Action`] that [`Device::poll`] returns (take a
//! sample, connect, send a frame, close, or wait until a deadline) and reports what
//! happened (`on_sample`, `on_connected`, `on_connect_failed`, `on_sent`, `on_text`,
//! `on_disconnected`). It owns:
//!
//! - the **sampling schedule**: every `sample_interval_ms`, on a fixed grid, without
//!   catching up bursts after a stall;
//! - **control handling**: `{"type":"control","sample_interval_ms":…}` within the
//!   protocol's bounds (250 ms – 1 h) takes effect at once and is acknowledged with a
//!   `ControlAck`; an out-of-bounds one is refused and the kept interval acknowledged;
//! - **reconnect backoff**: exponential (1 s doubling to 60 s by default) with jitter
//!   from a seeded generator, reset once a connection stayed up 30 s;
//! - a **heartbeat** when nothing was sent for 4 minutes, inside API Gateway's
//!   10-minute idle timeout;
//! - **renewal** of a connection after 110 minutes (minus up to 5 % jitter), before
//!   API Gateway's 2-hour maximum;
//! - the **offline buffer**: every reading goes through a ring buffer of `N`, sent in
//!   order once connected (paced, `seq` continuing); when full the oldest is dropped
//!   and counted in [`Stats::readings_dropped`]; delivery is at least once (readings
//!   sent in the last 2 s before a connection drops are sent again);
//! - the **clock**: readings carry Unix time from the server's `Date` header at the
//!   last connect ([`http::server_time_ms`]); `ts_ms` is `0` until then, and the cloud
//!   stamps those on receipt;
//! - **messages** built with `telemetry-protocol`, the one definition of the wire
//!   format shared with the cloud, the first reading after a boot carrying the
//!   reset reason ([`Config::reset_reason`]);
//! - **network waits**: no Wi-Fi or DHCP yet is not a failure
//!   ([`Device::on_network_unavailable`]).
//!
//! Beside the state machine, the firmware's policies, host-tested here so that only
//! hardware glue stays in `firmware/`:
//!
//! - [`WallClock`]: SNTP, the server's `Date`, the build time as floor — the time
//!   readings and certificate checks use;
//! - [`settings`] and [`SettingsStore`]: build-time defaults, settings stored in flash
//!   (sequential-storage), the serial console's commands;
//! - [`reset_reason`] and [`RestartNote`]: why the device restarted;
//! - [`TlsFailures`] and [`WatchdogPlan`]: when to restart, how often to feed the
//!   watchdog;
//! - [`largest_allocatable`]: a heap's largest free block, probed;
//! - [`sample_metrics`] and [`SensorSchedule`]: an external sensor with the chip as
//!   fallback.
//!
//! ```
//! use telemetry_device::{Action, Config, Device, FrameKind};
//! use telemetry_protocol::MAX_MESSAGE_LEN;
//!
//! let mut device = Device::<64>::new(Config::new("esp32-01")?, 0)?;
//! let mut out = [0u8; MAX_MESSAGE_LEN];
//!
//! // Boot: a sample is due at once, then a connection.
//! assert_eq!(device.poll(0, &mut out), Action::Sample);
//! device.on_sample(0, &[("temperature_c", 23.5)]).unwrap();
//! assert_eq!(device.poll(0, &mut out), Action::Connect);
//! device.on_connected(40, Some(1_732_230_000_000));
//!
//! // Online: the buffered reading goes out.
//! let Action::Send(frame) = device.poll(40, &mut out) else { panic!() };
//! assert!(matches!(frame.kind, FrameKind::Reading { seq: 0, .. }));
//! assert_eq!(
//!     core::str::from_utf8(&out[..frame.len]).unwrap(),
//!     r#"{"action":"RealTimeDataUpdate","device_id":"esp32-01","seq":0,"ts_ms":1732229999960,"readings":{"temperature_c":23.5}}"#
//! );
//! device.on_sent(45);
//!
//! // Nothing else until the next sample, one second after the first.
//! assert_eq!(device.poll(45, &mut out), Action::Wait { until_ms: 1_000 });
//! # Ok::<(), telemetry_device::ConfigError>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod boot;
mod clock;
mod config;
mod device;
mod endpoint;
mod heap;
pub mod http;
mod recovery;
mod rng;
mod sensor;
pub mod settings;
mod store;

pub use backoff::{Backoff, BackoffConfig};
pub use boot::{reset_reason, RestartCause, RestartNote};
pub use clock::{ClockRejected, TimeSource, WallClock, MAX_DISAGREEMENT_MS};
pub use config::{Config, ConfigError, API_GATEWAY_IDLE_TIMEOUT_MS, API_GATEWAY_MAX_CONNECTION_MS};
pub use device::{
    Action, CloseReason, Device, FrameKind, Incoming, Link, Outgoing, Sample, SampleError, Stats,
    MAX_SAMPLE_METRICS, RESEND_CAPACITY,
};
pub use endpoint::{Endpoint, UrlError, MAX_HOST_LEN, MAX_TARGET_LEN};
pub use heap::largest_allocatable;
pub use recovery::{TlsFailure, TlsFailures, TlsVerdict, WatchdogError, WatchdogPlan};
pub use rng::SplitMix64;
pub use sensor::{round2, sample_metrics, ClimateReading, SampleInputs, SensorSchedule};
pub use settings::{Command, IntervalPersistence, SettingError, SettingKey, Settings};
pub use store::{LoadReport, SettingsStore, StoreError, ITEM_BUFFER_LEN};
pub use telemetry_protocol;
