//! The device's behaviour, driven the way the firmware and the simulator drive it,
//! with time passed in by hand.

use telemetry_device::{
    Action, BackoffConfig, CloseReason, Config, Device, FrameKind, Incoming, Link, SampleError,
};
use telemetry_protocol::{
    decode, ControlAck, ErrorCode, RealTimeDataUpdate, MAX_MESSAGE_LEN, MAX_SAMPLE_INTERVAL_MS,
};

const T0: u64 = 1_732_230_000_000;

/// Defaults, minus pacing and resends (each has its own tests).
fn config() -> Config {
    Config::new("esp32-01")
        .unwrap()
        .with_backlog_interval_ms(0)
        .with_resend_window_ms(0)
        .with_seed(7)
}

fn device(config: Config) -> Device<16> {
    Device::new(config, 0).unwrap()
}

/// A sent frame, decoded.
#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Reading(Box<RealTimeDataUpdate>),
    Ack(ControlAck),
    Heartbeat(ControlAck),
}

/// A driver with a fake sensor and a fake connection, stepping time by hand.
struct Bench<const N: usize> {
    device: Device<N>,
    out: [u8; MAX_MESSAGE_LEN],
    online: bool,
    /// Whether connection attempts succeed.
    reachable: bool,
    /// Whether writes succeed.
    writable: bool,
    sent: Vec<Sent>,
    connect_times: Vec<u64>,
    closes: Vec<CloseReason>,
    temperature: f64,
    /// The bench's clock: the last time anything ran.
    now: u64,
}

impl<const N: usize> Bench<N> {
    fn new(device: Device<N>) -> Self {
        Bench {
            device,
            out: [0; MAX_MESSAGE_LEN],
            online: false,
            reachable: true,
            writable: true,
            sent: Vec::new(),
            connect_times: Vec::new(),
            closes: Vec::new(),
            temperature: 20.0,
            now: 0,
        }
    }

    /// Performs every action due at `now`, until the device waits.
    fn run_at(&mut self, now: u64) -> u64 {
        assert!(now >= self.now, "time never goes back");
        self.now = now;
        for _ in 0..10_000 {
            match self.device.poll(now, &mut self.out) {
                Action::Sample => {
                    self.temperature += 0.5;
                    self.device
                        .on_sample(now, &[("temperature_c", self.temperature)])
                        .unwrap();
                }
                Action::Connect => {
                    self.connect_times.push(now);
                    if self.reachable {
                        self.online = true;
                        self.device.on_connected(now, Some(T0 + now));
                    } else {
                        self.device.on_connect_failed(now);
                    }
                }
                Action::Send(frame) => {
                    assert!(self.online, "sends only while online");
                    if !self.writable {
                        self.online = false;
                        self.device.on_disconnected(now);
                        continue;
                    }
                    let bytes = &self.out[..frame.len];
                    let sent = match frame.kind {
                        FrameKind::Reading { .. } => {
                            let update: RealTimeDataUpdate = decode(bytes).unwrap();
                            update.validate().unwrap();
                            Sent::Reading(Box::new(update))
                        }
                        FrameKind::ControlAck { .. } => Sent::Ack(decode(bytes).unwrap()),
                        FrameKind::Heartbeat { .. } => Sent::Heartbeat(decode(bytes).unwrap()),
                    };
                    self.sent.push(sent);
                    self.device.on_sent(now);
                }
                Action::Close(reason) => {
                    self.closes.push(reason);
                    self.online = false;
                    self.device.on_disconnected(now);
                }
                Action::Wait { until_ms } => {
                    assert!(until_ms >= now, "never waits for the past");
                    return until_ms;
                }
            }
        }
        panic!("the device never waits at {now}");
    }

    /// Runs every deadline up to and including `end`; the clock then reads `end`.
    fn run_until(&mut self, end: u64) {
        loop {
            let next = self.run_at(self.now);
            if next > end {
                self.now = self.now.max(end);
                return;
            }
            assert!(next > self.now, "a wait that ends at once at {next}");
            self.now = next;
        }
    }

    /// The connection drops at `now`.
    fn drop_connection(&mut self, now: u64) {
        assert!(self.online);
        self.now = now;
        self.online = false;
        self.device.on_disconnected(now);
    }

