//! # wsgw-core
//!
//! Build real-time WebSocket backends for AWS API Gateway WebSocket APIs as plain async
//! Rust functions, and run the very same handlers on Lambda + DynamoDB (`wsgw-aws`) or on
//! a laptop (`wsgw-memory`).
//!
//! This crate holds what handlers are written against: the [`ConnectionStore`],
//! [`MessageSink`] and [`HistoryStore`] traits, the [`Router`] that follows API
//! Gateway's route selection, [`broadcast`], and the one [`Error`] type. It knows nothing
//! about AWS or sockets.
//!
//! ```
//! use std::sync::Arc;
//! use wsgw_core::*;
//! # fn backends() -> (Arc<dyn ConnectionStore>, Arc<dyn MessageSink>) {
//! #     (Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()))
//! # }
//!
//! #[derive(serde::Deserialize)]
//! struct Echo { message: serde_json::Value }
//!
//! async fn echo(_ctx: Context, request: Request) -> Result<Reply> {
//!     let Echo { message } = request.json()?;
//!     Reply::json(&serde_json::json!({ "type": "message", "message": message }))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! let (store, sink) = backends(); // MemoryStore/MemorySink or DynamoStore/ApiGatewaySink
//! // Two-way: the reply body goes back to the caller (deployed, the template's route needs
//! // a route response). A route registered with `.route(…)` is one-way, as on API
//! // Gateway: its handler answers through `ctx.sink()` and a reply body is dropped.
//! let router = Router::new(store, sink).two_way_route("message", echo);
//!
//! let request = Request::message(ConnectionId::new("abc="), r#"{"action":"message","message":"hi"}"#);
//! let reply = router.handle(request).await?;
//! assert_eq!(reply.body.unwrap().as_text(), Some(r#"{"message":"hi","type":"message"}"#));
//! # Ok(())
//! # }
//! ```
//!
//! Counting what happens (for CloudWatch or Prometheus) is the [`metrics`] module's job:
//! add an observer with [`Router::observe`].
//!
//! Features: `mock` exports mockall mocks of the traits (`MockConnectionStore`,
//! `MockMessageSink`, `MockHistoryStore`); `conformance` exports the shared test suite
//! every backend must pass; `jwt` adds [`auth::JwtAuthorizer`] next to the API-key
//! authorizer in [`auth`].
#![warn(missing_docs)]

pub mod auth;
mod broadcast;
mod error;
mod gateway_error;
mod handler;
mod history;
mod http;
pub mod metrics;
mod request;
mod router;
mod sink;
mod store;
mod types;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use broadcast::{broadcast, broadcast_to_group, BroadcastOptions, BroadcastReport};
pub use error::{BoxError, Error, Result};
pub use gateway_error::GatewayError;
pub use handler::{Authorization, Authorizer, Context, RouteHandler};
pub use history::{HistoryQuery, HistoryRecord, HistoryStore, Order};
pub use http::{HttpHandler, HttpRequest, HttpResponse};
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
