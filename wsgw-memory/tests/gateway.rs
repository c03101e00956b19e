//! LocalGateway over loopback with real WebSocket clients (tokio-tungstenite).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{self, Message};
use wsgw_core::http::{Response, StatusCode};
use wsgw_core::{
    Authorization, Context, Error, EventType, HttpRequest, HttpRequestExt, Json, Payload, Reply,
    Request, Router, DEFAULT,
};
use wsgw_memory::gateway::{Assets, Limits, LocalGateway, ManagementAccess, RunningGateway};
use wsgw_memory::testing::ws::{close_frame, next_json, next_text, send_json, Client};

const WAIT: Duration = Duration::from_secs(5);

/// Every event the handlers saw, in order.
struct Events(mpsc::UnboundedSender<Request>);

async fn record(ctx: Context<Events>, request: Request) -> wsgw_core::Result<Reply> {
    let _ = ctx.state().0.send(request.clone());
    Ok(Reply::ok())
}

fn recording_router(events: mpsc::UnboundedSender<Request>) -> Router<Events> {
    Router::with_state(Events(events))
        .on_connect(|ctx: Context<Events>, request: Request| async move {
            let _ = ctx.state().0.send(request.clone());
            if request.query_param("fail").is_some() {
                return Err(Error::handler("$connect fails"));
            }
            if request.query_param("hang").is_some() {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            match request.query_param("refuse") {
                Some(status) => Ok(Reply::status(status.parse().unwrap_or(400))),
                None => {
                    let reply = Reply::ok();
                    // Choose the `chat` subprotocol when the client offers it.
                    let offered = request.header("sec-websocket-protocol").unwrap_or("");
                    Ok(if offered.split(',').any(|p| p.trim() == "chat") {
                        reply.with_subprotocol("chat")
                    } else {
                        reply
                    })
                }
            }
        })
        .on_disconnect(record)
        .two_way_route(
            "echo",
            |ctx: Context<Events>, request: Request| async move {
                let _ = ctx.state().0.send(request.clone());
                Ok(Reply::with_body(
                    request.body.clone().unwrap_or_else(|| Payload::text("")),
                ))
            },
        )
        .two_way_route(
            "whoami",
            |_ctx: Context<Events>, request: Request| async move {
                Reply::json(&json!({ "connection_id": request.connection_id }))
            },
        )
        .route(
            "push",
            |ctx: Context<Events>, request: Request| async move {
                // One-way: the handler posts through the sink instead of replying.
                ctx.send_json(&request.connection_id, &json!({ "pushed": true }))
                    .await?;
                Ok(Reply::ok())
            },
        )
        .route(
            "fail",
            |_ctx: Context<Events>, _request: Request| async move {
                Err::<Reply, _>(Error::invalid_input("this route always fails"))
            },
        )
        .route(
            "panic",
            |_ctx: Context<Events>, _request: Request| async move {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                Ok(Reply::ok())
            },
        )
        .two_way_route(
            "slow",
            |_ctx: Context<Events>, _request: Request| async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok(Reply::with_body("too late"))
            },
        )
        .two_way_route(
            "nap",
            |_ctx: Context<Events>, _request: Request| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(Reply::with_body("napped"))
            },
        )
        .route(
            "one_way",
            |ctx: Context<Events>, request: Request| async move {
                let _ = ctx.state().0.send(request);
                Ok(Reply::with_body("dropped, as on API Gateway"))
            },
        )
        .route(
            "close_me",
            |ctx: Context<Events>, request: Request| async move {
                ctx.sink().disconnect(&request.connection_id).await?;
                Ok(Reply::ok())
            },
        )
        .two_way_route(DEFAULT, |_ctx: Context<Events>, request: Request| async move {
            Reply::json(&json!({ "route": request.route_key, "binary": request.text().is_none() }))
        })
        .http("GET", "/history/{device}", |_ctx: Context<Events>, request: HttpRequest| async move {
            Ok(Json(json!({
                "device": request.path_param("device"),
                "since": request.query_param("since"),
                "tags": request.query_params("tag"),
                "x-tag": request.headers().get_all("x-tag").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>(),
            })))
        })
        .http("POST", "/history/{device}", |_ctx: Context<Events>, request: HttpRequest| async move {
            Ok((StatusCode::CREATED, request.into_body()))
        })
        .http("OPTIONS", "/readings", |_ctx: Context<Events>, _request: HttpRequest| async move {
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .header("access-control-allow-origin", "*")
                .header("set-cookie", "a=1")
                .header("set-cookie", "b=2")
                .body(Payload::default())
                .unwrap())
        })
        .http("POST", "/readings", |_ctx: Context<Events>, request: HttpRequest| async move {
            Ok((StatusCode::CREATED, request.into_body()))
        })
        .http("GET", "/broken", |_ctx: Context<Events>, _request: HttpRequest| async move {
            Err::<StatusCode, _>(Error::backend("test", "table unavailable", None))
        })
}

