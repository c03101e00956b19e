//! `telemetry-simulator`: simulated ESP32 telemetry devices against a gateway.

use std::process::ExitCode;

use clap::Parser;
use telemetry_simulator::cli::{run_until_stopped, DevicesArgs};

/// Simulated ESP32-C3 telemetry devices running the firmware's own device logic.
#[derive(Debug, Parser)]
#[command(name = "telemetry-simulator", version)]
struct Cli {
    #[command(flatten)]
    devices: DevicesArgs,
    /// Token sent as ?token= (when the gateway's $connect wants one).
    #[arg(long, env = "DEVICE_TOKEN")]
    token: Option<String>,
    /// Seed of readings and jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs on stderr: stdout carries the devices' reports.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = cli.devices.config();
    config.token = cli.token;
    config.seed = cli.seed;
    run_until_stopped("telemetry-simulator", config).await
}
