//! The churn soak on the LocalGateway over `MemoryStore` (see `support/soak.rs`): waves
//! of real WebSocket clients connect, broadcast numbered messages to their rooms and
//! leave by close frame, FIN or RST; every message reaches every live roommate exactly
//! once (a sender's messages are handled concurrently, as on AWS, so they may overtake
//! each other), the store ends empty, and RSS comes back to the warm-up's.
//!
//! Bounded here (500 clients a wave, nine waves or more, about five seconds); the long
//! run is in RELIABILITY.md: `WSGW_SOAK_CLIENTS=2000 WSGW_SOAK_SECONDS=60 cargo test -p
//! wsgw-memory --features gateway --test soak -- --nocapture`.
#![cfg(feature = "gateway")]

#[path = "support/soak.rs"]
mod soak;

use std::sync::Arc;

use wsgw_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread")]
async fn churn_soak_on_memory_delivers_every_message_once_and_leaves_nothing_behind() {
    let config = soak::SoakConfig::from_env(500, 9, 5, 4);
    let store = Arc::new(MemoryStore::new());

    let report = soak::run_soak(store.clone(), &config).await;

    assert!(store.is_empty());
    assert!(report.waves >= config.waves);
}
