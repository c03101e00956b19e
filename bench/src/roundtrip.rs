//! Local round trip (sequential latency, throughput with concurrent clients) and memory
//! per idle connection: the bare echo server, the LocalGateway, serverless-offline.

use std::time::Duration;

use crate::client::{self, percentiles};
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
    pub throughput_window: Duration,
    pub idle_connections: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                messages: 1_000,
                latency_window: Duration::from_secs(10),
                clients: 100,
                throughput_window: Duration::from_secs(2),
                idle_connections: 1_000,
            }
        } else {
            Sizes {
                messages: 5_000,
                latency_window: Duration::from_secs(60),
                clients: 100,
                throughput_window: Duration::from_secs(10),
                idle_connections: 10_000,
            }
        }
    }
}

async fn measure(
    target: &Target,
    guard: &Guard,
    sizes: &Sizes,
    args: &RunArgs,
    results: &mut Results,
) -> Result<()> {
    eprintln!("wsgw-bench: round trip, {}", target.name);
    let mut samples = client::latencies(
        &target.ws_url,
        target.message,
        sizes.messages,
        sizes.latency_window,
    )
    .await
    .map_err(|e| format!("{} latency: {e}", target.name))?;
    let (p50, p99) = percentiles(&mut samples);
    let per_second = client::throughput(
        &target.ws_url,
        target.message,
        sizes.clients,
        sizes.throughput_window,
    )
    .await
    .map_err(|e| format!("{} throughput: {e}", target.name))?;
    results.roundtrip.push(RoundTrip {
        name: target.name,
        messages: samples.len(),
        p50_us: p50,
        p99_us: p99,
        clients: sizes.clients,
        per_second,
    });
    if args.runs("memory") {
        eprintln!(
            "wsgw-bench: memory, {} idle connections to {}",
            sizes.idle_connections, target.name
        );
        let pid = guard.pid()?;
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
    }
    Ok(())
}

/// Runs the round trip (and memory) benchmarks of every target.
pub async fn run(args: &RunArgs, results: &mut Results) -> Result<()> {
    let sizes = Sizes::new(args.quick);
    let bare = peers::own_server("serve-bare").await?;
    let target = Target {
        name: "bare tokio-tungstenite echo",
        ws_url: bare.ws_url.clone(),
        message: bare_message,
    };
    measure(&target, &bare.guard, &sizes, args, results).await?;
    drop(bare);

    let gateway = peers::own_server("serve-gateway").await?;
    let target = Target {
        name: "wsgw LocalGateway (echo)",
        ws_url: gateway.ws_url.clone(),
        message: wsgw_message,
    };
    measure(&target, &gateway.guard, &sizes, args, results).await?;
    drop(gateway);

    if args.runs("sls") {
        let sls = peers::serverless_offline(&args.peers).await?;
        let target = Target {
            name: "serverless-offline 13",
            ws_url: sls.ws_url.clone(),
            message: sls_message,
        };
        measure(&target, &sls.guard, &sizes, args, results).await?;
    }
    Ok(())
}
