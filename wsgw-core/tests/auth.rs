//! The ready authorizers: every way a token is found, accepted and refused.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use wsgw_core::auth::{ApiKeyAuthorizer, AuthError, JwtAuthorizer, Principal, TokenSource};
use wsgw_core::{
    Authorization, Backends, ConnectionId, MockConnectionStore, MockMessageSink, Reply, Request,
    Router,
};

const SECRET: &[u8] = b"test-secret-of-a-decent-length-0123456789";
const PRIVATE_PEM: &[u8] = include_bytes!("keys/test-rsa-private.pem");
const PUBLIC_PEM: &[u8] = include_bytes!("keys/test-rsa-public.pem");
const OTHER_PRIVATE_PEM: &[u8] = include_bytes!("keys/other-rsa-private.pem");

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn claims() -> Value {
    json!({
        "sub": "ada",
        "exp": now() + 3600,
        "aud": "wsgw-chat",
        "iss": "https://auth.test",
        "roles": ["operator", "viewer"],
        "name": "Ada",
        "tier": 3,
        "admin": false,
        "groups": {"a": 1},
    })
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("signs")
}

fn rs256_with(claims: &Value, private_pem: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(private_pem).expect("test key"),
    )
    .expect("signs")
}

fn hs_authorizer() -> JwtAuthorizer {
    JwtAuthorizer::hs256(SECRET)
        .expect("a long secret")
        .audience("wsgw-chat")
        .issuer("https://auth.test")
        .leeway_secs(0)
}

fn with_query(token: &str) -> Request {
    Request::connect(ConnectionId::new("c1=")).with_query("token", token)
}

fn backends() -> Backends {
    Backends::new(
        Arc::new(MockConnectionStore::new()),
        Arc::new(MockMessageSink::new()),
    )
}

fn router_with(authorizer: impl wsgw_core::Authorizer) -> Router {
    Router::new().authorizer(authorizer)
}

#[test]
fn a_valid_hs256_token_gives_a_flat_context_with_principal_and_roles() {
    let context = match hs_authorizer().decide(&with_query(&hs256(&claims()))) {
        Authorization::Allow(context) => context,
        other => panic!("denied: {other:?}"),
    };
    assert_eq!(context["principalId"], "ada");
    assert_eq!(context["roles"], "operator,viewer");
    assert_eq!(context["name"], "Ada");
    assert_eq!(context["tier"], 3);
    assert_eq!(context["admin"], false);
    assert_eq!(context["groups"], r#"{"a":1}"#, "objects become JSON text");
    let flat = context
        .as_object()
        .expect("an object")
        .values()
        .all(|v| v.is_string() || v.is_number() || v.is_boolean());
    assert!(flat, "API Gateway only passes scalars: {context}");
    let principal = Principal::from_context(&context).expect("principal");
    assert!(principal.has_role("operator") && principal.has_role("viewer"));
}

#[test]
fn a_missing_token_is_401() {
    let request = Request::connect(ConnectionId::new("c1="));
    assert_eq!(hs_authorizer().decide(&request), Authorization::Deny(401));
    assert_eq!(
        ApiKeyAuthorizer::new()
            .key("k", "p", ["r"])
            .expect("a key")
            .decide(&request),
        Authorization::Deny(401)
    );
    let empty = with_query("");
    assert_eq!(hs_authorizer().decide(&empty), Authorization::Deny(401));
}

#[test]
fn an_expired_token_is_401() {
    let mut expired = claims();
    expired["exp"] = json!(now() - 120);
    assert_eq!(
        hs_authorizer().decide(&with_query(&hs256(&expired))),
        Authorization::Deny(401)
    );
    // Within the configured leeway it still passes.
    let lenient = hs_authorizer().leeway_secs(600);
    assert!(matches!(
        lenient.decide(&with_query(&hs256(&expired))),
        Authorization::Allow(_)
    ));
}

#[test]
fn a_token_without_exp_or_sub_is_401() {
    for claim in ["exp", "sub"] {
        let mut partial = claims();
        partial.as_object_mut().expect("object").remove(claim);
        assert_eq!(
            hs_authorizer().decide(&with_query(&hs256(&partial))),
            Authorization::Deny(401),
            "without {claim}"
        );
    }
}

#[test]
fn a_token_not_valid_yet_is_401() {
    let mut early = claims();
    early["nbf"] = json!(now() + 600);
    assert_eq!(
        hs_authorizer().decide(&with_query(&hs256(&early))),
        Authorization::Deny(401)
    );
    let mut started = claims();
    started["nbf"] = json!(now() - 10);
    assert!(matches!(
        hs_authorizer().decide(&with_query(&hs256(&started))),
        Authorization::Allow(_)
    ));
}

#[test]
fn a_wrong_audience_or_issuer_is_403_and_a_missing_one_too() {
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("another-api");
    assert_eq!(
        hs_authorizer().decide(&with_query(&hs256(&wrong_aud))),
        Authorization::Deny(403)
    );
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.test");
    assert_eq!(
        hs_authorizer().decide(&with_query(&hs256(&wrong_iss))),
        Authorization::Deny(403)
    );
    let mut no_aud = claims();
    no_aud.as_object_mut().expect("object").remove("aud");
    assert_eq!(
        hs_authorizer().decide(&with_query(&hs256(&no_aud))),
        Authorization::Deny(401),
        "a configured audience is required"
    );
    // Without aud/iss configured, whatever the token says is accepted.
    assert!(matches!(
        JwtAuthorizer::hs256(SECRET)
            .expect("a long secret")
            .decide(&with_query(&hs256(&wrong_aud))),
        Authorization::Allow(_)
    ));
}

#[test]
fn a_tampered_token_is_401() {
    let token = hs256(&claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    // Promote ourselves: a new payload under the old signature.
    let mut forged = claims();
    forged["sub"] = json!("mallory");
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&forged).expect("json"));
    let tampered = parts.join(".");
    assert_eq!(
        hs_authorizer().decide(&with_query(&tampered)),
        Authorization::Deny(401)
    );
    // And a flipped signature byte.
    let mut flipped = token.into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    assert_eq!(
        hs_authorizer().decide(&with_query(&flipped)),
        Authorization::Deny(401)
    );
    assert_eq!(
        hs_authorizer().decide(&with_query("not-a-jwt")),
        Authorization::Deny(401)
    );
}

