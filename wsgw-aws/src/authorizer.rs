//! The router's `$connect` authorizer deployed as an API Gateway Lambda REQUEST
//! authorizer.
//!
//! API Gateway calls the authorizer before `$connect` with a REQUEST event (`type`,
//! `methodArn`, the upgrade's headers and query string, a WebSocket `requestContext`).
//! [`authorize_event`] decodes it into the same [`Request`] `$connect` gets, runs the
//! router's authorizer ([`Router::authorize`]) and answers the way API Gateway wants:
//!
//! | core decision | answer | client sees |
//! | --- | --- | --- |
//! | `Allow(context)` | IAM policy `Allow execute-api:Invoke` on the `methodArn`, `principalId` from the context, the rest of the context flattened to strings, numbers and booleans | the handshake proceeds to `$connect`, whose event carries the context in `requestContext.authorizer` |
//! | `Deny(401)` | the invocation fails with the message `Unauthorized` | HTTP 401 |
//! | `Deny(403)` (or any other status) | IAM policy `Deny` on the `methodArn` | HTTP 403 |
//!
//! [`LambdaApp::run`](crate::lambda::LambdaApp::run) recognises REQUEST authorizer
//! events by themselves, so the very binary that serves the routes is deployed a second
//! time as the authorizer function; with [`ROLE_ENV`] set to `authorizer` it answers
//! authorizer events only.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use serde_json::json;
//! use wsgw_core::auth::ApiKeyAuthorizer;
//! use wsgw_core::{Backends, MockConnectionStore, MockMessageSink, Router};
//! use wsgw_aws::authorizer::{authorize_event, AuthorizerOutcome};
//!
//! let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
//! let router = Router::new()
//!     .authorizer(ApiKeyAuthorizer::new().key("k-1", "esp32-01", ["device"]).expect("a key"));
//! let event = json!({
//!     "type": "REQUEST",
//!     "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/$connect",
//!     "queryStringParameters": {"token": "k-1"},
//!     "requestContext": {"eventType": "CONNECT", "routeKey": "$connect", "connectionId": "c1=",
//!         "connectedAt": 1795315260000_i64, "requestTimeEpoch": 1795315260120_i64, "stage": "prod",
//!         "domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "identity": {"sourceIp": "203.0.113.7"}}
//! });
//! let AuthorizerOutcome::Policy(policy) = authorize_event(&router, &backends, event).await.unwrap() else {
//!     panic!("not allowed")
//! };
//! assert_eq!(policy["principalId"], "esp32-01");
//! assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Allow");
//! assert_eq!(policy["context"]["roles"], "device");
//! # }
//! ```

use serde_json::{json, Map, Value};
use wsgw_core::auth::PRINCIPAL_KEY;
use wsgw_core::{Authorization, Backends, EventType, Request, Router};

use crate::lambda::{decode_websocket_event, EventError};

/// Environment variable: `authorizer` makes [`LambdaApp::run`](crate::lambda::LambdaApp::run)
/// answer REQUEST authorizer events only (the authorizer function of a template).
pub const ROLE_ENV: &str = "WSGW_LAMBDA_ROLE";

/// The value of [`ROLE_ENV`] for the authorizer function.
pub const AUTHORIZER_ROLE: &str = "authorizer";

/// Whether this process is deployed as the authorizer function (`WSGW_LAMBDA_ROLE=authorizer`).
pub fn is_authorizer_role() -> bool {
    std::env::var(ROLE_ENV).is_ok_and(|role| role.trim() == AUTHORIZER_ROLE)
}

/// The `principalId` of a denial (API Gateway requires one).
const ANONYMOUS: &str = "anonymous";

/// Whether a raw Lambda event is an API Gateway REQUEST authorizer event (`type` is
/// `REQUEST` and `methodArn` is set).
pub fn is_authorizer_event(raw: &Value) -> bool {
    raw.get("type").and_then(Value::as_str) == Some("REQUEST")
        && raw.get("methodArn").and_then(Value::as_str).is_some()
}

/// A decoded REQUEST authorizer event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuthorizerEvent {
    /// The `$connect` request the authorizer decides on.
    pub request: Request,
    /// The ARN the policy is about (`arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/$connect`).
    pub method_arn: String,
}

/// Why an authorizer event could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizerError {
    /// Not a REQUEST authorizer event of a WebSocket API.
    #[error("not an API Gateway WebSocket REQUEST authorizer event: {0}")]
    Malformed(String),
    /// The event could not be decoded.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The authorizer failed (API Gateway answers the client 500).
    #[error("the authorizer failed: {0}")]
    Failed(#[source] wsgw_core::Error),
}