struct Fixture {
    gateway: RunningGateway,
    events: mpsc::UnboundedReceiver<Request>,
}

async fn start(limits: Limits) -> Fixture {
    let (events_tx, events) = mpsc::unbounded_channel();
    let gateway = LocalGateway::new(recording_router(events_tx))
        .limits(limits)
        .assets(
            Assets::new()
                .file("/index.html", "<h1>hello</h1>")
                .file("/app.js", "console.log(1)"),
        )
        .http_routes(wsgw_memory::gateway::axum::Router::new().route(
            "/api/health",
            wsgw_memory::gateway::axum::routing::get(|| async { "ok" }),
        ));
    let gateway = gateway
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback");
    Fixture { gateway, events }
}

fn test_limits() -> Limits {
    Limits::default()
        .max_frame_bytes(1024)
        .max_message_bytes(4096)
        .handler_timeout(Duration::from_millis(500))
}

impl Fixture {
    async fn connect(&self, path_and_query: &str) -> Client {
        let url = format!("{}{}", self.gateway.ws_url(), path_and_query);
        let (client, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("handshake");
        client
    }

    async fn next_event(&mut self, kind: EventType) -> Request {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .expect("an event within 5 s")
                .expect("router alive");
            if event.event_type == kind {
                return event;
            }
        }
    }

    fn http(&self) -> String {
        format!("http://{}", self.gateway.local_addr())
    }
}

async fn whoami(client: &mut Client) -> String {
    send_json(client, &json!({"action": "whoami"})).await;
    next_json(client).await["connection_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// AWS: the event's `requestContext` carries `stage`, `domainName` (no port), `apiId`,
/// a `requestId` per event and `messageDirection` `IN`.
#[tokio::test]
async fn connect_passes_query_headers_source_ip_and_aws_request_context() {
    let mut fixture = start(test_limits()).await;
    let mut request = format!("{}?session_id=s1&name=ada%20l", fixture.gateway.stage_url())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("user-agent", "gateway-test/1".parse().unwrap());
    request
        .headers_mut()
        .insert("x-device-key", "k-123".parse().unwrap());
    let (mut client, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake");

    let connect = fixture.next_event(EventType::Connect).await;
    assert_eq!(connect.route_key, "$connect");
    assert_eq!(connect.stage, "local");
    assert_eq!(connect.domain_name, "127.0.0.1", "no port, as on AWS");
    assert_eq!(connect.api_id, fixture.gateway.api_id());
    assert_eq!(connect.api_id.len(), 10);
    assert_eq!(connect.message_direction, "IN");
    assert_eq!(connect.request_id.len(), 16, "{}", connect.request_id);
    assert_eq!(connect.query_param("session_id"), Some("s1"));
    assert_eq!(
        connect.query_param("name"),
        Some("ada l"),
        "query values are decoded"
    );
    assert_eq!(connect.header("X-Device-Key"), Some("k-123"));
    assert_eq!(connect.user_agent.as_deref(), Some("gateway-test/1"));
    assert_eq!(connect.source_ip.as_deref(), Some("127.0.0.1"));
    assert!(connect.connected_at.is_some());
    assert_eq!(whoami(&mut client).await, connect.connection_id.as_str());
    send_json(&mut client, &json!({"action": "echo"})).await;
    next_json(&mut client).await;
    let message = fixture.next_event(EventType::Message).await;
    assert_eq!(message.api_id, connect.api_id);
    assert_eq!(message.message_direction, "IN");
    assert_eq!(message.request_id.len(), 16);
    assert_ne!(
        message.request_id, connect.request_id,
        "one request id per event"
    );
    assert!(message.message_id.is_some());
}

/// Deliberate difference: `ws://ADDR/` is the stage too, so laptop commands stay short.
#[tokio::test]
async fn root_path_is_the_stage_a_deliberate_difference_from_aws() {
    let mut fixture = start(test_limits()).await;
    let _client = fixture.connect("/").await;
    assert_eq!(fixture.next_event(EventType::Connect).await.stage, "local");
}

/// AWS: clients connect to `wss://{domain}/{stage}`; an unknown stage is refused at the
/// handshake (403) and no route runs.
#[tokio::test]
async fn an_upgrade_on_another_stage_is_refused_at_the_handshake_as_aws_refuses_an_unknown_stage() {
    let mut fixture = start(test_limits()).await;
    for path in ["/dev", "/production", "/index.html", "/local/extra"] {
        let url = format!("{}{path}", fixture.gateway.ws_url());
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(response)) => {
                assert!(
                    response.status().as_u16() == 403 || response.status().as_u16() == 404,
                    "{path}: {}",
                    response.status()
                );
                if path != "/local/extra" {
                    assert_eq!(response.status().as_u16(), 403, "{path}");
                }
            }
            other => panic!(
                "{path}: expected a refused handshake, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    // No $connect ran for any of them: the next event is this client's.
    let _client = fixture.connect("/local").await;
    let connect = fixture.next_event(EventType::Connect).await;
    assert_eq!(connect.stage, "local");
    assert!(fixture.events.try_recv().is_err(), "one $connect only");
}

/// AWS: a `$connect` integration that fails is answered 502 at the handshake, one past
/// the integration timeout 504; nothing opens and no `$disconnect` runs.
#[tokio::test]
async fn a_failing_connect_is_refused_with_502_and_a_timed_out_one_with_504() {
    let mut fixture = start(test_limits()).await;
    for (query, status) in [("?fail=1", 502), ("?hang=1", 504)] {
        let url = format!("{}{query}", fixture.gateway.stage_url());
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "{query}")
            }
            other => panic!(
                "{query}: expected HTTP {status}, got {:?}",
                other.map(|_| ())
            ),
        }
        fixture.next_event(EventType::Connect).await;
    }
    let _client = fixture.connect("/local").await;
    assert_eq!(
        fixture.events.recv().await.map(|e| e.event_type),
        Some(EventType::Connect),
        "no $disconnect for connections that never opened"
    );
}

#[tokio::test]
async fn non_2xx_connect_reply_refuses_the_handshake_with_that_status() {
    let mut fixture = start(test_limits()).await;
    let url = format!("{}/?refuse=403", fixture.gateway.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| ())),
    }
    fixture.next_event(EventType::Connect).await;
    // Nothing opened, so nothing disconnects: the next event is the next client's connect.
    let _client = fixture.connect("/").await;
    assert_eq!(
        fixture.events.recv().await.map(|e| e.event_type),
        Some(EventType::Connect)
    );
}

