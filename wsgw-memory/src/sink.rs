//! `MemorySink`: records deliveries for assertions, or hands them to live sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use wsgw_core::{ConnectionId, ConnectionInfo, Error, MessageSink, Payload, Result};

/// API Gateway's largest message payload: 128 KB.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// Messages queued per live connection before sends are answered with `Throttled`
/// (API Gateway's `LimitExceededException`).
pub const DEFAULT_OUTBOX_CAPACITY: usize = 1024;

/// Bytes queued per live connection before sends are answered with `Throttled`: 512 KiB,
/// four of the largest messages.
pub const DEFAULT_OUTBOX_BYTES: usize = 512 * 1024;

/// How much a live connection's outbox holds (messages its socket has not taken yet)
/// before sends to it are answered with `Throttled`, API Gateway's
/// `LimitExceededException` (429).
///
/// Both bounds hold at once. A message is always taken into an empty outbox, so one
/// larger than `bytes` still goes out, alone: the outbox never holds more than `bytes`
/// plus one message.
///
/// ```
/// use wsgw_memory::OutboxLimits;
///
/// let limits = OutboxLimits::new(1024, 512 * 1024);
/// assert_eq!(limits, OutboxLimits::default());
/// // A bare number bounds messages only, as `MemorySink::attach` once took it.
/// assert_eq!(OutboxLimits::from(16), OutboxLimits::new(16, usize::MAX));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Messages queued at most (at least 1).
    pub messages: usize,
    /// Bytes queued at most, beyond one message.
    pub bytes: usize,
}

impl OutboxLimits {
    /// At most `messages` messages and `bytes` bytes.
    pub fn new(messages: usize, bytes: usize) -> Self {
        OutboxLimits { messages, bytes }
    }
}

impl Default for OutboxLimits {
    /// [`DEFAULT_OUTBOX_CAPACITY`] messages, [`DEFAULT_OUTBOX_BYTES`] bytes.
    fn default() -> Self {
        OutboxLimits::new(DEFAULT_OUTBOX_CAPACITY, DEFAULT_OUTBOX_BYTES)
    }
}

impl From<usize> for OutboxLimits {
    /// At most `messages` messages, of any total size.
    fn from(messages: usize) -> Self {
        OutboxLimits::new(messages, usize::MAX)
    }
}

/// Bytes queued: one connection's, and the sink's total, kept together so every change
/// updates both.
#[derive(Debug, Clone)]
struct QueuedBytes {
    connection: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl QueuedBytes {
    fn add(&self, bytes: usize) {
        self.connection.fetch_add(bytes, Ordering::AcqRel);
        self.total.fetch_add(bytes, Ordering::AcqRel);
    }

    fn remove(&self, bytes: usize) {
        self.connection.fetch_sub(bytes, Ordering::AcqRel);
        self.total.fetch_sub(bytes, Ordering::AcqRel);
    }
}

enum Outlet {
    Record {
        sent: Vec<Payload>,
    },
    Live {
        messages: mpsc::Sender<Payload>,
        queued: QueuedBytes,
        max_bytes: usize,
        close: Option<oneshot::Sender<()>>,
    },
}

struct Endpoint {
    info: ConnectionInfo,
    activity: Activity,
    outlet: Outlet,
    /// Recorded connections stay after a server-side close so tests can still read what
    /// was delivered; they no longer accept messages.
    open: bool,
}

/// When a connection last had traffic (its `last_active_at`), shared by the sink and the
/// connection's socket so the socket records each frame without taking the sink's lock.
#[derive(Debug, Clone)]
pub struct Activity(Arc<AtomicI64>);

impl Activity {
    fn at(at: DateTime<Utc>) -> Self {
        Activity(Arc::new(AtomicI64::new(at.timestamp_micros())))
    }

    /// Records traffic now.
    pub fn touch(&self) {
        self.0
            .fetch_max(Utc::now().timestamp_micros(), Ordering::Relaxed);
    }

    /// When the connection last had traffic.
    pub fn last(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::Relaxed))
    }
}