    fn readings(&self) -> Vec<RealTimeDataUpdate> {
        self.sent
            .iter()
            .filter_map(|s| match s {
                Sent::Reading(update) => Some((**update).clone()),
                _ => None,
            })
            .collect()
    }

    fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }
}

fn seqs(readings: &[RealTimeDataUpdate]) -> Vec<u32> {
    readings.iter().map(|r| r.seq).collect()
}

#[test]
fn the_first_sample_is_taken_at_boot_and_then_on_a_fixed_grid() {
    let mut d = device(config().with_sample_interval_ms(1_000));
    let mut out = [0u8; MAX_MESSAGE_LEN];
    assert_eq!(d.poll(0, &mut out), Action::Sample);
    d.on_sample(0, &[("t", 1.0)]).unwrap();
    assert_eq!(d.poll(0, &mut out), Action::Connect);
    d.on_connect_failed(0);
    // A sample taken late does not shift the grid.
    assert_eq!(d.poll(1_030, &mut out), Action::Sample);
    d.on_sample(1_030, &[("t", 1.0)]).unwrap();
    let until_ms = loop {
        match d.poll(1_030, &mut out) {
            Action::Connect => d.on_connect_failed(1_030),
            Action::Wait { until_ms } => break until_ms,
            other => panic!("{other:?}"),
        }
    };
    assert!(until_ms <= 2_000);
    assert_eq!(d.poll(2_000, &mut out), Action::Sample);
}

#[test]
fn a_stalled_driver_gets_one_late_sample_and_no_burst_of_catch_up_samples() {
    let mut d = device(config().with_sample_interval_ms(1_000));
    let mut out = [0u8; MAX_MESSAGE_LEN];
    assert_eq!(d.poll(0, &mut out), Action::Sample);
    d.on_sample(0, &[("t", 1.0)]).unwrap();
    // Ten seconds pass (a slow TLS handshake, say).
    assert_eq!(d.poll(10_500, &mut out), Action::Sample);
    d.on_sample(10_500, &[("t", 1.0)]).unwrap();
    assert_ne!(d.poll(10_500, &mut out), Action::Sample);
    assert_eq!(d.poll(11_500, &mut out), Action::Sample);
}

#[test]
fn readings_are_sent_as_soon_as_they_are_taken_while_online() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(1_000)));
    bench.run_until(5_000);
    let readings = bench.readings();
    assert_eq!(seqs(&readings), vec![0, 1, 2, 3, 4, 5]);
    for (i, reading) in readings.iter().enumerate() {
        assert_eq!(reading.device_id, "esp32-01");
        assert_eq!(
            reading.ts_ms,
            T0 + i as u64 * 1_000,
            "Unix time of the sample"
        );
        assert_eq!(
            reading.reading("temperature_c"),
            Some(20.5 + 0.5 * i as f64)
        );
    }
    assert_eq!(bench.device.stats().buffered, 0);
}

#[test]
fn readings_taken_offline_are_sent_in_order_after_the_reconnect_and_seq_continues() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(1_000)));
    bench.run_until(2_000);
    assert_eq!(seqs(&bench.readings()), vec![0, 1, 2]);
    bench.take_sent();

    // The gateway goes away for a while.
    bench.reachable = false;
    bench.drop_connection(2_500);
    bench.run_until(9_000);
    assert!(bench.sent.is_empty());
    assert_eq!(bench.device.stats().buffered, 7, "samples 3..=9 wait");
    assert!(matches!(bench.device.link(), Link::Offline { .. }));

    // It comes back: the backlog goes out first, in order, then live readings.
    bench.reachable = true;
    bench.run_until(40_000);
    let readings = bench.readings();
    let expected: Vec<u32> = (3..=40).collect();
    assert_eq!(seqs(&readings), expected);
    assert!(readings.windows(2).all(|w| w[0].ts_ms < w[1].ts_ms));
    assert_eq!(
        readings[0].ts_ms,
        T0 + 3_000,
        "a buffered reading keeps its own time"
    );
    assert_eq!(bench.device.stats().readings_dropped, 0);
}