#[tokio::test]
async fn authorizer_denial_refuses_the_handshake_and_allow_context_reaches_every_route() {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let gateway = LocalGateway::new(recording_router(events_tx).authorizer(
        |_ctx: Context<Events>, request: Request| async move {
            Ok(match request.query_param("token") {
                Some("good") => {
                    Authorization::Allow(json!({"principal": "ada", "roles": ["operator"]}))
                }
                _ => Authorization::Deny(401),
            })
        },
    ));
    let gateway = gateway.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    match tokio_tungstenite::connect_async(format!("{}/?token=bad", gateway.ws_url())).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected HTTP 401, got {:?}", other.map(|_| ())),
    }
    let (mut client, _) =
        tokio_tungstenite::connect_async(format!("{}/?token=good", gateway.ws_url()))
            .await
            .unwrap();
    let connect = events.recv().await.unwrap();
    assert_eq!(
        connect.event_type,
        EventType::Connect,
        "the denied client never reached $connect"
    );
    assert_eq!(
        connect.authorizer,
        Some(json!({"principal": "ada", "roles": ["operator"]}))
    );
    send_json(&mut client, &json!({"action": "echo"})).await;
    next_text(&mut client).await;
    let message = events.recv().await.unwrap();
    assert_eq!(
        message.authorizer.as_ref().map(|a| &a["principal"]),
        Some(&json!("ada"))
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn chosen_subprotocol_is_echoed_in_the_handshake() {
    let fixture = start(test_limits()).await;
    let mut request = fixture.gateway.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "chat, other".parse().unwrap());
    let (_client, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("chat")
    );
}

#[tokio::test]
async fn messages_route_by_action_with_two_way_replies_and_default_fallback() {
    let mut fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    send_json(&mut client, &json!({"action": "echo", "n": 1})).await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"action": "echo", "n": 1})
    );
    let routed = fixture.next_event(EventType::Message).await;
    assert_eq!(routed.route_key, "echo");
    assert!(routed.message_id.is_some());

    send_json(&mut client, &json!({"action": "nope"})).await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"route": "$default", "binary": false})
    );
    client.send(Message::text("not json")).await.unwrap();
    assert_eq!(
        next_json(&mut client).await,
        json!({"route": "$default", "binary": false})
    );

    send_json(&mut client, &json!({"action": "push"})).await;
    assert_eq!(next_json(&mut client).await, json!({"pushed": true}));
}

/// AWS: a route without a route response is one-way: the integration's response body
/// is dropped.
#[tokio::test]
async fn a_one_way_routes_reply_body_is_dropped_as_on_api_gateway() {
    let mut fixture = start(test_limits()).await;
    let mut client = fixture.connect("/local").await;
    send_json(&mut client, &json!({"action": "one_way"})).await;
    assert_eq!(
        fixture.next_event(EventType::Message).await.route_key,
        "one_way"
    );
    send_json(&mut client, &json!({"action": "echo", "after": "one_way"})).await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"action": "echo", "after": "one_way"}),
        "the first frame the client gets is the two-way echo, nothing from one_way"
    );
}

