//! Reading a client's input to tell it what was wrong: why a message reached `$default`
//! ([`Unrouted`]), how to name the JSON type a client sent ([`json_type`]), and a JSON
//! object's fields taken one by one as the types a protocol wants ([`json_body`],
//! [`JsonObject`]), each mistake a [`BodyError`] or a [`FieldError`] naming the field.
//!
//! The SDK classifies, and its errors' `Display` is a plain detail an app may send; the
//! error codes and the frame stay the application's, since they are its protocol.

use std::fmt::Display;
use std::ops::RangeInclusive;

use serde_json::{Map, Value};

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

/// Why a message's body is not a JSON object whose fields can be read. Its `Display` is
/// a detail for the client (`the message must be a JSON object, got an array`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The message has no body.
    #[error("the message has no body")]
    Empty,
    /// A binary frame.
    #[error("binary frames are not understood, only JSON text")]
    Binary,
    /// Text that does not parse as JSON, or JSON beyond what is read: numbers that do
    /// not fit a 64-bit float, nesting deeper than 128 levels (serde_json's limits).
    #[error("the message is not JSON that can be read ({0}; numbers must fit a 64-bit float, nesting 128 levels)")]
    NotJson(#[source] serde_json::Error),
    /// JSON that is not an object; holds its type ([`json_type`]).
    #[error("the message must be a JSON object, got {0}")]
    NotAnObject(&'static str),
}

/// The body of `request` parsed as JSON, or why it cannot be: no body, a binary frame,
/// or text that is not JSON (a route key set by the gateway reaches a route whatever the
/// body is).
///
/// ```
/// use wsgw_core::input::{json_body, BodyError};
/// use wsgw_core::{ConnectionId, Request};
///
/// let caller = ConnectionId::new("a=");
/// let body = json_body(&Request::message(caller.clone(), r#"{"limit":5}"#))?;
/// assert_eq!(body["limit"], 5);
/// let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
/// let error = json_body(&Request::message(caller, deep)).unwrap_err();
/// assert!(matches!(error, BodyError::NotJson(_)));
/// assert!(error.to_string().contains("recursion limit exceeded"));
/// # Ok::<(), BodyError>(())
/// ```
pub fn json_body(request: &Request) -> Result<Value, BodyError> {
    let body = request.body.as_ref().ok_or(BodyError::Empty)?;
    let text = body.as_text().ok_or(BodyError::Binary)?;
    serde_json::from_str(text).map_err(BodyError::NotJson)
}

/// A client's JSON object, read field by field: each field taken as the type the
/// protocol wants ([`FromField`]), or a [`FieldError`] that names the field and says what
/// was wrong, for the app to answer with its own error code.
///
/// A required field must be there and not `null`; an optional one that is absent or
/// `null` is `None`.
///
/// ```
/// use serde_json::json;
/// use wsgw_core::input::{FieldError, JsonObject};
///
/// let body = json!({"message": "hi", "to": ["s1", 2], "limit": 500, "tag": null});
/// let object = JsonObject::new(&body)?;
/// assert_eq!(object.required::<&str>("message")?, "hi");
/// assert_eq!(object.optional::<String>("tag")?, None);
///
/// let missing = object.required::<&str>("text").unwrap_err();
/// assert!(matches!(missing, FieldError::Missing { .. }));
/// assert_eq!(missing.to_string(), "`text` is missing");
/// let wrong = object.optional::<Vec<&str>>("to").unwrap_err();
/// assert_eq!(wrong.to_string(), "`to[1]` must be a string, got a number");
/// assert_eq!(wrong.field(), "to[1]");
/// let too_many = object.optional_in("limit", 1..=200_u32).unwrap_err();
/// assert_eq!(too_many.to_string(), "`limit` must be from 1 to 200, got 500");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonObject<'a>(&'a Map<String, Value>);

impl<'a> JsonObject<'a> {
    /// `value` as an object; any other JSON is [`BodyError::NotAnObject`].
    pub fn new(value: &'a Value) -> Result<Self, BodyError> {
        match value {
            Value::Object(fields) => Ok(JsonObject(fields)),
            other => Err(BodyError::NotAnObject(json_type(other))),
        }
    }

    /// The field `field`, present and not `null`, as a `T`.
    pub fn required<T: FromField<'a>>(self, field: &str) -> Result<T, FieldError> {
        match self.0.get(field) {
            Some(value) => T::from_field(field, value),
            None => Err(FieldError::Missing {
                field: field.to_owned(),
            }),
        }
    }

    /// The field `field` as a `T`; `None` when it is absent or `null`.
    pub fn optional<T: FromField<'a>>(self, field: &str) -> Result<Option<T>, FieldError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::from_field(field, value).map(Some),
        }
    }

    /// [`optional`](Self::optional), and within `range` when present
    /// ([`FieldError::OutOfRange`] otherwise).
    pub fn optional_in<T>(
        self,
        field: &str,
        range: RangeInclusive<T>,
    ) -> Result<Option<T>, FieldError>
    where
        T: FromField<'a> + PartialOrd + Display,
    {
        let value = self.optional::<T>(field)?;
        match value {
            Some(value) if !range.contains(&value) => Err(FieldError::OutOfRange {
                field: field.to_owned(),
                min: range.start().to_string(),
                max: range.end().to_string(),
                got: value.to_string(),
            }),
            value => Ok(value),
        }
    }
}

