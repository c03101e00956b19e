//! A function binary run in Lambda mode as AWS runs it, against a [`LambdaRuntimeEmulator`]
//! and a [`ManagementRecorder`] of its own: for tests that feed it API Gateway events and
//! check what it answered and posted, and for comparing two builds of one function (the
//! x86-64 build and the arm64 `bootstrap` under `qemu-aarch64`) event by event.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{Invocation, LambdaRuntimeEmulator, ManagementCall, ManagementRecorder};

/// A function process in Lambda mode: `AWS_LAMBDA_RUNTIME_API` points at its own
/// emulator and `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` at its own recorder. The process is killed
/// and reaped on drop.
pub struct LambdaFunction {
    runtime: LambdaRuntimeEmulator,
    management: ManagementRecorder,
    child: Child,
}

impl LambdaFunction {
    /// Starts `command` in Lambda mode, with no AWS credentials or profile from the
    /// environment (nothing it does can reach AWS). Lambda's variables the command sets
    /// itself (`AWS_LAMBDA_FUNCTION_NAME`, say) are kept.
    pub async fn start(mut command: Command) -> std::io::Result<Self> {
        let runtime = LambdaRuntimeEmulator::start().await?;
        let management = ManagementRecorder::start().await?;
        for (name, value) in runtime.function_env() {
            if !command.get_envs().any(|(set, _)| set == name) {
                command.env(name, value);
            }
        }
        command
            .env("AWS_LAMBDA_RUNTIME_API", runtime.runtime_api())
            .env(
                "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
                management.endpoint(),
            )
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null());
        let child = command.spawn()?;
        Ok(LambdaFunction {
            runtime,
            management,
            child,
        })
    }

    /// The function's Runtime API.
    pub fn runtime(&self) -> &LambdaRuntimeEmulator {
        &self.runtime
    }

    /// The function's `@connections` endpoint.
    pub fn management(&self) -> &ManagementRecorder {
        &self.management
    }

    /// The process's standard output, when the command piped it (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Invokes the function with `event` and waits up to `timeout` for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Option<Invocation> {
        self.runtime.invoke(event, timeout).await
    }

    /// Invokes the function with each event in turn and records, per event, the answer
    /// and the `@connections` calls made while handling it.
    pub async fn replay(&self, events: &[(String, Value)], timeout: Duration) -> Vec<Exchange> {
        let mut exchanges = Vec::with_capacity(events.len());
        for (name, event) in events {
            let answer = self.invoke(event.clone(), timeout).await;
            exchanges.push(Exchange {
                event: name.clone(),
                answer,
                calls: self.management.take_calls(),
            });
        }
        exchanges
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One event of a [`LambdaFunction::replay`]: its name, what the function answered (`None`
/// when it did not answer in time), and the `@connections` calls it made meanwhile.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// The event's name (its file name, for [`shipped_events`]).
    pub event: String,
    /// The function's answer.
    pub answer: Option<Invocation>,
    /// The `@connections` calls, in order.
    pub calls: Vec<ManagementCall>,
}

impl Exchange {
    /// The exchange as JSON, posted bodies parsed as JSON where they are: the form to
    /// compare two runs in, after [`normalise`]-ing what legitimately differs.
    pub fn to_json(&self) -> Value {
        let answer = match &self.answer {
            Some(Invocation::Response(response)) => serde_json::json!({ "response": response }),
            Some(Invocation::Error(error)) => serde_json::json!({ "error": error }),
            None => Value::Null,
        };
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|call| {
                let body = serde_json::from_slice(&call.body).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&call.body).into_owned())
                });
                serde_json::json!({
                    "method": call.method,
                    "connection_id": call.connection_id,
                    "body": body,
                })
            })
            .collect();
        serde_json::json!({ "event": self.event, "answer": answer, "calls": calls })
    }
}

