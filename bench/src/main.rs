//! `wsgw-bench`: wsgw side by side with the tools users pick today.
//!
//! `cargo xtask bench [--quick]` installs the peers, builds this binary in release mode and
//! runs `wsgw-bench run`, which starts every server as a child process of its own (this
//! binary's `serve-*` subcommands, serverless-offline, the Python and Node senders), drives
//! them from this process, stops every child it started (drop guards, even on failure),
//! prints a table and one final line of ratios, and writes the Markdown report and the
//! fan-out plot.

mod client;
mod cpu_share;
mod criterion;
mod dynamo;
mod fanout;
mod hot_paths;
mod lambda;
mod peers;
mod plot;
mod report;
mod roundtrip;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "wsgw's benchmarks, side by side with the peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every benchmark and write the report.
    Run(RunArgs),
    /// A bare tokio-tungstenite echo server (no routing, no store): the physical limit.
    ServeBare,
    /// The LocalGateway running the echo example's router.
    ServeGateway {
        /// Answer `@connections` requests this long after they came in (an emulated
        /// network round trip to API Gateway).
        #[arg(long, default_value_t = 0)]
        management_latency_ms: u64,
    },
    /// The criterion hot paths (results under `$CRITERION_HOME`, else
    /// `target/criterion`).
    HotPaths {
        /// A smoke: 0.2 s warm-up and 0.5 s measurement per benchmark.
        #[arg(long)]
        quick: bool,
    },
    /// Cold starts of one function binary (the echo example's build of a release profile)
    /// under the Runtime API emulator, in turns; prints the median in ms.
    ColdStart {
        /// The function binary (run in Lambda mode).
        #[arg(long)]
        bin: PathBuf,
        /// How many cold starts (the median is printed).
        #[arg(long, default_value_t = 15)]
        runs: usize,
    },
    /// wsgw's fan-out: `ApiGatewaySink` + `broadcast` to the ids in a file, on "go".
    FanoutSend {
        /// The `@connections` endpoint (`http://127.0.0.1:PORT/STAGE`).
        #[arg(long)]
        endpoint: String,
        /// A file with one connection id per line.
        #[arg(long)]
        ids: PathBuf,
        /// Sends in flight (`BroadcastOptions::concurrency`; its default when unset).
        #[arg(long)]
        concurrency: Option<usize>,
    },
}

/// What `run` needs.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A short smoke run (CI): small counts, short windows, no speed asserted.
    #[arg(long)]
    pub quick: bool,
    /// A work directory (gitignored): scripts, the peers' `node_modules`, results.
    #[arg(long)]
    pub work: PathBuf,
    /// The Python with boto3 (the workspace's `.venv`).
    #[arg(long)]
    pub python: PathBuf,
    /// The directory holding `node_modules` with serverless, serverless-offline,
    /// @aws-sdk/client-apigatewaymanagementapi and ws.
    #[arg(long)]
    pub peers: PathBuf,
    /// The echo example's release binary (run in Lambda mode).
    #[arg(long)]
    pub echo_bin: PathBuf,
    /// Where to write the Markdown results.
    #[arg(long)]
    pub out_md: PathBuf,
    /// Where to write the fan-out plot (SVG).
    #[arg(long)]
    pub out_svg: PathBuf,
    /// The command line quoted in the report.
    #[arg(long, default_value = "cargo xtask bench")]
    pub command_line: String,
    /// A DynamoDB-compatible server (moto) for the request count; skipped when unset.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    pub dynamodb_endpoint: Option<String>,
    /// `BroadcastOptions::concurrency` of wsgw's fan-out sender (its default when unset).
    #[arg(long)]
    pub fanout_concurrency: Option<usize>,
    /// Skip benchmarks by name: criterion, roundtrip, fanout, lambda, memory, sls, dynamodb,
    /// shares (the fan-out and Lambda rows at Lambda's CPU shares), or one fan-out sender:
    /// fanout-wsgw, fanout-node, fanout-python.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
}

impl RunArgs {
    /// Whether the benchmark `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        !self.skip.iter().any(|skip| skip == name)
    }
}

/// Raises the soft limit of open files to the hard limit (children inherit it).
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 12_000 => {
            eprintln!("wsgw-bench: open files limited to {limit}; 10,000 connections may fail")
        }
        Ok(_) => {}
        Err(error) => eprintln!("wsgw-bench: cannot raise the open files limit: {error}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::HotPaths { quick } = cli.command {
        // Before any tokio runtime: the benchmarks make their own.
        criterion::hot_paths(quick);
        return ExitCode::SUCCESS;
    }
    raise_fd_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wsgw-bench: cannot start tokio: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => report::run(args).await,
            Command::HotPaths { .. } => Ok(()),
            Command::ServeBare => serve::bare().await,
            Command::ColdStart { bin, runs } => lambda::cold_starts(&bin, runs).await,
            Command::ServeGateway {
                management_latency_ms,
            } => serve::gateway(std::time::Duration::from_millis(management_latency_ms)).await,
            Command::FanoutSend {
                endpoint,
                ids,
                concurrency,
            } => fanout::send(&endpoint, &ids, concurrency).await,
        }
    });
    // Clients still open must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsgw-bench: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Errors are reported as text: this is a tool, not a library.
pub type Result<T, E = String> = std::result::Result<T, E>;
