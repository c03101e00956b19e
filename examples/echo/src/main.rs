//! The echo/whoami system.
//!
//! - Locally (`cargo run -p echo`): the in-memory backend behind LocalGateway; connect a
//!   WebSocket client to the printed `ws://` address.
//! - On AWS (`AWS_LAMBDA_RUNTIME_API` set, as Lambda does): one function for every route,
//!   posting through the API Gateway Management API. Echo keeps no state, so its store is
//!   the in-memory one.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wsgw_memory::gateway::LocalGateway;
use wsgw_memory::MemoryStore;

/// Run the echo/whoami WebSocket API locally.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, env = "WSGW_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    if wsgw_aws::lambda::is_lambda() {
        return match wsgw_aws::lambda::run_with_store(Arc::new(MemoryStore::new()), echo::router)
            .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("echo: {error}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let running = match LocalGateway::build(echo::router).bind(args.listen).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("echo: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "echo listening on {} — connect any WebSocket client and send {{\"action\":\"whoami\"}} or {{\"action\":\"message\",\"message\":\"hi\"}}; Ctrl-C stops",
        running.ws_url()
    );
    match running.run_until_signal().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo: {error}");
            ExitCode::FAILURE
        }
    }
}
