//! What the router adds to every answer of its HTTP routes: CORS and its preflights,
//! default headers, the application's error shape, server errors answered, and the
//! bearer-key guard's refusals.

use std::sync::Arc;

use serde_json::{json, Value};
use wsgw_core::auth::ApiKeyAuthorizer;
use wsgw_core::cors::{Cors, CorsOrigins};
use wsgw_core::http::header::{self, HeaderValue};
use wsgw_core::http::{Method, StatusCode};
use wsgw_core::metrics::{Counter, Counters};
use wsgw_core::{
    Backends, Context, Error, HttpRequest, HttpRequestExt, HttpResponse, Json, MockConnectionStore,
    MockMessageSink, Payload, Rejection, Router, ServerErrors,
};

const DASHBOARD: &str = "https://dash.example";

fn backends() -> Backends {
    Backends::new(
        Arc::new(MockConnectionStore::new()),
        Arc::new(MockMessageSink::new()),
    )
}

/// `/items/{id}`: `ok` answers, `bad` is refused with a field, `busy` finds the store
/// throttled, `broken` fails, `custom` is refused with a frame of its own shape, `cached`
/// sets its own `Cache-Control`.
async fn item(_ctx: Context, request: HttpRequest) -> wsgw_core::Result<HttpResponse> {
    use wsgw_core::IntoHttpResponse;
    match request.path_param("id") {
        Some("bad") => Err(Rejection::new("bad_request")
            .with_detail("no such thing")
            .with_field("field", "id")
            .into()),
        Some("busy") => Err(Error::Throttled {
            backend: "dynamodb",
            message: "rate exceeded".into(),
        }),
        Some("broken") => Err(Error::backend("dynamodb", "query failed", None)),
        Some("custom") => Err(Rejection::json(&json!({"why": "custom"}))?
            .with_status(409)
            .into()),
        Some("cached") => {
            let mut answer = Json(json!({"cached": true})).into_http_response()?;
            answer.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=60"),
            );
            Ok(answer)
        }
        _ => Json(json!({"ok": true})).into_http_response(),
    }
}

fn api() -> Router {
    Router::new()
        .http("GET", "/items/{id}", item)
        .http("POST", "/items/{id}", item)
        .cors(Cors::new(CorsOrigins::parse(DASHBOARD).expect("an origin")))
        .http_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
        .http_error_shape(|code, message| json!({"error": code, "message": message}))
        .server_errors(
            ServerErrors::new()
                .message("internal server error")
                .busy_message("the store is busy; retry shortly"),
        )
}

fn request(method: Method, uri: &str, origin: Option<&str>) -> HttpRequest {
    let mut request = wsgw_core::http::Request::builder().method(method).uri(uri);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Payload::default()).expect("a request")
}

async fn answer(router: &Router, method: Method, uri: &str) -> HttpResponse {
    router
        .handle_http(&backends(), request(method, uri, Some(DASHBOARD)))
        .await
        .expect("answered by the router")
}

fn json_body(response: &HttpResponse) -> Value {
    response.body().parse_json().expect("a JSON body")
}

#[tokio::test]
async fn every_answer_carries_the_cors_headers_and_the_default_header() {
    let router = api();
    let mut answers = Vec::new();
    for (method, uri, status) in [
        (Method::GET, "/items/1", 200),
        (Method::GET, "/items/bad", 400),
        (Method::GET, "/items/custom", 409),
        (Method::GET, "/items/busy", 503),
        (Method::GET, "/items/broken", 500),
        (Method::DELETE, "/items/1", 405),
        (Method::GET, "/nowhere", 404),
        (Method::OPTIONS, "/items/1", 204),
    ] {
        let response = answer(&router, method.clone(), uri).await;
        assert_eq!(response.status().as_u16(), status, "{method} {uri}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            DASHBOARD,
            "{method} {uri}"
        );
        assert_eq!(response.headers()["vary"], "origin", "{method} {uri}");
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{method} {uri}"
        );
        answers.push(response);
    }
    // A handler's own header of that name is kept.
    let cached = answer(&router, Method::GET, "/items/cached").await;
    assert_eq!(cached.headers()["cache-control"], "max-age=60");
    assert_eq!(cached.headers()["access-control-allow-origin"], DASHBOARD);
}

#[tokio::test]
async fn an_origin_not_allowed_gets_no_allow_origin_on_any_answer() {
    let router = api();
    for (method, uri) in [
        (Method::GET, "/items/1"),
        (Method::GET, "/items/bad"),
        (Method::GET, "/items/broken"),
        (Method::OPTIONS, "/items/1"),
    ] {
        let response = router
            .handle_http(
                &backends(),
                request(method.clone(), uri, Some("https://evil.example")),
            )
            .await
            .expect("answered");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{method} {uri}"
        );
        assert_eq!(response.headers()["vary"], "origin");
    }
}

