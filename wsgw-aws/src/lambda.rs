//! Lambda glue: API Gateway events in, the [`Router`] in the middle, proxy responses out.
//!
//! One function can serve every route of a WebSocket API (and the REST routes of the
//! same router): API Gateway has already selected the route, so the event's `routeKey`
//! is used as is.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tokio::sync::OnceCell;
use tracing::instrument::{Instrument, WithSubscriber};
use wsgw_core::http::header::{COOKIE, SET_COOKIE};
use wsgw_core::http::{StatusCode, Uri};
use wsgw_core::metrics::{Counter, Metrics};
use wsgw_core::{
    Backends, ConnectionId, ConnectionStore, DisconnectInfo, EventType, HistoryStore, HttpRequest,
    HttpRequestExt, HttpResponse, MessageSink, NotConfigured, Payload, Reply, Request, Router,
};

use crate::dynamo::{CONNECTIONS_TABLE_ENV, HISTORY_TABLE_ENV};
use crate::metrics::{Emf, InvocationInfo, InvocationMetrics};
use crate::ManagementApi;

/// Environment variable the Lambda service sets in every function.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// Whether this process runs inside Lambda (`AWS_LAMBDA_RUNTIME_API` is set).
pub fn is_lambda() -> bool {
    std::env::var_os(RUNTIME_API_ENV).is_some()
}

/// Why an event could not be decoded. Returned to Lambda as the invocation's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Neither a WebSocket event nor an HTTP request event (REST proxy, HTTP API payload
    /// 2.0, Function URL).
    #[error("not an API Gateway WebSocket, REST proxy, HTTP API (payload 2.0) or Function URL event (no requestContext.eventType, no httpMethod, no requestContext.http)")]
    Unrecognised,
    /// The event does not have the shape API Gateway sends.
    #[error("malformed API Gateway {kind} event: {}{source}", describe_path(.path))]
    Malformed {
        /// `WebSocket` or `REST proxy`.
        kind: &'static str,
        /// The field serde stopped at, as a path (`requestContext.connectedAt`,
        /// `headers.Host`); `.` for the event itself.
        path: String,
        /// What serde found wrong there.
        #[source]
        source: serde_json::Error,
    },
    /// A field API Gateway always sends is missing.
    #[error("API Gateway WebSocket event without {0}")]
    MissingField(&'static str),
    /// `requestContext.eventType` is not CONNECT, MESSAGE or DISCONNECT.
    #[error("unknown requestContext.eventType `{0}` (expected CONNECT, MESSAGE or DISCONNECT)")]
    UnknownEventType(String),
    /// A REQUEST authorizer event, which is answered with a policy, not run as a route
    /// (see [`authorizer`](crate::authorizer); [`LambdaApp::run`] does that).
    #[error("an API Gateway REQUEST authorizer event (type REQUEST with a methodArn): it is answered by wsgw_aws::authorizer::authorize_event, not run as $connect")]
    AuthorizerEvent,
    /// `isBase64Encoded` is true but the body is not base64.
    #[error("isBase64Encoded is true but the body is not valid base64: {0}")]
    InvalidBase64(#[source] base64::DecodeError),
    /// The path and query string do not make a URI, even with the characters a URI
    /// cannot hold percent-encoded.
    #[error("the event's path and query string `{uri}` do not make a URI: {source}")]
    InvalidUri {
        /// The path and query string, percent-encoded.
        uri: String,
        /// What the URI parser found wrong.
        #[source]
        source: wsgw_core::http::uri::InvalidUri,
    },
}

fn describe_path(path: &str) -> String {
    if path == "." || path.is_empty() {
        String::new()
    } else {
        format!("field `{path}`: ")
    }
}

/// Deserializes an event, naming the field serde stopped at.
fn from_event<T: serde::de::DeserializeOwned>(
    raw: Value,
    kind: &'static str,
) -> Result<T, EventError> {
    serde_path_to_error::deserialize(raw).map_err(|error| EventError::Malformed {
        kind,
        path: error.path().to_string(),
        source: error.into_inner(),
    })
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    wsgw_core::collect_headers(
        headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    )
}

/// `queryStringParameters`, one value per name (of a list, the last, as iterating the
/// event's `QueryMap` gave). Read from the raw event because `QueryMap`'s iterator
/// panics on a name with an empty list (`{"token":[]}`); the event's own
/// deserialization has already refused any other shape.
fn query_parameters(raw: &Value) -> BTreeMap<String, String> {
    let Some(Value::Object(parameters)) = raw.get("queryStringParameters") else {
        return BTreeMap::new();
    };
    parameters
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                Value::String(value) => value,
                Value::Array(values) => values.last()?.as_str()?,
                _ => return None,
            };
            Some((name.clone(), value.to_owned()))
        })
        .collect()
}

fn millis(at: i64) -> Option<DateTime<Utc>> {
    (at > 0)
        .then(|| DateTime::from_timestamp_millis(at))
        .flatten()
}

fn decode_body(body: Option<String>, is_base64: bool) -> Result<Option<Payload>, EventError> {
    match body {
        None => Ok(None),
        Some(body) if is_base64 => STANDARD
            .decode(body.as_bytes())
            .map(|bytes| Some(Payload::binary(bytes)))
            .map_err(EventError::InvalidBase64),
        Some(body) => Ok(Some(Payload::text(body))),
    }
}

/// Decodes an API Gateway WebSocket event (`ApiGatewayWebsocketProxyRequest`) into the
/// core [`Request`]. The authorizer context is kept exactly as API Gateway sent it.
pub fn decode_websocket_event(raw: Value) -> Result<Request, EventError> {
    let authorizer = raw
        .pointer("/requestContext/authorizer")
        .filter(|value| !value.is_null())
        .cloned();
    let query = query_parameters(&raw);
    let event: ApiGatewayWebsocketProxyRequest = from_event(raw, "WebSocket")?;
    let context = event.request_context;
    let event_type = match context.event_type.as_deref() {
        Some("CONNECT") => EventType::Connect,
        Some("MESSAGE") => EventType::Message,
        Some("DISCONNECT") => EventType::Disconnect,
        Some(other) => return Err(EventError::UnknownEventType(other.to_owned())),
        None => return Err(EventError::MissingField("requestContext.eventType")),
    };
    let connection_id = context
        .connection_id
        .map(ConnectionId::from)
        .ok_or(EventError::MissingField("requestContext.connectionId"))?;
    let route_key = context.route_key.unwrap_or_default();
    let base = match event_type {
        EventType::Connect => Request::connect(connection_id),
        EventType::Disconnect => Request::disconnect(
            connection_id,
            context
                .disconnect_status_code
                .and_then(|code| u16::try_from(code).ok())
                .unwrap_or(1005),
            context.disconnect_reason.as_deref().unwrap_or(""),
        ),
        EventType::Message => Request::message(connection_id, Payload::text("")),
    };
    let mut request = base.with_route_key(route_key).with_endpoint(
        context.domain_name.unwrap_or_default(),
        context.stage.unwrap_or_default(),
    );
    request.body = decode_body(event.body, event.is_base64_encoded)?;
    request.headers = header_map(&event.headers);
    request
        .headers
        .extend(header_map(&event.multi_value_headers));
    request.query = query;
    if let Some(at) = millis(context.request_time_epoch) {
        request.request_time = at;
    }
    request.connected_at = millis(context.connected_at);
    request.message_id = context.message_id;
    request.request_id = context.request_id.unwrap_or_default();
    request.api_id = context.apiid.unwrap_or_default();
    if let Some(direction) = context.message_direction {
        request.message_direction = direction;
    }
    request.source_ip = context.identity.source_ip;
    request.user_agent = context
        .identity
        .user_agent
        .or_else(|| request.headers.get("user-agent").cloned());
    request.authorizer = authorizer;
    if event_type == EventType::Disconnect && request.disconnect.is_none() {
        request.disconnect = Some(DisconnectInfo {
            status_code: 1005,
            reason: String::new(),
        });
    }
    Ok(request)
}

