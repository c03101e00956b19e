//! Signature Version 4 checks of `@connections` calls, as API Gateway checks them.
//!
//! The signature is recomputed with the `aws-sigv4` crate (the AWS SDKs' own signer)
//! over exactly the headers the caller listed in `SignedHeaders`, the path as sent
//! (encoded again, as for every service but S3), the query and the body, at the caller's
//! `X-Amz-Date`, in the caller's region, for the service `execute-api`; then compared
//! in constant time.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use subtle::ConstantTimeEq;

use super::ManagementCredentials;

/// The only service `@connections` signatures may be scoped to.
pub(super) const SERVICE: &str = "execute-api";

/// How far `X-Amz-Date` may be from the gateway's clock, either way.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a call is refused: API Gateway's `x-amzn-ErrorType` and message (all HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) error_type: &'static str,
    pub(super) message: String,
}

impl Refusal {
    pub(super) fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            error_type,
            message: message.into(),
        }
    }

    fn incomplete(message: impl Into<String>) -> Self {
        Refusal::new("IncompleteSignatureException", message)
    }

    fn invalid(message: impl Into<String>) -> Self {
        Refusal::new("InvalidSignatureException", message)
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
/// Signature=…` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, Refusal> {
    let Some(parameters) = value.strip_prefix(ALGORITHM) else {
        return Err(Refusal::incomplete(format!(
            "Authorization header requires the {ALGORITHM} algorithm. Authorization={value}"
        )));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in parameters.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let missing: Vec<&str> = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        let wanted: String = missing
            .iter()
            .map(|name| format!("Authorization header requires '{name}' parameter. "))
            .collect();
        return Err(Refusal::incomplete(format!(
            "{wanted}Authorization={value}"
        )));
    };
    // Credential=AKID/20240101/us-east-1/execute-api/aws4_request
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(Refusal::incomplete(format!(
            "Credential should be scoped to a valid region, not a malformed scope: '{credential}'. "
        )));
    };
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

fn parse_amz_date(value: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|naive| naive.and_utc())
}

