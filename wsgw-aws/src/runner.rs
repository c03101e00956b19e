//! One call in `main` (feature `runner`): the same binary serves a router as a Lambda
//! function when `AWS_LAMBDA_RUNTIME_API` is set, as the LocalGateway otherwise, and runs
//! `invoke --event FILE…` when asked.
//!
//! ```no_run
//! use wsgw_core::{Context, Request, Router};
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let router = Router::new().route("ping", |ctx: Context, _req: Request| async move {
//!         ctx.reply(&"pong").await
//!     });
//!     wsgw_aws::runner::run(router).await
//! }
//! ```
//!
//! The standard command line ([`Args`]), every flag also an environment variable:
//!
//! | flag | environment | what |
//! | --- | --- | --- |
//! | `--listen ADDR` | `WSGW_LISTEN` | where the LocalGateway listens (`127.0.0.1:8080`; port 0 picks one) |
//! | `--access-key-id`, `--secret-access-key`, `--require-signature` | `WSGW_LOCAL_ACCESS_KEY_ID`, `WSGW_LOCAL_SECRET_ACCESS_KEY`, `WSGW_REQUIRE_SIGNATURE` | who may call the LocalGateway's `@connections` |
//! | `--dynamodb-endpoint URL` | `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL` (the AWS SDKs' names; `WSGW_DYNAMODB_ENDPOINT`, deprecated, for one release) | keep connections and history in DynamoDB there instead of in memory (tables created when missing) |
//! | `--connections-table`, `--history-table` | `WSGW_CONNECTIONS_TABLE`, `WSGW_HISTORY_TABLE` | their names (locally `NAME-connections`, `NAME-history` by default) |
//! | `invoke --event FILE…` | | API Gateway events through the function as Lambda runs them ([`invoke`](crate::invoke)) |
//!
//! In Lambda the tables come from `WSGW_CONNECTIONS_TABLE` and `WSGW_HISTORY_TABLE`
//! (a system that needs one and lacks it refuses to start, naming the variable), the
//! Management API endpoint from each event, metrics from `WSGW_METRICS*`. With
//! [`Runner::jwt_from_env`] (feature `jwt`), `WSGW_JWT_*` turn JWT auth on in every mode
//! ([`JwtSettings`](wsgw_core::auth::JwtSettings)).
//!
//! Logs go to stderr locally (`RUST_LOG`, default `info`; `warn` for `invoke`, whose
//! JSON is on stdout) and to stdout in Lambda (`AWS_LAMBDA_LOG_LEVEL`,
//! `AWS_LAMBDA_LOG_FORMAT=JSON`), set up with `try_init`: a subscriber the application
//! installed first is kept.
//!
//! A system with flags or subcommands of its own flattens [`Args`] (or [`ServeArgs`]
//! and [`Command`]) into its clap parser and calls [`Runner::run`]:
//!
//! ```no_run
//! use clap::Parser;
//! use wsgw_aws::runner::{Args, Runner};
//! use wsgw_core::Router;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     wsgw: Args,
//!     /// Days to keep messages.
//!     #[arg(long, env = "CHAT_RETENTION_DAYS", default_value_t = 30)]
//!     retention_days: u32,
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let cli = Cli::parse();
//!     let router = Router::with_state(cli.retention_days);
//!     Runner::new(router).with_history().run(cli.wsgw).await
//! }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};
use lambda_runtime::tracing::subscriber;
use tokio::task::JoinSet;
use tokio_util::sync::{CancellationToken, DropGuard};
use wsgw_core::{ConnectionStore, HistoryStore, Router};
use wsgw_memory::gateway::{Assets, LocalGateway, ManagementArgs};
use wsgw_memory::{MemoryHistory, MemoryStore};

use crate::config::{configured_endpoint, non_empty_env};
use crate::dynamo::{
    DynamoHistory, DynamoStore, CONNECTIONS_TABLE_ENV, DEPRECATED_DYNAMODB_ENDPOINT_ENV,
    DYNAMODB_ENDPOINT_ENV, HISTORY_TABLE_ENV,
};
use crate::invoke::{InvokeArgs, Invoker};
use crate::lambda::{is_lambda, LambdaApp};

/// The standard command line of a wsgw system: serve locally, or a [`Command`].
/// Flatten it into a system's own clap parser.
///
/// ```
/// use clap::Parser;
/// use wsgw_aws::runner::{Args, Command};
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     wsgw: Args,
/// }
///
/// let cli = Cli::parse_from(["rooms", "--listen", "127.0.0.1:0", "invoke", "--event", "connect.json"]);
/// assert_eq!(cli.wsgw.serve.listen.port(), 0);
/// assert!(matches!(cli.wsgw.command, Some(Command::Invoke(_))));
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// How to serve.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The standard subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Run API Gateway events (events/*.json) through the function as Lambda would, in
    /// order, on the in-memory backend (or --dynamodb-endpoint), and print each response
    /// and every message it posted, as JSON.
    Invoke(InvokeArgs),
}

/// Where and how the LocalGateway serves, and where data is kept.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, env = "WSGW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Who may call `@connections`.
    #[command(flatten)]
    pub management: ManagementArgs,

    /// Where connections and history are kept.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Where connections and history are kept locally and by `invoke`: in memory, or in
/// DynamoDB at an endpoint (a local emulator).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StorageArgs {
    /// Keep connections and history in DynamoDB at this endpoint (for example a local
    /// emulator, http://127.0.0.1:8000) instead of in memory [default: the endpoint of
    /// AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL, as every AWS SDK reads them].
    #[arg(long, value_name = "URL", global = true)]
    pub dynamodb_endpoint: Option<String>,

    /// The connections table, with --dynamodb-endpoint (created when missing; default
    /// NAME-connections).
    #[arg(long, env = CONNECTIONS_TABLE_ENV, value_name = "TABLE", global = true)]
    pub connections_table: Option<String>,

    /// The history table, with --dynamodb-endpoint (created when missing; default
    /// NAME-history).
    #[arg(long, env = HISTORY_TABLE_ENV, value_name = "TABLE", global = true)]
    pub history_table: Option<String>,
}

