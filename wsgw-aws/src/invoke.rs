//! Invoke the function with one API Gateway event on a laptop, the way
//! `sam local invoke --event events/connect.json` does, without Docker or AWS
//! credentials.
//!
//! [`Invoker`] decodes the event exactly as Lambda mode does ([`decode_event`]), runs it
//! through the same [`LambdaApp`] over the store it is given (in memory, or DynamoDB at a
//! local endpoint) and a [`RecordingSink`] in place of the Management API, and returns
//! the proxy response with every message the handlers posted, every connection they
//! closed, and the CloudWatch metrics the invocation would write. Several events run in
//! order against the same backends, so `connect.json` then `sendmessage.json` behaves as
//! on AWS.
//!
//! With the `cli` feature, [`InvokeArgs`] and [`run`] give a binary an
//! `invoke --event FILE.json` subcommand in a few lines:
//!
//! ```no_run
//! # #[cfg(feature = "cli")]
//! # async fn main_() -> std::process::ExitCode {
//! use std::sync::Arc;
//! use wsgw_aws::invoke::{self, InvokeArgs, Invoker};
//! # let store: Arc<dyn wsgw_core::ConnectionStore> = unimplemented!();
//! # let args: InvokeArgs = unimplemented!();
//! let invoker = Invoker::new("echo", wsgw_core::Router::new()).with_store(store);
//! invoke::run("echo", &invoker, &args).await
//! # }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Map, Value};
use wsgw_core::{
    ConnectionId, ConnectionInfo, ConnectionStore, Error, EventType, GatewayError, HistoryStore,
    MessageSink, Payload, Result, Router,
};

use crate::lambda::{decode_event, ApiGatewayEvent, EventError, LambdaApp};
use crate::metrics::Emf;
use crate::MAX_PAYLOAD_BYTES;

/// A message a handler posted to a connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Posted {
    /// The connection it was posted to.
    pub connection_id: ConnectionId,
    /// What was posted.
    pub payload: Payload,
}

/// A post the Management API would have refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Rejected {
    /// The connection it was posted to.
    pub connection_id: ConnectionId,
    /// What was posted.
    pub payload: Payload,
    /// The Management API's error type (`GoneException`, `PayloadTooLargeException`).
    pub error: &'static str,
    /// Why.
    pub detail: String,
}

#[derive(Default)]
struct Recording {
    posted: Vec<Posted>,
    rejected: Vec<Rejected>,
    disconnected: Vec<ConnectionId>,
    /// The connection inside its `$connect`: not open yet, as on AWS.
    connecting: Option<ConnectionId>,
    /// Connections known to be closed: disconnected, refused, or closed by a handler.
    closed: HashSet<ConnectionId>,
    known: BTreeMap<ConnectionId, ConnectionInfo>,
}

/// A [`MessageSink`] that records what handlers post instead of delivering it.
///
/// Any connection id is accepted (the connections of other clients exist on AWS even
/// though no event here opened them), except where API Gateway answers
/// `GoneException`: the connection inside its own `$connect` (it is not open until
/// `$connect` returns), a connection whose `$disconnect` ran or whose `$connect` was
/// refused, and one a handler closed. Payloads over 128 KB are
/// `PayloadTooLargeException`. Refused posts are recorded as [`Rejected`] and returned
/// to the handler as the same errors the real sink returns.
#[derive(Default)]
pub struct RecordingSink {
    recording: Mutex<Recording>,
}

impl std::fmt::Debug for RecordingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let recording = self.lock();
        f.debug_struct("RecordingSink")
            .field("posted", &recording.posted.len())
            .field("closed", &recording.closed.len())
            .finish_non_exhaustive()
    }
}

/// What one event's handlers did through the sink.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SinkActivity {
    /// Delivered posts, in order.
    pub posted: Vec<Posted>,
    /// Refused posts, in order.
    pub rejected: Vec<Rejected>,
    /// Connections closed through the Management API (`DELETE @connections/{id}`).
    pub disconnected: Vec<ConnectionId>,
}

impl RecordingSink {
    /// A sink that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        self.recording
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn gone(id: &ConnectionId) -> Error {
        Error::Gone {
            connection_id: id.clone(),
        }
    }