/// A field a client sent that cannot be used: its `Display` is a detail for the client
/// (`` `message` must be a string, got a number ``); the app picks the error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A required field is absent.
    #[error("`{field}` is missing")]
    Missing {
        /// The field's name.
        field: String,
    },
    /// The field holds another JSON type (or a number of another kind).
    #[error("`{field}` must be {expected}, got {got}")]
    WrongType {
        /// The field's name; an array entry's is `name[index]`.
        field: String,
        /// What it must be ([`FromField::EXPECTED`]).
        expected: &'static str,
        /// What it was: its JSON type ([`json_type`]), or the number itself when a
        /// number is not of the kind wanted (`1.5` for a whole number).
        got: String,
    },
    /// The field is a number outside the range allowed.
    #[error("`{field}` must be from {min} to {max}, got {got}")]
    OutOfRange {
        /// The field's name.
        field: String,
        /// The smallest value allowed.
        min: String,
        /// The largest value allowed.
        max: String,
        /// The value sent.
        got: String,
    },
}

impl FieldError {
    /// The name of the field at fault (`session_ids[2]` for an array's entry).
    pub fn field(&self) -> &str {
        match self {
            FieldError::Missing { field }
            | FieldError::WrongType { field, .. }
            | FieldError::OutOfRange { field, .. } => field,
        }
    }

    fn wrong_type<'a, T: FromField<'a>>(field: &str, value: &Value) -> Self {
        FieldError::WrongType {
            field: field.to_owned(),
            expected: T::EXPECTED,
            got: json_type(value).to_owned(),
        }
    }
}

/// A type a [`JsonObject`] field is read as: strings (`&str`, `String`), `bool`, `f64`,
/// whole numbers (`u8` to `u64`, `usize`, `i8` to `i64`), any JSON (`&Value`) and arrays
/// of these (`Vec<T>`, an entry's error naming it `field[index]`).
pub trait FromField<'a>: Sized {
    /// What the field must be, as a detail says it: `a string`.
    const EXPECTED: &'static str;

    /// `value`, the field `field`, as `Self`.
    fn from_field(field: &str, value: &'a Value) -> Result<Self, FieldError>;
}

/// Scalars: the JSON type read by `serde_json`'s accessor, anything else the wrong type.
macro_rules! scalar_fields {
    ($($scalar:ty: $expected:literal, $read:path;)*) => {$(
        impl<'a> FromField<'a> for $scalar {
            const EXPECTED: &'static str = $expected;

            fn from_field(field: &str, value: &'a Value) -> Result<Self, FieldError> {
                $read(value).ok_or_else(|| FieldError::wrong_type::<Self>(field, value))
            }
        }
    )*};
}

scalar_fields! {
    &'a str: "a string", Value::as_str;
    bool: "a boolean", Value::as_bool;
    f64: "a number", Value::as_f64;
}

impl<'a> FromField<'a> for String {
    const EXPECTED: &'static str = "a string";

    fn from_field(field: &str, value: &'a Value) -> Result<Self, FieldError> {
        <&str>::from_field(field, value).map(str::to_owned)
    }
}

impl<'a> FromField<'a> for &'a Value {
    const EXPECTED: &'static str = "any JSON";

    fn from_field(_field: &str, value: &'a Value) -> Result<Self, FieldError> {
        Ok(value)
    }
}

impl<'a, T: FromField<'a>> FromField<'a> for Vec<T> {
    const EXPECTED: &'static str = "an array";

    fn from_field(field: &str, value: &'a Value) -> Result<Self, FieldError> {
        let entries = value
            .as_array()
            .ok_or_else(|| FieldError::wrong_type::<Self>(field, value))?;
        entries
            .iter()
            .enumerate()
            .map(|(index, entry)| T::from_field(&format!("{field}[{index}]"), entry))
            .collect()
    }
}

