//! What the router, the context and broadcast report to metrics observers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use wsgw_core::metrics::{Counter, Counters, NO_ROUTE};
use wsgw_core::{
    Authorization, Backends, BroadcastOptions, ConnectionId, ConnectionInfo, ConnectionStore,
    Context, Error, HttpRequest, HttpRequestExt, Json, MessageSink, MockConnectionStore, Payload,
    Rejection, Reply, Request, Router,
};

/// A sink answering each connection from a script of errors, then `Ok`.
#[derive(Default)]
struct ScriptedSink {
    script: Mutex<HashMap<ConnectionId, Vec<Error>>>,
}

impl ScriptedSink {
    fn fail(self, id: &str, errors: Vec<Error>) -> Self {
        self.script
            .lock()
            .unwrap()
            .insert(ConnectionId::new(id), errors);
        self
    }
}

#[async_trait]
impl MessageSink for ScriptedSink {
    async fn send(&self, id: &ConnectionId, _payload: Payload) -> wsgw_core::Result<()> {
        let next = self
            .script
            .lock()
            .unwrap()
            .get_mut(id)
            .filter(|errors| !errors.is_empty())
            .map(|errors| errors.remove(0));
        next.map_or(Ok(()), Err)
    }
    async fn connection_info(&self, id: &ConnectionId) -> wsgw_core::Result<ConnectionInfo> {
        Err(Error::Gone {
            connection_id: id.clone(),
        })
    }
    async fn disconnect(&self, _id: &ConnectionId) -> wsgw_core::Result<()> {
        Ok(())
    }
}

fn throttled() -> Error {
    Error::Throttled {
        backend: "test",
        message: "slow down".into(),
    }
}

fn gone(id: &str) -> Error {
    Error::Gone {
        connection_id: ConnectionId::new(id),
    }
}

fn store_deleting_anything() -> Arc<dyn ConnectionStore> {
    let mut store = MockConnectionStore::new();
    store.expect_delete().returning(|_| Ok(None));
    Arc::new(store)
}

fn message(body: serde_json::Value) -> Request {
    Request::message(ConnectionId::new("caller="), body.to_string())
}

async fn ok(_ctx: Context, _request: Request) -> wsgw_core::Result<Reply> {
    Ok(Reply::ok())
}

#[tokio::test]
async fn the_router_counts_connects_messages_by_route_disconnects_and_latency() {
    let counters = Arc::new(Counters::new());
    let backends = Backends::new(store_deleting_anything(), Arc::new(ScriptedSink::default()));
    let router = Router::new()
        .on_connect(ok)
        .route("whoami", ok)
        .on_default(ok)
        .observe(counters.clone());

    router
        .handle(&backends, Request::connect(ConnectionId::new("a=")))
        .await
        .unwrap();
    router
        .handle(&backends, message(json!({"action": "whoami"})))
        .await
        .unwrap();
    router
        .handle(&backends, message(json!({"action": "whoami"})))
        .await
        .unwrap();
    router
        .handle(&backends, message(json!({"action": "no-such-route"})))
        .await
        .unwrap();
    router
        .handle(
            &backends,
            Request::disconnect(ConnectionId::new("a="), 1000, ""),
        )
        .await
        .unwrap();

    let snapshot = counters.snapshot();
    assert_eq!(snapshot.get(Counter::Connects, "$connect"), 1);
    assert_eq!(snapshot.get(Counter::ConnectsRefused, "$connect"), 0);
    assert_eq!(snapshot.get(Counter::Messages, "whoami"), 2);
    // Unmatched actions are counted under the route that ran, never under what the
    // client sent: the label set stays bounded.
    assert_eq!(snapshot.get(Counter::Messages, "$default"), 1);
    assert_eq!(snapshot.get(Counter::Messages, "no-such-route"), 0);
    assert_eq!(snapshot.get(Counter::Disconnects, "$disconnect"), 1);
    assert_eq!(snapshot.total(Counter::HandlerErrors), 0);
    let latencies: Vec<(&str, u64)> = snapshot
        .latencies
        .iter()
        .map(|sample| (sample.route.as_str(), sample.histogram.count()))
        .collect();
    assert_eq!(
        latencies,
        vec![
            ("$connect", 1),
            ("$default", 1),
            ("$disconnect", 1),
            ("whoami", 2)
        ]
    );
}

