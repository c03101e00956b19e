//! Named steps, the commands they run, and the background services they start.
//!
//! A [`Step`] either runs a command to completion ([`Action::Run`]) or starts a
//! long-running process that later steps use ([`Action::Start`]): a local AWS emulator,
//! a browser, a device simulator. A [`Pipeline`] runs steps in order, stops at the first
//! failure, and stops every process it started when it ends, successful or not, also on
//! a panic: each one is held by a [`ChildGuard`], which kills and reaps it on drop.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use crate::report;

/// A command line: program, arguments, extra environment, working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    removed_envs: Vec<OsString>,
    dir: Option<PathBuf>,
}

impl Cmd {
    /// A command running `program`.
    pub fn new(program: impl Into<OsString>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            removed_envs: Vec::new(),
            dir: None,
        }
    }

    /// `cargo`: the cargo that runs xtask (`$CARGO`, so the same toolchain), else the one
    /// on `PATH`.
    pub fn cargo() -> Self {
        Cmd::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((name.into(), value.into()));
        self
    }

    /// Leaves an inherited environment variable out of the command's environment.
    pub fn env_remove(mut self, name: impl Into<OsString>) -> Self {
        self.removed_envs.push(name.into());
        self
    }

    /// Runs the command in `dir` instead of the pipeline's root.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The program.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> impl Iterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// A [`Command`] for this line, run in `root` (unless it has its own directory) with
    /// `exports` (what started services published) and then its own variables set.
    fn command(&self, root: &Path, exports: &[(OsString, OsString)]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(self.dir.as_deref().unwrap_or(root));
        for name in &self.removed_envs {
            command.env_remove(name);
        }
        for (name, value) in exports.iter().chain(&self.envs) {
            command.env(name, value);
        }
        command
    }

    /// The line as a shell would take it, with `exports` in front.
    fn display_with(&self, exports: &[(OsString, OsString)]) -> String {
        let mut words: Vec<String> = Vec::new();
        if !self.removed_envs.is_empty() {
            words.push("env".to_owned());
            for name in &self.removed_envs {
                words.push("-u".to_owned());
                words.push(quote(name));
            }
        }
        words.extend(
            exports
                .iter()
                .chain(&self.envs)
                .map(|(name, value)| format!("{}={}", name.to_string_lossy(), quote(value))),
        );
        words.push(quote(&self.program));
        words.extend(self.args.iter().map(|arg| quote(arg)));
        let line = words.join(" ");
        match &self.dir {
            Some(dir) => format!("(cd {} && {line})", quote(dir.as_os_str())),
            None => line,
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_with(&[]))
    }
}

/// Quotes a word for a POSIX shell when it needs it.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | ',' | '=' | '+' | '@' | '%')
        });
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// When a started service counts as ready for the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// As soon as the process is spawned.
    Immediately,
    /// When a TCP connection to `addr` succeeds, at most `timeout` after the start.
    TcpPort {
        /// The address the service listens on (see [`free_port`]).
        addr: SocketAddr,
        /// How long to wait before the step fails.
        timeout: Duration,
    },
}

/// A long-running process a step starts for the steps after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    cmd: Cmd,
    ready: Ready,
    exports: Vec<(OsString, OsString)>,
}

impl Service {
    /// A service running `cmd`, ready once spawned. It should run as one process (not a
    /// shell script that forks): stopping it kills that process.
    pub fn new(cmd: Cmd) -> Self {
        Service {
            cmd,
            ready: Ready::Immediately,
            exports: Vec::new(),
        }
    }

    /// Waits for this before the next step runs.
    pub fn ready_when(mut self, ready: Ready) -> Self {
        self.ready = ready;
        self
    }

    /// Sets an environment variable for every later step (for example the emulator's
    /// endpoint URL).
    pub fn export(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.exports.push((name.into(), value.into()));
        self
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Runs a command to completion; the step fails unless it exits with status 0.
    Run(Cmd),
    /// Starts a service and keeps it running until the pipeline ends.
    Start(Service),
}

/// One named step of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step is for, printed before it runs and named when it fails.
    pub name: String,
    /// What it does.
    pub action: Action,
}

impl Step {
    /// A step that runs `cmd` to completion.
    pub fn run(name: impl Into<String>, cmd: Cmd) -> Self {
        Step {
            name: name.into(),
            action: Action::Run(cmd),
        }
    }

