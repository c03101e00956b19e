//! Who gets in: ready `$connect` [`Authorizer`]s and where they find the token.
//!
//! - [`ApiKeyAuthorizer`]: static keys, each naming a principal and its roles. A
//!   presented key is compared with every configured key as SHA-256 digests in constant
//!   time, so neither which key nor how long the keys are shows in the time taken; the
//!   same key given twice is refused when the list is built.
//! - `JwtAuthorizer` (feature `jwt`): JSON Web Tokens signed with HS256 (a secret of at
//!   least [`MIN_HS256_SECRET_BYTES`]) or RS256; `exp` and `sub` are required, `nbf` is
//!   checked when present, `iss` when configured, and `aud` when configured, which RS256
//!   requires unless [`JwtAuthorizer::rs256_pem_any_audience`] says otherwise.
//!
//! Both look for the token in their [`TokenSource`]s, in order (by default: the
//! `Authorization: Bearer` header, the `token` query-string parameter, then the
//! `Sec-WebSocket-Protocol` convention below).
//!
//! ## Status codes
//!
//! | what the client sent | handshake answer |
//! | --- | --- |
//! | no token in any source | 401 |
//! | a token that cannot be verified: unknown API key, not a JWT, bad signature, an algorithm other than the configured one, expired (`exp`), not yet valid (`nbf`), no `sub` | 401 |
//! | a verified JWT for someone else: wrong `aud` or `iss` | 403 |
//!
//! A denied client never reaches `$connect`, so nothing is stored. Deployed, the Lambda
//! REQUEST authorizer of `wsgw-aws` answers API Gateway the same way (401 by failing with
//! `Unauthorized`, 403 with a `Deny` policy).
//!
//! ## The context every later route sees
//!
//! An allowed client's context is flat (string, number and boolean values only), because
//! that is all API Gateway passes from a Lambda authorizer to the routes; so a handler
//! reads it the same way locally and deployed, with [`Principal::of`]:
//!
//! - `principalId`: the API key's principal, or the JWT's `sub`;
//! - `roles`: the roles, comma-separated (the key's roles, or the JWT's `roles` claim,
//!   an array or a comma/space-separated string). A role is never empty and holds no
//!   comma and no whitespace ([`check_role`]), so splitting the joined list gives back
//!   exactly the roles that were joined: a key list with such a role is refused, a JWT
//!   whose `roles` array holds one is refused (401);
//! - for a JWT, every other top-level claim: strings, numbers and booleans as they are,
//!   arrays and objects as JSON text.
//!
//! ## Tokens from browsers: `Sec-WebSocket-Protocol`
//!
//! Browsers cannot set headers on a WebSocket upgrade. Rather than the query string
//! (`?token=…`, which ends up in access logs, proxy logs and browser history), a page
//! offers two subprotocols: the marker [`BEARER_SUBPROTOCOL`] and the token itself:
//!
//! ```js
//! new WebSocket("wss://example.com/prod", ["wsgw.bearer", token]);
//! ```
//!
//! The token is the entry after the marker. A browser fails a handshake that offers
//! subprotocols unless the server picks one, so the [`Router`](crate::Router) answers an
//! allowed `$connect` with `Sec-WebSocket-Protocol: wsgw.bearer` (never the token) when
//! the client offered it and the `$connect` handler picked none; deployed, that is the
//! `$connect` Lambda's response header API Gateway echoes. Tokens are then limited to
//! the characters a subprotocol may hold, which JWTs (base64url and dots) and keys
//! made of letters, digits, `-`, `_` and `.` satisfy.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use wsgw_core::auth::{ApiKeyAuthorizer, Principal};
//! use wsgw_core::{Authorization, Backends, ConnectionId, MockConnectionStore, MockMessageSink, Request, Router};
//!
//! let keys = ApiKeyAuthorizer::new()
//!     .key("k-3f9a2c", "esp32-01", ["device"])?
//!     .key("k-ops-77", "ada", ["operator"])?;
//! let router = Router::new().authorizer(keys);
//! let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
//!
//! let device = Request::connect(ConnectionId::new("c1=")).with_query("token", "k-3f9a2c");
//! let Authorization::Allow(context) = router.authorize(&backends, &device).await? else { panic!("denied") };
//! let principal = Principal::from_context(&context).expect("a principal");
//! assert_eq!(principal.id, "esp32-01");
//! assert!(principal.has_role("device"));
//!
//! let stranger = Request::connect(ConnectionId::new("c2=")).with_query("token", "guess");
//! assert_eq!(router.authorize(&backends, &stranger).await?, Authorization::Deny(401));
//! # Ok(())
//! # }
//! ```

