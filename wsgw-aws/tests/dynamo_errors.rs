//! `DynamoStore` and `DynamoHistory` against a loopback server that plays scripted
//! DynamoDB responses: throttling is retried by the SDK and then `Throttled`, other errors
//! are `Backend` naming operation, table and key, and an attribute update that loses a
//! race to another writer reads again and re-checks its conditions. (moto serves requests
//! on threads without locking its tables, so it cannot be trusted to make a race lose.)

use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use wsgw_aws::dynamo::{DynamoHistory, DynamoStore, MAX_ATTEMPTS};
use wsgw_core::{
    AttributeUpdate, ConnectionId, ConnectionStore, Error, HistoryRecord, HistoryStore,
};

/// One request as the server saw it: the `X-Amz-Target` operation and the JSON body.
#[derive(Debug, Clone)]
struct Seen {
    operation: String,
    body: Value,
}

/// A server answering requests with `responses` in order (the last one repeated), each a
/// status and a JSON body; it records the requests.
struct Scripted {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    fn operations(&self) -> Vec<String> {
        self.seen().into_iter().map(|seen| seen.operation).collect()
    }
}

fn error_body(error_type: &str) -> Value {
    json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{error_type}"),
        "message": format!("scripted {error_type}"),
    })
}

async fn scripted(responses: Vec<(u16, Value)>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let endpoint = format!("http://{}", listener.local_addr().expect("has an address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let responses = Arc::new(responses);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let log = log.clone();
            let responses = responses.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                loop {
                    // Request line and headers, then the body by Content-Length.
                    let mut length = 0usize;
                    let mut operation = String::new();
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
                            if name.eq_ignore_ascii_case("x-amz-target") {
                                let target = value.trim();
                                operation = target.rsplit('.').next().unwrap_or(target).to_owned();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let index = {
                        let mut seen = log.lock().expect("not poisoned");
                        seen.push(Seen {
                            operation,
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        });
                        seen.len() - 1
                    };
                    let (status, json) = responses
                        .get(index)
                        .or(responses.last())
                        .cloned()
                        .unwrap_or((500, error_body("InternalServerError")));
                    let json = json.to_string();
                    let response = format!(
                        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: scripted\r\ncontent-length: {}\r\n\r\n{json}",
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
    Scripted { endpoint, seen }
}

/// A connection item as DynamoDB returns it, with these attributes.
fn connection_item(id: &str, attributes: &Value) -> Value {
    json!({
        "pk": {"S": format!("conn#{id}")},
        "sk": {"S": "conn"},
        "connected_at": {"N": "1700000000000"},
        "last_active_at": {"N": "1700000000000"},
        "attributes": {"S": attributes.to_string()},
        "ttl": {"N": "1700007800"},
    })
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
        let server = scripted(vec![(400, error_body(error_type))]).await;
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
            server.seen().len(),
            MAX_ATTEMPTS as usize,
            "{error_type} is retried up to {MAX_ATTEMPTS} attempts"
        );
    }
}

#[tokio::test]
async fn other_errors_are_backend_errors_naming_operation_table_and_key_without_retries() {
    let server = scripted(vec![(400, error_body("ValidationException"))]).await;
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
    assert_eq!(server.operations(), ["PutItem"], "not retried");
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

#[tokio::test]
async fn an_update_that_loses_a_race_reads_again_and_applies_to_the_winners_attributes() {
    let server = scripted(vec![
        (
            200,
            json!({"Item": connection_item("abc=", &json!({"a": 1}))}),
        ),
        (400, error_body("ConditionalCheckFailedException")),
        (
            200,
            json!({"Item": connection_item("abc=", &json!({"a": 1, "b": 2}))}),
        ),
        (
            200,
            json!({"Attributes": connection_item("abc=", &json!({"a": 1, "b": 2, "c": 3}))}),
        ),
    ])
    .await;
    let store = store_at(&server.endpoint).await;

    let updated = store
        .update_attributes(
            &ConnectionId::new("abc="),
            AttributeUpdate::new().set("c", 3),
        )
        .await
        .expect("the second attempt wins");

    assert_eq!(updated.attributes["b"], json!(2));
    assert_eq!(updated.attributes["c"], json!(3));
    assert_eq!(
        server.operations(),
        ["GetItem", "UpdateItem", "GetItem", "UpdateItem"]
    );
    let seen = server.seen();
    let values = |n: usize| seen[n].body["ExpressionAttributeValues"].clone();
    assert_eq!(
        values(1)[":old"]["S"],
        json!(r#"{"a":1}"#),
        "first write expects what was read"
    );
    assert_eq!(values(1)[":new"]["S"], json!(r#"{"a":1,"c":3}"#));
    assert_eq!(
        values(3)[":old"]["S"],
        json!(r#"{"a":1,"b":2}"#),
        "second write expects what was read again"
    );
    assert_eq!(
        values(3)[":new"]["S"],
        json!(r#"{"a":1,"b":2,"c":3}"#),
        "the winner's b is kept"
    );
    assert_eq!(
        seen[0].body["ConsistentRead"],
        json!(true),
        "reads are consistent"
    );
    assert_eq!(
        seen[1].body["ConditionExpression"],
        json!("attribute_exists(#pk) AND #attributes = :old"),
        "the write is conditional on the attributes read"
    );
}

#[tokio::test]
async fn an_update_whose_condition_no_longer_holds_after_a_lost_race_is_a_precondition() {
    let server = scripted(vec![
        (200, json!({"Item": connection_item("abc=", &json!({}))})),
        (400, error_body("ConditionalCheckFailedException")),
        (
            200,
            json!({"Item": connection_item("abc=", &json!({"winner": 1}))}),
        ),
    ])
    .await;
    let store = store_at(&server.endpoint).await;

    let result = store
        .update_attributes(
            &ConnectionId::new("abc="),
            AttributeUpdate::new()
                .set("winner", 2)
                .expect_absent("winner"),
        )
        .await;

    assert!(
        matches!(result, Err(Error::Precondition { .. })),
        "{result:?}"
    );
    assert_eq!(
        server.operations(),
        ["GetItem", "UpdateItem", "GetItem"],
        "nothing written"
    );
}

#[tokio::test]
async fn an_update_of_a_connection_deleted_during_the_race_is_not_found() {
    let server = scripted(vec![
        (200, json!({"Item": connection_item("abc=", &json!({}))})),
        (400, error_body("ConditionalCheckFailedException")),
        (200, json!({})),
    ])
    .await;
    let store = store_at(&server.endpoint).await;

    let result = store
        .update_attributes(
            &ConnectionId::new("abc="),
            AttributeUpdate::new().set("a", 1),
        )
        .await;

    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
}

#[tokio::test]
async fn an_update_that_keeps_losing_races_gives_up_as_throttled() {
    let mut responses = Vec::new();
    for n in 0..10 {
        responses.push((
            200,
            json!({"Item": connection_item("abc=", &json!({"n": n}))}),
        ));
        responses.push((400, error_body("ConditionalCheckFailedException")));
    }
    responses.push((500, error_body("InternalServerError")));
    let server = scripted(responses).await;
    let store = store_at(&server.endpoint).await;

    let result = store
        .update_attributes(
            &ConnectionId::new("abc="),
            AttributeUpdate::new().set("a", 1),
        )
        .await;

    assert!(
        matches!(&result, Err(Error::Throttled { message, .. }) if message.contains("conn#abc=")),
        "{result:?}"
    );
    assert_eq!(server.seen().len(), 20, "ten read-and-write attempts");
}
