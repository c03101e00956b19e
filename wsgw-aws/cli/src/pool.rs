//! The function pool: each function of the template as real processes in Lambda mode,
//! with instances that behave like Lambda's.
//!
//! An instance is a child process started with `AWS_LAMBDA_RUNTIME_API` pointing at a
//! Runtime API of its own ([`LambdaRuntimeEmulator`]) and the environment Lambda gives a
//! function (the template's variables, name, memory, region, dummy credentials) plus the
//! local services' endpoints, both the SDK-standard variables and wsgw's own, so a
//! function built on plain `lambda_runtime` and `aws-sdk-*` works as well as a wsgw one.
//!
//! [`FunctionPool::invoke`] takes an idle instance or starts one (a cold start, logged
//! with its duration) up to the function's limit, then waits for one to free up. An
//! instance serves one invocation at a time and is kept for the next; an invocation
//! past the function's timeout kills its instance ([`InvokeError::Timeout`]), an
//! instance that exits mid-invocation fails it ([`InvokeError::Crashed`]) and the next
//! invocation starts a new one. Every line a function writes is shown prefixed with its
//! logical id ([`Output`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, Semaphore};
use wsgw_aws::template::{Stack, StackFunction};
use wsgw_memory::gateway::{Invocation, LambdaRuntimeEmulator, RuntimeSettings};

/// Instances per function when the template sets no `ReservedConcurrentExecutions`.
pub const DEFAULT_MAX_INSTANCES: usize = 10;

/// How long a new instance may take to ask for its first event (Lambda's init phase
/// limit is 10 s; a debug build of a large binary gets more).
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which stream of a function a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line a function wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionLine {
    /// The function's logical id.
    pub function: String,
    /// The instance's number (1 for the function's first instance).
    pub instance: u64,
    /// Which stream.
    pub stream: Stream,
    /// The line, without its line ending.
    pub line: String,
}

/// Where the functions' output goes.
#[derive(Debug, Clone, Default)]
pub enum Output {
    /// Printed as `LogicalId | line`, standard output to standard output and standard
    /// error to standard error.
    #[default]
    Prefixed,
    /// Sent to a channel (tests read it there).
    Channel(mpsc::UnboundedSender<FunctionLine>),
}

impl Output {
    fn emit(&self, line: FunctionLine) {
        match self {
            Output::Prefixed => match line.stream {
                Stream::Stdout => println!("{} | {}", line.function, line.line),
                Stream::Stderr => eprintln!("{} | {}", line.function, line.line),
            },
            Output::Channel(sender) => {
                let _ = sender.send(line);
            }
        }
    }
}

/// What every instance of a pool shares: the local services' endpoints, the region and
/// credentials it is told, and the limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolSettings {
    /// The DynamoDB endpoint (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub dynamodb_endpoint: Option<String>,
    /// The `@connections` endpoint, with its stage (`http://127.0.0.1:8080/production`:
    /// `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`).
    pub management_endpoint: Option<String>,
    /// `AWS_REGION` and `AWS_DEFAULT_REGION`.
    pub region: String,
    /// The account of the functions' ARNs.
    pub account_id: String,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (Lambda gives every function the
    /// role's keys; locally, keys the local services accept).
    pub credentials: (String, String),
    /// Instances per function when the template sets no `ReservedConcurrentExecutions`.
    pub max_instances: usize,
    /// How long a new instance may take to ask for its first event.
    pub init_timeout: Duration,
    /// Where the functions' output goes.
    pub output: Output,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            dynamodb_endpoint: None,
            management_endpoint: None,
            region: "us-east-1".to_owned(),
            account_id: wsgw_aws::template::LOCAL_ACCOUNT_ID.to_owned(),
            credentials: ("wsgw-local".to_owned(), "wsgw-local".to_owned()),
            max_instances: DEFAULT_MAX_INSTANCES,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            output: Output::Prefixed,
        }
    }
}

impl PoolSettings {
    /// Points the functions at a DynamoDB endpoint.
    pub fn with_dynamodb_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.dynamodb_endpoint = Some(endpoint.into());
        self
    }

    /// Points the functions at an `@connections` endpoint (`http://ADDR/{stage}`).
    pub fn with_management_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.management_endpoint = Some(endpoint.into());
        self
    }

    /// Sends the functions' output to `output`.
    pub fn with_output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Sets the instances per function when the template sets no limit.
    pub fn with_max_instances(mut self, max_instances: usize) -> Self {
        self.max_instances = max_instances.max(1);
        self
    }
}

