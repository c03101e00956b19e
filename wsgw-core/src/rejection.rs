//! Client rejections: a request refused because of what the client sent, answered to
//! the client instead of failing the invocation.

use std::fmt;

use ::http::header::{HeaderName, HeaderValue};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use crate::Payload;

/// A client's request refused, as a value: a code, an optional detail, optional extra
/// fields and an HTTP status (400 unless set).
///
/// Return it from a handler (`Err(rejection.into())`, or `?` on anything that yields
/// one, such as [`Request::json`](crate::Request::json)) and the router answers the
/// client with it, the same way on the `Harness`, the LocalGateway, `invoke` and Lambda:
///
/// - on a WebSocket route, the error frame goes to the caller through the request's
///   sink (a caller that already left is no failure), on one-way and two-way routes
///   alike, and the invocation succeeds;
/// - on `$connect`, the handshake is refused with the status;
/// - on a REST route, the answer is the status with the frame as its JSON body.
///
/// It is not a failed invocation: no "Internal server error", no handler error in the
/// metrics. Server-side failures stay [`Error`](crate::Error)s.
///
/// The frame is `{"type":"error","error":CODE}` with `detail` and the extra fields in
/// the order they were added; [`Rejection::json`] sends a frame of any other shape.
///
/// ```
/// use wsgw_core::Rejection;
///
/// let rejection = Rejection::new("missing_field").with_field("field", "message");
/// assert_eq!(
///     rejection.to_payload().as_text(),
///     Some(r#"{"type":"error","error":"missing_field","field":"message"}"#)
/// );
/// assert_eq!(rejection.status(), 400);
///
/// let refused = Rejection::new("forbidden").with_detail("not your room").with_status(403);
/// assert_eq!(refused.code(), Some("forbidden"));
/// assert_eq!(refused.detail(), Some("not your room"));
/// assert_eq!(refused.to_string(), "forbidden: not your room");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    status: u16,
    body: Body,
    /// Few, and a `HeaderMap` would make every `Result<_, Error>` larger.
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    /// `type`, `error`, then the other fields in the order they were added.
    Fields(Vec<(String, Value)>),
    /// A frame of the application's own shape.
    Custom(Payload),
}

/// The field of the standard frame holding the code.
const CODE: &str = "error";
/// The field of the standard frame holding the detail.
const DETAIL: &str = "detail";
/// The field of the standard frame naming it an error frame.
const TYPE: &str = "type";

impl Rejection {
    /// `{"type":"error","error":code}`, status 400.
    pub fn new(code: impl Into<String>) -> Self {
        Rejection {
            status: 400,
            body: Body::Fields(vec![
                (TYPE.to_owned(), Value::from("error")),
                (CODE.to_owned(), Value::from(code.into())),
            ]),
            headers: Vec::new(),
        }
    }

