//! The CloudFormation / AWS SAM template, read as a typed model (feature `template`).
//!
//! Deployed, the template decides what API Gateway does: which routes exist, which of
//! them send the integration's response back (route responses), the route selection
//! expression. Locally the [`Router`] decides. This module reads the
//! template, YAML or JSON, short-form tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`, `!Join`,
//! `!Select`, `!FindInMap`, `!Equals`, `!Not`, …) included, into [`Template`]: its
//! resources with their properties as [`TemplateValue`]s, intrinsic functions kept as
//! values ([`Intrinsic`]) rather than evaluated, and a typed view of the WebSocket API
//! ([`WebSocketApi`]) that checks a router against the template
//! ([`WebSocketApi::check_router`]):
//!
//! ```
//! use wsgw_aws::template::Template;
//! use wsgw_core::{Context, Request, Router};
//!
//! let template = Template::parse(
//!     r#"
//! Resources:
//!   Api:
//!     Type: AWS::ApiGatewayV2::Api
//!     Properties:
//!       ProtocolType: WEBSOCKET
//!       RouteSelectionExpression: $request.body.action
//!   PingRoute:
//!     Type: AWS::ApiGatewayV2::Route
//!     Properties:
//!       ApiId: !Ref Api
//!       RouteKey: ping
//!       Target: !Sub "integrations/${Integration}"
//! "#,
//!     "template.yaml",
//! )?;
//! let ok = |_ctx: Context, _req: Request| async { Ok(()) };
//!
//! let router = Router::new().route("ping", ok);
//! template.websocket_api()?.check_router(&router)?;
//!
//! let drifted = router.route("pong", ok);
//! let error = template.websocket_api()?.check_router(&drifted).unwrap_err();
//! assert!(error.to_string().contains("template.yaml"));
//! assert!(error.to_string().contains("route `pong`"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Template::resolve`] evaluates the template for one local stack ([`Stack`]): the
//! parameters (defaults and overrides), conditions and intrinsic functions, with the
//! WebSocket APIs, the functions their routes and authorizers reach, and the tables; it
//! is what `wsgw local` runs.
//!
//! Use it in a test of your own system, one per template, so adding a route in code
//! without adding it to the template fails the build's tests ([`check_router`] reads the
//! file and checks its one WebSocket API):
//!
//! ```no_run
//! # fn router() -> wsgw_core::Router { unimplemented!() }
//! #[test]
//! fn the_template_declares_exactly_the_routers_routes() {
//!     let template = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
//!     if let Err(error) = wsgw_aws::template::check_router(template, &router()) {
//!         panic!("{error}");
//!     }
//! }
//! ```

mod eval;
mod stack;
mod value;
mod websocket;

use std::collections::BTreeMap;
use std::path::Path;

use wsgw_core::Router;

pub use eval::{StackSettings, LOCAL_ACCOUNT_ID};
pub use stack::{
    ApiKind, CargoBuild, IdentitySource, Stack, StackApi, StackAuthorizer, StackFunction,
    StackRestApi, StackRestRoute, StackRoute, StackStage, StackTable, DEFAULT_HTTP_STAGE,
    IMPLICIT_HTTP_API, IMPLICIT_REST_API, SERVERLESS_API, SERVERLESS_HTTP_API,
};
pub use value::{Intrinsic, TemplateValue};
pub use websocket::{ApiRoute, Drift, DriftError, WebSocketApi};

/// `AWS::ApiGatewayV2::Api`.
pub const API: &str = "AWS::ApiGatewayV2::Api";
/// `AWS::ApiGatewayV2::Route`.
pub const ROUTE: &str = "AWS::ApiGatewayV2::Route";
/// `AWS::ApiGatewayV2::RouteResponse`.
pub const ROUTE_RESPONSE: &str = "AWS::ApiGatewayV2::RouteResponse";

