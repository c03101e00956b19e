//! The request a route handler receives and the reply it returns.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ConnectionId, Payload};

/// Why a handler was invoked (API Gateway's `requestContext.eventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The client asked to open a connection; the upgrade waits for the `$connect` reply.
    Connect,
    /// The client sent a message.
    Message,
    /// The connection closed (best effort: it may never arrive).
    Disconnect,
}

/// The close code and reason a `$disconnect` event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectInfo {
    /// WebSocket close code: 1000 normal, 1001 going away, 1005 no code given,
    /// 1006 dropped without a close frame, 1009 message too big ...
    pub status_code: u16,
    /// The close reason text.
    pub reason: String,
}

/// Collects HTTP headers into a map keyed by lower-case name, joining repeated headers
/// with `,` as HTTP allows. The gateways use it so handlers see headers alike everywhere.
///
/// ```
/// let headers = wsgw_core::collect_headers([("X-Role", "a"), ("x-role", "b"), ("Host", "h")]);
/// assert_eq!(headers["x-role"], "a,b");
/// assert_eq!(headers["host"], "h");
/// ```
pub fn collect_headers<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in pairs {
        map.entry(name.to_ascii_lowercase())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    map
}

/// The only `requestContext.messageDirection` API Gateway sends: `IN`.
pub const MESSAGE_DIRECTION_IN: &str = "IN";

/// Route key of the `$connect` route.
pub const CONNECT: &str = "$connect";
/// Route key of the `$disconnect` route.
pub const DISCONNECT: &str = "$disconnect";
/// Route key of the `$default` route.
pub const DEFAULT: &str = "$default";

/// One event from the gateway: what API Gateway puts in a Lambda event, in Rust types.
///
/// Built by the gateway glue (Lambda or local); tests build it with the constructors:
///
/// ```
/// use wsgw_core::{ConnectionId, EventType, Request};
///
/// let request = Request::message(ConnectionId::new("abc="), r#"{"action":"whoami"}"#);
/// assert_eq!(request.event_type, EventType::Message);
/// assert_eq!(request.text(), Some(r#"{"action":"whoami"}"#));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// CONNECT, MESSAGE or DISCONNECT.
    pub event_type: EventType,
    /// The selected route key (`$connect`, `$default`, `sendmessage` ...). Empty until
    /// the router selects a route for a message that arrived without one.
    pub route_key: String,
    /// The connection the event belongs to.
    pub connection_id: ConnectionId,
    /// The message body (MESSAGE events).
    pub body: Option<Payload>,
    /// Query string parameters of the upgrade request (CONNECT events).
    pub query: BTreeMap<String, String>,
    /// Headers of the upgrade request, names in lower case (CONNECT events).
    pub headers: BTreeMap<String, String>,
    /// The API stage (`production`, `dev`, `local` ...).
    pub stage: String,
    /// The API's domain name, used to reach the Management API
    /// (`{api_id}.execute-api.{region}.amazonaws.com`, or a custom domain; never with a
    /// port).
    pub domain_name: String,
    /// The WebSocket API's id (`requestContext.apiId`, ten lower-case letters and digits
    /// such as `abcdef1234`).
    pub api_id: String,
    /// API Gateway's id of this event (`requestContext.requestId`, shaped like a
    /// connection id: `Bq8PZH5ejoEFuNw=`): the `requestId` of the error frames API Gateway
    /// sends the caller, and what to quote when reading its logs. Empty when the gateway
    /// gave none.
    pub request_id: String,
    /// `requestContext.messageDirection`: always `IN` (events flow from client to
    /// backend).
    pub message_direction: String,
    /// When the gateway received the event.
    pub request_time: DateTime<Utc>,
    /// When the connection was opened.
    pub connected_at: Option<DateTime<Utc>>,
    /// API Gateway's id of this message (MESSAGE events).
    pub message_id: Option<String>,
    /// The client's address.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// Close code and reason (DISCONNECT events).
    pub disconnect: Option<DisconnectInfo>,
    /// What the `$connect` authorizer returned, handed to every later route.
    pub authorizer: Option<serde_json::Value>,
}

impl Request {
    fn new(event_type: EventType, route_key: &str, connection_id: ConnectionId) -> Self {
        Request {
            event_type,
            route_key: route_key.to_owned(),
            connection_id,
            body: None,
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            stage: String::new(),
            domain_name: String::new(),
            api_id: String::new(),
            request_id: String::new(),
            message_direction: MESSAGE_DIRECTION_IN.to_owned(),
            request_time: Utc::now(),
            connected_at: None,
            message_id: None,
            source_ip: None,
            user_agent: None,
            disconnect: None,
            authorizer: None,
        }
    }

    /// A CONNECT event on the `$connect` route.
    pub fn connect(connection_id: ConnectionId) -> Self {
        Request::new(EventType::Connect, CONNECT, connection_id)
    }

    /// A MESSAGE event whose route the router selects from the body.
    pub fn message(connection_id: ConnectionId, body: impl Into<Payload>) -> Self {
        let mut request = Request::new(EventType::Message, "", connection_id);
        request.body = Some(body.into());
        request
    }

