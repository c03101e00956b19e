//! Route selection and dispatch, as API Gateway does it.

use std::sync::Arc;

use serde_json::json;
use wsgw_core::{
    Authorization, Backends, ConnectionId, Context, Error, EventType, GatewayError,
    MockConnectionStore, MockMessageSink, Payload, Reply, Request, RouteSelection, Router, DEFAULT,
};

fn router() -> Router {
    Router::new()
}

fn backends() -> Backends {
    Backends::new(
        Arc::new(MockConnectionStore::new()),
        Arc::new(MockMessageSink::new()),
    )
}

fn id() -> ConnectionId {
    ConnectionId::new("abc=")
}

/// Answers with the route key it ran for (registered two-way, so the body is kept).
async fn route_name(_ctx: Context, request: Request) -> wsgw_core::Result<Reply> {
    Ok(Reply::with_body(request.route_key))
}

fn body(reply: &Reply) -> &str {
    reply.body.as_ref().and_then(Payload::as_text).unwrap_or("")
}

#[tokio::test]
async fn messages_go_to_the_route_named_by_the_action_field() {
    let router = router()
        .two_way_route("sendmessage", route_name)
        .two_way_route(DEFAULT, route_name);
    let reply = router
        .handle(
            &backends(),
            Request::message(id(), r#"{"action":"sendmessage"}"#),
        )
        .await
        .unwrap();
    assert_eq!(body(&reply), "sendmessage");
}

#[tokio::test]
async fn unmatched_non_json_and_binary_messages_go_to_default() {
    let router = router()
        .two_way_route("sendmessage", route_name)
        .two_way_route(DEFAULT, route_name);
    for message in [
        Payload::text(r#"{"action":"other"}"#),
        Payload::text(r#"{"no_action":1}"#),
        Payload::text("plain text"),
        Payload::text(r#"{"action":{"nested":"object"}}"#),
        Payload::binary(vec![1u8, 2, 3]),
    ] {
        let reply = router
            .handle(&backends(), Request::message(id(), message.clone()))
            .await
            .unwrap();
        assert_eq!(body(&reply), "$default", "{message:?}");
    }
}

#[tokio::test]
async fn nested_selection_expressions_and_non_string_values_compare_as_strings() {
    let router = router()
        .route_selection(RouteSelection::parse("$request.body.meta.kind").unwrap())
        .two_way_route("42", route_name)
        .two_way_route("true", route_name)
        .two_way_route(DEFAULT, route_name);
    let reply = router
        .handle(
            &backends(),
            Request::message(id(), r#"{"meta":{"kind":42}}"#),
        )
        .await
        .unwrap();
    assert_eq!(body(&reply), "42");
    let reply = router
        .handle(
            &backends(),
            Request::message(id(), r#"{"meta":{"kind":true}}"#),
        )
        .await
        .unwrap();
    assert_eq!(body(&reply), "true");
    let reply = router
        .handle(&backends(), Request::message(id(), r#"{"action":"42"}"#))
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

/// AWS: a message that selects no route, with no `$default` route, gets
/// `{"message": "Forbidden", "connectionId":"…", "requestId":"…"}` and the connection
/// stays open.
#[tokio::test]
async fn without_default_an_unmatched_message_gets_api_gateways_forbidden_frame() {
    let router = router().two_way_route("ping", route_name);
    let reply = router
        .handle(
            &backends(),
            Request::message(id(), r#"{"action":"pong"}"#).with_request_id("Bq8PZH5ejoEFuNw="),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(
        body(&reply),
        r#"{"message": "Forbidden", "connectionId":"abc=", "requestId":"Bq8PZH5ejoEFuNw="}"#
    );
    assert_eq!(
        reply.body,
        Some(GatewayError::Forbidden.frame(&id(), "Bq8PZH5ejoEFuNw="))
    );
}

/// AWS: a route without a route response is one-way; the integration's response body is
/// dropped and nothing reaches the caller.
#[tokio::test]
async fn one_way_routes_drop_the_reply_body_as_api_gateway_does_without_a_route_response() {
    let router = router()
        .route("ping", route_name)
        .route(DEFAULT, route_name);
    for message in [r#"{"action":"ping"}"#, r#"{"action":"other"}"#] {
        let reply = router
            .handle(&backends(), Request::message(id(), message))
            .await
            .unwrap();
        assert_eq!((reply.status, reply.body), (200, None), "{message}");
    }
}

#[tokio::test]
async fn two_way_routes_are_declared_at_registration_and_listed() {
    let router = router()
        .route("one", route_name)
        .two_way_route("two", route_name)
        .two_way_route(DEFAULT, route_name);
    assert_eq!(router.two_way_routes(), vec![DEFAULT, "two"]);
    assert!(router.is_two_way("two") && !router.is_two_way("one"));
    assert!(!router.is_two_way("unknown"));
    let reply = router
        .handle(&backends(), Request::message(id(), r#"{"action":"two"}"#))
        .await
        .unwrap();
    assert_eq!(body(&reply), "two");
    // Registering a key again replaces it, its kind included.
    let router = router.route("two", route_name);
    assert_eq!(router.two_way_routes(), vec![DEFAULT]);
    let reply = router
        .handle(&backends(), Request::message(id(), r#"{"action":"two"}"#))
        .await
        .unwrap();
    assert_eq!(reply.body, None);
}

#[tokio::test]
async fn a_route_key_set_by_the_gateway_wins_over_selection() {
    let router = router()
        .two_way_route("a", route_name)
        .two_way_route("b", route_name);
    let request = Request::message(id(), r#"{"action":"a"}"#).with_route_key("b");
    assert_eq!(
        body(&router.handle(&backends(), request).await.unwrap()),
        "b"
    );
}

#[tokio::test]
async fn connect_and_disconnect_without_handlers_succeed() {
    let router = router();
    assert_eq!(
        router
            .handle(&backends(), Request::connect(id()))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        router
            .handle(&backends(), Request::disconnect(id(), 1000, ""))
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
        .handle(&backends(), Request::message(id(), r#"{"action":"bad"}"#))
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
    let denied = router
        .handle(&backends(), Request::connect(id()))
        .await
        .unwrap();
    assert_eq!((denied.status, denied.body), (401, None));
    let allowed = router
        .handle(
            &backends(),
            Request::connect(id()).with_query("token", "ok"),
        )
        .await
        .unwrap();
    assert_eq!(body(&allowed), r#"{"principal":"ada"}"#);
    // A gateway that ran the authorizer itself passes the context, with its principal,
    // in; it is not re-run.
    let pre_authorized = Request::connect(id()).with_authorizer(json!({"principalId": "grace"}));
    assert_eq!(
        body(&router.handle(&backends(), pre_authorized).await.unwrap()),
        r#"{"principalId":"grace"}"#
    );
    // A context without a principal does not stand for an authorizer's decision.
    let unvouched = Request::connect(id()).with_authorizer(json!({"principal": "grace"}));
    assert_eq!(
        router.handle(&backends(), unvouched).await.unwrap().status,
        401
    );
}

#[tokio::test]
async fn typed_state_reaches_handlers_and_clones_share_routes() {
    struct Greeting(&'static str);
    let router =
        Router::with_state(Greeting("hello")) /*PORT backends: Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new())*/
        .two_way_route(
            "greet",
            |ctx: Context<Greeting>, _request: Request| async move {
                Ok(Reply::with_body(ctx.state().0))
            },
        );
    let clone = router.clone();
    let handle = tokio::spawn(async move {
        clone
            .handle(&backends(), Request::message(id(), r#"{"action":"greet"}"#))
            .await
    });
    let reply = handle.await.unwrap().unwrap();
    assert_eq!(body(&reply), "hello");
    assert_eq!(router.route_keys(), vec!["greet"]);
}

#[tokio::test]
async fn event_types_select_their_routes() {
    let router = router().on_connect(route_name).on_disconnect(route_name);
    let connect = router
        .handle(&backends(), Request::connect(id()))
        .await
        .unwrap();
    assert_eq!(body(&connect), "$connect");
    let disconnect = Request::disconnect(id(), 1001, "Going away");
    assert_eq!(disconnect.event_type, EventType::Disconnect);
    assert_eq!(
        body(&router.handle(&backends(), disconnect).await.unwrap()),
        "$disconnect"
    );
}

mod rest {
    use super::*;
    use serde_json::Value;
    use wsgw_core::http::{header, Method, StatusCode};
    use wsgw_core::{HttpRequest, HttpRequestExt, Json, Payload, Rejection};

    async fn history(_ctx: Context, request: HttpRequest) -> wsgw_core::Result<Json<Value>> {
        let limit: u32 = request
            .query_param("limit")
            .unwrap_or_else(|| "10".to_owned())
            .parse()
            .map_err(|_| Rejection::new("invalid_limit").with_detail("limit must be a number"))?;
        Ok(Json(
            json!({ "device": request.path_param("device_id"), "limit": limit }),
        ))
    }

    fn request(method: Method, uri: &str) -> HttpRequest {
        wsgw_core::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Payload::default())
            .unwrap()
    }

    fn rest_router() -> Router {
        router().http("GET", "/devices/{device_id}/history", history)
    }

    #[tokio::test]
    async fn rest_routes_capture_path_parameters_and_read_the_query() {
        let response = rest_router()
            .handle_http(
                &backends(),
                request(Method::GET, "/devices/esp32-01/history?limit=5"),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value = response.body().parse_json().unwrap();
        assert_eq!(body, json!({"device": "esp32-01", "limit": 5}));
    }

    #[tokio::test]
    async fn rest_rejections_become_400_and_unknown_paths_404_and_wrong_methods_405() {
        let router = rest_router();
        let bad = router
            .handle_http(
                &backends(),
                request(Method::GET, "/devices/x/history?limit=lots"),
            )
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            bad.body().as_text(),
            Some(r#"{"type":"error","error":"invalid_limit","detail":"limit must be a number"}"#)
        );
        let missing = router
            .handle_http(&backends(), request(Method::GET, "/devices/x"))
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let wrong_method = router
            .handle_http(&backends(), request(Method::DELETE, "/devices/x/history"))
            .await
            .unwrap();
        assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(router.has_http_route("/devices/y/history"));
        assert!(!router.has_http_route("/devices/y/other"));
    }

    /// What the handler saw: every value of the query's `a`, every `x-tag` header, and
    /// the path parameter, percent-decoded.
    async fn echo(_ctx: Context, request: HttpRequest) -> wsgw_core::Result<Json<Value>> {
        let tags: Vec<&str> = request
            .headers()
            .get_all("x-tag")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        Ok(Json(json!({
            "a": request.query_params("a"),
            "tags": tags,
            "device": request.path_param("device_id"),
            "raw_query": request.uri().query(),
        })))
    }

    #[tokio::test]
    async fn a_handler_sees_every_value_of_a_repeated_query_parameter_and_header() {
        let router = router().http("GET", "/echo/{device_id}", echo);
        let mut repeated = request(Method::GET, "/echo/esp%2001?a=1&a=2&b=%20");
        repeated
            .headers_mut()
            .append("x-tag", "one".parse().unwrap());
        repeated
            .headers_mut()
            .append("x-tag", "two".parse().unwrap());
        let response = router.handle_http(&backends(), repeated).await.unwrap();
        let seen: Value = response.body().parse_json().unwrap();
        assert_eq!(
            seen,
            json!({"a": ["1", "2"], "tags": ["one", "two"], "device": "esp 01", "raw_query": "a=1&a=2&b=%20"})
        );
    }

    #[tokio::test]
    async fn a_handler_may_return_a_response_a_status_or_a_rejection() {
        use wsgw_core::http::Response;
        let router = router()
            .http(
                "GET",
                "/response",
                |_ctx: Context, _request: HttpRequest| async {
                    Ok(Response::builder()
                        .header(header::SET_COOKIE, "a=1")
                        .header(header::SET_COOKIE, "b=2")
                        .body(vec![0xff_u8, 0x00])
                        .unwrap())
                },
            )
            .http(
                "GET",
                "/status",
                |_ctx: Context, _request: HttpRequest| async { Ok(StatusCode::ACCEPTED) },
            )
            .http(
                "GET",
                "/rejection",
                |_ctx: Context, _request: HttpRequest| async {
                    Ok(Rejection::new("gone").with_status(410))
                },
            );
        let response = router
            .handle_http(&backends(), request(Method::GET, "/response"))
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .count(),
            2
        );
        assert_eq!(response.body().as_bytes(), [0xff, 0x00]);
        assert!(!response.body().is_text());
        let status = router
            .handle_http(&backends(), request(Method::GET, "/status"))
            .await
            .unwrap();
        assert_eq!(status.status(), StatusCode::ACCEPTED);
        let rejection = router
            .handle_http(&backends(), request(Method::GET, "/rejection"))
            .await
            .unwrap();
        assert_eq!(rejection.status(), StatusCode::GONE);
        assert_eq!(
            rejection.body().as_text(),
            Some(r#"{"type":"error","error":"gone"}"#)
        );
    }
}