    /// Before an event runs: a connecting client is not reachable yet, a disconnecting
    /// one no longer.
    pub fn begin(&self, event_type: EventType, id: &ConnectionId) {
        let mut recording = self.lock();
        match event_type {
            EventType::Connect => {
                recording.closed.remove(id);
                recording.connecting = Some(id.clone());
            }
            EventType::Disconnect => {
                recording.closed.insert(id.clone());
            }
            EventType::Message => {}
        }
    }

    /// After an event ran: an accepted `$connect` opens its connection (with `info`
    /// for `GET @connections`), a refused one leaves it closed.
    pub fn end(
        &self,
        event_type: EventType,
        id: &ConnectionId,
        accepted: bool,
        info: ConnectionInfo,
    ) {
        let mut recording = self.lock();
        if event_type == EventType::Connect {
            recording.connecting = None;
            if accepted {
                recording.known.insert(id.clone(), info);
            } else {
                recording.closed.insert(id.clone());
            }
        }
    }

    /// Takes what was recorded since the last call.
    pub fn take(&self) -> SinkActivity {
        let mut recording = self.lock();
        SinkActivity {
            posted: std::mem::take(&mut recording.posted),
            rejected: std::mem::take(&mut recording.rejected),
            disconnected: std::mem::take(&mut recording.disconnected),
        }
    }

    fn unreachable_because(recording: &Recording, id: &ConnectionId) -> Option<&'static str> {
        if recording.connecting.as_ref() == Some(id) {
            Some("the connection is inside its $connect: API Gateway opens it only after $connect returns, so posting to it from $connect fails on AWS; send from a later route")
        } else if recording.closed.contains(id) {
            Some("the connection is closed")
        } else {
            None
        }
    }
}

#[async_trait]
impl MessageSink for RecordingSink {
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()> {
        let mut recording = self.lock();
        if payload.len() > MAX_PAYLOAD_BYTES {
            let (size, limit) = (payload.len(), MAX_PAYLOAD_BYTES);
            recording.rejected.push(Rejected {
                connection_id: id.clone(),
                payload,
                error: "PayloadTooLargeException",
                detail: format!("{size} bytes is over the limit of {limit} bytes"),
            });
            return Err(Error::PayloadTooLarge { size, limit });
        }
        if let Some(reason) = Self::unreachable_because(&recording, id) {
            recording.rejected.push(Rejected {
                connection_id: id.clone(),
                payload,
                error: "GoneException",
                detail: reason.to_owned(),
            });
            return Err(Self::gone(id));
        }
        recording.posted.push(Posted {
            connection_id: id.clone(),
            payload,
        });
        Ok(())
    }

    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        let recording = self.lock();
        if Self::unreachable_because(&recording, id).is_some() {
            return Err(Self::gone(id));
        }
        Ok(recording
            .known
            .get(id)
            .cloned()
            .unwrap_or_else(|| ConnectionInfo::new(Utc::now(), None, None)))
    }

    async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        let mut recording = self.lock();
        if Self::unreachable_because(&recording, id).is_some() {
            return Err(Self::gone(id));
        }
        recording.closed.insert(id.clone());
        recording.disconnected.push(id.clone());
        Ok(())
    }
}

/// What one invoked event produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct InvokeOutcome {
    /// The proxy response, or the handler's error (Lambda reports it as the invocation's
    /// error and API Gateway answers the client "Internal server error").
    pub response: std::result::Result<crate::lambda::ProxyResponse, Error>,
    /// What the handlers did through the Management API.
    pub activity: SinkActivity,
    /// What API Gateway itself sends the calling connection for a MESSAGE event: a
    /// two-way route's reply body (a one-way route's was dropped, as deployed), or its
    /// `Internal server error` frame when the handler failed; `None` otherwise.
    pub sent_to_caller: Option<Posted>,
    /// The CloudWatch EMF documents this invocation writes in Lambda.
    pub metrics: Vec<Value>,
}

