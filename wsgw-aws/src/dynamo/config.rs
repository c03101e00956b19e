//! Building the DynamoDB client: endpoint override, local credentials, retries.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;

/// Environment variable naming the connections table.
pub const CONNECTIONS_TABLE_ENV: &str = "WSGW_CONNECTIONS_TABLE";
/// Environment variable naming the history table.
pub const HISTORY_TABLE_ENV: &str = "WSGW_HISTORY_TABLE";
/// Environment variable overriding the DynamoDB endpoint (a local emulator such as
/// `http://127.0.0.1:5000`).
pub const DYNAMODB_ENDPOINT_ENV: &str = "WSGW_DYNAMODB_ENDPOINT";

/// Attempts per request (the first one included) before a throttled or transient error
/// is returned: the SDK's standard retry mode with exponential backoff and jitter.
pub const MAX_ATTEMPTS: u32 = 5;

/// The region used with an endpoint override when the environment names none.
const LOCAL_REGION: &str = "us-east-1";

/// How a builder gets its client: given, or made from the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientSettings {
    pub(crate) client: Option<Client>,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
}

impl ClientSettings {
    pub(crate) fn from_env() -> Self {
        ClientSettings {
            client: None,
            endpoint: non_empty_env(DYNAMODB_ENDPOINT_ENV),
            region: None,
        }
    }

    /// The given client, or one built from the shared AWS configuration (environment,
    /// profile, container or instance credentials) with standard retries.
    ///
    /// With an endpoint override and no credentials in the environment, static dummy
    /// credentials are used (an emulator accepts any), and `us-east-1` when no region is
    /// configured, so local runs need no AWS account.
    pub(crate) async fn client(&self) -> Client {
        if let Some(client) = &self.client {
            return client.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(50)),
        );
        let region = match (&self.region, &self.endpoint) {
            (Some(region), _) => RegionProviderChain::first_try(Region::new(region.clone())),
            (None, Some(_)) => RegionProviderChain::default_provider().or_else(LOCAL_REGION),
            (None, None) => RegionProviderChain::default_provider(),
        };
        loader = loader.region(region);
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
            if !credentials_in_env() {
                loader = loader.credentials_provider(Credentials::new(
                    "wsgw-local",
                    "wsgw-local",
                    None,
                    None,
                    "wsgw-local-endpoint",
                ));
            }
        }
        Client::new(&loader.load().await)
    }
}

/// Whether the environment says where AWS credentials come from.
fn credentials_in_env() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]
    .iter()
    .any(|name| non_empty_env(name).is_some())
}

pub(crate) fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
