//! The one error type every wsgw trait, handler and helper returns.

use crate::ConnectionId;

/// A boxed error from a backend (an SDK, a socket, a codec).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across wsgw.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store, a sink, a handler or the router.
///
/// Backends keep their own private error types and map them into these variants, so
/// handlers can react to `Gone` or `Throttled` the same way whatever they run on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection is closed or never existed. On AWS this is the Management API's
    /// `GoneException` (HTTP 410). Posting to a connection that is still inside its
    /// `$connect` handler is also `Gone`, because API Gateway has not opened it yet.
    #[error("connection {connection_id} is gone")]
    Gone {
        /// The connection that could not be reached.
        connection_id: ConnectionId,
    },

    /// The backend refused the call for now (HTTP 429 `LimitExceededException`, DynamoDB
    /// `ThrottlingException`); retrying later with backoff may succeed.
    #[error("throttled by {backend}: {message}")]
    Throttled {
        /// Which backend throttled (for example `"apigateway"` or `"dynamodb"`).
        backend: &'static str,
        /// What the backend said.
        message: String,
    },

    /// The backend did not answer in time (an SDK operation or attempt timeout). Nothing
    /// is known about whether the call took effect: a send that timed out may still
    /// arrive, so retrying it (as [`broadcast`](crate::broadcast) does) may deliver it
    /// twice.
    #[error("timed out calling {backend}: {message}")]
    Timeout {
        /// Which backend did not answer (for example `"apigateway"`).
        backend: &'static str,
        /// What was being done, and after how long it was given up.
        message: String,
    },

    /// The payload is larger than the backend accepts (API Gateway: 128 KB).
    #[error("payload of {size} bytes is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Size of the rejected payload in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// A record the call needs does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, with its key (for example `connection abc=`).
        what: String,
    },

    /// A conditional write found the record in another state than expected.
    #[error("precondition failed: {message}")]
    Precondition {
        /// Which condition failed and on which record.
        message: String,
    },

    /// A value is not acceptable to wsgw or a backend (a route selection expression that
    /// is not one, an attribute a backend cannot store). This is a server-side failure:
    /// a client's bad input is a [`Rejection`](crate::Rejection) ([`Error::Rejected`]),
    /// which the client is answered with.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A continuation token that this backend did not issue.
    #[error("invalid continuation token: {message}")]
    InvalidToken {
        /// Why the token was rejected.
        message: String,
    },

    /// Any other failure of a backend, with the backend's own error as source.
    #[error("{backend}: {message}")]
    Backend {
        /// Which backend failed (for example `"dynamodb"`).
        backend: &'static str,
        /// What was being done, with table and key where there is one.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },

    /// A handler failed for an application reason.
    #[error("handler error: {0}")]
    Handler(#[source] BoxError),

    /// The client's request is refused: the router answers the client with the
    /// rejection (an error frame on a WebSocket route, a 4xx on a REST route, a refused
    /// handshake on `$connect`), and the invocation does not fail. What `?` on
    /// [`Request::json`](crate::Request::json) and any other [`Rejection`] gives.
    #[error("request rejected: {0}")]
    Rejected(crate::Rejection),

    /// A value could not be written or read as JSON on the server's side (a type whose
    /// `Serialize` fails, a stored record that no longer parses). A client's malformed
    /// JSON is a [`Rejection`](crate::Rejection) instead.
    #[error("JSON serialisation failed: {0}")]
    Json(#[source] serde_json::Error),
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::Backend`].
    pub fn backend(
        backend: &'static str,
        message: impl Into<String>,
        source: impl Into<Option<BoxError>>,
    ) -> Self {
        Error::Backend {
            backend,
            message: message.into(),
            source: source.into(),
        }
    }

    /// Wraps any application error as [`Error::Handler`].
    pub fn handler(source: impl Into<BoxError>) -> Self {
        Error::Handler(source.into())
    }

    /// Whether this error says the connection is gone.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone { .. })
    }

    /// Whether the backend throttled the call ([`Error::Throttled`]).
    pub fn is_throttled(&self) -> bool {
        matches!(self, Error::Throttled { .. })
    }

    /// Whether the backend did not answer in time ([`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Whether retrying later may succeed: throttling and timeouts.
    pub fn is_retryable(&self) -> bool {
        self.is_throttled() || self.is_timeout()
    }

    /// The client rejection this error carries ([`Error::Rejected`]), if it is one.
    pub fn as_rejection(&self) -> Option<&crate::Rejection> {
        match self {
            Error::Rejected(rejection) => Some(rejection),
            _ => None,
        }
    }
}

/// A serialisation failure on the server's side ([`Error::Json`]), not the client's
/// fault: parse a client's input with [`Request::json`](crate::Request::json), whose
/// error is a [`Rejection`](crate::Rejection).
///
/// ```
/// use wsgw_core::Error;
///
/// let failure = serde_json::from_str::<u8>("300").unwrap_err();
/// assert!(matches!(Error::from(failure), Error::Json(_)));
/// ```
impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Json(error)
    }
}

impl From<crate::Rejection> for Error {
    fn from(rejection: crate::Rejection) -> Self {
        Error::Rejected(rejection)
    }
}
