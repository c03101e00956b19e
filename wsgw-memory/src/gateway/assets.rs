//! Static files served to plain HTTP `GET`s.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Static files, by URL path: compiled into the binary ([`file`](Self::file)) or read at
/// start ([`owned`](Self::owned)). `/` serves `/index.html`.
///
/// Lookups are exact matches in a map, so `..` or encoded paths can never reach the file
/// system.
///
/// ```
/// use wsgw_memory::gateway::Assets;
///
/// let assets = Assets::new().file("/index.html", "<h1>chat</h1>");
/// assert!(assets.contains("/"));
/// assert!(!assets.contains("/../etc/passwd"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Assets {
    files: Arc<HashMap<String, (HeaderValue, Bytes)>>,
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl Assets {
    /// No files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at a URL path (`/index.html`); its type follows the extension.
    pub fn file(self, path: &str, contents: &'static str) -> Self {
        self.bytes(path, contents.as_bytes())
    }

    /// Adds a binary file at a URL path.
    pub fn bytes(self, path: &str, contents: &'static [u8]) -> Self {
        self.insert(path, Bytes::from_static(contents))
    }

    /// Adds a file read at run time (a page directory given on the command line) at a
    /// URL path.
    ///
    /// ```
    /// use wsgw_memory::gateway::Assets;
    ///
    /// let page = String::from("<h1>read at start</h1>").into_bytes();
    /// assert!(Assets::new().owned("index.html", page).contains("/"));
    /// ```
    pub fn owned(self, path: &str, contents: Vec<u8>) -> Self {
        self.insert(path, Bytes::from(contents))
    }

    fn insert(mut self, path: &str, contents: Bytes) -> Self {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let kind = HeaderValue::from_static(content_type(&path));
        Arc::make_mut(&mut self.files).insert(path, (kind, contents));
        self
    }

    fn lookup(&self, path: &str) -> Option<&(HeaderValue, Bytes)> {
        let path = if path == "/" { "/index.html" } else { path };
        self.files.get(path)
    }

    /// Whether a path serves a file.
    pub fn contains(&self, path: &str) -> bool {
        self.lookup(path).is_some()
    }

    pub(crate) fn respond(&self, path: &str) -> Response {
        match self.lookup(path) {
            Some((kind, contents)) => {
                ([(header::CONTENT_TYPE, kind.clone())], contents.clone()).into_response()
            }
            None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
        }
    }
}
