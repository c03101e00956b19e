//! The template's WebSocket API behind the LocalGateway: [`TemplateIntegration`] is the
//! gateway's [`Integration`] that selects routes with the template's
//! `RouteSelectionExpression`, runs its `$connect` REQUEST authorizer, and invokes each
//! route's function in the [`FunctionPool`] with the event API Gateway sends, reading
//! the function's answer back as API Gateway reads a Lambda proxy integration's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use wsgw_aws::authorizer::{connect_method_arn, decode_authorizer_answer, encode_authorizer_event};
use wsgw_aws::lambda::{
    decode_http_proxy_response, decode_proxy_response, encode_http_api_event, encode_rest_event,
    encode_websocket_event, HttpEventFormat, RestEventContext,
};
use wsgw_aws::template::{
    ApiKind, IdentitySource, StackApi, StackRestApi, StackRestRoute, StackRoute,
};
use wsgw_core::http::StatusCode;
use wsgw_core::metrics::{Counter, Counters, Metrics};
use wsgw_core::{
    http_error, Authorization, Error, GatewayError, HttpRequest, HttpResponse, PathParams, Payload,
    Reply, Request, Result, RouteSelection, CONNECT,
};
use wsgw_memory::gateway::Integration;

use crate::local::ServedStage;
use crate::pool::{FunctionPool, InvokeError};

/// One WebSocket API of a template and one of its stages, each route's integration a
/// function of the pool (see the [module docs](self)).
///
/// - A message's route is the value its body has at the `RouteSelectionExpression` when
///   the API has a route of that key (other than `$connect` and `$disconnect`), else
///   `$default`; with no `$default` route the caller gets API Gateway's `Forbidden`
///   frame and no function runs.
/// - A function's answer body reaches the caller only on a route with a route response
///   (`two_way`); its failure, crash or timeout is an integration failure, which the
///   gateway answers with `Internal server error`.
/// - A `$connect` route with a `CUSTOM` authorizer: a `$connect` missing one of the
///   authorizer's identity sources is refused 401 without invoking it; otherwise its
///   function gets the REQUEST authorizer event and its answer decides (Allow with its
///   `context`, which the gateway hands every later route as `requestContext.authorizer`;
///   Deny 403; `Unauthorized` 401; anything else 500).
///
/// [`LocalRun::serve`](crate::LocalRun::serve) assembles it; by hand:
///
/// ```no_run
/// use wsgw::pool::{FunctionPool, PoolFunction, PoolSettings};
/// use wsgw::serve::TemplateIntegration;
/// use wsgw::ServedStage;
/// use wsgw_aws::template::{StackSettings, Template};
/// use wsgw_memory::gateway::LocalGateway;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let stack = Template::from_path("examples/echo/template.yaml")?
///     .resolve(StackSettings::new("echo"))?;
/// let executables = wsgw::build::Builder::default().build_stack(&stack).await?;
/// let pool = FunctionPool::new(
///     stack.functions.values().map(|function| {
///         PoolFunction::from_stack(function, &stack, executables.get(&function.logical_id).cloned())
///     }),
///     PoolSettings::default().with_management_endpoint("http://127.0.0.1:8080/production"),
/// );
/// let stage = ServedStage::new("production");
/// let integration = TemplateIntegration::new(stack.apis[0].clone(), stage, pool, "us-east-1", "123456789012")?;
/// // GET /metrics shows what the integration counts.
/// let counters = integration.counters();
/// let gateway = LocalGateway::for_integration(integration)
///     .with_counters(counters)
///     .stage("production")
///     .bind("127.0.0.1:8080".parse()?)
///     .await?;
/// # drop(gateway);
/// # Ok(())
/// # }
/// ```
pub struct TemplateIntegration {
    api: StackApi,
    stage: ServedStage,
    selection: RouteSelection,
    method_arn: String,
    pool: FunctionPool,
    observer: Arc<Counters>,
    rest_apis: Vec<StackRestApi>,
    rest_requests: AtomicU64,
}

impl std::fmt::Debug for TemplateIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateIntegration")
            .field("api", &self.api.logical_id)
            .field("stage", &self.stage.name)
            .finish_non_exhaustive()
    }
}