/// The command line of a system without flags of its own.
#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// Serves `router` as the command line and the environment say (see the [module
/// docs](self)); the program's name is the binary's. A system that keeps history, has
/// pages or flags of its own uses [`Runner`].
pub async fn run<S: Send + Sync + 'static>(router: Router<S>) -> ExitCode {
    Runner::new(router).main().await
}

/// What a [`Runner`] needs of the backends.
#[derive(Debug, Clone, Copy)]
struct Needs {
    store: bool,
    history: bool,
}

/// How a system is served: its router, its name, its pages, what it needs.
///
/// ```no_run
/// # async fn main_() -> std::process::ExitCode {
/// use wsgw_aws::runner::{Args, Runner};
/// use wsgw_memory::gateway::Assets;
/// # let (router, args): (wsgw_core::Router, Args) = unimplemented!();
///
/// Runner::new(router)
///     .with_history()
///     .assets(Assets::new().file("/index.html", "<h1>chat</h1>"))
///     .hint("open http://{addr}/ in a browser")
///     .run(args)
///     .await
/// # }
/// ```
pub struct Runner<S> {
    name: String,
    router: Router<S>,
    assets: Assets,
    hints: Vec<String>,
    notes: Vec<String>,
    companions: Vec<std::sync::Mutex<Companion>>,
    needs: Needs,
    #[cfg(feature = "jwt")]
    jwt: bool,
}

impl<S> std::fmt::Debug for Runner<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.name)
            .field("router", &self.router)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

/// Why serving could not start or stopped with an error: printed as `NAME: …`.
type RunError = String;

