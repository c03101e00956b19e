//! A handler that panics, served locally and as deployed, with the same outcome: the
//! invocation fails as a failed integration does (the caller gets API Gateway's
//! "Internal server error"), the failure names its kind (`errorType` `wsgw::Panic`), and
//! everything else goes on: other connections' handlers in flight finish, the panicking
//! client's connection stays open, and a Lambda instance serves its next invocation
//! without a restart (the release profile unwinds; see `Cargo.toml`).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use wsgw_aws::lambda::LambdaApp;
use wsgw_aws::ManagementApi;
use wsgw_core::{Context, Payload, Reply, Request, Router};
use wsgw_memory::gateway::{Invocation, LambdaRuntimeEmulator, LocalGateway, ManagementRecorder};
use wsgw_memory::MemoryStore;

const WAIT: Duration = Duration::from_secs(10);

async fn boom(_ctx: Context, _request: Request) -> wsgw_core::Result<Reply> {
    panic!("boom")
}

/// Takes a while, then posts to its caller: work in flight while another handler panics.
async fn slow(ctx: Context, request: Request) -> wsgw_core::Result<Reply> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctx.sink()
        .send(&request.connection_id, Payload::text("slow done"))
        .await?;
    Ok(Reply::ok())
}

async fn ping(ctx: Context, request: Request) -> wsgw_core::Result<Reply> {
    ctx.sink()
        .send(&request.connection_id, Payload::text("pong"))
        .await?;
    Ok(Reply::ok())
}

fn router() -> Router {
    Router::new()
        .route("boom", boom)
        .route("slow", slow)
        .route("ping", ping)
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(client: &mut Client, action: &str) {
    client
        .send(Message::text(json!({ "action": action }).to_string()))
        .await
        .expect("sends");
}

async fn next_text(client: &mut Client) -> String {
    loop {
        match tokio::time::timeout(WAIT, client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return text.to_string(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn locally_a_panic_answers_internal_server_error_and_other_work_goes_on() {
    let gateway = LocalGateway::new(router())
        .bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binds loopback");
    let (mut patient, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .expect("connects");
    let (mut panicking, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .expect("connects");

    send(&mut patient, "slow").await;
    send(&mut panicking, "boom").await;

    let failure: Value = serde_json::from_str(&next_text(&mut panicking).await).expect("JSON");
    assert_eq!(failure["message"], "Internal server error");
    assert!(failure["connectionId"].is_string() && failure["requestId"].is_string());
    assert_eq!(
        next_text(&mut patient).await,
        "slow done",
        "work in flight finished"
    );
    send(&mut panicking, "ping").await;
    assert_eq!(
        next_text(&mut panicking).await,
        "pong",
        "the connection stays open"
    );
    gateway.shutdown().await.expect("stops");
}

fn message(route: &str) -> Value {
    json!({
        "requestContext": {
            "routeKey": route,
            "eventType": "MESSAGE",
            "messageId": format!("msg-{route}"),
            "messageDirection": "IN",
            "stage": "production",
            "connectedAt": 1795336800000i64,
            "requestTimeEpoch": 1795336801234i64,
            "identity": { "sourceIp": "203.0.113.10" },
            "requestId": format!("req-{route}"),
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "connectionId": "GXLKAfX1FiACHqQ=",
            "apiId": "abc123"
        },
        "body": json!({ "action": route }).to_string(),
        "isBase64Encoded": false
    })
}

/// The Lambda runtime loop itself (`LambdaApp::run`, what the runner ends in), in
/// this process, polling a Runtime API on loopback as it does on Lambda.
#[tokio::test]
async fn deployed_a_panic_fails_its_invocation_as_wsgw_panic_and_the_instance_keeps_serving() {
    let runtime = LambdaRuntimeEmulator::start().await.expect("runtime API");
    let management = ManagementRecorder::start().await.expect("@connections");
    // This test file is its own process and the only test setting these.
    for (name, value) in runtime.function_env() {
        std::env::set_var(name, value);
    }
    std::env::set_var("WSGW_METRICS", "off");
    let management_api = ManagementApi::new(wsgw_aws::config::local_sdk_config())
        .with_endpoint(management.endpoint());
    let app = LambdaApp::new(router())
        .with_store(Arc::new(MemoryStore::new()))
        .with_management(management_api);
    let serving = tokio::spawn(app.run());

    let failed = runtime.invoke(message("boom"), WAIT).await;
    match failed {
        Some(Invocation::Error(error)) => {
            assert_eq!(error["errorType"], "wsgw::Panic", "{error}");
            assert_eq!(
                error["errorMessage"], "handler error: the handler panicked: boom",
                "{error}"
            );
        }
        other => panic!("expected the invocation to fail, got {other:?}"),
    }
    // The same runtime loop answers the next invocations, the handler's posts included.
    for route in ["ping", "slow"] {
        match runtime.invoke(message(route), WAIT).await {
            Some(Invocation::Response(response)) => assert_eq!(response["statusCode"], 200),
            other => panic!("{route}: expected a response, got {other:?}"),
        }
    }
    let posted: Vec<String> = management
        .take_calls()
        .iter()
        .map(|call| String::from_utf8_lossy(&call.body).into_owned())
        .collect();
    assert_eq!(posted, ["pong", "slow done"]);
    assert!(!serving.is_finished(), "the runtime loop is still running");
    serving.abort();
}
