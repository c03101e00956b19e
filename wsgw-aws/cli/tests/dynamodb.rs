//! DynamoDB for `wsgw local` against moto's server: the chat's and the telemetry's
//! tables created from their templates (key schema, index, TTL) and reused, a table of
//! another shape refused, and moto installed into the cache, started and stopped by the
//! command itself when no endpoint is given.
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB` (`cargo xtask test` starts moto's server) and PyPI for
//! the first install into the cache (`target/wsgw-cache`).
#![cfg(feature = "integration")]

mod support;

use std::path::PathBuf;
use std::time::Duration;

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

/// The first use on a fresh machine, twice at once into one empty cache (two tests in one
/// process, or two `wsgw local`s): each start ends with a server of its own, neither
/// removing the other's half-made install (a shared staging directory once did, seen on a
/// fresh CI machine), and each server stops with its handle.
#[tokio::test]
async fn moto_is_installed_into_an_empty_cache_by_two_starts_at_once_and_served_on_loopback_until_stopped(
) {
    let cache = support::workspace().join(format!(
        "target/wsgw-test-empty-cache-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&cache);
    let first = tokio::spawn({
        let cache = cache.clone();
        async move { MotoServer::start(&cache).await }
    });
    // The second start begins while the first is inside pip (its staging directory holds
    // the requirements), the moment at which a shared staging directory was removed.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !pip_is_installing_into(&cache) {
        assert!(
            std::time::Instant::now() < deadline && !first.is_finished(),
            "the first start never reached pip"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = MotoServer::start(&cache).await;
    let first = first.await.unwrap();
    let servers = [first, second].map(|server| server.unwrap_or_else(|error| panic!("{error}")));
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "one virtualenv, no staging left: {leftovers:?}"
    );

    for (index, server) in servers.into_iter().enumerate() {
        let endpoint = server.endpoint().to_owned();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        let client = local_client(&endpoint, None).await;
        let table = format!("probe{index}");
        ensure_table(&client, &TableSpec::wsgw_table(&table, true))
            .await
            .unwrap();
        assert_eq!(
            client.list_tables().send().await.unwrap().table_names(),
            [table]
        );
        server.stop().await;
        let addr = endpoint.trim_start_matches("http://");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "moto's server is stopped"
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
}

/// Whether a staging directory in `cache` holds the requirements pip is installing.
fn pip_is_installing_into(cache: &std::path::Path) -> bool {
    std::fs::read_dir(cache).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            entry.file_name().to_string_lossy().starts_with('.')
                && entry.path().join("requirements.txt").exists()
        })
    })
}

/// moto's server logs every request on its standard error: some 1,000 requests fill a
/// pipe nobody reads, and moto then blocks on writing its log and answers nothing more
/// (seen as every function of `wsgw local` hanging until its timeout after a few hundred
/// telemetry readings).
#[tokio::test]
async fn moto_keeps_answering_after_more_requests_than_a_pipe_holds_of_its_log() {
    const REQUESTS: usize = 1_500;
    const AT_ONCE: usize = 8;
    let server = MotoServer::start(&cache())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let client = local_client(server.endpoint(), None).await;
    let mut answered = 0;
    while answered < REQUESTS {
        let batch: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    tokio::time::timeout(Duration::from_secs(10), client.list_tables().send()).await
                })
            })
            .collect();
        for request in batch {
            match request.await.unwrap() {
                Ok(Ok(_)) => answered += 1,
                Ok(Err(error)) => panic!("after {answered} answers: {error:?}"),
                Err(_) => panic!("after {answered} answers, moto answered nothing within 10 s"),
            }
        }
    }
    server.stop().await;
}

/// DynamoDB applies a conditional write atomically: of 32 compare-and-swap updates of one
/// item sent at once (each expecting the value all of them read), exactly one succeeds
/// and the others fail their condition. moto's threaded server checks a condition and
/// writes without a lock (seen as two telemetry pushes in one interval, now and then,
/// under load); the server `wsgw local` starts handles one request at a time.
#[tokio::test]
async fn compare_and_swap_updates_of_one_item_at_once_succeed_exactly_once_as_on_dynamodb() {
    use aws_sdk_dynamodb::types::AttributeValue;
    const WRITERS: usize = 32;
    let server = MotoServer::start(&cache())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let client = local_client(server.endpoint(), None).await;
    ensure_table(&client, &TableSpec::wsgw_table("race", false))
        .await
        .unwrap();
    let key = |name: &str| AttributeValue::S(name.to_owned());
    client
        .put_item()
        .table_name("race")
        .item("pk", key("item"))
        .item("sk", key("item"))
        .item("value", key("start"))
        .send()
        .await
        .unwrap();
    let mut expected = "start".to_owned();
    for round in 0..20 {
        let writes: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let update = client
                    .update_item()
                    .table_name("race")
                    .key("pk", key("item"))
                    .key("sk", key("item"))
                    .update_expression("SET #value = :new")
                    .condition_expression("attribute_exists(pk) AND #value = :old")
                    .expression_attribute_names("#value", "value")
                    .expression_attribute_values(":old", key(&expected))
                    .expression_attribute_values(":new", key(&format!("{round}-{writer}")));
                tokio::spawn(update.send())
            })
            .collect();
        let mut winners = Vec::new();
        for (writer, write) in writes.into_iter().enumerate() {
            match write.await.unwrap() {
                Ok(_) => winners.push(format!("{round}-{writer}")),
                Err(error) => assert!(
                    error
                        .as_service_error()
                        .is_some_and(|error| error.is_conditional_check_failed_exception()),
                    "{error:?}"
                ),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: updates that succeeded: {winners:?}"
        );
        expected = winners.remove(0);
    }
    server.stop().await;
}

#[test]
fn wsgw_local_without_an_endpoint_starts_moto_creates_the_tables_and_stops_it() {
    let stack_name = unique_name("local");
    let _installing = INSTALL.blocking_lock();
    let cache = cache();
    let (status, stdout, stderr) = support::wsgw_until_ready(
        &[
            "local",
            "--template",
            "examples/chat/template.yaml",
            "--listen",
            "127.0.0.1:0",
            "--stack-name",
            &stack_name,
        ],
        &[(CACHE_DIR_ENV, cache.as_os_str())],
    );

    assert!(status.success(), "{stdout}\n{stderr}");
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
    let endpoint = endpoint();
    let run = || {
        support::wsgw_until_ready(
            &[
                "local",
                "--template",
                "examples/telemetry/template.yaml",
                "--listen",
                "127.0.0.1:0",
                "--stack-name",
                &stack_name,
                "--dynamodb-endpoint",
                &endpoint,
                "--parameter-overrides",
                "DeviceKeys=esp32-01=k1",
            ],
            &[],
        )
        .1
    };

    let (first, second) = (run(), run());
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

mod served {
    //! The examples served by `wsgw local` with real clients: every event a process of
    //! the example's binary in Lambda mode, on DynamoDB tables created from its template.
    //! The chat is checked against the chat as `cargo run -p chat` runs it (the same
    //! binary on the in-process LocalGateway): the same script of independent clients
    //! gets the same frames from both. The telemetry runs with its authorizer turned on
    //! by `--parameter-overrides`.

    use serde_json::{json, Value};
    use wsgw::{LocalArgs, LocalRun};
    use wsgw_aws::dynamo::local::unique_name;

    use super::support::{connect, next_text, refused_status, send as say, Client};

    async fn next_json(client: &mut Client) -> Value {
        serde_json::from_str(&next_text(client).await).expect("JSON frames")
    }

    /// The frame without what differs on every run (ids, times).
    fn normalised(mut value: Value) -> Value {
        match &mut value {
            Value::Object(fields) => {
                for key in ["message_id", "timestamp", "connected_at_ms", "received_ms"] {
                    if fields.remove(key).is_some() {
                        fields.insert(key.to_owned(), json!("…"));
                    }
                }
                for field in fields.values_mut() {
                    *field = normalised(field.take());
                }
            }
            Value::Array(items) => {
                for item in items {
                    *item = normalised(item.take());
                }
            }
            _ => {}
        }
        value
    }

    /// The script: two clients of two sessions; a message to all, a private one, the
    /// history, a heartbeat, an unknown action, an empty message, a refused handshake.
    /// Returns every frame each client got, in order, normalised.
    async fn transcript(url: &str) -> Vec<(&'static str, Value)> {
        let mut seen = Vec::new();
        let mut ada = connect(&format!("{url}?session_id=s1&name=Ada")).await;
        let mut bob = connect(&format!("{url}?session_id=s2&name=Bob")).await;

        say(&mut ada, json!({"action": "sendmessage", "message": "hi"})).await;
        seen.push(("ada", next_json(&mut ada).await));
        seen.push(("bob", next_json(&mut bob).await));

        say(
            &mut bob,
            json!({"action": "sendmessage", "message": "psst", "session_ids": ["s1"]}),
        )
        .await;
        seen.push(("ada", next_json(&mut ada).await));
        seen.push(("bob", next_json(&mut bob).await));

        for body in [
            json!({"action": "history", "limit": 10}),
            json!({"action": "heartbeat"}),
            json!({"action": "dance"}),
            json!({"action": "sendmessage", "message": ""}),
        ] {
            say(&mut ada, body).await;
            seen.push(("ada", next_json(&mut ada).await));
        }

        let refused = refused_status(&format!("{url}?session_id=a%20b")).await;
        seen.push(("refused", json!(refused)));
        seen.into_iter()
            .map(|(who, frame)| (who, normalised(frame)))
            .collect()
    }

    async fn serve(template: &str, overrides: &[&str]) -> wsgw::Serving {
        let mut args = LocalArgs::new(super::support::workspace().join(template));
        args.listen = "127.0.0.1:0".parse().unwrap();
        args.dynamodb_endpoint = Some(super::endpoint());
        args.stack_name = Some(unique_name("served"));
        args.parameter_overrides = overrides.iter().map(|item| (*item).to_owned()).collect();
        LocalRun::prepare(&args)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
            .serve()
            .unwrap_or_else(|error| panic!("{error}"))
    }

    #[tokio::test]
    async fn the_telemetry_with_its_authorizer_on_admits_only_the_keys_and_streams_readings() {
        let serving = serve(
            "examples/telemetry/template.yaml",
            &[
                "DeviceKeys=esp32-01=kdev",
                "DashboardKeys=ops=kdash=operator",
                "TokenLocation=query",
            ],
        )
        .await;
        let url = serving.stage_url();

        // The identity source (?token=) missing: API Gateway's own 401.
        assert_eq!(refused_status(&format!("{url}?role=client")).await, 401);
        // The authorizer function decides the rest.
        assert_eq!(
            refused_status(&format!("{url}?role=client&token=nope")).await,
            401
        );
        assert_eq!(
            refused_status(&format!("{url}?role=device&device_id=esp32-02&token=kdev")).await,
            403,
            "a device key for another device"
        );

        let mut dashboard =
            connect(&format!("{url}?role=client&device_id=esp32-01&token=kdash")).await;
        let mut device = connect(&format!("{url}?role=device&device_id=esp32-01&token=kdev")).await;
        say(
            &mut device,
            json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01", "seq": 1, "ts_ms": 0, "readings": {"t": 21.5}}),
        )
        .await;
        let reading = next_json(&mut dashboard).await;
        assert_eq!(reading["type"], "reading", "{reading}");
        assert_eq!(reading["device_id"], "esp32-01", "{reading}");
        assert!(
            serving.run.pool.instances_started("AuthorizerFunction") >= 1,
            "the authorizer ran in its own function's process"
        );
        drop((dashboard, device));
        serving.shutdown().await;
    }

    /// `method` `url` with an `Origin`: the status, the CORS headers and the body as
    /// JSON (`null` when empty).
    async fn http(method: &str, url: &str) -> (u16, Vec<(String, String)>, Value) {
        let response = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .header("origin", "http://dashboard.example")
            .header("access-control-request-method", "GET")
            .timeout(super::support::FRAME_WAIT)
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
        let status = response.status().as_u16();
        let cors = response
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("access-control-"))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let text = response.text().await.unwrap();
        // A body that is not JSON (the binary's own 404) is kept as its text.
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, cors, body)
    }

    /// Three readings of one device, then what the REST API answers (normalised): `/history`
    /// once it holds all three (messages of a connection are handled concurrently, as on
    /// API Gateway), `/devices` while the device is connected, and a CORS preflight.
    async fn rest_transcript(
        ws: &str,
        api: &str,
        now_ms: u64,
    ) -> Vec<(u16, Vec<(String, String)>, Value)> {
        let mut device = connect(&format!("{ws}?role=device&device_id=esp32-rest")).await;
        for seq in 1..=3 {
            say(
                &mut device,
                json!({"action": "RealTimeDataUpdate", "device_id": "esp32-rest", "seq": seq, "ts_ms": now_ms + seq, "readings": {"t": 20.0 + seq as f64}}),
            )
            .await;
        }
        let from_ms = now_ms - 60_000;
        let history = format!("{api}/history?device_id=esp32-rest&from_ms={from_ms}");
        let deadline = tokio::time::Instant::now() + super::support::FRAME_WAIT;
        let stored = loop {
            let answer = http("GET", &history).await;
            let count = answer.2["items"].as_array().map_or(0, Vec::len);
            if count == 3 || tokio::time::Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        // The device stays connected while /devices lists it.
        let answers = vec![
            stored,
            http("GET", &format!("{api}/devices")).await,
            http("OPTIONS", &history).await,
        ];
        drop(device);
        // Headers in name order: the order of different header names carries no meaning
        // (a function's proxy response is a JSON object, whose key order API Gateway
        // does not keep either).
        answers
            .into_iter()
            .map(|(status, mut cors, body)| {
                cors.sort();
                (status, cors, normalised(body))
            })
            .collect()
    }

    #[tokio::test]
    async fn the_telemetry_rest_api_through_wsgw_local_answers_as_cargo_run_p_telemetry_does() {
        history_api_answers_as_cargo_run_p_telemetry_does(
            &[],
            "serving REST API RestApi",
            "HistoryFunction",
            (403, json!({"message": "Missing Authentication Token"})),
        )
        .await;
    }

    /// `HistoryApi=HTTP`: the history served by an HTTP API, its function getting payload
    /// 2.0 events, answers what the REST API and `cargo run -p telemetry` answer; a path
    /// or method without a route is the HTTP API's 404.
    #[tokio::test]
    async fn the_telemetry_http_api_through_wsgw_local_answers_as_cargo_run_p_telemetry_does() {
        history_api_answers_as_cargo_run_p_telemetry_does(
            &["HistoryApi=HTTP"],
            "serving HTTP API HttpApi",
            "HttpHistoryFunction",
            (404, json!({"message": "Not Found"})),
        )
        .await;
    }

    /// The telemetry's history served by wsgw local with `overrides` (its ready line
    /// starting `serving`, the routes run by `function`) answers the readings a device
    /// sent, `/devices` and the preflight as the binary in process does, at the root and
    /// under the stage; under the stage a path or a method without a route is `no_route`.
    async fn history_api_answers_as_cargo_run_p_telemetry_does(
        overrides: &[&str],
        serving_line: &str,
        function: &str,
        no_route: (u16, Value),
    ) {
        let serving = serve("examples/telemetry/template.yaml", overrides).await;
        let addr = serving.gateway.local_addr();
        let stage = &serving.stage.name;
        assert!(
            serving
                .ready_lines()
                .contains(&format!("{serving_line} at http://{addr}/{stage}")),
            "{}",
            serving.ready_lines()
        );
        // Where the page served beside the API reads it: the root.
        // Readings of now (the history keeps days, not years), the same for both runs.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_millis() as u64)
            .unwrap_or_default();
        let served = rest_transcript(&serving.stage_url(), &format!("http://{addr}"), now_ms).await;

        // `cargo run -p telemetry`: the binary wsgw local built, in process.
        let telemetry = serving
            .run
            .executables
            .get("Function")
            .expect("the telemetry binary");
        let (mut local, local_ws) = super::support::run_in_process(telemetry).await;
        let local_api = local_ws
            .trim_end_matches('/')
            .replacen("ws://", "http://", 1);
        let in_process = rest_transcript(&local_ws, &local_api, now_ms).await;
        assert_eq!(served, in_process);
        assert_eq!(served[0].0, 200, "{served:#?}");
        assert_eq!(
            served[0].2["items"].as_array().map(Vec::len),
            Some(3),
            "{served:#?}"
        );
        assert!(
            served[1].2.to_string().contains("esp32-rest"),
            "{served:#?}"
        );
        assert!(
            served[2]
                .1
                .iter()
                .any(|(name, _)| name == "access-control-allow-methods"),
            "the preflight's CORS headers: {served:#?}"
        );
        // The deployed URL's path (the stage first) reaches the same routes; under it a
        // path or a method without a route is the API's own answer.
        let staged = http(
            "GET",
            &format!(
                "http://{addr}/{stage}/history?device_id=esp32-rest&from_ms={}",
                now_ms - 60_000
            ),
        )
        .await;
        assert_eq!((staged.0, normalised(staged.2)), (200, served[0].2.clone()));
        for (method, path) in [("GET", "nothing"), ("DELETE", "history")] {
            let (status, _, body) = http(method, &format!("http://{addr}/{stage}/{path}")).await;
            assert_eq!((status, body), no_route, "{method} {path}");
        }
        assert!(
            serving.run.pool.instances_started(function) >= 1,
            "{function} served the history"
        );
        local.kill().await.unwrap();
        serving.shutdown().await;
    }

    #[tokio::test]
    async fn the_chat_through_wsgw_local_answers_independent_clients_as_cargo_run_p_chat_does() {
        let serving = serve("examples/chat/template.yaml", &[]).await;
        let served = transcript(&serving.stage_url()).await;

        // `cargo run -p chat`: the chat binary wsgw local built, without the Lambda
        // Runtime API, on its own LocalGateway with memory backends.
        let chat = serving
            .run
            .executables
            .get("Function")
            .expect("the chat binary");
        let (mut local, local_url) = super::support::run_in_process(chat).await;
        let in_process = transcript(&local_url).await;

        assert_eq!(served, in_process);
        assert_eq!(served[0].1["type"], "message", "{served:#?}");
        assert_eq!(served[4].1["type"], "history", "{served:#?}");
        let history: Vec<&Value> = served[4].1["messages"]
            .as_array()
            .map(|messages| messages.iter().map(|message| &message["message"]).collect())
            .unwrap_or_default();
        assert_eq!(history, [&json!("hi"), &json!("psst")], "{served:#?}");
        assert_eq!(served[3].1["type"], "sent", "{served:#?}");
        assert_eq!(served[7].1["error"], "empty_message", "{served:#?}");
        assert_eq!(served[8], ("refused", json!(400)), "{served:#?}");
        assert!(
            serving.run.pool.instances_started("Function") >= 1,
            "every event ran in a chat process"
        );
        local.kill().await.unwrap();
        serving.shutdown().await;
    }
}

/// `wsgw local` killed outright (SIGKILL, as a test harness does when it gives up waiting)
/// cannot stop the moto server it started: the server ends by itself once the process
/// that started it is gone, instead of holding its port and memory as an orphan.
#[test]
fn moto_started_by_wsgw_local_ends_when_wsgw_is_killed() {
    use std::io::{BufRead, Read};
    use std::process::{Command, Stdio};
    let _installing = INSTALL.blocking_lock();
    let cache = cache();
    let mut wsgw = Command::new(env!("CARGO_BIN_EXE_wsgw"))
        .args(["local", "--template", "examples/chat/template.yaml"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--stack-name",
            &unique_name("killed"),
        ])
        .env(CACHE_DIR_ENV, &cache)
        .env_remove("WSGW_LISTEN")
        .current_dir(support::workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsgw runs");
    let mut stdout = wsgw.stdout.take().expect("its stdout");
    // Standard output is read alongside, so a chatty run cannot fill its pipe and stall.
    let drained = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut stderr = std::io::BufReader::new(wsgw.stderr.take().expect("its stderr"));
    let mut line = String::new();
    let endpoint = loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = wsgw.kill();
            panic!(
                "wsgw ended before announcing moto; stdout: {:?}",
                drained.join()
            );
        }
        if let Some(announced) = line
            .trim_end()
            .strip_prefix("wsgw: moto 5.2.6's DynamoDB server started at ")
        {
            break announced.trim_end_matches(" (stopped on exit)").to_owned();
        }
    };
    let addr = endpoint.trim_start_matches("http://").to_owned();
    assert!(
        std::net::TcpStream::connect(&addr).is_ok(),
        "moto answers at {addr} while wsgw runs"
    );

    wsgw.kill().expect("SIGKILL");
    wsgw.wait().expect("wsgw is gone");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto still serves {addr} 15 s after wsgw was killed: an orphan (stop it by hand)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