/// Which event format an HTTP request came in, a request extension the decoders add: the
/// response goes back in the same format ([`encode_http_response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpEventFormat {
    /// A REST API proxy event (payload 1.0): answered with `multiValueHeaders`.
    RestApi,
    /// An HTTP API event of payload format 2.0, or a Lambda Function URL event (the same
    /// format): answered with `cookies` for `set-cookie` and repeated headers joined with
    /// commas.
    PayloadV2,
}

/// What a raw query string may hold unencoded: everything but controls, space and the
/// characters a URI cannot carry (`&`, `=`, `%` and `?` stay: an encoded query stays as
/// it is).
const QUERY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// What a path may hold unencoded: as a query, but `?` would start one.
const PATH_ESCAPES: &percent_encoding::AsciiSet = &QUERY_ESCAPES.add(b'?');

/// The request URI (origin form) of `path` and a raw `query`, with what a URI cannot hold
/// percent-encoded.
fn request_uri(path: &str, query: &str) -> Result<Uri, EventError> {
    let mut uri = percent_encoding::utf8_percent_encode(path, PATH_ESCAPES).to_string();
    if !uri.starts_with('/') {
        uri.insert(0, '/');
    }
    if !query.is_empty() {
        uri.push('?');
        uri.extend(percent_encoding::utf8_percent_encode(query, QUERY_ESCAPES));
    }
    Uri::try_from(uri.as_str()).map_err(|source| EventError::InvalidUri { uri, source })
}

/// A REST event's query string, every value of `multiValueQueryStringParameters` (or
/// `queryStringParameters` when there is none), encoded again. Read from the raw event
/// because `QueryMap`'s iterator panics on a name with an empty list (`{"token":[]}`);
/// the event's own deserialization has already refused any other shape.
fn rest_query_string(raw: &Value) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let multi = raw
        .get("multiValueQueryStringParameters")
        .and_then(Value::as_object)
        .filter(|parameters| !parameters.is_empty());
    let parameters = multi.or_else(|| raw.get("queryStringParameters").and_then(Value::as_object));
    for (name, values) in parameters.into_iter().flatten() {
        match values {
            Value::String(value) => {
                query.append_pair(name, value);
            }
            Value::Array(values) => {
                for value in values.iter().filter_map(Value::as_str) {
                    query.append_pair(name, value);
                }
            }
            _ => {}
        }
    }
    query.finish()
}

/// An [`HttpRequest`] of its parts, with the body of `body` / `isBase64Encoded`.
fn http_request(
    method: &wsgw_core::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Option<String>,
    is_base64: bool,
) -> Result<HttpRequest, EventError> {
    let body = decode_body(body, is_base64)?.unwrap_or_default();
    let mut request = HttpRequest::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Decodes an API Gateway REST proxy event (`ApiGatewayProxyRequest`, payload 1.0) into
/// an [`HttpRequest`]: the method, `path` with every value of the query string
/// (`multiValueQueryStringParameters`), every value of every header
/// (`multiValueHeaders`, completed by `headers`), the body. Its extensions are
/// [`HttpEventFormat::RestApi`] and the event's `requestContext`
/// ([`ApiGatewayProxyRequestContext`](aws_lambda_events::apigw::ApiGatewayProxyRequestContext)).
///
/// ```
/// use serde_json::json;
/// use wsgw_core::HttpRequestExt;
///
/// let event = json!({
///     "httpMethod": "GET",
///     "path": "/history",
///     "multiValueQueryStringParameters": { "device_id": ["a", "b"] },
///     "multiValueHeaders": { "X-Tag": ["one", "two"] },
///     "requestContext": { "stage": "prod", "httpMethod": "GET" }
/// });
/// let request = wsgw_aws::lambda::decode_rest_event(event).unwrap();
/// assert_eq!(request.uri(), "/history?device_id=a&device_id=b");
/// assert_eq!(request.query_params("device_id"), ["a", "b"]);
/// assert_eq!(request.headers().get_all("x-tag").iter().count(), 2);
/// ```
pub fn decode_rest_event(raw: Value) -> Result<HttpRequest, EventError> {
    let query = rest_query_string(&raw);
    let event: ApiGatewayProxyRequest = from_event(raw, "REST proxy")?;
    let uri = request_uri(event.path.as_deref().unwrap_or("/"), &query)?;
    let mut headers = event.multi_value_headers;
    for (name, value) in &event.headers {
        if !headers.contains_key(name) {
            headers.append(name, value.clone());
        }
    }
    let mut request = http_request(
        &event.http_method,
        uri,
        headers,
        event.body,
        event.is_base64_encoded,
    )?;
    request.extensions_mut().insert(HttpEventFormat::RestApi);
    request.extensions_mut().insert(event.request_context);
    Ok(request)
}

/// Decodes an HTTP API event of payload format 2.0, or a Lambda Function URL event (the
/// same format), into an [`HttpRequest`], so that an HTTP route answers it as it answers
/// the REST API's event: the method of `requestContext.http`; the path of `rawPath`
/// without the `/{stage}` an HTTP API puts before it on a named stage; the query of
/// `rawQueryString` as the client sent it (a name given twice keeps both values); the
/// headers (API Gateway joins repeated ones with commas), `cookies` as one `cookie`
/// header; the body. Its extensions are [`HttpEventFormat::PayloadV2`] and the event's
/// `requestContext`
/// ([`ApiGatewayV2httpRequestContext`](aws_lambda_events::apigw::ApiGatewayV2httpRequestContext)).
///
/// ```
/// use serde_json::json;
/// use wsgw_core::HttpRequestExt;
///
/// let event = json!({
///     "version": "2.0",
///     "routeKey": "GET /history",
///     "rawPath": "/prod/history",
///     "rawQueryString": "device_id=esp32-01&limit=5&limit=10",
///     "cookies": ["a=1", "b=2"],
///     "headers": { "accept": "application/json" },
///     "requestContext": {
///         "stage": "prod",
///         "timeEpoch": 1583348638390_i64,
///         "http": { "method": "GET", "path": "/prod/history", "sourceIp": "203.0.113.10" }
///     },
///     "isBase64Encoded": false
/// });
/// let request = wsgw_aws::lambda::decode_http_v2_event(event).unwrap();
/// assert_eq!((request.method().as_str(), request.uri().path()), ("GET", "/history"));
/// assert_eq!(request.query_params("limit"), ["5", "10"]);
/// assert_eq!(request.header_text("Accept"), Some("application/json"));
/// assert_eq!(request.header_text("cookie"), Some("a=1; b=2"));
/// ```
pub fn decode_http_v2_event(raw: Value) -> Result<HttpRequest, EventError> {
    let event: ApiGatewayV2httpRequest = from_event(raw, "HTTP API (payload 2.0)")?;
    let context = &event.request_context;
    let mut path = event
        .raw_path
        .clone()
        .or_else(|| context.http.path.clone())
        .unwrap_or_else(|| "/".to_owned());
    if let Some(stage) = context
        .stage
        .as_deref()
        .filter(|stage| *stage != "$default")
    {
        let within_stage = path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(stage))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .map(|rest| if rest.is_empty() { "/" } else { rest }.to_owned());
        if let Some(within_stage) = within_stage {
            path = within_stage;
        }
    }
    let uri = request_uri(&path, event.raw_query_string.as_deref().unwrap_or(""))?;
    let mut headers = event.headers;
    if let Some(cookies) = event.cookies.as_ref().filter(|cookies| !cookies.is_empty()) {
        if let Ok(cookie) = HeaderValue::try_from(cookies.join("; ")) {
            headers.insert(COOKIE, cookie);
        }
    }
    let mut request = http_request(
        &event.request_context.http.method,
        uri,
        headers,
        event.body,
        event.is_base64_encoded,
    )?;
    request.extensions_mut().insert(HttpEventFormat::PayloadV2);
    request.extensions_mut().insert(event.request_context);
    Ok(request)
}

