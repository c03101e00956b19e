//! The telemetry system: the LocalGateway with the dashboard (`cargo run -p telemetry`,
//! `--simulate N` adds devices), a Lambda function when `AWS_LAMBDA_RUNTIME_API` is set,
//! `telemetry invoke --event …`, `telemetry simulate`, `telemetry device-token ID`.

use clap::Parser;
use telemetry::cli::{self, Cli, Command};
use wsgw_aws::runner::Args;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Cli {
        command,
        serve,
        settings,
        simulate,
    } = Cli::parse();
    let command = match command {
        Some(Command::Simulate(devices)) => return cli::simulate(devices, &settings).await,
        Some(Command::DeviceToken(args)) => return cli::device_token(&args),
        Some(Command::Wsgw(command)) => Some(command),
        None => None,
    };
    cli::serve(&settings, Args { command, serve }, simulate).await
}
