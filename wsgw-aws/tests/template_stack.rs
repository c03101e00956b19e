//! `Template::resolve`: every template of the repository resolved for a local stack, the
//! intrinsic functions evaluated as CloudFormation does, and each kind of bad input
//! answered with one line naming the resource and the property.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::ProjectionType;
use wsgw_aws::lambda::HttpEventFormat;
use wsgw_aws::template::{ApiKind, IdentitySource, Stack, StackSettings, Template, TemplateError};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("wsgw-aws sits in the workspace")
        .to_path_buf()
}

fn resolve_file(relative: &str, overrides: &[&str]) -> Result<Stack, TemplateError> {
    let template = Template::from_path(workspace().join(relative))?;
    let settings = StackSettings::new("demo")
        .with_overrides(overrides)
        .expect("overrides are KEY=VALUE");
    template.resolve(settings)
}

fn resolve(text: &str, overrides: &[&str]) -> Result<Stack, TemplateError> {
    let template = Template::parse(text, "bad/template.yaml")?;
    template.resolve(
        StackSettings::new("demo")
            .with_overrides(overrides)
            .expect("overrides are KEY=VALUE"),
    )
}

fn error_of(text: &str, overrides: &[&str]) -> String {
    let error = resolve(text, overrides).expect_err("the template is refused");
    let message = error.to_string();
    assert!(!message.contains('\n'), "one line, not several: {message}");
    message
}

const SECRET: &str = "JwtSecret=0123456789abcdef0123456789abcdef";

#[test]
fn the_chat_template_resolves_to_one_function_behind_every_route_and_two_tables() {
    let stack = resolve_file("examples/chat/template.yaml", &[]).unwrap();

    let api = &stack.apis[0];
    assert_eq!(api.route_selection_expression, "$request.body.action");
    let keys: Vec<&str> = api
        .routes
        .iter()
        .map(|route| route.route_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "$connect",
            "$default",
            "$disconnect",
            "heartbeat",
            "history",
            "sendmessage"
        ]
    );
    assert!(api
        .routes
        .iter()
        .all(|route| route.function == "Function" && !route.two_way));
    assert!(
        api.authorizers.is_empty(),
        "AuthOn is false without JwtSecret"
    );
    assert_eq!(api.connect_authorizer(), None);
    assert_eq!(api.stages[0].name, "production");
    assert_eq!(api.stages[0].throttling_burst_limit, Some(200));
    assert_eq!(api.api_id.len(), 10);

    assert_eq!(
        stack.functions.len(),
        1,
        "the authorizer function is not created"
    );
    let function = &stack.functions["Function"];
    assert_eq!(function.function_name, "demo-Function");
    assert_eq!(function.memory_size_mb, 256);
    assert_eq!(function.timeout, Duration::from_secs(29));
    assert_eq!(
        function.environment["WSGW_CONNECTIONS_TABLE"],
        "demo-ConnectionsTable"
    );
    assert_eq!(
        function.environment["WSGW_HISTORY_TABLE"],
        "demo-HistoryTable"
    );
    assert_eq!(function.environment["CHAT_RETENTION_DAYS"], "30");
    assert_eq!(function.environment["WSGW_JWT_SECRET"], "");
    assert!(function.is_runnable());
    let build = function.build.as_ref().expect("a build");
    assert_eq!(build.binary.as_deref(), Some("chat"));

    let connections = &stack
        .tables
        .iter()
        .find(|t| t.logical_id == "ConnectionsTable")
        .unwrap()
        .spec;
    assert_eq!(connections.name, "demo-ConnectionsTable");
    assert_eq!(connections.key.partition, "pk");
    assert_eq!(connections.key.sort.as_deref(), Some("sk"));
    assert_eq!(connections.global_indexes[0].name, "by-group");
    assert_eq!(connections.global_indexes[0].key.partition, "gpk");
    assert_eq!(
        connections.global_indexes[0].projection,
        ProjectionType::KeysOnly
    );
    assert_eq!(connections.ttl_attribute.as_deref(), Some("ttl"));
    assert!(stack.notices.is_empty(), "{:?}", stack.notices);
}

