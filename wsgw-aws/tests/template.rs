//! `wsgw_aws::template`: SAM templates read with their short-form tags, and the check of
//! a router against the template's WebSocket API.

use std::path::{Path, PathBuf};

use wsgw_aws::template::{Drift, Intrinsic, Template, TemplateError, TemplateValue};
use wsgw_core::{Context, Reply, Request, RouteSelection, Router};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("wsgw-aws sits in the workspace")
        .to_path_buf()
}

fn router() -> Router {
    Router::new()
}

async fn ok(_ctx: Context, _request: Request) -> wsgw_core::Result<Reply> {
    Ok(Reply::ok())
}

/// Like the examples' templates: `$connect`, `$disconnect`, `$default`, `ping`, and a
/// two-way `whoami`.
const TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  StageName:
    Type: String
    Default: production
Conditions:
  IsProduction: !Equals [!Ref StageName, production]
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: !Sub "${AWS::StackName}-api"
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.action
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Function.Arn}/invocations"
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      AuthorizationType: !If [IsProduction, CUSTOM, NONE]
      Target: !Sub "integrations/${Integration}"
  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $disconnect
      Target: !Join ["/", [integrations, !Ref Integration]]
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      Target: !Sub "integrations/${Integration}"
  PingRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: ping
      Target: !Sub "integrations/${Integration}"
  WhoamiRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: whoami
      RouteResponseSelectionExpression: $default
      Target: !Sub "integrations/${Integration}"
  WhoamiRouteResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties:
      ApiId: !Ref Api
      RouteId: !Ref WhoamiRoute
      RouteResponseKey: $default
  Deployment:
    Type: AWS::ApiGatewayV2::Deployment
    DependsOn: [ConnectRoute, DisconnectRoute, DefaultRoute, PingRoute, WhoamiRoute, WhoamiRouteResponse]
    Properties:
      ApiId: !Ref Api
  Function:
    Type: AWS::Serverless::Function
    Condition: IsProduction
    Properties:
      Role: !GetAtt FunctionRole.Arn
      Environment:
        Variables:
          TABLE: !Select [0, !Split [",", !FindInMap [Tables, !Ref StageName, Names]]]
          ENABLED: !Not [!Equals [!Ref StageName, ""]]
Outputs:
  Url:
    Value: !Sub "wss://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}"
"#;

/// The router `TEMPLATE` describes.
fn matching_router() -> Router {
    router()
        .on_connect(ok)
        .on_disconnect(ok)
        .on_default(ok)
        .route("ping", ok)
        .two_way_route("whoami", ok)
}

fn template() -> Template {
    Template::parse(TEMPLATE, "examples/demo/template.yaml").expect("the template parses")
}

fn intrinsic(function: &str, argument: TemplateValue) -> TemplateValue {
    TemplateValue::Intrinsic(Box::new(Intrinsic {
        function: function.to_owned(),
        argument,
    }))
}

fn text(value: &str) -> TemplateValue {
    TemplateValue::String(value.to_owned())
}

#[test]
fn short_form_tags_are_kept_as_intrinsic_functions() {
    let template = template();
    let connect = template.resource("ConnectRoute").unwrap();
    assert_eq!(
        connect.property("AuthorizationType"),
        Some(&intrinsic(
            "Fn::If",
            TemplateValue::List(vec![text("IsProduction"), text("CUSTOM"), text("NONE")])
        ))
    );
    assert_eq!(
        connect.property("Target"),
        Some(&intrinsic("Fn::Sub", text("integrations/${Integration}")))
    );
    assert!(connect.refers_to("ApiId", "Api"));
    let function = template.resource("Function").unwrap();
    assert_eq!(
        function.property("Role"),
        Some(&intrinsic(
            "Fn::GetAtt",
            TemplateValue::List(vec![text("FunctionRole"), text("Arn")])
        )),
        "!GetAtt A.B is the long form's [A, B]"
    );
    assert_eq!(function.condition.as_deref(), Some("IsProduction"));
    let environment = function.property("Environment").unwrap().to_string();
    for shown in [
        "!Select",
        "!Split",
        "!FindInMap",
        "!Not",
        "!Equals",
        "!Ref StageName",
    ] {
        assert!(environment.contains(shown), "{shown} in {environment}");
    }
    assert_eq!(
        template.conditions()["IsProduction"],
        intrinsic(
            "Fn::Equals",
            TemplateValue::List(vec![
                intrinsic("Ref", text("StageName")),
                text("production")
            ])
        )
    );
    assert_eq!(
        template.resource("Deployment").unwrap().depends_on.len(),
        6,
        "DependsOn as a list"
    );
}