/// Starts `command` in Lambda mode, replays `events` through it and returns the exchanges
/// as JSON with the fields named in `keys` [`normalise`]d. Fails when the function does
/// not start or leaves an event unanswered for `timeout`.
pub async fn replay_normalised(
    command: Command,
    events: &[(String, Value)],
    keys: &[&str],
    timeout: Duration,
) -> Result<Vec<Value>, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let function = LambdaFunction::start(command)
        .await
        .map_err(|error| format!("cannot start {program}: {error}"))?;
    let exchanges = function.replay(events, timeout).await;
    if let Some(unanswered) = exchanges.iter().find(|exchange| exchange.answer.is_none()) {
        return Err(format!(
            "{program} did not answer {} within {timeout:?}",
            unanswered.event
        ));
    }
    Ok(exchanges
        .iter()
        .map(|exchange| {
            let mut json = exchange.to_json();
            normalise(&mut json, keys);
            json
        })
        .collect())
}

/// Panics, naming the first event whose exchange differs and showing both, unless the
/// two replays are equal field by field.
pub fn assert_same_exchanges(expected: &[Value], actual: &[Value], what: &str) {
    for (expected, actual) in expected.iter().zip(actual) {
        assert_eq!(
            actual, expected,
            "{what}: {} answered or posted differently",
            expected["event"]
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: a different number of exchanges"
    );
}

/// The arm64 `bootstrap` of `binary` (beside `host`, its x86-64 build: see
/// [`arm64_bootstrap_beside`]) under `qemu-aarch64` must answer the events of
/// `events_dir` ([`shipped_events`]) exactly as `host` does, but for the fields named in
/// `normalised`. Each build is run with the command `configure` makes of it (awaited per
/// run, so each can get resources of its own, such as new tables). Panics saying what is
/// missing (qemu, the bootstrap) or which event differs; and unless the events made the
/// function post at least `min_posts` times, since a comparison of nothing proves nothing.
pub async fn assert_arm64_answers_as_host<F, Fut>(
    host: &Path,
    binary: &str,
    events_dir: &Path,
    normalised: &[&str],
    min_posts: usize,
    mut configure: F,
) where
    F: FnMut(Command) -> Fut,
    Fut: std::future::Future<Output = Command>,
{
    const WAIT: Duration = Duration::from_secs(30);
    let events = shipped_events(events_dir).unwrap_or_else(|error| panic!("{error}"));
    let arm64 = qemu_aarch64(&arm64_bootstrap_beside(host, binary))
        .unwrap_or_else(|missing| panic!("{missing}"));
    let expected = replay_normalised(
        configure(Command::new(host)).await,
        &events,
        normalised,
        WAIT,
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    let actual = replay_normalised(configure(arm64).await, &events, normalised, WAIT)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_same_exchanges(&expected, &actual, &format!("{binary}'s arm64 bootstrap"));
    let posts: usize = expected
        .iter()
        .map(|exchange| exchange["calls"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(
        posts >= min_posts,
        "the events made {binary} post {posts} times, fewer than {min_posts}: {expected:#?}"
    );
}

/// Replaces, anywhere in `value` (JSON text inside strings included), the value of every
/// object key named in `keys` with `"<normalised>"`: for ids and clocks that differ from
/// run to run. Every other field is left as it is.
pub fn normalise(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if keys.contains(&key.as_str()) {
                    *field = Value::String("<normalised>".to_owned());
                } else {
                    normalise(field, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| normalise(item, keys)),
        Value::String(text) => {
            if let Ok(mut inner @ (Value::Object(_) | Value::Array(_))) =
                serde_json::from_str::<Value>(text)
            {
                normalise(&mut inner, keys);
                *text = inner.to_string();
            }
        }
        _ => {}
    }
}

/// Why the shipped events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not JSON.
    #[error("{path} is not JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde found.
        source: serde_json::Error,
    },
    /// The directory has no `.json` file.
    #[error("no .json event in {0}")]
    Empty(PathBuf),
}

/// The `*.json` events of `dir` (an example's `events/`), named by file name, in the
/// order a client's life has them: `connect*` files first, `disconnect*` files last, the
/// rest by name between.
pub fn shipped_events(dir: &Path) -> Result<Vec<(String, Value)>, EventsError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| EventsError::Read { path, source }
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let path = entry.map_err(read_error(dir))?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            if let Some(name) = path.file_name() {
                names.push(name.to_string_lossy().into_owned());
            }
        }
    }
    let phase = |name: &str| {
        if name.starts_with("connect") {
            0
        } else if name.starts_with("disconnect") {
            2
        } else {
            1
        }
    };
    names.sort_by(|a, b| (phase(a), a).cmp(&(phase(b), b)));
    if names.is_empty() {
        return Err(EventsError::Empty(dir.to_owned()));
    }
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let text = std::fs::read_to_string(&path).map_err(read_error(&path))?;
            let event = serde_json::from_str(&text).map_err(|source| EventsError::Json {
                path: path.clone(),
                source,
            })?;
            Ok((name, event))
        })
        .collect()
}

