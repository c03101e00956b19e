//! `Router::on_rejection`: one handler sees every rejection a route handler returns.

use std::sync::{Arc, Mutex};

use serde_json::json;
use wsgw_core::{Context, Error, Rejection, Request, Result, Router, CONNECT, DEFAULT, DISCONNECT};
use wsgw_memory::{ConnectError, ConnectOptions, Harness};

/// What the rejection handler saw: route key, connection id, code, status.
type Seen = Arc<Mutex<Vec<(String, String, String, u16)>>>;

fn refuse(
    code: &'static str,
    status: u16,
) -> impl Fn(Context, Request) -> std::future::Ready<Result<()>> {
    move |_ctx, _request| {
        std::future::ready(Err(Rejection::new(code)
            .with_detail("no")
            .with_status(status)
            .into()))
    }
}

fn recording(router: Router) -> (Router, Seen) {
    let seen = Seen::default();
    let log = Arc::clone(&seen);
    let router = router.on_rejection(
        move |_ctx: Context, request: Request, rejection: Rejection| {
            let log = Arc::clone(&log);
            async move {
                log.lock().unwrap().push((
                    request.route_key,
                    request.connection_id.to_string(),
                    rejection.code().unwrap_or_default().to_owned(),
                    rejection.status(),
                ));
            }
        },
    );
    (router, seen)
}

#[tokio::test]
async fn every_route_handlers_rejection_is_seen_with_its_request_and_still_answered() {
    let (router, seen) = recording(
        Router::new()
            .route("say", refuse("empty_text", 400))
            .route(DEFAULT, refuse("unknown_action", 400))
            .route(DISCONNECT, refuse("too_late", 400)),
    );
    let harness = Harness::new(router);
    let client = harness.connect().await.expect("connects");
    let id = client.id().to_string();

    client.send_json(&json!({"action": "say"})).await.unwrap();
    client.send_json(&json!({"action": "dance"})).await.unwrap();
    let codes: Vec<_> = client
        .received_json()
        .into_iter()
        .map(|frame| frame["error"].clone())
        .collect();
    assert_eq!(
        codes,
        [json!("empty_text"), json!("unknown_action")],
        "the client is answered as without a handler"
    );
    client.disconnect().await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let expected = [
        ("say", "empty_text"),
        (DEFAULT, "unknown_action"),
        (DISCONNECT, "too_late"),
    ]
    .map(|(route, code)| (route.to_owned(), id.clone(), code.to_owned(), 400));
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_refused_handshake_is_seen_with_its_status() {
    let (router, seen) = recording(Router::new().route(CONNECT, refuse("invalid_name", 403)));
    let harness = Harness::new(router);

    let refused = harness
        .connect_with(ConnectOptions::new().query("name", "x"))
        .await;
    assert!(
        matches!(refused, Err(ConnectError::Refused { status: 403, .. })),
        "refused with the rejection's status"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].0.as_str(), seen[0].2.as_str(), seen[0].3),
        (CONNECT, "invalid_name", 403)
    );
}

#[tokio::test]
async fn successes_and_server_errors_are_not_rejections() {
    let (router, seen) = recording(
        Router::new()
            .route("ok", |_ctx: Context, _request: Request| async { Ok(()) })
            .route("broken", |_ctx: Context, _request: Request| async {
                Err::<(), _>(Error::invalid_input("the table is gone"))
            }),
    );
    let harness = Harness::new(router);
    let client = harness.connect().await.expect("connects");

    client.send_json(&json!({"action": "ok"})).await.unwrap();
    client
        .send_json(&json!({"action": "broken"}))
        .await
        .unwrap_err();
    assert!(seen.lock().unwrap().is_empty());
}
