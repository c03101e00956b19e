//! The chat system.
//!
//! - Locally (`cargo run -p chat`): the LocalGateway serves the web page at `/` and the
//!   WebSocket API at `ws://ADDR`, on the in-memory backend, or with
//!   `--dynamodb-endpoint URL` on a DynamoDB-compatible server (tables are created when
//!   missing, so history survives restarts).
//! - On AWS (`AWS_LAMBDA_RUNTIME_API` set, as Lambda does): one function for every
//!   route, on DynamoDB (`WSGW_CONNECTIONS_TABLE`, `WSGW_HISTORY_TABLE`) and the API
//!   Gateway Management API.
//! - `chat invoke --event events/connect.json --event events/sendmessage.json`: API
//!   Gateway events through the function as Lambda would run them, in order, on the
//!   in-memory backend (or `--dynamodb-endpoint`), printing each response and what it
//!   posted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use chat::{ChatConfig, ChatState, JwtSettings};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wsgw_aws::dynamo::{DynamoHistory, DynamoStore};
use wsgw_aws::invoke::{InvokeArgs, Invoker};
use wsgw_core::{ConnectionStore, HistoryStore};
use wsgw_memory::gateway::{Assets, LocalGateway, ManagementArgs};
use wsgw_memory::{MemoryHistory, MemorySink, MemoryStore};

/// Environment variable: days to keep messages, session records and events (Lambda and
/// local runs; unset: 30 days, 0: keep them).
const RETENTION_ENV: &str = "CHAT_RETENTION_DAYS";

