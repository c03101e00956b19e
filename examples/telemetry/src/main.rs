//! The telemetry system.
//!
//! - Locally (`cargo run -p telemetry`): the LocalGateway serves the dashboard at
//!   `http://ADDR/`, the WebSocket API at `ws://ADDR` and the REST API (`/history`,
//!   `/devices`) on the same port, on the in-memory backend, or with
//!   `--dynamodb-endpoint URL` on a DynamoDB-compatible server (tables are created when
//!   missing, so history survives restarts).
//! - On AWS (`AWS_LAMBDA_RUNTIME_API` set, as Lambda does): one function for every
//!   WebSocket route and the REST API, on DynamoDB (`WSGW_CONNECTIONS_TABLE`,
//!   `WSGW_HISTORY_TABLE`) and the API Gateway Management API.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser};
use telemetry::{Telemetry, DEFAULT_HISTORY_TTL_DAYS};
use tracing_subscriber::EnvFilter;
use wsgw_aws::dynamo::{DynamoHistoryBuilder, DynamoStoreBuilder};
use wsgw_core::{ConnectionStore, HistoryStore};
use wsgw_memory::gateway::LocalGateway;
use wsgw_memory::{MemoryHistory, MemorySink, MemoryStore};

/// Environment variable: days to keep readings (Lambda and local runs).
const HISTORY_TTL_ENV: &str = "TELEMETRY_HISTORY_TTL_DAYS";
/// Environment variable: the token devices must connect with (unset: none).
const DEVICE_TOKEN_ENV: &str = "TELEMETRY_DEVICE_TOKEN";
/// Environment variable: the CORS origin of the REST answers (default `*`).
const CORS_ORIGIN_ENV: &str = "TELEMETRY_CORS_ORIGIN";

/// The ESP32 telemetry system: live readings, per-dashboard push intervals, device
/// control, REST history and a dashboard.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    serve: Serve,
}

/// Run the system locally: the dashboard at http://ADDR/, the WebSocket API at ws://ADDR,
/// the REST API at http://ADDR/history.
#[derive(Debug, Args)]
struct Serve {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, env = "WSGW_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Keep connections and history in DynamoDB at this endpoint (for example a local
    /// emulator, http://127.0.0.1:8000) instead of in memory.
    #[arg(long, env = "WSGW_DYNAMODB_ENDPOINT", value_name = "URL")]
    dynamodb_endpoint: Option<String>,

    /// The connections table, with --dynamodb-endpoint (created when missing).
    #[arg(
        long,
        env = "WSGW_CONNECTIONS_TABLE",
        default_value = "telemetry-connections"
    )]
    connections_table: String,

    /// The history table, with --dynamodb-endpoint (created when missing).
    #[arg(long, env = "WSGW_HISTORY_TABLE", default_value = "telemetry-history")]
    history_table: String,

    /// Days to keep readings.
    #[arg(long, env = HISTORY_TTL_ENV, value_name = "DAYS", default_value_t = DEFAULT_HISTORY_TTL_DAYS)]
    history_ttl_days: u32,

    /// Devices must connect with &token=TOKEN.
    #[arg(long, env = DEVICE_TOKEN_ENV, value_name = "TOKEN")]
    device_token: Option<String>,

    /// Access-Control-Allow-Origin of the REST answers.
    #[arg(long, env = CORS_ORIGIN_ENV, value_name = "ORIGIN", default_value = "*")]
    cors_origin: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    if wsgw_aws::lambda::is_lambda() {
        return match run_lambda().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("telemetry: {error}");
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
    let cli = Cli::parse();
    match run_local(cli.serve).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("telemetry: {error}");
            ExitCode::FAILURE
        }
    }
}

fn env_days(name: &str) -> Result<u32, String> {
    match std::env::var(name) {
        Ok(days) if !days.trim().is_empty() => days
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|days| *days > 0)
            .ok_or_else(|| format!("{name}={days:?} is not a whole number of days")),
        _ => Ok(DEFAULT_HISTORY_TTL_DAYS),
    }
}

/// Lambda mode: DynamoDB tables from the environment, the Management API endpoint from
/// each event.
async fn run_lambda() -> Result<(), String> {
    let mut state_config = Config {
        history_ttl_days: env_days(HISTORY_TTL_ENV)?,
        device_token: std::env::var(DEVICE_TOKEN_ENV).ok(),
        cors_origin: std::env::var(CORS_ORIGIN_ENV).unwrap_or_else(|_| "*".to_owned()),
    };
    if state_config.cors_origin.trim().is_empty() {
        state_config.cors_origin = "*".to_owned();
    }
    let store = DynamoStoreBuilder::from_env()
        .build()
        .await
        .map_err(|error| error.to_string())?;
    let history = DynamoHistoryBuilder::from_env()
        .with_client(store.client().clone())
        .build()
        .await
        .map_err(|error| error.to_string())?;
    let state = state_config.state(Arc::new(history));
    wsgw_aws::lambda::run_with_store(Arc::new(store), move |store, sink| {
        telemetry::router(store, sink, state)
    })
    .await
    .map_err(|error| error.to_string())
}

struct Config {
    history_ttl_days: u32,
    device_token: Option<String>,
    cors_origin: String,
}

impl Config {
    fn state(self, history: Arc<dyn HistoryStore>) -> Telemetry {
        let state = Telemetry::new(history)
            .with_history_ttl_days(self.history_ttl_days)
            .with_cors_origin(self.cors_origin);
        match self.device_token {
            Some(token) => state.with_device_token(token),
            None => state,
        }
    }
}

/// The backends of a local run: memory, or DynamoDB at an endpoint.
async fn local_backends(
    serve: &Serve,
) -> Result<
    (
        Arc<dyn ConnectionStore>,
        Arc<dyn HistoryStore>,
        &'static str,
    ),
    String,
> {
    let Some(endpoint) = &serve.dynamodb_endpoint else {
        return Ok((
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryHistory::new()),
            "in memory",
        ));
    };
    let store = DynamoStoreBuilder::new()
        .with_endpoint(endpoint.clone())
        .with_table(serve.connections_table.clone())
        .build()
        .await
        .map_err(|error| error.to_string())?;
    let history = DynamoHistoryBuilder::new()
        .with_client(store.client().clone())
        .with_table(serve.history_table.clone())
        .build()
        .await
        .map_err(|error| error.to_string())?;
    wsgw_aws::dynamo::create_tables(&store, &history)
        .await
        .map_err(|error| format!("cannot prepare the tables at {endpoint}: {error}"))?;
    Ok((Arc::new(store), Arc::new(history), "in DynamoDB"))
}

async fn run_local(serve: Serve) -> Result<(), String> {
    let (store, history, where_kept) = local_backends(&serve).await?;
    let state = Config {
        history_ttl_days: serve.history_ttl_days,
        device_token: serve.device_token.clone(),
        cors_origin: serve.cors_origin.clone(),
    }
    .state(history);
    let sockets = Arc::new(MemorySink::new());
    let router = telemetry::router(store, sockets.clone(), state);
    let running = LocalGateway::new(router, sockets)
        .assets(telemetry::dashboard())
        .bind(serve.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", serve.listen))?;
    let addr = running.local_addr();
    println!(
        "telemetry listening on {} — dashboard http://{addr}/, history http://{addr}/history?device_id=ID; data kept {where_kept}; Ctrl-C stops",
        running.ws_url()
    );
    running
        .run_until_signal()
        .await
        .map_err(|error| error.to_string())
}