/// The connections by id. foldhash rather than SipHash: every delivery looks its
/// connection up, and ids come from the gateway (requests only look them up), so there
/// is no table for a client to flood.
type Endpoints = HashMap<ConnectionId, Endpoint, foldhash::fast::RandomState>;

/// The receiving end of a live connection registered with [`MemorySink::attach`].
#[derive(Debug)]
pub struct Outbox {
    /// Messages to write to the socket, in order.
    pub messages: OutboxMessages,
    /// Resolves when the connection is closed through [`MessageSink::disconnect`].
    pub close: oneshot::Receiver<()>,
    /// Where the socket records incoming traffic (the sink records what it delivers).
    pub activity: Activity,
}

/// The messages queued for a live connection, oldest first. Taking one frees its bytes
/// from the outbox's bound ([`OutboxLimits`]); dropping this frees what is left.
#[derive(Debug)]
pub struct OutboxMessages {
    receiver: mpsc::Receiver<Payload>,
    queued: QueuedBytes,
}

impl OutboxMessages {
    /// The next message, once there is one; `None` once the connection is gone from
    /// the sink and nothing is left.
    pub async fn recv(&mut self) -> Option<Payload> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> std::result::Result<Payload, mpsc::error::TryRecvError> {
        let payload = self.receiver.try_recv()?;
        self.queued.remove(payload.len());
        Ok(payload)
    }

    /// Polls for the next message (see [`recv`](Self::recv)).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        let polled = self.receiver.poll_recv(cx);
        if let Poll::Ready(Some(payload)) = &polled {
            self.queued.remove(payload.len());
        }
        polled
    }

    /// Bytes queued for this connection now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.connection.load(Ordering::Acquire)
    }
}

impl Drop for OutboxMessages {
    fn drop(&mut self) {
        // Closed first, so no send lands after the last count; what is left is freed.
        self.receiver.close();
        while let Ok(payload) = self.receiver.try_recv() {
            self.queued.remove(payload.len());
        }
    }
}

/// A [`MessageSink`] in process memory.
///
/// A connection is reachable from the moment it is registered, which the gateway (or
/// [`Harness`](crate::Harness)) does only after `$connect` succeeded, so sends from
/// `$connect` are `Gone`, as on AWS. Registered with [`open`](Self::open), it records every
/// delivery for assertions; with [`attach`](Self::attach) it hands deliveries to a live
/// socket.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use wsgw_core::{ConnectionId, MessageSink, Payload};
/// use wsgw_memory::MemorySink;
///
/// let sink = MemorySink::new();
/// let id = ConnectionId::new("a=");
/// assert!(sink.send(&id, Payload::text("early")).await.unwrap_err().is_gone());
/// sink.open(&id, None, None);
/// sink.send(&id, Payload::text("hello")).await?;
/// assert_eq!(sink.sent_to(&id), vec![Payload::text("hello")]);
/// # Ok(())
/// # }
/// ```
pub struct MemorySink {
    endpoints: Mutex<Endpoints>,
    closed_by_server: Mutex<Vec<ConnectionId>>,
    max_payload: usize,
    /// Bytes queued for every live connection together.
    queued_bytes: Arc<AtomicUsize>,
}