/// Whether `raw` is an HTTP API payload 2.0 or Function URL request (not an HTTP API
/// Lambda authorizer's event, which has a `type`).
fn is_http_v2_event(raw: &Value) -> bool {
    raw.get("version").and_then(Value::as_str) == Some("2.0")
        && raw.pointer("/requestContext/http/method").is_some()
        && raw.get("type").is_none()
}

fn proxy_response(
    status: u16,
    headers: &BTreeMap<String, String>,
    body: Option<&Payload>,
) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers.insert(name, value);
        }
    }
    match body {
        Some(body) => match body.as_text() {
            Some(text) => response.body = Some(Body::Text(text.to_owned())),
            None => {
                response.body = Some(Body::Text(STANDARD.encode(body.as_bytes())));
                response.is_base64_encoded = true;
            }
        },
        None => response.body = None,
    }
    response
}

/// The proxy response for a route's [`Reply`]: its status, headers (on `$connect`,
/// `Sec-WebSocket-Protocol`) and the body, which API Gateway sends back to the caller on
/// a route with a route response. [`Router::handle`] has already dropped the body of a
/// route that is not two-way, so a one-way route's response carries none, as it would
/// be dropped deployed.
pub fn encode_reply(reply: &Reply) -> ApiGatewayProxyResponse {
    proxy_response(reply.status, &reply.headers, reply.body.as_ref())
}

/// The answer to an HTTP event, in the format the event came in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ProxyResponse {
    /// Payload 1.0: the answer to a REST API event or a WebSocket route.
    V1(ApiGatewayProxyResponse),
    /// Payload 2.0: the answer to an HTTP API or Function URL event.
    V2(ApiGatewayV2httpResponse),
}

impl ProxyResponse {
    /// The status code.
    pub fn status_code(&self) -> i64 {
        match self {
            ProxyResponse::V1(response) => response.status_code,
            ProxyResponse::V2(response) => response.status_code,
        }
    }

    /// The body as the answer carries it (base64 text when
    /// [`is_base64_encoded`](Self::is_base64_encoded)).
    pub fn body(&self) -> Option<&Body> {
        match self {
            ProxyResponse::V1(response) => response.body.as_ref(),
            ProxyResponse::V2(response) => response.body.as_ref(),
        }
    }

    /// Whether the body is base64-encoded binary.
    pub fn is_base64_encoded(&self) -> bool {
        match self {
            ProxyResponse::V1(response) => response.is_base64_encoded,
            ProxyResponse::V2(response) => response.is_base64_encoded,
        }
    }
}

/// The body and `isBase64Encoded` of a payload: text as it is, binary base64-encoded,
/// none for an empty body.
fn response_body(body: &Payload) -> (Option<Body>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match body.as_text() {
        Some(text) => (Some(Body::Text(text.to_owned())), false),
        None => (Some(Body::Text(STANDARD.encode(body.as_bytes()))), true),
    }
}

/// The proxy response for an HTTP route's [`HttpResponse`], in `format`:
///
/// - [`HttpEventFormat::RestApi`]: a header with one value in `headers`, one with
///   several (two `set-cookie`) in `multiValueHeaders` with all of them (API Gateway
///   merges the two maps, so a name is in one only);
/// - [`HttpEventFormat::PayloadV2`]: `set-cookie` values in `cookies`, other repeated
///   headers joined with commas, as payload 2.0 has no `multiValueHeaders`.
///
/// A binary body goes base64-encoded with `isBase64Encoded`.
///
/// ```
/// use wsgw_aws::lambda::{encode_http_response, HttpEventFormat, ProxyResponse};
/// use wsgw_core::{http, HttpResponse, Payload};
///
/// let response: HttpResponse = http::Response::builder()
///     .header("set-cookie", "a=1")
///     .header("set-cookie", "b=2")
///     .body(Payload::binary(vec![0xff, 0x00]))
///     .unwrap();
/// let ProxyResponse::V2(v2) = encode_http_response(&response, HttpEventFormat::PayloadV2) else {
///     unreachable!()
/// };
/// assert_eq!(v2.cookies, ["a=1", "b=2"]);
/// assert!(v2.is_base64_encoded);
/// ```
pub fn encode_http_response(response: &HttpResponse, format: HttpEventFormat) -> ProxyResponse {
    let (body, is_base64_encoded) = response_body(response.body());
    let status_code = i64::from(response.status().as_u16());
    // Header values that are not text cannot travel in the JSON answer.
    let texts = |name: &HeaderName| -> Vec<&HeaderValue> {
        response
            .headers()
            .get_all(name)
            .iter()
            .filter(|value| value.to_str().is_ok())
            .collect()
    };
    match format {
        HttpEventFormat::RestApi => {
            let mut encoded = ApiGatewayProxyResponse::default();
            encoded.status_code = status_code;
            for name in response.headers().keys() {
                let values = texts(name);
                let target = if values.len() == 1 {
                    &mut encoded.headers
                } else {
                    &mut encoded.multi_value_headers
                };
                for value in values {
                    target.append(name.clone(), value.clone());
                }
            }
            encoded.body = body;
            encoded.is_base64_encoded = is_base64_encoded;
            ProxyResponse::V1(encoded)
        }
        HttpEventFormat::PayloadV2 => {
            let mut encoded = ApiGatewayV2httpResponse::default();
            encoded.status_code = status_code;
            for name in response.headers().keys() {
                let values: Vec<&str> = texts(name)
                    .into_iter()
                    .filter_map(|value| value.to_str().ok())
                    .collect();
                if *name == SET_COOKIE {
                    encoded.cookies = values.into_iter().map(str::to_owned).collect();
                } else if let Ok(joined) = HeaderValue::try_from(values.join(", ")) {
                    encoded.headers.insert(name.clone(), joined);
                }
            }
            encoded.body = body;
            encoded.is_base64_encoded = is_base64_encoded;
            ProxyResponse::V2(encoded)
        }
    }
}

/// A route handler panicked. The release profile unwinds (`panic = "unwind"`), so the
/// glue catches the panic: the invocation fails with `errorType` `wsgw::Panic` (API
/// Gateway answers the caller "Internal server error", as the LocalGateway does) and the
/// function instance keeps serving the next invocations.
#[derive(Debug, thiserror::Error)]
#[error("the handler panicked: {message}")]
pub struct HandlerPanicked {
    /// The panic's message (`"Box<dyn Any>"` when it was not a string).
    pub message: String,
}

impl HandlerPanicked {
    fn from_payload(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        HandlerPanicked { message }
    }
}

