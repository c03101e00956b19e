//! Lambda mode: cold start (process spawn → first response) and per-event cost against
//! wsgw-memory's `LambdaRuntimeEmulator`, for the echo example's release binary and the
//! same echo handler in Python (boto3) and Node (AWS SDK v3) under a minimal Runtime API
//! client each.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::Command;
use wsgw_memory::gateway::{Invocation, LambdaRuntimeEmulator, ManagementRecorder};

use crate::client::percentiles;
use crate::cpu_share::{CpuGroup, Hierarchy, Share, SHARES};
use crate::fanout::median;
use crate::peers::{self, Guard};
use crate::report::{Lambda, Results};
use crate::{Result, RunArgs};

/// The echo handler in Python under a minimal Runtime API client (boto3 client at init).
pub const PYTHON_RUNTIME: &str = r#"import os, json, http.client, boto3
mgmt = boto3.client('apigatewaymanagementapi', endpoint_url=os.environ['AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI'],
                    region_name='us-east-1', aws_access_key_id='local', aws_secret_access_key='local')

def handler(event):
    context = event['requestContext']
    if context.get('routeKey') == 'message':
        body = json.loads(event.get('body') or '{}')
        mgmt.post_to_connection(ConnectionId=context['connectionId'],
                                Data=json.dumps({'type': 'message', 'message': body.get('message')}).encode())
    return {'statusCode': 200}

host, port = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')
runtime = http.client.HTTPConnection(host, int(port))
while True:
    runtime.request('GET', '/2018-06-01/runtime/invocation/next')
    response = runtime.getresponse()
    request_id = response.getheader('Lambda-Runtime-Aws-Request-Id')
    event = json.loads(response.read())
    answer = json.dumps(handler(event)).encode()
    runtime.request('POST', '/2018-06-01/runtime/invocation/%s/response' % request_id, body=answer,
                    headers={'Content-Type': 'application/json'})
    runtime.getresponse().read()
"#;

/// The echo handler in Node under a minimal Runtime API client (SDK client at init).
pub const NODE_RUNTIME: &str = r#"'use strict';
const http = require('http');
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require('@aws-sdk/client-apigatewaymanagementapi');
const mgmt = new ApiGatewayManagementApiClient({
  endpoint: process.env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI, region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});