/// One function as the pool runs it: its program, its Lambda settings and environment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolFunction {
    /// The logical id.
    pub logical_id: String,
    /// The binary, `None` when the function is not run (then [`unavailable`](Self::unavailable) says why).
    pub program: Option<PathBuf>,
    /// Name, memory, timeout, region.
    pub runtime: RuntimeSettings,
    /// The template's environment variables, resolved.
    pub environment: BTreeMap<String, String>,
    /// `Handler` (`_HANDLER`).
    pub handler: Option<String>,
    /// `Runtime` (`AWS_EXECUTION_ENV`).
    pub runtime_name: Option<String>,
    /// `LoggingConfig.LogFormat` (`AWS_LAMBDA_LOG_FORMAT`).
    pub log_format: Option<String>,
    /// At most this many instances at once (`ReservedConcurrentExecutions`).
    pub max_instances: Option<usize>,
    /// Why it is not run.
    pub unavailable: Option<String>,
}

impl PoolFunction {
    /// A function run from `program` with default Lambda settings (128 MB, 3 s).
    pub fn new(logical_id: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        let logical_id = logical_id.into();
        PoolFunction {
            runtime: RuntimeSettings::new(logical_id.clone()).with_timeout(Duration::from_secs(3)),
            logical_id,
            program: Some(program.into()),
            environment: BTreeMap::new(),
            handler: Some("bootstrap".to_owned()),
            runtime_name: Some("provided.al2023".to_owned()),
            log_format: None,
            max_instances: None,
            unavailable: None,
        }
    }

    /// The template's function, run from `program` (`None` for one that is not run).
    pub fn from_stack(function: &StackFunction, stack: &Stack, program: Option<PathBuf>) -> Self {
        let settings = &stack.settings;
        PoolFunction {
            logical_id: function.logical_id.clone(),
            unavailable: function
                .not_runnable
                .clone()
                .or_else(|| program.is_none().then(|| "it was not built".to_owned())),
            program,
            runtime: RuntimeSettings::new(function.function_name.clone())
                .with_memory_size_mb(function.memory_size_mb)
                .with_timeout(function.timeout)
                .with_region(settings.region.clone(), settings.account_id.clone()),
            environment: function.environment.clone(),
            handler: function.handler.clone(),
            runtime_name: function.runtime.clone(),
            log_format: function.log_format.clone(),
            max_instances: function.reserved_concurrency.map(|count| count as usize),
        }
    }

    /// Sets an environment variable.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.environment.insert(name.into(), value.into());
        self
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.runtime = self.runtime.with_timeout(timeout);
        self
    }

    /// Sets the instance limit.
    pub fn with_max_instances(mut self, max_instances: usize) -> Self {
        self.max_instances = Some(max_instances.max(1));
        self
    }
}

/// Why an invocation failed. API Gateway answers the client `Internal server error` for
/// any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The function reported an error (`errorType`, `errorMessage`); its instance stays.
    #[error("function {function} failed: {error_type}: {error_message}")]
    Function {
        /// The function's logical id.
        function: String,
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        error_message: String,
    },
    /// The invocation ran past the function's timeout; its instance was killed.
    #[error("function {function}: Task timed out after {:.2} seconds", .timeout.as_secs_f64())]
    Timeout {
        /// The function's logical id.
        function: String,
        /// The function's timeout.
        timeout: Duration,
    },
    /// The instance exited (or failed to start) before answering.
    #[error("function {function}: its process {detail}")]
    Crashed {
        /// The function's logical id.
        function: String,
        /// What happened (`exited with status 101`, the init error …).
        detail: String,
    },
    /// The function is not run locally.
    #[error("function {function} is not run locally: {reason}")]
    Unavailable {
        /// The function's logical id.
        function: String,
        /// Why.
        reason: String,
    },
    /// The pool has no function of that logical id.
    #[error("no function {0} in the pool")]
    UnknownFunction(String),
    /// The process could not be started.
    #[error("function {function}: cannot start {program}: {source}")]
    Start {
        /// The function's logical id.
        function: String,
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl InvokeError {
    /// The function's logical id.
    pub fn function(&self) -> &str {
        match self {
            InvokeError::Function { function, .. }
            | InvokeError::Timeout { function, .. }
            | InvokeError::Crashed { function, .. }
            | InvokeError::Unavailable { function, .. }
            | InvokeError::Start { function, .. } => function,
            InvokeError::UnknownFunction(function) => function,
        }
    }
}

/// A running instance: its process and its Runtime API.
struct Instance {
    number: u64,
    generation: u64,
    runtime: LambdaRuntimeEmulator,
    child: Child,
}

impl Instance {
    fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

struct Slot {
    function: Mutex<PoolFunction>,
    permits: Semaphore,
    idle: Mutex<Vec<Instance>>,
    generation: AtomicU64,
    started: AtomicUsize,
    /// Invocations given an instance (prewarming not counted).
    invocations: AtomicUsize,
    numbers: AtomicU64,
    /// The process ids of the living instances, idle or busy.
    pids: Mutex<HashMap<u64, u32>>,
}

impl Slot {
    fn lock_function(&self) -> std::sync::MutexGuard<'_, PoolFunction> {
        self.function.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, instance: &Instance) {
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&instance.number);
    }
}

