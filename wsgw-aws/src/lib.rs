//! # wsgw-aws
//!
//! AWS backends for [`wsgw_core`]: a DynamoDB `ConnectionStore`, an API Gateway
//! Management API `MessageSink` and the Lambda runtime glue ([`lambda`]), with
//! CloudWatch metrics in Embedded Metric Format, one log line per invocation
//! ([`metrics`]), and [`invoke`]: one API Gateway event run locally, as
//! `sam local invoke` does, without Docker or credentials. The router's `$connect`
//! authorizer also runs deployed as a Lambda REQUEST authorizer ([`authorizer`]).
//! With the `template` feature, [`template`] reads the SAM template and
//! checks a router against its WebSocket API (routes, route responses, selection
//! expression), and resolves it for a local stack (`wsgw local`:
//! [`Template::resolve`](crate::template::Template::resolve)). With the `runner` feature,
//! `runner::run(router)` is a system's whole `main`: Lambda when `AWS_LAMBDA_RUNTIME_API`
//! is set, the LocalGateway otherwise, `invoke --event` when asked.
//!
#![deny(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): every feature-gated item shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod authorizer;
pub mod config;
pub mod dynamo;
pub mod invoke;
pub mod lambda;
mod management_client;
pub mod metrics;
#[cfg(feature = "runner")]
pub mod runner;
mod sink;
#[cfg(feature = "template")]
pub mod template;

pub use dynamo::{DynamoHistory, DynamoHistoryBuilder, DynamoStore, DynamoStoreBuilder};
pub use sink::{
    ApiGatewaySink, ManagementApi, DEPRECATED_MANAGEMENT_ENDPOINT_ENV, MANAGEMENT_ENDPOINT_ENV,
    MAX_PAYLOAD_BYTES,
};
pub use wsgw_core as core;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "runner"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