/// Whole numbers: a JSON number without a fraction, within the type's range.
macro_rules! whole_number_fields {
    ($expected:literal: $($int:ty),*) => {$(
        impl<'a> FromField<'a> for $int {
            const EXPECTED: &'static str = $expected;

            fn from_field(field: &str, value: &'a Value) -> Result<Self, FieldError> {
                let Value::Number(number) = value else {
                    return Err(FieldError::wrong_type::<Self>(field, value));
                };
                let whole = number
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| number.as_u64().map(i128::from))
                    .ok_or_else(|| FieldError::WrongType {
                        field: field.to_owned(),
                        expected: $expected,
                        got: number.to_string(),
                    })?;
                <$int>::try_from(whole).map_err(|_| FieldError::OutOfRange {
                    field: field.to_owned(),
                    min: <$int>::MIN.to_string(),
                    max: <$int>::MAX.to_string(),
                    got: whole.to_string(),
                })
            }
        }
    )*};
}

whole_number_fields!("a whole number": u8, u16, u32, u64, usize);
whole_number_fields!("an integer": i8, i16, i32, i64);

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
    fn object(value: &Value) -> JsonObject<'_> {
        JsonObject::new(value).expect("an object")
    }

    #[test]
    fn a_body_that_is_no_object_says_what_it_is() {
        let caller = ConnectionId::new("a=");
        let mut empty = Request::message(caller.clone(), "");
        empty.body = None;
        assert!(matches!(json_body(&empty), Err(BodyError::Empty)));
        let mut binary = empty.clone();
        binary.body = Some(Payload::binary(br#"{"a":1}"#.to_vec()));
        assert!(matches!(json_body(&binary), Err(BodyError::Binary)));
        let huge = json_body(&Request::message(caller.clone(), r#"{"n":1e400}"#));
        assert!(huge
            .unwrap_err()
            .to_string()
            .contains("number out of range"));
        let array = json_body(&Request::message(caller, "[1]")).unwrap();
        assert_eq!(
            JsonObject::new(&array).unwrap_err().to_string(),
            "the message must be a JSON object, got an array"
        );
    }

    #[test]
    fn required_fields_are_missing_when_absent_and_wrong_when_null() {
        let body = json!({"message": null, "count": "3"});
        let fields = object(&body);
        assert_eq!(
            fields.required::<&str>("text"),
            Err(FieldError::Missing {
                field: "text".into()
            })
        );
        let null = fields.required::<String>("message").unwrap_err();
        assert_eq!(null.to_string(), "`message` must be a string, got null");
        assert_eq!(fields.optional::<String>("message"), Ok(None));
        assert_eq!(fields.optional::<u64>("absent"), Ok(None));
        assert_eq!(
            fields.optional::<u64>("count").unwrap_err().to_string(),
            "`count` must be a whole number, got a string"
        );
    }

    #[test]
    fn whole_numbers_refuse_fractions_and_what_their_type_cannot_hold() {
        let body = json!({"half": 1.5, "negative": -3, "big": 300, "huge": 1e30, "ok": 7});
        let fields = object(&body);
        assert_eq!(
            fields.required::<u32>("half").unwrap_err().to_string(),
            "`half` must be a whole number, got 1.5"
        );
        assert_eq!(
            fields.required::<u64>("negative").unwrap_err().to_string(),
            "`negative` must be from 0 to 18446744073709551615, got -3"
        );
        assert_eq!(fields.required::<i8>("negative"), Ok(-3));
        assert_eq!(
            fields.required::<u8>("big").unwrap_err().to_string(),
            "`big` must be from 0 to 255, got 300"
        );
        assert!(matches!(
            fields.required::<i64>("huge"),
            Err(FieldError::WrongType {
                expected: "an integer",
                ..
            })
        ));
        assert_eq!(fields.required::<f64>("huge"), Ok(1e30));
        assert_eq!(fields.optional_in("ok", 1..=7_usize), Ok(Some(7)));
        let above = fields.optional_in("ok", 1..=6_usize).unwrap_err();
        assert_eq!(above.field(), "ok");
        assert_eq!(above.to_string(), "`ok` must be from 1 to 6, got 7");
        assert_eq!(fields.optional_in("absent", 1..=6_usize), Ok(None));
    }

    #[test]
    fn arrays_name_the_entry_at_fault() {
        let body = json!({"ids": ["a", "b"], "mixed": ["a", ["b"]], "flag": true, "one": "a"});
        let fields = object(&body);
        assert_eq!(fields.required::<Vec<&str>>("ids"), Ok(vec!["a", "b"]));
        let mixed = fields.required::<Vec<String>>("mixed").unwrap_err();
        assert_eq!(mixed.field(), "mixed[1]");
        assert_eq!(
            mixed.to_string(),
            "`mixed[1]` must be a string, got an array"
        );
        assert_eq!(
            fields.required::<Vec<&str>>("one").unwrap_err().to_string(),
            "`one` must be an array, got a string"
        );
        assert_eq!(fields.required::<bool>("flag"), Ok(true));
        assert_eq!(
            fields.required::<&Value>("mixed").map(Value::is_array),
            Ok(true)
        );
    }
}
