//! Connection identities, connection records and message payloads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The id API Gateway gives a WebSocket connection (for example `L0SM9cOFvHcCIhw=`).
///
/// Cheap to clone: the text is shared.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(Arc<str>);

impl ConnectionId {
    /// Wraps an id.
    pub fn new(id: impl AsRef<str>) -> Self {
        ConnectionId(Arc::from(id.as_ref()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({:?})", &*self.0)
    }
}

impl From<&str> for ConnectionId {
    fn from(id: &str) -> Self {
        ConnectionId::new(id)
    }
}

impl From<String> for ConnectionId {
    fn from(id: String) -> Self {
        ConnectionId(Arc::from(id))
    }
}

impl AsRef<str> for ConnectionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Free-form attributes kept with a connection (a display name, a push interval, ...).
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// What a [`ConnectionStore`](crate::ConnectionStore) keeps about one open connection.
///
/// ```
/// use wsgw_core::{Connection, ConnectionId};
///
/// let connection = Connection::new(ConnectionId::new("abc="))
///     .with_source_ip("203.0.113.7")
///     .with_group("session:s1")
///     .with_attribute("name", "ada");
/// assert!(connection.groups.contains("session:s1"));
/// assert_eq!(connection.attributes["name"], "ada");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Connection {
    /// The connection's id.
    pub id: ConnectionId,
    /// When the connection was opened.
    pub connected_at: DateTime<Utc>,
    /// When the connection last sent or received a message.
    pub last_active_at: DateTime<Utc>,
    /// The client's address as API Gateway saw it.
    pub source_ip: Option<String>,
    /// The client's `User-Agent` header.
    pub user_agent: Option<String>,
    /// The groups the connection belongs to (a session id, a room, a role ...).
    /// Stores index membership so a group is listed without a scan.
    pub groups: BTreeSet<String>,
    /// Free-form attributes.
    pub attributes: Attributes,
}

impl Connection {
    /// A connection opened now, with no groups or attributes.
    pub fn new(id: ConnectionId) -> Self {
        let now = Utc::now();
        Connection {
            id,
            connected_at: now,
            last_active_at: now,
            source_ip: None,
            user_agent: None,
            groups: BTreeSet::new(),
            attributes: Attributes::new(),
        }
    }

    /// The connection a `$connect` request opens: its id, when it opened (the request's
    /// `connectedAt`, else its time), the client's address and user agent; no groups or
    /// attributes yet.
    ///
    /// ```
    /// use wsgw_core::{Connection, ConnectionId, Request};
    ///
    /// let request = Request::connect(ConnectionId::new("a=")).with_source_ip("203.0.113.7");
    /// let connection = Connection::from_request(&request).with_group("room:lobby");
    /// assert_eq!(connection.id, request.connection_id);
    /// assert_eq!(connection.source_ip.as_deref(), Some("203.0.113.7"));
    /// assert_eq!(connection.connected_at, request.request_time);
    /// ```
    pub fn from_request(request: &crate::Request) -> Self {
        Connection {
            source_ip: request.source_ip.clone(),
            user_agent: request.user_agent.clone(),
            ..Connection::new(request.connection_id.clone())
                .with_connected_at(request.connected_at.unwrap_or(request.request_time))
        }
    }

    /// An attribute read as `T`: `None` when absent; a value that is not a `T` is an
    /// [`Error::Json`](crate::Error::Json) (the server stored it).
    ///
    /// ```
    /// use wsgw_core::{Connection, ConnectionId};
    ///
    /// let connection = Connection::new(ConnectionId::new("a=")).with_attribute("interval_ms", 500);
    /// assert_eq!(connection.attribute::<u64>("interval_ms")?, Some(500));
    /// assert_eq!(connection.attribute::<u64>("missing")?, None);
    /// assert!(connection.attribute::<String>("interval_ms").is_err());
    /// # Ok::<(), wsgw_core::Error>(())
    /// ```
    pub fn attribute<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> crate::Result<Option<T>> {
        match self.attributes.get(name) {
            Some(value) => Ok(Some(T::deserialize(value)?)),
            None => Ok(None),
        }
    }

