//! Plain HTTP routes next to the WebSocket routes: REST queries such as a history
//! endpoint, on the [`http`](::http) crate's request and response types, served by the
//! LocalGateway locally and on Lambda by REST API (v1), HTTP API (payload 2.0) and
//! Function URL events.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use ::http::header::{HeaderValue, CONTENT_TYPE};
use ::http::StatusCode;
use async_trait::async_trait;
use serde::Serialize;

use crate::{Context, Json, Payload, Rejection, Result};

/// A request to an HTTP route: the [`http`](::http) crate's request with a [`Payload`]
/// body (empty when the request had none). The URI is the path and the raw query string
/// (`/history?device_id=esp32-01&limit=5`, without the API Gateway stage); every header
/// value is kept, a repeated header stays repeated. Who serves the router adds
/// extensions: [`PathParams`] (the route's `{name}` captures, added by the router), and
/// on Lambda the API Gateway request context of the event (see `wsgw_aws::lambda`).
///
/// ```
/// use wsgw_core::{HttpRequest, HttpRequestExt, Payload};
///
/// let request: HttpRequest = wsgw_core::http::Request::get("/history?device_id=a&device_id=b")
///     .header("Accept", "application/json")
///     .body(Payload::default())
///     .unwrap();
/// assert_eq!(request.query_param("device_id").as_deref(), Some("a"));
/// assert_eq!(request.query_params("device_id"), ["a", "b"]);
/// assert_eq!(request.header_text("accept"), Some("application/json"));
/// ```
pub type HttpRequest = ::http::Request<Payload>;

/// The answer of an HTTP route: the [`http`](::http) crate's response with a [`Payload`]
/// body. A binary payload is sent base64-encoded to API Gateway (`isBase64Encoded`); a
/// repeated header (two `set-cookie`) stays repeated.
pub type HttpResponse = ::http::Response<Payload>;

/// The values an HTTP route's `{name}` segments captured, a request extension the router
/// adds before the handler runs (read them with [`HttpRequestExt::path_param`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(pub BTreeMap<String, String>);

/// The pattern of the HTTP route that matched (`/devices/{device_id}/history`), a
/// request extension the router adds before the handler runs, as axum's `MatchedPath`
/// (read it with [`HttpRequestExt::route_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedPath(pub Arc<str>);

/// A query string parameter given more than once where one value is expected
/// ([`HttpRequestExt::single_query_param`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is given more than once")]
pub struct RepeatedQueryParam {
    /// The parameter's name.
    pub name: String,
}

/// The `bad_request` refusal (400) naming the parameter.
impl From<RepeatedQueryParam> for Rejection {
    fn from(repeated: RepeatedQueryParam) -> Self {
        Rejection::bad_request(repeated.to_string())
    }
}

/// Readers of an [`HttpRequest`]'s path parameters, query string and headers.
pub trait HttpRequestExt {
    /// A captured path parameter ([`PathParams`]).
    fn path_param(&self, name: &str) -> Option<&str>;

    /// Every `name=value` pair of the query string, in order, percent-decoded (a name
    /// given twice appears twice).
    fn query_pairs(&self) -> Vec<(String, String)>;

