use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    MetricName, DEFAULT_CLIENT_INTERVAL_MS, MAX_DEVICE_ID_LEN, MAX_METRICS, MAX_METRIC_NAME_LEN,
    MAX_RESET_REASON_LEN,
};

/// The machine-readable `code` of an [`ErrorReply`](crate::ErrorReply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not JSON, or not the shape of the message its `action` names.
    InvalidMessage,
    /// No route for this `action` (or no `action` at all).
    UnknownAction,
    /// A device id is empty, too long, or has characters outside `[A-Za-z0-9_.:-]`.
    InvalidDeviceId,
    /// A reading's `device_id` is not the id this device connected with.
    DeviceIdMismatch,
    /// A metric name is empty, too long, or has characters outside `[A-Za-z0-9_.-]`.
    InvalidMetricName,
    /// More than [`MAX_METRICS`] metrics in one reading.
    TooManyMetrics,
    /// A reading is NaN, infinite, or not a number.
    NonFiniteReading,
    /// A client push interval outside 500 ms – 1 h.
    IntervalOutOfRange,
    /// A device sample interval outside 250 ms – 1 h.
    SampleIntervalOutOfRange,
    /// A `ControlCmd` with neither (or both) of `interval_ms` and
    /// `device_id` + `sample_interval_ms`.
    InvalidControl,
    /// The device a `ControlCmd` names has no open connection.
    DeviceNotConnected,
    /// This connection's role may not send that message.
    WrongRole,
    /// The server failed; the request may be retried.
    Internal,
}

impl ErrorCode {
    /// The snake_case string on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::InvalidDeviceId => "invalid_device_id",
            ErrorCode::DeviceIdMismatch => "device_id_mismatch",
            ErrorCode::InvalidMetricName => "invalid_metric_name",
            ErrorCode::TooManyMetrics => "too_many_metrics",
            ErrorCode::NonFiniteReading => "non_finite_reading",
            ErrorCode::IntervalOutOfRange => "interval_out_of_range",
            ErrorCode::SampleIntervalOutOfRange => "sample_interval_out_of_range",
            ErrorCode::InvalidControl => "invalid_control",
            ErrorCode::DeviceNotConnected => "device_not_connected",
            ErrorCode::WrongRole => "wrong_role",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message could not be built, encoded, decoded or accepted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client push interval outside `min..=max`.
    IntervalOutOfRange {
        /// What was asked for.
        value: u64,
        /// [`MIN_CLIENT_INTERVAL_MS`](crate::MIN_CLIENT_INTERVAL_MS).
        min: u32,
        /// [`MAX_CLIENT_INTERVAL_MS`](crate::MAX_CLIENT_INTERVAL_MS).
        max: u32,
    },
    /// A device sample interval outside `min..=max`.
    SampleIntervalOutOfRange {
        /// What was asked for.
        value: u64,
        /// [`MIN_SAMPLE_INTERVAL_MS`](crate::MIN_SAMPLE_INTERVAL_MS).
        min: u32,
        /// [`MAX_SAMPLE_INTERVAL_MS`](crate::MAX_SAMPLE_INTERVAL_MS).
        max: u32,
    },
    /// See [`validate_device_id`](crate::validate_device_id).
    InvalidDeviceId,
    /// See [`validate_metric_name`](crate::validate_metric_name).
    InvalidMetricName,
    /// More than [`MAX_METRICS`] metrics.
    TooManyMetrics {
        /// How many there were (or `MAX_METRICS + 1` when adding one more).
        count: usize,
    },
    /// A NaN or infinite value.
    NonFiniteReading {
        /// The metric that carried it.
        name: MetricName,
    },
    /// A `ControlCmd` that is neither an interval change nor a device control.
    InvalidControl,
    /// The output buffer cannot hold the encoded message.
    BufferTooSmall,
    /// See [`validate_reset_reason`](crate::validate_reset_reason).
    InvalidResetReason,
    /// Arrays and objects nested deeper than the decoder accepts.
    TooDeep {
        /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH).
        limit: usize,
    },
    /// The bytes are not JSON of the expected shape.
    Decode(serde_json_core::de::Error),
}

impl ProtocolError {
    /// The [`ErrorCode`] to report this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::IntervalOutOfRange { .. } => ErrorCode::IntervalOutOfRange,
            ProtocolError::SampleIntervalOutOfRange { .. } => ErrorCode::SampleIntervalOutOfRange,
            ProtocolError::InvalidDeviceId => ErrorCode::InvalidDeviceId,
            ProtocolError::InvalidMetricName => ErrorCode::InvalidMetricName,
            ProtocolError::TooManyMetrics { .. } => ErrorCode::TooManyMetrics,
            ProtocolError::NonFiniteReading { .. } => ErrorCode::NonFiniteReading,
            ProtocolError::InvalidControl => ErrorCode::InvalidControl,
            ProtocolError::BufferTooSmall => ErrorCode::Internal,
            ProtocolError::InvalidResetReason | ProtocolError::TooDeep { .. } => {
                ErrorCode::InvalidMessage
            }
            ProtocolError::Decode(_) => ErrorCode::InvalidMessage,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::IntervalOutOfRange { value, min, max } => write!(
                f,
                "interval_ms must be between {min} and {max} (got {value}); the default is {DEFAULT_CLIENT_INTERVAL_MS}"
            ),
            ProtocolError::SampleIntervalOutOfRange { value, min, max } => write!(
                f,
                "sample_interval_ms must be between {min} and {max} (got {value})"
            ),
            ProtocolError::InvalidDeviceId => write!(
                f,
                "device_id must be 1-{MAX_DEVICE_ID_LEN} characters of A-Z a-z 0-9 _ . : -"
            ),
            ProtocolError::InvalidMetricName => write!(
                f,
                "metric names must be 1-{MAX_METRIC_NAME_LEN} characters of A-Z a-z 0-9 _ . -"
            ),
            ProtocolError::TooManyMetrics { count } => write!(
                f,
                "a reading carries at most {MAX_METRICS} metrics (got {count})"
            ),
            ProtocolError::NonFiniteReading { name } => {
                write!(f, "metric {name:?} is not a finite number")
            }
            ProtocolError::InvalidControl => f.write_str(
                "ControlCmd takes either interval_ms, or device_id and sample_interval_ms",
            ),
            ProtocolError::BufferTooSmall => f.write_str("the output buffer is too small"),
            ProtocolError::InvalidResetReason => write!(
                f,
                "reset_reason must be 1-{MAX_RESET_REASON_LEN} characters of a-z 0-9 _"
            ),
            ProtocolError::TooDeep { limit } => {
                write!(f, "arrays and objects nest deeper than {limit} levels")
            }
            ProtocolError::Decode(e) => write!(f, "malformed message: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}
