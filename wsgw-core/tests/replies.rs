//! The reply model: what handlers return (`IntoReply`), client rejections answered to
//! the client without failing the invocation, server failures kept as errors.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use wsgw_core::metrics::{Counter, Counters};
use wsgw_core::{
    Backends, ConnectionId, ConnectionInfo, Context, Error, HttpRequest, Json, MessageSink,
    MockConnectionStore, Payload, Rejection, Reply, Request, Result, Router,
};

/// Records what was sent to whom; answers `Gone` for the ids it is told are gone.
#[derive(Default)]
struct RecordingSink {
    sent: Mutex<Vec<(ConnectionId, Payload)>>,
    gone: Vec<ConnectionId>,
}

impl RecordingSink {
    fn sent(&self) -> Vec<(ConnectionId, Payload)> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl MessageSink for RecordingSink {
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()> {
        if self.gone.contains(id) {
            return Err(Error::Gone {
                connection_id: id.clone(),
            });
        }
        self.sent.lock().unwrap().push((id.clone(), payload));
        Ok(())
    }
    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        Err(Error::Gone {
            connection_id: id.clone(),
        })
    }
    async fn disconnect(&self, _id: &ConnectionId) -> Result<()> {
        Ok(())
    }
}

fn served(sink: &Arc<RecordingSink>) -> Backends {
    Backends::new(Arc::new(MockConnectionStore::new()), sink.clone())
}

fn caller() -> ConnectionId {
    ConnectionId::new("caller=")
}

fn message(body: serde_json::Value) -> Request {
    Request::message(caller(), body.to_string())
}

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

/// `say`: answers `{"type":"said","text":…}` to the caller, refuses an empty text.
async fn say(ctx: Context, request: Request) -> Result<()> {
    let Say { text } = request.json()?;
    if text.trim().is_empty() {
        return Err(Rejection::new("empty_text")
            .with_detail("say something")
            .into());
    }
    ctx.reply(&json!({ "type": "said", "text": text })).await
}

#[tokio::test]
async fn a_rejection_on_a_one_way_route_is_sent_to_the_caller_and_the_invocation_succeeds() {
    let sink = Arc::new(RecordingSink::default());
    let counters = Arc::new(Counters::new());
    let router = Router::new().route("say", say).observe(counters.clone());

    let reply = router
        .handle(
            &served(&sink),
            message(json!({"action": "say", "text": " "})),
        )
        .await
        .expect("a rejection is not a failed invocation");

    assert_eq!(reply, Reply::ok());
    assert_eq!(
        sink.sent(),
        [(
            caller(),
            Payload::text(r#"{"type":"error","error":"empty_text","detail":"say something"}"#)
        )]
    );
    assert_eq!(counters.get(Counter::Messages, "say"), 1);
    assert_eq!(counters.get(Counter::HandlerErrors, "say"), 0);
}

#[tokio::test]
async fn malformed_input_parsed_with_request_json_is_answered_with_an_error_frame() {
    let sink = Arc::new(RecordingSink::default());
    let router = Router::new().route("say", say);

    router
        .handle(&served(&sink), message(json!({"action": "say"})))
        .await
        .unwrap();
    router
        .handle(&served(&sink), message(json!({"action": "say", "text": 5})))
        .await
        .unwrap();

    let frames: Vec<serde_json::Value> = sink
        .sent()
        .iter()
        .map(|(_, payload)| payload.parse_json().unwrap())
        .collect();
    assert_eq!(frames[0]["type"], "error");
    assert_eq!(frames[0]["error"], "missing_field");
    assert_eq!(frames[0]["field"], "text");
    assert_eq!(frames[1]["error"], "invalid_type");
    assert_eq!(frames[1]["field"], "text");
    assert!(frames[1]["detail"]
        .as_str()
        .unwrap()
        .contains("expected a string"));
}

#[tokio::test]
async fn a_rejection_on_a_two_way_route_is_sent_the_same_way() {
    let sink = Arc::new(RecordingSink::default());
    let router = Router::new().two_way_route("say", say);
    let reply = router
        .handle(
            &served(&sink),
            message(json!({"action": "say", "text": ""})),
        )
        .await
        .unwrap();
    assert_eq!(reply.body, None, "the frame goes through the sink");
    assert_eq!(sink.sent().len(), 1);
}

#[tokio::test]
async fn a_rejected_caller_that_already_left_is_no_failure() {
    let sink = Arc::new(RecordingSink {
        gone: vec![caller()],
        ..Default::default()
    });
    let router = Router::new().route("say", say);
    let reply = router
        .handle(&served(&sink), message(json!({"action": "say"})))
        .await;
    assert_eq!(reply.unwrap(), Reply::ok());
}

#[tokio::test]
async fn a_connect_rejection_refuses_the_handshake_with_its_status() {
    let sink = Arc::new(RecordingSink::default());
    let counters = Arc::new(Counters::new());
    let router = Router::new()
        .on_connect(|_ctx: Context, request: Request| async move {
            match request.query_param("room") {
                Some(_) => Ok(()),
                None => Err(Rejection::new("missing_room").with_status(400).into()),
            }
        })
        .observe(counters.clone());

    let refused = router
        .handle(&served(&sink), Request::connect(caller()))
        .await
        .expect("a refusal, not a failure");
    assert_eq!(refused.status, 400);
    assert!(refused.is_rejection());
    let accepted = router
        .handle(
            &served(&sink),
            Request::connect(caller()).with_query("room", "lobby"),
        )
        .await
        .unwrap();
    assert_eq!(accepted.status, 200);
    assert!(sink.sent().is_empty(), "nobody to send to inside $connect");
    assert_eq!(counters.get(Counter::ConnectsRefused, "$connect"), 1);
    assert_eq!(counters.get(Counter::HandlerErrors, "$connect"), 0);
}

#[tokio::test]
async fn a_rejecting_authorizer_denies_with_the_rejections_status() {
    let sink = Arc::new(RecordingSink::default());
    let router = Router::new().authorizer(|_ctx: Context, _request: Request| async move {
        Err(Rejection::new("no_token").with_status(401).into())
    });
    let reply = router
        .handle(&served(&sink), Request::connect(caller()))
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn a_disconnect_rejection_has_nobody_to_answer_and_succeeds() {
    let sink = Arc::new(RecordingSink::default());
    let router = Router::new().on_disconnect(|_ctx: Context, _request: Request| async move {
        Err::<(), _>(Rejection::new("too_late").into())
    });
    let reply = router
        .handle(&served(&sink), Request::disconnect(caller(), 1000, ""))
        .await
        .unwrap();
    assert_eq!(reply, Reply::ok());
    assert!(sink.sent().is_empty());
}

#[tokio::test]
async fn a_serialisation_failure_is_a_server_error_not_a_rejection() {
    struct NoJson;
    impl serde::Serialize for NoJson {
        fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("cannot be JSON"))
        }
    }
    let sink = Arc::new(RecordingSink::default());
    let counters = Arc::new(Counters::new());
    let router = Router::new()
        .route("answer", |ctx: Context, _request: Request| async move {
            ctx.reply(&NoJson).await
        })
        .two_way_route("json", |_ctx: Context, _request: Request| async move {
            Ok(Json(NoJson))
        })
        .observe(counters.clone());

    for action in ["answer", "json"] {
        let error = router
            .handle(&served(&sink), message(json!({ "action": action })))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Json(_)), "{action}: {error:?}");
        assert!(error.as_rejection().is_none());
    }
    assert!(sink.sent().is_empty());
    assert_eq!(counters.snapshot().total(Counter::HandlerErrors), 2);
}