#[test]
fn long_forms_and_json_templates_read_the_same_as_short_forms() {
    let short = Template::parse(
        "Resources:\n  R:\n    Type: T\n    Properties:\n      A: !Ref X\n      B: !GetAtt F.Arn\n      C: !Sub [\"${x}\", {x: !Ref Y}]\n      D: !Condition C1\n",
        "short.yaml",
    )
    .unwrap();
    let long = Template::parse(
        "Resources:\n  R:\n    Type: T\n    Properties:\n      A: {Ref: X}\n      B:\n        Fn::GetAtt: [F, Arn]\n      C:\n        Fn::Sub: [\"${x}\", {x: {Ref: Y}}]\n      D: {Condition: C1}\n",
        "long.yaml",
    )
    .unwrap();
    let json = Template::parse(
        r#"{"Resources": {"R": {"Type": "T", "Properties": {"A": {"Ref": "X"}, "B": {"Fn::GetAtt": ["F", "Arn"]}, "C": {"Fn::Sub": ["${x}", {"x": {"Ref": "Y"}}]}, "D": {"Condition": "C1"}}}}}"#,
        "template.json",
    )
    .unwrap();
    let properties = |template: &Template| template.resource("R").unwrap().properties.clone();
    assert_eq!(properties(&short), properties(&long));
    assert_eq!(properties(&short), properties(&json));
}

#[test]
fn every_template_of_the_repository_parses_and_shows_its_websocket_routes() {
    let mut templates = vec![
        workspace().join("examples/echo/template.yaml"),
        workspace().join("examples/chat/template.yaml"),
        workspace().join("examples/telemetry/template.yaml"),
    ];
    for entry in std::fs::read_dir(workspace().join("wsgw-aws/templates")).unwrap() {
        templates.push(entry.unwrap().path());
    }
    for path in templates {
        let template = Template::from_path(&path).unwrap_or_else(|error| panic!("{error}"));
        let api = template
            .websocket_api()
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            api.route_selection_expression()
                .and_then(TemplateValue::as_str),
            Some("$request.body.action"),
            "{}",
            path.display()
        );
        let keys: Vec<&str> = api.routes().iter().filter_map(|r| r.route_key()).collect();
        for key in ["$connect", "$disconnect", "$default"] {
            assert!(keys.contains(&key), "{key} in {}: {keys:?}", path.display());
        }
    }
}

#[test]
fn the_router_the_template_describes_passes() {
    let template = template();
    let api = template.websocket_api().unwrap();
    assert_eq!(api.logical_id(), "Api");
    assert!(api.route("whoami").unwrap().is_two_way());
    assert!(!api.route("ping").unwrap().is_two_way());
    assert_eq!(api.check_router(&matching_router()), Ok(()));
}

/// The issue's case: a route added in code but not in the template would silently run
/// `$default` deployed. The message names the route and the template file.
#[test]
fn a_route_added_in_code_without_the_template_fails_naming_the_route_and_the_file() {
    let error = template()
        .websocket_api()
        .unwrap()
        .check_router(&matching_router().route("sendmessage", ok))
        .unwrap_err();
    assert_eq!(
        error.differences,
        vec![Drift::MissingFromTemplate {
            route_key: "sendmessage".to_owned()
        }]
    );
    let message = error.to_string();
    assert!(
        message.starts_with("examples/demo/template.yaml"),
        "{message}"
    );
    assert!(message.contains("route `sendmessage`"), "{message}");
    assert!(message.contains("`$default`"), "{message}");
}

#[test]
fn a_template_route_without_a_handler_and_a_different_selection_expression_are_reported() {
    let router = router()
        .route_selection(RouteSelection::parse("$request.body.type").unwrap())
        .on_connect(ok)
        .on_disconnect(ok)
        .on_default(ok)
        .two_way_route("whoami", ok);
    let error = template()
        .websocket_api()
        .unwrap()
        .check_router(&router)
        .unwrap_err();
    assert_eq!(
        error.differences,
        vec![
            Drift::SelectionExpression {
                router: "$request.body.type".to_owned(),
                template: Some("$request.body.action".to_owned()),
            },
            Drift::MissingFromRouter {
                route_key: "ping".to_owned(),
                logical_id: "PingRoute".to_owned(),
            },
        ]
    );
    assert!(error.to_string().contains("route `ping`"), "{error}");
}

