//! The echo/whoami system: runs locally on the in-memory backend behind LocalGateway.
//!
//! `cargo run -p echo` then connect a WebSocket client to the printed `ws://` address.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wsgw_memory::gateway::LocalGateway;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        eprintln!("echo: AWS_LAMBDA_RUNTIME_API is set, but this build has no Lambda mode yet (it arrives with wsgw-aws); unset it to run locally");
        return ExitCode::from(2);
    }
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
