//! The `wsgw local` command as a user runs it: ready functions listed with their routes,
//! and every bad input answered with one clear line (a failed build adds cargo's output).

mod support;

use std::path::Path;
use std::process::{Command, Output};

fn wsgw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsgw"))
        .args(args)
        .current_dir(support::workspace())
        .env_remove("WSGW_LISTEN")
        .env("RUST_LOG", "info")
        .output()
        .expect("wsgw runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The error line: the last line of standard error.
fn error_line(output: &Output) -> String {
    text(&output.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// `local --template TEMPLATE --listen 127.0.0.1:0 EXTRA…`.
fn local_args(template: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["local", "--template"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    args.push(template.to_string_lossy().into_owned());
    args.extend(["--listen", "127.0.0.1:0"].map(str::to_owned));
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args
}

/// `wsgw local` on a template that stops by itself (a bad input).
fn local(template: &Path, extra: &[&str]) -> Output {
    let args = local_args(template, extra);
    wsgw(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `wsgw local` until it is ready, then stopped (see [`support::wsgw_until_ready`]).
fn local_until_ready(
    template: &Path,
    extra: &[&str],
) -> (std::process::ExitStatus, String, String) {
    let args = local_args(template, extra);
    support::wsgw_until_ready(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

fn write_template(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("template.yaml");
    std::fs::write(&path, text).expect("the template is written");
    path
}

const API: &str = "Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Function.Arn}/invocations
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $default, Target: !Sub 'integrations/${Integration}'}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: local}
";

#[test]
fn the_echo_template_builds_and_starts_its_function_and_lists_it_with_its_routes() {
    let (status, stdout, stderr) = local_until_ready(Path::new("examples/echo/template.yaml"), &[]);

    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("wsgw local: examples/echo/template.yaml (stack echo, region us-east-1)"),
        "{stdout}"
    );
    assert!(stdout.contains("    EchoFunction: "), "{stdout}");
    assert!(stdout.contains("(128 MB, 29 s)"), "{stdout}");
    assert!(
        stdout.contains("      $connect, $default, $disconnect, message, whoami"),
        "{stdout}"
    );
    assert!(
        stdout.contains("WebSocket API Api") && stdout.contains("stage production"),
        "{stdout}"
    );
    assert!(
        stdout.contains("wsgw local: serving WebSocket API Api (")
            && stdout.contains(") at ws://127.0.0.1:")
            && stdout.contains("/production\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/production/@connections/{connectionId}"),
        "{stdout}"
    );
    assert!(
        stderr.contains("cold start"),
        "the first instance's start is logged: {stderr}"
    );
    assert!(stderr.contains("wsgw local: stopping"), "{stderr}");
}

#[test]
fn a_port_in_use_is_one_line_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    let output = wsgw(&[
        "local",
        "--template",
        "examples/echo/template.yaml",
        "--listen",
        &addr,
    ]);

    assert_eq!(output.status.code(), Some(2));
    let line = error_line(&output);
    assert!(
        line.starts_with(&format!(
            "wsgw local: cannot listen on {addr}: the address is in use"
        )),
        "{line}"
    );
    assert_eq!(
        text(&output.stderr)
            .lines()
            .filter(|line| line.starts_with("wsgw local:"))
            .count(),
        1
    );
}

#[test]
fn a_template_without_a_websocket_api_is_one_line() {
    let dir = support::scratch_dir("cli-no-api");
    let template = write_template(&dir, "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n");

    let output = local(&template, &[]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        error_line(&output).ends_with(
            "declares no WebSocket API (an AWS::ApiGatewayV2::Api with ProtocolType: WEBSOCKET)"
        ),
        "{}",
        error_line(&output)
    );
}

#[test]
fn an_unsupported_intrinsic_and_an_unresolvable_target_are_one_line_each() {
    let dir = support::scratch_dir("cli-bad-values");
    let function = "  Function:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ., Runtime: provided.al2023, Handler: bootstrap, Environment: {Variables: {X: !ImportValue shared}}}
";
    let template = write_template(&dir, &format!("{API}{function}"));
    let output = local(&template, &[]);
    assert_eq!(output.status.code(), Some(2));
    let line = error_line(&output);
    assert!(
        line.contains(
            "Function, property Environment.Variables.X: !ImportValue is not supported locally"
        ),
        "{line}"
    );

    let template = write_template(
        &dir,
        &format!("{API}{function}")
            .replace("'integrations/${Integration}'", "integrations/missing"),
    );
    let line = error_line(&local(&template, &[]));
    assert!(
        line.contains("DefaultRoute, property Target: `integrations/missing`"),
        "{line}"
    );
}

#[test]
fn an_api_event_whose_rest_api_cannot_be_resolved_is_one_line() {
    let dir = support::scratch_dir("cli-rest-api");
    let function = |rest_api_id: &str| {
        format!(
            "  Function:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Runtime: provided.al2023
      Handler: bootstrap
      Events:
        History:
          Type: Api
          Properties: {{RestApiId: {rest_api_id}, Path: /history, Method: GET}}
"
        )
    };
    let template = write_template(&dir, &format!("{API}{}", function("!Ref Missing")));
    let output = local(&template, &[]);
    assert_eq!(output.status.code(), Some(2));
    let line = error_line(&output);
    assert!(
        line.contains("Function, property Events.History.Properties.RestApiId: refers to Missing, which is not an AWS::Serverless::Api of the template"),
        "{line}"
    );

    let template = write_template(&dir, &format!("{API}{}", function("abc123")));
    let line = error_line(&local(&template, &[]));
    assert!(
        line.contains("Function, property Events.History.Properties.RestApiId: is abc123, not a !Ref to an AWS::Serverless::Api"),
        "{line}"
    );
}

#[test]
fn a_route_selection_expression_that_is_not_on_the_body_is_one_line() {
    let dir = support::scratch_dir("cli-selection");
    let function = "  Function:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Runtime: python3.12, Handler: app.handler}
";
    let api = API.replace("$request.body.action", "$request.header.kind");
    let template = write_template(&dir, &format!("{api}{function}"));

    let output = local(&template, &[]);

    assert_eq!(output.status.code(), Some(2));
    let line = error_line(&output);
    assert!(
        line.starts_with(&format!(
            "wsgw local: {}: Api, property RouteSelectionExpression: ",
            template.display()
        )) && line.contains("$request.header.kind"),
        "{line}"
    );
}

#[test]
fn a_static_dir_that_cannot_be_read_is_one_line() {
    let missing = support::scratch_dir("cli-static").join("no-such-dir");

    let output = local(
        Path::new("examples/echo/template.yaml"),
        &["--static-dir", &missing.to_string_lossy()],
    );

    assert_eq!(output.status.code(), Some(2));
    let line = error_line(&output);
    assert!(
        line.starts_with(&format!(
            "wsgw local: --static-dir {}: cannot read ",
            missing.display()
        )),
        "{line}"
    );
}

#[test]
fn a_parameter_override_that_is_not_key_value_is_one_line() {
    let output = wsgw(&[
        "local",
        "--template",
        "examples/chat/template.yaml",
        "--listen",
        "127.0.0.1:0",
        "--parameter-overrides",
        "JwtSecret",
    ]);

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        error_line(&output),
        "wsgw local: --parameter-overrides: `JwtSecret` is not KEY=VALUE"
    );
}

#[test]
fn a_function_whose_runtime_is_not_provided_is_not_run_and_its_routes_are_named() {
    let dir = support::scratch_dir("cli-python");
    let function = "  Function:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Runtime: python3.12, Handler: app.handler}
";
    let template = write_template(&dir, &format!("{API}{function}"));

    let (status, stdout, stderr) = local_until_ready(&template, &[]);

    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("function Function is not run locally: Runtime is python3.12, not provided.* (only custom-runtime binaries run locally); unavailable: $default"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Function: not run: Runtime is python3.12"),
        "{stdout}"
    );
}

#[test]
fn a_failing_build_names_the_function_and_shows_cargos_output() {
    let dir = support::scratch_dir("cli-broken");
    support::broken_crate(&dir);
    let function = "  Function:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: broken}}
    Properties: {CodeUri: broken, Runtime: provided.al2023, Handler: bootstrap}
";
    let template = write_template(&dir, &format!("{API}{function}"));

    let output = local(&template, &[]);

    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "wsgw local: building function Function failed (cargo build --bin broken in "
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("error[E0308]: mismatched types"),
        "{stderr}"
    );
}
