//! The run: every benchmark in turn, then the table, the final line of ratios, the
//! Markdown report and the fan-out plot.

use std::fmt::Write as _;
use std::time::Instant;

use crate::cpu_share::{self, Hierarchy, Share};
use crate::fanout::{NODE, PYTHON, WSGW};
use crate::{Result, RunArgs};

/// One round trip row.
pub struct RoundTrip {
    pub name: &'static str,
    pub messages: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub clients: usize,
    /// Throughput windows measured (the columns below are their medians).
    pub windows: usize,
    pub per_second: f64,
    /// The server's CPU time (every thread and child process) per round trip, in µs.
    pub cpu_us: f64,
}

/// Resident memory around opening idle connections.
pub struct Memory {
    pub name: &'static str,
    pub connections: usize,
    pub before_kib: u64,
    pub after_kib: u64,
}

impl Memory {
    /// Bytes of resident memory per idle connection; `None` when the process shrank
    /// meanwhile (a garbage collector returned more than the connections took).
    pub fn per_connection_bytes(&self) -> Option<f64> {
        let grown = self.after_kib.checked_sub(self.before_kib)?;
        Some((grown * 1024) as f64 / self.connections.max(1) as f64)
    }
}

/// One fan-out row (medians over the repetitions).
pub struct Fanout {
    pub sender: &'static str,
    pub connections: usize,
    /// The emulated network round trip each `@connections` answer waited for.
    pub latency_ms: u64,
    pub last_received_s: f64,
    pub sender_s: f64,
    pub delivered: usize,
    /// The most posts of one round the sender counted as failed (Gone aside).
    pub failed_posts: usize,
    pub repetitions: usize,
    /// The CPU share the sender was held to during the rounds (`None`: the whole machine).
    pub share: Option<Share>,
    /// CPU time (user + system) during a round: the gateway, the sender, the clients.
    pub cpu_s: [f64; 3],
    /// The sender's CPU time per `@connections` post, in µs: its CPU time over every
    /// round divided by the posts of every round.
    pub sender_cpu_us_per_post: f64,
}

/// One Lambda runtime row.
pub struct Lambda {
    pub runtime: &'static str,
    /// The CPU share the function was held to while warm (`None`: the whole machine).
    pub share: Option<Share>,
    /// The median of `cold_starts` cold starts (NaN: not taken in this row).
    pub cold_ms: f64,
    pub cold_starts: usize,
    pub events: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    /// The function process's CPU time (user + system) per warm event, in µs.
    pub cpu_us: f64,
    /// The bench process's CPU time (the Runtime API emulator, the `@connections`
    /// recorder) per warm event, in µs.
    pub harness_cpu_us: f64,
}

/// One criterion benchmark: the median time per iteration and its 95% confidence interval.
pub struct HotPath {
    pub name: String,
    pub median_ns: f64,
    pub low_ns: f64,
    pub high_ns: f64,
}

/// Everything measured.
#[derive(Default)]
pub struct Results {
    pub hot_paths: Vec<HotPath>,
    pub roundtrip: Vec<RoundTrip>,
    pub memory: Vec<Memory>,
    pub fanout: Vec<Fanout>,
    pub lambda: Vec<Lambda>,
    pub echo_binary: Option<(u64, u64)>,
    pub dynamodb: Vec<String>,
    /// The quota self-check: each share and the fraction of a core a busy loop held to
    /// it got.
    pub share_checks: Vec<(Share, f64)>,
    /// Why the CPU-share rows are missing, when they are.
    pub shares_skipped: Option<String>,
}

/// The CPU controller for the CPU-share rows, after [`cpu_share::self_check`] showed
/// each quota holds; `None` when they are skipped (by `--skip shares`, or in a quick run
/// when this machine has no writable cgroup fs: the reason is printed and reported).
async fn prepare_shares(args: &RunArgs, results: &mut Results) -> Result<Option<Hierarchy>> {
    if !args.runs("shares") || !(args.runs("fanout") || args.runs("lambda")) {
        return Ok(None);
    }
    let checked = async {
        let hierarchy = cpu_share::hierarchy()?;
        for share in cpu_share::SHARES {
            let got = cpu_share::self_check(&hierarchy, share).await?;
            eprintln!(
                "wsgw-bench: a busy loop held to the CPU share of {} got {:.1} % of a core",
                share.label(),
                got * 100.0
            );
            results.share_checks.push((share, got));
        }
        Ok::<_, String>(hierarchy)
    }
    .await;
    match checked {
        Ok(hierarchy) => Ok(Some(hierarchy)),
        Err(error) if args.quick => {
            let reason = format!(
                "the CPU-share rows are skipped in this quick run: {error} (a full run fails \
                 here; run as root on Linux with a cgroup v1 `cpu` or v2 `cpu.max` controller)"
            );
            eprintln!("wsgw-bench: {reason}");
            results.shares_skipped = Some(reason);
            Ok(None)
        }
        Err(error) => Err(format!(
            "the CPU-share rows need a CPU quota: {error}. Run as root on Linux with a \
             cgroup v1 `cpu` or v2 `cpu.max` controller, or pass --skip shares"
        )),
    }
}

