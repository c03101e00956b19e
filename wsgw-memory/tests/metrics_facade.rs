//! An app that already has its own `metrics` recorder (here metrics-util's
//! `DebuggingRecorder`; in production a Prometheus, CloudWatch EMF or OpenTelemetry
//! exporter) sees wsgw's series from a LocalGateway run, with the names and labels of
//! the gateway's own `GET /metrics`, once its router observes `MetricsFacade`.
//!
//! One test in this file: it installs the process's global recorder.

use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use wsgw_core::metrics::MetricsFacade;
use wsgw_core::{Context, Error, Reply, Request, Router};
use wsgw_memory::gateway::LocalGateway;
use wsgw_memory::testing::ws::{connect, next_json, send_json};

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_own_metrics_recorder_sees_wsgw_series_from_a_local_gateway_run() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).expect("the app's recorder is the first");

    let router = Router::new()
        .two_way_route("whoami", |_ctx: Context, request: Request| async move {
            Reply::json(&json!({ "connection_id": request.connection_id }))
        })
        .route("fail", |_ctx: Context, _request: Request| async move {
            Err::<Reply, _>(Error::handler("always fails"))
        })
        .observe(MetricsFacade);
    let gateway = LocalGateway::new(router)
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind loopback");
    let mut client = connect(&gateway.ws_url()).await;
    for _ in 0..2 {
        send_json(&mut client, &json!({ "action": "whoami" })).await;
        assert!(next_json(&mut client).await["connection_id"].is_string());
    }
    send_json(&mut client, &json!({ "action": "fail" })).await;
    assert_eq!(
        next_json(&mut client).await["message"],
        "Internal server error"
    );
    drop(client);
    gateway.shutdown().await.expect("shutdown");

    let mut counters = BTreeMap::new();
    let mut latencies = BTreeMap::new();
    for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        let [(label, route)] = &labels[..] else {
            panic!("{} has the one label route: {labels:?}", key.name());
        };
        assert_eq!(label, "route");
        match value {
            DebugValue::Counter(count) => {
                counters.insert((key.name().to_owned(), route.clone()), count);
            }
            DebugValue::Histogram(samples) => {
                latencies.insert((key.name().to_owned(), route.clone()), samples.len());
            }
            DebugValue::Gauge(_) => panic!("wsgw reports no gauge: {}", key.name()),
        }
    }
    let counter =
        |name: &str, route: &str| counters.get(&(name.to_owned(), route.to_owned())).copied();
    assert_eq!(
        counter("wsgw_connects_total", "$connect"),
        Some(1),
        "{counters:?}"
    );
    assert_eq!(
        counter("wsgw_messages_total", "whoami"),
        Some(2),
        "{counters:?}"
    );
    assert_eq!(
        counter("wsgw_messages_total", "fail"),
        Some(1),
        "{counters:?}"
    );
    assert_eq!(
        counter("wsgw_handler_errors_total", "fail"),
        Some(1),
        "{counters:?}"
    );
    let latency = |route: &str| {
        latencies
            .get(&("wsgw_handler_latency_seconds".to_owned(), route.to_owned()))
            .copied()
    };
    assert_eq!(latency("whoami"), Some(2), "{latencies:?}");
    assert_eq!(latency("fail"), Some(1), "{latencies:?}");
    assert!(
        counters
            .keys()
            .all(|(name, _)| name.starts_with("wsgw_") && name.ends_with("_total")),
        "{counters:?}"
    );
}
