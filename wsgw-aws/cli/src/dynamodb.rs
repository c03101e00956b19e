//! DynamoDB for a local stack: the template's tables created at an endpoint
//! ([`create_tables`]), and, when the user names none, moto's DynamoDB server started
//! for the run ([`MotoServer`]): installed on first use into a per-user cache directory
//! with pinned versions ([`MOTO_REQUIREMENTS`]), on a free loopback port, stopped when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use wsgw_aws::dynamo::TableOutcome;
use wsgw_aws::template::Stack;

/// The pip requirements of moto's server, every package pinned.
pub const MOTO_REQUIREMENTS: &str = include_str!("../moto-requirements.txt");

/// How moto's server is started: `python -c MOTO_SERVER -H HOST -p PORT`, moto's own
/// server handling one request at a time, so that a conditional write is atomic as on
/// DynamoDB (moto's threaded server checks the condition and writes without a lock).
pub const MOTO_SERVER: &str = include_str!("../moto_server.py");

/// The moto version [`MOTO_REQUIREMENTS`] pins.
pub const MOTO_VERSION: &str = "5.2.6";

/// The variable naming the cache directory (default: the user's cache directory's
/// `wsgw/`, `~/.cache/wsgw` on Linux).
pub const CACHE_DIR_ENV: &str = "WSGW_CACHE_DIR";

/// The variable naming the Python that creates moto's virtualenv (default `python3`).
pub const PYTHON_ENV: &str = "WSGW_PYTHON";

/// How long moto's server may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why DynamoDB could not be made ready.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DynamoError {
    /// No cache directory to install moto into.
    #[error(
        "no cache directory to install moto into: set {CACHE_DIR_ENV}, or pass --dynamodb-endpoint"
    )]
    NoCacheDir,
    /// Installing moto failed.
    #[error("cannot install moto's server into {venv}: {problem} (pass --dynamodb-endpoint URL to use another DynamoDB-compatible server)")]
    Install {
        /// The virtualenv.
        venv: PathBuf,
        /// What failed.
        problem: String,
    },
    /// moto's server did not start.
    #[error("moto's DynamoDB server did not start: {0}")]
    Start(String),
    /// A table could not be created or has another shape.
    #[error("table {logical_id} at {endpoint}: {source}")]
    Table {
        /// The table's logical id.
        logical_id: String,
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: wsgw_core::Error,
    },
}

/// The cache directory: `$WSGW_CACHE_DIR`, or the user's cache directory's `wsgw/`.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::cache_dir().map(|dir| dir.join("wsgw")),
    }
}

/// moto's server, running for this process; killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    endpoint: String,
    child: Child,
}

impl MotoServer {
    /// Installs moto into `cache` when needed (announced on standard error), then starts
    /// its server on a free loopback port and waits until it accepts connections.
    pub async fn start(cache: &Path) -> Result<Self, DynamoError> {
        let python = ensure_installed(cache).await?;
        let mut last_problem = String::new();
        // A port picked free can be taken before moto binds it: try a few.
        for _ in 0..3 {
            let port = free_port().map_err(|error| DynamoError::Start(error.to_string()))?;
            match Self::start_on(&python, port).await {
                Ok(server) => return Ok(server),
                Err(problem) => last_problem = problem,
            }
        }
        Err(DynamoError::Start(last_problem))
    }