    /// A step that starts `service` for the steps after it.
    pub fn start(name: impl Into<String>, service: Service) -> Self {
        Step {
            name: name.into(),
            action: Action::Start(service),
        }
    }

    /// The command the step runs or starts.
    pub fn cmd(&self) -> &Cmd {
        match &self.action {
            Action::Run(cmd) => cmd,
            Action::Start(service) => &service.cmd,
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago, for a service to listen on.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A child process that is killed and reaped when the guard is dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
}

impl ChildGuard {
    /// Spawns `command`, naming it `name` in messages.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> io::Result<Self> {
        let child = command.spawn()?;
        Ok(ChildGuard {
            name: name.into(),
            child,
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has already exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Kills the process unless it already exited, and reaps it.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        eprintln!("xtask: stopping {} (pid {})", self.name, self.child.id());
        match self.child.kill() {
            Ok(()) => {}
            // It exited between try_wait and kill.
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => {}
            Err(error) => return Err(error),
        }
        self.child.wait()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!(
                "xtask: could not stop {} (pid {}): {error}",
                self.name,
                self.child.id()
            );
        }
    }
}

/// Why a step failed.
#[derive(Debug)]
pub enum Failure {
    /// The program could not be started (not installed, not executable ...).
    Spawn(io::Error),
    /// The command ran and exited unsuccessfully.
    Exit(ExitStatus),
    /// The service exited before it was ready.
    ExitedEarly(ExitStatus),
    /// The service did not become ready in time.
    NotReady {
        /// The address that did not accept connections.
        addr: SocketAddr,
        /// How long it was given.
        timeout: Duration,
    },
    /// Waiting for the process failed.
    Wait(io::Error),
}

/// A failed step: which one, the command line, and why.
#[derive(Debug)]
pub struct StepFailure {
    /// The step's name.
    pub step: String,
    /// The command line as printed.
    pub command: String,
    /// What went wrong.
    pub failure: Failure,
    /// The command's last output lines (empty for a service or a command that never ran).
    pub output_tail: Vec<String>,
}

impl StepFailure {
    /// The exit code xtask should end with: the command's own code when it has one,
    /// 128 + signal when a signal ended it (Unix), otherwise 1.
    pub fn exit_code(&self) -> u8 {
        match &self.failure {
            Failure::Exit(status) | Failure::ExitedEarly(status) => exit_code_of(*status),
            _ => 1,
        }
    }
}

fn exit_code_of(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code)
            .ok()
            .filter(|code| *code != 0)
            .unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(1);
        }
    }
    1
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let StepFailure {
            step,
            command,
            failure,
            ..
        } = self;
        match failure {
            Failure::Spawn(error) => {
                write!(f, "step `{step}` failed: could not start `{command}`: {error}")
            }
            Failure::Exit(status) => write!(f, "step `{step}` failed: `{command}` {status}"),
            Failure::ExitedEarly(status) => write!(
                f,
                "step `{step}` failed: `{command}` {status} before it was ready"
            ),
            Failure::NotReady { addr, timeout } => write!(
                f,
                "step `{step}` failed: `{command}` did not accept connections on {addr} within {timeout:?}"
            ),
            Failure::Wait(error) => {
                write!(f, "step `{step}` failed: waiting for `{command}`: {error}")
            }
        }
    }
}

impl std::error::Error for StepFailure {}

/// Runs steps in order from a root directory and owns the services they start.
///
/// Services are stopped, last started first, when the pipeline is dropped.
#[derive(Debug)]
pub struct Pipeline {
    root: PathBuf,
    dry_run: bool,
    exports: Vec<(OsString, OsString)>,
    services: Vec<ChildGuard>,
}

