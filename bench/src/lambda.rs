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

/// A function process answering events from its own emulator.
struct Started {
    emulator: LambdaRuntimeEmulator,
    management: ManagementRecorder,
    _function: Guard,
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
    let function = Guard::spawn_with_stdout(runtime, command)?;
    let first = emulator.invoke(event(0), WAIT).await;
    let cold = started.elapsed();
    if !matches!(first, Some(Invocation::Response(_))) {
        return Err(format!("{runtime}: first event answered {first:?}"));
    }
    Ok((
        Started {
            emulator,
            management,
            _function: function,
        },
        cold,
    ))
}

/// Events one after another to a warm function: the number answered, p50 and p99 in µs.
async fn per_event(
    runtime: &'static str,
    started: &Started,
    events: usize,
) -> Result<(usize, f64, f64)> {
    let window = Duration::from_secs(60);
    let began = Instant::now();
    let mut samples = Vec::with_capacity(events);
    let mut posts = started.management.take_calls().len();
    for i in 1..=events {
        if began.elapsed() > window {
            break;
        }
        let sent = Instant::now();
        match started.emulator.invoke(event(i), WAIT).await {
            Some(Invocation::Response(_)) => samples.push(sent.elapsed()),
            other => return Err(format!("{runtime}: event {i} answered {other:?}")),
        }
        if i % 1000 == 0 {
            posts += started.management.take_calls().len();
        }
    }
    posts += started.management.take_calls().len();
    // The cold start's event posted once too.
    if posts < samples.len() + 1 {
        return Err(format!(
            "{runtime}: {posts} posts reached @connections for {} events",
            samples.len() + 1
        ));
    }
    let (p50, p99) = percentiles(&mut samples);
    Ok((samples.len(), p50, p99))
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
/// (the median is reported), then events one after another to the last one started.
pub async fn run(args: &RunArgs, results: &mut Results) -> Result<()> {
    let (events, cold_starts) = if args.quick { (1_000, 2) } else { (10_000, 7) };
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
            let (started, cold) = cold_start(runtime, command(runtime)).await?;
            colds.push(cold.as_secs_f64() * 1e3);
            if round == cold_starts {
                let (count, p50_us, p99_us) = per_event(runtime, &started, events).await?;
                results.lambda.push(Lambda {
                    runtime,
                    cold_ms: median(colds),
                    cold_starts,
                    events: count,
                    p50_us,
                    p99_us,
                });
            }
        }
    }
    Ok(())
}

/// wsgw's function: the echo example's release binary.
const WSGW: &str = "wsgw echo (Rust, release)";
const PYTHON: &str = "Python 3 + boto3";
const NODE: &str = "Node 20 + AWS SDK v3";
/// The functions, in the order their cold starts take turns.
const RUNTIMES: [&str; 3] = [WSGW, PYTHON, NODE];
