//! The Management API's three calls (`POST`, `GET`, `DELETE` of
//! `@connections/{id}`) without the SDK's per-request orchestration: the request is signed
//! with `aws-sigv4` (the SDK's own signer) and sent through the SDK's default HTTP
//! connector (`aws-smithy-http-client`: hyper, rustls, one pool of keep-alive
//! connections), with the SDK configuration's credentials (cached until they near expiry),
//! region, retry settings and timeouts.
//!
//! Why: a `@connections` post through `aws-sdk-apigatewaymanagement` spent about a third
//! of its CPU in the orchestrator, interceptors and runtime-plugin merging (issue 19's
//! profile, bench/FINDINGS.md); a broadcast makes one post per recipient.

use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Connector;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use bytes::Bytes;

/// The signing name of the Management API (`execute-api`, as API Gateway checks it).
const SIGNING_NAME: &str = "execute-api";

/// The connect timeout when the configuration sets none: the SDK clients' default
/// (`aws-smithy-runtime`'s `DEFAULT_CONNECT_TIMEOUT`, not exported).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// Credentials are fetched again this long before they expire (the SDK's lazy identity
/// cache's default buffer).
const EXPIRY_BUFFER: Duration = Duration::from_secs(10);

/// HTTP statuses the SDK retries as transient server errors.
const TRANSIENT_STATUSES: [u16; 4] = [500, 502, 503, 504];

/// Why a Management API call failed, after its retries.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The configured operation timeout passed (or every attempt timed out).
    #[error("no answer within the configured timeout")]
    Timeout,
    /// The service answered with an error status.
    #[error("HTTP {status}{}{}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Service {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// No request could be made or no answer read (connection refused, reset, TLS).
    #[error("the request failed: {0}")]
    Transport(#[source] aws_smithy_runtime_api::box_error::BoxError),
    /// No credentials could be had, or the request could not be signed.
    #[error("the request could not be signed: {0}")]
    Signing(#[source] aws_smithy_runtime_api::box_error::BoxError),
}

impl CallError {
    /// The service's error code (`GoneException`, …) when it sent one.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            CallError::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status when the service answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            CallError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's message when it sent one.
    pub(crate) fn message(&self) -> Option<&str> {
        match self {
            CallError::Service { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// Whether the SDK's standard retry strategy retries it: throttling and transient
    /// error codes, HTTP 429 and 5xx gateway errors, connection failures and timeouts
    /// of one attempt.
    fn is_retryable(&self) -> bool {
        match self {
            CallError::Service { status, code, .. } => {
                *status == 429
                    || TRANSIENT_STATUSES.contains(status)
                    || code.as_deref().is_some_and(|code| {
                        THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code)
                    })
            }
            CallError::Transport(_) | CallError::Timeout => true,
            CallError::Signing(_) => false,
        }
    }
}

/// A successful answer: its body.
pub(crate) type Answer = Bytes;

/// Credentials from the configuration's provider, kept until they near expiry; one
/// fetch at a time when they must be renewed.
#[derive(Debug)]
struct CachedCredentials {
    provider: Option<SharedCredentialsProvider>,
    current: RwLock<Option<Identity>>,
    renewing: tokio::sync::Mutex<()>,
}

impl CachedCredentials {
    fn fresh(&self) -> Option<Identity> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|identity| {
                identity
                    .expiration()
                    .is_none_or(|expiry| expiry > SystemTime::now() + EXPIRY_BUFFER)
            })
            .cloned()
    }

    async fn get(&self) -> Result<Identity, CallError> {
        if let Some(identity) = self.fresh() {
            return Ok(identity);
        }
        let _renewing = self.renewing.lock().await;
        if let Some(identity) = self.fresh() {
            return Ok(identity);
        }
        let provider = self.provider.as_ref().ok_or_else(|| {
            CallError::Signing("the SDK configuration has no credentials provider".into())
        })?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|error| CallError::Signing(Box::new(error)))?;
        let identity = Identity::from(credentials);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(identity.clone());
        Ok(identity)
    }
}

