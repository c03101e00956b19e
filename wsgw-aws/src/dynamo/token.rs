//! Continuation tokens: the key a page ended at, tagged with what it continues.
//!
//! A token is URL-safe base64 (no padding) of `wsgw-dynamodb:1:` followed by JSON
//! `{"kind": …, "scope": …, "key": {attribute: string}}`. A token is only accepted by the
//! same kind of listing over the same scope (the same group, the same history partition
//! and direction); anything else is [`Error::InvalidToken`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use wsgw_core::{Error, PageToken, Result};

const TAG: &str = "wsgw-dynamodb:1:";

/// A DynamoDB key (every key attribute of this crate is a string).
pub(crate) type Key = HashMap<String, AttributeValue>;

#[derive(Debug, Serialize, Deserialize)]
struct Body {
    kind: String,
    scope: String,
    key: BTreeMap<String, String>,
}

/// The token continuing after `key`, or `None` when a key attribute is not a string
/// (never the case for items this crate writes).
pub(crate) fn encode(kind: &str, scope: &str, key: &Key) -> Option<PageToken> {
    let key = key
        .iter()
        .map(|(name, value)| Some((name.clone(), value.as_s().ok()?.clone())))
        .collect::<Option<BTreeMap<_, _>>>()?;
    let body = Body {
        kind: kind.to_owned(),
        scope: scope.to_owned(),
        key,
    };
    let json = serde_json::to_string(&body).ok()?;
    Some(PageToken(URL_SAFE_NO_PAD.encode(format!("{TAG}{json}"))))
}

/// The key a token continues after, if it was issued for this kind, scope and key
/// attributes.
pub(crate) fn decode(
    token: &PageToken,
    kind: &str,
    scope: &str,
    attributes: &[&str],
) -> Result<Key> {
    let invalid = |why: &str| Error::InvalidToken {
        message: format!("`{}` {why}", token.0),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(&token.0)
        .map_err(|_| invalid("is not a wsgw-aws DynamoDB token"))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("is not a wsgw-aws DynamoDB token"))?;
    let json = text
        .strip_prefix(TAG)
        .ok_or_else(|| invalid("was not issued by wsgw-aws's DynamoDB backend"))?;
    let body: Body =
        serde_json::from_str(json).map_err(|_| invalid("is not a wsgw-aws DynamoDB token"))?;
    if body.kind != kind || body.scope != scope {
        return Err(invalid(&format!(
            "continues a {} listing of `{}`, not a {kind} listing of `{scope}`",
            body.kind, body.scope
        )));
    }
    let names_match = body.key.len() == attributes.len()
        && attributes.iter().all(|name| body.key.contains_key(*name));
    if !names_match {
        return Err(invalid("does not hold the key this listing needs"));
    }
    Ok(body
        .key
        .into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> Key {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), AttributeValue::S(value.to_string())))
            .collect()
    }

    #[test]
    fn a_token_round_trips_its_key() {
        let start = key(&[("pk", "conn#a"), ("sk", "conn")]);
        let token = encode("all", "", &start).expect("string key");
        assert_eq!(
            decode(&token, "all", "", &["pk", "sk"]).expect("decodes"),
            start
        );
    }

    #[test]
    fn a_token_for_another_scope_or_kind_is_invalid() {
        let token = encode("group", "room:1", &key(&[("pk", "a"), ("sk", "b")])).expect("token");
        for (kind, scope) in [("group", "room:2"), ("all", "room:1")] {
            let result = decode(&token, kind, scope, &["pk", "sk"]);
            assert!(
                matches!(result, Err(Error::InvalidToken { .. })),
                "{result:?}"
            );
        }
    }

    #[test]
    fn garbage_and_other_backends_tokens_are_invalid() {
        let memory_style = PageToken(URL_SAFE_NO_PAD.encode("wsgw-mem1:abc"));
        for token in [PageToken("not a token!".into()), memory_style] {
            let result = decode(&token, "all", "", &["pk", "sk"]);
            assert!(
                matches!(result, Err(Error::InvalidToken { .. })),
                "{result:?}"
            );
        }
    }

    #[test]
    fn a_token_missing_a_key_attribute_is_invalid() {
        let token = encode("all", "", &key(&[("pk", "a")])).expect("token");
        let result = decode(&token, "all", "", &["pk", "sk"]);
        assert!(
            matches!(result, Err(Error::InvalidToken { .. })),
            "{result:?}"
        );
    }
}
