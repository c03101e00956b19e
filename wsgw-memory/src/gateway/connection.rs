//! One WebSocket connection: the `$connect` handshake, then the socket loop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;
use wsgw_core::metrics::{Counter, Metrics};
use wsgw_core::{
    Authorization, ConnectionId, ConnectionInfo, MessageSink, Payload, Reply, Request, CONNECT,
    DISCONNECT,
};

use super::Shared;
use crate::ids::{new_connection_id, random_id};
use crate::{internal_error_message, Outbox};

/// Close code for a message or frame over the limits.
const MESSAGE_TOO_BIG: u16 = 1009;
/// Close code for a text message that is not valid UTF-8.
const INVALID_PAYLOAD: u16 = 1007;
/// Close code for idle timeout, maximum duration and shutdown.
const GOING_AWAY: u16 = 1001;
/// Close code when the Management API deletes the connection.
const NORMAL: u16 = 1000;
/// `$disconnect` code when the client sent a close frame without a code.
const NO_STATUS: u16 = 1005;
/// `$disconnect` code when the client vanished without a close frame.
const ABNORMAL: u16 = 1006;
/// tungstenite's read buffer per connection, allocated at the upgrade.
const SOCKET_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes tungstenite gathers before writing to the socket (every send here flushes).
const SOCKET_WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// What later events of a connection carry over from its `$connect`.
#[derive(Clone)]
struct Session {
    id: ConnectionId,
    connected_at: DateTime<Utc>,
    source_ip: String,
    user_agent: Option<String>,
    stage: String,
    domain_name: String,
    authorizer: serde_json::Value,
}

impl Session {
    fn request(&self, request: Request) -> Request {
        let mut request = request
            .with_endpoint(self.domain_name.clone(), self.stage.clone())
            .with_source_ip(self.source_ip.clone())
            .with_connected_at(self.connected_at)
            .with_authorizer(self.authorizer.clone());
        if let Some(user_agent) = &self.user_agent {
            request = request.with_user_agent(user_agent.clone());
        }
        request
    }
}

pub(super) fn lower_case_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    wsgw_core::collect_headers(
        headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    )
}

fn refuse(status: u16) -> Response {
    StatusCode::from_u16(status)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        .into_response()
}