/// Decodes a REQUEST authorizer event of a WebSocket API.
pub fn decode_authorizer_event(raw: Value) -> Result<AuthorizerEvent, AuthorizerError> {
    match raw.get("type").and_then(Value::as_str) {
        Some("REQUEST") => {}
        Some(other) => {
            let reason = format!(
                "type is `{other}`, not `REQUEST` (WebSocket APIs have no TOKEN authorizers)"
            );
            return Err(AuthorizerError::Malformed(reason));
        }
        None => return Err(AuthorizerError::Malformed("no `type`".to_owned())),
    }
    let method_arn = raw
        .get("methodArn")
        .and_then(Value::as_str)
        .filter(|arn| arn.starts_with("arn:"))
        .ok_or_else(|| AuthorizerError::Malformed("no `methodArn` ARN".to_owned()))?
        .to_owned();
    let request = decode_websocket_event(raw)?;
    if request.event_type != EventType::Connect {
        return Err(AuthorizerError::Malformed(format!(
            "requestContext.eventType is {:?}; authorizers run on $connect only",
            request.event_type
        )));
    }
    Ok(AuthorizerEvent {
        request,
        method_arn,
    })
}

/// What to answer API Gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizerOutcome {
    /// An IAM policy document (`Allow` or `Deny`).
    Policy(Value),
    /// Fail the invocation with the message `Unauthorized`: API Gateway answers 401.
    Unauthorized,
}

/// The error a Lambda invocation fails with so that API Gateway answers 401: its
/// message is exactly `Unauthorized`.
#[derive(Debug, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

/// An IAM policy answer: `effect` (`Allow`/`Deny`) `execute-api:Invoke` on `method_arn`.
/// `context` values that are not strings, numbers or booleans become JSON text (API
/// Gateway rejects others), nulls are left out, and `principalId` is not repeated in it.
pub fn policy(principal_id: &str, effect: &str, method_arn: &str, context: &Value) -> Value {
    let mut flat = Map::new();
    if let Value::Object(fields) = context {
        for (name, value) in fields {
            if name == PRINCIPAL_KEY {
                continue;
            }
            let value = match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => value.clone(),
                Value::Null => continue,
                other => Value::String(other.to_string()),
            };
            flat.insert(name.clone(), value);
        }
    }
    json!({
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": effect,
                "Resource": method_arn,
            }],
        },
        "context": flat,
    })
}

/// Runs the router's authorizer on a raw REQUEST authorizer event and says what to
/// answer (see the [module docs](self)).
pub async fn authorize_event<S: Send + Sync + 'static>(
    router: &Router<S>,
    backends: &Backends,
    raw: Value,
) -> Result<AuthorizerOutcome, AuthorizerError> {
    let event = decode_authorizer_event(raw)?;
    let connection_id = event.request.connection_id.clone();
    let decision = router
        .authorize(backends, &event.request)
        .await
        .map_err(AuthorizerError::Failed)?;
    Ok(match decision {
        Authorization::Allow(context) => {
            let principal = context
                .get(PRINCIPAL_KEY)
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| connection_id.to_string());
            tracing::info!(%connection_id, principal, "authorizer: allow");
            AuthorizerOutcome::Policy(policy(&principal, "Allow", &event.method_arn, &context))
        }
        Authorization::Deny(401) => {
            tracing::info!(%connection_id, status = 401, "authorizer: unauthorized");
            AuthorizerOutcome::Unauthorized
        }
        Authorization::Deny(status) => {
            tracing::info!(%connection_id, status, "authorizer: deny");
            AuthorizerOutcome::Policy(policy(ANONYMOUS, "Deny", &event.method_arn, &Value::Null))
        }
    })
}

/// [`authorize_event`] as a Lambda invocation's result: the policy, or the error whose
/// message makes API Gateway answer 401 (or 500 for a failure).
pub async fn handle_authorizer_event<S: Send + Sync + 'static>(
    router: &Router<S>,
    backends: &Backends,
    raw: Value,
) -> Result<Value, crate::lambda::InvocationError> {
    match authorize_event(router, backends, raw).await {
        Ok(AuthorizerOutcome::Policy(policy)) => Ok(policy),
        Ok(AuthorizerOutcome::Unauthorized) => Err(Unauthorized.into()),
        Err(error) => {
            tracing::error!(%error, "authorizer event failed");
            Err(error.into())
        }
    }
}

/// The REQUEST authorizer event API Gateway sends the authorizer function before
/// `$connect`: `type: REQUEST`, the `methodArn`
/// (`arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/$connect`), the upgrade's headers
/// and query string (single- and multi-valued), `stageVariables`, and the `$connect`
/// event's `requestContext`. [`decode_authorizer_event`] reads it back.
///
/// ```
/// use wsgw_aws::authorizer::{decode_authorizer_event, encode_authorizer_event};
/// use wsgw_core::Request;
///
/// let mut connect = Request::connect("c-1=".into()).with_endpoint("abc.example", "production");
/// connect.query.insert("token".to_owned(), "k-1".to_owned());
/// let arn = "arn:aws:execute-api:us-east-1:123456789012:abc1234567/production/$connect";
/// let event = encode_authorizer_event(&connect, arn, &Default::default());
/// assert_eq!(event["type"], "REQUEST");
/// let decoded = decode_authorizer_event(event).unwrap();
/// assert_eq!(decoded.method_arn, arn);
/// assert_eq!(decoded.request.query["token"], "k-1");
/// ```
pub fn encode_authorizer_event(
    request: &Request,
    method_arn: &str,
    stage_variables: &std::collections::BTreeMap<String, String>,
) -> Value {
    let mut event = match crate::lambda::encode_websocket_event(request) {
        Value::Object(event) => event,
        _ => Map::new(),
    };
    event.remove("body");
    event.remove("isBase64Encoded");
    for name in ["queryStringParameters", "multiValueQueryStringParameters"] {
        event.entry(name).or_insert_with(|| json!({}));
    }
    event.insert("type".to_owned(), json!("REQUEST"));
    event.insert("methodArn".to_owned(), json!(method_arn));
    event.insert(
        "stageVariables".to_owned(),
        Value::Object(
            stage_variables
                .iter()
                .map(|(name, value)| (name.clone(), json!(value)))
                .collect(),
        ),
    );
    Value::Object(event)
}

