//! Who gets in, on the LocalGateway over loopback with real WebSocket clients: the ready
//! API-key authorizer of `wsgw_core::auth` decides the handshake, a denied client is
//! refused with the authorizer's status and leaves nothing in the store, and an allowed
//! client's principal reaches `$connect`, every message route, `$default` and
//! `$disconnect`.
#![cfg(feature = "gateway")]

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use wsgw_core::auth::{ApiKeyAuthorizer, Principal};
use wsgw_core::metrics::Counter;
use wsgw_core::{
    Authorization, Authorizer, Connection, Context, EventType, Reply, Request, Router,
};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};
use wsgw_memory::MemoryStore;

const WAIT: Duration = Duration::from_secs(5);

/// (event type, route key, principal) of every event a handler saw.
type Seen = mpsc::UnboundedSender<(EventType, String, Option<Principal>)>;

fn keys() -> ApiKeyAuthorizer {
    ApiKeyAuthorizer::new()
        .key("k-ada-1", "ada", ["operator"])
        .and_then(|keys| keys.key("k-bob-2", "bob", ["viewer"]))
        .expect("two distinct keys")
}

/// Denies with 403 a valid key without the `operator` role, on top of the key check.
struct OperatorsOnly(ApiKeyAuthorizer);

#[async_trait::async_trait]
impl Authorizer<Seen> for OperatorsOnly {
    async fn authorize(
        &self,
        ctx: Context<Seen>,
        request: Request,
    ) -> wsgw_core::Result<Authorization> {
        Ok(match self.0.authorize(ctx, request).await? {
            Authorization::Allow(context)
                if Principal::from_context(&context).is_some_and(|p| p.has_role("operator")) =>
            {
                Authorization::Allow(context)
            }
            Authorization::Allow(_) => Authorization::Deny(403),
            deny => deny,
        })
    }

    fn subprotocol(&self) -> Option<&str> {
        Authorizer::<Seen>::subprotocol(&self.0)
    }
}

async fn seen(ctx: Context<Seen>, request: Request) -> wsgw_core::Result<Reply> {
    let _ = ctx.state().send((
        request.event_type,
        request.route_key.clone(),
        Principal::of(&request),
    ));
    Ok(Reply::ok())
}

async fn start(
    authorizer: impl Authorizer<Seen>,
) -> (
    RunningGateway,
    Arc<MemoryStore>,
    mpsc::UnboundedReceiver<(EventType, String, Option<Principal>)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let store = Arc::new(MemoryStore::new());
    let router = Router::with_state(tx)
        .authorizer(authorizer)
        .on_connect(|ctx: Context<Seen>, request: Request| async move {
            ctx.store()
                .put(Connection::new(request.connection_id.clone()))
                .await?;
            seen(ctx, request).await
        })
        .on_disconnect(|ctx: Context<Seen>, request: Request| async move {
            ctx.store().delete(&request.connection_id).await?;
            seen(ctx, request).await
        })
        .two_way_route(
            "whoami",
            |ctx: Context<Seen>, request: Request| async move {
                seen(ctx, request.clone()).await?;
                Reply::json(&json!({ "principal": Principal::of(&request).map(|p| p.id) }))
            },
        )
        .on_default(seen);
    let gateway = LocalGateway::new(router)
        .with_store(store.clone())
        .bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    (gateway, store, rx)
}

async fn refused_with(url: String) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn no_key_or_a_wrong_key_is_refused_with_401_and_nothing_is_stored() {
    let (gateway, store, mut events) = start(keys()).await;
    let url = gateway.ws_url();
    assert_eq!(refused_with(format!("{url}/")).await, 401);
    assert_eq!(refused_with(format!("{url}/?token=k-ada-")).await, 401);
    assert_eq!(refused_with(format!("{url}/?token=k-ada-11")).await, 401);
    assert_eq!(refused_with(format!("{url}/?token=")).await, 401);
    let mut wrong_header = format!("{url}/").into_client_request().expect("request");
    wrong_header.headers_mut().insert(
        "authorization",
        "Bearer k-nobody".parse().expect("header value"),
    );
    match tokio_tungstenite::connect_async(wrong_header).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    assert!(store.is_empty(), "a refused client leaves no record");
    assert!(
        events.try_recv().is_err(),
        "$connect never ran for a refused client"
    );
    assert_eq!(
        gateway
            .metrics()
            .get(Counter::ConnectsRefused, wsgw_core::CONNECT),
        5
    );
    // The right key still gets in afterwards.
    let (_client, _) = tokio_tungstenite::connect_async(format!("{url}/?token=k-ada-1"))
        .await
        .expect("allowed");
    let (event, _, principal) = events.recv().await.expect("connect");
    assert_eq!(event, EventType::Connect);
    assert_eq!(principal.map(|p| p.id).as_deref(), Some("ada"));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_valid_key_without_the_role_is_refused_with_403_and_nothing_is_stored() {
    let (gateway, store, mut events) = start(OperatorsOnly(keys())).await;
    let url = gateway.ws_url();
    assert_eq!(refused_with(format!("{url}/?token=k-bob-2")).await, 403);
    assert_eq!(refused_with(format!("{url}/?token=k-eve")).await, 401);
    assert!(store.is_empty());
    assert!(events.try_recv().is_err());
    let (_client, _) = tokio_tungstenite::connect_async(format!("{url}/?token=k-ada-1"))
        .await
        .expect("the operator gets in");
    assert_eq!(events.recv().await.map(|e| e.0), Some(EventType::Connect));
}

#[tokio::test]
async fn the_principal_reaches_every_route_and_disconnect_and_the_subprotocol_is_echoed() {
    let (gateway, store, mut events) = start(keys()).await;
    // A browser sends its key as the second subprotocol.
    let mut request = gateway.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "wsgw.bearer, k-ada-1".parse().expect("header value"),
    );
    let (mut client, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("allowed (tungstenite fails a handshake whose subprotocol is not echoed)");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("wsgw.bearer"),
        "the marker is echoed, never the key"
    );
    let ada = Some(Principal::new("ada", ["operator"]));
    assert_eq!(
        events.recv().await,
        Some((EventType::Connect, "$connect".to_owned(), ada.clone()))
    );

    client
        .send(Message::text(r#"{"action":"whoami"}"#))
        .await
        .expect("sends");
    let reply = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("a reply in time")
        .expect("open")
        .expect("a frame");
    let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
    assert_eq!(reply, json!({"principal": "ada"}));
    assert_eq!(
        events.recv().await,
        Some((EventType::Message, "whoami".to_owned(), ada.clone()))
    );

    client.send(Message::text("not json")).await.expect("sends");
    assert_eq!(
        events.recv().await,
        Some((EventType::Message, "$default".to_owned(), ada.clone()))
    );

    client.close(None).await.expect("closes");
    let disconnect = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("$disconnect in time");
    assert_eq!(
        disconnect,
        Some((EventType::Disconnect, "$disconnect".to_owned(), ada))
    );
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_subprotocol_key_that_is_wrong_is_refused_before_any_subprotocol_is_chosen() {
    let (gateway, store, _events) = start(keys()).await;
    let mut request = gateway.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "wsgw.bearer, k-wrong".parse().expect("header value"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            assert!(response.headers().get("sec-websocket-protocol").is_none());
        }
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    assert!(store.is_empty());
}