const handler = async (event) => {
  const context = event.requestContext;
  if (context.routeKey === 'message') {
    const body = JSON.parse(event.body || '{}');
    await mgmt.send(new PostToConnectionCommand({
      ConnectionId: context.connectionId, Data: JSON.stringify({ type: 'message', message: body.message }),
    }));
  }
  return { statusCode: 200 };
};
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const call = (method, path, body) => new Promise((resolve, reject) => {
  const request = http.request({ host, port, method, path, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (response) => {
    const chunks = [];
    response.on('data', (chunk) => chunks.push(chunk));
    response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks).toString() }));
  });
  request.on('error', reject);
  request.end(body);
});
(async () => {
  for (;;) {
    const next = await call('GET', '/2018-06-01/runtime/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const answer = await handler(JSON.parse(next.body));
    await call('POST', `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(answer));
  }
})();
"#;

fn event(i: usize) -> Value {
    json!({
        "requestContext": {
            "routeKey": "message",
            "eventType": "MESSAGE",
            "messageDirection": "IN",
            "messageId": format!("msg-{i}"),
            "stage": "production",
            "connectedAt": 1795336800000i64,
            "requestTimeEpoch": 1795336801234i64,
            "identity": { "sourceIp": "203.0.113.10" },
            "requestId": format!("req-{i}"),
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "connectionId": "GXLKAfX1FiACHqQ=",
            "apiId": "abc123"
        },
        "body": format!("{{\"action\":\"message\",\"message\":{i}}}"),
        "isBase64Encoded": false
    })
}

const WAIT: Duration = Duration::from_secs(30);

/// Hands `event` to the function through `emulator` and waits for its answer (at most
/// [`WAIT`]); a function process that exits meanwhile ends the wait at once with an error
/// saying how it exited.
async fn invoke(
    emulator: &LambdaRuntimeEmulator,
    function: &mut Guard,
    event: serde_json::Value,
) -> Result<Option<Invocation>> {
    tokio::select! {
        answer = emulator.invoke(event, WAIT) => Ok(answer),
        exited = function.child.wait() => Err(match exited {
            Ok(status) => format!("{} exited ({status}) before answering", function.name),
            Err(error) => format!("{}: {error}", function.name),
        }),
    }
}

/// A function process answering events from its own emulator.
struct Started {
    emulator: LambdaRuntimeEmulator,
    management: ManagementRecorder,
    function: Guard,
}

/// Spawns the function with a fresh emulator and times spawn → first response.
async fn cold_start(runtime: &'static str, mut command: Command) -> Result<(Started, Duration)> {
    let emulator = LambdaRuntimeEmulator::start()
        .await
        .map_err(|e| e.to_string())?;
    let management = ManagementRecorder::start()
        .await
        .map_err(|e| e.to_string())?;
    command
        .envs(emulator.function_env())
        .env(
            "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
            management.endpoint(),
        )
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env_remove("AWS_PROFILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut function = Guard::spawn_with_stdout(runtime, command)?;
    let first = invoke(&emulator, &mut function, event(0)).await?;
    let cold = started.elapsed();
    if !matches!(first, Some(Invocation::Response(_))) {
        return Err(format!("{runtime}: first event answered {first:?}"));
    }
    Ok((
        Started {
            emulator,
            management,
            function,
        },
        cold,
    ))
}

/// What [`per_event`] measured.
struct Warm {
    events: usize,
    p50_us: f64,
    p99_us: f64,
    /// The function process's CPU time (user + system) per event, in µs.
    cpu_us: f64,
    /// The bench process's (the emulator's and the recorder's) CPU time per event, in µs.
    harness_cpu_us: f64,
}

/// Events one after another to a warm function, within a minute.
async fn per_event(runtime: &'static str, started: &mut Started, events: usize) -> Result<Warm> {
    let window = Duration::from_secs(60);
    let pids = [started.function.pid()?, std::process::id()];
    let cpu_before = pids.map(peers::cpu_seconds);
    let began = Instant::now();
    let mut samples = Vec::with_capacity(events);
    let mut posts = started.management.take_calls().len();
    for i in 1..=events {
        if began.elapsed() > window {
            break;
        }
        let sent = Instant::now();
        match invoke(&started.emulator, &mut started.function, event(i)).await? {
            Some(Invocation::Response(_)) => samples.push(sent.elapsed()),
            other => return Err(format!("{runtime}: event {i} answered {other:?}")),
        }
        if i % 1000 == 0 {
            posts += started.management.take_calls().len();
        }
    }
    let cpu_after = pids.map(peers::cpu_seconds);
    let [cpu, harness_cpu] =
        [0, 1].map(|i| (cpu_after[i] - cpu_before[i]) * 1e6 / samples.len().max(1) as f64);
    posts += started.management.take_calls().len();
    // The cold start's event posted once too.
    if posts < samples.len() + 1 {
        return Err(format!(
            "{runtime}: {posts} posts reached @connections for {} events",
            samples.len() + 1
        ));
    }
    let (p50_us, p99_us) = percentiles(&mut samples);
    Ok(Warm {
        events: samples.len(),
        p50_us,
        p99_us,
        cpu_us: cpu,
        harness_cpu_us: harness_cpu,
    })
}

/// The release binary's size and its stripped copy's.
fn binary_sizes(args: &RunArgs) -> Option<(u64, u64)> {
    let size = std::fs::metadata(&args.echo_bin).ok()?.len();
    let stripped = args.work.join("echo-stripped");
    std::fs::copy(&args.echo_bin, &stripped).ok()?;
    let status = std::process::Command::new("strip")
        .arg(&stripped)
        .status()
        .ok()?;
    let stripped_size = if status.success() {
        std::fs::metadata(&stripped).ok()?.len()
    } else {
        size
    };
    Some((size, stripped_size))
}

/// `runs` cold starts of the function binary `bin`, one after another; prints the
/// median in ms (the `wsgw-bench cold-start` of the release-profile comparison).
pub async fn cold_starts(bin: &std::path::Path, runs: usize) -> Result<()> {
    let mut colds = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let (_started, cold) = cold_start(WSGW, Command::new(bin)).await?;
        colds.push(cold.as_secs_f64() * 1e3);
    }
    println!("{:.1}", median(&mut colds));
    Ok(())
}

/// Runs the Lambda mode benchmark for the three runtimes: cold starts taken in turns
/// (the median is reported), then events one after another to the last one started;
/// then, for each CPU share in `shares`, a function started afresh (at full CPU), held
/// to that share, and fewer events one after another.
pub async fn run(args: &RunArgs, shares: Option<&Hierarchy>, results: &mut Results) -> Result<()> {
    let (events, cold_starts, share_events) = if args.quick {
        (1_000, 2, 50)
    } else {
        (10_000, 7, 500)
    };
    eprintln!("wsgw-bench: Lambda mode, {cold_starts} cold starts and {events} events each");
    results.echo_binary = binary_sizes(args);
    let python_script = peers::write_script(&args.work, "runtime.py", PYTHON_RUNTIME)?;
    let node_script = peers::write_script(&args.peers, "runtime.js", NODE_RUNTIME)?;
    let command = |runtime: &str| match runtime {
        WSGW => Command::new(&args.echo_bin),
        PYTHON => {
            let mut python = Command::new(&args.python);
            python.arg(&python_script);
            python
        }
        _ => {
            let mut node = Command::new("node");
            node.arg(&node_script).current_dir(&args.peers);
            node
        }
    };
    let mut colds: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 1..=cold_starts {
        for (runtime, colds) in RUNTIMES.iter().zip(&mut colds) {
            let (mut started, cold) = cold_start(runtime, command(runtime)).await?;
            colds.push(cold.as_secs_f64() * 1e3);
            if round == cold_starts {
                let warm = per_event(runtime, &mut started, events).await?;
                results
                    .lambda
                    .push(row(runtime, None, median(colds), cold_starts, warm));
            }
        }
    }
    let Some(hierarchy) = shares else {
        return Ok(());
    };
    for share in SHARES {
        eprintln!(
            "wsgw-bench: Lambda mode at the CPU share of {}, {share_events} events each",
            share.label()
        );
        for runtime in RUNTIMES {
            let (mut started, _) = cold_start(runtime, command(runtime)).await?;
            let group = CpuGroup::create(hierarchy, share)?;
            group.add(started.function.pid()?)?;
            let warm = per_event(runtime, &mut started, share_events).await?;
            // The group first: it moves the live function back to the root group and is
            // removed; then the function is stopped.
            drop(group);
            drop(started);
            results
                .lambda
                .push(row(runtime, Some(share), f64::NAN, 0, warm));
        }
    }
    Ok(())
}

fn row(
    runtime: &'static str,
    share: Option<Share>,
    cold_ms: f64,
    cold_starts: usize,
    warm: Warm,
) -> Lambda {
    Lambda {
        runtime,
        share,
        cold_ms,
        cold_starts,
        events: warm.events,
        p50_us: warm.p50_us,
        p99_us: warm.p99_us,
        cpu_us: warm.cpu_us,
        harness_cpu_us: warm.harness_cpu_us,
    }
}

/// wsgw's function: the echo example's release binary.
const WSGW: &str = "wsgw echo (Rust, release)";
const PYTHON: &str = "Python 3 + boto3";
const NODE: &str = "Node 20 + AWS SDK v3";
/// The functions, in the order their cold starts take turns.
const RUNTIMES: [&str; 3] = [WSGW, PYTHON, NODE];

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_function_that_dies_ends_the_invocation_at_once_not_after_the_wait() {
        let emulator = LambdaRuntimeEmulator::start().await.unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "exit 7"]);
        let mut function = Guard::spawn("test function", command).unwrap();
        let error = tokio::time::timeout(WAIT / 2, invoke(&emulator, &mut function, event(1)))
            .await
            .expect("the invocation waited for a dead function")
            .unwrap_err();
        assert!(error.contains("exited") && error.contains('7'), "{error}");
    }
}
