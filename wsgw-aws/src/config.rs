//! Shared AWS SDK configuration: the environment in Lambda, dummy credentials for local
//! endpoints, standard retries.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigatewaymanagement::config::{Credentials, SharedCredentialsProvider};

/// Region used when none is configured and the endpoint is local.
pub const LOCAL_REGION: &str = "us-east-1";

/// Attempts per request (the first one included) before a throttled or transient error
/// is returned: the SDK's standard retry mode with exponential backoff and jitter.
pub const MAX_ATTEMPTS: u32 = 5;

/// An environment variable's value, unless it is unset or blank.
pub(crate) fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Every AWS SDK's endpoint override for all services (see
/// [`configured_endpoint`]).
pub const ENDPOINT_URL_ENV: &str = "AWS_ENDPOINT_URL";

/// `true` makes every AWS SDK ignore the configured endpoint variables.
pub const IGNORE_CONFIGURED_ENDPOINT_URLS_ENV: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// The endpoint the environment configures for one service, read as every AWS SDK reads
/// it: `service_env` (`AWS_ENDPOINT_URL_<SERVICE ID>`, such as
/// `AWS_ENDPOINT_URL_DYNAMODB`), else [`ENDPOINT_URL_ENV`], neither when
/// [`IGNORE_CONFIGURED_ENDPOINT_URLS_ENV`] is `true`.
///
/// `deprecated` is wsgw 0.1's own name for the same setting: it is still read, last,
/// for one release, and logs a deprecation warning naming the SDK's variable.
pub fn configured_endpoint(service_env: &str, deprecated: &str) -> Option<String> {
    let ignored = non_empty_env(IGNORE_CONFIGURED_ENDPOINT_URLS_ENV)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    if !ignored {
        if let Some(endpoint) =
            non_empty_env(service_env).or_else(|| non_empty_env(ENDPOINT_URL_ENV))
        {
            return Some(endpoint);
        }
    }
    let endpoint = non_empty_env(deprecated)?;
    tracing::warn!(
        deprecated,
        replacement = service_env,
        "{deprecated} is deprecated and will be removed in the next release: set {service_env} \
         (or {ENDPOINT_URL_ENV}), the variable every AWS SDK reads"
    );
    Some(endpoint)
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

/// Loads the SDK configuration from the environment (region, credentials), as every AWS
/// SDK does in Lambda, with standard retries ([`MAX_ATTEMPTS`] attempts, exponential
/// backoff with jitter; throttling errors are retried).
///
/// `region` overrides the environment's region. When `local_endpoint` is set (a DynamoDB
/// emulator, the LocalGateway's `@connections`) and the environment holds no credentials,
/// static dummy credentials are used, and region `us-east-1` when none is configured, so
/// local runs need no AWS account.
pub async fn load_sdk_config(local_endpoint: Option<&str>, region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(
        RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(50)),
    );
    let region = match (region, local_endpoint) {
        (Some(region), _) => RegionProviderChain::first_try(Region::new(region.to_owned())),
        (None, Some(_)) => RegionProviderChain::default_provider().or_else(LOCAL_REGION),
        (None, None) => RegionProviderChain::default_provider(),
    };
    loader = loader.region(region);
    if local_endpoint.is_some() && !credentials_in_env() {
        loader = loader.credentials_provider(SharedCredentialsProvider::new(local_credentials()));
    }
    loader.load().await
}

/// The dummy credentials used against local endpoints.
pub fn local_credentials() -> Credentials {
    Credentials::new("wsgw-local", "wsgw-local", None, None, "wsgw-local")
}

/// A configuration with dummy credentials and region `us-east-1`, for tests against
/// local endpoints; nothing is read from the environment.
pub fn local_sdk_config() -> SdkConfig {
    local_sdk_config_signing_with(local_credentials())
}

/// [`local_sdk_config`] signing with `credentials`: for an
/// [`ApiGatewaySink`](crate::ApiGatewaySink) or any Management API client calling a
/// LocalGateway that checks signatures, with the key pair it knows
/// (`RunningGateway::management_access().credentials()` in `wsgw-memory`).
///
/// ```
/// use wsgw_aws::config::local_sdk_config_signing_with;
/// use aws_sdk_apigatewaymanagement::config::Credentials;
///
/// let config = local_sdk_config_signing_with(Credentials::new("AKIDLOCAL", "secret", None, None, "local-gateway"));
/// assert_eq!(config.region().map(|r| r.as_ref()), Some("us-east-1"));
/// ```
pub fn local_sdk_config_signing_with(credentials: Credentials) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}
