//! The command line of simulated devices, one piece for both programs that run them: the
//! `telemetry-simulator` binary and `telemetry simulate` (which adds the devices' tokens
//! from the system's key settings).
//!
//! ```
//! use clap::Parser;
//! use telemetry_simulator::cli::DevicesArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     devices: DevicesArgs,
//! }
//!
//! let cli = Cli::try_parse_from(["simulate", "--devices", "2", "--prefix", "lab-"])?;
//! let config = cli.devices.config();
//! assert_eq!(config.devices, 2);
//! assert_eq!(config.device_id(1), "lab-02");
//! # Ok::<(), clap::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::process::ExitCode;

use crate::{run_devices, DeviceReport, SimulatorConfig};

/// Which devices to simulate, and against which WebSocket API.
#[derive(Debug, Clone, clap::Args)]
pub struct DevicesArgs {
    /// How many devices (sim-01, sim-02 …).
    #[arg(long, default_value_t = 3)]
    pub devices: usize,
    /// The WebSocket API: ws://HOST:PORT locally, wss://ID.execute-api.REGION.amazonaws.com/STAGE on AWS.
    #[arg(long, env = "WSGW_URL", default_value = "ws://127.0.0.1:8080")]
    pub url: String,
    /// Device ids are this prefix and 01, 02 …
    #[arg(long, default_value = "sim-")]
    pub prefix: String,
    /// Sample interval until a control message changes it, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub sample_interval_ms: u32,
}

impl DevicesArgs {
    /// The simulator's settings these arguments ask for (the firmware's defaults
    /// otherwise, no token).
    pub fn config(&self) -> SimulatorConfig {
        let mut config = SimulatorConfig::new(self.url.clone(), self.devices);
        config.id_prefix = self.prefix.clone();
        config.sample_interval_ms = self.sample_interval_ms;
        config
    }
}

/// One line per device when the simulation stops.
///
/// ```
/// use telemetry_simulator::{telemetry_device::Stats, DeviceReport};
///
/// let report = DeviceReport {
///     device_id: "sim-01".to_owned(),
///     stats: Stats { samples: 3, readings_sent: 3, connects: 1, ..Stats::default() },
///     sample_interval_ms: 500,
///     online: true,
/// };
/// assert_eq!(
///     report.to_string(),
///     "sim-01: 3 samples, 3 readings sent (0 resent), 0 dropped, 0 buffered, 1 connects, 0 failed attempts, sampling every 500 ms"
/// );
/// ```
impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = &self.stats;
        write!(
            f,
            "{}: {} samples, {} readings sent ({} resent), {} dropped, {} buffered, {} connects, {} failed attempts, sampling every {} ms",
            self.device_id,
            stats.samples,
            stats.readings_sent,
            stats.readings_resent,
            stats.readings_dropped,
            stats.buffered,
            stats.connects,
            stats.connect_failures,
            self.sample_interval_ms
        )
    }
}

/// Runs the devices of `config` until Ctrl-C or SIGTERM, then prints each device's
/// report on stdout; a setting that keeps them from starting is printed on stderr after
/// `program`'s name, and the exit code says which it was.
pub async fn run_until_stopped(program: &str, config: SimulatorConfig) -> ExitCode {
    println!(
        "simulating {} devices against {} — Ctrl-C stops",
        config.devices, config.url
    );
    match run_devices(config, stop_signal()).await {
        Ok(reports) => {
            for report in reports {
                println!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{program}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM (only Ctrl-C where there is no SIGTERM, or when SIGTERM cannot be
/// listened for).
fn stop_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGTERM"))
        .ok();
    async move {
        #[cfg(unix)]
        if let Some(mut terminate) = terminate {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