/// Why an invocation failed. Lambda reports it as the invocation's error, in CloudWatch
/// and to API Gateway (which answers the caller "Internal server error"), with
/// [`error_type`](Self::error_type) as `errorType` and the message as `errorMessage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvocationError {
    /// The event is not one API Gateway sends.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A route handler returned an error, or panicked ([`HandlerPanicked`] inside
    /// [`wsgw_core::Error::Handler`]).
    #[error(transparent)]
    Route(#[from] wsgw_core::Error),
    /// A REQUEST authorizer event could not be answered.
    #[error(transparent)]
    Authorizer(#[from] crate::authorizer::AuthorizerError),
    /// The authorizer refused the token: the message is exactly `Unauthorized`, which
    /// makes API Gateway answer 401.
    #[error(transparent)]
    Unauthorized(#[from] crate::authorizer::Unauthorized),
    /// The response could not be written as JSON.
    #[error("cannot write the response as JSON: {0}")]
    Response(#[source] serde_json::Error),
}

/// The `errorType` of a wsgw error: `wsgw::` and the error's kind.
fn error_kind(error: &wsgw_core::Error) -> &'static str {
    use wsgw_core::Error;
    match error {
        Error::Gone { .. } => "wsgw::Gone",
        Error::Throttled { .. } => "wsgw::Throttled",
        Error::Timeout { .. } => "wsgw::Timeout",
        Error::PayloadTooLarge { .. } => "wsgw::PayloadTooLarge",
        Error::NotFound { .. } => "wsgw::NotFound",
        Error::Precondition { .. } => "wsgw::Precondition",
        Error::InvalidInput { .. } => "wsgw::InvalidInput",
        Error::InvalidToken { .. } => "wsgw::InvalidToken",
        Error::Backend { .. } => "wsgw::Backend",
        Error::Handler(source) if source.downcast_ref::<HandlerPanicked>().is_some() => {
            "wsgw::Panic"
        }
        Error::Handler(_) => "wsgw::Handler",
        Error::Json(_) => "wsgw::Json",
        // The router answers a rejection itself; one reaching Lambda came from elsewhere.
        Error::Rejected(_) => "wsgw::Rejected",
        _ => "wsgw::Error",
    }
}

impl InvocationError {
    /// The invocation's `errorType`: `wsgw::InvalidEvent` for an event API Gateway would
    /// not send; for a route's error its kind, `wsgw::Gone`, `wsgw::Throttled`,
    /// `wsgw::Timeout`, `wsgw::PayloadTooLarge`, `wsgw::NotFound`, `wsgw::Precondition`,
    /// `wsgw::InvalidInput`, `wsgw::InvalidToken`, `wsgw::Backend`, `wsgw::Json` (a
    /// server-side serialisation failure), `wsgw::Handler` (an application error) or
    /// `wsgw::Panic`; `wsgw::Unauthorized` for a refused
    /// token; `wsgw::Internal` when the response could not be written.
    ///
    /// ```
    /// use wsgw_aws::lambda::InvocationError;
    /// use wsgw_core::{ConnectionId, Error};
    ///
    /// let gone = InvocationError::from(Error::Gone { connection_id: ConnectionId::new("abc=") });
    /// assert_eq!(gone.error_type(), "wsgw::Gone");
    /// assert_eq!(gone.to_string(), "connection abc= is gone");
    /// ```
    pub fn error_type(&self) -> &'static str {
        use crate::authorizer::AuthorizerError;
        match self {
            InvocationError::Event(_)
            | InvocationError::Authorizer(
                AuthorizerError::Malformed(_) | AuthorizerError::Event(_),
            ) => "wsgw::InvalidEvent",
            InvocationError::Route(error)
            | InvocationError::Authorizer(AuthorizerError::Failed(error)) => error_kind(error),
            InvocationError::Unauthorized(_) => "wsgw::Unauthorized",
            _ => "wsgw::Internal",
        }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// A decoded API Gateway event: what [`LambdaApp`] hands to the router.
#[derive(Debug, Clone)]
// One per invocation, decoded and moved once: boxing the request would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ApiGatewayEvent {
    /// A WebSocket API event (`requestContext.eventType` is set).
    WebSocket(Request),
    /// An HTTP request: a REST API proxy event (`httpMethod` is set), an HTTP API
    /// payload 2.0 or a Function URL event (`version` 2.0 and `requestContext.http`).
    Rest(HttpRequest),
}

/// Decodes a raw Lambda event exactly as Lambda mode does: a WebSocket event when
/// `requestContext.eventType` is present, a REST proxy event when `httpMethod` is, an HTTP
/// API (payload 2.0) or Function URL event when `version` is 2.0 with
/// `requestContext.http` ([`decode_http_v2_event`]), otherwise [`EventError::Unrecognised`]; a REQUEST authorizer event is
/// [`EventError::AuthorizerEvent`] (it must never run as `$connect`).
pub fn decode_event(raw: Value) -> Result<ApiGatewayEvent, EventError> {
    if crate::authorizer::is_authorizer_event(&raw) {
        Err(EventError::AuthorizerEvent)
    } else if raw.pointer("/requestContext/eventType").is_some() {
        decode_websocket_event(raw).map(ApiGatewayEvent::WebSocket)
    } else if raw.get("httpMethod").is_some() {
        decode_rest_event(raw).map(ApiGatewayEvent::Rest)
    } else if is_http_v2_event(&raw) {
        decode_http_v2_event(raw).map(ApiGatewayEvent::Rest)
    } else {
        Err(EventError::Unrecognised)
    }
}

/// What one invocation produced: the response (or the handler's error, which Lambda
/// reports as the invocation's error) and its metrics documents.
#[derive(Debug)]
#[non_exhaustive]
pub struct Handled {
    /// The proxy response, or the error API Gateway answers as an integration failure.
    pub response: Result<ProxyResponse, wsgw_core::Error>,
    /// The invocation's CloudWatch EMF documents (empty when metrics are off).
    pub metrics: Vec<Value>,
}

/// A router packaged as a Lambda function handler, with the backends it is served on.
///
/// Each request is handled with the app's store and history and a sink bound to the
/// request's own Management API endpoint (`https://{domainName}/{stage}`, or a fixed
/// one: see [`ManagementApi`]), so two stages or domains served by one function post to
/// their own endpoints.
///
/// ```no_run
/// use std::sync::Arc;
/// use wsgw_aws::lambda::LambdaApp;
/// use wsgw_aws::DynamoStore;
/// use wsgw_core::{Context, Request, Router};
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     // Two-way: the template's `ping` route has a route response.
///     let router = Router::new().two_way_route("ping", |_ctx: Context, _req: Request| async { Ok("pong") });
///     let store = DynamoStore::builder().with_table("connections").build().await?;
///     LambdaApp::new(router).with_store(Arc::new(store)).run().await
/// }
/// ```
///
/// Each invocation writes one CloudWatch Embedded Metric Format line to stdout (see
/// [`metrics`](crate::metrics)): on by default inside Lambda, configured by
/// environment variables, or set with [`with_metrics`](Self::with_metrics).
pub struct LambdaApp<S = ()> {
    router: Router<S>,
    backends: Backends,
    sinks: Sinks,
    metrics: Option<Arc<Emf>>,
}

/// Where each request's sink comes from.
#[derive(Clone)]
enum Sinks {
    /// The Management API at the request's endpoint (loaded from the environment on
    /// first use unless given).
    Management(Arc<OnceCell<ManagementApi>>),
    /// The backends' sink, for every request (`invoke`'s recording sink).
    Fixed,
}

impl<S> Clone for LambdaApp<S> {
    fn clone(&self) -> Self {
        LambdaApp {
            router: self.router.clone(),
            backends: self.backends.clone(),
            sinks: self.sinks.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> LambdaApp<S> {
    /// Wraps a router. It has no store and no history until given
    /// ([`with_store`](Self::with_store), [`with_history`](Self::with_history), or
    /// [`from_env`](Self::from_env)): a handler using them gets an error naming what to
    /// configure. Each request's sink is the Management API at the request's endpoint
    /// ([`ManagementApi::from_env`] on first use). Metrics follow [`Emf::from_env`]: on
    /// inside Lambda unless `WSGW_METRICS=off`; an invalid configuration is logged and
    /// turns them off (use [`with_metrics`](Self::with_metrics) with `Emf::from_env()?`
    /// to fail instead, as [`from_env`](Self::from_env) does).
    pub fn new(router: Router<S>) -> Self {
        let metrics = Emf::from_env().unwrap_or_else(|error| {
            tracing::error!(%error, "metrics are off: invalid configuration");
            None
        });
        let store = NotConfigured::new(
            "connection store",
            format!("set {CONNECTIONS_TABLE_ENV} (or give one with LambdaApp::with_store)"),
        );
        let history = NotConfigured::new(
            "history store",
            format!("set {HISTORY_TABLE_ENV} (or give one with LambdaApp::with_history)"),
        );
        let unbound = NotConfigured::new("sink", "each request's sink is bound to its endpoint");
        LambdaApp {
            router,
            backends: Backends::new(Arc::new(store), Arc::new(unbound))
                .with_history(Arc::new(history)),
            sinks: Sinks::Management(Arc::new(OnceCell::new())),
            metrics: metrics.map(Arc::new),
        }
    }

    /// The usual deployed function: a [`DynamoStore`](crate::DynamoStore) when
    /// `WSGW_CONNECTIONS_TABLE` is set, a [`DynamoHistory`](crate::DynamoHistory) when
    /// `WSGW_HISTORY_TABLE` is (each unset one is not configured, see
    /// [`new`](Self::new)), the Management API from the environment, and metrics from
    /// the environment, an invalid configuration being an error.
    pub async fn from_env(router: Router<S>) -> Result<Self, wsgw_core::BoxError> {
        let metrics = Emf::from_env()?;
        let mut app = LambdaApp::new(router)
            .with_management(ManagementApi::from_env().await)
            .with_metrics(metrics);
        if crate::config::non_empty_env(CONNECTIONS_TABLE_ENV).is_some() {
            let store = crate::DynamoStoreBuilder::from_env().build().await?;
            let client = store.client().clone();
            app = app.with_store(Arc::new(store));
            if crate::config::non_empty_env(HISTORY_TABLE_ENV).is_some() {
                let history = crate::DynamoHistoryBuilder::from_env()
                    .with_client(client)
                    .build()
                    .await?;
                app = app.with_history(Arc::new(history));
            }
        } else if crate::config::non_empty_env(HISTORY_TABLE_ENV).is_some() {
            let history = crate::DynamoHistoryBuilder::from_env().build().await?;
            app = app.with_history(Arc::new(history));
        }
        Ok(app)
    }

    /// Keeps connections in `store`.
    pub fn with_store(mut self, store: Arc<dyn ConnectionStore>) -> Self {
        self.backends = self.backends.with_store(store);
        self
    }

    /// Keeps history in `history`.
    pub fn with_history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.backends = self.backends.with_history(history);
        self
    }

    /// Takes each request's sink from `api` (at the request's endpoint, or `api`'s
    /// fixed one).
    pub fn with_management(mut self, api: ManagementApi) -> Self {
        self.sinks = Sinks::Management(Arc::new(OnceCell::new_with(Some(api))));
        self
    }

    /// Sends every request's messages through `sink` instead of the Management API
    /// (`invoke` records them this way).
    pub fn with_sink(mut self, sink: Arc<dyn MessageSink>) -> Self {
        self.backends = self.backends.with_sink(sink);
        self.sinks = Sinks::Fixed;
        self
    }

    /// The backends of a request for `domain_name` and `stage`: the app's store and
    /// history, and the sink bound to that endpoint.
    async fn backends_for(&self, domain_name: &str, stage: &str) -> Backends {
        match &self.sinks {
            Sinks::Fixed => self.backends.clone(),
            Sinks::Management(api) => {
                let api = api.get_or_init(ManagementApi::from_env).await;
                self.backends
                    .clone()
                    .with_sink(api.sink_for_request(domain_name, stage))
            }
        }
    }

    /// Writes each invocation's metrics with `metrics`, or none with `None`.
    pub fn with_metrics(mut self, metrics: Option<Emf>) -> Self {
        self.metrics = metrics.map(Arc::new);
        self
    }

    /// The router.
    pub fn router(&self) -> &Router<S> {
        &self.router
    }

    /// Handles one raw Lambda event: a WebSocket event goes to [`Router::handle`], a REST
    /// proxy event to [`Router::handle_http`]. A handler error is returned as the
    /// invocation's error, so API Gateway answers the client as it does for any failed
    /// integration; so is a handler's panic ([`HandlerPanicked`]). The invocation's
    /// metrics line is written before returning.
    pub async fn handle(&self, raw: Value) -> Result<ProxyResponse, InvocationError> {
        self.handle_request(raw, None).await
    }

    async fn handle_request(
        &self,
        raw: Value,
        request_id: Option<&str>,
    ) -> Result<ProxyResponse, InvocationError> {
        let handled = self.handle_event(decode_event(raw)?, request_id).await;
        if let Some(emf) = &self.metrics {
            if let Err(error) = emf.write(&handled.metrics) {
                tracing::warn!(%error, "could not write the metrics line");
            }
        }
        handled.response.map_err(Into::into)
    }

    /// Handles one decoded event and returns its response and metrics documents
    /// without writing anything: what [`handle`](Self::handle) does, for tools that show
    /// the outcome themselves (`invoke`).
    pub async fn handle_event(&self, event: ApiGatewayEvent, request_id: Option<&str>) -> Handled {
        let timestamp = Utc::now();
        let recorder = Arc::new(InvocationMetrics::new());
        let observer: Arc<dyn Metrics> = recorder.clone();
        let mut info = InvocationInfo::default();
        if let Some(request_id) = request_id {
            info.properties
                .insert("RequestId".to_owned(), request_id.to_owned());
        }
        let response = match event {
            ApiGatewayEvent::WebSocket(request) => {
                let backends = self
                    .backends_for(&request.domain_name, &request.stage)
                    .await;
                info.event_type = format!("{:?}", request.event_type).to_ascii_uppercase();
                info.stage = Some(request.stage.clone());
                info.properties
                    .insert("ConnectionId".to_owned(), request.connection_id.to_string());
                if let Some(message_id) = &request.message_id {
                    info.properties
                        .insert("MessageId".to_owned(), message_id.clone());
                }
                let started = std::time::Instant::now();
                let (connection_id, route_key) =
                    (request.connection_id.clone(), request.route_key.clone());
                let counter = match request.event_type {
                    wsgw_core::EventType::Connect => Counter::Connects,
                    wsgw_core::EventType::Disconnect => Counter::Disconnects,
                    wsgw_core::EventType::Message => Counter::Messages,
                };
                let handling = async {
                    if self.metrics.is_some() {
                        self.router
                            .handle_observed(&backends, request, observer.clone())
                            .await
                    } else {
                        self.router.handle(&backends, request).await
                    }
                };
                let outcome = AssertUnwindSafe(handling)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|payload| {
                        // The router could not count what it did not finish.
                        observer.count(counter, &route_key, 1);
                        observer.count(Counter::HandlerErrors, &route_key, 1);
                        observer.latency(&route_key, started.elapsed());
                        Err(wsgw_core::Error::handler(HandlerPanicked::from_payload(
                            &*payload,
                        )))
                    });
                let latency_ms = started.elapsed().as_secs_f64() * 1e3;
                match outcome {
                    Ok(reply) => {
                        tracing::info!(%connection_id, route = %route_key, status = reply.status, latency_ms, "route");
                        Ok(ProxyResponse::V1(encode_reply(&reply)))
                    }
                    Err(error) => {
                        tracing::error!(%connection_id, route = %route_key, %error, latency_ms, "route failed");
                        Err(error)
                    }
                }
            }
            ApiGatewayEvent::Rest(request) => {
                info.event_type = "REST".to_owned();
                let path = request.uri().path().to_owned();
                let format = request
                    .extensions()
                    .get::<HttpEventFormat>()
                    .copied()
                    .unwrap_or(HttpEventFormat::RestApi);
                // A REST event's domain is the REST API's: only a fixed endpoint reaches
                // the WebSocket API's connections.
                let backends = self.backends_for("", "").await;
                let started = std::time::Instant::now();
                let route = format!("{} {path}", request.method());
                let handling = async {
                    if self.metrics.is_some() {
                        self.router
                            .handle_http_observed(&backends, request, observer.clone())
                            .await
                    } else {
                        self.router.handle_http(&backends, request).await
                    }
                };
                let outcome = AssertUnwindSafe(handling)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|payload| {
                        observer.count(Counter::HttpRequests, &route, 1);
                        observer.count(Counter::HandlerErrors, &route, 1);
                        observer.latency(&route, started.elapsed());
                        Err(wsgw_core::Error::handler(HandlerPanicked::from_payload(
                            &*payload,
                        )))
                    });
                match outcome {
                    Ok(response) => Ok(encode_http_response(&response, format)),
                    Err(error) => {
                        tracing::error!(%path, %error, "REST route failed");
                        Err(error)
                    }
                }
            }
        };
        let metrics = match &self.metrics {
            Some(emf) => emf.documents(&recorder, &info, timestamp),
            None => Vec::new(),
        };
        Handled { response, metrics }
    }

    /// Runs the Lambda runtime loop until the process is stopped.
    ///
    /// The loop runs as a task of the tokio runtime (spawned), not on the thread awaiting
    /// this future: under `#[tokio::main]` that is the thread blocking on `main`, outside
    /// the worker pool, so every Runtime API and `@connections` exchange of every event
    /// would hop between it and the workers driving the sockets (a futex wake-up and a
    /// context switch each way; bench/FINDINGS.md measures the difference).
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        let authorizer_only = crate::authorizer::is_authorizer_role();
        let runtime_loop = lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let app = self.clone();
            async move {
                app.handle_any(
                    event.payload,
                    Some(&event.context.request_id),
                    authorizer_only,
                )
                .await
            }
        }));
        // The task logs where the caller's future would have: its subscriber and span.
        let runtime_loop = runtime_loop.in_current_span().with_current_subscriber();
        match tokio::spawn(runtime_loop).await {
            Ok(result) => result,
            // A panic of the loop itself (handlers' panics are caught per event) goes on
            // unwinding here, as it did before the loop was spawned.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(error.into()),
        }
    }

    /// One invocation: a REQUEST authorizer event runs the router's authorizer and is
    /// answered with an IAM policy (see [`authorizer`](crate::authorizer)); any other
    /// event goes to the routes, unless `authorizer_only`.
    async fn handle_any(
        &self,
        raw: Value,
        request_id: Option<&str>,
        authorizer_only: bool,
    ) -> Result<Value, InvocationError> {
        if crate::authorizer::is_authorizer_event(&raw) {
            let backends = self.backends_for("", "").await;
            return crate::authorizer::handle_authorizer_event(&self.router, &backends, raw).await;
        }
        if authorizer_only {
            return Err(crate::authorizer::AuthorizerError::Malformed(
                "this function runs with WSGW_LAMBDA_ROLE=authorizer and answers REQUEST authorizer events only".to_owned(),
            )
            .into());
        }
        let response = self.handle_request(raw, request_id).await?;
        serde_json::to_value(response).map_err(InvocationError::Response)
    }
}