/// Runs the authorizer and `$connect`; accepts the upgrade only on a 2xx reply.
pub(super) async fn handshake<S: Send + Sync + 'static>(
    shared: Arc<Shared<S>>,
    peer: SocketAddr,
    stage: String,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return refuse(503);
    }
    let started = Instant::now();
    let headers = lower_case_headers(&headers);
    let session = Session {
        id: new_connection_id(),
        connected_at: Utc::now(),
        source_ip: peer.ip().to_string(),
        user_agent: headers.get("user-agent").cloned(),
        stage,
        domain_name: headers
            .get("host")
            .cloned()
            .unwrap_or_else(|| "localhost".to_owned()),
        authorizer: serde_json::Value::Null,
    };
    let mut request = session.request(Request::connect(session.id.clone()));
    request.headers = headers;
    request.query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();

    let limits = &shared.limits;
    let authorization = tokio::time::timeout(
        limits.handler_timeout,
        AssertUnwindSafe(shared.router.authorize(&request)).catch_unwind(),
    )
    .await;
    let authorizer = match authorization {
        Ok(Ok(Ok(Authorization::Allow(context)))) => context,
        Ok(Ok(Ok(Authorization::Deny(status)))) => {
            tracing::info!(connection_id = %session.id, status, "$connect denied by the authorizer");
            return refuse(status);
        }
        outcome => {
            tracing::error!(connection_id = %session.id, failure = %describe_failure(&outcome), "authorizer failed");
            report_abort(
                shared.router.observer(),
                &outcome,
                Counter::Connects,
                CONNECT,
                started,
            );
            return refuse(500);
        }
    };
    let session = Session {
        authorizer,
        ..session
    };
    let request = request.with_authorizer(session.authorizer.clone());
    let outcome = tokio::time::timeout(
        limits.handler_timeout,
        AssertUnwindSafe(shared.router.handle(request)).catch_unwind(),
    )
    .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let reply: Reply = match outcome {
        Ok(Ok(Ok(reply))) if !reply.is_rejection() => reply,
        Ok(Ok(Ok(reply))) => {
            tracing::info!(connection_id = %session.id, status = reply.status, latency_ms, "$connect refused");
            return refuse(reply.status);
        }
        outcome => {
            tracing::error!(connection_id = %session.id, failure = %describe_failure(&outcome), latency_ms, "$connect failed");
            report_abort(
                shared.router.observer(),
                &outcome,
                Counter::Connects,
                CONNECT,
                started,
            );
            return refuse(500);
        }
    };
    tracing::info!(connection_id = %session.id, source_ip = %session.source_ip, latency_ms, "$connect");

    // tungstenite allocates its read buffer per connection up front (128 KiB by default,
    // which made an idle connection cost ~140 KiB): a small one keeps 10,000 idle
    // connections cheap. Bigger frames are still read whole (the codec reserves a frame's
    // length once its header is parsed), so the frame and message limits are unchanged.
    let mut upgrade = upgrade
        .read_buffer_size(SOCKET_READ_BUFFER_BYTES)
        .write_buffer_size(SOCKET_WRITE_BUFFER_BYTES)
        .max_frame_size(limits.max_frame_bytes)
        .max_message_size(limits.max_message_bytes);
    if let Some(protocol) = reply.headers.get("sec-websocket-protocol") {
        upgrade = upgrade.protocols([protocol.clone()]);
    }
    // Reachable through the Management API from now on; messages posted before the
    // socket loop starts wait in the outbox.
    let info = ConnectionInfo::new(
        session.connected_at,
        Some(session.source_ip.clone()),
        session.user_agent.clone(),
    );
    let outbox = shared
        .sockets
        .attach(&session.id, info, limits.outbox_capacity);
    let failed = (shared.clone(), session.clone());
    let tracked = shared.tracker.clone();
    upgrade
        .on_failed_upgrade(move |error| {
            let (shared, session) = failed;
            tracing::warn!(connection_id = %session.id, %error, "upgrade failed after $connect");
            shared.sockets.remove(&session.id);
            let tracker = shared.tracker.clone();
            tracker.spawn(async move { run_disconnect(&shared, &session, ABNORMAL, "").await });
        })
        .on_upgrade(move |socket| tracked.track_future(serve(shared, socket, session, outbox)))
}

/// A handler run guarded against panics (`catch_unwind`) and overruns (`timeout`).
pub(super) type Guarded<T, E> =
    Result<Result<Result<T, E>, Box<dyn std::any::Any + Send>>, tokio::time::error::Elapsed>;

/// Reports to the router's observers what the router itself could not: a handler that
/// panicked or ran past the timeout (a returned error the router counted already).
pub(super) fn report_abort<T, E>(
    observer: &dyn Metrics,
    outcome: &Guarded<T, E>,
    counter: Counter,
    route: &str,
    started: Instant,
) {
    if matches!(outcome, Ok(Ok(_))) {
        return;
    }
    observer.count(counter, route, 1);
    if counter == Counter::Connects {
        observer.count(Counter::ConnectsRefused, route, 1);
    }
    observer.count(Counter::HandlerErrors, route, 1);
    observer.latency(route, started.elapsed());
}

fn describe_failure<T, E: std::fmt::Display>(outcome: &Guarded<T, E>) -> String {
    match outcome {
        Ok(Ok(Ok(_))) => "no failure".to_owned(),
        Ok(Ok(Err(error))) => error.to_string(),
        Ok(Err(_)) => "the handler panicked".to_owned(),
        Err(_) => "the handler timed out".to_owned(),
    }
}

/// Whether tungstenite's error behind `error` is one `matches` recognises.
fn caused_by(error: &axum::Error, matches: impl Fn(&tungstenite::Error) -> bool) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current
            .downcast_ref::<tungstenite::Error>()
            .is_some_and(&matches)
        {
            return true;
        }
        source = current.source();
    }
    false
}

