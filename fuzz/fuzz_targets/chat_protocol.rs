//! The chat's message parsing (`chat::protocol`): any body is accepted or refused with a
//! code and a detail, never a panic, and what is accepted obeys the documented limits.
#![no_main]

use chat::protocol::{
    check_name, check_session_id, parse_history, parse_send, session_from_query,
    unknown_action_detail,
};
use chat::ChatConfig;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wsgw_core::{ConnectionId, Payload, Request};

fuzz_target!(|data: &[u8]| {
    let config = ChatConfig::default();
    let caller = ConnectionId::new("fuzz=");
    let _ = unknown_action_detail(&Request::message(
        caller.clone(),
        Payload::binary(data.to_vec()),
    ));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (detail, action) = unknown_action_detail(&Request::message(caller, text));
    assert!(!detail.is_empty());
    if let Some(action) = action {
        assert!(
            action.chars().count() <= 65,
            "the echoed action is shortened"
        );
    }

    // The connect URL's parameters.
    match check_name(Some(text), &config) {
        Ok(Some(name)) => {
            assert!(!name.is_empty() && name.chars().count() <= config.max_name_chars);
            assert!(!name.chars().any(char::is_control));
        }
        Ok(None) => assert!(text.trim().is_empty()),
        Err(error) => assert!(!error.detail().unwrap_or_default().is_empty()),
    }
    match session_from_query(Some(text), "connection-id", &config) {
        Ok(session) if text.is_empty() => assert_eq!(session, "connection-id"),
        Ok(session) => assert!(check_session_id(&session, &config).is_ok()),
        Err(error) => assert!(!error.detail().unwrap_or_default().is_empty()),
    }

    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match parse_send(&body, &config) {
        Ok(send) => {
            assert!(!send.message.trim().is_empty());
            assert!(send.message.len() <= config.max_message_bytes);
            if let Some(ids) = &send.session_ids {
                assert!(!ids.is_empty() && ids.len() <= config.max_session_ids);
                for (index, id) in ids.iter().enumerate() {
                    assert!(check_session_id(id, &config).is_ok());
                    assert!(!ids[..index].contains(id), "duplicates are removed");
                }
            }
        }
        Err(error) => assert!(!error.detail().unwrap_or_default().is_empty()),
    }
    match parse_history(&body, &config) {
        Ok(history) => assert!((1..=config.max_history).contains(&history.limit)),
        Err(error) => assert!(!error.detail().unwrap_or_default().is_empty()),
    }
});
