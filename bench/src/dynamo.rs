//! DynamoDB efficiency: the requests a broadcast to one room issues, counted by a TCP
//! proxy in front of moto's server (by the `X-Amz-Target` of each request): Query pages
//! only, zero Scans.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsgw_aws::dynamo::schema;
use wsgw_core::{Backends, BroadcastOptions, ConnectionId, ConnectionStore, Payload, Router};
use wsgw_memory::MemorySink;

use crate::report::Results;
use crate::{Result, RunArgs};

type Counts = Arc<Mutex<BTreeMap<String, usize>>>;
type Item = HashMap<String, AttributeValue>;

/// The group broadcast to.
const ROOM: &str = "room";
/// Attempts per batch while moto leaves items unprocessed.
const BATCH_ATTEMPTS: usize = 5;

/// The connection id of the `i`th connection.
fn id_of(i: usize) -> String {
    format!("conn-{i:05}=")
}

/// moto's version, as the benchmark's Python imports it.
fn moto_version(python: &std::path::Path) -> String {
    std::process::Command::new(python)
        .args(["-c", "import moto; print(moto.__version__)"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const TARGET: &[u8] = b"DynamoDB_20120810.";

/// Counts the operation names following [`TARGET`] in `carry` + `bytes`; `carry` keeps
/// the tail after the last complete name, so a name split across reads counts once.
fn count_ops(carry: &mut Vec<u8>, bytes: &[u8], counts: &Counts) {
    carry.extend_from_slice(bytes);
    let mut start = 0;
    while let Some(at) = find(&carry[start..], TARGET) {
        let name_start = start + at + TARGET.len();
        let Some(length) = carry[name_start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
        else {
            break;
        };
        let name = String::from_utf8_lossy(&carry[name_start..name_start + length]);
        *counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.into_owned())
            .or_default() += 1;
        start = name_start + length;
    }
    let keep_from = start.max(carry.len().saturating_sub(64));
    carry.drain(..keep_from);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A loopback proxy to `upstream` counting DynamoDB operations; returns its endpoint.
async fn counting_proxy(upstream: String, counts: Counts) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream.as_str()).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    let mut carry = Vec::new();
                    while let Ok(n) = client_read.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        count_ops(&mut carry, &buffer[..n], &counts);
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    Ok(format!("http://{addr}"))
}

/// The items [`wsgw_aws::DynamoStore::put`] writes for a connection with no attributes:
/// the connection item and, in the room, its membership item (the documented table
/// design, [`wsgw_aws::dynamo::schema`]).
fn connection_items(id: &str, in_room: bool, now_ms: i64, ttl: i64) -> Vec<Item> {
    let s = |value: String| AttributeValue::S(value);
    let n = |value: i64| AttributeValue::N(value.to_string());
    let pk = format!("{}{id}", schema::CONNECTION_PREFIX);
    let mut connection = Item::from([
        (schema::PK.to_owned(), s(pk.clone())),
        (schema::SK.to_owned(), s(schema::CONNECTION_SK.to_owned())),
        (schema::CONNECTED_AT.to_owned(), n(now_ms)),
        (schema::LAST_ACTIVE_AT.to_owned(), n(now_ms)),
        (schema::ATTRIBUTES.to_owned(), s("{}".to_owned())),
        (schema::TTL.to_owned(), n(ttl)),
    ]);
    if !in_room {
        return vec![connection];
    }
    let group = format!("{}{ROOM}", schema::GROUP_PREFIX);
    connection.insert(
        schema::GROUPS.to_owned(),
        AttributeValue::Ss(vec![ROOM.to_owned()]),
    );
    let membership = Item::from([
        (schema::PK.to_owned(), s(pk)),
        (schema::SK.to_owned(), s(group.clone())),
        (schema::GPK.to_owned(), s(group)),
        (schema::GSK.to_owned(), s(id.to_owned())),
        (schema::TTL.to_owned(), n(ttl)),
    ]);
    vec![connection, membership]
}

/// Writes `items` with `BatchWriteItem`, 25 a request, repeating unprocessed items (at
/// most [`BATCH_ATTEMPTS`] times a batch).
async fn batch_write(client: &Client, table: &str, items: Vec<Item>) -> Result<usize> {
    let requests = items
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>>>()?;
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    let count = batches.len();
    stream::iter(batches)
        .map(|mut pending| async move {
            for _ in 0..BATCH_ATTEMPTS {
                if pending.is_empty() {
                    return Ok(());
                }
                let output = client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| format!("BatchWriteItem: {}", DisplayErrorContext(e)))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut unprocessed| unprocessed.remove(table))
                    .unwrap_or_default();
            }
            if pending.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} items unprocessed after {BATCH_ATTEMPTS} attempts",
                    pending.len()
                ))
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(count)
}