fn is_too_big(error: &axum::Error) -> bool {
    caused_by(error, |error| {
        matches!(error, tungstenite::Error::Capacity(_))
    })
}

/// A text message that is not UTF-8 (RFC 6455 §8.1: fail with 1007).
fn is_invalid_utf8(error: &axum::Error) -> bool {
    caused_by(error, |error| matches!(error, tungstenite::Error::Utf8(_)))
}

fn to_message(payload: Payload) -> Message {
    match payload.as_text() {
        Some(text) => Message::Text(text.into()),
        None => Message::Binary(payload.bytes().clone()),
    }
}

fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The socket loop: reads messages into the route worker, writes the outbox, enforces
/// the idle timeout and maximum duration, and closes on shutdown or `DELETE`.
async fn serve<S: Send + Sync + 'static>(
    shared: Arc<Shared<S>>,
    socket: WebSocket,
    session: Session,
    mut outbox: Outbox,
) {
    let limits = shared.limits.clone();
    let (mut writer, mut reader) = socket.split();
    let (inbound, queue) = mpsc::channel::<Payload>(limits.outbox_capacity);
    let worker = tokio::spawn(route_messages(shared.clone(), session.clone(), queue));
    let idle = tokio::time::sleep(limits.idle_timeout);
    let lifetime = tokio::time::sleep(limits.max_connection_duration);
    tokio::pin!(idle, lifetime);

    let (code, reason, we_close): (u16, String, Option<Message>) = loop {
        tokio::select! {
            incoming = reader.next() => {
                let payload = match incoming {
                    Some(Ok(Message::Text(text))) => Payload::text_from_bytes(Bytes::from(text)).ok(),
                    Some(Ok(Message::Binary(data))) => Some(Payload::binary(data)),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(frame) => (frame.code, frame.reason.as_str().to_owned(), None),
                            None => (NO_STATUS, String::new(), None),
                        };
                    }
                    Some(Err(error)) if is_too_big(&error) => {
                        tracing::info!(connection_id = %session.id, %error, "closing: message too big");
                        break (MESSAGE_TOO_BIG, "Message too big".to_owned(), Some(close_message(MESSAGE_TOO_BIG, "Message too big")));
                    }
                    Some(Err(error)) if is_invalid_utf8(&error) => {
                        tracing::info!(connection_id = %session.id, %error, "closing: text message not UTF-8");
                        break (INVALID_PAYLOAD, "Invalid frame payload data".to_owned(), Some(close_message(INVALID_PAYLOAD, "Invalid frame payload data")));
                    }
                    Some(Err(error)) => {
                        tracing::debug!(connection_id = %session.id, %error, "socket error");
                        break (ABNORMAL, String::new(), None);
                    }
                    None => break (ABNORMAL, String::new(), None),
                };
                idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                shared.sockets.touch(&session.id);
                if let Some(payload) = payload {
                    if inbound.send(payload).await.is_err() {
                        break (ABNORMAL, String::new(), None);
                    }
                }
            }
            Some(payload) = outbox.messages.recv() => {
                idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                // A client that stops reading blocks this write once its buffers are full
                // (and the outbox then fills: posts are throttled). `DELETE`, the timeouts
                // and shutdown still close it meanwhile, by dropping the socket: no close
                // frame would fit.
                let ended = tokio::select! {
                    written = writer.send(to_message(payload)) => {
                        written.err().map(|_| (ABNORMAL, String::new(), None))
                    }
                    _ = &mut outbox.close => Some((NORMAL, String::new(), None)),
                    () = &mut idle => Some((GOING_AWAY, "Going away".to_owned(), None)),
                    () = &mut lifetime => Some((GOING_AWAY, "Going away".to_owned(), None)),
                    () = shared.shutdown.cancelled() => Some((GOING_AWAY, "Going away".to_owned(), None)),
                };
                if let Some(ended) = ended {
                    tracing::debug!(connection_id = %session.id, code = ended.0, "closed while a write was blocked");
                    break ended;
                }
            }
            _ = &mut outbox.close => break (NORMAL, String::new(), Some(close_message(NORMAL, ""))),
            () = &mut idle => break (GOING_AWAY, "Going away".to_owned(), Some(close_message(GOING_AWAY, "Going away"))),
            () = &mut lifetime => break (GOING_AWAY, "Going away".to_owned(), Some(close_message(GOING_AWAY, "Going away"))),
            () = shared.shutdown.cancelled() => break (GOING_AWAY, "Going away".to_owned(), Some(close_message(GOING_AWAY, "Going away"))),
        }
    };
    shared.sockets.remove(&session.id);
    if let Some(close) = we_close {
        if writer.send(close).await.is_ok() {
            // Give the client a moment to answer the close handshake, then drop the socket.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                while let Some(Ok(_)) = reader.next().await {}
            })
            .await;
        }
    }
    drop(inbound);
    // Messages still queued are answered while the connection is already gone, as on AWS
    // where in-flight invocations outlive the socket.
    if let Err(error) = worker.await {
        tracing::error!(connection_id = %session.id, %error, "route worker failed");
    }
    run_disconnect(&shared, &session, code, &reason).await;
}

