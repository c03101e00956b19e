//! `wsgw local`: the template read and resolved, the listening address taken, DynamoDB
//! and the tables ready, the functions built and their pool started, as one
//! [`LocalRun`] that the gateway serves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use std::time::Duration;

use wsgw_aws::template::{
    Stack, StackApi, StackSettings, Template, TemplateError, DEFAULT_HTTP_STAGE,
};
use wsgw_memory::gateway::{
    Assets, LocalGateway, ManagementAccess, ManagementCredentials, RunningGateway,
};

use crate::build::{BuildError, Builder};
use crate::dynamodb::{self, DynamoError, MotoServer, ReadyTable};
use crate::pool::{FunctionPool, InvokeError, PoolFunction, PoolSettings, DEFAULT_MAX_INSTANCES};
use crate::serve::TemplateIntegration;
use crate::watch::Watcher;

/// `wsgw local`'s options.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct LocalArgs {
    /// The SAM or CloudFormation template (YAML or JSON).
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// The address to serve the WebSocket API and @connections on.
    #[arg(long, env = "WSGW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A DynamoDB-compatible endpoint for the template's tables; without it, moto's
    /// server is started for the run (installed on first use).
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
    /// Rebuild a function when its sources change and replace its instances.
    #[arg(long)]
    pub watch: bool,
    /// Parameter values, KEY=VALUE each (as `sam deploy --parameter-overrides`).
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    pub parameter_overrides: Vec<String>,
    /// The stack's name (`AWS::StackName`, the prefix of table and function names);
    /// default: the template's directory name.
    #[arg(long)]
    pub stack_name: Option<String>,
    /// `AWS::Region`.
    #[arg(long, default_value = wsgw_aws::config::LOCAL_REGION)]
    pub region: String,
    /// Instances per function when the template sets no ReservedConcurrentExecutions.
    #[arg(long, default_value_t = DEFAULT_MAX_INSTANCES)]
    pub max_instances: usize,
    /// Build the functions with --release.
    #[arg(long)]
    pub release: bool,
    /// Serve this directory's files over plain HTTP on the same address (a web page that
    /// connects to `ws://` on the host it was loaded from: `/` is `index.html`, and
    /// `ws://ADDR/` reaches the stage).
    #[arg(long, value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
}

impl LocalArgs {
    /// The options for a template, everything else default (moto started, port 8080).
    pub fn new(template: impl Into<PathBuf>) -> Self {
        LocalArgs {
            template: template.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dynamodb_endpoint: None,
            watch: false,
            parameter_overrides: Vec::new(),
            stack_name: None,
            region: wsgw_aws::config::LOCAL_REGION.to_owned(),
            max_instances: DEFAULT_MAX_INSTANCES,
            release: false,
            static_dir: None,
        }
    }

    /// The stack's settings: name, region, overrides.
    pub fn stack_settings(&self) -> Result<StackSettings, LocalError> {
        let name = self
            .stack_name
            .clone()
            .unwrap_or_else(|| default_stack_name(&self.template));
        StackSettings::new(name)
            .with_region(self.region.clone())
            .with_overrides(&self.parameter_overrides)
            .map_err(LocalError::Overrides)
    }
}

/// The template's directory name, as a stack name (`examples/chat/template.yaml` →
/// `chat`), or `wsgw-local`.
fn default_stack_name(template: &std::path::Path) -> String {
    let directory = std::path::absolute(template)
        .ok()
        .and_then(|path| {
            path.parent()
                .and_then(|dir| dir.file_name())
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let name: String = directory
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.trim_matches('-').is_empty() {
        "wsgw-local".to_owned()
    } else {
        name
    }
}

/// Why `wsgw local` cannot run. Each message is one line naming what to fix (a failed
/// build adds cargo's output).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The template cannot be read or resolved.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A `--parameter-overrides` item is not KEY=VALUE.
    #[error("--parameter-overrides: {0}")]
    Overrides(String),
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {reason} (pass --listen with another address, e.g. --listen 127.0.0.1:0 for any free port)")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// DynamoDB or a table is not ready.
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    /// A function did not build.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A function's first instance did not start.
    #[error("{0}")]
    Start(#[from] InvokeError),
    /// A route selection expression wsgw cannot evaluate.
    #[error("{0}")]
    RouteSelection(String),
    /// `--static-dir` cannot be read.
    #[error("--static-dir {dir}: {reason}")]
    StaticDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// The API cannot be served (the listener cannot be handed to the gateway).
    #[error("{0}")]
    Serve(String),
}

impl LocalError {
    /// The process exit code: 2 for a template or option the user must fix, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            LocalError::Template(_)
            | LocalError::Overrides(_)
            | LocalError::Listen { .. }
            | LocalError::RouteSelection(_)
            | LocalError::StaticDir { .. } => 2,
            _ => 1,
        }
    }
}

