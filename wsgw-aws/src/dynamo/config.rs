//! Building the DynamoDB client: endpoint override, local credentials, retries.

use aws_sdk_dynamodb::Client;

use crate::config::{configured_endpoint, load_sdk_config};
pub(crate) use crate::config::{non_empty_env, MAX_ATTEMPTS};

/// Environment variable naming the connections table.
pub const CONNECTIONS_TABLE_ENV: &str = "WSGW_CONNECTIONS_TABLE";
/// Environment variable naming the history table.
pub const HISTORY_TABLE_ENV: &str = "WSGW_HISTORY_TABLE";
/// Environment variable overriding the DynamoDB endpoint (a local emulator such as
/// `http://127.0.0.1:5000`): the AWS SDKs' own name; `AWS_ENDPOINT_URL` applies too
/// (see [`configured_endpoint`](crate::config::configured_endpoint)).
pub const DYNAMODB_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_DYNAMODB";
/// wsgw 0.1's name for [`DYNAMODB_ENDPOINT_ENV`]: still read for one release, with a
/// deprecation warning.
pub const DEPRECATED_DYNAMODB_ENDPOINT_ENV: &str = "WSGW_DYNAMODB_ENDPOINT";

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
            endpoint: configured_endpoint(DYNAMODB_ENDPOINT_ENV, DEPRECATED_DYNAMODB_ENDPOINT_ENV),
            region: None,
        }
    }

    /// The given client, or one built from the shared AWS configuration (see
    /// [`load_sdk_config`]): environment credentials with standard retries, or dummy
    /// credentials and `us-east-1` against a local endpoint.
    pub(crate) async fn client(&self) -> Client {
        if let Some(client) = &self.client {
            return client.clone();
        }
        let sdk_config = load_sdk_config(self.endpoint.as_deref(), self.region.as_deref()).await;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk_config);
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_url(endpoint.clone());
        }
        Client::from_conf(config.build())
    }
}

/// A DynamoDB client for a local endpoint (moto's server, DynamoDB Local): dummy
/// credentials unless the environment has some, `region` (default `us-east-1`), the
/// standard retries.
///
/// ```no_run
/// # async fn run() {
/// let client = wsgw_aws::dynamo::local_client("http://127.0.0.1:5000", None).await;
/// # let _ = client;
/// # }
/// ```
pub async fn local_client(endpoint: &str, region: Option<&str>) -> Client {
    ClientSettings {
        client: None,
        endpoint: Some(endpoint.to_owned()),
        region: region.map(str::to_owned),
    }
    .client()
    .await
}
