//! Web pages against the LocalGateway's `@connections` and `/metrics` (issue 20,
//! finding 3). Unsigned `@connections` calls from loopback are let in (for `curl`), and a
//! page open in a browser on the same machine is a loopback caller too: a `no-cors` POST
//! from any site, or a site that makes its own domain resolve to 127.0.0.1 (DNS
//! rebinding), must not post to, read or close anyone's connection, nor read the metrics.
//!
//! The attacks are made with a real HTTP client (reqwest) sending exactly the headers a
//! browser sends for them; `examples/echo/web-tests` makes the same attacks from a page
//! in headless Chromium.

#[path = "support/clients.rs"]
mod clients;

use clients::{next_text, whoami, Client, WAIT};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsgw_core::{Context, Reply, Request, Router};
use wsgw_memory::gateway::{LocalGateway, ManagementAccess, RunningGateway};

/// Where `$connect` reports the `Origin` header it saw.
struct Origins(mpsc::UnboundedSender<Option<String>>);

fn router(origins: mpsc::UnboundedSender<Option<String>>) -> Router<Origins> {
    Router::with_state(Origins(origins))
        .on_connect(|ctx: Context<Origins>, request: Request| async move {
            let _ = ctx
                .state()
                .0
                .send(request.header("origin").map(str::to_owned));
            Ok(Reply::ok())
        })
        .two_way_route(
            "whoami",
            |_ctx: Context<Origins>, request: Request| async move {
                Reply::json(&json!({ "connection_id": request.connection_id }))
            },
        )
}

struct Fixture {
    gateway: RunningGateway,
    origins: mpsc::UnboundedReceiver<Option<String>>,
}

async fn start(access: ManagementAccess) -> Fixture {
    let (origins_tx, origins) = mpsc::unbounded_channel();
    let gateway = LocalGateway::new(router(origins_tx))
        .management_access(access)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback");
    Fixture { gateway, origins }
}

impl Fixture {
    fn port(&self) -> u16 {
        self.gateway.local_addr().port()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.local_addr())
    }

    /// A connected client and its connection id.
    async fn victim(&self) -> (Client, String) {
        let (mut client, _) = tokio_tungstenite::connect_async(self.gateway.stage_url())
            .await
            .expect("handshake");
        let id = whoami(&mut client).await;
        (client, id)
    }

    /// A plain loopback `POST` (no browser headers) that must be delivered: proof that
    /// nothing refused before it was delivered either, when it is the next message.
    async fn post_marker(&self, id: &str, client: &mut Client) {
        let answer = send(
            "POST",
            &self.url(&format!("/local/@connections/{id}")),
            &[],
            "marker",
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            next_text(client).await,
            "marker",
            "the refused calls delivered nothing"
        );
    }
}

struct Answer {
    status: u16,
    error_type: Option<String>,
    body: String,
}

/// One HTTP request with exactly these headers (a `Host` among them replaces the URL's).
async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let client = reqwest::Client::new();
    let mut request = client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            url,
        )
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("HTTP request");
    Answer {
        status: response.status().as_u16(),
        error_type: response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: response.text().await.expect("body"),
    }
}

/// What Chromium sends with `fetch(url, {method: "POST", mode: "no-cors", body})` from a
/// page at `https://attacker.example`.
const NO_CORS_FROM_ANOTHER_SITE: [(&str, &str); 4] = [
    ("origin", "https://attacker.example"),
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-mode", "no-cors"),
    ("content-type", "text/plain;charset=UTF-8"),
];

#[tokio::test]
async fn a_page_on_another_site_cannot_post_read_or_close_a_connection_through_loopback() {
    let fixture = start(ManagementAccess::default()).await;
    let (mut victim, id) = fixture.victim().await;
    let endpoint = fixture.url(&format!("/local/@connections/{id}"));
    for method in ["POST", "GET", "DELETE"] {
        let answer = send(method, &endpoint, &NO_CORS_FROM_ANOTHER_SITE, "pwned").await;
        assert_eq!(answer.status, 403, "{method}: {}", answer.body);
        assert_eq!(
            answer.error_type.as_deref(),
            Some("ForbiddenException"),
            "{method}"
        );
        let message = serde_json::from_str::<Value>(&answer.body).expect("AWS's JSON error");
        assert!(
            message["message"]
                .as_str()
                .is_some_and(|m| m.contains("https://attacker.example")),
            "{}",
            answer.body
        );
    }
    // An `<img src>` or a navigation from another site sends no Origin, but says where
    // it comes from.
    let image = send(
        "GET",
        &endpoint,
        &[
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "no-cors"),
        ],
        "",
    )
    .await;
    assert_eq!(image.status, 403, "{}", image.body);
    // The same from a page on another port of this machine: same site, another origin.
    let other_port = send(
        "POST",
        &endpoint,
        &[
            ("origin", "http://localhost:3000"),
            ("sec-fetch-site", "same-site"),
        ],
        "pwned",
    )
    .await;
    assert_eq!(other_port.status, 403, "{}", other_port.body);
    let sandboxed = send("POST", &endpoint, &[("origin", "null")], "pwned").await;
    assert_eq!(sandboxed.status, 403, "{}", sandboxed.body);

    fixture.post_marker(&id, &mut victim).await;
}

