//! Local gateway mode: the authorizer's decision in front of the developer's own API on the same
//! machine, with the authorizer context passed on as `x-auth-*` request headers.

use std::fmt;
use std::future::{ready, Ready};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::app::{App, Route};
use crate::authorizer::{AuthorizerContext, Credential, Decision};
use crate::http::{add_security_headers, Problem};

/// Largest request body the gateway forwards. The auth routes keep their own, smaller limit
/// (`MAX_BODY_BYTES`).
pub const MAX_FORWARDED_BODY_BYTES: usize = 1024 * 1024;

/// How long the upstream may take to accept the connection and send its response headers.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of the headers that carry the authorizer context to the upstream.
const CONTEXT_HEADER_PREFIX: &str = "x-auth-";

/// Body of a local-server response: a buffered auth-route or problem body, or an upstream's
/// body streamed through.
pub type ResponseBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Wraps a buffered body as a [`ResponseBody`].
pub fn full_body(bytes: Bytes) -> ResponseBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A gateway configuration that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayError {
    #[error("the gateway prefix {prefix:?} is invalid: {reason}")]
    InvalidPrefix { prefix: String, reason: String },
    #[error("the gateway upstream {url:?} is invalid: {reason}")]
    InvalidUpstream { url: String, reason: String },
}

/// The developer's API: `http://127.0.0.1:<port>` or `http://localhost:<port>` with an optional
/// base path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    host: String,
    port: u16,
    /// Empty, or a path without a trailing slash that is put before every forwarded path.
    base_path: String,
}

impl Upstream {
    /// Parses and checks an upstream URL. Only a local upstream over plain HTTP is accepted, so
    /// the gateway cannot become a way to reach other hosts.
    pub fn parse(url: &str) -> Result<Upstream, GatewayError> {
        let invalid = |reason: &str| GatewayError::InvalidUpstream {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        const LOCAL_ONLY: &str = "the gateway only forwards to a local upstream: use \
            http://127.0.0.1:PORT or http://localhost:PORT, optionally followed by a base path";

        if url.contains('#') || url.contains('?') {
            return Err(invalid("an upstream URL takes no query string or fragment"));
        }
        let uri: Uri = url.parse().map_err(|_| invalid(LOCAL_ONLY))?;
        match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => {}
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => {
                return Err(invalid(
                    "the gateway speaks plain HTTP to a local upstream, so use http:// and not https://",
                ))
            }
            _ => return Err(invalid(LOCAL_ONLY)),
        }
        let authority = uri.authority().ok_or_else(|| invalid(LOCAL_ONLY))?;
        if authority.as_str().contains('@') {
            return Err(invalid("an upstream URL takes no user name or password"));
        }
        let host = authority.host().to_ascii_lowercase();
        if host != "127.0.0.1" && host != "localhost" {
            return Err(invalid(&format!("{LOCAL_ONLY}; found the host {host}")));
        }
        let port = match authority.port_u16() {
            Some(port) if port > 0 => port,
            _ => return Err(invalid(
                "the upstream URL needs a port from 1 to 65535, for example http://127.0.0.1:8080",
            )),
        };

        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Upstream {
            host,
            port,
            base_path,
        })
    }

    /// `host:port`, the value of the `Host` header sent upstream.
    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.base_path)
    }
}

