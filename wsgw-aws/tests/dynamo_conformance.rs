//! `DynamoStore` and `DynamoHistory` against a DynamoDB-compatible server: the whole
//! wsgw-core conformance suite, then what is particular to DynamoDB (TTLs, the group
//! index, filtered pages, malformed items, error messages).
//!
//! Each test is `#[ignore]`d (a plain `cargo test` lists it as ignored and why) and runs
//! with `-- --include-ignored` against the server named by `AWS_ENDPOINT_URL_DYNAMODB`;
//! `cargo xtask test` installs and starts moto's server and sets it. Each test creates
//! its own tables, so tests run in parallel on one server.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeDelta, Utc};
use serde_json::json;
use wsgw_aws::dynamo::{local, schema, DynamoHistory, DynamoStore};
use wsgw_core::conformance::{self, unique};
use wsgw_core::{
    AttributeUpdate, Connection, ConnectionId, ConnectionStore, Error, HistoryQuery, HistoryRecord,
    HistoryStore, Order, PageRequest,
};

fn endpoint() -> String {
    local::endpoint_from_env().unwrap_or_else(|missing| panic!("{missing}"))
}

/// A store on a new table of its own.
async fn store() -> DynamoStore {
    let store = DynamoStore::builder()
        .with_endpoint(endpoint())
        .with_table(unique("wsgw-connections"))
        .build()
        .await
        .expect("the store builds");
    store.create_table().await.expect("the table is created");
    store
}

/// A history on a new table of its own.
async fn history() -> DynamoHistory {
    let history = DynamoHistory::builder()
        .with_endpoint(endpoint())
        .with_table(unique("wsgw-history"))
        .build()
        .await
        .expect("the history builds");
    history.create_table().await.expect("the table is created");
    history
}

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        #[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
        async fn $name() {
            conformance::$name(&store().await).await;
        }
    )*};
}

store_tests!(
    put_get_delete,
    update_attributes,
    typed_attributes,
    groups,
    group_pagination,
    list_all_pagination,
    rejects_foreign_tokens
);

macro_rules! history_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        #[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
        async fn $name() {
            conformance::$name(&history().await).await;
        }
    )*};
}

history_tests!(
    history_ordering,
    history_range,
    history_pagination,
    history_ttl,
    history_replace
);

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (schema::PK.to_owned(), string(pk)),
        (schema::SK.to_owned(), string(sk)),
    ])
}

