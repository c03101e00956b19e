//! The router's answers for its HTTP routes through the LocalGateway, with a real HTTP
//! client over loopback: CORS preflights, the CORS and default headers on every answer,
//! a throttled backend answered 503 with `Retry-After`, the bearer-key guard's 401 and
//! 403, and what the gateway's metrics count.

use serde_json::{json, Value};
use wsgw_core::auth::ApiKeyAuthorizer;
use wsgw_core::cors::{Cors, CorsOrigins};
use wsgw_core::http::header::{HeaderValue, CACHE_CONTROL};
use wsgw_core::metrics::Counter;
use wsgw_core::{Context, Error, HttpRequest, HttpRequestExt, Json, Router, ServerErrors};
use wsgw_memory::gateway::{LocalGateway, RunningGateway};

const DASHBOARD: &str = "https://dash.example";

/// `/reports/{id}` for keys with the `reader` role; report `busy` finds the store
/// throttled.
async fn report(
    ctx: Context<ApiKeyAuthorizer>,
    request: HttpRequest,
) -> wsgw_core::Result<Json<Value>> {
    let reader = ctx.state().require_bearer(&request, "reader")?;
    match request.path_param("id") {
        Some("busy") => Err(Error::Throttled {
            backend: "dynamodb",
            message: "rate exceeded".into(),
        }),
        id => Ok(Json(json!({"id": id, "for": reader.id}))),
    }
}

async fn start() -> RunningGateway {
    let keys = ApiKeyAuthorizer::new()
        .key("k-read", "ada", ["reader"])
        .and_then(|keys| keys.key("k-dev", "esp32-01", ["device"]))
        .expect("keys");
    let router = Router::with_state(keys)
        .http("GET", "/reports/{id}", report)
        .cors(Cors::new(CorsOrigins::parse(DASHBOARD).expect("an origin")))
        .http_header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
        .http_error_shape(|code, message| json!({"error": code, "message": message}))
        .server_errors(ServerErrors::new());
    LocalGateway::new(router)
        .bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binds loopback")
}

#[tokio::test]
async fn a_browser_s_requests_get_cors_headers_and_preflights_and_errors_as_the_router_answers() {
    let gateway = start().await;
    let base = format!("http://{}", gateway.local_addr());
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{base}/reports/7"))
        .header("origin", DASHBOARD)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("answers");
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        DASHBOARD
    );
    assert_eq!(
        preflight.headers()["access-control-allow-headers"],
        "content-type, authorization"
    );
    assert_eq!(preflight.headers()["cache-control"], "no-store");

    let get = |path: &'static str, key: Option<&'static str>| {
        let mut request = client
            .get(format!("{base}{path}"))
            .header("origin", DASHBOARD);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body: Value =
                serde_json::from_str(&response.text().await.expect("a body")).expect("JSON");
            assert_eq!(headers["access-control-allow-origin"], DASHBOARD, "{path}");
            assert_eq!(headers["cache-control"], "no-store", "{path}");
            (status, headers, body)
        }
    };
    let (status, _, body) = get("/reports/7", Some("k-read")).await;
    assert_eq!((status, body), (200, json!({"id": "7", "for": "ada"})));

    let (status, headers, body) = get("/reports/7", None).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(body["error"], "unauthorized");
    let (status, headers, body) = get("/reports/7", Some("k-dev")).await;
    assert_eq!(status, 403);
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(
        body,
        json!({"error": "forbidden", "message": "this key does not have the role reader"})
    );

    let (status, headers, body) = get("/reports/busy", Some("k-read")).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        body,
        json!({"error": "server_error", "message": "Service unavailable; retry shortly"})
    );

    let metrics = gateway.metrics();
    assert_eq!(
        metrics.get(Counter::HttpRequests, "OPTIONS /reports/{id}"),
        1
    );
    assert_eq!(metrics.get(Counter::HttpRequests, "GET /reports/{id}"), 4);
    assert_eq!(
        metrics.get(Counter::HandlerErrors, "GET /reports/{id}"),
        1,
        "the throttled store, not the refusals"
    );
    gateway.shutdown().await.expect("stops");
}
