//! Drivers for the two OpenID providers that scripts/test starts from tests/oidc.
//!
//! - The real provider (oidc-provider, `tests/oidc/provider.mjs`) at `LAMBDA_AUTH_OIDC_ISSUER`
//!   has the confidential client `lambda-auth-test` with secret `lambda-auth-test-secret`
//!   (registered for client_secret_basic, and oidc-provider 9 accepts client_secret_post too),
//!   requires PKCE with S256, and signs users in through its development login and consent
//!   forms. [`sign_in_at_provider`] fills in those forms.
//! - The fake provider (`tests/oidc/fake-provider.mjs`) at `LAMBDA_AUTH_FAKE_OIDC_ISSUER`
//!   accepts any client id and secret, redirects from `/authorize` at once, and issues ID
//!   tokens that break one rule each, as chosen by [`set_fake_mode`].
//!
//! Both listen on 127.0.0.1 only, and every request here goes to one of them. The callback
//! URLs that these functions return are never requested: tests pass them to the handler.

use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode, Url};
use tokio::sync::{Mutex, MutexGuard};

/// The callback URL that tests register for the real provider's client.
pub const TEST_CALLBACK_URL: &str = "http://127.0.0.1:3000/auth/oauth/test/callback";
/// The callback URL that tests use with the fake provider.
pub const FAKE_CALLBACK_URL: &str = "http://127.0.0.1:3000/auth/oauth/fake/callback";
/// The real provider's client id.
pub const CLIENT_ID: &str = "lambda-auth-test";
/// The real provider's client secret, sent with client_secret_basic.
pub const CLIENT_SECRET: &str = "lambda-auth-test-secret";

/// The modes of the fake provider, as [`set_fake_mode`] accepts them.
pub const FAKE_MODES: [&str; 7] = [
    "ok",
    "wrong_aud",
    "wrong_iss",
    "expired",
    "bad_signature",
    "wrong_nonce",
    "access_denied",
];

/// The maximum number of requests of one sign-in. A sign-in with login and consent takes six.
const MAX_SIGN_IN_REQUESTS: usize = 12;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The lock that serializes the tests of one test binary that use the fake provider, whose
/// mode is global to the server. `cargo test` runs the test binaries one after another, so no
/// two binaries use the fake provider at the same time.
/// NOTE: cargo-nextest runs each test in its own process, where this lock serializes nothing.
static FAKE_PROVIDER: Mutex<()> = Mutex::const_new(());

/// Exclusive use of the fake provider in its current mode, for as long as this value lives.
#[must_use = "the fake provider is shared: keep this value alive until the flow that uses the mode ends"]
pub struct FakeProviderLease {
    _guard: MutexGuard<'static, ()>,
}

/// Returns the real provider's issuer, `http://127.0.0.1:<port>`, from
/// `LAMBDA_AUTH_OIDC_ISSUER`. Tests that need it fail, never skip, without it.
pub fn issuer() -> String {
    loopback_issuer("LAMBDA_AUTH_OIDC_ISSUER")
}

/// Returns the fake provider's issuer, `http://127.0.0.1:<port>`, from
/// `LAMBDA_AUTH_FAKE_OIDC_ISSUER`. Tests that need it fail, never skip, without it.
pub fn fake_issuer() -> String {
    loopback_issuer("LAMBDA_AUTH_FAKE_OIDC_ISSUER")
}

fn loopback_issuer(variable: &str) -> String {
    let issuer = std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: run the tests with scripts/test, which starts the OpenID \
             providers in tests/oidc"
        )
    });
    assert!(
        issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'),
        "{variable} must be an issuer of the form http://127.0.0.1:<port>, found {issuer}"
    );
    issuer
}

/// Builds the HTTP client for the providers: a cookie store for the provider's session and
/// interaction cookies, no automatic redirects, and no proxy.
fn provider_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("the reqwest client for the OpenID providers builds")
}

