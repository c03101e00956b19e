//! An application that installed its own tracing subscriber before serving in Lambda
//! mode (against the Runtime API emulator of `wsgw_memory::testing`) keeps it: the
//! runner's Lambda logs are set up with `try_init`, even with
//! `AWS_LAMBDA_LOG_FORMAT=JSON`, so nothing panics, invocations are answered, and the
//! handlers' events reach the application's subscriber.
//!
//! One test in this file: it sets the process's Lambda environment.

#[path = "support/logs.rs"]
mod logs;

use std::time::Duration;

use lambda_runtime::tracing::subscriber;
use serde_json::json;
use wsgw_aws::runner::{Args, Runner};
use wsgw_core::{Context, Reply, Request, Router};
use wsgw_memory::testing::{events, Invocation, LambdaRuntimeEmulator, ManagementRecorder};

#[tokio::test(flavor = "multi_thread")]
async fn an_app_with_its_own_subscriber_serves_in_lambda_mode_and_keeps_it() {
    let captured = logs::CapturedLogs::default();
    let writer = captured.clone();
    subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("the application's subscriber is the first");

    let emulator = LambdaRuntimeEmulator::start().await.expect("emulator");
    let management = ManagementRecorder::start().await.expect("recorder");
    for (name, value) in emulator.function_env() {
        std::env::set_var(name, value);
    }
    std::env::set_var(wsgw_aws::MANAGEMENT_ENDPOINT_ENV, management.endpoint());
    std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    std::env::set_var("WSGW_METRICS", "off");

    let router =
        Router::new().two_way_route("whoami", |_ctx: Context, request: Request| async move {
            tracing::info!(connection = %request.connection_id, "app-handler-ran");
            Reply::json(&json!({ "connection_id": request.connection_id }))
        });
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        wsgw: Args,
    }
    let args = <Cli as clap::Parser>::parse_from(["app"]).wsgw;
    let served = tokio::spawn(Runner::new(router).stateless().run(args));

    let event = events::message("abc=", &json!({ "action": "whoami" }));
    let answer = emulator
        .invoke(event, Duration::from_secs(10))
        .await
        .expect("the function answers in Lambda mode");
    let Invocation::Response(response) = answer else {
        panic!("the invocation failed: {answer:?}");
    };
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: serde_json::Value =
        serde_json::from_str(response["body"].as_str().expect("a body")).expect("JSON body");
    assert_eq!(body, json!({ "connection_id": "abc=" }));

    assert!(!served.is_finished(), "the runtime loop keeps serving");
    served.abort();
    assert!(
        captured.text().contains("app-handler-ran"),
        "the handler's event reached the application's own subscriber: {}",
        captured.text()
    );
    assert!(
        subscriber::fmt().try_init().is_err(),
        "the application's subscriber is still the one installed"
    );
}
