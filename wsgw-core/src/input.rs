//! Reading a client's input to tell it what was wrong: why a message reached `$default`
//! ([`Unrouted`]), and how to name the JSON type a client sent ([`json_type`]).
//!
//! The SDK classifies; the wording of the error frame stays the application's, since it
//! is part of its protocol.

use serde_json::Value;

use crate::Request;

/// Why a message reached `$default` instead of a route: API Gateway sends there every
/// message whose route selection field does not name a route, and a client deserves to
/// be told which of these it was.
///
/// ```
/// use serde_json::json;
/// use wsgw_core::input::Unrouted;
/// use wsgw_core::{ConnectionId, Payload, Request};
///
/// let caller = ConnectionId::new("a=");
/// let unrouted = |body: Option<Payload>| {
///     let mut request = Request::message(caller.clone(), "");
///     request.body = body;
///     Unrouted::of(&request, "action")
/// };
/// assert_eq!(unrouted(None), Unrouted::Empty);
/// assert_eq!(unrouted(Some(Payload::binary(vec![1, 2]))), Unrouted::Binary);
/// assert_eq!(unrouted(Some(Payload::text("hello"))), Unrouted::NotJson);
/// assert_eq!(unrouted(Some(Payload::text(r#"{"message":"hi"}"#))), Unrouted::NoAction);
/// assert_eq!(unrouted(Some(Payload::text("[1]"))), Unrouted::NoAction);
/// assert_eq!(
///     unrouted(Some(Payload::text(r#"{"action":"SendMessage"}"#))),
///     Unrouted::UnknownAction(json!("SendMessage"))
/// );
/// assert_eq!(unrouted(Some(Payload::text(r#"{"action":7}"#))).action(), Some(&json!(7)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Unrouted {
    /// The message has no body.
    Empty,
    /// A binary frame: route selection reads JSON text only.
    Binary,
    /// Text that is not JSON (an empty text frame included).
    NotJson,
    /// JSON without the selection field, or JSON that is not an object.
    NoAction,
    /// The selection field's value, which names no route: a string of another case, a
    /// route the client may not select (`$connect`), or not a string at all.
    UnknownAction(Value),
}

impl Unrouted {
    /// Why `request` reached `$default`, when routes are selected by the top-level body
    /// field `field` (`"action"` for `$request.body.action`).
    pub fn of(request: &Request, field: &str) -> Self {
        let Some(body) = &request.body else {
            return Unrouted::Empty;
        };
        let Some(text) = body.as_text() else {
            return Unrouted::Binary;
        };
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return Unrouted::NotJson;
        };
        match value {
            Value::Object(mut fields) => match fields.remove(field) {
                Some(action) => Unrouted::UnknownAction(action),
                None => Unrouted::NoAction,
            },
            _ => Unrouted::NoAction,
        }
    }

    /// The selection field's value, for [`Unrouted::UnknownAction`].
    pub fn action(&self) -> Option<&Value> {
        match self {
            Unrouted::UnknownAction(action) => Some(action),
            _ => None,
        }
    }
}

/// The JSON type of `value` as an error detail names it: `null`, `a boolean`,
/// `a number`, `a string`, `an array`, `an object`.
///
/// ```
/// use serde_json::json;
/// use wsgw_core::input::json_type;
///
/// assert_eq!(format!("`limit` must be a number, got {}", json_type(&json!("5"))), "`limit` must be a number, got a string");
/// assert_eq!(json_type(&json!(null)), "null");
/// ```
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{ConnectionId, Payload};

    fn unrouted(body: &str) -> Unrouted {
        Unrouted::of(&Request::message(ConnectionId::new("a="), body), "action")
    }

    #[test]
    fn an_empty_text_frame_is_not_json_and_no_body_is_empty() {
        assert_eq!(unrouted(""), Unrouted::NotJson);
        let mut request = Request::message(ConnectionId::new("a="), "");
        request.body = None;
        assert_eq!(Unrouted::of(&request, "action"), Unrouted::Empty);
    }

    #[test]
    fn json_that_is_not_an_object_has_no_action() {
        for body in ["null", "[]", "7", r#""action""#, r#"[{"action":"x"}]"#] {
            assert_eq!(unrouted(body), Unrouted::NoAction, "{body}");
        }
    }

    #[test]
    fn the_selection_field_is_kept_whatever_its_type() {
        assert_eq!(unrouted(r#"{"action":null}"#).action(), Some(&Value::Null));
        assert_eq!(
            unrouted(r#"{"action":["sendmessage"]}"#),
            Unrouted::UnknownAction(json!(["sendmessage"]))
        );
        let routed_elsewhere = Unrouted::of(
            &Request::message(ConnectionId::new("a="), r#"{"action":"x","op":"go"}"#),
            "op",
        );
        assert_eq!(routed_elsewhere, Unrouted::UnknownAction(json!("go")));
        assert_eq!(unrouted(r#"{"op":"go"}"#).action(), None);
    }

    #[test]
    fn a_binary_frame_is_binary_even_when_it_holds_json() {
        let mut request = Request::message(ConnectionId::new("a="), "");
        request.body = Some(Payload::binary(br#"{"action":"x"}"#.to_vec()));
        assert_eq!(Unrouted::of(&request, "action"), Unrouted::Binary);
    }

    #[test]
    fn json_types_are_named_for_every_value() {
        let named: Vec<_> = [
            json!(null),
            json!(true),
            json!(1.5),
            json!(""),
            json!([]),
            json!({}),
        ]
        .iter()
        .map(json_type)
        .collect();
        assert_eq!(
            named,
            [
                "null",
                "a boolean",
                "a number",
                "a string",
                "an array",
                "an object"
            ]
        );
    }
}
