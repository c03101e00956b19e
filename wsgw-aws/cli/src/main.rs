//! `wsgw`: see the library's docs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wsgw::{LocalArgs, LocalRun};

/// Run an API Gateway WebSocket API from its SAM template on this machine.
#[derive(Debug, Parser)]
#[command(name = "wsgw", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a template's WebSocket API locally: every function reached by a route or an
    /// authorizer built and run as its own process in Lambda mode, the template's
    /// DynamoDB tables created (on moto's server unless --dynamodb-endpoint is given).
    Local(LocalArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    match cli.command {
        Command::Local(args) => local(args).await,
    }
}

async fn local(args: LocalArgs) -> ExitCode {
    let run = match LocalRun::prepare(&args).await {
        Ok(run) => run,
        Err(error) => {
            eprintln!("wsgw local: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    print!("{}", run.summary());
    let mut serving = match run.serve() {
        Ok(serving) => serving,
        Err(error) => {
            eprintln!("wsgw local: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    if args.watch {
        serving.watch(WATCH_INTERVAL);
    }
    let ready = serving.ready_lines();
    let stopped = serving.run_until_signal();
    print!("{ready}");
    // Tests and scripts read the ready lines through a pipe.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    stopped.await;
    ExitCode::SUCCESS
}

/// How often `--watch` looks at the functions' sources.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
