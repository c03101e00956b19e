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

struct Queue {
    events: Mutex<VecDeque<(String, Value)>>,
    ready: Notify,
    settings: RuntimeSettings,
    /// Becomes true at the function's first `next` poll: its init phase is over.
    polled: tokio::sync::watch::Sender<bool>,
    /// What the function reported to `/runtime/init/error`.
    init_error: Mutex<Option<Value>>,
}

/// What the emulated Lambda service tells the function about itself: its name, memory
/// and region in [`LambdaRuntimeEmulator::function_env`], its ARN and each invocation's
/// deadline (now + `timeout`) in the `next` response's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeSettings {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub memory_size_mb: u32,
    /// The function's timeout: each invocation's `Lambda-Runtime-Deadline-Ms`.
    pub timeout: Duration,
    /// `AWS_REGION`, and the region of the function's ARN.
    pub region: String,
    /// The account of the function's ARN.
    pub account_id: String,
}

impl Default for RuntimeSettings {
    /// `wsgw-local`, 128 MB, 30 s, `us-east-1`, account `000000000000`.
    fn default() -> Self {
        RuntimeSettings {
            function_name: "wsgw-local".to_owned(),
            memory_size_mb: 128,
            timeout: Duration::from_secs(30),
            region: "us-east-1".to_owned(),
            account_id: "000000000000".to_owned(),
        }
    }
}

impl RuntimeSettings {
    /// Settings for the function of this name, the rest default.
    pub fn new(function_name: impl Into<String>) -> Self {
        RuntimeSettings {
            function_name: function_name.into(),
            ..RuntimeSettings::default()
        }
    }

    /// Sets the memory size.
    pub fn with_memory_size_mb(mut self, memory_size_mb: u32) -> Self {
        self.memory_size_mb = memory_size_mb;
        self
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the region and the account.
    pub fn with_region(mut self, region: impl Into<String>, account_id: impl Into<String>) -> Self {
        self.region = region.into();
        self.account_id = account_id.into();
        self
    }

    /// The function's ARN.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.function_name
        )
    }
}

/// Serves the Lambda Runtime API (`/2018-06-01/runtime/...`) on loopback: events pushed
/// with [`invoke`](Self::invoke) are handed to the function's `next` poll, and its
/// responses come back in order.
///
/// Point a function at it with `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT` (see
/// [`runtime_api`](Self::runtime_api)). It stops serving when dropped.
pub struct LambdaRuntimeEmulator {
    runtime_api: String,
    queue: Arc<Queue>,
    answers: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Invocation)>>,
    next_request: Mutex<u64>,
    server: tokio::task::AbortHandle,
}

impl Drop for LambdaRuntimeEmulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LambdaRuntimeEmulator {
    /// Starts serving on a free loopback port, for a function with the default
    /// [`RuntimeSettings`].
    pub async fn start() -> std::io::Result<Self> {
        LambdaRuntimeEmulator::start_with(RuntimeSettings::default()).await
    }

    /// Starts serving on a free loopback port, for the function `settings` describe.
    pub async fn start_with(settings: RuntimeSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let runtime_api = listener.local_addr()?.to_string();
        let queue = Arc::new(Queue {
            events: Mutex::default(),
            ready: Notify::new(),
            settings,
            polled: tokio::sync::watch::Sender::new(false),
            init_error: Mutex::new(None),
        });
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
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(queue.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await }).abort_handle();
        Ok(LambdaRuntimeEmulator {
            runtime_api,
            queue,
            answers: tokio::sync::Mutex::new(answers),
            next_request: Mutex::new(0),
            server,
        })
    }

    /// The settings it serves the function with.
    pub fn settings(&self) -> &RuntimeSettings {
        &self.queue.settings
    }

    /// Resolves once the function has asked for its first event: the end of its init
    /// phase (a cold start's duration is the time from the process's start to this).
    pub async fn polled(&self) {
        let mut polled = self.queue.polled.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = polled.wait_for(|polled| *polled).await;
    }

    /// What the function reported to `/runtime/init/error` (its `errorType` and
    /// `errorMessage`), if it failed to start.
    pub fn init_error(&self) -> Option<Value> {
        self.queue
            .init_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `HOST:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> &str {
        &self.runtime_api
    }

    /// The environment Lambda gives a function: `AWS_LAMBDA_RUNTIME_API` and the
    /// variables of its [`RuntimeSettings`].
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        let settings = &self.queue.settings;
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.runtime_api.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", settings.function_name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                settings.memory_size_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", settings.function_name),
            ),
            ("AWS_REGION", settings.region.clone()),
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

async fn init_error(State(queue): State<Arc<Queue>>, body: Bytes) -> StatusCode {
    let error = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    *queue
        .init_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(error);
    StatusCode::ACCEPTED
}

async fn next_event(State(queue): State<Arc<Queue>>) -> Response {
    queue.polled.send_replace(true);
    loop {
        let next = queue
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        if let Some((id, event)) = next {
            let timeout = i64::try_from(queue.settings.timeout.as_millis()).unwrap_or(i64::MAX);
            let deadline = chrono::Utc::now()
                .timestamp_millis()
                .saturating_add(timeout);
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    queue.settings.function_arn(),
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

    /// `http://127.0.0.1:PORT/production`, the value for `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`.
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
