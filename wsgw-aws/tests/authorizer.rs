//! The router's authorizer as an API Gateway Lambda REQUEST authorizer, on events shaped
//! as API Gateway sends them (`tests/events/authorizer-*.json`), and the `$connect`
//! event that follows an allowed one.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wsgw_aws::authorizer::{
    authorize_event, decode_authorizer_event, handle_authorizer_event, is_authorizer_event,
    AuthorizerError, AuthorizerOutcome,
};
use wsgw_aws::lambda::LambdaApp;
use wsgw_core::auth::{ApiKeyAuthorizer, Principal};
use wsgw_core::{
    Authorization, Authorizer, Backends, Context, MockConnectionStore, MockMessageSink, Reply,
    Request, Router,
};

const METHOD_ARN: &str =
    "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/production/$connect";

fn event(name: &str) -> Value {
    let path = format!("{}/tests/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn keys() -> ApiKeyAuthorizer {
    ApiKeyAuthorizer::new()
        .key("k-esp32-01", "esp32-01", ["device"])
        .and_then(|keys| keys.key("k-ops-ada", "ada", ["client", "operator"]))
        .expect("two distinct keys")
}

fn backends() -> Backends {
    Backends::new(
        Arc::new(MockConnectionStore::new()),
        Arc::new(MockMessageSink::new()),
    )
}

fn router(authorizer: impl Authorizer) -> Router {
    Router::new().authorizer(authorizer)
}

fn policy_of(outcome: AuthorizerOutcome) -> Value {
    match outcome {
        AuthorizerOutcome::Policy(policy) => policy,
        AuthorizerOutcome::Unauthorized => panic!("expected a policy, got Unauthorized"),
    }
}

#[test]
fn the_request_event_decodes_into_the_connect_request() {
    let raw = event("authorizer-request.json");
    assert!(is_authorizer_event(&raw));
    let decoded = decode_authorizer_event(raw).expect("decodes");
    assert_eq!(decoded.method_arn, METHOD_ARN);
    let request = decoded.request;
    assert_eq!(request.route_key, "$connect");
    assert_eq!(request.connection_id.as_str(), "CNbWfeTWjoECFxg=");
    assert_eq!(request.query_param("token"), Some("k-esp32-01"));
    assert_eq!(request.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(request.stage, "production");
    assert!(!is_authorizer_event(&event("connect-authorized.json")));
}

#[tokio::test]
async fn an_authorizer_event_is_never_run_as_connect() {
    let ran = Arc::new(Mutex::new(false));
    let record = ran.clone();
    let router = router(keys()).on_connect(move |_ctx: Context, _request: Request| {
        let record = record.clone();
        async move {
            *record.lock().expect("lock") = true;
            Ok(Reply::ok())
        }
    });
    assert!(matches!(
        wsgw_aws::lambda::decode_event(event("authorizer-request.json")),
        Err(wsgw_aws::lambda::EventError::AuthorizerEvent)
    ));
    let error = LambdaApp::new(router)
        .with_metrics(None)
        .handle(event("authorizer-request.json"))
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("authorizer event"), "{error}");
    assert!(!*ran.lock().expect("lock"), "$connect did not run");
}

#[tokio::test]
async fn an_allowed_key_gets_an_allow_policy_on_the_method_arn_with_a_flat_context() {
    let policy = policy_of(
        authorize_event(
            &router(keys()),
            &backends(),
            event("authorizer-request.json"),
        )
        .await
        .expect("answered"),
    );
    assert_eq!(
        policy,
        json!({
            "principalId": "esp32-01",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": METHOD_ARN,
                }],
            },
            "context": {"roles": "device"},
        })
    );
}

#[tokio::test]
async fn a_browser_key_in_the_subprotocol_is_found() {
    let policy = policy_of(
        authorize_event(
            &router(keys()),
            &backends(),
            event("authorizer-subprotocol.json"),
        )
        .await
        .expect("answered"),
    );
    assert_eq!(policy["principalId"], "ada");
    assert_eq!(policy["context"]["roles"], "client,operator");
    assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Allow");
}

