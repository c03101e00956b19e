//! The template resolved for one local stack ([`Stack`]): every intrinsic function
//! evaluated, and what `wsgw local` runs read out of it: the WebSocket APIs with their
//! routes, route responses, `$connect` authorizer and stages, the functions those reach
//! (with SAM `Globals`), and the DynamoDB tables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::{ProjectionType, ScalarAttributeType};

use super::eval::{scalar_text, At, Evaluator, StackSettings};
use super::{Resource, Template, TemplateError, TemplateValue, API, ROUTE, ROUTE_RESPONSE};
use crate::dynamo::{IndexSpec, KeySpec, TableSpec};
use crate::lambda::HttpEventFormat;

/// `AWS::ApiGatewayV2::Integration`.
pub const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
/// `AWS::ApiGatewayV2::Authorizer`.
pub const AUTHORIZER: &str = "AWS::ApiGatewayV2::Authorizer";
/// `AWS::ApiGatewayV2::Stage`.
pub const STAGE: &str = "AWS::ApiGatewayV2::Stage";
/// `AWS::Serverless::Function`.
pub const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";
/// `AWS::Lambda::Function`.
pub const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";
/// `AWS::DynamoDB::Table`.
pub const TABLE: &str = "AWS::DynamoDB::Table";
/// `AWS::Serverless::SimpleTable`.
pub const SIMPLE_TABLE: &str = "AWS::Serverless::SimpleTable";

/// `AWS::Serverless::Api`: a REST API the functions' `Api` events reach.
pub const SERVERLESS_API: &str = "AWS::Serverless::Api";
/// `AWS::Serverless::HttpApi`: an HTTP API the functions' `HttpApi` events reach.
pub const SERVERLESS_HTTP_API: &str = "AWS::Serverless::HttpApi";
/// The REST API SAM creates for `Api` events without a `RestApiId`.
pub const IMPLICIT_REST_API: &str = "ServerlessRestApi";
/// The HTTP API SAM creates for `HttpApi` events without an `ApiId`.
pub const IMPLICIT_HTTP_API: &str = "ServerlessHttpApi";
/// The stage of SAM's implicit REST API.
const IMPLICIT_STAGE: &str = "Prod";
/// An HTTP API's stage without a `StageName`: served at the root of its URL.
pub const DEFAULT_HTTP_STAGE: &str = "$default";
/// Lambda's defaults when the template sets none.
const DEFAULT_MEMORY_MB: u32 = 128;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// A template resolved for one local stack: every intrinsic function evaluated, and the
/// WebSocket APIs, functions and tables `wsgw local` runs read out of it.
///
/// ```
/// use wsgw_aws::template::{StackSettings, Template};
///
/// let template = Template::parse(r#"
/// Parameters:
///   StageName: {Type: String, Default: production}
/// Resources:
///   Api:
///     Type: AWS::ApiGatewayV2::Api
///     Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
///   Integration:
///     Type: AWS::ApiGatewayV2::Integration
///     Properties:
///       ApiId: !Ref Api
///       IntegrationType: AWS_PROXY
///       IntegrationUri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Function.Arn}/invocations"
///   PingRoute:
///     Type: AWS::ApiGatewayV2::Route
///     Properties: {ApiId: !Ref Api, RouteKey: ping, Target: !Sub "integrations/${Integration}"}
///   Stage:
///     Type: AWS::ApiGatewayV2::Stage
///     Properties: {ApiId: !Ref Api, StageName: !Ref StageName}
///   Table:
///     Type: AWS::DynamoDB::Table
///     Properties:
///       AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
///       KeySchema: [{AttributeName: pk, KeyType: HASH}]
///   Function:
///     Type: AWS::Serverless::Function
///     Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: ping}}
///     Properties:
///       CodeUri: .
///       Handler: bootstrap
///       Runtime: provided.al2023
///       Environment: {Variables: {TABLE: !Ref Table}}
/// "#, "template.yaml")?;
///
/// let stack = template.resolve(StackSettings::new("demo").with_parameter("StageName", "dev"))?;
/// let api = &stack.apis[0];
/// assert_eq!(api.stages[0].name, "dev");
/// assert_eq!(api.route("ping").unwrap().function, "Function");
/// assert_eq!(stack.functions["Function"].environment["TABLE"], "demo-Table");
/// assert_eq!(stack.tables[0].spec.name, "demo-Table");
/// # Ok::<(), wsgw_aws::template::TemplateError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stack {
    /// The settings it was resolved with.
    pub settings: StackSettings,
    /// Every WebSocket API (`AWS::ApiGatewayV2::Api` with `ProtocolType: WEBSOCKET`).
    pub apis: Vec<StackApi>,
    /// Every REST API (`AWS::Serverless::Api`, and SAM's implicit `ServerlessRestApi`)
    /// the functions' `Api` events reach, and every HTTP API (`AWS::Serverless::HttpApi`,
    /// SAM's implicit `ServerlessHttpApi`) their `HttpApi` events reach.
    pub rest_apis: Vec<StackRestApi>,
    /// Every function a route, a REST route or an authorizer reaches, by logical id.
    pub functions: BTreeMap<String, StackFunction>,
    /// Every DynamoDB table.
    pub tables: Vec<StackTable>,
    /// What will not run locally and why (a function whose runtime is not `provided.*`
    /// …): one line each, for the user.
    pub notices: Vec<String>,
}

/// A WebSocket API of the stack.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StackApi {
    /// Its logical id.
    pub logical_id: String,
    /// Its `Name`.
    pub name: String,
    /// Its id (`requestContext.apiId`): ten lower-case letters and digits, the same on
    /// every run.
    pub api_id: String,
    /// `RouteSelectionExpression` (`$request.body.action`).
    pub route_selection_expression: String,
    /// Its routes.
    pub routes: Vec<StackRoute>,
    /// Its authorizers.
    pub authorizers: Vec<StackAuthorizer>,
    /// Its stages.
    pub stages: Vec<StackStage>,
}

impl StackApi {
    /// The route of a key.
    pub fn route(&self, route_key: &str) -> Option<&StackRoute> {
        self.routes
            .iter()
            .find(|route| route.route_key == route_key)
    }

