//! DynamoDB throttling, for real: a loopback HTTP proxy in front of a DynamoDB-compatible
//! server (moto's in `cargo xtask test`) answers a fraction of requests with HTTP 400
//! `ThrottlingException` or `ProvisionedThroughputExceededException`, as DynamoDB does,
//! and forwards the rest. `DynamoStore` and `DynamoHistory` write through it; every
//! write is then read back straight from the server: the SDK's retries lost nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, Utc};
use futures::stream::{self, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use wsgw_aws::dynamo::{local, DynamoHistory, DynamoStore, MAX_ATTEMPTS};
use wsgw_core::conformance::unique;
use wsgw_core::{
    AttributeUpdate, Connection, ConnectionId, ConnectionStore, HistoryQuery, HistoryRecord,
    HistoryStore, PageRequest,
};

fn endpoint() -> String {
    local::endpoint_from_env().unwrap_or_else(|missing| panic!("{missing}"))
}

/// The fraction of requests throttled (on their first attempts).
const RATE: f64 = 0.3;
/// At most this many throttled answers to one request (the same body), so that the SDK,
/// which makes `MAX_ATTEMPTS` attempts, can always get through.
const MAX_THROTTLES_PER_REQUEST: u32 = 2;
const _: () = assert!(MAX_THROTTLES_PER_REQUEST < MAX_ATTEMPTS);

/// What the proxy did, by `X-Amz-Target` operation.
#[derive(Debug, Default, Clone)]
struct Counts {
    forwarded: BTreeMap<String, usize>,
    throttled: BTreeMap<String, usize>,
    by_error: BTreeMap<&'static str, usize>,
}

struct Proxy {
    endpoint: String,
    counts: Arc<Mutex<Counts>>,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// Reads an HTTP/1.1 message head (through the blank line): the raw head, its
/// `Content-Length` and its `X-Amz-Target` operation. `None` at end of stream.
async fn read_head<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> Option<(String, usize, String)> {
    let mut head = String::new();
    let mut length = 0;
    let mut operation = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        head.push_str(&line);
        if line == "\r\n" {
            return Some((head, length, operation));
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().expect("a numeric Content-Length");
            }
            if name.eq_ignore_ascii_case("transfer-encoding") {
                panic!("the proxy relays Content-Length bodies only, not {value}");
            }
            if name.eq_ignore_ascii_case("x-amz-target") {
                operation = value.rsplit('.').next().unwrap_or(value).to_owned();
            }
        }
    }
}

/// Forwards one request to `upstream` on a new connection and returns the raw response.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut server = BufReader::new(TcpStream::connect(upstream).await.expect("upstream"));
    server
        .get_mut()
        .write_all(head.as_bytes())
        .await
        .expect("head");
    server.get_mut().write_all(body).await.expect("body");
    let (head, length, _) = read_head(&mut server).await.expect("a response");
    let mut response = head.into_bytes();
    let start = response.len();
    response.resize(start + length, 0);
    server
        .read_exact(&mut response[start..])
        .await
        .expect("the response body");
    response
}

