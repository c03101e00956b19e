//! One WebSocket connection: the `$connect` handshake, then the socket loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite;
use wsgw_core::metrics::{Counter, Metrics};
use wsgw_core::{
    Authorization, ConnectionId, ConnectionInfo, GatewayError, MessageSink, Payload, Reply,
    Request, CONNECT, DISCONNECT,
};

use super::{Shared, Usage};
use crate::harness::{BINARY_FRAME_REASON, UNSUPPORTED_DATA};
use crate::ids::{new_connection_id, random_id};
use crate::{Outbox, OutboxMessages};

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
    api_id: String,
    authorizer: serde_json::Value,
}

impl Session {
    /// An event of this connection as API Gateway sends it: endpoint, API id, a fresh
    /// request id, and what `$connect` learned.
    fn request(&self, request: Request) -> Request {
        let mut request = request
            .with_endpoint(self.domain_name.clone(), self.stage.clone())
            .with_api_id(self.api_id.clone())
            .with_request_id(random_id())
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

/// The handshake answer to a `$connect` integration that failed, as API Gateway answers
/// it: 502 for an error or a panic (a failed Lambda invocation), 504 past the
/// integration timeout.
fn refuse_failed_connect<T, E>(outcome: &Guarded<T, E>) -> Response {
    let (status, message) = match outcome {
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
        _ => (StatusCode::BAD_GATEWAY, "Internal server error"),
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// The handshake answer beyond [`Limits::max_connections`](super::Limits::max_connections):
/// API Gateway's throttling answer.
fn too_many_connections() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"message":"Too Many Requests"}"#,
    )
        .into_response()
}

/// A connection's place among [`Limits::max_connections`](super::Limits::max_connections),
/// held by its socket task (or, when the upgrade fails, its `$disconnect`) and given back
/// when the last holder ends.
type Slot = Arc<OwnedSemaphorePermit>;

/// `requestContext.domainName`: the `Host` the client asked for, without the port, as
/// API Gateway's `{api}.execute-api.{region}.amazonaws.com` has none.
fn domain_name(host: Option<&String>) -> String {
    let Some(host) = host else {
        return "localhost".to_owned();
    };
    match host.parse::<axum::http::uri::Authority>() {
        Ok(authority) => authority.host().to_owned(),
        Err(_) => host.clone(),
    }
}

/// Runs the authorizer and `$connect`; accepts the upgrade only on a 2xx reply.
pub(super) async fn handshake(
    shared: Arc<Shared>,
    peer: SocketAddr,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return refuse(503);
    }
    let started = Instant::now();
    let Ok(slot) = shared.usage.connection_slots.clone().try_acquire_owned() else {
        tracing::warn!(%peer, max_connections = shared.limits.max_connections, "upgrade refused with 429: the gateway holds as many WebSocket connections as Limits::max_connections allows");
        let observer = shared.integration.observer();
        observer.count(Counter::Connects, CONNECT, 1);
        observer.count(Counter::ConnectsRefused, CONNECT, 1);
        return too_many_connections();
    };
    let slot: Slot = Arc::new(slot);
    let headers = lower_case_headers(&headers);
    let session = Session {
        id: new_connection_id(),
        connected_at: Utc::now(),
        source_ip: peer.ip().to_string(),
        user_agent: headers.get("user-agent").cloned(),
        stage: shared.stage.clone(),
        domain_name: domain_name(headers.get("host")),
        api_id: shared.api_id.clone(),
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
        AssertUnwindSafe(shared.integration.authorize(&request)).catch_unwind(),
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
                shared.integration.observer(),
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
        AssertUnwindSafe(shared.integration.connect(request)).catch_unwind(),
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
                shared.integration.observer(),
                &outcome,
                Counter::Connects,
                CONNECT,
                started,
            );
            return refuse_failed_connect(&outcome);
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
    let outbox = shared.sockets.attach(&session.id, info, limits.outbox());
    let failed = (shared.clone(), session.clone(), slot.clone());
    let tracked = shared.tracker.clone();
    upgrade
        .on_failed_upgrade(move |error| {
            let (shared, session, slot) = failed;
            tracing::warn!(connection_id = %session.id, %error, "upgrade failed after $connect");
            shared.sockets.remove(&session.id);
            let tracker = shared.tracker.clone();
            tracker.spawn(async move {
                run_disconnect(&shared, &session, ABNORMAL, "").await;
                drop(slot);
            });
        })
        .on_upgrade(move |socket| {
            tracked.track_future(async move {
                serve(shared, socket, session, outbox).await;
                drop(slot);
            })
        })
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
    let is_text = payload.is_text();
    let data = payload.bytes().clone();
    if is_text {
        // Text payloads hold valid UTF-8: this only checks it again, without copying.
        if let Ok(text) = Utf8Bytes::try_from(data.clone()) {
            return Message::Text(text);
        }
    }
    Message::Binary(data)
}

fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// What the socket reports to the loop.
enum SocketEvent {
    /// A frame or the end of the stream came in.
    Received(Option<Result<Message, axum::Error>>),
    /// Writing failed: the client is gone.
    WriteFailed,
}

/// The WebSocket and its outbox, driven from the connection's one task: the outbox is
/// written as soon as the socket takes it, and incoming frames are read when asked for.
///
/// One task per connection, rather than a reader, a writer and a route worker, keeps a
/// reply on the thread that read the message (no cross-task wake-ups) and an idle
/// connection small.
struct Socket {
    ws: WebSocket,
    reads: Arc<ReadWaker>,
    /// `reads` as a waker, made once.
    read_waker: Waker,
    outbox: OutboxMessages,
    /// A message was handed to the socket and not flushed yet.
    unflushed: bool,
    /// The last flush could not finish: the client is not reading.
    blocked: bool,
    /// When the last message went out, if one did since the loop last looked.
    wrote_at: Option<tokio::time::Instant>,
}

/// Wakes the connection's task for the socket's reads and remembers that it did.
///
/// Every read attempt costs tungstenite a zero-fill of its read buffer, and the task
/// wakes for many other reasons (a reply or a post in the outbox, a route finishing):
/// the loop reads only when the socket has woken it since its last read came back empty.
#[derive(Default)]
struct ReadWaker {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Socket {
    fn new(ws: WebSocket, outbox: OutboxMessages) -> Self {
        let reads = Arc::new(ReadWaker::default());
        // Nothing has been read yet: the first read must happen.
        reads.woken.store(true, Ordering::Relaxed);
        Socket {
            ws,
            read_waker: Waker::from(reads.clone()),
            reads,
            outbox,
            unflushed: false,
            blocked: false,
            wrote_at: None,
        }
    }

    /// Writes what the outbox holds, then reads one frame if `read`.
    fn poll_event(&mut self, cx: &mut std::task::Context<'_>, read: bool) -> Poll<SocketEvent> {
        if self.poll_write(cx).is_err() {
            return Poll::Ready(SocketEvent::WriteFailed);
        }
        if read {
            self.reads.task.register(cx.waker());
            // Cleared before reading, so a wake-up during the read is not lost.
            if self.reads.woken.swap(false, Ordering::AcqRel) {
                let mut reading = std::task::Context::from_waker(&self.read_waker);
                if let Poll::Ready(received) = self.ws.poll_next_unpin(&mut reading) {
                    // tungstenite may hold the next frame already: read again next time.
                    self.reads.woken.store(true, Ordering::Release);
                    return Poll::Ready(SocketEvent::Received(received));
                }
            }
        }
        Poll::Pending
    }

    /// Flushes, then moves outbox messages to the socket until the outbox is empty or
    /// the socket is full (tokio's cooperative budget bounds the loop).
    fn poll_write(&mut self, cx: &mut std::task::Context<'_>) -> Result<(), axum::Error> {
        loop {
            if self.unflushed {
                match self.ws.poll_flush_unpin(cx) {
                    Poll::Ready(flushed) => {
                        flushed?;
                        self.unflushed = false;
                        self.blocked = false;
                    }
                    Poll::Pending => {
                        self.blocked = true;
                        return Ok(());
                    }
                }
            }
            // A flushed socket is ready for the next message.
            match self.ws.poll_ready_unpin(cx) {
                Poll::Ready(ready) => ready?,
                Poll::Pending => {
                    self.blocked = true;
                    return Ok(());
                }
            }
            match self.outbox.poll_recv(cx) {
                Poll::Ready(Some(payload)) => {
                    self.ws.start_send_unpin(to_message(payload))?;
                    self.unflushed = true;
                    self.wrote_at = Some(tokio::time::Instant::now());
                }
                Poll::Ready(None) | Poll::Pending => return Ok(()),
            }
        }
    }
}

/// One message on its way through the router; it resolves to the message's size.
type Routing = Pin<Box<dyn Future<Output = usize> + Send>>;

/// The messages of a connection being routed, concurrently, as API Gateway invokes the
/// integration once per message with nothing serialising them. The set is made at the
/// first message, so an idle connection does not carry it.
///
/// Their bytes are counted here and in the gateway's total
/// ([`ResourceUsage::inbound_bytes`](super::ResourceUsage::inbound_bytes)).
struct InFlight {
    routing: Option<FuturesUnordered<Routing>>,
    bytes: usize,
    total: Arc<Usage>,
}

impl InFlight {
    fn new(total: Arc<Usage>) -> Self {
        InFlight {
            routing: None,
            bytes: 0,
            total,
        }
    }

