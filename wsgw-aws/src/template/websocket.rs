//! The template's WebSocket API: its routes and route responses, and the check of a
//! router against them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use wsgw_core::Router;

use super::{Resource, Template, TemplateValue, ROUTE, ROUTE_RESPONSE};

/// An `AWS::ApiGatewayV2::Api` with `ProtocolType: WEBSOCKET`, with its routes (the
/// `AWS::ApiGatewayV2::Route`s whose `ApiId` is `!Ref` it) and their route responses.
#[derive(Debug, Clone, Copy)]
pub struct WebSocketApi<'t> {
    template: &'t Template,
    api: &'t Resource,
}

/// One `AWS::ApiGatewayV2::Route` of a WebSocket API, with the
/// `AWS::ApiGatewayV2::RouteResponse`s whose `RouteId` is `!Ref` it.
#[derive(Debug, Clone)]
pub struct ApiRoute<'t> {
    route: &'t Resource,
    responses: Vec<&'t Resource>,
}

impl<'t> ApiRoute<'t> {
    /// The route's resource.
    pub fn resource(&self) -> &'t Resource {
        self.route
    }

    /// The route's logical id.
    pub fn logical_id(&self) -> &'t str {
        &self.route.logical_id
    }

    /// `RouteKey`, as written.
    pub fn route_key_value(&self) -> Option<&'t TemplateValue> {
        self.route.property("RouteKey")
    }

    /// `RouteKey`, when it is a literal string (`$connect`, `sendmessage` …).
    pub fn route_key(&self) -> Option<&'t str> {
        self.route_key_value().and_then(TemplateValue::as_str)
    }

    /// `RouteResponseSelectionExpression`, as written.
    pub fn route_response_selection_expression(&self) -> Option<&'t TemplateValue> {
        self.route.property("RouteResponseSelectionExpression")
    }

    /// The route's `AWS::ApiGatewayV2::RouteResponse`s.
    pub fn route_responses(&self) -> &[&'t Resource] {
        &self.responses
    }

    /// Whether the route is two-way as API Gateway sees it: a
    /// `RouteResponseSelectionExpression` and at least one route response. Only then is
    /// the integration's response sent back to the caller.
    pub fn is_two_way(&self) -> bool {
        self.route_response_selection_expression().is_some() && !self.responses.is_empty()
    }

    /// `Target`, as written (`!Sub "integrations/${Integration}"`).
    pub fn target(&self) -> Option<&'t TemplateValue> {
        self.route.property("Target")
    }
}

impl<'t> WebSocketApi<'t> {
    pub(super) fn new(template: &'t Template, api: &'t Resource) -> Self {
        WebSocketApi { template, api }
    }