#[test]
fn when_the_buffer_is_full_the_oldest_readings_are_dropped_and_counted() {
    let mut bench = Bench::new(device(
        config().with_sample_interval_ms(1_000).with_buffer_limit(5),
    ));
    bench.reachable = false;
    bench.run_until(11_000);
    let stats = bench.device.stats();
    assert_eq!(stats.samples, 12);
    assert_eq!(stats.buffered, 5);
    assert_eq!(stats.readings_dropped, 7);
    let kept: Vec<u32> = bench.device.buffered().map(|s| s.seq).collect();
    assert_eq!(kept, vec![7, 8, 9, 10, 11], "the newest five survive");

    // Back online: everything not dropped arrives, in order, from the oldest kept.
    bench.reachable = true;
    bench.run_until(80_000);
    let stats = bench.device.stats();
    let seqs = seqs(&bench.readings());
    assert_eq!(
        seqs[0], stats.readings_dropped,
        "seqs before it were dropped"
    );
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(
        stats.readings_sent + stats.readings_dropped + stats.buffered,
        stats.samples
    );
}

#[test]
fn the_whole_capacity_is_used_when_no_limit_is_set() {
    let mut d: Device<4> = Device::new(config().with_sample_interval_ms(250), 0).unwrap();
    assert_eq!(d.buffer_limit(), 4);
    for i in 0..6 {
        d.on_sample(i * 250, &[("t", 1.0)]).unwrap();
    }
    assert_eq!(d.stats().buffered, 4);
    assert_eq!(d.stats().readings_dropped, 2);
    let over: Device<4> = Device::new(config().with_buffer_limit(100), 0).unwrap();
    assert_eq!(over.buffer_limit(), 4, "a limit above N is capped at N");
}

#[test]
fn a_reading_whose_write_failed_is_sent_again_after_the_reconnect() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(1_000)));
    bench.run_until(1_000);
    assert_eq!(seqs(&bench.readings()), vec![0, 1]);
    bench.writable = false;
    bench.run_until(2_000);
    assert_eq!(bench.device.stats().buffered, 1, "seq 2 was not written");
    assert!(matches!(bench.device.link(), Link::Offline { .. }));
    bench.writable = true;
    bench.run_until(10_000);
    let seqs = seqs(&bench.readings());
    assert_eq!(seqs[..3], [0, 1, 2]);
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[test]
fn a_backlog_is_paced_by_the_backlog_interval() {
    let mut d: Device<16> = Device::new(
        config()
            .with_backlog_interval_ms(50)
            .with_sample_interval_ms(60_000),
        0,
    )
    .unwrap();
    let mut out = [0u8; MAX_MESSAGE_LEN];
    for i in 0..4 {
        d.on_sample(i, &[("t", 1.0)]).unwrap();
    }
    assert_eq!(d.poll(10, &mut out), Action::Sample);
    d.on_sample(10, &[("t", 1.0)]).unwrap();
    assert_eq!(d.poll(10, &mut out), Action::Connect);
    d.on_connected(10, None);
    let Action::Send(first) = d.poll(10, &mut out) else {
        panic!("sends")
    };
    assert_eq!(first.kind, FrameKind::Reading { seq: 0, backlog: 4 });
    d.on_sent(12);
    assert_eq!(d.poll(12, &mut out), Action::Wait { until_ms: 62 });
    assert!(matches!(
        d.poll(62, &mut out),
        Action::Send(frame) if frame.kind == FrameKind::Reading { seq: 1, backlog: 3 }
    ));
}

#[test]
fn failed_connection_attempts_back_off_exponentially_with_jitter() {
    let backoff = BackoffConfig {
        initial_ms: 1_000,
        max_ms: 16_000,
        stable_after_ms: 30_000,
    };
    let mut bench = Bench::new(device(
        config()
            .with_backoff(backoff)
            .with_sample_interval_ms(MAX_SAMPLE_INTERVAL_MS),
    ));
    bench.reachable = false;
    bench.run_until(120_000);
    let gaps: Vec<u64> = bench
        .connect_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    let nominal = [1_000, 2_000, 4_000, 8_000, 16_000, 16_000, 16_000];
    for (gap, nominal) in gaps.iter().zip(nominal) {
        assert!(
            (nominal / 2..=nominal).contains(gap),
            "gap {gap} outside {}..={nominal} (all: {gaps:?})",
            nominal / 2
        );
    }
    assert!(gaps.len() >= nominal.len());
    assert_eq!(
        bench.device.stats().connect_failures as usize,
        bench.connect_times.len()
    );
}

