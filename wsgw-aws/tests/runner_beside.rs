//! Tasks run beside the LocalGateway (`Runner::beside`): started with the gateway's URL
//! once it listens, told when it has stopped, waited for; a failing one fails the run.
//! The run is stopped with SIGTERM sent to this test process, which the runner obeys, so
//! the scenarios run one after the other in one test.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wsgw_aws::runner::{Args, Runner};
use wsgw_core::{Context, Request, Router};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn local_args() -> Args {
    Cli::parse_from(["beside", "--listen", "127.0.0.1:0"]).args
}

fn router() -> Router {
    Router::new().route("ping", |ctx: Context, _request: Request| async move {
        ctx.reply(&"pong").await
    })
}

/// What the task beside the gateway saw.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    reply: Option<String>,
    reconnect_after_stop: Option<bool>,
}

#[tokio::test]
async fn a_task_beside_the_gateway_talks_to_it_is_told_when_it_stops_and_can_fail_the_run() {
    // A local run in memory, whatever the environment says about Lambda and DynamoDB.
    for variable in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL",
        "WSGW_DYNAMODB_ENDPOINT",
        "AWS_LAMBDA_RUNTIME_API",
    ] {
        std::env::remove_var(variable);
    }

    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let runner = Runner::new(router()).beside(move |url, stopping| async move {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|error| format!("connect to {url}: {error}"))?;
        socket
            .send(Message::text(r#"{"action":"ping"}"#))
            .await
            .map_err(|error| error.to_string())?;
        let reply = match socket.next().await {
            Some(Ok(Message::Text(text))) => text.to_string(),
            other => return Err(format!("no reply: {other:?}")),
        };
        record.lock().unwrap().reply = Some(reply);
        // Stop the run as Ctrl-C would.
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .map_err(|error| error.to_string())?;
        assert!(killed.success());
        stopping.await;
        let reconnect = tokio_tungstenite::connect_async(url.as_str()).await;
        record.lock().unwrap().reconnect_after_stop = Some(reconnect.is_ok());
        Ok(())
    });
    let code = tokio::time::timeout(Duration::from_secs(20), runner.run(local_args()))
        .await
        .expect("the run stops on SIGTERM");
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(
        *seen.lock().unwrap(),
        Seen {
            reply: Some("\"pong\"".to_owned()),
            reconnect_after_stop: Some(false),
        },
        "the task talked to the gateway, then was told only once it had stopped"
    );

    // A task that fails ends the run at once, with a failing exit status.
    let failing = Runner::new(router())
        .beside(|_url, _stopping| async { Err("the simulated devices cannot start".to_owned()) });
    let code = tokio::time::timeout(Duration::from_secs(20), failing.run(local_args()))
        .await
        .expect("a failed task ends the run without a signal");
    assert_eq!(code, ExitCode::FAILURE);

    // Without tasks, Runner::start_local and LocalRun::wait behave as before: covered by
    // the examples' binary tests.
}
