//! Reading attributes of items without trusting their shape, and collecting pages.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use wsgw_core::{PageToken, Result};

use super::errors::{self, Target};
use super::token::{self, Key};

/// One DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute, `None` when absent.
pub(crate) fn string<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value)),
        Some(other) => Err(format!("attribute `{name}` is not a string: {other:?}")),
    }
}

/// A string attribute that must be present.
pub(crate) fn required_string<'a>(item: &'a Item, name: &str) -> Result<&'a str, String> {
    string(item, name)?.ok_or_else(|| format!("attribute `{name}` is missing"))
}

/// A number attribute holding an integer, `None` when absent.
pub(crate) fn integer(item: &Item, name: &str) -> Result<Option<i64>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(value)) => value
            .parse()
            .map(Some)
            .map_err(|_| format!("attribute `{name}` is not an integer: {value:?}")),
        Some(other) => Err(format!("attribute `{name}` is not a number: {other:?}")),
    }
}

/// An instant stored as epoch milliseconds, `None` when absent.
pub(crate) fn millis(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    integer(item, name)?
        .map(|ms| {
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| format!("attribute `{name}` is out of range: {ms}"))
        })
        .transpose()
}

/// An instant stored as epoch milliseconds that must be present.
pub(crate) fn required_millis(item: &Item, name: &str) -> Result<DateTime<Utc>, String> {
    millis(item, name)?.ok_or_else(|| format!("attribute `{name}` is missing"))
}

/// A string set (or a list of strings); empty when absent.
pub(crate) fn string_set(item: &Item, name: &str) -> Result<BTreeSet<String>, String> {
    match item.get(name) {
        None => Ok(BTreeSet::new()),
        Some(AttributeValue::Ss(values)) => Ok(values.iter().cloned().collect()),
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|value| {
                value
                    .as_s()
                    .cloned()
                    .map_err(|_| format!("attribute `{name}` holds a non-string: {value:?}"))
            })
            .collect(),
        Some(other) => Err(format!("attribute `{name}` is not a string set: {other:?}")),
    }
}

/// A JSON document stored as a string attribute.
pub(crate) fn json(item: &Item, name: &str) -> Result<Option<serde_json::Value>, String> {
    string(item, name)?
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|error| format!("attribute `{name}` is not JSON: {error}"))
        })
        .transpose()
}

/// A string attribute value.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The values of `names` in `item`, as a key to start the next request after.
pub(crate) fn key_of(item: &Item, names: &[&str]) -> Option<Key> {
    names
        .iter()
        .map(|name| Some((name.to_string(), item.get(*name)?.clone())))
        .collect()
}

/// What one request returned: the items it kept and where it stopped.
pub(crate) struct Fetched {
    pub(crate) items: Vec<Item>,
    pub(crate) last_evaluated: Option<Key>,
}

impl Fetched {
    /// A `Query` or `Scan` response's `Items` and `LastEvaluatedKey`; an empty key, like
    /// an absent one, means the listing ended.
    pub(crate) fn from_response(items: Option<Vec<Item>>, last_evaluated: Option<Key>) -> Self {
        Fetched {
            items: items.unwrap_or_default(),
            last_evaluated: last_evaluated.filter(|key| !key.is_empty()),
        }
    }
}

/// Where a listing stands after [`collect`]: which token kind and scope its tokens carry,
/// which attributes make an item's key, and what is listed (for error messages).
pub(crate) struct Listing<'a> {
    pub(crate) kind: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) key_attributes: &'a [&'a str],
    pub(crate) what: &'a str,
}

impl Listing<'_> {
    /// Keeps the first `limit` of `items` (which [`collect`] read one past `limit` when
    /// another page exists) and returns the token continuing after the last one kept.
    pub(crate) fn next_page(
        &self,
        items: &mut Vec<Item>,
        limit: usize,
        target: &Target<'_>,
    ) -> Result<Option<PageToken>> {
        if items.len() <= limit {
            return Ok(None);
        }
        items.truncate(limit);
        let token = items
            .last()
            .and_then(|item| key_of(item, self.key_attributes))
            .and_then(|key| token::encode(self.kind, self.scope, &key));
        match token {
            Some(token) => Ok(Some(token)),
            None => Err(errors::malformed(
                target.table,
                &target.key,
                format!("{} item lacks its keys", self.what),
            )),
        }
    }
}

/// Requests pages until more than `limit` items are collected or the listing ends.
///
/// DynamoDB's `Limit` counts items *evaluated*, before a `FilterExpression`, and a
/// response also stops at 1 MB, so one request can return fewer items than asked for
/// while more remain. This keeps asking, from each response's `LastEvaluatedKey`, for the
/// items still missing. It collects one item more than `limit`, so the caller knows
/// whether another page exists without handing out a token that leads to an empty page.
/// Each request asks for at least `min_request` items; the caller keeps the first
/// `limit` and continues after the last one kept, so reading ahead loses nothing.
pub(crate) async fn collect<F, Fut>(
    limit: usize,
    min_request: usize,
    start: Option<Key>,
    mut fetch: F,
) -> Result<Vec<Item>>
where
    F: FnMut(Option<Key>, i32) -> Fut,
    Fut: Future<Output = Result<Fetched>>,
{
    let wanted = limit.saturating_add(1);
    let mut items = Vec::new();
    let mut start = start;
    loop {
        let missing = wanted.saturating_sub(items.len()).max(min_request);
        let request_limit = i32::try_from(missing).unwrap_or(i32::MAX);
        let fetched = fetch(start.take(), request_limit).await?;
        items.extend(fetched.items);
        match fetched.last_evaluated {
            Some(key) if items.len() < wanted => start = Some(key),
            _ => return Ok(items),
        }
    }
}
