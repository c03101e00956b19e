//! CloudWatch Embedded Metric Format lines from `LambdaApp`: one per invocation, valid
//! against the specification, counting what the invocation did.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wsgw_aws::invoke::RecordingSink;
use wsgw_aws::lambda::LambdaApp;
use wsgw_aws::metrics::{check_emf_line, Emf};
use wsgw_core::{
    Connection, ConnectionId, Context, Error, EventType, HttpRequest, Json, Payload, Reply,
    Request, Router,
};
use wsgw_memory::MemoryStore;

/// What the emitter wrote, shared with the test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// Takes the lines written so far, each checked against the specification.
    fn take(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        let text = String::from_utf8(bytes).expect("UTF-8");
        assert!(text.is_empty() || text.ends_with('\n'), "whole lines");
        text.lines()
            .map(|line| check_emf_line(line).unwrap_or_else(|error| panic!("{error}: {line}")))
            .collect()
    }
}

fn room_router() -> Router {
    Router::new()
        .on_connect(|ctx: Context, request: Request| async move {
            ctx.store()
                .put(Connection::new(request.connection_id.clone()).with_group("room"))
                .await?;
            Ok(Reply::ok())
        })
        .route("say", |ctx: Context, _request: Request| async move {
            ctx.broadcast_payload(Payload::text("hi"))
                .to_group("room")
                .await?;
            Ok(Reply::ok())
        })
        .route("fail", |_ctx: Context, _request: Request| async move {
            Err::<Reply, _>(Error::handler("boom"))
        })
        .http("GET", "/history", |_ctx: Context, _r: HttpRequest| async {
            Ok(Json(json!([])))
        })
}