/// Runs every benchmark not skipped, then reports.
pub async fn run(mut args: RunArgs) -> Result<()> {
    std::fs::create_dir_all(&args.work).map_err(|e| e.to_string())?;
    // Scripts run in other directories: every path absolute.
    for path in [
        &mut args.work,
        &mut args.peers,
        &mut args.python,
        &mut args.echo_bin,
    ] {
        if let Ok(absolute) = std::path::absolute(&*path) {
            *path = absolute;
        }
    }
    let started = Instant::now();
    let mut results = Results::default();
    // First, on a machine not yet busy with servers.
    if args.runs("criterion") {
        crate::criterion::run(&args, &mut results).await?;
    }
    if args.runs("roundtrip") {
        crate::roundtrip::run(&args, &mut results).await?;
    }
    let shares = prepare_shares(&args, &mut results).await?;
    if args.runs("fanout") {
        crate::fanout::run(&args, shares.as_ref(), &mut results).await?;
    }
    if args.runs("lambda") {
        crate::lambda::run(&args, shares.as_ref(), &mut results).await?;
    }
    match (&args.dynamodb_endpoint, args.runs("dynamodb")) {
        (Some(endpoint), true) => crate::dynamo::run(&args, endpoint, &mut results).await?,
        (None, true) => eprintln!("wsgw-bench: no --dynamodb-endpoint: DynamoDB count skipped"),
        _ => {}
    }
    let elapsed = started.elapsed();
    let table = table(&results);
    println!("\n{table}");
    let ratios = ratios(&results);
    let markdown = markdown(&args, &results, &table, &ratios, elapsed.as_secs_f64());
    std::fs::write(&args.out_md, markdown)
        .map_err(|e| format!("{}: {e}", args.out_md.display()))?;
    std::fs::write(&args.out_svg, crate::plot::svg(&results)?)
        .map_err(|e| format!("{}: {e}", args.out_svg.display()))?;
    eprintln!(
        "wsgw-bench: wrote {} and {} in {:.0} s",
        args.out_md.display(),
        args.out_svg.display(),
        elapsed.as_secs_f64()
    );
    println!("{ratios}");
    Ok(())
}

fn find_rt<'a>(results: &'a Results, prefix: &str) -> Option<&'a RoundTrip> {
    results
        .roundtrip
        .iter()
        .find(|r| r.name.starts_with(prefix))
}

fn find_fanout<'a>(
    results: &'a Results,
    sender: &str,
    n: usize,
    latency_ms: u64,
    share: Option<Share>,
) -> Option<&'a Fanout> {
    results.fanout.iter().find(|f| {
        f.sender == sender && f.connections == n && f.latency_ms == latency_ms && f.share == share
    })
}

fn find_lambda<'a>(results: &'a Results, prefix: &str, share: Option<Share>) -> Option<&'a Lambda> {
    results
        .lambda
        .iter()
        .find(|l| l.runtime.starts_with(prefix) && l.share == share)
}

/// "full" or the share's label.
fn share_label(share: Option<Share>) -> String {
    share.map_or_else(|| "full".to_owned(), Share::label)
}

