//! The `echo` binary in Lambda mode, as AWS runs it: `AWS_LAMBDA_RUNTIME_API` points at a
//! Lambda Runtime API on loopback, API Gateway events go in, and the answers and the
//! Management API posts come out. The arm64 `bootstrap` that `sam build` deploys is run
//! the same way under `qemu-aarch64` and must answer as this build does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use wsgw_memory::gateway::lambda_function::{assert_arm64_answers_as_host, LambdaFunction};
use wsgw_memory::gateway::Invocation;

const WAIT: Duration = Duration::from_secs(20);

/// `command` with its output thrown away.
fn quiet(mut command: Command) -> Command {
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command
}

fn event(event_type: &str, route_key: &str, body: Option<&str>) -> Value {
    let mut event = json!({
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": "production",
            "connectedAt": 1795336800000i64,
            "requestTimeEpoch": 1795336801234i64,
            "identity": { "sourceIp": "203.0.113.10" },
            "requestId": "req-1",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "connectionId": "GXLKAfX1FiACHqQ=",
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    });
    if event_type == "MESSAGE" {
        event["requestContext"]["messageId"] = json!("msg-1");
    }
    if event_type == "DISCONNECT" {
        event["requestContext"]["disconnectStatusCode"] = json!(1001);
        event["requestContext"]["disconnectReason"] = json!("Going away");
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

fn status(invocation: Option<Invocation>) -> i64 {
    match invocation {
        Some(Invocation::Response(response)) => response["statusCode"].as_i64().unwrap_or(-1),
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn echo_runs_as_a_lambda_answering_events_and_posting_to_connections() {
    let function = LambdaFunction::start(quiet(Command::new(env!("CARGO_BIN_EXE_echo"))))
        .await
        .expect("echo starts");
    let (runtime, management) = (function.runtime(), function.management());

    assert_eq!(
        status(
            runtime
                .invoke(event("CONNECT", "$connect", None), WAIT)
                .await
        ),
        200
    );

    let message = event(
        "MESSAGE",
        "message",
        Some(r#"{"action":"message","message":{"n":[1,2]}}"#),
    );
    assert_eq!(status(runtime.invoke(message, WAIT).await), 200);
    let whoami = event("MESSAGE", "whoami", Some(r#"{"action":"whoami"}"#));
    assert_eq!(status(runtime.invoke(whoami, WAIT).await), 200);
    let unknown = event("MESSAGE", "$default", Some("not json"));
    assert_eq!(status(runtime.invoke(unknown, WAIT).await), 200);

    let calls = management.take_calls();
    let posted: Vec<(String, String, Value)> = calls
        .iter()
        .map(|call| {
            (
                call.method.clone(),
                call.connection_id.clone(),
                serde_json::from_slice(&call.body).unwrap_or(Value::Null),
            )
        })
        .collect();
    let id = "GXLKAfX1FiACHqQ=".to_owned();
    assert_eq!(
        posted,
        vec![
            (
                "POST".to_owned(),
                id.clone(),
                json!({"type": "message", "message": {"n": [1, 2]}})
            ),
            (
                "POST".to_owned(),
                id.clone(),
                json!({"type": "whoami", "connection_id": id})
            ),
            (
                "POST".to_owned(),
                id.clone(),
                json!({"type": "error", "error": "unknown_action", "available": ["message", "whoami"]})
            ),
        ]
    );

    // The client left: Gone is not a failure of the invocation.
    management.mark_gone(&id);
    let late = event("MESSAGE", "whoami", Some(r#"{"action":"whoami"}"#));
    assert_eq!(status(runtime.invoke(late, WAIT).await), 200);

    assert_eq!(
        status(
            runtime
                .invoke(event("DISCONNECT", "$disconnect", None), WAIT)
                .await
        ),
        200
    );
    let garbage = runtime.invoke(json!({"hello": "world"}), WAIT).await;
    match garbage {
        Some(Invocation::Error(error)) => {
            assert_eq!(error["errorType"], "wsgw::InvalidEvent", "{error}");
            assert!(
                error["errorMessage"]
                    .as_str()
                    .unwrap_or("")
                    .contains("not an API Gateway"),
                "{error}"
            )
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

#[tokio::test]
async fn in_lambda_each_invocation_writes_one_cloudwatch_emf_line_to_stdout() {
    use std::io::BufRead;

    let mut command = Command::new(env!("CARGO_BIN_EXE_echo"));
    command
        .env("AWS_LAMBDA_FUNCTION_NAME", "echo-EchoFunction-1x2y3z")
        .env_remove("WSGW_METRICS")
        .env_remove("WSGW_METRICS_NAMESPACE")
        .env_remove("WSGW_METRICS_DIMENSIONS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut function = LambdaFunction::start(command).await.expect("echo starts");
    let stdout = function.take_stdout().expect("stdout piped");
    let runtime = function.runtime();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The runtime's own logs share stdout; metrics lines carry `_aws`.
            if line.contains("\"_aws\"") && lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let invocations = [
        (event("CONNECT", "$connect", None), "$connect", "Connects"),
        (
            event("MESSAGE", "whoami", Some(r#"{"action":"whoami"}"#)),
            "whoami",
            "Messages",
        ),
        (
            event("DISCONNECT", "$disconnect", None),
            "$disconnect",
            "Disconnects",
        ),
    ];
    for (event, route, counter) in invocations {
        assert_eq!(status(runtime.invoke(event, WAIT).await), 200);
        let deadline = std::time::Instant::now() + WAIT;
        let line = loop {
            if let Ok(line) = lines.try_recv() {
                break line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "an EMF line for {route}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let document = wsgw_aws::metrics::check_emf_line(&line)
            .unwrap_or_else(|error| panic!("{error}: {line}"));
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "wsgw");
        assert_eq!(
            directive["Dimensions"],
            json!([["FunctionName", "Route"], ["FunctionName"]])
        );
        assert_eq!(document["FunctionName"], "echo-EchoFunction-1x2y3z");
        assert_eq!(document["Route"], route);
        assert_eq!(document[counter], 1);
        assert_eq!(document["HandlerErrors"], 0);
        assert!(document["HandlerLatency"].is_number());
        assert!(
            document["RequestId"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "the Lambda request id, for finding the invocation's logs"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(lines.try_recv().is_err(), "exactly one line per invocation");
}

#[tokio::test]
#[ignore = "needs qemu-aarch64 and the arm64 bootstrap: cargo xtask test installs, builds and runs it"]
async fn the_arm64_bootstrap_under_qemu_answers_the_shipped_events_as_this_build_does() {
    // Echo's answers hold nothing that changes from run to run.
    assert_arm64_answers_as_host(
        Path::new(env!("CARGO_BIN_EXE_echo")),
        "echo",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("events"),
        &[],
        3,
        |command| async { quiet(command) },
    )
    .await;
}