impl<S: Send + Sync + 'static> Runner<S> {
    /// Serves `router`, named after the binary; it keeps connections in a store (see
    /// [`stateless`](Self::stateless)) and no history (see
    /// [`with_history`](Self::with_history)).
    pub fn new(router: Router<S>) -> Self {
        Runner {
            name: program_name(),
            router,
            assets: Assets::new(),
            hints: Vec::new(),
            notes: Vec::new(),
            companions: Vec::new(),
            needs: Needs {
                store: true,
                history: false,
            },
            #[cfg(feature = "jwt")]
            jwt: false,
        }
    }

    /// Names the system (logs, errors, default table names, `invoke`'s `FunctionName`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The system keeps nothing between events: in Lambda it needs no connections table
    /// (its handlers get an error naming `WSGW_CONNECTIONS_TABLE` if they use the store).
    pub fn stateless(mut self) -> Self {
        self.needs.store = false;
        self
    }

    /// The system keeps history: in Lambda it needs `WSGW_HISTORY_TABLE`, locally it gets
    /// a memory history or the `--history-table` in DynamoDB.
    pub fn with_history(mut self) -> Self {
        self.needs.history = true;
        self
    }

    /// Serves these pages to plain HTTP `GET`s on the LocalGateway.
    pub fn assets(mut self, assets: Assets) -> Self {
        self.assets = assets;
        self
    }

    /// Adds to the line printed when the LocalGateway listens (`{addr}` is its address:
    /// `open http://{addr}/ in a browser`).
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Adds a line printed after the one saying where the LocalGateway listens (`{addr}`
    /// is its address): what a user of this run must know, such as how auth works.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Runs `task` beside each local run (not in Lambda, nor with `invoke`): it starts
    /// once the LocalGateway listens, with its `ws://ADDR` URL and a [`Stopping`] future
    /// that resolves when the gateway has stopped (Ctrl-C or SIGTERM), and the run waits
    /// for it to finish. A task that fails stops the run with its error; one that ends
    /// well earlier leaves the gateway serving. Simulated clients, a load generator, a
    /// bot: whatever should talk to the gateway while it runs.
    ///
    /// ```no_run
    /// # async fn main_(router: wsgw_core::Router, args: wsgw_aws::runner::Args) -> std::process::ExitCode {
    /// use wsgw_aws::runner::Runner;
    ///
    /// Runner::new(router)
    ///     .beside(|url, stopping| async move {
    ///         println!("clients connect to {url}");
    ///         stopping.await;
    ///         Ok(())
    ///     })
    ///     .run(args)
    ///     .await
    /// # }
    /// ```
    pub fn beside<F, Fut>(mut self, task: F) -> Self
    where
        F: FnOnce(String, Stopping) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let task: Companion = Box::new(move |url, stopping| Box::pin(task(url, stopping)));
        // In a mutex only so that the runner stays `Sync` with a task that is not.
        self.companions.push(std::sync::Mutex::new(task));
        self
    }

    /// JWT auth from the environment (`WSGW_JWT_SECRET` or `WSGW_JWT_PUBLIC_KEY_FILE`,
    /// with `WSGW_JWT_AUDIENCE`, `WSGW_JWT_ANY_AUDIENCE`, `WSGW_JWT_ISSUER`; see
    /// [`JwtSettings`](wsgw_core::auth::JwtSettings)) as the router's `$connect`
    /// authorizer, in every mode; unset, the system stays open. A setting that cannot
    /// be used refuses to start, naming the variable.
    #[cfg(feature = "jwt")]
    pub fn jwt_from_env(mut self) -> Self {
        self.jwt = true;
        self
    }

    /// Reads the standard command line ([`Args`]; `--help` names the system) and
    /// [`run`](Self::run)s: the whole `main` of a system without flags of its own.
    pub async fn main(self) -> ExitCode {
        let command = Cli::command().name(self.name.clone()).about(format!(
            "Serves {} on the LocalGateway, as a Lambda function (AWS_LAMBDA_RUNTIME_API set), or runs API Gateway events through it.",
            self.name
        ));
        let args = match Cli::from_arg_matches(&command.get_matches()) {
            Ok(cli) => cli.args,
            Err(error) => error.exit(),
        };
        self.run(args).await
    }

    /// Serves as `args` and the environment say: the Lambda runtime loop when
    /// `AWS_LAMBDA_RUNTIME_API` is set (unless `invoke` was asked), `invoke`'s events, or
    /// the LocalGateway until Ctrl-C or SIGTERM. Errors are printed as `NAME: …` and
    /// give a failing exit status.
    pub async fn run(self, args: Args) -> ExitCode {
        let name = self.name.clone();
        let outcome = match args.command {
            Some(Command::Invoke(invoke)) => {
                init_logs("warn");
                return self.invoke(&args.serve.storage, &invoke).await;
            }
            None if is_lambda() => {
                init_lambda_logs();
                self.lambda().await
            }
            None => {
                init_logs("info");
                match self.start_local(&args.serve).await {
                    Ok(local) => local.wait().await,
                    Err(error) => Err(error),
                }
            }
        };
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{name}: {error}");
                ExitCode::FAILURE
            }
        }
    }

    /// The router with the environment's JWT authorizer, when asked for and set.
    fn router(&self) -> Result<(Router<S>, bool), RunError> {
        #[cfg(feature = "jwt")]
        if self.jwt {
            let settings = wsgw_core::auth::JwtSettings::from_env().map_err(|e| e.to_string())?;
            if let Some(authorizer) = settings.authorizer().map_err(|e| e.to_string())? {
                return Ok((self.router.clone().authorizer(authorizer), true));
            }
        }
        Ok((self.router.clone(), false))
    }

    /// Lambda mode: the runtime loop over the tables the environment names.
    async fn lambda(self) -> Result<(), RunError> {
        for (needed, table) in [
            (self.needs.store, CONNECTIONS_TABLE_ENV),
            (self.needs.history, HISTORY_TABLE_ENV),
        ] {
            if needed && non_empty_env(table).is_none() {
                return Err(format!(
                    "{table} is not set: in Lambda the table comes from the environment (the template's function sets it)"
                ));
            }
        }
        let (router, _) = self.router()?;
        LambdaApp::from_env(router)
            .await
            .map_err(|error| error.to_string())?
            .run()
            .await
            .map_err(|error| error.to_string())
    }

    /// `invoke`: the events through the function on the local backends.
    async fn invoke(self, storage: &StorageArgs, invoke: &InvokeArgs) -> ExitCode {
        let name = self.name.clone();
        let prepared = async {
            let (router, _) = self.router()?;
            let (store, history, _) = self.backends(storage).await?;
            Ok::<_, RunError>(
                Invoker::new(&name, router)
                    .with_store(store)
                    .with_history(history),
            )
        };
        match prepared.await {
            Ok(invoker) => crate::invoke::run(&name, &invoker, invoke).await,
            Err(error) => {
                eprintln!("{name} invoke: {error}");
                ExitCode::FAILURE
            }
        }
    }

    /// Binds the LocalGateway as `serve` says, with Ctrl-C and SIGTERM obeyed from then
    /// on, prints where it listens (and, when it listens beyond loopback or checks every
    /// `@connections` signature, what is exposed and how to sign), and starts the tasks
    /// to run [`beside`](Self::beside) it; [`LocalRun::wait`] serves until stopped.
    pub async fn start_local(self, serve: &ServeArgs) -> Result<LocalRun, RunError> {
        let (router, auth) = self.router()?;
        let (store, history, kept) = self.backends(&serve.storage).await?;
        let running = LocalGateway::new(router)
            .with_store(store)
            .with_history(history)
            .assets(self.assets)
            .management_access(serve.management.access())
            .bind(serve.listen)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", serve.listen))?;
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
        let hints: String = self
            .hints
            .iter()
            .map(|hint| format!(" — {}", hint.replace("{addr}", &shown.to_string())))
            .collect();
        println!(
            "{} listening on ws://{shown}{hints}; data kept in {kept}; metrics at http://{shown}/metrics; Ctrl-C stops",
            self.name
        );
        if let Some(notice) = notice {
            println!("{notice}");
        }
        if auth {
            println!(
                "auth is on: clients present a JWT (the subprotocols wsgw.bearer, TOKEN; Authorization: Bearer; or ?token=)"
            );
        }
        for note in &self.notes {
            println!("{}", note.replace("{addr}", &shown.to_string()));
        }
        let ws_url = format!("ws://{shown}");
        let stop = CancellationToken::new();
        let mut companions = JoinSet::new();
        for companion in self.companions {
            let companion = companion
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let stopping = Box::pin(stop.clone().cancelled_owned());
            companions.spawn(companion(ws_url.clone(), stopping));
        }
        Ok(LocalRun {
            ws_url,
            stopped: Box::pin(stopped),
            companions,
            stop: stop.drop_guard(),
        })
    }

    /// The store and history of a local run or `invoke`, and where they keep data.
    async fn backends(
        &self,
        storage: &StorageArgs,
    ) -> Result<(Arc<dyn ConnectionStore>, Arc<dyn HistoryStore>, String), RunError> {
        let endpoint = storage.dynamodb_endpoint.clone().or_else(|| {
            configured_endpoint(DYNAMODB_ENDPOINT_ENV, DEPRECATED_DYNAMODB_ENDPOINT_ENV)
        });
        let Some(endpoint) = &endpoint else {
            return Ok((
                Arc::new(MemoryStore::new()),
                Arc::new(MemoryHistory::new()),
                "memory".to_owned(),
            ));
        };
        let connections = storage
            .connections_table
            .clone()
            .unwrap_or_else(|| format!("{}-connections", self.name));
        let store = DynamoStore::builder()
            .with_endpoint(endpoint.clone())
            .with_table(connections.clone())
            .build()
            .await
            .map_err(|error| error.to_string())?;
        let prepare =
            |error: wsgw_core::Error| format!("cannot use DynamoDB at {endpoint}: {error}");
        store.create_table().await.map_err(prepare)?;
        let mut tables = connections;
        let history: Arc<dyn HistoryStore> = if self.needs.history {
            let name = storage
                .history_table
                .clone()
                .unwrap_or_else(|| format!("{}-history", self.name));
            let history = DynamoHistory::builder()
                .with_client(store.client().clone())
                .with_table(name.clone())
                .build()
                .await
                .map_err(|error| error.to_string())?;
            history.create_table().await.map_err(prepare)?;
            tables = format!("{tables}, {name}");
            Arc::new(history)
        } else {
            Arc::new(MemoryHistory::new())
        };
        Ok((
            Arc::new(store),
            history,
            format!("DynamoDB at {endpoint} (tables {tables})"),
        ))
    }
}