#[test]
fn a_jwt_secret_turns_the_chats_authorizer_on_with_its_identity_source() {
    let stack = resolve_file("examples/chat/template.yaml", &[SECRET]).unwrap();

    let api = &stack.apis[0];
    let authorizer = api
        .connect_authorizer()
        .expect("$connect is CUSTOM-authorized");
    assert_eq!(authorizer.function, "AuthorizerFunction");
    assert_eq!(
        authorizer.identity_sources,
        [IdentitySource::Header("Sec-WebSocket-Protocol".to_owned())]
    );
    assert_eq!(api.route("$connect").unwrap().authorization_type, "CUSTOM");
    let function = &stack.functions["AuthorizerFunction"];
    assert_eq!(function.environment["WSGW_LAMBDA_ROLE"], "authorizer");
    assert_eq!(function.memory_size_mb, 128);
    assert_eq!(function.reached_by, ["authorizer Authorizer"]);

    let query = resolve_file(
        "examples/chat/template.yaml",
        &[SECRET, "TokenLocation=query"],
    )
    .unwrap();
    assert_eq!(
        query.apis[0].connect_authorizer().unwrap().identity_sources,
        [IdentitySource::QueryString("token".to_owned())]
    );
    let any = resolve_file(
        "examples/chat/template.yaml",
        &[SECRET, "TokenLocation=any"],
    )
    .unwrap();
    assert!(any.apis[0]
        .connect_authorizer()
        .unwrap()
        .identity_sources
        .is_empty());
}

#[test]
fn the_telemetry_template_resolves_with_and_without_keys() {
    let open = resolve_file("examples/telemetry/template.yaml", &[]).unwrap();
    let keys: Vec<&str> = open.apis[0]
        .routes
        .iter()
        .map(|r| r.route_key.as_str())
        .collect();
    assert!(keys.contains(&"RealTimeDataUpdate") && keys.contains(&"ControlCmd"));
    assert_eq!(open.tables.len(), 2);
    assert_eq!(
        open.functions["Function"].environment["TELEMETRY_HISTORY_TTL_DAYS"],
        "30"
    );

    let keyed = resolve_file(
        "examples/telemetry/template.yaml",
        &["DeviceKeys=esp32-01=k1"],
    )
    .unwrap();
    let authorizer = keyed.apis[0]
        .connect_authorizer()
        .expect("keys turn auth on");
    assert!(
        authorizer.identity_sources.is_empty(),
        "TokenLocation any: no identity source"
    );
    assert_eq!(
        keyed.functions["AuthorizerFunction"].environment["TELEMETRY_DEVICE_KEYS"],
        "esp32-01=k1"
    );
}

#[test]
fn the_telemetry_templates_rule_refuses_a_device_secret_with_keys_as_cloudformation_does() {
    let error = resolve_file(
        "examples/telemetry/template.yaml",
        &[
            "DeviceKeys=a=b",
            "DeviceSecret=0123456789abcdef0123456789abcdef",
        ],
    )
    .unwrap_err()
    .to_string();

    assert!(
        error.contains("Rules, property DeviceSecretWithoutKeys.Assertions[0]"),
        "{error}"
    );
    assert!(error.contains("DeviceSecret cannot be combined"), "{error}");
}

#[test]
fn the_echo_template_and_the_stateful_pattern_resolve() {
    let echo = resolve_file("examples/echo/template.yaml", &[]).unwrap();
    assert!(echo.tables.is_empty());
    assert_eq!(echo.apis[0].routes.len(), 5);
    assert_eq!(echo.functions.len(), 1);

    let pattern = resolve_file("wsgw-aws/templates/stateful-websocket.yaml", &[]).unwrap();
    assert_eq!(pattern.tables.len(), 2);
    assert!(pattern
        .functions
        .values()
        .all(|function| function.is_runnable()));
}

#[test]
fn the_build_metadata_sam_build_reads_names_the_crate_and_the_binary() {
    let stack = resolve(
        &format!(
            "{API}
  EchoFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: echo
    Properties:
      CodeUri: ../..
      Handler: bootstrap
      Runtime: provided.al2023
"
        ),
        &[],
    )
    .unwrap();

    let build = stack.functions["EchoFunction"].build.clone().unwrap();
    assert_eq!(build.binary.as_deref(), Some("echo"));
    assert_eq!(build.manifest_dir, Path::new("bad/../.."));
}

