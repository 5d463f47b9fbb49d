//! HTTP conventions shared by every route: JSON bodies, RFC 9457 problem details, token
//! responses and the security headers.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The caller's address as seen by API Gateway or the local server's socket.
#[derive(Clone, Debug)]
pub struct SourceIp(pub String);

/// An error response: an RFC 9457 problem with a stable `code` member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    /// Builds the 503 for a storage or other server-side failure. The detail stays generic,
    /// and the caller logs the cause.
    pub fn unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the service could not complete the request; retry later",
        )
    }

    pub fn into_response(self) -> Response {
        let body = json!({
            "type": format!("urn:lambda-auth:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        let mut response = http::Response::builder()
            .status(self.status)
            .header(CONTENT_TYPE, "application/problem+json")
            .body(Bytes::from(body.to_string()))
            .expect("a problem response is always valid");
        if self.status == StatusCode::UNAUTHORIZED && self.code != "invalid_credentials" {
            // RFC 6750 section 3: tell bearer-token clients why their token failed.
            let error = if self.code == "missing_token" {
                "Bearer".to_owned()
            } else {
                "Bearer error=\"invalid_token\"".to_owned()
            };
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&error).expect("ASCII header value"),
            );
        }
        response
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(error = %error, "storage operation failed");
        Problem::unavailable()
    }
}

/// Parses a JSON request body: size first (413), then content type (415), then JSON (400).
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, Problem> {
    let body = request.body();
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is {} bytes; the limit is {MAX_BODY_BYTES}",
                body.len()
            ),
        ));
    }
    if !is_json(request.headers()) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON with Content-Type: application/json",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
        Problem::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON: {error}"),
        )
    })?;
    if !value.is_object() {
        return Err(Problem::bad_request(
            "invalid_request",
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => {
            Problem::bad_request("invalid_request", format!("invalid request body: {error}"))
        }
        _ => Problem::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON: {error}"),
        ),
    })
}

/// Returns whether the Content-Type is `application/json` or an `application/*+json` type, with any
/// parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Returns the token of an `Authorization: Bearer` header, if the header is present.
pub fn bearer_token(headers: &HeaderMap) -> Option<Result<&str, Problem>> {
    let value = headers.get(http::header::AUTHORIZATION)?;
    let malformed = || {
        Problem::unauthorized(
            "invalid_token",
            "the Authorization header must be `Bearer <access token>`",
        )
    };
    let Ok(text) = value.to_str() else {
        return Some(Err(malformed()));
    };
    let mut parts = text.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let token = parts.next().unwrap_or_default().trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Some(Err(malformed()));
    }
    Some(Ok(token))
}

/// Builds a JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    http::Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Bytes::from(
            serde_json::to_vec(body).expect("response bodies always serialise"),
        ))
        .expect("a JSON response is always valid")
}

/// A JSON response that must not be cached: token responses (RFC 6749 section 5.1).
pub fn no_store_json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub fn empty_response(status: StatusCode) -> Response {
    http::Response::builder()
        .status(status)
        .header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
        .body(Bytes::new())
        .expect("an empty response is always valid")
}

/// Adds the headers every response carries. `X-XSS-Protection` is left out on purpose: the
/// OWASP HTTP Headers Cheat Sheet advises against enabling it.
pub fn add_security_headers(response: &mut Response) {
    const HEADERS: [(&str, &str); 5] = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Returns the User-Agent header, cut to a length that is safe to log and store.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(http::header::USER_AGENT)?.to_str().ok()?;
    Some(agent.chars().take(256).collect())
}
