//! The router's REST routes over plain HTTP.

use std::panic::AssertUnwindSafe;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use wsgw_core::{HttpRequest, HttpResponse, Payload};

use wsgw_core::metrics::Counter;

use super::connection::{lower_case_headers, report_abort};
use super::Shared;

pub(super) async fn respond(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = HttpRequest::new(method.as_str(), uri.path());
    request.query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    request.headers = lower_case_headers(headers);
    if !body.is_empty() {
        request.body =
            Some(Payload::text_from_bytes(body.clone()).unwrap_or_else(|_| Payload::binary(body)));
    }
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        shared.limits.handler_timeout,
        AssertUnwindSafe(shared.integration.http(request)).catch_unwind(),
    )
    .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(route) = shared.integration.http_route(method.as_str(), uri.path()) {
        report_abort(
            shared.integration.observer(),
            &outcome,
            Counter::HttpRequests,
            &route,
            started,
        );
    }
    let response = match outcome {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(error))) => {
            tracing::error!(path = uri.path(), %error, "REST route failed");
            HttpResponse::error(500, "Internal server error")
        }
        Ok(Err(_)) => {
            tracing::error!(path = uri.path(), "REST route panicked");
            HttpResponse::error(500, "Internal server error")
        }
        Err(_) => HttpResponse::error(504, "Endpoint request timed out"),
    };
    tracing::info!(method = %method, path = uri.path(), status = response.status, latency_ms, "REST");
    into_axum(response)
}

fn into_axum(response: HttpResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = response
        .body
        .map(|body| body.bytes().clone())
        .unwrap_or_default();
    let mut answer = (status, body).into_response();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            answer.headers_mut().insert(name, value);
        }
    }
    answer
}
