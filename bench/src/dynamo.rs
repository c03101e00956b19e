//! DynamoDB efficiency: the requests a broadcast to one room issues, counted by a TCP
//! proxy in front of moto's server (by the `X-Amz-Target` of each request): Query pages
//! only, zero Scans.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsgw_core::{
    broadcast_to_group, BroadcastOptions, Connection, ConnectionId, ConnectionStore, Payload,
};
use wsgw_memory::MemorySink;

use crate::report::Results;
use crate::{Result, RunArgs};

type Counts = Arc<Mutex<BTreeMap<String, usize>>>;

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

/// Fills a table with `total` connections, `room` of them in the room, then counts the
/// requests of one `broadcast_to_group` to the room.
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
    stream::iter(0..total)
        .map(|i| {
            let direct = &direct;
            async move {
                let id = ConnectionId::new(format!("conn-{i:05}="));
                let mut connection = Connection::new(id.clone());
                if i % (total / room) == 0 {
                    connection.groups.insert("room".to_owned());
                }
                direct.put(connection).await
            }
        })
        .buffer_unordered(1)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("  table filled in {:.1} s", filled.elapsed().as_secs_f64());
    let counts: Counts = Arc::default();
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let proxy = counting_proxy(upstream.to_owned(), counts.clone()).await?;
    let store = wsgw_aws::DynamoStore::builder()
        .with_endpoint(proxy)
        .with_table(&table)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let sink = MemorySink::new();
    for i in (0..total).step_by(total / room) {
        sink.open(&ConnectionId::new(format!("conn-{i:05}=")), None, None);
    }
    let options = BroadcastOptions::default();
    let started = Instant::now();
    let report = broadcast_to_group(
        &store,
        &sink,
        "room",
        &Payload::text("{\"type\":\"broadcast\"}"),
        &options,
    )
    .await
    .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let counts = counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let listed: Vec<String> = counts.iter().map(|(op, n)| format!("{op} × {n}")).collect();
    results.dynamodb.push(format!(
        "Broadcast to a {room}-member room in a {total}-connection table (moto {}, page size {}): \
         {} delivered in {:.0} ms; requests counted at the proxy in front of moto: {}; Scans: {}.",
        "5",
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
