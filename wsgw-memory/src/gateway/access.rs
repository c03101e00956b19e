//! Who may call the gateway's Management API (`@connections`), and read its metrics.
//!
//! On AWS every `@connections` call is signed with Signature Version 4 and allowed by IAM.
//! The LocalGateway checks signatures the same way, against one key pair it knows
//! ([`ManagementCredentials`]); calls from loopback may skip signing
//! ([`ManagementAccess::trust_loopback`], on by default) so `curl` walkthroughs keep
//! working, which is a deliberate difference from AWS.
//!
//! That exemption must not reach web pages: a page the user has open in a browser on the
//! same machine is a loopback caller too. So `@connections` and the metrics answer only
//! requests whose `Host` names the gateway as it is reached (which a page that rebinds
//! its own domain to 127.0.0.1 cannot fake: its requests carry its domain), and refuse
//! requests a browser marks as coming from a page of another origin (`Origin`,
//! `Sec-Fetch-Site`); see [`ManagementAccess::allow_host`] and
//! [`ManagementAccess::allow_origin`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::uri::{Authority, Uri};
use axum::http::{header, HeaderMap};

use super::sigv4::Refusal;
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
    hosts: Vec<AllowedHost>,
    origins: Vec<AllowedOrigin>,
}

/// A bad [`AllowedHost`] or [`AllowedOrigin`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Not a host name or address, with an optional port.
    #[error("{given:?} is not a host name or address (with an optional port): {reason}")]
    InvalidHost {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not `http://` or `https://` with a host and an optional port.
    #[error("{given:?} is not a web origin such as https://app.example:3000: {reason}")]
    InvalidOrigin {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A name (or address) the gateway is reached by, besides loopback names and its listen
/// address: `laptop.local`, `host.docker.internal`, `192.168.1.20`. Compared without
/// case and without the port.
///
/// ```
/// use wsgw_memory::gateway::AllowedHost;
///
/// let host: AllowedHost = "Laptop.Local:8080".parse().unwrap();
/// assert_eq!(host.as_str(), "laptop.local");
/// assert!("http://laptop.local".parse::<AllowedHost>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedHost(String);

impl AllowedHost {
    /// The host, lower-case, IPv6 addresses without brackets.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AllowedHost {
    type Err = AccessError;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| AccessError::InvalidHost {
            given: given.to_owned(),
            reason,
        };
        if given.contains("://") || given.contains('/') {
            return Err(invalid("give the host alone, without a scheme or a path"));
        }
        let authority: Authority = given.trim().parse().map_err(|_| invalid("not a host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("no user name"));
        }
        let host = bare_host(authority.host());
        if host.is_empty() {
            return Err(invalid("empty"));
        }
        Ok(AllowedHost(host))
    }
}

/// A web origin whose pages may call `@connections` and read the metrics from a browser
/// (`https://grafana.example:3000`): scheme, host and port, compared without case.
///
/// ```
/// use wsgw_memory::gateway::AllowedOrigin;
///
/// let origin: AllowedOrigin = "https://Grafana.example:3000/".parse().unwrap();
/// assert_eq!(origin.as_str(), "https://grafana.example:3000");
/// assert!("grafana.example".parse::<AllowedOrigin>().is_err());
/// assert!("null".parse::<AllowedOrigin>().is_err());
/// assert!("https://grafana.example/d/1".parse::<AllowedOrigin>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    /// The origin as browsers send it in `Origin`, lower-case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AllowedOrigin {
    type Err = AccessError;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| AccessError::InvalidOrigin {
            given: given.to_owned(),
            reason,
        };
        let uri: Uri = given.trim().parse().map_err(|_| invalid("not a URL"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| invalid("no scheme (http:// or https://)"))?;
        if scheme != "http" && scheme != "https" {
            return Err(invalid("the scheme is not http or https"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("no user name"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("an origin has no path or query"));
        }
        Ok(AllowedOrigin(
            format!("{scheme}://{authority}").to_ascii_lowercase(),
        ))
    }
}

/// A host lower-case, without the brackets of an IPv6 address.
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
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
            hosts: Vec::new(),
            origins: Vec::new(),
        }
    }

    /// Lets `@connections` and the metrics answer requests whose `Host` is `host`, besides
    /// those they always answer: `localhost` and `*.localhost`, loopback addresses, and
    /// the address the gateway listens on (any of the machine's addresses when it
    /// listens on `0.0.0.0` or `[::]`). Other names are refused with 403
    /// `ForbiddenException`, as API Gateway refuses a `Host` it does not serve: a web
    /// page whose own domain was made to resolve to this machine (DNS rebinding) names
    /// its domain. Give the names other machines or containers use
    /// (`laptop.local`, `host.docker.internal`).
    ///
    /// ```
    /// use wsgw_memory::gateway::ManagementAccess;
    ///
    /// let access = ManagementAccess::default().allow_host("laptop.local".parse().unwrap());
    /// assert_eq!(access.allowed_hosts()[0].as_str(), "laptop.local");
    /// ```
    pub fn allow_host(mut self, host: AllowedHost) -> Self {
        if !self.hosts.contains(&host) {
            self.hosts.push(host);
        }
        self
    }

    /// Lets web pages of `origin` call `@connections` and read the metrics from a
    /// browser. Without it, a request a browser marks as sent by a page of another origin
    /// (an `Origin` header other than the gateway's own, or `Sec-Fetch-Site: cross-site`
    /// or `same-site`) is refused with 403 `ForbiddenException`, so a page on the web
    /// cannot post to, read or close the connections of a gateway on the same machine
    /// (a `no-cors` POST needs no answer to do harm). Pages the gateway serves itself,
    /// and addresses typed into the browser, are let through.
    ///
    /// ```
    /// use wsgw_memory::gateway::ManagementAccess;
    ///
    /// let access = ManagementAccess::default()
    ///     .allow_origin("http://localhost:3000".parse().unwrap());
    /// assert_eq!(access.allowed_origins()[0].as_str(), "http://localhost:3000");
    /// ```
    pub fn allow_origin(mut self, origin: AllowedOrigin) -> Self {
        if !self.origins.contains(&origin) {
            self.origins.push(origin);
        }
        self
    }

    /// The names given with [`allow_host`](Self::allow_host).
    pub fn allowed_hosts(&self) -> &[AllowedHost] {
        &self.hosts
    }

    /// The origins given with [`allow_origin`](Self::allow_origin).
    pub fn allowed_origins(&self) -> &[AllowedOrigin] {
        &self.origins
    }

    /// Whether a request to `@connections` or the metrics of a gateway listening on
    /// `local_addr` comes from where it may: a `Host` the gateway answers to, and no
    /// page of another origin. The refusal says why, for the client and the log.
    pub(super) fn check_origin(
        &self,
        local_addr: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        let forbidden = |message: String| Refusal::new("ForbiddenException", message);
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .ok_or_else(|| forbidden("Forbidden: the request names no Host".to_owned()))?;
        let authority: Authority = host
            .parse()
            .map_err(|_| forbidden(format!("Forbidden: Host {host:?} is not a host")))?;
        if !self.answers_to(&authority, local_addr) {
            return Err(forbidden(format!(
                "Forbidden: this gateway does not answer to Host {:?} (it answers to localhost, its IP addresses and names given with --allowed-host); a web page that made its own domain resolve to this machine (DNS rebinding) is refused so",
                authority.host()
            )));
        }
        let origin = headers
            .get(header::ORIGIN)
            .map(|origin| origin.to_str().unwrap_or("(not text)"));
        if let Some(origin) = origin {
            let own = format!("http://{}", authority.as_str());
            if origin.eq_ignore_ascii_case(&own)
                || self
                    .origins
                    .iter()
                    .any(|allowed| origin.eq_ignore_ascii_case(allowed.as_str()))
            {
                return Ok(());
            }
            return Err(forbidden(format!(
                "Forbidden: a web page of origin {origin:?} may not call this endpoint (allow its origin with --allowed-origin)"
            )));
        }
        let site = headers
            .get("sec-fetch-site")
            .and_then(|site| site.to_str().ok());
        match site {
            Some(site)
                if site.eq_ignore_ascii_case("cross-site")
                    || site.eq_ignore_ascii_case("same-site") =>
            {
                Err(forbidden(format!(
                    "Forbidden: a web page of another origin may not call this endpoint (Sec-Fetch-Site: {site})"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether `authority` (a request's `Host`) names the gateway listening on
    /// `local_addr`. Any port: port forwarding and proxies change it.
    fn answers_to(&self, authority: &Authority, local_addr: SocketAddr) -> bool {
        let host = bare_host(authority.host());
        if self.hosts.iter().any(|allowed| allowed.as_str() == host) {
            return true;
        }
        match host.parse::<IpAddr>() {
            // An address involves no name lookup, so it cannot be rebound.
            Ok(ip) => {
                let listening = local_addr.ip().to_canonical();
                is_loopback(ip) || listening.is_unspecified() || ip.to_canonical() == listening
            }
            Err(_) => host == "localhost" || host.ends_with(".localhost"),
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

    /// Another name this gateway is reached by, for `@connections` and the metrics
    /// (they always answer to localhost and the machine's addresses; other names are
    /// refused, against DNS rebinding): laptop.local, host.docker.internal. Repeat the
    /// flag or separate with commas.
    #[arg(
        long = "allowed-host",
        env = "WSGW_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<AllowedHost>,

    /// A web origin whose pages may call `@connections` and read the metrics from a
    /// browser (pages of other origins are refused): `https://grafana.example:3000`.
    /// Repeat the flag or separate with commas.
    #[arg(
        long = "allowed-origin",
        env = "WSGW_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<AllowedOrigin>,
}

#[cfg(feature = "cli")]
impl ManagementArgs {
    /// The access these arguments ask for.
    pub fn access(&self) -> ManagementAccess {
        let credentials = match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => ManagementCredentials::new(id, secret),
            _ => ManagementCredentials::generate(),
        };
        let access = ManagementAccess::new(credentials).trust_loopback(!self.require_signature);
        let access = self
            .allowed_hosts
            .iter()
            .cloned()
            .fold(access, ManagementAccess::allow_host);
        self.allowed_origins
            .iter()
            .cloned()
            .fold(access, ManagementAccess::allow_origin)
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

    fn with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        headers
    }

    #[test]
    fn the_machines_addresses_are_answered_only_when_listening_on_all_of_them() {
        let access = ManagementAccess::default();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let any_v6: SocketAddr = "[::]:8080".parse().unwrap();
        let lan: SocketAddr = "192.168.1.20:8080".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for (listening, host, answered) in [
            (any, "192.168.1.20:8080", true),
            (any, "10.0.0.5", true),
            (any_v6, "[fe80::1]:8080", true),
            (any_v6, "192.168.1.20", true),
            (lan, "192.168.1.20:8080", true),
            (lan, "127.0.0.1:8080", true),
            (lan, "10.0.0.5:8080", false),
            (loopback, "192.168.1.20:8080", false),
            (loopback, "[::ffff:127.0.0.1]:8080", true),
            (any, "laptop.local:8080", false),
            (any, "localhost.:8080", false),
        ] {
            assert_eq!(
                access.check_origin(listening, &with_host(host)).is_ok(),
                answered,
                "{host} on a gateway listening on {listening}"
            );
        }
        let named = access.allow_host("Laptop.Local".parse().unwrap());
        assert!(named
            .check_origin(any, &with_host("laptop.local:8080"))
            .is_ok());
        assert!(named
            .check_origin(any, &HeaderMap::new())
            .is_err_and(|refusal| refusal.message.contains("no Host")));
    }

    #[test]
    fn hosts_and_origins_that_cannot_match_are_refused_with_the_reason() {
        for bad in [
            "",
            "http://laptop.local",
            "laptop.local/x",
            "user@laptop.local",
            "la ptop",
        ] {
            let error = bad.parse::<AllowedHost>().unwrap_err();
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
        for bad in [
            "",
            "null",
            "grafana.example",
            "ftp://grafana.example",
            "https://grafana.example/d",
            "https://grafana.example?x=1",
            "https://u@grafana.example",
        ] {
            let error = bad.parse::<AllowedOrigin>().unwrap_err();
            assert!(error.to_string().contains("web origin"), "{error}");
        }
        assert_eq!("[::1]:8080".parse::<AllowedHost>().unwrap().as_str(), "::1");
    }

    #[cfg(feature = "cli")]
    #[test]
    fn the_flags_add_hosts_and_origins_and_refuse_bad_ones() {
        use clap::Parser;

        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            management: ManagementArgs,
        }

        let cli = Cli::try_parse_from([
            "gateway",
            "--allowed-host",
            "laptop.local,host.docker.internal",
            "--allowed-host",
            "192.168.1.20",
            "--allowed-origin",
            "http://localhost:3000",
        ])
        .expect("valid flags");
        let access = cli.management.access();
        let hosts: Vec<&str> = access
            .allowed_hosts()
            .iter()
            .map(AllowedHost::as_str)
            .collect();
        assert_eq!(
            hosts,
            ["laptop.local", "host.docker.internal", "192.168.1.20"]
        );
        assert_eq!(
            access.allowed_origins()[0].as_str(),
            "http://localhost:3000"
        );

        let error = Cli::try_parse_from(["gateway", "--allowed-origin", "localhost:3000"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--allowed-origin") && error.contains("web origin"),
            "{error}"
        );
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