/// The Markdown tables of everything measured.
pub fn table(results: &Results) -> String {
    let mut out = String::new();
    if !results.roundtrip.is_empty() {
        out.push_str("### Local round trip\n\n| server | sequential round trips | p50 (µs) | p99 (µs) | concurrent clients | throughput (round trips/s) | server CPU per round trip (µs) | windows (median) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &results.roundtrip {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {} | {:.0} | {:.1} | {} |",
                r.name,
                r.messages,
                r.p50_us,
                r.p99_us,
                r.clients,
                r.per_second,
                r.cpu_us,
                r.windows
            );
        }
        out.push('\n');
    }
    if !results.memory.is_empty() {
        out.push_str("### Memory per idle connection\n\n| server | idle connections | RSS before (MiB) | RSS after (MiB) | per connection (KiB) |\n|---|---:|---:|---:|---:|\n");
        for m in &results.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {} |",
                m.name,
                m.connections,
                m.before_kib as f64 / 1024.0,
                m.after_kib as f64 / 1024.0,
                m.per_connection_bytes().map_or_else(
                    || "not measurable: the process shrank".to_owned(),
                    |bytes| format!("{:.1}", bytes / 1024.0)
                )
            );
        }
        out.push('\n');
    }
    if !results.fanout.is_empty() {
        out.push_str("### Fan-out through `@connections` (LocalGateway)\n\n| sender | sender's CPU share | N | emulated @connections round trip (ms) | until the last client received (ms) | messages/s | sender's own time (ms) | delivered (fewest of the runs) | failed posts (most of the runs) | runs (median) | CPU ms: gateway / sender / clients | sender's CPU per post (µs) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for f in &results.fanout {
            let [gateway, sender, clients] = f.cpu_s.map(|s| s * 1e3);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} | {:.0} | {:.1} | {} | {} | {} | {gateway:.0} / {sender:.0} / {clients:.0} | {:.1} |",
                f.sender,
                share_label(f.share),
                f.connections,
                f.latency_ms,
                f.last_received_s * 1e3,
                f.connections as f64 / f.last_received_s,
                f.sender_s * 1e3,
                f.delivered,
                f.failed_posts,
                f.repetitions,
                f.sender_cpu_us_per_post
            );
        }
        out.push('\n');
    }
    if !results.lambda.is_empty() {
        out.push_str("### Lambda mode against a loopback Runtime API\n\n| function | warm function's CPU share | cold start: spawn → first response (ms) | cold starts (median) | events | per event p50 (µs) | per event p99 (µs) | function's CPU per event (µs) | harness's CPU per event (µs) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for l in &results.lambda {
            let cold = if l.cold_ms.is_nan() {
                "–".to_owned()
            } else {
                format!("{:.1}", l.cold_ms)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {cold} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                l.runtime,
                share_label(l.share),
                l.cold_starts,
                l.events,
                l.p50_us,
                l.p99_us,
                l.cpu_us,
                l.harness_cpu_us
            );
        }
        if let Some((size, stripped)) = results.echo_binary {
            let _ = writeln!(
                out,
                "\nThe echo binary (release): {:.1} MiB, {:.1} MiB stripped.",
                size as f64 / 1048576.0,
                stripped as f64 / 1048576.0
            );
        }
        out.push('\n');
    }
    if !results.share_checks.is_empty() {
        out.push_str("### CPU quota self-check\n\n| CPU share (Lambda memory size) | a busy loop held to it got (% of a core) |\n|---|---:|\n");
        for (share, got) in &results.share_checks {
            let _ = writeln!(out, "| {} | {:.1} |", share.label(), got * 100.0);
        }
        out.push('\n');
    }
    if let Some(reason) = &results.shares_skipped {
        let _ = writeln!(out, "**CPU-share rows missing**: {reason}.\n");
    }
    if !results.hot_paths.is_empty() {
        out.push_str("### In-process hot paths (criterion)\n\n| benchmark | median per iteration | 95% confidence interval |\n|---|---:|---:|\n");
        for h in &results.hot_paths {
            let _ = writeln!(
                out,
                "| {} | {} | {} – {} |",
                h.name,
                duration(h.median_ns),
                duration(h.low_ns),
                duration(h.high_ns)
            );
        }
        out.push('\n');
    }
    out
}