/// Every function of a template as processes in Lambda mode; see the [module docs](self).
///
/// Cheap to clone: clones share the instances.
#[derive(Clone)]
pub struct FunctionPool {
    slots: Arc<BTreeMap<String, Arc<Slot>>>,
    settings: Arc<PoolSettings>,
}

impl std::fmt::Debug for FunctionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionPool")
            .field("functions", &self.slots.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FunctionPool {
    /// A pool of these functions; no instance is started until one is needed.
    pub fn new(functions: impl IntoIterator<Item = PoolFunction>, settings: PoolSettings) -> Self {
        let slots = functions
            .into_iter()
            .map(|function| {
                let limit = function
                    .max_instances
                    .unwrap_or(settings.max_instances)
                    .max(1);
                (
                    function.logical_id.clone(),
                    Arc::new(Slot {
                        function: Mutex::new(function),
                        permits: Semaphore::new(limit),
                        idle: Mutex::new(Vec::new()),
                        generation: AtomicU64::new(0),
                        started: AtomicUsize::new(0),
                        invocations: AtomicUsize::new(0),
                        numbers: AtomicU64::new(0),
                        pids: Mutex::new(HashMap::new()),
                    }),
                )
            })
            .collect();
        FunctionPool {
            slots: Arc::new(slots),
            settings: Arc::new(settings),
        }
    }

    /// What every instance shares (endpoints, region, credentials, limits).
    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    /// The logical ids of the pool's functions.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    fn slot(&self, logical_id: &str) -> Result<&Arc<Slot>, InvokeError> {
        self.slots
            .get(logical_id)
            .ok_or_else(|| InvokeError::UnknownFunction(logical_id.to_owned()))
    }

    /// Invokes a function with `event` and returns its answer, as Lambda does for API
    /// Gateway: an idle instance or a new one (up to the function's limit, then it
    /// waits), the function's timeout enforced.
    pub async fn invoke(&self, logical_id: &str, event: Value) -> Result<Value, InvokeError> {
        let slot = self.slot(logical_id)?;
        let timeout = {
            let function = slot.lock_function();
            if let Some(reason) = &function.unavailable {
                return Err(InvokeError::Unavailable {
                    function: logical_id.to_owned(),
                    reason: reason.clone(),
                });
            }
            function.runtime.timeout
        };
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = slot
            .permits
            .acquire()
            .await
            .map_err(|_| InvokeError::Unavailable {
                function: logical_id.to_owned(),
                reason: "the pool is shutting down".to_owned(),
            })?;
        let mut instance = match self.take_idle(slot) {
            Some(instance) => instance,
            None => self.start_instance(logical_id, slot).await?,
        };
        slot.invocations.fetch_add(1, Ordering::SeqCst);
        let answer = tokio::select! {
            answer = instance.runtime.invoke(event, timeout) => Some(answer),
            _ = instance.child.wait() => None,
        };
        match answer {
            Some(Some(Invocation::Response(response))) => {
                self.give_back(slot, instance);
                Ok(response)
            }
            Some(Some(Invocation::Error(error))) => {
                let text = |name: &str| {
                    error
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let (error_type, error_message) = (text("errorType"), text("errorMessage"));
                self.give_back(slot, instance);
                Err(InvokeError::Function {
                    function: logical_id.to_owned(),
                    error_type,
                    error_message,
                })
            }
            Some(None) => {
                tracing::warn!(
                    function = logical_id,
                    instance = instance.number,
                    timeout_s = timeout.as_secs_f64(),
                    "invocation timed out: instance killed"
                );
                slot.forget(&instance);
                let _ = instance.child.kill().await;
                Err(InvokeError::Timeout {
                    function: logical_id.to_owned(),
                    timeout,
                })
            }
            None => {
                slot.forget(&instance);
                let detail = exit_detail(&mut instance);
                tracing::warn!(
                    function = logical_id,
                    instance = instance.number,
                    detail,
                    "instance crashed mid-invocation"
                );
                Err(InvokeError::Crashed {
                    function: logical_id.to_owned(),
                    detail,
                })
            }
        }
    }

    /// An idle instance of the current generation that is still running.
    fn take_idle(&self, slot: &Slot) -> Option<Instance> {
        let generation = slot.generation.load(Ordering::SeqCst);
        let mut idle = slot.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut instance) = idle.pop() {
            if instance.generation == generation && !instance.has_exited() {
                return Some(instance);
            }
            slot.forget(&instance);
            // Dropping kills it (kill_on_drop).
        }
        None
    }

    fn give_back(&self, slot: &Slot, mut instance: Instance) {
        if instance.generation == slot.generation.load(Ordering::SeqCst) && !instance.has_exited() {
            slot.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(instance);
        } else {
            slot.forget(&instance);
        }
    }

    /// Starts an instance and waits until it asks for its first event (a cold start).
    async fn start_instance(&self, logical_id: &str, slot: &Slot) -> Result<Instance, InvokeError> {
        let function = slot.lock_function().clone();
        let Some(program) = function.program.clone() else {
            return Err(InvokeError::Unavailable {
                function: logical_id.to_owned(),
                reason: "it has no program".to_owned(),
            });
        };
        let generation = slot.generation.load(Ordering::SeqCst);
        let start_error = |source| InvokeError::Start {
            function: logical_id.to_owned(),
            program: program.display().to_string(),
            source,
        };
        let runtime = LambdaRuntimeEmulator::start_with(function.runtime.clone())
            .await
            .map_err(start_error)?;
        let mut command = self.command(&function, &program, &runtime);
        let started_at = Instant::now();
        let mut child = command.spawn().map_err(start_error)?;
        let number = slot.numbers.fetch_add(1, Ordering::SeqCst) + 1;
        slot.started.fetch_add(1, Ordering::SeqCst);
        if let Some(stdout) = child.stdout.take() {
            self.forward(stdout, logical_id, number, Stream::Stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            self.forward(stderr, logical_id, number, Stream::Stderr);
        }
        let mut instance = Instance {
            number,
            generation,
            runtime,
            child,
        };
        let ready = tokio::select! {
            () = instance.runtime.polled() => Ok(()),
            _ = instance.child.wait() => Err(None),
            () = tokio::time::sleep(self.settings.init_timeout) => Err(Some(self.settings.init_timeout)),
        };
        match ready {
            Ok(()) => {
                let init_ms = started_at.elapsed().as_secs_f64() * 1e3;
                tracing::info!(
                    function = logical_id,
                    instance = number,
                    init_ms = format!("{init_ms:.1}"),
                    "cold start"
                );
                if let Some(pid) = instance.child.id() {
                    slot.pids
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(number, pid);
                }
                Ok(instance)
            }
            Err(timed_out) => {
                let detail = match timed_out {
                    Some(limit) => {
                        let _ = instance.child.kill().await;
                        format!(
                            "did not ask for an event within {limit:?} of starting (init phase)"
                        )
                    }
                    None => exit_detail(&mut instance),
                };
                tracing::warn!(
                    function = logical_id,
                    instance = number,
                    detail,
                    "instance failed to start"
                );
                Err(InvokeError::Crashed {
                    function: logical_id.to_owned(),
                    detail,
                })
            }
        }
    }

    /// The instance's command: the program in Lambda mode with Lambda's environment.
    fn command(
        &self,
        function: &PoolFunction,
        program: &Path,
        runtime: &LambdaRuntimeEmulator,
    ) -> Command {
        let settings = &self.settings;
        let mut command = Command::new(program);
        command.env_clear();
        // What the process needs from the host to run at all, and what a developer
        // turns on to debug it; nothing else of the host's environment leaks in.
        for name in [
            "PATH",
            "HOME",
            "LD_LIBRARY_PATH",
            "RUST_BACKTRACE",
            "RUST_LOG",
            "SYSTEMROOT",
        ] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.env("LANG", "en_US.UTF-8").env("TZ", ":UTC");
        for (name, value) in &function.environment {
            command.env(name, value);
        }
        for (name, value) in runtime.function_env() {
            command.env(name, value);
        }
        let task_root = program.parent().unwrap_or_else(|| Path::new("."));
        command
            .env("AWS_DEFAULT_REGION", &settings.region)
            .env("AWS_ACCESS_KEY_ID", &settings.credentials.0)
            .env("AWS_SECRET_ACCESS_KEY", &settings.credentials.1)
            .env("AWS_SESSION_TOKEN", "wsgw-local")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("LAMBDA_TASK_ROOT", task_root)
            .env("LAMBDA_RUNTIME_DIR", task_root);
        if let Some(handler) = &function.handler {
            command.env("_HANDLER", handler);
        }
        if let Some(runtime_name) = &function.runtime_name {
            command.env("AWS_EXECUTION_ENV", format!("AWS_Lambda_{runtime_name}"));
        }
        if let Some(format) = &function.log_format {
            command.env("AWS_LAMBDA_LOG_FORMAT", format);
        }
        // The local services, as the AWS SDKs' standard variables (wsgw's crates read
        // them too); they win over the template's values, which name deployed endpoints.
        if let Some(endpoint) = &settings.dynamodb_endpoint {
            command.env(wsgw_aws::dynamo::DYNAMODB_ENDPOINT_ENV, endpoint);
        }
        if let Some(endpoint) = &settings.management_endpoint {
            command.env(wsgw_aws::MANAGEMENT_ENDPOINT_ENV, endpoint);
        }
        command
            .current_dir(task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    fn forward(
        &self,
        stream: impl AsyncRead + Unpin + Send + 'static,
        logical_id: &str,
        instance: u64,
        kind: Stream,
    ) {
        let output = self.settings.output.clone();
        let function = logical_id.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                output.emit(FunctionLine {
                    function: function.clone(),
                    instance,
                    stream: kind,
                    line,
                });
            }
        });
    }

    /// Starts one instance of a function ahead of its first invocation, so a function
    /// that cannot start says so before a client connects. It counts as a cold start.
    pub async fn prewarm(&self, logical_id: &str) -> Result<(), InvokeError> {
        let slot = self.slot(logical_id)?;
        if let Some(reason) = &slot.lock_function().unavailable {
            return Err(InvokeError::Unavailable {
                function: logical_id.to_owned(),
                reason: reason.clone(),
            });
        }
        let instance = self.start_instance(logical_id, slot).await?;
        self.give_back(slot, instance);
        Ok(())
    }

    /// Replaces a function's instances (after a rebuild, for `--watch`): idle ones are
    /// stopped now, busy ones when their invocation ends; the next invocation starts
    /// the new build. `program` replaces the binary when it moved.
    pub fn replace_instances(
        &self,
        logical_id: &str,
        program: Option<PathBuf>,
    ) -> Result<(), InvokeError> {
        let slot = self.slot(logical_id)?;
        if let Some(program) = program {
            slot.lock_function().program = Some(program);
        }
        slot.generation.fetch_add(1, Ordering::SeqCst);
        let stale: Vec<Instance> =
            std::mem::take(&mut *slot.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for instance in &stale {
            slot.forget(instance);
        }
        tracing::info!(
            function = logical_id,
            stopped = stale.len(),
            "instances replaced"
        );
        Ok(())
    }

    /// How many instances of a function have been started so far.
    pub fn instances_started(&self, logical_id: &str) -> usize {
        self.slots
            .get(logical_id)
            .map_or(0, |slot| slot.started.load(Ordering::SeqCst))
    }

    /// How many invocations of a function have run (or are running) so far.
    pub fn invocations(&self, logical_id: &str) -> usize {
        self.slots
            .get(logical_id)
            .map_or(0, |slot| slot.invocations.load(Ordering::SeqCst))
    }

    /// The process ids of a function's living instances, idle or busy.
    pub fn process_ids(&self, logical_id: &str) -> Vec<u32> {
        self.slots.get(logical_id).map_or_else(Vec::new, |slot| {
            slot.pids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .copied()
                .collect()
        })
    }

    /// Stops every idle instance (busy ones stop when their invocation ends and the
    /// pool is dropped).
    pub fn shutdown(&self) {
        for slot in self.slots.values() {
            slot.generation.fetch_add(1, Ordering::SeqCst);
            let stale =
                std::mem::take(&mut *slot.idle.lock().unwrap_or_else(PoisonError::into_inner));
            for instance in &stale {
                slot.forget(instance);
            }
        }
    }
}

/// How an instance ended: its exit status and, when it reported one, its init error.
fn exit_detail(instance: &mut Instance) -> String {
    let status = match instance.child.try_wait() {
        Ok(Some(status)) => format!("exited ({status})"),
        _ => "stopped answering".to_owned(),
    };
    match instance.runtime.init_error() {
        Some(error) => format!("{status} after reporting an init error: {error}"),
        None => status,
    }
}
