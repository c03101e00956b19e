//! The router's REST routes over plain HTTP.

use std::panic::AssertUnwindSafe;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures::FutureExt;
use wsgw_core::{http_error, HttpRequest, HttpResponse, Payload};

use wsgw_core::metrics::Counter;

use super::connection::report_abort;
use super::Shared;

pub(super) async fn respond(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    // The handler sees the request as received: every header value, the raw query.
    let body = Payload::text_from_bytes(body.clone()).unwrap_or_else(|_| Payload::binary(body));
    let mut request = HttpRequest::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
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
            http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
        Ok(Err(_)) => {
            tracing::error!(path = uri.path(), "REST route panicked");
            http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
        Err(_) => http_error(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
    };
    tracing::info!(method = %method, path = uri.path(), status = response.status().as_u16(), latency_ms, "REST");
    into_axum(response)
}

fn into_axum(response: HttpResponse) -> Response {
    response.map(|body| Body::from(body.bytes().clone()))
}
