//! Endpoints are read as every AWS SDK reads them: `AWS_ENDPOINT_URL_<SERVICE>`, else
//! `AWS_ENDPOINT_URL`, neither with `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`; wsgw
//! 0.1's names still work for one release, last, with a deprecation warning.
//!
//! One test in this file: it changes the process's environment.

#[path = "support/logs.rs"]
mod logs;

use lambda_runtime::tracing::subscriber;
use wsgw_aws::config::configured_endpoint;
use wsgw_aws::dynamo::{DEPRECATED_DYNAMODB_ENDPOINT_ENV, DYNAMODB_ENDPOINT_ENV};
use wsgw_aws::{DEPRECATED_MANAGEMENT_ENDPOINT_ENV, MANAGEMENT_ENDPOINT_ENV};

#[test]
fn endpoints_follow_the_sdks_variables_and_the_old_names_warn() {
    let logs = logs::CapturedLogs::default();
    let writer = logs.clone();
    subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    assert_eq!(DYNAMODB_ENDPOINT_ENV, "AWS_ENDPOINT_URL_DYNAMODB");
    assert_eq!(
        MANAGEMENT_ENDPOINT_ENV,
        "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
    );
    let dynamodb = || configured_endpoint(DYNAMODB_ENDPOINT_ENV, DEPRECATED_DYNAMODB_ENDPOINT_ENV);
    let management =
        || configured_endpoint(MANAGEMENT_ENDPOINT_ENV, DEPRECATED_MANAGEMENT_ENDPOINT_ENV);
    for name in [
        DYNAMODB_ENDPOINT_ENV,
        DEPRECATED_DYNAMODB_ENDPOINT_ENV,
        MANAGEMENT_ENDPOINT_ENV,
        DEPRECATED_MANAGEMENT_ENDPOINT_ENV,
        "AWS_ENDPOINT_URL",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ] {
        std::env::remove_var(name);
    }
    assert_eq!((dynamodb(), management()), (None, None));

    // The old names: still read, each with a warning naming the new one.
    std::env::set_var(DEPRECATED_DYNAMODB_ENDPOINT_ENV, "http://127.0.0.1:5000");
    std::env::set_var(
        DEPRECATED_MANAGEMENT_ENDPOINT_ENV,
        "http://127.0.0.1:8080/local",
    );
    assert_eq!(dynamodb().as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(management().as_deref(), Some("http://127.0.0.1:8080/local"));
    let warned = logs.take();
    for (old, new) in [
        ("WSGW_DYNAMODB_ENDPOINT", "AWS_ENDPOINT_URL_DYNAMODB"),
        (
            "WSGW_MANAGEMENT_ENDPOINT",
            "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
        ),
    ] {
        let line = warned
            .lines()
            .find(|line| line.contains(&format!("{old} is deprecated")))
            .unwrap_or_else(|| panic!("a warning about {old}: {warned}"));
        assert!(line.contains("WARN") && line.contains(new), "{line}");
    }

    // The SDK's global variable wins over the old names, for both services.
    std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
    assert_eq!(dynamodb().as_deref(), Some("http://127.0.0.1:4566"));
    assert_eq!(management().as_deref(), Some("http://127.0.0.1:4566"));
    assert_eq!(logs.take(), "", "no warning when the SDK's names are used");

    // A service's own variable wins over the global one.
    std::env::set_var(DYNAMODB_ENDPOINT_ENV, "http://127.0.0.1:8000");
    std::env::set_var(MANAGEMENT_ENDPOINT_ENV, "http://127.0.0.1:9000/prod");
    assert_eq!(dynamodb().as_deref(), Some("http://127.0.0.1:8000"));
    assert_eq!(management().as_deref(), Some("http://127.0.0.1:9000/prod"));

    // As in every AWS SDK, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores the SDK's
    // variables (wsgw's deprecated ones are its own, read last).
    std::env::set_var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
    std::env::remove_var(DEPRECATED_DYNAMODB_ENDPOINT_ENV);
    std::env::remove_var(DEPRECATED_MANAGEMENT_ENDPOINT_ENV);
    assert_eq!((dynamodb(), management()), (None, None));
}
