//! Message ids and timestamps.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};

/// `at` as RFC 3339 in UTC with milliseconds: `2026-11-22T09:15:02.113Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    if getrandom::fill(&mut buffer).is_err() {
        // No OS randomness (a very unusual sandbox): time and a process-wide counter
        // still make the id unique within this process.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        for (index, byte) in buffer.iter_mut().enumerate() {
            let source = if index % 2 == 0 { nanos } else { count };
            *byte = source.to_le_bytes()[(index / 2) % 8];
        }
    }
    let mut text = String::with_capacity(bytes * 2);
    for byte in buffer {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Per-process order of ids within one millisecond: `(millisecond, sequence)`.
static SEQUENCE: Mutex<(i64, u32)> = Mutex::new((i64::MIN, 0));

/// The next sequence number for an id at `millis`: 0 for the first id of a
/// millisecond, then counting up, so ids made by one process in the same millisecond
/// sort in the order they were made.
fn next_sequence(millis: i64) -> u32 {
    let mut last = SEQUENCE.lock().unwrap_or_else(PoisonError::into_inner);
    if millis > last.0 {
        *last = (millis, 0);
    } else {
        // The same millisecond (or a request stamped earlier than the last one): keep
        // counting, which keeps the order of this process's ids.
        last.1 = last.1.wrapping_add(1) & 0x00ff_ffff;
    }
    last.1
}

/// A unique message id that sorts by time: the epoch milliseconds of `at` (13 digits),
/// `-`, a per-process sequence within the millisecond (6 hex digits) and 12 random hex
/// digits. Records are ordered by `(time, id)`, so messages of the same millisecond keep
/// the order in which they were received.
///
/// ```
/// let at = chrono::DateTime::from_timestamp_millis(1_795_336_800_000).unwrap();
/// let first = chat::new_message_id(at);
/// let second = chat::new_message_id(at);
/// assert!(first.starts_with("1795336800000-"));
/// assert_eq!(first.len(), 13 + 1 + 6 + 12);
/// assert!(first < second);
/// ```
pub fn new_message_id(at: DateTime<Utc>) -> String {
    let millis = at.timestamp_millis().max(0);
    format!(
        "{millis:013}-{:06x}{}",
        next_sequence(millis),
        random_hex(6)
    )
}
