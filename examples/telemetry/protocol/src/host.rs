//! The cloud's side of the wire (`std`): text frames read with `serde_json`, every
//! problem named as the [`ErrorReply`] the sender gets.

use std::boxed::Box;
use std::format;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    ErrorCode, ErrorReply, ProtocolError, RealTimeDataUpdate, MAX_DEVICE_ID_LEN, MAX_METRICS,
    MAX_METRIC_NAME_LEN,
};

/// An error reply on its way to the sender (boxed: it holds a bounded string).
pub type Refusal = Box<ErrorReply>;

/// Reads a device update from a text frame, naming the problem in terms of the
/// protocol's rules: an over-long device id, too many metrics, an over-long metric
/// name, a reading that is not a number, or JSON that is not a `RealTimeDataUpdate`.
/// What it accepts still needs [`RealTimeDataUpdate::validate`].
///
/// ```
/// use telemetry_protocol::{parse_update, ErrorCode};
///
/// let update = parse_update(r#"{"action":"RealTimeDataUpdate","device_id":"esp32-01","seq":1,"ts_ms":0,"readings":{"t":1.5}}"#)?;
/// assert_eq!(update.reading("t"), Some(1.5));
/// let refused = parse_update(r#"{"action":"RealTimeDataUpdate","device_id":"esp32-01","seq":1,"ts_ms":0,"readings":{"t":"hot"}}"#).unwrap_err();
/// assert_eq!(refused.code, ErrorCode::NonFiniteReading);
/// assert_eq!(refused.message.as_str(), r#"metric "t" is "hot", not a number"#);
/// # Ok::<(), telemetry_protocol::Refusal>(())
/// ```
pub fn parse_update(text: &str) -> Result<RealTimeDataUpdate, Refusal> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| refusal(ErrorCode::InvalidMessage, &format!("not JSON: {e}")))?;
    match value.get("device_id") {
        Some(Value::String(id)) if id.len() > MAX_DEVICE_ID_LEN => {
            return Err(refusal_from(&ProtocolError::InvalidDeviceId))
        }
        _ => {}
    }
    match value.get("readings") {
        Some(Value::Object(readings)) => {
            if readings.len() > MAX_METRICS {
                return Err(refusal_from(&ProtocolError::TooManyMetrics {
                    count: readings.len(),
                }));
            }
            for (name, reading) in readings {
                if name.len() > MAX_METRIC_NAME_LEN {
                    return Err(refusal_from(&ProtocolError::InvalidMetricName));
                }
                if !reading.is_number() {
                    return Err(refusal(
                        ErrorCode::NonFiniteReading,
                        &format!("metric \"{name}\" is {reading}, not a number"),
                    ));
                }
            }
        }
        Some(_) => {
            return Err(refusal(
                ErrorCode::InvalidMessage,
                "readings must be an object of metric name to number",
            ))
        }
        None => {}
    }
    serde_json::from_value(value).map_err(|e| {
        refusal(
            ErrorCode::InvalidMessage,
            &format!("not a RealTimeDataUpdate: {e}"),
        )
    })
}

/// Reads the message `name` (`ControlAck`, `ControlCmd` …) from a text frame, or the
/// `invalid_message` reply saying why it is not one.
///
/// ```
/// use telemetry_protocol::{parse_message, ControlAck};
///
/// let ack: ControlAck = parse_message(r#"{"action":"ControlAck","device_id":"d1","sample_interval_ms":500}"#, "ControlAck")?;
/// assert_eq!(ack.sample_interval_ms, 500);
/// let refused = parse_message::<ControlAck>("{}", "ControlAck").unwrap_err();
/// assert!(refused.message.starts_with("not a ControlAck: missing field"));
/// # Ok::<(), telemetry_protocol::Refusal>(())
/// ```
pub fn parse_message<T: DeserializeOwned>(text: &str, name: &str) -> Result<T, Refusal> {
    serde_json::from_str(text)
        .map_err(|e| refusal(ErrorCode::InvalidMessage, &format!("not a {name}: {e}")))
}

/// The reply to a binary frame: every message of this protocol is JSON text.
///
/// ```
/// let reply = telemetry_protocol::binary_frame();
/// assert_eq!(reply.code, telemetry_protocol::ErrorCode::InvalidMessage);
/// ```
pub fn binary_frame() -> Refusal {
    refusal(
        ErrorCode::InvalidMessage,
        "binary frames are not understood; send JSON text",
    )
}

fn refusal(code: ErrorCode, message: &str) -> Refusal {
    Box::new(ErrorReply::new(code, message))
}

fn refusal_from(error: &ProtocolError) -> Refusal {
    Box::new(ErrorReply::from_error(error))
}
