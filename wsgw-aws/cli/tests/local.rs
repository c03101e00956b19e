//! `wsgw local` serving a template's WebSocket API through the LocalGateway, with real
//! WebSocket clients over loopback: every event goes to a function process in Lambda
//! mode (the `plain-echo` fixture: lambda_runtime + aws-sdk-apigatewaymanagement, no
//! wsgw crates) as API Gateway sends it.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use serde_json::{json, Value};
use support::{connect, next_text, refused_status, send, Client, FRAME_WAIT};
use wsgw::{LocalArgs, LocalRun, Serving};
use wsgw_core::metrics::Counter;

fn test_template() -> PathBuf {
    support::workspace().join("wsgw-aws/cli/tests/plain-echo/template.yaml")
}

/// Whose turn it is with the `plain-echo` fixture. Every test here serves it, and
/// serving builds it (`cargo build`, a no-op while its sources are unchanged) and runs
/// `target/debug/plain-echo`. The watch test changes the fixture's source time and
/// rebuilds it: run beside another test, cargo would replace the executable under that
/// test's instances, or that test's own build would rebuild it first. So every test
/// serves through [`serve_with`], which holds this lock shared until the test shuts the
/// stage down, and the watch test holds it alone ([`serve_alone`]): its rebuild never
/// overlaps another test's build or instances. (The other test binaries that run the
/// fixture run after this one: `cargo test` runs test binaries one at a time.)
static FIXTURE_TURN: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A served stage and the test's turn with the fixture, held until [`Served::shutdown`].
struct Served<Turn> {
    serving: Serving,
    _turn: Turn,
}

impl<Turn> std::ops::Deref for Served<Turn> {
    type Target = Serving;
    fn deref(&self) -> &Serving {
        &self.serving
    }
}

impl<Turn> std::ops::DerefMut for Served<Turn> {
    fn deref_mut(&mut self) -> &mut Serving {
        &mut self.serving
    }
}

impl<Turn> Served<Turn> {
    async fn shutdown(self) {
        self.serving.shutdown().await;
    }
}

type SharedTurn = tokio::sync::RwLockReadGuard<'static, ()>;

/// `wsgw local --template TEMPLATE --listen 127.0.0.1:0 [--parameter-overrides …]`, as
/// the command runs it, through its library entry point.
async fn serve(overrides: &[&str]) -> Served<SharedTurn> {
    serve_template(test_template(), overrides).await
}

async fn serve_template(template: PathBuf, overrides: &[&str]) -> Served<SharedTurn> {
    serve_with(LocalArgs::new(template), overrides).await
}

async fn serve_with(args: LocalArgs, overrides: &[&str]) -> Served<SharedTurn> {
    let turn = FIXTURE_TURN.read().await;
    serve_holding(turn, args, overrides).await
}

/// [`serve`] with the fixture to this test alone (see [`FIXTURE_TURN`]).
async fn serve_alone(overrides: &[&str]) -> Served<tokio::sync::RwLockWriteGuard<'static, ()>> {
    let turn = FIXTURE_TURN.write().await;
    serve_holding(turn, LocalArgs::new(test_template()), overrides).await
}

async fn serve_holding<Turn>(turn: Turn, mut args: LocalArgs, overrides: &[&str]) -> Served<Turn> {
    args.listen = "127.0.0.1:0".parse().unwrap();
    args.parameter_overrides = overrides.iter().map(|item| (*item).to_owned()).collect();
    let run = LocalRun::prepare(&args)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    Served {
        serving: run.serve().unwrap_or_else(|error| panic!("{error}")),
        _turn: turn,
    }
}

/// The two frames a two-way `echo` gives: the post through `@connections` (the body
/// itself) and the route response (the function's answer body), in either order. The
/// answer is returned.
async fn echo_round(client: &mut Client, body: Value) -> Value {
    send(client, body.clone()).await;
    let frames = [next_text(client).await, next_text(client).await];
    let posted = body.to_string();
    assert!(
        frames.contains(&posted),
        "the post through @connections: {frames:?}"
    );
    let answer = frames
        .iter()
        .find(|frame| **frame != posted)
        .unwrap_or_else(|| panic!("the route response: {frames:?}"));
    let answer: Value = serde_json::from_str(answer).expect("the function's JSON answer");
    assert_eq!(answer["echo"], posted, "{answer}");
    answer
}