/// An API whose `$connect` and `ping` routes invoke `EchoFunction`; the function is left
/// to each test.
const API: &str = r#"
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.action
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${EchoFunction.Arn}/invocations"
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      Target: !Join ["/", [integrations, !Ref Integration]]
  PingRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: ping
      RouteResponseSelectionExpression: $default
      Target: !Sub "integrations/${Integration}"
  PingResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties:
      ApiId: !Ref Api
      RouteId: !Ref PingRoute
      RouteResponseKey: $default
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: local"#;

#[test]
fn intrinsic_functions_parameters_mappings_and_pseudo_parameters_are_evaluated() {
    let template = format!(
        r#"
Parameters:
  Env: {{Type: String, Default: dev, AllowedValues: [dev, prod]}}
  Names: {{Type: CommaDelimitedList, Default: "a,b,c"}}
  Days: {{Type: Number, Default: 7}}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsWeek: !Equals [!Ref Days, 7]
  Both: !And [!Condition IsWeek, !Not [!Condition IsProd]]
  Either: !Or [!Condition IsProd, !Equals [x, y]]
Mappings:
  Sizes:
    dev: {{Memory: 256}}
    prod: {{Memory: 1024}}
Globals:
  Function:
    Timeout: 12
    Runtime: provided.al2023
    Environment:
      Variables:
        FROM_GLOBALS: global
        OVERRIDDEN: global
{API}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${{AWS::StackName}}-${{Env}}-items"
      AttributeDefinitions: [{{AttributeName: id, AttributeType: N}}]
      KeySchema: [{{AttributeName: id, KeyType: HASH}}]
  EchoFunction:
    Type: AWS::Serverless::Function
    Metadata: {{BuildMethod: rust-cargolambda, BuildProperties: {{Binary: echo}}}}
    Properties:
      CodeUri: .
      MemorySize: !FindInMap [Sizes, !Ref Env, Memory]
      ReservedConcurrentExecutions: 4
      Environment:
        Variables:
          OVERRIDDEN: own
          SUB_LIST: !Sub ["${{Name}}@${{AWS::Region}}/${{AWS::AccountId}}", {{Name: !Select [1, !Ref Names]}}]
          LITERAL: !Sub "${{!NotReplaced}}"
          JOINED: !Join [",", !Split [";", "x;y"]]
          TABLE: !Ref Table
          TABLE_ARN: !GetAtt Table.Arn
          CHOSEN: !If [Both, week, other]
          EITHER: !If [Either, yes, no]
          NOTHING: !If [IsProd, set, !Ref AWS::NoValue]
          PARTITION: !Sub "${{AWS::Partition}}.${{AWS::URLSuffix}}"
          ENCODED: !Base64 hi
          ZONE: !Select [0, !GetAZs ""]
"#
    );
    let stack = resolve(&template, &[]).unwrap();
    let function = &stack.functions["EchoFunction"];
    let env = &function.environment;

    assert_eq!(function.memory_size_mb, 256);
    assert_eq!(
        function.timeout,
        Duration::from_secs(12),
        "Globals.Function.Timeout"
    );
    assert_eq!(function.runtime.as_deref(), Some("provided.al2023"));
    assert_eq!(function.reserved_concurrency, Some(4));
    assert_eq!(env["FROM_GLOBALS"], "global");
    assert_eq!(env["OVERRIDDEN"], "own");
    assert_eq!(env["SUB_LIST"], "b@us-east-1/123456789012");
    assert_eq!(env["LITERAL"], "${NotReplaced}");
    assert_eq!(env["JOINED"], "x,y");
    assert_eq!(env["TABLE"], "demo-dev-items");
    assert_eq!(
        env["TABLE_ARN"],
        "arn:aws:dynamodb:us-east-1:123456789012:table/demo-dev-items"
    );
    assert_eq!(env["CHOSEN"], "week");
    assert_eq!(env["EITHER"], "no");
    assert!(
        !env.contains_key("NOTHING"),
        "AWS::NoValue removes the variable"
    );
    assert_eq!(env["PARTITION"], "aws.amazonaws.com");
    assert_eq!(env["ENCODED"], "aGk=");
    assert_eq!(env["ZONE"], "us-east-1a");

    let api = &stack.apis[0];
    assert!(
        api.route("ping").unwrap().two_way,
        "a route response makes ping two-way"
    );
    assert!(!api.route("$connect").unwrap().two_way);
    assert_eq!(api.route("$connect").unwrap().function, "EchoFunction");
    assert_eq!(api.stages[0].name, "local");
    assert_eq!(
        stack.tables[0].spec.attribute_type("id"),
        Some(&aws_sdk_dynamodb::types::ScalarAttributeType::N)
    );

    let prod = resolve(&template, &["Env=prod"]).unwrap();
    let env = &prod.functions["EchoFunction"].environment;
    assert_eq!(prod.functions["EchoFunction"].memory_size_mb, 1024);
    assert_eq!(
        (
            env["NOTHING"].as_str(),
            env["CHOSEN"].as_str(),
            env["EITHER"].as_str()
        ),
        ("set", "other", "yes")
    );
}