/// Runs the authorizer's decision for every request under a path prefix, and forwards the
/// allowed ones to the upstream with the authorizer context as `x-auth-*` headers.
pub struct Gateway {
    /// Starts with `/`, has no trailing slash, and is never `/` alone.
    prefix: String,
    upstream: Upstream,
    upstream_timeout: Duration,
    client: Client<HttpConnector<LoopbackResolver>, Full<Bytes>>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("prefix", &self.prefix)
            .field("upstream", &self.upstream)
            .field("upstream_timeout", &self.upstream_timeout)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Checks the prefix and the upstream URL and builds the HTTP/1.1 client.
    pub fn new(prefix: &str, upstream_url: &str) -> Result<Gateway, GatewayError> {
        let prefix = parse_prefix(prefix)?;
        let upstream = Upstream::parse(upstream_url)?;
        let connector = HttpConnector::new_with_resolver(LoopbackResolver);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Gateway {
            prefix,
            upstream,
            upstream_timeout: UPSTREAM_TIMEOUT,
            client,
        })
    }

    /// Replaces the default upstream timeout of [`UPSTREAM_TIMEOUT`].
    pub fn with_upstream_timeout(mut self, timeout: Duration) -> Gateway {
        self.upstream_timeout = timeout;
        self
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Returns whether the path is the prefix itself or lies under it: `/api` and `/api/x` match
    /// the prefix `/api`, and `/apiary` does not.
    pub fn matches(&self, path: &str) -> bool {
        self.path_after_prefix(path).is_some()
    }

    /// Returns the rest of the path after the prefix: empty, or starting with `/`.
    fn path_after_prefix<'a>(&self, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    /// Decides a request under the prefix and forwards it if allowed. Returns the upstream's
    /// response with its body streamed, or a problem response when the request is denied or fails.
    pub async fn handle(
        &self,
        app: &App,
        request: http::Request<Incoming>,
    ) -> http::Response<ResponseBody> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();

        let response = match self.authorize_and_forward(app, request).await {
            Ok(response) => response,
            Err(problem) => problem_response(problem),
        };
        tracing::info!(%method, %path, status = response.status().as_u16(), "gateway request");
        response
    }

    async fn authorize_and_forward(
        &self,
        app: &App,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<ResponseBody>, Problem> {
        let rest = self
            .path_after_prefix(request.uri().path())
            .unwrap_or_default()
            .to_owned();
        let Some(decision_path) = decision_path(&rest) else {
            return Err(Problem::bad_request(
                "invalid_request",
                "the path must not contain `.` or `..` segments",
            ));
        };

        let credential = Credential::from_headers(
            request
                .headers()
                .iter()
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
        );
        let decision = app.authorize(credential, Some(&decision_path)).await;
        log_decision(&decision, &decision_path);
        let principal = match decision {
            Decision::Allow(principal) => principal,
            Decision::Forbidden(_, reason) => return Err(forbidden(reason)),
            Decision::Unauthorized(reason) => return Err(unauthorized(reason)),
        };

        let (parts, body) = request.into_parts();
        let body = read_body(body).await?;
        let upstream_request =
            self.upstream_request(parts, body, &AuthorizerContext::new(&principal), &rest)?;
        self.send(upstream_request).await
    }

    /// Builds the upstream request: the path after the prefix behind the base path, the query,
    /// and the client's headers without hop-by-hop and `x-auth-*` headers, plus the context.
    fn upstream_request(
        &self,
        parts: http::request::Parts,
        body: Bytes,
        context: &AuthorizerContext,
        rest: &str,
    ) -> Result<http::Request<Full<Bytes>>, Problem> {
        let mut path_and_query = format!("{}{rest}", self.upstream.base_path);
        if path_and_query.is_empty() {
            path_and_query.push('/');
        }
        if let Some(query) = parts.uri.query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let authority = self.upstream.authority();
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| {
                Problem::bad_request("invalid_request", "the request path cannot be forwarded")
            })?;

        let mut headers = parts.headers;
        remove_hop_by_hop(&mut headers);
        remove_context_headers(&mut headers);
        // The body is already read in full, so the upstream must not wait for a 100 Continue.
        headers.remove(header::EXPECT);
        let had_length = headers.remove(header::CONTENT_LENGTH).is_some();
        if had_length || !body.is_empty() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&authority).expect("a host and port are a valid header value"),
        );
        for (name, value) in context.headers() {
            let value = HeaderValue::from_str(value).map_err(|_| {
                tracing::error!(
                    header = name,
                    "an authorizer context value is not a valid header value"
                );
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the authorizer context could not be passed to the upstream",
                )
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }

        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = parts.method;
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Sends the request upstream and returns its response without hop-by-hop headers.
    async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<ResponseBody>, Problem> {
        let upstream = &self.upstream;
        let response = match tokio::time::timeout(
            self.upstream_timeout,
            self.client.request(request),
        )
        .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let cause = error_chain(&error);
                tracing::warn!(upstream = %upstream, error = %cause, "the upstream request failed");
                let detail = if error.is_connect() {
                    format!("the upstream {upstream} could not be reached; check that your API is running")
                } else {
                    format!(
                        "the upstream {upstream} closed the connection before it sent a response"
                    )
                };
                return Err(Problem::new(StatusCode::BAD_GATEWAY, "bad_gateway", detail));
            }
            Err(_) => {
                let timeout = self.upstream_timeout;
                tracing::warn!(upstream = %upstream, ?timeout, "the upstream timed out");
                return Err(Problem::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "gateway_timeout",
                    format!("the upstream {upstream} sent no response within {timeout:?}"),
                ));
            }
        };

        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        // hyper writes the response's version on the status line, and an HTTP/1.0 upstream
        // must not turn the client's HTTP/1.1 connection into HTTP/1.0.
        parts.version = Version::HTTP_11;
        Ok(http::Response::from_parts(parts, body.boxed_unsync()))
    }
}

