//! CORS for HTTP routes: which websites' pages may call them from a browser.
//!
//! A browser lets a page read an answer from another origin only when the answer names
//! the page's origin (or `*`) in `Access-Control-Allow-Origin`, and asks first with an
//! `OPTIONS` preflight before a request carrying `Authorization`. [`CorsOrigins`] is the
//! allow-list, parsed from a setting such as `https://dash.example, http://localhost:5173`;
//! [`Cors`] adds the headers to an [`HttpResponse`]: the request's origin when listed
//! (nothing at all otherwise, so no other site's page can read it), the methods and
//! request headers allowed, how long a preflight may be cached, and `Vary: origin` so a
//! cache never serves one origin's answer to another.
//!
//! ```
//! use wsgw_core::cors::{Cors, CorsOrigins};
//! use wsgw_core::http::{Request, StatusCode};
//! use wsgw_core::{IntoHttpResponse, Payload};
//!
//! let cors = Cors::new(CorsOrigins::parse("https://dash.example")?);
//! let request = Request::get("/history")
//!     .header("Origin", "https://dash.example")
//!     .body(Payload::default())
//!     .unwrap();
//! let answer = cors.apply(&request, StatusCode::NO_CONTENT.into_http_response().unwrap());
//! assert_eq!(answer.headers()["access-control-allow-origin"], "https://dash.example");
//! assert_eq!(answer.headers()["access-control-allow-methods"], "GET, OPTIONS");
//! assert_eq!(answer.headers()["vary"], "origin");
//! # Ok::<(), wsgw_core::cors::InvalidOrigin>(())
//! ```

use ::http::header::{self, HeaderValue};

use crate::{HttpRequest, HttpRequestExt, HttpResponse};

/// The origins whose pages may read an HTTP route's answers
/// (`Access-Control-Allow-Origin`): any, or a list.
///
/// ```
/// use wsgw_core::cors::CorsOrigins;
///
/// let only = CorsOrigins::parse("https://dash.example, http://localhost:5173")?;
/// assert_eq!(only.allow(Some("https://dash.example")), Some("https://dash.example"));
/// assert_eq!(only.allow(Some("https://evil.example")), None);
/// assert_eq!(only.allow(None), None);
/// assert_eq!(CorsOrigins::parse("*")?.allow(Some("https://evil.example")), Some("*"));
/// assert_eq!(CorsOrigins::parse("")?, CorsOrigins::Only(Vec::new()));
/// assert!(CorsOrigins::parse("https://dash.example/path").is_err());
/// # Ok::<(), wsgw_core::cors::InvalidOrigin>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any website.
    Any,
    /// Only these origins (none when empty).
    Only(Vec<String>),
}

/// An entry of an origin list that is not an origin (`scheme://host[:port]`, http or
/// https, nothing after the host).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin:?} is not an origin: write scheme://host[:port], such as https://dash.example.com, or *")]
pub struct InvalidOrigin {
    /// The entry as written.
    pub origin: String,
}

impl CorsOrigins {
    /// `*`, or origins (`scheme://host[:port]`, http or https) separated by commas; blank
    /// entries are ignored, so an empty list allows no origin.
    pub fn parse(list: &str) -> Result<Self, InvalidOrigin> {
        if list.trim() == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::new();
        for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let valid = origin.split_once("://").is_some_and(|(scheme, host)| {
                matches!(scheme, "http" | "https")
                    && !host.is_empty()
                    && !host.contains(['/', '?', '#', ' '])
            });
            if !valid {
                return Err(InvalidOrigin {
                    origin: origin.to_owned(),
                });
            }
            origins.push(origin.to_owned());
        }
        Ok(CorsOrigins::Only(origins))
    }

    /// The `Access-Control-Allow-Origin` to answer a request from `origin` with: `*`, the
    /// origin itself when listed, else none.
    pub fn allow<'a>(&'a self, origin: Option<&'a str>) -> Option<&'a str> {
        match self {
            CorsOrigins::Any => Some("*"),
            CorsOrigins::Only(origins) => {
                let origin = origin?;
                origins.iter().any(|o| o == origin).then_some(origin)
            }
        }
    }
}

/// The CORS headers of an HTTP API: its allowed [`CorsOrigins`], and what a preflight is
/// answered (methods `GET, OPTIONS`, request headers `content-type, authorization`,
/// cached for 600 s unless set otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    origins: CorsOrigins,
    methods: HeaderValue,
    headers: HeaderValue,
    max_age_seconds: u32,
}

impl Cors {
    /// CORS for `origins`, with the default methods, request headers and max age.
    pub fn new(origins: CorsOrigins) -> Self {
        Cors {
            origins,
            methods: HeaderValue::from_static("GET, OPTIONS"),
            headers: HeaderValue::from_static("content-type, authorization"),
            max_age_seconds: 600,
        }
    }

