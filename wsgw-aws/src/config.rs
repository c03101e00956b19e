//! Shared AWS SDK configuration: the environment in Lambda, dummy credentials for local
//! endpoints.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigatewaymanagement::config::{Credentials, SharedCredentialsProvider};

/// Region used when none is configured and the endpoint is local.
pub const LOCAL_REGION: &str = "us-east-1";

fn has_env_credentials() -> bool {
    std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some()
        || std::env::var_os("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
}

/// Loads the SDK configuration from the environment (region, credentials, retries), as
/// every AWS SDK does in Lambda.
///
/// When `local_endpoint` is set (a DynamoDB emulator, the LocalGateway's `@connections`)
/// and the environment holds no credentials, static dummy credentials and region
/// `us-east-1` are used instead, so local runs need no AWS account.
pub async fn load_sdk_config(local_endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if local_endpoint.is_some() && !has_env_credentials() {
        loader = loader.credentials_provider(SharedCredentialsProvider::new(local_credentials()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return config
            .into_builder()
            .region(Region::new(LOCAL_REGION))
            .build();
    }
    config
}

/// The dummy credentials used against local endpoints.
pub fn local_credentials() -> Credentials {
    Credentials::new("wsgw-local", "wsgw-local", None, None, "wsgw-local")
}

/// A configuration with dummy credentials and region `us-east-1`, for tests against
/// local endpoints; nothing is read from the environment.
pub fn local_sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(SharedCredentialsProvider::new(local_credentials()))
        .build()
}
