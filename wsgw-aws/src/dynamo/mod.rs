//! DynamoDB backends: [`DynamoStore`] (a [`ConnectionStore`](wsgw_core::ConnectionStore))
//! and [`DynamoHistory`] (a [`HistoryStore`](wsgw_core::HistoryStore)).
//!
//! Both pass the whole [`wsgw_core::conformance`] suite against a DynamoDB-compatible
//! server (moto's, in this project's tests). The table design, with attribute names and
//! key schema, is in the crate README ("DynamoDB table design") and in [`schema`].
//!
//! # Configuration
//!
//! | variable | meaning |
//! | --- | --- |
//! | `WSGW_CONNECTIONS_TABLE` | the connections table ([`DynamoStoreBuilder::from_env`]) |
//! | `WSGW_HISTORY_TABLE` | the history table ([`DynamoHistoryBuilder::from_env`]) |
//! | `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL` | an endpoint override, for a local emulator (the AWS SDKs' names; wsgw 0.1's `WSGW_DYNAMODB_ENDPOINT` still works for one release, with a deprecation warning) |
//!
//! Region and credentials come from the AWS SDK's usual sources (on Lambda: the
//! function's role). With an endpoint override and no credentials in the environment,
//! dummy credentials and `us-east-1` are used, so local runs need no AWS account.
//!
//! # Errors
//!
//! Throttling (`ProvisionedThroughputExceededException`, `ThrottlingException`,
//! `RequestLimitExceeded`) is retried by the SDK's standard retry mode (5 attempts with
//! exponential backoff) and then returned as
//! [`Error::Throttled`](wsgw_core::Error::Throttled) with `backend: "dynamodb"`. Failed
//! conditions become [`Error::NotFound`](wsgw_core::Error::NotFound) or
//! [`Error::Precondition`](wsgw_core::Error::Precondition) as the trait documents; every
//! other failure, and an item this crate cannot read, is
//! [`Error::Backend`](wsgw_core::Error::Backend) whose message names the operation, the
//! table and the key.

mod config;
mod errors;
mod history;
mod item;
pub mod local;
pub mod schema;
mod store;
mod tables;
mod token;

pub use crate::config::MAX_ATTEMPTS;
pub use config::{
    local_client, CONNECTIONS_TABLE_ENV, DEPRECATED_DYNAMODB_ENDPOINT_ENV, DYNAMODB_ENDPOINT_ENV,
    HISTORY_TABLE_ENV,
};
pub use history::{DynamoHistory, DynamoHistoryBuilder};
pub use schema::DEFAULT_CONNECTION_TTL;
pub use store::{DynamoStore, DynamoStoreBuilder};
pub use tables::{ensure_table, IndexSpec, KeySpec, TableOutcome, TableSpec};

/// Creates both tables (see [`DynamoStore::create_table`] and
/// [`DynamoHistory::create_table`]) unless they exist. For local runs and tests.
pub async fn create_tables(store: &DynamoStore, history: &DynamoHistory) -> wsgw_core::Result<()> {
    store.create_table().await?;
    history.create_table().await
}