fn internal_server_error(frame: &str) -> bool {
    serde_json::from_str::<Value>(frame)
        .is_ok_and(|frame| frame["message"] == "Internal server error")
}

#[tokio::test]
async fn a_two_way_route_answers_with_the_functions_body_and_a_one_way_route_does_not() {
    let serving = serve(&[]).await;
    let url = serving.stage_url();
    assert!(url.ends_with("/test"), "the template's stage: {url}");
    let mut client = connect(&url).await;

    let answer = echo_round(&mut client, json!({"action": "echo", "n": 1})).await;
    assert!(answer["pid"].as_u64().is_some(), "{answer}");
    assert_eq!(answer["authorizer"], Value::Null, "no authorizer: {answer}");

    // $default has no route response: only the function's own post arrives.
    let one_way = json!({"action": "nothing-by-that-name", "n": 2});
    send(&mut client, one_way.clone()).await;
    assert_eq!(next_text(&mut client).await, one_way.to_string());
    let more = tokio::time::timeout(Duration::from_millis(500), client.next()).await;
    assert!(more.is_err(), "nothing else arrives: {more:?}");

    drop(client);
    serving.shutdown().await;
}

#[tokio::test]
async fn without_a_default_route_an_unmatched_message_gets_the_forbidden_frame() {
    // Only `echo`: no $connect (every client is let in), no $default.
    let dir = support::scratch_dir("local-no-default");
    let crate_dir = support::workspace().join("wsgw-aws/cli/tests/plain-echo");
    let template = dir.join("template.yaml");
    std::fs::write(
        &template,
        format!(
            "Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {{ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.kind}}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{PlainEcho.Arn}}/invocations
  EchoRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {{ApiId: !Ref Api, RouteKey: echo, RouteResponseSelectionExpression: $default, Target: !Sub 'integrations/${{Integration}}'}}
  EchoRouteResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: {{ApiId: !Ref Api, RouteId: !Ref EchoRoute, RouteResponseKey: $default}}
  PlainEcho:
    Type: AWS::Serverless::Function
    Metadata: {{BuildMethod: rust-cargolambda, BuildProperties: {{Binary: plain-echo}}}}
    Properties: {{CodeUri: {}, Runtime: provided.al2023, Handler: bootstrap}}
",
            crate_dir.display()
        ),
    )
    .unwrap();
    let serving = serve_template(template, &[]).await;
    let url = serving.stage_url();
    assert!(
        url.ends_with("/local"),
        "no Stage resource: the stage is local: {url}"
    );
    let mut client = connect(&url).await;

    // The selection expression is the template's ($request.body.kind), not `action`.
    send(&mut client, json!({"action": "echo"})).await;
    let frame: Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(frame["message"], "Forbidden", "{frame}");
    assert!(frame["requestId"].as_str().is_some(), "{frame}");
    assert_eq!(serving.run.pool.invocations("PlainEcho"), 0);

    let answer = echo_round(&mut client, json!({"kind": "echo"})).await;
    assert!(
        answer["pid"].as_u64().is_some(),
        "the connection stays open: {answer}"
    );

    drop(client);
    serving.shutdown().await;
}

#[tokio::test]
async fn the_connect_authorizer_allows_denies_and_refuses_401_without_an_identity_source() {
    let serving = serve(&["AuthOn=true"]).await;
    let url = serving.stage_url();

    let pool = serving.run.pool.clone();
    assert_eq!(refused_status(&url).await, 401, "no ?token=");
    assert_eq!(
        refused_status(&format!("{url}?token=")).await,
        401,
        "an empty token"
    );
    assert_eq!(
        pool.invocations("AuthorizerFunction"),
        0,
        "a missing identity source is refused without invoking the authorizer"
    );
    assert_eq!(
        refused_status(&format!("{url}?token=deny")).await,
        403,
        "a policy that denies"
    );
    assert_eq!(
        refused_status(&format!("{url}?token=stranger")).await,
        401,
        "the authorizer's Unauthorized"
    );

    assert_eq!(pool.invocations("AuthorizerFunction"), 2);
    assert_eq!(
        pool.invocations("PlainEcho"),
        0,
        "a refused client's $connect never runs"
    );

    let mut client = connect(&format!("{url}?token=allow-ada")).await;
    let answer = echo_round(&mut client, json!({"action": "echo"})).await;
    assert_eq!(answer["authorizer"]["user"], "ada", "{answer}");
    // GET /metrics counts every refusal, with or without the authorizer's call.
    let metrics = serving.gateway.metrics();
    assert_eq!(metrics.get(Counter::Connects, "$connect"), 5);
    assert_eq!(metrics.get(Counter::ConnectsRefused, "$connect"), 4);
    assert_eq!(metrics.total(Counter::HandlerErrors), 0);
    assert_eq!(
        answer["authorizer"]["principalId"], "plain-echo",
        "{answer}"
    );

    drop(client);
    serving.shutdown().await;
}

