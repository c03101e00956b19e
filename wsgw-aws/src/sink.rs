//! `ApiGatewaySink`: the Management API (`@connections`) through
//! `aws-sdk-apigatewaymanagement`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::primitives::{Blob, DateTime as SmithyDateTime};
use aws_sdk_apigatewaymanagement::Client;
use chrono::{DateTime, Utc};
use wsgw_core::{ConnectionId, ConnectionInfo, Error, MessageSink, Payload, Result};

use crate::config::load_sdk_config;

/// API Gateway's largest message payload: 128 KB.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// Environment variable naming a fixed Management API endpoint (custom domains, tests).
pub const MANAGEMENT_ENDPOINT_ENV: &str = "WSGW_MANAGEMENT_ENDPOINT";

/// A [`MessageSink`] over API Gateway's Management API.
///
/// The endpoint is either fixed (`WSGW_MANAGEMENT_ENDPOINT`, or
/// [`with_endpoint`](Self::with_endpoint)) or taken from each event
/// (`https://{domainName}/{stage}`, see [`use_event_endpoint`](Self::use_event_endpoint),
/// which the Lambda glue calls). One client is built per endpoint and reused for the life
/// of the Lambda instance.
///
/// Errors: `GoneException` (or a bare HTTP 410, as some emulators send) → `Gone`;
/// `LimitExceededException` is retried by the SDK and then → `Throttled`;
/// `PayloadTooLargeException` → `PayloadTooLarge`; an SDK timeout (when one is configured
/// in the `SdkConfig`'s timeout settings) → `Timeout`; `ForbiddenException` → a `Backend`
/// error saying which permission is missing.
///
/// As on every API Gateway deployment, sending to a client from its own `$connect`
/// handler fails with `Gone`: the connection opens only after `$connect` returns.
pub struct ApiGatewaySink {
    sdk_config: SdkConfig,
    fixed_endpoint: Option<String>,
    clients: Mutex<HashMap<String, Client>>,
    current: RwLock<Option<Client>>,
    max_payload: usize,
}

impl std::fmt::Debug for ApiGatewaySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiGatewaySink")
            .field("fixed_endpoint", &self.fixed_endpoint)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl ApiGatewaySink {
    /// A sink using this SDK configuration, with no endpoint yet.
    pub fn new(sdk_config: SdkConfig) -> Self {
        ApiGatewaySink {
            sdk_config,
            fixed_endpoint: None,
            clients: Mutex::new(HashMap::new()),
            current: RwLock::new(None),
            max_payload: MAX_PAYLOAD_BYTES,
        }
    }

    /// A sink configured from the environment: credentials and region as the AWS SDK
    /// finds them, and a fixed endpoint when `WSGW_MANAGEMENT_ENDPOINT` is set.
    pub async fn from_env() -> Self {
        let endpoint = std::env::var(MANAGEMENT_ENDPOINT_ENV)
            .ok()
            .filter(|e| !e.is_empty());
        let sink = ApiGatewaySink::new(load_sdk_config(endpoint.as_deref(), None).await);
        match endpoint {
            Some(endpoint) => sink.with_endpoint(endpoint),
            None => sink,
        }
    }

    /// Always uses this endpoint (`https://abc.execute-api.eu-west-1.amazonaws.com/prod`,
    /// or `http://127.0.0.1:8080/local` for the LocalGateway); event endpoints are ignored.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        let client = self.client_for(&endpoint);
        self.fixed_endpoint = Some(endpoint);
        *self
            .current
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = Some(client);
        self
    }

    /// Sets the largest payload sent (bigger ones fail with `PayloadTooLarge` before any
    /// request is made).
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
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

    /// Points the sink at the endpoint of the event being handled, unless a fixed
    /// endpoint is configured. Clients are cached per endpoint.
    pub fn use_event_endpoint(&self, domain_name: &str, stage: &str) {
        if self.fixed_endpoint.is_some() || domain_name.is_empty() {
            return;
        }
        let client = self.client_for(&Self::endpoint_for(domain_name, stage));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(client);
    }

    fn client_for(&self, endpoint: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk_config)
                    .endpoint_url(endpoint)
                    .build();
                Client::from_conf(config)
            })
            .clone()
    }

    fn client(&self) -> Result<Client> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                Error::backend(
                    "apigateway",
                    format!("no Management API endpoint: set {MANAGEMENT_ENDPOINT_ENV} or handle an event first"),
                    None,
                )
            })
    }

    fn map_error<E>(
        &self,
        operation: &str,
        id: &ConnectionId,
        size: usize,
        error: SdkError<E, HttpResponse>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let SdkError::TimeoutError(_) = error {
            return Error::Timeout {
                backend: "apigateway",
                message: format!("{operation} to {id}: no answer within the SDK's timeout"),
            };
        }
        let status = error
            .raw_response()
            .map(|response| response.status().as_u16());
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
                format!("{operation} to {id} failed"),
                Some(Box::new(error) as wsgw_core::BoxError),
            ),
        }
    }
}

fn to_chrono(at: Option<&SmithyDateTime>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.secs(), at.subsec_nanos())
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
        self.client()?
            .post_to_connection()
            .connection_id(id.as_str())
            .data(Blob::new(payload.as_bytes().to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| self.map_error("PostToConnection", id, size, error))
    }

    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        let output = self
            .client()?
            .get_connection()
            .connection_id(id.as_str())
            .send()
            .await
            .map_err(|error| self.map_error("GetConnection", id, 0, error))?;
        let connected_at = to_chrono(output.connected_at()).ok_or_else(|| {
            Error::backend(
                "apigateway",
                format!("GetConnection of {id} returned no connectedAt"),
                None,
            )
        })?;
        let identity = output.identity();
        let mut info = ConnectionInfo::new(
            connected_at,
            identity.and_then(|i| i.source_ip()).map(str::to_owned),
            identity.and_then(|i| i.user_agent()).map(str::to_owned),
        );
        if let Some(last_active_at) = to_chrono(output.last_active_at()) {
            info.last_active_at = last_active_at;
        }
        Ok(info)
    }

    async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        self.client()?
            .delete_connection()
            .connection_id(id.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|error| self.map_error("DeleteConnection", id, 0, error))
    }
}
