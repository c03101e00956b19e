//! How `DynamoStore` and `DynamoHistory` report DynamoDB's errors, against a loopback
//! server that answers every request with one canned DynamoDB error: throttling is
//! retried by the SDK and then `Throttled`, other errors are `Backend` naming operation,
//! table and key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use wsgw_aws::dynamo::{DynamoHistory, DynamoStore, MAX_ATTEMPTS};
use wsgw_core::{ConnectionId, ConnectionStore, Error, HistoryRecord, HistoryStore};

/// A server answering every request with `status` and a DynamoDB JSON error of type
/// `error_type`; counts the requests.
struct CannedServer {
    endpoint: String,
    requests: Arc<AtomicUsize>,
}

async fn canned(status: u16, error_type: &'static str) -> CannedServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let endpoint = format!("http://{}", listener.local_addr().expect("has an address"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                loop {
                    // Request line and headers, then the body by Content-Length.
                    let mut length = 0usize;
                    let mut line = String::new();
                    let mut first = true;
                    loop {
                        line.clear();
                        match reader.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" && !first {
                            break;
                        }
                        first = false;
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let json = format!(
                        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error_type}","message":"canned {error_type}"}}"#
                    );
                    let response = format!(
                        "HTTP/1.1 {status} Error\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: canned\r\ncontent-length: {}\r\n\r\n{json}",
                        json.len()
                    );
                    if reader
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    CannedServer { endpoint, requests }
}

async fn store_at(endpoint: &str) -> DynamoStore {
    DynamoStore::builder()
        .with_endpoint(endpoint)
        .with_region("us-east-1")
        .with_table("wsgw-connections")
        .build()
        .await
        .expect("builds")
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_reported_as_throttled() {
    for error_type in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ] {
        let server = canned(400, error_type).await;
        let store = store_at(&server.endpoint).await;

        let result = store.get(&ConnectionId::new("abc=")).await;

        match result {
            Err(Error::Throttled { backend, message }) => {
                assert_eq!(backend, "dynamodb");
                assert!(
                    message.contains("wsgw-connections"),
                    "names the table: {message}"
                );
                assert!(message.contains("conn#abc="), "names the key: {message}");
                assert!(message.contains(error_type), "names the error: {message}");
            }
            other => panic!("{error_type} must end as Throttled, got {other:?}"),
        }
        assert_eq!(
            server.requests.load(Ordering::SeqCst),
            MAX_ATTEMPTS as usize,
            "{error_type} is retried up to {MAX_ATTEMPTS} attempts"
        );
    }
}

#[tokio::test]
async fn other_errors_are_backend_errors_naming_operation_table_and_key_without_retries() {
    let server = canned(400, "ValidationException").await;
    let history = DynamoHistory::builder()
        .with_endpoint(&server.endpoint)
        .with_region("us-east-1")
        .with_table("wsgw-history")
        .build()
        .await
        .expect("builds");

    let result = history
        .append(HistoryRecord::new(
            "room:1",
            chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_else(Utc::now),
            "m1",
            serde_json::json!("hi"),
        ))
        .await;

    match result {
        Err(Error::Backend {
            backend,
            message,
            source,
        }) => {
            assert_eq!(backend, "dynamodb");
            assert!(
                message.starts_with(
                    "append on table wsgw-history key pk=room:1, sk=0001700000000123#m1"
                ),
                "{message}"
            );
            assert!(message.contains("ValidationException"), "{message}");
            assert!(source.is_some());
        }
        other => panic!("expected Backend, got {other:?}"),
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn a_builder_without_a_table_says_which_variable_to_set() {
    let result = DynamoStore::builder().build().await;
    assert!(
        matches!(&result, Err(Error::InvalidInput { message }) if message.contains("WSGW_CONNECTIONS_TABLE")),
        "{result:?}"
    );
    let result = DynamoHistory::builder().build().await;
    assert!(
        matches!(&result, Err(Error::InvalidInput { message }) if message.contains("WSGW_HISTORY_TABLE")),
        "{result:?}"
    );
}
