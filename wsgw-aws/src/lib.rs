//! # wsgw-aws
//!
//! AWS backends for [`wsgw_core`]: a DynamoDB `ConnectionStore`, an API Gateway
//! Management API `MessageSink` and the Lambda runtime glue.
//!
//! This release re-exports the core API only; the AWS backends land in the next release
//! (tracked in the project's issue "wsgw-aws: DynamoDB store, API Gateway sink, Lambda
//! glue").
#![warn(missing_docs)]

pub use wsgw_core as core;
