//! Where the device connects: `ws://` / `wss://` URLs and the request line it sends.

use core::fmt::{self, Write as _};

/// Longest request target (`/stage?role=device&device_id=…&token=…`) [`Endpoint::device_target`]
/// builds.
pub const MAX_TARGET_LEN: usize = 512;
/// Longest `Host` header value [`Endpoint::host_header`] builds.
pub const MAX_HOST_LEN: usize = 260;

/// A parsed `ws://` or `wss://` URL, borrowing from the URL string.
///
/// ```
/// use telemetry_device::Endpoint;
///
/// let api = Endpoint::parse("wss://abc123.execute-api.eu-west-1.amazonaws.com/production")?;
/// assert!(api.tls);
/// assert_eq!(api.host, "abc123.execute-api.eu-west-1.amazonaws.com");
/// assert_eq!(api.port, 443);
/// let target = api.device_target("esp32-01", None)?;
/// assert_eq!(target, "/production?role=device&device_id=esp32-01");
/// # Ok::<(), telemetry_device::UrlError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// `wss://`: TLS with server verification.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: &'a str,
    /// TCP port (80 for `ws://`, 443 for `wss://` unless given).
    pub port: u16,
    /// Path, `/` when the URL has none (API Gateway's is `/{stage}`).
    pub path: &'a str,
    /// The query the URL already carries, without `?`.
    pub query: Option<&'a str>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// Not `ws://` or `wss://`.
    Scheme,
    /// No host, or one with characters a host cannot have.
    Host,
    /// A port that is not a number in 1–65535.
    Port,
    /// User info (`user:pass@`) or a fragment, which the device does not send.
    Unsupported,
    /// The request target or `Host` header would be longer than the device's buffers.
    TooLong,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "the URL must start with ws:// or wss://",
            UrlError::Host => "the URL has no valid host",
            UrlError::Port => "the URL's port must be 1-65535",
            UrlError::Unsupported => "user info and fragments are not supported in the URL",
            UrlError::TooLong => "the URL is too long for the device's buffers",
        })
    }
}

impl core::error::Error for UrlError {}

impl<'a> Endpoint<'a> {
    /// Parses `ws://host[:port][/path][?query]` or the same with `wss://`.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        let url = url.trim();
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "wss://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "ws://") {
            (false, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        if rest.contains('#') {
            return Err(UrlError::Unsupported);
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(UrlError::Unsupported);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(port) => port,
            None if tls => 443,
            None => 80,
        };
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, Some(query).filter(|q| !q.is_empty())),
            None => (tail, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::Unsupported);
        }
        Ok(Endpoint {
            tls,
            host,
            port,
            path,
            query,
        })
    }

    /// The request target a device opens:
    /// `{path}?{query&}role=device&device_id={id}[&token={token}]`, values
    /// percent-encoded.
    pub fn device_target(
        &self,
        device_id: &str,
        token: Option<&str>,
    ) -> Result<heapless::String<MAX_TARGET_LEN>, UrlError> {
        let mut target = heapless::String::new();
        let mut write = || -> fmt::Result {
            target.write_str(self.path)?;
            target.write_char('?')?;
            if let Some(query) = self.query {
                target.write_str(query)?;
                target.write_char('&')?;
            }
            target.write_str("role=device&device_id=")?;
            percent_encode(&mut target, device_id)?;
            if let Some(token) = token.filter(|t| !t.is_empty()) {
                target.write_str("&token=")?;
                percent_encode(&mut target, token)?;
            }
            Ok(())
        };
        write().map_err(|_| UrlError::TooLong)?;
        Ok(target)
    }

    /// The `Host` header: the host, with the port when it is not the scheme's default.
    pub fn host_header(&self) -> Result<heapless::String<MAX_HOST_LEN>, UrlError> {
        let mut out = heapless::String::new();
        let default_port = if self.tls { 443 } else { 80 };
        let bracket = self.host.contains(':');
        let result = (|| -> fmt::Result {
            if bracket {
                write!(out, "[{}]", self.host)?;
            } else {
                out.write_str(self.host)?;
            }
            if self.port != default_port {
                write!(out, ":{}", self.port)?;
            }
            Ok(())
        })();
        result.map_err(|_| UrlError::TooLong)?;
        Ok(out)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::Host)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::Port)?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !valid_host {
        return Err(UrlError::Host);
    }
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(UrlError::Port),
            Ok(port) => Some(port),
        },
    };
    Ok((host, port))
}

/// Writes `value` percent-encoded for a query string (RFC 3986 unreserved characters
/// stay as they are).
fn percent_encode(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.write_char(b as char)?;
        } else {
            write!(out, "%{b:02X}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_gateway_url_is_tls_on_443_with_the_stage_as_path() {
        let e = Endpoint::parse("wss://abc.execute-api.us-east-1.amazonaws.com/prod").unwrap();
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "abc.execute-api.us-east-1.amazonaws.com",
                port: 443,
                path: "/prod",
                query: None,
            }
        );
        assert_eq!(
            e.host_header().unwrap(),
            "abc.execute-api.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn a_local_gateway_url_is_plain_with_its_port() {
        let e = Endpoint::parse("ws://192.168.1.20:8080").unwrap();
        assert!(!e.tls);
        assert_eq!((e.host, e.port, e.path), ("192.168.1.20", 8080, "/"));
        assert_eq!(e.host_header().unwrap(), "192.168.1.20:8080");
        assert_eq!(
            e.device_target("esp32-01", None).unwrap(),
            "/?role=device&device_id=esp32-01"
        );
    }

    #[test]
    fn the_token_and_an_existing_query_are_kept_and_encoded() {
        let e = Endpoint::parse("WS://host/dev?x=1").unwrap();
        assert_eq!(
            e.device_target("esp32:01", Some("a b&c=d")).unwrap(),
            "/dev?x=1&role=device&device_id=esp32%3A01&token=a%20b%26c%3Dd"
        );
        assert_eq!(
            e.device_target("d", Some("")).unwrap(),
            "/dev?x=1&role=device&device_id=d",
            "an empty token is no token"
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_the_url_and_the_host_header() {
        let e = Endpoint::parse("ws://[::1]:9000/local").unwrap();
        assert_eq!((e.host, e.port, e.path), ("::1", 9000, "/local"));
        assert_eq!(e.host_header().unwrap(), "[::1]:9000");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        assert_eq!(Endpoint::parse("https://x/"), Err(UrlError::Scheme));
        assert_eq!(Endpoint::parse("ws:///path"), Err(UrlError::Host));
        assert_eq!(Endpoint::parse("ws://ho st/"), Err(UrlError::Host));
        assert_eq!(Endpoint::parse("ws://host:0/"), Err(UrlError::Port));
        assert_eq!(Endpoint::parse("ws://host:99999/"), Err(UrlError::Port));
        assert_eq!(
            Endpoint::parse("ws://u:p@host/"),
            Err(UrlError::Unsupported)
        );
        assert_eq!(
            Endpoint::parse("ws://host/#frag"),
            Err(UrlError::Unsupported)
        );
    }

    #[test]
    fn a_target_too_long_for_the_buffer_is_refused() {
        let e = Endpoint::parse("ws://host/").unwrap();
        let token = "t".repeat(MAX_TARGET_LEN);
        assert_eq!(e.device_target("d", Some(&token)), Err(UrlError::TooLong));
    }
}