/// Where the tables live.
#[derive(Debug)]
#[non_exhaustive]
pub struct DynamoEndpoint {
    /// The endpoint.
    pub endpoint: String,
    /// moto's server, when started for this run (stopped when dropped).
    pub moto: Option<MotoServer>,
}

/// Everything `wsgw local` makes ready before it serves.
#[derive(Debug)]
#[non_exhaustive]
pub struct LocalRun {
    /// The template as given.
    pub template: PathBuf,
    /// The resolved stack.
    pub stack: Stack,
    /// The address the stage listens on (bound by [`prepare`](Self::prepare)).
    pub local_addr: SocketAddr,
    /// The listening socket, until [`serve`](Self::serve) hands it to the gateway. Held
    /// by nothing else: a second handle would keep the port accepting into its backlog
    /// after the gateway stopped, and a function posting to `@connections` while the
    /// stage shuts down would then wait for an answer until its timeout.
    listener: Option<TcpListener>,
    /// DynamoDB.
    pub dynamodb: DynamoEndpoint,
    /// The tables, created or reused.
    pub tables: Vec<ReadyTable>,
    /// Each built function's executable, by logical id.
    pub executables: BTreeMap<String, PathBuf>,
    /// The functions' instances.
    pub pool: FunctionPool,
    /// How the functions were built (for rebuilds).
    pub builder: Builder,
    /// The files of `--static-dir` (none without it).
    pub assets: Assets,
}

