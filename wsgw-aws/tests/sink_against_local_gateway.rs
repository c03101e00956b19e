//! `ApiGatewaySink` (the real `aws-sdk-apigatewaymanagement` client) against the
//! LocalGateway's `@connections` endpoint, with real WebSocket clients receiving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::config::Credentials;
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsgw_aws::config::{local_sdk_config, local_sdk_config_signing_with};
use wsgw_aws::{ApiGatewaySink, ManagementApi};
use wsgw_core::conformance::{self, SinkProbe};
use wsgw_core::{
    Backends, Connection, ConnectionId, ConnectionStore, Context, Error, MessageSink, Payload,
    Reply, Request, Router,
};
use wsgw_memory::gateway::{
    Limits, LocalGateway, ManagementAccess, ManagementCredentials, RouterIntegration,
    RunningGateway,
};
use wsgw_memory::MemoryStore;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const LIMIT: usize = 4096;

async fn whoami(_ctx: Context, request: Request) -> wsgw_core::Result<Reply> {
    Reply::json(&json!({ "connection_id": request.connection_id }))
}

async fn gateway() -> RunningGateway {
    LocalGateway::new(Router::new().two_way_route("whoami", whoami))
        .limits(Limits::default().max_message_bytes(LIMIT))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback")
}

fn sink_for(gateway: &RunningGateway) -> ApiGatewaySink {
    ApiGatewaySink::new(&local_sdk_config(), gateway.management_endpoint()).with_max_payload(LIMIT)
}

/// Opens real WebSocket clients on the gateway and reads what reaches them.
struct WebSocketProbe {
    url: String,
    clients: Mutex<HashMap<ConnectionId, Client>>,
}

impl WebSocketProbe {
    fn new(gateway: &RunningGateway) -> Self {
        WebSocketProbe {
            url: gateway.ws_url(),
            clients: Mutex::default(),
        }
    }
}

