//! The telemetry's message parsing: the cloud's (`telemetry_protocol::parse_update`, `ControlCmd`
//! and `ControlAck` through serde_json) and the firmware's (`telemetry_protocol::decode`
//! through serde-json-core, no_std). Nothing panics; what is accepted obeys the bounds;
//! a valid update the firmware decodes re-encodes to the same update.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_protocol::{
    decode, encode, parse_update, validate_device_id, CloudToDevice, ControlAck, ControlCmd,
    ControlRequest, RealTimeDataUpdate, MAX_CLIENT_INTERVAL_MS, MAX_MESSAGE_LEN,
    MAX_SAMPLE_INTERVAL_MS, MIN_CLIENT_INTERVAL_MS, MIN_SAMPLE_INTERVAL_MS,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match parse_update(text) {
            Ok(update) => {
                let _ = update.validate();
            }
            Err(reply) => {
                serde_json::to_string(&*reply).expect("an error reply serializes");
            }
        }
        if let Ok(command) = serde_json::from_str::<ControlCmd>(text) {
            match command.request() {
                Ok(ControlRequest::SetInterval { interval_ms }) => {
                    assert!(
                        (MIN_CLIENT_INTERVAL_MS..=MAX_CLIENT_INTERVAL_MS).contains(&interval_ms)
                    );
                }
                Ok(ControlRequest::DeviceControl {
                    device_id,
                    sample_interval_ms,
                }) => {
                    assert!(validate_device_id(&device_id).is_ok());
                    assert!((MIN_SAMPLE_INTERVAL_MS..=MAX_SAMPLE_INTERVAL_MS)
                        .contains(&sample_interval_ms));
                }
                Err(error) => assert!(!error.to_string().is_empty()),
            }
        }
        if let Ok(ack) = serde_json::from_str::<ControlAck>(text) {
            let _ = ack.validate();
        }
    }

    // The firmware's side.
    let _ = CloudToDevice::decode(data);
    let _ = decode::<ControlCmd>(data);
    if let Ok(update) = decode::<RealTimeDataUpdate>(data) {
        if update.validate().is_ok() {
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let written = encode(&update, &mut buf).expect("a valid update fits the buffer");
            let back: RealTimeDataUpdate =
                decode(&buf[..written]).expect("an encoded update decodes");
            assert_eq!(back, update);
        }
    }
});
