//! `GET /metrics` on the LocalGateway: Prometheus text that a scraper accepts, counting
//! real WebSocket traffic.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use wsgw_core::{
    Connection, ConnectionId, Context, Error, HttpRequest, Json, Payload, Reply, Request, Router,
};
use wsgw_memory::gateway::{Limits, LocalGateway, RunningGateway, PROMETHEUS_CONTENT_TYPE};
use wsgw_memory::testing::ws::{next_text, Client, WAIT};

/// A room: everyone who connects joins it; `say` broadcasts to it, plus one connection
/// that never existed (so one Gone prune per broadcast).
fn room_router() -> Router {
    Router::new()
        .on_connect(|ctx: Context, request: Request| async move {
            if request.query_param("refuse").is_some() {
                return Ok(Reply::status(403));
            }
            ctx.store()
                .put(Connection::new(request.connection_id.clone()).with_group("room"))
                .await?;
            Ok(Reply::ok())
        })
        .on_disconnect(|ctx: Context, request: Request| async move {
            ctx.store().delete(&request.connection_id).await?;
            Ok(Reply::ok())
        })
        .route("say", |ctx: Context, _request: Request| async move {
            ctx.store()
                .put(Connection::new(ConnectionId::new("ghost=")).with_group("room"))
                .await?;
            ctx.broadcast_payload(Payload::text("hello room"))
                .to_group("room")
                .await?;
            Ok(Reply::ok())
        })
        .two_way_route("whoami", |_ctx: Context, request: Request| async move {
            Reply::json(&json!({ "connection_id": request.connection_id }))
        })
        .route("fail", |_ctx: Context, _request: Request| async move {
            Err::<Reply, _>(Error::handler("always fails"))
        })
        .route("slow", |_ctx: Context, _request: Request| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(Reply::ok())
        })
        .http(
            "GET",
            "/history",
            |_ctx: Context, _request: HttpRequest| async move { Ok(Json(json!([]))) },
        )
}

async fn start(gateway: LocalGateway) -> RunningGateway {
    gateway
        .limits(Limits::default().handler_timeout(Duration::from_millis(300)))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback")
}

async fn connect(gateway: &RunningGateway, query: &str) -> Client {
    let (client, _) = tokio_tungstenite::connect_async(format!("{}/{query}", gateway.ws_url()))
        .await
        .expect("handshake");
    client
}

async fn send(client: &mut Client, body: Value) {
    client
        .send(Message::text(body.to_string()))
        .await
        .expect("send");
}

async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

/// One sample: metric name and its labels, sorted.
type Key = (String, Vec<(String, String)>);