#[async_trait]
impl SinkProbe for WebSocketProbe {
    async fn open(&self) -> ConnectionId {
        let (mut client, _) = tokio_tungstenite::connect_async(&self.url)
            .await
            .expect("connect");
        client
            .send(Message::text(r#"{"action":"whoami"}"#))
            .await
            .expect("send whoami");
        let reply = client.next().await.expect("reply").expect("frame");
        let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("JSON");
        let id = ConnectionId::new(reply["connection_id"].as_str().expect("id"));
        self.clients.lock().await.insert(id.clone(), client);
        id
    }

    async fn next_message(&self, id: &ConnectionId, timeout: Duration) -> Option<Payload> {
        let mut clients = self.clients.lock().await;
        let client = clients.get_mut(id)?;
        loop {
            match tokio::time::timeout(timeout, client.next()).await.ok()?? {
                Ok(Message::Text(text)) => return Some(Payload::text(text.as_str())),
                Ok(Message::Binary(data)) => return Some(Payload::binary(data)),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                _ => return None,
            }
        }
    }

    async fn closed(&self, id: &ConnectionId, timeout: Duration) -> bool {
        let mut clients = self.clients.lock().await;
        let Some(client) = clients.get_mut(id) else {
            return false;
        };
        tokio::time::timeout(timeout, async {
            loop {
                match client.next().await {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return true,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

#[tokio::test]
async fn sdk_sink_passes_the_sink_suite_against_the_local_gateway() {
    let gateway = gateway().await;
    let sink = sink_for(&gateway);
    let probe = WebSocketProbe::new(&gateway);
    conformance::message_sink_suite(&sink, &probe, LIMIT).await;
    gateway.shutdown().await.unwrap();
}

/// A gateway that checks every `@connections` signature, loopback included: what a
/// caller on the LAN meets (the loopback exemption is the only thing turned off).
async fn strict_gateway(credentials: ManagementCredentials) -> RunningGateway {
    LocalGateway::new(Router::new().two_way_route("whoami", whoami))
        .limits(Limits::default().max_message_bytes(LIMIT))
        .management_access(ManagementAccess::new(credentials).trust_loopback(false))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback")
}

fn signing_with(access_key_id: &str, secret: &str) -> aws_config::SdkConfig {
    local_sdk_config_signing_with(Credentials::new(access_key_id, secret, None, None, "test"))
}

/// AWS: every `@connections` call is SigV4-signed and checked. The real SDK client,
/// signing with the key pair the gateway knows, passes the whole sink suite.
#[tokio::test]
async fn the_sdk_signing_with_the_gateways_key_passes_the_sink_suite_when_every_call_is_checked() {
    let gateway = strict_gateway(ManagementCredentials::generate()).await;
    let credentials = gateway.management_access().credentials().clone();
    let sink = ApiGatewaySink::new(
        &signing_with(credentials.access_key_id(), credentials.secret_access_key()),
        gateway.management_endpoint(),
    )
    .with_max_payload(LIMIT);
    let probe = WebSocketProbe::new(&gateway);
    conformance::message_sink_suite(&sink, &probe, LIMIT).await;
    gateway.shutdown().await.unwrap();
}

/// AWS: a wrong secret is `InvalidSignatureException`, an unknown key
/// `UnrecognizedClientException`, both HTTP 403; nothing is delivered or closed.
#[tokio::test]
async fn the_sdk_signing_with_another_secret_or_key_is_refused_403_and_nothing_happens() {
    let gateway =
        strict_gateway(ManagementCredentials::new("AKIDLOCALGATEWAY", "the-secret")).await;
    let probe = WebSocketProbe::new(&gateway);
    let id = probe.open().await;
    for (access_key_id, secret, expected) in [
        ("AKIDLOCALGATEWAY", "a-guess", "InvalidSignatureException"),
        (
            "AKIDSOMEONEELSE",
            "the-secret",
            "UnrecognizedClientException",
        ),
    ] {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&signing_with(
            access_key_id,
            secret,
        ))
        .endpoint_url(gateway.management_endpoint())
        .build();
        let client = aws_sdk_apigatewaymanagement::Client::from_conf(config);
        let error = client
            .post_to_connection()
            .connection_id(id.as_str())
            .data(Blob::new("forged command"))
            .send()
            .await
            .expect_err("refused");
        assert_eq!(
            error.raw_response().map(|raw| raw.status().as_u16()),
            Some(403),
            "{error:?}"
        );
        assert_eq!(error.code(), Some(expected), "{error:?}");
        let deleted = client
            .delete_connection()
            .connection_id(id.as_str())
            .send()
            .await;
        assert!(deleted.is_err(), "DELETE refused too");
    }
    assert_eq!(
        probe.next_message(&id, Duration::from_millis(300)).await,
        None,
        "nothing was delivered"
    );
    assert!(
        !probe.closed(&id, Duration::from_millis(100)).await,
        "the connection is still open"
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn gateway_413_maps_to_payload_too_large() {
    let gateway = gateway().await;
    // The sink allows more than the gateway: the gateway's own 413 must map.
    let sink = sink_for(&gateway).with_max_payload(LIMIT * 4);
    let probe = WebSocketProbe::new(&gateway);
    let id = probe.open().await;
    match sink.send(&id, Payload::text("z".repeat(LIMIT + 1))).await {
        Err(Error::PayloadTooLarge { size, .. }) => assert_eq!(size, LIMIT + 1),
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn handlers_broadcast_through_the_sdk_sink_into_the_same_gateway() {
    // The deployed topology on a laptop: handlers post through the Management API
    // (SigV4-signed HTTP) back into the gateway, which delivers to the sockets. The
    // gateway checks every signature, as AWS does, and the in-process sink signs with
    // the same key pair the gateway knows.
    let credentials = ManagementCredentials::generate();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/local", listener.local_addr().unwrap());
    let sdk_sink: Arc<dyn MessageSink> = Arc::new(ApiGatewaySink::new(
        &signing_with(credentials.access_key_id(), credentials.secret_access_key()),
        endpoint,
    ));
    let store = Arc::new(MemoryStore::new());
    let backends = Backends::new(store.clone(), sdk_sink);
    let router = Router::new()
        .on_connect(|ctx: Context, request: Request| async move {
            ctx.store()
                .put(Connection::new(request.connection_id).with_group("all"))
                .await?;
            Ok(Reply::ok())
        })
        .on_disconnect(|ctx: Context, request: Request| async move {
            ctx.store().delete(&request.connection_id).await?;
            Ok(Reply::ok())
        })
        .two_way_route("shout", |ctx: Context, request: Request| async move {
            let report = ctx
                .broadcast_payload(request.body.clone().unwrap())
                .to_group("all")
                .await?;
            Reply::json(
                &json!({ "delivered": report.delivered.len(), "pruned": report.pruned.len() }),
            )
        });
    // The seam `wsgw local --template` plugs into: an integration whose handlers post
    // through the gateway's @connections, as functions do deployed.
    let gateway = LocalGateway::for_integration(RouterIntegration::new(router, backends))
        .management_access(ManagementAccess::new(credentials).trust_loopback(false))
        .serve_on(listener)
        .unwrap();
    let (mut a, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .unwrap();
    let (mut b, _) = tokio_tungstenite::connect_async(gateway.ws_url())
        .await
        .unwrap();
    // A third connection is recorded in the store but gone from the gateway: pruned.
    store
        .put(Connection::new(ConnectionId::new("stale-connection=")).with_group("all"))
        .await
        .unwrap();

    let shout = r#"{"action":"shout","text":"hello"}"#;
    a.send(Message::text(shout)).await.unwrap();
    let mut a_seen = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(10), a.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        a_seen.push(message.into_text().unwrap().as_str().to_owned());
    }
    a_seen.sort();
    assert_eq!(
        a_seen,
        vec![shout.to_owned(), r#"{"delivered":2,"pruned":1}"#.to_owned()]
    );
    let at_b = tokio::time::timeout(Duration::from_secs(10), b.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(at_b.into_text().unwrap().as_str(), shout);
    assert!(
        store
            .get(&ConnectionId::new("stale-connection="))
            .await
            .unwrap()
            .is_none(),
        "gone connection pruned"
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_an_endpoint_the_sink_says_how_to_configure_one() {
    let api = ManagementApi::new(local_sdk_config());
    let error = api
        .sink_for_request("", "prod")
        .send(&ConnectionId::new("a="), Payload::text("x"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"),
        "{error}"
    );
}

/// An endpoint answering every request with a fixed status, headers and body, like
/// emulators that do not follow AWS's error format.
async fn fixed_answer(status: u16, error_type: Option<&'static str>, body: &'static str) -> String {
    use wsgw_memory::gateway::axum;
    let app = axum::Router::new().fallback(move || async move {
        let mut response = axum::response::Response::new(axum::body::Body::from(body));
        *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
        if let Some(error_type) = error_type {
            response
                .headers_mut()
                .insert("x-amzn-errortype", error_type.parse().unwrap());
        }
        response
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/local")
}

#[tokio::test]
async fn a_bare_410_without_aws_error_headers_is_gone() {
    let endpoint = fixed_answer(410, None, "").await;
    let sink = ApiGatewaySink::new(&local_sdk_config(), endpoint);
    let error = sink
        .send(&ConnectionId::new("x="), Payload::text("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Gone { connection_id } if connection_id.as_str() == "x="),
        "{error:?}"
    );
}

#[tokio::test]
async fn forbidden_names_the_missing_permission() {
    let endpoint = fixed_answer(
        403,
        Some("ForbiddenException"),
        r#"{"message":"Forbidden"}"#,
    )
    .await;
    let sink = ApiGatewaySink::new(&local_sdk_config(), endpoint);
    let error = sink
        .send(&ConnectionId::new("x="), Payload::text("x"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("execute-api:ManageConnections"),
        "{error}"
    );
}

#[tokio::test]
async fn limit_exceeded_is_retried_by_the_sdk_then_throttled() {
    let endpoint = fixed_answer(
        429,
        Some("LimitExceededException"),
        r#"{"message":"slow down"}"#,
    )
    .await;
    let config = local_sdk_config()
        .into_builder()
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    let sink = ApiGatewaySink::new(&config, endpoint);
    let error = sink
        .send(&ConnectionId::new("x="), Payload::text("x"))
        .await
        .unwrap_err();
    assert!(error.is_throttled(), "{error:?}");
}
