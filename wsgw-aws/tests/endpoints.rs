//! Each request's sink is bound to that request's own Management API endpoint: one
//! function serving two stages and two domains concurrently posts every answer to the
//! endpoint of the event it answers, against real HTTP endpoints.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use wsgw_aws::config::local_sdk_config;
use wsgw_aws::lambda::LambdaApp;
use wsgw_aws::ManagementApi;
use wsgw_core::{Context, Request, Router};
use wsgw_memory::gateway::axum;

/// What a recording endpoint received: the request path and body of each post.
type Posts = Arc<Mutex<Vec<(String, String)>>>;

/// An `@connections` endpoint that records every post and answers 200 a little late, so
/// the posts of concurrent invocations overlap.
async fn recording_endpoint() -> (SocketAddr, Posts) {
    let posts: Posts = Arc::default();
    let recorded = posts.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let recorded = recorded.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            recorded.lock().unwrap().push((uri.path().to_owned(), body));
            axum::http::StatusCode::OK
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, posts)
}

/// A MESSAGE event of `connection` on `domain`/`stage`.
fn message(domain: &str, stage: &str, connection: &str) -> Value {
    json!({
        "requestContext": {
            "routeKey": "hello", "eventType": "MESSAGE", "connectionId": connection,
            "messageId": format!("m-{connection}"), "requestId": format!("r-{connection}"),
            "stage": stage, "domainName": domain, "apiId": "abc",
            "connectedAt": 1795336800000i64, "requestTimeEpoch": 1795336801234i64,
            "identity": {"sourceIp": "203.0.113.10"}
        },
        "body": r#"{"action":"hello"}"#,
        "isBase64Encoded": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_of_two_stages_and_two_domains_each_post_to_their_own_endpoint() {
    let (first, first_posts) = recording_endpoint().await;
    let (second, second_posts) = recording_endpoint().await;
    // Each answer names where it was meant to go, so a misrouted one is visible.
    let router = Router::new().route("hello", |ctx: Context, request: Request| async move {
        let meant_for = format!("{}/{}", request.domain_name, request.stage);
        ctx.reply(&json!({ "meant_for": meant_for })).await
    });
    let app = LambdaApp::new(router)
        .with_management(ManagementApi::new(local_sdk_config()).with_scheme("http"))
        .with_metrics(None);

    // Two stages of the first domain and one stage of the second, interleaved.
    let targets = [
        (first.to_string(), "prod"),
        (first.to_string(), "dev"),
        (second.to_string(), "prod"),
    ];
    let mut invocations = Vec::new();
    for n in 0..30 {
        let (domain, stage) = &targets[n % targets.len()];
        let app = app.clone();
        let event = message(domain, stage, &format!("c{n}="));
        invocations.push(tokio::spawn(async move { app.handle(event).await }));
    }
    for invocation in invocations {
        let response = invocation.await.unwrap().expect("the invocation succeeds");
        assert_eq!(response.status_code(), 200);
    }

    let mut seen = 0;
    for (addr, posts) in [(first, &first_posts), (second, &second_posts)] {
        let posts = posts.lock().unwrap();
        for (path, body) in posts.iter() {
            let stage = path.split('/').nth(1).unwrap();
            assert!(
                path.starts_with(&format!("/{stage}/@connections/c")),
                "a post to {path}"
            );
            let answer: Value = serde_json::from_str(body).unwrap();
            assert_eq!(
                answer["meant_for"],
                format!("{addr}/{stage}"),
                "{path} on {addr} got another endpoint's answer"
            );
        }
        seen += posts.len();
    }
    assert_eq!(seen, 30, "every answer was posted once");
    let stages_of = |posts: &Posts| {
        let mut stages: Vec<String> = posts
            .lock()
            .unwrap()
            .iter()
            .map(|(path, _)| path.split('/').nth(1).unwrap().to_owned())
            .collect();
        stages.sort();
        stages.dedup();
        stages
    };
    assert_eq!(stages_of(&first_posts), ["dev", "prod"]);
    assert_eq!(stages_of(&second_posts), ["prod"]);
}

#[tokio::test]
async fn a_fixed_endpoint_receives_every_post_whatever_the_events_domain() {
    let (fixed, posts) = recording_endpoint().await;
    let router = Router::new().route("hello", |ctx: Context, _request: Request| async move {
        ctx.reply(&"hi").await
    });
    let api = ManagementApi::new(local_sdk_config()).with_endpoint(format!("http://{fixed}/ws"));
    let app = LambdaApp::new(router)
        .with_management(api)
        .with_metrics(None);
    for (domain, stage) in [
        ("abc.execute-api.eu-west-1.amazonaws.com", "prod"),
        ("ws.example.com", "dev"),
    ] {
        app.handle(message(domain, stage, "c1=")).await.unwrap();
    }
    let paths: Vec<String> = posts
        .lock()
        .unwrap()
        .iter()
        .map(|(path, _)| path.clone())
        .collect();
    // The SDK percent-encodes the id in the path.
    assert_eq!(paths, ["/ws/@connections/c1%3D", "/ws/@connections/c1%3D"]);
}
