//! A Lambda function for API Gateway WebSocket routes written the way a team that never
//! heard of wsgw writes one: `lambda_runtime` and `aws-sdk-apigatewaymanagement`, the
//! endpoint from the SDK's standard configuration (`AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`)
//! or else from the event (`https://{domainName}/{stage}`).
//!
//! Every message is posted back to its sender and returned as the response body. For the
//! tests of `wsgw local`'s function pool, a message may ask for trouble:
//! `{"sleep_ms": N}` answers after N ms, `{"fail": "why"}` fails the invocation,
//! `{"exit": CODE}` ends the process mid-invocation. Each answer carries the process id
//! (`pid`), so a test can tell instances apart, and the authorizer's context the event
//! carried (`authorizer`).
//!
//! As a REST API's function (an event with `httpMethod`) it answers 200 with the event it
//! got as its JSON body, a `x-plain-echo` header and a two-valued `multiValueHeaders`
//! `x-values`; `?fail=why` fails the invocation and `?status=N` answers N. As an HTTP
//! API's function of payload format 2.0 (an event with `version` `2.0`) it answers the
//! same in that format: its headers joined, two `cookies`.
//!
//! As a REQUEST authorizer it allows `?token=allow-NAME` with the context
//! `{"user": NAME}`, answers a policy denying `?token=deny`, and fails `Unauthorized`
//! otherwise.

use aws_sdk_apigatewaymanagement::primitives::Blob;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let event = event.payload;
    if event["type"] == "REQUEST" {
        return authorize(&event);
    }
    if event["httpMethod"].is_string() {
        return rest(event);
    }
    if event["version"] == "2.0" {
        return http_api(event);
    }
    let context = &event["requestContext"];
    let event_type = context["eventType"].as_str().unwrap_or_default();
    if event_type != "MESSAGE" {
        return Ok(json!({"statusCode": 200}));
    }
    let body = event["body"].as_str().unwrap_or_default().to_owned();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Some(ms) = request["sleep_ms"].as_u64() {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(why) = request["fail"].as_str() {
        return Err(why.into());
    }
    if let Some(code) = request["exit"].as_i64() {
        std::process::exit(i32::try_from(code).unwrap_or(1));
    }
    let shared = aws_config::load_from_env().await;
    let mut config = aws_sdk_apigatewaymanagement::config::Builder::from(&shared);
    if std::env::var_os("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI").is_none() {
        let domain = context["domainName"].as_str().unwrap_or_default();
        let stage = context["stage"].as_str().unwrap_or_default();
        config = config.endpoint_url(format!("https://{domain}/{stage}"));
    }
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(config.build());
    let connection_id = context["connectionId"].as_str().unwrap_or_default();
    client
        .post_to_connection()
        .connection_id(connection_id)
        .data(Blob::new(body.clone()))
        .send()
        .await?;
    Ok(json!({
        "statusCode": 200,
        "body": json!({
            "echo": body,
            "pid": std::process::id(),
            "authorizer": context["authorizer"],
        })
        .to_string(),
    }))
}

/// A REST proxy event's answer: the event itself, or the failure or status the query asks for.
fn rest(event: Value) -> Result<Value, Error> {
    let query = &event["queryStringParameters"];
    if let Some(why) = query["fail"].as_str() {
        return Err(why.to_owned().into());
    }
    let status = query["status"]
        .as_str()
        .and_then(|status| status.parse::<u16>().ok())
        .unwrap_or(200);
    Ok(json!({
        "statusCode": status,
        "headers": {"content-type": "application/json", "x-plain-echo": "yes"},
        "multiValueHeaders": {"x-values": ["one", "two"]},
        "body": event.to_string(),
        "isBase64Encoded": false,
    }))
}

/// An HTTP API payload 2.0 event's answer: the event itself, or the failure the query
/// asks for.
fn http_api(event: Value) -> Result<Value, Error> {
    if let Some(why) = event["queryStringParameters"]["fail"].as_str() {
        return Err(why.to_owned().into());
    }
    Ok(json!({
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-plain-echo": "yes", "x-values": "one,two"},
        "cookies": ["a=1", "b=2"],
        "body": event.to_string(),
    }))
}

/// The REQUEST authorizer: `allow-NAME` is allowed with `{"user": NAME}`, `deny` denied
/// by the policy, anything else `Unauthorized` (401).
fn authorize(event: &Value) -> Result<Value, Error> {
    let token = event["queryStringParameters"]["token"]
        .as_str()
        .unwrap_or_default();
    let method_arn = event["methodArn"].as_str().unwrap_or_default();
    let (effect, user) = match token.strip_prefix("allow-") {
        Some(user) => ("Allow", user),
        None if token == "deny" => ("Deny", ""),
        None => return Err("Unauthorized".into()),
    };
    Ok(json!({
        "principalId": "plain-echo",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
        "context": {"user": user},
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    eprintln!(
        "plain-echo: started as {}",
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default()
    );
    lambda_runtime::run(service_fn(handle)).await
}
