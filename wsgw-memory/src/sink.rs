//! `MemorySink`: records deliveries for assertions, or hands them to live sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use wsgw_core::{ConnectionId, ConnectionInfo, Error, MessageSink, Payload, Result};

/// API Gateway's largest message payload: 128 KB.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// Messages queued per live connection before sends are answered with `Throttled`
/// (API Gateway's `LimitExceededException`).
pub const DEFAULT_OUTBOX_CAPACITY: usize = 1024;

enum Outlet {
    Record {
        sent: Vec<Payload>,
    },
    Live {
        messages: mpsc::Sender<Payload>,
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
    pub messages: mpsc::Receiver<Payload>,
    /// Resolves when the connection is closed through [`MessageSink::disconnect`].
    pub close: oneshot::Receiver<()>,
    /// Where the socket records incoming traffic (the sink records what it delivers).
    pub activity: Activity,
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
}

impl Default for MemorySink {
    fn default() -> Self {
        MemorySink {
            endpoints: Mutex::new(Endpoints::default()),
            closed_by_server: Mutex::new(Vec::new()),
            max_payload: MAX_PAYLOAD_BYTES,
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

    /// Registers a live connection: deliveries go to the returned [`Outbox`], at most
    /// `capacity` queued before sends are `Throttled`.
    pub fn attach(&self, id: &ConnectionId, info: ConnectionInfo, capacity: usize) -> Outbox {
        let (messages, messages_rx) = mpsc::channel(capacity.max(1));
        let (close, close_rx) = oneshot::channel();
        let activity = Activity::at(info.last_active_at);
        self.lock().insert(
            id.clone(),
            Endpoint {
                activity: activity.clone(),
                info,
                outlet: Outlet::Live {
                    messages,
                    close: Some(close),
                },
                open: true,
            },
        );
        Outbox {
            messages: messages_rx,
            close: close_rx,
            activity,
        }
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
            Outlet::Live { messages, .. } => match messages.try_send(payload) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(Error::Throttled {
                        backend: "memory",
                        message: format!(
                            "connection {id} has {} messages queued",
                            messages.max_capacity()
                        ),
                    })
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    endpoints.remove(id);
                    return Err(Self::gone(id));
                }
            },
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
