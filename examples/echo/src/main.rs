//! The echo/whoami system.
//!
//! - Locally (`cargo run -p echo`): the in-memory backend behind LocalGateway; connect a
//!   WebSocket client to the printed `ws://` address.
//! - On AWS (`AWS_LAMBDA_RUNTIME_API` set, as Lambda does): one function for every route,
//!   posting through the API Gateway Management API. Echo keeps no state, so its store is
//!   the in-memory one.
//! - `echo invoke --event events/whoami.json`: one API Gateway event through the function
//!   as Lambda would run it, printing the response and what it posted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wsgw_aws::invoke::{InvokeArgs, Invoker};
use wsgw_memory::gateway::{LocalGateway, ManagementArgs};
use wsgw_memory::MemoryStore;

/// Run the echo/whoami WebSocket API locally.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, env = "WSGW_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    #[command(flatten)]
    management: ManagementArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run API Gateway events (examples/echo/events/*.json) through the function as
    /// Lambda would, on the in-memory backend, and print the response and every message
    /// it posted, as JSON.
    Invoke(InvokeArgs),
}

fn init_logs(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Invoke(invoke)) = &args.command {
        init_logs("warn");
        let invoker = Invoker::new("echo", Arc::new(MemoryStore::new()), echo::router);
        return wsgw_aws::invoke::run("echo", &invoker, invoke).await;
    }
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
    init_logs("info");
    let gateway = LocalGateway::build(echo::router).management_access(args.management.access());
    let running = match gateway.bind(args.listen).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("echo: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let (url, addr, notice) = (
        running.ws_url(),
        running.local_addr(),
        running.exposure_notice(),
    );
    // Ctrl-C and SIGTERM are obeyed from here on, before the address is out.
    let stopped = running.run_until_signal();
    println!(
        "echo listening on {url} — connect any WebSocket client and send {{\"action\":\"whoami\"}} or {{\"action\":\"message\",\"message\":\"hi\"}}; metrics at http://{addr}/metrics; Ctrl-C stops"
    );
    if let Some(notice) = notice {
        println!("{notice}");
    }
    match stopped.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo: {error}");
            ExitCode::FAILURE
        }
    }
}
