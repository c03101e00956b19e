//! Plain HTTP routes next to the WebSocket routes: REST queries such as a history
//! endpoint, served by the LocalGateway locally and by API Gateway REST proxy events on
//! Lambda.

use std::collections::BTreeMap;
use std::future::Future;

use async_trait::async_trait;
use serde::Serialize;

use crate::{Context, Payload, Rejection, Result};

/// An HTTP request to a REST route.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// Upper-case method (`GET`, `POST` ...).
    pub method: String,
    /// The path without query string (`/history/esp32-01`).
    pub path: String,
    /// Values captured by `{name}` segments of the route pattern.
    pub path_params: BTreeMap<String, String>,
    /// Query string parameters (the first value of each).
    pub query: BTreeMap<String, String>,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The request body.
    pub body: Option<Payload>,
}

impl HttpRequest {
    /// A request with no query, headers or body.
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        HttpRequest {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            path_params: BTreeMap::new(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            body: None,
        }
    }

    /// Adds a query string parameter.
    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.insert(name.into(), value.into());
        self
    }

    /// Adds a header (the name is stored in lower case).
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Payload>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A captured path parameter.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params.get(name).map(String::as_str)
    }

    /// A query string parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A header (names are looked up in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The token of an `Authorization: Bearer <token>` header, if there is a non-empty
    /// one: how a REST route reads the same keys the `$connect` authorizer takes (never
    /// from the query string, which access logs keep).
    ///
    /// ```
    /// use wsgw_core::HttpRequest;
    ///
    /// let request = HttpRequest::new("GET", "/devices").with_header("Authorization", "Bearer k-1");
    /// assert_eq!(request.bearer_token(), Some("k-1"));
    /// assert_eq!(HttpRequest::new("GET", "/devices").bearer_token(), None);
    /// ```
    pub fn bearer_token(&self) -> Option<&str> {
        self.header("authorization")
            .map(crate::auth::strip_bearer)
            .filter(|token| !token.is_empty())
    }
}

/// An HTTP response from a REST route.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Option<Payload>,
}

impl HttpResponse {
    /// A status with no body.
    pub fn status(status: u16) -> Self {
        HttpResponse {
            status,
            headers: BTreeMap::new(),
            body: None,
        }
    }

    /// 200 with `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(HttpResponse::status(200)
            .with_header("content-type", "application/json")
            .with_body(Payload::json(value)?))
    }

    /// A JSON error body `{"message": ...}` with this status.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let body = serde_json::json!({ "message": message.into() }).to_string();
        HttpResponse::status(status)
            .with_header("content-type", "application/json")
            .with_body(Payload::text(body))
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Payload>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The answer to a client [`Rejection`]: its status, with its frame as the JSON
    /// body.
    ///
    /// ```
    /// use wsgw_core::{HttpResponse, Rejection};
    ///
    /// let response = HttpResponse::rejected(&Rejection::new("unknown_device").with_status(404));
    /// assert_eq!(response.status, 404);
    /// assert_eq!(response.body.unwrap().as_text(), Some(r#"{"type":"error","error":"unknown_device"}"#));
    /// ```
    pub fn rejected(rejection: &Rejection) -> Self {
        HttpResponse::status(rejection.status())
            .with_header("content-type", "application/json")
            .with_body(rejection.to_payload())
    }
}

/// Handles one REST route. Any `async fn(Context<S>, HttpRequest) -> Result<HttpResponse>`
/// is one; an `Err` holding a [`Rejection`] is answered with
/// [`HttpResponse::rejected`], any other `Err` with 500.
#[async_trait]
pub trait HttpHandler<S = ()>: Send + Sync + 'static {
    /// Handles one request.
    async fn call(&self, ctx: Context<S>, request: HttpRequest) -> Result<HttpResponse>;
}

#[async_trait]
impl<S, F, Fut> HttpHandler<S> for F
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>, HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse>> + Send + 'static,
{
    async fn call(&self, ctx: Context<S>, request: HttpRequest) -> Result<HttpResponse> {
        (self)(ctx, request).await
    }
}

/// A route pattern such as `/devices/{device_id}/history`: literal segments and
/// `{name}` captures, as API Gateway's REST resources and the router's REST routes
/// are written.
///
/// ```
/// use wsgw_core::PathPattern;
///
/// let pattern = PathPattern::parse("/devices/{device_id}/history");
/// let captures = pattern.matches("/devices/esp32-01/history").unwrap();
/// assert_eq!(captures["device_id"], "esp32-01");
/// assert!(pattern.matches("/devices/esp32-01").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Capture(String),
}

impl PathPattern {
    /// The pattern of `pattern` (empty segments are ignored, as in paths).
    pub fn parse(pattern: &str) -> Self {
        let segments = pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Capture(name.to_owned()),
                    None => Segment::Literal(segment.to_owned()),
                },
            )
            .collect();
        PathPattern { segments }
    }

    /// The captures when `path` matches.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut captures = BTreeMap::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Capture(name) => {
                    captures.insert(name.clone(), part.to_owned());
                }
            }
        }
        Some(captures)
    }
}
