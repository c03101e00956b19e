//! `FaultySink`: a [`MessageSink`] wrapper that injects API Gateway's failures.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use wsgw_core::{ConnectionId, ConnectionInfo, Error, MessageSink, Payload, Result};

/// The backend name in the errors a [`FaultySink`] injects.
pub const FAULTY_BACKEND: &str = "faulty";

/// One kind of failure a [`FaultySink`] injects into a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The connection is gone ([`Error::Gone`], API Gateway's 410 `GoneException`). A
    /// connection drawn gone stays gone: every later call for it is `Gone` too.
    Gone,
    /// The call is throttled ([`Error::Throttled`], API Gateway's 429
    /// `LimitExceededException`); the next attempt may pass.
    Throttled,
    /// The call does not answer: it waits for the configured timeout, then fails with
    /// [`Error::Timeout`] without delivering; the next attempt may pass.
    Timeout,
}

impl Fault {
    /// Whether a later attempt may succeed (throttling and timeouts).
    pub fn is_transient(self) -> bool {
        !matches!(self, Fault::Gone)
    }
}

/// A fault the sink injected: which connection, at which of its calls, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    /// The connection the failed call was for.
    pub connection_id: ConnectionId,
    /// Which call for that connection failed, counting from 1 (a retry is a new call).
    pub call: u64,
    /// What was injected.
    pub fault: Fault,
}

#[derive(Default)]
struct PerConnection {
    calls: u64,
    transient_run: u32,
    gone: bool,
}

#[derive(Default)]
struct State {
    connections: HashMap<ConnectionId, PerConnection>,
    injected: Vec<InjectedFault>,
    passed: u64,
}

/// A [`MessageSink`] that makes a fraction of sends fail with `Gone`, `Throttled` or a
/// timeout before they reach the wrapped sink, for testing what handlers and
/// [`broadcast`](wsgw_core::broadcast) do under faults.
///
/// Faults are drawn from a seeded generator, per connection and per call: the `n`-th
/// call for a connection gets the same fault in every run with the same seed, whatever
/// the order concurrent sends run in, so a failing test reproduces. Every injected fault
/// is logged ([`injected`](Self::injected)) to compare what the caller did against what
/// it was dealt.
///
/// - `Gone` is sticky: the connection answers `Gone` from then on, and (unless
///   [`close_gone`](Self::close_gone) is turned off) is closed through the wrapped sink,
///   so the gateway really drops it and runs its `$disconnect`.
/// - `Throttled` and `Timeout` are transient. [`max_transient_run`](Self::max_transient_run)
///   bounds how many of them one connection meets in a row, so a caller retrying more
///   often than that must deliver every message.
/// - Only [`send`](MessageSink::send) draws faults; `connection_info` and `disconnect`
///   pass through (a gone connection answers `Gone`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use wsgw_core::{Backends, BroadcastOptions, ConnectionId, Payload, Router};
/// use wsgw_memory::{FaultySink, MemorySink, MemoryStore};
///
/// let sink = Arc::new(FaultySink::new(MemorySink::new(), 7).throttled(0.3).max_transient_run(2));
/// let targets: Vec<ConnectionId> = (0..50).map(|i| ConnectionId::new(format!("c{i}="))).collect();
/// for id in &targets {
///     sink.inner().open(id, None, None);
/// }
/// let backends = Backends::new(Arc::new(MemoryStore::new()), sink.clone());
/// let router = Router::new().broadcast_options(BroadcastOptions::default().max_attempts(3));
/// let report = router.context(&backends).broadcast(&"hi").to(targets.clone()).await.unwrap();
/// assert_eq!(report.delivered.len(), 50); // never more than 2 throttles in a row
/// assert!(!sink.injected().is_empty());
/// for id in &targets {
///     assert_eq!(sink.inner().sent_to(id), vec![Payload::text(r#""hi""#)]);
/// }
/// # }
/// ```
pub struct FaultySink<S> {
    inner: S,
    seed: u64,
    gone: f64,
    throttled: f64,
    timeout: f64,
    timeout_after: Duration,
    max_transient_run: Option<u32>,
    close_gone: bool,
    state: Mutex<State>,
}

impl<S> std::fmt::Debug for FaultySink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultySink")
            .field("seed", &self.seed)
            .field("gone", &self.gone)
            .field("throttled", &self.throttled)
            .field("timeout", &self.timeout)
            .field("timeout_after", &self.timeout_after)
            .field("max_transient_run", &self.max_transient_run)
            .field("close_gone", &self.close_gone)
            .finish_non_exhaustive()
    }
}

/// The rate, clamped to `0.0..=1.0` (NaN is 0).
fn rate(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// SplitMix64's output function: a well-mixed 64-bit value from any input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over the id's bytes: stable across runs and platforms, unlike `RandomState`.
fn stable_hash(id: &ConnectionId) -> u64 {
    id.as_str()
        .bytes()
        .fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3)
        })
}

