//! The REST routes: `GET /history` (`sendHistoricalDataRestAPI`), `GET /devices`, and
//! their CORS preflights. With keys, both GETs want a dashboard key
//! (`Authorization: Bearer KEY`), on the LocalGateway and deployed alike: the function
//! checks it itself.

use chrono::DateTime;
use futures::TryStreamExt;
use serde_json::{json, Value};
use telemetry_protocol::validate_device_id;
use wsgw_core::cors::Cors;
use wsgw_core::http::header::{self, HeaderValue};
use wsgw_core::http::{Response, StatusCode};
use wsgw_core::{
    ConnectionStoreExt, Context, Error, HistoryQuery, HttpRequest, HttpRequestExt, HttpResponse,
    IntoHttpResponse, Json, Order, PageToken, Result,
};

use crate::access::CLIENT_ROLE;
use crate::keys;
use crate::Telemetry;

/// Most readings one `/history` page returns.
pub const MAX_HISTORY_LIMIT: usize = 1000;
/// Readings per `/history` page when `limit` is not given.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;

const HISTORY_PARAMS: [&str; 5] = ["device_id", "from_ms", "to_ms", "limit", "next"];

type Ctx = Context<Telemetry>;

/// Adds the headers every REST answer carries: CORS for the origins the state allows
/// ([`Cors`]: the request's origin when allowed, nothing naming another) and
/// `Cache-Control: no-store`.
fn cors(ctx: &Ctx, request: &HttpRequest, response: HttpResponse) -> HttpResponse {
    let cors = Cors::new(ctx.state().cors_origins().clone());
    let mut response = cors.apply(request, response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON error answer, `{"error": code, "message": …}`, with CORS headers.
fn error(
    ctx: &Ctx,
    request: &HttpRequest,
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
) -> HttpResponse {
    let body = json!({ "error": code, "message": message.into() });
    let response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into())
        .unwrap_or_default();
    cors(ctx, request, response)
}

/// With keys, the refusal of a request without a dashboard key (401, with
/// `WWW-Authenticate: Bearer`) or with a key that is not a dashboard's (403). Keys are
/// read from the `Authorization` header only, never from the URL.
fn refuse_without_dashboard_key(ctx: &Ctx, request: &HttpRequest) -> Option<HttpResponse> {
    let keys = ctx.state().keys()?;
    let principal = request
        .bearer_token()
        .and_then(|key| keys.principal_for(key));
    match principal {
        Some(principal) if principal.has_role(CLIENT_ROLE) => None,
        Some(principal) => {
            tracing::info!(path = request.uri().path(), principal = %principal.id, "REST refused: not a dashboard key");
            Some(error(
                ctx,
                request,
                StatusCode::FORBIDDEN,
                "forbidden",
                "this key does not open the REST API: use a dashboard key",
            ))
        }
        None => {
            tracing::info!(
                path = request.uri().path(),
                "REST refused: no or unknown key"
            );
            let mut refusal = error(
                ctx,
                request,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a dashboard key is required, as the header Authorization: Bearer KEY",
            );
            refusal
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(refusal)
        }
    }
}

fn bad_request(ctx: &Ctx, request: &HttpRequest, message: impl Into<String>) -> HttpResponse {
    error(
        ctx,
        request,
        StatusCode::BAD_REQUEST,
        "bad_request",
        message,
    )
}

/// A backend failure, answered with CORS headers so the browser shows the status.
fn server_error(ctx: &Ctx, request: &HttpRequest, failure: &Error) -> HttpResponse {
    tracing::error!(path = request.uri().path(), error = %failure, "REST request failed");
    if failure.is_throttled() {
        let mut busy = error(
            ctx,
            request,
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "the history store is busy; retry shortly",
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        busy
    } else {
        error(
            ctx,
            request,
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal server error",
        )
    }
}

/// `OPTIONS` on a REST path: the CORS preflight (browsers send it without credentials).
pub(crate) async fn preflight(ctx: Ctx, request: HttpRequest) -> Result<HttpResponse> {
    Ok(cors(
        &ctx,
        &request,
        StatusCode::NO_CONTENT.into_http_response()?,
    ))
}

/// The validated parameters of a `/history` request.
#[derive(Debug)]
struct HistoryParams {
    device_id: String,
    query: HistoryQuery,
}

fn parse_ms(request: &HttpRequest, name: &str) -> std::result::Result<Option<i64>, String> {
    let Some(raw) = single_param(request, name)? else {
        return Ok(None);
    };
    raw.parse::<u64>()
        .ok()
        .and_then(|ms| i64::try_from(ms).ok())
        .filter(|ms| DateTime::from_timestamp_millis(*ms).is_some())
        .map(Some)
        .ok_or_else(|| format!("{name} must be a Unix time in milliseconds, got \"{raw}\""))
}

/// The value of a parameter given at most once (`?limit=5&limit=10` is refused: which
/// one was meant?).
fn single_param(request: &HttpRequest, name: &str) -> std::result::Result<Option<String>, String> {
    request.single_query_param(name).map_err(|e| e.to_string())
}

fn parse_history(request: &HttpRequest) -> std::result::Result<HistoryParams, String> {
    let unknown = request.unknown_query_params(&HISTORY_PARAMS);
    if !unknown.is_empty() {
        return Err(format!(
            "unknown parameter{} {}; /history takes device_id, from_ms, to_ms, limit and next",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", ")
        ));
    }
    let device_id = single_param(request, "device_id")?.ok_or("device_id is required")?;
    validate_device_id(&device_id).map_err(|e| e.to_string())?;
    let from_ms = parse_ms(request, "from_ms")?;
    let to_ms = parse_ms(request, "to_ms")?;
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if from > to {
            return Err(format!("from_ms ({from}) is after to_ms ({to})"));
        }
    }
    let limit = match single_param(request, "limit")? {
        None => DEFAULT_HISTORY_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY_LIMIT).contains(n))
            .ok_or_else(|| {
                format!("limit must be a whole number from 1 to {MAX_HISTORY_LIMIT}, got \"{raw}\"")
            })?,
    };
    let token = match single_param(request, "next")? {
        Some(raw) if raw.is_empty() => {
            return Err("next is empty; omit it for the first page".to_owned())
        }
        Some(raw) => Some(PageToken(raw)),
        None => None,
    };
    let mut query = HistoryQuery::new(&device_id)
        .order(Order::OldestFirst)
        .limit(limit)
        .after(token);
    if let Some(from) = from_ms.and_then(DateTime::from_timestamp_millis) {
        query = query.since(from);
    }
    // `to_ms` is inclusive: the store's upper bound is exclusive.
    if let Some(until) = to_ms.and_then(|to| DateTime::from_timestamp_millis(to.saturating_add(1)))
    {
        query = query.until(until);
    }
    Ok(HistoryParams { device_id, query })
}