fn payload_json(connection_id: &ConnectionId, payload: &Payload) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("connection_id".to_owned(), json!(connection_id));
    match payload.as_text() {
        Some(text) => {
            entry.insert("data".to_owned(), json!(text));
            if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                entry.insert("json".to_owned(), parsed);
            }
        }
        None => {
            entry.insert(
                "data".to_owned(),
                json!(STANDARD.encode(payload.as_bytes())),
            );
            entry.insert("is_base64_encoded".to_owned(), json!(true));
        }
    }
    entry
}

/// The printed form of an outcome, members in reading order.
#[derive(serde::Serialize)]
struct Report<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    response: Option<&'a crate::lambda::ProxyResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_to_caller: Option<Value>,
    posted: Vec<Value>,
    rejected: Vec<Value>,
    disconnected: &'a [ConnectionId],
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Vec<MetadataFirst<'a>>>,
}

/// An EMF document with `_aws` first, as people read it.
struct MetadataFirst<'a>(&'a Value);

impl serde::Serialize for MetadataFirst<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(members) = self.0.as_object() else {
            return self.0.serialize(serializer);
        };
        let mut map = serializer.serialize_map(Some(members.len()))?;
        if let Some(metadata) = members.get("_aws") {
            map.serialize_entry("_aws", metadata)?;
        }
        for (name, value) in members.iter().filter(|(name, _)| *name != "_aws") {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl InvokeOutcome {
    fn report<'a>(&'a self, event: Option<&'a str>, with_metrics: bool) -> Report<'a> {
        Report {
            event,
            response: self.response.as_ref().ok(),
            error: self.response.as_ref().err().map(ToString::to_string),
            sent_to_caller: self
                .sent_to_caller
                .as_ref()
                .map(|sent| Value::Object(payload_json(&sent.connection_id, &sent.payload))),
            posted: self
                .activity
                .posted
                .iter()
                .map(|post| Value::Object(payload_json(&post.connection_id, &post.payload)))
                .collect(),
            rejected: self
                .activity
                .rejected
                .iter()
                .map(|post| {
                    let mut entry = payload_json(&post.connection_id, &post.payload);
                    entry.insert("error".to_owned(), json!(post.error));
                    entry.insert("detail".to_owned(), json!(post.detail));
                    Value::Object(entry)
                })
                .collect(),
            disconnected: &self.activity.disconnected,
            metrics: with_metrics.then(|| self.metrics.iter().map(MetadataFirst).collect()),
        }
    }

    /// The JSON `invoke` prints: `response` (the proxy response, or `null`
    /// and an `error` when the handler failed), `sent_to_caller` when API Gateway would
    /// send the caller something itself (a two-way reply, the `Internal server error`
    /// frame), `posted` (`connection_id`, `data`, and
    /// `json` when the data parses as JSON, or `is_base64_encoded` for binary data),
    /// `rejected` (the same with the Management API's `error` and a `detail`),
    /// `disconnected`, and `metrics` when asked for.
    pub fn to_json(&self, with_metrics: bool) -> Value {
        serde_json::to_value(self.report(None, with_metrics)).unwrap_or(Value::Null)
    }

    /// [`to_json`](Self::to_json) as text, members in reading order, with the event's
    /// name first when given; indented unless `compact`.
    pub fn render(&self, event: Option<&str>, with_metrics: bool, compact: bool) -> String {
        let report = self.report(event, with_metrics);
        let text = if compact {
            serde_json::to_string(&report)
        } else {
            serde_json::to_string_pretty(&report)
        };
        text.unwrap_or_else(|error| format!("{{\"error\":\"cannot print the outcome: {error}\"}}"))
    }
}

/// The body of a proxy response, as API Gateway sends it on a two-way route.
fn reply_body(response: &crate::lambda::ProxyResponse) -> Option<Payload> {
    use aws_lambda_events::encodings::Body;
    let text = match response.body()? {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => return Some(Payload::binary(bytes.clone())),
        Body::Empty => return None,
        _ => return None,
    };
    if response.is_base64_encoded() {
        STANDARD.decode(text.as_bytes()).ok().map(Payload::binary)
    } else {
        Some(Payload::text(text))
    }
}

/// Runs events through a router as Lambda mode would, on a recording sink.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use serde_json::json;
/// use wsgw_aws::invoke::Invoker;
/// use wsgw_core::{Context, Request, Router};
///
/// let router = Router::new().route("hello", |ctx: Context, _req: Request| async move {
///     ctx.reply(&json!({"type": "hello"})).await
/// });
/// let invoker = Invoker::new("hello", router);
/// let event = json!({
///     "requestContext": {"eventType": "MESSAGE", "routeKey": "hello", "connectionId": "c1=",
///         "requestId": "r1=", "stage": "prod", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
///         "connectedAt": 1795336800000_i64, "requestTimeEpoch": 1795336801234_i64,
///         "identity": {"sourceIp": "203.0.113.10"}},
///     "body": "{\"action\":\"hello\"}", "isBase64Encoded": false
/// });
/// let outcome = invoker.invoke(event).await.expect("an API Gateway event");
/// assert_eq!(outcome.activity.posted[0].payload.as_text(), Some(r#"{"type":"hello"}"#));
/// # }
/// ```
pub struct Invoker<S = ()> {
    app: LambdaApp<S>,
    sink: Arc<RecordingSink>,
}

impl<S: Send + Sync + 'static> Invoker<S> {
    /// `router` served on a [`RecordingSink`], with no store and no history until given
    /// ([`with_store`](Self::with_store), [`with_history`](Self::with_history)).
    /// Metrics documents follow the environment's configuration
    /// (`WSGW_METRICS_NAMESPACE`, `WSGW_METRICS_DIMENSIONS`, whatever `WSGW_METRICS`
    /// says) with `function_name` as `FunctionName` unless `AWS_LAMBDA_FUNCTION_NAME` is
    /// set; an invalid configuration falls back to the defaults with a warning.
    pub fn new(function_name: &str, router: Router<S>) -> Self {
        let sink = Arc::new(RecordingSink::new());
        let mut emf = Emf::configured().unwrap_or_else(|error| {
            tracing::warn!(%error, "metrics configuration ignored");
            Emf::new()
        });
        if crate::config::non_empty_env(crate::metrics::FUNCTION_NAME_ENV).is_none() {
            emf = emf.function_name(function_name);
        }
        Invoker {
            app: LambdaApp::new(router)
                .with_sink(sink.clone())
                .with_metrics(Some(emf.writer(std::io::sink()))),
            sink,
        }
    }

    /// Keeps connections in `store` (in memory, or DynamoDB at a local endpoint), shared
    /// by the events run in order.
    pub fn with_store(mut self, store: Arc<dyn ConnectionStore>) -> Self {
        self.app = self.app.with_store(store);
        self
    }

    /// Keeps history in `history`.
    pub fn with_history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.app = self.app.with_history(history);
        self
    }

    /// The sink the handlers post to.
    pub fn sink(&self) -> &RecordingSink {
        &self.sink
    }

    /// Decodes and runs one raw event. A malformed event is an [`EventError`] naming the
    /// field; a handler error is in the outcome's `response`.
    pub async fn invoke(&self, raw: Value) -> std::result::Result<InvokeOutcome, EventError> {
        let event = decode_event(raw)?;
        let message = match &event {
            ApiGatewayEvent::WebSocket(request) if request.event_type == EventType::Message => {
                Some((request.connection_id.clone(), request.request_id.clone()))
            }
            _ => None,
        };
        let websocket = match &event {
            ApiGatewayEvent::WebSocket(request) => Some((
                request.event_type,
                request.connection_id.clone(),
                ConnectionInfo::new(
                    request.connected_at.unwrap_or(request.request_time),
                    request.source_ip.clone(),
                    request.user_agent.clone(),
                ),
            )),
            ApiGatewayEvent::Rest(_) => None,
        };
        if let Some((event_type, id, _)) = &websocket {
            self.sink.begin(*event_type, id);
        }
        let handled = self.app.handle_event(event, None).await;
        if let Some((event_type, id, info)) = websocket {
            let accepted = handled
                .response
                .as_ref()
                .is_ok_and(|response| (200..300).contains(&response.status_code()));
            self.sink.end(event_type, &id, accepted, info);
        }
        let sent_to_caller = message.and_then(|(connection_id, request_id)| {
            let payload = match &handled.response {
                Ok(response) => reply_body(response)?,
                Err(_) => GatewayError::InternalServerError.frame(&connection_id, &request_id),
            };
            Some(Posted {
                connection_id,
                payload,
            })
        });
        Ok(InvokeOutcome {
            response: handled.response,
            activity: self.sink.take(),
            sent_to_caller,
            metrics: handled.metrics,
        })
    }
}

