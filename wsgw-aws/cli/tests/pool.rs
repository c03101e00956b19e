//! The function pool against real binaries in Lambda mode: `plain-echo` (lambda_runtime
//! and aws-sdk-apigatewaymanagement, no wsgw crates) and the echo example built from its
//! template. Instances behave like Lambda's: reused warm, started in parallel up to the
//! limit, killed on timeout, replaced after a crash.

mod support;

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use wsgw::build::Builder;
use wsgw::pool::{FunctionPool, InvokeError, Output, PoolFunction, PoolSettings, Stream};
use wsgw_aws::lambda::{decode_proxy_response, encode_websocket_event};
use wsgw_aws::template::{StackSettings, Template};
use wsgw_core::{Payload, Request};
use wsgw_memory::gateway::ManagementRecorder;

const ECHO: &str = "PlainEcho";

/// A MESSAGE event for connection `c-1=` carrying `body`.
fn message(body: &Value) -> Value {
    let request = Request::message("c-1=".into(), Payload::text(body.to_string()))
        .with_route_key("$default")
        .with_endpoint("127.0.0.1", "production");
    encode_websocket_event(&request)
}

/// The answer's body, parsed.
fn body_of(answer: Value) -> Value {
    let reply = decode_proxy_response(answer).expect("a proxy response");
    assert_eq!(reply.status, 200);
    let text = reply.body.expect("a body");
    serde_json::from_str(text.as_text().expect("text")).expect("JSON")
}

fn pid_of(answer: Value) -> u64 {
    body_of(answer)["pid"].as_u64().expect("the pid")
}

async fn pool_with(
    function: PoolFunction,
    settings: PoolSettings,
) -> (FunctionPool, ManagementRecorder) {
    let recorder = ManagementRecorder::start().await.expect("a recorder");
    let settings = settings.with_management_endpoint(recorder.endpoint());
    (FunctionPool::new([function], settings), recorder)
}

async fn plain_echo() -> PoolFunction {
    PoolFunction::new(ECHO, support::plain_echo().await)
}

fn is_running(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.contains(") Z "))
}

#[tokio::test]
async fn a_plain_lambda_runtime_function_answers_and_posts_through_the_sdk_standard_endpoint() {
    let (sender, mut lines) = mpsc::unbounded_channel();
    let (pool, recorder) = pool_with(
        plain_echo().await,
        PoolSettings::default().with_output(Output::Channel(sender)),
    )
    .await;

    let answer = pool
        .invoke(ECHO, message(&json!({"say": "hi"})))
        .await
        .unwrap();

    assert_eq!(body_of(answer)["echo"], r#"{"say":"hi"}"#);
    let calls = recorder.take_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].connection_id.as_str()),
        ("POST", "c-1=")
    );
    assert_eq!(&calls[0].body[..], br#"{"say":"hi"}"#);
    let started = lines.recv().await.expect("the function's first line");
    assert_eq!(
        (started.function.as_str(), started.instance, started.stream),
        (ECHO, 1, Stream::Stderr)
    );
    assert_eq!(
        started.line, "plain-echo: started as PlainEcho",
        "AWS_LAMBDA_FUNCTION_NAME"
    );
}

#[tokio::test]
async fn a_warm_instance_is_reused_for_the_next_invocations() {
    let (pool, _recorder) = pool_with(plain_echo().await, PoolSettings::default()).await;

    let mut pids = Vec::new();
    for n in 0..4 {
        pids.push(pid_of(
            pool.invoke(ECHO, message(&json!({"n": n}))).await.unwrap(),
        ));
    }

    assert_eq!(pool.instances_started(ECHO), 1);
    assert!(pids.iter().all(|pid| *pid == pids[0]), "{pids:?}");
}

