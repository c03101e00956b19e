//! Churn on `DynamoStore` against a DynamoDB-compatible server (moto's in `cargo xtask
//! test`): the LocalGateway soak of wsgw-memory (`wsgw-memory/tests/support/soak.rs`)
//! with connections and rooms kept in DynamoDB, and a TCP reset cleaning its records.
//!
//! Bounded here (40 clients a wave, nine waves); the long run (2,250 connections in
//! waves of 250: moto copies the whole table on every transaction, so bigger waves
//! mostly measure moto) is in RELIABILITY.md:
//! `WSGW_SOAK_CLIENTS=250 WSGW_SOAK_SECONDS=60 WSGW_SOAK_MESSAGES=2
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:5000 cargo test -p wsgw-aws --test
//! churn_dynamodb churn -- --include-ignored --nocapture`.

#[path = "../../wsgw-memory/tests/support/soak.rs"]
mod soak;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Select;
use wsgw_aws::dynamo::{local, DynamoStore};
use wsgw_core::conformance::unique;
use wsgw_core::{AttributeUpdate, Connection, ConnectionId, ConnectionStore, Page, PageRequest};

fn endpoint() -> String {
    local::endpoint_from_env().unwrap_or_else(|missing| panic!("{missing}"))
}

async fn store() -> Arc<DynamoStore> {
    let store = DynamoStore::builder()
        .with_endpoint(endpoint())
        .with_table(unique("wsgw-churn"))
        .build()
        .await
        .expect("the store builds");
    store.create_table().await.expect("the table is created");
    Arc::new(store)
}

/// Every item in the table, connections and memberships alike (a scan: tests only).
async fn items_in_table(store: &DynamoStore) -> i32 {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table())
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scans");
        count += page.count();
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return count,
        }
    }
}

/// A store whose writes reach the server one at a time, and reads [`READS`] at a time.
///
/// Only for moto: its `TransactWriteItems` deep-copies the table as a rollback backup
/// while other request threads write to it, failing with HTTP 500 ("dictionary changed
/// size during iteration") often enough under a few hundred concurrent connects to
/// exhaust the SDK's retries (and a rollback would restore that copy over other
/// writers' items); and its single-process server stops accepting connections in time
/// (the SDK's 3.1 s connect timeout) under hundreds of concurrent group queries.
/// DynamoDB itself needs no such thing.
struct MotoPacing {
    store: Arc<DynamoStore>,
    writing: tokio::sync::Mutex<()>,
    reading: tokio::sync::Semaphore,
}

/// Reads in flight at once at moto.
const READS: usize = 16;

impl MotoPacing {
    fn new(store: Arc<DynamoStore>) -> Self {
        MotoPacing {
            store,
            writing: tokio::sync::Mutex::new(()),
            reading: tokio::sync::Semaphore::new(READS),
        }
    }
}

#[async_trait]
impl ConnectionStore for MotoPacing {
    async fn put(&self, connection: Connection) -> wsgw_core::Result<()> {
        let _one = self.writing.lock().await;
        self.store.put(connection).await
    }
    async fn get(&self, id: &ConnectionId) -> wsgw_core::Result<Option<Connection>> {
        let _slot = self.reading.acquire().await.expect("never closed");
        self.store.get(id).await
    }
    async fn delete(&self, id: &ConnectionId) -> wsgw_core::Result<Option<Connection>> {
        let _one = self.writing.lock().await;
        self.store.delete(id).await
    }
    async fn update_attributes(
        &self,
        id: &ConnectionId,
        update: AttributeUpdate,
    ) -> wsgw_core::Result<Connection> {
        let _one = self.writing.lock().await;
        self.store.update_attributes(id, update).await
    }
    async fn add_to_group(&self, id: &ConnectionId, group: &str) -> wsgw_core::Result<()> {
        let _one = self.writing.lock().await;
        self.store.add_to_group(id, group).await
    }
    async fn remove_from_group(&self, id: &ConnectionId, group: &str) -> wsgw_core::Result<()> {
        let _one = self.writing.lock().await;
        self.store.remove_from_group(id, group).await
    }
    async fn list_group(
        &self,
        group: &str,
        page: PageRequest,
    ) -> wsgw_core::Result<Page<ConnectionId>> {
        let _slot = self.reading.acquire().await.expect("never closed");
        self.store.list_group(group, page).await
    }
    async fn list_all(&self, page: PageRequest) -> wsgw_core::Result<Page<Connection>> {
        let _slot = self.reading.acquire().await.expect("never closed");
        self.store.list_all(page).await
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn churn_soak_on_dynamodb_delivers_every_message_once_and_leaves_no_item() {
    let config = soak::SoakConfig::from_env(40, 9, 10, 2);
    let store = store().await;

    let report = soak::run_soak(Arc::new(MotoPacing::new(store.clone())), &config).await;

    assert!(report.waves >= config.waves);
    assert_eq!(
        items_in_table(&store).await,
        0,
        "no connection or membership item left"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a DynamoDB-compatible server at AWS_ENDPOINT_URL_DYNAMODB: cargo xtask test starts moto"]
async fn a_tcp_reset_runs_disconnect_with_1006_and_deletes_the_items() {
    let store = store().await;
    let (gateway, state) = soak::soak_gateway(store.clone()).await;
    let (client, _) = tokio_tungstenite::connect_async(format!("{}/?room=r1", gateway.ws_url()))
        .await
        .expect("handshake");
    let members = store
        .list_group("room:r1", PageRequest::first(10))
        .await
        .expect("lists");
    assert_eq!(members.items.len(), 1);
    assert_eq!(items_in_table(&store).await, 2, "connection and membership");

    soak::reset(client);
    state.wait_for_disconnects(1).await;

    assert_eq!(state.disconnect_codes(), [(1006, 1)].into_iter().collect());
    soak::assert_store_empty(&*store, &["room:r1".to_owned()], "after the reset").await;
    assert_eq!(items_in_table(&store).await, 0);
    gateway.shutdown().await.expect("stops");
}
