//! `ApiGatewaySink` against an endpoint that accepts and never answers: with an operation
//! timeout in the SDK configuration the send fails with `Error::Timeout`, which
//! `broadcast` retries (see wsgw-core's broadcast tests and `wsgw_memory::FaultySink`).

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use tokio::net::TcpListener;
use wsgw_aws::config::local_sdk_config;
use wsgw_aws::ApiGatewaySink;
use wsgw_core::{ConnectionId, MessageSink, Payload};

#[tokio::test]
async fn a_post_that_gets_no_answer_in_time_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let endpoint = format!(
        "http://{}/local",
        listener.local_addr().expect("an address")
    );
    // Accept every connection, read nothing, answer nothing.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = local_sdk_config()
        .into_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(300))
                .build(),
        )
        .build();
    let sink = ApiGatewaySink::new(&config, endpoint);

    let error = sink
        .send(&ConnectionId::new("abc="), Payload::text("hi"))
        .await
        .expect_err("no answer");

    assert!(error.is_timeout(), "{error}");
    assert!(error.is_retryable());
}
