//! # wsgw-core
//!
//! Build real-time WebSocket backends for AWS API Gateway WebSocket APIs as plain async
//! Rust functions, and run the very same handlers on Lambda + DynamoDB (`wsgw-aws`) or on
//! a laptop (`wsgw-memory`).
//!
//! ## The happy path: a room chat
//!
//! A [`Router`] holds routes; a route is an async function of a [`Context`] (the
//! request's backends: store, sink, history) and a [`Request`]. This chat keeps each
//! connection in the room it named (`?room=` on `$connect`), broadcasts `say` to the
//! room, answers `who` to the caller alone, answers bad input with an error frame (a
//! [`Rejection`]: `request.json()?` gives one) and forgets the connection on
//! `$disconnect`. It is `examples/rooms`, whose tests check this text is its code:
//!
//! ```rust,test_harness
//! # mod rooms {
//! use futures::TryStreamExt;
//! use serde_json::json;
//! use wsgw_core::{Connection, ConnectionStoreExt, Context, Rejection, Request, Result, Router};
//!
//! #[derive(serde::Deserialize)]
//! struct Say {
//!     text: String,
//! }
//!
//! /// `$connect`: `?room=NAME` joins that room; without one the handshake is refused (400).
//! async fn join(ctx: Context, request: Request) -> Result<()> {
//!     let room = request
//!         .query_param("room")
//!         .ok_or(Rejection::new("no_room"))?;
//!     let joined = Connection::from_request(&request).with_group(room);
//!     ctx.store().put(joined.with_attribute("room", room)).await
//! }
//!
//! /// The caller's room, as `join` stored it.
//! async fn room_of(ctx: &Context, request: &Request) -> Result<String> {
//!     let room = ctx.store().attribute(&request.connection_id, "room");
//!     Ok(room.await?.unwrap_or_default())
//! }
//!
//! /// `{"action":"say","text":…}`: the whole room gets `{"type":"said","text":…}`.
//! async fn say(ctx: Context, request: Request) -> Result<()> {
//!     let Say { text } = request.json()?; // bad input: the caller gets an error frame
//!     let room = room_of(&ctx, &request).await?;
//!     let said = ctx.broadcast(&json!({ "type": "said", "text": text }));
//!     said.to_group(room).await.map(drop)
//! }
//!
//! /// `{"action":"who"}`: the caller gets its room and how many are in it.
//! async fn who(ctx: Context, request: Request) -> Result<()> {
//!     let room = room_of(&ctx, &request).await?;
//!     let members: Vec<_> = ctx.store().members(room.as_str()).try_collect().await?;
//!     let who = json!({ "type": "who", "room": room, "members": members.len() });
//!     ctx.reply(&who).await
//! }
//!
//! /// `$disconnect`: the connection leaves its room.
//! async fn leave(ctx: Context, request: Request) -> Result<()> {
//!     ctx.store().delete(&request.connection_id).await.map(drop)
//! }
//!
//! /// The room chat's routes.
//! pub fn router() -> Router {
//!     Router::new()
//!         .on_connect(join)
//!         .route("say", say)
//!         .route("who", who)
//!         .on_disconnect(leave)
//! }
//! # }
//!
//! use serde_json::json;
//! use wsgw_memory::{ConnectOptions, Harness};
//!
//! fn in_room(room: &str) -> ConnectOptions {
//!     ConnectOptions::new().query("room", room)
//! }
//!
//! #[tokio::test]
//! async fn say_reaches_everyone_in_the_room_and_nobody_else() {
//!     let harness = Harness::new(rooms::router());
//!     let ada = harness.connect_with(in_room("lobby")).await.unwrap();
//!     let bob = harness.connect_with(in_room("lobby")).await.unwrap();
//!     let eve = harness.connect_with(in_room("attic")).await.unwrap();
//!
//!     ada.send_json(&json!({"action": "say", "text": "hi"}))
//!         .await
//!         .unwrap();
//!
//!     for listener in [&ada, &bob] {
//!         assert_eq!(
//!             listener.received_json(),
//!             [json!({"type": "said", "text": "hi"})]
//!         );
//!     }
//!     assert!(eve.received_json().is_empty());
//! }
//!
//! #[tokio::test]
//! async fn who_answers_the_caller_and_disconnect_leaves_the_room() {
//!     let harness = Harness::new(rooms::router());
//!     let ada = harness.connect_with(in_room("lobby")).await.unwrap();
//!     let bob = harness.connect_with(in_room("lobby")).await.unwrap();
//!     bob.disconnect().await.unwrap();
//!
//!     ada.send_json(&json!({"action": "who"})).await.unwrap();
//!
//!     let who = json!({"type": "who", "room": "lobby", "members": 1});
//!     assert_eq!(ada.received_json(), [who]);
//! }
//!
//! #[tokio::test]
//! async fn bad_input_gets_an_error_frame_and_no_room_no_connection() {
//!     let harness = Harness::new(rooms::router());
//!     let ada = harness.connect_with(in_room("lobby")).await.unwrap();
//!
//!     ada.send_json(&json!({"action": "say"})).await.unwrap();
//!
//!     let answer = &ada.received_json()[0];
//!     assert_eq!(
//!         (&answer["error"], &answer["field"]),
//!         (&json!("missing_field"), &json!("text"))
//!     );
//!     assert!(
//!         harness.connect().await.is_err(),
//!         "no ?room= refuses the handshake"
//!     );
//! }
//! ```
//!
//! The whole `main`, which serves it on the LocalGateway (`cargo run -p rooms`), as a
//! Lambda function when `AWS_LAMBDA_RUNTIME_API` is set, and runs `rooms invoke --event
//! FILE.json` (see `wsgw_aws::runner`):
//!
//! ```no_run
//! # mod rooms { pub fn router() -> wsgw_core::Router { wsgw_core::Router::new() } }
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     wsgw_aws::runner::run(rooms::router()).await
//! }
//! ```
//!
//! ## What is here
//!
//! What handlers are written against: the [`ConnectionStore`], [`MessageSink`] and
//! [`HistoryStore`] traits (with [`ConnectionStoreExt`] and [`HistoryStoreExt`]:
//! listings as streams, typed attributes), the [`Router`] that follows API Gateway's
//! route selection, the [`Context`] with its one metered [`Broadcast`], the reply model
//! ([`IntoReply`], [`Json`], [`Rejection`]) and the one [`Error`] type. It knows nothing
//! about AWS or sockets: whoever serves a router gives it its [`Backends`].
//!
//! Counting what happens (for CloudWatch or Prometheus) is the [`metrics`] module's job:
//! add an observer with [`Router::observe`].
//!
//! Features: `mock` exports mockall mocks of the traits (`MockConnectionStore`,
//! `MockMessageSink`, `MockHistoryStore`); `conformance` exports the shared test suite
//! every backend must pass; `jwt` adds [`auth::JwtAuthorizer`] next to the API-key
//! authorizer in [`auth`].
#![deny(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): every feature-gated item shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod backends;
mod broadcast;
pub mod clock;
pub mod connection_log;
mod context;
pub mod cors;
mod error;
mod ext;
mod field;
mod gateway_error;
mod handler;
mod history;
mod http_answers;
mod http_routes;
pub mod ids;
pub mod input;
pub mod metrics;
pub mod pacing;
mod rejection;
mod reply;
mod request;
mod router;
mod sink;
mod store;
mod types;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use self::http_routes::{
    http_error, HttpHandler, HttpRequest, HttpRequestExt, HttpResponse, IntoHttpResponse,
    MatchedPath, PathParams, PathPattern, RepeatedQueryParam,
};
/// The [`http`](https://docs.rs/http) crate, whose request and response types the HTTP
/// routes use ([`HttpRequest`], [`HttpResponse`]).
pub use ::http;
pub use backends::{Backends, NotConfigured};
pub use broadcast::{BroadcastOptions, BroadcastReport};
pub use context::{Broadcast, Context};
pub use error::{BoxError, Error, Result};
pub use ext::{ConnectionStoreExt, HistoryStoreExt, DEFAULT_PAGE_SIZE};
pub use gateway_error::GatewayError;
pub use handler::{Authorization, Authorizer, RejectionHandler, RouteHandler};
pub use history::{HistoryQuery, HistoryRecord, HistoryStore, Order};
pub use http_answers::ServerErrors;
pub use rejection::Rejection;
pub use reply::{IntoReply, Json};
pub use request::{
    collect_headers, DisconnectInfo, EventType, Reply, Request, CONNECT, DEFAULT, DISCONNECT,
    MESSAGE_DIRECTION_IN,
};
pub use router::{RouteSelection, Router};
pub use sink::{ConnectionInfo, MessageSink};
pub use store::ConnectionStore;
pub use types::{
    AttributeUpdate, Attributes, Connection, ConnectionId, Page, PageRequest, PageToken, Payload,
};

#[cfg(any(test, feature = "mock"))]
pub use history::MockHistoryStore;
#[cfg(any(test, feature = "mock"))]
pub use sink::MockMessageSink;
#[cfg(any(test, feature = "mock"))]
pub use store::MockConnectionStore;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