async fn raw_item(
    store: &DynamoStore,
    pk: impl Into<String>,
    sk: impl Into<String>,
) -> HashMap<String, AttributeValue> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .set_key(Some(key(pk, sk)))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
        .expect("the item exists")
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{name}` is a number in {item:?}"))
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn connection_and_membership_items_carry_a_ttl_two_hours_ten_minutes_ahead() {
    let store = store().await;
    let id = ConnectionId::new(unique("ttl"));
    store
        .put(Connection::new(id.clone()).with_group("room:ttl"))
        .await
        .expect("put");

    let expected = Utc::now().timestamp() + 2 * 3600 + 10 * 60;
    let connection = raw_item(&store, format!("conn#{id}"), "conn").await;
    let ttl = number(&connection, schema::TTL);
    assert!(
        (ttl - expected).abs() <= 60,
        "ttl {ttl} is not about now + 2h10m ({expected})"
    );
    let membership = raw_item(&store, format!("conn#{id}"), "group#room:ttl").await;
    assert_eq!(
        number(&membership, schema::TTL),
        ttl,
        "same ttl on the membership"
    );
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn the_connection_ttl_is_configurable() {
    let store = DynamoStore::builder()
        .with_endpoint(endpoint())
        .with_table(unique("wsgw-connections"))
        .with_connection_ttl(Duration::from_secs(600))
        .build()
        .await
        .expect("builds");
    store.create_table().await.expect("creates");
    let id = ConnectionId::new(unique("short"));
    store.put(Connection::new(id.clone())).await.expect("put");

    let ttl = number(
        &raw_item(&store, format!("conn#{id}"), "conn").await,
        schema::TTL,
    );
    assert!(
        (ttl - (Utc::now().timestamp() + 600)).abs() <= 60,
        "ttl {ttl}"
    );
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn create_table_is_idempotent_and_enables_ttl_and_the_group_index() {
    let store = store().await;
    store.create_table().await.expect("creating again is fine");

    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .expect("describe_time_to_live");
    let description = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(description.attribute_name(), Some(schema::TTL));
    assert_eq!(
        description.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    let table = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .expect("describe_table");
    let indexes: Vec<&str> = table
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .filter_map(|index| index.index_name())
        .collect();
    assert_eq!(indexes, vec![schema::GROUP_INDEX]);
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn membership_items_are_found_through_the_group_index() {
    let store = store().await;
    let id = ConnectionId::new(unique("member"));
    let group = unique("room");
    store
        .put(Connection::new(id.clone()).with_group(&group))
        .await
        .expect("put");

    let found = store
        .client()
        .query()
        .table_name(store.table())
        .index_name(schema::GROUP_INDEX)
        .key_condition_expression("gpk = :g")
        .expression_attribute_values(":g", string(format!("group#{group}")))
        .send()
        .await
        .expect("query the index");
    let items = found.items();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].get("gsk"), Some(&string(id.as_str())));
    assert_eq!(items[0].get("pk"), Some(&string(format!("conn#{id}"))));
    assert_eq!(items[0].get("sk"), Some(&string(format!("group#{group}"))));

    store.remove_from_group(&id, &group).await.expect("remove");
    let after = store
        .client()
        .query()
        .table_name(store.table())
        .index_name(schema::GROUP_INDEX)
        .key_condition_expression("gpk = :g")
        .expression_attribute_values(":g", string(format!("group#{group}")))
        .send()
        .await
        .expect("query the index");
    assert!(after.items().is_empty(), "membership item deleted");
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn attributes_round_trip_exactly() {
    let store = store().await;
    let id = ConnectionId::new(unique("exact"));
    let tricky = json!({
        "null": null,
        "nested": {"deeper": {"list": [1, -2, 3.5, null, "x", {"k": []}]}},
        "big": u64::MAX,
        "small": i64::MIN,
        "floats": [0.1, 1e-300, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0],
        "text": "ünïcödé \"quoted\" \\ ✓",
        "empty": {},
    });
    let mut connection = Connection::new(id.clone());
    for (name, value) in tricky.as_object().expect("an object") {
        connection = connection.with_attribute(name.clone(), value.clone());
    }
    store.put(connection.clone()).await.expect("put");

    let stored = store.get(&id).await.expect("get").expect("stored");
    assert_eq!(stored.attributes, connection.attributes);
    let updated = store
        .update_attributes(&id, AttributeUpdate::new().set("more", json!({"a": null})))
        .await
        .expect("update");
    assert_eq!(updated.attributes["floats"], tricky["floats"]);
    assert_eq!(updated.attributes["more"], json!({"a": null}));
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn a_connection_with_more_groups_than_a_transaction_holds_is_written_in_batches() {
    let store = store().await;
    let id = ConnectionId::new(unique("many"));
    let groups: Vec<String> = (0..120).map(|n| format!("g{n:03}")).collect();
    let mut connection = Connection::new(id.clone());
    for group in &groups {
        connection = connection.with_group(group);
    }
    store.put(connection).await.expect("put with 120 groups");
    let stored = store.get(&id).await.expect("get").expect("stored");
    assert_eq!(stored.groups.len(), 120);
    let listed = store
        .list_group("g119", PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(listed.items, vec![id.clone()]);

    store
        .put(Connection::new(id.clone()).with_group("g000"))
        .await
        .expect("re-put with one group");
    let gone = store
        .list_group("g119", PageRequest::first(10))
        .await
        .expect("list");
    assert!(gone.items.is_empty(), "stale memberships removed");

    store.delete(&id).await.expect("delete");
    let leftovers = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", string(format!("conn#{id}")))
        .send()
        .await
        .expect("query");
    assert!(leftovers.items().is_empty(), "delete removed every item");
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn a_history_page_filled_across_expired_records_still_has_limit_records() {
    let history = history().await;
    let partition = unique("sparse");
    let base = Utc::now() - TimeDelta::minutes(5);
    let expired_at = Utc::now() - TimeDelta::seconds(1);
    for n in 0..40i64 {
        let record = HistoryRecord::new(
            &partition,
            base + TimeDelta::milliseconds(n),
            format!("r{n:02}"),
            json!({ "n": n }),
        );
        // Only every eighth record is live: 0, 8, 16, 24, 32.
        let record = if n % 8 == 0 {
            record
        } else {
            record.expiring_at(expired_at)
        };
        history.append(record).await.expect("append");
    }

    let first = history
        .query(HistoryQuery::new(&partition).limit(3))
        .await
        .expect("page 1");
    let numbers = |page: &wsgw_core::Page<HistoryRecord>| -> Vec<i64> {
        page.items
            .iter()
            .map(|r| r.data["n"].as_i64().unwrap_or(-1))
            .collect()
    };
    assert_eq!(
        numbers(&first),
        vec![0, 8, 16],
        "a full page despite the filter"
    );
    let second = history
        .query(
            HistoryQuery::new(&partition)
                .limit(3)
                .after(first.next.clone()),
        )
        .await
        .expect("page 2");
    assert_eq!(numbers(&second), vec![24, 32]);
    assert_eq!(second.next, None, "the last page has no token");

    let newest = history
        .query(
            HistoryQuery::new(&partition)
                .order(Order::NewestFirst)
                .limit(2),
        )
        .await
        .expect("newest");
    assert_eq!(numbers(&newest), vec![32, 24]);
    assert!(newest.next.is_some());
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn a_history_item_keeps_its_expiry_in_milliseconds_and_its_ttl_in_seconds() {
    let history = history().await;
    let partition = unique("expiry");
    let at = Utc::now() - TimeDelta::seconds(10);
    let expires = Utc::now() + TimeDelta::days(7);
    history
        .append(HistoryRecord::new(&partition, at, "m1", json!("hi")).expiring_at(expires))
        .await
        .expect("append");
    let item = history
        .client()
        .get_item()
        .table_name(history.table())
        .set_key(Some(key(
            partition.clone(),
            format!("{:016}#m1", at.timestamp_millis()),
        )))
        .send()
        .await
        .expect("get_item")
        .item
        .expect("sort key is zero-padded millis # id");
    assert_eq!(number(&item, schema::TTL), expires.timestamp());
    assert_eq!(
        number(&item, schema::EXPIRES_AT),
        expires.timestamp_millis()
    );
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn a_token_from_one_history_partition_is_refused_for_another() {
    let history = history().await;
    let partition = unique("p");
    for n in 0..3 {
        history
            .append(HistoryRecord::new(
                &partition,
                Utc::now(),
                format!("{n}"),
                json!(n),
            ))
            .await
            .expect("append");
    }
    let page = history
        .query(HistoryQuery::new(&partition).limit(1))
        .await
        .expect("page");
    let other = history
        .query(HistoryQuery::new(unique("q")).after(page.next.clone()))
        .await;
    assert!(
        matches!(other, Err(Error::InvalidToken { .. })),
        "{other:?}"
    );
    let reversed = history
        .query(
            HistoryQuery::new(&partition)
                .order(Order::NewestFirst)
                .after(page.next),
        )
        .await;
    assert!(
        matches!(reversed, Err(Error::InvalidToken { .. })),
        "{reversed:?}"
    );
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn a_malformed_connection_item_is_a_backend_error_naming_table_and_key() {
    let store = store().await;
    let id = unique("broken");
    let mut item = key(format!("conn#{id}"), "conn");
    item.insert("connected_at".into(), string("yesterday"));
    item.insert("last_active_at".into(), AttributeValue::N("1".into()));
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(item))
        .send()
        .await
        .expect("put_item");

    let result = store.get(&ConnectionId::new(&id)).await;
    match result {
        Err(Error::Backend {
            backend, message, ..
        }) => {
            assert_eq!(backend, "dynamodb");
            assert!(
                message.contains(store.table()),
                "names the table: {message}"
            );
            assert!(
                message.contains(&format!("conn#{id}")),
                "names the key: {message}"
            );
            assert!(
                message.contains("connected_at"),
                "names the attribute: {message}"
            );
        }
        other => panic!("a malformed item must be a Backend error, got {other:?}"),
    }
    let listed = store.list_all(PageRequest::first(10)).await;
    assert!(matches!(listed, Err(Error::Backend { .. })), "{listed:?}");
    let deleted = store.delete(&ConnectionId::new(&id)).await;
    assert!(matches!(deleted, Err(Error::Backend { .. })), "{deleted:?}");
    assert_eq!(
        store
            .delete(&ConnectionId::new(&id))
            .await
            .expect("gone now"),
        None,
        "a malformed record can still be deleted"
    );
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn a_malformed_history_item_is_a_backend_error_naming_table_and_key() {
    let history = history().await;
    let partition = unique("broken");
    let mut item = key(partition.clone(), "not-a-time#x");
    item.insert("data".into(), string("{}"));
    history
        .client()
        .put_item()
        .table_name(history.table())
        .set_item(Some(item))
        .send()
        .await
        .expect("put_item");

    match history.query(HistoryQuery::new(&partition)).await {
        Err(Error::Backend { message, .. }) => {
            assert!(
                message.contains(history.table()),
                "names the table: {message}"
            );
            assert!(message.contains("not-a-time#x"), "names the key: {message}");
        }
        other => panic!("a malformed item must be a Backend error, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn errors_name_the_operation_table_and_key() {
    let missing = DynamoStore::builder()
        .with_endpoint(endpoint())
        .with_table(unique("no-such-table"))
        .build()
        .await
        .expect("builds without touching the table");
    let id = ConnectionId::new("abc=");
    match missing.get(&id).await {
        Err(Error::Backend {
            backend,
            message,
            source,
        }) => {
            assert_eq!(backend, "dynamodb");
            assert!(message.starts_with("get on table "), "{message}");
            assert!(
                message.contains(missing.table()),
                "names the table: {message}"
            );
            assert!(message.contains("conn#abc="), "names the key: {message}");
            assert!(source.is_some(), "keeps the SDK error as source");
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }

    let history = DynamoHistory::builder()
        .with_endpoint(endpoint())
        .with_table(unique("no-such-history"))
        .build()
        .await
        .expect("builds");
    let appended = history
        .append(HistoryRecord::new("p", Utc::now(), "x", json!(1)))
        .await;
    assert!(
        matches!(&appended, Err(Error::Backend { message, .. }) if message.contains(history.table())),
        "{appended:?}"
    );
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn add_to_group_of_an_unknown_connection_writes_nothing() {
    let store = store().await;
    let group = unique("room");
    let result = store
        .add_to_group(&ConnectionId::new(unique("nobody")), &group)
        .await;
    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
    let members = store
        .list_group(&group, PageRequest::first(10))
        .await
        .expect("list");
    assert!(members.items.is_empty(), "no stray membership item");
}

#[tokio::test]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn an_attribute_update_fails_its_condition_with_precondition_and_changes_nothing() {
    let store = store().await;
    let id = ConnectionId::new(unique("cas"));
    store
        .put(Connection::new(id.clone()).with_attribute("interval_ms", 1000))
        .await
        .expect("put");
    let result = store
        .update_attributes(
            &id,
            AttributeUpdate::new()
                .set("interval_ms", 50)
                .remove("other")
                .expect_value("interval_ms", 500),
        )
        .await;
    match result {
        Err(Error::Precondition { message }) => {
            assert!(message.contains(id.as_str()), "{message}");
            assert!(message.contains("interval_ms"), "{message}");
        }
        other => panic!("expected Precondition, got {other:?}"),
    }
    let stored = store.get(&id).await.expect("get").expect("stored");
    assert_eq!(stored.attributes["interval_ms"], json!(1000));
}
