//! Mapping DynamoDB failures into [`wsgw_core::Error`], with table and key in the message.

use std::fmt;

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use wsgw_core::Error;

use super::config::MAX_ATTEMPTS;

/// The backend name in every error this module returns.
pub(crate) const BACKEND: &str = "dynamodb";

/// Error codes the SDK retries as throttling and that become [`Error::Throttled`] when the
/// retries run out.
const THROTTLING: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
    "TooManyRequestsException",
];

/// What a request was doing, for error messages: `put on table T key pk=…, sk=…`.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub(crate) operation: &'static str,
    pub(crate) table: &'a str,
    pub(crate) key: String,
}

impl<'a> Target<'a> {
    pub(crate) fn new(operation: &'static str, table: &'a str, key: impl Into<String>) -> Self {
        Target {
            operation,
            table,
            key: key.into(),
        }
    }
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on table {} key {}",
            self.operation, self.table, self.key
        )
    }
}

/// Whether an SDK error is a service error with this code.
pub(crate) fn has_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>, code: &str) -> bool {
    matches!(error, SdkError::ServiceError(_)) && error.code() == Some(code)
}

/// Maps an SDK error: throttling (still failing after the SDK's retries) to
/// [`Error::Throttled`], anything else to [`Error::Backend`] naming the target.
pub(crate) fn sdk<E, R>(target: &Target<'_>, error: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    if let Some(code) = error.code().filter(|code| THROTTLING.contains(code)) {
        return Error::Throttled {
            backend: BACKEND,
            message: format!(
                "{target}: {code} after {MAX_ATTEMPTS} attempts: {}",
                error.message().unwrap_or("no message")
            ),
        };
    }
    Error::Backend {
        backend: BACKEND,
        message: format!("{target}: {}", DisplayErrorContext(&error)),
        source: Some(Box::new(error)),
    }
}

/// A request the SDK refused to build (a required field missing).
pub(crate) fn build(target: &Target<'_>, error: BuildError) -> Error {
    Error::Backend {
        backend: BACKEND,
        message: format!("{target}: building the request: {error}"),
        source: Some(Box::new(error)),
    }
}

/// An item that does not have the shape this crate writes.
pub(crate) fn malformed(table: &str, key: &str, what: impl fmt::Display) -> Error {
    Error::Backend {
        backend: BACKEND,
        message: format!("malformed item in table {table} key {key}: {what}"),
        source: None,
    }
}