/// AWS: "Binary media types for WebSocket APIs": a binary frame from a client is
/// rejected and the connection closed with 1003; `$disconnect` runs with that code and
/// the other connections carry on.
#[tokio::test]
async fn a_binary_frame_closes_the_connection_with_1003_and_bystanders_keep_working() {
    let mut fixture = start(test_limits()).await;
    let mut bystander = fixture.connect("/local").await;
    let mut client = fixture.connect("/local").await;
    let id = whoami(&mut client).await;
    client.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        close_frame(&mut client).await,
        (1003, "Binary frames are not supported".to_owned())
    );
    let disconnect = fixture.next_event(EventType::Disconnect).await;
    assert_eq!(disconnect.connection_id.as_str(), id);
    assert_eq!(disconnect.disconnect.map(|d| d.status_code), Some(1003));
    // No route saw the binary message.
    assert!(fixture.events.try_recv().is_err());
    send_json(&mut bystander, &json!({"action": "echo", "still": "here"})).await;
    assert_eq!(
        next_json(&mut bystander).await,
        json!({"action": "echo", "still": "here"})
    );
}

/// AWS: no route and no `$default` → `{"message": "Forbidden", "connectionId":"…",
/// "requestId":"…"}`, and the connection stays open.
#[tokio::test]
async fn without_default_route_the_client_gets_aws_forbidden_frame_and_stays_connected() {
    let gateway = LocalGateway::new(
        Router::new().two_way_route("ping", |_ctx: Context, _r: Request| async {
            Ok(Reply::with_body("pong"))
        }),
    )
    .bind("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let (mut client, _) = tokio_tungstenite::connect_async(gateway.stage_url())
        .await
        .unwrap();
    send_json(&mut client, &json!({"action": "missing"})).await;
    let frame = next_text(&mut client).await;
    let error: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(
        error.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["connectionId", "message", "requestId"]
    );
    let connection_id = error["connectionId"].as_str().unwrap();
    let request_id = error["requestId"].as_str().unwrap();
    assert_eq!(request_id.len(), 16);
    assert_eq!(
        frame,
        format!(
            r#"{{"message": "Forbidden", "connectionId":"{connection_id}", "requestId":"{request_id}"}}"#
        ),
        "byte for byte as API Gateway writes it"
    );
    send_json(&mut client, &json!({"action": "ping"})).await;
    assert_eq!(next_text(&mut client).await, "pong", "connection kept");
    gateway.shutdown().await.unwrap();
}

/// AWS: a failed integration (error or crash) → `{"message": "Internal server error",
/// "connectionId":"…", "requestId":"…"}` on either kind of route; the connection stays.
#[tokio::test]
async fn handler_errors_and_panics_answer_internal_server_error_and_keep_the_connection() {
    let fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    let id = whoami(&mut client).await;
    for route in ["fail", "panic"] {
        send_json(&mut client, &json!({"action": route})).await;
        let frame = next_text(&mut client).await;
        let error: Value = serde_json::from_str(&frame).unwrap();
        let request_id = error["requestId"].as_str().expect("a requestId");
        assert_eq!(
            frame,
            format!(
                r#"{{"message": "Internal server error", "connectionId":"{id}", "requestId":"{request_id}"}}"#
            ),
            "{route}"
        );
    }
    send_json(&mut client, &json!({"action": "echo"})).await;
    assert_eq!(next_json(&mut client).await, json!({"action": "echo"}));
}

/// AWS: past the 29 s integration timeout the caller gets `{"message": "Endpoint request
/// timed out", "connectionId":"…", "requestId":"…"}`.
#[tokio::test]
async fn slow_handlers_time_out_like_the_integration_timeout() {
    let fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    let id = whoami(&mut client).await;
    send_json(&mut client, &json!({"action": "slow"})).await;
    let frame = next_text(&mut client).await;
    let error: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(error["message"], "Endpoint request timed out");
    assert_eq!(error["connectionId"], id.as_str());
    assert!(frame.starts_with(r#"{"message": "Endpoint request timed out", "connectionId":"#));
}

/// AWS: each message is its own invocation; nothing serialises a connection's messages.
#[tokio::test]
async fn messages_of_one_connection_are_handled_concurrently_a_slow_first_does_not_hold_back_the_second(
) {
    let fixture = start(test_limits()).await;
    let mut client = fixture.connect("/local").await;
    send_json(&mut client, &json!({"action": "nap"})).await;
    send_json(&mut client, &json!({"action": "echo", "n": 2})).await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"action": "echo", "n": 2}),
        "the second message's reply does not wait for the first"
    );
    assert_eq!(next_text(&mut client).await, "napped");
}