/// Sets the mode of the fake provider and returns a lease that keeps other tests of this
/// test binary from changing it. Hold the lease (`let _fake = set_fake_mode("ok").await;`,
/// not `let _ = …`, which drops it at once) until the token exchange has finished.
pub async fn set_fake_mode(mode: &str) -> FakeProviderLease {
    assert!(
        FAKE_MODES.contains(&mode),
        "invalid fake provider mode {mode:?}: expected one of {FAKE_MODES:?}"
    );
    let guard = FAKE_PROVIDER.lock().await;

    let url = format!("{}/mode", fake_issuer());
    let response = provider_client()
        .post(&url)
        .json(&serde_json::json!({ "mode": mode }))
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {url} failed: {error}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::OK,
        "the fake provider rejected mode {mode:?}: {body}"
    );

    FakeProviderLease { _guard: guard }
}

/// Signs `login` in at the real provider and returns the URL that the provider finally
/// redirects to: the callback URL with `code`, `state` and `iss`, or with `error`.
///
/// `login` is `<subject>` (no email claims) or `<subject>;<email>;<true|false>`, which sets
/// `email` and `email_verified`. The password is ignored. This requests `authorize_url`,
/// follows the provider's redirects on its own origin, submits the login form and then the
/// consent form, and stops at the first redirect to the authorization request's
/// `redirect_uri` without requesting it. It panics on any other response, and on any URL that
/// contains something that looks like a JWT.
pub async fn sign_in_at_provider(authorize_url: &str, login: &str) -> String {
    let issuer = issuer();
    let redirect_uri = authorization_redirect_uri(authorize_url, &issuer);
    let client = provider_client();
    let mut response = get(&client, authorize_url).await;

    for _ in 0..MAX_SIGN_IN_REQUESTS {
        let current = response.url().clone();
        let status = response.status();

        if status.is_redirection() {
            let location = location_of(&response);
            if location.as_str().starts_with(&redirect_uri) {
                return location.into();
            }
            assert_same_origin(&location, &issuer, "redirect");
            response = get(&client, location.as_str()).await;
            continue;
        }

        let body = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::OK,
            "the provider returned {status} for {current} instead of a form or a redirect: {}",
            excerpt(&body)
        );
        let form = Form::parse(&body, &current)
            .unwrap_or_else(|| panic!("no form on the page at {current}: {}", excerpt(&body)));
        assert_same_origin(&form.action, &issuer, "form action");

        let fields = form.fields_for(login);
        response = client
            .post(form.action.clone())
            .form(&fields)
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {} failed: {error}", form.action));
    }

    panic!(
        "the sign-in at {issuer} did not redirect to {redirect_uri} within \
         {MAX_SIGN_IN_REQUESTS} requests"
    );
}

/// Requests the fake provider's authorization URL and returns the `Location` that it
/// redirects to: the callback URL with `code` and `state`, or with `error` in mode
/// `access_denied`.
pub async fn follow_fake_provider(authorize_url: &str) -> String {
    let issuer = fake_issuer();
    let redirect_uri = authorization_redirect_uri(authorize_url, &issuer);
    let response = get(&provider_client(), authorize_url).await;

    let status = response.status();
    if status != StatusCode::FOUND {
        let body = response.text().await.unwrap_or_default();
        panic!("the fake provider returned {status} instead of 302 for {authorize_url}: {body}");
    }
    let location = location_of(&response);
    assert!(
        location.as_str().starts_with(&redirect_uri),
        "the fake provider redirected to {location}, not to redirect_uri {redirect_uri}"
    );
    location.into()
}

/// Panics when `url` contains something that looks like a JWT: three or more base64url parts
/// separated by dots, the first starting with `eyJ` (the encoding of `{"`). The check covers
/// the URL as written and the percent-decoded query and fragment.
pub fn assert_no_token_in_url(url: &str) {
    assert!(
        !contains_jwt(url),
        "URL contains something that looks like a JWT: {url}"
    );
    let Ok(parsed) = Url::parse(url) else {
        return;
    };
    for (name, value) in parsed.query_pairs() {
        assert!(
            !contains_jwt(&name) && !contains_jwt(&value),
            "query parameter {name:?} of URL contains something that looks like a JWT: {url}"
        );
    }

    // A fragment such as `#id_token=...` is decoded like a query.
    let mut fragment_as_query = parsed.clone();
    fragment_as_query.set_query(parsed.fragment());
    for (name, value) in fragment_as_query.query_pairs() {
        assert!(
            !contains_jwt(&name) && !contains_jwt(&value),
            "fragment parameter {name:?} of URL contains something that looks like a JWT: {url}"
        );
    }
}

