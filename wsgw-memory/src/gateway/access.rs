//! Who may call the gateway's Management API (`@connections`).
//!
//! On AWS every `@connections` call is signed with Signature Version 4 and allowed by IAM.
//! The LocalGateway checks signatures the same way, against one key pair it knows
//! ([`ManagementCredentials`]); calls from loopback may skip signing
//! ([`ManagementAccess::trust_loopback`], on by default) so `curl` walkthroughs keep
//! working, which is a deliberate difference from AWS.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::ids::random_id;

/// The access key pair `@connections` callers sign with.
///
/// The secret is not shown by `Debug`.
///
/// ```
/// use wsgw_memory::gateway::ManagementCredentials;
///
/// let given = ManagementCredentials::new("AKIDLOCAL", "wJalrXUtnFEMI");
/// assert_eq!(given.access_key_id(), "AKIDLOCAL");
/// assert!(!given.is_generated());
/// assert!(!format!("{given:?}").contains("wJalrXUtnFEMI"));
///
/// let generated = ManagementCredentials::generate();
/// assert!(generated.access_key_id().starts_with("AKIAWSGW"));
/// assert_eq!(generated.secret_access_key().len(), 40);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ManagementCredentials {
    access_key_id: String,
    secret_access_key: String,
    generated: bool,
}

impl ManagementCredentials {
    /// A key pair given by the user (command line, environment, configuration).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        ManagementCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            generated: false,
        }
    }

    /// A fresh random key pair, shaped like AWS's (a 20-character access key id starting
    /// with `AKIAWSGW`, a 40-character secret).
    pub fn generate() -> Self {
        let id: String = random_id()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .chain(std::iter::repeat('X'))
            .take(12)
            .collect();
        let secret: String = [random_id(), random_id(), random_id()]
            .concat()
            .chars()
            .filter(|c| *c != '=')
            .take(40)
            .collect();
        ManagementCredentials {
            access_key_id: format!("AKIAWSGW{id}"),
            secret_access_key: secret,
            generated: true,
        }
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// Whether the pair was made up at start ([`generate`](Self::generate)) rather than
    /// given: only then does the gateway print the secret.
    pub fn is_generated(&self) -> bool {
        self.generated
    }
}

impl fmt::Debug for ManagementCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("generated", &self.generated)
            .finish()
    }
}

/// Who may call `@connections`: callers signing with [`ManagementCredentials`] as AWS
/// checks a signature (Signature Version 4, service `execute-api`, at most 5 minutes
/// off the gateway's clock), and, unless turned off, any caller on loopback, signed or
/// not (its signature is not checked: local tools sign with whatever they hold).
///
/// A refused call gets API Gateway's answer: HTTP 403 with `x-amzn-ErrorType`
/// (`MissingAuthenticationTokenException`, `IncompleteSignatureException`,
/// `UnrecognizedClientException`, `InvalidSignatureException`) and
/// `{"message": "…"}`. Any region is accepted in the signature's scope (the gateway has
/// none of its own).
///
/// ```
/// use wsgw_memory::gateway::{ManagementAccess, ManagementCredentials};
///
/// // Every call signed, as on AWS, loopback included:
/// let access = ManagementAccess::new(ManagementCredentials::new("AKIDLOCAL", "secret"))
///     .trust_loopback(false);
/// assert!(!access.trusts_loopback());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementAccess {
    credentials: ManagementCredentials,
    trust_loopback: bool,
}

impl Default for ManagementAccess {
    /// Generated credentials; unsigned calls from loopback allowed.
    fn default() -> Self {
        ManagementAccess::new(ManagementCredentials::generate())
    }
}

impl ManagementAccess {
    /// Callers sign with `credentials`; unsigned callers on loopback are let in too.
    pub fn new(credentials: ManagementCredentials) -> Self {
        ManagementAccess {
            credentials,
            trust_loopback: true,
        }
    }

    /// Whether callers on loopback (`127.0.0.0/8`, `::1`) are let in without a
    /// signature check (default `true`, for `curl`). `false` checks every call, as AWS
    /// does.
    pub fn trust_loopback(mut self, trust: bool) -> Self {
        self.trust_loopback = trust;
        self
    }

    /// Whether callers on loopback are let in unchecked.
    pub fn trusts_loopback(&self) -> bool {
        self.trust_loopback
    }

    /// The key pair signed calls must use.
    pub fn credentials(&self) -> &ManagementCredentials {
        &self.credentials
    }

    /// Whether a call from `peer` is let in without a signature check.
    pub(super) fn exempts(&self, peer: &SocketAddr) -> bool {
        self.trust_loopback && is_loopback(peer.ip())
    }
}

/// Loopback, IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) included.
pub(super) fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// `--access-key-id`, `--secret-access-key` and `--require-signature` for a binary
/// that serves a LocalGateway (feature `cli`).
#[cfg(feature = "cli")]
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ManagementArgs {
    /// The access key id `@connections` callers sign with (SigV4, service execute-api);
    /// generated at start, and printed when listening beyond loopback, if not given.
    #[arg(
        long,
        env = "WSGW_LOCAL_ACCESS_KEY_ID",
        value_name = "ID",
        requires = "secret_access_key"
    )]
    pub access_key_id: Option<String>,

    /// The secret access key that goes with --access-key-id.
    #[arg(
        long,
        env = "WSGW_LOCAL_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        requires = "access_key_id",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,

    /// Require signed `@connections` calls from loopback too, as API Gateway does
    /// (by default loopback may call unsigned, for curl).
    #[arg(long, env = "WSGW_REQUIRE_SIGNATURE")]
    pub require_signature: bool,
}

#[cfg(feature = "cli")]
impl ManagementArgs {
    /// The access these arguments ask for.
    pub fn access(&self) -> ManagementAccess {
        let credentials = match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => ManagementCredentials::new(id, secret),
            _ => ManagementCredentials::generate(),
        };
        ManagementAccess::new(credentials).trust_loopback(!self.require_signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_are_distinct_and_shaped_like_aws_keys() {
        let a = ManagementCredentials::generate();
        let b = ManagementCredentials::generate();
        assert_ne!(a, b);
        for credentials in [a, b] {
            assert_eq!(credentials.access_key_id().len(), 20);
            assert!(credentials
                .access_key_id()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
            assert_eq!(credentials.secret_access_key().len(), 40);
        }
    }

    #[test]
    fn only_loopback_peers_are_exempt_and_only_while_trusted() {
        let access = ManagementAccess::default();
        let peer = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 40000);
        assert!(access.exempts(&peer("127.0.0.1")));
        assert!(access.exempts(&peer("127.0.0.2")));
        assert!(access.exempts(&peer("::1")));
        assert!(access.exempts(&peer("::ffff:127.0.0.1")));
        assert!(!access.exempts(&peer("192.168.1.20")));
        assert!(!access.exempts(&peer("::ffff:10.0.0.1")));
        let strict = access.trust_loopback(false);
        assert!(!strict.exempts(&peer("127.0.0.1")));
    }
}