/// Where Debian's `libc6-arm64-cross` puts the aarch64 C library: `qemu-aarch64`'s `-L`.
pub const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// A command running the arm64 binary `bootstrap` under `qemu-aarch64 -L`
/// [`ARM64_SYSROOT`], or an error saying what is missing and how to get it.
pub fn qemu_aarch64(bootstrap: &Path) -> Result<Command, String> {
    if !bootstrap.is_file() {
        return Err(format!(
            "no arm64 bootstrap at {}: `cargo xtask test` builds every example's, or `cargo lambda build --release --arm64 -p <example>` (cargo-lambda and zig: pip install -r xtask/requirements.txt)",
            bootstrap.display()
        ));
    }
    let found = Command::new("qemu-aarch64")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        return Err(
            "qemu-aarch64 is not installed: apt-get install qemu-user libc6-arm64-cross (cargo xtask test installs them)"
                .to_owned(),
        );
    }
    if !Path::new(ARM64_SYSROOT).join("lib").is_dir() {
        return Err(format!(
            "no aarch64 C library in {ARM64_SYSROOT}: apt-get install libc6-arm64-cross (cargo xtask test installs it)"
        ));
    }
    let mut command = Command::new("qemu-aarch64");
    command.arg("-L").arg(ARM64_SYSROOT).arg(bootstrap);
    Ok(command)
}

/// The arm64 `bootstrap` cargo-lambda builds for `binary`, found from the path of the
/// same binary's host build (`CARGO_BIN_EXE_<name>` in a test): `<target>/lambda/<name>/bootstrap`.
pub fn arm64_bootstrap_beside(host_binary: &Path, binary: &str) -> PathBuf {
    let target = host_binary
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("target"));
    target.join("lambda").join(binary).join("bootstrap")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalise_replaces_the_named_fields_everywhere_and_nothing_else() {
        let mut value = json!({
            "timestamp": 1,
            "kept": {"message_id": "m-1", "text": "hi"},
            "body": "{\"timestamp\":5,\"n\":1}",
            "list": [{"timestamp": 2}],
            "plain": "not json"
        });

        normalise(&mut value, &["timestamp", "message_id"]);

        assert_eq!(
            value,
            json!({
                "timestamp": "<normalised>",
                "kept": {"message_id": "<normalised>", "text": "hi"},
                "body": "{\"n\":1,\"timestamp\":\"<normalised>\"}",
                "list": [{"timestamp": "<normalised>"}],
                "plain": "not json"
            })
        );
    }

    #[test]
    fn shipped_events_come_connect_first_and_disconnect_last() {
        let dir = std::env::temp_dir().join(format!("wsgw-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["disconnect.json", "whoami.json", "connect.json", "a.json"] {
            std::fs::write(dir.join(name), format!("{{\"name\":\"{name}\"}}")).unwrap();
        }
        std::fs::write(dir.join("notes.md"), "not an event").unwrap();

        let names: Vec<String> = shipped_events(&dir)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();

        assert_eq!(
            names,
            ["connect.json", "a.json", "whoami.json", "disconnect.json"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_bootstrap_says_how_to_build_it() {
        let error = qemu_aarch64(Path::new("/nonexistent/bootstrap")).unwrap_err();

        assert!(error.contains("cargo xtask test"), "{error}");
    }

    #[test]
    fn the_bootstrap_is_found_in_the_host_binarys_target_dir() {
        assert_eq!(
            arm64_bootstrap_beside(Path::new("/w/target/debug/echo"), "echo"),
            Path::new("/w/target/lambda/echo/bootstrap")
        );
    }
}
