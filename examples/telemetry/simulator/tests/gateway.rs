//! Simulated devices — the firmware's device logic — against the real LocalGateway:
//! readings arrive, `control` is obeyed and acknowledged, and a gateway restart loses
//! nothing: buffered readings arrive in order with `seq` continuing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use telemetry_device::BackoffConfig;
use telemetry_protocol::{ControlAck, RealTimeDataUpdate};
use telemetry_simulator::{Simulator, SimulatorConfig};
use wsgw_core::{ConnectionId, Context, MessageSink, Payload, Reply, Request, Router};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::MemorySink;

/// Everything the gateway's router saw, across gateway restarts.
#[derive(Debug, Default)]
struct Seen {
    readings: Vec<RealTimeDataUpdate>,
    acks: Vec<ControlAck>,
    /// Device id → its current connection.
    devices: Vec<(String, ConnectionId)>,
    /// Query strings the devices connected with.
    queries: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn seen(shared: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    shared.lock().unwrap()
}

/// A minimal cloud: records what devices send, the way the telemetry example's
/// router would receive it.
fn recording_gateway(shared: Shared) -> (LocalGateway, Arc<MemorySink>) {
    let on_connect = shared.clone();
    let on_reading = shared.clone();
    let on_ack = shared.clone();
    let router = Router::new()
        .on_connect(move |_ctx: Context, req: Request| {
            let shared = on_connect.clone();
            async move {
                let mut seen = shared.lock().unwrap();
                let query = format!(
                    "role={}&device_id={}",
                    req.query_param("role").unwrap_or(""),
                    req.query_param("device_id").unwrap_or("")
                );
                seen.queries.push(query);
                if let Some(device_id) = req.query_param("device_id") {
                    seen.devices
                        .push((device_id.to_owned(), req.connection_id.clone()));
                }
                Ok(Reply::ok())
            }
        })
        .route("RealTimeDataUpdate", move |_ctx: Context, req: Request| {
            let shared = on_reading.clone();
            async move {
                let update: RealTimeDataUpdate =
                    serde_json::from_str(req.text().expect("text")).expect("a reading");
                update.validate().expect("valid");
                shared.lock().unwrap().readings.push(update);
                Ok(Reply::ok())
            }
        })
        .route("ControlAck", move |_ctx: Context, req: Request| {
            let shared = on_ack.clone();
            async move {
                let ack: ControlAck =
                    serde_json::from_str(req.text().expect("text")).expect("an ack");
                shared.lock().unwrap().acks.push(ack);
                Ok(Reply::ok())
            }
        });
    let gateway = LocalGateway::new(router);
    let sockets = gateway.sockets();
    (gateway, sockets)
}

async fn start_gateway(shared: &Shared, addr: SocketAddr) -> (RunningGateway, Arc<MemorySink>) {
    let (gateway, sockets) = recording_gateway(shared.clone());
    // The old listener may take a moment to let go of the port.
    for _ in 0..50 {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            return (gateway.serve_on(listener).expect("serves"), sockets);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr} again");
}

/// Polls `condition` every 20 ms for up to 15 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..750 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

fn fast(url: &str, devices: usize) -> SimulatorConfig {
    let mut config = SimulatorConfig::new(url, devices);
    config.sample_interval_ms = 250;
    config.backoff = BackoffConfig {
        initial_ms: 100,
        max_ms: 400,
        stable_after_ms: 30_000,
    };
    config.backlog_interval_ms = 5;
    config.connect_timeout_ms = 2_000;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_survives_a_gateway_restart_and_delivers_its_buffered_readings_in_order() {
    let shared = Shared::default();
    let (first, _) = start_gateway(&shared, "127.0.0.1:0".parse().unwrap()).await;
    let addr = first.local_addr();
    let simulator = Simulator::start(fast(&first.ws_url(), 1)).expect("starts");

    eventually("four readings arrived", || {
        seen(&shared).readings.len() >= 4
    })
    .await;
    first.shutdown().await.expect("the first gateway stops");
    let before_restart = seen(&shared).readings.len();

    // While the gateway is down the device keeps sampling into its buffer and keeps
    // retrying with backoff.
    eventually("six readings are buffered", || {
        simulator.reports()[0].stats.buffered >= 6
    })
    .await;
    let offline = simulator.reports()[0].stats;
    assert!(offline.connect_failures >= 1, "{offline:?}");
    assert!(!simulator.reports()[0].online);
    let outage_started_ms = seen(&shared).readings.last().unwrap().ts_ms;

    let (second, _) = start_gateway(&shared, addr).await;
    let target = offline.samples + 4;
    eventually("the backlog and fresh readings arrived", || {
        seen(&shared).readings.iter().any(|r| r.seq >= target)
    })
    .await;
    let reports = simulator.shutdown().await;
    second.shutdown().await.expect("the second gateway stops");

    let seen = seen(&shared);
    let (first_run, second_run) = seen.readings.split_at(before_restart);
    let seqs = |readings: &[RealTimeDataUpdate]| readings.iter().map(|r| r.seq).collect::<Vec<_>>();
    let (first_seqs, second_seqs) = (seqs(first_run), seqs(second_run));
    // Each gateway saw an unbroken, increasing run of sequence numbers …
    for run in [&first_seqs, &second_seqs] {
        assert!(run.windows(2).all(|w| w[1] == w[0] + 1), "{run:?}");
    }
    // … the first starting at 0, the second continuing where the first stopped (a
    // reading the device sent just before the drop may arrive twice, never none).
    assert_eq!(first_seqs[0], 0);
    let last_before = *first_seqs.last().unwrap();
    assert!(
        second_seqs[0] <= last_before + 1,
        "no gap: first run ended at {last_before}, second began at {}",
        second_seqs[0]
    );
    // The readings taken during the outage kept the time they were taken.
    let buffered: Vec<&RealTimeDataUpdate> = second_run
        .iter()
        .filter(|r| r.seq > last_before)
        .take(offline.buffered as usize)
        .collect();
    assert!(buffered.len() >= 6);
    assert!(buffered.windows(2).all(|w| w[1].ts_ms > w[0].ts_ms));
    assert!(buffered[0].ts_ms > outage_started_ms);
    let stats = reports[0].stats;
    assert_eq!(stats.readings_dropped, 0);
    assert!(stats.disconnects >= 1 && stats.connects >= 2, "{stats:?}");
    assert!(seen.readings.iter().all(|r| r.device_id == "sim-01"));
    assert!(seen
        .readings
        .iter()
        .all(|r| r.reading("temperature_c").is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_obeys_control_and_acknowledges_it() {
    let shared = Shared::default();
    let (gateway, sockets) = start_gateway(&shared, "127.0.0.1:0".parse().unwrap()).await;
    let mut config = fast(&gateway.ws_url(), 1);
    config.sample_interval_ms = 1_000;
    let simulator = Simulator::start(config).expect("starts");
    eventually("the device connected", || !seen(&shared).devices.is_empty()).await;
    let connection = seen(&shared).devices[0].1.clone();
    assert_eq!(seen(&shared).queries, vec!["role=device&device_id=sim-01"]);

    sockets
        .send(
            &connection,
            Payload::text(r#"{"type":"control","sample_interval_ms":250}"#),
        )
        .await
        .expect("delivered");
    eventually("the device acknowledged", || !seen(&shared).acks.is_empty()).await;
    assert_eq!(
        seen(&shared).acks[0],
        ControlAck::new("sim-01", 250).unwrap()
    );
    let from = seen(&shared).readings.len();
    eventually("four readings at the new interval", || {
        seen(&shared).readings.len() >= from + 5
    })
    .await;
    let readings = seen(&shared).readings[from + 1..].to_vec();
    for pair in readings.windows(2) {
        let gap = pair[1].ts_ms - pair[0].ts_ms;
        assert!((230..=270).contains(&gap), "{gap} ms apart: {readings:?}");
    }
    assert_eq!(simulator.reports()[0].sample_interval_ms, 250);

    // Out of bounds: refused, the kept interval acknowledged.
    sockets
        .send(
            &connection,
            Payload::text(r#"{"type":"control","sample_interval_ms":5}"#),
        )
        .await
        .expect("delivered");
    eventually("the refusal was acknowledged", || {
        seen(&shared).acks.len() >= 2
    })
    .await;
    assert_eq!(seen(&shared).acks[1].sample_interval_ms, 250);
    let reports = simulator.shutdown().await;
    assert_eq!(reports[0].stats.controls_applied, 1);
    assert_eq!(reports[0].stats.controls_rejected, 1);
    gateway.shutdown().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_devices_run_side_by_side_with_their_own_ids_and_stop_cleanly() {
    let shared = Shared::default();
    let (gateway, sockets) = start_gateway(&shared, "127.0.0.1:0".parse().unwrap()).await;
    let config = fast(&gateway.ws_url(), 3);
    let readings_from = |id: &str| {
        let seen = seen(&shared);
        seen.readings.iter().filter(|r| r.device_id == id).count()
    };
    let stop = async {
        eventually("each device sent three readings", || {
            ["sim-01", "sim-02", "sim-03"]
                .iter()
                .all(|id| readings_from(id) >= 3)
        })
        .await;
    };
    let reports = telemetry_simulator::run_devices(config, stop)
        .await
        .expect("runs");
    assert_eq!(
        reports
            .iter()
            .map(|r| r.device_id.as_str())
            .collect::<Vec<_>>(),
        ["sim-01", "sim-02", "sim-03"]
    );
    assert!(reports
        .iter()
        .all(|r| !r.online && r.stats.readings_sent >= 3));
    // The devices closed their connections: the gateway sees none left.
    eventually("every device disconnected", || {
        sockets.open_connections().is_empty()
    })
    .await;
    // Different seeds, different sensors.
    let first_temperature = |id: &str| {
        seen(&shared)
            .readings
            .iter()
            .find(|r| r.device_id == id)
            .and_then(|r| r.reading("temperature_c"))
    };
    assert_ne!(first_temperature("sim-01"), first_temperature("sim-02"));
    gateway.shutdown().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_its_devices_until_sigterm_and_prints_each_ones_report() {
    use std::process::{Command, Stdio};
    use wsgw_memory::testing::ChildProcess;

    let shared = Shared::default();
    let (gateway, sockets) = start_gateway(&shared, "127.0.0.1:0".parse().unwrap()).await;
    let simulator = ChildProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_telemetry-simulator"))
            .args(["--devices", "2", "--prefix", "bin-"])
            .args(["--url", &gateway.ws_url(), "--sample-interval-ms", "250"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .expect("the simulator starts");
    eventually("each device sent a reading", || {
        let seen = seen(&shared);
        ["bin-01", "bin-02"]
            .iter()
            .all(|id| seen.readings.iter().any(|r| r.device_id == *id))
    })
    .await;
    let output = simulator.terminate_with_output().expect("stops");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 3, "{printed}");
    assert!(lines[0].starts_with("simulating 2 devices against ws://127.0.0.1:"));
    for (line, id) in lines[1..].iter().zip(["bin-01", "bin-02"]) {
        assert!(line.starts_with(&format!("{id}: ")), "{line}");
        assert!(line.ends_with(", sampling every 250 ms"), "{line}");
    }
    // Every device closed its connection when stopped.
    eventually("every device disconnected", || {
        sockets.open_connections().is_empty()
    })
    .await;
    gateway.shutdown().await.expect("stops");
}
