//! `ApiGatewaySink`: the Management API (`@connections`), signed with the AWS SDK's
//! SigV4 signer over its HTTP client (see `management_client`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_config::SdkConfig;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use wsgw_core::{ConnectionId, ConnectionInfo, Error, MessageSink, NotConfigured, Payload, Result};

use crate::config::{configured_endpoint, load_sdk_config};
use crate::management_client::{CallError, ManagementClient};

/// What a connection id is encoded with in the request path: every byte but the
/// unreserved ones, as the SDK encodes path labels.
const PATH_LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// API Gateway's largest message payload: 128 KB.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// Environment variable naming a fixed Management API endpoint (custom domains, tests):
/// the AWS SDKs' own name for the service `ApiGatewayManagementApi`; `AWS_ENDPOINT_URL`
/// applies too (see [`configured_endpoint`](crate::config::configured_endpoint)).
pub const MANAGEMENT_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI";
/// wsgw 0.1's name for [`MANAGEMENT_ENDPOINT_ENV`]: still read for one release, with a
/// deprecation warning.
pub const DEPRECATED_MANAGEMENT_ENDPOINT_ENV: &str = "WSGW_MANAGEMENT_ENDPOINT";

/// A [`MessageSink`] over API Gateway's Management API at one endpoint
/// (`https://{domainName}/{stage}`, or a custom domain's).
///
/// Made by [`ManagementApi`] for each request's own endpoint (the Lambda glue does
/// that), or directly for a known endpoint with [`new`](Self::new).
///
/// Each request is signed with the `SdkConfig`'s credentials (fetched once and kept
/// until they near expiry) and region, sent over one pool of keep-alive connections with
/// its connect and read timeouts, and retried as the SDK's standard strategy retries
/// (its `RetryConfig`'s attempts and backoff, with jitter: throttling and transient
/// errors, HTTP 429 and 5xx, connection failures), within its operation timeout.
///
/// Errors: `GoneException` (or a bare HTTP 410, as some emulators send) → `Gone`;
/// `LimitExceededException` (or HTTP 429) is retried and then → `Throttled`;
/// `PayloadTooLargeException` → `PayloadTooLarge`; a timeout (when one is configured
/// in the `SdkConfig`'s timeout settings) → `Timeout`; `ForbiddenException` → a `Backend`
/// error saying which permission is missing.
///
/// As on every API Gateway deployment, sending to a client from its own `$connect`
/// handler fails with `Gone`: the connection opens only after `$connect` returns.
///
/// ```
/// use wsgw_aws::config::local_sdk_config;
/// use wsgw_aws::ApiGatewaySink;
///
/// let sink = ApiGatewaySink::new(&local_sdk_config(), "http://127.0.0.1:8080/local");
/// assert_eq!(sink.endpoint(), "http://127.0.0.1:8080/local");
/// ```
#[derive(Clone)]
pub struct ApiGatewaySink {
    client: Arc<ManagementClient>,
    endpoint: String,
    /// `{endpoint}/@connections/`, to which a connection's encoded id is appended.
    connections: String,
    max_payload: usize,
}