impl<S: MessageSink> FaultySink<S> {
    /// Wraps `inner`, injecting nothing until rates are set; `seed` fixes every draw.
    pub fn new(inner: S, seed: u64) -> Self {
        FaultySink {
            inner,
            seed,
            gone: 0.0,
            throttled: 0.0,
            timeout: 0.0,
            timeout_after: Duration::from_millis(50),
            max_transient_run: None,
            close_gone: true,
            state: Mutex::new(State::default()),
        }
    }

    /// The fraction of sends (0–1) that find their connection gone.
    pub fn gone(mut self, fraction: f64) -> Self {
        self.gone = rate(fraction);
        self
    }

    /// The fraction of sends (0–1) that are throttled.
    pub fn throttled(mut self, fraction: f64) -> Self {
        self.throttled = rate(fraction);
        self
    }

    /// The fraction of sends (0–1) that time out, each after `after`.
    pub fn timeouts(mut self, fraction: f64, after: Duration) -> Self {
        self.timeout = rate(fraction);
        self.timeout_after = after;
        self
    }

    /// At most `run` transient faults (throttling, timeouts) in a row for one connection;
    /// the call after them passes. Unbounded by default.
    pub fn max_transient_run(mut self, run: u32) -> Self {
        self.max_transient_run = Some(run);
        self
    }

    /// Whether a connection drawn gone is also closed through the wrapped sink (default
    /// `true`).
    pub fn close_gone(mut self, close: bool) -> Self {
        self.close_gone = close;
        self
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every fault injected so far, in the order they were drawn.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.lock().injected.clone()
    }

    /// How many faults of this kind were injected.
    pub fn injected_count(&self, fault: Fault) -> usize {
        self.lock()
            .injected
            .iter()
            .filter(|injected| injected.fault == fault)
            .count()
    }

    /// The connections drawn gone, sorted.
    pub fn gone_connections(&self) -> Vec<ConnectionId> {
        let mut gone: Vec<ConnectionId> = self
            .lock()
            .connections
            .iter()
            .filter(|(_, connection)| connection.gone)
            .map(|(id, _)| id.clone())
            .collect();
        gone.sort();
        gone
    }

    /// How many sends were passed to the wrapped sink.
    pub fn passed(&self) -> u64 {
        self.lock().passed
    }

    /// Draws the fault (if any) for the next call for `id`, and logs it.
    fn draw(&self, id: &ConnectionId) -> Option<Fault> {
        let mut state = self.lock();
        let connection = state.connections.entry(id.clone()).or_default();
        connection.calls += 1;
        let call = connection.calls;
        let fault = if connection.gone {
            Some(Fault::Gone)
        } else {
            let draw = mix(self.seed ^ mix(stable_hash(id) ^ mix(call)));
            // The top 53 bits as a uniform float in [0, 1).
            let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
            let drawn = if unit < self.gone {
                Some(Fault::Gone)
            } else if unit < self.gone + self.throttled {
                Some(Fault::Throttled)
            } else if unit < self.gone + self.throttled + self.timeout {
                Some(Fault::Timeout)
            } else {
                None
            };
            match drawn {
                Some(fault) if fault.is_transient() => {
                    if self
                        .max_transient_run
                        .is_some_and(|run| connection.transient_run >= run)
                    {
                        connection.transient_run = 0;
                        None
                    } else {
                        connection.transient_run += 1;
                        Some(fault)
                    }
                }
                Some(Fault::Gone) => {
                    connection.gone = true;
                    Some(Fault::Gone)
                }
                _ => {
                    connection.transient_run = 0;
                    None
                }
            }
        };
        match fault {
            Some(fault) => state.injected.push(InjectedFault {
                connection_id: id.clone(),
                call,
                fault,
            }),
            None => state.passed += 1,
        }
        fault
    }

    fn is_gone(&self, id: &ConnectionId) -> bool {
        self.lock()
            .connections
            .get(id)
            .is_some_and(|connection| connection.gone)
    }

    fn gone_error(id: &ConnectionId) -> Error {
        Error::Gone {
            connection_id: id.clone(),
        }
    }
}

#[async_trait]
impl<S: MessageSink> MessageSink for FaultySink<S> {
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()> {
        let already_gone = self.is_gone(id);
        match self.draw(id) {
            None => self.inner.send(id, payload).await,
            Some(Fault::Gone) => {
                if !already_gone && self.close_gone {
                    if let Err(error) = self.inner.disconnect(id).await {
                        tracing::debug!(connection_id = %id, %error, "closing a connection drawn gone");
                    }
                }
                Err(Self::gone_error(id))
            }
            Some(Fault::Throttled) => Err(Error::Throttled {
                backend: FAULTY_BACKEND,
                message: format!("injected throttling of a send to {id}"),
            }),
            Some(Fault::Timeout) => {
                tokio::time::sleep(self.timeout_after).await;
                Err(Error::Timeout {
                    backend: FAULTY_BACKEND,
                    message: format!(
                        "injected: a send to {id} got no answer in {:?}",
                        self.timeout_after
                    ),
                })
            }
        }
    }

    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        if self.is_gone(id) {
            return Err(Self::gone_error(id));
        }
        self.inner.connection_info(id).await
    }

    async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        if self.is_gone(id) {
            return Err(Self::gone_error(id));
        }
        self.inner.disconnect(id).await
    }
}