use std::fmt;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::handler::{Authorization, Authorizer};
use crate::http::header::{HeaderValue, WWW_AUTHENTICATE};
use crate::Context;
use crate::{HttpRequest, HttpRequestExt, Rejection, Request, Result};

/// The subprotocol a browser offers, before its token, to send the token in
/// `Sec-WebSocket-Protocol`; the handshake echoes it back.
pub const BEARER_SUBPROTOCOL: &str = "wsgw.bearer";

/// The query-string parameter the default sources read (`?token=…`), as the telemetry
/// firmware sends it.
pub const TOKEN_QUERY_PARAM: &str = "token";

/// The context key of the principal, as API Gateway names it in
/// `requestContext.authorizer`.
pub const PRINCIPAL_KEY: &str = "principalId";

/// The context key of the roles, comma-separated.
pub const ROLES_KEY: &str = "roles";

/// Status for a missing or unverifiable credential.
pub const UNAUTHORIZED: u16 = 401;

/// Status for a verified credential that is not valid here (wrong audience or issuer).
pub const FORBIDDEN: u16 = 403;

/// The shortest HS256 secret [`JwtAuthorizer::hs256`] accepts: 32 bytes, the size of
/// the SHA-256 output (RFC 7518 §3.2 requires a key of at least that size). A shorter
/// or guessable secret lets anyone who guesses it mint tokens for any `sub`.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Where in the upgrade request a token is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// A query-string parameter (`?token=…`).
    Query(String),
    /// A header, by name (any case). A `Bearer ` prefix is removed, so
    /// `Header("authorization")` reads `Authorization: Bearer <token>`.
    Header(String),
    /// The entry following this marker in `Sec-WebSocket-Protocol` (see the
    /// [module docs](self)); the handshake echoes the marker.
    Subprotocol(String),
}

impl TokenSource {
    /// `?name=…`.
    pub fn query(name: impl Into<String>) -> Self {
        TokenSource::Query(name.into())
    }

    /// The header `name`.
    pub fn header(name: impl Into<String>) -> Self {
        TokenSource::Header(name.into().to_ascii_lowercase())
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer() -> Self {
        TokenSource::header("authorization")
    }

    /// `Sec-WebSocket-Protocol: wsgw.bearer, <token>`.
    pub fn subprotocol() -> Self {
        TokenSource::Subprotocol(BEARER_SUBPROTOCOL.to_owned())
    }

    /// The sources tried when none are configured: the bearer header, `?token=`, the
    /// subprotocol.
    pub fn defaults() -> Vec<TokenSource> {
        vec![
            TokenSource::bearer(),
            TokenSource::query(TOKEN_QUERY_PARAM),
            TokenSource::subprotocol(),
        ]
    }

    /// The token this source finds in `request`, if any (empty values are none).
    ///
    /// ```
    /// use wsgw_core::auth::TokenSource;
    /// use wsgw_core::{ConnectionId, Request};
    ///
    /// let request = Request::connect(ConnectionId::new("c="))
    ///     .with_header("Authorization", "Bearer abc.def.ghi")
    ///     .with_header("Sec-WebSocket-Protocol", "wsgw.bearer, k-123");
    /// assert_eq!(TokenSource::bearer().token(&request).as_deref(), Some("abc.def.ghi"));
    /// assert_eq!(TokenSource::subprotocol().token(&request).as_deref(), Some("k-123"));
    /// assert_eq!(TokenSource::query("token").token(&request), None);
    /// ```
    pub fn token(&self, request: &Request) -> Option<String> {
        let token = match self {
            TokenSource::Query(name) => request.query.get(name).map(|v| v.trim().to_owned()),
            TokenSource::Header(name) => request
                .headers
                .get(&name.to_ascii_lowercase())
                .map(|value| strip_bearer(value).to_owned()),
            TokenSource::Subprotocol(marker) => offered_subprotocols(request)
                .skip_while(|entry| entry != marker)
                .nth(1)
                .map(str::to_owned),
        };
        token.filter(|token| !token.is_empty())
    }
}

/// A header value without its `Bearer ` scheme (any case), trimmed: the token of an
/// `Authorization: Bearer <token>` header. A value without the scheme is returned as is.
///
/// ```
/// use wsgw_core::auth::strip_bearer;
///
/// assert_eq!(strip_bearer("Bearer abc.def"), "abc.def");
/// assert_eq!(strip_bearer("bearer  k-1 "), "k-1");
/// assert_eq!(strip_bearer("k-1"), "k-1");
/// ```
pub fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => value[7..].trim(),
        _ => value,
    }
}

