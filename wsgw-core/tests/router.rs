//! Route selection and dispatch, as API Gateway does it.

use std::sync::Arc;

use serde_json::json;
use wsgw_core::{
    Authorization, ConnectionId, Context, Error, EventType, MockConnectionStore, MockMessageSink,
    Payload, Reply, Request, RouteSelection, Router,
};

fn router() -> Router {
    Router::new(
        Arc::new(MockConnectionStore::new()),
        Arc::new(MockMessageSink::new()),
    )
}

fn id() -> ConnectionId {
    ConnectionId::new("abc=")
}

async fn route_name(_ctx: Context, request: Request) -> wsgw_core::Result<Reply> {
    Ok(Reply::with_body(request.route_key))
}

fn body(reply: &Reply) -> &str {
    reply.body.as_ref().and_then(Payload::as_text).unwrap_or("")
}

#[tokio::test]
async fn messages_go_to_the_route_named_by_the_action_field() {
    let router = router()
        .route("sendmessage", route_name)
        .on_default(route_name);
    let reply = router
        .handle(Request::message(id(), r#"{"action":"sendmessage"}"#))
        .await
        .unwrap();
    assert_eq!(body(&reply), "sendmessage");
}

#[tokio::test]
async fn unmatched_non_json_and_binary_messages_go_to_default() {
    let router = router()
        .route("sendmessage", route_name)
        .on_default(route_name);
    for message in [
        Payload::text(r#"{"action":"other"}"#),
        Payload::text(r#"{"no_action":1}"#),
        Payload::text("plain text"),
        Payload::text(r#"{"action":{"nested":"object"}}"#),
        Payload::binary(vec![1u8, 2, 3]),
    ] {
        let reply = router
            .handle(Request::message(id(), message.clone()))
            .await
            .unwrap();
        assert_eq!(body(&reply), "$default", "{message:?}");
    }
}

#[tokio::test]
async fn nested_selection_expressions_and_non_string_values_compare_as_strings() {
    let router = router()
        .route_selection(RouteSelection::parse("$request.body.meta.kind").unwrap())
        .route("42", route_name)
        .route("true", route_name)
        .on_default(route_name);
    let reply = router
        .handle(Request::message(id(), r#"{"meta":{"kind":42}}"#))
        .await
        .unwrap();
    assert_eq!(body(&reply), "42");
    let reply = router
        .handle(Request::message(id(), r#"{"meta":{"kind":true}}"#))
        .await
        .unwrap();
    assert_eq!(body(&reply), "true");
    let reply = router
        .handle(Request::message(id(), r#"{"action":"42"}"#))
        .await
        .unwrap();
    assert_eq!(body(&reply), "$default", "the old path no longer selects");
}

#[tokio::test]
async fn invalid_selection_expressions_are_rejected_with_a_reason() {
    for bad in [
        "$request.header.x",
        "$request.body",
        "$request.body.",
        "$request.body.a..b",
    ] {
        let error = RouteSelection::parse(bad).unwrap_err();
        assert!(error.to_string().contains(bad), "{error}");
    }
}

#[tokio::test]
async fn without_default_an_unmatched_message_gets_a_403_error_reply() {
    let router = router().route("ping", route_name);
    let reply = router
        .handle(Request::message(id(), r#"{"action":"pong"}"#))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    let error: serde_json::Value = serde_json::from_str(body(&reply)).unwrap();
    assert_eq!(error["message"], "Forbidden");
    assert_eq!(error["connectionId"], "abc=");
    assert!(error["detail"].as_str().unwrap().contains("`pong`"));
}

#[tokio::test]
async fn a_route_key_set_by_the_gateway_wins_over_selection() {
    let router = router().route("a", route_name).route("b", route_name);
    let request = Request::message(id(), r#"{"action":"a"}"#).with_route_key("b");
    assert_eq!(body(&router.handle(request).await.unwrap()), "b");
}

#[tokio::test]
async fn connect_and_disconnect_without_handlers_succeed() {
    let router = router();
    assert_eq!(
        router.handle(Request::connect(id())).await.unwrap().status,
        200
    );
    assert_eq!(
        router
            .handle(Request::disconnect(id(), 1000, ""))
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn handler_errors_are_returned_to_the_gateway() {
    let router = router().route("bad", |_ctx: Context, request: Request| async move {
        let parsed: serde_json::Value = request.json()?;
        Err::<Reply, _>(Error::invalid_input(format!("cannot use {parsed}")))
    });
    let error = router
        .handle(Request::message(id(), r#"{"action":"bad"}"#))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
}

#[tokio::test]
async fn authorizer_denial_skips_connect_and_allow_hands_the_context_to_connect() {
    let router = router()
        .authorizer(|_ctx: Context, request: Request| async move {
            Ok(match request.query_param("token") {
                Some("ok") => Authorization::Allow(json!({"principal": "ada"})),
                _ => Authorization::Deny(401),
            })
        })
        .on_connect(|_ctx: Context, request: Request| async move {
            Ok(Reply::with_body(
                request
                    .authorizer
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ))
        });
    let denied = router.handle(Request::connect(id())).await.unwrap();
    assert_eq!((denied.status, denied.body), (401, None));
    let allowed = router
        .handle(Request::connect(id()).with_query("token", "ok"))
        .await
        .unwrap();
    assert_eq!(body(&allowed), r#"{"principal":"ada"}"#);
    // A gateway that ran the authorizer itself passes the context, with its principal,
    // in; it is not re-run.
    let pre_authorized = Request::connect(id()).with_authorizer(json!({"principalId": "grace"}));
    assert_eq!(
        body(&router.handle(pre_authorized).await.unwrap()),
        r#"{"principalId":"grace"}"#
    );
    // A context without a principal does not stand for an authorizer's decision.
    let unvouched = Request::connect(id()).with_authorizer(json!({"principal": "grace"}));
    assert_eq!(router.handle(unvouched).await.unwrap().status, 401);
}

#[tokio::test]
async fn typed_state_reaches_handlers_and_clones_share_routes() {
    struct Greeting(&'static str);
    let router =
        Router::with_state(
            Arc::new(MockConnectionStore::new()),
            Arc::new(MockMessageSink::new()),
            Greeting("hello"),
        )
        .route(
            "greet",
            |ctx: Context<Greeting>, _request: Request| async move {
                Ok(Reply::with_body(ctx.state().0))
            },
        );
    let clone = router.clone();
    let handle = tokio::spawn(async move {
        clone
            .handle(Request::message(id(), r#"{"action":"greet"}"#))
            .await
    });
    let reply = handle.await.unwrap().unwrap();
    assert_eq!(body(&reply), "hello");
    assert_eq!(router.route_keys(), vec!["greet"]);
}

#[tokio::test]
async fn event_types_select_their_routes() {
    let router = router().on_connect(route_name).on_disconnect(route_name);
    let connect = router.handle(Request::connect(id())).await.unwrap();
    assert_eq!(body(&connect), "$connect");
    let disconnect = Request::disconnect(id(), 1001, "Going away");
    assert_eq!(disconnect.event_type, EventType::Disconnect);
    assert_eq!(
        body(&router.handle(disconnect).await.unwrap()),
        "$disconnect"
    );
}

mod rest {
    use super::*;
    use wsgw_core::{HttpRequest, HttpResponse};

    async fn history(_ctx: Context, request: HttpRequest) -> wsgw_core::Result<HttpResponse> {
        let limit: u32 = request
            .query_param("limit")
            .unwrap_or("10")
            .parse()
            .map_err(|_| Error::invalid_input("limit must be a number"))?;
        HttpResponse::json(&json!({ "device": request.path_param("device_id"), "limit": limit }))
    }

    fn rest_router() -> Router {
        router().http("GET", "/devices/{device_id}/history", history)
    }

    #[tokio::test]
    async fn rest_routes_capture_path_parameters_and_read_the_query() {
        let response = rest_router()
            .handle_http(
                HttpRequest::new("get", "/devices/esp32-01/history").with_query("limit", "5"),
            )
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.headers["content-type"], "application/json");
        let body: serde_json::Value = response.body.unwrap().parse_json().unwrap();
        assert_eq!(body, json!({"device": "esp32-01", "limit": 5}));
    }

    #[tokio::test]
    async fn rest_client_errors_become_400_and_unknown_paths_404_and_wrong_methods_405() {
        let router = rest_router();
        let bad = router
            .handle_http(HttpRequest::new("GET", "/devices/x/history").with_query("limit", "lots"))
            .await
            .unwrap();
        assert_eq!(bad.status, 400);
        assert!(bad
            .body
            .unwrap()
            .as_text()
            .unwrap()
            .contains("limit must be a number"));
        let missing = router
            .handle_http(HttpRequest::new("GET", "/devices/x"))
            .await
            .unwrap();
        assert_eq!(missing.status, 404);
        let wrong_method = router
            .handle_http(HttpRequest::new("DELETE", "/devices/x/history"))
            .await
            .unwrap();
        assert_eq!(wrong_method.status, 405);
        assert!(router.has_http_route("/devices/y/history"));
        assert!(!router.has_http_route("/devices/y/other"));
    }
}