/// Checks a prefix and drops one trailing slash. A prefix must not cover an auth route, because
/// the gateway would then take that route's requests.
fn parse_prefix(prefix: &str) -> Result<String, GatewayError> {
    let invalid = |reason: &str| GatewayError::InvalidPrefix {
        prefix: prefix.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if !prefix.starts_with('/') {
        return Err(invalid("a prefix starts with /, for example /api"));
    }
    if trimmed.is_empty() {
        return Err(invalid(
            "the prefix / would take every route; use a path such as /api",
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-._~".contains(c);
    if !trimmed.chars().all(allowed) {
        return Err(invalid(
            "a prefix may contain only letters, digits, /, -, ., _ and ~",
        ));
    }
    if trimmed[1..]
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(invalid("a prefix has no empty, `.` or `..` segments"));
    }
    let covers_route = Route::from_path(trimmed).is_some()
        || Route::ALL
            .iter()
            .any(|route| route.path().starts_with(&format!("{trimmed}/")));
    if covers_route {
        return Err(invalid(
            "the prefix covers a lambda-auth route; use a path such as /api",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Returns the path the authorizer decides on: the path after the prefix, percent-decoded, with
/// empty segments dropped and `\` read as `/`. An upstream router may read `//admin` or
/// `/%61dmin` as `/admin`, so the `/admin` rule must see them that way too. Returns `None` for
/// a `.` or `..` segment, because a router may resolve it into a path that was never decided.
fn decision_path(rest: &str) -> Option<String> {
    let decoded = percent_decode(rest);
    let mut segments = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        match segment {
            "" => {}
            "." | ".." => return None,
            _ => segments.push(segment),
        }
    }
    Some(format!("/{}", segments.join("/")))
}

/// Decodes every valid `%XX` escape; an invalid escape stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%' && index + 2 < bytes.len())
            .then(|| {
                let high = (bytes[index + 1] as char).to_digit(16)?;
                let low = (bytes[index + 2] as char).to_digit(16)?;
                u8::try_from(high * 16 + low).ok()
            })
            .flatten();
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Removes the hop-by-hop headers (RFC 9110 section 7.6.1): those that `Connection` names, the
/// fixed list, and every `Proxy-*` header.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    const HOP_BY_HOP: [HeaderName; 6] = [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::TRAILER,
    ];
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in named.into_iter().chain(HOP_BY_HOP).chain(proxy) {
        headers.remove(name);
    }
}

/// Removes every client-sent `x-auth-*` header, so that only the gateway sets the context.
/// Header names are stored in lower case, so the comparison ignores the client's case.
fn remove_context_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(CONTEXT_HEADER_PREFIX))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, Problem> {
    match Limited::new(body, MAX_FORWARDED_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body exceeds the gateway's limit of {MAX_FORWARDED_BODY_BYTES} bytes"
            ),
        )),
        Err(_) => Err(Problem::bad_request(
            "invalid_request",
            "the request body could not be read",
        )),
    }
}