    /// The first value of a query string parameter.
    fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// Every value of a query string parameter (`?a=1&a=2` → `["1", "2"]`).
    fn query_params(&self, name: &str) -> Vec<String> {
        self.query_pairs()
            .into_iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value)
            .collect()
    }

    /// The value of a query string parameter that may be given at most once: `None`
    /// when absent, [`RepeatedQueryParam`] naming it when given twice
    /// (`?limit=5&limit=10`: which one was meant?).
    ///
    /// ```
    /// use wsgw_core::{HttpRequestExt, Payload};
    ///
    /// let request = wsgw_core::http::Request::get("/history?limit=5&limit=6&device_id=a")
    ///     .body(Payload::default())
    ///     .unwrap();
    /// assert_eq!(request.single_query_param("device_id"), Ok(Some("a".to_owned())));
    /// assert_eq!(request.single_query_param("next"), Ok(None));
    /// let twice = request.single_query_param("limit").unwrap_err();
    /// assert_eq!(twice.to_string(), "limit is given more than once");
    /// ```
    fn single_query_param(
        &self,
        name: &str,
    ) -> std::result::Result<Option<String>, RepeatedQueryParam> {
        let mut values = self.query_params(name).into_iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(RepeatedQueryParam {
                name: name.to_owned(),
            });
        }
        Ok(first)
    }

    /// The value of a query string parameter that may be given at most once, read by
    /// `parse` (`None` for a value it does not take): `None` when absent, else a
    /// `bad_request` [`Rejection`] naming the parameter given twice
    /// ([`RepeatedQueryParam`]), or saying what it must be (`expected`) and what was
    /// given.
    ///
    /// ```
    /// use wsgw_core::{HttpRequestExt, Payload};
    ///
    /// let request = wsgw_core::http::Request::get("/history?limit=5&from=soon")
    ///     .body(Payload::default())
    ///     .unwrap();
    /// let whole = |raw: &str| raw.parse::<u32>().ok();
    /// assert_eq!(request.parsed_query_param("limit", "a whole number", whole), Ok(Some(5)));
    /// assert_eq!(request.parsed_query_param("to", "a whole number", whole), Ok(None));
    /// let refused = request.parsed_query_param("from", "a whole number", whole).unwrap_err();
    /// assert_eq!((refused.status(), refused.code()), (400, Some("bad_request")));
    /// assert_eq!(refused.detail(), Some(r#"from must be a whole number, got "soon""#));
    /// ```
    fn parsed_query_param<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> std::result::Result<Option<T>, Rejection> {
        let Some(raw) = self.single_query_param(name)? else {
            return Ok(None);
        };
        match parse(&raw) {
            Some(value) => Ok(Some(value)),
            None => Err(Rejection::bad_request(format!(
                "{name} must be {expected}, got \"{raw}\""
            ))),
        }
    }

    /// Refuses a query string naming a parameter that is not `known`: a `bad_request`
    /// [`Rejection`] naming every unknown one and what the path takes.
    ///
    /// ```
    /// use wsgw_core::{HttpRequestExt, Payload};
    ///
    /// let request = wsgw_core::http::Request::get("/history?zoom=1&device_id=a&color=2")
    ///     .body(Payload::default())
    ///     .unwrap();
    /// assert_eq!(request.only_query_params(&["device_id", "zoom", "color"]), Ok(()));
    /// let refused = request.only_query_params(&["device_id", "from", "limit"]).unwrap_err();
    /// assert_eq!(refused.code(), Some("bad_request"));
    /// assert_eq!(
    ///     refused.detail(),
    ///     Some("unknown parameters color, zoom; /history takes device_id, from and limit")
    /// );
    /// ```
    fn only_query_params(&self, known: &[&str]) -> std::result::Result<(), Rejection> {
        let unknown = self.unknown_query_params(known);
        if unknown.is_empty() {
            return Ok(());
        }
        let takes = match known {
            [] => "none".to_owned(),
            [only] => (*only).to_owned(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        };
        Err(Rejection::bad_request(format!(
            "unknown parameter{} {}; {} takes {takes}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", "),
            self.route_path(),
        )))
    }

    /// The pattern of the route that matched ([`MatchedPath`]), or the URI's path when
    /// no router matched one.
    fn route_path(&self) -> &str;

    /// The names in the query string that are not `known`, sorted, each once: what a
    /// route taking only those parameters refuses, naming them all at once.
    ///
    /// ```
    /// use wsgw_core::{HttpRequestExt, Payload};
    ///
    /// let request = wsgw_core::http::Request::get("/history?zoom=1&device_id=a&color=2&zoom=3")
    ///     .body(Payload::default())
    ///     .unwrap();
    /// assert_eq!(request.unknown_query_params(&["device_id", "limit"]), ["color", "zoom"]);
    /// assert!(request.unknown_query_params(&["device_id", "zoom", "color"]).is_empty());
    /// ```
    fn unknown_query_params(&self, known: &[&str]) -> Vec<String> {
        let mut unknown: Vec<String> = self
            .query_pairs()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !known.contains(&name.as_str()))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        unknown
    }

    /// The first value of a header as text (`None` when absent or not visible ASCII);
    /// [`http::Request::headers`](::http::Request::headers) has every value.
    fn header_text(&self, name: &str) -> Option<&str>;

    /// The token of an `Authorization: Bearer <token>` header, if there is a non-empty
    /// one: how an HTTP route reads the same keys the `$connect` authorizer takes (never
    /// from the query string, which access logs keep).
    ///
    /// ```
    /// use wsgw_core::{HttpRequestExt, Payload};
    ///
    /// let request = wsgw_core::http::Request::get("/devices")
    ///     .header("Authorization", "Bearer k-1")
    ///     .body(Payload::default())
    ///     .unwrap();
    /// assert_eq!(request.bearer_token(), Some("k-1"));
    /// ```
    fn bearer_token(&self) -> Option<&str> {
        self.header_text("authorization")
            .map(crate::auth::strip_bearer)
            .filter(|token| !token.is_empty())
    }
}

impl<B> HttpRequestExt for ::http::Request<B> {
    fn route_path(&self) -> &str {
        match self.extensions().get::<MatchedPath>() {
            Some(matched) => &matched.0,
            None => self.uri().path(),
        }
    }

