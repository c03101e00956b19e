//! DynamoDB for `wsgw local` against moto's server: the chat's and the telemetry's
//! tables created from their templates (key schema, index, TTL) and reused, a table of
//! another shape refused, and moto installed into the cache, started and stopped by the
//! command itself when no endpoint is given.
//!
//! Needs `WSGW_DYNAMODB_ENDPOINT` (`cargo xtask test` starts moto's server) and PyPI for
//! the first install into the cache (`target/wsgw-cache`).
#![cfg(feature = "integration")]

mod support;

use std::path::PathBuf;
use std::process::Command;

use aws_sdk_dynamodb::types::{KeyType, ProjectionType, TimeToLiveStatus};
use wsgw::dynamodb::{create_tables, MotoServer, CACHE_DIR_ENV};
use wsgw_aws::dynamo::local::{endpoint_from_env, unique_name};
use wsgw_aws::dynamo::{ensure_table, local_client, KeySpec, TableOutcome, TableSpec};
use wsgw_aws::template::{Stack, StackSettings, Template};

fn endpoint() -> String {
    endpoint_from_env().unwrap_or_else(|missing| panic!("{missing}"))
}

fn stack(template: &str, stack_name: &str) -> Stack {
    Template::from_path(support::workspace().join(template))
        .unwrap()
        .resolve(StackSettings::new(stack_name))
        .unwrap()
}

/// Held by the tests that install moto, so the first install is not made twice at once.
static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the tests install moto: the workspace's target directory, kept between runs.
fn cache() -> PathBuf {
    std::env::var_os(CACHE_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| support::workspace().join("target/wsgw-cache"))
}

async fn assert_wsgw_table(endpoint: &str, name: &str, group_index: bool) {
    let client = local_client(endpoint, None).await;
    let table = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(&str, &KeyType)> = table
        .key_schema()
        .iter()
        .map(|key| (key.attribute_name(), key.key_type()))
        .collect();
    assert_eq!(
        keys,
        [("pk", &KeyType::Hash), ("sk", &KeyType::Range)],
        "{name}"
    );
    let indexes = table.global_secondary_indexes();
    if group_index {
        assert_eq!(indexes.len(), 1, "{name}");
        assert_eq!(indexes[0].index_name(), Some("by-group"));
        let keys: Vec<&str> = indexes[0]
            .key_schema()
            .iter()
            .map(|key| key.attribute_name())
            .collect();
        assert_eq!(keys, ["gpk", "gsk"]);
        assert_eq!(
            indexes[0].projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::KeysOnly)
        );
    } else {
        assert!(indexes.is_empty(), "{name}");
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"), "{name}");
    assert_eq!(
        ttl.time_to_live_status(),
        Some(&TimeToLiveStatus::Enabled),
        "{name}"
    );
}

#[tokio::test]
async fn the_chat_and_telemetry_tables_are_created_as_their_templates_declare_and_then_reused() {
    let endpoint = endpoint();
    for template in [
        "examples/chat/template.yaml",
        "examples/telemetry/template.yaml",
    ] {
        let stack = stack(template, &unique_name("stack"));

        let created = create_tables(&stack, &endpoint)
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        assert_eq!(created.len(), 2, "{template}");
        assert!(
            created
                .iter()
                .all(|table| table.outcome == TableOutcome::Created),
            "{created:?}"
        );
        let name = |logical: &str| {
            created
                .iter()
                .find(|t| t.logical_id == logical)
                .unwrap()
                .name
                .clone()
        };
        assert_wsgw_table(&endpoint, &name("ConnectionsTable"), true).await;
        assert_wsgw_table(&endpoint, &name("HistoryTable"), false).await;
        let again = create_tables(&stack, &endpoint).await.unwrap();
        assert!(
            again
                .iter()
                .all(|table| table.outcome == TableOutcome::Reused),
            "{again:?}"
        );
    }
}

#[tokio::test]
async fn a_table_that_exists_with_another_key_is_refused_naming_it() {
    let endpoint = endpoint();
    let stack = stack("examples/chat/template.yaml", &unique_name("clash"));
    let history = &stack
        .tables
        .iter()
        .find(|t| t.logical_id == "HistoryTable")
        .unwrap()
        .spec;
    let client = local_client(&endpoint, None).await;
    ensure_table(
        &client,
        &TableSpec::new(history.name.clone(), KeySpec::new("id", None)),
    )
    .await
    .unwrap();

    let error = create_tables(&stack, &endpoint)
        .await
        .unwrap_err()
        .to_string();

    assert!(error.starts_with("table HistoryTable at http"), "{error}");
    assert!(
        error.contains(&format!(
            "table {} exists with key id but the template declares pk + sk",
            history.name
        )),
        "{error}"
    );
}

#[tokio::test]
async fn moto_is_installed_into_the_cache_and_served_on_loopback_until_stopped() {
    let server = MotoServer::start(&cache())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let endpoint = server.endpoint().to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let client = local_client(&endpoint, None).await;
    ensure_table(&client, &TableSpec::wsgw_table("probe", true))
        .await
        .unwrap();
    assert_eq!(
        client.list_tables().send().await.unwrap().table_names(),
        ["probe"]
    );
    server.stop().await;

    let addr = endpoint.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "moto's server is stopped"
    );
}