/// One configuration's HTTP connector, credentials, region, retries and timeouts, shared
/// by the sinks of every endpoint it posts to.
#[derive(Debug)]
pub(crate) struct ManagementClient {
    connector: SharedHttpConnector,
    credentials: CachedCredentials,
    region: Option<String>,
    retry: RetryConfig,
    operation_timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
}

/// `call`'s outcome, or `CallError::Timeout` once `limit` (when set) has passed.
async fn within(
    limit: Option<Duration>,
    call: impl std::future::Future<Output = Result<Answer, CallError>>,
) -> Result<Answer, CallError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(CallError::Timeout)),
        None => call.await,
    }
}

impl ManagementClient {
    pub(crate) fn new(sdk_config: &SdkConfig) -> Self {
        let timeouts = sdk_config.timeout_config();
        let settings = HttpConnectorSettings::builder().connect_timeout(
            timeouts
                .and_then(|t| t.connect_timeout())
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        );
        let mut settings = settings;
        settings.set_read_timeout(timeouts.and_then(|t| t.read_timeout()));
        let mut connector = Connector::builder().connector_settings(settings.build());
        if let Some(sleep) = sdk_config.sleep_impl().or_else(default_async_sleep) {
            connector = connector.sleep_impl(sleep);
        }
        let connector = connector
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .build();
        ManagementClient {
            connector: SharedHttpConnector::new(connector),
            credentials: CachedCredentials {
                provider: sdk_config.credentials_provider(),
                current: RwLock::new(None),
                renewing: tokio::sync::Mutex::new(()),
            },
            region: sdk_config.region().map(|region| region.as_ref().to_owned()),
            retry: sdk_config
                .retry_config()
                .cloned()
                .unwrap_or_else(RetryConfig::standard),
            operation_timeout: timeouts.and_then(|t| t.operation_timeout()),
            attempt_timeout: timeouts.and_then(|t| t.operation_attempt_timeout()),
        }
    }

    /// `method` of `url` with `body`, retried as the SDK's standard strategy retries
    /// (exponential backoff with full jitter, up to the configured attempts), within the
    /// configured operation timeout.
    pub(crate) async fn call(
        &self,
        method: http::Method,
        url: &str,
        body: Bytes,
    ) -> Result<Answer, CallError> {
        within(self.operation_timeout, self.attempts(&method, url, body)).await
    }

    async fn attempts(
        &self,
        method: &http::Method,
        url: &str,
        body: Bytes,
    ) -> Result<Answer, CallError> {
        let max_attempts = self.retry.max_attempts().max(1);
        let mut attempt = 1;
        loop {
            let result = within(
                self.attempt_timeout,
                self.attempt(method, url, body.clone()),
            )
            .await;
            match result {
                Err(error) if attempt < max_attempts && error.is_retryable() => {
                    let backoff = self.backoff(attempt);
                    tracing::debug!(
                        %method, url, attempt, ?backoff, %error,
                        "Management API call retried"
                    );
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// The SDK's standard backoff before retry `attempt`: a random share of
    /// `initial_backoff × 2^(attempt−1)`, capped at `max_backoff`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = 2_u32
            .checked_pow(attempt - 1)
            .and_then(|power| self.retry.initial_backoff().checked_mul(power))
            .unwrap_or(self.retry.max_backoff())
            .min(self.retry.max_backoff());
        exponential.mul_f64(fastrand::f64())
    }

    async fn attempt(
        &self,
        method: &http::Method,
        url: &str,
        body: Bytes,
    ) -> Result<Answer, CallError> {
        let identity = self.credentials.get().await?;
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(http::header::CONTENT_LENGTH, body.len());
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/octet-stream");
        }
        let mut request = request
            .body(SdkBody::from(body.clone()))
            .map_err(|error| CallError::Signing(Box::new(error)))?;
        self.sign(&identity, &mut request, &body)?;
        let request =
            HttpRequest::try_from(request).map_err(|error| CallError::Signing(Box::new(error)))?;
        let response = self.connector.call(request).await.map_err(|error| {
            if error.is_timeout() {
                CallError::Timeout
            } else {
                CallError::Transport(Box::new(error))
            }
        })?;
        let status = response.status().as_u16();
        let code = response
            .headers()
            .get("x-amzn-errortype")
            .map(|value| value.split(':').next().unwrap_or(value).to_owned());
        let answer = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|error| CallError::Transport(Box::new(error)))?
            .into_bytes();
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let (body_code, message) = error_body(&answer);
        Err(CallError::Service {
            status,
            code: code.or(body_code),
            message,
        })
    }

    fn sign(
        &self,
        identity: &Identity,
        request: &mut http::Request<SdkBody>,
        body: &[u8],
    ) -> Result<(), CallError> {
        let signing_error =
            |error: &dyn std::fmt::Display| CallError::Signing(error.to_string().into());
        let region = self
            .region
            .as_deref()
            .ok_or_else(|| CallError::Signing("the SDK configuration has no region".into()))?;
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| signing_error(&error))?
            .into();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.uri().to_string(),
            headers,
            SignableBody::Bytes(body),
        )
        .map_err(|error| signing_error(&error))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| signing_error(&error))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// The error code and message of an AWS JSON error body (`{"__type"|"code": …,
