//! Fan-out: one message to N live connections of a LocalGateway through its `@connections`
//! HTTP API, sent by wsgw (`ApiGatewaySink` + `broadcast`), by the seeds' Python
//! sequential boto3 loop, and by AWS's Node `Promise.all` sample.
//!
//! Each sender is a process started ahead and told "go" on its standard input with the
//! payload; the time counted runs from "go" until the last of the N clients received it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;
use wsgw_core::{Backends, BroadcastOptions, ConnectionId, MessageSink, Payload, Router};

use crate::client::{self, Socket};
use crate::cpu_share::{CpuGroup, Hierarchy, Share, SHARES};
use crate::peers::{self, Guard};
use crate::report::{Fanout, Results};
use crate::{Result, RunArgs};

/// The senders, in the order they run.
pub const SENDERS: [&str; 3] = [WSGW, NODE, PYTHON];
/// wsgw's sender.
pub const WSGW: &str = "wsgw ApiGatewaySink + broadcast";
/// The Node sample.
pub const NODE: &str = "Node Promise.all (AWS SDK v3)";
/// The Python loop.
pub const PYTHON: &str = "Python boto3 sequential loop";

/// The name `--skip` knows a sender by.
fn skip_name(sender: &str) -> &'static str {
    match sender {
        WSGW => "fanout-wsgw",
        NODE => "fanout-node",
        _ => "fanout-python",
    }
}

