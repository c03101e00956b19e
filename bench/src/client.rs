//! WebSocket clients driving the servers under test: bounded in count and in time.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use futures::SinkExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Result;

/// One client connection.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one answer may take before the run is called failed.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// tungstenite's buffers with a small read buffer (4 KiB instead of 128 KiB), as the
/// LocalGateway uses them: 10,000 clients in this process would otherwise hold 1.3 GB.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
}

/// Opens one connection (Nagle off, small buffers).
pub async fn connect(url: &str) -> Result<Socket> {
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(small_buffers()), true);
    let (socket, _) = tokio::time::timeout(ANSWER_TIMEOUT, connecting)
        .await
        .map_err(|_| format!("connecting to {url} timed out"))?
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    Ok(socket)
}

/// Opens `count` connections, `concurrency` handshakes at a time.
pub async fn connect_many(url: &str, count: usize, concurrency: usize) -> Result<Vec<Socket>> {
    stream::iter(0..count)
        .map(|_| connect(url))
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// How long the first answer on each of a throughput window's connections may take: a
/// server that starts a worker per concurrent request (serverless-offline loads the
/// handler and the AWS SDK into a fresh worker thread for each) needs far more than
/// [`ANSWER_TIMEOUT`] for 100 of them on a busy 2-core machine.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_secs(180);

/// Sends `text` and waits for the next text answer.
pub async fn round_trip(socket: &mut Socket, text: String) -> Result<String> {
    round_trip_within(socket, text, ANSWER_TIMEOUT).await
}

/// Sends `text` and waits at most `timeout` for the next text answer.
pub async fn round_trip_within(
    socket: &mut Socket,
    text: String,
    timeout: Duration,
) -> Result<String> {
    socket
        .send(Message::text(text))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let read = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(answer))) => return Ok(answer.to_string()),
                Some(Ok(Message::Binary(answer))) => {
                    return Ok(String::from_utf8_lossy(&answer).into_owned())
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("receive: {e}")),
                None => return Err("the server closed the connection".to_owned()),
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// Sequential round trips on one connection: at most `count`, for at most `window`.
pub async fn latencies(
    url: &str,
    message: fn(usize) -> String,
    count: usize,
    window: Duration,
) -> Result<Vec<Duration>> {
    let mut socket = connect(url).await?;
    // Warm up: the first exchanges load handlers and fill caches.
    for i in 0..20 {
        round_trip(&mut socket, message(i)).await?;
    }
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        if started.elapsed() > window {
            break;
        }
        let sent = Instant::now();
        round_trip(&mut socket, message(i)).await?;
        samples.push(sent.elapsed());
    }
    let _ = socket.close(None).await;
    Ok(samples)
}

/// `clients` connections each doing sequential round trips for `window`: the round trips
/// completed per second, all clients together. Each connection makes one round trip
/// first, all at once and not counted, so the window measures a warm server.
pub async fn throughput(
    url: &str,
    message: fn(usize) -> String,
    clients: usize,
    window: Duration,
) -> Result<f64> {
    let mut sockets = connect_many(url, clients, 20).await?;
    futures::future::try_join_all(
        sockets
            .iter_mut()
            .map(|socket| round_trip_within(socket, message(0), WARM_UP_TIMEOUT)),
    )
    .await?;
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    round_trip(&mut socket, message(done as usize)).await?;
                    done += 1;
                }
                let _ = socket.close(None).await;
                Ok::<u64, String>(done)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The median, 99th percentile and count of `samples`, in microseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        if samples.is_empty() {
            return f64::NAN;
        }
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1e6
    };
    (at(0.5), at(0.99))
}
