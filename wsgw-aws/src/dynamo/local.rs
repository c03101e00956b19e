//! Tables of their own on a local DynamoDB-compatible server (moto's, DynamoDB Local),
//! for tests and throwaway local runs: the endpoint from `AWS_ENDPOINT_URL_DYNAMODB` with a
//! message saying how to get one when it is unset, and uniquely named tables created as
//! the SAM template would.

use std::time::{SystemTime, UNIX_EPOCH};

use super::config::{DEPRECATED_DYNAMODB_ENDPOINT_ENV, DYNAMODB_ENDPOINT_ENV};
use super::{create_tables, DynamoHistory, DynamoStore};
use crate::config::configured_endpoint;

/// `AWS_ENDPOINT_URL_DYNAMODB` (nor `AWS_ENDPOINT_URL`) is unset or empty where a DynamoDB-compatible server is
/// needed; the message says how to start one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{DYNAMODB_ENDPOINT_ENV} is not set: this needs a DynamoDB-compatible server. Run \
     `cargo xtask test`, which starts one, or start moto's yourself: \
     `python3 -m venv .venv && .venv/bin/pip install 'moto[server]>=5,<6' && \
     .venv/bin/python -m moto.server -H 127.0.0.1 -p 5000`, then run the tests with \
     `{DYNAMODB_ENDPOINT_ENV}=http://127.0.0.1:5000 cargo test -p <package> -- --include-ignored`"
)]
pub struct MissingEndpoint;

/// The local server's endpoint, from `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`
/// (see [`configured_endpoint`]).
///
/// ```
/// match wsgw_aws::dynamo::local::endpoint_from_env() {
///     Ok(endpoint) => println!("tables at {endpoint}"),
///     Err(missing) => assert!(missing.to_string().contains("cargo xtask test")),
/// }
/// ```
pub fn endpoint_from_env() -> Result<String, MissingEndpoint> {
    configured_endpoint(DYNAMODB_ENDPOINT_ENV, DEPRECATED_DYNAMODB_ENDPOINT_ENV)
        .ok_or(MissingEndpoint)
}

/// `{prefix}-{process id}-{nanoseconds}`: a table or key name no other test run uses.
///
/// ```
/// let (a, b) = (wsgw_aws::dynamo::local::unique_name("t"), wsgw_aws::dynamo::local::unique_name("t"));
/// assert!(a.starts_with("t-"));
/// assert_ne!(a, b);
/// ```
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Two calls within one clock tick still differ.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{count}", std::process::id())
}

/// A connections table `{prefix}-connections-…` and a history table
/// `{prefix}-history-…` of their own at `endpoint`, created (with their GSI and TTL) as
/// the SAM template would, sharing one client.
pub async fn unique_tables(
    endpoint: &str,
    prefix: &str,
) -> wsgw_core::Result<(DynamoStore, DynamoHistory)> {
    let store = DynamoStore::builder()
        .with_endpoint(endpoint)
        .with_table(unique_name(&format!("{prefix}-connections")))
        .build()
        .await?;
    let history = DynamoHistory::builder()
        .with_client(store.client().clone())
        .with_table(unique_name(&format!("{prefix}-history")))
        .build()
        .await?;
    create_tables(&store, &history).await?;
    Ok((store, history))
}