    /// The attributes read as one `T`, a struct whose fields are attributes (those of
    /// other names are ignored): the typed counterpart of
    /// [`with_attributes`](Self::with_attributes). An attribute a field needs that is
    /// missing or of the wrong type is an [`Error::Json`](crate::Error::Json) (the server
    /// stored it).
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use wsgw_core::{Connection, ConnectionId};
    ///
    /// #[derive(Debug, PartialEq, Serialize, Deserialize)]
    /// struct Member {
    ///     room: String,
    ///     #[serde(default, skip_serializing_if = "Option::is_none")]
    ///     nickname: Option<String>,
    /// }
    ///
    /// let member = Member { room: "lobby".into(), nickname: None };
    /// let connection = Connection::new(ConnectionId::new("a=")).with_attributes(&member)?;
    /// assert_eq!(connection.attributes["room"], "lobby");
    /// assert!(!connection.attributes.contains_key("nickname"), "None is left out");
    /// assert_eq!(connection.attributes_as::<Member>()?, member);
    /// assert!(Connection::new(ConnectionId::new("b=")).attributes_as::<Member>().is_err());
    /// # Ok::<(), wsgw_core::Error>(())
    /// ```
    pub fn attributes_as<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        let attributes = self.attributes.clone().into_iter().collect();
        Ok(serde_json::from_value(serde_json::Value::Object(
            attributes,
        ))?)
    }

    /// Sets each field of `attributes` (a struct or map serialising to a JSON object) as
    /// an attribute of its name, for an app that keeps its attributes as one type; read
    /// them back with [`attributes_as`](Self::attributes_as). Anything that does not
    /// serialise to an object is [`Error::InvalidInput`](crate::Error::InvalidInput).
    pub fn with_attributes<T: Serialize + ?Sized>(mut self, attributes: &T) -> crate::Result<Self> {
        match serde_json::to_value(attributes)? {
            serde_json::Value::Object(fields) => {
                self.attributes.extend(fields);
                Ok(self)
            }
            other => Err(crate::Error::invalid_input(format!(
                "attributes must serialise to a JSON object, not {}",
                crate::input::json_type(&other)
            ))),
        }
    }

    /// Sets when the connection opened (and last activity to the same time).
    pub fn with_connected_at(mut self, at: DateTime<Utc>) -> Self {
        self.connected_at = at;
        self.last_active_at = at;
        self
    }

    /// Sets the client address.
    pub fn with_source_ip(mut self, ip: impl Into<String>) -> Self {
        self.source_ip = Some(ip.into());
        self
    }

    /// Sets the client's user agent.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Adds the connection to a group.
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.groups.insert(group.into());
        self
    }

    /// Sets one attribute.
    pub fn with_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// A change to a connection's attributes, optionally guarded by a condition so that
/// concurrent invocations cannot both win (a compare-and-set).
///
/// ```
/// use wsgw_core::AttributeUpdate;
///
/// // Set `last_sent_ms` to 2000 only if it is still 1000.
/// let update = AttributeUpdate::new()
///     .set("last_sent_ms", 2000)
///     .expect_value("last_sent_ms", 1000);
/// assert_eq!(update.set.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AttributeUpdate {
    /// Attributes to set (added or replaced).
    pub set: Attributes,
    /// Attributes to remove.
    pub remove: BTreeSet<String>,
    /// Conditions: each named attribute must currently hold this value (`Some`) or be
    /// absent (`None`), otherwise the update fails with
    /// [`Error::Precondition`](crate::Error::Precondition) and changes nothing.
    pub expect: BTreeMap<String, Option<serde_json::Value>>,
}

impl AttributeUpdate {
    /// An empty update.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an attribute.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.set.insert(name.into(), value.into());
        self
    }

    /// Removes an attribute.
    pub fn remove(mut self, name: impl Into<String>) -> Self {
        self.remove.insert(name.into());
        self
    }

    /// Requires the attribute to hold `value` now.
    pub fn expect_value(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.expect.insert(name.into(), Some(value.into()));
        self
    }

    /// Requires the attribute to be absent now.
    pub fn expect_absent(mut self, name: impl Into<String>) -> Self {
        self.expect.insert(name.into(), None);
        self
    }

    /// Checks the conditions against current attributes; the message names the first
    /// attribute that does not match.
    pub fn check(&self, current: &Attributes) -> Result<(), String> {
        for (name, expected) in &self.expect {
            if current.get(name) != expected.as_ref() {
                return Err(format!(
                    "attribute `{name}` is {:?}, expected {:?}",
                    current.get(name),
                    expected
                ));
            }
        }
        Ok(())
    }

    /// Applies the change to attributes (without checking conditions).
    pub fn apply(&self, attributes: &mut Attributes) {
        for name in &self.remove {
            attributes.remove(name);
        }
        for (name, value) in &self.set {
            attributes.insert(name.clone(), value.clone());
        }
    }
}