#[test]
fn a_json_template_resolves_like_its_yaml() {
    let json = r#"{
      "Resources": {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"}},
        "Integration": {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {"ApiId": {"Ref": "Api"}, "IntegrationType": "AWS_PROXY",
          "IntegrationUri": {"Fn::Join": ["", ["arn:aws:apigateway:", {"Ref": "AWS::Region"}, ":lambda:path/2015-03-31/functions/", {"Fn::GetAtt": ["Fn", "Arn"]}, "/invocations"]]}}},
        "Route": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {"ApiId": {"Ref": "Api"}, "RouteKey": "$default", "Target": {"Fn::Sub": "integrations/${Integration}"}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Metadata": {"BuildMethod": "rust-cargolambda"}, "Properties": {"Code": "fn", "Runtime": "provided.al2", "Handler": "bootstrap"}}
      }
    }"#;

    let stack = resolve(json, &[]).unwrap();

    assert_eq!(stack.apis[0].route("$default").unwrap().function, "Fn");
    let build = stack.functions["Fn"].build.clone().unwrap();
    assert_eq!(
        (build.manifest_dir.as_path(), build.binary),
        (Path::new("bad/fn"), None)
    );
}

// --- bad input: one line naming the resource and the property -------------------------

#[test]
fn a_template_without_a_websocket_api_is_refused() {
    let message = error_of(
        "Resources:\n  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties: {ProtocolType: HTTP}\n",
        &[],
    );
    assert!(
        message.contains("bad/template.yaml declares no WebSocket API"),
        "{message}"
    );
}

#[test]
fn a_route_whose_target_is_no_integration_names_the_route_and_target() {
    let template = format!(
        "{API}\n  Orphan:\n    Type: AWS::ApiGatewayV2::Route\n    Properties: {{ApiId: !Ref Api, RouteKey: lost, Target: integrations/nowhere}}\n{FUNCTION}"
    );
    let message = error_of(&template, &[]);
    assert!(message.contains("Orphan, property Target"), "{message}");
    assert!(message.contains("integrations/nowhere"), "{message}");
}

#[test]
fn an_integration_invoking_no_function_of_the_template_is_refused() {
    let template = API.replace(
        "${EchoFunction.Arn}",
        "arn:aws:lambda:us-east-1:1:function:elsewhere",
    );
    let message = error_of(&format!("{template}\n{FUNCTION}"), &[]);
    assert!(
        message.contains("Integration, property IntegrationUri"),
        "{message}"
    );
    assert!(message.contains("function:elsewhere"), "{message}");
}

#[test]
fn an_unsupported_intrinsic_names_itself_and_where_it_is() {
    let template = format!(
        "{API}\n{FUNCTION}      Environment:\n        Variables:\n          SHARED: !ImportValue other-stack-table\n"
    );
    let message = error_of(&template, &[]);
    assert!(
        message.contains("EchoFunction, property Environment.Variables.SHARED"),
        "{message}"
    );
    assert!(
        message.contains("!ImportValue is not supported locally"),
        "{message}"
    );
}