/// The subprotocols the client offered in `Sec-WebSocket-Protocol`, in order.
pub fn offered_subprotocols(request: &Request) -> impl Iterator<Item = &str> {
    request
        .headers
        .get("sec-websocket-protocol")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// The first token any of `sources` finds.
pub fn find_token(sources: &[TokenSource], request: &Request) -> Option<String> {
    sources.iter().find_map(|source| source.token(request))
}

/// The subprotocol marker among `sources`, if one reads the subprotocol.
fn subprotocol_marker(sources: &[TokenSource]) -> Option<&str> {
    sources.iter().find_map(|source| match source {
        TokenSource::Subprotocol(marker) => Some(marker.as_str()),
        _ => None,
    })
}

/// Who an authorizer let in, read back from the context a route sees.
///
/// ```
/// use serde_json::json;
/// use wsgw_core::auth::Principal;
/// use wsgw_core::{ConnectionId, Request};
///
/// // As API Gateway hands it over (and as the LocalGateway does).
/// let request = Request::message(ConnectionId::new("c="), "{}")
///     .with_authorizer(json!({"principalId": "ada", "roles": "operator,viewer"}));
/// let principal = Principal::of(&request).expect("authorized");
/// assert_eq!(principal.id, "ada");
/// assert!(principal.has_role("operator"));
/// assert!(!principal.has_role("device"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    /// The principal: an API key's name, a JWT's `sub`.
    pub id: String,
    /// Its roles.
    pub roles: Vec<String>,
}

impl Principal {
    /// A principal with roles.
    pub fn new<R: Into<String>>(id: impl Into<String>, roles: impl IntoIterator<Item = R>) -> Self {
        Principal {
            id: id.into(),
            roles: roles.into_iter().map(Into::into).collect(),
        }
    }

    /// The principal of an authorized request; `None` when no authorizer ran or it set
    /// no principal.
    pub fn of(request: &Request) -> Option<Principal> {
        request
            .authorizer
            .as_ref()
            .and_then(Principal::from_context)
    }

    /// The principal in an authorizer context (`principalId`, `roles`).
    pub fn from_context(context: &Value) -> Option<Principal> {
        let id = context.get(PRINCIPAL_KEY)?.as_str()?;
        if id.is_empty() {
            return None;
        }
        let roles = context.get(ROLES_KEY).map(roles_of).unwrap_or_default();
        Some(Principal {
            id: id.to_owned(),
            roles,
        })
    }

    /// Whether it has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The flat context an authorizer allows it with: `principalId` and `roles`
    /// (comma-separated).
    ///
    /// A role that [`check_role`] refuses (a comma or whitespace would split it into
    /// other roles when the context is read back) is left out, and logged: it can only
    /// come from a `Principal` built by hand, since the authorizers here refuse such
    /// roles before they get this far.
    pub fn context(&self) -> Value {
        let mut context = Map::new();
        context.insert(PRINCIPAL_KEY.to_owned(), Value::String(self.id.clone()));
        context.insert(ROLES_KEY.to_owned(), Value::String(join_roles(&self.roles)));
        Value::Object(context)
    }
}

/// Checks that a role survives the comma-separated `roles` context value unchanged: not
/// empty, and no comma, whitespace or control character (which [`Principal::from_context`]
/// would split on, or which API Gateway could not carry). Returns what is wrong.
///
/// ```
/// use wsgw_core::auth::check_role;
///
/// assert!(check_role("operator").is_ok());
/// assert!(check_role("guest operator").is_err(), "would read back as two roles");
/// assert!(check_role("viewer,operator").is_err());
/// ```
pub fn check_role(role: &str) -> std::result::Result<(), String> {
    if role.is_empty() {
        return Err("a role cannot be empty".to_owned());
    }
    if role
        .chars()
        .any(|c| c == ',' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "role {role:?} holds a comma, whitespace or a control character, which would split it into other roles"
        ));
    }
    Ok(())
}