impl std::fmt::Debug for ApiGatewaySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiGatewaySink")
            .field("endpoint", &self.endpoint)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl ApiGatewaySink {
    /// A sink posting to the Management API at `endpoint` with this SDK configuration.
    ///
    /// From `sdk_config` the sink takes the credentials provider (credentials cached until
    /// 10 s before they expire), the region, the retry configuration (attempts and
    /// backoff; throttling, 5xx and connection failures are retried) and the timeouts.
    /// Its HTTP client is the AWS SDK's default one (rustls), built here: an
    /// `http_client` set on `sdk_config` (a proxy, a custom TLS setup) is not used.
    pub fn new(sdk_config: &SdkConfig, endpoint: impl Into<String>) -> Self {
        Self::with_client(Arc::new(ManagementClient::new(sdk_config)), endpoint.into())
    }

    /// A sink at `endpoint` sharing `client` (its connections and credentials) with the
    /// other endpoints' sinks.
    fn with_client(client: Arc<ManagementClient>, endpoint: String) -> Self {
        let connections = format!("{}/@connections/", endpoint.trim_end_matches('/'));
        ApiGatewaySink {
            client,
            endpoint,
            connections,
            max_payload: MAX_PAYLOAD_BYTES,
        }
    }

    /// The URL of one connection's `@connections` resource.
    fn url(&self, id: &ConnectionId) -> String {
        let mut url = self.connections.clone();
        url.extend(utf8_percent_encode(id.as_str(), PATH_LABEL));
        url
    }

    /// Sets the largest payload sent (bigger ones fail with `PayloadTooLarge` before any
    /// request is made).
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The endpoint it posts to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The Management API endpoint for an event's domain name and stage.
    ///
    /// ```
    /// use wsgw_aws::ApiGatewaySink;
    ///
    /// assert_eq!(
    ///     ApiGatewaySink::endpoint_for("abc.execute-api.eu-west-1.amazonaws.com", "prod"),
    ///     "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
    /// );
    /// ```
    pub fn endpoint_for(domain_name: &str, stage: &str) -> String {
        format!("https://{domain_name}/{stage}")
    }

    fn map_error(
        &self,
        operation: &str,
        id: &ConnectionId,
        size: usize,
        error: CallError,
    ) -> Error {
        if let CallError::Timeout = error {
            return Error::Timeout {
                backend: "apigateway",
                message: format!("{operation} to {id}: no answer within the SDK's timeout"),
            };
        }
        let status = error.status();
        let code = error.code().map(str::to_owned);
        match (code.as_deref(), status) {
            (Some("GoneException"), _) | (None, Some(410)) => Error::Gone {
                connection_id: id.clone(),
            },
            (Some("LimitExceededException"), _) | (None, Some(429)) => Error::Throttled {
                backend: "apigateway",
                message: format!("{operation} to {id}: {}", error.message().unwrap_or("limit exceeded")),
            },
            (Some("PayloadTooLargeException"), _) | (None, Some(413)) => Error::PayloadTooLarge {
                size,
                limit: self.max_payload,
            },
            (Some("ForbiddenException"), _) | (None, Some(403)) => Error::backend(
                "apigateway",
                format!(
                    "{operation} to {id} is forbidden: the caller needs execute-api:ManageConnections on \
                     arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/POST/@connections/*"
                ),
                Some(Box::new(error) as wsgw_core::BoxError),
            ),
            _ => Error::backend(
                "apigateway",
                format!("{operation} to {id} at {} failed", self.endpoint),
                Some(Box::new(error) as wsgw_core::BoxError),
            ),
        }
    }
}

/// A `GetConnection` answer, as the Management API sends it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetConnectionOutput {
    connected_at: Option<DateTime<Utc>>,
    last_active_at: Option<DateTime<Utc>>,
    identity: Option<GetConnectionIdentity>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetConnectionIdentity {
    source_ip: Option<String>,
    user_agent: Option<String>,
}

#[async_trait]
impl MessageSink for ApiGatewaySink {
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()> {
        let size = payload.len();
        if size > self.max_payload {
            return Err(Error::PayloadTooLarge {
                size,
                limit: self.max_payload,
            });
        }
        self.client
            .call(http::Method::POST, &self.url(id), payload.bytes().clone())
            .await
            .map(|_| ())
            .map_err(|error| self.map_error("PostToConnection", id, size, error))
    }

    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        let answer = self
            .client
            .call(http::Method::GET, &self.url(id), Bytes::new())
            .await
            .map_err(|error| self.map_error("GetConnection", id, 0, error))?;
        let output: GetConnectionOutput = serde_json::from_slice(&answer).map_err(|error| {
            Error::backend(
                "apigateway",
                format!("GetConnection of {id} answered what is not a connection"),
                Some(Box::new(error) as wsgw_core::BoxError),
            )
        })?;
        let connected_at = output.connected_at.ok_or_else(|| {
            Error::backend(
                "apigateway",
                format!("GetConnection of {id} returned no connectedAt"),
                None,
            )
        })?;
        let (source_ip, user_agent) = output
            .identity
            .map(|identity| (identity.source_ip, identity.user_agent))
            .unwrap_or_default();
        let mut info = ConnectionInfo::new(connected_at, source_ip, user_agent);
        if let Some(last_active_at) = output.last_active_at {
            info.last_active_at = last_active_at;
        }
        Ok(info)
    }

    async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        self.client
            .call(http::Method::DELETE, &self.url(id), Bytes::new())
            .await
            .map(|_| ())
            .map_err(|error| self.map_error("DeleteConnection", id, 0, error))
    }
}