#[test]
fn the_same_seed_reconnects_at_the_same_times_and_another_seed_does_not() {
    let run = |seed| {
        let mut bench = Bench::new(device(
            config()
                .with_seed(seed)
                .with_sample_interval_ms(MAX_SAMPLE_INTERVAL_MS),
        ));
        bench.reachable = false;
        bench.run_until(60_000);
        bench.connect_times
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn a_connection_that_was_stable_reconnects_quickly_and_one_that_flaps_backs_off() {
    let backoff = BackoffConfig {
        initial_ms: 1_000,
        max_ms: 60_000,
        stable_after_ms: 30_000,
    };
    let mut d = device(
        config()
            .with_backoff(backoff)
            .with_sample_interval_ms(MAX_SAMPLE_INTERVAL_MS),
    );
    let mut out = [0u8; MAX_MESSAGE_LEN];
    let mut connect_at = |d: &mut Device<16>, now: u64| loop {
        match d.poll(now, &mut out) {
            Action::Connect => {
                d.on_connected(now, None);
                return;
            }
            Action::Sample => {
                d.on_sample(now, &[("t", 1.0)]).unwrap();
            }
            Action::Send(_) => d.on_sent(now),
            other => panic!("expected to connect at {now}, got {other:?}"),
        }
    };
    // Flapping: the server accepts and drops at once, four times in a row.
    let mut now = 0;
    for failures in 0..4u32 {
        connect_at(&mut d, now);
        d.on_disconnected(now + 100);
        let Link::Offline { retry_at_ms } = d.link() else {
            panic!()
        };
        let delay = retry_at_ms - (now + 100);
        let nominal = 1_000u64 << failures;
        assert!(
            (nominal / 2..=nominal).contains(&delay),
            "{delay} vs {nominal}"
        );
        now = retry_at_ms;
    }
    // A connection that held for a minute resets the backoff.
    connect_at(&mut d, now);
    d.on_disconnected(now + 60_000);
    let Link::Offline { retry_at_ms } = d.link() else {
        panic!()
    };
    assert!(retry_at_ms - (now + 60_000) <= 1_000);
}

#[test]
fn a_control_message_changes_the_interval_at_once_and_is_acknowledged() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(1_000)));
    bench.run_until(3_000);
    bench.take_sent();
    let incoming = bench
        .device
        .on_text(3_100, br#"{"type":"control","sample_interval_ms":250}"#);
    assert_eq!(
        incoming,
        Incoming::ControlApplied {
            sample_interval_ms: 250
        }
    );
    assert_eq!(bench.device.sample_interval_ms(), 250);
    let mut now = bench.run_at(3_100);
    let sent = bench.take_sent();
    assert_eq!(
        sent[0],
        Sent::Ack(ControlAck::new("esp32-01", 250).unwrap()),
        "the ack goes out first: {sent:?}"
    );
    while now <= 4_000 {
        now = bench.run_at(now);
    }
    let times: Vec<u64> = bench.readings().iter().map(|r| r.ts_ms - T0).collect();
    // The new interval counts from the last sample (3 000).
    assert_eq!(times, vec![3_250, 3_500, 3_750, 4_000]);
    assert_eq!(bench.device.stats().controls_applied, 1);
    assert_eq!(bench.device.stats().acks_sent, 1);
}

#[test]
fn a_longer_interval_counts_from_the_last_sample() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(1_000)));
    bench.run_until(2_000);
    bench
        .device
        .on_text(2_400, br#"{"type":"control","sample_interval_ms":5000}"#);
    bench.take_sent();
    let mut now = bench.run_at(2_400);
    while now <= 12_000 {
        now = bench.run_at(now);
    }
    let times: Vec<u64> = bench.readings().iter().map(|r| r.ts_ms - T0).collect();
    assert_eq!(times, vec![7_000, 12_000]);
}

#[test]
fn an_out_of_bounds_control_is_refused_and_the_kept_interval_acknowledged() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(1_000)));
    bench.run_until(1_000);
    bench.take_sent();
    for (frame, requested) in [
        (
            br#"{"type":"control","sample_interval_ms":10}"#.as_slice(),
            10,
        ),
        (
            br#"{"type":"control","sample_interval_ms":3600001}"#.as_slice(),
            3_600_001,
        ),
    ] {
        assert_eq!(
            bench.device.on_text(1_100, frame),
            Incoming::ControlRejected {
                requested,
                kept_ms: 1_000
            }
        );
    }
    bench.run_at(1_100);
    assert_eq!(
        bench.take_sent(),
        vec![Sent::Ack(ControlAck::new("esp32-01", 1_000).unwrap())]
    );
    assert_eq!(bench.device.sample_interval_ms(), 1_000);
    assert_eq!(bench.device.stats().controls_rejected, 2);
}

