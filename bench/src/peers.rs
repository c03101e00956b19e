//! Child processes: the servers under test and the peers' scripts, each stopped when its
//! guard drops (success, error or panic alike).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::Result;

/// How long a server or a script may take to say it is ready.
pub const STARTUP: Duration = Duration::from_secs(60);

/// A child process, killed (and reaped) when dropped.
pub struct Guard {
    pub name: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl Guard {
    /// Spawns `command` with piped standard input and output.
    pub fn spawn(name: &str, mut command: Command) -> Result<Guard> {
        command.stdout(Stdio::piped());
        Guard::spawn_with_stdout(name, command)
    }

    /// Spawns `command` with piped standard input, its standard output as set (a pipe
    /// nobody reads would stall a chatty child once full).
    pub fn spawn_with_stdout(name: &str, mut command: Command) -> Result<Guard> {
        command.stdin(Stdio::piped()).kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(|out| BufReader::new(out).lines());
        Ok(Guard {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Result<u32> {
        self.child
            .id()
            .ok_or_else(|| format!("{} has exited", self.name))
    }

    /// The next line of standard output starting with `prefix` (other lines are echoed to
    /// stderr), within `timeout`.
    pub async fn line_starting(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let name = self.name.clone();
        let lines = self
            .stdout
            .as_mut()
            .ok_or_else(|| format!("{name}: no stdout"))?;
        let read = async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.starts_with(prefix) => return Ok(line),
                    Ok(Some(line)) => eprintln!("  [{name}] {line}"),
                    Ok(None) => return Err(format!("{name} exited before printing {prefix}")),
                    Err(e) => return Err(format!("{name}: {e}")),
                }
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| format!("{name} did not print {prefix} within {timeout:?}"))?
    }

    /// Writes one line to the child's standard input.
    pub async fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: no stdin", self.name))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("{}: {e}", self.name))?;
        stdin
            .flush()
            .await
            .map_err(|e| format!("{}: {e}", self.name))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // Reap it, so no zombie outlives the run.
        let _ = self.child.try_wait();
    }
}

/// A server of this binary (`serve-bare`, `serve-gateway`): its guard, WebSocket URL and
/// `@connections` endpoint.
pub struct Server {
    pub guard: Guard,
    pub ws_url: String,
    pub management: String,
}

/// Starts `wsgw-bench SUBCOMMAND` and waits for its READY line.
pub async fn own_server(subcommand: &str) -> Result<Server> {
    own_server_with(subcommand, &[]).await
}

/// [`own_server`] with arguments after the subcommand.
pub async fn own_server_with(subcommand: &str, args: &[String]) -> Result<Server> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.arg(subcommand).args(args).stderr(Stdio::inherit());
    let mut guard = Guard::spawn(subcommand, command)?;
    let line = guard.line_starting("READY ", STARTUP).await?;
    let mut parts = line.split_whitespace().skip(1);
    let ws_url = parts.next().unwrap_or_default().to_owned();
    let management = parts.next().unwrap_or_default().to_owned();
    Ok(Server {
        guard,
        ws_url,
        management,
    })
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "nothing listens on 127.0.0.1:{port} after {timeout:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `pid` and its descendants (Linux `/proc`).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = Vec::new();
    let mut pending = vec![pid];
    while let Some(pid) = pending.pop() {
        tree.push(pid);
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                    pending.extend(
                        children
                            .split_whitespace()
                            .filter_map(|c| c.parse::<u32>().ok()),
                    );
                }
            }
        }
    }
    tree
}

/// CPU time (user + system, every thread) one process has used, in seconds (Linux
/// `/proc/PID/stat`, in clock ticks of 10 ms; its children not included).
fn own_cpu_seconds(pid: u32) -> Option<f64> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    Some((ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND)
}

/// CPU time `pid` has used (every thread, its children not included), in seconds; NaN
/// when unreadable.
pub fn cpu_seconds(pid: u32) -> f64 {
    own_cpu_seconds(pid).unwrap_or(f64::NAN)
}

/// CPU time `pid` and its descendants have used, in seconds; NaN when unreadable.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    process_tree(pid).into_iter().map(cpu_seconds).sum()
}

/// Resident memory of `pid` and its descendants, in KiB (Linux `/proc`).
pub fn resident_kib(pid: u32) -> u64 {
    process_tree(pid)
        .into_iter()
        .filter_map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()?
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .sum()
}

/// serverless-offline, as `node node_modules/serverless/bin/serverless.js offline start`
/// in `peers` (one process), with the handlers of [`SLS_HANDLER`].
pub struct ServerlessOffline {
    pub guard: Guard,
    pub ws_url: String,
}

/// The Node handlers serverless-offline runs: the chat tutorial's style, posting back
/// through `@connections` on the websocket port.
pub const SLS_HANDLER: &str = r#"'use strict';
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require('@aws-sdk/client-apigatewaymanagementapi');
const client = new ApiGatewayManagementApiClient({
  endpoint: process.env.WS_ENDPOINT,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});
exports.connect = async () => ({ statusCode: 200 });
exports.disconnect = async () => ({ statusCode: 200 });
exports.defaultRoute = async () => ({ statusCode: 200 });
exports.sendmessage = async (event) => {
  const body = JSON.parse(event.body || '{}');
  const data = JSON.stringify({ type: 'message', message: body.message });
  await client.send(new PostToConnectionCommand({ ConnectionId: event.requestContext.connectionId, Data: data }));
  return { statusCode: 200 };
};
"#;

