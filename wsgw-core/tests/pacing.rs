//! `wsgw_core::pacing` on the in-memory store: a receiver is due once per its interval,
//! never when gone, and a clock gone backwards does not silence it.

use serde_json::json;
use wsgw_core::pacing::Pacing;
use wsgw_core::{Connection, ConnectionId, ConnectionStore};

async fn store_with(attributes: serde_json::Value) -> (wsgw_memory::MemoryStore, ConnectionId) {
    let store = wsgw_memory::MemoryStore::new();
    let id = ConnectionId::new("d=");
    let mut connection = Connection::new(id.clone());
    connection.attributes = serde_json::from_value(attributes).expect("attributes");
    store.put(connection).await.expect("stored");
    (store, id)
}

#[tokio::test]
async fn without_an_interval_the_default_one_paces_and_a_gone_receiver_is_never_due() {
    let (store, id) = store_with(json!({})).await;
    let pacing = Pacing::new("interval_ms", "sent:", 2000);
    assert!(pacing
        .claim(&store, &id, "dev", 10_000)
        .await
        .expect("claimed"));
    assert!(!pacing
        .claim(&store, &id, "dev", 11_999)
        .await
        .expect("read"));
    assert!(pacing
        .claim(&store, &id, "dev", 12_000)
        .await
        .expect("claimed"));
    let gone = ConnectionId::new("gone=");
    assert!(!pacing
        .claim(&store, &gone, "dev", 99_000)
        .await
        .expect("read"));
}

#[tokio::test]
async fn a_clock_gone_back_by_more_than_an_interval_does_not_silence_the_receiver() {
    let (store, id) = store_with(json!({"interval_ms": 1000, "sent:dev": 50_000})).await;
    let pacing = Pacing::new("interval_ms", "sent:", 1000);
    assert!(!pacing
        .claim(&store, &id, "dev", 49_500)
        .await
        .expect("read"));
    assert!(pacing
        .claim(&store, &id, "dev", 48_000)
        .await
        .expect("claimed"));
    let record = store.get(&id).await.expect("read").expect("kept");
    assert_eq!(record.attributes["sent:dev"], json!(48_000));
}