#[tokio::test]
async fn a_wrong_or_missing_key_fails_with_unauthorized_for_a_401() {
    let mut wrong = event("authorizer-request.json");
    wrong["queryStringParameters"]["token"] = json!("k-guess");
    wrong["multiValueQueryStringParameters"]["token"] = json!(["k-guess"]);
    let outcome = authorize_event(&router(keys()), &backends(), wrong.clone())
        .await
        .expect("answered");
    assert_eq!(outcome, AuthorizerOutcome::Unauthorized);
    // As a Lambda invocation: an error whose message is exactly "Unauthorized".
    let error = handle_authorizer_event(&router(keys()), &backends(), wrong)
        .await
        .expect_err("fails");
    assert_eq!(error.to_string(), "Unauthorized");
    assert_eq!(error.error_type(), "wsgw::Unauthorized");

    let mut missing = event("authorizer-request.json");
    missing["queryStringParameters"]
        .as_object_mut()
        .expect("object")
        .remove("token");
    missing["multiValueQueryStringParameters"]
        .as_object_mut()
        .expect("object")
        .remove("token");
    assert_eq!(
        authorize_event(&router(keys()), &backends(), missing)
            .await
            .expect("answered"),
        AuthorizerOutcome::Unauthorized
    );
}

#[tokio::test]
async fn a_403_denial_is_a_deny_policy() {
    let operators_only = |_ctx: Context, request: Request| async move {
        Ok(match keys().decide(&request) {
            Authorization::Allow(context)
                if Principal::from_context(&context).is_some_and(|p| p.has_role("operator")) =>
            {
                Authorization::Allow(context)
            }
            Authorization::Allow(_) => Authorization::Deny(403),
            deny => deny,
        })
    };
    let policy = policy_of(
        authorize_event(
            &router(operators_only),
            &backends(),
            event("authorizer-request.json"),
        )
        .await
        .expect("answered"),
    );
    assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(
        policy["policyDocument"]["Statement"][0]["Resource"],
        METHOD_ARN
    );
    assert_eq!(policy["principalId"], "anonymous");
}

#[tokio::test]
async fn nested_context_values_are_flattened_for_api_gateway() {
    let nested = |_ctx: Context, _request: Request| async {
        Ok(Authorization::Allow(json!({
            "principalId": "ada",
            "roles": "operator",
            "groups": ["a", "b"],
            "tier": 3,
            "admin": true,
            "nothing": null,
        })))
    };
    let policy = policy_of(
        authorize_event(
            &router(nested),
            &backends(),
            event("authorizer-request.json"),
        )
        .await
        .expect("answered"),
    );
    assert_eq!(
        policy["context"],
        json!({"roles": "operator", "groups": "[\"a\",\"b\"]", "tier": 3, "admin": true})
    );
}

#[tokio::test]
async fn malformed_authorizer_events_are_refused_with_a_reason() {
    let mut message = event("authorizer-request.json");
    message["requestContext"]["eventType"] = json!("MESSAGE");
    message["requestContext"]["routeKey"] = json!("sendmessage");
    assert!(matches!(
        decode_authorizer_event(message),
        Err(AuthorizerError::Malformed(_))
    ));
    let mut token = event("authorizer-request.json");
    token["type"] = json!("TOKEN");
    assert!(matches!(
        decode_authorizer_event(token),
        Err(AuthorizerError::Malformed(_))
    ));
    let mut no_arn = event("authorizer-request.json");
    no_arn.as_object_mut().expect("object").remove("methodArn");
    assert!(matches!(
        decode_authorizer_event(no_arn),
        Err(AuthorizerError::Malformed(_))
    ));
    let mut bad_context = event("authorizer-request.json");
    bad_context["requestContext"]["connectedAt"] = json!("yesterday");
    let error = decode_authorizer_event(bad_context).expect_err("malformed");
    assert!(
        error.to_string().contains("requestContext.connectedAt"),
        "{error}"
    );
}

#[tokio::test]
async fn the_connect_after_an_allow_sees_the_principal_and_echoes_the_subprotocol() {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let router = router(keys()).on_connect(move |_ctx: Context, request: Request| {
        let record = record.clone();
        async move {
            *record.lock().expect("lock") = Principal::of(&request);
            Ok(Reply::ok())
        }
    });
    let response = LambdaApp::new(router)
        .with_metrics(None)
        .handle(event("connect-authorized.json"))
        .await
        .expect("handled");
    let wsgw_aws::lambda::ProxyResponse::V1(response) = response else {
        panic!("a WebSocket route is answered in payload 1.0: {response:?}");
    };
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response
            .headers
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("wsgw.bearer"),
        "API Gateway echoes what the $connect response names"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        Some(Principal::new("ada", ["operator", "auditor"])),
        "API Gateway's context, not a second run of the authorizer"
    );
}