#[tokio::test]
async fn the_preflight_of_any_route_is_answered_and_counted_unless_an_options_route_matches() {
    let counters = Arc::new(Counters::new());
    let router = api().observe(counters.clone());
    let preflight = answer(&router, Method::OPTIONS, "/items/7").await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert!(preflight.body().as_bytes().is_empty());
    assert_eq!(
        preflight.headers()["access-control-allow-methods"],
        "GET, OPTIONS"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-headers"],
        "content-type, authorization"
    );
    assert_eq!(preflight.headers()["access-control-max-age"], "600");
    assert_eq!(
        router.http_route("OPTIONS", "/items/7"),
        Some("OPTIONS /items/{id}")
    );
    assert_eq!(
        counters.get(Counter::HttpRequests, "OPTIONS /items/{id}"),
        1
    );
    assert_eq!(router.http_route("OPTIONS", "/nowhere"), None);
    assert_eq!(
        answer(&router, Method::OPTIONS, "/nowhere").await.status(),
        StatusCode::NOT_FOUND
    );

    // An OPTIONS route of the application's own answers instead.
    let own = api().http(
        "OPTIONS",
        "/items/{id}",
        |_ctx: Context, _request: HttpRequest| async { Ok(StatusCode::OK) },
    );
    let answered = answer(&own, Method::OPTIONS, "/items/7").await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(answered.headers()["access-control-allow-origin"], DASHBOARD);

    // Without CORS, OPTIONS is a method like any other.
    let plain = Router::new().http("GET", "/items/{id}", item);
    assert_eq!(
        answer(&plain, Method::OPTIONS, "/items/7").await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(plain.http_route("OPTIONS", "/items/7"), None);
}

#[tokio::test]
async fn rejections_take_the_error_shape_with_their_fields_and_custom_frames_are_kept() {
    let router = api();
    let bad = answer(&router, Method::GET, "/items/bad").await;
    assert_eq!(
        bad.body().as_text(),
        Some(r#"{"error":"bad_request","field":"id","message":"no such thing"}"#)
    );
    assert_eq!(bad.headers()["content-type"], "application/json");
    let custom = answer(&router, Method::GET, "/items/custom").await;
    assert_eq!(custom.body().as_text(), Some(r#"{"why":"custom"}"#));

    // Without a shape, the standard frame.
    let plain = Router::new().http("GET", "/items/{id}", item);
    let standard = answer(&plain, Method::GET, "/items/bad").await;
    assert_eq!(
        json_body(&standard),
        json!({"type": "error", "error": "bad_request", "detail": "no such thing", "field": "id"})
    );
}

#[tokio::test]
async fn server_errors_are_500_or_503_with_retry_after_and_still_counted_as_handler_errors() {
    let counters = Arc::new(Counters::new());
    let router = api().observe(counters.clone());
    let busy = answer(&router, Method::GET, "/items/busy").await;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(
        busy.body().as_text(),
        Some(r#"{"error":"server_error","message":"the store is busy; retry shortly"}"#)
    );
    let broken = answer(&router, Method::POST, "/items/broken").await;
    assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(broken.headers().get("retry-after").is_none());
    assert_eq!(
        json_body(&broken),
        json!({"error": "server_error", "message": "internal server error"}),
        "the error itself is logged, never sent"
    );
    assert_eq!(counters.get(Counter::HandlerErrors, "GET /items/{id}"), 1);
    assert_eq!(counters.get(Counter::HandlerErrors, "POST /items/{id}"), 1);

    // Without `server_errors` the invocation fails, for the gateway to answer.
    let plain = Router::new()
        .http("GET", "/items/{id}", item)
        .cors(Cors::new(CorsOrigins::Any));
    let failed = plain
        .handle_http(&backends(), request(Method::GET, "/items/busy", None))
        .await;
    assert!(matches!(failed, Err(Error::Throttled { .. })), "{failed:?}");

    let longer = Router::new()
        .http("GET", "/items/{id}", item)
        .server_errors(
            ServerErrors::new()
                .code("unavailable")
                .retry_after_seconds(30),
        );
    let busy = answer(&longer, Method::GET, "/items/busy").await;
    assert_eq!(busy.headers()["retry-after"], "30");
    assert_eq!(
        json_body(&busy),
        json!({"type": "error", "error": "unavailable", "detail": "Service unavailable; retry shortly"})
    );
    assert!(busy.headers().get("access-control-allow-origin").is_none());
}

/// `/reports`: for keys with the `reader` role only.
async fn reports(
    ctx: Context<ApiKeyAuthorizer>,
    request: HttpRequest,
) -> wsgw_core::Result<Json<Value>> {
    let reader = ctx.state().require_bearer(&request, "reader")?;
    Ok(Json(json!({"for": reader.id})))
}

#[tokio::test]
async fn the_bearer_guard_refuses_401_with_a_challenge_or_403_and_admits_the_role() {
    let keys = ApiKeyAuthorizer::new()
        .key("k-read", "ada", ["reader"])
        .and_then(|keys| keys.key("k-dev", "esp32-01", ["device"]))
        .expect("keys");
    let router = Router::with_state(keys).http("GET", "/reports", reports);
    let call = |authorization: Option<&'static str>, uri: &'static str| {
        let router = router.clone();
        async move {
            let mut request = wsgw_core::http::Request::get(uri);
            if let Some(authorization) = authorization {
                request = request.header("authorization", authorization);
            }
            router
                .handle_http(&backends(), request.body(Payload::default()).unwrap())
                .await
                .expect("answered")
        }
    };
    let admitted = call(Some("Bearer k-read"), "/reports").await;
    assert_eq!(admitted.status(), StatusCode::OK);
    assert_eq!(json_body(&admitted), json!({"for": "ada"}));

    for (authorization, uri) in [
        (None, "/reports"),
        (Some("Bearer "), "/reports"),
        (Some("Bearer k-guess"), "/reports"),
        (Some("Basic k-read"), "/reports"),
        // Never from the query string, which access logs keep.
        (None, "/reports?token=k-read"),
    ] {
        let refused = call(authorization, uri).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        assert_eq!(json_body(&refused)["error"], "unauthorized");
    }
    let forbidden = call(Some("Bearer k-dev"), "/reports").await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(forbidden.headers().get("www-authenticate").is_none());
    assert_eq!(
        json_body(&forbidden),
        json!({"type": "error", "error": "forbidden", "detail": "this key does not have the role reader"})
    );
}

#[test]
fn a_rejection_header_replaces_one_of_the_same_name_and_only_reaches_http_answers() {
    use wsgw_core::IntoHttpResponse;
    let rejection = Rejection::new("slow_down")
        .with_status(429)
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("10"));
    assert_eq!(rejection.header("Retry-After").unwrap(), "10");
    assert_eq!(
        rejection.to_payload().as_text(),
        Some(r#"{"type":"error","error":"slow_down"}"#)
    );
    let answer = rejection.into_http_response().expect("an answer");
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.headers()["retry-after"], "10");
    assert_eq!(
        answer.headers().get_all(header::RETRY_AFTER).iter().count(),
        1
    );
    assert_eq!(answer.headers()["content-type"], "application/json");
}

/// `/page?size=N`: `size` a whole number from 1 to 50, given at most once.
async fn page(_ctx: Context, request: HttpRequest) -> wsgw_core::Result<Json<Value>> {
    let size = request
        .parsed_query_param("size", "a whole number from 1 to 50", |raw| {
            raw.parse::<u8>()
                .ok()
                .filter(|size| (1..=50).contains(size))
        })?
        .unwrap_or(10);
    Ok(Json(json!({ "size": size })))
}

#[tokio::test]
async fn a_query_parameter_read_with_question_mark_refuses_a_bad_or_repeated_value_with_400() {
    let router = Router::new().http("GET", "/page", page);
    for (uri, status, body) in [
        ("/page", 200, json!({"size": 10})),
        ("/page?size=7", 200, json!({"size": 7})),
        (
            "/page?size=0",
            400,
            json!({"type": "error", "error": "bad_request", "detail": "size must be a whole number from 1 to 50, got \"0\""}),
        ),
        (
            "/page?size=%20lots",
            400,
            json!({"type": "error", "error": "bad_request", "detail": "size must be a whole number from 1 to 50, got \" lots\""}),
        ),
        (
            "/page?size=5&size=6",
            400,
            json!({"type": "error", "error": "bad_request", "detail": "size is given more than once"}),
        ),
    ] {
        let response = answer(&router, Method::GET, uri).await;
        assert_eq!(response.status().as_u16(), status, "{uri}");
        assert_eq!(json_body(&response), body, "{uri}");
    }
}

/// `/devices/{id}/readings?from=…&limit=…`: no other parameter; answers the route it
/// matched.
async fn readings(_ctx: Context, request: HttpRequest) -> wsgw_core::Result<Json<Value>> {
    request.only_query_params(&["from", "limit"])?;
    Ok(Json(json!({ "route": request.route_path() })))
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_naming_them_all_and_the_route_s_pattern() {
    let router = Router::new()
        .http("GET", "/devices/{id}/readings", readings)
        .http(
            "GET",
            "/ping",
            |_ctx: Context, request: HttpRequest| async move {
                request.only_query_params(&[])?;
                Ok(StatusCode::NO_CONTENT)
            },
        );
    let fine = answer(&router, Method::GET, "/devices/7/readings/?limit=5").await;
    assert_eq!(json_body(&fine), json!({"route": "/devices/{id}/readings"}));
    for (uri, detail) in [
        (
            "/devices/7/readings?zoom=1&limit=2&color=3&zoom=4",
            "unknown parameters color, zoom; /devices/{id}/readings takes from and limit",
        ),
        ("/ping?x=1&x=2", "unknown parameter x; /ping takes none"),
    ] {
        let refused = answer(&router, Method::GET, uri).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            json_body(&refused),
            json!({"type": "error", "error": "bad_request", "detail": detail}),
            "{uri}"
        );
    }
    // Outside a router, the URI's path.
    let bare = request(Method::GET, "/elsewhere?a=1", None);
    assert_eq!(bare.route_path(), "/elsewhere");
    assert_eq!(
        bare.only_query_params(&["b"]).unwrap_err().detail(),
        Some("unknown parameter a; /elsewhere takes b")
    );
}
