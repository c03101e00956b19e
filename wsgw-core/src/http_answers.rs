//! What the router does to every answer of its HTTP routes, set once on the router
//! instead of in each handler: CORS and its preflights ([`Router::cors`]), headers every
//! answer carries ([`Router::http_header`]), the shape of error bodies
//! ([`Router::http_error_shape`]) and server errors answered by the function
//! ([`Router::server_errors`], [`ServerErrors`]).
//!
//! [`Router::cors`]: crate::Router::cors
//! [`Router::http_header`]: crate::Router::http_header
//! [`Router::http_error_shape`]: crate::Router::http_error_shape
//! [`Router::server_errors`]: crate::Router::server_errors

use std::sync::Arc;

use ::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use ::http::StatusCode;
use serde_json::Value;

use crate::cors::Cors;
use crate::http_routes::{rejection_response, HttpResponse};
use crate::{Error, Rejection};

/// How the router answers an HTTP route whose handler failed with a server-side
/// [`Error`] (not a [`Rejection`]), when set with
/// [`Router::server_errors`](crate::Router::server_errors): as an error of code
/// `server_error` (in the router's [error shape](crate::Router::http_error_shape)),
/// `503 Service Unavailable` with `Retry-After` when the backend throttled
/// ([`Error::is_throttled`]), else `500 Internal Server Error`. The client, a browser
/// page included, then sees a status and a body it can show, with the router's CORS
/// headers, instead of the gateway's bare `Internal server error`.
///
/// ```
/// use wsgw_core::{Error, IntoHttpResponse, ServerErrors};
///
/// let errors = ServerErrors::new().busy_message("the store is busy; retry shortly");
/// let busy = errors.rejection(&Error::Throttled { backend: "dynamodb", message: "slow down".into() });
/// let answer = busy.into_http_response()?;
/// assert_eq!(answer.status(), 503);
/// assert_eq!(answer.headers()["retry-after"], "1");
/// assert_eq!(
///     answer.body().as_text(),
///     Some(r#"{"type":"error","error":"server_error","detail":"the store is busy; retry shortly"}"#)
/// );
/// let failed = errors.rejection(&Error::invalid_input("a bug"));
/// assert_eq!(failed.status(), 500);
/// assert_eq!(failed.detail(), Some("Internal server error"), "the error itself is only logged");
/// # Ok::<(), wsgw_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerErrors {
    code: String,
    message: String,
    busy_message: String,
    retry_after_seconds: u32,
}

impl Default for ServerErrors {
    fn default() -> Self {
        ServerErrors::new()
    }
}

impl ServerErrors {
    /// Code `server_error`, messages `Internal server error` and
    /// `Service unavailable; retry shortly`, `Retry-After: 1`.
    pub fn new() -> Self {
        ServerErrors {
            code: "server_error".to_owned(),
            message: "Internal server error".to_owned(),
            busy_message: "Service unavailable; retry shortly".to_owned(),
            retry_after_seconds: 1,
        }
    }

    /// The code of both answers.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }

    /// The message of the 500 answer (the error itself is logged, never sent).
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The message of the 503 answer to a throttled backend.
    pub fn busy_message(mut self, message: impl Into<String>) -> Self {
        self.busy_message = message.into();
        self
    }

    /// The `Retry-After` of the 503 answer, in seconds.
    pub fn retry_after_seconds(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = seconds;
        self
    }

    /// The answer to `error`, as a rejection with its status (and `Retry-After`).
    pub fn rejection(&self, error: &Error) -> Rejection {
        let answer = Rejection::new(self.code.as_str());
        if error.is_throttled() {
            answer
                .with_detail(self.busy_message.as_str())
                .with_status(StatusCode::SERVICE_UNAVAILABLE.as_u16())
                .with_header(RETRY_AFTER, self.retry_after_seconds.into())
        } else {
            answer
                .with_detail(self.message.as_str())
                .with_status(StatusCode::INTERNAL_SERVER_ERROR.as_u16())
        }
    }
}

/// An application's error body: `shape(code, message)`.
pub(crate) type ErrorShape = Arc<dyn Fn(&str, &str) -> Value + Send + Sync>;

/// The router's settings for the answers of its HTTP routes.
#[derive(Clone, Default)]
pub(crate) struct HttpAnswers {
    pub(crate) cors: Option<Cors>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) error_shape: Option<ErrorShape>,
    pub(crate) server_errors: Option<ServerErrors>,
}

impl HttpAnswers {
    /// The answer to `rejection`, its frame in the application's error shape if set.
    pub(crate) fn rejection(&self, rejection: &Rejection) -> HttpResponse {
        let body = match &self.error_shape {
            Some(shape) => rejection.to_payload_shaped(&**shape),
            None => rejection.to_payload(),
        };
        rejection_response(rejection, body)
    }

    /// The answer to a failed handler: `None` when the router does not answer server
    /// errors (the invocation fails, the gateway answers).
    pub(crate) fn server_error(&self, error: &Error) -> Option<HttpResponse> {
        let answer = self.server_errors.as_ref()?.rejection(error);
        Some(self.rejection(&answer))
    }

    /// `response` with what every answer carries: the CORS headers for a request from
    /// `origin`, then each header the response does not have yet.
    pub(crate) fn finish(
        &self,
        origin: Option<&HeaderValue>,
        mut response: HttpResponse,
    ) -> HttpResponse {
        if let Some(cors) = &self.cors {
            let origin = origin.and_then(|origin| origin.to_str().ok());
            response = cors.apply_for_origin(origin, response);
        }
        for (name, value) in &self.headers {
            if !response.headers().contains_key(name) {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response
    }
}
