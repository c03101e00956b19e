//! The frames API Gateway itself sends a caller when a message goes wrong.

use crate::{ConnectionId, Payload};

/// A message API Gateway sends the caller on its own, instead of a route's reply.
///
/// Each is one text frame, byte for byte as API Gateway writes it (one space after the
/// first colon, none after the others):
/// `{"message": "Forbidden", "connectionId":"…", "requestId":"…"}`. The connection stays
/// open after any of them.
///
/// ```
/// use wsgw_core::{ConnectionId, GatewayError};
///
/// let frame = GatewayError::Forbidden.frame(&ConnectionId::new("L0SM9cOFvHcCIhw="), "L0SN5F3LPHcFkNA=");
/// assert_eq!(
///     frame.as_text(),
///     Some(r#"{"message": "Forbidden", "connectionId":"L0SM9cOFvHcCIhw=", "requestId":"L0SN5F3LPHcFkNA="}"#)
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GatewayError {
    /// The message selects no route and there is no `$default` route.
    Forbidden,
    /// The integration failed: the handler returned an error or panicked (on AWS, the
    /// Lambda invocation failed).
    InternalServerError,
    /// The integration did not answer within the integration timeout (29 s).
    EndpointRequestTimedOut,
}

impl GatewayError {
    /// The frame's `message`.
    pub fn message(self) -> &'static str {
        match self {
            GatewayError::Forbidden => "Forbidden",
            GatewayError::InternalServerError => "Internal server error",
            GatewayError::EndpointRequestTimedOut => "Endpoint request timed out",
        }
    }

    /// The frame the caller receives for the message `request_id` of `connection_id`.
    pub fn frame(self, connection_id: &ConnectionId, request_id: &str) -> Payload {
        // Ids are written as JSON strings: an id from outside cannot break the frame.
        let quote =
            |text: &str| serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""));
        Payload::text(format!(
            "{{\"message\": {}, \"connectionId\":{}, \"requestId\":{}}}",
            quote(self.message()),
            quote(connection_id.as_str()),
            quote(request_id),
        ))
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}