/// Nanoseconds in the unit that reads best.
fn duration(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// One line: wsgw ÷ peer (or peer ÷ wsgw for times), so that > 1 means wsgw is ahead.
pub fn ratios(results: &Results) -> String {
    let mut parts = Vec::new();
    let wsgw = find_rt(results, "wsgw");
    if let (Some(w), Some(s)) = (wsgw, find_rt(results, "serverless")) {
        parts.push(format!(
            "throughput wsgw/sls {:.1}x, p50 sls/wsgw {:.1}x",
            w.per_second / s.per_second,
            s.p50_us / w.p50_us
        ));
    }
    if let (Some(w), Some(b)) = (wsgw, find_rt(results, "bare")) {
        parts.push(format!(
            "throughput wsgw/bare {:.2}x, server CPU per round trip bare/wsgw {:.2}x",
            w.per_second / b.per_second,
            b.cpu_us / w.cpu_us
        ));
    }
    let mut runs: Vec<(u64, usize, Option<Share>)> = results
        .fanout
        .iter()
        .map(|f| (f.latency_ms, f.connections, f.share))
        .collect();
    runs.dedup();
    for (latency_ms, n, share) in runs {
        let mut with = if latency_ms == 0 {
            String::new()
        } else {
            format!(" +{latency_ms}ms")
        };
        if let Some(share) = share {
            let _ = write!(with, " at {} MB", share.memory_mb);
        }
        if let Some(w) = find_fanout(results, WSGW, n, latency_ms, share) {
            for (peer, label) in [(PYTHON, "python"), (NODE, "node")] {
                if let Some(p) = find_fanout(results, peer, n, latency_ms, share) {
                    parts.push(format!(
                        "fan-out N={n}{with} {label}/wsgw {:.1}x",
                        p.last_received_s / w.last_received_s
                    ));
                    if share.is_none() && latency_ms == 0 {
                        parts.push(format!(
                            "CPU per post N={n} {label}/wsgw {:.1}x",
                            p.sender_cpu_us_per_post / w.sender_cpu_us_per_post
                        ));
                    }
                }
            }
        }
    }
    let mut shares: Vec<Option<Share>> = results.lambda.iter().map(|l| l.share).collect();
    shares.dedup();
    for share in shares {
        let Some(w) = find_lambda(results, "wsgw", share) else {
            continue;
        };
        let at = share.map_or_else(String::new, |share| format!(" at {} MB", share.memory_mb));
        for (peer, label) in [("Python", "python"), ("Node", "node")] {
            if let Some(p) = find_lambda(results, peer, share) {
                if share.is_none() {
                    parts.push(format!(
                        "cold start {label}/wsgw {:.1}x",
                        p.cold_ms / w.cold_ms
                    ));
                }
                parts.push(format!(
                    "warm event{at} CPU {label}/wsgw {:.1}x, p50 {label}/wsgw {:.1}x",
                    p.cpu_us / w.cpu_us,
                    p.p50_us / w.p50_us
                ));
            }
        }
    }
    format!("ratios (>1 = wsgw ahead): {}", parts.join("; "))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / 1048576.0);
    let version = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{cpu}, {cores} cores, {memory:.0} GiB RAM; Linux {}; {}; Node {}; {}",
        version("uname", "-r"),
        version("rustc", "--version"),
        version("node", "--version"),
        version("python3", "--version"),
    )
}