/// Run the chat locally: the web page at http://ADDR/, the WebSocket API at ws://ADDR.
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

    /// Keep connections and history in DynamoDB at this endpoint (for example a local
    /// emulator, http://127.0.0.1:8000) instead of in memory.
    #[arg(
        long,
        env = "WSGW_DYNAMODB_ENDPOINT",
        value_name = "URL",
        global = true
    )]
    dynamodb_endpoint: Option<String>,

    /// The connections table, with --dynamodb-endpoint (created when missing).
    #[arg(
        long,
        env = "WSGW_CONNECTIONS_TABLE",
        default_value = "chat-connections",
        global = true
    )]
    connections_table: String,

    /// The history table, with --dynamodb-endpoint (created when missing).
    #[arg(
        long,
        env = "WSGW_HISTORY_TABLE",
        default_value = "chat-history",
        global = true
    )]
    history_table: String,

    /// Days to keep messages, session records and events; 0 keeps them until deleted.
    #[arg(long, env = RETENTION_ENV, value_name = "DAYS", global = true, default_value_t = chat::DEFAULT_RETENTION_DAYS)]
    retention_days: u32,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run API Gateway events (examples/chat/events/*.json) through the function as
    /// Lambda would, in order, on the in-memory backend (or --dynamodb-endpoint), and
    /// print each response and every message it posted, as JSON.
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

fn config(retention_days: u32) -> ChatConfig {
    ChatConfig::default().retention_days(retention_days)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Invoke(invoke)) = &args.command {
        init_logs("warn");
        return run_invoke(&args, invoke).await;
    }
    if wsgw_aws::lambda::is_lambda() {
        return match run_lambda().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("chat: {error}");
                ExitCode::FAILURE
            }
        };
    }
    init_logs("info");
    match run_local(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Lambda mode: DynamoDB tables from the environment, the Management API endpoint from
/// each event.
async fn run_lambda() -> Result<(), String> {
    let retention_days = match std::env::var(RETENTION_ENV) {
        Ok(days) if !days.trim().is_empty() => days
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("{RETENTION_ENV}={days:?} is not a number of days"))?,
        _ => chat::DEFAULT_RETENTION_DAYS,
    };
    let store = wsgw_aws::dynamo::DynamoStoreBuilder::from_env()
        .build()
        .await
        .map_err(|error| error.to_string())?;
    let history = wsgw_aws::dynamo::DynamoHistoryBuilder::from_env()
        .with_client(store.client().clone())
        .build()
        .await
        .map_err(|error| error.to_string())?;
    let state = ChatState::new(Arc::new(history)).with_config(config(retention_days));
    let authorizer = jwt_authorizer()?;
    wsgw_aws::lambda::run_with_store(Arc::new(store), move |store, sink| {
        chat::router_with_auth(store, sink, state, authorizer)
    })
    .await
    .map_err(|error| error.to_string())
}

/// The JWT authorizer the environment asks for (`WSGW_JWT_SECRET` or
/// `WSGW_JWT_PUBLIC_KEY_FILE`, with `WSGW_JWT_AUDIENCE` / `WSGW_JWT_ISSUER`); `None`
/// leaves the chat open.
fn jwt_authorizer() -> Result<Option<wsgw_core::auth::JwtAuthorizer>, String> {
    JwtSettings::from_env()
        .and_then(|settings| settings.authorizer())
        .map_err(|error| error.to_string())
}

/// The backends of a local run: memory, or DynamoDB at an endpoint.
async fn local_backends(
    args: &Args,
) -> Result<(Arc<dyn ConnectionStore>, Arc<dyn HistoryStore>, String), String> {
    let Some(endpoint) = &args.dynamodb_endpoint else {
        return Ok((
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryHistory::new()),
            "memory".to_owned(),
        ));
    };
    let store = DynamoStore::builder()
        .with_endpoint(endpoint.clone())
        .with_table(args.connections_table.clone())
        .build()
        .await
        .map_err(|error| error.to_string())?;
    let history = DynamoHistory::builder()
        .with_client(store.client().clone())
        .with_table(args.history_table.clone())
        .build()
        .await
        .map_err(|error| error.to_string())?;
    wsgw_aws::dynamo::create_tables(&store, &history)
        .await
        .map_err(|error| format!("cannot use DynamoDB at {endpoint}: {error}"))?;
    let described = format!(
        "DynamoDB at {endpoint} (tables {}, {})",
        args.connections_table, args.history_table
    );
    Ok((Arc::new(store), Arc::new(history), described))
}

/// `invoke`: the events through the function on the local backends.
async fn run_invoke(args: &Args, invoke: &InvokeArgs) -> ExitCode {
    let (store, history, _) = match local_backends(args).await {
        Ok(backends) => backends,
        Err(error) => {
            eprintln!("chat invoke: {error}");
            return ExitCode::FAILURE;
        }
    };
    let state = ChatState::new(history).with_config(config(args.retention_days));
    let authorizer = match jwt_authorizer() {
        Ok(authorizer) => authorizer,
        Err(error) => {
            eprintln!("chat invoke: {error}");
            return ExitCode::FAILURE;
        }
    };
    let invoker = Invoker::new("chat", store, move |store, sink| {
        chat::router_with_auth(store, sink, state, authorizer)
    });
    wsgw_aws::invoke::run("chat", &invoker, invoke).await
}

/// Local mode: the LocalGateway with the page at `/`.
async fn run_local(args: Args) -> Result<(), String> {
    let (store, history, backend) = local_backends(&args).await?;
    let state = ChatState::new(history).with_config(config(args.retention_days));
    let sockets = Arc::new(MemorySink::new());
    let authorizer = jwt_authorizer()?;
    let auth = authorizer.is_some();
    let router = chat::router_with_auth(store, sockets.clone(), state, authorizer);
    let running = LocalGateway::new(router, sockets)
        .assets(Assets::new().file("/index.html", chat::INDEX_HTML))
        .management_access(args.management.access())
        .bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let addr = running.local_addr();
    // An unspecified address (0.0.0.0) is not something to open: show loopback.
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let notice = running.exposure_notice();
    // Ctrl-C and SIGTERM are obeyed from here on, before the address is out.
    let stopped = running.run_until_signal();
    println!(
        "chat on {backend}: open http://{shown}/ in a browser, or connect WebSocket clients to ws://{shown} (Ctrl-C stops)"
    );
    if let Some(notice) = notice {
        println!("{notice}");
    }
    if auth {
        println!(
            "auth is on: clients present a JWT (the subprotocols wsgw.bearer, TOKEN; Authorization: Bearer; or ?token=); on the page, paste it into the Token field"
        );
    }
    stopped.await.map_err(|error| error.to_string())
}
