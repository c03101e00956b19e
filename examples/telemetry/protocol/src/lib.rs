//! The wire format of the ESP32 telemetry system, shared by the firmware and
//! the cloud so the two can never disagree.
//!
//! `#![no_std]`, no allocator: every string and map is bounded ([`heapless`]),
//! and [`encode`]/[`decode`] go through `serde-json-core`. On the host the same
//! types (de)serialize with `serde_json`. Enable the `std` feature for
//! `std::error::Error` on [`ProtocolError`] and the cloud's parsing of text frames
//! with `serde_json` ([`parse_update`], [`parse_message`]), every problem named as the
//! [`ErrorReply`] to answer.
//!
//! Who sends what (JSON text frames; API Gateway routes on `action`):
//!
//! | direction | message | JSON |
//! | --- | --- | --- |
//! | device → cloud | [`RealTimeDataUpdate`] | `{"action":"RealTimeDataUpdate","device_id":"esp32-01","seq":17,"ts_ms":1732230000000,"readings":{"temperature_c":23.5}}` |
//! | device → cloud | [`ControlAck`] | `{"action":"ControlAck","device_id":"esp32-01","sample_interval_ms":2000}` |
//! | cloud → device | [`Control`] | `{"type":"control","sample_interval_ms":2000}` |
//! | dashboard → cloud | [`ControlCmd`] | `{"action":"ControlCmd","interval_ms":5000}` or `{"action":"ControlCmd","device_id":"esp32-01","sample_interval_ms":2000}` |
//! | cloud → dashboard | [`IntervalReply`] | `{"type":"interval","interval_ms":5000}` |
//! | cloud → dashboard | [`Reading`] | `{"type":"reading","device_id":"esp32-01","seq":17,"ts_ms":…,"readings":{…}}` |
//! | cloud → dashboard | [`ControlAckNotice`] | `{"type":"control_ack","device_id":"esp32-01","sample_interval_ms":2000}` |
//! | cloud → anyone | [`ErrorReply`] | `{"type":"error","code":"interval_out_of_range","message":"…"}` |
//!
//! ```
//! use telemetry_protocol::{decode, encode, RealTimeDataUpdate, MAX_MESSAGE_LEN};
//!
//! let mut update = RealTimeDataUpdate::new("esp32-01", 17, 1_732_230_000_000)?;
//! update.push_reading("temperature_c", 23.5)?;
//! update.push_reading("humidity_pct", 41.0)?;
//!
//! let mut buf = [0u8; MAX_MESSAGE_LEN];
//! let len = encode(&update, &mut buf)?;
//! let back: RealTimeDataUpdate = decode(&buf[..len])?;
//! assert_eq!(back, update);
//! back.validate()?;
//! # Ok::<(), telemetry_protocol::ProtocolError>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod error;
#[cfg(feature = "std")]
mod host;
mod messages;
mod tag;

pub use error::{ErrorCode, ProtocolError};
#[cfg(feature = "std")]
pub use host::{binary_frame, parse_message, parse_update, Refusal};
pub use messages::{
    CloudToDevice, Control, ControlAck, ControlAckNotice, ControlCmd, ControlRequest, ErrorReply,
    IntervalReply, Reading, RealTimeDataUpdate,
};
pub use tag::tags;

pub use heapless;

/// Smallest push interval a dashboard client may ask for, in milliseconds.
pub const MIN_CLIENT_INTERVAL_MS: u32 = 500;
/// Largest push interval a dashboard client may ask for (one hour), in milliseconds.
pub const MAX_CLIENT_INTERVAL_MS: u32 = 3_600_000;
/// Push interval of a dashboard client that never sent a `ControlCmd`.
pub const DEFAULT_CLIENT_INTERVAL_MS: u32 = 1_000;

/// Smallest sample interval a device accepts, in milliseconds.
pub const MIN_SAMPLE_INTERVAL_MS: u32 = 250;
/// Largest sample interval a device accepts (one hour), in milliseconds.
pub const MAX_SAMPLE_INTERVAL_MS: u32 = 3_600_000;
/// Sample interval a device starts with until told otherwise.
pub const DEFAULT_SAMPLE_INTERVAL_MS: u32 = 1_000;

/// Most metrics one reading may carry.
pub const MAX_METRICS: usize = 32;
/// Longest metric name, in bytes (`[A-Za-z0-9_.-]`, not empty).
pub const MAX_METRIC_NAME_LEN: usize = 32;
/// Longest device id, in bytes (`[A-Za-z0-9_.:-]`, not empty).
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Longest human-readable message in an [`ErrorReply`], in bytes.
pub const MAX_ERROR_MESSAGE_LEN: usize = 200;
/// A buffer this large holds any message of this protocol, encoded.
pub const MAX_MESSAGE_LEN: usize = 2_560;
/// Longest reset reason, in bytes (`[a-z0-9_]`, not empty).
pub const MAX_RESET_REASON_LEN: usize = 32;
/// How far ahead of the receiver's clock a device's `ts_ms` may be and still be
/// trusted: 5 minutes (see [`RealTimeDataUpdate::time_ms`]).
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Deepest nesting of arrays and objects [`decode`] accepts. Every message of
/// this protocol nests at most 2 deep (`{"readings":{…}}`); the limit leaves room
/// for unknown fields of newer senders while keeping the decoder's recursion (and
/// so the stack a device needs) bounded.
pub const MAX_NESTING_DEPTH: usize = 16;

