use core::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{
    bounded, decode, tags, validate_client_interval, validate_device_id, validate_metric_name,
    validate_readings, validate_reset_reason, validate_sample_interval, DeviceId, ErrorCode,
    MetricName, ProtocolError, Readings, ResetReason, MAX_CLOCK_SKEW_MS, MAX_ERROR_MESSAGE_LEN,
    MAX_METRICS,
};

/// Device → cloud: one sample of every metric the device measures.
///
/// `seq` counts up from the device's boot and keeps counting across
/// reconnects (buffered readings arrive late but in order). `ts_ms` is the
/// device's Unix time in milliseconds, or `0` while its clock is not set; the
/// cloud then stamps the time it received the reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealTimeDataUpdate {
    /// Always `"RealTimeDataUpdate"` (the API Gateway route key).
    pub action: tags::RealTimeDataUpdate,
    /// The id the device connected with (`?device_id=`).
    pub device_id: DeviceId,
    /// Sequence number of this sample.
    pub seq: u32,
    /// Unix time of the sample in milliseconds, `0` when unknown.
    pub ts_ms: u64,
    /// Metric name → value.
    pub readings: Readings,
    /// Why the device last restarted (`power_on`, `watchdog`, `panic`, …): sent with
    /// the first reading after a boot, absent otherwise (and from older devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_reason: Option<ResetReason>,
}

impl RealTimeDataUpdate {
    /// An update with no readings yet; fails on an invalid device id.
    pub fn new(device_id: &str, seq: u32, ts_ms: u64) -> Result<Self, ProtocolError> {
        validate_device_id(device_id)?;
        Ok(RealTimeDataUpdate {
            action: tags::RealTimeDataUpdate,
            device_id: bounded(device_id, ProtocolError::InvalidDeviceId)?,
            seq,
            ts_ms,
            readings: Readings::new(),
            reset_reason: None,
        })
    }

    /// Marks this update as the first after a restart, for `reason`; refuses a
    /// reason that is not 1–32 characters of `[a-z0-9_]`.
    pub fn set_reset_reason(&mut self, reason: &str) -> Result<(), ProtocolError> {
        validate_reset_reason(reason)?;
        self.reset_reason = Some(bounded(reason, ProtocolError::InvalidResetReason)?);
        Ok(())
    }

    /// When this sample was taken, as a receiver whose clock reads `now_ms` files it: the
    /// device's `ts_ms` when it has a clock and is not ahead of the receiver's by more
    /// than [`MAX_CLOCK_SKEW_MS`], otherwise `now_ms`.
    ///
    /// ```
    /// use telemetry_protocol::{RealTimeDataUpdate, MAX_CLOCK_SKEW_MS};
    ///
    /// let now_ms = 1_732_230_000_000;
    /// let sample = |ts_ms| RealTimeDataUpdate::new("esp32-01", 1, ts_ms).unwrap().time_ms(now_ms);
    /// assert_eq!(sample(1_732_229_000_000), 1_732_229_000_000);
    /// assert_eq!(sample(0), now_ms, "no clock yet");
    /// assert_eq!(sample(now_ms + MAX_CLOCK_SKEW_MS + 1), now_ms, "too far ahead");
    /// ```
    pub fn time_ms(&self, now_ms: u64) -> u64 {
        if self.ts_ms == 0 || self.ts_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return now_ms;
        }
        self.ts_ms
    }

    /// Adds (or replaces) one metric; refuses bad names, non-finite values
    /// and a 33rd metric.
    pub fn push_reading(&mut self, name: &str, value: f64) -> Result<(), ProtocolError> {
        validate_metric_name(name)?;
        let name: MetricName = bounded(name, ProtocolError::InvalidMetricName)?;
        if !value.is_finite() {
            return Err(ProtocolError::NonFiniteReading { name });
        }
        self.readings
            .insert(name, value)
            .map(|_| ())
            .map_err(|_| ProtocolError::TooManyMetrics {
                count: MAX_METRICS + 1,
            })
    }

    /// The value of one metric, if present.
    pub fn reading(&self, name: &str) -> Option<f64> {
        self.readings
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| *v)
    }

    /// Everything the types cannot express: the device id's characters,
    /// metric names, finite values, the reset reason's characters.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_device_id(&self.device_id)?;
        if let Some(reason) = &self.reset_reason {
            validate_reset_reason(reason)?;
        }
        validate_readings(&self.readings)
    }
}