    /// The authorizer of a logical id.
    pub fn authorizer(&self, logical_id: &str) -> Option<&StackAuthorizer> {
        self.authorizers
            .iter()
            .find(|authorizer| authorizer.logical_id == logical_id)
    }

    /// The `$connect` route's authorizer, when the route is `CUSTOM`-authorized.
    pub fn connect_authorizer(&self) -> Option<&StackAuthorizer> {
        self.route("$connect")
            .and_then(|route| route.authorizer.as_deref())
            .and_then(|logical_id| self.authorizer(logical_id))
    }
}

/// Which kind of API Gateway HTTP endpoint a [`StackRestApi`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiKind {
    /// A REST API (`AWS::Serverless::Api`, `Api` events): proxy events of payload 1.0,
    /// 403 `Missing Authentication Token` for a path or method without a route, 502 when
    /// the function fails.
    Rest,
    /// An HTTP API (`AWS::Serverless::HttpApi`, `HttpApi` events): each route's
    /// `PayloadFormatVersion` (2.0 by default), 404 `Not Found` without a route, 500
    /// when the function fails.
    Http,
}

impl fmt::Display for ApiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiKind::Rest => "REST API",
            ApiKind::Http => "HTTP API",
        })
    }
}

/// A REST API or an HTTP API of the stack, assembled from the functions' SAM `Api` or
/// `HttpApi` events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackRestApi {
    /// Its logical id (`ServerlessRestApi` or `ServerlessHttpApi` for SAM's implicit
    /// APIs).
    pub logical_id: String,
    /// REST or HTTP API.
    pub kind: ApiKind,
    /// `StageName` (`Prod` for the implicit REST API, [`DEFAULT_HTTP_STAGE`] for an HTTP
    /// API without one): deployed, the first segment of its URL's path (none for
    /// `$default`).
    pub stage_name: String,
    /// Its routes, in the template's order.
    pub routes: Vec<StackRestRoute>,
}

impl StackRestApi {
    /// The route `method` and `path` run (a route of the method before an `ANY` route of
    /// the path, as API Gateway prefers), with the path's `{name}` captures.
    pub fn route(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&StackRestRoute, BTreeMap<String, String>)> {
        let mut any = None;
        for route in &self.routes {
            let Some(captures) = wsgw_core::PathPattern::parse(&route.path).matches(path) else {
                continue;
            };
            if route.method.eq_ignore_ascii_case(method) {
                return Some((route, captures));
            }
            if route.method == "ANY" && any.is_none() {
                any = Some((route, captures));
            }
        }
        any
    }

    /// Whether a route's path matches `path` (whatever its method).
    pub fn has_path(&self, path: &str) -> bool {
        self.routes.iter().any(|route| {
            wsgw_core::PathPattern::parse(&route.path)
                .matches(path)
                .is_some()
        })
    }
}

/// A route of a REST or HTTP API: one `Api` or `HttpApi` event of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackRestRoute {
    /// The event's name under the function's `Events`.
    pub event: String,
    /// The event the function gets: [`HttpEventFormat::RestApi`] for a REST API and an
    /// HTTP API route of `PayloadFormatVersion` 1.0, else [`HttpEventFormat::PayloadV2`].
    pub payload_format: HttpEventFormat,
    /// `Method`, upper case (`GET`, `OPTIONS`, `ANY`).
    pub method: String,
    /// `Path` (`/history`, `/devices/{device_id}`): the resource path.
    pub path: String,
    /// The logical id of the function it invokes.
    pub function: String,
}

/// A route of a WebSocket API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackRoute {
    /// Its logical id.
    pub logical_id: String,
    /// `RouteKey`.
    pub route_key: String,
    /// The logical id of the function its integration invokes.
    pub function: String,
    /// Whether the function's response body goes back to the caller (a
    /// `RouteResponseSelectionExpression` and an `AWS::ApiGatewayV2::RouteResponse`).
    pub two_way: bool,
    /// `AuthorizationType` (`NONE`, `CUSTOM`, `AWS_IAM`).
    pub authorization_type: String,
    /// With `CUSTOM`, the logical id of its authorizer.
    pub authorizer: Option<String>,
}

/// Where API Gateway reads an identity source from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentitySource {
    /// `route.request.header.NAME` (the name as written; headers match case-insensitively).
    Header(String),
    /// `route.request.querystring.NAME`.
    QueryString(String),
    /// `stageVariables.NAME`.
    StageVariable(String),
    /// `context.NAME`.
    Context(String),
}

/// A Lambda REQUEST authorizer of a WebSocket API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackAuthorizer {
    /// Its logical id.
    pub logical_id: String,
    /// Its `Name`.
    pub name: String,
    /// Its id (`!Ref`).
    pub authorizer_id: String,
    /// The logical id of its function.
    pub function: String,
    /// `IdentitySource`: API Gateway answers 401 without calling the function when one
    /// is missing from the `$connect` request. Empty: the function is always called.
    pub identity_sources: Vec<IdentitySource>,
}

/// A stage of a WebSocket API.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StackStage {
    /// Its logical id.
    pub logical_id: String,
    /// `StageName`: the path of its URL (`ws://ADDR/{name}`).
    pub name: String,
    /// `StageVariables`.
    pub stage_variables: BTreeMap<String, String>,
    /// `DefaultRouteSettings.ThrottlingBurstLimit`.
    pub throttling_burst_limit: Option<u64>,
    /// `DefaultRouteSettings.ThrottlingRateLimit`.
    pub throttling_rate_limit: Option<f64>,
}

/// How a function is built: `cargo build --bin BINARY` of the package or workspace in
/// `manifest_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CargoBuild {
    /// The directory of the `Cargo.toml` to build in (`CodeUri`, resolved against the
    /// template's directory).
    pub manifest_dir: PathBuf,
    /// The binary (`BuildProperties.Binary`); `None` builds the package's one binary.
    pub binary: Option<String>,
}

impl CargoBuild {
    /// `cargo build --bin BINARY` in `manifest_dir` (the package's one binary for `None`).
    pub fn new(manifest_dir: impl Into<PathBuf>, binary: Option<String>) -> Self {
        CargoBuild {
            manifest_dir: manifest_dir.into(),
            binary,
        }
    }
}