    /// A DISCONNECT event on the `$disconnect` route.
    pub fn disconnect(connection_id: ConnectionId, status_code: u16, reason: &str) -> Self {
        let mut request = Request::new(EventType::Disconnect, DISCONNECT, connection_id);
        request.disconnect = Some(DisconnectInfo {
            status_code,
            reason: reason.to_owned(),
        });
        request
    }

    /// Sets the route key (as API Gateway does before invoking a Lambda).
    pub fn with_route_key(mut self, route_key: impl Into<String>) -> Self {
        self.route_key = route_key.into();
        self
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

    /// Sets stage and domain name.
    pub fn with_endpoint(
        mut self,
        domain_name: impl Into<String>,
        stage: impl Into<String>,
    ) -> Self {
        self.domain_name = domain_name.into();
        self.stage = stage.into();
        self
    }

    /// Sets the API id (`requestContext.apiId`).
    pub fn with_api_id(mut self, api_id: impl Into<String>) -> Self {
        self.api_id = api_id.into();
        self
    }

    /// Sets the request id (`requestContext.requestId`).
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Sets the client's address.
    pub fn with_source_ip(mut self, ip: impl Into<String>) -> Self {
        self.source_ip = Some(ip.into());
        self
    }

    /// Sets the client's user agent.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets when the connection opened.
    pub fn with_connected_at(mut self, at: DateTime<Utc>) -> Self {
        self.connected_at = Some(at);
        self
    }

    /// Sets the message id.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets the authorizer context.
    pub fn with_authorizer(mut self, context: serde_json::Value) -> Self {
        self.authorizer = Some(context);
        self
    }

    /// The body as text, for text messages.
    pub fn text(&self) -> Option<&str> {
        self.body.as_ref().and_then(Payload::as_text)
    }

    /// Parses the body as JSON into `T`. A body that does not parse is the client's
    /// fault, so the error is a [`Rejection`](crate::Rejection) (`invalid_json`,
    /// `missing_field`, `invalid_type` or `invalid_value`, naming the field and with
    /// serde's message as the detail): with `?` in a handler the router answers the
    /// client with it, and the invocation does not fail.
    ///
    /// ```
    /// use wsgw_core::{ConnectionId, Request};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Say { text: String }
    ///
    /// let request = Request::message(ConnectionId::new("a="), r#"{"action":"say"}"#);
    /// let Err(rejection) = request.json::<Say>() else { panic!("no text") };
    /// assert_eq!(rejection.code(), Some("missing_field"));
    /// assert_eq!(
    ///     rejection.to_payload().as_text(),
    ///     Some(r#"{"type":"error","error":"missing_field","field":"text","detail":"missing field `text` at line 1 column 16"}"#)
    /// );
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Rejection> {
        match &self.body {
            Some(body) => body.parse_json(),
            None => {
                Err(crate::Rejection::new("invalid_json").with_detail("the message has no body"))
            }
        }
    }

    /// A query string parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What a route handler returns: an HTTP-like status and, on two-way routes, a body
/// sent back to the caller's connection.
///
/// For `$connect`, a status outside 200–299 rejects the handshake with that status.
///
/// A body reaches the caller only from a route registered with
/// [`Router::two_way_route`](crate::Router::two_way_route) (deployed: a route with a
/// route response). On a route registered with [`Router::route`](crate::Router::route)
/// API Gateway drops it, and so does the router, with a warning saying how to make the
/// route two-way; one-way routes answer through [`Context::sink`](crate::Context::sink).
///
/// ```
/// use wsgw_core::Reply;
///
/// let reply = Reply::json(&serde_json::json!({"type": "pong"})).unwrap();
/// assert_eq!(reply.status, 200);
/// assert!(Reply::status(403).is_rejection());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Reply {
    /// HTTP-like status code.
    pub status: u16,
    /// Sent back to the caller on a two-way route; dropped on a one-way route, as API
    /// Gateway drops it.
    pub body: Option<Payload>,
    /// Response headers, names in lower case. On `$connect`, `sec-websocket-protocol`
    /// picks the subprotocol the handshake echoes back (it must be one the client offered).
    pub headers: BTreeMap<String, String>,
}

impl Reply {
    /// 200 with no body.
    pub fn ok() -> Self {
        Reply::status(200)
    }

    /// A status with no body.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            body: None,
            headers: BTreeMap::new(),
        }
    }

    /// 200 with a body sent back to the caller (on a two-way route).
    pub fn with_body(body: impl Into<Payload>) -> Self {
        Reply {
            body: Some(body.into()),
            ..Reply::ok()
        }
    }

    /// 200 with `value` as JSON sent back to the caller (on a two-way route).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> crate::Result<Self> {
        Ok(Reply::with_body(Payload::json(value)?))
    }

    /// Replaces the status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a response header (the name is stored in lower case).
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// On `$connect`: accept the handshake with this subprotocol.
    pub fn with_subprotocol(self, protocol: impl Into<String>) -> Self {
        self.with_header("sec-websocket-protocol", protocol)
    }

    /// Whether the status is outside 200–299 (on `$connect`: the handshake is refused).
    pub fn is_rejection(&self) -> bool {
        !(200..300).contains(&self.status)
    }
}

impl Default for Reply {
    fn default() -> Self {
        Reply::ok()
    }
}