impl LocalRun {
    /// Reads and resolves the template (printing what will not run), takes the
    /// listening address, makes DynamoDB and the tables ready, builds the functions and
    /// starts one instance of each, so a function that cannot start says so now.
    pub async fn prepare(args: &LocalArgs) -> Result<Self, LocalError> {
        let template = Template::from_path(&args.template)?;
        let stack = template.resolve(args.stack_settings()?)?;
        for api in &stack.apis {
            crate::serve::route_selection(api).map_err(|error| {
                LocalError::RouteSelection(format!("{}: {error}", args.template.display()))
            })?;
        }
        let assets = match &args.static_dir {
            Some(dir) => read_static_dir(dir)?,
            None => Assets::new(),
        };
        for notice in &stack.notices {
            eprintln!("wsgw: {notice}");
        }
        let listener = TcpListener::bind(args.listen).map_err(|error| LocalError::Listen {
            addr: args.listen,
            reason: match error.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "the address is in use (another wsgw local, an example, or another server)"
                        .to_owned()
                }
                std::io::ErrorKind::AddrNotAvailable => {
                    "the address is not one of this machine's".to_owned()
                }
                _ => error.to_string(),
            },
        })?;
        let local_addr = listener.local_addr().map_err(|error| LocalError::Listen {
            addr: args.listen,
            reason: error.to_string(),
        })?;
        let dynamodb = match &args.dynamodb_endpoint {
            Some(endpoint) => DynamoEndpoint {
                endpoint: endpoint.clone(),
                moto: None,
            },
            None if stack.tables.is_empty() => DynamoEndpoint {
                endpoint: String::new(),
                moto: None,
            },
            None => {
                let cache = dynamodb::cache_dir().ok_or(DynamoError::NoCacheDir)?;
                let moto = MotoServer::start(&cache).await?;
                eprintln!(
                    "wsgw: moto {}'s DynamoDB server started at {} (stopped on exit)",
                    dynamodb::MOTO_VERSION,
                    moto.endpoint()
                );
                DynamoEndpoint {
                    endpoint: moto.endpoint().to_owned(),
                    moto: Some(moto),
                }
            }
        };
        let tables = if stack.tables.is_empty() {
            Vec::new()
        } else {
            dynamodb::create_tables(&stack, &dynamodb.endpoint).await?
        };
        let builder = Builder {
            release: args.release,
            ..Builder::default()
        };
        let executables = builder.build_stack(&stack).await?;
        let stage = served_stage(&stack).name;
        let mut settings = PoolSettings::default()
            .with_management_endpoint(format!("http://{local_addr}/{stage}"))
            .with_max_instances(args.max_instances);
        settings.region = stack.settings.region.clone();
        settings.account_id = stack.settings.account_id.clone();
        if !dynamodb.endpoint.is_empty() {
            settings = settings.with_dynamodb_endpoint(dynamodb.endpoint.clone());
        }
        let functions = stack.functions.values().map(|function| {
            PoolFunction::from_stack(
                function,
                &stack,
                executables.get(&function.logical_id).cloned(),
            )
        });
        let pool = FunctionPool::new(functions, settings);
        for function in stack
            .functions
            .values()
            .filter(|function| function.is_runnable())
        {
            pool.prewarm(&function.logical_id).await?;
        }
        Ok(LocalRun {
            template: args.template.clone(),
            stack,
            local_addr,
            listener: Some(listener),
            dynamodb,
            tables,
            executables,
            pool,
            builder,
            assets,
        })
    }

    /// What is ready: the stack, DynamoDB and its tables, each function with the routes
    /// that reach it, and each API with its stages.
    pub fn summary(&self) -> String {
        let stack = &self.stack;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "wsgw local: {} (stack {}, region {})",
            self.template.display(),
            stack.settings.stack_name,
            stack.settings.region
        );
        if !self.tables.is_empty() {
            let origin = if self.dynamodb.moto.is_some() {
                ", moto started for this run"
            } else {
                ""
            };
            let _ = writeln!(out, "  DynamoDB at {}{origin}:", self.dynamodb.endpoint);
            for table in &self.tables {
                let _ = writeln!(
                    out,
                    "    {} = {} ({:?})",
                    table.logical_id, table.name, table.outcome
                );
            }
        }
        let _ = writeln!(out, "  Functions:");
        for function in stack.functions.values() {
            let state = match (
                &function.not_runnable,
                self.executables.get(&function.logical_id),
            ) {
                (Some(why), _) => format!("not run: {why}"),
                (None, Some(executable)) => format!(
                    "{} ({} MB, {} s)",
                    executable.display(),
                    function.memory_size_mb,
                    function.timeout.as_secs()
                ),
                (None, None) => "not built".to_owned(),
            };
            let _ = writeln!(out, "    {}: {state}", function.logical_id);
            let _ = writeln!(out, "      {}", function.reached_by.join(", "));
        }
        for api in &stack.apis {
            let stages: Vec<&str> = api.stages.iter().map(|stage| stage.name.as_str()).collect();
            let _ = writeln!(
                out,
                "  WebSocket API {} ({}): stage {}, route selection {}",
                api.logical_id,
                api.api_id,
                if stages.is_empty() {
                    "none".to_owned()
                } else {
                    stages.join(", ")
                },
                api.route_selection_expression
            );
            for route in &api.routes {
                let mut details = vec![format!("function {}", route.function)];
                if route.two_way {
                    details.push("route response".to_owned());
                }
                if let Some(authorizer) = route
                    .authorizer
                    .as_deref()
                    .and_then(|id| api.authorizer(id))
                {
                    let sources: Vec<String> = authorizer
                        .identity_sources
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    details.push(format!(
                        "authorizer {} ({})",
                        authorizer.logical_id,
                        if sources.is_empty() {
                            "no identity source".to_owned()
                        } else {
                            sources.join(", ")
                        }
                    ));
                }
                let _ = writeln!(out, "    {}: {}", route.route_key, details.join(", "));
            }
        }
        out
    }

    /// Serves the template's first WebSocket API at its first stage on the listening
    /// address, through the LocalGateway with a [`TemplateIntegration`]: clients connect
    /// to `ws://ADDR/{stage}`, the functions post to `http://ADDR/{stage}/@connections/{id}`
    /// (signed with the keys the pool gives them, or unsigned from loopback).
    pub fn serve(mut self) -> Result<Serving, LocalError> {
        let api = self.stack.apis.first().cloned().ok_or_else(|| {
            LocalError::Serve(format!(
                "{}: no WebSocket API to serve",
                self.template.display()
            ))
        })?;
        let stage = served_stage(&self.stack);
        let settings = self.pool.settings();
        let integration = TemplateIntegration::new(
            api.clone(),
            stage.clone(),
            self.pool.clone(),
            &settings.region,
            &settings.account_id,
        )
        .map_err(|error| LocalError::Serve(error.to_string()))?
        .with_rest_apis(self.stack.rest_apis.clone());
        let (access_key, secret) = &settings.credentials;
        let access = ManagementAccess::new(ManagementCredentials::new(access_key, secret));
        let listener = self
            .listener
            .take()
            .ok_or_else(|| std::io::Error::other("the listener was handed to a gateway already"))
            .and_then(|listener| {
                listener.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(listener)
            })
            .and_then(|listener| {
                let counters = integration.counters();
                LocalGateway::for_integration(integration)
                    .with_counters(counters)
                    .assets(self.assets.clone())
                    .stage(stage.name.clone())
                    .api_id(api.api_id.clone())
                    .management_access(access)
                    .serve_on(listener)
            })
            .map_err(|error| LocalError::Serve(format!("cannot serve: {error}")))?;
        Ok(Serving {
            gateway: listener,
            api,
            stage,
            run: self,
            watching: None,
        })
    }

    /// A [`Watcher`] of the built functions' sources (`--watch`): run it next to the
    /// gateway.
    pub fn watcher(&self) -> Watcher {
        let builds = self
            .stack
            .functions
            .values()
            .filter_map(|function| Some((function.logical_id.clone(), function.build.clone()?)))
            .collect();
        Watcher::new(self.builder.clone(), builds, &self.executables)
    }

    /// Stops the functions' instances and moto's server.
    pub async fn shutdown(self) {
        self.pool.shutdown();
        if let Some(moto) = self.dynamodb.moto {
            moto.stop().await;
        }
    }
}