/// Why a template could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read the template {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML (the message names the line and column).
    #[error("{template} is not valid YAML: {message}")]
    Yaml {
        /// The template's file name (or the name it was parsed under).
        template: String,
        /// The parser's message, with the position.
        message: String,
    },
    /// The text starts like JSON but is not.
    #[error("{template} is not valid JSON: {source}")]
    Json {
        /// The template's file name.
        template: String,
        /// The parser's error, with the position.
        #[source]
        source: serde_json::Error,
    },
    /// The document does not have a template's shape.
    #[error("{template} is not a CloudFormation template: {problem}")]
    NotATemplate {
        /// The template's file name.
        template: String,
        /// What is wrong (no `Resources` mapping, a resource without `Type` …).
        problem: String,
    },
    /// [`Template::websocket_api`] found no `AWS::ApiGatewayV2::Api` with
    /// `ProtocolType: WEBSOCKET`.
    #[error("{template} declares no WebSocket API (an AWS::ApiGatewayV2::Api with ProtocolType: WEBSOCKET)")]
    NoWebSocketApi {
        /// The template's file name.
        template: String,
    },
    /// [`Template::websocket_api`] found several: name one with
    /// [`Template::websocket_api_named`].
    #[error("{template} declares several WebSocket APIs ({}): name one with Template::websocket_api_named", apis.join(", "))]
    SeveralWebSocketApis {
        /// The template's file name.
        template: String,
        /// Their logical ids.
        apis: Vec<String>,
    },
    /// [`Template::websocket_api_named`] found no WebSocket API of that logical id.
    #[error("{template} has no WebSocket API named `{logical_id}`")]
    NoSuchWebSocketApi {
        /// The template's file name.
        template: String,
        /// The logical id asked for.
        logical_id: String,
    },
    /// [`Template::resolve`]: a value of the template cannot be resolved or is not what
    /// it must be; the message names the resource (or section) and the property.
    #[error("{template}: {resource}{}: {problem}", if property.is_empty() { String::new() } else { format!(", property {property}") })]
    Invalid {
        /// The template's file name.
        template: String,
        /// The resource's logical id, or the section (`Parameters`, `Conditions`,
        /// `Rules`).
        resource: String,
        /// The property's path (`Environment.Variables.TABLE`, `Target`); empty for the
        /// resource itself.
        property: String,
        /// What is wrong.
        problem: String,
    },
    /// [`check_router`]: the router and the template differ.
    #[error(transparent)]
    Drift(#[from] DriftError),
}

/// Reads the template at `path` and checks `router` against its one WebSocket API
/// ([`WebSocketApi::check_router`]): a system's drift test in one call. The error names
/// the file and, for a drift, every route that differs.
pub fn check_router<S>(path: impl AsRef<Path>, router: &Router<S>) -> Result<(), TemplateError> {
    let template = Template::from_path(path)?;
    template.websocket_api()?.check_router(router)?;
    Ok(())
}

/// One resource of the template.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Resource {
    /// The resource's logical id (its key under `Resources`).
    pub logical_id: String,
    /// `Type`, e.g. `AWS::ApiGatewayV2::Route`.
    pub resource_type: String,
    /// `Properties`, intrinsic functions kept as values.
    pub properties: BTreeMap<String, TemplateValue>,
    /// `Condition`, the name of the condition that decides whether it is created.
    pub condition: Option<String>,
    /// `DependsOn`, as a list.
    pub depends_on: Vec<String>,
    /// `Metadata`.
    pub metadata: Option<TemplateValue>,
}

impl Resource {
    /// A property.
    pub fn property(&self, name: &str) -> Option<&TemplateValue> {
        self.properties.get(name)
    }

    /// Whether a property is `!Ref logical_id` (or `{"Ref": logical_id}`).
    pub fn refers_to(&self, property: &str, logical_id: &str) -> bool {
        self.property(property)
            .and_then(TemplateValue::as_ref_target)
            == Some(logical_id)
    }
}