/// Routes one connection's messages in arrival order, so replies keep that order.
async fn route_messages<S: Send + Sync + 'static>(
    shared: Arc<Shared<S>>,
    session: Session,
    mut queue: mpsc::Receiver<Payload>,
) {
    while let Some(body) = queue.recv().await {
        let started = Instant::now();
        let message_id = random_id();
        let route_key = shared.router.select_route(Some(&body));
        let request = session.request(
            Request::message(session.id.clone(), body)
                .with_route_key(route_key.clone())
                .with_message_id(message_id.clone()),
        );
        let outcome = tokio::time::timeout(
            shared.limits.handler_timeout,
            AssertUnwindSafe(shared.router.handle(request)).catch_unwind(),
        )
        .await;
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let answer = match outcome {
            Ok(Ok(Ok(reply))) => {
                tracing::info!(connection_id = %session.id, route = %route_key, status = reply.status, latency_ms, "route");
                reply.body
            }
            Err(_) => {
                tracing::error!(connection_id = %session.id, route = %route_key, latency_ms, "route timed out");
                report_abort(
                    shared.router.observer(),
                    &outcome,
                    Counter::Messages,
                    &route_key,
                    started,
                );
                Some(Payload::text(
                    serde_json::json!({
                        "message": "Endpoint request timed out",
                        "connectionId": session.id.as_str(),
                        "requestId": message_id,
                    })
                    .to_string(),
                ))
            }
            outcome => {
                tracing::error!(connection_id = %session.id, route = %route_key, failure = %describe_failure(&outcome), latency_ms, "route failed");
                report_abort(
                    shared.router.observer(),
                    &outcome,
                    Counter::Messages,
                    &route_key,
                    started,
                );
                Some(internal_error_message(&session.id, &message_id))
            }
        };
        if let Some(answer) = answer {
            if let Err(error) = shared.sockets.send(&session.id, answer).await {
                tracing::warn!(connection_id = %session.id, route = %route_key, %error, "reply not delivered");
            }
        }
    }
}

async fn run_disconnect<S: Send + Sync + 'static>(
    shared: &Shared<S>,
    session: &Session,
    code: u16,
    reason: &str,
) {
    let started = Instant::now();
    let request = session.request(Request::disconnect(session.id.clone(), code, reason));
    let outcome = tokio::time::timeout(
        shared.limits.handler_timeout,
        AssertUnwindSafe(shared.router.handle(request)).catch_unwind(),
    )
    .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    match outcome {
        Ok(Ok(Ok(_))) => {
            tracing::info!(connection_id = %session.id, code, reason, latency_ms, "$disconnect")
        }
        outcome => {
            tracing::error!(connection_id = %session.id, code, failure = %describe_failure(&outcome), latency_ms, "$disconnect failed");
            report_abort(
                shared.router.observer(),
                &outcome,
                Counter::Disconnects,
                DISCONNECT,
                started,
            );
        }
    }
}
