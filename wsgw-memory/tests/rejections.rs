//! Client rejections through the LocalGateway, with real clients: an error frame on a
//! WebSocket route (the connection stays open, the invocation does not fail), a refused
//! handshake on `$connect`, a 4xx on a REST route: what the router answers everywhere.

#[path = "support/clients.rs"]
mod clients;

use clients::next_text;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;
use wsgw_core::metrics::Counter;
use wsgw_core::{Context, HttpRequest, HttpRequestExt, Json, Rejection, Request, Router};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::testing::ws::send_json;

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

fn router() -> Router {
    Router::new()
        .on_connect(|_ctx: Context, request: Request| async move {
            match request.query_param("room") {
                Some(_) => Ok(()),
                None => Err(Rejection::new("no_room").with_status(403).into()),
            }
        })
        .route("say", |ctx: Context, request: Request| async move {
            let Say { text } = request.json()?;
            ctx.reply(&json!({ "type": "said", "text": text })).await
        })
        .two_way_route("ping", |_ctx: Context, _request: Request| async {
            Ok(Json(json!({ "type": "pong" })))
        })
        .http(
            "GET",
            "/rooms/{room}",
            |_ctx: Context, request: HttpRequest| async move {
                match request.path_param("room") {
                    Some("lobby") => Ok(Json(json!({ "room": "lobby" }))),
                    _ => Err(Rejection::new("no_such_room").with_status(404).into()),
                }
            },
        )
}

async fn start() -> RunningGateway {
    LocalGateway::new(router())
        .bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binds loopback")
}

#[tokio::test]
async fn a_rejection_reaches_the_client_as_its_error_frame_and_the_connection_stays_open() {
    let gateway = start().await;
    let (mut client, _) =
        tokio_tungstenite::connect_async(format!("{}?room=lobby", gateway.stage_url()))
            .await
            .expect("connects");

    send_json(&mut client, &json!({"action": "say", "text": 7})).await;
    let frame: Value = serde_json::from_str(&next_text(&mut client).await).expect("JSON");
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["error"], "invalid_type");
    assert_eq!(frame["field"], "text");

    send_json(&mut client, &json!({"action": "ping"})).await;
    assert_eq!(next_text(&mut client).await, r#"{"type":"pong"}"#);
    let metrics = gateway.metrics();
    assert_eq!(metrics.get(Counter::Messages, "say"), 1);
    assert_eq!(
        metrics.total(Counter::HandlerErrors),
        0,
        "not a failed integration"
    );
    gateway.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_connect_rejection_refuses_the_handshake_with_its_status() {
    let gateway = start().await;
    match tokio_tungstenite::connect_async(gateway.stage_url()).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| ())),
    }
    gateway.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_rest_rejection_answers_its_status_with_the_frame_as_json() {
    let gateway = start().await;
    let url = format!("http://{}/rooms/attic", gateway.local_addr());
    let response = reqwest::get(&url).await.expect("answers");
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = serde_json::from_str(&response.text().await.expect("a body")).expect("JSON");
    assert_eq!(body, json!({"type": "error", "error": "no_such_room"}));
    gateway.shutdown().await.expect("stops");
}