/// A strict reader of the text exposition format 0.0.4: every line is a `# HELP`, a
/// `# TYPE` or a sample of a declared family; names, label names and escapes are those
/// the format allows; histograms have cumulative buckets ending in `+Inf` equal to
/// `_count`.
fn parse_prometheus(text: &str) -> BTreeMap<Key, f64> {
    fn is_name(name: &str, colon: bool) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    fn family<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
        if types.contains_key(name) {
            return Some(name);
        }
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| types.get(*base).is_some_and(|kind| kind == "histogram"))
    }

    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name, true), "HELP of a valid name: {line}");
            assert!(!help.is_empty(), "{line}");
            assert!(
                helps.insert(name.to_owned(), help.to_owned()).is_none(),
                "one HELP per family: {name}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name type");
            assert!(is_name(name, true), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                !samples
                    .keys()
                    .any(|(sample, _): &Key| family(sample, &types) == Some(name)),
                "TYPE before the family's samples: {name}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "one TYPE per family: {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#'),
            "only HELP and TYPE comments: {line}"
        );
        let (name_and_labels, value) = line.rsplit_once(' ').expect("a sample and a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            number => number
                .parse()
                .unwrap_or_else(|_| panic!("a number: {line}")),
        };
        let (name, labels) = match name_and_labels.split_once('{') {
            None => (name_and_labels, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels close with }");
                let mut labels = Vec::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(is_name(&label, false), "a label name: {label:?} in {line}");
                    assert_eq!(chars.next(), Some('"'), "a quoted value in {line}");
                    let mut value = String::new();
                    loop {
                        match chars.next().expect("a closing quote") {
                            '"' => break,
                            '\\' => match chars.next().expect("an escape") {
                                '\\' => value.push('\\'),
                                '"' => value.push('"'),
                                'n' => value.push('\n'),
                                other => panic!("invalid escape \\{other} in {line}"),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.push((label, value));
                    match chars.next() {
                        None => break,
                        Some(',') => {}
                        Some(other) => panic!("unexpected {other:?} in {line}"),
                    }
                }
                (name, labels)
            }
        };
        assert!(is_name(name, true), "{line}");
        assert!(
            family(name, &types).is_some(),
            "sample of an undeclared family: {line}"
        );
        let mut labels = labels;
        labels.sort();
        assert!(
            samples.insert((name.to_owned(), labels), value).is_none(),
            "duplicate sample: {line}"
        );
    }
    for (name, kind) in &types {
        assert!(helps.contains_key(name), "HELP for {name}");
        if kind != "histogram" {
            continue;
        }
        let count_name = format!("{name}_count");
        let bucket_name = format!("{name}_bucket");
        for ((sample, labels), count) in samples.iter().filter(|((n, _), _)| *n == count_name) {
            let mut buckets: Vec<(f64, f64)> = samples
                .iter()
                .filter(|((n, l), _)| {
                    *n == bucket_name && l.iter().filter(|(k, _)| k != "le").eq(labels.iter())
                })
                .map(|((_, l), v)| {
                    let le = &l.iter().find(|(k, _)| k == "le").expect("le").1;
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().expect("le is a number")
                    };
                    (bound, *v)
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(!buckets.is_empty(), "buckets for {sample} {labels:?}");
            assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
            assert_eq!(*buckets.last().unwrap(), (f64::INFINITY, *count));
        }
    }
    samples
}

fn value(samples: &BTreeMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    samples
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or(0.0)
}

async fn scrape(gateway: &RunningGateway) -> BTreeMap<Key, f64> {
    let (status, content_type, body) =
        get(&format!("http://{}/metrics", gateway.local_addr())).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, PROMETHEUS_CONTENT_TYPE);
    parse_prometheus(&body)
}

