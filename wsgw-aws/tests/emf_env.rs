//! The metrics configuration from the environment. One test in its own binary: it sets
//! process-wide variables.

use wsgw_aws::metrics::{Emf, MetricsConfigError};

const VARIABLES: [&str; 5] = [
    "WSGW_METRICS",
    "WSGW_METRICS_NAMESPACE",
    "WSGW_METRICS_DIMENSIONS",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
];

fn clear() {
    for name in VARIABLES {
        std::env::remove_var(name);
    }
}

#[test]
fn metrics_are_on_in_lambda_off_elsewhere_unless_asked_and_bad_settings_are_named() {
    clear();
    assert!(Emf::from_env().unwrap().is_none(), "off outside Lambda");

    std::env::set_var("WSGW_METRICS", "emf");
    assert!(Emf::from_env().unwrap().is_some(), "asked for locally");

    clear();
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001");
    std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "chat-ChatFunction-1x2y");
    let emf = Emf::from_env().unwrap().expect("on in Lambda");
    assert_eq!(emf.namespace_name(), "wsgw");
    assert!(format!("{emf:?}").contains("chat-ChatFunction-1x2y"));

    std::env::set_var("WSGW_METRICS", "off");
    assert!(Emf::from_env().unwrap().is_none(), "turned off in Lambda");

    std::env::set_var("WSGW_METRICS", "loud");
    assert_eq!(
        Emf::from_env().unwrap_err(),
        MetricsConfigError::Switch("loud".to_owned())
    );

    std::env::set_var("WSGW_METRICS", "on");
    std::env::set_var("WSGW_METRICS_NAMESPACE", "acme/chat");
    std::env::set_var("WSGW_METRICS_DIMENSIONS", "Route;FunctionName,Stage");
    let emf = Emf::from_env().unwrap().expect("on");
    assert_eq!(emf.namespace_name(), "acme/chat");
    assert!(format!("{emf:?}").contains(r#"[["Route"], ["FunctionName", "Stage"]]"#));

    std::env::set_var("WSGW_METRICS_DIMENSIONS", "Route,Room");
    let error = Emf::from_env().unwrap_err().to_string();
    assert!(
        error.starts_with("WSGW_METRICS_DIMENSIONS=\"Route,Room\": unknown dimension `Room`"),
        "{error}"
    );

    std::env::set_var("WSGW_METRICS_DIMENSIONS", "Route");
    std::env::set_var("WSGW_METRICS_NAMESPACE", "AWS/ApiGateway");
    assert!(matches!(
        Emf::from_env(),
        Err(MetricsConfigError::Namespace(_))
    ));
    clear();
}
