//! The servers under test, each run as a child process of its own (`serve-bare`,
//! `serve-gateway`): it prints one line `READY <ws url> <management endpoint>` and serves
//! until its standard input closes (so it never outlives the benchmark driver).

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use wsgw_memory::gateway::{Limits, LocalGateway};

use crate::Result;

/// Resolves when standard input is closed.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
}

/// A bare tokio-tungstenite echo server: no routing, no store, every text or binary frame
/// written straight back; tungstenite's buffers as small as the LocalGateway's, so the
/// memory rows compare what each server adds to the same socket.
pub async fn bare() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("READY ws://{addr}/ -");
    let accept = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async_with_config(
                    stream,
                    Some(crate::client::small_buffers()),
                )
                .await
                else {
                    return;
                };
                while let Some(Ok(message)) = socket.next().await {
                    let echoed = matches!(message, Message::Text(_) | Message::Binary(_));
                    if matches!(message, Message::Close(_))
                        || (echoed && socket.send(message).await.is_err())
                    {
                        return;
                    }
                }
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = stdin_closed() => {}
    }
    Ok(())
}

/// The LocalGateway with the echo example's router (its handlers answer through the
/// gateway's own sink), its `@connections` answering `management_latency` late, and no
/// cap on connections (the memory benchmark holds 10,000; the default cap is 1,000).
pub async fn gateway(management_latency: std::time::Duration) -> Result<()> {
    let running = LocalGateway::new(echo::router())
        .management_latency(management_latency)
        .limits(Limits::default().max_connections(usize::MAX))
        .bind("127.0.0.1:0".parse().map_err(|_| "address")?)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "READY {} {}",
        running.ws_url(),
        running.management_endpoint()
    );
    stdin_closed().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), running.shutdown()).await;
    Ok(())
}