#[tokio::test]
async fn refused_connects_are_counted_whether_the_reply_or_the_authorizer_refuses() {
    let counters = Arc::new(Counters::new());
    let backends = Backends::new(store_deleting_anything(), Arc::new(ScriptedSink::default()));
    let router = Router::new()
        .authorizer(|_ctx: Context, request: Request| async move {
            Ok(match request.query_param("token") {
                Some(_) => Authorization::Allow(json!({})),
                None => Authorization::Deny(401),
            })
        })
        .on_connect(|_ctx: Context, request: Request| async move {
            Ok(match request.query_param("room") {
                Some(_) => Reply::ok(),
                None => Reply::status(400),
            })
        })
        .observe(counters.clone());

    let connect = |query: &[(&str, &str)]| {
        let mut request = Request::connect(ConnectionId::new("a="));
        for (name, value) in query {
            request = request.with_query(*name, *value);
        }
        request
    };
    assert_eq!(
        router.handle(&backends, connect(&[])).await.unwrap().status,
        401
    );
    assert_eq!(
        router
            .handle(&backends, connect(&[("token", "t")]))
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(
        router
            .handle(&backends, connect(&[("token", "t"), ("room", "r")]))
            .await
            .unwrap()
            .status,
        200
    );
    // A gateway running the authorizer as its own step (as the LocalGateway does).
    assert_eq!(
        router.authorize(&backends, &connect(&[])).await.unwrap(),
        Authorization::Deny(401)
    );

    assert_eq!(counters.get(Counter::Connects, "$connect"), 4);
    assert_eq!(counters.get(Counter::ConnectsRefused, "$connect"), 3);
    assert_eq!(counters.get(Counter::HandlerErrors, "$connect"), 0);
}

#[tokio::test]
async fn handler_errors_are_counted_under_their_route_and_a_failing_connect_is_refused() {
    let counters = Arc::new(Counters::new());
    let backends = Backends::new(store_deleting_anything(), Arc::new(ScriptedSink::default()));
    let router = Router::new()
        .on_connect(|_ctx: Context, _request: Request| async {
            Err::<Reply, _>(Error::handler("database down"))
        })
        .route("fail", |_ctx: Context, _request: Request| async {
            Err::<Reply, _>(Error::backend("dynamodb", "put failed", None))
        })
        .observe(counters.clone());

    assert!(router
        .handle(&backends, Request::connect(ConnectionId::new("a=")))
        .await
        .is_err());
    assert!(router
        .handle(&backends, message(json!({"action": "fail"})))
        .await
        .is_err());

    assert_eq!(counters.get(Counter::HandlerErrors, "$connect"), 1);
    assert_eq!(counters.get(Counter::ConnectsRefused, "$connect"), 1);
    assert_eq!(counters.get(Counter::HandlerErrors, "fail"), 1);
    assert_eq!(counters.get(Counter::Messages, "fail"), 1);
}

#[tokio::test]
async fn broadcast_deliveries_prunes_and_each_throttled_retry_are_counted_under_the_calling_route()
{
    let counters = Arc::new(Counters::new());
    let sink = ScriptedSink::default()
        .fail("gone=", vec![gone("gone=")])
        .fail("slow=", vec![throttled(), throttled()]);
    let backends = Backends::new(store_deleting_anything(), Arc::new(sink));
    let router = Router::new()
        .broadcast_options(
            BroadcastOptions::default().backoff(Duration::from_millis(1), Duration::from_millis(2)),
        )
        .route("shout", |ctx: Context, _request: Request| async move {
            let targets = ["a=", "gone=", "slow=", "b="].map(ConnectionId::new);
            let report = ctx
                .broadcast_payload(Payload::text("hi"))
                .to(targets)
                .await?;
            assert_eq!(report.delivered.len(), 3);
            assert_eq!(ctx.route(), Some("shout"));
            Ok(Reply::ok())
        })
        .observe(counters.clone());

    router
        .handle(&backends, message(json!({"action": "shout"})))
        .await
        .unwrap();

    assert_eq!(counters.get(Counter::BroadcastDeliveries, "shout"), 3);
    assert_eq!(counters.get(Counter::GonePrunes, "shout"), 1);
    assert_eq!(counters.get(Counter::Throttles, "shout"), 2);
}

#[tokio::test]
async fn a_throttled_direct_send_is_counted_and_still_returned_to_the_handler() {
    let counters = Arc::new(Counters::new());
    let sink = ScriptedSink::default().fail("caller=", vec![throttled()]);
    let backends = Backends::new(store_deleting_anything(), Arc::new(sink));
    let router = Router::new()
        .route("echo", |ctx: Context, request: Request| async move {
            let error = ctx
                .send_json(&request.connection_id, &json!({"type": "echo"}))
                .await
                .unwrap_err();
            assert!(error.is_throttled());
            Ok(Reply::ok())
        })
        .observe(counters.clone());

    router
        .handle(&backends, message(json!({"action": "echo"})))
        .await
        .unwrap();

    assert_eq!(counters.get(Counter::Throttles, "echo"), 1);
}

#[tokio::test]
async fn sends_outside_any_route_are_counted_under_no_route() {
    let counters = Arc::new(Counters::new());
    let sink = ScriptedSink::default().fail("a=", vec![throttled()]);
    let backends = Backends::new(store_deleting_anything(), Arc::new(sink));
    let router = Router::new().observe(counters.clone());

    // A background task pushing through the router's context.
    let report = router
        .context(&backends)
        .broadcast_payload(Payload::text("tick"))
        .to([ConnectionId::new("a=")])
        .await
        .unwrap();

    assert_eq!(report.delivered.len(), 1);
    assert_eq!(counters.get(Counter::BroadcastDeliveries, NO_ROUTE), 1);
    assert_eq!(counters.get(Counter::Throttles, NO_ROUTE), 1);
}

#[tokio::test]
async fn handle_observed_reports_one_call_to_its_own_observer_and_to_the_routers() {
    let always = Arc::new(Counters::new());
    let backends = Backends::new(store_deleting_anything(), Arc::new(ScriptedSink::default()));
    let router = Router::new()
        .route("shout", |ctx: Context, _request: Request| async move {
            ctx.broadcast_payload(Payload::text("hi"))
                .to([ConnectionId::new("a=")])
                .await?;
            Ok(Reply::ok())
        })
        .observe(always.clone());

    let first = Arc::new(Counters::new());
    router
        .handle_observed(
            &backends,
            message(json!({"action": "shout"})),
            first.clone(),
        )
        .await
        .unwrap();
    let second = Arc::new(Counters::new());
    router
        .handle_observed(
            &backends,
            message(json!({"action": "shout"})),
            second.clone(),
        )
        .await
        .unwrap();

    for one_call in [&first, &second] {
        assert_eq!(one_call.get(Counter::Messages, "shout"), 1);
        assert_eq!(one_call.get(Counter::BroadcastDeliveries, "shout"), 1);
        assert_eq!(one_call.snapshot().latencies[0].histogram.count(), 1);
    }
    assert_eq!(always.get(Counter::Messages, "shout"), 2);
    assert_eq!(always.get(Counter::BroadcastDeliveries, "shout"), 2);
}

#[tokio::test]
async fn rest_requests_are_counted_by_method_and_pattern_and_server_errors_as_handler_errors() {
    let counters = Arc::new(Counters::new());
    let backends = Backends::new(store_deleting_anything(), Arc::new(ScriptedSink::default()));
    let router = Router::new()
        .http(
            "GET",
            "/history/{device}",
            |_ctx: Context, request: HttpRequest| async move {
                match request.path_param("device") {
                    Some("broken") => Err(Error::backend("dynamodb", "query failed", None)),
                    Some("unknown") => {
                        Err(Rejection::new("unknown_device").with_status(404).into())
                    }
                    _ => Ok(Json(json!([]))),
                }
            },
        )
        .observe(counters.clone());

    let mut statuses = Vec::new();
    for path in ["/history/a", "/history/unknown", "/history/broken", "/nope"] {
        let answer = router
            .handle_http(
                &backends,
                wsgw_core::http::Request::get(path)
                    .body(Payload::default())
                    .unwrap(),
            )
            .await;
        statuses.push(answer.map(|response| response.status().as_u16()).ok());
    }
    // The rejection is answered with its status; the backend failure is the gateway's 500.
    assert_eq!(statuses, [Some(200), Some(404), None, Some(404)]);

    let route = "GET /history/{device}";
    assert_eq!(counters.get(Counter::HttpRequests, route), 3);
    // A rejected request (an unknown device) is the client's problem, not the handler's.
    assert_eq!(counters.get(Counter::HandlerErrors, route), 1);
    assert_eq!(counters.get(Counter::HttpRequests, "(unmatched)"), 1);
}

#[tokio::test]
async fn without_an_observer_nothing_is_counted_and_every_observer_sees_everything() {
    let first = Arc::new(Counters::new());
    let second = Arc::new(Counters::new());
    let backends = Backends::new(store_deleting_anything(), Arc::new(ScriptedSink::default()));
    let plain = Router::new().route("ping", ok);
    plain
        .handle(&backends, message(json!({"action": "ping"})))
        .await
        .unwrap();
    // Reporting to no observer is a no-op.
    plain.observer().count(Counter::Messages, "ping", 1);

    let observed = plain.observe(first.clone()).observe(second.clone());
    observed
        .handle(&backends, message(json!({"action": "ping"})))
        .await
        .unwrap();
    observed.observer().count(Counter::HandlerErrors, "ping", 1);

    for counters in [&first, &second] {
        assert_eq!(counters.get(Counter::Messages, "ping"), 1);
        assert_eq!(counters.get(Counter::HandlerErrors, "ping"), 1);
    }
}

#[tokio::test]
async fn a_handler_fanning_out_on_its_own_reports_its_deliveries_under_its_route() {
    let counters = Arc::new(Counters::new());
    let backends = Backends::new(store_deleting_anything(), Arc::new(ScriptedSink::default()));
    let router = Router::new()
        .route("push", |ctx: Context, _request: Request| async move {
            for id in ["a=", "b="] {
                ctx.sink()
                    .send(&ConnectionId::new(id), Payload::text("x"))
                    .await?;
            }
            ctx.count(Counter::BroadcastDeliveries, 2);
            ctx.count(Counter::GonePrunes, 0);
            Ok(Reply::ok())
        })
        .observe(counters.clone());

    router
        .handle(&backends, message(json!({"action": "push"})))
        .await
        .unwrap();

    assert_eq!(counters.get(Counter::BroadcastDeliveries, "push"), 2);
    assert_eq!(counters.get(Counter::GonePrunes, "push"), 0);
    assert!(
        counters
            .snapshot()
            .counts
            .iter()
            .all(|sample| sample.value > 0),
        "zero counts are not recorded"
    );
}