    /// The template it belongs to.
    pub fn template(&self) -> &'t Template {
        self.template
    }

    /// The API's resource.
    pub fn resource(&self) -> &'t Resource {
        self.api
    }

    /// The API's logical id.
    pub fn logical_id(&self) -> &'t str {
        &self.api.logical_id
    }

    /// `RouteSelectionExpression`, as written.
    pub fn route_selection_expression(&self) -> Option<&'t TemplateValue> {
        self.api.property("RouteSelectionExpression")
    }

    /// The API's routes, by logical id, each with its route responses.
    pub fn routes(&self) -> Vec<ApiRoute<'t>> {
        let api = self.logical_id();
        self.template
            .resources_of_type(ROUTE)
            .filter(|route| route.refers_to("ApiId", api))
            .map(|route| ApiRoute {
                route,
                responses: self
                    .template
                    .resources_of_type(ROUTE_RESPONSE)
                    .filter(|response| response.refers_to("RouteId", &route.logical_id))
                    .collect(),
            })
            .collect()
    }

    /// The route of a key.
    pub fn route(&self, route_key: &str) -> Option<ApiRoute<'t>> {
        self.routes()
            .into_iter()
            .find(|route| route.route_key() == Some(route_key))
    }

    /// Checks that `router` and this API agree on what a deployed API Gateway decides:
    /// the route keys, which routes are two-way (a route response in the template,
    /// [`Router::two_way_route`] in code) and the route selection expression. Every
    /// difference is reported, each naming the route and the template.
    pub fn check_router<S>(&self, router: &Router<S>) -> Result<(), DriftError> {
        let mut differences = Vec::new();
        let expression = router.selection().expression();
        match self.route_selection_expression() {
            Some(TemplateValue::String(written)) if written == expression => {}
            written => differences.push(Drift::SelectionExpression {
                router: expression.to_owned(),
                template: written.map(ToString::to_string),
            }),
        }

        let mut template_routes: BTreeMap<&str, ApiRoute<'t>> = BTreeMap::new();
        for route in self.routes() {
            let Some(key) = route.route_key() else {
                differences.push(Drift::UnresolvedRouteKey {
                    logical_id: route.logical_id().to_owned(),
                    written: route
                        .route_key_value()
                        .map_or_else(|| "nothing".to_owned(), ToString::to_string),
                });
                continue;
            };
            if let Some(first) = template_routes.get(key) {
                differences.push(Drift::DuplicateRoute {
                    route_key: key.to_owned(),
                    logical_ids: [first.logical_id(), route.logical_id()].map(str::to_owned),
                });
                continue;
            }
            let has_expression = route.route_response_selection_expression().is_some();
            if !is_complete(&route) {
                differences.push(Drift::IncompleteRouteResponse {
                    route_key: key.to_owned(),
                    logical_id: route.logical_id().to_owned(),
                    has_expression,
                });
            }
            template_routes.insert(key, route);
        }

        let router_routes: BTreeSet<&str> = router.route_keys().into_iter().collect();
        for key in &router_routes {
            match template_routes.get(key) {
                None => differences.push(Drift::MissingFromTemplate {
                    route_key: (*key).to_owned(),
                }),
                Some(route) => {
                    let two_way = router.is_two_way(key);
                    if is_complete(route) && two_way != route.is_two_way() {
                        differences.push(Drift::TwoWay {
                            route_key: (*key).to_owned(),
                            logical_id: route.logical_id().to_owned(),
                            in_router: two_way,
                        });
                    }
                }
            }
        }
        for (key, route) in &template_routes {
            if !router_routes.contains(key) {
                differences.push(Drift::MissingFromRouter {
                    route_key: (*key).to_owned(),
                    logical_id: route.logical_id().to_owned(),
                });
            }
        }

        if differences.is_empty() {
            Ok(())
        } else {
            Err(DriftError {
                template: self.template.name().to_owned(),
                api: self.logical_id().to_owned(),
                differences,
            })
        }
    }
}

/// Whether a route has both halves of a route response or neither.
fn is_complete(route: &ApiRoute<'_>) -> bool {
    let has_expression = route.route_response_selection_expression().is_some();
    let has_response = !route.route_responses().is_empty();
    has_expression == has_response
}