/// "message"|"Message": …}`), when it is one.
fn error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type", alias = "code")]
        code: Option<String>,
        #[serde(alias = "Message", alias = "errorMessage")]
        message: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => (
            parsed.code.map(|code| {
                // `aws.protocol#Name:extra` → `Name`, as the SDK reads it.
                let code = code.rsplit('#').next().unwrap_or(&code);
                code.split(':').next().unwrap_or(code).to_owned()
            }),
            parsed.message,
        ),
        Err(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_as_the_sdk_reads_them() {
        assert_eq!(
            error_body(br#"{"__type":"com.amazon#GoneException:http://x","message":"gone"}"#),
            (Some("GoneException".to_owned()), Some("gone".to_owned()))
        );
        assert_eq!(
            error_body(br#"{"code":"LimitExceededException","Message":"slow"}"#),
            (
                Some("LimitExceededException".to_owned()),
                Some("slow".to_owned())
            )
        );
        assert_eq!(error_body(b"not json"), (None, None));
        assert_eq!(error_body(b""), (None, None));
    }

    #[test]
    fn throttling_and_transient_answers_are_retried_and_others_are_not() {
        let answer = |status, code: Option<&str>| CallError::Service {
            status,
            code: code.map(str::to_owned),
            message: None,
        };
        assert!(answer(429, None).is_retryable());
        assert!(answer(400, Some("LimitExceededException")).is_retryable());
        assert!(answer(400, Some("TooManyRequestsException")).is_retryable());
        assert!(answer(503, None).is_retryable());
        assert!(answer(408, Some("RequestTimeoutException")).is_retryable());
        assert!(CallError::Timeout.is_retryable());
        assert!(!answer(410, Some("GoneException")).is_retryable());
        assert!(!answer(413, Some("PayloadTooLargeException")).is_retryable());
        assert!(!answer(403, Some("ForbiddenException")).is_retryable());
        assert!(!CallError::Signing("no region".into()).is_retryable());
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_with_jitter() {
        let client = ManagementClient::new(
            &crate::config::local_sdk_config()
                .into_builder()
                .retry_config(
                    RetryConfig::standard()
                        .with_initial_backoff(Duration::from_millis(100))
                        .with_max_backoff(Duration::from_millis(350)),
                )
                .build(),
        );
        for _ in 0..200 {
            assert!(client.backoff(1) <= Duration::from_millis(100));
            assert!(client.backoff(2) <= Duration::from_millis(200));
            assert!(client.backoff(5) <= Duration::from_millis(350));
        }
        let spread: Vec<Duration> = (0..50).map(|_| client.backoff(3)).collect();
        assert!(
            spread.iter().any(|d| *d != spread[0]),
            "jittered: {spread:?}"
        );
    }
}