/// A WebSocket message: text (always valid UTF-8) or binary. Cheap to clone, so one
/// payload can be broadcast to thousands of connections without copying.
///
/// ```
/// use wsgw_core::Payload;
///
/// let payload = Payload::json(&serde_json::json!({"type": "hello"})).unwrap();
/// assert_eq!(payload.as_text(), Some(r#"{"type":"hello"}"#));
/// assert_eq!(payload.len(), 16);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    data: Bytes,
    is_text: bool,
}

impl Payload {
    /// A text payload.
    pub fn text(text: impl Into<String>) -> Self {
        Payload {
            data: Bytes::from(text.into()),
            is_text: true,
        }
    }

    /// A binary payload.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Payload {
            data: data.into(),
            is_text: false,
        }
    }

    /// A text payload holding `value` serialised as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> crate::Result<Self> {
        Ok(Payload::text(serde_json::to_string(value)?))
    }

    /// A text payload from bytes, if they are valid UTF-8.
    pub fn text_from_bytes(data: impl Into<Bytes>) -> Result<Self, std::str::Utf8Error> {
        let data = data.into();
        std::str::from_utf8(&data)?;
        Ok(Payload {
            data,
            is_text: true,
        })
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        self.is_text
    }

    /// The text, for text payloads.
    pub fn as_text(&self) -> Option<&str> {
        if self.is_text {
            // Text payloads are only built from `String` or validated bytes.
            std::str::from_utf8(&self.data).ok()
        } else {
            None
        }
    }

    /// The raw bytes (UTF-8 for text).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The shared buffer.
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the payload has no bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Parses a text payload, such as a client's message, as JSON. What does not parse
    /// (a binary payload, malformed JSON, a value of another shape) is a
    /// [`Rejection`](crate::Rejection), as for [`Request::json`](crate::Request::json).
    pub fn parse_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Rejection> {
        let Some(text) = self.as_text() else {
            return Err(crate::Rejection::new("invalid_json")
                .with_detail("expected a JSON text message, got a binary message"));
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(crate::Rejection::from_json_error)?;
        deserializer.end().map_err(|error| {
            crate::Rejection::new("invalid_json").with_detail(error.to_string())
        })?;
        Ok(value)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(text) => write!(f, "Payload::Text({text:?})"),
            None => write!(f, "Payload::Binary({} bytes)", self.data.len()),
        }
    }
}

/// The empty body (of an HTTP request without one).
impl Default for Payload {
    fn default() -> Self {
        Payload::text(String::new())
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Self {
        Payload::text(text)
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Self {
        Payload::text(text)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(data: Vec<u8>) -> Self {
        Payload::binary(data)
    }
}

/// A page of results and the token to fetch the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageToken>,
}

/// An opaque continuation token. Only the backend that issued it can read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageToken(pub String);

/// Which page to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most items to return (a backend may return fewer and a `next` token).
    pub limit: usize,
    /// Continue after the page that returned this token.
    pub token: Option<PageToken>,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: usize) -> Self {
        PageRequest { limit, token: None }
    }

    /// The page after the one that returned `token`.
    pub fn after(limit: usize, token: Option<PageToken>) -> Self {
        PageRequest { limit, token }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::first(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Member {
        room: String,
        joined: u32,
    }

    #[test]
    fn typed_attributes_sit_beside_others_and_are_checked_when_read() {
        let member = Member {
            room: "lobby".into(),
            joined: 3,
        };
        let connection = Connection::new(ConnectionId::new("a="))
            .with_attribute("interval_ms", 500)
            .with_attributes(&member)
            .unwrap();
        assert_eq!(
            connection.attribute::<u64>("interval_ms").unwrap(),
            Some(500)
        );
        assert_eq!(connection.attributes_as::<Member>().unwrap(), member);

        let wrong = connection.clone().with_attribute("joined", "three");
        assert!(matches!(
            wrong.attributes_as::<Member>(),
            Err(crate::Error::Json(_))
        ));
        let not_an_object = Connection::new(ConnectionId::new("b=")).with_attributes(&[1, 2]);
        assert!(matches!(
            not_an_object,
            Err(crate::Error::InvalidInput { .. })
        ));
    }
}