    fn path_param(&self, name: &str) -> Option<&str> {
        self.extensions()
            .get::<PathParams>()
            .and_then(|params| params.0.get(name))
            .map(String::as_str)
    }

    fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.uri().query().unwrap_or("").as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect()
    }

    fn header_text(&self, name: &str) -> Option<&str> {
        self.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    }
}

/// What an HTTP handler may return: an [`HttpResponse`] (or any `http::Response` whose
/// body converts into a [`Payload`]), a status, `(status, body)`, [`Json`] (200 with a
/// JSON body) or a [`Rejection`] (its status, its frame as the JSON body).
pub trait IntoHttpResponse {
    /// The response; `Err` for a server-side failure (a value that does not serialise).
    fn into_http_response(self) -> Result<HttpResponse>;
}

impl<B: Into<Payload>> IntoHttpResponse for ::http::Response<B> {
    fn into_http_response(self) -> Result<HttpResponse> {
        Ok(self.map(Into::into))
    }
}

impl IntoHttpResponse for StatusCode {
    fn into_http_response(self) -> Result<HttpResponse> {
        let mut response = HttpResponse::new(Payload::default());
        *response.status_mut() = self;
        Ok(response)
    }
}

impl<B: Into<Payload>> IntoHttpResponse for (StatusCode, B) {
    fn into_http_response(self) -> Result<HttpResponse> {
        let mut response = HttpResponse::new(self.1.into());
        *response.status_mut() = self.0;
        Ok(response)
    }
}

impl<T: Serialize> IntoHttpResponse for Json<T> {
    fn into_http_response(self) -> Result<HttpResponse> {
        Ok(json_body(StatusCode::OK, Payload::json(&self.0)?))
    }
}

/// The answer to a client [`Rejection`]: its status, with its frame as the JSON body.
///
/// ```
/// use wsgw_core::{IntoHttpResponse, Rejection};
///
/// let response = Rejection::new("unknown_device").with_status(404).into_http_response().unwrap();
/// assert_eq!(response.status(), 404);
/// assert_eq!(response.body().as_text(), Some(r#"{"type":"error","error":"unknown_device"}"#));
/// ```
impl IntoHttpResponse for Rejection {
    fn into_http_response(self) -> Result<HttpResponse> {
        let body = self.to_payload();
        Ok(rejection_response(&self, body))
    }
}

/// The answer to `rejection` with `body`: its status (400 when it is not one) and its
/// headers.
pub(crate) fn rejection_response(rejection: &Rejection, body: Payload) -> HttpResponse {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_body(status, body);
    for (name, value) in rejection.headers() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// A response with `status` and a JSON `body` (`content-type: application/json`).
fn json_body(status: StatusCode, body: Payload) -> HttpResponse {
    let mut response = HttpResponse::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON error answer `{"message": ...}` with `status`: what a gateway answers by itself
/// (`404` for no route, `500` for a failed integration).
///
/// ```
/// use wsgw_core::http::StatusCode;
///
/// let response = wsgw_core::http_error(StatusCode::NOT_FOUND, "no route for /nowhere");
/// assert_eq!(response.body().as_text(), Some(r#"{"message":"no route for /nowhere"}"#));
/// ```
pub fn http_error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    let body = serde_json::json!({ "message": message.into() }).to_string();
    json_body(status, Payload::text(body))
}

/// Handles one HTTP route. Any `async fn(Context<S>, HttpRequest) -> Result<R>` where
/// `R` is [`IntoHttpResponse`] is one; an `Err` holding a [`Rejection`] is answered as
/// the rejection, any other `Err` with 500.
#[async_trait]
pub trait HttpHandler<S = ()>: Send + Sync + 'static {
    /// Handles one request.
    async fn call(&self, ctx: Context<S>, request: HttpRequest) -> Result<HttpResponse>;
}

#[async_trait]
impl<S, F, Fut, R> HttpHandler<S> for F
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>, HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    R: IntoHttpResponse,
{
    async fn call(&self, ctx: Context<S>, request: HttpRequest) -> Result<HttpResponse> {
        (self)(ctx, request).await?.into_http_response()
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

    /// The captures when `path` (a URI's path, percent-encoded) matches; segments are
    /// compared and captured percent-decoded (`/devices/esp%2001` captures `esp 01`), and
    /// a segment that is not UTF-8 once decoded matches nothing.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut captures = BTreeMap::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            let part = percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .ok()?;
            match segment {
                Segment::Literal(literal) if *literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Capture(name) => {
                    captures.insert(name.clone(), part.into_owned());
                }
            }
        }
        Some(captures)
    }
}