#[test]
fn a_function_whose_runtime_is_not_provided_is_not_run_and_its_routes_are_named() {
    let template = format!(
        "{API}\n{}",
        FUNCTION.replace("provided.al2023", "python3.12")
    );

    let stack = resolve(&template, &[]).unwrap();

    let function = &stack.functions["EchoFunction"];
    assert!(!function.is_runnable());
    assert_eq!(stack.notices.len(), 1);
    let notice = &stack.notices[0];
    assert!(
        notice.contains("function EchoFunction is not run locally"),
        "{notice}"
    );
    assert!(
        notice.contains("Runtime is python3.12, not provided.*"),
        "{notice}"
    );
    assert!(notice.contains("unavailable: $connect, ping"), "{notice}");
}

#[test]
fn parameters_are_checked_as_cloudformation_checks_them() {
    let chat = |overrides: &[&str]| {
        resolve_file("examples/chat/template.yaml", overrides)
            .unwrap_err()
            .to_string()
    };

    let short = chat(&["JwtSecret=short"]);
    assert!(short.contains("Parameters, property JwtSecret"), "{short}");
    assert!(short.contains("at least 32 characters"), "{short}");
    let unknown = chat(&["NoSuchParameter=1"]);
    assert!(
        unknown.contains("Parameters, property NoSuchParameter"),
        "{unknown}"
    );
    assert!(unknown.contains("does not declare"), "{unknown}");
    let not_allowed = chat(&["TokenLocation=cookie"]);
    assert!(
        not_allowed.contains("not one of its AllowedValues"),
        "{not_allowed}"
    );
    let below = chat(&["RetentionDays=-1"]);
    assert!(below.contains("below its MinValue"), "{below}");

    let message = error_of(
        &format!("Parameters:\n  Needed: {{Type: String}}\n{API}\n{FUNCTION}"),
        &[],
    );
    assert!(
        message.contains(
            "Parameters, property Needed: has no Default: pass --parameter-overrides Needed=VALUE"
        ),
        "{message}"
    );
}

#[test]
fn a_reference_to_a_resource_whose_condition_is_false_names_both() {
    let template = format!(
        "Conditions:\n  Never: !Equals [a, b]\n{API}\n  Gone:\n    Type: AWS::DynamoDB::Table\n    Condition: Never\n    Properties: {{KeySchema: [{{AttributeName: id, KeyType: HASH}}]}}\n{FUNCTION}      Environment:\n        Variables:\n          TABLE: !Ref Gone\n"
    );
    let message = error_of(&template, &[]);
    assert!(
        message.contains("EchoFunction, property Environment.Variables.TABLE"),
        "{message}"
    );
    assert!(
        message.contains("Gone, which is not created: its Condition Never is false"),
        "{message}"
    );
}

#[test]
fn a_missing_mapping_key_and_an_unknown_reference_are_named() {
    let mapping = error_of(
        &format!("Mappings:\n  M: {{a: {{b: c}}}}\n{API}\n{FUNCTION}      MemorySize: !FindInMap [M, a, z]\n"),
        &[],
    );
    assert!(
        mapping.contains("EchoFunction, property MemorySize"),
        "{mapping}"
    );
    assert!(mapping.contains("mapping M.a has no key z"), "{mapping}");
    let reference = error_of(
        &format!(
            "{API}\n{FUNCTION}      Role: !GetAtt Missing.Arn\n      MemorySize: !Ref Nothing\n"
        ),
        &[],
    );
    assert!(
        reference.contains("property MemorySize: refers to Nothing"),
        "{reference}"
    );
}

#[test]
fn a_custom_route_without_an_authorizer_of_the_api_is_refused() {
    let template = format!("{API}\n{FUNCTION}").replace(
        "      RouteKey: $connect\n",
        "      RouteKey: $connect\n      AuthorizationType: CUSTOM\n      AuthorizerId: nope\n",
    );
    let message = error_of(&template, &[]);
    assert!(
        message.contains("ConnectRoute, property AuthorizerId"),
        "{message}"
    );
}