/// The service: the handlers of [`SLS_HANDLER`] on the given ports. Their timeout is API
/// Gateway's integration maximum (29 s) rather than serverless' default of 6 s: a fresh
/// serverless-offline loads a handler in a worker of its own for every concurrent
/// invocation, and 50 concurrent handshakes' first `$connect`s, each loading the AWS SDK,
/// took longer than 6 s on the busy 2-core machine, which it answers with
/// 502 Bad Gateway.
fn serverless_yml(http: u16, websocket: u16, lambda: u16) -> String {
    format!(
        r#"service: wsgw-bench-peer
frameworkVersion: '3'
provider:
  name: aws
  runtime: nodejs20.x
  region: us-east-1
  timeout: 29
  environment:
    WS_ENDPOINT: http://127.0.0.1:{websocket}
functions:
  connect:
    handler: handler.connect
    events:
      - websocket:
          route: $connect
  disconnect:
    handler: handler.disconnect
    events:
      - websocket:
          route: $disconnect
  default:
    handler: handler.defaultRoute
    events:
      - websocket:
          route: $default
  sendmessage:
    handler: handler.sendmessage
    events:
      - websocket:
          route: sendmessage
plugins:
  - serverless-offline
custom:
  serverless-offline:
    host: 127.0.0.1
    httpPort: {http}
    websocketPort: {websocket}
    lambdaPort: {lambda}
"#
    )
}

/// Writes the service into `peers` and starts serverless-offline on free ports.
pub async fn serverless_offline(peers: &Path) -> Result<ServerlessOffline> {
    let (http, websocket, lambda) = (free_port()?, free_port()?, free_port()?);
    std::fs::write(peers.join("handler.js"), SLS_HANDLER).map_err(|e| e.to_string())?;
    std::fs::write(
        peers.join("serverless.yml"),
        serverless_yml(http, websocket, lambda),
    )
    .map_err(|e| e.to_string())?;
    let mut command = Command::new("node");
    command
        .args([
            "node_modules/serverless/bin/serverless.js",
            "offline",
            "start",
        ])
        .current_dir(peers)
        .env("SLS_TELEMETRY_DISABLED", "1")
        .env("SLS_NOTIFICATIONS_MODE", "off")
        .env("SLS_DEPRECATION_DISABLE", "*")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stderr(Stdio::null());
    let guard = Guard::spawn("serverless-offline", command)?;
    wait_for_port(websocket, STARTUP).await?;
    Ok(ServerlessOffline {
        guard,
        ws_url: format!("ws://127.0.0.1:{websocket}"),
    })
}

/// The seeds' Python style: `post_to_connection` with boto3 in a sequential loop. A post
/// that fails (other than Gone, which the style ignores) is counted and reported on the
/// `DONE` line, the first error on stderr, so the round ends and says so.
pub const PYTHON_FANOUT: &str = r#"import sys, time, boto3
endpoint, ids_file = sys.argv[1], sys.argv[2]
ids = open(ids_file).read().split()
client = boto3.client('apigatewaymanagementapi', endpoint_url=endpoint, region_name='us-east-1',
                      aws_access_key_id='local', aws_secret_access_key='local')
print('READY', flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    data = line.strip().encode()
    failed, first = 0, None
    start = time.perf_counter()
    for connection_id in ids:
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except client.exceptions.GoneException:
            pass
        except Exception as error:
            failed += 1
            first = first or error
    elapsed = time.perf_counter() - start
    if first is not None:
        print('python fanout: %d posts failed, the first: %r' % (failed, first), file=sys.stderr, flush=True)
    print('DONE %.6f failed=%d' % (elapsed, failed), flush=True)
"#;

/// AWS's Node sample style: `Promise.all` over every connection, the client as the
/// sample makes it (the SDK's defaults: keep-alive agent, standard retries). Where the
/// sample rethrows every error but Gone (and the process dies of the unhandled
/// rejection), this one counts the failed posts and reports them on the `DONE` line, the
/// first error on stderr, so a round ends and says so; anything else that goes wrong
/// ends the process at once with the error.
pub const NODE_FANOUT: &str = r#"'use strict';
const fs = require('fs');
const readline = require('readline');
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require('@aws-sdk/client-apigatewaymanagementapi');
const die = (error) => { console.error('node fanout:', error); process.exit(1); };
process.on('unhandledRejection', die);
process.on('uncaughtException', die);
const [endpoint, idsFile] = process.argv.slice(2);
const ids = fs.readFileSync(idsFile, 'utf8').split(/\s+/).filter(Boolean);
const client = new ApiGatewayManagementApiClient({
  endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});
console.log('READY');
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const start = process.hrtime.bigint();
  let failed = 0;
  let first;
  await Promise.all(ids.map((ConnectionId) =>
    client.send(new PostToConnectionCommand({ ConnectionId, Data: line.trim() })).catch((e) => {
      if (e.name === 'GoneException') return;
      failed += 1;
      first = first || e;
    })));
  const elapsed = (Number(process.hrtime.bigint() - start) / 1e9).toFixed(6);
  if (first) {
    const attempts = first.$metadata ? first.$metadata.attempts : undefined;
    console.error(`node fanout: ${failed} posts failed, the first: ${first.name} (${first.code || ''}): ${first.message}, attempts ${attempts}`);
  }
  console.log(`DONE ${elapsed} failed=${failed}`);
});
"#;

/// Writes `text` to `dir/name` and returns the path.
pub fn write_script(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