    fn len(&self) -> usize {
        self.routing.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether another message may be read: below both bounds, or nothing in flight
    /// (a message larger than the byte bound still gets through, alone).
    fn has_room(&self, limits: &super::Limits) -> bool {
        self.is_empty()
            || (self.len() < limits.max_concurrent_messages
                && self.bytes < limits.max_inbound_bytes)
    }

    fn push(&mut self, routing: Routing, bytes: usize) {
        self.bytes += bytes;
        self.total.inbound_bytes.fetch_add(bytes, Ordering::AcqRel);
        self.routing
            .get_or_insert_with(FuturesUnordered::new)
            .push(routing);
    }

    fn finished(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.total.inbound_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Ready when one of the messages finished.
    fn poll_finished(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        match self
            .routing
            .as_mut()
            .map(|routing| routing.poll_next_unpin(cx))
        {
            Some(Poll::Ready(Some(bytes))) => {
                self.finished(bytes);
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }

    /// Waits for every message still being routed.
    async fn finish(mut self) {
        if let Some(mut routing) = self.routing.take() {
            while let Some(bytes) = routing.next().await {
                self.finished(bytes);
            }
        }
    }
}

impl Drop for InFlight {
    /// Messages dropped unfinished (the task ended early) give their bytes back too.
    fn drop(&mut self) {
        self.total
            .inbound_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// How the loop ended: the `$disconnect` code and reason, and the close frame to send
/// (none when the client closed, vanished, or stopped reading).
type Ending = (u16, String, Option<Message>);

/// `duration` after `at`, or decades later when that does not fit.
fn later(at: tokio::time::Instant, duration: std::time::Duration) -> tokio::time::Instant {
    at.checked_add(duration)
        .unwrap_or_else(|| at + std::time::Duration::from_secs(30 * 365 * 24 * 60 * 60))
}

/// `1001` for the timeouts and shutdown. A client that stops reading blocks the socket
/// once its buffers are full (and the outbox then fills: posts are throttled); the
/// timeouts, shutdown and `DELETE` still close it, by dropping the socket: no close frame
/// would fit.
fn going_away(blocked: bool) -> Ending {
    let frame = (!blocked).then(|| close_message(GOING_AWAY, "Going away"));
    (GOING_AWAY, "Going away".to_owned(), frame)
}

/// The socket loop: writes the outbox, reads messages and routes each as it arrives,
/// several at once (replies and error frames go out as each finishes, in any order, as
/// on AWS), closes on a binary frame with 1003, enforces the idle timeout and maximum
/// duration, and closes on shutdown or `DELETE`. With
/// [`Limits::max_concurrent_messages`](super::Limits::max_concurrent_messages) messages,
/// or [`Limits::max_inbound_bytes`](super::Limits::max_inbound_bytes) bytes, in flight it
/// stops reading until one finishes.
async fn serve(shared: Arc<Shared>, socket: WebSocket, session: Session, outbox: Outbox) {
    let session = Arc::new(session);
    let limits = shared.limits.clone();
    let Outbox {
        messages,
        close: mut deleted,
        activity,
    } = outbox;
    let mut socket = Socket::new(socket, messages);
    let mut in_flight = InFlight::new(shared.usage.clone());
    // One timer for the idle timeout and the maximum duration, re-armed only when it
    // fires, from the last activity: resetting it on every message would cost a
    // timer-wheel update each time.
    let mut last_activity = tokio::time::Instant::now();
    let ends_at = later(last_activity, limits.max_connection_duration);
    let timer = tokio::time::sleep_until(later(last_activity, limits.idle_timeout).min(ends_at));
    let shutdown = shared.shutdown.cancelled();
    tokio::pin!(timer, shutdown);

    let (code, reason, we_close): Ending = loop {
        let read = in_flight.has_room(&limits);
        // In this order: the closing signals, then the messages being routed, then the
        // socket, which writes their replies in the same pass. Nothing starves: the
        // signals are cheap and rarely ready, and tokio's cooperative budget ends a
        // flood of reads or of finished messages.
        let ended = tokio::select! {
            biased;
            _ = &mut deleted => Some((NORMAL, String::new(), (!socket.blocked).then(|| close_message(NORMAL, "")))),
            () = &mut timer => {
                let idle_until = later(last_activity, limits.idle_timeout);
                let now = tokio::time::Instant::now();
                if idle_until <= now || ends_at <= now {
                    Some(going_away(socket.blocked))
                } else {
                    timer.as_mut().reset(idle_until.min(ends_at));
                    None
                }
            }
            () = &mut shutdown => Some(going_away(socket.blocked)),
            () = std::future::poll_fn(|cx| in_flight.poll_finished(cx)), if !in_flight.is_empty() => None,
            event = std::future::poll_fn(|cx| socket.poll_event(cx, read)) => match event {
                SocketEvent::WriteFailed => Some((ABNORMAL, String::new(), None)),
                SocketEvent::Received(received) => {
                    let body = match received {
                        Some(Ok(Message::Text(text))) => Payload::text_from_bytes(Bytes::from(text)).ok(),
                        // API Gateway does not take binary frames from clients: it closes
                        // the connection with 1003 ("Binary media types for WebSocket
                        // APIs" in its developer guide).
                        Some(Ok(Message::Binary(_))) => {
                            tracing::info!(connection_id = %session.id, "closing: binary frame (API Gateway closes with 1003)");
                            break (UNSUPPORTED_DATA, BINARY_FRAME_REASON.to_owned(), Some(close_message(UNSUPPORTED_DATA, BINARY_FRAME_REASON)));
                        }
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
                    last_activity = tokio::time::Instant::now();
                    activity.touch();
                    if let Some(body) = body {
                        let bytes = body.len();
                        // Boxed: the task of an idle connection keeps room for its
                        // largest state, and a router's futures inline would make that
                        // several KB.
                        let routing = route_message(shared.clone(), session.clone(), body);
                        in_flight.push(Box::pin(async move { routing.await; bytes }), bytes);
                    }
                    None
                }
            },
        };
        if let Some(wrote_at) = socket.wrote_at.take() {
            last_activity = last_activity.max(wrote_at);
        }
        if let Some(ended) = ended {
            if socket.blocked {
                tracing::debug!(connection_id = %session.id, code = ended.0, "closed while a write was blocked");
            }
            break ended;
        }
    };
    shared.sockets.remove(&session.id);
    let closing = async {
        if let Some(close) = we_close {
            if socket.ws.send(close).await.is_ok() {
                // Give the client a moment to answer the close handshake, then drop the socket.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                    while let Some(Ok(_)) = socket.ws.next().await {}
                })
                .await;
            }
        }
    };
    // Messages still being routed finish while the connection is already gone, as on
    // AWS where in-flight invocations outlive the socket.
    tokio::join!(closing, in_flight.finish());
    Box::pin(run_disconnect(&shared, &session, code, &reason)).await;
}

/// Routes one message and sends the caller what API Gateway would: a two-way route's
/// reply body (the router has dropped a one-way route's), the `Forbidden` frame when no
/// route matched, `Internal server error` for a failed handler, `Endpoint request timed
/// out` past the integration timeout.
async fn route_message(shared: Arc<Shared>, session: Arc<Session>, body: Payload) {
    let started = Instant::now();
    let route_key = shared.integration.select_route(&body);
    let request = session.request(
        Request::message(session.id.clone(), body)
            .with_route_key(route_key.clone())
            .with_message_id(random_id()),
    );
    let request_id = request.request_id.clone();
    let outcome = tokio::time::timeout(
        shared.limits.handler_timeout,
        AssertUnwindSafe(shared.integration.message(request)).catch_unwind(),
    )
    .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    report_abort(
        shared.integration.observer(),
        &outcome,
        Counter::Messages,
        &route_key,
        started,
    );
    let answer = match outcome {
        Ok(Ok(Ok(reply))) => {
            tracing::info!(connection_id = %session.id, route = %route_key, status = reply.status, latency_ms, "route");
            reply.body
        }
        Err(_) => {
            tracing::error!(connection_id = %session.id, route = %route_key, latency_ms, "route timed out");
            Some(GatewayError::EndpointRequestTimedOut.frame(&session.id, &request_id))
        }
        outcome => {
            tracing::error!(connection_id = %session.id, route = %route_key, failure = %describe_failure(&outcome), latency_ms, "route failed");
            Some(GatewayError::InternalServerError.frame(&session.id, &request_id))
        }
    };
    if let Some(answer) = answer {
        if let Err(error) = shared.sockets.send(&session.id, answer).await {
            tracing::warn!(connection_id = %session.id, route = %route_key, %error, "reply not delivered");
        }
    }
}

async fn run_disconnect(shared: &Shared, session: &Session, code: u16, reason: &str) {
    let started = Instant::now();
    let request = session.request(Request::disconnect(session.id.clone(), code, reason));
    let outcome = tokio::time::timeout(
        shared.limits.handler_timeout,
        AssertUnwindSafe(shared.integration.disconnect(request)).catch_unwind(),
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
                shared.integration.observer(),
                &outcome,
                Counter::Disconnects,
                DISCONNECT,
                started,
            );
        }
    }
}