/// A Lambda function of the stack.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StackFunction {
    /// Its logical id (the prefix of its output lines).
    pub logical_id: String,
    /// `AWS::Serverless::Function` or `AWS::Lambda::Function`.
    pub resource_type: String,
    /// Its name (`FunctionName`, or `{stack}-{LogicalId}`): `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// Its ARN.
    pub function_arn: String,
    /// `Runtime` (`provided.al2023`).
    pub runtime: Option<String>,
    /// `Handler`.
    pub handler: Option<String>,
    /// `MemorySize` in MB (Lambda's default 128).
    pub memory_size_mb: u32,
    /// `Timeout` (Lambda's default 3 s).
    pub timeout: Duration,
    /// `Environment.Variables`, evaluated (a `!Ref` to a table is the table's name).
    pub environment: BTreeMap<String, String>,
    /// `ReservedConcurrentExecutions`: at most this many instances at once.
    pub reserved_concurrency: Option<u32>,
    /// `LoggingConfig.LogFormat` (`JSON` or `Text`).
    pub log_format: Option<String>,
    /// How to build it; `None` when the template says nothing a local build can use.
    pub build: Option<CargoBuild>,
    /// Why it is not run locally, when it is not (a runtime that is not `provided.*`,
    /// nothing to build).
    pub not_runnable: Option<String>,
    /// The route keys (and authorizers, as `authorizer NAME`) that reach it, in order.
    pub reached_by: Vec<String>,
}

impl StackFunction {
    /// Whether `wsgw local` runs it.
    pub fn is_runnable(&self) -> bool {
        self.not_runnable.is_none()
    }
}

/// A DynamoDB table of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackTable {
    /// Its logical id.
    pub logical_id: String,
    /// What to create.
    pub spec: TableSpec,
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Header(name) => write!(f, "route.request.header.{name}"),
            IdentitySource::QueryString(name) => write!(f, "route.request.querystring.{name}"),
            IdentitySource::StageVariable(name) => write!(f, "stageVariables.{name}"),
            IdentitySource::Context(name) => write!(f, "context.{name}"),
        }
    }
}

impl Template {
    /// Resolves the template for one local stack: see [`Stack`]. Errors name the
    /// template, the resource and the property.
    pub fn resolve(&self, settings: StackSettings) -> Result<Stack, TemplateError> {
        Resolver::new(self, settings)?.stack()
    }

    /// The directory relative paths of the template (`CodeUri`) start from.
    fn directory(&self) -> PathBuf {
        Path::new(self.name())
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

struct Resolver<'t> {
    eval: Evaluator<'t>,
    /// `integrations/{id}` targets: integration physical id → logical id.
    integrations: BTreeMap<String, String>,
    /// Function ARNs → logical ids.
    function_arns: BTreeMap<String, String>,
}

impl<'t> Resolver<'t> {
    fn new(template: &'t Template, settings: StackSettings) -> Result<Self, TemplateError> {
        let eval = Evaluator::new(template, settings)?;
        let mut resolver = Resolver {
            eval,
            integrations: BTreeMap::new(),
            function_arns: BTreeMap::new(),
        };
        for resource in template.resources() {
            if !resolver.eval.exists(resource)? {
                continue;
            }
            let at = At::new(&resource.logical_id, "");
            match resource.resource_type.as_str() {
                INTEGRATION => {
                    let id = resolver.eval.physical_id(resource, &at)?;
                    resolver
                        .integrations
                        .insert(id, resource.logical_id.clone());
                }
                SERVERLESS_FUNCTION | LAMBDA_FUNCTION => {
                    let name = resolver.eval.physical_id(resource, &at)?;
                    let arn = resolver.function_arn(&name);
                    resolver
                        .function_arns
                        .insert(arn, resource.logical_id.clone());
                }
                _ => {}
            }
        }
        resolver.check_rules()?;
        Ok(resolver)
    }

    fn template(&self) -> &'t Template {
        self.eval.template
    }

