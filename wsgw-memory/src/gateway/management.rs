//! The Management API (`@connections`), answering exactly as API Gateway does so AWS SDK
//! clients map the errors to their own types, and checking who calls it as API Gateway
//! does (see [`ManagementAccess`](super::ManagementAccess)).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use wsgw_core::{ConnectionId, Error, MessageSink, Payload};

use super::{sigv4, Shared};

/// One `@connections` call.
struct Call {
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

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

/// `/@connections/{id}`: the stage left out, a deliberate difference from AWS for short
/// `curl` commands.
pub(super) async fn unstaged(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        peer,
        method,
        uri,
        headers,
        body,
    };
    respond(&shared, ConnectionId::from(id), call).await
}

/// `/{stage}/@connections/{id}`, as deployed; another stage is 403, as on AWS.
pub(super) async fn staged(
    State(shared): State<Arc<Shared>>,
    peer: ConnectInfo<SocketAddr>,
    Path((stage, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if stage != shared.stage {
        return aws_error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "Forbidden".to_owned(),
        );
    }
    unstaged(State(shared), peer, Path(id), method, uri, headers, body).await
}

async fn respond(shared: &Shared, id: ConnectionId, call: Call) -> Response {
    let response = match authorize(shared, &call) {
        Ok(()) => act(shared, id, call.method, call.body).await,
        Err(refusal) => {
            tracing::warn!(peer = %call.peer, path = call.uri.path(), error_type = refusal.error_type, message = %refusal.message, "@connections call refused");
            aws_error(StatusCode::FORBIDDEN, refusal.error_type, refusal.message)
        }
    };
    if !shared.management_latency.is_zero() {
        tokio::time::sleep(shared.management_latency).await;
    }
    response
}

/// Lets the call in when it names the gateway as its `Host`, comes from no web page of
/// another origin, and is signed with the gateway's credentials or comes from loopback
/// while that is trusted; otherwise API Gateway's 403.
fn authorize(shared: &Shared, call: &Call) -> Result<(), sigv4::Refusal> {
    let access = &shared.access;
    access.check_origin(shared.local_addr, &call.headers)?;
    // Trusted loopback is not checked at all, signed or not: local tools and tests sign
    // with whatever credentials they hold.
    if access.exempts(&call.peer) {
        return Ok(());
    }
    sigv4::verify(
        access.credentials(),
        &call.method,
        &call.uri,
        &call.headers,
        &call.body,
        SystemTime::now(),
    )
}

async fn act(shared: &Shared, id: ConnectionId, method: Method, body: Bytes) -> Response {
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