/// `requestContext.requestTime` as API Gateway writes it: `09/Feb/2024:18:23:28 +0000`.
fn request_time_text(at: DateTime<Utc>) -> String {
    at.format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// Headers as API Gateway sends them: single-valued and multi-valued.
fn header_fields(headers: &BTreeMap<String, String>) -> (Value, Value) {
    let single: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let multi: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                Value::Array(vec![Value::String(value.clone())]),
            )
        })
        .collect();
    (Value::Object(single), Value::Object(multi))
}

/// The `requestContext` of a WebSocket event for `request`.
fn websocket_request_context(request: &Request) -> serde_json::Map<String, Value> {
    let event_type = match request.event_type {
        EventType::Connect => "CONNECT",
        EventType::Message => "MESSAGE",
        EventType::Disconnect => "DISCONNECT",
    };
    let mut identity = serde_json::Map::new();
    if let Some(source_ip) = &request.source_ip {
        identity.insert("sourceIp".to_owned(), Value::String(source_ip.clone()));
    }
    if let Some(user_agent) = &request.user_agent {
        identity.insert("userAgent".to_owned(), Value::String(user_agent.clone()));
    }
    let mut context = serde_json::Map::new();
    let mut put = |name: &str, value: Value| {
        context.insert(name.to_owned(), value);
    };
    put("routeKey", Value::String(request.route_key.clone()));
    put("eventType", Value::String(event_type.to_owned()));
    put(
        "extendedRequestId",
        Value::String(request.request_id.clone()),
    );
    put(
        "requestTime",
        Value::String(request_time_text(request.request_time)),
    );
    put(
        "messageDirection",
        Value::String(request.message_direction.clone()),
    );
    put("stage", Value::String(request.stage.clone()));
    // API Gateway always sends it; a request without one is its connection's first.
    let connected_at = request.connected_at.unwrap_or(request.request_time);
    put("connectedAt", Value::from(connected_at.timestamp_millis()));
    put(
        "requestTimeEpoch",
        Value::from(request.request_time.timestamp_millis()),
    );
    put("identity", Value::Object(identity));
    put("requestId", Value::String(request.request_id.clone()));
    put("domainName", Value::String(request.domain_name.clone()));
    put(
        "connectionId",
        Value::String(request.connection_id.to_string()),
    );
    put("apiId", Value::String(request.api_id.clone()));
    if let Some(message_id) = &request.message_id {
        put("messageId", Value::String(message_id.clone()));
    }
    if let Some(disconnect) = &request.disconnect {
        put("disconnectStatusCode", Value::from(disconnect.status_code));
        put("disconnectReason", Value::String(disconnect.reason.clone()));
    }
    if let Some(authorizer) = &request.authorizer {
        put("authorizer", authorizer.clone());
    }
    context
}