#[tokio::test]
async fn metrics_count_real_websocket_traffic_and_only_ever_increase() {
    let gateway = start(LocalGateway::new(room_router())).await;
    let before = scrape(&gateway).await;
    assert_eq!(value(&before, "wsgw_connections_open", &[]), 0.0);
    assert_eq!(
        value(&before, "wsgw_connects_total", &[("route", "$connect")]),
        0.0
    );

    let mut ada = connect(&gateway, "").await;
    let mut bob = connect(&gateway, "").await;
    assert!(
        tokio_tungstenite::connect_async(format!("{}/?refuse=1", gateway.ws_url()))
            .await
            .is_err(),
        "refused handshake"
    );
    send(&mut ada, json!({"action": "whoami"})).await;
    let ada_id: Value = serde_json::from_str(&next_text(&mut ada).await).unwrap();
    send(&mut ada, json!({"action": "say"})).await;
    assert_eq!(next_text(&mut ada).await, "hello room");
    assert_eq!(next_text(&mut bob).await, "hello room");
    send(&mut bob, json!({"action": "fail"})).await;
    assert_eq!(
        serde_json::from_str::<Value>(&next_text(&mut bob).await).unwrap()["message"],
        "Internal server error"
    );
    send(&mut bob, json!({"action": "slow"})).await;
    assert_eq!(
        serde_json::from_str::<Value>(&next_text(&mut bob).await).unwrap()["message"],
        "Endpoint request timed out"
    );
    send(&mut bob, json!({"action": "no-such-action"})).await;
    let _forbidden = next_text(&mut bob).await;
    let (status, _, _) = get(&format!("http://{}/history", gateway.local_addr())).await;
    assert_eq!(status, 200);

    let during = scrape(&gateway).await;
    assert_eq!(value(&during, "wsgw_connections_open", &[]), 2.0);
    let route = |name: &'static str| [("route", name)];
    assert_eq!(
        value(&during, "wsgw_connects_total", &route("$connect")),
        3.0
    );
    assert_eq!(
        value(&during, "wsgw_connects_refused_total", &route("$connect")),
        1.0
    );
    assert_eq!(value(&during, "wsgw_messages_total", &route("whoami")), 1.0);
    assert_eq!(value(&during, "wsgw_messages_total", &route("say")), 1.0);
    assert_eq!(value(&during, "wsgw_messages_total", &route("fail")), 1.0);
    assert_eq!(value(&during, "wsgw_messages_total", &route("slow")), 1.0);
    assert_eq!(
        value(&during, "wsgw_messages_total", &route("$default")),
        1.0
    );
    assert_eq!(
        value(&during, "wsgw_broadcast_deliveries_total", &route("say")),
        2.0
    );
    assert_eq!(value(&during, "wsgw_gone_prunes_total", &route("say")), 1.0);
    assert_eq!(
        value(&during, "wsgw_handler_errors_total", &route("fail")),
        1.0
    );
    assert_eq!(
        value(&during, "wsgw_handler_errors_total", &route("slow")),
        1.0,
        "a timed-out handler is a handler error"
    );
    assert_eq!(
        value(&during, "wsgw_http_requests_total", &route("GET /history")),
        1.0
    );
    assert_eq!(
        value(
            &during,
            "wsgw_handler_latency_seconds_count",
            &route("whoami")
        ),
        1.0
    );
    assert!(value(&during, "wsgw_handler_latency_seconds_sum", &route("slow")) >= 0.3);

    // The Management API and a disconnect.
    let id = ada_id["connection_id"].as_str().unwrap();
    let deleted = reqwest::Client::new()
        .delete(format!("http://{}/@connections/{id}", gateway.local_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let deadline = tokio::time::Instant::now() + WAIT;
    let after = loop {
        let after = scrape(&gateway).await;
        if value(&after, "wsgw_disconnects_total", &route("$disconnect")) == 1.0 {
            break after;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "$disconnect counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(value(&after, "wsgw_connections_open", &[]), 1.0);
    for (key, earlier) in &during {
        if key.0.ends_with("_total") || key.0.starts_with("wsgw_handler_latency_seconds") {
            let later = after.get(key).copied().unwrap_or(0.0);
            assert!(later >= *earlier, "{key:?} went from {earlier} to {later}");
        }
    }
    assert_eq!(
        gateway
            .metrics()
            .get(wsgw_core::metrics::Counter::Disconnects, "$disconnect"),
        1
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_metrics_path_can_be_moved_or_turned_off_and_a_rest_route_there_wins() {
    let moved = start(LocalGateway::new(room_router()).metrics_path(Some("/_stats"))).await;
    let (status, content_type, body) = get(&format!("http://{}/_stats", moved.local_addr())).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, PROMETHEUS_CONTENT_TYPE)
    );
    assert!(body.contains("# TYPE wsgw_connects_total counter"));
    let (status, _, _) = get(&format!("http://{}/metrics", moved.local_addr())).await;
    assert_eq!(status, 404);
    moved.shutdown().await.unwrap();

    let off = start(LocalGateway::new(room_router()).metrics_path(None)).await;
    let (status, _, _) = get(&format!("http://{}/metrics", off.local_addr())).await;
    assert_eq!(status, 404);
    off.shutdown().await.unwrap();

    let own = start(LocalGateway::new(room_router().http(
        "GET",
        "/metrics",
        |_ctx: Context, _r: HttpRequest| async { Ok((wsgw_core::http::StatusCode::OK, "mine")) },
    )))
    .await;
    let (_, _, body) = get(&format!("http://{}/metrics", own.local_addr())).await;
    assert_eq!(body, "mine");
    own.shutdown().await.unwrap();
}