impl TemplateIntegration {
    /// `api` served at `stage`, its functions run by `pool` (`region` and `account_id`
    /// make the authorizer's `methodArn`).
    ///
    /// Fails when the API's `RouteSelectionExpression` is not `$request.body.…`, the
    /// only form API Gateway's WebSocket APIs evaluate against a body.
    pub fn new(
        api: StackApi,
        stage: ServedStage,
        pool: FunctionPool,
        region: &str,
        account_id: &str,
    ) -> Result<Self> {
        let selection = route_selection(&api).map_err(Error::invalid_input)?;
        let method_arn = connect_method_arn(region, account_id, &api.api_id, &stage.name);
        Ok(TemplateIntegration {
            api,
            stage,
            selection,
            method_arn,
            pool,
            observer: Arc::new(Counters::new()),
            rest_apis: Vec::new(),
            rest_requests: AtomicU64::new(0),
        })
    }

    /// Serves `rest_apis` too (the stack's REST and HTTP APIs, from its functions' `Api`
    /// and `HttpApi` events), on the same address: each at `/{StageName}/{path}`, its
    /// deployed URL's path, and at `/{path}`, where a page served beside the API (or
    /// `cargo run` of an example) finds it. Each route's function gets the event its API
    /// sends (REST proxy, or HTTP API payload 2.0 or 1.0). A path under an API's stage
    /// that no route has, or a method its path has no route for, is API Gateway's
    /// answer: a REST API's 403 `Missing Authentication Token`, an HTTP API's 404 `Not
    /// Found`.
    pub fn with_rest_apis(mut self, rest_apis: Vec<StackRestApi>) -> Self {
        self.rest_apis = rest_apis;
        self
    }

    /// The REST API a request path is for, and the path within it: under a REST API's
    /// stage, that API; else the first API with a route of the path.
    fn rest_api_of<'p>(&self, path: &'p str) -> Option<(&StackRestApi, &'p str)> {
        for api in &self.rest_apis {
            let staged = path
                .strip_prefix('/')
                .and_then(|rest| rest.strip_prefix(api.stage_name.as_str()))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'));
            if let Some(rest) = staged {
                return Some((api, if rest.is_empty() { "/" } else { rest }));
            }
        }
        self.rest_apis
            .iter()
            .find(|api| api.has_path(path))
            .map(|api| (api, path))
    }

    /// Invokes a route's function with the event of the route's payload format and reads
    /// its proxy response as API Gateway does: a failed, crashed or timed-out function
    /// (and an answer that is not a proxy response) is the API's integration failure
    /// (REST 502 `Internal server error`, HTTP 500 `Internal Server Error`).
    async fn invoke_rest(
        &self,
        api: &StackRestApi,
        route: &StackRestRoute,
        request: &HttpRequest,
    ) -> HttpResponse {
        let request_id = format!(
            "wsgw-local-{}-{}",
            std::process::id(),
            self.rest_requests.fetch_add(1, Ordering::Relaxed)
        );
        let context = RestEventContext::new(
            route.path.clone(),
            api.stage_name.clone(),
            request_id,
            self.api.api_id.clone(),
        );
        let label = format!("{} {}", route.method, route.path);
        let event = match route.payload_format {
            HttpEventFormat::PayloadV2 => encode_http_api_event(request, &context, &label),
            _ => encode_rest_event(request, &context),
        };
        let answer = match self.pool.invoke(&route.function, event).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::error!(route = %label, function = %error.function(), %error, "integration failed");
                return integration_failed(api.kind);
            }
        };
        match decode_http_proxy_response(answer) {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(route = %label, function = %route.function, %error, "the function's answer is not a proxy response");
                integration_failed(api.kind)
            }
        }
    }

    /// What the integration counted, as the router counts in process (connects and
    /// refusals, disconnects, messages by route, failed invocations, latency by route):
    /// what `GET /metrics` shows when given to
    /// [`LocalGateway::with_counters`](wsgw_memory::gateway::LocalGateway::with_counters).
    /// The gateway reports its own refusals and aborted calls to it too.
    pub fn counters(&self) -> Arc<Counters> {
        self.observer.clone()
    }

    /// Counts one event of `route` as the router does: `counter` (`Connects`,
    /// `Disconnects` or `Messages`), a refused `$connect`, a failure, its latency.
    fn observe(&self, counter: Counter, route: &str, outcome: &Result<Reply>, started: Instant) {
        let observer = &self.observer;
        observer.count(counter, route, 1);
        let refused = match outcome {
            Ok(reply) => reply.is_rejection(),
            Err(_) => {
                observer.count(Counter::HandlerErrors, route, 1);
                true
            }
        };
        if counter == Counter::Connects && refused {
            observer.count(Counter::ConnectsRefused, route, 1);
        }
        observer.latency(route, started.elapsed());
    }

    /// The `$connect` authorizer's decision (Allow with no context without one).
    async fn run_authorizer(&self, request: &Request) -> Result<Authorization> {
        let Some(authorizer) = self.api.connect_authorizer() else {
            return Ok(Authorization::Allow(Value::Null));
        };
        let stage_variables = &self.stage.variables;
        if let Some(missing) = authorizer
            .identity_sources
            .iter()
            .find(|source| !has_identity_source(source, request, stage_variables))
        {
            tracing::info!(authorizer = %authorizer.logical_id, identity_source = %missing, "$connect refused 401 without calling the authorizer: an identity source is missing");
            return Ok(Authorization::Deny(401));
        }
        let event = encode_authorizer_event(request, &self.method_arn, stage_variables);
        let answer = match self.pool.invoke(&authorizer.function, event).await {
            Ok(answer) => decode_authorizer_answer(Ok(&answer), &self.method_arn),
            Err(InvokeError::Function { error_message, .. }) => {
                decode_authorizer_answer(Err(&error_message), &self.method_arn)
            }
            Err(error) => return Err(integration_failure("$connect authorizer", error)),
        };
        answer.map_err(|error| {
            tracing::error!(authorizer = %authorizer.logical_id, %error, "authorizer failed");
            Error::handler(error)
        })
    }

    /// Invokes `route`'s function with the WebSocket event of `request`.
    async fn invoke_route(&self, route: &StackRoute, request: &Request) -> Result<Reply> {
        let answer = self
            .pool
            .invoke(&route.function, encode_websocket_event(request))
            .await
            .map_err(|error| integration_failure(&route.route_key, error))?;
        let mut reply = decode_proxy_response(answer).map_err(|error| {
            tracing::error!(route = %route.route_key, function = %route.function, %error, "the function's answer is not a proxy response");
            Error::handler(error)
        })?;
        if !route.two_way {
            // API Gateway sends a route's answer only through a route response.
            reply.body = None;
        }
        Ok(reply)
    }

    /// The route of a connection event, when the API has one, counted as `counter`.
    async fn connection_event(&self, counter: Counter, request: Request) -> Result<Reply> {
        let started = Instant::now();
        let outcome = match self.api.route(&request.route_key) {
            Some(route) => self.invoke_route(route, &request).await,
            None => Ok(Reply::ok()),
        };
        self.observe(counter, &request.route_key, &outcome, started);
        outcome
    }
}

