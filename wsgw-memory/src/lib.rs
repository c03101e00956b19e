//! # wsgw-memory
//!
//! In-memory backends for [`wsgw_core`]: [`MemoryStore`], [`MemorySink`] and
//! [`MemoryHistory`]; [`FaultySink`], which injects `Gone`, throttling and timeouts into
//! any sink; a socket-free [`Harness`] that simulates clients so route handlers
//! are unit-tested in microseconds; and (feature `gateway`) `LocalGateway`, a real
//! WebSocket server that behaves like API Gateway, so a whole system runs on a laptop.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wsgw_core::Result<()> {
//! use serde_json::json;
//! use wsgw_core::{Context, Payload, Reply, Request, Router};
//! use wsgw_memory::Harness;
//!
//! async fn shout(ctx: Context, request: Request) -> wsgw_core::Result<Reply> {
//!     let text = request.json::<serde_json::Value>()?["text"].as_str().unwrap_or("").to_uppercase();
//!     ctx.sink().send(&request.connection_id, Payload::text(text)).await?;
//!     Ok(Reply::ok())
//! }
//!
//! let harness = Harness::new(|store, sink| Router::new(store, sink).route("shout", shout));
//! let client = harness.connect().await.expect("connects");
//! client.send_json(&json!({"action": "shout", "text": "hi"})).await?;
//! assert_eq!(client.received(), vec![Payload::text("HI")]);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod faults;
#[cfg(feature = "gateway")]
pub mod gateway;
mod harness;
mod history;
mod ids;
mod sink;
mod store;
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
