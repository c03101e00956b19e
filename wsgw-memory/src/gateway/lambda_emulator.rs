//! A local Lambda Runtime API and a recording `@connections` endpoint, so a function
//! binary can be run in Lambda mode on a laptop and in tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

/// What a function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function's response document.
    Response(Value),
    /// The function reported an error (`errorType`, `errorMessage`).
    Error(Value),
}

#[derive(Default)]
struct Queue {
    events: Mutex<VecDeque<(String, Value)>>,
    ready: Notify,
}

/// Serves the Lambda Runtime API (`/2018-06-01/runtime/...`) on loopback: events pushed
/// with [`invoke`](Self::invoke) are handed to the function's `next` poll, and its
/// responses come back in order.
///
/// Point a function at it with `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT` (see
/// [`runtime_api`](Self::runtime_api)).
pub struct LambdaRuntimeEmulator {
    runtime_api: String,
    queue: Arc<Queue>,
    answers: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Invocation)>>,
    next_request: Mutex<u64>,
}

impl LambdaRuntimeEmulator {
    /// Starts serving on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let runtime_api = listener.local_addr()?.to_string();
        let queue = Arc::new(Queue::default());
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let response_tx = answers_tx.clone();
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(move |Path(id): Path<String>, body: Bytes| {
                    let tx = response_tx.clone();
                    async move {
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = tx.send((id, Invocation::Response(value)));
                        StatusCode::ACCEPTED
                    }
                }),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(move |Path(id): Path<String>, body: Bytes| {
                    let tx = answers_tx.clone();
                    async move {
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = tx.send((id, Invocation::Error(value)));
                        StatusCode::ACCEPTED
                    }
                }),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(|| async { StatusCode::ACCEPTED }),
            )
            .with_state(queue.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(LambdaRuntimeEmulator {
            runtime_api,
            queue,
            answers: tokio::sync::Mutex::new(answers),
            next_request: Mutex::new(0),
        })
    }

    /// `HOST:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> &str {
        &self.runtime_api
    }

    /// The environment a function needs besides `AWS_LAMBDA_RUNTIME_API`.
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.runtime_api.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", "wsgw-local".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/wsgw-local".to_owned(),
            ),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    /// Invokes the function with `event` and waits (up to `timeout`) for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Option<Invocation> {
        let id = {
            let mut next = self
                .next_request
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            format!("request-{next}")
        };
        self.queue
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back((id.clone(), event));
        self.queue.ready.notify_one();
        let mut answers = self.answers.lock().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (answered, invocation) = tokio::time::timeout_at(deadline, answers.recv())
                .await
                .ok()??;
            if answered == id {
                return Some(invocation);
            }
        }
    }
}

async fn next_event(State(queue): State<Arc<Queue>>) -> Response {
    loop {
        let next = queue
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        if let Some((id, event)) = next {
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:wsgw-local".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".to_owned(),
                ),
            ] {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            }
            return (headers, event.to_string()).into_response();
        }
        queue.ready.notified().await;
    }
}

/// One request the recording `@connections` endpoint received.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagementCall {
    /// `POST`, `GET` or `DELETE`.
    pub method: String,
    /// The connection id from the path.
    pub connection_id: String,
    /// The request body.
    pub body: Bytes,
}

#[derive(Default)]
struct Recorded {
    calls: Mutex<Vec<ManagementCall>>,
    gone: Mutex<Vec<String>>,
}

async fn record_call(
    State(recorded): State<Arc<Recorded>>,
    Path((_stage, id)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> Response {
    let is_gone = recorded
        .gone
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&id);
    recorded
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(ManagementCall {
            method: method.to_string(),
            connection_id: id,
            body,
        });
    if is_gone {
        return (
            StatusCode::GONE,
            [("x-amzn-errortype", "GoneException")],
            r#"{"message":null}"#,
        )
            .into_response();
    }
    StatusCode::OK.into_response()
}

/// An `@connections` endpoint that records every call and answers 200 (or 410 for the
/// ids marked gone), for checking what a function posted.
pub struct ManagementRecorder {
    endpoint: String,
    recorded: Arc<Recorded>,
}

impl ManagementRecorder {
    /// Starts serving on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}/production", listener.local_addr()?);
        let recorded = Arc::new(Recorded::default());
        let app = axum::Router::new()
            .route("/{stage}/@connections/{id}", any(record_call))
            .with_state(recorded.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(ManagementRecorder { endpoint, recorded })
    }

    /// `http://127.0.0.1:PORT/production`, the value for `WSGW_MANAGEMENT_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Answers 410 Gone for this id from now on.
    pub fn mark_gone(&self, connection_id: &str) {
        self.recorded
            .gone
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection_id.to_owned());
    }

    /// Takes every call recorded so far.
    pub fn take_calls(&self) -> Vec<ManagementCall> {
        std::mem::take(
            &mut *self
                .recorded
                .calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}
