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
//! - `--simulate N` also runs N simulated devices in the same process;
//!   `telemetry simulate --devices 3 --url ws://…` runs them against any running API.
//! - `telemetry invoke --event events/connect-device.json --event …`: API Gateway
//!   WebSocket and REST events through the function as Lambda would run them, in order,
//!   on the in-memory backend (or `--dynamodb-endpoint`), printing each response and
//!   what it posted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use telemetry::access::{self, DASHBOARD_KEYS_ENV, DEVICE_KEYS_ENV};
use telemetry::{Telemetry, DEFAULT_HISTORY_TTL_DAYS};
use telemetry_simulator::{run_devices, Simulator, SimulatorConfig};
use tracing_subscriber::EnvFilter;
use wsgw_aws::dynamo::{DynamoHistoryBuilder, DynamoStoreBuilder};
use wsgw_aws::invoke::{InvokeArgs, Invoker};
use wsgw_core::{ConnectionStore, HistoryStore};
use wsgw_memory::gateway::{LocalGateway, ManagementArgs};
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
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run simulated devices (the firmware's own device logic) against a running API.
    Simulate(Simulate),
    /// Run API Gateway events (examples/telemetry/events/*.json, WebSocket and REST)
    /// through the function as Lambda would, in order, on the in-memory backend (or
    /// --dynamodb-endpoint), and print each response and every message it posted, as
    /// JSON.
    Invoke(Invoke),
}

/// `invoke`: the events, and the backend they run against.
#[derive(Debug, Args)]
struct Invoke {
    #[command(flatten)]
    events: InvokeArgs,
    #[command(flatten)]
    backend: Backend,
}

/// Simulated ESP32 devices: drifting readings, reconnect with backoff, obeying control.
#[derive(Debug, Args)]
struct Simulate {
    /// How many devices (sim-01, sim-02 …).
    #[arg(long, default_value_t = 3)]
    devices: usize,
    /// The WebSocket API: ws://HOST:PORT locally, wss://ID.execute-api.REGION.amazonaws.com/STAGE on AWS.
    #[arg(long, env = "WSGW_URL", default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// Device ids are this prefix and 01, 02 …
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// Sample interval until a control message changes it, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    sample_interval_ms: u32,
    /// The device token, when the API requires one.
    #[arg(long, env = DEVICE_TOKEN_ENV, value_name = "TOKEN")]
    device_token: Option<String>,
    /// Per-device keys, `sim-01=KEY,sim-02=KEY`: each device presents its own.
    #[arg(long, env = DEVICE_KEYS_ENV, value_name = "ID=KEY,…")]
    device_keys: Option<String>,
}

/// Run the system locally: the dashboard at http://ADDR/, the WebSocket API at ws://ADDR,
/// the REST API at http://ADDR/history.
#[derive(Debug, Args)]
struct Serve {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, env = "WSGW_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Also run this many simulated devices (sim-01 …) in this process, so the
    /// dashboard shows live data at once.
    #[arg(long, value_name = "N", default_value_t = 0)]
    simulate: usize,

    #[command(flatten)]
    management: ManagementArgs,

    #[command(flatten)]
    backend: Backend,
}

/// Where connections and history are kept, and the system's settings.
#[derive(Debug, Args)]
struct Backend {
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

    /// Turns auth on: device keys, `esp32-01=KEY,esp32-02=KEY`; a device presents its
    /// own (`?token=KEY`) and may only send for its own device_id.
    #[arg(long, env = DEVICE_KEYS_ENV, value_name = "ID=KEY,…")]
    device_keys: Option<String>,

    /// Turns auth on: dashboard keys, `NAME=KEY` or `NAME=KEY=operator` (only operators
    /// change a device's sample interval); the page takes its key as `?key=KEY`.
    #[arg(long, env = DASHBOARD_KEYS_ENV, value_name = "NAME=KEY[=operator],…")]
    dashboard_keys: Option<String>,