/// Builds the response for a problem, with the security headers that every local-server
/// problem carries. A request without a credential gets a bare `WWW-Authenticate: Bearer`
/// challenge (RFC 6750 section 3.1), and a rejected credential keeps `error="invalid_token"`.
fn problem_response(problem: Problem) -> http::Response<ResponseBody> {
    let missing_credentials = problem.code == "missing_credentials";
    let mut response = problem.into_response();
    if missing_credentials {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    add_security_headers(&mut response);
    response.map(full_body)
}

/// Builds the 401 problem: `missing_credentials`, or `invalid_token` for any rejected credential.
fn unauthorized(reason: &'static str) -> Problem {
    if reason == "missing_credentials" {
        return Problem::unauthorized(
            "missing_credentials",
            "this path needs an access token (Authorization: Bearer) or an API key (x-api-key)",
        );
    }
    let detail = match reason {
        "malformed_api_key" => "the API key is malformed",
        "unknown_api_key" => "the API key is unknown, revoked or expired",
        "account_disabled" => "the account that owns the API key is disabled",
        "session_ended" => "the access token's session has ended",
        _ => "the access token is invalid or expired",
    };
    Problem::unauthorized("invalid_token", detail)
}

/// Builds the 403 problem: `insufficient_scope` when the credential lacks the scope that
/// `AUTHORIZER_REQUIRED_SCOPE` requires, `forbidden` for an `/admin` path without the admin role.
fn forbidden(reason: &'static str) -> Problem {
    let (code, detail) = match reason {
        "insufficient_scope" => (
            "insufficient_scope",
            "the credential lacks the scope that this API requires",
        ),
        _ => ("forbidden", "only the admin role may reach /admin paths"),
    };
    Problem::new(StatusCode::FORBIDDEN, code, detail)
}

fn log_decision(decision: &Decision, path: &str) {
    let (outcome, principal_id) = match decision {
        Decision::Allow(principal) => ("allow", principal.user_id.as_str()),
        Decision::Forbidden(principal, reason) => (*reason, principal.user_id.as_str()),
        Decision::Unauthorized(reason) => (*reason, ""),
    };
    tracing::info!(
        target: "audit",
        event = "authorize",
        outcome,
        principal_id,
        path,
        "gateway decision"
    );
}

/// Formats an error with its sources, because the client's own message names only the kind.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves `localhost` to the loopback addresses without the system resolver, and every other
/// name to an error, so that a forwarded request cannot leave the machine. RFC 6761 section 6.3
/// reserves `localhost` for loopback. Literal addresses never reach a resolver.
#[derive(Clone, Copy, Debug)]
struct LoopbackResolver;

impl tower_service::Service<Name> for LoopbackResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        if name.as_str().eq_ignore_ascii_case("localhost") {
            // The connector fills in the port.
            let addresses = vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
            ];
            ready(Ok(addresses.into_iter()))
        } else {
            ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the gateway resolves only localhost, not {}", name.as_str()),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_upstreams_accepted() {
        let upstream = Upstream::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(upstream.to_string(), "http://127.0.0.1:8080");
        assert_eq!(upstream.base_path, "");

        let upstream = Upstream::parse("http://LOCALHOST:9000/v1/").unwrap();
        assert_eq!(upstream.to_string(), "http://localhost:9000/v1");
        assert_eq!(upstream.authority(), "localhost:9000");
    }

    #[test]
    fn other_upstreams_rejected() {
        for url in [
            "http://10.0.0.1:80",
            "http://169.254.169.254:80",
            "http://127.0.0.2:80",
            "http://[::1]:8080",
            "http://example.com:80",
            "http://localhost.example.com:80",
            "http://user@127.0.0.1:80",
            "https://127.0.0.1",
            "https://127.0.0.1:8443",
            "ftp://127.0.0.1:21",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:8080/?debug=1",
            "http://127.0.0.1:8080/#top",
            "127.0.0.1:8080",
            "",
        ] {
            let error = Upstream::parse(url);
            assert!(error.is_err(), "{url} is accepted");
        }
    }

    #[test]
    fn prefix_checked_and_trimmed() {
        assert_eq!(parse_prefix("/api").unwrap(), "/api");
        assert_eq!(parse_prefix("/api/").unwrap(), "/api");
        assert_eq!(parse_prefix("/v1/orders").unwrap(), "/v1/orders");
        for prefix in [
            "api",
            "/",
            "",
            "//api",
            "/api//x",
            "/../api",
            "/api?x=1",
            "/a b",
            "/auth",
            "/auth/me",
            "/.well-known",
            "/auth/api-keys/x",
        ] {
            assert!(parse_prefix(prefix).is_err(), "{prefix:?} is accepted");
        }
    }

    #[test]
    fn prefix_matches_whole_segments() {
        let gateway = Gateway::new("/api", "http://127.0.0.1:8080").unwrap();
        assert_eq!(gateway.path_after_prefix("/api"), Some(""));
        assert_eq!(gateway.path_after_prefix("/api/"), Some("/"));
        assert_eq!(gateway.path_after_prefix("/api/orders"), Some("/orders"));
        assert_eq!(gateway.path_after_prefix("/apiary"), None);
        assert_eq!(gateway.path_after_prefix("/auth/me"), None);
    }

    #[test]
    fn decision_path_normalised() {
        assert_eq!(decision_path("").as_deref(), Some("/"));
        assert_eq!(decision_path("/orders/7").as_deref(), Some("/orders/7"));
        assert_eq!(decision_path("//admin/x").as_deref(), Some("/admin/x"));
        assert_eq!(decision_path("/%61dmin").as_deref(), Some("/admin"));
        assert_eq!(decision_path("/x%2Fadmin").as_deref(), Some("/x/admin"));
        assert_eq!(decision_path("\\admin").as_deref(), Some("/admin"));
        assert_eq!(decision_path("/100%").as_deref(), Some("/100%"));
        assert_eq!(decision_path("/x/../admin"), None);
        assert_eq!(decision_path("/x/%2e%2e/admin"), None);
        assert_eq!(decision_path("/./admin"), None);
    }

    #[test]
    fn hop_by_hop_headers_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-session-hint"),
            ("keep-alive", "timeout=5"),
            ("x-session-hint", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("trailer", "expires"),
            ("proxy-authorization", "Basic eDp5"),
            ("proxy-connection", "keep-alive"),
            ("authorization", "Bearer t"),
            ("content-type", "text/plain"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }

        remove_hop_by_hop(&mut headers);

        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "content-type"]);
    }

    #[test]
    fn context_headers_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Auth-Role", HeaderValue::from_static("admin"));
        headers.insert("x-auth-principal-id", HeaderValue::from_static("someone"));
        headers.insert("x-authz", HeaderValue::from_static("kept"));

        remove_context_headers(&mut headers);

        assert!(!headers.contains_key("x-auth-role"));
        assert!(!headers.contains_key("x-auth-principal-id"));
        assert!(headers.contains_key("x-authz"));
    }
}