fn event(event_type: &str, route: &str, id: &str, body: Option<&str>) -> Value {
    let mut event = json!({
        "requestContext": {
            "routeKey": route, "eventType": event_type, "connectionId": id,
            "stage": "production", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "connectedAt": 1795336800000i64, "requestTimeEpoch": 1795336801234i64,
            "identity": {"sourceIp": "203.0.113.10"}, "requestId": "r-1", "apiId": "abc"
        },
        "isBase64Encoded": false
    });
    if event_type == "MESSAGE" {
        event["requestContext"]["messageId"] = json!("m-1");
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

fn app(emf: Option<Emf>) -> (LambdaApp, Arc<RecordingSink>) {
    let sink = Arc::new(RecordingSink::new());
    let app = LambdaApp::new(room_router())
        .with_store(Arc::new(MemoryStore::new()))
        .with_sink(sink.clone())
        .with_metrics(emf);
    (app, sink)
}

fn only(lines: Vec<Value>) -> Value {
    assert_eq!(lines.len(), 1, "one line per invocation: {lines:?}");
    lines.into_iter().next().unwrap()
}

fn metric_names(line: &Value) -> Vec<&str> {
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn each_invocation_writes_one_line_that_follows_the_specification_and_counts_it() {
    let lines = Lines::default();
    let emf = Emf::new().function_name("chat-fn").writer(lines.clone());
    let (app, sink) = app(Some(emf));

    for id in ["a=", "b=", "c="] {
        app.handle(event("CONNECT", "$connect", id, None))
            .await
            .unwrap();
        let connect = only(lines.take());
        assert_eq!(connect["Connects"], 1);
        assert_eq!(connect["Route"], "$connect");
        assert_eq!(connect["EventType"], "CONNECT");
        assert_eq!(connect["ConnectionId"], id);
    }
    // c= has gone: the next broadcast finds it Gone and prunes it.
    sink.begin(EventType::Disconnect, &ConnectionId::new("c="));

    app.handle(event("MESSAGE", "say", "a=", Some(r#"{"action":"say"}"#)))
        .await
        .unwrap();
    let say = only(lines.take());
    let metadata = &say["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metadata["Namespace"], "wsgw");
    assert_eq!(
        metadata["Dimensions"],
        json!([["FunctionName", "Route"], ["FunctionName"]])
    );
    assert_eq!(
        metric_names(&say),
        vec![
            "Messages",
            "HandlerErrors",
            "BroadcastDeliveries",
            "GonePrunes",
            "HandlerLatency"
        ]
    );
    assert_eq!(say["FunctionName"], "chat-fn");
    assert_eq!(say["Route"], "say");
    assert_eq!(say["Messages"], 1);
    assert_eq!(say["BroadcastDeliveries"], 2);
    assert_eq!(say["GonePrunes"], 1);
    assert_eq!(say["HandlerErrors"], 0);
    assert!(say["HandlerLatency"].as_f64().unwrap() >= 0.0);
    assert_eq!(say["MessageId"], "m-1");
    assert_eq!(say["Stage"], "production");
    let now = chrono::Utc::now().timestamp_millis();
    let timestamp = say["_aws"]["Timestamp"].as_i64().unwrap();
    assert!((now - timestamp).abs() < 60_000, "Timestamp is now in ms");
    for metric in ["Connects", "Disconnects", "Throttles"] {
        assert!(
            say.get(metric).is_none(),
            "zero counts are left out: {metric}"
        );
    }

    // A failing handler still writes its line, with the error counted.
    assert!(app
        .handle(event("MESSAGE", "fail", "a=", Some(r#"{"action":"fail"}"#)))
        .await
        .is_err());
    let fail = only(lines.take());
    assert_eq!(
        (fail["Route"].clone(), fail["HandlerErrors"].clone()),
        (json!("fail"), json!(1))
    );

    app.handle(event("DISCONNECT", "$disconnect", "b=", None))
        .await
        .unwrap();
    assert_eq!(only(lines.take())["Disconnects"], 1);

    let rest = json!({"httpMethod": "GET", "path": "/history", "resource": "/history", "requestContext": {"httpMethod": "GET"}});
    app.handle(rest).await.unwrap();
    let rest = only(lines.take());
    assert_eq!(rest["Route"], "GET /history");
    assert_eq!(rest["EventType"], "REST");
    assert_eq!(rest["HttpRequests"], 1);

    // An event that is not API Gateway's writes no metrics.
    assert!(app.handle(json!({"hello": "world"})).await.is_err());
    assert!(lines.take().is_empty());
}

#[tokio::test]
async fn namespace_dimension_sets_and_fixed_dimensions_are_configurable() {
    let lines = Lines::default();
    let emf = Emf::new()
        .namespace("acme/realtime")
        .unwrap()
        .function_name("chat-fn")
        .dimension("Service", "chat")
        .dimension_sets([vec!["Service", "Route", "Stage"], vec!["Service"]])
        .writer(lines.clone());
    let (app, _sink) = app(Some(emf));

    app.handle(event("CONNECT", "$connect", "a=", None))
        .await
        .unwrap();

    let line = only(lines.take());
    let metadata = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metadata["Namespace"], "acme/realtime");
    assert_eq!(
        metadata["Dimensions"],
        json!([["Service", "Route", "Stage"], ["Service"]])
    );
    assert_eq!(line["Service"], "chat");
    assert!(Emf::new().namespace("AWS/Lambda").is_err());
}

#[tokio::test]
async fn a_dimension_without_a_value_is_left_out_of_its_set() {
    let lines = Lines::default();
    // No function name: outside Lambda and not set.
    let emf = Emf::new().dimension_sets([vec!["FunctionName", "Route"], vec!["FunctionName"]]);
    let emf = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        emf
    } else {
        emf.writer(lines.clone())
    };
    let (app, _sink) = app(Some(emf));
    app.handle(event("CONNECT", "$connect", "a=", None))
        .await
        .unwrap();
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        let line = only(lines.take());
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Route"]])
        );
    }
}

#[tokio::test]
async fn without_metrics_nothing_is_written() {
    let lines = Lines::default();
    let (app, _sink) = app(None);
    app.handle(event("CONNECT", "$connect", "a=", None))
        .await
        .unwrap();
    assert!(lines.take().is_empty());
}
