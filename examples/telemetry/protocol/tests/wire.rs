//! The wire format, checked on the host with both serde-json-core (what the
//! firmware uses) and serde_json (what the cloud uses).

use serde_json::json;
use telemetry_protocol::*;

fn sample_update() -> RealTimeDataUpdate {
    let mut update = RealTimeDataUpdate::new("esp32-01", 17, 1_732_230_000_000).unwrap();
    update.push_reading("temperature_c", 23.5).unwrap();
    update.push_reading("humidity_pct", 41.0).unwrap();
    update
}

fn encode_to_string<T: serde::Serialize>(message: &T) -> String {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let len = encode(message, &mut buf).unwrap();
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

#[test]
fn update_encodes_to_the_documented_json() {
    let json: serde_json::Value =
        serde_json::from_str(&encode_to_string(&sample_update())).unwrap();
    assert_eq!(
        json,
        json!({
            "action": "RealTimeDataUpdate",
            "device_id": "esp32-01",
            "seq": 17,
            "ts_ms": 1_732_230_000_000u64,
            "readings": {"temperature_c": 23.5, "humidity_pct": 41.0}
        })
    );
}

#[test]
fn update_round_trips_through_serde_json_core_and_serde_json() {
    let update = sample_update();
    let core_json = encode_to_string(&update);
    assert_eq!(
        decode::<RealTimeDataUpdate>(core_json.as_bytes()).unwrap(),
        update
    );
    assert_eq!(
        serde_json::from_str::<RealTimeDataUpdate>(&core_json).unwrap(),
        update
    );

    let std_json = serde_json::to_string(&update).unwrap();
    assert_eq!(
        decode::<RealTimeDataUpdate>(std_json.as_bytes()).unwrap(),
        update
    );
}

#[test]
fn the_documented_device_message_decodes_and_validates() {
    let text = r#"{"action":"RealTimeDataUpdate","device_id":"esp32-01","seq":17,"ts_ms":1732230000000,"readings":{"temperature_c":23.5,"humidity_pct":41.0}}"#;
    let update: RealTimeDataUpdate = decode(text.as_bytes()).unwrap();
    update.validate().unwrap();
    assert_eq!(update.reading("temperature_c"), Some(23.5));
    assert_eq!(update.reading("pressure_hpa"), None);
    let host: RealTimeDataUpdate = serde_json::from_str(text).unwrap();
    assert_eq!(host, update);
}

#[test]
fn negative_fractional_and_exponent_numbers_decode() {
    let text = r#"{"action":"RealTimeDataUpdate","device_id":"d","seq":0,"ts_ms":0,"readings":{"a":-12.25,"b":1e3,"c":-4.5E-2,"d":7}}"#;
    let update: RealTimeDataUpdate = decode(text.as_bytes()).unwrap();
    let get = |k: &str| update.reading(k).unwrap();
    assert_eq!(
        (get("a"), get("b"), get("c"), get("d")),
        (-12.25, 1000.0, -0.045, 7.0)
    );
}

/// The largest update the protocol allows: the longest device id, 32 metrics with the
/// longest names and the longest number text.
fn largest_update() -> RealTimeDataUpdate {
    let device_id = "d".repeat(MAX_DEVICE_ID_LEN);
    let mut update = RealTimeDataUpdate::new(&device_id, u32::MAX, u64::MAX).unwrap();
    for i in 0..MAX_METRICS {
        let name = format!("{i:0>width$}", width = MAX_METRIC_NAME_LEN);
        update
            .push_reading(&name, -1.234_567_890_123_456_7e-300)
            .unwrap();
    }
    update
}

fn assert_fits_and_round_trips(update: &RealTimeDataUpdate) {
    let json = encode_to_string(update);
    assert!(json.len() <= MAX_MESSAGE_LEN, "{} bytes", json.len());
    assert_eq!(
        &decode::<RealTimeDataUpdate>(json.as_bytes()).unwrap(),
        update
    );
}

#[test]
fn a_full_update_with_the_longest_names_fits_in_max_message_len() {
    assert_fits_and_round_trips(&largest_update());
}

#[test]
fn a_full_update_with_the_longest_reset_reason_still_fits_in_max_message_len() {
    let mut update = largest_update();
    update
        .set_reset_reason(&"r".repeat(MAX_RESET_REASON_LEN))
        .unwrap();
    assert_fits_and_round_trips(&update);
}

#[test]
fn the_first_update_after_a_boot_carries_its_reset_reason_and_the_dashboard_sees_it() {
    let mut update = sample_update();
    update.set_reset_reason("watchdog").unwrap();
    let json: serde_json::Value = serde_json::from_str(&encode_to_string(&update)).unwrap();
    assert_eq!(json["reset_reason"], "watchdog");
    let back: RealTimeDataUpdate = decode(encode_to_string(&update).as_bytes()).unwrap();
    back.validate().unwrap();
    assert_eq!(back.reset_reason.as_deref(), Some("watchdog"));
    assert_eq!(
        serde_json::to_value(Reading::from_update(&back, 42)).unwrap()["reset_reason"],
        "watchdog"
    );
}

#[test]
fn updates_without_a_reset_reason_keep_their_old_shape_both_ways() {
    // An older device's message (no field) still decodes, on both decoders...
    let old = r#"{"action":"RealTimeDataUpdate","device_id":"esp32-01","seq":17,"ts_ms":1732230000000,"readings":{"temperature_c":23.5,"humidity_pct":41.0}}"#;
    let core: RealTimeDataUpdate = decode(old.as_bytes()).unwrap();
    let host: RealTimeDataUpdate = serde_json::from_str(old).unwrap();
    assert_eq!(core, host);
    assert_eq!(core.reset_reason, None);
    // ...and an update without one encodes exactly as before (no null field).
    assert_eq!(encode_to_string(&core), old);
    assert!(!serde_json::to_string(&Reading::from_update(&core, 1))
        .unwrap()
        .contains("reset_reason"));
}

#[test]
fn reset_reasons_are_short_lowercase_words() {
    for good in [
        "power_on",
        "watchdog",
        "panic",
        "tls_failures",
        "brownout",
        "x1",
    ] {
        validate_reset_reason(good).unwrap();
    }
    for bad in [
        "",
        "Watchdog",
        "a b",
        "<script>",
        "ünï",
        &"r".repeat(MAX_RESET_REASON_LEN + 1),
    ] {
        assert_eq!(
            validate_reset_reason(bad),
            Err(ProtocolError::InvalidResetReason),
            "{bad:?}"
        );
    }
    let mut update = sample_update();
    assert_eq!(
        update.set_reset_reason("Not Valid"),
        Err(ProtocolError::InvalidResetReason)
    );
    let forged = r#"{"action":"RealTimeDataUpdate","device_id":"d","seq":0,"ts_ms":0,"readings":{"t":1},"reset_reason":"<b>x</b>"}"#;
    let update: RealTimeDataUpdate = serde_json::from_str(forged).unwrap();
    assert_eq!(update.validate(), Err(ProtocolError::InvalidResetReason));
    assert_eq!(
        ProtocolError::InvalidResetReason.code(),
        ErrorCode::InvalidMessage
    );
}

#[test]
fn deeply_nested_frames_are_refused_before_decoding() {
    // 2 KB of nested arrays in an unknown field: what the device's decoder would
    // otherwise recurse into, one stack frame per level.
    let levels = 1_000;
    let frame = format!(
        r#"{{"type":"control","x":{}{},"sample_interval_ms":2000}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    );
    assert_eq!(
        CloudToDevice::decode(frame.as_bytes()),
        Err(ProtocolError::TooDeep {
            limit: MAX_NESTING_DEPTH
        })
    );
    // Far deeper than any stack could take: refused in one pass, no recursion.
    let huge = "[".repeat(1_000_000);
    assert!(matches!(
        decode::<Control>(huge.as_bytes()),
        Err(ProtocolError::TooDeep { .. })
    ));
    assert_eq!(
        ProtocolError::TooDeep { limit: 16 }.code(),
        ErrorCode::InvalidMessage
    );
}

#[test]
fn nesting_up_to_the_limit_is_accepted_and_brackets_in_strings_do_not_count() {
    let nested = |levels: usize| {
        format!(
            r#"{{"type":"control","x":{}{},"sample_interval_ms":2000}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    let control = CloudToDevice::Control(Control::new(2000).unwrap());
    // The message object is one level: MAX_NESTING_DEPTH - 1 more fit.
    assert_eq!(
        CloudToDevice::decode(nested(MAX_NESTING_DEPTH - 1).as_bytes()),
        Ok(control.clone())
    );
    assert!(CloudToDevice::decode(nested(MAX_NESTING_DEPTH).as_bytes()).is_err());
    let strings = format!(
        r#"{{"type":"control","note":"{}\"{}","sample_interval_ms":2000}}"#,
        "[".repeat(40),
        "{".repeat(40)
    );
    assert_eq!(CloudToDevice::decode(strings.as_bytes()), Ok(control));
    assert_eq!(nesting_depth(br#"{"a":[1,{"b":[]}]}"#, 16), 4);
    assert_eq!(nesting_depth(b"42", 16), 0);
    assert_eq!(
        nesting_depth(b"[[[[", 2),
        3,
        "stops counting past the limit"
    );
}

#[test]
fn a_thirty_third_metric_is_refused_by_the_builder() {
    let mut update = RealTimeDataUpdate::new("esp32-01", 0, 0).unwrap();
    for i in 0..MAX_METRICS {
        update.push_reading(&format!("m{i}"), i as f64).unwrap();
    }
    assert_eq!(
        update.push_reading("one_too_many", 1.0),
        Err(ProtocolError::TooManyMetrics { count: 33 })
    );
    // Replacing an existing metric is still fine.
    update.push_reading("m0", 99.0).unwrap();
}

#[test]
fn more_than_thirty_two_metrics_are_rejected_when_decoding() {
    let readings: serde_json::Map<String, serde_json::Value> =
        (0..33).map(|i| (format!("m{i}"), json!(i))).collect();
    let text = json!({"action":"RealTimeDataUpdate","device_id":"d","seq":1,"ts_ms":0,"readings":readings}).to_string();
    assert!(serde_json::from_str::<RealTimeDataUpdate>(&text).is_err());
    assert!(matches!(
        decode::<RealTimeDataUpdate>(text.as_bytes()),
        Err(ProtocolError::Decode(_))
    ));
}

#[test]
fn non_finite_numbers_are_refused_by_the_builder_and_by_validate() {
    let mut update = RealTimeDataUpdate::new("esp32-01", 0, 0).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            update.push_reading("t", bad),
            Err(ProtocolError::NonFiniteReading {
                name: "t".try_into().unwrap()
            })
        );
    }
    // A map built by hand bypasses the builder: validate catches it.
    update
        .readings
        .insert("t".try_into().unwrap(), f64::NAN)
        .unwrap();
    assert_eq!(
        update.validate().unwrap_err().code(),
        ErrorCode::NonFiniteReading
    );
}

#[test]
fn non_numbers_in_readings_do_not_decode() {
    for readings in [
        r#"{"t":"23.5"}"#,
        r#"{"t":true}"#,
        r#"{"t":[1]}"#,
        r#"{"t":{}}"#,
    ] {
        let text = format!(
            r#"{{"action":"RealTimeDataUpdate","device_id":"d","seq":1,"ts_ms":0,"readings":{readings}}}"#
        );
        assert!(
            serde_json::from_str::<RealTimeDataUpdate>(&text).is_err(),
            "{readings}"
        );
        assert!(
            decode::<RealTimeDataUpdate>(text.as_bytes()).is_err(),
            "{readings}"
        );
    }
}

#[test]
fn null_and_overflowing_numbers_fail_validation_where_the_decoder_lets_them_through() {
    // serde-json-core reads `null` as NaN and 1e999 as infinity; serde_json
    // refuses both outright. Either way the reading never gets in.
    for readings in [r#"{"t":null}"#, r#"{"t":1e999}"#, r#"{"t":-1e999}"#] {
        let text = format!(
            r#"{{"action":"RealTimeDataUpdate","device_id":"d","seq":1,"ts_ms":0,"readings":{readings}}}"#
        );
        assert!(
            serde_json::from_str::<RealTimeDataUpdate>(&text).is_err(),
            "{readings}"
        );
        let update: RealTimeDataUpdate = decode(text.as_bytes()).unwrap();
        assert_eq!(
            update.validate().unwrap_err().code(),
            ErrorCode::NonFiniteReading,
            "{readings}"
        );
    }
}

#[test]
fn a_wrong_action_does_not_decode_as_an_update() {
    let text = r#"{"action":"ControlAck","device_id":"d","seq":1,"ts_ms":0,"readings":{}}"#;
    assert!(serde_json::from_str::<RealTimeDataUpdate>(text).is_err());
    assert!(decode::<RealTimeDataUpdate>(text.as_bytes()).is_err());
}

#[test]
fn device_ids_and_metric_names_are_bounded_and_plain() {
    validate_device_id("esp32-01").unwrap();
    validate_device_id("a1:b2:c3_d.e-f").unwrap();
    validate_device_id(&"x".repeat(MAX_DEVICE_ID_LEN)).unwrap();
    for bad in ["", "has space", "slash/", "ünï", "quote\""] {
        assert_eq!(
            validate_device_id(bad),
            Err(ProtocolError::InvalidDeviceId),
            "{bad:?}"
        );
    }
    assert!(validate_device_id(&"x".repeat(MAX_DEVICE_ID_LEN + 1)).is_err());
    assert!(RealTimeDataUpdate::new(&"x".repeat(MAX_DEVICE_ID_LEN + 1), 0, 0).is_err());

    validate_metric_name("temperature_c").unwrap();
    validate_metric_name(&"m".repeat(MAX_METRIC_NAME_LEN)).unwrap();
    for bad in ["", "a b", "a:b", "<script>"] {
        assert_eq!(
            validate_metric_name(bad),
            Err(ProtocolError::InvalidMetricName),
            "{bad:?}"
        );
    }
    assert!(validate_metric_name(&"m".repeat(MAX_METRIC_NAME_LEN + 1)).is_err());

    let too_long_name = format!(
        r#"{{"action":"RealTimeDataUpdate","device_id":"d","seq":1,"ts_ms":0,"readings":{{"{}":1}}}}"#,
        "m".repeat(MAX_METRIC_NAME_LEN + 1)
    );
    assert!(decode::<RealTimeDataUpdate>(too_long_name.as_bytes()).is_err());
    assert!(serde_json::from_str::<RealTimeDataUpdate>(&too_long_name).is_err());
}

#[test]
fn client_interval_bounds_are_inclusive() {
    assert_eq!(DEFAULT_CLIENT_INTERVAL_MS, 1_000);
    assert_eq!(validate_client_interval(500), Ok(500));
    assert_eq!(validate_client_interval(3_600_000), Ok(3_600_000));
    for bad in [0, 499, 3_600_001, u64::MAX] {
        assert_eq!(
            validate_client_interval(bad),
            Err(ProtocolError::IntervalOutOfRange {
                value: bad,
                min: 500,
                max: 3_600_000
            })
        );
    }
}

#[test]
fn sample_interval_bounds_are_inclusive() {
    assert_eq!(validate_sample_interval(250), Ok(250));
    assert_eq!(validate_sample_interval(3_600_000), Ok(3_600_000));
    for bad in [0, 249, 3_600_001, u64::MAX] {
        assert_eq!(
            validate_sample_interval(bad).unwrap_err().code(),
            ErrorCode::SampleIntervalOutOfRange
        );
    }
    assert!((MIN_SAMPLE_INTERVAL_MS..=MAX_SAMPLE_INTERVAL_MS).contains(&DEFAULT_SAMPLE_INTERVAL_MS));
}

#[test]
fn control_cmd_is_an_interval_change_or_a_device_control() {
    let set: ControlCmd =
        serde_json::from_str(r#"{"action":"ControlCmd","interval_ms":5000}"#).unwrap();
    assert_eq!(
        set.request(),
        Ok(ControlRequest::SetInterval { interval_ms: 5000 })
    );
    assert_eq!(set, ControlCmd::set_interval(5000));

    let text = r#"{"action":"ControlCmd","device_id":"esp32-01","sample_interval_ms":2000}"#;
    let control: ControlCmd = decode(text.as_bytes()).unwrap();
    assert_eq!(
        control.request(),
        Ok(ControlRequest::DeviceControl {
            device_id: "esp32-01".try_into().unwrap(),
            sample_interval_ms: 2000
        })
    );
    assert_eq!(
        control,
        ControlCmd::device_control("esp32-01", 2000).unwrap()
    );
    assert_eq!(
        serde_json::to_value(&control).unwrap(),
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
}

#[test]
fn control_cmd_out_of_range_or_ambiguous_is_refused_with_its_code() {
    let code = |text: &str| {
        serde_json::from_str::<ControlCmd>(text)
            .unwrap()
            .request()
            .unwrap_err()
            .code()
    };
    assert_eq!(
        code(r#"{"action":"ControlCmd","interval_ms":100}"#),
        ErrorCode::IntervalOutOfRange
    );
    assert_eq!(
        code(r#"{"action":"ControlCmd","device_id":"d","sample_interval_ms":100}"#),
        ErrorCode::SampleIntervalOutOfRange
    );
    assert_eq!(
        code(r#"{"action":"ControlCmd","device_id":"bad id","sample_interval_ms":1000}"#),
        ErrorCode::InvalidDeviceId
    );
    assert_eq!(
        code(r#"{"action":"ControlCmd"}"#),
        ErrorCode::InvalidControl
    );
    assert_eq!(
        code(r#"{"action":"ControlCmd","device_id":"d"}"#),
        ErrorCode::InvalidControl
    );
    assert_eq!(
        code(
            r#"{"action":"ControlCmd","interval_ms":1000,"device_id":"d","sample_interval_ms":1000}"#
        ),
        ErrorCode::InvalidControl
    );
}

#[test]
fn control_decodes_on_the_device_and_ignores_unknown_fields() {
    let control = Control::new(2000).unwrap();
    let json = encode_to_string(&control);
    assert_eq!(json, r#"{"type":"control","sample_interval_ms":2000}"#);
    assert_eq!(
        CloudToDevice::decode(json.as_bytes()),
        Ok(CloudToDevice::Control(control))
    );

    let extra = r#"{"type":"control","request_id":"x-1","nested":{"a":[1,2]},"sample_interval_ms":2000,"n":-3.5}"#;
    assert_eq!(
        CloudToDevice::decode(extra.as_bytes()),
        Ok(CloudToDevice::Control(control))
    );
}

#[test]
fn a_device_refuses_an_out_of_range_control_and_skips_unknown_types() {
    let low = r#"{"type":"control","sample_interval_ms":10}"#;
    assert_eq!(
        CloudToDevice::decode(low.as_bytes()).unwrap_err().code(),
        ErrorCode::SampleIntervalOutOfRange
    );
    assert!(Control::new(10).is_err());
    assert_eq!(
        CloudToDevice::decode(br#"{"type":"firmware_update","url":"x"}"#),
        Ok(CloudToDevice::Unknown)
    );
    assert!(CloudToDevice::decode(b"not json").is_err());
}

#[test]
fn an_error_reply_reaches_the_device_with_escapes_resolved() {
    let reply = ErrorReply::new(ErrorCode::DeviceIdMismatch, "device_id \"x\" is not \"y\"");
    let json = serde_json::to_string(&reply).unwrap();
    assert!(json.contains(r#""code":"device_id_mismatch""#), "{json}");
    assert_eq!(
        CloudToDevice::decode(json.as_bytes()),
        Ok(CloudToDevice::Error(reply))
    );
}

#[test]
fn control_ack_round_trips() {
    let ack = ControlAck::new("esp32-01", 2000).unwrap();
    let json = encode_to_string(&ack);
    assert_eq!(
        json,
        r#"{"action":"ControlAck","device_id":"esp32-01","sample_interval_ms":2000}"#
    );
    let back: ControlAck = serde_json::from_str(&json).unwrap();
    back.validate().unwrap();
    assert_eq!(back, ack);
    assert!(ControlAck::new("esp32-01", 1).unwrap().validate().is_err());
}

#[test]
fn dashboard_replies_have_the_documented_shape() {
    assert_eq!(
        serde_json::to_value(IntervalReply::new(5000)).unwrap(),
        json!({"type":"interval","interval_ms":5000})
    );
    let update = sample_update();
    assert_eq!(
        serde_json::to_value(Reading::from_update(&update, 42)).unwrap(),
        json!({"type":"reading","device_id":"esp32-01","seq":17,"ts_ms":42,
               "readings":{"temperature_c":23.5,"humidity_pct":41.0}})
    );
    let ack = ControlAck::new("esp32-01", 2000).unwrap();
    assert_eq!(
        serde_json::to_value(ControlAckNotice::from_ack(&ack)).unwrap(),
        json!({"type":"control_ack","device_id":"esp32-01","sample_interval_ms":2000})
    );
    let error = ErrorReply::from_error(&validate_client_interval(10).unwrap_err());
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"type":"error","code":"interval_out_of_range",
               "message":"interval_ms must be between 500 and 3600000 (got 10); the default is 1000"})
    );
}

#[test]
fn long_error_messages_are_cut_at_a_character_boundary() {
    let reply = ErrorReply::new(ErrorCode::Internal, &"é".repeat(MAX_ERROR_MESSAGE_LEN));
    assert_eq!(reply.message.len(), MAX_ERROR_MESSAGE_LEN);
    assert!(reply.message.chars().all(|c| c == 'é'));
}

#[test]
fn encode_reports_a_buffer_too_small() {
    let mut buf = [0u8; 16];
    assert_eq!(
        encode(&sample_update(), &mut buf),
        Err(ProtocolError::BufferTooSmall)
    );
}

#[test]
fn error_codes_serialize_as_their_as_str() {
    for code in [
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownAction,
        ErrorCode::InvalidDeviceId,
        ErrorCode::DeviceIdMismatch,
        ErrorCode::InvalidMetricName,
        ErrorCode::TooManyMetrics,
        ErrorCode::NonFiniteReading,
        ErrorCode::IntervalOutOfRange,
        ErrorCode::SampleIntervalOutOfRange,
        ErrorCode::InvalidControl,
        ErrorCode::DeviceNotConnected,
        ErrorCode::WrongRole,
        ErrorCode::Internal,
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
}

#[test]
fn a_device_without_a_clock_is_filed_at_receive_time() {
    let update = RealTimeDataUpdate::new("esp32-01", 1, 0).unwrap();
    assert_eq!(update.time_ms(1_000_000), 1_000_000);
}

#[test]
fn a_device_clock_is_trusted_up_to_five_minutes_ahead() {
    let now = 1_732_230_000_000;
    let filed = |ts_ms| {
        RealTimeDataUpdate::new("esp32-01", 1, ts_ms)
            .unwrap()
            .time_ms(now)
    };
    assert_eq!(filed(1_732_229_000_000), 1_732_229_000_000);
    let ahead = now + MAX_CLOCK_SKEW_MS;
    assert_eq!(filed(ahead), ahead);
    assert_eq!(filed(ahead + 1), now);
    assert_eq!(filed(u64::MAX), now);
}