fn markdown(args: &RunArgs, results: &Results, table: &str, ratios: &str, secs: f64) -> String {
    // The plot's path relative to the report's directory.
    let svg_name = args
        .out_md
        .parent()
        .and_then(|dir| args.out_svg.strip_prefix(dir).ok())
        .or_else(|| args.out_svg.file_name().map(std::path::Path::new))
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_default();
    let findings = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("FINDINGS.md"),
    )
    .unwrap_or_default();
    let dynamodb = if results.dynamodb.is_empty() {
        String::new()
    } else {
        format!("### DynamoDB\n\n{}\n\n", results.dynamodb.join("\n"))
    };
    format!(
        "# Benchmarks\n\n\
         <!-- Generated by `{command}`: edit bench/src/report.rs or bench/FINDINGS.md, not this file. -->\n\n\
         Command: `{command}`{quick} (took {secs:.0} s)\n\n\
         Machine: {machine}. The machine is shared (other builds ran at the same time): \
         compare the rows of one run, not runs with each other.\n\n\
         {ratios}\n\n\
         {table}{dynamodb}\
         ![fan-out time vs N]({svg_name})\n\n\
         ## What each number means\n\n\
         - **Local round trip**: one WebSocket client sends a message and waits for the answer, \
         sequentially (after 20 warm-up messages); p50/p99 of the time from send to answer. \
         Throughput: 100 clients on 100 connections, each sending its next message when its \
         answer came, for a fixed window; round trips per second, all clients together. The \
         bare server and the LocalGateway run at the same time and take their windows in \
         turns (five of 2 s each; the median is shown), so a busy neighbour slows both alike; \
         serverless-offline gets one window as long as those together. Server CPU per round \
         trip: the user + system time the server process (every thread and child process) \
         used during a window, divided by the round trips of that window: what the server \
         itself spends on one message, whatever the clients cost. \
         The servers: a bare tokio-tungstenite echo server (no routing, no store: the physical \
         limit), the LocalGateway running the echo example's router (route selection on \
         `$request.body.action`, the handler answering through the gateway's sink), and \
         serverless-offline 13 (serverless 3) running a Node 20 handler that posts the answer \
         back through `@connections` with the AWS SDK v3, as the chat tutorial does. Each \
         server is a process of its own; the clients run in the benchmark's process, and \
         share the 2 cores with the server.\n\
         - **Memory per idle connection**: resident memory (VmRSS of the server process and its \
         children) before and one second after opening that many idle connections, on a \
         process that has served only 20 warm-up messages (so what a server starts on its \
         first message, such as a Lambda worker, is in the baseline); the difference \
         divided by the count. The bare server uses the same \
         4 KiB tungstenite read buffer as the LocalGateway, so its row is the cost of the \
         socket alone.\n\
         - **Fan-out**: N clients connected to one LocalGateway; a sender process, started \
         and ready beforehand, is told \"go\" with the payload and posts it to every connection \
         through the gateway's `@connections` HTTP API. The time runs from \"go\" until the \
         last client received the message (messages/s = N divided by that); the sender's own \
         time is what the sender measured around its loop. wsgw: `ApiGatewaySink` + \
         `ctx.broadcast(…).to(ids)` (`wsgw_core::Context`, default `BroadcastOptions`: 64 in flight). Python: boto3 \
         `post_to_connection` in a sequential loop (the seeds' style, without their table \
         scan). CPU ms: user + system time each process used during a round (from \
         `/proc/PID/stat`, 10 ms ticks): the gateway, the sender, and the benchmark process \
         whose tasks are the N receiving clients; on 2 cores, a round can use at most twice \
         its wall time. Sender's CPU per post: the sender's CPU time over every round divided \
         by the posts of every round (the sender process only: not the gateway, not the \
         clients, not the bench). Node: AWS SDK v3 `PostToConnectionCommand` under one `Promise.all` (AWS's \
         sample). Median over the runs. Two passes: over bare loopback (emulated round trip \
         0 ms), where a post costs only CPU and every sender is bound by its CPU; then against \
         a gateway that answers every `@connections` request 5 ms after it came in \
         (`LocalGateway::management_latency`; the message reaches its socket at once), the low \
         end of the round trip from a Lambda to API Gateway in its region, where a sender's \
         concurrency decides, as it does deployed; in the plot, dashed lines.\n\
         - **Lambda mode**: the function process is started with `AWS_LAMBDA_RUNTIME_API` \
         pointing at wsgw-memory's `LambdaRuntimeEmulator` on loopback, with a MESSAGE event \
         already waiting; cold start is from spawning the process until the first response \
         came back (the handler posts to a recording `@connections` endpoint first); the median \
         of several cold starts, the three functions taking turns. Then, to the last one \
         started, that many events one after another; p50/p99 per event as the emulator sees it. \
         wsgw: the echo example's release binary. Python and Node: the same echo handler \
         (boto3 / AWS SDK v3 client made at init) under a minimal Runtime API client loop. \
         Function's CPU per event: the user + system time of the function process alone \
         (`/proc/PID/stat`) over the warm events, divided by their number; harness's CPU per \
         event: the same for the bench process, which runs the Runtime API emulator and the \
         recording `@connections` endpoint (what the harness costs, not counted for the \
         function).\n\
         - **Lambda's CPU share**: Lambda gives a function CPU in proportion to its memory, one \
         full vCPU at 1,769 MB; the rows marked 128 MB (7.2 % of a core) and 1,024 MB (57.9 %) \
         ran with the measured process alone (the fan-out sender, or the warm function) in a \
         cgroup of its own whose CFS quota is that fraction of a 100 ms period (cgroup v1 \
         `cpu.cfs_quota_us` or v2 `cpu.max`), moved there once it was ready (its start-up at \
         full CPU); the gateway, the clients and the emulator run at full CPU. Fan-out: N \
         clients against the gateway with the 5 ms `@connections` round trip, as deployed. \
         Lambda: a function started afresh, then fewer warm events. Before those rows, a busy \
         loop is held to each quota for 1.5 s and must not get more than the share (+15 %, \
         +2 points for the 10 ms ticks), or the run fails: the self-check table.\n\
         - **DynamoDB**: a DynamoStore table at moto's server holding that many connections \
         (written beforehand with `BatchWriteItem`, in the store's own item format), a tenth of \
         them members of one room; one `ctx.broadcast(…).to_group(room)` (`wsgw_core::Context`) over a memory sink, \
         with every request the store makes counted by its `X-Amz-Target` at a loopback \
         proxy in front of moto.\n\
         - **In-process hot paths**: criterion (`bench/src/hot_paths.rs`, run first as \
         `wsgw-bench hot-paths`; also `cargo bench -p wsgw-bench --bench hot_paths`): median time per iteration and the 95% \
         confidence interval of that median. Route selection on a JSON body, an API \
         Gateway WebSocket event decoded from its JSON text, MemoryStore operations on a \
         store of 10,000 connections, and one `ctx.broadcast(…).to(ids)` to 10,000 connections over the \
         memory sink (the whole broadcast per iteration).\n\n\
         {findings}",
        command = args.command_line,
        quick = if args.quick { " (quick: a smoke run, small counts)" } else { "" },
        machine = machine(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_share::SHARES;

    fn fanout(sender: &'static str, share: Option<Share>, ms: f64, cpu_us: f64) -> Fanout {
        Fanout {
            sender,
            connections: 1_000,
            latency_ms: if share.is_some() { 5 } else { 0 },
            share,
            last_received_s: ms / 1e3,
            sender_s: ms / 1e3,
            delivered: 1_000,
            failed_posts: 0,
            repetitions: 3,
            cpu_s: [0.04, cpu_us * 1e-3, 0.02],
            sender_cpu_us_per_post: cpu_us,
        }
    }

    fn lambda(runtime: &'static str, share: Option<Share>, p50_us: f64, cpu_us: f64) -> Lambda {
        Lambda {
            runtime,
            share,
            cold_ms: if share.is_some() { f64::NAN } else { 20.0 },
            cold_starts: if share.is_some() { 0 } else { 7 },
            events: 500,
            p50_us,
            p99_us: p50_us * 2.0,
            cpu_us,
            harness_cpu_us: 100.0,
        }
    }

    #[test]
    fn cpu_columns_and_share_rows_are_reported_with_their_ratios() {
        let small = Some(SHARES[0]);
        let mut results = Results::default();
        results.fanout.extend([
            fanout(WSGW, None, 111.0, 120.0),
            fanout(NODE, None, 681.0, 1_020.0),
            fanout(WSGW, small, 1_800.0, 125.0),
            fanout(NODE, small, 14_400.0, 1_000.0),
        ]);
        results.lambda.extend([
            lambda("wsgw echo (Rust, release)", None, 1_000.0, 400.0),
            lambda("Node 20 + AWS SDK v3", None, 900.0, 2_000.0),
            lambda("wsgw echo (Rust, release)", small, 6_000.0, 410.0),
            lambda("Node 20 + AWS SDK v3", small, 30_000.0, 2_100.0),
        ]);
        results.share_checks.push((SHARES[0], 0.075));
        let table = table(&results);
        assert!(table.contains("| wsgw ApiGatewaySink + broadcast | full | 1000 | 0 | 111.0 |"));
        assert!(
            table.contains("| 128 MB (7.2 %) | 1000 | 5 | 1800.0 |"),
            "{table}"
        );
        assert!(table.contains("| 40 / 1020 / 20 | 1020.0 |"), "{table}");
        assert!(table.contains("| Node 20 + AWS SDK v3 | 128 MB (7.2 %) | – | 0 | 500 | 30000 | 60000 | 2100 | 100 |"), "{table}");
        assert!(table.contains("| 128 MB (7.2 %) | 7.5 |"), "{table}");
        let ratios = ratios(&results);
        for expected in [
            "fan-out N=1000 node/wsgw 6.1x",
            "CPU per post N=1000 node/wsgw 8.5x",
            "fan-out N=1000 +5ms at 128 MB node/wsgw 8.0x",
            "warm event CPU node/wsgw 5.0x, p50 node/wsgw 0.9x",
            "warm event at 128 MB CPU node/wsgw 5.1x, p50 node/wsgw 5.0x",
        ] {
            assert!(ratios.contains(expected), "{expected} in {ratios}");
        }
        assert!(!ratios.contains("CPU per post N=1000 +5ms"), "{ratios}");
    }

    #[test]
    fn skipped_share_rows_say_why() {
        let results = Results {
            shares_skipped: Some("no cgroup fs".to_owned()),
            ..Results::default()
        };
        assert!(table(&results).contains("**CPU-share rows missing**: no cgroup fs."));
    }
}