impl Pipeline {
    /// A pipeline running commands in `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Pipeline {
            root: root.into(),
            dry_run: false,
            exports: Vec::new(),
            services: Vec::new(),
        }
    }

    /// Only print the steps, run nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The services started so far and still held.
    pub fn services(&self) -> &[ChildGuard] {
        &self.services
    }

    /// Runs every step in order; stops at the first failure and returns it. Long steps
    /// say every 30 s that they are still running; a summary of every step run (result,
    /// tests passed and failed, time) closes the run, failed or not.
    pub fn run(&mut self, task: &str, steps: &[Step]) -> Result<(), StepFailure> {
        let started = Instant::now();
        let mut reports = Vec::new();
        let outcome = self.run_steps(task, steps, &mut reports);
        if !self.dry_run {
            println!("{}", report::summary(task, &reports, started.elapsed()));
        }
        outcome
    }

    fn run_steps(
        &mut self,
        task: &str,
        steps: &[Step],
        reports: &mut Vec<report::StepReport>,
    ) -> Result<(), StepFailure> {
        for (index, step) in steps.iter().enumerate() {
            let line = step.cmd().display_with(&self.exports);
            let verb = match step.action {
                Action::Run(_) => "$",
                Action::Start(_) => "$ (background)",
            };
            println!(
                "\nxtask {task} [{}/{}] {}\n{verb} {line}",
                index + 1,
                steps.len(),
                step.name
            );
            if self.dry_run {
                continue;
            }
            let step_started = Instant::now();
            let mut tests = report::TestCounts::default();
            let mut output_tail = Vec::new();
            let result = self.run_step(step, &mut tests, &mut output_tail);
            reports.push(report::StepReport {
                name: step.name.clone(),
                ok: result.is_ok(),
                took: step_started.elapsed(),
                tests,
            });
            result.map_err(|failure| StepFailure {
                step: step.name.clone(),
                command: line.clone(),
                failure,
                output_tail,
            })?;
        }
        Ok(())
    }

    fn run_step(
        &mut self,
        step: &Step,
        tests: &mut report::TestCounts,
        output_tail: &mut Vec<String>,
    ) -> Result<(), Failure> {
        match &step.action {
            Action::Run(cmd) => {
                let command = cmd.command(&self.root, &self.exports);
                let counted = report::run_counted(&step.name, command).map_err(Failure::Spawn)?;
                *tests = counted.counts;
                if !counted.status.success() {
                    *output_tail = counted.tail;
                    return Err(Failure::Exit(counted.status));
                }
            }
            Action::Start(service) => {
                let command = service.cmd.command(&self.root, &self.exports);
                let guard =
                    ChildGuard::spawn(step.name.clone(), command).map_err(Failure::Spawn)?;
                // Held from here on, so it is stopped even if it never gets ready.
                self.services.push(guard);
                if let Some(guard) = self.services.last_mut() {
                    wait_until_ready(guard, &service.ready)?;
                }
                self.exports.extend(service.exports.iter().cloned());
            }
        }
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        while let Some(service) = self.services.pop() {
            drop(service);
        }
    }
}