/// At most this much is read from `--static-dir` (it is held in memory).
const MAX_STATIC_BYTES: u64 = 64 * 1024 * 1024;

/// Every file below `dir`, at its path relative to `dir` (`web/index.html` → `/index.html`).
fn read_static_dir(dir: &std::path::Path) -> Result<Assets, LocalError> {
    let failed = |reason: String| LocalError::StaticDir {
        dir: dir.to_path_buf(),
        reason,
    };
    let mut assets = Assets::new();
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = std::fs::read_dir(&next)
            .map_err(|error| failed(format!("cannot read {}: {error}", next.display())))?;
        for entry in entries {
            let path = entry.map_err(|error| failed(error.to_string()))?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let contents = std::fs::read(&path)
                .map_err(|error| failed(format!("cannot read {}: {error}", path.display())))?;
            total += contents.len() as u64;
            if total > MAX_STATIC_BYTES {
                return Err(failed(format!(
                    "more than {} MiB of files (it is served from memory)",
                    MAX_STATIC_BYTES / (1024 * 1024)
                )));
            }
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            let url_path: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            assets = assets.owned(&url_path.join("/"), contents);
        }
    }
    Ok(assets)
}

/// The stage `wsgw local` serves: the first API's first `AWS::ApiGatewayV2::Stage` (its
/// name and stage variables), or `local` when the template declares none.
fn served_stage(stack: &Stack) -> ServedStage {
    match stack.apis.first().and_then(|api| api.stages.first()) {
        Some(stage) => ServedStage {
            name: stage.name.clone(),
            variables: stage.stage_variables.clone(),
        },
        None => ServedStage::new(wsgw_memory::LOCAL_STAGE),
    }
}

/// The stage an API is served at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServedStage {
    /// Its name: the path of `ws://ADDR/{name}`.
    pub name: String,
    /// Its `StageVariables`.
    pub variables: BTreeMap<String, String>,
}

