//! The device as a sans-IO state machine.

use core::fmt;

use heapless::{Deque, Vec};
use telemetry_protocol::{
    encode, validate_metric_name, CloudToDevice, ControlAck, ErrorReply, ProtocolError,
    RealTimeDataUpdate,
};

use crate::backoff::Backoff;
use crate::clock::{ClockRejected, WallClock};
use crate::config::{Config, ConfigError};
use crate::rng::SplitMix64;

/// Most metrics one sample may carry on the device (the protocol allows 32; a sample
/// is kept in the offline buffer, so it stays small).
pub const MAX_SAMPLE_METRICS: usize = 8;

/// Sent readings remembered for [`Config::resend_window_ms`].
pub const RESEND_CAPACITY: usize = 8;

/// One sample: its sequence number, when it was taken and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sequence number: counts up from 0 at boot, across reconnects.
    pub seq: u32,
    /// Device uptime when the sample was taken, in milliseconds.
    pub taken_at_ms: u64,
    /// Unix time of the sample in milliseconds, `0` until the device's clock is set
    /// (fixed the first time it is known, so a resent reading carries the same time).
    pub ts_ms: u64,
    /// Metric name → value, in the order given.
    pub readings: Vec<(&'static str, f64), MAX_SAMPLE_METRICS>,
}

/// What the driver should do next; see [`Device::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the sensors now and hand the values to [`Device::on_sample`].
    Sample,
    /// Open the connection (Wi-Fi, DNS, TCP, TLS, WebSocket handshake, within
    /// [`Config::connect_timeout_ms`]), then call [`Device::on_connected`] or
    /// [`Device::on_connect_failed`].
    Connect,
    /// Send the JSON text frame the device wrote into the output buffer, then call
    /// [`Device::on_sent`] (or [`Device::on_disconnected`] if the write failed).
    Send(Outgoing),
    /// Close the connection (close code 1000), then call [`Device::on_disconnected`];
    /// the device reconnects at once.
    Close(CloseReason),
    /// Nothing to do before `until_ms` (device uptime), unless a frame arrives or the
    /// connection drops first.
    Wait {
        /// When to poll again at the latest.
        until_ms: u64,
    },
}

/// A frame to send: `out[..len]` of the buffer given to [`Device::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Bytes of JSON written.
    pub len: usize,
    /// What it is (for logs).
    pub kind: FrameKind,
}

/// What an outgoing frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A `RealTimeDataUpdate` with this sample.
    Reading {
        /// Its sequence number.
        seq: u32,
        /// Readings still waiting behind it.
        backlog: usize,
    },
    /// A `ControlAck` answering a `control` message.
    ControlAck {
        /// The sample interval in effect.
        sample_interval_ms: u32,
    },
    /// A `ControlAck` restating the sample interval in effect, sent when nothing else
    /// went over the connection for [`Config::heartbeat_interval_ms`]. API Gateway
    /// counts only data messages (not WebSocket pings) as activity, and this one is
    /// idempotent: it tells the cloud nothing but the truth.
    Heartbeat {
        /// The sample interval in effect.
        sample_interval_ms: u32,
    },
}

/// Why the device asks to close its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The connection reached [`Config::max_connection_age_ms`]: renew it before API
    /// Gateway's 2-hour limit cuts it.
    MaxAge,
}

/// The connection as the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not connected; the next attempt is due at `retry_at_ms`.
    Offline {
        /// Device uptime of the next attempt.
        retry_at_ms: u64,
    },
    /// The driver is connecting.
    Connecting,
    /// Connected since `since_ms`.
    Online {
        /// Device uptime when the connection opened.
        since_ms: u64,
    },
    /// The device asked the driver to close the connection.
    Closing,
}

/// What a received frame meant; the device already acted on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A `control` message: the new sample interval is in effect and a `ControlAck` is
    /// queued.
    ControlApplied {
        /// The new interval.
        sample_interval_ms: u32,
    },
    /// A `control` message outside the protocol's bounds: the interval was kept and a
    /// `ControlAck` reporting it is queued.
    ControlRejected {
        /// What was asked for.
        requested: u64,
        /// The interval still in effect.
        kept_ms: u32,
    },
    /// The cloud refused something the device sent.
    CloudError(ErrorReply),
    /// A message type this device does not know; ignored.
    Unknown,
    /// Not a message of the protocol; ignored.
    Malformed(ProtocolError),
}

