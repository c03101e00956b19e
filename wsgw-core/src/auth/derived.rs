//! Per-identity tokens derived from one secret.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::AuthError;

/// The shortest secret [`DerivedTokens`] accept: 32 bytes, the HMAC-SHA256 key size.
pub const MIN_DERIVED_SECRET_BYTES: usize = 32;

/// Tokens derived from one secret, one per identity (a device id, a tenant):
/// `token = hex(HMAC-SHA256(secret, identity))`, 64 lower-case hex digits (the scheme of
/// Azure IoT DPS group enrollments). A client holds only its own token, so a client that
/// leaks it exposes only its own identity; the server holds only the secret and checks a
/// token in constant time. Its `Debug` never shows the secret.
///
/// ```
/// use wsgw_core::auth::{AuthError, DerivedTokens};
///
/// let secret = DerivedTokens::new("fleet-secret-0123456789abcdef-0123456789")?;
/// let token = secret.token_for("esp32-01");
/// assert_eq!(token.len(), 64);
/// assert!(secret.verify("esp32-01", &token));
/// assert!(secret.verify("esp32-01", &token.to_uppercase()), "hex of either case");
/// assert!(!secret.verify("esp32-02", &token), "bound to its identity");
/// assert!(!secret.verify("esp32-01", "not hex"));
/// assert!(matches!(
///     DerivedTokens::new("s3cret"),
///     Err(AuthError::DerivedSecretTooShort { bytes: 6, min: 32 })
/// ));
/// assert_eq!(format!("{secret:?}"), "DerivedTokens(<hidden>)");
/// # Ok::<(), AuthError>(())
/// ```
#[derive(Clone)]
pub struct DerivedTokens(Vec<u8>);

impl fmt::Debug for DerivedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedTokens(<hidden>)")
    }
}

impl DerivedTokens {
    /// Tokens derived from `secret`, at least [`MIN_DERIVED_SECRET_BYTES`] long.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_DERIVED_SECRET_BYTES {
            return Err(AuthError::DerivedSecretTooShort {
                bytes: secret.len(),
                min: MIN_DERIVED_SECRET_BYTES,
            });
        }
        Ok(DerivedTokens(secret.to_vec()))
    }

    fn mac(&self, identity: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(identity.as_bytes());
        mac
    }

    /// The token of `identity`.
    pub fn token_for(&self, identity: &str) -> String {
        let code = self.mac(identity).finalize().into_bytes();
        code.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `presented` is `identity`'s token, compared in constant time.
    pub fn verify(&self, identity: &str, presented: &str) -> bool {
        let Some(code) = decode_hex(presented) else {
            return false;
        };
        self.mac(identity).verify_slice(&code).is_ok()
    }
}

/// Lower- or upper-case hex to bytes; `None` for anything else (an odd length, another
/// character).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}