#[cfg(feature = "cli")]
pub use cli::{run, InvokeArgs, EXIT_BAD_EVENT, EXIT_HANDLER_ERROR};

#[cfg(feature = "cli")]
mod cli {
    use std::io::Read;
    use std::path::PathBuf;
    use std::process::ExitCode;

    use serde_json::Value;

    use super::Invoker;

    /// Exit status when a handler failed (its outcome is printed first).
    pub const EXIT_HANDLER_ERROR: u8 = 1;
    /// Exit status when an event could not be read or decoded.
    pub const EXIT_BAD_EVENT: u8 = 2;

    /// `invoke`: run API Gateway events through the function locally and print what it
    /// answered and posted, as JSON.
    #[derive(Debug, Clone, clap::Args)]
    #[command(after_help = "\
Each event prints one JSON object: {\"event\": FILE, \"response\": <the \
crate::lambda::ProxyResponse>, \"posted\": [{\"connection_id\", \"data\", \"json\"}...], \
\"rejected\": [...], \"disconnected\": [...]}. Several --event run in order against the \
same backend, so a CONNECT event then a MESSAGE event behaves as on AWS. A post the \
Management API would refuse (to a client still inside $connect, to a closed connection, \
over 128 KB) is listed in \"rejected\" and fails in the handler as it would on AWS. \
What API Gateway itself would send the calling connection of a MESSAGE event (a two-way \
route's reply, or its Internal server error frame when the handler failed) is in \
\"sent_to_caller\"; a one-way route's reply body is dropped, as deployed.

Exit status: 0 when every event was handled, 1 when a handler failed (its output \
has \"error\"), 2 when an event file cannot be read or is not an API Gateway event.")]
    pub struct InvokeArgs {
        /// An API Gateway WebSocket, REST proxy, HTTP API (payload 2.0) or Function URL event (JSON file; `-` reads stdin).
        /// Repeat to run several in order.
        #[arg(long = "event", value_name = "FILE", required = true)]
        pub events: Vec<PathBuf>,

