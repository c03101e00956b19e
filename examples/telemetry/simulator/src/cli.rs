//! The command line of simulated devices, one piece for both programs that run them: the
//! `telemetry-simulator` binary, and the subcommands `telemetry simulate` and
//! `telemetry device-token` ([`Command`], with the devices' [`Credentials`] from the
//! system's key settings).
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

use telemetry_protocol::validate_device_id;

use crate::{run_devices, Credentials, DeviceReport, SimulatorConfig};

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

/// The simulator's subcommands, for a system's own command line to flatten.
///
/// ```
/// use clap::Parser;
/// use telemetry_simulator::cli::Command;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(subcommand)]
///     command: Command,
/// }
///
/// let cli = Cli::try_parse_from(["telemetry", "device-token", "esp32-01"])?;
/// assert!(matches!(cli.command, Command::DeviceToken { device_id } if device_id == "esp32-01"));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Run simulated devices (the firmware's own device logic) against a running API.
    Simulate(DevicesArgs),
    /// Print the token a device presents when the device secret is set: the firmware's
    /// DEVICE_TOKEN, bound to this device id.
    DeviceToken {
        /// The device id the token opens.
        device_id: String,
    },
}

impl Command {
    /// Runs the subcommand as `program`: `simulate` until Ctrl-C or SIGTERM, each device
    /// presenting what `credentials` give it ([`run_until_stopped`]); `device-token`
    /// prints the device's token derived from the credentials' fleet secret.
    pub async fn run(self, program: &str, credentials: &Credentials) -> ExitCode {
        match self {
            Command::Simulate(devices) => {
                let config = devices.config().with_credentials(credentials);
                run_until_stopped(program, config).await
            }
            Command::DeviceToken { device_id } => match device_token(&device_id, credentials) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{program}: {error}");
                    ExitCode::FAILURE
                }
            },
        }
    }
}

/// The token device `device_id` presents: the one derived for it from the fleet secret.
fn device_token(device_id: &str, credentials: &Credentials) -> Result<String, String> {
    validate_device_id(device_id).map_err(|error| format!("{device_id:?}: {error}"))?;
    let secret = credentials.secret.as_ref().ok_or(
        "device tokens are derived from the fleet secret, and none is set (--device-secret)",
    )?;
    Ok(secret.token_for(device_id))
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

#[cfg(test)]
mod tests {
    use wsgw_core::auth::DerivedTokens;

    use super::*;

    const SECRET: &str = "fleet-secret-0123456789abcdef-0123456789";

    #[test]
    fn a_device_token_is_the_one_derived_for_the_device_id() {
        let secret = DerivedTokens::new(SECRET).unwrap();
        let credentials = Credentials {
            secret: Some(secret.clone()),
            ..Credentials::default()
        };
        let token = device_token("esp32-01", &credentials).unwrap();
        assert!(secret.verify("esp32-01", &token));
        assert!(!secret.verify("esp32-02", &token));
    }

    #[test]
    fn a_device_token_needs_a_valid_device_id_and_the_fleet_secret() {
        let credentials = Credentials {
            secret: Some(DerivedTokens::new(SECRET).unwrap()),
            ..Credentials::default()
        };
        let refused = device_token("no spaces", &credentials).unwrap_err();
        assert!(
            refused.starts_with("\"no spaces\": device_id must be"),
            "{refused}"
        );
        let refused = device_token("esp32-01", &Credentials::default()).unwrap_err();
        assert!(refused.contains("--device-secret"), "{refused}");
    }

    #[test]
    fn simulated_devices_present_their_keys_or_their_derived_tokens() {
        let keys = [("sim-01".to_owned(), "k-1".to_owned())].into();
        let with_keys = Credentials { keys, secret: None };
        let config = SimulatorConfig::new("ws://127.0.0.1:8080", 2).with_credentials(&with_keys);
        assert_eq!(config.tokens.len(), 1, "sim-02 has no key");
        assert_eq!(config.tokens["sim-01"], "k-1");

        let secret = DerivedTokens::new(SECRET).unwrap();
        let derived = Credentials {
            secret: Some(secret.clone()),
            ..Credentials::default()
        };
        let config = SimulatorConfig::new("ws://127.0.0.1:8080", 2).with_credentials(&derived);
        for id in ["sim-01", "sim-02"] {
            assert!(secret.verify(id, &config.tokens[id]), "{id}");
        }
    }
}