/// The `methodArn` of a WebSocket API's `$connect`:
/// `arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/$connect`.
pub fn connect_method_arn(region: &str, account_id: &str, api_id: &str, stage: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/$connect")
}

/// Whether an IAM resource pattern (`*` any run of characters, `?` one) covers `arn`.
fn resource_matches(pattern: &str, arn: &str) -> bool {
    let (pattern, arn): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    // Classic wildcard matching with one backtrack point.
    let (mut p, mut a, mut star, mut mark) = (0, 0, None, 0);
    while a < arn.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == arn[a]) {
            p += 1;
            a += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = a;
            p += 1;
        } else if let Some(star) = star {
            p = star + 1;
            mark += 1;
            a = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

fn one_or_many(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// What an authorizer function's answer means to API Gateway, as a core
/// [`Authorization`]: its error `Unauthorized` is `Deny(401)`; a policy that allows
/// `execute-api:Invoke` on `method_arn` (wildcards as IAM matches them) and denies
/// nothing there is `Allow` with the `context` and `principalId` (what later routes get
/// in `requestContext.authorizer`); any other policy is `Deny(403)`. `answer` is the
/// function's result, or the `errorMessage` of its error. An answer that is neither a
/// policy nor `Unauthorized` is an error (API Gateway answers the client 500).
///
/// ```
/// use serde_json::json;
/// use wsgw_aws::authorizer::{decode_authorizer_answer, policy};
/// use wsgw_core::Authorization;
///
/// let arn = "arn:aws:execute-api:us-east-1:123456789012:abc1234567/production/$connect";
/// let allow = policy("ada", "Allow", "arn:aws:execute-api:*:*:abc1234567/*", &json!({"room": "r1"}));
/// assert_eq!(
///     decode_authorizer_answer(Ok(&allow), arn).unwrap(),
///     Authorization::Allow(json!({"principalId": "ada", "room": "r1"}))
/// );
/// assert_eq!(decode_authorizer_answer(Err("Unauthorized"), arn).unwrap(), Authorization::Deny(401));
/// let deny = policy("ada", "Deny", arn, &json!({}));
/// assert_eq!(decode_authorizer_answer(Ok(&deny), arn).unwrap(), Authorization::Deny(403));
/// ```
pub fn decode_authorizer_answer(
    answer: Result<&Value, &str>,
    method_arn: &str,
) -> Result<Authorization, AuthorizerError> {
    let policy = match answer {
        Err("Unauthorized") => return Ok(Authorization::Deny(401)),
        Err(message) => {
            return Err(AuthorizerError::Malformed(format!(
                "the authorizer function failed: {message}"
            )))
        }
        Ok(policy) => policy,
    };
    let principal = policy
        .get("principalId")
        .and_then(|id| match id {
            Value::String(id) => Some(id.clone()),
            Value::Number(id) => Some(id.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            AuthorizerError::Malformed("the authorizer's answer has no principalId".to_owned())
        })?;
    let statements = match policy.pointer("/policyDocument/Statement") {
        Some(Value::Array(statements)) => statements.iter().collect(),
        Some(statement @ Value::Object(_)) => vec![statement],
        _ => {
            return Err(AuthorizerError::Malformed(
                "the authorizer's answer has no policyDocument.Statement".to_owned(),
            ))
        }
    };
    let mut allowed = false;
    for statement in statements {
        let invokes = one_or_many(statement.get("Action"))
            .iter()
            .any(|action| matches!(*action, "execute-api:Invoke" | "execute-api:*" | "*"));
        let covers = one_or_many(statement.get("Resource"))
            .iter()
            .any(|resource| resource_matches(resource, method_arn));
        if !(invokes && covers) {
            continue;
        }
        match statement.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Ok(Authorization::Deny(403)),
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if !allowed {
        return Ok(Authorization::Deny(403));
    }
    let mut context = match policy.get("context") {
        Some(Value::Object(context)) => context.clone(),
        _ => Map::new(),
    };
    context.insert(PRINCIPAL_KEY.to_owned(), Value::String(principal));
    Ok(Authorization::Allow(Value::Object(context)))
}