#[test]
fn an_ack_not_sent_before_a_disconnect_is_sent_after_the_reconnect() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(60_000)));
    bench.run_until(10);
    bench.take_sent();
    bench
        .device
        .on_text(20, br#"{"type":"control","sample_interval_ms":2000}"#);
    bench.drop_connection(25);
    bench.run_until(5_000);
    assert_eq!(
        bench.take_sent()[0],
        Sent::Ack(ControlAck::new("esp32-01", 2_000).unwrap())
    );
}

#[test]
fn errors_from_the_cloud_and_unknown_or_malformed_frames_are_reported_and_ignored() {
    let mut bench = Bench::new(device(config()));
    bench.run_until(10);
    let error = bench.device.on_text(
        20,
        br#"{"type":"error","code":"device_id_mismatch","message":"wrong id"}"#,
    );
    let Incoming::CloudError(reply) = error else {
        panic!("{error:?}")
    };
    assert_eq!(reply.code, ErrorCode::DeviceIdMismatch);
    assert_eq!(
        bench.device.on_text(21, br#"{"type":"reading","x":1}"#),
        Incoming::Unknown
    );
    assert!(matches!(
        bench.device.on_text(22, b"not json"),
        Incoming::Malformed(_)
    ));
    let stats = bench.device.stats();
    assert_eq!((stats.cloud_errors, stats.malformed_frames), (1, 1));
    assert!(matches!(bench.device.link(), Link::Online { .. }));
}

#[test]
fn a_heartbeat_goes_out_only_when_nothing_else_did_for_the_heartbeat_interval() {
    let mut bench = Bench::new(device(
        config()
            .with_sample_interval_ms(MAX_SAMPLE_INTERVAL_MS)
            .with_heartbeat_interval_ms(240_000),
    ));
    bench.run_until(0);
    assert_eq!(bench.take_sent().len(), 1, "the boot reading");
    bench.run_until(239_999);
    assert!(bench.sent.is_empty());
    bench.run_until(240_000);
    assert_eq!(
        bench.take_sent(),
        vec![Sent::Heartbeat(
            ControlAck::new("esp32-01", MAX_SAMPLE_INTERVAL_MS).unwrap()
        )]
    );
    // A message from the cloud is activity too: the next heartbeat moves with it.
    bench.device.on_text(300_000, br#"{"type":"unknown"}"#);
    bench.run_until(539_999);
    assert!(bench.sent.is_empty());
    bench.run_until(540_000);
    assert!(matches!(bench.take_sent()[..], [Sent::Heartbeat(_)]));
    assert_eq!(bench.device.stats().heartbeats_sent, 2);
}

#[test]
fn no_heartbeat_is_needed_while_readings_flow() {
    let mut bench = Bench::new(device(
        config()
            .with_sample_interval_ms(60_000)
            .with_heartbeat_interval_ms(240_000),
    ));
    bench.run_until(3_600_000);
    assert_eq!(bench.device.stats().heartbeats_sent, 0);
    assert_eq!(bench.readings().len(), 61);
}

#[test]
fn the_connection_is_renewed_before_api_gateways_two_hour_limit() {
    let age = 110 * 60 * 1_000;
    let mut bench = Bench::new(device(config().with_sample_interval_ms(60_000)));
    bench.run_until(5 * 60 * 60 * 1_000);
    assert_eq!(bench.closes.len(), 2, "{:?}", bench.connect_times);
    assert_eq!(bench.closes[0], CloseReason::MaxAge);
    let renewals = &bench.connect_times[1..];
    let mut previous = bench.connect_times[0];
    for &at in renewals {
        let lifetime = at - previous;
        assert!(
            lifetime <= age && lifetime >= age - age / 20,
            "renewed after {lifetime} ms"
        );
        previous = at;
    }
    let stats = bench.device.stats();
    assert_eq!(
        (stats.renewals, stats.disconnects, stats.connect_failures),
        (2, 0, 0)
    );
    let seqs = seqs(&bench.readings());
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "no reading lost");
}

#[test]
fn a_renewal_reconnects_at_once_without_backoff() {
    let mut d = device(
        config()
            .with_max_connection_age_ms(60_000)
            .with_sample_interval_ms(MAX_SAMPLE_INTERVAL_MS),
    );
    let mut out = [0u8; MAX_MESSAGE_LEN];
    assert_eq!(d.poll(0, &mut out), Action::Sample);
    d.on_sample(0, &[("t", 1.0)]).unwrap();
    assert_eq!(d.poll(0, &mut out), Action::Connect);
    d.on_connected(0, None);
    assert!(matches!(d.poll(0, &mut out), Action::Send(_)));
    d.on_sent(0);
    let Action::Wait { until_ms } = d.poll(0, &mut out) else {
        panic!()
    };
    assert!((57_000..=60_000).contains(&until_ms));
    assert_eq!(
        d.poll(until_ms, &mut out),
        Action::Close(CloseReason::MaxAge)
    );
    assert_eq!(d.link(), Link::Closing);
    d.on_disconnected(until_ms + 5);
    assert_eq!(d.poll(until_ms + 5, &mut out), Action::Connect);
}

#[test]
fn readings_carry_ts_ms_0_until_a_connection_sets_the_clock() {
    let mut bench = Bench::new(device(config().with_sample_interval_ms(1_000)));
    let mut out = [0u8; MAX_MESSAGE_LEN];
    // A server without a Date header: no clock.
    assert_eq!(bench.device.poll(0, &mut out), Action::Sample);
    bench.device.on_sample(0, &[("t", 1.0)]).unwrap();
    assert_eq!(bench.device.poll(0, &mut out), Action::Connect);
    bench.device.on_connected(0, None);
    let Action::Send(frame) = bench.device.poll(0, &mut out) else {
        panic!()
    };
    let update: RealTimeDataUpdate = decode(&out[..frame.len]).unwrap();
    assert_eq!(update.ts_ms, 0);
    assert_eq!(bench.device.unix_time_ms(0), None);
    bench.device.on_sent(0);
    // Offline readings taken before the clock is known get their time once it is.
    bench.device.on_disconnected(100);
    bench.device.on_sample(500, &[("t", 2.0)]).unwrap();
    let Link::Offline { retry_at_ms } = bench.device.link() else {
        panic!()
    };
    let now = retry_at_ms.max(600);
    loop {
        match bench.device.poll(now, &mut out) {
            Action::Connect => {
                bench.device.on_connected(now, Some(T0 + now));
                break;
            }
            Action::Sample => {
                bench.device.on_sample(now, &[("t", 3.0)]).unwrap();
            }
            other => panic!("{other:?}"),
        }
    }
    let Action::Send(frame) = bench.device.poll(now, &mut out) else {
        panic!()
    };
    let update: RealTimeDataUpdate = decode(&out[..frame.len]).unwrap();
    assert_eq!((update.seq, update.ts_ms), (1, T0 + 500));
    assert_eq!(bench.device.unix_time_ms(now), Some(T0 + now));
}

#[test]
fn invalid_samples_are_refused_and_nothing_is_buffered() {
    let mut d = device(config());
    let cases: [(&[(&'static str, f64)], SampleError); 5] = [
        (&[], SampleError::Empty),
        (
            &[("bad name", 1.0)],
            SampleError::InvalidMetricName("bad name"),
        ),
        (&[("t", f64::NAN)], SampleError::NonFinite("t")),
        (&[("t", 1.0), ("t", 2.0)], SampleError::Duplicate("t")),
        (
            &[
                ("a", 1.0),
                ("b", 1.0),
                ("c", 1.0),
                ("d", 1.0),
                ("e", 1.0),
                ("f", 1.0),
                ("g", 1.0),
                ("h", 1.0),
                ("i", 1.0),
            ],
            SampleError::TooManyMetrics,
        ),
    ];
    for (readings, error) in cases {
        assert_eq!(d.on_sample(0, readings), Err(error));
    }
    assert_eq!(d.stats().samples_rejected, 5);
    assert_eq!((d.stats().buffered, d.next_seq()), (0, 0));
    assert_eq!(
        d.on_sample(0, &[("temperature_c", -4.25), ("rssi_dbm", -61.0)]),
        Ok(0)
    );
}

#[test]
fn an_invalid_config_is_refused_at_start() {
    let config = config().with_heartbeat_interval_ms(0);
    assert!(Device::<4>::new(config, 0).is_err());
}

#[test]
fn readings_sent_just_before_a_drop_are_sent_again_after_the_reconnect_with_the_same_time() {
    let mut bench = Bench::new(device(
        config()
            .with_sample_interval_ms(1_000)
            .with_resend_window_ms(2_000),
    ));
    bench.run_until(2_000);
    let first = bench.readings();
    assert_eq!(seqs(&first), vec![0, 1, 2]);
    bench.take_sent();
    // The link dies at 2.5 s: what went out since 0.5 s may never have arrived.
    bench.drop_connection(2_500);
    assert_eq!(bench.device.stats().readings_resent, 2);
    let queued: Vec<u32> = bench.device.buffered().map(|s| s.seq).collect();
    assert_eq!(queued, vec![1, 2]);
    bench.run_until(6_000);
    let again = bench.readings();
    assert_eq!(seqs(&again)[..4], [1, 2, 3, 4]);
    assert_eq!(again[0], first[1], "the copy is identical, time included");
    assert_eq!(again[1], first[2]);
}

#[test]
fn a_renewal_closes_cleanly_and_resends_nothing() {
    let mut bench = Bench::new(device(
        config()
            .with_sample_interval_ms(1_000)
            .with_resend_window_ms(2_000)
            .with_max_connection_age_ms(10_000),
    ));
    bench.run_until(30_000);
    assert!(bench.device.stats().renewals >= 2);
    assert_eq!(bench.device.stats().readings_resent, 0);
    let seqs = seqs(&bench.readings());
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[test]
fn resends_never_push_unsent_readings_out_of_a_full_buffer() {
    let mut bench = Bench::new(device(
        config()
            .with_sample_interval_ms(250)
            .with_resend_window_ms(2_000)
            .with_buffer_limit(3),
    ));
    bench.run_until(1_000);
    bench.reachable = false;
    bench.drop_connection(1_100);
    assert_eq!(
        bench.device.stats().buffered,
        3,
        "three of the last five resent"
    );
    bench.run_until(1_250);
    let stats = bench.device.stats();
    assert_eq!((stats.buffered, stats.readings_dropped), (3, 1));
}

/// Polls until the device waits, answering `Connect` with `connect`.
fn settle(d: &mut Device<16>, now: u64, connect: &mut impl FnMut(&mut Device<16>)) -> u64 {
    let mut out = [0u8; MAX_MESSAGE_LEN];
    for _ in 0..100 {
        match d.poll(now, &mut out) {
            Action::Sample => {
                d.on_sample(now, &[("t", 1.0)]).unwrap();
            }
            Action::Connect => connect(d),
            Action::Wait { until_ms } => return until_ms,
            other => panic!("{other:?} while offline"),
        }
    }
    panic!("never waits")
}

#[test]
fn waiting_for_wi_fi_and_dhcp_is_not_a_failure_and_does_not_grow_the_backoff() {
    let mut d = device(config().with_network_poll_ms(1_000));
    // Five minutes before the access point and DHCP answer: an attempt each second.
    let mut now = 0;
    let mut attempts = 0;
    while now < 300_000 {
        let next = settle(&mut d, now, &mut |d| {
            attempts += 1;
            d.on_network_unavailable(now);
        });
        assert!(next - now <= 1_000, "polled again within a second at {now}");
        now = next;
    }
    assert!(attempts >= 299, "{attempts}");
    let stats = d.stats();
    assert_eq!(stats.connect_failures, 0);
    assert_eq!(stats.connect_attempts, 0);
    assert_eq!(stats.network_waits, attempts);
    // The network is up: the next attempt comes at once and a failure then backs off
    // from the initial delay, not from minutes of "failures".
    let mut connected_at = None;
    settle(&mut d, now, &mut |d| {
        connected_at = Some(now);
        d.on_connect_failed(now);
    });
    assert!(connected_at.is_some());
    let Link::Offline { retry_at_ms } = d.link() else {
        panic!("{:?}", d.link())
    };
    assert!(
        retry_at_ms - now <= 1_000,
        "first real failure waits the initial backoff, not {} ms",
        retry_at_ms - now
    );
    assert_eq!(d.stats().connect_failures, 1);
}

#[test]
fn network_unavailable_is_ignored_unless_connecting() {
    let mut d = device(config());
    d.on_network_unavailable(0);
    assert_eq!(d.stats().network_waits, 0);
    assert_eq!(d.link(), Link::Offline { retry_at_ms: 0 });
}

#[test]
fn a_control_received_while_closing_for_renewal_is_applied_and_acknowledged_after_the_reconnect() {
    let mut bench = Bench::new(device(
        config()
            .with_sample_interval_ms(60_000)
            .with_max_connection_age_ms(600_000),
    ));
    bench.run_until(1_000);
    assert!(bench.online);
    let mut out = [0u8; MAX_MESSAGE_LEN];
    // The renewal deadline passes: the device asks to close.
    let renew_at = (590_000..=600_000)
        .step_by(1_000)
        .find(|t| matches!(bench.device.poll(*t, &mut out), Action::Close(_)))
        .expect("a renewal within the connection age");
    assert_eq!(bench.device.link(), Link::Closing);
    // While the close handshake runs, the dashboard's control arrives.
    assert_eq!(
        bench.device.on_text(
            renew_at + 10,
            br#"{"type":"control","sample_interval_ms":5000}"#
        ),
        Incoming::ControlApplied {
            sample_interval_ms: 5_000
        }
    );
    assert_eq!(bench.device.sample_interval_ms(), 5_000);
    bench.online = false;
    bench.device.on_disconnected(renew_at + 20);
    bench.take_sent();
    bench.now = renew_at + 20;
    bench.run_until(renew_at + 1_000);
    assert!(bench.online, "renewed at once");
    let sent = bench.take_sent();
    assert!(
        sent.iter()
            .any(|s| matches!(s, Sent::Ack(ack) if ack.sample_interval_ms == 5_000)),
        "{sent:?}"
    );
}

#[test]
fn the_first_reading_after_boot_carries_the_reset_reason_and_later_ones_do_not() {
    let mut bench = Bench::new(device(config().with_reset_reason("watchdog")));
    bench.run_until(3_000);
    let readings = bench.readings();
    assert!(readings.len() >= 3);
    assert_eq!(readings[0].reset_reason.as_deref(), Some("watchdog"));
    assert!(readings[1..].iter().all(|r| r.reset_reason.is_none()));
}

#[test]
fn a_reset_reason_whose_reading_may_have_been_lost_is_sent_again() {
    let mut bench = Bench::new(device(
        config()
            .with_reset_reason("panic")
            .with_resend_window_ms(2_000),
    ));
    bench.run_until(0);
    assert_eq!(bench.readings()[0].reset_reason.as_deref(), Some("panic"));
    // The connection drops right after: the reading is resent, with the reason.
    bench.drop_connection(500);
    bench.take_sent();
    bench.run_until(5_000);
    let again = bench.readings();
    assert_eq!(again[0].seq, 0);
    assert_eq!(again[0].reset_reason.as_deref(), Some("panic"));
    assert!(again[1..].iter().all(|r| r.reset_reason.is_none()));
}

#[test]
fn without_a_reset_reason_no_reading_carries_one() {
    let mut bench = Bench::new(device(config()));
    bench.run_until(2_000);
    assert!(bench.readings().iter().all(|r| r.reset_reason.is_none()));
}

#[test]
fn sntp_stamps_readings_before_any_connection_and_a_time_before_the_build_is_refused() {
    let build = T0 - 86_400_000;
    let mut d = device(config().with_build_time_ms(build));
    let mut out = [0u8; MAX_MESSAGE_LEN];
    assert_eq!(d.unix_time_ms(0), None);
    assert_eq!(d.clock().certificate_time_ms(0), build);
    assert!(d.on_sntp(1_000, 0).is_err(), "an unset NTP server's 1970");
    d.on_sntp(1_000, T0).unwrap();
    assert_eq!(d.poll(1_000, &mut out), Action::Sample);
    d.on_sample(1_000, &[("t", 1.0)]).unwrap();
    assert_eq!(d.buffered().next().unwrap().ts_ms, T0);
    assert_eq!(d.clock().certificate_time_ms(2_000), T0 + 1_000);
    // The connection's Date agrees within the tolerance: SNTP stays in charge.
    d.on_connected(3_000, Some(T0 + 2_400));
    assert_eq!(d.clock().source(), telemetry_device::TimeSource::Sntp);
}