/// Starts the proxy in front of `upstream` (`http://host:port`).
async fn proxy(upstream: &str, seed: u64) -> Proxy {
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let attempts: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    // moto's TransactWriteItems is not thread-safe (it deep-copies the table while other
    // threads write: HTTP 500): the proxy hands moto one request at a time.
    let one_at_a_time = Arc::new(tokio::sync::Mutex::new(()));
    let shared_counts = counts.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (counts, attempts, upstream, one_at_a_time) = (
                shared_counts.clone(),
                attempts.clone(),
                upstream.clone(),
                one_at_a_time.clone(),
            );
            tokio::spawn(async move {
                let mut client = BufReader::new(socket);
                while let Some((head, length, operation)) = read_head(&mut client).await {
                    let mut body = vec![0; length];
                    if client.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    // The n-th sighting of the same request body draws its own number, so
                    // throttling does not depend on the order concurrent requests arrive in.
                    let hash = fnv(&body) ^ fnv(operation.as_bytes());
                    let attempt = {
                        let mut attempts = attempts.lock().expect("not poisoned");
                        let attempt = attempts.entry(hash).or_insert(0);
                        *attempt += 1;
                        *attempt
                    };
                    let draw = mix(seed ^ mix(hash ^ u64::from(attempt)));
                    let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
                    let response = if attempt <= MAX_THROTTLES_PER_REQUEST && unit < RATE {
                        let error = if draw & 1 == 0 {
                            "ThrottlingException"
                        } else {
                            "ProvisionedThroughputExceededException"
                        };
                        let mut counts = counts.lock().expect("not poisoned");
                        *counts.throttled.entry(operation).or_default() += 1;
                        *counts.by_error.entry(error).or_default() += 1;
                        let json = json!({
                            "__type": format!("com.amazonaws.dynamodb.v20120810#{error}"),
                            "message": "Rate of requests exceeds the allowed throughput.",
                        })
                        .to_string();
                        format!(
                            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
                             x-amzn-requestid: proxy\r\ncontent-length: {}\r\n\r\n{json}",
                            json.len()
                        )
                        .into_bytes()
                    } else {
                        let response = {
                            let _one = one_at_a_time.lock().await;
                            forward(&upstream, &head, &body).await
                        };
                        *counts
                            .lock()
                            .expect("not poisoned")
                            .forwarded
                            .entry(operation)
                            .or_default() += 1;
                        response
                    };
                    if client.get_mut().write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Proxy { endpoint, counts }
}

const CONNECTIONS: usize = 120;

fn id(i: usize) -> ConnectionId {
    ConnectionId::new(format!("throttled-{i:03}="))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn throttled_writes_are_retried_by_the_sdk_and_every_one_lands() {
    let table = unique("wsgw-throttled");
    let history_table = unique("wsgw-throttled-history");
    // Straight to the server: creates the tables and reads everything back.
    let direct = DynamoStore::builder()
        .with_endpoint(endpoint())
        .with_table(&table)
        .build()
        .await
        .expect("builds");
    direct.create_table().await.expect("creates");
    let direct_history = DynamoHistory::builder()
        .with_endpoint(endpoint())
        .with_table(&history_table)
        .build()
        .await
        .expect("builds");
    direct_history.create_table().await.expect("creates");

    let proxy = proxy(&endpoint(), 0x7407).await;
    let store = DynamoStore::builder()
        .with_endpoint(&proxy.endpoint)
        .with_table(&table)
        .build()
        .await
        .expect("builds");
    let history = DynamoHistory::builder()
        .with_endpoint(&proxy.endpoint)
        .with_table(&history_table)
        .build()
        .await
        .expect("builds");

    // Connect, join a group, update attributes, append history, and leave for a quarter.
    let start = Utc::now();
    let results: Vec<wsgw_core::Result<()>> = stream::iter(0..CONNECTIONS)
        .map(|i| {
            let (store, history) = (&store, &history);
            async move {
                store
                    .put(
                        Connection::new(id(i))
                            .with_group(format!("room:{}", i % 5))
                            .with_attribute("n", i),
                    )
                    .await?;
                store
                    .add_to_group(&id(i), &format!("extra:{}", i % 3))
                    .await?;
                store
                    .update_attributes(
                        &id(i),
                        AttributeUpdate::new().expect_value("n", i).set("step", 2),
                    )
                    .await?;
                history
                    .append(HistoryRecord::new(
                        "throttled",
                        start + TimeDelta::milliseconds(i as i64),
                        format!("m{i}"),
                        json!({ "i": i }),
                    ))
                    .await?;
                if i % 4 == 0 {
                    store.delete(&id(i)).await?;
                }
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failures: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "{} calls failed: {failures:?}",
        failures.len()
    );

    let counts = proxy.counts.lock().expect("not poisoned").clone();
    eprintln!("proxy: {counts:?}");
    let throttled: usize = counts.throttled.values().sum();
    assert!(throttled > 50, "the proxy throttled: {counts:?}");
    assert!(counts.by_error.len() == 2, "both throttling errors sent");
    // Each put, group join, attribute update, append and delete is one write request:
    // every one reached the server exactly once, however often it was throttled first.
    let writes: usize = [
        "TransactWriteItems",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
    ]
    .iter()
    .filter_map(|operation| counts.forwarded.get(*operation))
    .sum();
    assert_eq!(writes, 4 * CONNECTIONS + CONNECTIONS / 4, "{counts:?}");

    // Everything is there, read past the proxy.
    for i in 0..CONNECTIONS {
        let stored = direct.get(&id(i)).await.expect("reads");
        if i % 4 == 0 {
            assert!(stored.is_none(), "{} deleted", id(i));
            continue;
        }
        let stored = stored.unwrap_or_else(|| panic!("{} stored", id(i)));
        assert_eq!(
            stored.groups,
            BTreeSet::from([format!("room:{}", i % 5), format!("extra:{}", i % 3)])
        );
        assert_eq!(stored.attributes.get("n"), Some(&json!(i)));
        assert_eq!(stored.attributes.get("step"), Some(&json!(2)));
    }
    let mut in_rooms = 0;
    for room in 0..5 {
        in_rooms += direct
            .list_group(&format!("room:{room}"), PageRequest::first(500))
            .await
            .expect("lists")
            .items
            .len();
    }
    assert_eq!(in_rooms, CONNECTIONS - CONNECTIONS / 4);
    let records = direct_history
        .query(HistoryQuery::new("throttled").limit(500))
        .await
        .expect("queries")
        .items;
    assert_eq!(records.len(), CONNECTIONS);
}