/// The roles as the context carries them: comma-separated, roles [`check_role`] refuses
/// left out.
fn join_roles(roles: &[String]) -> String {
    let mut joined = String::new();
    for role in roles {
        if let Err(problem) = check_role(role) {
            tracing::warn!(problem, "a role left out of the authorizer context");
            continue;
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(role);
    }
    joined
}

/// Roles from a context or claim string (comma or whitespace separated) or an array of
/// strings (entries [`check_role`] refuses are left out).
fn roles_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(roles) => roles
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|role| !role.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(roles) => roles
            .iter()
            .filter_map(Value::as_str)
            .filter(|role| check_role(role).is_ok())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Why an authorizer could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A key (PEM, secret) that cannot be used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A key list that cannot be parsed (see [`ApiKeyAuthorizer::parse`]). The message
    /// never holds a key.
    #[error("invalid API key list: {0}")]
    InvalidKeyList(String),
    /// An HS256 secret shorter than [`MIN_HS256_SECRET_BYTES`].
    #[error("an HS256 secret needs at least {min} bytes, this one has {bytes}: use a long random secret (for example `openssl rand -base64 48`)")]
    SecretTooShort {
        /// The secret's length in bytes.
        bytes: usize,
        /// The minimum, [`MIN_HS256_SECRET_BYTES`].
        min: usize,
    },
    /// A [`DerivedTokens`] secret shorter than [`MIN_DERIVED_SECRET_BYTES`].
    #[error("the secret tokens are derived from needs at least {min} bytes, this one has {bytes}: use a long random secret (for example `openssl rand -base64 48`)")]
    DerivedSecretTooShort {
        /// The secret's length in bytes.
        bytes: usize,
        /// The minimum, [`MIN_DERIVED_SECRET_BYTES`].
        min: usize,
    },
    /// A role that would not survive the flat context (see [`check_role`]).
    #[error("principal `{principal}`: {problem}")]
    InvalidRole {
        /// Whose role it is.
        principal: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The same key given to two principals (or twice to one): which principal a client
    /// presenting it would become is not for the list's order to decide.
    #[error("the same API key is given to `{first}` and to `{second}`; every key must be unique")]
    DuplicateKey {
        /// The principal it was given to first.
        first: String,
        /// The principal it was given to again.
        second: String,
    },
}

/// One entry of a key list ([`key_list`]): `principal=key`, or `principal=key=role+role`.
/// Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyListEntry {
    /// Who presents the key.
    pub principal: String,
    /// The key.
    pub key: String,
    /// The roles the entry names (none when it names none).
    pub roles: Vec<String>,
}

impl fmt::Debug for KeyListEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyListEntry")
            .field("principal", &self.principal)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The entries of a key list as configuration (an environment variable) carries it:
/// separated by `,` or newlines, each `principal=key` or `principal=key=role+role`, blank
/// ones skipped. A malformed entry is an [`AuthError::InvalidKeyList`] naming its position
/// and principal, never its text (it may be a key). [`ApiKeyAuthorizer::parse`] reads
/// its lists with it; so does whatever hands the keys out (a simulator presenting each
/// device's).
///
/// ```
/// use wsgw_core::auth::key_list;
///
/// let entries: Vec<_> = key_list("esp32-01=k1,\n ada=k2=operator+admin").collect::<Result<_, _>>()?;
/// assert_eq!((entries[0].principal.as_str(), entries[0].key.as_str()), ("esp32-01", "k1"));
/// assert_eq!(entries[1].roles, ["operator", "admin"]);
/// assert!(!format!("{:?}", entries[1]).contains("k2"), "Debug hides the key");
/// let error = key_list("ok=k1,k-no-principal").nth(1).unwrap().unwrap_err();
/// assert_eq!(error.to_string(), "invalid API key list: entry 2 has no `=`: entries are principal=key[=role+role] (the entry is not shown: it may be a key)");
/// # Ok::<(), wsgw_core::auth::AuthError>(())
/// ```
pub fn key_list(
    list: &str,
) -> impl Iterator<Item = std::result::Result<KeyListEntry, AuthError>> + '_ {
    let entries = list.split([',', '\n']).map(str::trim);
    entries
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| key_list_entry(index + 1, entry))
}

/// Entry `number` (from 1) of a key list.
fn key_list_entry(number: usize, entry: &str) -> std::result::Result<KeyListEntry, AuthError> {
    let Some((principal, rest)) = entry.split_once('=') else {
        return Err(AuthError::InvalidKeyList(format!(
            "entry {number} has no `=`: entries are principal=key[=role+role] (the entry is not shown: it may be a key)"
        )));
    };
    let principal = principal.trim();
    let (key, extra) = match rest.split_once('=') {
        Some((key, extra)) => (key.trim(), Some(extra)),
        None => (rest.trim(), None),
    };
    if principal.is_empty() {
        return Err(AuthError::InvalidKeyList(format!(
            "entry {number} has no principal before its key: entries are principal=key[=role+role]"
        )));
    }
    if key.is_empty() {
        return Err(AuthError::InvalidKeyList(format!(
            "entry {number} (`{principal}`) has no key: entries are principal=key[=role+role]"
        )));
    }
    let roles = extra
        .into_iter()
        .flat_map(|extra| extra.split('+'))
        .map(str::trim)
        .filter(|role| !role.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(KeyListEntry {
        principal: principal.to_owned(),
        key: key.to_owned(),
        roles,
    })
}

/// A SHA-256 digest: what [`ApiKeyAuthorizer`] keeps of each key and compares.
type KeyDigest = [u8; 32];

fn key_digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

/// Static API keys, each naming a principal and its roles.
///
/// Only each key's SHA-256 digest is kept. A presented key is hashed and its digest
/// compared with every configured digest in constant time (`subtle`), so the time taken
/// depends neither on which key matched, nor on how much of a key was right, nor on the
/// keys' lengths. A denial does not say which part was wrong.
#[derive(Clone)]
pub struct ApiKeyAuthorizer {
    keys: Vec<(KeyDigest, Principal)>,
    sources: Vec<TokenSource>,
}

impl fmt::Debug for ApiKeyAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys (nor their digests).
        f.debug_struct("ApiKeyAuthorizer")
            .field(
                "principals",
                &self.keys.iter().map(|(_, p)| &p.id).collect::<Vec<_>>(),
            )
            .field("sources", &self.sources)
            .finish()
    }
}

