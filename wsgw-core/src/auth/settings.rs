//! JWT settings from the environment (`WSGW_JWT_*`), for binaries that turn auth on
//! without code.

use super::{AuthError, JwtAuthorizer};

/// Environment variable: an HS256 secret of at least 32 bytes
/// ([`MIN_HS256_SECRET_BYTES`](super::MIN_HS256_SECRET_BYTES)); when set,
/// clients must present a JWT signed with it (the subprotocols `wsgw.bearer, TOKEN`,
/// `Authorization: Bearer`, or `?token=`).
pub const JWT_SECRET_ENV: &str = "WSGW_JWT_SECRET";
/// Environment variable: a PEM file with an RSA public key; when set, clients must
/// present an RS256 JWT it verifies, for [`JWT_AUDIENCE_ENV`].
pub const JWT_PUBLIC_KEY_FILE_ENV: &str = "WSGW_JWT_PUBLIC_KEY_FILE";
/// Environment variable: the audience tokens must name (`aud`); required with
/// [`JWT_PUBLIC_KEY_FILE_ENV`] unless [`JWT_ANY_AUDIENCE_ENV`] is `true`.
pub const JWT_AUDIENCE_ENV: &str = "WSGW_JWT_AUDIENCE";
/// Environment variable: `true` accepts RS256 tokens for any audience (only for a key
/// that signs tokens for this system alone).
pub const JWT_ANY_AUDIENCE_ENV: &str = "WSGW_JWT_ANY_AUDIENCE";
/// Environment variable: the issuer tokens must name (`iss`), optional.
pub const JWT_ISSUER_ENV: &str = "WSGW_JWT_ISSUER";

/// Why the JWT settings cannot be used; every message names the variable to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSettingsError {
    /// The HS256 secret is refused (too short).
    #[error("{var}: {0}", var = JWT_SECRET_ENV)]
    Secret(#[source] AuthError),
    /// The public key file cannot be read or used.
    #[error("{var}: {0}", var = JWT_PUBLIC_KEY_FILE_ENV)]
    PublicKey(String),
    /// RS256 without an audience and without the explicit opt-out.
    #[error(
        "{} needs {}: an RSA key usually signs tokens for many applications, and without the audience check a token for any of them would open the system; set {}=<the aud of the system's tokens>, or {}=true to accept any audience",
        JWT_PUBLIC_KEY_FILE_ENV, JWT_AUDIENCE_ENV, JWT_AUDIENCE_ENV, JWT_ANY_AUDIENCE_ENV
    )]
    AudienceRequired,
    /// A variable holding something else than it takes.
    #[error("{name}={value:?}: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it holds.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
}

/// The optional JWT settings of a system, as its environment gives them (the runner of
/// `wsgw-aws` reads them for every mode: local, Lambda and `invoke`); [`JwtSettings::authorizer`] is `None` (auth off)
/// unless a secret or a public key is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtSettings {
    /// HS256 shared secret (at least 32 bytes).
    pub secret: Option<String>,
    /// RS256 public key, PEM text.
    pub public_key_pem: Option<String>,
    /// Required `aud` (required itself with a public key, unless `any_audience`).
    pub audience: Option<String>,
    /// With a public key and no audience: accept tokens for any audience.
    pub any_audience: bool,
    /// Required `iss`.
    pub issuer: Option<String>,
}

impl JwtSettings {
    /// From [`JWT_SECRET_ENV`], [`JWT_PUBLIC_KEY_FILE_ENV`] (read here),
    /// [`JWT_AUDIENCE_ENV`], [`JWT_ANY_AUDIENCE_ENV`] and [`JWT_ISSUER_ENV`]; empty values
    /// are unset.
    pub fn from_env() -> std::result::Result<Self, JwtSettingsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let public_key_pem = match var(JWT_PUBLIC_KEY_FILE_ENV) {
            Some(path) => Some(std::fs::read_to_string(path.trim()).map_err(|error| {
                JwtSettingsError::PublicKey(format!("cannot read {path}: {error}"))
            })?),
            None => None,
        };
        let any_audience = match var(JWT_ANY_AUDIENCE_ENV).as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(JwtSettingsError::Invalid {
                    name: JWT_ANY_AUDIENCE_ENV,
                    value: other.to_owned(),
                    expected: "true or false",
                })
            }
        };
        Ok(JwtSettings {
            secret: var(JWT_SECRET_ENV),
            public_key_pem,
            audience: var(JWT_AUDIENCE_ENV),
            any_audience,
            issuer: var(JWT_ISSUER_ENV),
        })
    }

    /// The `$connect` authorizer these settings ask for (RS256 when a public key is
    /// given, else HS256), or `None`. A secret shorter than 32 bytes, and a public key
    /// without an audience (unless `any_audience`), are refused.
    ///
    /// ```
    /// use wsgw_core::auth::JwtSettings;
    ///
    /// let off = JwtSettings::default();
    /// assert!(off.authorizer().unwrap().is_none());
    /// let on = JwtSettings {
    ///     secret: Some("a random secret of at least 32 bytes".into()),
    ///     ..Default::default()
    /// };
    /// assert!(on.authorizer().unwrap().is_some());
    /// let weak = JwtSettings { secret: Some("s3cret".into()), ..Default::default() };
    /// let error = weak.authorizer().unwrap_err().to_string();
    /// assert!(error.starts_with("WSGW_JWT_SECRET: ") && error.contains("32 bytes"));
    /// ```
    pub fn authorizer(&self) -> std::result::Result<Option<JwtAuthorizer>, JwtSettingsError> {
        let authorizer = match (&self.public_key_pem, &self.secret) {
            (Some(pem), _) => match (&self.audience, self.any_audience) {
                (Some(audience), _) => JwtAuthorizer::rs256_pem(pem.as_bytes(), audience.clone()),
                (None, true) => JwtAuthorizer::rs256_pem_any_audience(pem.as_bytes()),
                (None, false) => return Err(JwtSettingsError::AudienceRequired),
            }
            .map_err(|error| JwtSettingsError::PublicKey(error.to_string()))?,
            (None, Some(secret)) => {
                let authorizer =
                    JwtAuthorizer::hs256(secret.as_bytes()).map_err(JwtSettingsError::Secret)?;
                match &self.audience {
                    Some(audience) => authorizer.audience(audience.clone()),
                    None => authorizer,
                }
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(match &self.issuer {
            Some(issuer) => authorizer.issuer(issuer.clone()),
            None => authorizer,
        }))
    }
}
