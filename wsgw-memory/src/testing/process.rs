//! Processes a test starts: killed and reaped when the test ends, whatever its outcome.

use std::io::{BufRead, BufReader, Read};
use std::ops::{Deref, DerefMut};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};

use serde_json::Value;

/// A child process that is killed and reaped when dropped, so a failing test leaves no
/// process behind.
///
/// ```
/// use std::process::Command;
/// use wsgw_memory::testing::ChildProcess;
///
/// let mut sleeper = ChildProcess::spawn(Command::new("sleep").arg("60")).expect("sleep runs");
/// assert!(sleeper.try_wait().expect("a status").is_none());
/// drop(sleeper); // killed and reaped here
/// ```
#[derive(Debug)]
pub struct ChildProcess(Child);

impl ChildProcess {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.spawn().map(ChildProcess)
    }

    /// Sends SIGTERM, as a supervisor stopping a service does, without waiting.
    pub fn send_sigterm(&self) -> std::io::Result<()> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()?;
        if sent.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill -TERM {} failed: {sent}",
                self.0.id()
            )))
        }
    }

    /// Sends SIGTERM and waits for the exit.
    ///
    /// ```
    /// use std::process::Command;
    /// use wsgw_memory::testing::ChildProcess;
    ///
    /// let sleeper = ChildProcess::spawn(Command::new("sleep").arg("60")).expect("sleep runs");
    /// let status = sleeper.terminate().expect("stops");
    /// assert!(!status.success(), "sleep does not handle SIGTERM");
    /// ```
    pub fn terminate(mut self) -> std::io::Result<ExitStatus> {
        self.send_sigterm()?;
        self.0.wait()
    }

    /// Sends SIGTERM and waits for the exit, with everything the process printed on its
    /// piped standard output and error (empty for a stream that is not piped).
    ///
    /// ```
    /// use std::process::{Command, Stdio};
    /// use wsgw_memory::testing::ChildProcess;
    ///
    /// let mut command = Command::new("sh");
    /// command
    ///     .args(["-c", "trap 'echo stopped; exit 0' TERM; echo started; while :; do sleep 0.1; done"])
    ///     .stdout(Stdio::piped());
    /// let mut shell = ChildProcess::spawn(&mut command).expect("sh runs");
    /// std::thread::sleep(std::time::Duration::from_millis(200)); // its trap is set
    /// let output = shell.terminate_with_output().expect("stops");
    /// assert!(output.status.success());
    /// assert_eq!(String::from_utf8_lossy(&output.stdout), "started\nstopped\n");
    /// ```
    pub fn terminate_with_output(mut self) -> std::io::Result<Output> {
        self.send_sigterm()?;
        // Standard error is read beside standard output, so that neither pipe fills up
        // while the other is read.
        let stderr = self.0.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut printed = Vec::new();
                pipe.read_to_end(&mut printed).map(|_| printed)
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut pipe) = self.0.stdout.take() {
            pipe.read_to_end(&mut stdout)?;
        }
        let stderr = match stderr {
            Some(reader) => reader
                .join()
                .map_err(|_| std::io::Error::other("reading standard error panicked"))??,
            None => Vec::new(),
        };
        let status = self.0.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Stops the process with SIGTERM and checks that it shut down gracefully.
    ///
    /// # Panics
    /// When the signal cannot be sent or the process does not exit with status 0.
    pub fn assert_graceful_stop(self) {
        let status = self
            .terminate()
            .expect("SIGTERM is sent and the process reaped");
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
    }
}

