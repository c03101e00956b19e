//! One field of a JSON body exactly as the client wrote it, for apps that relay client
//! JSON without re-encoding it.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Request;

impl Request {
    /// The JSON text of the body's top-level field `name`, exactly as the client wrote
    /// it: numbers beyond `f64` (`1e400`, `18446744073709551617`), key order and escapes
    /// are kept, so serialising the result sends the client's own text back. A field
    /// present as `null` is `Some`; a repeated key counts once, the last one, as for any
    /// JSON object.
    ///
    /// `None` when the body is not a JSON object (binary, not JSON, an array ...) or has
    /// no such field. Values are captured without building a tree, so deep nesting does
    /// not hit a recursion limit.
    ///
    /// ```
    /// use wsgw_core::{ConnectionId, Request};
    ///
    /// let body = r#"{"action":"relay","message":{"b":1e400,"a":2},"message":[1]}"#;
    /// let request = Request::message(ConnectionId::new("a="), body);
    /// assert_eq!(request.raw_field("message").map(|raw| raw.get().to_owned()), Some("[1]".to_owned()));
    ///
    /// let request = Request::message(ConnectionId::new("a="), r#"{"message":{"b":1e400,"a":2}}"#);
    /// assert_eq!(request.raw_field("message").unwrap().get(), r#"{"b":1e400,"a":2}"#);
    /// assert!(request.raw_field("text").is_none());
    /// ```
    pub fn raw_field(&self, name: &str) -> Option<Box<RawValue>> {
        let text = self.text()?;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let found = LastField { name }.deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        found.map(RawValue::to_owned)
    }
}

/// Reads a JSON object, keeping the raw text of the last occurrence of one field.
struct LastField<'n> {
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for LastField<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LastField<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.name {
                found = Some(map.next_value::<&RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ConnectionId, Payload, Request};

    fn field(body: impl Into<Payload>, name: &str) -> Option<String> {
        let request = Request::message(ConnectionId::new("a="), body);
        request.raw_field(name).map(|raw| raw.get().to_owned())
    }

    #[test]
    fn a_field_comes_back_as_the_client_wrote_it() {
        for value in [
            "1e400",
            "18446744073709551617",
            "null",
            r#"{"b":1,"a":"\u00e9\n"}"#,
            "\"text\"",
        ] {
            let body = format!(r#"{{"pad":1e400,"message":{value},"after":[]}}"#);
            assert_eq!(field(body, "message").as_deref(), Some(value));
        }
    }

    #[test]
    fn the_last_of_a_repeated_key_counts() {
        let body = r#"{"message":1,"message":2e400}"#;
        assert_eq!(field(body, "message").as_deref(), Some("2e400"));
    }

    #[test]
    fn no_field_for_a_missing_key_or_a_body_that_is_not_one_json_object() {
        for body in [
            r#"{"action":"message"}"#,
            r#"["message"]"#,
            "not json",
            r#"{"message":1"#,
            r#"{"message":1} trailing"#,
            "",
        ] {
            assert_eq!(field(body, "message"), None, "{body}");
        }
        assert_eq!(field(vec![0x7b, 0x7d], "message"), None, "binary");
    }

    #[test]
    fn deep_nesting_is_captured_without_a_recursion_limit() {
        let deep = format!("{}0{}", "[".repeat(30_000), "]".repeat(30_000));
        let body = format!(r#"{{"message":{deep}}}"#);
        assert_eq!(field(body, "message"), Some(deep));
    }
}