    fn function_arn(&self, name: &str) -> String {
        let settings = &self.eval.settings;
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            settings.region, settings.account_id
        )
    }

    /// `Rules`: each assertion whose rule condition holds must hold, as CloudFormation
    /// refuses to deploy otherwise.
    fn check_rules(&self) -> Result<(), TemplateError> {
        let Some(TemplateValue::Map(rules)) = self.template().section("Rules") else {
            return Ok(());
        };
        for (name, rule) in rules {
            let TemplateValue::Map(rule) = rule else {
                continue;
            };
            let at = At::new("Rules", name.as_str());
            if let Some(condition) = rule.get("RuleCondition") {
                if !self.truth(condition, &at.child("RuleCondition"))? {
                    continue;
                }
            }
            let Some(TemplateValue::List(assertions)) = rule.get("Assertions") else {
                continue;
            };
            for (index, assertion) in assertions.iter().enumerate() {
                let TemplateValue::Map(assertion) = assertion else {
                    continue;
                };
                let at = at.child(&format!("Assertions[{index}]"));
                if let Some(assert) = assertion.get("Assert") {
                    if !self.truth(assert, &at.child("Assert"))? {
                        let description = assertion
                            .get("AssertDescription")
                            .and_then(TemplateValue::as_str)
                            .unwrap_or("the assertion does not hold");
                        return Err(self.eval.error(&at, description));
                    }
                }
            }
        }
        Ok(())
    }

    fn truth(&self, value: &TemplateValue, at: &At<'_>) -> Result<bool, TemplateError> {
        match self.eval.required(value, at)? {
            TemplateValue::Bool(truth) => Ok(truth),
            other => Err(self.eval.error(at, format!("{other} is not a condition"))),
        }
    }

    fn property(
        &self,
        resource: &Resource,
        name: &str,
    ) -> Result<Option<TemplateValue>, TemplateError> {
        match resource.property(name) {
            None => Ok(None),
            Some(value) => self
                .eval
                .evaluate(value, &At::new(&resource.logical_id, name)),
        }
    }

    fn string_property(
        &self,
        resource: &Resource,
        name: &str,
    ) -> Result<Option<String>, TemplateError> {
        let at = At::new(&resource.logical_id, name);
        self.property(resource, name)?
            .map(|value| {
                scalar_text(&value)
                    .ok_or_else(|| self.eval.error(&at, format!("is {value}, not a string")))
            })
            .transpose()
    }

    fn required_string(&self, resource: &Resource, name: &str) -> Result<String, TemplateError> {
        self.string_property(resource, name)?.ok_or_else(|| {
            self.eval
                .error(&At::new(&resource.logical_id, name), "is missing")
        })
    }

    /// Resources of a type that exist in this stack and whose `ApiId` is `!Ref api`.
    fn of_api(
        &self,
        resource_type: &'static str,
        api: &str,
    ) -> Result<Vec<&'t Resource>, TemplateError> {
        let mut found = Vec::new();
        for resource in self.template().resources_of_type(resource_type) {
            if resource.refers_to("ApiId", api) && self.eval.exists(resource)? {
                found.push(resource);
            }
        }
        Ok(found)
    }

    fn stack(self) -> Result<Stack, TemplateError> {
        let mut apis = Vec::new();
        for api in self.template().resources_of_type(API) {
            if !self.eval.exists(api)? {
                continue;
            }
            if self.string_property(api, "ProtocolType")?.as_deref() == Some("WEBSOCKET") {
                apis.push(self.api(api)?);
            }
        }
        if apis.is_empty() {
            return Err(TemplateError::NoWebSocketApi {
                template: self.template().name().to_owned(),
            });
        }
        let rest_apis = self.rest_apis()?;
        let mut functions: BTreeMap<String, StackFunction> = BTreeMap::new();
        let mut reached: Vec<(String, String)> = Vec::new();
        for api in &rest_apis {
            for route in &api.routes {
                reached.push((
                    route.function.clone(),
                    format!("{} {} {}", api.logical_id, route.method, route.path),
                ));
            }
        }
        for api in &apis {
            for route in &api.routes {
                reached.push((route.function.clone(), route.route_key.clone()));
            }
            for authorizer in &api.authorizers {
                reached.push((
                    authorizer.function.clone(),
                    format!("authorizer {}", authorizer.logical_id),
                ));
            }
        }
        for (logical_id, reached_by) in reached {
            if !functions.contains_key(&logical_id) {
                let resource = self.template().resource(&logical_id).ok_or_else(|| {
                    self.eval.error(
                        &At::new(&logical_id, ""),
                        "is not a resource of the template",
                    )
                })?;
                functions.insert(logical_id.clone(), self.function(resource)?);
            }
            if let Some(function) = functions.get_mut(&logical_id) {
                if !function.reached_by.contains(&reached_by) {
                    function.reached_by.push(reached_by);
                }
            }
        }
        let notices = functions
            .values()
            .filter_map(|function| {
                function.not_runnable.as_ref().map(|why| {
                    format!(
                        "{}: function {} is not run locally: {why}; unavailable: {}",
                        self.template().name(),
                        function.logical_id,
                        function.reached_by.join(", ")
                    )
                })
            })
            .collect();
        let mut tables = Vec::new();
        for resource in self.template().resources() {
            if matches!(resource.resource_type.as_str(), TABLE | SIMPLE_TABLE)
                && self.eval.exists(resource)?
            {
                tables.push(self.table(resource)?);
            }
        }
        Ok(Stack {
            settings: self.eval.settings.clone(),
            apis,
            rest_apis,
            functions,
            tables,
            notices,
        })
    }

    /// The REST APIs the `Api` events, and the HTTP APIs the `HttpApi` events, of the
    /// stack's `AWS::Serverless::Function`s reach.
    fn rest_apis(&self) -> Result<Vec<StackRestApi>, TemplateError> {
        let mut rest_apis: Vec<StackRestApi> = Vec::new();
        for function in self.template().resources_of_type(SERVERLESS_FUNCTION) {
            if !self.eval.exists(function)? {
                continue;
            }
            let Some(TemplateValue::Map(events)) = function.property("Events") else {
                continue;
            };
            for (name, event) in events {
                let at = At::new(&function.logical_id, "Events").child(name);
                let TemplateValue::Map(event) = event else {
                    continue;
                };
                let kind = match event.get("Type").and_then(TemplateValue::as_str) {
                    Some("Api") => ApiKind::Rest,
                    Some("HttpApi") => ApiKind::Http,
                    _ => continue,
                };
                let properties = match event.get("Properties") {
                    Some(TemplateValue::Map(properties)) => properties.clone(),
                    _ => {
                        return Err(self
                            .eval
                            .error(&at.child("Properties"), "is missing (Path and Method)"))
                    }
                };
                let at = at.child("Properties");
                let (api, stage_name) = self.rest_api_of(kind, &properties, &at)?;
                let text = |property: &str| -> Result<String, TemplateError> {
                    let at = at.child(property);
                    let value = properties
                        .get(property)
                        .ok_or_else(|| self.eval.error(&at, "is missing"))?;
                    let value = self.eval.required(value, &at)?;
                    scalar_text(&value)
                        .ok_or_else(|| self.eval.error(&at, format!("is {value}, not a string")))
                };
                let path = text("Path")?;
                if !path.starts_with('/') {
                    return Err(self
                        .eval
                        .error(&at.child("Path"), format!("{path:?} does not start with /")));
                }
                let method = text("Method")?.to_ascii_uppercase();
                let payload_format = match kind {
                    ApiKind::Rest => HttpEventFormat::RestApi,
                    ApiKind::Http => {
                        let at = at.child("PayloadFormatVersion");
                        let version = match properties.get("PayloadFormatVersion") {
                            Some(value) => scalar_text(&self.eval.required(value, &at)?),
                            None => None,
                        };
                        match version.as_deref() {
                            None | Some("2.0") => HttpEventFormat::PayloadV2,
                            Some("1.0") => HttpEventFormat::RestApi,
                            Some(other) => {
                                return Err(self
                                    .eval
                                    .error(&at, format!("{other:?} is not \"1.0\" or \"2.0\"")))
                            }
                        }
                    }
                };
                let route = StackRestRoute {
                    event: name.clone(),
                    payload_format,
                    method,
                    path,
                    function: function.logical_id.clone(),
                };
                match rest_apis.iter_mut().find(|known| known.logical_id == api) {
                    Some(known) => known.routes.push(route),
                    None => rest_apis.push(StackRestApi {
                        logical_id: api,
                        kind,
                        stage_name,
                        routes: vec![route],
                    }),
                }
            }
        }
        Ok(rest_apis)
    }

    /// The logical id and stage of the API an `Api` event's `RestApiId` (an `HttpApi`
    /// event's `ApiId`) names: SAM's implicit API without one.
    fn rest_api_of(
        &self,
        kind: ApiKind,
        properties: &BTreeMap<String, TemplateValue>,
        at: &At<'_>,
    ) -> Result<(String, String), TemplateError> {
        let (property, resource_type, implicit) = match kind {
            ApiKind::Rest => (
                "RestApiId",
                SERVERLESS_API,
                (IMPLICIT_REST_API, IMPLICIT_STAGE),
            ),
            ApiKind::Http => (
                "ApiId",
                SERVERLESS_HTTP_API,
                (IMPLICIT_HTTP_API, DEFAULT_HTTP_STAGE),
            ),
        };
        let Some(api_id) = properties.get(property) else {
            return Ok((implicit.0.to_owned(), implicit.1.to_owned()));
        };
        let at = at.child(property);
        let target = api_id.as_ref_target().ok_or_else(|| {
            self.eval.error(
                &at,
                format!("is {api_id}, not a !Ref to an {resource_type} of the template"),
            )
        })?;
        let api = self
            .template()
            .resource(target)
            .filter(|resource| resource.resource_type == resource_type)
            .ok_or_else(|| {
                self.eval.error(
                    &at,
                    format!("refers to {target}, which is not an {resource_type} of the template"),
                )
            })?;
        if !self.eval.exists(api)? {
            return Err(self.eval.error(
                &at,
                format!("refers to {target}, whose Condition does not hold in this stack"),
            ));
        }
        let stage_name = match kind {
            ApiKind::Rest => self.required_string(api, "StageName")?,
            ApiKind::Http => self
                .string_property(api, "StageName")?
                .unwrap_or_else(|| DEFAULT_HTTP_STAGE.to_owned()),
        };
        Ok((target.to_owned(), stage_name))
    }

    fn api(&self, api: &'t Resource) -> Result<StackApi, TemplateError> {
        let logical = api.logical_id.as_str();
        let route_selection_expression = self.required_string(api, "RouteSelectionExpression")?;
        let mut routes: Vec<StackRoute> = Vec::new();
        for route in self.of_api(ROUTE, logical)? {
            let route = self.route(route)?;
            if let Some(first) = routes
                .iter()
                .find(|known| known.route_key == route.route_key)
            {
                return Err(self.eval.error(
                    &At::new(&route.logical_id, "RouteKey"),
                    format!(
                        "route key {} is also the key of {}",
                        route.route_key, first.logical_id
                    ),
                ));
            }
            routes.push(route);
        }
        let mut authorizers = Vec::new();
        for authorizer in self.of_api(AUTHORIZER, logical)? {
            authorizers.push(self.authorizer(authorizer)?);
        }
        for route in &routes {
            if let Some(authorizer) = &route.authorizer {
                if !authorizers
                    .iter()
                    .any(|known: &StackAuthorizer| &known.authorizer_id == authorizer)
                {
                    return Err(self.eval.error(
                        &At::new(&route.logical_id, "AuthorizerId"),
                        format!(
                            "`{authorizer}` is no AWS::ApiGatewayV2::Authorizer of API {logical}"
                        ),
                    ));
                }
            }
        }
        // Routes name their authorizer by id; the model names it by logical id.
        let routes = routes
            .into_iter()
            .map(|mut route| {
                route.authorizer = route.authorizer.and_then(|id| {
                    authorizers
                        .iter()
                        .find(|known| known.authorizer_id == id)
                        .map(|known| known.logical_id.clone())
                });
                route
            })
            .collect();
        let mut stages = Vec::new();
        for stage in self.of_api(STAGE, logical)? {
            stages.push(self.stage(stage)?);
        }
        Ok(StackApi {
            logical_id: logical.to_owned(),
            name: self
                .string_property(api, "Name")?
                .unwrap_or_else(|| logical.to_owned()),
            api_id: self.eval.physical_id(api, &At::new(logical, ""))?,
            route_selection_expression,
            routes,
            authorizers,
            stages,
        })
    }

    fn route(&self, route: &'t Resource) -> Result<StackRoute, TemplateError> {
        let logical = route.logical_id.as_str();
        let route_key = self.required_string(route, "RouteKey")?;
        let at = At::new(logical, "Target");
        let target = self.string_property(route, "Target")?.ok_or_else(|| {
            self.eval.error(
                &at,
                format!("route {route_key} has no Target: deployed, API Gateway cannot run it"),
            )
        })?;
        let integration = target
            .strip_prefix("integrations/")
            .and_then(|id| self.integrations.get(id))
            .ok_or_else(|| {
                self.eval.error(
                    &at,
                    format!("`{target}` is not integrations/ followed by an AWS::ApiGatewayV2::Integration of the template"),
                )
            })?;
        let integration = self
            .template()
            .resource(integration)
            .ok_or_else(|| self.eval.error(&at, "no such integration"))?;
        let function = self.integration_function(integration)?;
        let responses = self
            .template()
            .resources_of_type(ROUTE_RESPONSE)
            .filter(|response| response.refers_to("RouteId", logical))
            .count();
        let has_expression = route.property("RouteResponseSelectionExpression").is_some();
        let authorization_type = self
            .string_property(route, "AuthorizationType")?
            .unwrap_or_else(|| "NONE".to_owned());
        let authorizer = match authorization_type.as_str() {
            "CUSTOM" => Some(
                self.string_property(route, "AuthorizerId")?
                    .ok_or_else(|| {
                        self.eval.error(
                            &At::new(logical, "AuthorizerId"),
                            "AuthorizationType is CUSTOM but there is no AuthorizerId",
                        )
                    })?,
            ),
            _ => None,
        };
        Ok(StackRoute {
            logical_id: logical.to_owned(),
            route_key,
            function,
            two_way: has_expression && responses > 0,
            authorization_type,
            authorizer,
        })
    }

    /// The function an `AWS_PROXY` integration (or an authorizer) invokes, from its URI:
    /// `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations`
    /// or the function's ARN itself.
    fn function_of_uri(
        &self,
        resource: &Resource,
        property: &str,
    ) -> Result<String, TemplateError> {
        let at = At::new(&resource.logical_id, property);
        let uri = self.required_string(resource, property)?;
        let arn = match uri.split_once(":lambda:path/2015-03-31/functions/") {
            Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
            None => uri.as_str(),
        };
        // A qualified ARN (an alias or version) names the same function.
        let unqualified = arn
            .match_indices(':')
            .nth(6)
            .map_or(arn, |(index, _)| &arn[..index]);
        self.function_arns.get(unqualified).cloned().ok_or_else(|| {
            self.eval.error(
                &at,
                format!("`{uri}` invokes no AWS::Serverless::Function or AWS::Lambda::Function of the template"),
            )
        })
    }

    fn integration_function(&self, integration: &Resource) -> Result<String, TemplateError> {
        let at = At::new(&integration.logical_id, "IntegrationType");
        match self.string_property(integration, "IntegrationType")?.as_deref() {
            Some("AWS_PROXY") => self.function_of_uri(integration, "IntegrationUri"),
            Some(other) => Err(self.eval.error(
                &at,
                format!("{other} integrations are not run locally (only AWS_PROXY, a Lambda proxy integration)"),
            )),
            None => Err(self.eval.error(&at, "is missing")),
        }
    }

    fn authorizer(&self, authorizer: &'t Resource) -> Result<StackAuthorizer, TemplateError> {
        let logical = authorizer.logical_id.as_str();
        let kind = self.required_string(authorizer, "AuthorizerType")?;
        if kind != "REQUEST" {
            return Err(self.eval.error(
                &At::new(logical, "AuthorizerType"),
                format!("{kind} authorizers are not run locally (WebSocket APIs take REQUEST authorizers)"),
            ));
        }
        let at = At::new(logical, "IdentitySource");
        let sources = match self.property(authorizer, "IdentitySource")? {
            None => Vec::new(),
            Some(TemplateValue::List(items)) => items
                .iter()
                .map(|item| {
                    scalar_text(item)
                        .ok_or_else(|| self.eval.error(&at, format!("{item} is not a string")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(TemplateValue::String(text)) => {
                text.split(',').map(|part| part.trim().to_owned()).collect()
            }
            Some(other) => {
                return Err(self
                    .eval
                    .error(&at, format!("{other} is not a list of identity sources")))
            }
        };
        let identity_sources = sources
            .iter()
            .map(|source| {
                let source = source.trim().trim_start_matches('$');
                if let Some(name) = source.strip_prefix("route.request.header.") {
                    Ok(IdentitySource::Header(name.to_owned()))
                } else if let Some(name) = source.strip_prefix("route.request.querystring.") {
                    Ok(IdentitySource::QueryString(name.to_owned()))
                } else if let Some(name) = source.strip_prefix("stageVariables.") {
                    Ok(IdentitySource::StageVariable(name.to_owned()))
                } else if let Some(name) = source.strip_prefix("context.") {
                    Ok(IdentitySource::Context(name.to_owned()))
                } else {
                    Err(self.eval.error(
                        &at,
                        format!("`{source}` is not route.request.header.NAME, route.request.querystring.NAME, stageVariables.NAME or context.NAME"),
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(StackAuthorizer {
            logical_id: logical.to_owned(),
            name: self
                .string_property(authorizer, "Name")?
                .unwrap_or_else(|| logical.to_owned()),
            authorizer_id: self.eval.physical_id(authorizer, &at)?,
            function: self.function_of_uri(authorizer, "AuthorizerUri")?,
            identity_sources,
        })
    }

    fn stage(&self, stage: &'t Resource) -> Result<StackStage, TemplateError> {
        let logical = stage.logical_id.as_str();
        let name = self.required_string(stage, "StageName")?;
        let mut stage_variables = BTreeMap::new();
        if let Some(TemplateValue::Map(variables)) = self.property(stage, "StageVariables")? {
            for (key, value) in variables {
                let at = At::new(logical, format!("StageVariables.{key}"));
                let value =
                    scalar_text(&value).ok_or_else(|| self.eval.error(&at, "is not a string"))?;
                stage_variables.insert(key, value);
            }
        }
        let settings = self.property(stage, "DefaultRouteSettings")?;
        let setting = |name: &str| match &settings {
            Some(TemplateValue::Map(fields)) => fields.get(name).and_then(scalar_text),
            _ => None,
        };
        Ok(StackStage {
            logical_id: logical.to_owned(),
            name,
            stage_variables,
            throttling_burst_limit: setting("ThrottlingBurstLimit")
                .and_then(|value| value.parse().ok()),
            throttling_rate_limit: setting("ThrottlingRateLimit")
                .and_then(|value| value.parse().ok()),
        })
    }

    /// A function's properties with SAM's `Globals.Function` under them (for
    /// `AWS::Serverless::Function`): the function's own win, and `Environment.Variables`
    /// are merged variable by variable.
    fn function_properties(&self, function: &Resource) -> BTreeMap<String, TemplateValue> {
        let mut properties = function.properties.clone();
        if function.resource_type != SERVERLESS_FUNCTION {
            return properties;
        }
        let Some(TemplateValue::Map(globals)) = self.template().globals().get("Function") else {
            return properties;
        };
        for (name, global) in globals {
            match (properties.get_mut(name), global) {
                (None, _) => {
                    properties.insert(name.clone(), global.clone());
                }
                (Some(TemplateValue::Map(own)), TemplateValue::Map(global))
                    if name == "Environment" =>
                {
                    if let (
                        Some(TemplateValue::Map(own_variables)),
                        Some(TemplateValue::Map(global_variables)),
                    ) = (own.get_mut("Variables"), global.get("Variables"))
                    {
                        for (key, value) in global_variables {
                            own_variables
                                .entry(key.clone())
                                .or_insert_with(|| value.clone());
                        }
                    } else if !own.contains_key("Variables") {
                        if let Some(variables) = global.get("Variables") {
                            own.insert("Variables".to_owned(), variables.clone());
                        }
                    }
                }
                (Some(_), _) => {}
            }
        }
        properties
    }

    fn function(&self, function: &'t Resource) -> Result<StackFunction, TemplateError> {
        let logical = function.logical_id.as_str();
        if !matches!(
            function.resource_type.as_str(),
            SERVERLESS_FUNCTION | LAMBDA_FUNCTION
        ) {
            return Err(self.eval.error(
                &At::new(logical, "Type"),
                format!("is {}, not a Lambda function (AWS::Serverless::Function or AWS::Lambda::Function)", function.resource_type),
            ));
        }
        let properties = self.function_properties(function);
        let get = |name: &str| -> Result<Option<TemplateValue>, TemplateError> {
            match properties.get(name) {
                None => Ok(None),
                Some(value) => self.eval.evaluate(value, &At::new(logical, name)),
            }
        };
        let text = |name: &str| -> Result<Option<String>, TemplateError> {
            get(name)?
                .map(|value| {
                    scalar_text(&value).ok_or_else(|| {
                        self.eval
                            .error(&At::new(logical, name), format!("is {value}, not a string"))
                    })
                })
                .transpose()
        };
        let number = |name: &str| -> Result<Option<u64>, TemplateError> {
            text(name)?
                .map(|value| {
                    value.trim().parse::<u64>().map_err(|_| {
                        self.eval.error(
                            &At::new(logical, name),
                            format!("`{value}` is not a whole number"),
                        )
                    })
                })
                .transpose()
        };
        let mut environment = BTreeMap::new();
        if let Some(TemplateValue::Map(settings)) = get("Environment")? {
            if let Some(TemplateValue::Map(variables)) = settings.get("Variables") {
                for (key, value) in variables {
                    let at = At::new(logical, format!("Environment.Variables.{key}"));
                    let value = scalar_text(value)
                        .ok_or_else(|| self.eval.error(&at, format!("is {value}, not a string")))?;
                    environment.insert(key.clone(), value);
                }
            }
        }
        let log_format = match get("LoggingConfig")? {
            Some(TemplateValue::Map(config)) => config.get("LogFormat").and_then(scalar_text),
            _ => None,
        };
        let runtime = text("Runtime")?;
        let package_type = text("PackageType")?;
        let build = self.build(function, &properties)?;
        let not_runnable = if package_type.as_deref() == Some("Image") {
            Some("PackageType is Image (container images are not run locally)".to_owned())
        } else {
            match runtime.as_deref() {
                Some(runtime) if runtime.starts_with("provided") => match &build {
                    Some(_) => None,
                    None => Some(
                        "no build for it: give it Metadata BuildMethod: rust-cargolambda with BuildProperties.Binary, and CodeUri the crate or workspace".to_owned(),
                    ),
                },
                Some(runtime) => Some(format!(
                    "Runtime is {runtime}, not provided.* (only custom-runtime binaries run locally)"
                )),
                None => Some("it has no Runtime".to_owned()),
            }
        };
        let at = At::new(logical, "");
        let function_name = self.eval.physical_id(function, &at)?;
        Ok(StackFunction {
            logical_id: logical.to_owned(),
            resource_type: function.resource_type.clone(),
            function_arn: self.function_arn(&function_name),
            function_name,
            runtime,
            handler: text("Handler")?,
            memory_size_mb: number("MemorySize")?.map_or(DEFAULT_MEMORY_MB, |mb| {
                u32::try_from(mb).unwrap_or(u32::MAX)
            }),
            timeout: number("Timeout")?.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            environment,
            reserved_concurrency: number("ReservedConcurrentExecutions")?
                .map(|count| u32::try_from(count).unwrap_or(u32::MAX)),
            log_format,
            build,
            not_runnable,
            reached_by: Vec::new(),
        })
    }

    /// The build: `Metadata: BuildMethod: rust-cargolambda` with `BuildProperties.Binary`
    /// and `CodeUri` the crate or workspace (what `sam build` runs), or, without build
    /// metadata, a `CodeUri` that is cargo-lambda's output `…/target/lambda/BINARY/`
    /// (built from the workspace that `target/` belongs to).
    fn build(
        &self,
        function: &Resource,
        properties: &BTreeMap<String, TemplateValue>,
    ) -> Result<Option<CargoBuild>, TemplateError> {
        let logical = function.logical_id.as_str();
        let code_property = if function.resource_type == LAMBDA_FUNCTION {
            "Code"
        } else {
            "CodeUri"
        };
        let code_uri = match properties.get(code_property) {
            None => None,
            Some(value) => {
                let at = At::new(logical, code_property);
                match self.eval.evaluate(value, &at)? {
                    Some(TemplateValue::String(path)) => Some(path),
                    _ => None,
                }
            }
        };
        let metadata = match &function.metadata {
            Some(metadata) => self
                .eval
                .evaluate(metadata, &At::new(logical, "Metadata"))?,
            None => None,
        };
        let field = |name: &str| match &metadata {
            Some(TemplateValue::Map(fields)) => fields.get(name).cloned(),
            _ => None,
        };
        let directory = self.template().directory();
        if let Some(method) = field("BuildMethod").as_ref().and_then(scalar_text) {
            if method != "rust-cargolambda" {
                return Ok(None);
            }
            let binary = match field("BuildProperties") {
                Some(TemplateValue::Map(properties)) => {
                    properties.get("Binary").and_then(scalar_text)
                }
                _ => None,
            };
            let Some(code_uri) = code_uri else {
                return Err(self.eval.error(
                    &At::new(logical, code_property),
                    "BuildMethod rust-cargolambda needs CodeUri, the crate or workspace to build",
                ));
            };
            return Ok(Some(CargoBuild {
                manifest_dir: directory.join(code_uri),
                binary,
            }));
        }
        let Some(code_uri) = code_uri else {
            return Ok(None);
        };
        let path = directory.join(&code_uri);
        let components: Vec<_> = path.components().collect();
        let lambda = components.windows(3).rposition(|window| {
            window[0].as_os_str() == "target" && window[1].as_os_str() == "lambda"
        });
        Ok(lambda.map(|index| CargoBuild {
            manifest_dir: components[..index].iter().collect(),
            binary: Some(
                components[index + 2]
                    .as_os_str()
                    .to_string_lossy()
                    .into_owned(),
            ),
        }))
    }

    fn table(&self, table: &'t Resource) -> Result<StackTable, TemplateError> {
        let logical = table.logical_id.as_str();
        let at = |property: &str| At::new(logical, property);
        let name = self.eval.physical_id(table, &at("TableName"))?;
        if table.resource_type == SIMPLE_TABLE {
            let (key, kind) = match self.property(table, "PrimaryKey")? {
                Some(TemplateValue::Map(key)) => (
                    key.get("Name")
                        .and_then(scalar_text)
                        .unwrap_or_else(|| "id".to_owned()),
                    key.get("Type")
                        .and_then(scalar_text)
                        .unwrap_or_else(|| "String".to_owned()),
                ),
                _ => ("id".to_owned(), "String".to_owned()),
            };
            let kind = match kind.as_str() {
                "Number" => ScalarAttributeType::N,
                "Binary" => ScalarAttributeType::B,
                _ => ScalarAttributeType::S,
            };
            return Ok(StackTable {
                logical_id: logical.to_owned(),
                spec: TableSpec::new(name, KeySpec::new(key.clone(), None))
                    .with_attribute(key, kind),
            });
        }
        let key = self.key_schema(self.property(table, "KeySchema")?, &at("KeySchema"))?;
        let mut spec = TableSpec::new(name, key);
        if let Some(TemplateValue::List(definitions)) =
            self.property(table, "AttributeDefinitions")?
        {
            for (index, definition) in definitions.iter().enumerate() {
                let at = at(&format!("AttributeDefinitions[{index}]"));
                let field = |name: &str| match definition {
                    TemplateValue::Map(fields) => fields.get(name).and_then(scalar_text),
                    _ => None,
                };
                let (Some(attribute), Some(kind)) =
                    (field("AttributeName"), field("AttributeType"))
                else {
                    return Err(self
                        .eval
                        .error(&at, "needs AttributeName and AttributeType"));
                };
                let kind = match kind.as_str() {
                    "S" => ScalarAttributeType::S,
                    "N" => ScalarAttributeType::N,
                    "B" => ScalarAttributeType::B,
                    other => {
                        return Err(self
                            .eval
                            .error(&at, format!("AttributeType {other} is not S, N or B")))
                    }
                };
                spec = spec.with_attribute(attribute, kind);
            }
        }
        for (property, global) in [
            ("GlobalSecondaryIndexes", true),
            ("LocalSecondaryIndexes", false),
        ] {
            let Some(TemplateValue::List(indexes)) = self.property(table, property)? else {
                continue;
            };
            for (position, index) in indexes.iter().enumerate() {
                let at = at(&format!("{property}[{position}]"));
                let TemplateValue::Map(fields) = index else {
                    return Err(self.eval.error(&at, "is not a mapping"));
                };
                let index_name = fields
                    .get("IndexName")
                    .and_then(scalar_text)
                    .ok_or_else(|| self.eval.error(&at, "has no IndexName"))?;
                let key =
                    self.key_schema(fields.get("KeySchema").cloned(), &at.child("KeySchema"))?;
                let (projection, non_key_attributes) = match fields.get("Projection") {
                    Some(TemplateValue::Map(projection)) => (
                        projection
                            .get("ProjectionType")
                            .and_then(scalar_text)
                            .unwrap_or_else(|| "KEYS_ONLY".to_owned()),
                        match projection.get("NonKeyAttributes") {
                            Some(TemplateValue::List(names)) => {
                                names.iter().filter_map(scalar_text).collect()
                            }
                            _ => Vec::new(),
                        },
                    ),
                    _ => ("KEYS_ONLY".to_owned(), Vec::new()),
                };
                let projection = match projection.as_str() {
                    "ALL" => ProjectionType::All,
                    "INCLUDE" => ProjectionType::Include,
                    "KEYS_ONLY" => ProjectionType::KeysOnly,
                    other => {
                        return Err(self.eval.error(
                            &at.child("Projection"),
                            format!("ProjectionType {other} is not KEYS_ONLY, INCLUDE or ALL"),
                        ))
                    }
                };
                let mut index = IndexSpec::new(index_name, key, projection);
                index.non_key_attributes = non_key_attributes;
                if global {
                    spec.global_indexes.push(index);
                } else {
                    spec.local_indexes.push(index);
                }
            }
        }
        if let Some(TemplateValue::Map(ttl)) = self.property(table, "TimeToLiveSpecification")? {
            let enabled = ttl
                .get("Enabled")
                .and_then(scalar_text)
                .is_some_and(|value| value == "true");
            if enabled {
                spec.ttl_attribute = ttl.get("AttributeName").and_then(scalar_text);
            }
        }
        for (name, kind) in &spec.attributes {
            let _ = kind;
            let used = std::iter::once(&spec.key)
                .chain(
                    spec.global_indexes
                        .iter()
                        .chain(&spec.local_indexes)
                        .map(|index| &index.key),
                )
                .any(|key| &key.partition == name || key.sort.as_ref() == Some(name));
            if !used {
                return Err(self.eval.error(
                    &at("AttributeDefinitions"),
                    format!("declares {name}, which is no key of the table or of an index (DynamoDB refuses that)"),
                ));
            }
        }
        Ok(StackTable {
            logical_id: logical.to_owned(),
            spec,
        })
    }

    fn key_schema(
        &self,
        value: Option<TemplateValue>,
        at: &At<'_>,
    ) -> Result<KeySpec, TemplateError> {
        let Some(TemplateValue::List(elements)) = value else {
            return Err(self.eval.error(at, "is missing or not a list"));
        };
        let mut partition = None;
        let mut sort = None;
        for element in &elements {
            let field = |name: &str| match element {
                TemplateValue::Map(fields) => fields.get(name).and_then(scalar_text),
                _ => None,
            };
            match (field("AttributeName"), field("KeyType").as_deref()) {
                (Some(name), Some("HASH")) => partition = Some(name),
                (Some(name), Some("RANGE")) => sort = Some(name),
                _ => {
                    return Err(self.eval.error(
                        at,
                        format!("{element} is not {{AttributeName, KeyType: HASH or RANGE}}"),
                    ))
                }
            }
        }
        let partition = partition.ok_or_else(|| self.eval.error(at, "has no HASH key"))?;
        Ok(KeySpec::new(partition, sort))
    }
}