/// Why [`Device::on_sample`] refused a sample (nothing was buffered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleError {
    /// No values at all.
    Empty,
    /// More than [`MAX_SAMPLE_METRICS`] values.
    TooManyMetrics,
    /// A metric name the protocol does not allow.
    InvalidMetricName(&'static str),
    /// A NaN or infinite value (leave a metric out when it has no value).
    NonFinite(&'static str),
    /// The same metric twice.
    Duplicate(&'static str),
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleError::Empty => f.write_str("a sample needs at least one value"),
            SampleError::TooManyMetrics => {
                write!(f, "a sample carries at most {MAX_SAMPLE_METRICS} values")
            }
            SampleError::InvalidMetricName(name) => write!(f, "invalid metric name {name:?}"),
            SampleError::NonFinite(name) => write!(f, "metric {name:?} is not finite"),
            SampleError::Duplicate(name) => write!(f, "metric {name:?} given twice"),
        }
    }
}

impl core::error::Error for SampleError {}

/// Counters for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Samples taken and buffered.
    pub samples: u32,
    /// Samples refused by [`Device::on_sample`].
    pub samples_rejected: u32,
    /// Readings sent (resends included).
    pub readings_sent: u32,
    /// Readings sent just before a connection dropped and queued again (at least once
    /// delivery; `seq` tells the copies apart).
    pub readings_resent: u32,
    /// Readings dropped because the offline buffer was full (oldest first).
    pub readings_dropped: u32,
    /// Readings waiting in the buffer right now.
    pub buffered: u32,
    /// Connection attempts started.
    pub connect_attempts: u32,
    /// Connections opened.
    pub connects: u32,
    /// Connection attempts that failed.
    pub connect_failures: u32,
    /// Open connections that dropped (not counting renewals).
    pub disconnects: u32,
    /// Connections closed on purpose before API Gateway's 2-hour limit.
    pub renewals: u32,
    /// `control` messages applied.
    pub controls_applied: u32,
    /// `control` messages refused (out of bounds).
    pub controls_rejected: u32,
    /// `ControlAck`s sent in answer to `control`.
    pub acks_sent: u32,
    /// Heartbeats sent.
    pub heartbeats_sent: u32,
    /// Error replies received from the cloud.
    pub cloud_errors: u32,
    /// Frames that were not protocol messages.
    pub malformed_frames: u32,
    /// Connection attempts put off because the network was not up yet (no Wi-Fi or
    /// no DHCP lease): not failures, no backoff.
    pub network_waits: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Offline {
        retry_at: u64,
    },
    Connecting,
    Online {
        since: u64,
        renew_at: u64,
        last_activity: u64,
    },
    Closing,
}

/// The device logic: sampling schedule, control handling, reconnect backoff,
/// heartbeat, connection renewal, the offline buffer of up to `N` readings and message
/// building. It does no I/O and reads no clock: the driver (firmware or simulator)
/// passes the time in, performs the [`Action`]s [`poll`](Device::poll) returns and
/// reports what happened.
///
/// Times are device uptime in milliseconds from any fixed origin, never decreasing.
#[derive(Debug)]
pub struct Device<const N: usize> {
    config: Config,
    rng: SplitMix64,
    backoff: Backoff,
    link: LinkState,
    sample_interval_ms: u32,
    next_sample_at: u64,
    last_sample_at: Option<u64>,
    next_seq: u32,
    buffer: Deque<Sample, N>,
    buffer_limit: usize,
    recently_sent: Deque<(u64, Sample), RESEND_CAPACITY>,
    in_flight: Option<FrameKind>,
    pending_ack: Option<u32>,
    next_backlog_at: u64,
    clock: WallClock,
    reset_reason_pending: bool,
    reset_reason_seq: Option<u32>,
    stats: Stats,
}