/// A CloudFormation or SAM template; see the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    resources: BTreeMap<String, Resource>,
    parameters: BTreeMap<String, TemplateValue>,
    conditions: BTreeMap<String, TemplateValue>,
    mappings: BTreeMap<String, TemplateValue>,
    outputs: BTreeMap<String, TemplateValue>,
    globals: BTreeMap<String, TemplateValue>,
    /// Every other top-level section (`Rules`, `Transform`, `Metadata` …), as written.
    other_sections: BTreeMap<String, TemplateValue>,
}

impl Template {
    /// Reads a template file, YAML or JSON; errors name the file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, TemplateError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: name.clone(),
            source,
        })?;
        Template::parse(&text, name)
    }

    /// Parses a template's text, YAML (short-form tags included) or JSON (when it starts
    /// with `{`); `name` is how errors name it (usually the file).
    pub fn parse(text: &str, name: impl Into<String>) -> Result<Self, TemplateError> {
        let name = name.into();
        let document = if text.trim_start().starts_with('{') {
            let json: serde_json::Value =
                serde_json::from_str(text).map_err(|source| TemplateError::Json {
                    template: name.clone(),
                    source,
                })?;
            TemplateValue::from_json(json)
        } else {
            let yaml: yaml_serde::Value =
                yaml_serde::from_str(text).map_err(|error| TemplateError::Yaml {
                    template: name.clone(),
                    message: error.to_string(),
                })?;
            TemplateValue::from_yaml(yaml).map_err(|problem| TemplateError::NotATemplate {
                template: name.clone(),
                problem,
            })?
        };
        Template::from_document(document, name)
    }

    fn from_document(document: TemplateValue, name: String) -> Result<Self, TemplateError> {
        let not_a_template = |problem: String| TemplateError::NotATemplate {
            template: name.clone(),
            problem,
        };
        let TemplateValue::Map(mut top) = document else {
            return Err(not_a_template("the document is not a mapping".to_owned()));
        };
        let section = |top: &mut BTreeMap<String, TemplateValue>, key: &str| match top.remove(key) {
            None => Ok(BTreeMap::new()),
            Some(TemplateValue::Map(entries)) => Ok(entries),
            Some(other) => Err(format!("`{key}` is not a mapping but {other}")),
        };
        let resources = section(&mut top, "Resources").map_err(not_a_template)?;
        if resources.is_empty() {
            return Err(not_a_template(
                "it has no `Resources` (every template declares at least one)".to_owned(),
            ));
        }
        let resources = resources
            .into_iter()
            .map(|(logical_id, body)| {
                Resource::from_value(logical_id.clone(), body)
                    .map(|resource| (logical_id, resource))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()
            .map_err(not_a_template)?;
        Ok(Template {
            parameters: section(&mut top, "Parameters").map_err(not_a_template)?,
            conditions: section(&mut top, "Conditions").map_err(not_a_template)?,
            mappings: section(&mut top, "Mappings").map_err(not_a_template)?,
            outputs: section(&mut top, "Outputs").map_err(not_a_template)?,
            globals: section(&mut top, "Globals").map_err(not_a_template)?,
            other_sections: top,
            resources,
            name,
        })
    }

    /// How errors name the template: the file it was read from, or the name given to
    /// [`parse`](Self::parse).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every resource, by logical id.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    /// The resource of a logical id.
    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.get(logical_id)
    }

    /// The resources of one type (`AWS::ApiGatewayV2::Route` …), by logical id.
    pub fn resources_of_type<'a>(
        &'a self,
        resource_type: &'a str,
    ) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources
            .values()
            .filter(move |resource| resource.resource_type == resource_type)
    }

    /// `Parameters`, each as written (`Type`, `Default`, `AllowedValues` …).
    pub fn parameters(&self) -> &BTreeMap<String, TemplateValue> {
        &self.parameters
    }

    /// `Conditions`, each an intrinsic function as written.
    pub fn conditions(&self) -> &BTreeMap<String, TemplateValue> {
        &self.conditions
    }

    /// `Mappings`.
    pub fn mappings(&self) -> &BTreeMap<String, TemplateValue> {
        &self.mappings
    }

    /// `Outputs`.
    pub fn outputs(&self) -> &BTreeMap<String, TemplateValue> {
        &self.outputs
    }

    /// SAM's `Globals` (`Function`, `Api` …), each as written.
    pub fn globals(&self) -> &BTreeMap<String, TemplateValue> {
        &self.globals
    }

    /// Another top-level section (`Rules`, `Transform`, `Description`, `Metadata` …), as
    /// written.
    pub fn section(&self, name: &str) -> Option<&TemplateValue> {
        self.other_sections.get(name)
    }

    /// Every WebSocket API of the template (`AWS::ApiGatewayV2::Api` with `ProtocolType:
    /// WEBSOCKET`), by logical id.
    pub fn websocket_apis(&self) -> Vec<WebSocketApi<'_>> {
        self.resources_of_type(API)
            .filter(|api| {
                api.property("ProtocolType").and_then(TemplateValue::as_str) == Some("WEBSOCKET")
            })
            .map(|api| WebSocketApi::new(self, api))
            .collect()
    }

    /// The template's one WebSocket API.
    pub fn websocket_api(&self) -> Result<WebSocketApi<'_>, TemplateError> {
        let mut apis = self.websocket_apis();
        match apis.len() {
            0 => Err(TemplateError::NoWebSocketApi {
                template: self.name.clone(),
            }),
            1 => Ok(apis.remove(0)),
            _ => Err(TemplateError::SeveralWebSocketApis {
                template: self.name.clone(),
                apis: apis.iter().map(|api| api.logical_id().to_owned()).collect(),
            }),
        }
    }

    /// The WebSocket API of a logical id, for templates that declare several.
    pub fn websocket_api_named(&self, logical_id: &str) -> Result<WebSocketApi<'_>, TemplateError> {
        self.websocket_apis()
            .into_iter()
            .find(|api| api.logical_id() == logical_id)
            .ok_or_else(|| TemplateError::NoSuchWebSocketApi {
                template: self.name.clone(),
                logical_id: logical_id.to_owned(),
            })
    }
}