#[test]
fn wsgw_local_without_an_endpoint_starts_moto_creates_the_tables_and_stops_it() {
    let stack_name = unique_name("local");
    let _installing = INSTALL.blocking_lock();
    let output = Command::new(env!("CARGO_BIN_EXE_wsgw"))
        .args([
            "local",
            "--template",
            "examples/chat/template.yaml",
            "--listen",
            "127.0.0.1:0",
            "--stack-name",
            &stack_name,
        ])
        .current_dir(support::workspace())
        .env(CACHE_DIR_ENV, cache())
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let announced = stderr
        .lines()
        .find_map(|line| line.strip_prefix("wsgw: moto 5.2.6's DynamoDB server started at "))
        .unwrap_or_else(|| panic!("moto is announced: {stderr}"));
    let endpoint = announced.trim_end_matches(" (stopped on exit)");
    assert!(
        stdout.contains(&format!(
            "DynamoDB at {endpoint}, moto started for this run"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ConnectionsTable = {stack_name}-ConnectionsTable (Created)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "HistoryTable = {stack_name}-HistoryTable (Created)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("$connect, $default, $disconnect, heartbeat, history, sendmessage"),
        "{stdout}"
    );
    assert!(
        stderr.contains("cold start"),
        "the chat function started in Lambda mode: {stderr}"
    );
    let addr = endpoint.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "moto's server is stopped on exit"
    );
}

#[test]
fn wsgw_local_reuses_the_tables_at_a_given_endpoint() {
    let stack_name = unique_name("given");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_wsgw"))
            .args([
                "local",
                "--template",
                "examples/telemetry/template.yaml",
                "--listen",
                "127.0.0.1:0",
            ])
            .args([
                "--stack-name",
                &stack_name,
                "--dynamodb-endpoint",
                &endpoint(),
            ])
            .args(["--parameter-overrides", "DeviceKeys=esp32-01=k1"])
            .current_dir(support::workspace())
            .output()
            .unwrap()
    };

    let first = run();
    let second = run();

    let (first, second) = (
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&second.stdout),
    );
    assert!(
        first.contains(&format!(
            "ConnectionsTable = {stack_name}-ConnectionsTable (Created)"
        )),
        "{first}"
    );
    assert!(
        second.contains(&format!(
            "ConnectionsTable = {stack_name}-ConnectionsTable (Reused)"
        )),
        "{second}"
    );
    assert!(
        second.contains("AuthorizerFunction:"),
        "keys turn the authorizer on: {second}"
    );
    assert!(
        second.contains("authorizer Authorizer (no identity source)"),
        "{second}"
    );
}

#[tokio::test]
async fn the_chat_function_runs_in_lambda_mode_on_the_tables_its_template_names() {
    use wsgw::build::Builder;
    use wsgw::pool::{FunctionPool, PoolFunction, PoolSettings};
    use wsgw_aws::lambda::{decode_proxy_response, encode_websocket_event};
    use wsgw_core::{Payload, Request};
    use wsgw_memory::gateway::ManagementRecorder;

    let endpoint = endpoint();
    let stack = stack("examples/chat/template.yaml", &unique_name("lambda"));
    create_tables(&stack, &endpoint).await.unwrap();
    let executables = Builder::default()
        .build_stack(&stack)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let recorder = ManagementRecorder::start().await.unwrap();
    let pool = FunctionPool::new(
        stack.functions.values().map(|function| {
            PoolFunction::from_stack(
                function,
                &stack,
                executables.get(&function.logical_id).cloned(),
            )
        }),
        PoolSettings::default()
            .with_dynamodb_endpoint(endpoint.clone())
            .with_management_endpoint(recorder.endpoint()),
    );
    let mut connect = Request::connect("c-1=".into()).with_endpoint("127.0.0.1", "production");
    connect
        .query
        .insert("session_id".to_owned(), "s1".to_owned());
    connect.query.insert("name".to_owned(), "Ada".to_owned());
    connect.source_ip = Some("127.0.0.1".to_owned());
    let say = Request::message(
        "c-1=".into(),
        Payload::text(r#"{"action":"sendmessage","message":"hi"}"#),
    )
    .with_route_key("sendmessage")
    .with_endpoint("127.0.0.1", "production");

    let connected = pool
        .invoke("Function", encode_websocket_event(&connect))
        .await
        .unwrap();
    let said = pool
        .invoke("Function", encode_websocket_event(&say))
        .await
        .unwrap();

    assert_eq!(decode_proxy_response(connected).unwrap().status, 200);
    assert_eq!(decode_proxy_response(said).unwrap().status, 200);
    let posted: Vec<String> = recorder
        .take_calls()
        .iter()
        .map(|call| String::from_utf8_lossy(&call.body).into_owned())
        .collect();
    assert!(
        posted.iter().any(|body| body.contains("\"hi\"")),
        "the message is broadcast: {posted:?}"
    );
    let connections = &stack
        .tables
        .iter()
        .find(|t| t.logical_id == "ConnectionsTable")
        .unwrap()
        .spec
        .name;
    let item = local_client(&endpoint, None)
        .await
        .get_item()
        .table_name(connections)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("conn#c-1=".to_owned()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("conn".to_owned()),
        )
        .send()
        .await
        .unwrap();
    assert!(
        item.item().is_some(),
        "the connection is stored in {connections}, the table !Ref ConnectionsTable names"
    );
}