fn amz_date(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Checks a call's signature against `credentials` at `now`.
pub(super) fn verify(
    credentials: &ManagementCredentials,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    let Some(authorization) = headers.get("authorization") else {
        return Err(Refusal::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let authorization = authorization
        .to_str()
        .map_err(|_| Refusal::incomplete("Authorization header is not ASCII text."))?;
    let authorization = parse_authorization(authorization)?;
    if authorization.service != SERVICE {
        return Err(Refusal::invalid(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    let Some(date_header) = headers
        .get("x-amz-date")
        .and_then(|value| value.to_str().ok())
    else {
        return Err(Refusal::incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let Some(signed_at) = parse_amz_date(date_header) else {
        return Err(Refusal::incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{date_header}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )));
    };
    if !date_header.starts_with(authorization.date) || authorization.date.len() != 8 {
        return Err(Refusal::invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{date_header}'.",
            authorization.date,
            &date_header[..8.min(date_header.len())],
        )));
    }
    let now_utc = DateTime::<Utc>::from(now);
    let skew = chrono::Duration::from_std(MAX_SKEW).unwrap_or_default();
    if signed_at < now_utc - skew {
        return Err(Refusal::invalid(format!(
            "Signature expired: {date_header} is now earlier than {} ({} - 5 min.)",
            amz_date(now_utc - skew),
            amz_date(now_utc),
        )));
    }
    if signed_at > now_utc + skew {
        return Err(Refusal::invalid(format!(
            "Signature not yet current: {date_header} is still later than {} ({} + 5 min.)",
            amz_date(now_utc + skew),
            amz_date(now_utc),
        )));
    }
    if authorization.access_key_id != credentials.access_key_id()
        || headers.contains_key("x-amz-security-token")
    {
        return Err(Refusal::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if !authorization.signed_headers.contains(&"host") {
        return Err(Refusal::incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let expected = expected_signature(
        credentials,
        &authorization,
        method,
        uri,
        headers,
        body,
        signed_at,
    )?;
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(authorization.signature.as_bytes()),
    ) {
        Ok(())
    } else {
        Err(Refusal::invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ))
    }
}

/// The signature `credentials` give this call, over the headers the caller signed.
fn expected_signature(
    credentials: &ManagementCredentials,
    authorization: &Authorization<'_>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    signed_at: DateTime<Utc>,
) -> Result<String, Refusal> {
    let mismatch = || {
        Refusal::invalid("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
    };
    // The signer adds `x-amz-date` itself, from the time it is given.
    let mut signed: Vec<(&str, Cow<'_, str>)> = Vec::new();
    for name in &authorization.signed_headers {
        if *name == "x-amz-date" {
            continue;
        }
        let values: Vec<&str> = headers
            .get_all(*name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(mismatch());
        }
        signed.push((name, Cow::Owned(values.join(","))));
    }
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let request = SignableRequest::new(
        method.as_str(),
        path_and_query,
        signed.iter().map(|(name, value)| (*name, value.as_ref())),
        SignableBody::Bytes(body),
    )
    .map_err(|_| mismatch())?;
    let mut settings = SigningSettings::default();
    // Exactly what the caller signed, nothing left out.
    settings.excluded_headers = Some(Vec::new());
    let identity = Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        None,
        None,
        "wsgw-local-gateway",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.region)
        .name(SERVICE)
        .time(SystemTime::from(signed_at))
        .settings(settings)
        .build()
        .map_err(|_| mismatch())?
        .into();
    let output = sign(request, &params).map_err(|_| mismatch())?;
    Ok(output.signature().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "20260101T120000Z";

    fn now() -> SystemTime {
        SystemTime::from(parse_amz_date(NOW).unwrap())
    }

    fn credentials() -> ManagementCredentials {
        ManagementCredentials::new("AKIDLOCALTEST", "local-secret")
    }

    /// A call signed by `aws-sigv4` as an SDK signs it.
    fn signed(secret: &str, at: &str, service: &str) -> (Method, Uri, HeaderMap, Vec<u8>) {
        let body = br#"{"hello":"world"}"#.to_vec();
        let uri: Uri = "/local/@connections/abc%3D".parse().unwrap();
        let host = "127.0.0.1:8080";
        let identity = Credentials::new("AKIDLOCALTEST", secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name(service)
            .time(SystemTime::from(parse_amz_date(at).unwrap()))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new(
            "POST",
            "http://127.0.0.1:8080/local/@connections/abc%3D",
            [("host", host), ("content-type", "application/json")].into_iter(),
            SignableBody::Bytes(&body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        headers.insert("host", host.parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        for (name, value) in instructions.headers() {
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        (Method::POST, uri, headers, body)
    }

    fn check(call: &(Method, Uri, HeaderMap, Vec<u8>)) -> Result<(), Refusal> {
        verify(&credentials(), &call.0, &call.1, &call.2, &call.3, now())
    }

    #[test]
    fn a_call_signed_with_the_gateway_key_passes() {
        assert_eq!(check(&signed("local-secret", NOW, SERVICE)), Ok(()));
    }

    #[test]
    fn another_secret_a_changed_body_or_path_fails_the_signature() {
        let refusal = check(&signed("other-secret", NOW, SERVICE)).unwrap_err();
        assert_eq!(refusal.error_type, "InvalidSignatureException");
        let mut call = signed("local-secret", NOW, SERVICE);
        call.3 = br#"{"hello":"mallory"}"#.to_vec();
        assert_eq!(
            check(&call).unwrap_err().error_type,
            "InvalidSignatureException"
        );
        let mut call = signed("local-secret", NOW, SERVICE);
        call.1 = "/local/@connections/other%3D".parse().unwrap();
        assert_eq!(
            check(&call).unwrap_err().error_type,
            "InvalidSignatureException"
        );
    }

    #[test]
    fn unsigned_calls_miss_the_authentication_token() {
        let mut call = signed("local-secret", NOW, SERVICE);
        call.2.remove("authorization");
        let refusal = check(&call).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::new(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token"
            )
        );
    }

    #[test]
    fn signatures_more_than_five_minutes_off_the_clock_are_refused_either_way() {
        let refusal = check(&signed("local-secret", "20260101T115459Z", SERVICE)).unwrap_err();
        assert_eq!(refusal.error_type, "InvalidSignatureException");
        assert_eq!(
            refusal.message,
            "Signature expired: 20260101T115459Z is now earlier than 20260101T115500Z (20260101T120000Z - 5 min.)"
        );
        let refusal = check(&signed("local-secret", "20260101T120501Z", SERVICE)).unwrap_err();
        assert!(
            refusal.message.starts_with("Signature not yet current"),
            "{refusal:?}"
        );
        assert_eq!(
            check(&signed("local-secret", "20260101T115501Z", SERVICE)),
            Ok(())
        );
    }

    #[test]
    fn other_services_and_unknown_keys_are_refused() {
        let refusal = check(&signed("local-secret", NOW, "s3")).unwrap_err();
        assert_eq!(
            refusal.message,
            "Credential should be scoped to correct service: 'execute-api'. "
        );
        let unknown = ManagementCredentials::new("AKIDSOMEONEELSE", "local-secret");
        let call = signed("local-secret", NOW, SERVICE);
        let refusal = verify(&unknown, &call.0, &call.1, &call.2, &call.3, now()).unwrap_err();
        assert_eq!(refusal.error_type, "UnrecognizedClientException");
    }

    #[test]
    fn malformed_authorization_headers_are_incomplete_signatures() {
        let mut call = signed("local-secret", NOW, SERVICE);
        call.2.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Signature=00".parse().unwrap(),
        );
        let refusal = check(&call).unwrap_err();
        assert_eq!(refusal.error_type, "IncompleteSignatureException");
        assert!(refusal.message.contains("'Credential'"), "{refusal:?}");
        call.2
            .insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(
            check(&call).unwrap_err().error_type,
            "IncompleteSignatureException"
        );
    }
}
