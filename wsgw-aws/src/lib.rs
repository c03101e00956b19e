//! # wsgw-aws
//!
//! AWS backends for [`wsgw_core`]: a DynamoDB `ConnectionStore`, an API Gateway
//! Management API `MessageSink` and the Lambda runtime glue.
//!
#![warn(missing_docs)]

pub mod config;
pub mod dynamo;
pub mod lambda;
mod sink;

pub use dynamo::{DynamoHistory, DynamoHistoryBuilder, DynamoStore, DynamoStoreBuilder};
pub use sink::{ApiGatewaySink, MANAGEMENT_ENDPOINT_ENV, MAX_PAYLOAD_BYTES};
pub use wsgw_core as core;