#[test]
fn a_table_key_schema_without_a_hash_key_is_refused() {
    let template = format!(
        "{API}\n  Table:\n    Type: AWS::DynamoDB::Table\n    Properties: {{KeySchema: [{{AttributeName: id, KeyType: RANGE}}]}}\n{FUNCTION}"
    );
    let message = error_of(&template, &[]);
    assert!(
        message.contains("Table, property KeySchema: has no HASH key"),
        "{message}"
    );
}

/// The function the [`API`] invokes: runnable unless a test changes it.
const FUNCTION: &str = "  EchoFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: echo}}
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
";

#[test]
fn the_telemetry_templates_api_events_resolve_into_its_rest_api_with_its_stage() {
    let stack = resolve_file("examples/telemetry/template.yaml", &["StageName=staging"]).unwrap();

    assert_eq!(stack.rest_apis.len(), 1);
    let api = &stack.rest_apis[0];
    assert_eq!(
        (api.logical_id.as_str(), api.stage_name.as_str()),
        ("RestApi", "staging")
    );
    let routes: Vec<(&str, &str, &str)> = api
        .routes
        .iter()
        .map(|route| {
            (
                route.method.as_str(),
                route.path.as_str(),
                route.function.as_str(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("GET", "/devices", "HistoryFunction"),
            ("OPTIONS", "/devices", "HistoryFunction"),
            ("GET", "/history", "HistoryFunction"),
            ("OPTIONS", "/history", "HistoryFunction"),
        ]
    );
    let (route, captures) = api.route("get", "/history").unwrap();
    assert_eq!((route.method.as_str(), captures.len()), ("GET", 0));
    assert!(api.route("POST", "/history").is_none());
    assert!(stack.functions["HistoryFunction"]
        .reached_by
        .contains(&"RestApi GET /history".to_owned()));
}

#[test]
fn the_telemetry_templates_history_api_option_serves_the_history_on_a_rest_api_or_an_http_api_of_payload_2_0(
) {
    let routes = |stack: &Stack| -> Vec<(String, String, String, HttpEventFormat)> {
        stack.rest_apis[0]
            .routes
            .iter()
            .map(|route| {
                (
                    route.method.clone(),
                    route.path.clone(),
                    route.function.clone(),
                    route.payload_format,
                )
            })
            .collect()
    };
    let expected = |function: &str, format: HttpEventFormat| {
        [
            ("GET", "/devices"),
            ("OPTIONS", "/devices"),
            ("GET", "/history"),
            ("OPTIONS", "/history"),
        ]
        .map(|(method, path)| {
            (
                method.to_owned(),
                path.to_owned(),
                function.to_owned(),
                format,
            )
        })
        .to_vec()
    };

    // REST, the default: today's REST API of proxy events (payload 1.0).
    for overrides in [
        &["StageName=staging"][..],
        &["StageName=staging", "HistoryApi=REST"],
    ] {
        let rest = resolve_file("examples/telemetry/template.yaml", overrides).unwrap();
        assert_eq!(rest.rest_apis.len(), 1, "{overrides:?}");
        let api = &rest.rest_apis[0];
        assert_eq!(
            (api.logical_id.as_str(), api.kind, api.stage_name.as_str()),
            ("RestApi", ApiKind::Rest, "staging")
        );
        assert_eq!(
            routes(&rest),
            expected("HistoryFunction", HttpEventFormat::RestApi)
        );
        assert!(!rest.functions.contains_key("HttpHistoryFunction"));
    }

    // HTTP: an HTTP API at the same stage, its routes sending payload 2.0 events to the
    // same binary with the same settings; no REST API, no REST function.
    let http = resolve_file(
        "examples/telemetry/template.yaml",
        &["StageName=staging", "HistoryApi=HTTP"],
    )
    .unwrap();
    assert_eq!(http.rest_apis.len(), 1);
    let api = &http.rest_apis[0];
    assert_eq!(
        (api.logical_id.as_str(), api.kind, api.stage_name.as_str()),
        ("HttpApi", ApiKind::Http, "staging")
    );
    assert_eq!(
        routes(&http),
        expected("HttpHistoryFunction", HttpEventFormat::PayloadV2)
    );
    assert!(!http.functions.contains_key("HistoryFunction"));
    let served = &http.functions["HttpHistoryFunction"];
    let websocket = &http.functions["Function"];
    assert_eq!(
        (
            &served.build,
            &served.environment,
            served.memory_size_mb,
            served.timeout
        ),
        (
            &websocket.build,
            &websocket.environment,
            websocket.memory_size_mb,
            websocket.timeout
        ),
        "the history function is the WebSocket function's binary and settings"
    );

    let error = error_of(
        &std::fs::read_to_string(workspace().join("examples/telemetry/template.yaml")).unwrap(),
        &["HistoryApi=GRPC"],
    );
    assert!(error.contains("HistoryApi"), "{error}");
}

#[test]
fn http_api_events_without_an_api_id_go_to_sams_implicit_http_api_at_its_default_stage() {
    let stack = resolve(
        &with_items_events(
            "        Item: {Type: HttpApi, Properties: {Path: '/items/{id}', Method: get}}
        Legacy: {Type: HttpApi, Properties: {Path: /legacy, Method: POST, PayloadFormatVersion: '1.0'}}
",
        ),
        &[],
    )
    .unwrap();

    let api = &stack.rest_apis[0];
    assert_eq!(
        (api.logical_id.as_str(), api.kind, api.stage_name.as_str()),
        ("ServerlessHttpApi", ApiKind::Http, "$default")
    );
    let (route, captures) = api.route("GET", "/items/42").unwrap();
    assert_eq!(
        (route.payload_format, captures["id"].as_str()),
        (HttpEventFormat::PayloadV2, "42")
    );
    let (legacy, _) = api.route("POST", "/legacy").unwrap();
    assert_eq!(legacy.payload_format, HttpEventFormat::RestApi);

    let error = error_of(
        &with_items_events(
            "        Item: {Type: HttpApi, Properties: {Path: /items, Method: GET, PayloadFormatVersion: '3.0'}}\n",
        ),
        &[],
    );
    assert!(
        error.contains("Items, property Events.Item.Properties.PayloadFormatVersion: \"3.0\" is not \"1.0\" or \"2.0\""),
        "{error}"
    );
    let error = error_of(
        &with_items_events(
            "        Item: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /items, Method: GET}}\n",
        ),
        &[],
    );
    assert!(
        error.contains("refers to Api, which is not an AWS::Serverless::HttpApi of the template"),
        "{error}"
    );
}

/// The [`API`] and its function, and a function `Items` with `events` (its `Events:`
/// entries, indented).
fn with_items_events(events: &str) -> String {
    format!(
        "{API}\n{FUNCTION}  Items:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Runtime: provided.al2023
      Handler: bootstrap
      Events:
{events}"
    )
}

#[test]
fn api_events_without_a_rest_api_id_go_to_sams_implicit_api_and_any_matches_every_method() {
    let stack = resolve(
        &with_items_events(
            "        Item: {Type: Api, Properties: {Path: '/items/{id}', Method: any}}
        Poll: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
",
        ),
        &[],
    )
    .unwrap();

    let api = &stack.rest_apis[0];
    assert_eq!(
        (api.logical_id.as_str(), api.stage_name.as_str()),
        ("ServerlessRestApi", "Prod")
    );
    assert_eq!(api.routes.len(), 1, "only the Api event is a route");
    let (route, captures) = api.route("DELETE", "/items/42").unwrap();
    assert_eq!(
        (route.method.as_str(), captures["id"].as_str()),
        ("ANY", "42")
    );
    assert!(api.has_path("/items/7") && !api.has_path("/items"));
}

#[test]
fn an_api_event_without_a_path_names_the_function_and_the_property() {
    let error = error_of(
        &with_items_events("        Item: {Type: Api, Properties: {Method: GET}}\n"),
        &[],
    );
    assert!(
        error.contains("Items, property Events.Item.Properties.Path: is missing"),
        "{error}"
    );
}
