//! # wsgw-memory
//!
//! In-memory backends for [`wsgw_core`]: [`MemoryStore`], [`MemorySink`] and
//! [`MemoryHistory`]; [`FaultySink`], which injects `Gone`, throttling and timeouts into
//! any sink; a socket-free [`Harness`] that serves a router on them and simulates
//! clients, so route handlers are unit-tested in microseconds; and (feature `gateway`)
//! `LocalGateway`, a real WebSocket server that behaves like API Gateway, so a whole
//! system runs on a laptop.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wsgw_core::Result<()> {
//! use serde_json::json;
//! use wsgw_core::{Context, Payload, Request, Result, Router};
//! use wsgw_memory::Harness;
//!
//! #[derive(serde::Deserialize)]
//! struct Shout { text: String }
//!
//! async fn shout(ctx: Context, request: Request) -> Result<()> {
//!     let Shout { text } = request.json()?;
//!     ctx.reply(&text.to_uppercase()).await
//! }
//!
//! let harness = Harness::new(Router::new().route("shout", shout));
//! let client = harness.connect().await.expect("connects");
//! client.send_json(&json!({"action": "shout", "text": "hi"})).await?;
//! client.send_json(&json!({"action": "shout"})).await?; // the client's mistake
//! let received = client.received_json();
//! assert_eq!(received[0], "HI");
//! assert_eq!(received[1]["error"], "missing_field");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): every feature-gated item shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod faults;
#[cfg(feature = "gateway")]
pub mod gateway;
mod harness;
mod history;
mod ids;
mod sink;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod token;

pub use faults::{Fault, FaultySink, InjectedFault, FAULTY_BACKEND};
pub use harness::{ConnectError, ConnectOptions, Harness, TestClient, LOCAL_STAGE};
pub use history::MemoryHistory;
pub use ids::{new_api_id, new_connection_id, random_id};
pub use sink::{
    Activity, MemorySink, Outbox, OutboxLimits, OutboxMessages, DEFAULT_OUTBOX_BYTES,
    DEFAULT_OUTBOX_CAPACITY, MAX_PAYLOAD_BYTES,
};
pub use store::MemoryStore;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "gateway"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