/// Fills a table with `total` connections, `room` of them in the room (with
/// `BatchWriteItem`: `DynamoStore::put` writes each connection in a transaction, which
/// moto runs in time growing with the table), then counts the requests of one
/// broadcast to the room (`ctx.broadcast(…).to_group(room)`).
pub async fn run(args: &RunArgs, endpoint: &str, results: &mut Results) -> Result<()> {
    let (total, room) = if args.quick {
        (1_000, 100)
    } else {
        (10_000, 1_000)
    };
    eprintln!("wsgw-bench: DynamoDB, broadcast to {room} of {total} connections at moto");
    let table = format!("wsgw-bench-{}", std::process::id());
    let direct = wsgw_aws::DynamoStore::builder()
        .with_endpoint(endpoint)
        .with_table(&table)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    direct.create_table().await.map_err(|e| e.to_string())?;
    let filled = Instant::now();
    let now = chrono_now_ms();
    let ttl = now / 1000 + 3600;
    let every = total / room;
    let items: Vec<Item> = (0..total)
        .flat_map(|i| connection_items(&id_of(i), i % every == 0, now, ttl))
        .collect();
    let written = items.len();
    let batches = batch_write(direct.client(), &table, items).await?;
    eprintln!(
        "  table filled: {written} items in {batches} BatchWriteItem requests, {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    // The store reads back what was written (the same schema), a member and a non-member.
    for (i, member) in [(0, true), (1, false)] {
        let stored = direct
            .get(&ConnectionId::new(id_of(i)))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} not stored", id_of(i)))?;
        if stored.groups.contains(ROOM) != member {
            return Err(format!(
                "{} read back with groups {:?}",
                id_of(i),
                stored.groups
            ));
        }
    }
    let counts: Counts = Arc::default();
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let proxy = counting_proxy(upstream.to_owned(), counts.clone()).await?;
    let store = wsgw_aws::DynamoStore::builder()
        .with_endpoint(proxy)
        .with_table(&table)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let sink = Arc::new(MemorySink::new());
    for i in (0..total).step_by(every) {
        sink.open(&ConnectionId::new(id_of(i)), None, None);
    }
    let backends = Backends::new(Arc::new(store), sink);
    let options = BroadcastOptions::default();
    let ctx = Router::new()
        .broadcast_options(options.clone())
        .context(&backends);
    let started = Instant::now();
    let report = ctx
        .broadcast_payload(Payload::text("{\"type\":\"broadcast\"}"))
        .to_group(ROOM)
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    if report.delivered.len() != room {
        return Err(format!(
            "the room broadcast reached {} of {room} members",
            report.delivered.len()
        ));
    }
    let counts = counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let listed: Vec<String> = counts.iter().map(|(op, n)| format!("{op} × {n}")).collect();
    results.dynamodb.push(format!(
        "Broadcast to a {room}-member room in a {total}-connection table (moto {}, page size {}; \
         the table filled beforehand with {batches} BatchWriteItem requests, not counted): \
         {} delivered in {:.0} ms; requests counted at the proxy in front of moto: {}; Scans: {}.",
        moto_version(&args.python),
        options.page_size,
        report.delivered.len(),
        elapsed.as_secs_f64() * 1e3,
        if listed.is_empty() {
            "none".to_owned()
        } else {
            listed.join(", ")
        },
        counts.get("Scan").copied().unwrap_or(0),
    ));
    Ok(())
}