#[tokio::test]
async fn handlers_return_anything_that_converts_into_a_reply() {
    let sink = Arc::new(RecordingSink::default());
    let router = Router::new()
        .two_way_route("json", |_ctx: Context, _request: Request| async {
            Ok(Json(json!({"type": "pong"})))
        })
        .two_way_route("text", |_ctx: Context, _request: Request| async {
            Ok("pong")
        })
        .two_way_route("payload", |_ctx: Context, _request: Request| async {
            Ok(Payload::text("pong"))
        })
        .two_way_route("unit", |_ctx: Context, _request: Request| async { Ok(()) })
        .two_way_route("reply", |_ctx: Context, _request: Request| async {
            Ok(Reply::with_body("pong").with_status(202))
        });
    let body = |reply: Reply| reply.body.and_then(|b| b.as_text().map(str::to_owned));

    let reply = |action: &'static str| {
        let router = router.clone();
        let backends = served(&sink);
        async move {
            router
                .handle(&backends, message(json!({ "action": action })))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        body(reply("json").await).as_deref(),
        Some(r#"{"type":"pong"}"#)
    );
    assert_eq!(body(reply("text").await).as_deref(), Some("pong"));
    assert_eq!(body(reply("payload").await).as_deref(), Some("pong"));
    assert_eq!(reply("unit").await, Reply::ok());
    assert_eq!(reply("reply").await.status, 202);
}

#[tokio::test]
async fn ctx_reply_treats_a_gone_caller_as_done_and_needs_a_websocket_route() {
    let sink = Arc::new(RecordingSink {
        gone: vec![caller()],
        ..Default::default()
    });
    let router = Router::new()
        .route("who", |ctx: Context, _request: Request| async move {
            ctx.reply(&json!({"type": "who"})).await
        })
        .http(
            "GET",
            "/who",
            |ctx: Context, _request: HttpRequest| async move {
                ctx.reply(&json!({"type": "who"})).await?;
                Ok(wsgw_core::http::StatusCode::NO_CONTENT)
            },
        );
    router
        .handle(&served(&sink), message(json!({"action": "who"})))
        .await
        .expect("a gone caller is no failure");
    let error = router
        .handle_http(
            &served(&sink),
            wsgw_core::http::Request::get("/who")
                .body(wsgw_core::Payload::default())
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("only WebSocket routes"),
        "{error}"
    );
}
