//! The REST routes: `GET /history` (`sendHistoricalDataRestAPI`), `GET /devices`, and
//! their CORS preflights. With keys, both GETs want a dashboard key
//! (`Authorization: Bearer KEY`), on the LocalGateway and deployed alike: the function
//! checks it itself.

use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt;
use serde_json::{json, Value};
use telemetry_protocol::validate_device_id;
use wsgw_core::cors::Cors;
use wsgw_core::http::header::{self, HeaderValue};
use wsgw_core::{
    ConnectionStoreExt, Context, Error, HistoryQuery, HttpRequest, HttpRequestExt, Json, Order,
    PageToken, Rejection, Result, Router, ServerErrors,
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

/// `router` with the REST routes: CORS for the state's origins (the preflights
/// answered), `Cache-Control: no-store`, errors as `{"error": code, "message": …}`, a
/// failed backend 500 (503 with `Retry-After` when it throttled).
pub(crate) fn routes(router: Router<Telemetry>) -> Router<Telemetry> {
    let cors = Cors::new(router.state().cors_origins().clone());
    router
        .http("GET", "/history", history)
        .http("GET", "/devices", devices)
        .cors(cors)
        .http_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
        .http_error_shape(|code, message| json!({ "error": code, "message": message }))
        .server_errors(
            ServerErrors::new()
                .message("internal server error")
                .busy_message("the history store is busy; retry shortly"),
        )
}

/// With keys, the refusal of a request without a dashboard key (401, with
/// `WWW-Authenticate: Bearer`) or with a key that is not a dashboard's (403). Keys are
/// read from the `Authorization` header only, never from the URL.
fn require_dashboard_key(ctx: &Ctx, request: &HttpRequest) -> std::result::Result<(), Rejection> {
    let Some(keys) = ctx.state().keys() else {
        return Ok(());
    };
    keys.require_bearer(request, CLIENT_ROLE)
        .map(drop)
        .map_err(|refusal| match refusal.status() {
            403 => refusal.with_detail("this key does not open the REST API: use a dashboard key"),
            _ => refusal.with_detail(
                "a dashboard key is required, as the header Authorization: Bearer KEY",
            ),
        })
}

/// A `from_ms`/`to_ms` value: a Unix time in milliseconds.
fn unix_ms(raw: &str) -> Option<DateTime<Utc>> {
    raw.parse::<u64>()
        .ok()
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(DateTime::from_timestamp_millis)
}

/// The query of a `/history` request, its partition the device id.
fn parse_history(request: &HttpRequest) -> std::result::Result<HistoryQuery, Rejection> {
    request.only_query_params(&HISTORY_PARAMS)?;
    let device_id = request
        .single_query_param("device_id")?
        .ok_or_else(|| Rejection::bad_request("device_id is required"))?;
    validate_device_id(&device_id).map_err(|e| Rejection::bad_request(e.to_string()))?;
    let unix_time = "a Unix time in milliseconds";
    let from = request.parsed_query_param("from_ms", unix_time, unix_ms)?;
    let to = request.parsed_query_param("to_ms", unix_time, unix_ms)?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
            return Err(Rejection::bad_request(format!(
                "from_ms ({from}) is after to_ms ({to})"
            )));
        }
    }
    let limit = request
        .parsed_query_param(
            "limit",
            &format!("a whole number from 1 to {MAX_HISTORY_LIMIT}"),
            |raw| {
                raw.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_HISTORY_LIMIT).contains(n))
            },
        )?
        .unwrap_or(DEFAULT_HISTORY_LIMIT);
    let token = match request.single_query_param("next")? {
        Some(raw) if raw.is_empty() => {
            return Err(Rejection::bad_request(
                "next is empty; omit it for the first page",
            ))
        }
        Some(raw) => Some(PageToken(raw)),
        None => None,
    };
    let mut query = HistoryQuery::new(&device_id)
        .order(Order::OldestFirst)
        .limit(limit)
        .after(token);
    if let Some(from) = from {
        query = query.since(from);
    }
    // `to_ms` is inclusive: the store's upper bound is exclusive.
    if let Some(until) = to.and_then(|to| to.checked_add_signed(TimeDelta::milliseconds(1))) {
        query = query.until(until);
    }
    Ok(query)
}

/// `GET /history?device_id=…&from_ms=…&to_ms=…&limit=…&next=…`: one page of a device's
/// readings, oldest first. `from_ms` and `to_ms` are inclusive; `limit` is 1–1000
/// (default 100); `next` continues after the page that returned it.
pub(crate) async fn history(ctx: Ctx, request: HttpRequest) -> Result<Json<Value>> {
    require_dashboard_key(&ctx, &request)?;
    let query = parse_history(&request)?;
    let device_id = query.partition.clone();
    let page = match ctx.history().query(query).await {
        Err(Error::InvalidToken { message }) => {
            let message = format!("next is not a token this API issued: {message}");
            return Err(Rejection::bad_request(message).into());
        }
        page => page?,
    };
    let items: Vec<Value> = page.items.into_iter().map(|record| record.data).collect();
    Ok(Json(json!({
        "device_id": device_id,
        "items": items,
        "next": page.next.map(|token| token.0),
    })))
}

/// `GET /devices`: the devices connected now, with the sample interval each last
/// acknowledged.
pub(crate) async fn devices(ctx: Ctx, request: HttpRequest) -> Result<Json<Value>> {
    require_dashboard_key(&ctx, &request)?;
    request.only_query_params(&[])?;
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
    let devices: Vec<Value> = devices.into_values().collect();
    Ok(Json(json!({ "devices": devices })))
}