/// Device → cloud: the device applied (or kept) a sample interval after a
/// [`Control`]. `sample_interval_ms` is the interval now in effect, so a
/// device that refused an out-of-range value reports the one it kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlAck {
    /// Always `"ControlAck"` (the API Gateway route key).
    pub action: tags::ControlAck,
    /// The id the device connected with.
    pub device_id: DeviceId,
    /// The sample interval in effect, in milliseconds.
    pub sample_interval_ms: u32,
}

impl ControlAck {
    /// An acknowledgement; fails on an invalid device id.
    pub fn new(device_id: &str, sample_interval_ms: u32) -> Result<Self, ProtocolError> {
        validate_device_id(device_id)?;
        Ok(ControlAck {
            action: tags::ControlAck,
            device_id: bounded(device_id, ProtocolError::InvalidDeviceId)?,
            sample_interval_ms,
        })
    }

    /// Checks the device id and the interval bounds.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_device_id(&self.device_id)?;
        validate_sample_interval(self.sample_interval_ms.into()).map(|_| ())
    }
}

/// Cloud → device: sample every `sample_interval_ms` from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// Always `"control"`.
    #[serde(rename = "type")]
    pub kind: tags::Control,
    /// The new sample interval in milliseconds.
    pub sample_interval_ms: u32,
}

impl Control {
    /// A control message; fails outside the sample interval bounds.
    pub fn new(sample_interval_ms: u64) -> Result<Self, ProtocolError> {
        Ok(Control {
            kind: tags::Control,
            sample_interval_ms: validate_sample_interval(sample_interval_ms)?,
        })
    }

    /// Checks the interval bounds.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_sample_interval(self.sample_interval_ms.into()).map(|_| ())
    }
}

/// What a device can receive from the cloud.
// No allocator to box the error reply in; ~200 bytes on the stack is fine.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CloudToDevice {
    /// Change the sample interval (already checked against the bounds).
    Control(Control),
    /// The cloud rejected something the device sent.
    Error(ErrorReply),
    /// A message type this version does not know; ignore it.
    Unknown,
}

impl CloudToDevice {
    /// Decodes a text frame sent to a device.
    pub fn decode(json: &[u8]) -> Result<Self, ProtocolError> {
        #[derive(Deserialize)]
        struct Peek {
            #[serde(rename = "type")]
            kind: heapless::String<16>,
        }
        let peek: Peek = decode(json)?;
        match peek.kind.as_str() {
            tags::Control::VALUE => {
                let control: Control = decode(json)?;
                control.validate()?;
                Ok(CloudToDevice::Control(control))
            }
            tags::Error::VALUE => Ok(CloudToDevice::Error(decode(json)?)),
            _ => Ok(CloudToDevice::Unknown),
        }
    }
}

/// Dashboard → cloud: change this client's push interval
/// (`{"action":"ControlCmd","interval_ms":5000}`) or a device's sample
/// interval (`{"action":"ControlCmd","device_id":"esp32-01","sample_interval_ms":2000}`).
/// [`ControlCmd::request`] tells which, with the bounds checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlCmd {
    /// Always `"ControlCmd"` (the API Gateway route key).
    pub action: tags::ControlCmd,
    /// New push interval for this client, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// The device to control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// New sample interval for `device_id`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_interval_ms: Option<u64>,
}

/// A [`ControlCmd`], understood and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    /// Push readings to this client at most once per `interval_ms`.
    SetInterval {
        /// Within the client interval bounds.
        interval_ms: u32,
    },
    /// Forward a [`Control`] to the device.
    DeviceControl {
        /// A valid device id.
        device_id: DeviceId,
        /// Within the sample interval bounds.
        sample_interval_ms: u32,
    },
}

impl ControlCmd {
    /// `{"action":"ControlCmd","interval_ms":…}`
    pub fn set_interval(interval_ms: u64) -> Self {
        ControlCmd {
            action: tags::ControlCmd,
            interval_ms: Some(interval_ms),
            device_id: None,
            sample_interval_ms: None,
        }
    }