    /// The methods a preflight allows (`Access-Control-Allow-Methods`), such as
    /// `"GET, POST, OPTIONS"`.
    pub fn allow_methods(mut self, methods: &'static str) -> Self {
        self.methods = HeaderValue::from_static(methods);
        self
    }

    /// The request headers a preflight allows (`Access-Control-Allow-Headers`).
    pub fn allow_headers(mut self, headers: &'static str) -> Self {
        self.headers = HeaderValue::from_static(headers);
        self
    }

    /// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`).
    pub fn max_age_seconds(mut self, seconds: u32) -> Self {
        self.max_age_seconds = seconds;
        self
    }

    /// The allowed origins.
    pub fn origins(&self) -> &CorsOrigins {
        &self.origins
    }

    /// `response` with the CORS headers for `request`: `Access-Control-Allow-Origin`
    /// only when the request's `Origin` is allowed (an answer naming another origin would
    /// leak which ones are), the allowed methods, headers and max age, and
    /// `Vary: origin`. Any of these the response already had is replaced.
    ///
    /// ```
    /// use wsgw_core::cors::{Cors, CorsOrigins};
    /// use wsgw_core::http::{Request, StatusCode};
    /// use wsgw_core::{IntoHttpResponse, Payload};
    ///
    /// let cors = Cors::new(CorsOrigins::Only(vec!["https://dash.example".into()]))
    ///     .allow_methods("GET, POST, OPTIONS")
    ///     .max_age_seconds(60);
    /// let from_elsewhere = Request::get("/devices")
    ///     .header("Origin", "https://evil.example")
    ///     .body(Payload::default())
    ///     .unwrap();
    /// let answer = cors.apply(&from_elsewhere, StatusCode::OK.into_http_response().unwrap());
    /// assert!(answer.headers().get("access-control-allow-origin").is_none());
    /// assert_eq!(answer.headers()["access-control-allow-methods"], "GET, POST, OPTIONS");
    /// assert_eq!(answer.headers()["access-control-max-age"], "60");
    /// ```
    pub fn apply(&self, request: &HttpRequest, response: HttpResponse) -> HttpResponse {
        self.apply_for_origin(request.header_text("origin"), response)
    }

    /// [`apply`](Self::apply) for a request whose `Origin` header was `origin`.
    pub(crate) fn apply_for_origin(
        &self,
        origin: Option<&str>,
        mut response: HttpResponse,
    ) -> HttpResponse {
        let headers = response.headers_mut();
        let allowed = self.origins.allow(origin);
        match allowed.and_then(|origin| HeaderValue::try_from(origin).ok()) {
            Some(origin) => headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            None => headers.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, self.headers.clone());
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age_seconds.into());
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IntoHttpResponse, Payload};
    use ::http::StatusCode;

    fn request(origin: Option<&str>) -> HttpRequest {
        let mut request = ::http::Request::get("/history");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.body(Payload::default()).expect("a request")
    }

    fn ok() -> HttpResponse {
        StatusCode::OK.into_http_response().expect("a response")
    }

    #[test]
    fn any_origin_is_answered_with_a_star_even_without_an_origin_header() {
        let cors = Cors::new(CorsOrigins::Any);
        for origin in [None, Some("https://a.example")] {
            let answer = cors.apply(&request(origin), ok());
            assert_eq!(answer.headers()["access-control-allow-origin"], "*");
        }
    }

    #[test]
    fn an_unlisted_origin_gets_no_allow_origin_even_if_the_handler_set_one() {
        let cors = Cors::new(CorsOrigins::parse("https://dash.example").expect("an origin"));
        let mut answer = ok();
        answer.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        let answer = cors.apply(&request(Some("https://evil.example")), answer);
        assert!(answer
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        assert_eq!(answer.headers()["vary"], "origin");
        assert_eq!(
            answer.headers()["access-control-allow-headers"],
            "content-type, authorization"
        );
        assert_eq!(answer.headers()["access-control-max-age"], "600");
    }

    #[test]
    fn a_listed_origin_is_echoed_back_and_the_status_and_body_are_kept() {
        let cors = Cors::new(
            CorsOrigins::parse(" https://a.example ,http://localhost:5173").expect("origins"),
        );
        let answer = (StatusCode::NOT_FOUND, "gone")
            .into_http_response()
            .expect("ok");
        let answer = cors.apply(&request(Some("http://localhost:5173")), answer);
        assert_eq!(
            answer.headers()["access-control-allow-origin"],
            "http://localhost:5173"
        );
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        assert_eq!(answer.body().as_text(), Some("gone"));
    }

    #[test]
    fn entries_that_are_not_origins_are_refused_naming_the_entry() {
        for bad in [
            "dash.example",
            "ftp://dash.example",
            "https://",
            "https://dash.example/",
            "https://dash.example?x=1",
            "https://a.example, https://b example",
        ] {
            let error = CorsOrigins::parse(bad).expect_err(bad);
            assert!(bad.contains(&error.origin), "{bad}: {error}");
            assert!(
                error.to_string().contains("scheme://host[:port]"),
                "{error}"
            );
        }
    }
}