impl Default for ApiKeyAuthorizer {
    fn default() -> Self {
        ApiKeyAuthorizer::new()
    }
}

impl ApiKeyAuthorizer {
    /// No keys yet (everyone is denied), reading the [default sources](TokenSource::defaults).
    pub fn new() -> Self {
        ApiKeyAuthorizer {
            keys: Vec::new(),
            sources: TokenSource::defaults(),
        }
    }

    /// Adds a key for `principal` with `roles`.
    ///
    /// Refused: an empty key or principal, a role [`check_role`] refuses, and a key
    /// already given (to this principal or another).
    pub fn key<R: Into<String>>(
        mut self,
        key: impl AsRef<[u8]>,
        principal: impl Into<String>,
        roles: impl IntoIterator<Item = R>,
    ) -> std::result::Result<Self, AuthError> {
        let principal = Principal::new(principal, roles);
        if principal.id.is_empty() {
            return Err(AuthError::InvalidKeyList(
                "a key needs a principal".to_owned(),
            ));
        }
        if key.as_ref().is_empty() {
            return Err(AuthError::InvalidKeyList(format!(
                "the key of `{}` is empty",
                principal.id
            )));
        }
        for role in &principal.roles {
            check_role(role).map_err(|problem| AuthError::InvalidRole {
                principal: principal.id.clone(),
                problem,
            })?;
        }
        let digest = key_digest(key.as_ref());
        if let Some((_, first)) = self.keys.iter().find(|(known, _)| *known == digest) {
            return Err(AuthError::DuplicateKey {
                first: first.id.clone(),
                second: principal.id,
            });
        }
        self.keys.push((digest, principal));
        Ok(self)
    }

    /// Reads the token from these sources, in order, instead of the defaults.
    pub fn sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// How many keys it knows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it knows no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds keys from a list as configuration (an environment variable) carries it
    /// ([`key_list`]): entries separated by `,` or newlines, each `principal=key` or
    /// `principal=key=role+role`, every entry getting `default_roles` too.
    ///
    /// A malformed entry is named by its position and principal, never by its text (it
    /// may be a key); the rules of [`key`](Self::key) apply to every entry.
    ///
    /// ```
    /// use wsgw_core::auth::ApiKeyAuthorizer;
    ///
    /// let keys = ApiKeyAuthorizer::new()
    ///     .parse("esp32-01=k1, esp32-02=k2", &["device"])?
    ///     .parse("ada=k3=operator", &["client"])?;
    /// assert_eq!(keys.len(), 3);
    /// let error = ApiKeyAuthorizer::new().parse("k-no-principal", &[]).unwrap_err();
    /// assert!(!error.to_string().contains("k-no-principal"));
    /// assert!(ApiKeyAuthorizer::new().parse("a=k1,b=k1", &[]).is_err(), "a key given twice");
    /// # Ok::<(), wsgw_core::auth::AuthError>(())
    /// ```
    pub fn parse(
        mut self,
        list: &str,
        default_roles: &[&str],
    ) -> std::result::Result<Self, AuthError> {
        for entry in key_list(list) {
            let KeyListEntry {
                principal,
                key,
                roles,
            } = entry?;
            let defaults = default_roles.iter().map(|role| (*role).to_owned());
            self = self.key(key, principal, defaults.chain(roles))?;
        }
        Ok(self)
    }

    /// The decision for `request`, without a router.
    pub fn decide(&self, request: &Request) -> Authorization {
        let Some(token) = find_token(&self.sources, request) else {
            return Authorization::Deny(UNAUTHORIZED);
        };
        match self.principal_for(&token) {
            Some(principal) => Authorization::Allow(principal.context()),
            None => Authorization::Deny(UNAUTHORIZED),
        }
    }