#[tokio::test]
async fn a_function_killed_mid_run_gives_internal_server_error_and_is_replaced() {
    let serving = serve(&[]).await;
    let mut client = connect(&serving.stage_url()).await;
    let before = echo_round(&mut client, json!({"action": "echo"})).await["pid"]
        .as_u64()
        .unwrap();

    send(&mut client, json!({"action": "echo", "sleep_ms": 5_000})).await;
    // The invocation has its instance (the only one: every earlier event was answered).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids = serving.run.pool.process_ids("PlainEcho");
    assert_eq!(pids, vec![u32::try_from(before).unwrap()]);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &before.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let frame = next_text(&mut client).await;
    assert!(internal_server_error(&frame), "{frame}");

    let after = echo_round(&mut client, json!({"action": "echo"})).await["pid"]
        .as_u64()
        .unwrap();
    assert_ne!(before, after, "a new instance answers");
    assert_eq!(serving.run.pool.instances_started("PlainEcho"), 2);

    drop(client);
    serving.shutdown().await;
}

#[tokio::test]
async fn a_function_past_its_timeout_gives_internal_server_error_and_the_next_call_works() {
    let serving = serve(&[]).await;
    let mut client = connect(&serving.stage_url()).await;

    // ShortEcho's Timeout is 1 s.
    send(&mut client, json!({"action": "short", "sleep_ms": 5_000})).await;
    let frame = next_text(&mut client).await;
    assert!(internal_server_error(&frame), "{frame}");

    let answer = echo_round(&mut client, json!({"action": "short"})).await;
    assert!(answer["pid"].as_u64().is_some(), "{answer}");
    assert_eq!(serving.run.pool.instances_started("ShortEcho"), 2);

    drop(client);
    serving.shutdown().await;
}