/// Resolves when the LocalGateway a [`Runner::beside`] task runs beside has stopped.
pub type Stopping = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A task run beside the LocalGateway ([`Runner::beside`]).
type Companion = Box<
    dyn FnOnce(String, Stopping) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send,
>;

/// A LocalGateway serving until Ctrl-C or SIGTERM ([`Runner::start_local`]).
pub struct LocalRun {
    ws_url: String,
    stopped: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>,
    companions: JoinSet<Result<(), String>>,
    /// Dropped when the gateway has stopped (or the run is dropped), which tells the
    /// companions.
    stop: DropGuard,
}

impl std::fmt::Debug for LocalRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRun")
            .field("ws_url", &self.ws_url)
            .finish_non_exhaustive()
    }
}

impl LocalRun {
    /// `ws://ADDR`, where clients connect.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// Serves until Ctrl-C or SIGTERM, then closes every connection with 1001, tells the
    /// tasks run [`beside`](Runner::beside) the gateway and waits for them. A task that
    /// fails stops serving at once, and its error is the outcome.
    pub async fn wait(self) -> Result<(), RunError> {
        let LocalRun {
            mut stopped,
            mut companions,
            stop,
            ..
        } = self;
        let mut outcome = loop {
            tokio::select! {
                served = &mut stopped => break served.map_err(|error| error.to_string()),
                Some(finished) = companions.join_next() => {
                    if let Err(error) = companion_outcome(finished) {
                        break Err(error);
                    }
                }
            }
        };
        drop(stopped);
        drop(stop);
        while let Some(finished) = companions.join_next().await {
            outcome = outcome.and(companion_outcome(finished));
        }
        outcome
    }
}

