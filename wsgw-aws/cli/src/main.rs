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
    println!(
        "wsgw local: the functions are ready; serving the WebSocket API on {} is not wired yet, so wsgw stops here",
        run.listener
            .local_addr()
            .map_or_else(|_| args.listen.to_string(), |addr| addr.to_string())
    );
    if args.watch {
        println!("wsgw local: --watch takes effect once the API is served");
    }
    run.shutdown().await;
    ExitCode::SUCCESS
}