#[test]
fn two_way_routes_must_match_the_templates_route_responses_both_ways() {
    let router = router()
        .on_connect(ok)
        .on_disconnect(ok)
        .on_default(ok)
        .two_way_route("ping", ok)
        .route("whoami", ok);
    let error = template()
        .websocket_api()
        .unwrap()
        .check_router(&router)
        .unwrap_err();
    assert_eq!(
        error.differences,
        vec![
            Drift::TwoWay {
                route_key: "ping".to_owned(),
                logical_id: "PingRoute".to_owned(),
                in_router: true,
            },
            Drift::TwoWay {
                route_key: "whoami".to_owned(),
                logical_id: "WhoamiRoute".to_owned(),
                in_router: false,
            },
        ]
    );
    let message = error.to_string();
    assert!(
        message.contains("RouteResponseSelectionExpression: $default"),
        "{message}"
    );
    assert!(message.contains("Router::two_way_route"), "{message}");
}

#[test]
fn half_a_route_response_is_reported() {
    let without_response = TEMPLATE.replace(
        "  WhoamiRouteResponse:\n    Type: AWS::ApiGatewayV2::RouteResponse",
        "  WhoamiRouteResponse:\n    Type: AWS::ApiGatewayV2::IntegrationResponse",
    );
    let template = Template::parse(&without_response, "half.yaml").unwrap();
    let error = template
        .websocket_api()
        .unwrap()
        .check_router(&matching_router())
        .unwrap_err();
    assert_eq!(
        error.differences,
        vec![Drift::IncompleteRouteResponse {
            route_key: "whoami".to_owned(),
            logical_id: "WhoamiRoute".to_owned(),
            has_expression: true,
        }]
    );
}

#[test]
fn malformed_templates_are_refused_naming_the_file_and_the_place() {
    let error = Template::parse("Resources:\n  A: [unclosed\n", "broken.yaml").unwrap_err();
    assert!(matches!(error, TemplateError::Yaml { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("broken.yaml is not valid YAML")
            && error.to_string().contains("line"),
        "{error}"
    );
    let error = Template::parse("{\"Resources\": ", "broken.json").unwrap_err();
    assert!(matches!(error, TemplateError::Json { .. }), "{error:?}");
    let error = Template::parse("Description: nothing\n", "empty.yaml").unwrap_err();
    assert!(error.to_string().contains("no `Resources`"), "{error}");
    let error =
        Template::parse("Resources:\n  A:\n    Properties: {}\n", "untyped.yaml").unwrap_err();
    assert!(
        error.to_string().contains("resource `A` has no Type"),
        "{error}"
    );
    let error = Template::from_path("/nonexistent/template.yaml").unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/template.yaml"),
        "{error}"
    );
    let error = Template::parse(
        "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n",
        "tables.yaml",
    )
    .unwrap()
    .websocket_api()
    .unwrap_err();
    assert!(
        matches!(error, TemplateError::NoWebSocketApi { .. }),
        "{error:?}"
    );
}

/// `check_router`: the drift test of a system in one call, from the file.
#[test]
fn check_router_reads_the_file_and_names_it_and_the_route_in_a_drift() {
    let path = workspace().join("examples/echo/template.yaml");
    let echo_like = router()
        .on_connect(ok)
        .on_disconnect(ok)
        .on_default(ok)
        .route("message", ok)
        .route("whoami", ok);
    assert!(wsgw_aws::template::check_router(&path, &echo_like).is_ok());
    let error =
        wsgw_aws::template::check_router(&path, &echo_like.clone().route("ping", ok)).unwrap_err();
    assert!(matches!(error, TemplateError::Drift(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("examples/echo/template.yaml"), "{message}");
    assert!(message.contains("route `ping`"), "{message}");
    let missing =
        wsgw_aws::template::check_router("no/such/template.yaml", &echo_like).unwrap_err();
    assert!(matches!(missing, TemplateError::Read { .. }), "{missing:?}");
}