/// What a task run beside the gateway ended with (a panic is an error too).
fn companion_outcome(
    finished: Result<Result<(), String>, tokio::task::JoinError>,
) -> Result<(), RunError> {
    match finished {
        Ok(outcome) => outcome,
        Err(error) => Err(format!("a task run beside the gateway failed: {error}")),
    }
}

/// The binary's file name: the system's default name.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_stem)
        .and_then(|stem| stem.to_str())
        .unwrap_or("wsgw")
        .to_owned()
}

/// Local logs on stderr, `RUST_LOG` or `default_filter` (`info`, `warn`). Keeps a
/// subscriber the application installed already ([`Runner::run`] calls it; call it
/// yourself before [`Runner::start_local`]).
///
/// ```
/// wsgw_aws::runner::init_logs("info");
/// wsgw_aws::runner::init_logs("warn"); // a second call keeps the first: no panic
/// ```
pub fn init_logs(default_filter: &str) {
    let filter = subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| subscriber::EnvFilter::new(default_filter));
    let _ = subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Lambda's logs, as `lambda_runtime` sets them up (`AWS_LAMBDA_LOG_LEVEL`, else
/// `RUST_LOG`, else `INFO`; JSON with `AWS_LAMBDA_LOG_FORMAT=JSON`), but keeping a
/// subscriber the application installed already.
fn init_lambda_logs() {
    use subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = subscriber::EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let logs = subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        logs.json().try_init()
    } else {
        logs.try_init()
    };
}
