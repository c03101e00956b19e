//! Record ids and timestamps for what an app keeps in history: ids that sort by time
//! (and, within a millisecond, by the order one process made them), and RFC 3339 times
//! as clients read them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};

/// `at` as RFC 3339 in UTC with milliseconds: `2026-11-22T09:15:02.113Z`.
///
/// ```
/// let at = chrono::DateTime::from_timestamp_millis(1_795_336_800_113).unwrap();
/// assert_eq!(wsgw_core::ids::rfc3339_millis(at), "2026-11-22T08:40:00.113Z");
/// ```
pub fn rfc3339_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `bytes` random bytes as lower-case hex (`2 * bytes` characters), from the operating
/// system's generator.
///
/// ```
/// let hex = wsgw_core::ids::random_hex(6);
/// assert_eq!(hex.len(), 12);
/// assert!(hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
/// ```
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

/// Per-process order of ids: `(latest millisecond seen, last sequence number)`.
static SEQUENCE: Mutex<(i64, u32)> = Mutex::new((i64::MIN, 0));

/// Sequence numbers have 6 hex digits.
const SEQUENCE_MASK: u32 = 0x00ff_ffff;

/// The next sequence number for an id at `millis`. It only grows, whatever the
/// millisecond: requests of one process are handled concurrently and stamped with their
/// own times, so ids of a millisecond can be made after ids of a later one, and must
/// still sort after the earlier ids of their own millisecond. It starts over at 0 only
/// at a new latest millisecond once past half its range, far from where it would wrap.
fn next_sequence(millis: i64) -> u32 {
    let mut last = SEQUENCE.lock().unwrap_or_else(PoisonError::into_inner);
    if millis > last.0 && last.1 > SEQUENCE_MASK / 2 {
        *last = (millis, 0);
    } else {
        last.0 = last.0.max(millis);
        last.1 = last.1.wrapping_add(1) & SEQUENCE_MASK;
    }
    last.1
}

/// A unique id that sorts by time: the epoch milliseconds of `at` (13 digits), `-`, a
/// per-process sequence (6 hex digits) and 12 random hex digits.
/// History records are ordered by `(time, id)`, so records one process makes in the
/// same millisecond keep the order in which it made them.
///
/// ```
/// let at = chrono::DateTime::from_timestamp_millis(1_795_336_800_000).unwrap();
/// let first = wsgw_core::ids::time_ordered_id(at);
/// let second = wsgw_core::ids::time_ordered_id(at);
/// assert!(first.starts_with("1795336800000-"));
/// assert_eq!(first.len(), 13 + 1 + 6 + 12);
/// assert!(first < second);
/// ```
pub fn time_ordered_id(at: DateTime<Utc>) -> String {
    let millis = at.timestamp_millis().max(0);
    format!(
        "{millis:013}-{:06x}{}",
        next_sequence(millis),
        random_hex(6)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_one_millisecond_sort_in_the_order_they_were_made_and_later_ones_after() {
        let at = DateTime::from_timestamp_millis(1_795_336_800_000).expect("a time");
        let ids: Vec<String> = (0..1000).map(|_| time_ordered_id(at)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        let later = time_ordered_id(at + chrono::Duration::milliseconds(1));
        assert!(ids.iter().all(|id| *id < later));
    }

    #[test]
    fn ids_of_one_millisecond_keep_their_order_when_ids_of_a_later_one_come_between() {
        let at = DateTime::from_timestamp_millis(1_795_336_900_000).expect("a time");
        let mut ids = Vec::new();
        for round in 1..=50 {
            ids.extend((0..3).map(|_| time_ordered_id(at)));
            // A request stamped later, handled in between by the same process.
            let _ = time_ordered_id(at + chrono::Duration::milliseconds(round));
        }
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }

    #[test]
    fn random_ids_differ() {
        let at = DateTime::from_timestamp_millis(0).expect("a time");
        assert_ne!(random_hex(6), random_hex(6));
        assert_ne!(time_ordered_id(at)[20..], time_ordered_id(at)[20..]);
    }
}