impl Default for MemorySink {
    fn default() -> Self {
        MemorySink {
            endpoints: Mutex::new(Endpoints::default()),
            closed_by_server: Mutex::new(Vec::new()),
            max_payload: MAX_PAYLOAD_BYTES,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl std::fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySink")
            .field("connections", &self.lock().len())
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

impl MemorySink {
    /// A sink with API Gateway's 128 KB payload limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the largest payload accepted; larger ones are `PayloadTooLarge`.
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The largest payload accepted.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    fn lock(&self) -> MutexGuard<'_, Endpoints> {
        self.endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn info_now(source_ip: Option<String>, user_agent: Option<String>) -> ConnectionInfo {
        ConnectionInfo::new(Utc::now(), source_ip, user_agent)
    }

    /// Registers a connection whose deliveries are recorded (see [`sent_to`](Self::sent_to)).
    pub fn open(&self, id: &ConnectionId, source_ip: Option<String>, user_agent: Option<String>) {
        self.lock().insert(
            id.clone(),
            Endpoint {
                activity: Activity::at(Utc::now()),
                info: Self::info_now(source_ip, user_agent),
                outlet: Outlet::Record { sent: Vec::new() },
                open: true,
            },
        );
    }

    /// Registers a live connection: deliveries go to the returned [`Outbox`], and sends
    /// are `Throttled` while it holds what `limits` allows (a bare number bounds
    /// messages only).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use wsgw_core::{ConnectionId, ConnectionInfo, MessageSink, Payload};
    /// use wsgw_memory::{MemorySink, OutboxLimits};
    ///
    /// let sink = MemorySink::new();
    /// let id = ConnectionId::new("a=");
    /// let info = ConnectionInfo::new(chrono::Utc::now(), None, None);
    /// let mut outbox = sink.attach(&id, info, OutboxLimits::new(100, 8));
    /// sink.send(&id, Payload::text("12345")).await.unwrap();
    /// let full = sink.send(&id, Payload::text("6789")).await.unwrap_err();
    /// assert!(full.is_throttled(), "5 + 4 bytes is over 8");
    /// assert_eq!(sink.queued_bytes(), 5);
    /// assert_eq!(outbox.messages.recv().await, Some(Payload::text("12345")));
    /// sink.send(&id, Payload::text("6789")).await.unwrap();
    /// # }
    /// ```
    pub fn attach(
        &self,
        id: &ConnectionId,
        info: ConnectionInfo,
        limits: impl Into<OutboxLimits>,
    ) -> Outbox {
        let limits = limits.into();
        let (messages, receiver) = mpsc::channel(limits.messages.max(1));
        let (close, close_rx) = oneshot::channel();
        let activity = Activity::at(info.last_active_at);
        let queued = QueuedBytes {
            connection: Arc::new(AtomicUsize::new(0)),
            total: self.queued_bytes.clone(),
        };
        self.lock().insert(
            id.clone(),
            Endpoint {
                activity: activity.clone(),
                info,
                outlet: Outlet::Live {
                    messages,
                    queued: queued.clone(),
                    max_bytes: limits.bytes,
                    close: Some(close),
                },
                open: true,
            },
        );
        Outbox {
            messages: OutboxMessages { receiver, queued },
            close: close_rx,
            activity,
        }
    }

    /// Bytes queued for every live connection together: posted, and not yet taken by
    /// their sockets.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Forgets a connection the client closed; later sends are `Gone`. Returns whether it
    /// was registered.
    pub fn remove(&self, id: &ConnectionId) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Records activity on the connection (for `last_active_at`).
    pub fn touch(&self, id: &ConnectionId) {
        if let Some(endpoint) = self.lock().get(id) {
            endpoint.activity.touch();
        }
    }

    /// Whether the connection is registered.
    pub fn is_open(&self, id: &ConnectionId) -> bool {
        self.lock().get(id).is_some_and(|endpoint| endpoint.open)
    }

    /// Ids of open connections.
    pub fn open_connections(&self) -> Vec<ConnectionId> {
        self.lock()
            .iter()
            .filter(|(_, endpoint)| endpoint.open)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Everything recorded for a connection opened with [`open`](Self::open), oldest first.
    pub fn sent_to(&self, id: &ConnectionId) -> Vec<Payload> {
        match self.lock().get(id).map(|endpoint| &endpoint.outlet) {
            Some(Outlet::Record { sent }) => sent.clone(),
            _ => Vec::new(),
        }
    }

    /// Takes and clears what was recorded for a connection.
    pub fn take_sent(&self, id: &ConnectionId) -> Vec<Payload> {
        match self.lock().get_mut(id).map(|endpoint| &mut endpoint.outlet) {
            Some(Outlet::Record { sent }) => std::mem::take(sent),
            _ => Vec::new(),
        }
    }

    /// Records a message for a recorded connection as if the gateway had written it
    /// (a two-way reply). Returns whether the connection is open.
    pub fn record(&self, id: &ConnectionId, payload: Payload) -> bool {
        match self.lock().get_mut(id) {
            Some(Endpoint {
                outlet: Outlet::Record { sent },
                open: true,
                ..
            }) => {
                sent.push(payload);
                true
            }
            _ => false,
        }
    }

    /// Marks a recorded connection closed, as the gateway closes it (a refused binary
    /// frame); what was recorded for it stays readable, and no `$disconnect` is queued
    /// (whoever closes it runs that). Returns whether it was open.
    pub fn close_recorded(&self, id: &ConnectionId) -> bool {
        match self.lock().get_mut(id) {
            Some(endpoint) if endpoint.open => {
                endpoint.open = false;
                true
            }
            _ => false,
        }
    }

    /// Recorded connections closed through [`MessageSink::disconnect`] since the last
    /// call, so the harness can run their `$disconnect`. (Live connections are closed by
    /// their socket task, which runs `$disconnect` itself.)
    pub fn take_closed_by_server(&self) -> Vec<ConnectionId> {
        std::mem::take(
            &mut *self
                .closed_by_server
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn open_endpoint<'a>(
        endpoints: &'a mut Endpoints,
        id: &ConnectionId,
    ) -> Result<&'a mut Endpoint> {
        endpoints
            .get_mut(id)
            .filter(|endpoint| endpoint.open)
            .ok_or_else(|| Self::gone(id))
    }

    fn gone(id: &ConnectionId) -> Error {
        Error::Gone {
            connection_id: id.clone(),
        }
    }
}

#[async_trait]
impl MessageSink for MemorySink {
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()> {
        if payload.len() > self.max_payload {
            return Err(Error::PayloadTooLarge {
                size: payload.len(),
                limit: self.max_payload,
            });
        }
        let mut endpoints = self.lock();
        let endpoint = Self::open_endpoint(&mut endpoints, id)?;
        match &mut endpoint.outlet {
            Outlet::Record { sent } => sent.push(payload),
            Outlet::Live {
                messages,
                queued,
                max_bytes,
                ..
            } => {
                // Sends are serialised by the lock and only the socket takes bytes away,
                // so what is read here can only shrink before the message is counted.
                let already = queued.connection.load(Ordering::Acquire);
                let size = payload.len();
                if already > 0 && already.saturating_add(size) > *max_bytes {
                    return Err(Error::Throttled {
                        backend: "memory",
                        message: format!(
                            "connection {id} has {already} bytes queued; {size} more is over its {max_bytes}"
                        ),
                    });
                }
                // Counted before it is queued: the socket may take it at once.
                queued.add(size);
                match messages.try_send(payload) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        queued.remove(size);
                        return Err(Error::Throttled {
                            backend: "memory",
                            message: format!(
                                "connection {id} has {} messages queued",
                                messages.max_capacity()
                            ),
                        });
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        queued.remove(size);
                        endpoints.remove(id);
                        return Err(Self::gone(id));
                    }
                }
            }
        }
        endpoint.activity.touch();
        Ok(())
    }

    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        self.lock()
            .get(id)
            .filter(|endpoint| endpoint.open)
            .map(|endpoint| {
                let mut info = endpoint.info.clone();
                info.last_active_at = endpoint.activity.last().unwrap_or(info.last_active_at);
                info
            })
            .ok_or_else(|| Self::gone(id))
    }

    async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        {
            let mut endpoints = self.lock();
            let endpoint = Self::open_endpoint(&mut endpoints, id)?;
            match &mut endpoint.outlet {
                Outlet::Record { .. } => {
                    endpoint.open = false;
                    self.closed_by_server
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(id.clone());
                }
                Outlet::Live { close, .. } => {
                    if let Some(close) = close.take() {
                        // The socket task may already be gone; the connection is closed then.
                        let _ = close.send(());
                    }
                    endpoints.remove(id);
                }
            }
        }
        Ok(())
    }
}