/// A device id: 1–[`MAX_DEVICE_ID_LEN`] bytes of `[A-Za-z0-9_.:-]`.
pub type DeviceId = heapless::String<MAX_DEVICE_ID_LEN>;
/// A metric name: 1–[`MAX_METRIC_NAME_LEN`] bytes of `[A-Za-z0-9_.-]`.
pub type MetricName = heapless::String<MAX_METRIC_NAME_LEN>;
/// Metric name → value, at most [`MAX_METRICS`] entries, in insertion order.
pub type Readings = heapless::LinearMap<MetricName, f64, MAX_METRICS>;
/// Why a device restarted: 1–[`MAX_RESET_REASON_LEN`] bytes of `[a-z0-9_]`, such as
/// `power_on`, `watchdog` or `panic` (see [`RealTimeDataUpdate::reset_reason`]).
pub type ResetReason = heapless::String<MAX_RESET_REASON_LEN>;

/// Checks a dashboard push interval against
/// [`MIN_CLIENT_INTERVAL_MS`]..=[`MAX_CLIENT_INTERVAL_MS`].
pub fn validate_client_interval(interval_ms: u64) -> Result<u32, ProtocolError> {
    in_bounds(interval_ms, MIN_CLIENT_INTERVAL_MS, MAX_CLIENT_INTERVAL_MS).ok_or(
        ProtocolError::IntervalOutOfRange {
            value: interval_ms,
            min: MIN_CLIENT_INTERVAL_MS,
            max: MAX_CLIENT_INTERVAL_MS,
        },
    )
}

/// Checks a device sample interval against
/// [`MIN_SAMPLE_INTERVAL_MS`]..=[`MAX_SAMPLE_INTERVAL_MS`].
pub fn validate_sample_interval(sample_interval_ms: u64) -> Result<u32, ProtocolError> {
    in_bounds(
        sample_interval_ms,
        MIN_SAMPLE_INTERVAL_MS,
        MAX_SAMPLE_INTERVAL_MS,
    )
    .ok_or(ProtocolError::SampleIntervalOutOfRange {
        value: sample_interval_ms,
        min: MIN_SAMPLE_INTERVAL_MS,
        max: MAX_SAMPLE_INTERVAL_MS,
    })
}

fn in_bounds(value: u64, min: u32, max: u32) -> Option<u32> {
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
}

/// Checks a device id: not empty, at most [`MAX_DEVICE_ID_LEN`] bytes, only
/// `[A-Za-z0-9_.:-]` (safe in URLs, keys and logs).
pub fn validate_device_id(device_id: &str) -> Result<(), ProtocolError> {
    if device_id.is_empty()
        || device_id.len() > MAX_DEVICE_ID_LEN
        || !device_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    {
        return Err(ProtocolError::InvalidDeviceId);
    }
    Ok(())
}

/// Checks a reset reason: not empty, at most [`MAX_RESET_REASON_LEN`] bytes, only
/// `[a-z0-9_]`. The set of reasons is open: a cloud shows the ones it does not know
/// as they are.
pub fn validate_reset_reason(reason: &str) -> Result<(), ProtocolError> {
    if reason.is_empty()
        || reason.len() > MAX_RESET_REASON_LEN
        || !reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(ProtocolError::InvalidResetReason);
    }
    Ok(())
}

/// How deep arrays and objects nest in `json` (`0` for a scalar, `1` for `{}`),
/// counting only brackets outside strings. It stops counting once past `limit`
/// and returns `limit + 1`, so the scan is one pass whatever the input.
pub fn nesting_depth(json: &[u8], limit: usize) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return limit + 1;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Checks a metric name: not empty, at most [`MAX_METRIC_NAME_LEN`] bytes,
/// only `[A-Za-z0-9_.-]`.
pub fn validate_metric_name(name: &str) -> Result<(), ProtocolError> {
    if name.is_empty()
        || name.len() > MAX_METRIC_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(ProtocolError::InvalidMetricName);
    }
    Ok(())
}

/// Checks every reading: valid names, finite values, at most [`MAX_METRICS`].
pub fn validate_readings(readings: &Readings) -> Result<(), ProtocolError> {
    if readings.len() > MAX_METRICS {
        return Err(ProtocolError::TooManyMetrics {
            count: readings.len(),
        });
    }
    for (name, value) in readings.iter() {
        validate_metric_name(name)?;
        if !value.is_finite() {
            return Err(ProtocolError::NonFiniteReading { name: name.clone() });
        }
    }
    Ok(())
}

/// Copies `s` into a bounded string, or fails with `err` when it does not fit.
pub(crate) fn bounded<const N: usize>(
    s: &str,
    err: ProtocolError,
) -> Result<heapless::String<N>, ProtocolError> {
    let mut out = heapless::String::new();
    out.push_str(s).map_err(|_| err)?;
    Ok(out)
}

/// Encodes a message as JSON into `buf` and returns the number of bytes
/// written. Non-finite numbers would encode as `null`; call the message's
/// `validate` first (the builders already refuse them).
pub fn encode<T: serde::Serialize>(message: &T, buf: &mut [u8]) -> Result<usize, ProtocolError> {
    serde_json_core::to_slice(message, buf).map_err(|_| ProtocolError::BufferTooSmall)
}

/// Decodes one JSON message (unknown fields are ignored, string escapes are
/// resolved). This only checks the shape; call the message's `validate` for
/// the rules the types cannot express.
///
/// JSON nested deeper than [`MAX_NESTING_DEPTH`] is refused before decoding:
/// serde-json-core skips unknown fields recursively, so a small frame of nested
/// arrays would otherwise take one stack frame per level.
pub fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, ProtocolError> {
    if nesting_depth(json, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH {
        return Err(ProtocolError::TooDeep {
            limit: MAX_NESTING_DEPTH,
        });
    }
    let mut unescape = [0u8; MAX_ERROR_MESSAGE_LEN];
    serde_json_core::from_slice_escaped(json, &mut unescape)
        .map(|(message, _)| message)
        .map_err(ProtocolError::Decode)
}