#[test]
fn another_secret_is_401() {
    let other = JwtAuthorizer::hs256(b"some other secret entirely, 0123456789").expect("long");
    assert_eq!(
        other.decide(&with_query(&hs256(&claims()))),
        Authorization::Deny(401)
    );
}

#[test]
fn rs256_accepts_its_key_pair_and_refuses_another() {
    let authorizer = JwtAuthorizer::rs256_pem(PUBLIC_PEM, "wsgw-chat").expect("public key");
    let good = rs256_with(&claims(), PRIVATE_PEM);
    let context = match authorizer.decide(&with_query(&good)) {
        Authorization::Allow(context) => context,
        other => panic!("denied: {other:?}"),
    };
    assert_eq!(context["principalId"], "ada");
    let foreign = rs256_with(&claims(), OTHER_PRIVATE_PEM);
    assert_eq!(
        authorizer.decide(&with_query(&foreign)),
        Authorization::Deny(401)
    );
    assert!(JwtAuthorizer::rs256_pem(b"-----BEGIN PUBLIC KEY-----\nnope\n", "wsgw-chat").is_err());
}

#[test]
fn the_wrong_algorithm_is_401() {
    // HS256 signed with the RSA public key as the secret: the classic confusion attack.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(PUBLIC_PEM),
    )
    .expect("signs");
    let rs = JwtAuthorizer::rs256_pem(PUBLIC_PEM, "wsgw-chat").expect("public key");
    assert_eq!(rs.decide(&with_query(&confused)), Authorization::Deny(401));
    // An RS256 token to an HS256 authorizer.
    let rsa = rs256_with(&claims(), PRIVATE_PEM);
    assert_eq!(
        hs_authorizer().decide(&with_query(&rsa)),
        Authorization::Deny(401)
    );
    // alg "none", unsigned.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(&claims()).expect("json"))
    );
    assert_eq!(
        hs_authorizer().decide(&with_query(&none)),
        Authorization::Deny(401)
    );
}

#[test]
fn tokens_are_found_in_the_bearer_header_the_query_and_the_subprotocol() {
    let token = hs256(&claims());
    let authorizer = hs_authorizer();
    let base = || Request::connect(ConnectionId::new("c1="));
    for request in [
        base().with_header("Authorization", format!("Bearer {token}")),
        base().with_header("authorization", format!("bearer {token}")),
        base().with_query("token", token.clone()),
        base().with_header("Sec-WebSocket-Protocol", format!("wsgw.bearer, {token}")),
        base().with_header(
            "Sec-WebSocket-Protocol",
            format!("chat.v1, wsgw.bearer,{token}"),
        ),
    ] {
        assert!(
            matches!(authorizer.decide(&request), Authorization::Allow(_)),
            "{request:?}"
        );
    }
    // The subprotocol marker with nothing after it is no token.
    let marker_only = base().with_header("Sec-WebSocket-Protocol", "wsgw.bearer");
    assert_eq!(authorizer.decide(&marker_only), Authorization::Deny(401));
    // Restricted sources ignore the others.
    let header_only = hs_authorizer().sources([TokenSource::header("x-token")]);
    assert_eq!(
        header_only.decide(&with_query(&token)),
        Authorization::Deny(401)
    );
    assert!(matches!(
        header_only.decide(&base().with_header("X-Token", token.clone())),
        Authorization::Allow(_)
    ));
}