/// `GET /history?device_id=…&from_ms=…&to_ms=…&limit=…&next=…`: one page of a device's
/// readings, oldest first. `from_ms` and `to_ms` are inclusive; `limit` is 1–1000
/// (default 100); `next` continues after the page that returned it.
pub(crate) async fn history(ctx: Ctx, request: HttpRequest) -> Result<HttpResponse> {
    if let Some(refusal) = refuse_without_dashboard_key(&ctx, &request) {
        return Ok(refusal);
    }
    let params = match parse_history(&request) {
        Ok(params) => params,
        Err(message) => return Ok(bad_request(&ctx, &request, message)),
    };
    let page = match ctx.history().query(params.query).await {
        Ok(page) => page,
        Err(Error::InvalidToken { message }) => {
            return Ok(bad_request(
                &ctx,
                &request,
                format!("next is not a token this API issued: {message}"),
            ))
        }
        Err(failure) => return Ok(server_error(&ctx, &request, &failure)),
    };
    let items: Vec<Value> = page.items.into_iter().map(|record| record.data).collect();
    let body = json!({
        "device_id": params.device_id,
        "items": items,
        "next": page.next.map(|token| token.0),
    });
    Ok(cors(&ctx, &request, Json(body).into_http_response()?))
}

/// `GET /devices`: the devices connected now, with the sample interval each last
/// acknowledged.
pub(crate) async fn devices(ctx: Ctx, request: HttpRequest) -> Result<HttpResponse> {
    if let Some(refusal) = refuse_without_dashboard_key(&ctx, &request) {
        return Ok(refusal);
    }
    if let Some((name, _)) = request.query_pairs().first() {
        return Ok(bad_request(
            &ctx,
            &request,
            format!("unknown parameter {name}; /devices takes none"),
        ));
    }
    let listed = async {
        let mut devices = std::collections::BTreeMap::new();
        let mut members = ctx.store().member_connections(keys::DEVICES_GROUP);
        while let Some(connection) = members.try_next().await? {
            let Some(device_id) = connection.attribute::<String>(keys::DEVICE_ID)? else {
                continue;
            };
            let entry = json!({
                "device_id": device_id,
                "connected_at_ms": connection.connected_at.timestamp_millis(),
                "sample_interval_ms": connection.attributes.get(keys::SAMPLE_INTERVAL_MS),
            });
            // A device that reconnected before its old connection was cleaned up:
            // report the newest connection.
            let newer = devices.get(&device_id).is_none_or(|known: &Value| {
                known["connected_at_ms"].as_i64() <= entry["connected_at_ms"].as_i64()
            });
            if newer {
                devices.insert(device_id, entry);
            }
        }
        Ok::<_, Error>(devices.into_values().collect::<Vec<_>>())
    }
    .await;
    match listed {
        Ok(devices) => Ok(cors(
            &ctx,
            &request,
            Json(json!({ "devices": devices })).into_http_response()?,
        )),
        Err(failure) => Ok(server_error(&ctx, &request, &failure)),
    }
}