impl Resource {
    fn from_value(logical_id: String, body: TemplateValue) -> Result<Self, String> {
        let TemplateValue::Map(mut body) = body else {
            return Err(format!("resource `{logical_id}` is not a mapping"));
        };
        let resource_type = match body.remove("Type") {
            Some(TemplateValue::String(resource_type)) => resource_type,
            Some(other) => {
                return Err(format!(
                    "resource `{logical_id}` has a Type that is not a string: {other}"
                ))
            }
            None => return Err(format!("resource `{logical_id}` has no Type")),
        };
        let properties = match body.remove("Properties") {
            None | Some(TemplateValue::Null) => BTreeMap::new(),
            Some(TemplateValue::Map(properties)) => properties,
            Some(other) => {
                return Err(format!(
                    "resource `{logical_id}` has Properties that are not a mapping: {other}"
                ))
            }
        };
        let depends_on = match body.remove("DependsOn") {
            None => Vec::new(),
            Some(TemplateValue::String(one)) => vec![one],
            Some(TemplateValue::List(many)) => many
                .iter()
                .map(|id| id.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    format!(
                        "resource `{logical_id}` has a DependsOn that is not a list of logical ids"
                    )
                })?,
            Some(other) => {
                return Err(format!(
                    "resource `{logical_id}` has a DependsOn that is not a logical id: {other}"
                ))
            }
        };
        let condition = match body.remove("Condition") {
            None => None,
            Some(TemplateValue::String(name)) => Some(name),
            Some(other) => {
                return Err(format!(
                "resource `{logical_id}` has a Condition that is not a condition's name: {other}"
            ))
            }
        };
        Ok(Resource {
            logical_id,
            resource_type,
            properties,
            condition,
            depends_on,
            metadata: body.remove("Metadata"),
        })
    }
}