/// The Management API of every endpoint a process posts to: one [`ApiGatewaySink`] per
/// endpoint, made on first use and kept for the life of the Lambda instance, and the
/// sink of each request taken from it. No endpoint is shared or switched: two stages or
/// two domains handled concurrently in one process each post to their own.
///
/// The endpoint is the request's `https://{domainName}/{stage}`, unless a fixed one is
/// configured (`AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`, or [`with_endpoint`](Self::with_endpoint):
/// custom domains, tests).
///
/// ```
/// use wsgw_aws::config::local_sdk_config;
/// use wsgw_aws::ManagementApi;
///
/// let api = ManagementApi::new(local_sdk_config());
/// let prod = api.sink_for("abc.execute-api.eu-west-1.amazonaws.com", "prod").unwrap();
/// let dev = api.sink_for("abc.execute-api.eu-west-1.amazonaws.com", "dev").unwrap();
/// assert_eq!(prod.endpoint(), "https://abc.execute-api.eu-west-1.amazonaws.com/prod");
/// assert_eq!(dev.endpoint(), "https://abc.execute-api.eu-west-1.amazonaws.com/dev");
/// assert!(api.sink_for("", "prod").is_none(), "an event without a domain name");
///
/// let fixed = ManagementApi::new(local_sdk_config()).with_endpoint("http://127.0.0.1:8080/local");
/// assert_eq!(fixed.sink_for("abc.example.com", "prod").unwrap().endpoint(), "http://127.0.0.1:8080/local");
/// ```
pub struct ManagementApi {
    client: Arc<ManagementClient>,
    scheme: String,
    fixed: Option<Arc<ApiGatewaySink>>,
    sinks: Mutex<HashMap<String, Arc<ApiGatewaySink>>>,
    max_payload: usize,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field(
                "fixed_endpoint",
                &self.fixed.as_ref().map(|sink| sink.endpoint()),
            )
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl ManagementApi {
    /// The Management API with this SDK configuration; each request's own endpoint.
    pub fn new(sdk_config: SdkConfig) -> Self {
        ManagementApi {
            client: Arc::new(ManagementClient::new(&sdk_config)),
            scheme: "https".to_owned(),
            fixed: None,
            sinks: Mutex::new(HashMap::new()),
            max_payload: MAX_PAYLOAD_BYTES,
        }
    }

    /// Configured from the environment: credentials and region as the AWS SDK finds
    /// them, and a fixed endpoint when `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` (or
    /// `AWS_ENDPOINT_URL`) is set.
    pub async fn from_env() -> Self {
        let endpoint =
            configured_endpoint(MANAGEMENT_ENDPOINT_ENV, DEPRECATED_MANAGEMENT_ENDPOINT_ENV);
        let api = ManagementApi::new(load_sdk_config(endpoint.as_deref(), None).await);
        match endpoint {
            Some(endpoint) => api.with_endpoint(endpoint),
            None => api,
        }
    }

    /// Always posts to this endpoint (`https://ws.example.com/prod` for a custom
    /// domain, `http://127.0.0.1:8080/local` for the LocalGateway); requests' own
    /// endpoints are ignored.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let sink = ApiGatewaySink::with_client(Arc::clone(&self.client), endpoint.into())
            .with_max_payload(self.max_payload);
        self.fixed = Some(Arc::new(sink));
        self
    }

    /// Reaches requests' endpoints with `scheme` instead of `https`: for an API Gateway
    /// emulator serving plain HTTP (`http://{domainName}/{stage}`).
    pub fn with_scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = scheme.into();
        self
    }

    /// Sets the largest payload sent (see [`ApiGatewaySink::with_max_payload`]).
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self.fixed = self
            .fixed
            .map(|sink| Arc::new((*sink).clone().with_max_payload(bytes)));
        self
    }

    /// The sink for a request of `domain_name` and `stage`: the fixed endpoint's when
    /// one is configured, else `https://{domain_name}/{stage}`'s (see
    /// [`ApiGatewaySink::endpoint_for`]); `None` when there is neither (an event without a
    /// domain name).
    pub fn sink_for(&self, domain_name: &str, stage: &str) -> Option<Arc<ApiGatewaySink>> {
        if let Some(fixed) = &self.fixed {
            return Some(Arc::clone(fixed));
        }
        if domain_name.is_empty() {
            return None;
        }
        let endpoint = format!("{}://{domain_name}/{stage}", self.scheme);
        let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        let sink = sinks.entry(endpoint).or_insert_with_key(|endpoint| {
            Arc::new(
                ApiGatewaySink::with_client(Arc::clone(&self.client), endpoint.clone())
                    .with_max_payload(self.max_payload),
            )
        });
        Some(Arc::clone(sink))
    }

    /// The sink handlers of one request use: [`sink_for`](Self::sink_for), or one that
    /// fails saying how to configure an endpoint.
    pub fn sink_for_request(&self, domain_name: &str, stage: &str) -> Arc<dyn MessageSink> {
        match self.sink_for(domain_name, stage) {
            Some(sink) => sink,
            None => Arc::new(NotConfigured::new(
                "Management API endpoint",
                format!(
                    "the event has no requestContext.domainName; set {MANAGEMENT_ENDPOINT_ENV}"
                ),
            )),
        }
    }
}
