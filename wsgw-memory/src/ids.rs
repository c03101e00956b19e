//! Ids shaped like API Gateway's (`L0SM9cOFvHcCIhw=`).

use std::cell::RefCell;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use wsgw_core::ConnectionId;

thread_local! {
    /// A ChaCha12 generator per thread, seeded from the OS once: a message id per routed
    /// message would otherwise cost a `getrandom` system call each.
    static IDS: RefCell<ChaCha12Rng> = RefCell::new(seeded());
}

fn seeded() -> ChaCha12Rng {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        // No OS randomness (a very unusual sandbox): time, a counter and the thread, which
        // still keep ids unique within this process.
        use std::hash::{Hash, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEEDED: AtomicU64 = AtomicU64::new(0);
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let mut thread = std::collections::hash_map::DefaultHasher::new();
        std::thread::current().id().hash(&mut thread);
        seed[..8].copy_from_slice(&nanos.to_le_bytes());
        seed[8..16].copy_from_slice(&SEEDED.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        seed[16..24].copy_from_slice(&thread.finish().to_le_bytes());
    }
    ChaCha12Rng::from_seed(seed)
}

/// 16 characters of URL-safe base64 over 11 random bytes, shaped like API Gateway's ids
/// and safe in a `@connections/{id}` path.
///
/// ```
/// let id = wsgw_memory::random_id();
/// assert_eq!(id.len(), 16);
/// assert_ne!(id, wsgw_memory::random_id());
/// ```
pub fn random_id() -> String {
    let mut bytes = [0u8; 11];
    IDS.with(|ids| ids.borrow_mut().fill_bytes(&mut bytes));
    URL_SAFE.encode(bytes)
}

/// An API id shaped like API Gateway's (`requestContext.apiId`): ten lower-case letters
/// and digits.
///
/// ```
/// let id = wsgw_memory::new_api_id();
/// assert_eq!(id.len(), 10);
/// assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
/// ```
pub fn new_api_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 10];
    IDS.with(|ids| ids.borrow_mut().fill_bytes(&mut bytes));
    bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

/// A fresh connection id.
pub fn new_connection_id() -> ConnectionId {
    ConnectionId::from(random_id())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_url_safe_and_distinct_across_threads() {
        let ids: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..1_000).map(|_| random_id()).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_default())
                .collect()
        });
        assert_eq!(ids.len(), 4_000);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 4_000);
        assert!(ids.iter().all(|id| id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')));
    }
}
