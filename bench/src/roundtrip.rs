//! Local round trip (sequential latency, throughput with concurrent clients) and memory
//! per idle connection: the bare echo server, the LocalGateway, serverless-offline.

use std::time::Duration;

use crate::client::{self, percentiles};
use crate::fanout::median;
use crate::peers::{self, Guard};
use crate::report::{Memory, Results, RoundTrip};
use crate::{Result, RunArgs};

/// One server under test and what its clients send.
struct Target {
    name: &'static str,
    ws_url: String,
    message: fn(usize) -> String,
}

fn bare_message(i: usize) -> String {
    format!("{{\"message\":{i}}}")
}

fn wsgw_message(i: usize) -> String {
    format!("{{\"action\":\"message\",\"message\":{i}}}")
}

fn sls_message(i: usize) -> String {
    format!("{{\"action\":\"sendmessage\",\"message\":{i}}}")
}

/// Counts and windows for a full or a quick run.
pub struct Sizes {
    pub messages: usize,
    pub latency_window: Duration,
    pub clients: usize,
    /// Throughput windows per server, taken in turns with the other servers so a noisy
    /// neighbour slows every server alike; the median is reported.
    pub rounds: usize,
    pub round_window: Duration,
    pub idle_connections: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                messages: 1_000,
                latency_window: Duration::from_secs(10),
                clients: 100,
                rounds: 2,
                round_window: Duration::from_secs(1),
                idle_connections: 1_000,
            }
        } else {
            Sizes {
                messages: 5_000,
                latency_window: Duration::from_secs(60),
                clients: 100,
                rounds: 5,
                round_window: Duration::from_secs(2),
                idle_connections: 10_000,
            }
        }
    }
}

/// One throughput window: round trips per second, and the server's CPU per round trip.
struct Window {
    per_second: f64,
    cpu_us: f64,
}

async fn window(target: &Target, guard: &Guard, sizes: &Sizes, length: Duration) -> Result<Window> {
    let pid = guard.pid()?;
    let cpu_before = peers::tree_cpu_seconds(pid);
    let started = std::time::Instant::now();
    let per_second = client::throughput(&target.ws_url, target.message, sizes.clients, length)
        .await
        .map_err(|e| format!("{} throughput: {e}", target.name))?;
    let round_trips = per_second * started.elapsed().as_secs_f64();
    let cpu_us = (peers::tree_cpu_seconds(pid) - cpu_before) * 1e6 / round_trips;
    Ok(Window { per_second, cpu_us })
}

/// Sequential latency: the number of round trips, p50 and p99 in µs.
async fn latency(target: &Target, sizes: &Sizes) -> Result<(usize, f64, f64)> {
    eprintln!("wsgw-bench: round trip latency, {}", target.name);
    let mut samples = client::latencies(
        &target.ws_url,
        target.message,
        sizes.messages,
        sizes.latency_window,
    )
    .await
    .map_err(|e| format!("{} latency: {e}", target.name))?;
    let (p50, p99) = percentiles(&mut samples);
    Ok((samples.len(), p50, p99))
}

/// The latency and the medians of the throughput `windows`, as one row.
fn record(
    target: &Target,
    sizes: &Sizes,
    (messages, p50_us, p99_us): (usize, f64, f64),
    windows: &[Window],
    results: &mut Results,
) {
    results.roundtrip.push(RoundTrip {
        name: target.name,
        messages,
        p50_us,
        p99_us,
        clients: sizes.clients,
        windows: windows.len(),
        per_second: median(&mut windows.iter().map(|w| w.per_second).collect::<Vec<_>>()),
        cpu_us: median(&mut windows.iter().map(|w| w.cpu_us).collect::<Vec<_>>()),
    });
}

/// Resident memory before and after opening idle connections.
async fn memory(
    target: &Target,
    guard: &Guard,
    sizes: &Sizes,
    results: &mut Results,
) -> Result<()> {
    eprintln!(
        "wsgw-bench: memory, {} idle connections to {}",
        sizes.idle_connections, target.name
    );
    let pid = guard.pid()?;
    // A few messages first, so whatever a server starts on its first message (a Lambda
    // worker) is in the baseline, not counted per connection.
    let mut warm = client::connect(&target.ws_url).await?;
    for i in 0..20 {
        client::round_trip(&mut warm, (target.message)(i)).await?;
    }
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = peers::resident_kib(pid);
    let sockets = client::connect_many(&target.ws_url, sizes.idle_connections, 50)
        .await
        .map_err(|e| format!("{} idle connections: {e}", target.name))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = peers::resident_kib(pid);
    results.memory.push(Memory {
        name: target.name,
        connections: sockets.len(),
        before_kib: before,
        after_kib: after,
    });
    drop(sockets);
    Ok(())
}

/// Runs the round trip (and memory) benchmarks: the bare server and the LocalGateway
/// side by side (their throughput windows in turns), then serverless-offline.
pub async fn run(args: &RunArgs, results: &mut Results) -> Result<()> {
    let sizes = Sizes::new(args.quick);
    let bare = peers::own_server("serve-bare").await?;
    let gateway = peers::own_server("serve-gateway").await?;
    let servers = [
        (
            Target {
                name: "bare tokio-tungstenite echo",
                ws_url: bare.ws_url.clone(),
                message: bare_message,
            },
            &bare.guard,
        ),
        (
            Target {
                name: "wsgw LocalGateway (echo)",
                ws_url: gateway.ws_url.clone(),
                message: wsgw_message,
            },
            &gateway.guard,
        ),
    ];
    // Memory first, on processes that have served only a warm-up, then latency, on
    // servers not loaded yet.
    if args.runs("memory") {
        for (target, guard) in &servers {
            memory(target, guard, &sizes, results).await?;
        }
    }
    let mut latencies = Vec::new();
    for (target, _) in &servers {
        latencies.push(latency(target, &sizes).await?);
    }
    let mut windows: [Vec<Window>; 2] = [Vec::new(), Vec::new()];
    for round in 0..sizes.rounds {
        for ((target, guard), windows) in servers.iter().zip(&mut windows) {
            eprintln!(
                "wsgw-bench: round trip throughput, {} (window {} of {})",
                target.name,
                round + 1,
                sizes.rounds
            );
            windows.push(window(target, guard, &sizes, sizes.round_window).await?);
        }
    }
    for (((target, _), windows), latency) in servers.iter().zip(&windows).zip(latencies) {
        record(target, &sizes, latency, windows, results);
    }
    drop(servers);
    drop((bare, gateway));

    if args.runs("sls") {
        let target = |sls: &peers::ServerlessOffline| Target {
            name: "serverless-offline 13",
            ws_url: sls.ws_url.clone(),
            message: sls_message,
        };
        let sls = peers::serverless_offline(&args.peers).await?;
        let loaded = target(&sls);
        // Hundreds of times slower: one window as long as all of the others' together.
        let length = sizes.round_window * sizes.rounds as u32;
        let latency = latency(&loaded, &sizes).await?;
        let windows = [window(&loaded, &sls.guard, &sizes, length).await?];
        record(&loaded, &sizes, latency, &windows, results);
        drop(sls);
        if args.runs("memory") {
            // A fresh instance, like the other servers: after the load its garbage
            // collector shrinks the heap while the connections open, and its 10,000
            // disconnects afterwards are minutes of Lambda invocations, so it is stopped
            // rather than reused.
            let fresh = peers::serverless_offline(&args.peers).await?;
            memory(&target(&fresh), &fresh.guard, &sizes, results).await?;
        }
    }
    Ok(())
}
