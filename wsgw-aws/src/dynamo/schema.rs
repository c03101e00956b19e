//! Attribute names and key formats of the tables (see the crate README, "DynamoDB table
//! design").

use std::time::Duration;

/// Partition key of both tables (string).
pub const PK: &str = "pk";
/// Sort key of both tables (string).
pub const SK: &str = "sk";
/// Partition key of the connections table's group index: `group#<group>`.
pub const GPK: &str = "gpk";
/// Sort key of the connections table's group index: the connection id.
pub const GSK: &str = "gsk";
/// The global secondary index listing a group's members (partition [`GPK`], sort
/// [`GSK`], keys only).
pub const GROUP_INDEX: &str = "by-group";
/// The TTL attribute of both tables (epoch seconds); TTL must be enabled on it.
pub const TTL: &str = "ttl";

/// Sort key of a connection item (its partition key is `conn#<id>`).
pub const CONNECTION_SK: &str = "conn";
/// Prefix of connection partition keys.
pub const CONNECTION_PREFIX: &str = "conn#";
/// Prefix of membership sort keys and of [`GPK`] values.
pub const GROUP_PREFIX: &str = "group#";

/// Connection item: when it opened (epoch milliseconds).
pub const CONNECTED_AT: &str = "connected_at";
/// Connection item: last activity (epoch milliseconds).
pub const LAST_ACTIVE_AT: &str = "last_active_at";
/// Connection item: the client's address.
pub const SOURCE_IP: &str = "source_ip";
/// Connection item: the client's user agent.
pub const USER_AGENT: &str = "user_agent";
/// Connection item: its groups (a string set, absent when empty).
pub const GROUPS: &str = "groups";
/// Connection item: its attributes (a JSON object, as a string).
pub const ATTRIBUTES: &str = "attributes";

/// History item: the record's data (JSON, as a string).
pub const DATA: &str = "data";
/// History item: when the record expires (epoch milliseconds; [`TTL`] holds the same
/// instant in seconds).
pub const EXPIRES_AT: &str = "expires_at";

/// How long a connection item lives by default: API Gateway's 2 hour maximum connection
/// duration plus a 10 minute margin, since `$disconnect` is best effort.
pub const DEFAULT_CONNECTION_TTL: Duration = Duration::from_secs(2 * 3600 + 10 * 60);

/// `conn#<id>`
pub(crate) fn connection_pk(id: &str) -> String {
    format!("{CONNECTION_PREFIX}{id}")
}

/// `group#<group>`
pub(crate) fn group_key(group: &str) -> String {
    format!("{GROUP_PREFIX}{group}")
}

/// Epoch milliseconds as a fixed-width string whose lexical order is time order:
/// 16 zero-padded digits from 1970 on, `-` and the 16 digits of `ms + 10^16` before
/// (every instant `chrono` can hold fits).
pub(crate) fn time_key(ms: i64) -> String {
    const OFFSET: i64 = 10_000_000_000_000_000;
    if ms >= 0 {
        format!("{ms:016}")
    } else {
        format!("-{:016}", ms.saturating_add(OFFSET))
    }
}

/// The inverse of [`time_key`].
pub(crate) fn parse_time_key(key: &str) -> Option<i64> {
    const OFFSET: i64 = 10_000_000_000_000_000;
    let all_digits =
        |digits: &str| digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit());
    match key.strip_prefix('-') {
        Some(digits) if all_digits(digits) => digits.parse::<i64>().ok().map(|n| n - OFFSET),
        None if all_digits(key) => key.parse().ok(),
        _ => None,
    }
}

/// `<time_key>#<id>`: the history sort key.
pub(crate) fn history_sk(ms: i64, id: &str) -> String {
    format!("{}#{id}", time_key(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_the_times_they_encode() {
        let times = [
            chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_millis(),
            -86_400_000,
            -1,
            0,
            1,
            1_700_000_000_000,
            chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis(),
        ];
        let keys: Vec<String> = times.iter().map(|ms| time_key(*ms)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (ms, key) in times.iter().zip(&keys) {
            assert_eq!(parse_time_key(key), Some(*ms), "{key}");
        }
    }

    #[test]
    fn a_bare_time_key_sorts_before_every_record_of_that_millisecond_and_after_the_previous() {
        assert!(time_key(5) < history_sk(5, ""));
        assert!(history_sk(4, "~~~~") < time_key(5));
        assert!(history_sk(-2, "~") < time_key(-1));
    }

    #[test]
    fn malformed_time_keys_are_refused() {
        for key in ["", "12", "-12", "000000000000000x", "+000000000000001"] {
            assert_eq!(parse_time_key(key), None, "{key}");
        }
    }
}
