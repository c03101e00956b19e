//! # wsgw
//!
//! `wsgw local --template template.yaml`: a SAM (or CloudFormation) template's API Gateway
//! WebSocket API run on a laptop, each Lambda function as its own binary in Lambda mode,
//! the template's DynamoDB tables on a local server, no Docker.
//!
//! The library holds the pieces the command assembles, each usable on its own:
//!
//! - the template, resolved for a local stack: [`wsgw_aws::template::Template::resolve`];
//! - [`build`]: a host `cargo build` of each function's binary;
//! - [`pool`]: the functions as processes in Lambda mode, with instances that behave like
//!   Lambda's ([`FunctionPool::invoke`](pool::FunctionPool::invoke));
//! - [`dynamodb`]: the tables created at an endpoint, moto's server started when none is
//!   given;
//! - [`watch`]: a function rebuilt and its instances replaced when its sources change;
//! - [`serve`]: the template's API behind the LocalGateway, each route's function
//!   invoked as API Gateway invokes it ([`serve::TemplateIntegration`]);
//! - [`local`]: all of it made ready from the command line's options ([`LocalRun`]) and
//!   served ([`LocalRun::serve`]).
//!
//! The events the functions get are API Gateway's, encoded by
//! [`wsgw_aws::lambda::encode_websocket_event`] and
//! [`wsgw_aws::authorizer::encode_authorizer_event`]:
//!
//! ```no_run
//! use serde_json::Value;
//! use wsgw::pool::{FunctionPool, PoolFunction, PoolSettings};
//! use wsgw_aws::lambda::{decode_proxy_response, encode_websocket_event};
//! use wsgw_core::{Payload, Request};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = FunctionPool::new(
//!     [PoolFunction::new("Echo", "target/debug/echo")],
//!     PoolSettings::default().with_management_endpoint("http://127.0.0.1:8080/production"),
//! );
//! let message = Request::message("c-1=".into(), Payload::text(r#"{"action":"whoami"}"#))
//!     .with_route_key("whoami")
//!     .with_endpoint("127.0.0.1", "production");
//! let answer: Value = pool.invoke("Echo", encode_websocket_event(&message)).await?;
//! let reply = decode_proxy_response(answer)?;
//! assert_eq!(reply.status, 200);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod build;
pub mod dynamodb;
pub mod local;
pub mod pool;
pub mod serve;
pub mod watch;

pub use local::{LocalArgs, LocalError, LocalRun, ServedStage, Serving};
