//! A measurement, not a test (ignored; nothing is asserted on time): the echo example's
//! `whoami` round trip from a real WebSocket client through `wsgw local` (the `echo`
//! binary in Lambda mode behind the template's API, answering through `@connections`)
//! and through the same binary run as `cargo run -p echo` (the router in process behind
//! the LocalGateway), side by side in one run; and the round trip that starts a new
//! instance (a cold start) through `wsgw local`. BENCHMARKS.md quotes it:
//!
//! ```sh
//! cargo test --release -p wsgw --test measure -- --ignored --nocapture
//! ```

mod support;

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wsgw::{LocalArgs, LocalRun};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Round trips per window, windows per server (alternating), cold starts.
const ROUND_TRIPS: usize = 1_000;
const WINDOWS: usize = 3;
const COLD_STARTS: usize = 20;

async fn whoami(client: &mut Client) -> Duration {
    let started = Instant::now();
    client
        .send(Message::text(r#"{"action":"whoami"}"#))
        .await
        .expect("sent");
    loop {
        match client.next().await {
            Some(Ok(Message::Text(_))) => return started.elapsed(),
            Some(Ok(_)) => continue,
            other => panic!("the connection ended: {other:?}"),
        }
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// p50 and p99 of one window of sequential round trips.
async fn window(client: &mut Client) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        times.push(whoami(client).await);
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn micros(duration: Duration) -> u128 {
    duration.as_micros()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --release -p wsgw --test measure -- --ignored --nocapture"]
async fn whoami_round_trips_through_wsgw_local_and_the_in_process_local_gateway() {
    let mut args = LocalArgs::new(support::workspace().join("examples/echo/template.yaml"));
    args.listen = "127.0.0.1:0".parse().unwrap();
    args.release = cfg!(not(debug_assertions));
    let serving = LocalRun::prepare(&args)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .serve()
        .unwrap_or_else(|error| panic!("{error}"));
    let echo = serving
        .run
        .executables
        .get("EchoFunction")
        .expect("the echo binary")
        .clone();

    // `cargo run -p echo`: the same binary, without the Runtime API.
    let (mut in_process, in_process_url) = support::run_in_process(&echo).await;

    let mut through_local = tokio_tungstenite::connect_async(serving.stage_url())
        .await
        .unwrap()
        .0;
    let mut through_gateway = tokio_tungstenite::connect_async(in_process_url)
        .await
        .unwrap()
        .0;
    // Warm both: the instance, the connections, the allocators.
    for _ in 0..100 {
        whoami(&mut through_local).await;
        whoami(&mut through_gateway).await;
    }
    let (mut local_windows, mut gateway_windows) = (Vec::new(), Vec::new());
    for _ in 0..WINDOWS {
        local_windows.push(window(&mut through_local).await);
        gateway_windows.push(window(&mut through_gateway).await);
    }

    // Cold starts: every idle instance stopped, so the next whoami starts a new one.
    let mut cold = Vec::new();
    for _ in 0..COLD_STARTS {
        serving
            .run
            .pool
            .replace_instances("EchoFunction", None)
            .unwrap();
        cold.push(whoami(&mut through_local).await);
    }
    let started = serving.run.pool.instances_started("EchoFunction");

    let summary = |windows: &[(Duration, Duration)]| {
        (
            median(windows.iter().map(|window| window.0).collect()),
            median(windows.iter().map(|window| window.1).collect()),
        )
    };
    let (local_p50, local_p99) = summary(&local_windows);
    let (gateway_p50, gateway_p99) = summary(&gateway_windows);
    let cold_p50 = median(cold.clone());
    cold.sort();
    println!(
        "profile: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("| path | warm whoami p50 (µs) | warm whoami p99 (µs) | cold-start whoami p50 (µs) | cold-start whoami max (µs) |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| wsgw local (echo in Lambda mode, @connections) | {} | {} | {} | {} |",
        micros(local_p50),
        micros(local_p99),
        micros(cold_p50),
        micros(*cold.last().unwrap())
    );
    println!(
        "| cargo run -p echo (LocalGateway, router in process) | {} | {} | n/a | n/a |",
        micros(gateway_p50),
        micros(gateway_p99)
    );
    println!(
        "ratio p50 wsgw local / in process: {:.1}x; cold / warm through wsgw local: {:.1}x; instances started: {started}",
        local_p50.as_secs_f64() / gateway_p50.as_secs_f64(),
        cold_p50.as_secs_f64() / local_p50.as_secs_f64()
    );

    drop((through_local, through_gateway));
    in_process.kill().await.unwrap();
    serving.shutdown().await;
}