/// The API Gateway WebSocket event (`ApiGatewayWebsocketProxyRequest`) that invokes a
/// route's function for `request`, shaped as API Gateway sends it: `CONNECT` with the
/// upgrade's headers and query string (single- and multi-valued), `MESSAGE` with the
/// body (`isBase64Encoded` for binary), `DISCONNECT` with `disconnectStatusCode` and
/// `disconnectReason`; `requestContext` with `routeKey`, `eventType`, `connectionId`,
/// `connectedAt` (the request time when the request has none), `requestTimeEpoch`,
/// `requestTime`, `messageId` (MESSAGE), `identity`,
/// `domainName`, `stage`, `apiId`, `requestId`, `messageDirection` and the authorizer's
/// context. [`decode_websocket_event`] reads it back into the same request.
///
/// ```
/// use wsgw_aws::lambda::{decode_websocket_event, encode_websocket_event};
/// use wsgw_core::{Payload, Request};
///
/// let request = Request::message("c-1=".into(), Payload::text(r#"{"action":"ping"}"#))
///     .with_route_key("ping")
///     .with_endpoint("abc123.execute-api.us-east-1.amazonaws.com", "production");
/// let event = encode_websocket_event(&request);
/// assert_eq!(event["requestContext"]["eventType"], "MESSAGE");
/// assert_eq!(event["body"], r#"{"action":"ping"}"#);
/// assert_eq!(decode_websocket_event(event).unwrap().route_key, "ping");
/// ```
pub fn encode_websocket_event(request: &Request) -> Value {
    let mut event = serde_json::Map::new();
    if request.event_type != EventType::Message {
        let (headers, multi) = header_fields(&request.headers);
        event.insert("headers".to_owned(), headers);
        event.insert("multiValueHeaders".to_owned(), multi);
    }
    if request.event_type == EventType::Connect && !request.query.is_empty() {
        let (query, multi) = header_fields(&request.query);
        event.insert("queryStringParameters".to_owned(), query);
        event.insert("multiValueQueryStringParameters".to_owned(), multi);
    }
    event.insert(
        "requestContext".to_owned(),
        Value::Object(websocket_request_context(request)),
    );
    let is_base64 = match &request.body {
        Some(body) => match body.as_text() {
            Some(text) => {
                event.insert("body".to_owned(), Value::String(text.to_owned()));
                false
            }
            None => {
                event.insert(
                    "body".to_owned(),
                    Value::String(STANDARD.encode(body.as_bytes())),
                );
                true
            }
        },
        None => false,
    };
    event.insert("isBase64Encoded".to_owned(), Value::Bool(is_base64));
    Value::Object(event)
}