        /// Add the CloudWatch Embedded Metric Format documents each invocation writes in
        /// Lambda (`metrics`).
        #[arg(long)]
        pub metrics: bool,

        /// One line per event instead of indented JSON.
        #[arg(long)]
        pub compact: bool,
    }

    fn read_event(path: &PathBuf) -> Result<Value, String> {
        let stdin = path.as_os_str() == "-";
        let shown = if stdin {
            "the event on stdin".to_owned()
        } else {
            path.display().to_string()
        };
        let text = if stdin {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|error| format!("cannot read the event from stdin: {error}"))?;
            text
        } else {
            std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {shown}: {error}"))?
        };
        serde_json::from_str(&text).map_err(|error| format!("{shown} is not JSON: {error}"))
    }

    /// Runs every `--event` in order and prints each outcome; stops at the first event
    /// that cannot be read or decoded (exit 2) or whose handler failed (exit 1).
    pub async fn run<S: Send + Sync + 'static>(
        program: &str,
        invoker: &Invoker<S>,
        args: &InvokeArgs,
    ) -> ExitCode {
        for path in &args.events {
            let raw = match read_event(path) {
                Ok(raw) => raw,
                Err(error) => {
                    eprintln!("{program} invoke: {error}");
                    return ExitCode::from(EXIT_BAD_EVENT);
                }
            };
            let outcome = match invoker.invoke(raw).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    eprintln!("{program} invoke: {}: {error}", path.display());
                    return ExitCode::from(EXIT_BAD_EVENT);
                }
            };
            let name = path.display().to_string();
            println!(
                "{}",
                outcome.render(Some(&name), args.metrics, args.compact)
            );
            if let Err(error) = &outcome.response {
                eprintln!(
                    "{program} invoke: {}: the handler failed: {error}",
                    path.display()
                );
                return ExitCode::from(EXIT_HANDLER_ERROR);
            }
        }
        ExitCode::SUCCESS
    }
}