#[tokio::test]
async fn parallel_invocations_start_instances_up_to_the_functions_limit_then_wait() {
    let (pool, _recorder) = pool_with(
        plain_echo().await.with_max_instances(3),
        PoolSettings::default(),
    )
    .await;

    let started = Instant::now();
    let calls = (0..6).map(|_| pool.invoke(ECHO, message(&json!({"sleep_ms": 700}))));
    let answers = join_all(calls).await;

    let pids: std::collections::BTreeSet<u64> = answers
        .into_iter()
        .map(|answer| pid_of(answer.unwrap()))
        .collect();
    assert_eq!(pool.instances_started(ECHO), 3, "three instances at most");
    assert_eq!(pids.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "six calls of 700 ms on three instances take two rounds"
    );

    let (wide, _recorder) = pool_with(
        plain_echo().await.with_max_instances(6),
        PoolSettings::default(),
    )
    .await;
    let answers =
        join_all((0..6).map(|_| wide.invoke(ECHO, message(&json!({"sleep_ms": 700}))))).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(
        wide.instances_started(ECHO),
        6,
        "one instance per concurrent invocation"
    );
}

#[tokio::test]
async fn an_invocation_past_the_timeout_kills_its_instance_and_the_next_starts_a_new_one() {
    let function = plain_echo().await.with_timeout(Duration::from_secs(1));
    let (pool, _recorder) = pool_with(function, PoolSettings::default()).await;
    let first = pid_of(pool.invoke(ECHO, message(&json!({}))).await.unwrap());

    let started = Instant::now();
    let error = pool
        .invoke(ECHO, message(&json!({"sleep_ms": 5000})))
        .await
        .unwrap_err();

    assert!(matches!(error, InvokeError::Timeout { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "function PlainEcho: Task timed out after 1.00 seconds"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!is_running(first), "the timed-out instance is killed");
    let second = pid_of(pool.invoke(ECHO, message(&json!({}))).await.unwrap());
    assert_ne!(first, second);
    assert_eq!(pool.instances_started(ECHO), 2);
}

#[tokio::test]
async fn an_instance_killed_mid_run_fails_its_invocation_and_the_next_gets_a_new_instance() {
    let (pool, _recorder) = pool_with(plain_echo().await, PoolSettings::default()).await;
    let first = pid_of(pool.invoke(ECHO, message(&json!({}))).await.unwrap());

    let in_flight = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.invoke(ECHO, message(&json!({"sleep_ms": 10_000})))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let error = in_flight.await.unwrap().unwrap_err();

    assert!(matches!(error, InvokeError::Crashed { .. }), "{error}");
    assert!(error.to_string().contains("signal: 9"), "{error}");
    let second = pid_of(pool.invoke(ECHO, message(&json!({}))).await.unwrap());
    assert_ne!(first, second);
    assert_eq!(pool.instances_started(ECHO), 2);
}

#[tokio::test]
async fn a_function_that_exits_mid_invocation_is_a_crash_and_is_replaced() {
    let (pool, _recorder) = pool_with(plain_echo().await, PoolSettings::default()).await;

    let error = pool
        .invoke(ECHO, message(&json!({"exit": 3})))
        .await
        .unwrap_err();

    assert!(
        error.to_string().contains("exited (exit status: 3)"),
        "{error}"
    );
    assert!(pool.invoke(ECHO, message(&json!({}))).await.is_ok());
    assert_eq!(pool.instances_started(ECHO), 2);
}

#[tokio::test]
async fn a_function_error_is_returned_and_its_instance_kept() {
    let (pool, _recorder) = pool_with(plain_echo().await, PoolSettings::default()).await;

    let error = pool
        .invoke(ECHO, message(&json!({"fail": "no such room"})))
        .await
        .unwrap_err();

    match &error {
        InvokeError::Function {
            error_message,
            error_type,
            ..
        } => {
            assert_eq!(error_message, "no such room");
            assert!(!error_type.is_empty());
        }
        other => panic!("not a function error: {other}"),
    }
    assert!(pool.invoke(ECHO, message(&json!({}))).await.is_ok());
    assert_eq!(pool.instances_started(ECHO), 1);
}

#[tokio::test]
async fn replacing_instances_after_a_rebuild_starts_new_ones_for_the_next_invocation() {
    let (pool, _recorder) = pool_with(plain_echo().await, PoolSettings::default()).await;
    let first = pid_of(pool.invoke(ECHO, message(&json!({}))).await.unwrap());

    pool.replace_instances(ECHO, None).unwrap();

    let second = pid_of(pool.invoke(ECHO, message(&json!({}))).await.unwrap());
    assert_ne!(first, second);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!is_running(first), "the old instance is stopped");
    assert_eq!(pool.process_ids(ECHO), [u32::try_from(second).unwrap()]);
}

#[tokio::test]
async fn a_function_that_is_not_run_and_an_unknown_one_are_refused_without_starting_anything() {
    let mut function = plain_echo().await;
    function.unavailable = Some("Runtime is python3.12, not provided.*".to_owned());
    let (pool, _recorder) = pool_with(function, PoolSettings::default()).await;

    let error = pool.invoke(ECHO, message(&json!({}))).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "function PlainEcho is not run locally: Runtime is python3.12, not provided.*"
    );
    assert!(matches!(
        pool.invoke("Nope", json!({})).await,
        Err(InvokeError::UnknownFunction(_))
    ));
    assert_eq!(pool.instances_started(ECHO), 0);
}