/// Not AWS's behaviour, opt-in for tests that want determinism: one message at a time.
#[tokio::test]
async fn the_opt_in_ordered_mode_handles_one_message_at_a_time_in_arrival_order() {
    let fixture = start(test_limits().max_concurrent_messages(1)).await;
    let mut client = fixture.connect("/local").await;
    send_json(&mut client, &json!({"action": "nap"})).await;
    send_json(&mut client, &json!({"action": "echo", "n": 2})).await;
    assert_eq!(next_text(&mut client).await, "napped");
    assert_eq!(
        next_json(&mut client).await,
        json!({"action": "echo", "n": 2})
    );
}

#[tokio::test]
async fn disconnect_carries_the_client_close_code_and_reason() {
    let mut fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    let id = whoami(&mut client).await;
    client
        .close(Some(tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Library(4001),
            reason: "bye now".into(),
        }))
        .await
        .unwrap();
    let disconnect = fixture.next_event(EventType::Disconnect).await;
    assert_eq!(disconnect.connection_id.as_str(), id);
    let info = disconnect.disconnect.expect("close info");
    assert_eq!((info.status_code, info.reason.as_str()), (4001, "bye now"));
}

#[tokio::test]
async fn close_without_a_code_is_1005_and_an_abrupt_drop_is_1006() {
    let mut fixture = start(test_limits()).await;
    let mut polite = fixture.connect("/").await;
    polite.send(Message::Close(None)).await.unwrap();
    let event = fixture.next_event(EventType::Disconnect).await;
    assert_eq!(event.disconnect.unwrap().status_code, 1005);

    let rude = fixture.connect("/").await;
    drop(rude); // TCP closed with no close frame
    let event = fixture.next_event(EventType::Disconnect).await;
    assert_eq!(event.disconnect.unwrap().status_code, 1006);
}

#[tokio::test]
async fn frame_over_the_frame_limit_closes_with_1009() {
    let mut fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    client.send(Message::text("x".repeat(1025))).await.unwrap();
    assert_eq!(close_frame(&mut client).await.0, 1009);
    assert_eq!(
        fixture
            .next_event(EventType::Disconnect)
            .await
            .disconnect
            .unwrap()
            .status_code,
        1009
    );
}