    /// `bad_request` with `detail`, status 400: a malformed HTTP request (a query
    /// parameter given twice or of a value the route does not take, as
    /// [`HttpRequestExt`](crate::HttpRequestExt) refuses them).
    ///
    /// ```
    /// use wsgw_core::Rejection;
    ///
    /// let refused = Rejection::bad_request("device_id is required");
    /// assert_eq!((refused.status(), refused.code()), (400, Some("bad_request")));
    /// assert_eq!(refused.detail(), Some("device_id is required"));
    /// ```
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Rejection::new("bad_request").with_detail(detail)
    }

    /// A frame of any other shape (`{"type":"error","code":…,"message":…}`, …), status
    /// 400. A serialisation failure is a server-side [`Error`](crate::Error).
    ///
    /// ```
    /// use serde_json::json;
    /// use wsgw_core::Rejection;
    ///
    /// let rejection = Rejection::json(&json!({"type": "error", "code": "wrong_role"}))?;
    /// assert_eq!(rejection.to_payload().as_text(), Some(r#"{"code":"wrong_role","type":"error"}"#));
    /// assert_eq!(rejection.code(), None, "only the standard frame has a code");
    /// # Ok::<(), wsgw_core::Error>(())
    /// ```
    pub fn json<T: Serialize + ?Sized>(frame: &T) -> crate::Result<Self> {
        Ok(Rejection {
            status: 400,
            body: Body::Custom(Payload::json(frame)?),
            headers: Vec::new(),
        })
    }

    /// Adds (or replaces) the `detail`: what was wrong and how to fix it.
    pub fn with_detail(self, detail: impl Into<String>) -> Self {
        self.with_field(DETAIL, detail.into())
    }

    /// Adds (or replaces) a field of the frame (`"field":"message"`,
    /// `"available":[…]`). On a frame made with [`Rejection::json`] it does nothing.
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        if let Body::Fields(fields) = &mut self.body {
            let (name, value) = (name.into(), value.into());
            match fields.iter_mut().find(|(existing, _)| *existing == name) {
                Some((_, slot)) => *slot = value,
                None => fields.push((name, value)),
            }
        }
        self
    }

    /// Sets the HTTP status: the refused handshake's on `$connect`, the answer's on a
    /// REST route (a 4xx; 400 unless set).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header to the answer on an HTTP route (`WWW-Authenticate: Bearer` on a
    /// 401, `Retry-After`), replacing one of the same name. WebSocket frames and refused
    /// handshakes carry no headers of a rejection.
    ///
    /// ```
    /// use wsgw_core::http::header::{HeaderValue, WWW_AUTHENTICATE};
    /// use wsgw_core::{IntoHttpResponse, Rejection};
    ///
    /// let refusal = Rejection::new("unauthorized")
    ///     .with_status(401)
    ///     .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    /// let answer = refusal.into_http_response()?;
    /// assert_eq!(answer.status(), 401);
    /// assert_eq!(answer.headers()["www-authenticate"], "Bearer");
    /// # Ok::<(), wsgw_core::Error>(())
    /// ```
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(existing, _)| *existing != name);
        self.headers.push((name, value));
        self
    }

    /// A header of the answer on an HTTP route ([`with_header`](Self::with_header)).
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(existing, _)| existing.as_str().eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The headers of the answer on an HTTP route, in the order they were set.
    pub(crate) fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The code (`error` of the standard frame).
    pub fn code(&self) -> Option<&str> {
        self.field(CODE)
    }

    /// The detail, when one was given.
    pub fn detail(&self) -> Option<&str> {
        self.field(DETAIL)
    }

    fn field(&self, name: &str) -> Option<&str> {
        match &self.body {
            Body::Fields(fields) => fields
                .iter()
                .find(|(field, _)| field == name)
                .and_then(|(_, value)| value.as_str()),
            Body::Custom(_) => None,
        }
    }

    /// The frame the client receives (a JSON text payload).
    pub fn to_payload(&self) -> Payload {
        match &self.body {
            // A map of JSON values with string keys always serialises.
            Body::Fields(fields) => Payload::text(
                serde_json::to_string(&Ordered(fields))
                    .unwrap_or_else(|_| String::from(r#"{"type":"error"}"#)),
            ),
            Body::Custom(payload) => payload.clone(),
        }
    }

    /// The frame in an application's own shape on an HTTP route: `shape(code, detail)`
    /// (the detail `""` when none), with the fields added by
    /// [`with_field`](Self::with_field) after those of the object it returns; a frame
    /// made with [`Rejection::json`] is kept as it is.
    pub(crate) fn to_payload_shaped(&self, shape: &dyn Fn(&str, &str) -> Value) -> Payload {
        let Body::Fields(fields) = &self.body else {
            return self.to_payload();
        };
        let mut frame = shape(self.code().unwrap_or_default(), self.detail().unwrap_or(""));
        if let Value::Object(object) = &mut frame {
            for (name, value) in fields {
                if ![TYPE, CODE, DETAIL].contains(&name.as_str()) {
                    object.insert(name.clone(), value.clone());
                }
            }
        }
        Payload::text(frame.to_string())
    }

    /// What [`Request::json`](crate::Request::json) answers for a body that does not
    /// parse into the handler's type: `invalid_json` (not JSON, or not a text message),
    /// `missing_field` with `field`, `invalid_type` or `invalid_value` with `field` when
    /// serde names it; each with serde's message as the `detail`.
    pub(crate) fn from_json_error(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        if !inner.is_data() {
            return Rejection::new("invalid_json").with_detail(message);
        }
        // serde's messages for these are fixed ("missing field `x`", "invalid type: …").
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            let field = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return Rejection::new("missing_field")
                .with_field("field", field)
                .with_detail(message);
        }
        let code = if message.starts_with("invalid type") {
            "invalid_type"
        } else {
            "invalid_value"
        };
        let rejection = Rejection::new(code);
        let rejection = if path == "." {
            rejection
        } else {
            rejection.with_field("field", path)
        };
        rejection.with_detail(message)
    }
}

/// Fields serialised as a map in their order.
struct Ordered<'a>(&'a [(String, Value)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code(), self.detail()) {
            (Some(code), Some(detail)) => write!(f, "{code}: {detail}"),
            (Some(code), None) => f.write_str(code),
            _ => match self.to_payload().as_text() {
                Some(text) => f.write_str(text),
                None => f.write_str("rejected"),
            },
        }
    }
}

impl std::error::Error for Rejection {}