#[tokio::test]
async fn the_echo_example_runs_from_its_template_with_the_templates_settings() {
    let template =
        Template::from_path(support::workspace().join("examples/echo/template.yaml")).unwrap();
    let stack = template.resolve(StackSettings::new("echo")).unwrap();
    let executables = Builder::default()
        .build_stack(&stack)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let recorder = ManagementRecorder::start().await.unwrap();
    let pool = FunctionPool::new(
        stack.functions.values().map(|function| {
            PoolFunction::from_stack(
                function,
                &stack,
                executables.get(&function.logical_id).cloned(),
            )
        }),
        PoolSettings::default().with_management_endpoint(recorder.endpoint()),
    );
    let mut connect = Request::connect("c-1=".into()).with_endpoint("127.0.0.1", "production");
    connect.source_ip = Some("127.0.0.1".to_owned());
    let whoami = Request::message("c-1=".into(), Payload::text(r#"{"action":"whoami"}"#))
        .with_route_key("whoami")
        .with_endpoint("127.0.0.1", "production");

    let connected = pool
        .invoke("EchoFunction", encode_websocket_event(&connect))
        .await
        .unwrap();
    let answered = pool
        .invoke("EchoFunction", encode_websocket_event(&whoami))
        .await
        .unwrap();

    assert_eq!(decode_proxy_response(connected).unwrap().status, 200);
    assert_eq!(decode_proxy_response(answered).unwrap().status, 200);
    let calls = recorder.take_calls();
    assert!(
        calls.iter().any(|call| call.connection_id == "c-1="
            && String::from_utf8_lossy(&call.body).contains("c-1=")),
        "whoami answers through @connections: {calls:?}"
    );
    assert_eq!(pool.instances_started("EchoFunction"), 1);
}

#[tokio::test]
async fn an_instance_that_exits_or_never_asks_for_an_event_fails_to_start_with_the_reason() {
    let exits = PoolFunction::new("Exits", "/bin/true");
    let mut settings = PoolSettings::default();
    settings.init_timeout = Duration::from_millis(500);
    let script = support::scratch_dir("hangs").join("bootstrap");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hangs = PoolFunction::new("Hangs", &script);
    let missing = PoolFunction::new("Missing", "/nonexistent/bootstrap");
    let pool = FunctionPool::new([exits, hangs, missing], settings);

    let exited = pool
        .invoke("Exits", json!({}))
        .await
        .unwrap_err()
        .to_string();
    let hung = pool
        .invoke("Hangs", json!({}))
        .await
        .unwrap_err()
        .to_string();
    let absent = pool
        .invoke("Missing", json!({}))
        .await
        .unwrap_err()
        .to_string();

    assert_eq!(
        exited,
        "function Exits: its process exited (exit status: 0)"
    );
    assert!(
        hung.contains("did not ask for an event within 500ms of starting"),
        "{hung}"
    );
    assert!(
        absent.starts_with("function Missing: cannot start /nonexistent/bootstrap: "),
        "{absent}"
    );
}
