//! The telemetry system: the LocalGateway with the dashboard (`cargo run -p telemetry`,
//! `--simulate N` adds devices), a Lambda function when `AWS_LAMBDA_RUNTIME_API` is set,
//! `telemetry invoke --event …`, `telemetry simulate`, `telemetry device-token ID`.

use clap::Parser;
use telemetry::cli::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    Cli::parse().run().await
}
