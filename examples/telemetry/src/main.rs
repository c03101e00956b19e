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
//! - `telemetry device-token esp32-01` prints the token a device presents when
//!   `TELEMETRY_DEVICE_SECRET` is set (the firmware's `DEVICE_TOKEN`).
//! - `telemetry invoke --event events/connect-device.json --event …`: API Gateway
//!   WebSocket and REST events through the function as Lambda would run them, in order,
//!   on the in-memory backend (or `--dynamodb-endpoint`), printing each response and
//!   what it posted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use telemetry::access::{
    self, AccessError, CorsOrigins, DeviceSecret, CORS_ORIGIN_ENV, DASHBOARD_KEYS_ENV,
    DEVICE_KEYS_ENV, DEVICE_SECRET_ENV, SHARED_DEVICE_TOKEN_ENV,
};
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
    /// Print the token a device presents when the device secret is set: the firmware's
    /// DEVICE_TOKEN, bound to this device id.
    DeviceToken(DeviceTokenArgs),
}

/// `device-token`: one device's token.
#[derive(Debug, Args)]
struct DeviceTokenArgs {
    /// The device id the token opens.
    device_id: String,
    /// The fleet secret (32+ bytes).
    #[arg(long, env = DEVICE_SECRET_ENV, value_name = "SECRET", hide_env_values = true)]
    device_secret: String,
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
    /// The fleet secret, when the API has one: each device presents its own token
    /// derived from it.
    #[arg(long, env = DEVICE_SECRET_ENV, value_name = "SECRET", hide_env_values = true)]
    device_secret: Option<String>,
    /// Per-device keys, `sim-01=KEY,sim-02=KEY`: each device presents its own.
    #[arg(long, env = DEVICE_KEYS_ENV, value_name = "ID=KEY,…", hide_env_values = true)]
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

    /// Without keys: the fleet secret (32+ bytes) each device's own token is derived
    /// from (`telemetry device-token ID`); devices without theirs are refused.
    #[arg(long, env = DEVICE_SECRET_ENV, value_name = "SECRET", hide_env_values = true)]
    device_secret: Option<String>,

    /// Turns auth on: device keys, `esp32-01=KEY,esp32-02=KEY`; a device presents its
    /// own (`?token=KEY`) and may only send for its own device_id.
    #[arg(long, env = DEVICE_KEYS_ENV, value_name = "ID=KEY,…", hide_env_values = true)]
    device_keys: Option<String>,

    /// Turns auth on: dashboard keys, `NAME=KEY` or `NAME=KEY=operator` (only operators
    /// change a device's sample interval); the page asks for its key, and the REST API
    /// wants one as `Authorization: Bearer KEY`.
    #[arg(long, env = DASHBOARD_KEYS_ENV, value_name = "NAME=KEY[=operator],…", hide_env_values = true)]
    dashboard_keys: Option<String>,

    /// Origins whose pages may call the REST API (Access-Control-Allow-Origin), comma
    /// separated, or `*`; default: `*` without keys, none with keys.
    #[arg(long, env = CORS_ORIGIN_ENV, value_name = "ORIGIN,…")]
    cors_origin: Option<String>,
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
        Some(Command::DeviceToken(args)) => print_device_token(&args),
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
    let env = |name: &str| std::env::var(name).ok();
    let state_config = Config::new(
        env_days(HISTORY_TTL_ENV)?,
        env(DEVICE_SECRET_ENV).as_deref(),
        env(DEVICE_KEYS_ENV).as_deref(),
        env(DASHBOARD_KEYS_ENV).as_deref(),
        env(CORS_ORIGIN_ENV).as_deref(),
    )
    .map_err(|error| error.to_string())?;
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

/// The checked settings of a run.
struct Config {
    history_ttl_days: u32,
    device_secret: Option<DeviceSecret>,
    keys: Option<wsgw_core::auth::ApiKeyAuthorizer>,
    cors_origins: Option<CorsOrigins>,
}

/// A setting's value, unless it is unset or blank.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.trim().is_empty())
}

impl Config {
    /// Checks the settings: the 0.1 shared token is refused, a device secret must be
    /// long and not combined with keys, origins must be origins.
    fn new(
        history_ttl_days: u32,
        device_secret: Option<&str>,
        device_keys: Option<&str>,
        dashboard_keys: Option<&str>,
        cors_origin: Option<&str>,
    ) -> Result<Config, AccessError> {
        if given(std::env::var(SHARED_DEVICE_TOKEN_ENV).ok().as_deref()).is_some() {
            return Err(AccessError::SharedDeviceToken);
        }
        let keys = access::authorizer(device_keys, dashboard_keys)?;
        let device_secret = given(device_secret).map(DeviceSecret::new).transpose()?;
        if device_secret.is_some() && keys.is_some() {
            return Err(AccessError::KeysAndSecret);
        }
        Ok(Config {
            history_ttl_days,
            device_secret,
            keys,
            cors_origins: given(cors_origin).map(CorsOrigins::parse).transpose()?,
        })
    }

    fn state(self, history: Arc<dyn HistoryStore>) -> Telemetry {
        let mut state = Telemetry::new(history).with_history_ttl_days(self.history_ttl_days);
        if let Some(keys) = self.keys {
            state = state.with_keys(keys);
        }
        if let Some(origins) = self.cors_origins {
            state = state.with_cors_origins(origins);
        }
        match self.device_secret {
            Some(secret) => state.with_device_secret(secret),
            None => state,
        }
    }
}

impl Backend {
    fn config(&self) -> Result<Config, String> {
        Config::new(
            self.history_ttl_days,
            self.device_secret.as_deref(),
            self.device_keys.as_deref(),
            self.dashboard_keys.as_deref(),
            self.cors_origin.as_deref(),
        )
        .map_err(|error| error.to_string())
    }
}

/// What simulated devices present: their keys, or their tokens derived from the secret.
fn simulator_tokens(
    config: &SimulatorConfig,
    device_secret: Option<&str>,
    device_keys: Option<&str>,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut tokens = access::device_tokens(device_keys.unwrap_or(""));
    if let Some(secret) = given(device_secret) {
        let secret = DeviceSecret::new(secret).map_err(|error| error.to_string())?;
        for index in 0..config.devices {
            let id = config.device_id(index);
            tokens.insert(id.clone(), secret.token_for(&id));
        }
    }
    Ok(tokens)
}

/// `telemetry device-token ID`: prints the device's token.
fn print_device_token(args: &DeviceTokenArgs) -> Result<(), String> {
    telemetry::protocol::validate_device_id(&args.device_id)
        .map_err(|error| format!("{:?}: {error}", args.device_id))?;
    let secret = DeviceSecret::new(&args.device_secret).map_err(|error| error.to_string())?;
    println!("{}", secret.token_for(&args.device_id));
    Ok(())
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
    let device_secret = state.device_secret().is_some();
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
            "auth is on: devices connect with ?token=KEY; open http://{addr}/ and enter a dashboard key (the REST API wants it as Authorization: Bearer KEY)"
        );
    } else if device_secret {
        println!(
            "devices present their own token (telemetry device-token ID); dashboards and the REST API are open, and nobody changes a device's sample interval"
        );
    }
    let simulator = if serve.simulate > 0 {
        let mut config = SimulatorConfig::new(ws_url, serve.simulate);
        config.tokens = simulator_tokens(
            &config,
            serve.backend.device_secret.as_deref(),
            serve.backend.device_keys.as_deref(),
        )?;
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
    config.tokens = simulator_tokens(
        &config,
        simulate.device_secret.as_deref(),
        simulate.device_keys.as_deref(),
    )?;
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