/// One way a router and a template's WebSocket API differ.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drift {
    /// The router selects routes by another expression than the template's
    /// `RouteSelectionExpression` (or the template has none).
    SelectionExpression {
        /// The router's.
        router: String,
        /// The template's, as written.
        template: Option<String>,
    },
    /// The router registers a route the template does not declare: deployed, its
    /// messages go to `$default`.
    MissingFromTemplate {
        /// The route key.
        route_key: String,
    },
    /// The template declares a route the router has no handler for.
    MissingFromRouter {
        /// The route key.
        route_key: String,
        /// The route's logical id.
        logical_id: String,
    },
    /// Two-way in one, one-way in the other.
    TwoWay {
        /// The route key.
        route_key: String,
        /// The route's logical id.
        logical_id: String,
        /// Whether the router's route is the two-way one.
        in_router: bool,
    },
    /// A route has a `RouteResponseSelectionExpression` and no route response, or a route
    /// response and no expression: API Gateway needs both to send a reply.
    IncompleteRouteResponse {
        /// The route key.
        route_key: String,
        /// The route's logical id.
        logical_id: String,
        /// Whether the expression is the half that is there.
        has_expression: bool,
    },
    /// A route's `RouteKey` is not a literal string, so it cannot be compared.
    UnresolvedRouteKey {
        /// The route's logical id.
        logical_id: String,
        /// The `RouteKey` as written.
        written: String,
    },
    /// Two routes with the same key (CloudFormation would fail to create the second).
    DuplicateRoute {
        /// The route key.
        route_key: String,
        /// The two routes' logical ids.
        logical_ids: [String; 2],
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::SelectionExpression { router, template: Some(template) } => write!(
                f,
                "the route selection expression is `{router}` in the router but {template} in the template (RouteSelectionExpression)"
            ),
            Drift::SelectionExpression { router, template: None } => write!(
                f,
                "the template's API has no RouteSelectionExpression; the router's is `{router}`"
            ),
            Drift::MissingFromTemplate { route_key } => write!(
                f,
                "route `{route_key}` is registered in the router but the template has no AWS::ApiGatewayV2::Route with RouteKey `{route_key}`: deployed, its messages would run `$default` instead; add the route (and put it in the Deployment's DependsOn)"
            ),
            Drift::MissingFromRouter { route_key, logical_id } => write!(
                f,
                "route `{route_key}` is declared in the template ({logical_id}) but the router has no handler for it: deployed, the function would get routeKey `{route_key}` and run `$default`; register it in the router or remove the route"
            ),
            Drift::TwoWay { route_key, logical_id, in_router: true } => write!(
                f,
                "route `{route_key}` is two-way in the router (Router::two_way_route) but its template route {logical_id} has no route response: deployed, its reply body would be dropped; give {logical_id} `RouteResponseSelectionExpression: $default` and an AWS::ApiGatewayV2::RouteResponse (RouteId: !Ref {logical_id}, RouteResponseKey: $default)"
            ),
            Drift::TwoWay { route_key, logical_id, in_router: false } => write!(
                f,
                "route `{route_key}` has a route response in the template ({logical_id}) but is one-way in the router (Router::route): deployed, its reply body would be sent to the caller, locally it is dropped; register it with Router::two_way_route, or remove the route response"
            ),
            Drift::IncompleteRouteResponse { route_key, logical_id, has_expression: true } => write!(
                f,
                "route `{route_key}` ({logical_id}) has a RouteResponseSelectionExpression but no AWS::ApiGatewayV2::RouteResponse: API Gateway needs both to send a reply"
            ),
            Drift::IncompleteRouteResponse { route_key, logical_id, has_expression: false } => write!(
                f,
                "route `{route_key}` ({logical_id}) has an AWS::ApiGatewayV2::RouteResponse but no RouteResponseSelectionExpression: API Gateway needs both to send a reply"
            ),
            Drift::UnresolvedRouteKey { logical_id, written } => write!(
                f,
                "route {logical_id} has RouteKey {written}, not a literal string, so it cannot be compared with the router"
            ),
            Drift::DuplicateRoute { route_key, logical_ids: [first, second] } => write!(
                f,
                "route `{route_key}` is declared twice in the template ({first} and {second})"
            ),
        }
    }
}

/// How a router and a template's WebSocket API differ; its message names the template
/// and, for each difference, the route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{template} does not match the router (WebSocket API {api}):{}", list(.differences))]
pub struct DriftError {
    /// The template's file name.
    pub template: String,
    /// The API's logical id.
    pub api: String,
    /// Every difference found.
    pub differences: Vec<Drift>,
}

fn list(differences: &[Drift]) -> String {
    differences
        .iter()
        .map(|difference| format!("\n  - {difference}"))
        .collect()
}