    /// `{"action":"ControlCmd","device_id":…,"sample_interval_ms":…}`
    pub fn device_control(device_id: &str, sample_interval_ms: u64) -> Result<Self, ProtocolError> {
        Ok(ControlCmd {
            action: tags::ControlCmd,
            interval_ms: None,
            device_id: Some(bounded(device_id, ProtocolError::InvalidDeviceId)?),
            sample_interval_ms: Some(sample_interval_ms),
        })
    }

    /// Which request this is, with ids and bounds checked. Exactly one of
    /// `interval_ms` and `device_id` + `sample_interval_ms` must be present.
    pub fn request(&self) -> Result<ControlRequest, ProtocolError> {
        match (self.interval_ms, &self.device_id, self.sample_interval_ms) {
            (Some(interval_ms), None, None) => Ok(ControlRequest::SetInterval {
                interval_ms: validate_client_interval(interval_ms)?,
            }),
            (None, Some(device_id), Some(sample_interval_ms)) => {
                validate_device_id(device_id)?;
                Ok(ControlRequest::DeviceControl {
                    device_id: device_id.clone(),
                    sample_interval_ms: validate_sample_interval(sample_interval_ms)?,
                })
            }
            _ => Err(ProtocolError::InvalidControl),
        }
    }
}

/// Cloud → dashboard: the push interval now in effect for this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalReply {
    /// Always `"interval"`.
    #[serde(rename = "type")]
    pub kind: tags::Interval,
    /// Milliseconds.
    pub interval_ms: u32,
}

impl IntervalReply {
    /// The reply for an interval in effect.
    pub fn new(interval_ms: u32) -> Self {
        IntervalReply {
            kind: tags::Interval,
            interval_ms,
        }
    }
}

/// Cloud → dashboard: the latest reading of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Always `"reading"`.
    #[serde(rename = "type")]
    pub kind: tags::Reading,
    /// The device that sent it.
    pub device_id: DeviceId,
    /// The device's sequence number.
    pub seq: u32,
    /// Unix time in milliseconds (the cloud's receive time when the device
    /// sent `0`).
    pub ts_ms: u64,
    /// Metric name → value.
    pub readings: Readings,
    /// The device's reset reason, on its first reading after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_reason: Option<ResetReason>,
}

impl Reading {
    /// The dashboard's view of an update, stamped with `ts_ms`.
    pub fn from_update(update: &RealTimeDataUpdate, ts_ms: u64) -> Self {
        Reading {
            kind: tags::Reading,
            device_id: update.device_id.clone(),
            seq: update.seq,
            ts_ms,
            readings: update.readings.clone(),
            reset_reason: update.reset_reason.clone(),
        }
    }
}

/// Cloud → dashboard: a device acknowledged a sample interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlAckNotice {
    /// Always `"control_ack"`.
    #[serde(rename = "type")]
    pub kind: tags::ControlAckNotice,
    /// The device that acknowledged.
    pub device_id: DeviceId,
    /// The sample interval now in effect on the device.
    pub sample_interval_ms: u32,
}

impl ControlAckNotice {
    /// The notice for a device's acknowledgement.
    pub fn from_ack(ack: &ControlAck) -> Self {
        ControlAckNotice {
            kind: tags::ControlAckNotice,
            device_id: ack.device_id.clone(),
            sample_interval_ms: ack.sample_interval_ms,
        }
    }
}

/// Cloud → anyone: a request was refused; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: tags::Error,
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people (cut to [`MAX_ERROR_MESSAGE_LEN`] bytes).
    pub message: heapless::String<MAX_ERROR_MESSAGE_LEN>,
}

impl ErrorReply {
    /// An error reply; a message longer than [`MAX_ERROR_MESSAGE_LEN`] bytes
    /// is cut at a character boundary.
    pub fn new(code: ErrorCode, message: &str) -> Self {
        let mut out = Truncating(heapless::String::new());
        let _ = out.write_str(message);
        ErrorReply {
            kind: tags::Error,
            code,
            message: out.0,
        }
    }

    /// The reply for a [`ProtocolError`]: its code and its message.
    pub fn from_error(error: &ProtocolError) -> Self {
        let mut out = Truncating(heapless::String::new());
        let _ = write!(out, "{error}");
        ErrorReply {
            kind: tags::Error,
            code: error.code(),
            message: out.0,
        }
    }
}

/// Writes what fits and drops the rest, never splitting a character.
struct Truncating(heapless::String<MAX_ERROR_MESSAGE_LEN>);

impl core::fmt::Write for Truncating {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}