#[tokio::test]
async fn a_domain_rebound_to_loopback_cannot_reach_connections_or_the_metrics() {
    let fixture = start(ManagementAccess::default()).await;
    let (mut victim, id) = fixture.victim().await;
    // After the rebinding the page's requests are same-origin to its own domain: the
    // browser sends that domain as the Host, and Origin only on a POST.
    let host = format!("attacker.example:{}", fixture.port());
    let origin = format!("http://{host}");
    let same_origin_post = [
        ("host", host.as_str()),
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let same_origin_get = [("host", host.as_str()), ("sec-fetch-site", "same-origin")];
    let endpoint = fixture.url(&format!("/local/@connections/{id}"));
    let post = send("POST", &endpoint, &same_origin_post, "pwned").await;
    assert_eq!(post.status, 403, "{}", post.body);
    assert_eq!(post.error_type.as_deref(), Some("ForbiddenException"));
    assert!(post.body.contains("attacker.example"), "{}", post.body);
    for method in ["GET", "DELETE"] {
        let answer = send(method, &endpoint, &same_origin_get, "").await;
        assert_eq!(answer.status, 403, "{method}: {}", answer.body);
    }
    let metrics = send("GET", &fixture.url("/metrics"), &same_origin_get, "").await;
    assert_eq!(metrics.status, 403, "{}", metrics.body);
    assert!(!metrics.body.contains("wsgw_"), "{}", metrics.body);
    // A client without browser headers naming a foreign Host is refused the same way.
    let bare = send("GET", &endpoint, &[("host", "attacker.example")], "").await;
    assert_eq!(bare.status, 403, "{}", bare.body);

    fixture.post_marker(&id, &mut victim).await;
}

#[tokio::test]
async fn loopback_names_the_listen_address_and_allowed_hosts_are_answered() {
    let access = ManagementAccess::default().allow_host("laptop.lan".parse().unwrap());
    let fixture = start(access).await;
    let (_victim, id) = fixture.victim().await;
    let port = fixture.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("dashboard.localhost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.2:{port}"),
        format!("LAPTOP.lan:{port}"),
        "laptop.lan:9000".to_owned(),
    ] {
        let headers = [("host", host.as_str())];
        let metrics = send("GET", &fixture.url("/metrics"), &headers, "").await;
        assert_eq!(metrics.status, 200, "{host}: {}", metrics.body);
        assert!(metrics.body.contains("wsgw_connections_open 1"), "{host}");
        let described = send(
            "GET",
            &fixture.url(&format!("/local/@connections/{id}")),
            &headers,
            "",
        )
        .await;
        assert_eq!(described.status, 200, "{host}: {}", described.body);
    }
    for host in [
        "laptop.lan.attacker.example",
        "192.168.1.20",
        "localhost.attacker.example",
    ] {
        let refused = send("GET", &fixture.url("/metrics"), &[("host", host)], "").await;
        assert_eq!(refused.status, 403, "{host}: {}", refused.body);
    }
}

#[tokio::test]
async fn the_gateways_own_pages_typed_addresses_and_allowed_origins_are_let_through() {
    let access = ManagementAccess::default()
        .allow_origin("http://localhost:3000".parse().unwrap())
        .allow_origin("https://grafana.example".parse().unwrap());
    let fixture = start(access).await;
    let (mut victim, id) = fixture.victim().await;
    let endpoint = fixture.url(&format!("/local/@connections/{id}"));
    let own_origin = format!("http://127.0.0.1:{}", fixture.port());
    // A page the gateway serves itself posts same-origin.
    let own = send(
        "POST",
        &endpoint,
        &[
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        "from the gateway's own page",
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(next_text(&mut victim).await, "from the gateway's own page");
    // The metrics address typed into the address bar.
    let typed = send(
        "GET",
        &fixture.url("/metrics"),
        &[("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")],
        "",
    )
    .await;
    assert_eq!(typed.status, 200, "{}", typed.body);
    // Allowed origins, whatever Sec-Fetch-Site says.
    for (origin, site) in [
        ("http://localhost:3000", "same-site"),
        ("HTTPS://Grafana.Example", "cross-site"),
    ] {
        let allowed = send(
            "POST",
            &endpoint,
            &[("origin", origin), ("sec-fetch-site", site)],
            origin,
        )
        .await;
        assert_eq!(allowed.status, 200, "{origin}: {}", allowed.body);
        assert_eq!(next_text(&mut victim).await, origin);
    }
    let other = send(
        "GET",
        &fixture.url("/metrics"),
        &[
            ("origin", "https://grafana.example:8443"),
            ("sec-fetch-site", "cross-site"),
        ],
        "",
    )
    .await;
    assert_eq!(other.status, 403, "another port is another origin");
}

/// API Gateway accepts WebSocket connections from pages of any origin (it has no origin
/// setting; `$connect` can check the `Origin` header itself), and so does the gateway:
/// credentials travel as tokens the page must hold, never as cookies a foreign page
/// could ride on.
#[tokio::test]
async fn pages_on_any_origin_still_open_websocket_connections_as_on_api_gateway() {
    let mut fixture = start(ManagementAccess::default()).await;
    let mut request = fixture
        .gateway
        .stage_url()
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", "https://elsewhere.example".parse().unwrap());
    let (mut client, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a page on another origin connects");
    assert_eq!(response.status(), 101);
    assert_eq!(
        tokio::time::timeout(WAIT, fixture.origins.recv())
            .await
            .expect("$connect ran"),
        Some(Some("https://elsewhere.example".to_owned())),
        "$connect sees the page's origin, to refuse it if it wants"
    );
    assert!(!whoami(&mut client).await.is_empty());
}
