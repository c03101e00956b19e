//! Continuation tokens: the last key of a page, tagged so foreign tokens are refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use wsgw_core::{Error, PageToken, Result};

const TAG: &str = "wsgw-mem1:";

pub(crate) fn encode(last_key: &str) -> PageToken {
    PageToken(URL_SAFE_NO_PAD.encode(format!("{TAG}{last_key}")))
}

pub(crate) fn decode(token: &PageToken) -> Result<String> {
    let invalid = |why: &str| Error::InvalidToken {
        message: format!("`{}` {why}", token.0),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(&token.0)
        .map_err(|_| invalid("is not a wsgw-memory token"))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("is not a wsgw-memory token"))?;
    text.strip_prefix(TAG)
        .map(str::to_owned)
        .ok_or_else(|| invalid("was not issued by wsgw-memory"))
}