#[tokio::test]
async fn message_over_the_message_limit_closes_with_1009_even_in_small_frames() {
    let mut fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    // Five 1000-byte fragments: every frame is under 1 KB, the message is over 4 KB.
    let chunk = vec![b'y'; 1000];
    client
        .send(Message::Frame(Frame::message(
            chunk.clone(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await
        .unwrap();
    for last in [false, false, false, true] {
        client
            .send(Message::Frame(Frame::message(
                chunk.clone(),
                OpCode::Data(Data::Continue),
                last,
            )))
            .await
            .unwrap();
    }
    assert_eq!(close_frame(&mut client).await.0, 1009);
    assert_eq!(
        fixture
            .next_event(EventType::Disconnect)
            .await
            .disconnect
            .unwrap()
            .status_code,
        1009
    );
}

#[tokio::test]
async fn fragmented_message_under_the_limits_is_routed_whole() {
    let fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    let body = json!({"action": "echo", "pad": "z".repeat(2000)}).to_string();
    let (first, rest) = body.as_bytes().split_at(900);
    let (second, third) = rest.split_at(900);
    client
        .send(Message::Frame(Frame::message(
            first.to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await
        .unwrap();
    client
        .send(Message::Frame(Frame::message(
            second.to_vec(),
            OpCode::Data(Data::Continue),
            false,
        )))
        .await
        .unwrap();
    client
        .send(Message::Frame(Frame::message(
            third.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, body);
}

#[tokio::test]
async fn idle_connections_close_with_1001() {
    let mut fixture = start(test_limits().idle_timeout(Duration::from_millis(300))).await;
    let mut client = fixture.connect("/").await;
    assert_eq!(
        close_frame(&mut client).await,
        (1001, "Going away".to_owned())
    );
    assert_eq!(
        fixture
            .next_event(EventType::Disconnect)
            .await
            .disconnect
            .unwrap()
            .status_code,
        1001
    );
}

#[tokio::test]
async fn activity_keeps_a_connection_open_past_the_idle_timeout() {
    let fixture = start(test_limits().idle_timeout(Duration::from_millis(400))).await;
    let mut client = fixture.connect("/").await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send_json(&mut client, &json!({"action": "echo"})).await;
        assert_eq!(next_json(&mut client).await, json!({"action": "echo"}));
    }
}

#[tokio::test]
async fn connections_close_with_1001_at_the_maximum_duration_even_when_busy() {
    let fixture = start(test_limits().max_connection_duration(Duration::from_millis(600))).await;
    let mut client = fixture.connect("/").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not closed at the maximum duration"
        );
        if client
            .send(Message::text(json!({"action": "echo"}).to_string()))
            .await
            .is_err()
        {
            panic!("socket failed before a close frame");
        }
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("reply or close")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1001);
                break;
            }
            Some(Ok(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("unexpected {other:?}"),
        }
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

struct Http(reqwest::Client);

fn http_client() -> Http {
    Http(reqwest::Client::new())
}

impl Http {
    async fn request(&self, method: &str, url: &str, body: &[u8]) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = self
            .0
            .request(method, url)
            .body(body.to_vec())
            .send()
            .await
            .expect("HTTP request");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }
}

#[tokio::test]
async fn management_post_delivers_on_both_path_forms() {
    let fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    let id = whoami(&mut client).await;
    let http = http_client();
    let posted = http
        .request(
            "POST",
            &format!("{}/@connections/{id}", fixture.http()),
            b"{\"n\":1}",
        )
        .await;
    assert_eq!(posted.status, 200);
    assert_eq!(next_text(&mut client).await, "{\"n\":1}");
    let staged = http
        .request(
            "POST",
            &format!("{}/local/@connections/{id}", fixture.http()),
            b"second",
        )
        .await;
    assert_eq!(staged.status, 200);
    assert_eq!(next_text(&mut client).await, "second");
    let binary = http
        .request(
            "POST",
            &format!("{}/@connections/{id}", fixture.http()),
            &[0xff, 0x00],
        )
        .await;
    assert_eq!(binary.status, 200);
    let frame = tokio::time::timeout(WAIT, client.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        frame,
        Message::binary(vec![0xffu8, 0x00]),
        "non-UTF-8 data arrives as a binary frame"
    );
}

/// AWS: the Management API lives at `/{stage}/@connections/{id}`; another stage is 403.
#[tokio::test]
async fn management_calls_on_another_stage_are_403_forbidden() {
    let fixture = start(test_limits()).await;
    let mut client = fixture.connect("/local").await;
    let id = whoami(&mut client).await;
    for method in ["POST", "GET", "DELETE"] {
        let answer = http_client()
            .request(
                method,
                &format!("{}/production/@connections/{id}", fixture.http()),
                b"wrong stage",
            )
            .await;
        assert_eq!(answer.status, 403, "{method}");
        assert_eq!(
            answer.header("x-amzn-errortype"),
            Some("ForbiddenException")
        );
        assert_eq!(answer.body, r#"{"message":"Forbidden"}"#);
    }
    send_json(&mut client, &json!({"action": "echo"})).await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"action": "echo"}),
        "nothing was posted, and the connection is open"
    );
}

/// AWS: every `@connections` call must be SigV4-signed. With the loopback exemption
/// turned off (as for a caller on the LAN), unsigned calls get API Gateway's 403 and
/// nothing is delivered or closed.
#[tokio::test]
async fn without_the_loopback_exemption_unsigned_management_calls_are_refused_as_on_aws() {
    let (events, _seen) = mpsc::unbounded_channel();
    let gateway = LocalGateway::new(recording_router(events))
        .management_access(ManagementAccess::default().trust_loopback(false))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback");
    let (mut client, _) = tokio_tungstenite::connect_async(gateway.stage_url())
        .await
        .expect("handshake");
    let id = whoami(&mut client).await;
    for method in ["POST", "GET", "DELETE"] {
        let answer = http_client()
            .request(
                method,
                &format!("{}/@connections/{id}", gateway.management_endpoint()),
                b"forged command",
            )
            .await;
        assert_eq!(answer.status, 403, "{method}");
        assert_eq!(
            answer.header("x-amzn-errortype"),
            Some("MissingAuthenticationTokenException"),
            "{method}"
        );
        assert_eq!(answer.body, r#"{"message":"Missing Authentication Token"}"#);
    }
    send_json(&mut client, &json!({"action": "echo"})).await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"action": "echo"}),
        "nothing was posted, and the connection is open"
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn management_latency_delays_every_answer_but_not_the_delivery() {
    let (events, _seen) = mpsc::unbounded_channel();
    let latency = Duration::from_millis(300);
    let gateway = LocalGateway::new(recording_router(events))
        .management_latency(latency)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback");
    let (mut client, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .expect("handshake");
    let id = whoami(&mut client).await;
    let url = format!("http://{}/@connections/{id}", gateway.local_addr());
    let http = http_client();
    let started = std::time::Instant::now();
    let posting = http.request("POST", &url, b"on its way");
    tokio::pin!(posting);
    let delivered = tokio::select! {
        text = next_text(&mut client) => text,
        answer = &mut posting => panic!("answered ({}) before the delivery", answer.status),
    };
    assert_eq!(delivered, "on its way");
    assert_eq!(posting.await.status, 200);
    assert!(
        started.elapsed() >= latency,
        "the answer came before the latency"
    );
    for (method, status) in [("GET", 200), ("DELETE", 204), ("POST", 410)] {
        let started = std::time::Instant::now();
        assert_eq!(http.request(method, &url, b"x").await.status, status);
        assert!(
            started.elapsed() >= latency,
            "{method} answered before the latency"
        );
    }
}

#[tokio::test]
async fn management_post_over_the_limit_is_413_and_the_connection_survives() {
    let fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    let id = whoami(&mut client).await;
    let http = http_client();
    let too_big = http
        .request(
            "POST",
            &format!("{}/@connections/{id}", fixture.http()),
            &[b'a'; 4097],
        )
        .await;
    assert_eq!(too_big.status, 413);
    assert_eq!(
        too_big.header("x-amzn-errortype"),
        Some("PayloadTooLargeException")
    );
    let at_limit = http
        .request(
            "POST",
            &format!("{}/@connections/{id}", fixture.http()),
            &[b'a'; 4096],
        )
        .await;
    assert_eq!(at_limit.status, 200);
    assert_eq!(next_text(&mut client).await.len(), 4096);
}

#[tokio::test]
async fn management_get_describes_the_connection() {
    let fixture = start(test_limits()).await;
    let mut request = fixture.gateway.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("user-agent", "probe/2".parse().unwrap());
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let id = whoami(&mut client).await;
    let got = http_client()
        .request("GET", &format!("{}/@connections/{id}", fixture.http()), b"")
        .await;
    assert_eq!(got.status, 200);
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(body["identity"]["userAgent"], "probe/2");
    let connected =
        chrono::DateTime::parse_from_rfc3339(body["connectedAt"].as_str().unwrap()).unwrap();
    let active =
        chrono::DateTime::parse_from_rfc3339(body["lastActiveAt"].as_str().unwrap()).unwrap();
    assert!(active >= connected);
}

#[tokio::test]
async fn management_delete_closes_the_socket_and_runs_disconnect() {
    let mut fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    let id = whoami(&mut client).await;
    let deleted = http_client()
        .request(
            "DELETE",
            &format!("{}/@connections/{id}", fixture.http()),
            b"",
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(close_frame(&mut client).await.0, 1000);
    let event = fixture.next_event(EventType::Disconnect).await;
    assert_eq!(event.connection_id.as_str(), id);
    let again = http_client()
        .request(
            "POST",
            &format!("{}/@connections/{id}", fixture.http()),
            b"x",
        )
        .await;
    assert_eq!(again.status, 410);
}

#[tokio::test]
async fn posts_pings_and_later_messages_are_served_while_a_slow_message_is_routed() {
    let fixture = start(test_limits().handler_timeout(Duration::from_secs(20))).await;
    let mut client = fixture.connect("/").await;
    let id = whoami(&mut client).await;
    // `slow` answers after 3 s; the two echoes do not wait for it.
    send_json(&mut client, &json!({"action": "slow"})).await;
    send_json(&mut client, &json!({"action": "echo", "n": 1})).await;
    send_json(&mut client, &json!({"action": "echo", "n": 2})).await;
    let posted = http_client()
        .request(
            "POST",
            &format!("{}/@connections/{id}", fixture.http()),
            b"meanwhile",
        )
        .await;
    assert_eq!(posted.status, 200);
    client
        .send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .expect("ping");
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let frame = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("a frame within 5 s")
            .expect("socket open")
            .expect("valid frame");
        match frame {
            Message::Text(text) => seen.push(text.as_str().to_owned()),
            Message::Pong(data) => seen.push(format!("pong {}", String::from_utf8_lossy(&data))),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let echo = |n: u8| json!({"action": "echo", "n": n}).to_string();
    let mut early = seen[..4].to_vec();
    early.sort();
    let mut expected = vec![
        "meanwhile".to_owned(),
        "pong still there?".to_owned(),
        echo(1),
        echo(2),
    ];
    expected.sort();
    assert_eq!(
        early, expected,
        "the post, the pong and the later messages do not wait for the slow route"
    );
    assert_eq!(seen[4], "too late");
}

#[tokio::test]
async fn handler_disconnect_through_the_sink_closes_the_socket() {
    let mut fixture = start(test_limits()).await;
    let mut client = fixture.connect("/").await;
    send_json(&mut client, &json!({"action": "close_me"})).await;
    assert_eq!(close_frame(&mut client).await.0, 1000);
    fixture.next_event(EventType::Disconnect).await;
}

#[tokio::test]
async fn unknown_ids_are_410_gone_exactly_as_aws_answers() {
    let fixture = start(test_limits()).await;
    for method in ["POST", "GET", "DELETE"] {
        let response = http_client()
            .request(
                method,
                &format!("{}/@connections/nobody=", fixture.http()),
                b"x",
            )
            .await;
        assert_eq!(response.status, 410, "{method}");
        assert_eq!(
            response.header("x-amzn-errortype"),
            Some("GoneException"),
            "{method}"
        );
        let body: Value = serde_json::from_str(&response.body).expect("JSON error body");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("nobody=")),
            "{method}: {body}"
        );
    }
}

#[tokio::test]
async fn posting_to_a_connection_still_inside_connect_is_gone() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<u16>();
    let gateway_addr: Arc<std::sync::OnceLock<String>> = Arc::default();
    let addr_for_handler = gateway_addr.clone();
    let gateway = LocalGateway::new(Router::new().on_connect(
        move |_ctx: Context, request: Request| {
            let seen_tx = seen_tx.clone();
            let addr = addr_for_handler.clone();
            async move {
                let url = format!(
                    "http://{}/@connections/{}",
                    addr.get().unwrap(),
                    request.connection_id
                );
                let response = http_client().request("POST", &url, b"too early").await;
                let _ = seen_tx.send(response.status);
                Ok(Reply::ok())
            }
        },
    ))
    .bind("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    gateway_addr.set(gateway.local_addr().to_string()).unwrap();
    let (_client, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .unwrap();
    assert_eq!(seen.recv().await, Some(410));
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_gets_serve_assets_and_rest_routes() {
    let fixture = start(test_limits()).await;
    let http = http_client();
    let index = http
        .request("GET", &format!("{}/", fixture.http()), b"")
        .await;
    assert_eq!((index.status, index.body.as_str()), (200, "<h1>hello</h1>"));
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let script = http
        .request("GET", &format!("{}/app.js", fixture.http()), b"")
        .await;
    assert_eq!(script.status, 200);
    assert!(script
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    let health = http
        .request("GET", &format!("{}/api/health", fixture.http()), b"")
        .await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    for missing in ["/missing.css", "/../Cargo.toml", "/%2e%2e/Cargo.toml"] {
        let response = http
            .request("GET", &format!("{}{missing}", fixture.http()), b"")
            .await;
        assert_eq!(response.status, 404, "{missing}");
    }
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001_and_runs_each_disconnect() {
    let fixture = start(test_limits()).await;
    let mut first = fixture.connect("/").await;
    let mut second = fixture.connect("/local").await;
    whoami(&mut first).await;
    whoami(&mut second).await;
    let Fixture {
        gateway,
        mut events,
    } = fixture;
    let stopping = tokio::spawn(gateway.shutdown());
    assert_eq!(close_frame(&mut first).await.0, 1001);
    assert_eq!(close_frame(&mut second).await.0, 1001);
    stopping.await.unwrap().expect("clean shutdown");
    let mut disconnects = 0;
    while let Ok(event) = events.try_recv() {
        if event.event_type == EventType::Disconnect {
            assert_eq!(event.disconnect.unwrap().status_code, 1001);
            disconnects += 1;
        }
    }
    assert_eq!(
        disconnects, 2,
        "every connection got its $disconnect before shutdown returned"
    );
}

#[tokio::test]
async fn router_rest_routes_are_served_over_plain_http() {
    let fixture = start(test_limits()).await;
    let http = http_client();
    let got = http
        .request(
            "GET",
            &format!(
                "{}/history/esp32-01?since=2024-01-01T00%3A00%3A00Z",
                fixture.http()
            ),
            b"",
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(
        body,
        json!({"device": "esp32-01", "since": "2024-01-01T00:00:00Z", "tags": [], "x-tag": []})
    );
    let repeated = http
        .0
        .get(format!("{}/history/esp%2001?tag=a&tag=b", fixture.http()))
        .header("x-tag", "one")
        .header("x-tag", "two")
        .send()
        .await
        .expect("HTTP request");
    let body: Value = serde_json::from_str(&repeated.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"device": "esp 01", "since": null, "tags": ["a", "b"], "x-tag": ["one", "two"]}),
        "every value of a repeated query parameter and header reaches the handler"
    );
    let cookies = http
        .request("OPTIONS", &format!("{}/readings", fixture.http()), b"")
        .await;
    assert_eq!(
        cookies.headers.get_all("set-cookie").iter().count(),
        2,
        "both set-cookie headers reach the client"
    );
    let posted = http
        .request(
            "POST",
            &format!("{}/history/esp32-01", fixture.http()),
            b"payload",
        )
        .await;
    assert_eq!((posted.status, posted.body.as_str()), (201, "payload"));
    let wrong = http
        .request(
            "DELETE",
            &format!("{}/history/esp32-01", fixture.http()),
            b"",
        )
        .await;
    assert_eq!(wrong.status, 405);
    let broken = http
        .request("GET", &format!("{}/broken", fixture.http()), b"")
        .await;
    assert_eq!(broken.status, 500);
    assert!(broken.body.contains("Internal server error"));
}

#[tokio::test]
async fn rest_routes_on_a_single_segment_path_answer_every_method_they_register() {
    let fixture = start(test_limits()).await;
    let http = http_client();
    let preflight = http
        .request("OPTIONS", &format!("{}/readings", fixture.http()), b"")
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    let posted = http
        .request("POST", &format!("{}/readings", fixture.http()), b"x")
        .await;
    assert_eq!((posted.status, posted.body.as_str()), (201, "x"));
    let wrong = http
        .request("DELETE", &format!("{}/readings", fixture.http()), b"")
        .await;
    assert_eq!(wrong.status, 405);
}
