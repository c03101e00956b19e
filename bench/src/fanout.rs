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
        let elapsed = started.elapsed().as_secs_f64();
        if let Some((id, error)) = report.failed.first() {
            eprintln!(
                "wsgw fanout-send: {} posts failed, the first: {id}: {error}",
                report.failed.len()
            );
        }
        println!("DONE {elapsed:.6} failed={}", report.failed.len());
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
            let mut failed_posts = 0;
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
                let round_result = deliveries(&mut guard, &mut received, n, started, timeout).await?;
                for ((spent, before), after) in cpu
                    .iter_mut()
                    .zip(cpu_before)
                    .zip(pids.map(peers::cpu_seconds))
                {
                    spent.push(after - before);
                }
                let Round {
                    sender_s,
                    failed,
                    received: count,
                    latest,
                } = round_result;
                own.push(sender_s);
                failed_posts = failed_posts.max(failed);
                last.push((latest - started).as_secs_f64());
                delivered = delivered.min(count);
                eprintln!(
                    "  {sender}, n={n}, +{latency_ms} ms, round {round}: last client after {:.3} s ({count} received, {failed} posts failed)",
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
                failed_posts,
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

/// What one round of a sender did.
#[derive(Debug)]
struct Round {
    /// The time the sender measured itself, in s.
    sender_s: f64,
    /// Posts that failed (Gone aside), as the sender counted them.
    failed: usize,
    /// Messages the clients received.
    received: usize,
    /// When the last of them arrived.
    latest: Instant,
}

/// How long the clients may take after the sender said `DONE` to receive what its posts
/// delivered: an answered post has handed its message to the socket already.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// Counts the clients' messages of one round started at `started` until the sender's
/// `DONE` line and then every message its successful posts delivered (within
/// [`DELIVERY_GRACE`]). A sender that exits or hangs up its output ends the round at
/// once with its error, not after `timeout`, which bounds a sender that stays silent.
async fn deliveries(
    guard: &mut Guard,
    received: &mut mpsc::UnboundedReceiver<Instant>,
    n: usize,
    started: Instant,
    timeout: Duration,
) -> Result<Round> {
    let mut latest = started;
    let mut count = 0;
    let mut done: Option<(f64, usize)> = None;
    let deadline = tokio::time::Instant::from_std(started) + timeout;
    let mut grace_deadline = deadline;
    loop {
        if let Some((_, failed)) = done {
            if count + failed >= n {
                break;
            }
        }
        tokio::select! {
            at = received.recv(), if count < n => match at {
                Some(at) => {
                    latest = latest.max(at);
                    count += 1;
                }
                None => return Err("the clients' readers ended".to_owned()),
            },
            line = guard.line_starting("DONE ", timeout), if done.is_none() => {
                done = Some(parse_done(&line?)?);
                grace_deadline = deadline.min(tokio::time::Instant::now() + DELIVERY_GRACE);
            }
            () = tokio::time::sleep_until(grace_deadline) => break,
        }
    }
    let (sender_s, failed) = done.ok_or_else(|| {
        format!(
            "{} did not print DONE within {timeout:?} ({count} of {n} received)",
            guard.name
        )
    })?;
    Ok(Round {
        sender_s,
        failed,
        received: count,
        latest,
    })
}

/// Parses a sender's `DONE SECONDS failed=COUNT` line.
fn parse_done(line: &str) -> Result<(f64, usize)> {
    let mut fields = line.split_whitespace().skip(1);
    let seconds = fields.next().and_then(|s| s.parse::<f64>().ok());
    let failed = fields
        .next()
        .and_then(|f| f.strip_prefix("failed="))
        .and_then(|f| f.parse::<usize>().ok());
    match (seconds, failed) {
        (Some(seconds), Some(failed)) => Ok((seconds, failed)),
        _ => Err(format!(
            "a sender printed {line:?}, not DONE SECONDS failed=COUNT"
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_lines_give_the_seconds_and_the_failed_posts() {
        assert_eq!(parse_done("DONE 1.250000 failed=0"), Ok((1.25, 0)));
        assert_eq!(parse_done("DONE 0.5 failed=17"), Ok((0.5, 17)));
        assert!(parse_done("DONE 0.5").is_err());
        assert!(parse_done("DONE soon failed=1").is_err());
    }

    /// A sender played by `sh -c script`; a script that waits ends with `exec sleep`, so
    /// the guard's kill stops the sleep itself (a child `sleep` would outlive the test,
    /// holding the test runner's output open).
    fn sender(script: &str) -> Guard {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        Guard::spawn("test sender", command).unwrap()
    }

    #[tokio::test]
    async fn a_sender_that_dies_ends_the_round_at_once_not_after_its_timeout() {
        let mut guard = sender("echo posting; exit 3");
        let (_tx, mut received) = mpsc::unbounded_channel();
        let started = Instant::now();
        let round = deliveries(
            &mut guard,
            &mut received,
            1_000,
            started,
            Duration::from_secs(600),
        );
        let error = tokio::time::timeout(Duration::from_secs(20), round)
            .await
            .expect("the round waited for its timeout")
            .unwrap_err();
        assert!(error.contains("exited before printing DONE"), "{error}");
    }

    #[tokio::test]
    async fn failed_posts_end_the_round_once_the_rest_is_delivered() {
        let mut guard = sender("echo 'DONE 0.25 failed=2'; exec sleep 600");
        let (tx, mut received) = mpsc::unbounded_channel();
        let started = Instant::now();
        tx.send(Instant::now()).unwrap();
        let round = deliveries(
            &mut guard,
            &mut received,
            3,
            started,
            Duration::from_secs(600),
        );
        let round = tokio::time::timeout(DELIVERY_GRACE / 2, round)
            .await
            .expect("the round waited although every successful post was delivered")
            .unwrap();
        assert_eq!((round.sender_s, round.failed, round.received), (0.25, 2, 1));
    }

    #[tokio::test]
    async fn messages_missing_after_done_are_waited_for_within_the_grace_only() {
        let mut guard = sender("echo 'DONE 0.5 failed=0'; exec sleep 600");
        let (_tx, mut received) = mpsc::unbounded_channel();
        let waited = Instant::now();
        let round = deliveries(
            &mut guard,
            &mut received,
            2,
            waited,
            Duration::from_secs(600),
        );
        let round = tokio::time::timeout(DELIVERY_GRACE * 2, round)
            .await
            .expect("the round waited past the grace")
            .unwrap();
        assert_eq!((round.failed, round.received), (0, 0));
        assert!(waited.elapsed() >= DELIVERY_GRACE);
    }
}