    /// Access-Control-Allow-Origin of the REST answers.
    #[arg(long, env = CORS_ORIGIN_ENV, value_name = "ORIGIN", default_value = "*")]
    cors_origin: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Lambda runs the binary without arguments; `telemetry invoke` runs events locally
    // wherever it is started.
    let invoking = std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "invoke");
    if wsgw_aws::lambda::is_lambda() && !invoking {
        return match run_lambda().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("telemetry: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    // `invoke` prints JSON on stdout; its logs stay quiet unless RUST_LOG asks.
    let default_filter = match cli.command {
        Some(Command::Invoke(_)) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = match cli.command {
        Some(Command::Invoke(invoke)) => return run_invoke(invoke).await,
        Some(Command::Simulate(simulate)) => run_simulator(simulate).await,
        None => run_local(cli.serve).await,
    };
    match outcome {
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
        keys: access::authorizer(
            std::env::var(DEVICE_KEYS_ENV).ok().as_deref(),
            std::env::var(DASHBOARD_KEYS_ENV).ok().as_deref(),
        )
        .map_err(|error| error.to_string())?,
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
    keys: Option<wsgw_core::auth::ApiKeyAuthorizer>,
    cors_origin: String,
}

impl Config {
    fn state(self, history: Arc<dyn HistoryStore>) -> Telemetry {
        let mut state = Telemetry::new(history)
            .with_history_ttl_days(self.history_ttl_days)
            .with_cors_origin(self.cors_origin);
        if let Some(keys) = self.keys {
            state = state.with_keys(keys);
        }
        match self.device_token {
            Some(token) => state.with_device_token(token),
            None => state,
        }
    }
}

impl Backend {
    fn config(&self) -> Result<Config, String> {
        Ok(Config {
            history_ttl_days: self.history_ttl_days,
            device_token: self.device_token.clone(),
            keys: access::authorizer(self.device_keys.as_deref(), self.dashboard_keys.as_deref())
                .map_err(|error| error.to_string())?,
            cors_origin: self.cors_origin.clone(),
        })
    }
}

/// The backends of a local run: memory, or DynamoDB at an endpoint.
async fn local_backends(
    serve: &Backend,
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

/// `telemetry invoke`: the events through the function on the local backends.
async fn run_invoke(invoke: Invoke) -> ExitCode {
    let (store, history, _) = match local_backends(&invoke.backend).await {
        Ok(backends) => backends,
        Err(error) => {
            eprintln!("telemetry invoke: {error}");
            return ExitCode::FAILURE;
        }
    };
    let state = match invoke.backend.config() {
        Ok(config) => config.state(history),
        Err(error) => {
            eprintln!("telemetry invoke: {error}");
            return ExitCode::FAILURE;
        }
    };
    let invoker = Invoker::new("telemetry", store, move |store, sink| {
        telemetry::router(store, sink, state)
    });
    wsgw_aws::invoke::run("telemetry", &invoker, &invoke.events).await
}

async fn run_local(serve: Serve) -> Result<(), String> {
    let (store, history, where_kept) = local_backends(&serve.backend).await?;
    let state = serve.backend.config()?.state(history);
    let auth = state.auth_required();
    let sockets = Arc::new(MemorySink::new());
    let router = telemetry::router(store, sockets.clone(), state);
    let running = LocalGateway::new(router, sockets)
        .assets(telemetry::dashboard())
        .management_access(serve.management.access())
        .bind(serve.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", serve.listen))?;
    let (addr, ws_url, notice) = (
        running.local_addr(),
        running.ws_url(),
        running.exposure_notice(),
    );
    // Ctrl-C and SIGTERM are obeyed from here on, before the address is out.
    let stopped = running.run_until_signal();
    println!(
        "telemetry listening on {ws_url} — dashboard http://{addr}/, history http://{addr}/history?device_id=ID; data kept {where_kept}; Ctrl-C stops"
    );
    if let Some(notice) = notice {
        println!("{notice}");
    }
    if auth {
        println!(
            "auth is on: devices connect with ?token=KEY, the dashboard opens as http://{addr}/?key=KEY"
        );
    }
    let simulator = if serve.simulate > 0 {
        let mut config = SimulatorConfig::new(ws_url, serve.simulate);
        config.token = serve.backend.device_token.clone();
        config.tokens = access::device_tokens(serve.backend.device_keys.as_deref().unwrap_or(""));
        let simulator = Simulator::start(config).map_err(|error| error.to_string())?;
        tracing::info!(devices = serve.simulate, "simulated devices started");
        Some(simulator)
    } else {
        None
    };
    let outcome = stopped.await;
    if let Some(simulator) = simulator {
        simulator.shutdown().await;
    }
    outcome.map_err(|error| error.to_string())
}

/// `telemetry simulate`: devices against a running API until Ctrl-C or SIGTERM.
async fn run_simulator(simulate: Simulate) -> Result<(), String> {
    let mut config = SimulatorConfig::new(simulate.url.clone(), simulate.devices);
    config.id_prefix = simulate.prefix;
    config.sample_interval_ms = simulate.sample_interval_ms;
    config.token = simulate.device_token;
    config.tokens = access::device_tokens(simulate.device_keys.as_deref().unwrap_or(""));
    println!(
        "simulating {} devices against {} — Ctrl-C stops",
        simulate.devices, simulate.url
    );
    let reports = run_devices(config, shutdown_signal())
        .await
        .map_err(|error| error.to_string())?;
    for report in reports {
        let stats = report.stats;
        println!(
            "{}: {} readings sent ({} resent, {} dropped), {} connects, sampling every {} ms",
            report.device_id,
            stats.readings_sent,
            stats.readings_resent,
            stats.readings_dropped,
            stats.connects,
            report.sample_interval_ms
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