#[test]
fn api_keys_map_to_their_principal_and_roles() {
    let keys = ApiKeyAuthorizer::new()
        .parse("esp32-01=k-device-1, esp32-02=k-device-2", &["device"])
        .expect("list")
        .parse("ada=k-ops=operator+viewer", &["client"])
        .expect("list");
    let allow = |token: &str| match keys.decide(&with_query(token)) {
        Authorization::Allow(context) => Principal::from_context(&context).expect("principal"),
        other => panic!("{token} denied: {other:?}"),
    };
    assert_eq!(allow("k-device-2"), Principal::new("esp32-02", ["device"]));
    assert_eq!(
        allow("k-ops"),
        Principal::new("ada", ["client", "operator", "viewer"])
    );
    for wrong in ["k-device", "k-device-22", "K-DEVICE-1", "esp32-01", " "] {
        assert_eq!(
            keys.decide(&with_query(wrong)),
            Authorization::Deny(401),
            "{wrong:?}"
        );
    }
    assert!(ApiKeyAuthorizer::new().parse("=k", &[]).is_err());
    assert!(ApiKeyAuthorizer::new().parse("p=", &[]).is_err());
    let debug = format!("{keys:?}");
    assert!(
        !debug.contains("k-device-1"),
        "Debug never shows keys: {debug}"
    );
}

#[tokio::test]
async fn the_router_runs_the_authorizer_and_echoes_the_subprotocol_marker() {
    let keys = ApiKeyAuthorizer::new()
        .key("k-1", "ada", ["client"])
        .expect("a key");
    let router = router_with(keys).on_connect(|_ctx, request: Request| async move {
        // $connect sees who connected.
        let principal = Principal::of(&request).expect("authorized");
        assert_eq!(principal.id, "ada");
        Ok(Reply::ok())
    });
    let browser = Request::connect(ConnectionId::new("c1="))
        .with_header("Sec-WebSocket-Protocol", "wsgw.bearer, k-1");
    let reply = router.handle(&backends(), browser).await.expect("handled");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply
            .headers
            .get("sec-websocket-protocol")
            .map(String::as_str),
        Some("wsgw.bearer"),
        "the marker, never the token"
    );
    // A client using the query string gets no subprotocol it did not ask for.
    let reply = router
        .handle(&backends(), with_query("k-1"))
        .await
        .expect("handled");
    assert_eq!(reply.status, 200);
    assert!(!reply.headers.contains_key("sec-websocket-protocol"));
    // A denial never runs $connect.
    let reply = router
        .handle(&backends(), with_query("k-2"))
        .await
        .expect("handled");
    assert_eq!(reply.status, 401);
    assert!(!reply.headers.contains_key("sec-websocket-protocol"));
}

// --- The attacks of issue 20 ---------------------------------------------------------

#[tokio::test]
async fn the_router_runs_its_authorizer_when_the_context_carries_no_principal() {
    let keys = ApiKeyAuthorizer::new()
        .key("k-1", "ada", ["client"])
        .expect("a key");
    let router = router_with(keys).on_connect(|_ctx, _request: Request| async { Ok(Reply::ok()) });
    // A context some other layer set (API Gateway's own fields, a different
    // authorizer) but with no principal: the router's authorizer must still decide.
    let smuggled = Request::connect(ConnectionId::new("c1="))
        .with_authorizer(json!({"integrationLatency": 12, "roles": "operator"}));
    let reply = router.handle(&backends(), smuggled).await.expect("handled");
    assert_eq!(reply.status, 401, "no key: refused despite a context");
    // A principal set by the gateway's authorizer step is trusted (not re-run).
    let authorized = Request::connect(ConnectionId::new("c2="))
        .with_authorizer(json!({"principalId": "ada", "roles": "client"}));
    assert_eq!(
        router
            .handle(&backends(), authorized)
            .await
            .expect("handled")
            .status,
        200
    );
}

#[test]
fn a_malformed_key_list_never_echoes_a_key() {
    for list in [
        "k-secret-0123456789",
        "ada=k-ops=operator,k-secret-0123456789",
        "=k-secret-0123456789",
    ] {
        let error = ApiKeyAuthorizer::new()
            .parse(list, &["client"])
            .expect_err(list)
            .to_string();
        assert!(
            !error.contains("k-secret"),
            "the error shows the key: {error}"
        );
        assert!(!error.contains("k-ops"), "the error shows a key: {error}");
    }
}

