//! Route selection (`wsgw_core::RouteSelection`): any expression parses or is refused
//! with a reason; any body selects without panicking; and whenever the body parses into a
//! `serde_json::Value`, the selection equals a plain walk of that value (the reference
//! model), while binary bodies select nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wsgw_core::{Payload, RouteSelection};

/// The reference model: the value at the path, as a string, when it is a string, number
/// or boolean.
fn reference(value: &Value, path: &[&str]) -> Option<String> {
    let mut current = value;
    for field in path {
        current = current.get(field)?;
    }
    match current {
        Value::String(key) => Some(key.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

// The input is the expression, a newline, then the body; an expression starting with
// `!` sends the body as a binary frame.
fuzz_target!(|data: &[u8]| {
    let (first_line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let first_line = String::from_utf8_lossy(first_line);
    let (binary, expression) = match first_line.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, first_line.as_ref()),
    };
    let selection = match RouteSelection::parse(expression) {
        Ok(selection) => selection,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            RouteSelection::default()
        }
    };
    let path: Vec<&str> = selection
        .expression()
        .strip_prefix("$request.body.")
        .expect("a parsed expression starts with $request.body.")
        .split('.')
        .collect();
    assert!(path.iter().all(|field| !field.is_empty()));

    let payload = match std::str::from_utf8(body) {
        Ok(text) if !binary => Payload::text(text),
        _ => Payload::binary(body.to_vec()),
    };
    let selected = selection.select(Some(&payload));
    match payload.as_text() {
        None => assert_eq!(selected, None, "binary bodies select nothing"),
        Some(text) => {
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                assert_eq!(selected, reference(&value, &path), "{text:?}");
            }
        }
    }
    assert_eq!(selection.select(None), None);
});