    /// The principal a key names, if it is one of the keys: how a REST route checks the
    /// same keys (from `Authorization: Bearer`, say) outside `$connect`.
    ///
    /// ```
    /// use wsgw_core::auth::ApiKeyAuthorizer;
    ///
    /// let keys = ApiKeyAuthorizer::new().key("k-ops-77", "ada", ["operator"])?;
    /// assert_eq!(keys.principal_for("k-ops-77").map(|p| p.id.as_str()), Some("ada"));
    /// assert!(keys.principal_for("k-ops-7").is_none());
    /// # Ok::<(), wsgw_core::auth::AuthError>(())
    /// ```
    pub fn principal_for(&self, key: &str) -> Option<&Principal> {
        let presented = key_digest(key.as_bytes());
        // Every digest is compared, whichever matches: the time taken does not say which.
        let mut found: Option<&Principal> = None;
        for (digest, principal) in &self.keys {
            if bool::from(digest.ct_eq(&presented)) && found.is_none() {
                found = Some(principal);
            }
        }
        found
    }

    /// The principal of an HTTP request's `Authorization: Bearer KEY` when the key is
    /// one of these and its principal has `role`: the guard of an HTTP route only some
    /// keys may call. Keys are read from that header only (never the query string, which
    /// access logs keep), whatever [`sources`](Self::sources) the `$connect` authorizer
    /// reads.
    ///
    /// Refused as a [`Rejection`], for the handler to return with `?`: without a key or
    /// with an unknown one, `401` code `unauthorized` with `WWW-Authenticate: Bearer`
    /// (RFC 6750, §3); with a key whose principal lacks the role, `403` code
    /// `forbidden`. Set another detail with [`Rejection::with_detail`].
    ///
    /// ```
    /// use wsgw_core::auth::ApiKeyAuthorizer;
    /// use wsgw_core::Payload;
    ///
    /// let keys = ApiKeyAuthorizer::new()
    ///     .key("k-dash", "wall", ["client"])?
    ///     .key("k-dev", "esp32-01", ["device"])?;
    /// let with_key = |key: &str| {
    ///     wsgw_core::http::Request::get("/history")
    ///         .header("Authorization", format!("Bearer {key}"))
    ///         .body(Payload::default())
    ///         .unwrap()
    /// };
    /// assert_eq!(keys.require_bearer(&with_key("k-dash"), "client").map(|p| p.id.as_str()), Ok("wall"));
    /// let forbidden = keys.require_bearer(&with_key("k-dev"), "client").unwrap_err();
    /// assert_eq!((forbidden.status(), forbidden.code()), (403, Some("forbidden")));
    /// let unknown = keys.require_bearer(&with_key("k-guess"), "client").unwrap_err();
    /// assert_eq!((unknown.status(), unknown.code()), (401, Some("unauthorized")));
    /// assert_eq!(unknown.header("www-authenticate").unwrap(), "Bearer");
    /// # Ok::<(), wsgw_core::auth::AuthError>(())
    /// ```
    pub fn require_bearer(
        &self,
        request: &HttpRequest,
        role: &str,
    ) -> std::result::Result<&Principal, Rejection> {
        let principal = request
            .bearer_token()
            .and_then(|key| self.principal_for(key));
        match principal {
            Some(principal) if principal.has_role(role) => Ok(principal),
            Some(principal) => {
                tracing::info!(path = request.uri().path(), principal = %principal.id, role, "HTTP request refused: the key lacks the role");
                Err(Rejection::new("forbidden")
                    .with_detail(format!("this key does not have the role {role}"))
                    .with_status(FORBIDDEN))
            }
            None => {
                tracing::info!(
                    path = request.uri().path(),
                    "HTTP request refused: no or unknown key"
                );
                Err(Rejection::new("unauthorized")
                    .with_detail("a key is required, as the header Authorization: Bearer KEY")
                    .with_status(UNAUTHORIZED)
                    .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")))
            }
        }
    }
}

#[async_trait]
impl<S: Send + Sync + 'static> Authorizer<S> for ApiKeyAuthorizer {
    async fn authorize(&self, _ctx: Context<S>, request: Request) -> Result<Authorization> {
        let decision = self.decide(&request);
        if let Authorization::Deny(status) = decision {
            tracing::info!(connection_id = %request.connection_id, status, "API key refused");
        }
        Ok(decision)
    }

    fn subprotocol(&self) -> Option<&str> {
        subprotocol_marker(&self.sources)
    }
}

pub use derived::{DerivedTokens, MIN_DERIVED_SECRET_BYTES};
#[cfg(feature = "jwt")]
pub use jwt::{JwtAlgorithm, JwtAuthorizer};
#[cfg(feature = "jwt")]
pub use settings::{
    JwtSettings, JwtSettingsError, JWT_ANY_AUDIENCE_ENV, JWT_AUDIENCE_ENV, JWT_ISSUER_ENV,
    JWT_PUBLIC_KEY_FILE_ENV, JWT_SECRET_ENV,
};