/// Stopping the stage while a function is still running: its late `@connections` post
/// is refused at once (the port no longer accepts), so the function ends, `$disconnect`
/// runs and the stop completes. Before, a second handle on the listening socket kept the
/// port accepting into a backlog nobody served, and the post waited, unanswered, for the
/// function's timeout (seen as the page tests' `wsgw local` taking 29 s to stop).
#[tokio::test]
async fn stopping_while_a_function_runs_refuses_its_late_post_instead_of_waiting_for_its_timeout() {
    let serving = serve(&[]).await;
    let address = serving.run.local_addr;
    let mut client = connect(&serving.stage_url()).await;
    let answer = echo_round(&mut client, json!({"action": "echo"})).await;
    assert!(answer["pid"].as_u64().is_some(), "{answer}");

    // PlainEcho's Timeout is 10 s; it posts after sleeping 2 s, by then the stop is under way.
    send(&mut client, json!({"action": "echo", "sleep_ms": 2_000})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = tokio::time::timeout(Duration::from_secs(8), serving.shutdown()).await;
    assert!(
        stopped.is_ok(),
        "the stop waited for the function's 10 s timeout: its @connections post was left unanswered"
    );
    let refused = tokio::net::TcpStream::connect(address).await;
    assert!(
        refused.is_err(),
        "{address} still accepts connections after the stop"
    );
    drop(client);
}

#[tokio::test]
async fn parallel_messages_start_concurrent_instances() {
    const CLIENTS: usize = 4;
    let serving = serve(&[]).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(connect(&serving.stage_url()).await);
    }

    // Each call holds its instance for a second: the four run at once on four instances.
    let rounds = clients
        .iter_mut()
        .map(|client| echo_round(client, json!({"action": "echo", "sleep_ms": 1_000})));
    let answers = futures::future::join_all(rounds).await;

    let pids: BTreeSet<u64> = answers
        .iter()
        .map(|answer| answer["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), CLIENTS, "{answers:?}");
    assert_eq!(serving.run.pool.instances_started("PlainEcho"), CLIENTS);

    drop(clients);
    serving.shutdown().await;
}

#[tokio::test]
async fn a_watch_rebuild_replaces_the_instances_and_keeps_the_connections_open() {
    let mut serving = serve_alone(&[]).await;
    serving.watch(Duration::from_millis(200));
    assert!(
        serving.ready_lines().contains("watching"),
        "{}",
        serving.ready_lines()
    );
    let mut client = connect(&serving.stage_url()).await;
    let before = echo_round(&mut client, json!({"action": "echo"})).await["pid"]
        .as_u64()
        .unwrap();

    // A save without a change of content (the tracked source stays as it is, whatever
    // happens next): cargo rebuilds on the newer time as on an edit.
    let main_rs = support::workspace().join("wsgw-aws/cli/tests/plain-echo/src/main.rs");
    std::fs::File::options()
        .append(true)
        .open(&main_rs)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .unwrap();

    // Bounded: the rebuild takes a few seconds.
    let mut after = before;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = echo_round(&mut client, json!({"action": "echo"})).await["pid"]
            .as_u64()
            .unwrap();
        if after != before {
            break;
        }
    }
    assert_ne!(
        before, after,
        "after the rebuild a new instance answers, on the same connection"
    );

    drop(client);
    serving.shutdown().await;
}

#[tokio::test]
async fn the_wsgw_binary_prints_the_ready_lines_and_serves_the_echo_example() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wsgw"))
        .current_dir(support::workspace())
        .args([
            "local",
            "--template",
            "examples/echo/template.yaml",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut printed = Vec::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .expect("the ready lines within the build's time")
            .unwrap()
            .unwrap_or_else(|| panic!("wsgw local ended: {printed:#?}"));
        printed.push(line.clone());
        if let Some(url) = line.split(" at ws://").nth(1) {
            break format!("ws://{url}");
        }
    };
    let connections = lines.next_line().await.unwrap().unwrap();
    assert!(url.ends_with("/production"), "{url}");
    assert!(
        connections.contains("@connections at http://127.0.0.1:")
            && connections.ends_with("/production/@connections/{connectionId}"),
        "{connections}"
    );
    assert!(
        printed
            .iter()
            .any(|line| line.contains("$connect, $default, $disconnect, message, whoami")),
        "the function with its routes: {printed:#?}"
    );

    // echo's whoami answers through @connections with the caller's connection id.
    let mut client = connect(&url).await;
    send(&mut client, json!({"action": "whoami"})).await;
    let answer: Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(answer["type"], "whoami", "{answer}");
    assert!(
        answer["connection_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{answer}"
    );
    drop(client);

    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("wsgw local stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A plain HTTP `GET` of `path` on `addr`: the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(FRAME_WAIT, stream.read_to_string(&mut response))
        .await
        .expect("the answer within the wait")
        .unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_static_dir_is_served_beside_the_api_and_its_page_reaches_the_stage_at_the_root() {
    let dir = support::scratch_dir("local-static");
    std::fs::create_dir_all(dir.join("js")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>the page</h1>").unwrap();
    std::fs::write(dir.join("js/app.js"), "connect(location.host)").unwrap();
    let mut args = LocalArgs::new(test_template());
    args.static_dir = Some(dir);
    let serving = serve_with(args, &[]).await;
    let addr = serving.gateway.local_addr();
    assert!(
        serving
            .ready_lines()
            .contains(&format!("the page of --static-dir at http://{addr}/")),
        "{}",
        serving.ready_lines()
    );

    assert_eq!(
        http_get(addr, "/").await,
        ("HTTP/1.1 200 OK".to_owned(), "<h1>the page</h1>".to_owned())
    );
    assert_eq!(
        http_get(addr, "/js/app.js").await.1,
        "connect(location.host)"
    );
    assert!(http_get(addr, "/missing.js").await.0.contains("404"));

    // What a page loaded from http://ADDR/ opens: ws://ADDR/, the stage.
    let mut client = connect(&format!("ws://{addr}/")).await;
    let answer = echo_round(&mut client, json!({"action": "echo"})).await;
    assert!(answer["pid"].as_u64().is_some(), "{answer}");

    drop(client);
    serving.shutdown().await;
}

#[tokio::test]
async fn metrics_count_the_routes_the_functions_ran_and_their_failures() {
    let serving = serve(&[]).await;
    let addr = serving.gateway.local_addr();
    let mut client = connect(&serving.stage_url()).await;
    echo_round(&mut client, json!({"action": "echo"})).await;
    let one_way = json!({"action": "nothing-by-that-name"});
    send(&mut client, one_way.clone()).await;
    assert_eq!(next_text(&mut client).await, one_way.to_string());
    // ShortEcho's Timeout is 1 s: a failed invocation.
    send(&mut client, json!({"action": "short", "sleep_ms": 5_000})).await;
    let frame = next_text(&mut client).await;
    assert!(internal_server_error(&frame), "{frame}");
    drop(client);

    // $disconnect runs after the socket closed: bounded wait for its count.
    let mut metrics = String::new();
    for _ in 0..100 {
        let (status, body) = http_get(addr, "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        metrics = body;
        if metrics.contains("wsgw_disconnects_total{route=\"$disconnect\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in [
        "wsgw_connects_total{route=\"$connect\"} 1",
        "wsgw_messages_total{route=\"echo\"} 1",
        "wsgw_messages_total{route=\"$default\"} 1",
        "wsgw_messages_total{route=\"short\"} 1",
        "wsgw_handler_errors_total{route=\"short\"} 1",
        "wsgw_disconnects_total{route=\"$disconnect\"} 1",
        "wsgw_handler_latency_seconds_count{route=\"echo\"} 1",
    ] {
        assert!(
            metrics.lines().any(|shown| shown == line),
            "{line} in:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("wsgw_connects_refused_total{"),
        "nobody was refused:\n{metrics}"
    );
    assert!(
        !metrics.contains("wsgw_handler_errors_total{route=\"echo\"}"),
        "{metrics}"
    );

    serving.shutdown().await;
}

/// `method` `path` on `addr` with reqwest: the status, the response's headers and its
/// body as JSON.
async fn rest(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .header("x-test", "t")
        .timeout(FRAME_WAIT);
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body: {text:?}"));
    (status, headers, body)
}

#[tokio::test]
async fn the_functions_http_api_events_are_served_as_an_http_api_with_payload_2_0_events() {
    let serving = serve(&[]).await;
    let addr = serving.gateway.local_addr();
    let ready = serving.ready_lines();
    for line in [
        format!("serving HTTP API HttpApi at http://{addr} ("),
        "GET /orders/{id} -> PlainEcho".to_owned(),
        "POST /legacy -> PlainEcho".to_owned(),
    ] {
        assert!(ready.contains(&line), "{line} in {ready}");
    }

    // The $default stage: the routes at the root. The event is HTTP API's payload 2.0.
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/orders/42?tag=a&tag=b&limit=3"))
        .header("x-test", "t")
        .header("accept", "text/plain")
        .header("accept", "application/json")
        .header("cookie", "c=1; d=2")
        .timeout(FRAME_WAIT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["x-plain-echo"], "yes");
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"], "the answer's cookies: {headers:?}");
    let event: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "GET /orders/{id}");
    assert_eq!(event["rawPath"], "/orders/42");
    assert_eq!(event["rawQueryString"], "tag=a&tag=b&limit=3");
    assert_eq!(
        event["queryStringParameters"],
        json!({"tag": "a,b", "limit": "3"})
    );
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event["cookies"], json!(["c=1", "d=2"]));
    assert_eq!(event["headers"]["x-test"], "t");
    assert_eq!(event["headers"]["accept"], "text/plain,application/json");
    assert!(event["headers"].get("cookie").is_none(), "{event}");
    assert!(event.get("httpMethod").is_none(), "{event}");
    assert!(event.get("body").is_none(), "{event}");
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["routeKey"], "GET /orders/{id}");
    assert_eq!(context["stage"], "$default");
    assert_eq!(context["http"]["method"], "GET");
    assert_eq!(context["http"]["path"], "/orders/42");
    assert!(context["timeEpoch"].is_i64(), "{context}");
    assert!(
        context["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{context}"
    );

    // A route of PayloadFormatVersion 1.0: the REST-shaped event.
    let (status, _, event) = rest(addr, "POST", "/legacy", Some("hello")).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(
        (&event["httpMethod"], &event["body"]),
        (&json!("POST"), &json!("hello"))
    );

    // No route for the method: the HTTP API's 404; a failing function: its 500.
    let (status, _, body) = rest(addr, "POST", "/orders/42", None).await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    let (status, _, body) = rest(addr, "GET", "/orders/1?fail=boom", None).await;
    assert_eq!(
        (status, body),
        (500, json!({"message": "Internal Server Error"}))
    );
    assert_eq!(rest(addr, "GET", "/orders/1", None).await.0, 200);

    serving.shutdown().await;
}

#[tokio::test]
async fn the_functions_api_events_are_served_as_a_rest_api_with_api_gateways_proxy_events() {
    let serving = serve(&[]).await;
    let addr = serving.gateway.local_addr();
    let ready = serving.ready_lines();
    for line in [
        format!("serving REST API RestApi at http://{addr}/v1"),
        format!("serving REST API ServerlessRestApi at http://{addr}/Prod"),
        "GET /items/{id} -> PlainEcho".to_owned(),
        "ANY /things -> PlainEcho".to_owned(),
    ] {
        assert!(ready.contains(&line), "{line} in {ready}");
    }

    // A deployed REST API's URL path: the stage, then the resource.
    let (status, headers, event) = rest(addr, "GET", "/v1/items/42?limit=3", None).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(headers["x-plain-echo"], "yes");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["path"], "/items/42");
    assert_eq!(event["resource"], "/items/{id}");
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event["queryStringParameters"], json!({"limit": "3"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"limit": ["3"]})
    );
    assert_eq!(event["headers"]["x-test"], "t");
    assert_eq!(event["multiValueHeaders"]["x-test"], json!(["t"]));
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["stage"], "v1");
    assert_eq!(context["resourcePath"], "/items/{id}");
    assert_eq!(context["httpMethod"], "GET");
    assert_eq!(context["path"], "/v1/items/42");
    assert!(
        context["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{context}"
    );

    // The same routes at the root, where a page served beside the API finds them.
    let (status, _, event) = rest(addr, "GET", "/items/7", None).await;
    assert_eq!((status, &event["pathParameters"]["id"]), (200, &json!("7")));

    // ANY takes every method; the body reaches the function.
    let (status, _, event) = rest(addr, "POST", "/v1/things", Some("hello")).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(
        (&event["httpMethod"], &event["body"], &event["resource"]),
        (&json!("POST"), &json!("hello"), &json!("/things"))
    );

    // SAM's implicit API (an Api event without RestApiId): stage Prod.
    let (status, _, event) = rest(addr, "GET", "/Prod/implicit", None).await;
    assert_eq!(
        (status, &event["requestContext"]["stage"]),
        (200, &json!("Prod"))
    );

    // The function's status passes through.
    assert_eq!(
        rest(addr, "GET", "/v1/items/1?status=404", None).await.0,
        404
    );

    // No route for the path, or none for the method: API Gateway REST's 403.
    let missing = json!({"message": "Missing Authentication Token"});
    for (method, path) in [
        ("GET", "/v1/nothing"),
        ("POST", "/v1/items/42"),
        ("GET", "/v1"),
    ] {
        let (status, _, body) = rest(addr, method, path, None).await;
        assert_eq!((status, body), (403, missing.clone()), "{method} {path}");
    }

    // A failing function: 502, and the next request is served.
    let (status, _, body) = rest(addr, "GET", "/v1/items/1?fail=boom", None).await;
    assert_eq!(
        (status, body),
        (502, json!({"message": "Internal server error"}))
    );
    assert_eq!(rest(addr, "GET", "/v1/items/1", None).await.0, 200);

    serving.shutdown().await;
}
