//! Ids shaped like API Gateway's (`L0SM9cOFvHcCIhw=`).

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use wsgw_core::ConnectionId;

/// 16 characters of URL-safe base64 over 11 random bytes, shaped like API Gateway's ids
/// and safe in a `@connections/{id}` path.
pub fn random_id() -> String {
    let mut bytes = [0u8; 11];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness (a very unusual sandbox): fall back to time and a counter, which
        // is still unique within this process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes()[..3]);
    }
    URL_SAFE.encode(bytes)
}

/// A fresh connection id.
pub fn new_connection_id() -> ConnectionId {
    ConnectionId::from(random_id())
}