/// The API's `RouteSelectionExpression`, in either of the forms API Gateway accepts
/// (`$request.body.action`, `${request.body.action}`).
///
/// Fails, naming the API and the property, on an expression wsgw cannot evaluate against
/// a message body.
pub fn route_selection(api: &StackApi) -> std::result::Result<RouteSelection, String> {
    let written = api.route_selection_expression.trim();
    let expression = match written
        .strip_prefix("${")
        .and_then(|inner| inner.strip_suffix('}'))
    {
        Some(inner) => format!("${inner}"),
        None => written.to_owned(),
    };
    RouteSelection::parse(&expression).map_err(|error| {
        let reason = match error {
            Error::InvalidInput { message } => message,
            other => other.to_string(),
        };
        format!(
            "{}, property RouteSelectionExpression: {reason}",
            api.logical_id
        )
    })
}

/// An invocation that failed, logged with its reason, as the error the gateway answers
/// with `Internal server error` (API Gateway does the same for a failed, crashed or
/// timed-out Lambda invocation).
fn integration_failure(route_key: &str, error: InvokeError) -> Error {
    tracing::error!(route = %route_key, function = %error.function(), %error, "integration failed");
    Error::handler(error)
}

/// API Gateway's answer to a path or method no route has: a REST API's 403, an HTTP
/// API's 404.
fn no_route(kind: ApiKind) -> HttpResponse {
    match kind {
        ApiKind::Http => http_error(StatusCode::NOT_FOUND, "Not Found"),
        _ => http_error(StatusCode::FORBIDDEN, "Missing Authentication Token"),
    }
}