mod derived;
#[cfg(feature = "jwt")]
mod settings;

#[cfg(feature = "jwt")]
mod jwt {
    use std::fmt;

    use async_trait::async_trait;
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde_json::{Map, Value};

    use super::{
        check_role, find_token, join_roles, roles_of, subprotocol_marker, AuthError, TokenSource,
        FORBIDDEN, MIN_HS256_SECRET_BYTES, PRINCIPAL_KEY, ROLES_KEY, UNAUTHORIZED,
    };
    use crate::handler::{Authorization, Authorizer};
    use crate::Context;
    use crate::{Request, Result};

    /// The signature algorithms [`JwtAuthorizer`] accepts (one per authorizer: a token
    /// signed with any other is refused).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum JwtAlgorithm {
        /// HMAC with SHA-256 and a shared secret.
        Hs256,
        /// RSA PKCS#1 v1.5 with SHA-256 and a public key.
        Rs256,
    }

    /// JSON Web Tokens: HS256 with a shared secret or RS256 with a public key.
    ///
    /// Checked: the signature and the algorithm (only the configured one), `exp`
    /// (required), `nbf` (when present), `sub` (required: it is the principal), `aud`
    /// and `iss` when configured (then required; RS256 is built with an audience unless
    /// [`rs256_pem_any_audience`](Self::rs256_pem_any_audience) says otherwise), and
    /// the `roles` claim (an array entry holding a comma or whitespace is refused, see
    /// [`check_role`](super::check_role)). Clock skew allowed: 30 s by default.
    ///
    /// ```
    /// use wsgw_core::auth::{AuthError, JwtAuthorizer};
    ///
    /// let authorizer = JwtAuthorizer::hs256(b"a long random secret of 32+ bytes!")?
    ///     .audience("wsgw-chat")
    ///     .issuer("https://auth.example.com");
    /// # let _ = authorizer;
    /// assert!(matches!(JwtAuthorizer::hs256(b"s3cret"), Err(AuthError::SecretTooShort { bytes: 6, .. })));
    /// # Ok::<(), AuthError>(())
    /// ```
    #[derive(Clone)]
    pub struct JwtAuthorizer {
        key: DecodingKey,
        validation: Validation,
        algorithm: JwtAlgorithm,
        sources: Vec<TokenSource>,
    }

    impl fmt::Debug for JwtAuthorizer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("JwtAuthorizer")
                .field("algorithm", &self.algorithm)
                .field("aud", &self.validation.aud)
                .field("iss", &self.validation.iss)
                .field("sources", &self.sources)
                .finish_non_exhaustive()
        }
    }

    impl JwtAuthorizer {
        fn with_key(key: DecodingKey, algorithm: JwtAlgorithm) -> Self {
            let mut validation = Validation::new(match algorithm {
                JwtAlgorithm::Hs256 => Algorithm::HS256,
                JwtAlgorithm::Rs256 => Algorithm::RS256,
            });
            validation.set_required_spec_claims(&["exp", "sub"]);
            validation.validate_nbf = true;
            validation.validate_aud = false;
            validation.leeway = 30;
            JwtAuthorizer {
                key,
                validation,
                algorithm,
                sources: TokenSource::defaults(),
            }
        }

        /// Tokens signed with HS256 and this shared secret, which must have at least
        /// [`MIN_HS256_SECRET_BYTES`] (32) bytes: a shorter one is refused with
        /// [`AuthError::SecretTooShort`], since anyone who guesses it signs tokens for
        /// any `sub`.
        pub fn hs256(secret: &[u8]) -> std::result::Result<Self, AuthError> {
            if secret.len() < MIN_HS256_SECRET_BYTES {
                return Err(AuthError::SecretTooShort {
                    bytes: secret.len(),
                    min: MIN_HS256_SECRET_BYTES,
                });
            }
            Ok(JwtAuthorizer::with_key(
                DecodingKey::from_secret(secret),
                JwtAlgorithm::Hs256,
            ))
        }

        /// Tokens signed with RS256, checked with this public key (PEM, PKCS#1
        /// `RSA PUBLIC KEY` or SubjectPublicKeyInfo `PUBLIC KEY`), whose `aud` names
        /// `audience` (more with [`audience`](Self::audience)).
        ///
        /// An RS256 key usually belongs to an identity provider that signs tokens for
        /// many applications: without the audience check, a token it issued for any of
        /// them would open this one. [`rs256_pem_any_audience`](Self::rs256_pem_any_audience)
        /// is the explicit way to skip it.
        pub fn rs256_pem(
            public_key_pem: &[u8],
            audience: impl Into<String>,
        ) -> std::result::Result<Self, AuthError> {
            Ok(Self::rs256_pem_any_audience(public_key_pem)?.audience(audience))
        }

        /// [`rs256_pem`](Self::rs256_pem) without the audience check: tokens for any
        /// `aud` (or none) are accepted. Only for a key that signs tokens for this
        /// application alone.
        pub fn rs256_pem_any_audience(
            public_key_pem: &[u8],
        ) -> std::result::Result<Self, AuthError> {
            let key = DecodingKey::from_rsa_pem(public_key_pem)
                .map_err(|error| AuthError::InvalidKey(error.to_string()))?;
            Ok(JwtAuthorizer::with_key(key, JwtAlgorithm::Rs256))
        }

        /// Only tokens whose `aud` holds one of the audiences set this way.
        pub fn audience(mut self, audience: impl Into<String>) -> Self {
            let mut all = self.validation.aud.take().unwrap_or_default();
            all.insert(audience.into());
            self.validation.aud = Some(all);
            self.validation.validate_aud = true;
            self.validation
                .required_spec_claims
                .insert("aud".to_owned());
            self
        }

        /// Only tokens whose `iss` is one of the issuers set this way.
        pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
            let mut all = self.validation.iss.take().unwrap_or_default();
            all.insert(issuer.into());
            self.validation.iss = Some(all);
            self.validation
                .required_spec_claims
                .insert("iss".to_owned());
            self
        }

        /// Clock skew allowed on `exp` and `nbf`, in seconds.
        pub fn leeway_secs(mut self, leeway: u64) -> Self {
            self.validation.leeway = leeway;
            self
        }

        /// Reads the token from these sources, in order, instead of the defaults.
        pub fn sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
            self.sources = sources.into_iter().collect();
            self
        }

        /// The algorithm it accepts.
        pub fn algorithm(&self) -> JwtAlgorithm {
            self.algorithm
        }

        /// The decision for `request`, without a router; a denial's reason is logged.
        pub fn decide(&self, request: &Request) -> Authorization {
            let Some(token) = find_token(&self.sources, request) else {
                tracing::info!(connection_id = %request.connection_id, "no token");
                return Authorization::Deny(UNAUTHORIZED);
            };
            match self.verify(&token) {
                Ok(context) => Authorization::Allow(context),
                Err((status, reason)) => {
                    tracing::info!(connection_id = %request.connection_id, status, reason, "token refused");
                    Authorization::Deny(status)
                }
            }
        }

        /// Verifies one token: its flat context, or the status and reason to refuse it.
        pub fn verify(&self, token: &str) -> std::result::Result<Value, (u16, String)> {
            let data =
                jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
                    .map_err(|error| {
                        let status = match error.kind() {
                            ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => FORBIDDEN,
                            _ => UNAUTHORIZED,
                        };
                        (status, error.to_string())
                    })?;
            let claims = data.claims;
            let subject = match claims.get("sub") {
                Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
                _ => return Err((UNAUTHORIZED, "`sub` is not a non-empty string".to_owned())),
            };
            // An array entry that the comma-separated context would split into other
            // roles: refused rather than reinterpreted.
            if let Some(Value::Array(roles)) = claims.get(ROLES_KEY) {
                if let Some(problem) = roles
                    .iter()
                    .filter_map(Value::as_str)
                    .find_map(|role| check_role(role).err())
                {
                    return Err((UNAUTHORIZED, format!("`roles`: {problem}")));
                }
            }
            Ok(flat_context(subject, claims))
        }
    }

    /// `principalId`, `roles` and every other claim as a string, number or boolean.
    fn flat_context(subject: String, claims: Map<String, Value>) -> Value {
        let mut context = Map::new();
        let roles = claims.get(ROLES_KEY).map(roles_of).unwrap_or_default();
        for (name, value) in claims {
            if name == ROLES_KEY || name == PRINCIPAL_KEY {
                continue;
            }
            let value = match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => value,
                Value::Null => continue,
                other => Value::String(other.to_string()),
            };
            context.insert(name, value);
        }
        context.insert(PRINCIPAL_KEY.to_owned(), Value::String(subject));
        context.insert(ROLES_KEY.to_owned(), Value::String(join_roles(&roles)));
        Value::Object(context)
    }

    #[async_trait]
    impl<S: Send + Sync + 'static> Authorizer<S> for JwtAuthorizer {
        async fn authorize(&self, _ctx: Context<S>, request: Request) -> Result<Authorization> {
            Ok(self.decide(&request))
        }

        fn subprotocol(&self) -> Option<&str> {
            subprotocol_marker(&self.sources)
        }
    }
}
