//! The Management API (`@connections`), answering exactly as API Gateway does so AWS SDK
//! clients map the errors to their own types.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use wsgw_core::{ConnectionId, Error, MessageSink, Payload};

use super::Shared;

fn aws_error(status: StatusCode, error_type: &'static str, message: String) -> Response {
    (
        status,
        [
            (HeaderName::from_static("x-amzn-errortype"), error_type),
            (header::CONTENT_TYPE, "application/json"),
        ],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn error_response(error: Error) -> Response {
    match error {
        Error::Gone { .. } => aws_error(StatusCode::GONE, "GoneException", error.to_string()),
        Error::PayloadTooLarge { .. } => aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            error.to_string(),
        ),
        Error::Throttled { .. } => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            error.to_string(),
        ),
        other => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            other.to_string(),
        ),
    }
}

pub(super) async fn default_stage<S: Send + Sync + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(id): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    respond(&shared, ConnectionId::from(id), method, body).await
}

pub(super) async fn staged<S: Send + Sync + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path((_stage, id)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> Response {
    respond(&shared, ConnectionId::from(id), method, body).await
}

async fn respond<S: Send + Sync + 'static>(
    shared: &Shared<S>,
    id: ConnectionId,
    method: Method,
    body: Bytes,
) -> Response {
    let response = act(shared, id, method, body).await;
    if !shared.management_latency.is_zero() {
        tokio::time::sleep(shared.management_latency).await;
    }
    response
}

async fn act<S: Send + Sync + 'static>(
    shared: &Shared<S>,
    id: ConnectionId,
    method: Method,
    body: Bytes,
) -> Response {
    let sockets = &shared.sockets;
    let result = match method {
        Method::POST => {
            if body.len() > shared.limits.max_message_bytes {
                return error_response(Error::PayloadTooLarge {
                    size: body.len(),
                    limit: shared.limits.max_message_bytes,
                });
            }
            // API Gateway forwards UTF-8 data as a text frame, anything else as binary.
            let payload =
                Payload::text_from_bytes(body.clone()).unwrap_or_else(|_| Payload::binary(body));
            sockets
                .send(&id, payload)
                .await
                .map(|()| StatusCode::OK.into_response())
        }
        Method::GET => sockets.connection_info(&id).await.map(|info| {
            let body = serde_json::json!({
                "connectedAt": info.connected_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "identity": {
                    "sourceIp": info.source_ip,
                    "userAgent": info.user_agent,
                },
                "lastActiveAt": info.last_active_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }),
        Method::DELETE => sockets
            .disconnect(&id)
            .await
            .map(|()| StatusCode::NO_CONTENT.into_response()),
        _ => return (StatusCode::METHOD_NOT_ALLOWED, "use POST, GET or DELETE\n").into_response(),
    };
    result.unwrap_or_else(error_response)
}