impl<const N: usize> Device<N> {
    /// A device started at `now_ms`: offline, its first sample and first connection
    /// attempt due at once.
    pub fn new(config: Config, now_ms: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        if N == 0 {
            return Err(ConfigError::BufferLimit);
        }
        let buffer_limit = config.buffer_limit.unwrap_or(N).min(N);
        Ok(Device {
            rng: SplitMix64::new(config.seed),
            backoff: Backoff::new(config.backoff),
            link: LinkState::Offline { retry_at: now_ms },
            sample_interval_ms: config.sample_interval_ms,
            next_sample_at: now_ms,
            last_sample_at: None,
            next_seq: 0,
            buffer: Deque::new(),
            buffer_limit,
            recently_sent: Deque::new(),
            in_flight: None,
            pending_ack: None,
            next_backlog_at: now_ms,
            clock: WallClock::new(config.build_time_ms),
            reset_reason_pending: config.reset_reason.is_some(),
            reset_reason_seq: None,
            stats: Stats::default(),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The sample interval in effect.
    pub fn sample_interval_ms(&self) -> u32 {
        self.sample_interval_ms
    }

    /// The connection state.
    pub fn link(&self) -> Link {
        match self.link {
            LinkState::Offline { retry_at } => Link::Offline {
                retry_at_ms: retry_at,
            },
            LinkState::Connecting => Link::Connecting,
            LinkState::Online { since, .. } => Link::Online { since_ms: since },
            LinkState::Closing => Link::Closing,
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            buffered: self.buffer.len() as u32,
            ..self.stats
        }
    }

    /// Readings waiting to be sent, oldest first.
    pub fn buffered(&self) -> impl Iterator<Item = &Sample> {
        self.buffer.iter()
    }

    /// How many readings the offline buffer keeps.
    pub fn buffer_limit(&self) -> usize {
        self.buffer_limit
    }

    /// The sequence number the next sample gets.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Unix time in milliseconds at device uptime `now_ms`, once SNTP or a
    /// connection's `Date` told the device the time.
    pub fn unix_time_ms(&self, now_ms: u64) -> Option<u64> {
        self.clock.now_ms(now_ms)
    }

    /// The wall clock (for certificate checks: [`WallClock::certificate_time_ms`]).
    pub fn clock(&self) -> &WallClock {
        &self.clock
    }

    /// An SNTP server said it is `unix_ms` at uptime `now_ms`; see
    /// [`WallClock::on_sntp`] for when that is not believed.
    pub fn on_sntp(&mut self, now_ms: u64, unix_ms: u64) -> Result<(), ClockRejected> {
        self.clock.on_sntp(now_ms, unix_ms)
    }

    /// The next thing to do at `now_ms`. Frames to send are written into `out`, which
    /// must hold [`telemetry_protocol::MAX_MESSAGE_LEN`] bytes.
    ///
    /// Call it again after every action and every report, and at the latest when a
    /// [`Action::Wait`] runs out.
    pub fn poll(&mut self, now_ms: u64, out: &mut [u8]) -> Action {
        if now_ms >= self.next_sample_at {
            let interval = u64::from(self.sample_interval_ms);
            self.next_sample_at = self.next_sample_at.saturating_add(interval);
            if self.next_sample_at <= now_ms {
                // Behind schedule (the driver was busy): one sample now, none to catch up.
                self.next_sample_at = now_ms + interval;
            }
            return Action::Sample;
        }
        let mut until = self.next_sample_at;
        match self.link {
            LinkState::Offline { retry_at } => {
                if now_ms >= retry_at {
                    self.link = LinkState::Connecting;
                    self.stats.connect_attempts += 1;
                    return Action::Connect;
                }
                until = until.min(retry_at);
            }
            LinkState::Connecting | LinkState::Closing => {}
            LinkState::Online {
                renew_at,
                last_activity,
                ..
            } => {
                if self.in_flight.is_some() {
                    return Action::Wait { until_ms: until };
                }
                if now_ms >= renew_at {
                    self.link = LinkState::Closing;
                    self.stats.renewals += 1;
                    return Action::Close(CloseReason::MaxAge);
                }
                if let Some(send) = self.next_frame(now_ms, last_activity, out) {
                    return Action::Send(send);
                }
                until = until
                    .min(renew_at)
                    .min(last_activity + u64::from(self.config.heartbeat_interval_ms));
                if !self.buffer.is_empty() {
                    until = until.min(self.next_backlog_at);
                }
            }
        }
        Action::Wait {
            until_ms: until.max(now_ms),
        }
    }

    fn next_frame(&mut self, now_ms: u64, last_activity: u64, out: &mut [u8]) -> Option<Outgoing> {
        if let Some(interval) = self.pending_ack {
            let kind = FrameKind::ControlAck {
                sample_interval_ms: interval,
            };
            if let Some(len) = self.encode_ack(interval, out) {
                self.in_flight = Some(kind);
                return Some(Outgoing { len, kind });
            }
            self.pending_ack = None;
        }
        while now_ms >= self.next_backlog_at {
            let clock = self.clock;
            match self.buffer.front_mut() {
                None => break,
                Some(front) if front.ts_ms == 0 => {
                    front.ts_ms = clock.now_ms(front.taken_at_ms).unwrap_or(0);
                }
                Some(_) => {}
            }
            let Some(front) = self.buffer.front() else {
                break;
            };
            let kind = FrameKind::Reading {
                seq: front.seq,
                backlog: self.buffer.len() - 1,
            };
            match self.encode_reading(front, out) {
                Some(len) => {
                    self.in_flight = Some(kind);
                    return Some(Outgoing { len, kind });
                }
                // Cannot happen with a buffer of MAX_MESSAGE_LEN: on_sample checked
                // every value. Drop it rather than retrying it forever.
                None => {
                    self.buffer.pop_front();
                    self.stats.readings_dropped += 1;
                }
            }
        }
        if now_ms >= last_activity + u64::from(self.config.heartbeat_interval_ms) {
            let interval = self.sample_interval_ms;
            let len = self.encode_ack(interval, out)?;
            let kind = FrameKind::Heartbeat {
                sample_interval_ms: interval,
            };
            self.in_flight = Some(kind);
            return Some(Outgoing { len, kind });
        }
        None
    }

    fn encode_ack(&self, sample_interval_ms: u32, out: &mut [u8]) -> Option<usize> {
        let ack = ControlAck::new(&self.config.device_id, sample_interval_ms).ok()?;
        encode(&ack, out).ok()
    }

    fn encode_reading(&self, sample: &Sample, out: &mut [u8]) -> Option<usize> {
        let mut update =
            RealTimeDataUpdate::new(&self.config.device_id, sample.seq, sample.ts_ms).ok()?;
        for (name, value) in &sample.readings {
            update.push_reading(name, *value).ok()?;
        }
        if self.reset_reason_pending {
            if let Some(reason) = &self.config.reset_reason {
                update.set_reset_reason(reason).ok()?;
            }
        }
        encode(&update, out).ok()
    }

    /// The sensors were read at `now_ms`: buffers the sample under the next sequence
    /// number (dropping the oldest buffered reading when the buffer is full) and
    /// returns that number.
    pub fn on_sample(
        &mut self,
        now_ms: u64,
        readings: &[(&'static str, f64)],
    ) -> Result<u32, SampleError> {
        let checked = check_sample(readings);
        let values = match checked {
            Ok(values) => values,
            Err(error) => {
                self.stats.samples_rejected += 1;
                return Err(error);
            }
        };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        while self.buffer.len() >= self.buffer_limit {
            self.buffer.pop_front();
            self.stats.readings_dropped += 1;
        }
        let sample = Sample {
            seq,
            taken_at_ms: now_ms,
            ts_ms: self.unix_time_ms(now_ms).unwrap_or(0),
            readings: values,
        };
        if self.buffer.push_back(sample).is_err() {
            // Unreachable: the loop above made room (buffer_limit <= N).
            self.stats.readings_dropped += 1;
        }
        self.last_sample_at = Some(now_ms);
        self.stats.samples += 1;
        Ok(seq)
    }

    /// The connection opened at `now_ms`. `server_time_ms` is the server's Unix time
    /// when it answered (from the handshake's `Date` header, see
    /// [`crate::http::server_time_ms`]), which sets the device's clock.
    pub fn on_connected(&mut self, now_ms: u64, server_time_ms: Option<u64>) {
        let age = u64::from(self.config.max_connection_age_ms);
        let renew_at = now_ms + age - self.rng.up_to(age / 20);
        self.link = LinkState::Online {
            since: now_ms,
            renew_at,
            last_activity: now_ms,
        };
        self.in_flight = None;
        self.next_backlog_at = now_ms;
        if let Some(server_ms) = server_time_ms {
            // A Date before the build is a broken server clock: keep what we have.
            let _ = self.clock.on_server_date(now_ms, server_ms);
        }
        self.stats.connects += 1;
    }

    /// The connection attempt could not start because the network is not up yet (no
    /// Wi-Fi or no DHCP lease) at `now_ms`. Not a failure: no backoff, nothing
    /// counted but [`Stats::network_waits`]; the next attempt is due after
    /// [`Config::network_poll_ms`].
    pub fn on_network_unavailable(&mut self, now_ms: u64) {
        if self.link != LinkState::Connecting {
            return;
        }
        self.stats.connect_attempts = self.stats.connect_attempts.saturating_sub(1);
        self.stats.network_waits += 1;
        self.in_flight = None;
        self.link = LinkState::Offline {
            retry_at: now_ms + u64::from(self.config.network_poll_ms),
        };
    }

    /// The connection attempt failed (no Wi-Fi, DNS, TCP, TLS, handshake refused or
    /// timed out): the next attempt waits for the backoff.
    pub fn on_connect_failed(&mut self, now_ms: u64) {
        self.stats.connect_failures += 1;
        let delay = self.backoff.fail(&mut self.rng);
        self.link = LinkState::Offline {
            retry_at: now_ms + u64::from(delay),
        };
        self.in_flight = None;
    }

    /// The connection closed or failed at `now_ms`.
    ///
    /// Delivery is at least once: a frame being written is not counted as sent and the
    /// reading goes out again after the reconnect; readings sent within
    /// [`Config::resend_window_ms`] before a drop (at most [`RESEND_CAPACITY`]) are
    /// queued again too, since a server going away or a dead link may have lost them
    /// after the write returned. `seq` tells the copies apart.
    pub fn on_disconnected(&mut self, now_ms: u64) {
        self.in_flight = None;
        match self.link {
            LinkState::Closing => {
                // Our own renewal: we closed after our last frame, nothing to resend.
                self.recently_sent.clear();
                self.backoff.reset();
                self.link = LinkState::Offline { retry_at: now_ms };
            }
            LinkState::Online { since, .. } => {
                self.requeue_recently_sent(now_ms);
                self.stats.disconnects += 1;
                if now_ms.saturating_sub(since) >= u64::from(self.config.backoff.stable_after_ms) {
                    self.backoff.reset();
                }
                let delay = self.backoff.fail(&mut self.rng);
                self.link = LinkState::Offline {
                    retry_at: now_ms + u64::from(delay),
                };
            }
            LinkState::Connecting => {
                self.stats.connect_failures += 1;
                let delay = self.backoff.fail(&mut self.rng);
                self.link = LinkState::Offline {
                    retry_at: now_ms + u64::from(delay),
                };
            }
            LinkState::Offline { .. } => {}
        }
    }

    /// The frame of the last [`Action::Send`] was written at `now_ms`.
    pub fn on_sent(&mut self, now_ms: u64) {
        match self.in_flight.take() {
            Some(FrameKind::Reading { seq, .. }) => {
                if self.reset_reason_pending {
                    // The reason went out with this reading.
                    self.reset_reason_pending = false;
                    self.reset_reason_seq = Some(seq);
                }
                if self.buffer.front().map(|s| s.seq) == Some(seq) {
                    if let Some(sample) = self.buffer.pop_front() {
                        self.remember_sent(now_ms, sample);
                    }
                }
                self.stats.readings_sent += 1;
                self.next_backlog_at = if self.buffer.is_empty() {
                    now_ms
                } else {
                    now_ms + u64::from(self.config.backlog_interval_ms)
                };
            }
            Some(FrameKind::ControlAck { sample_interval_ms }) => {
                if self.pending_ack == Some(sample_interval_ms) {
                    self.pending_ack = None;
                }
                self.stats.acks_sent += 1;
            }
            Some(FrameKind::Heartbeat { .. }) => self.stats.heartbeats_sent += 1,
            None => {}
        }
        self.touch(now_ms);
    }

    /// A text frame arrived at `now_ms`.
    pub fn on_text(&mut self, now_ms: u64, frame: &[u8]) -> Incoming {
        self.touch(now_ms);
        match CloudToDevice::decode(frame) {
            Ok(CloudToDevice::Control(control)) => {
                self.apply_interval(now_ms, control.sample_interval_ms);
                self.stats.controls_applied += 1;
                Incoming::ControlApplied {
                    sample_interval_ms: control.sample_interval_ms,
                }
            }
            Ok(CloudToDevice::Error(error)) => {
                self.stats.cloud_errors += 1;
                Incoming::CloudError(error)
            }
            Ok(_) => Incoming::Unknown,
            Err(ProtocolError::SampleIntervalOutOfRange { value, .. }) => {
                self.stats.controls_rejected += 1;
                self.pending_ack = Some(self.sample_interval_ms);
                Incoming::ControlRejected {
                    requested: value,
                    kept_ms: self.sample_interval_ms,
                }
            }
            Err(error) => {
                self.stats.malformed_frames += 1;
                Incoming::Malformed(error)
            }
        }
    }

    fn remember_sent(&mut self, now_ms: u64, sample: Sample) {
        if self.config.resend_window_ms == 0 {
            return;
        }
        if self.recently_sent.is_full() {
            self.recently_sent.pop_front();
        }
        let _ = self.recently_sent.push_back((now_ms, sample));
    }

    fn requeue_recently_sent(&mut self, now_ms: u64) {
        let window = u64::from(self.config.resend_window_ms);
        while let Some((sent_at, sample)) = self.recently_sent.pop_back() {
            if sent_at + window < now_ms || self.buffer.len() >= self.buffer_limit {
                break;
            }
            let seq = sample.seq;
            if self.buffer.push_front(sample).is_err() {
                break;
            }
            if self.reset_reason_seq == Some(seq) {
                // The reading that carried the reset reason may be lost: send it again.
                self.reset_reason_pending = true;
            }
            self.stats.readings_resent += 1;
        }
        self.recently_sent.clear();
    }

    fn apply_interval(&mut self, now_ms: u64, interval_ms: u32) {
        self.sample_interval_ms = interval_ms;
        self.pending_ack = Some(interval_ms);
        let next = match self.last_sample_at {
            Some(last) => last + u64::from(interval_ms),
            None => now_ms,
        };
        self.next_sample_at = next.max(now_ms);
    }

    fn touch(&mut self, now_ms: u64) {
        if let LinkState::Online { last_activity, .. } = &mut self.link {
            *last_activity = (*last_activity).max(now_ms);
        }
    }
}

fn check_sample(
    readings: &[(&'static str, f64)],
) -> Result<Vec<(&'static str, f64), MAX_SAMPLE_METRICS>, SampleError> {
    if readings.is_empty() {
        return Err(SampleError::Empty);
    }
    let mut values = Vec::new();
    for (index, (name, value)) in readings.iter().enumerate() {
        validate_metric_name(name).map_err(|_| SampleError::InvalidMetricName(name))?;
        if !value.is_finite() {
            return Err(SampleError::NonFinite(name));
        }
        if readings[..index].iter().any(|(other, _)| other == name) {
            return Err(SampleError::Duplicate(name));
        }
        values
            .push((*name, *value))
            .map_err(|_| SampleError::TooManyMetrics)?;
    }
    Ok(values)
}