impl ServedStage {
    /// A stage of this name without stage variables.
    ///
    /// ```
    /// let stage = wsgw::ServedStage::new("production");
    /// assert!(stage.variables.is_empty());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        ServedStage {
            name: name.into(),
            variables: BTreeMap::new(),
        }
    }
}

/// A template's API being served: the gateway, and the run behind it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Serving {
    /// The LocalGateway serving the API.
    pub gateway: RunningGateway,
    /// The API served.
    pub api: StackApi,
    /// Its stage.
    pub stage: ServedStage,
    /// The functions, tables and DynamoDB behind it.
    pub run: LocalRun,
    watching: Option<tokio::task::JoinHandle<()>>,
}

impl Serving {
    /// `ws://ADDR/{stage}`.
    pub fn stage_url(&self) -> String {
        self.gateway.stage_url()
    }

    /// `http://ADDR/{stage}/@connections`.
    pub fn connections_url(&self) -> String {
        format!("{}/@connections", self.gateway.management_endpoint())
    }

    /// Rebuilds a function when its sources change (checked every `interval`) and
    /// replaces its instances; the WebSocket connections stay open, their next events go
    /// to the new instances.
    pub fn watch(&mut self, interval: Duration) {
        let watcher = self.run.watcher();
        let pool = self.run.pool.clone();
        self.watching = Some(tokio::spawn(watcher.run(pool, interval)));
    }

    /// What a user needs once the API is served: its URL, `@connections`, and what is
    /// not served.
    pub fn ready_lines(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "wsgw local: serving WebSocket API {} ({}) at {}",
            self.api.logical_id,
            self.api.api_id,
            self.stage_url()
        );
        let _ = writeln!(
            out,
            "wsgw local: @connections at {}/{{connectionId}}",
            self.connections_url()
        );
        let address = self.gateway.local_addr();
        for api in &self.run.stack.rest_apis {
            let url = match api.stage_name.as_str() {
                DEFAULT_HTTP_STAGE => format!("http://{address}"),
                stage => format!("http://{address}/{stage}"),
            };
            let _ = writeln!(
                out,
                "wsgw local: serving {} {} at {url} (its routes also at http://{address}/, where a page served beside the API finds them)",
                api.kind, api.logical_id
            );
            for route in &api.routes {
                let _ = writeln!(
                    out,
                    "wsgw local:   {} {} -> {}",
                    route.method, route.path, route.function
                );
            }
        }
        if self.run.assets.contains("/") {
            let _ = writeln!(
                out,
                "wsgw local: the page of --static-dir at http://{}/",
                self.gateway.local_addr()
            );
        }
        for stage in self.api.stages.iter().skip(1) {
            let _ = writeln!(
                out,
                "wsgw local: stage {} of {} not served (one stage per run)",
                stage.name, self.api.logical_id
            );
        }
        for api in self.run.stack.apis.iter().skip(1) {
            let _ = writeln!(
                out,
                "wsgw local: WebSocket API {} not served (one API per run)",
                api.logical_id
            );
        }
        if self.watching.is_some() {
            let _ = writeln!(
                out,
                "wsgw local: watching the functions' sources (a change rebuilds the function; connections stay open)"
            );
        }
        out
    }

    /// Closes every connection (running `$disconnect`), then stops the functions and
    /// moto's server.
    pub async fn shutdown(self) {
        if let Some(watching) = self.watching {
            watching.abort();
        }
        if let Err(error) = self.gateway.shutdown().await {
            tracing::warn!(%error, "the gateway did not stop cleanly");
        }
        self.run.shutdown().await;
    }

    /// Serves until Ctrl-C or SIGTERM, then shuts down as [`shutdown`](Self::shutdown).
    ///
    /// The signals are listened for from this call on (call it before printing the
    /// ready lines, so a supervisor stopping wsgw as soon as it printed is obeyed).
    pub fn run_until_signal(self) -> impl std::future::Future<Output = ()> + Send {
        let signal = shutdown_signal();
        async move {
            signal.await;
            eprintln!("wsgw local: stopping");
            self.shutdown().await;
        }
    }
}

/// Ctrl-C or SIGTERM, listened for from this call on.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