/// `wsgw-bench fanout-send`: wsgw's sender process.
pub async fn send(endpoint: &str, ids: &Path, concurrency: Option<usize>) -> Result<()> {
    let ids: Arc<Vec<ConnectionId>> = Arc::new(
        std::fs::read_to_string(ids)
            .map_err(|e| format!("{}: {e}", ids.display()))?
            .split_whitespace()
            .map(ConnectionId::new)
            .collect(),
    );
    let sink: Arc<dyn MessageSink> = Arc::new(wsgw_aws::ApiGatewaySink::new(
        &wsgw_aws::config::local_sdk_config(),
        endpoint,
    ));
    let backends = Backends::new(Arc::new(wsgw_memory::MemoryStore::new()), sink);
    let mut options = BroadcastOptions::default();
    if let Some(concurrency) = concurrency {
        options = options.concurrency(concurrency);
    }
    // What a handler broadcasts with: a router's context on the sender's backends.
    let ctx = Router::new().broadcast_options(options).context(&backends);
    println!("READY");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let started = Instant::now();
        let payload = Payload::text(line.trim().to_owned());
        // On a runtime worker, as a handler runs, not on the thread blocking on `main`.
        let (ctx, ids) = (ctx.clone(), ids.clone());
        let report =
            tokio::spawn(
                async move { ctx.broadcast_payload(payload).to(ids.iter().cloned()).await },
            )
            .await
            .map_err(|e| format!("the broadcast task failed: {e}"))?
            .map_err(|e| format!("the broadcast failed: {e}"))?;
        if !report.failed.is_empty() {
            eprintln!("wsgw fanout-send: {} failed", report.failed.len());
        }
        println!("DONE {:.6}", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Opens `n` connections and learns their ids (`whoami`).
async fn open(url: &str, n: usize) -> Result<Vec<(String, Socket)>> {
    stream::iter(0..n)
        .map(|_| async move {
            let mut socket = client::connect(url).await?;
            let answer =
                client::round_trip(&mut socket, r#"{"action":"whoami"}"#.to_owned()).await?;
            let answer: serde_json::Value =
                serde_json::from_str(&answer).map_err(|e| format!("whoami: {e}"))?;
            let id = answer["connection_id"]
                .as_str()
                .ok_or_else(|| format!("whoami answered {answer}"))?
                .to_owned();
            Ok::<_, String>((id, socket))
        })
        .buffer_unordered(100)
        .try_collect()
        .await
}

fn sender_command(sender: &str, args: &RunArgs, endpoint: &str, ids: &Path) -> Result<Command> {
    Ok(match sender {
        WSGW => {
            let mut command = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
            command
                .args(["fanout-send", "--endpoint", endpoint, "--ids"])
                .arg(ids);
            if let Some(concurrency) = args.fanout_concurrency {
                command.arg("--concurrency").arg(concurrency.to_string());
            }
            command
        }
        NODE => {
            let script = peers::write_script(&args.peers, "fanout.js", peers::NODE_FANOUT)?;
            let mut command = Command::new("node");
            command
                .arg(script)
                .arg(endpoint)
                .arg(ids)
                .current_dir(&args.peers);
            command
        }
        _ => {
            let script = peers::write_script(&args.work, "fanout.py", peers::PYTHON_FANOUT)?;
            let mut command = Command::new(&args.python);
            command.arg(script).arg(endpoint).arg(ids);
            command
        }
    })
}

/// The emulated round trip between a sender and API Gateway's Management API in the
/// second pass: the low end of what a Lambda sees in its own region, so the figure
/// flatters the sequential loop rather than wsgw.
pub const EMULATED_LATENCY_MS: u64 = 5;

/// One pass of the fan-out benchmark: connection counts, repetitions, and the latency
/// the gateway's `@connections` adds to every answer.
pub struct Pass {
    pub counts: Vec<usize>,
    pub repetitions: usize,
    pub latency_ms: u64,
}

/// The passes of a full or a quick run: over bare loopback, where every sender is bound
/// by CPU, then with an emulated network round trip per post, where a sender's
/// concurrency decides.
pub fn passes(quick: bool) -> Vec<Pass> {
    if quick {
        vec![
            Pass {
                counts: vec![1_000],
                repetitions: 1,
                latency_ms: 0,
            },
            Pass {
                counts: vec![100],
                repetitions: 1,
                latency_ms: EMULATED_LATENCY_MS,
            },
        ]
    } else {
        vec![
            Pass {
                counts: vec![1_000, 10_000],
                repetitions: 3,
                latency_ms: 0,
            },
            Pass {
                counts: vec![100, 1_000],
                repetitions: 3,
                latency_ms: EMULATED_LATENCY_MS,
            },
        ]
    }
}

/// The pass run at each CPU share (the sender held to it): N = 1,000 against the
/// gateway with the emulated round trip, as deployed (quick: N = 100, once).
pub fn share_pass(quick: bool) -> Pass {
    Pass {
        counts: vec![if quick { 100 } else { 1_000 }],
        repetitions: if quick { 1 } else { 3 },
        latency_ms: EMULATED_LATENCY_MS,
    }
}

async fn gateway(pass: &Pass) -> Result<peers::Server> {
    peers::own_server_with(
        "serve-gateway",
        &[
            "--management-latency-ms".to_owned(),
            pass.latency_ms.to_string(),
        ],
    )
    .await
}

/// Runs the fan-out benchmark, then its share pass at each CPU share when `shares` is
/// given.
pub async fn run(args: &RunArgs, shares: Option<&Hierarchy>, results: &mut Results) -> Result<()> {
    for pass in passes(args.quick) {
        let gateway = gateway(&pass).await?;
        for &n in &pass.counts {
            run_one(args, &gateway, n, &pass, None, results).await?;
        }
    }
    if let Some(hierarchy) = shares {
        let pass = share_pass(args.quick);
        let gateway = gateway(&pass).await?;
        for share in SHARES {
            for &n in &pass.counts {
                run_one(args, &gateway, n, &pass, Some((hierarchy, share)), results).await?;
            }
        }
    }
    Ok(())
}

/// Every sender's rounds to `n` connections of `gateway`.
async fn run_one(
    args: &RunArgs,
    gateway: &peers::Server,
    n: usize,
    pass: &Pass,
    share: Option<(&Hierarchy, Share)>,
    results: &mut Results,
) -> Result<()> {
    let (repetitions, latency_ms) = (pass.repetitions, pass.latency_ms);
    let at_share = share.map_or_else(String::new, |(_, share)| {
        format!(", senders at the CPU share of {}", share.label())
    });
    eprintln!(
        "wsgw-bench: fan-out, opening {n} connections (@connections latency {latency_ms} ms{at_share})"
    );
    let sockets = open(&gateway.ws_url, n).await?;
    let ids_file = args.work.join(format!("ids-{n}.txt"));
    let ids: Vec<&str> = sockets.iter().map(|(id, _)| id.as_str()).collect();
    std::fs::write(&ids_file, ids.join("\n")).map_err(|e| e.to_string())?;
    let (received_tx, mut received) = mpsc::unbounded_channel::<Instant>();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|(_, mut socket)| {
            let received_tx = received_tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    if message.is_text() && received_tx.send(Instant::now()).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(received_tx);
    let outcome = async {
        for sender in SENDERS.into_iter().filter(|s| args.runs(skip_name(s))) {
            let command = sender_command(sender, args, &gateway.management, &ids_file)?;
            let mut guard = Guard::spawn(sender, command)?;
            guard.line_starting("READY", peers::STARTUP).await?;
            // Ready at full CPU, as a warm function is; the broadcasts at the share.
            let group = match share {
                Some((hierarchy, share)) => {
                    let group = CpuGroup::create(hierarchy, share)?;
                    group.add(guard.pid()?)?;
                    Some(group)
                }
                None => None,
            };
            let mut last = Vec::new();
            let mut own = Vec::new();
            let mut delivered = n;
            let mut cpu = [Vec::new(), Vec::new(), Vec::new()];
            let pids = [gateway.guard.pid()?, guard.pid()?, std::process::id()];
            for round in 0..repetitions {
                let cpu_before = pids.map(peers::cpu_seconds);
                let started = Instant::now();
                guard
                    .say(&format!("{{\"type\":\"broadcast\",\"round\":{round}}}"))
                    .await?;
                let timeout = Duration::from_secs(if n > 1_000 || share.is_some() {
                    600
                } else {
                    120
                });
                let mut latest = started;
                let mut count = 0;
                let deadline = tokio::time::Instant::now() + timeout;
                while count < n {
                    match tokio::time::timeout_at(deadline, received.recv()).await {
                        Ok(Some(at)) => {
                            latest = latest.max(at);
                            count += 1;
                        }
                        _ => break,
                    }
                }
                let done = guard.line_starting("DONE ", timeout).await?;
                for ((spent, before), after) in cpu
                    .iter_mut()
                    .zip(cpu_before)
                    .zip(pids.map(peers::cpu_seconds))
                {
                    spent.push(after - before);
                }
                own.push(
                    done.trim_start_matches("DONE ")
                        .trim()
                        .parse::<f64>()
                        .unwrap_or(f64::NAN),
                );
                last.push((latest - started).as_secs_f64());
                delivered = delivered.min(count);
                eprintln!(
                    "  {sender}, n={n}, +{latency_ms} ms, round {round}: last client after {:.3} s ({count} received)",
                    (latest - started).as_secs_f64()
                );
            }
            drop(group);
            let sender_cpu_us_per_post =
                cpu[1].iter().sum::<f64>() * 1e6 / (n * repetitions).max(1) as f64;
            results.fanout.push(Fanout {
                sender,
                connections: n,
                latency_ms,
                share: share.map(|(_, share)| share),
                last_received_s: median(&mut last),
                sender_s: median(&mut own),
                delivered,
                repetitions,
                cpu_s: cpu.map(|mut spent| median(&mut spent)),
                sender_cpu_us_per_post,
            });
        }
        Ok::<(), String>(())
    }
    .await;
    for reader in readers {
        reader.abort();
    }
    outcome
}

/// The median of `values` (NaN when empty).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[len / 2],
        len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
    }
}