#[test]
fn the_same_key_twice_is_refused_not_resolved_to_the_first() {
    let error = ApiKeyAuthorizer::new()
        .parse("ada=k-shared-1,bob=k-shared-1", &["client"])
        .expect_err("a duplicate key")
        .to_string();
    assert!(error.contains("ada") && error.contains("bob"), "{error}");
    assert!(!error.contains("k-shared"), "never the key: {error}");
    assert!(ApiKeyAuthorizer::new()
        .parse("ada=k-1", &["client"])
        .and_then(|keys| keys.parse("bob=k-1", &["device"]))
        .is_err());
}

#[test]
fn a_role_cannot_turn_into_another_role_through_the_flat_context() {
    // An API key role holding a space (it would read back as "guest" and "operator").
    let error = ApiKeyAuthorizer::new()
        .parse("ada=k-1=guest operator", &["client"])
        .expect_err("a role with a space")
        .to_string();
    assert!(error.contains("ada") && !error.contains("k-1"), "{error}");
    assert!(ApiKeyAuthorizer::new()
        .key("k-1", "ada", ["viewer,operator"])
        .is_err());
    // A JWT whose roles array holds a comma: refused, not read as two roles.
    let mut claims = claims();
    claims["roles"] = json!(["viewer,operator"]);
    assert_eq!(
        hs_authorizer().decide(&with_query(&hs256(&claims))),
        Authorization::Deny(401)
    );
    // The documented string form is still split on commas and spaces.
    claims["roles"] = json!("viewer operator");
    let Authorization::Allow(context) = hs_authorizer().decide(&with_query(&hs256(&claims))) else {
        panic!("the string form is allowed")
    };
    let principal = Principal::from_context(&context).expect("principal");
    assert_eq!(principal.roles, ["viewer", "operator"]);
    // A principal built by hand: the role is left out rather than split.
    let context = Principal::new("ada", ["viewer,operator", "guest user", "client"]).context();
    assert_eq!(context["roles"], "client");
}

#[test]
fn an_rs256_authorizer_refuses_tokens_for_another_audience_unless_told_otherwise() {
    let authorizer = JwtAuthorizer::rs256_pem(PUBLIC_PEM, "wsgw-chat").expect("public key");
    let mut for_another_app = claims();
    for_another_app["aud"] = json!("some-other-application");
    let token = rs256_with(&for_another_app, PRIVATE_PEM);
    assert_eq!(
        authorizer.decide(&with_query(&token)),
        Authorization::Deny(403),
        "a token the key's issuer minted for another application"
    );
    let mut without_aud = claims();
    without_aud.as_object_mut().expect("object").remove("aud");
    assert_eq!(
        authorizer.decide(&with_query(&rs256_with(&without_aud, PRIVATE_PEM))),
        Authorization::Deny(401)
    );
    // The explicit opt-out.
    let any = JwtAuthorizer::rs256_pem_any_audience(PUBLIC_PEM).expect("public key");
    assert!(matches!(
        any.decide(&with_query(&token)),
        Authorization::Allow(_)
    ));
}

#[test]
fn an_hs256_secret_shorter_than_32_bytes_is_refused() {
    for short in [&b""[..], b"s3cret", b"0123456789abcdef0123456789abcde"] {
        match JwtAuthorizer::hs256(short) {
            Err(AuthError::SecretTooShort { bytes, min }) => {
                assert_eq!((bytes, min), (short.len(), 32));
            }
            other => panic!("{} bytes: {other:?}", short.len()),
        }
    }
    let error = JwtAuthorizer::hs256(b"s3cret")
        .expect_err("short")
        .to_string();
    assert!(error.contains("32") && !error.contains("s3cret"), "{error}");
    assert!(JwtAuthorizer::hs256(b"0123456789abcdef0123456789abcdef").is_ok());
}

#[test]
fn api_keys_of_any_length_match_only_themselves() {
    // Keys are compared as digests: a prefix, an extension, a key of another length or
    // the same length with one byte changed are all just wrong keys.
    let long_key = "k-".to_owned() + &"x".repeat(200);
    let keys = ApiKeyAuthorizer::new()
        .key("k-1", "short", ["client"])
        .and_then(|keys| keys.key(long_key.as_str(), "long", ["client"]))
        .expect("keys");
    assert_eq!(
        keys.principal_for("k-1").map(|p| p.id.as_str()),
        Some("short")
    );
    assert_eq!(
        keys.principal_for(&long_key).map(|p| p.id.as_str()),
        Some("long")
    );
    let near_misses = [
        "k-".to_owned(),
        "k-11".to_owned(),
        "k-2".to_owned(),
        long_key[..long_key.len() - 1].to_owned(),
        long_key.clone() + "x",
        long_key.replacen('x', "y", 1),
    ];
    for wrong in near_misses {
        assert!(keys.principal_for(&wrong).is_none(), "{wrong}");
    }
}
