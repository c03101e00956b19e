//! Test support for wsgw systems, in one place: what the tests of a system built on wsgw
//! do again and again when they drive it from outside, as its users and AWS do.
//!
//! - [`ChildProcess`] and [`ServerProcess`]: a binary started by a test is killed and
//!   reaped when the test ends, passed or failed; a server's printed addresses are read
//!   from its first line; [`printed_json`] reads what a run (`invoke`) printed.
//! - [`events`]: API Gateway events (WebSocket `$connect`/message/`$disconnect`, REST
//!   proxy) shaped as AWS sends them to a Lambda function.
//! - [`ws`]: a real WebSocket client's reads and writes with a deadline (`next_json`,
//!   `next_text`, `send_json`, `ask`, `assert_silent`, `drain`, `close_code`, `refused`).
//! - The Lambda Runtime API emulator ([`LambdaRuntimeEmulator`]) and a function binary run
//!   against it ([`LambdaFunction`]), re-exported from [`crate::gateway`] where they live.
//!
//! Socket-free tests of a router use [`crate::Harness`] instead.
//!
//! The helpers panic with a message saying what was expected: they are for tests, where
//! a panic is the failure report. Enable the `testing` feature in `[dev-dependencies]`:
//!
//! ```toml
//! [dev-dependencies]
//! wsgw-memory = { version = "0.2", features = ["testing"] }
//! ```
//!
//! A test that serves a router on the LocalGateway and talks to it as a client:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use serde_json::json;
//! use wsgw_core::{Context, Request, Result, Router};
//! use wsgw_memory::gateway::LocalGateway;
//! use wsgw_memory::testing::ws;
//!
//! async fn ping(ctx: Context, _request: Request) -> Result<()> {
//!     ctx.reply(&json!({ "type": "pong" })).await
//! }
//!
//! let gateway = LocalGateway::new(Router::new().route("ping", ping))
//!     .bind(([127, 0, 0, 1], 0).into())
//!     .await
//!     .expect("binds");
//! let mut client = ws::connect(&gateway.ws_url()).await;
//! ws::send_json(&mut client, &json!({ "action": "ping" })).await;
//! assert_eq!(ws::next_json(&mut client).await, json!({ "type": "pong" }));
//! gateway.shutdown().await;
//! # }
//! ```

pub mod events;
mod process;
pub mod ws;

pub use crate::gateway::lambda_function::{assert_arm64_answers_as_host, LambdaFunction};
pub use crate::gateway::{Invocation, LambdaRuntimeEmulator, ManagementCall, ManagementRecorder};
pub use process::{printed_json, successful_json, url_in, ChildProcess, ServerProcess};