impl Deref for ChildProcess {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server binary started on a free port, which prints where it listens on its first
/// line of standard output (as the wsgw runner does: `listening on ws://… (page: http://…)`).
///
/// Its standard error is discarded; the rest of its standard output is read by
/// [`next_line`](Self::next_line), or not at all (the pipe stays open while the server
/// runs, so what it prints later never fails).
///
/// ```
/// use std::process::Command;
/// use wsgw_memory::testing::ServerProcess;
///
/// let mut command = Command::new("sh");
/// command.args(["-c", "echo 'listening on ws://127.0.0.1:9 (page: http://127.0.0.1:9/)'; sleep 60"]);
/// let server = ServerProcess::start(command);
/// assert_eq!(server.url("ws://"), "ws://127.0.0.1:9");
/// assert_eq!(server.url("http://"), "http://127.0.0.1:9/");
/// ```
#[derive(Debug)]
pub struct ServerProcess {
    process: ChildProcess,
    first_line: String,
    stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `command` with its standard output piped and reads its first line.
    ///
    /// # Panics
    /// When the command does not start or prints no line.
    pub fn start(mut command: Command) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut process = ChildProcess::spawn(&mut command)
            .unwrap_or_else(|error| panic!("{:?} starts: {error}", command.get_program()));
        let stdout = process.stdout.take().expect("stdout is piped");
        let mut stdout = BufReader::new(stdout);
        let mut first_line = String::new();
        stdout
            .read_line(&mut first_line)
            .expect("the server prints a first line");
        ServerProcess {
            process,
            first_line,
            stdout,
        }
    }

    /// The first line the server printed.
    pub fn first_line(&self) -> &str {
        &self.first_line
    }

    /// The next line the server prints (without its line ending), `None` at the end of
    /// its output. Blocks until a line is complete.
    pub fn next_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
        }
    }

    /// The first address in the first line that starts with `prefix` (`"ws://"`,
    /// `"http://"`); see [`url_in`].
    ///
    /// # Panics
    /// When the line has none.
    pub fn url(&self, prefix: &str) -> String {
        url_in(&self.first_line, prefix)
    }

    /// Sends SIGTERM and waits for the exit; see [`ChildProcess::terminate`].
    pub fn terminate(self) -> std::io::Result<ExitStatus> {
        self.process.terminate()
    }

    /// See [`ChildProcess::assert_graceful_stop`].
    ///
    /// # Panics
    /// When the server does not exit with status 0 on SIGTERM.
    pub fn assert_graceful_stop(self) {
        self.process.assert_graceful_stop();
    }
}

impl Deref for ServerProcess {
    type Target = ChildProcess;

    fn deref(&self) -> &ChildProcess {
        &self.process
    }
}

impl DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut ChildProcess {
        &mut self.process
    }
}

/// The first word of `line` that starts with `prefix`, a word ending at whitespace, `)`
/// or `;`.
///
/// ```
/// use wsgw_memory::testing::url_in;
///
/// let line = "listening on ws://127.0.0.1:4000 (page: http://127.0.0.1:4000/)";
/// assert_eq!(url_in(line, "http://"), "http://127.0.0.1:4000/");
/// ```
///
/// # Panics
/// When there is none.
pub fn url_in(line: &str, prefix: &str) -> String {
    line.split(|c: char| c.is_whitespace() || c == ')' || c == ';')
        .find(|word| word.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} address in {line:?}"))
        .to_owned()
}

/// The JSON values a process printed on standard output, in order (`invoke` prints one
/// object per event, pretty or not).
///
/// ```
/// use std::process::Command;
/// use serde_json::json;
/// use wsgw_memory::testing::printed_json;
///
/// let output = Command::new("printf").arg("{\"a\":1}\n{\n  \"b\": 2\n}\n").output().expect("runs");
/// assert_eq!(printed_json(&output), [json!({"a": 1}), json!({"b": 2})]);
/// ```
///
/// # Panics
/// When standard output is not UTF-8 or not a sequence of JSON values, naming what it was.
pub fn printed_json(output: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("stdout is JSON values ({error}): {stdout}"))
}

/// [`printed_json`] of a process that must have succeeded.
///
/// # Panics
/// When the process did not exit with status 0 (showing its standard error), or as
/// [`printed_json`].
pub fn successful_json(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    printed_json(output)
}