/// API Gateway's answer when the Lambda integration failed: a REST API's 502, an HTTP
/// API's 500.
fn integration_failed(kind: ApiKind) -> HttpResponse {
    match kind {
        ApiKind::Http => http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        _ => http_error(StatusCode::BAD_GATEWAY, "Internal server error"),
    }
}

/// Whether the `$connect` request carries the identity source (headers are lower-cased
/// by the gateway; API Gateway matches header names case-insensitively).
fn has_identity_source(
    source: &IdentitySource,
    request: &Request,
    stage_variables: &BTreeMap<String, String>,
) -> bool {
    let present = |value: Option<&String>| value.is_some_and(|value| !value.is_empty());
    match source {
        IdentitySource::Header(name) => present(request.headers.get(&name.to_ascii_lowercase())),
        IdentitySource::QueryString(name) => present(request.query.get(name)),
        IdentitySource::StageVariable(name) => present(stage_variables.get(name)),
        // The request context always has the fields an identity source may name.
        IdentitySource::Context(_) => true,
        _ => true,
    }
}

#[async_trait]
impl Integration for TemplateIntegration {
    fn select_route(&self, body: &Payload) -> String {
        match self.selection.select(Some(body)) {
            Some(key)
                if key != "$connect" && key != "$disconnect" && self.api.route(&key).is_some() =>
            {
                key
            }
            _ => "$default".to_owned(),
        }
    }

    async fn authorize(&self, request: &Request) -> Result<Authorization> {
        let started = Instant::now();
        let outcome = self.run_authorizer(request).await;
        // A denial or a failure ends the $connect here (as the router counts it); an
        // allowed client is counted by its $connect.
        if !matches!(outcome, Ok(Authorization::Allow(_))) {
            self.observer.count(Counter::Connects, CONNECT, 1);
            self.observer.count(Counter::ConnectsRefused, CONNECT, 1);
            if outcome.is_err() {
                self.observer.count(Counter::HandlerErrors, CONNECT, 1);
            }
            self.observer.latency(CONNECT, started.elapsed());
        }
        outcome
    }

    async fn connect(&self, request: Request) -> Result<Reply> {
        self.connection_event(Counter::Connects, request).await
    }

    async fn message(&self, request: Request) -> Result<Reply> {
        let started = Instant::now();
        let outcome = match self.api.route(&request.route_key) {
            Some(route) => self.invoke_route(route, &request).await,
            None => {
                let mut reply = Reply::status(403);
                reply.body = Some(
                    GatewayError::Forbidden.frame(&request.connection_id, &request.request_id),
                );
                Ok(reply)
            }
        };
        self.observe(Counter::Messages, &request.route_key, &outcome, started);
        outcome
    }

    async fn disconnect(&self, request: Request) -> Result<Reply> {
        self.connection_event(Counter::Disconnects, request).await
    }

    fn has_http_route(&self, path: &str) -> bool {
        self.rest_api_of(path).is_some()
    }

    fn http_route(&self, method: &str, path: &str) -> Option<String> {
        let (api, path) = self.rest_api_of(path)?;
        api.route(method, path)
            .map(|(route, _)| format!("{} {}", route.method, route.path))
    }

    async fn http(&self, mut request: HttpRequest) -> Result<HttpResponse> {
        let Some((api, path)) = self.rest_api_of(request.uri().path()) else {
            return Ok(no_route(ApiKind::Rest));
        };
        let path = path.to_owned();
        let Some((route, captures)) = api.route(request.method().as_str(), &path) else {
            let answer = no_route(api.kind);
            tracing::info!(method = %request.method(), path = %request.uri().path(), api = %api.logical_id, status = %answer.status(), "no route of the {}", api.kind);
            return Ok(answer);
        };
        let started = Instant::now();
        // The function sees the path within the stage, as API Gateway sends it.
        let within_stage = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        if let Ok(uri) = within_stage.parse() {
            *request.uri_mut() = uri;
        }
        request.extensions_mut().insert(PathParams(captures));
        let response = self.invoke_rest(api, route, &request).await;
        let label = format!("{} {}", route.method, route.path);
        self.observer.count(Counter::HttpRequests, &label, 1);
        if response.status() == integration_failed(api.kind).status() {
            self.observer.count(Counter::HandlerErrors, &label, 1);
        }
        self.observer.latency(&label, started.elapsed());
        Ok(response)
    }

    fn observer(&self) -> &dyn Metrics {
        self.observer.as_ref()
    }
}