    async fn start_on(python: &Path, port: u16) -> Result<Self, String> {
        let mut child = Command::new(python)
            .args([
                "-c",
                MOTO_SERVER,
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", python.display()))?;
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                // moto logs every request on standard error: read on, or once the pipe's
                // buffer is full (some 1,000 requests) moto blocks writing its log and
                // every function waiting on DynamoDB with it.
                if let Some(log) = child.stderr.take() {
                    tokio::spawn(drain_log(log));
                }
                return Ok(MotoServer {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    child,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                return Err(format!("it exited ({status}): {}", stderr.trim()));
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(format!(
                    "port {port} did not accept connections within {STARTUP_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Reads moto's log until it ends, each line a debug event (`RUST_LOG=wsgw=debug`
/// shows them).
async fn drain_log(log: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(log).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(moto = %line);
    }
}

/// The virtualenv of [`MOTO_REQUIREMENTS`] in `cache`, named by a digest of the
/// requirements, so a new pin installs next to the old one.
pub fn moto_venv(cache: &Path) -> PathBuf {
    // FNV-1a: a name, not a security boundary.
    let digest = MOTO_REQUIREMENTS
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    cache.join(format!("moto-{MOTO_VERSION}-{digest:016x}"))
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Makes the virtualenv hold [`MOTO_REQUIREMENTS`] and returns its Python. The install
/// goes into a directory of its own, renamed into place when complete, so a failed or
/// interrupted install leaves nothing half-made and two first runs at once do not mix
/// their files (the second to finish uses the first's).
pub async fn ensure_installed(cache: &Path) -> Result<PathBuf, DynamoError> {
    let venv = moto_venv(cache);
    let python = venv_python(&venv);
    if python.exists() {
        return Ok(python);
    }
    let fail = |problem: String| DynamoError::Install {
        venv: venv.clone(),
        problem,
    };
    eprintln!(
        "wsgw: installing moto {MOTO_VERSION}'s DynamoDB server into {} (first use; pinned versions)",
        venv.display()
    );
    std::fs::create_dir_all(cache)
        .map_err(|error| fail(format!("cannot create {}: {error}", cache.display())))?;
    // One staging directory per install, not per process: two first uses at once in one
    // process (tests, or two stacks in one `wsgw`) must not remove each other's half-made
    // virtualenv.
    static INSTALLS: AtomicU64 = AtomicU64::new(0);
    let staging = cache.join(format!(
        ".{}-installing-{}-{}",
        venv.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id(),
        INSTALLS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let installed = install(&staging).await;
    if let Err(problem) = installed {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(fail(problem));
    }
    if let Err(error) = std::fs::rename(&staging, &venv) {
        let _ = std::fs::remove_dir_all(&staging);
        if !python.exists() {
            return Err(fail(format!("cannot move the install into place: {error}")));
        }
    }
    Ok(python)
}

/// A virtualenv at `dir` with [`MOTO_REQUIREMENTS`] installed.
async fn install(dir: &Path) -> Result<(), String> {
    let base = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_owned());
    run(Command::new(&base).args(["-m", "venv"]).arg(dir))
        .await
        .map_err(|problem| format!("`{base} -m venv` failed ({problem}): install Python 3 with venv (Debian: apt-get install python3-venv), or set {PYTHON_ENV}"))?;
    let requirements = dir.join("requirements.txt");
    std::fs::write(&requirements, MOTO_REQUIREMENTS)
        .map_err(|error| format!("cannot write {}: {error}", requirements.display()))?;
    run(Command::new(venv_python(dir))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
        ])
        .arg(&requirements))
    .await
    .map_err(|problem| format!("pip install failed ({problem}); is PyPI reachable?"))
}

async fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A port free on loopback now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One table of the stack, made ready.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadyTable {
    /// Its logical id.
    pub logical_id: String,
    /// Its name.
    pub name: String,
    /// Created or reused.
    pub outcome: TableOutcome,
}

/// Creates the stack's tables at `endpoint` (key schema, attribute types, indexes, TTL),
/// reusing tables that exist with the same shape.
pub async fn create_tables(stack: &Stack, endpoint: &str) -> Result<Vec<ReadyTable>, DynamoError> {
    let client = wsgw_aws::dynamo::local_client(endpoint, Some(&stack.settings.region)).await;
    let mut ready = Vec::new();
    for table in &stack.tables {
        let outcome = wsgw_aws::dynamo::ensure_table(&client, &table.spec)
            .await
            .map_err(|source| DynamoError::Table {
                logical_id: table.logical_id.clone(),
                endpoint: endpoint.to_owned(),
                source,
            })?;
        ready.push(ReadyTable {
            logical_id: table.logical_id.clone(),
            name: table.spec.name.clone(),
            outcome,
        });
    }
    Ok(ready)
}