fn contains_jwt(text: &str) -> bool {
    let is_token_byte =
        |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(offset) = text[start..].find("eyJ") {
        let begin = start + offset;
        let end = bytes[begin..]
            .iter()
            .position(|&byte| !is_token_byte(byte))
            .map_or(bytes.len(), |length| begin + length);
        let parts: Vec<&str> = text[begin..end].split('.').collect();
        if parts.len() >= 3 && parts[..2].iter().all(|part| !part.is_empty()) {
            return true;
        }
        start = begin + 3;
    }
    false
}

/// Returns the `redirect_uri` of an authorization URL, after checking that the URL is on
/// `issuer`'s origin and contains no JWT.
fn authorization_redirect_uri(authorize_url: &str, issuer: &str) -> String {
    assert_no_token_in_url(authorize_url);
    let url = Url::parse(authorize_url)
        .unwrap_or_else(|error| panic!("invalid authorization URL {authorize_url}: {error}"));
    assert_same_origin(&url, issuer, "authorization URL");
    url.query_pairs()
        .find(|(name, _)| name == "redirect_uri")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("authorization URL has no redirect_uri: {authorize_url}"))
}

fn assert_same_origin(url: &Url, issuer: &str, label: &str) {
    let expected = Url::parse(issuer).expect("the issuer is a valid URL");
    assert_eq!(
        url.origin(),
        expected.origin(),
        "{label} {url} is not on the provider's origin {issuer}, and this driver requests \
         only that origin"
    );
}

async fn get(client: &Client, url: &str) -> Response {
    assert_no_token_in_url(url);
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url} failed: {error}"))
}

/// Returns the absolute `Location` of a redirect, after checking it contains no JWT.
fn location_of(response: &Response) -> Url {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("{status} from {} has no Location header", response.url()))
        .to_str()
        .expect("the Location header is ASCII");
    let absolute = response
        .url()
        .join(location)
        .unwrap_or_else(|error| panic!("invalid Location {location}: {error}"));
    assert_no_token_in_url(absolute.as_str());
    absolute
}

/// Returns the start of a response body for a failure message.
fn excerpt(body: &str) -> &str {
    let mut end = body.len().min(2000);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

/// The first HTML form of a page: its absolute action URL and its inputs.
struct Form {
    action: Url,
    inputs: Vec<(String, String)>,
}

impl Form {
    /// Parses the first `<form>` of the development login and consent pages of
    /// oidc-provider 9, which have no nested quotes in attributes. This is not a general
    /// HTML parser.
    fn parse(html: &str, page_url: &Url) -> Option<Form> {
        let form_start = html.find("<form")?;
        let form_html = &html[form_start..];
        let form_html = &form_html[..form_html.find("</form>").unwrap_or(form_html.len())];

        let tag_end = form_html.find('>')?;
        let action = attribute(&form_html[..tag_end], "action").unwrap_or_default();
        let action = page_url.join(&action).ok()?;

        let mut inputs = Vec::new();
        let mut rest = form_html;
        while let Some(input_start) = rest.find("<input") {
            rest = &rest[input_start..];
            let input_end = rest.find('>').unwrap_or(rest.len());
            let tag = &rest[..input_end];
            if let Some(name) = attribute(tag, "name") {
                inputs.push((name, attribute(tag, "value").unwrap_or_default()));
            }
            rest = &rest[input_end..];
        }
        Some(Form { action, inputs })
    }

    /// Returns the form's fields with `login` in the `login` input and a password in the
    /// `password` input. The provider's development login form accepts any password.
    fn fields_for(&self, login: &str) -> Vec<(String, String)> {
        self.inputs
            .iter()
            .map(|(name, value)| {
                let value = match name.as_str() {
                    "login" => login.to_owned(),
                    "password" => "any password".to_owned(),
                    _ => value.clone(),
                };
                (name.clone(), value)
            })
            .collect()
    }
}

/// Returns the unescaped value of a double-quoted attribute of one HTML tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let pattern = format!(" {name}=\"");
    let start = tag.find(&pattern)? + pattern.len();
    let length = tag[start..].find('"')?;
    Some(unescape_html(&tag[start..start + length]))
}

/// Replaces the entities that oidc-provider's templates write in attribute values.
fn unescape_html(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
