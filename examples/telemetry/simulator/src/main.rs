//! `telemetry-simulator`: simulated ESP32 telemetry devices against a gateway.

use std::process::ExitCode;

use clap::Parser;
use telemetry_simulator::{run_devices, SimulatorConfig};

/// Simulated ESP32-C3 telemetry devices running the firmware's own device logic.
#[derive(Debug, Parser)]
#[command(name = "telemetry-simulator", version)]
struct Cli {
    /// The gateway: ws://HOST:PORT for the LocalGateway, wss://API/STAGE for AWS.
    #[arg(long, env = "WSGW_URL", default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// How many devices.
    #[arg(long, default_value_t = 3)]
    devices: usize,
    /// Device ids are this prefix and 01, 02, …
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// Sample interval until a control message changes it, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    sample_interval_ms: u32,
    /// Token sent as ?token= (when the gateway's $connect wants one).
    #[arg(long, env = "DEVICE_TOKEN")]
    token: Option<String>,
    /// Seed of readings and jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = SimulatorConfig::new(cli.url, cli.devices);
    config.id_prefix = cli.prefix;
    config.sample_interval_ms = cli.sample_interval_ms;
    config.token = cli.token;
    config.seed = cli.seed;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping the devices");
    };
    match run_devices(config, shutdown).await {
        Ok(reports) => {
            for report in reports {
                let s = report.stats;
                println!(
                    "{}: {} samples, {} readings sent ({} resent), {} dropped, {} buffered, {} connects, {} failed attempts",
                    report.device_id,
                    s.samples,
                    s.readings_sent,
                    s.readings_resent,
                    s.readings_dropped,
                    s.buffered,
                    s.connects,
                    s.connect_failures
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("telemetry-simulator: {error}");
            ExitCode::FAILURE
        }
    }
}