fn wait_until_ready(guard: &mut ChildGuard, ready: &Ready) -> Result<(), Failure> {
    let (addr, timeout) = match ready {
        Ready::Immediately => return Ok(()),
        Ready::TcpPort { addr, timeout } => (*addr, *timeout),
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = guard.try_wait().map_err(Failure::Wait)? {
            return Err(Failure::ExitedEarly(status));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::NotReady { addr, timeout });
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Cmd {
        Cmd::new("sh").args(["-c", script])
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creates a scratch directory");
        dir
    }

    /// Whether a process with this id still exists (zombies included: a reaped child
    /// disappears from /proc).
    #[cfg(target_os = "linux")]
    fn process_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn a_command_prints_as_a_shell_line_with_quoted_arguments() {
        let cmd = Cmd::new("cargo")
            .args(["test", "-p", "wsgw-core", "--features", "mock,conformance"])
            .arg("it's here")
            .env("RUST_LOG", "info debug");

        assert_eq!(
            cmd.to_string(),
            "RUST_LOG='info debug' cargo test -p wsgw-core --features mock,conformance 'it'\\''s here'"
        );
    }

    #[test]
    fn removed_variables_are_not_inherited_and_print_as_env_u() {
        let dir = scratch_dir("env-remove");
        let seen = dir.join("seen");
        let cmd = sh("printf '%s' \"${PATH:+path}-${HOME:-unset}\" > seen")
            .env_remove("HOME")
            .current_dir(&dir);
        assert!(cmd.to_string().contains("env -u HOME sh -c"));

        Pipeline::new(".")
            .run("test", &[Step::run("prints HOME", cmd)])
            .expect("the step runs");

        let printed = std::fs::read_to_string(&seen).expect("the step wrote its file");
        assert_eq!(printed, "path-unset");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failing_step_is_named_and_carries_the_commands_exit_code() {
        let mut pipeline = Pipeline::new(".");

        let failure = pipeline
            .run(
                "test",
                &[Step::run("exits with 3", sh("echo the reason >&2; exit 3"))],
            )
            .expect_err("the step fails");

        assert_eq!(failure.step, "exits with 3");
        assert_eq!(failure.output_tail, vec!["the reason".to_owned()]);
        assert_eq!(failure.exit_code(), 3);
        assert!(failure.to_string().contains("step `exits with 3` failed"));
    }

    #[test]
    fn a_missing_program_fails_its_step_with_exit_code_1() {
        let mut pipeline = Pipeline::new(".");

        let failure = pipeline
            .run(
                "test",
                &[Step::run("missing", Cmd::new("xtask-no-such-program"))],
            )
            .expect_err("the step fails");

        assert!(matches!(failure.failure, Failure::Spawn(_)));
        assert_eq!(failure.exit_code(), 1);
    }

    #[test]
    fn the_pipeline_stops_at_the_first_failing_step() {
        let dir = scratch_dir("fail-fast");
        let marker = dir.join("ran");
        let _ = std::fs::remove_file(&marker);
        let mut pipeline = Pipeline::new(&dir);

        let failure = pipeline
            .run(
                "test",
                &[
                    Step::run("passes", sh("true")),
                    Step::run("fails", sh("false")),
                    Step::run("never runs", sh("touch ran")),
                ],
            )
            .expect_err("the second step fails");

        assert_eq!(failure.step, "fails");
        assert!(!marker.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dry_run_runs_nothing() {
        let mut pipeline = Pipeline::new(".").dry_run(true);

        pipeline
            .run("test", &[Step::run("would fail", sh("exit 1"))])
            .expect("nothing runs, nothing fails");
    }

    #[test]
    fn exports_of_a_started_service_reach_later_steps() {
        let mut pipeline = Pipeline::new(".");

        pipeline
            .run(
                "test",
                &[
                    Step::start(
                        "service",
                        Service::new(Cmd::new("sleep").arg("30")).export("XTASK_ENDPOINT", "here"),
                    ),
                    Step::run("reads it", sh(r#"test "$XTASK_ENDPOINT" = here"#)),
                ],
            )
            .expect("the later step sees the export");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_guard_kills_and_reaps_its_process_on_drop() {
        let guard = ChildGuard::spawn("sleeper", {
            let mut command = Command::new("sleep");
            command.arg("30");
            command
        })
        .expect("sleep starts");
        let pid = guard.id();
        assert!(process_exists(pid));

        drop(guard);

        assert!(!process_exists(pid));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn started_services_are_stopped_when_the_pipeline_ends() {
        let mut pipeline = Pipeline::new(".");
        pipeline
            .run(
                "test",
                &[Step::start(
                    "sleeper",
                    Service::new(Cmd::new("sleep").arg("30")),
                )],
            )
            .expect("the service starts");
        let pid = pipeline.services()[0].id();
        assert!(process_exists(pid));

        drop(pipeline);

        assert!(!process_exists(pid));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn started_services_are_stopped_when_a_later_step_fails() {
        let mut pipeline = Pipeline::new(".");
        pipeline
            .run(
                "test",
                &[
                    Step::start("sleeper", Service::new(Cmd::new("sleep").arg("30"))),
                    Step::run("fails", sh("false")),
                ],
            )
            .expect_err("the second step fails");
        let pid = pipeline.services()[0].id();

        drop(pipeline);

        assert!(!process_exists(pid));
    }

    #[test]
    fn a_service_is_ready_when_its_port_accepts_connections() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("binds a port");
        let addr = listener.local_addr().expect("has an address");
        let mut pipeline = Pipeline::new(".");

        pipeline
            .run(
                "test",
                &[Step::start(
                    "listening",
                    Service::new(Cmd::new("sleep").arg("30")).ready_when(Ready::TcpPort {
                        addr,
                        timeout: Duration::from_secs(5),
                    }),
                )],
            )
            .expect("the port accepts connections");
    }

    #[test]
    fn a_service_that_exits_before_it_is_ready_fails_its_step() {
        let port = free_port().expect("finds a free port");
        let mut pipeline = Pipeline::new(".");

        let failure = pipeline
            .run(
                "test",
                &[Step::start(
                    "crashes",
                    Service::new(sh("exit 7")).ready_when(Ready::TcpPort {
                        addr: SocketAddr::from(([127, 0, 0, 1], port)),
                        timeout: Duration::from_secs(5),
                    }),
                )],
            )
            .expect_err("the service never listens");

        assert!(matches!(failure.failure, Failure::ExitedEarly(_)));
        assert_eq!(failure.exit_code(), 7);
    }
}
