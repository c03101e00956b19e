//! `Invoker`: events decoded as in Lambda mode, run against the in-memory backend, with
//! what the handlers posted recorded and API Gateway's Gone rules kept.

use std::sync::Arc;

use serde_json::{json, Value};
use wsgw_aws::invoke::Invoker;
use wsgw_aws::lambda::EventError;
use wsgw_aws::metrics::check_emf_line;
use wsgw_core::{
    Connection, Context, Error, HttpRequest, Payload, Rejection, Reply, Request, Router,
};
use wsgw_memory::MemoryStore;

fn router() -> Router {
    Router::new()
        .on_connect(|ctx: Context, request: Request| async move {
            ctx.store()
                .put(Connection::new(request.connection_id.clone()).with_group("all"))
                .await?;
            // A classic mistake: greeting the client from $connect. On AWS it is Gone.
            let greeted = ctx
                .send_json(&request.connection_id, &json!({"type": "welcome"}))
                .await;
            assert!(greeted.unwrap_err().is_gone());
            Ok(Reply::ok())
        })
        .route("say", |ctx: Context, _request: Request| async move {
            ctx.broadcast_payload(Payload::text(r#"{"type":"said"}"#))
                .to_group("all")
                .await?;
            Ok(Reply::ok())
        })
        .two_way_route("whisper", |ctx: Context, request: Request| async move {
            let to: Value = request.json()?;
            let to = wsgw_core::ConnectionId::new(to["to"].as_str().unwrap_or_default());
            ctx.sink()
                .send(&to, Payload::binary(vec![0xff, 0x00]))
                .await?;
            Ok(Reply::with_body("whispered"))
        })
        .route("kick", |ctx: Context, request: Request| async move {
            ctx.sink().disconnect(&request.connection_id).await?;
            Ok(Reply::ok())
        })
        .route("huge", |ctx: Context, request: Request| async move {
            let error = ctx
                .sink()
                .send(
                    &request.connection_id,
                    Payload::text("x".repeat(200 * 1024)),
                )
                .await
                .unwrap_err();
            assert!(matches!(error, Error::PayloadTooLarge { .. }));
            Ok(Reply::ok())
        })
        .route("fail", |_ctx: Context, _request: Request| async move {
            Err::<Reply, _>(Error::handler("the database is down"))
        })
        .route("strict", |_ctx: Context, request: Request| async move {
            #[derive(serde::Deserialize)]
            struct Strict {
                #[allow(dead_code)]
                text: String,
            }
            request.json::<Strict>()?;
            Ok(())
        })
        .http(
            "GET",
            "/rooms/{room}",
            |_ctx: Context, _request: HttpRequest| async move {
                Err::<wsgw_core::HttpResponse, _>(
                    Rejection::new("no_such_room").with_status(404).into(),
                )
            },
        )
        .route("loud", |_ctx: Context, _request: Request| async move {
            Ok(Reply::with_body("one-way: dropped, as on AWS"))
        })
}

fn event(event_type: &str, route: &str, id: &str, body: Option<Value>) -> Value {
    let mut event = json!({
        "requestContext": {
            "routeKey": route, "eventType": event_type, "connectionId": id,
            "stage": "production", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "connectedAt": 1795336800000i64, "requestTimeEpoch": 1795336801234i64,
            "identity": {"sourceIp": "203.0.113.10"}, "apiId": "abc", "requestId": "Bq8PZH5ejoEFuNw="
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    event
}

fn invoker() -> Invoker {
    Invoker::new("test-fn", router()).with_store(Arc::new(MemoryStore::new()))
}

async fn run(invoker: &Invoker, event: Value) -> Value {
    invoker.invoke(event).await.expect("decodes").to_json(true)
}

#[tokio::test]
async fn a_post_to_the_connecting_client_is_rejected_as_gone_as_on_aws() {
    let invoker = invoker();
    let out = run(&invoker, event("CONNECT", "$connect", "a=", None)).await;

    assert_eq!(out["response"]["statusCode"], 200);
    assert_eq!(out["posted"], json!([]));
    assert_eq!(out["rejected"][0]["connection_id"], "a=");
    assert_eq!(out["rejected"][0]["error"], "GoneException");
    assert_eq!(out["rejected"][0]["json"], json!({"type": "welcome"}));
    assert!(out["rejected"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("$connect"));
}

#[tokio::test]
async fn events_in_sequence_share_the_backend_and_posts_are_recorded_per_event() {
    let invoker = invoker();
    run(&invoker, event("CONNECT", "$connect", "a=", None)).await;
    run(&invoker, event("CONNECT", "$connect", "b=", None)).await;

    let said = run(
        &invoker,
        event("MESSAGE", "say", "a=", Some(json!({"action": "say"}))),
    )
    .await;
    let mut to: Vec<&str> = said["posted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| post["connection_id"].as_str().unwrap())
        .collect();
    to.sort_unstable();
    assert_eq!(to, vec!["a=", "b="]);
    assert_eq!(said["posted"][0]["data"], r#"{"type":"said"}"#);
    assert_eq!(said["posted"][0]["json"], json!({"type": "said"}));

    // b= leaves; the next broadcast finds it gone (and prunes it).
    let left = run(&invoker, event("DISCONNECT", "$disconnect", "b=", None)).await;
    assert_eq!(left["posted"], json!([]));
    let said = run(
        &invoker,
        event("MESSAGE", "say", "a=", Some(json!({"action": "say"}))),
    )
    .await;
    assert_eq!(said["posted"].as_array().unwrap().len(), 1);
    assert_eq!(said["rejected"][0]["connection_id"], "b=");
    let metrics = &said["metrics"][0];
    assert_eq!(metrics["GonePrunes"], 1);
    assert_eq!(metrics["BroadcastDeliveries"], 1);
    assert_eq!(metrics["FunctionName"], "test-fn");
    check_emf_line(&metrics.to_string()).unwrap();

    // Pruned from the store: a third broadcast does not even try b=.
    let said = run(
        &invoker,
        event("MESSAGE", "say", "a=", Some(json!({"action": "say"}))),
    )
    .await;
    assert_eq!(said["rejected"], json!([]));
}

#[tokio::test]
async fn any_other_connection_id_is_accepted_binary_data_is_base64_and_replies_are_in_the_response()
{
    let invoker = invoker();
    let out = run(
        &invoker,
        event(
            "MESSAGE",
            "whisper",
            "a=",
            Some(json!({"action": "whisper", "to": "someone-else="})),
        ),
    )
    .await;
    assert_eq!(out["response"]["statusCode"], 200);
    assert_eq!(out["response"]["body"], "whispered");
    assert_eq!(
        out["sent_to_caller"],
        json!({"connection_id": "a=", "data": "whispered"}),
        "a two-way route's reply goes to the caller"
    );
    assert_eq!(
        out["posted"],
        json!([{"connection_id": "someone-else=", "data": "/wA=", "is_base64_encoded": true}])
    );
}

#[tokio::test]
async fn a_handler_closing_a_connection_is_listed_and_it_is_gone_afterwards() {
    let invoker = invoker();
    let kicked = run(
        &invoker,
        event("MESSAGE", "kick", "a=", Some(json!({"action": "kick"}))),
    )
    .await;
    assert_eq!(kicked["disconnected"], json!(["a="]));
    let again = run(
        &invoker,
        event("MESSAGE", "kick", "a=", Some(json!({"action": "kick"}))),
    )
    .await;
    assert_eq!(again["response"], Value::Null);
    assert!(again["error"].as_str().unwrap().contains("gone"));
}

#[tokio::test]
async fn oversized_posts_are_rejected_as_payload_too_large() {
    let invoker = invoker();
    let out = run(
        &invoker,
        event("MESSAGE", "huge", "a=", Some(json!({"action": "huge"}))),
    )
    .await;
    assert_eq!(out["rejected"][0]["error"], "PayloadTooLargeException");
    assert_eq!(out["posted"], json!([]));
}

#[tokio::test]
async fn a_failing_handler_gives_an_error_and_no_response_and_its_metrics_count_it() {
    let invoker = invoker();
    let out = run(
        &invoker,
        event("MESSAGE", "fail", "a=", Some(json!({"action": "fail"}))),
    )
    .await;
    assert_eq!(out["response"], Value::Null);
    assert_eq!(out["error"], "handler error: the database is down");
    assert_eq!(out["metrics"][0]["HandlerErrors"], 1);
    assert_eq!(
        out["sent_to_caller"]["data"],
        r#"{"message": "Internal server error", "connectionId":"a=", "requestId":"Bq8PZH5ejoEFuNw="}"#,
        "what API Gateway sends the caller of a failed integration"
    );
}

/// AWS: without a route response, the integration's response body is dropped; the
/// proxy response carries none and nothing is sent to the caller.
#[tokio::test]
async fn a_one_way_routes_reply_body_is_dropped_and_nothing_is_sent_to_the_caller() {
    let invoker = invoker();
    let out = run(
        &invoker,
        event("MESSAGE", "loud", "a=", Some(json!({"action": "loud"}))),
    )
    .await;
    assert_eq!(out["response"]["statusCode"], 200);
    assert_eq!(out["response"].get("body"), None, "{out}");
    assert_eq!(out.get("sent_to_caller"), None, "{out}");
}

#[tokio::test]
async fn a_malformed_event_is_an_error_naming_the_field() {
    let invoker = invoker();
    let mut bad = event("MESSAGE", "say", "a=", None);
    bad["requestContext"]["requestTimeEpoch"] = json!("yesterday");
    let error = invoker.invoke(bad).await.unwrap_err();
    assert!(
        matches!(error, EventError::Malformed { ref path, .. } if path == "requestContext.requestTimeEpoch")
    );
    assert!(
        error
            .to_string()
            .contains("field `requestContext.requestTimeEpoch`"),
        "{error}"
    );
    let unrecognised = invoker.invoke(json!({"hello": 1})).await.unwrap_err();
    assert!(matches!(unrecognised, EventError::Unrecognised));
}

#[tokio::test]
async fn a_rejection_on_lambda_is_posted_to_the_caller_and_the_invocation_succeeds() {
    let invoker = invoker();
    run(&invoker, event("CONNECT", "$connect", "a=", None)).await;

    let out = run(
        &invoker,
        event("MESSAGE", "strict", "a=", Some(json!({"action": "strict"}))),
    )
    .await;

    assert_eq!(out["response"]["statusCode"], 200, "{out}");
    assert_eq!(out.get("error"), None, "not a failed invocation: {out}");
    assert_eq!(out["posted"][0]["connection_id"], "a=");
    let frame = &out["posted"][0]["json"];
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["error"], "missing_field");
    assert_eq!(frame["field"], "text");
    assert_eq!(
        out.get("sent_to_caller"),
        None,
        "no Internal server error frame"
    );
    assert_eq!(out["metrics"][0]["HandlerErrors"], 0);
    assert_eq!(out["metrics"][0]["Messages"], 1);
}

#[tokio::test]
async fn a_rest_rejection_on_lambda_answers_its_status_with_the_frame() {
    let invoker = invoker();
    let rest = json!({
        "httpMethod": "GET", "path": "/rooms/attic", "resource": "/rooms/{room}",
        "headers": {}, "multiValueHeaders": {}, "isBase64Encoded": false,
        "requestContext": {"httpMethod": "GET", "path": "/prod/rooms/attic", "stage": "prod",
            "requestId": "r-1", "accountId": "123456789012", "resourcePath": "/rooms/{room}",
            "identity": {"sourceIp": "203.0.113.10"}}
    });

    let out = run(&invoker, rest).await;

    assert_eq!(out["response"]["statusCode"], 404, "{out}");
    let body: Value =
        serde_json::from_str(out["response"]["body"].as_str().expect("a body")).expect("JSON");
    assert_eq!(body, json!({"type": "error", "error": "no_such_room"}));
    assert_eq!(out["metrics"][0]["HandlerErrors"], 0);
}