/// Where a REST request was received: what API Gateway puts in a REST proxy event's
/// `requestContext` besides the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestEventContext {
    /// The matched resource path (`/history`, `/devices/{device_id}`): `resource` and
    /// `requestContext.resourcePath`.
    pub resource: String,
    /// `requestContext.stage`.
    pub stage: String,
    /// `requestContext.requestId`.
    pub request_id: String,
    /// `requestContext.apiId`.
    pub api_id: String,
    /// `requestContext.identity.sourceIp`, when known.
    pub source_ip: Option<String>,
}

impl RestEventContext {
    /// The context of a request to `resource` at `stage` of the API `api_id`.
    pub fn new(
        resource: impl Into<String>,
        stage: impl Into<String>,
        request_id: impl Into<String>,
        api_id: impl Into<String>,
    ) -> Self {
        RestEventContext {
            resource: resource.into(),
            stage: stage.into(),
            request_id: request_id.into(),
            api_id: api_id.into(),
            source_ip: None,
        }
    }
}

/// The API Gateway REST proxy event (payload 1.0, `ApiGatewayProxyRequest`) that invokes
/// a REST route's function for `request`: `httpMethod`, `path`, `resource`,
/// `pathParameters`, `queryStringParameters` and `headers` with their `multiValue…`
/// forms (`null` when empty, as API Gateway sends them), `body` (base64 with
/// `isBase64Encoded` for binary), and `requestContext` with `resourcePath`,
/// `httpMethod`, `path` (`/{stage}{path}`), `stage`, `requestId`, `apiId`,
/// `requestTimeEpoch` and `identity.sourceIp`. [`decode_rest_event`] reads it back.
///
/// ```
/// use wsgw_aws::lambda::{decode_rest_event, encode_rest_event, RestEventContext};
/// use wsgw_core::{http, HttpRequestExt, Payload, PathParams};
///
/// let mut request = http::Request::get("/devices/esp32-01?limit=10&tag=a&tag=b")
///     .body(Payload::default())
///     .unwrap();
/// request.extensions_mut().insert(PathParams([("device_id".into(), "esp32-01".into())].into()));
/// let context = RestEventContext::new("/devices/{device_id}", "production", "r-1", "abc123");
/// let event = encode_rest_event(&request, &context);
/// assert_eq!(event["resource"], "/devices/{device_id}");
/// assert_eq!(event["pathParameters"]["device_id"], "esp32-01");
/// assert_eq!(event["multiValueQueryStringParameters"]["tag"], serde_json::json!(["a", "b"]));
/// assert_eq!(event["requestContext"]["stage"], "production");
/// assert_eq!(decode_rest_event(event).unwrap().query_params("tag"), ["a", "b"]);
/// ```
pub fn encode_rest_event(request: &HttpRequest, context: &RestEventContext) -> Value {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let (headers, multi_headers) = single_and_multi(&headers);
    let (query, multi_query) = single_and_multi(&request.query_pairs());
    let path_parameters = match request.extensions().get::<wsgw_core::PathParams>() {
        Some(params) if !params.0.is_empty() => header_fields(&params.0).0,
        _ => Value::Null,
    };
    let mut identity = serde_json::Map::new();
    if let Some(source_ip) = &context.source_ip {
        identity.insert("sourceIp".to_owned(), Value::String(source_ip.clone()));
    }
    if let Some(agent) = request.header_text("user-agent") {
        identity.insert("userAgent".to_owned(), Value::String(agent.to_owned()));
    }
    let (body, is_base64) = match response_body(request.body()) {
        (Some(Body::Text(text)), is_base64) => (Value::String(text), is_base64),
        _ => (Value::Null, false),
    };
    let path = request.uri().path();
    let method = request.method().as_str();
    serde_json::json!({
        "resource": context.resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters,
        "stageVariables": Value::Null,
        "requestContext": {
            "resourcePath": context.resource,
            "httpMethod": method,
            "path": format!("/{}{}", context.stage, path),
            "stage": context.stage,
            "requestId": context.request_id,
            "apiId": context.api_id,
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": Utc::now().timestamp_millis(),
            "identity": identity,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The API Gateway HTTP API event of payload format 2.0 (`ApiGatewayV2httpRequest`) that
/// invokes an HTTP API route's function for `request`, as HTTP API sends it: `version`
/// `"2.0"`, `routeKey` (`route_key`, like `GET /history`), `rawPath` (`/{stage}{path}`,
/// the bare path at the `$default` stage), `rawQueryString`, `cookies` (the `Cookie`
/// header split, which `headers` then leaves out), `headers` and
/// `queryStringParameters` with repeated values joined by commas, `pathParameters`,
/// `body` (base64 with `isBase64Encoded` for binary), and `requestContext` with
/// `routeKey`, `stage`, `requestId`, `apiId`, `domainName`, `time`, `timeEpoch` and
/// `http` (`method`, `path`, `protocol`, `sourceIp`, `userAgent`). Fields API Gateway
/// leaves out when empty are left out. [`decode_http_v2_event`] reads it back.
///
/// ```
/// use wsgw_aws::lambda::{decode_http_v2_event, encode_http_api_event, RestEventContext};
/// use wsgw_core::{http, HttpRequestExt, Payload};
///
/// let request = http::Request::get("/history?device_id=esp32-01&tag=a&tag=b")
///     .header("cookie", "a=1; b=2")
///     .header("accept", "text/plain")
///     .header("accept", "application/json")
///     .body(Payload::default())
///     .unwrap();
/// let context = RestEventContext::new("/history", "production", "r-1", "abc123");
/// let event = encode_http_api_event(&request, &context, "GET /history");
/// assert_eq!(event["version"], "2.0");
/// assert_eq!(event["rawPath"], "/production/history");
/// assert_eq!(event["queryStringParameters"]["tag"], "a,b");
/// assert_eq!(event["headers"]["accept"], "text/plain,application/json");
/// assert_eq!(event["cookies"], serde_json::json!(["a=1", "b=2"]));
/// assert_eq!(event["requestContext"]["http"]["method"], "GET");
///
/// let decoded = decode_http_v2_event(event).unwrap();
/// assert_eq!(decoded.uri().path(), "/history");
/// assert_eq!(decoded.query_params("tag"), ["a", "b"]);
/// assert_eq!(decoded.header_text("cookie"), Some("a=1; b=2"));
/// ```
pub fn encode_http_api_event(
    request: &HttpRequest,
    context: &RestEventContext,
    route_key: &str,
) -> Value {
    let mut cookies = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in request.headers() {
        let Ok(value) = value.to_str() else { continue };
        if name == COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|cookie| !cookie.is_empty())
                    .map(|cookie| Value::String(cookie.to_owned())),
            );
        } else {
            headers.push((name.as_str().to_owned(), value.to_owned()));
        }
    }
    let path = request.uri().path();
    let raw_path = if context.stage == "$default" {
        path.to_owned()
    } else {
        format!("/{}{}", context.stage, path)
    };
    let method = request.method().as_str();
    let now = Utc::now();
    let mut http = serde_json::json!({
        "method": method,
        "path": raw_path,
        "protocol": "HTTP/1.1",
        "sourceIp": context.source_ip.clone().unwrap_or_else(|| "127.0.0.1".to_owned()),
    });
    if let Some(agent) = request.header_text("user-agent") {
        http["userAgent"] = Value::String(agent.to_owned());
    }
    let domain_name = request
        .header_text("host")
        .unwrap_or("localhost")
        .to_owned();
    let domain_prefix = domain_name.split('.').next().unwrap_or_default().to_owned();
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": request.uri().query().unwrap_or_default(),
        "headers": joined(&headers),
        "requestContext": {
            "apiId": context.api_id,
            "domainName": domain_name,
            "domainPrefix": domain_prefix,
            "http": http,
            "requestId": context.request_id,
            "routeKey": route_key,
            "stage": context.stage,
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    let query = request.query_pairs();
    if !query.is_empty() {
        event["queryStringParameters"] = joined(&query);
    }
    if let Some(params) = request
        .extensions()
        .get::<wsgw_core::PathParams>()
        .filter(|params| !params.0.is_empty())
    {
        event["pathParameters"] = header_fields(&params.0).0;
    }
    if let (Some(Body::Text(body)), is_base64) = response_body(request.body()) {
        event["body"] = Value::String(body);
        event["isBase64Encoded"] = Value::Bool(is_base64);
    }
    event
}

/// An HTTP API event's map: every name once, its repeated values joined by commas (as
/// HTTP API sends `headers` and `queryStringParameters`).
fn joined(pairs: &[(String, String)]) -> Value {
    let mut map = serde_json::Map::new();
    for (name, value) in pairs {
        match map.get_mut(name) {
            Some(Value::String(known)) => {
                known.push(',');
                known.push_str(value);
            }
            _ => {
                map.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    Value::Object(map)
}

/// A REST event's single-valued map (the last value of each name, as API Gateway fills
/// `headers` and `queryStringParameters`) and multi-valued map (every value), `null` when
/// there is nothing.
fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
    if pairs.is_empty() {
        return (Value::Null, Value::Null);
    }
    let mut single = serde_json::Map::new();
    let mut multi = serde_json::Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), Value::String(value.clone()));
        if let Value::Array(values) = multi
            .entry(name.clone())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            values.push(Value::String(value.clone()));
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// What a function answered for a WebSocket route could not be read as a proxy response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// `statusCode` is missing or not an HTTP status.
    #[error("the function's response has statusCode {0}, not an HTTP status")]
    Status(String),
    /// `isBase64Encoded` is true but the body is not base64.
    #[error("the function's response has isBase64Encoded but its body is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// `body` is not a string.
    #[error("the function's response body is {0}, not a string")]
    Body(String),
}

/// The [`Reply`] a function's answer to a WebSocket route stands for, as API Gateway
/// reads a Lambda proxy integration's result: `statusCode` (a non-2xx on `$connect`
/// refuses the handshake with it), `headers` (`Sec-WebSocket-Protocol` on `$connect`),
/// and `body` (base64-decoded when `isBase64Encoded`), which reaches the caller only on a
/// route with a route response. An answer that is not a proxy response (no
/// `statusCode`: `null`, a string, any other JSON) is a 200 whose body is the answer
/// itself (strings as they are, other JSON as its text; `null` none), as API Gateway
/// passes a non-proxy result through.
///
/// ```
/// use serde_json::json;
/// use wsgw_aws::lambda::{decode_proxy_response, encode_reply};
/// use wsgw_core::Reply;
///
/// let reply = Reply::with_body("pong");
/// let answer = serde_json::to_value(encode_reply(&reply)).unwrap();
/// assert_eq!(decode_proxy_response(answer).unwrap(), reply);
/// assert_eq!(decode_proxy_response(json!({"statusCode": 401})).unwrap().status, 401);
/// assert_eq!(decode_proxy_response(json!(null)).unwrap(), Reply::ok());
/// ```
pub fn decode_proxy_response(answer: Value) -> Result<Reply, ResponseError> {
    let Value::Object(mut fields) = answer else {
        return Ok(match answer {
            Value::Null => Reply::ok(),
            Value::String(text) => Reply::with_body(text),
            other => Reply::with_body(other.to_string()),
        });
    };
    let Some(status) = fields.remove("statusCode") else {
        return Ok(Reply::with_body(Value::Object(fields).to_string()));
    };
    let mut reply = Reply::status(proxy_status(&status)?);
    for name in ["headers", "multiValueHeaders"] {
        if let Some(Value::Object(headers)) = fields.get(name) {
            for (header, value) in headers {
                let value = match value {
                    Value::String(text) => Some(text.clone()),
                    Value::Array(values) => {
                        values.last().and_then(Value::as_str).map(str::to_owned)
                    }
                    Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
                    _ => None,
                };
                if let Some(value) = value {
                    reply.headers.insert(header.to_ascii_lowercase(), value);
                }
            }
        }
    }
    reply.body = proxy_body(&mut fields)?;
    Ok(reply)
}

/// A proxy response's `statusCode`.
fn proxy_status(status: &Value) -> Result<u16, ResponseError> {
    match status {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
    .and_then(|status| u16::try_from(status).ok())
    .filter(|status| (100..600).contains(status))
    .ok_or_else(|| ResponseError::Status(status.to_string()))
}

/// A proxy response's `body`, base64-decoded when `isBase64Encoded`.
fn proxy_body(
    fields: &mut serde_json::Map<String, Value>,
) -> Result<Option<Payload>, ResponseError> {
    let is_base64 = fields
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(match fields.remove("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(body)) if is_base64 => Some(Payload::binary(
            STANDARD
                .decode(body.as_bytes())
                .map_err(ResponseError::Base64)?,
        )),
        Some(Value::String(body)) => Some(Payload::text(body)),
        Some(other) => return Err(ResponseError::Body(other.to_string())),
    })
}

/// The [`HttpResponse`] a function's answer to an HTTP route stands for, as API Gateway
/// reads it: `statusCode`; `headers` and every value of `multiValueHeaders` (payload
/// 1.0; a name in both keeps both's values, as API Gateway merges them); `cookies` as
/// `set-cookie` headers (payload 2.0); `body`, base64-decoded when `isBase64Encoded`.
/// Header names or values that HTTP cannot carry are left out. An answer that is not a
/// proxy response (no `statusCode`) is a 200 with the answer as its body, as
/// [`decode_proxy_response`] reads it.
///
/// ```
/// use serde_json::json;
/// use wsgw_aws::lambda::decode_http_proxy_response;
///
/// let response = decode_http_proxy_response(json!({
///     "statusCode": 200,
///     "multiValueHeaders": { "Set-Cookie": ["a=1", "b=2"] },
///     "body": "/w==",
///     "isBase64Encoded": true
/// }))
/// .unwrap();
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// assert_eq!(response.body().as_bytes(), [0xff]);
/// ```
pub fn decode_http_proxy_response(answer: Value) -> Result<HttpResponse, ResponseError> {
    let fields = match answer {
        Value::Object(fields) if fields.contains_key("statusCode") => fields,
        other => {
            let reply = decode_proxy_response(other)?;
            let mut response = HttpResponse::new(reply.body.unwrap_or_default());
            *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            return Ok(response);
        }
    };
    let mut fields = fields;
    let status = proxy_status(fields.get("statusCode").unwrap_or(&Value::Null))?;
    let mut response = HttpResponse::new(proxy_body(&mut fields)?.unwrap_or_default());
    *response.status_mut() =
        StatusCode::from_u16(status).map_err(|_| ResponseError::Status(status.to_string()))?;
    let text = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    };
    let headers = response.headers_mut();
    let mut add = |name: &str, value: Option<String>| {
        if let (Ok(name), Some(Ok(value))) =
            (HeaderName::try_from(name), value.map(HeaderValue::try_from))
        {
            headers.append(name, value);
        }
    };
    if let Some(Value::Object(single)) = fields.get("headers") {
        for (name, value) in single {
            add(name, text(value));
        }
    }
    if let Some(Value::Object(multi)) = fields.get("multiValueHeaders") {
        for (name, values) in multi {
            for value in values.as_array().into_iter().flatten() {
                add(name, text(value));
            }
        }
    }
    if let Some(Value::Array(cookies)) = fields.get("cookies") {
        for cookie in cookies {
            add("set-cookie", text(cookie));
        }
    }
    Ok(response)
}
