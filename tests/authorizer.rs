//! The Lambda authorizer fed API Gateway events: REST API TOKEN and REQUEST, and HTTP API
//! payload 2.0 with simple and with IAM responses.
//!
//! The events come from the `authorizer-*` fixtures, with the credential, method and path
//! filled in per test. Each test checks the exact response, or the error that API Gateway turns
//! into 401. Policies are checked for cache safety with a small evaluator of IAM resource
//! patterns, because API Gateway applies a cached policy to every route the caller requests.

mod common;

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use aws_lc_rs::{hmac, rsa};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use common::{body_json, TestApp, PASSWORD, START};
use lambda_auth::authorizer::AuthorizerError;
use lambda_auth::clock::{Clock as _, ManualClock};
use lambda_auth::store::{AttrValue, Item, Key, Write};
use lambda_auth::token::{self, AccessClaims, Algorithm, KeySet, StoredKeySet};
use lambda_auth::App;
use serde_json::{json, Value};

const REST_TOKEN_EVENT: &str = include_str!("events/authorizer-rest-token.json");
const REST_REQUEST_EVENT: &str = include_str!("events/authorizer-rest-request.json");
const HTTP_API_EVENT: &str = include_str!("events/authorizer-http-api-v2.json");

/// The API and stage of the REST fixtures, as the start of their method ARNs.
const REST_STAGE_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod";
/// The API of the HTTP API fixture, as the start of its route ARNs without the stage.
const HTTP_API_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:f6g7h8i9j0";

const EMAIL: &str = "ada@example.com";

// ---------------------------------------------------------------------------------------------
// Events

fn parse_fixture(fixture: &str) -> Value {
    serde_json::from_str(fixture).expect("the event fixture is JSON")
}

fn rest_token_event(token: &str, method: &str, path: &str) -> Value {
    let mut event = parse_fixture(REST_TOKEN_EVENT);
    event["authorizationToken"] = json!(token);
    event["methodArn"] = json!(format!("{REST_STAGE_ARN}/{method}{path}"));
    event
}

fn rest_request_event(headers: &[(&str, &str)], method: &str, path: &str) -> Value {
    let mut event = parse_fixture(REST_REQUEST_EVENT);
    event["methodArn"] = json!(format!("{REST_STAGE_ARN}/{method}{path}"));
    event["resource"] = json!(path);
    event["path"] = json!(path);
    event["httpMethod"] = json!(method);
    event["requestContext"]["httpMethod"] = json!(method);
    event["requestContext"]["path"] = json!(format!("/prod{path}"));
    event["requestContext"]["resourcePath"] = json!(path);
    for (name, value) in headers {
        event["headers"][*name] = json!(value);
        event["multiValueHeaders"][*name] = json!([value]);
    }
    event
}

/// Builds an HTTP API event. On a named stage it puts `/<stage>` in front of `rawPath` and
/// `requestContext.http.path`, where the authorizer expects API Gateway to put it.
fn http_api_event(stage: &str, headers: &[(&str, &str)], method: &str, path: &str) -> Value {
    let mut event = parse_fixture(HTTP_API_EVENT);
    let request_path = if stage == "$default" {
        path.to_owned()
    } else {
        format!("/{stage}{path}")
    };
    let route_key = format!("{method} {path}");
    event["routeArn"] = json!(format!("{HTTP_API_ARN}/{stage}/{method}{path}"));
    event["routeKey"] = json!(route_key);
    event["rawPath"] = json!(request_path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(request_path);
    event["requestContext"]["routeKey"] = json!(route_key);
    event["requestContext"]["stage"] = json!(stage);
    let identity: Vec<&str> = headers.iter().map(|(_, value)| *value).collect();
    event["identitySource"] = json!(identity);
    for (name, value) in headers {
        event["headers"][*name] = json!(value);
    }
    event
}

/// One kind of authorizer event with the response format configured for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// REST API TOKEN authorizer whose token source is the `Authorization` or `x-api-key`
    /// header.
    RestToken,
    RestRequest,
    /// HTTP API payload 2.0 with simple responses, the default.
    HttpSimple,
    /// HTTP API payload 2.0 with IAM policy responses.
    HttpIam,
}

impl Shape {
    fn overrides(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Shape::HttpIam => &[("AUTHORIZER_HTTP_RESPONSE", "iam")],
            _ => &[],
        }
    }

    fn stage_arn(self) -> String {
        match self {
            Shape::RestToken | Shape::RestRequest => REST_STAGE_ARN.to_owned(),
            Shape::HttpSimple | Shape::HttpIam => format!("{HTTP_API_ARN}/$default"),
        }
    }

    /// Builds the event of a request with these headers. A TOKEN event carries the value of
    /// the first `Authorization` or `x-api-key` header as its token, and an empty token when
    /// there is none.
    fn event(self, headers: &[(&str, &str)], method: &str, path: &str) -> Value {
        match self {
            Shape::RestToken => {
                let token = headers
                    .iter()
                    .find(|(name, _)| {
                        name.eq_ignore_ascii_case("authorization")
                            || name.eq_ignore_ascii_case("x-api-key")
                    })
                    .map(|(_, value)| *value)
                    .unwrap_or_default();
                rest_token_event(token, method, path)
            }
            Shape::RestRequest => rest_request_event(headers, method, path),
            Shape::HttpSimple | Shape::HttpIam => http_api_event("$default", headers, method, path),
        }
    }

    fn bearer_event(self, secret: &str, method: &str, path: &str) -> Value {
        self.event(
            &[("Authorization", &format!("Bearer {secret}"))],
            method,
            path,
        )
    }
}

/// Builds a SQLite app configured for `shape`, with more settings from `extra`.
fn app_for(shape: Shape, extra: &[(&str, &str)]) -> TestApp {
    let mut overrides = shape.overrides().to_vec();
    overrides.extend_from_slice(extra);
    common::sqlite_app(&overrides)
}

// ---------------------------------------------------------------------------------------------
// Users, keys and the store

/// A signed-in user and the claims of its access token that the authorizer context repeats.
struct SignedIn {
    id: String,
    access_token: String,
    session_id: String,
}

fn token_payload(access_token: &str) -> Value {
    let payload = access_token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("the access token has no payload: {access_token}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the token payload is base64url");
    serde_json::from_slice(&bytes).expect("the token payload is JSON")
}

impl SignedIn {
    fn from_tokens(tokens: &Value) -> SignedIn {
        let access_token = tokens["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("the token response has no access_token: {tokens}"))
            .to_owned();
        let payload = token_payload(&access_token);
        SignedIn {
            id: payload["sub"].as_str().expect("sub is a string").to_owned(),
            session_id: payload["sid"].as_str().expect("sid is a string").to_owned(),
            access_token,
        }
    }
}

async fn sign_in(app: &TestApp, email: &str) -> SignedIn {
    SignedIn::from_tokens(&app.signed_in(email).await)
}

/// Logs in an existing user again, for a token that carries a changed role.
async fn log_in(app: &TestApp, email: &str) -> SignedIn {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(
        response.status(),
        200,
        "login of {email}: {:?}",
        response.body()
    );
    SignedIn::from_tokens(&body_json(&response))
}

/// Sets one string attribute of a user's profile item directly in the store.
async fn set_profile_attribute(app: &TestApp, user_id: &str, name: &str, value: &str) {
    let write = Write::Update {
        key: Key::new(format!("USER#{user_id}"), "PROFILE"),
        set: Item::from([(name.to_owned(), AttrValue::from(value))]),
        conditions: Vec::new(),
    };
    app.app
        .store()
        .write(write, app.clock.now())
        .await
        .unwrap_or_else(|error| panic!("setting {name} of user {user_id} failed: {error}"));
}

async fn log_out(app: &TestApp, access_token: &str) {
    let response = app
        .app
        .handle(common::bearer_request("POST", "/auth/logout", access_token))
        .await;
    assert_eq!(response.status(), 204, "logout: {:?}", response.body());
}

/// Creates an API key through `POST /auth/api-keys` and returns the key and its id.
async fn create_key(app: &TestApp, access_token: &str, body: Value) -> (String, String) {
    let request = http::Request::builder()
        .method("POST")
        .uri("/auth/api-keys")
        .header("authorization", format!("Bearer {access_token}"))
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("a valid test request");
    let response = app.app.handle(request).await;
    assert_eq!(
        response.status(),
        201,
        "key creation: {:?}",
        response.body()
    );
    let created = body_json(&response);
    let key = created["key"]
        .as_str()
        .expect("the key is a string")
        .to_owned();
    let id = created["id"]
        .as_str()
        .expect("the id is a string")
        .to_owned();
    (key, id)
}

// ---------------------------------------------------------------------------------------------
// Expected responses

fn token_context(user: &SignedIn, role: &str, scopes: &str) -> Value {
    json!({
        "principal_id": user.id,
        "role": role,
        "scopes": scopes,
        "session_id": user.session_id,
        "key_id": "",
        "auth_method": "access_token",
    })
}

fn key_context(user_id: &str, role: &str, scopes: &str, key_id: &str) -> Value {
    json!({
        "principal_id": user_id,
        "role": role,
        "scopes": scopes,
        "session_id": "",
        "key_id": key_id,
        "auth_method": "api_key",
    })
}

/// Builds the Allow policy for every route of the stage. For roles other than admin it adds an
/// explicit Deny of the `/admin` paths.
fn allow_policy(stage_arn: &str, principal_id: &str, role: &str, context: Value) -> Value {
    let mut statements = vec![json!({
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": [format!("{stage_arn}/*/*")],
    })];
    if role != "admin" {
        let denied: Vec<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
            .iter()
            .flat_map(|method| {
                [
                    format!("{stage_arn}/{method}/admin"),
                    format!("{stage_arn}/{method}/admin/*"),
                ]
            })
            .collect();
        statements.push(json!({
            "Action": "execute-api:Invoke",
            "Effect": "Deny",
            "Resource": denied,
        }));
    }
    json!({
        "principalId": principal_id,
        "policyDocument": { "Version": "2012-10-17", "Statement": statements },
        "context": context,
    })
}

fn deny_policy(stage_arn: &str, principal_id: &str, context: Value) -> Value {
    json!({
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": "Deny",
                "Resource": [format!("{stage_arn}/*/*")],
            }],
        },
        "context": context,
    })
}

fn expected_allow(shape: Shape, principal_id: &str, role: &str, context: Value) -> Value {
    match shape {
        Shape::HttpSimple => json!({ "isAuthorized": true, "context": context }),
        _ => allow_policy(&shape.stage_arn(), principal_id, role, context),
    }
}

fn expected_forbidden(shape: Shape, principal_id: &str, context: Value) -> Value {
    match shape {
        Shape::HttpSimple => json!({ "isAuthorized": false }),
        _ => deny_policy(&shape.stage_arn(), principal_id, context),
    }
}

// ---------------------------------------------------------------------------------------------
// Outcome checks

async fn authorize(app: &TestApp, event: &Value) -> Result<Value, AuthorizerError> {
    app.app.authorizer_response(event).await
}

/// Asserts that every context value is a string, number or boolean, the only types API Gateway
/// accepts there.
fn assert_context_scalar(response: &Value, case: &str) {
    let Some(context) = response.get("context") else {
        return;
    };
    let context = context
        .as_object()
        .unwrap_or_else(|| panic!("{case}: context is not an object: {context}"));
    for (name, value) in context {
        assert!(
            value.is_string() || value.is_number() || value.is_boolean(),
            "{case}: context.{name} is {value}, not a string, number or boolean"
        );
    }
}

fn assert_response(outcome: Result<Value, AuthorizerError>, expected: &Value, case: &str) {
    let response = outcome
        .unwrap_or_else(|error| panic!("{case}: expected {expected}, got the error {error:?}"));
    assert_eq!(&response, expected, "{case}");
    assert_context_scalar(&response, case);
}

fn assert_unauthorized(outcome: Result<Value, AuthorizerError>, case: &str) {
    match outcome {
        Ok(response) => panic!("{case}: expected Unauthorized, got {response}"),
        Err(error) => {
            assert_eq!(error, AuthorizerError::Unauthorized, "{case}");
            assert_eq!(error.to_string(), "Unauthorized", "{case}: error message");
        }
    }
}

/// Returns the response of an allowed request, failing the test on an error.
fn allowed(outcome: Result<Value, AuthorizerError>, case: &str) -> Value {
    let response = outcome
        .unwrap_or_else(|error| panic!("{case}: expected a response, got the error {error:?}"));
    assert_context_scalar(&response, case);
    response
}

// ---------------------------------------------------------------------------------------------
// IAM policy evaluation

/// Returns whether an IAM pattern matches a value. `*` matches any run of characters, `/`
/// included, and `?` matches one character.
///
/// NOTE: it is uncertain whether API Gateway lets a `*` before the last ARN segment span `/`.
/// Every ARN these tests check gets the same result either way.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // The pattern position after the last `*` seen, and the text position that `*` reaches.
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            last_star = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if let Some((after_star, reached)) = last_star {
            last_star = Some((after_star, reached + 1));
            p = after_star;
            t = reached + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|character| *character == '*')
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Evaluates `execute-api:Invoke` on `arn` as IAM does. An explicit Deny wins over any Allow,
/// and without a matching Allow the request is denied.
fn policy_allows(response: &Value, arn: &str) -> bool {
    let statements = response["policyDocument"]["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("the response has no policy statements: {response}"));
    let any_matches = |effect: &str| {
        statements.iter().any(|statement| {
            statement["Effect"] == effect
                && strings(&statement["Action"])
                    .iter()
                    .any(|action| glob_matches(action, "execute-api:Invoke"))
                && strings(&statement["Resource"])
                    .iter()
                    .any(|resource| glob_matches(resource, arn))
        })
    };
    !any_matches("Deny") && any_matches("Allow")
}

#[test]
fn glob_matches_like_iam() {
    assert!(glob_matches("a/*/*", "a/GET/orders/1"));
    assert!(glob_matches("a/*/admin", "a/GET/admin"));
    assert!(glob_matches("a/*/admin/*", "a/POST/admin/users/7"));
    assert!(glob_matches("a/*/admin/*", "a/GET/admin/"));
    assert!(glob_matches("a/?ET/x", "a/GET/x"));
    assert!(glob_matches("*", ""));
    assert!(!glob_matches("a/*/admin", "a/GET/administrator"));
    assert!(!glob_matches("a/*/admin/*", "a/GET/admin"));
    assert!(!glob_matches("a/*/*", "b/GET/orders"));
    assert!(!glob_matches("a/?ET/x", "a/ET/x"));
}

#[test]
fn policy_deny_beats_allow() {
    let policy = json!({
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                { "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "s/*/*" },
                { "Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ["s/*/admin"] },
            ],
        },
    });
    assert!(policy_allows(&policy, "s/GET/orders"));
    assert!(!policy_allows(&policy, "s/GET/admin"));
    assert!(!policy_allows(&policy, "t/GET/orders"));
}

// ---------------------------------------------------------------------------------------------
// Forged access tokens

/// An app over an RS256 key set whose private key the test holds, so that it can sign tokens
/// with any header under the app's own key.
struct Forger {
    app: TestApp,
    key_pair: rsa::KeyPair,
    kid: String,
}

impl Forger {
    fn new(overrides: &[(&str, &str)]) -> Forger {
        let stored =
            StoredKeySet::generate(Algorithm::RS256, START).expect("key generation succeeds");
        let keys = Arc::new(KeySet::from_stored(&stored).expect("a generated key set parses"));
        let clock = Arc::new(ManualClock::new(START));
        let app = App::new(
            common::test_config(overrides),
            Arc::new(common::sqlite_store()),
            keys,
            clock.clone(),
        );
        let der = STANDARD
            .decode(&stored.keys[0].private_key)
            .expect("the stored private key is base64");
        Forger {
            app: TestApp { app, clock },
            key_pair: rsa::KeyPair::from_pkcs8(&der).expect("RSA PKCS#8"),
            kid: stored.keys[0].kid.clone(),
        }
    }

    fn sign_rs256(&self, header: &Value, payload: &Value) -> String {
        let input = format!("{}.{}", encode_part(header), encode_part(payload));
        let mut signature = vec![0u8; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing succeeds");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn sign_claims(&self, edit: impl FnOnce(&mut AccessClaims), real: &str) -> String {
        let mut claims: AccessClaims =
            serde_json::from_value(token_payload(real)).expect("the payload is AccessClaims");
        edit(&mut claims);
        token::sign(&self.app.app.keys(), &claims)
    }
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Encodes DER as PEM with 64-character lines.
fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Returns one token of each attack class, named by case, built from a real token of the
/// forger's app.
fn attack_tokens(forger: &Forger, real: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = real.split('.').collect();
    let real_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts[0])
            .expect("the header is base64url"),
    )
    .expect("the header is JSON");
    let payload = token_payload(real);
    let mut admin_payload = payload.clone();
    admin_payload["role"] = json!("admin");
    admin_payload["scope"] = json!("read write admin");
    let mut tokens = Vec::new();

    let none_header = json!({ "alg": "none", "typ": "at+jwt", "kid": forger.kid });
    let unsigned = format!(
        "{}.{}",
        encode_part(&none_header),
        encode_part(&admin_payload)
    );
    tokens.push((
        "alg none, empty signature".to_owned(),
        format!("{unsigned}."),
    ));
    tokens.push(("alg none, no signature part".to_owned(), unsigned));

    let spki_der = forger
        .key_pair
        .public_key()
        .as_der()
        .expect("SPKI DER of the RSA public key")
        .as_ref()
        .to_vec();
    let jwk = forger.app.app.keys().jwks()["keys"][0].to_string();
    let hmac_header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": forger.kid });
    let hmac_input = format!(
        "{}.{}",
        encode_part(&hmac_header),
        encode_part(&admin_payload)
    );
    let hmac_keys = [
        ("SPKI PEM", pem("PUBLIC KEY", &spki_der).into_bytes()),
        ("SPKI DER", spki_der.clone()),
        ("JWK text", jwk.into_bytes()),
    ];
    for (encoding, key_bytes) in hmac_keys {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
        let tag = hmac::sign(&key, hmac_input.as_bytes());
        tokens.push((
            format!("HS256 keyed with the RSA public key as {encoding}"),
            format!("{hmac_input}.{}", URL_SAFE_NO_PAD.encode(tag)),
        ));
    }

    let mut signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("the signature is base64url");
    signature[0] ^= 0x01;
    tokens.push((
        "one signature bit flipped".to_owned(),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(&signature)
        ),
    ));
    tokens.push((
        "role admin under the real signature".to_owned(),
        format!("{}.{}.{}", parts[0], encode_part(&admin_payload), parts[2]),
    ));

    tokens.push((
        "foreign issuer".to_owned(),
        forger.sign_claims(
            |claims| claims.iss = "https://other-issuer.test.example".into(),
            real,
        ),
    ));
    tokens.push((
        "foreign audience".to_owned(),
        forger.sign_claims(|claims| claims.aud = "another-service".into(), real),
    ));
    let leeway = forger.app.app.config().token_leeway;
    let expired_at = forger.app.clock.now() - leeway - 1;
    tokens.push((
        "expired beyond the leeway".to_owned(),
        forger.sign_claims(
            |claims| {
                claims.iat = expired_at - 900;
                claims.nbf = expired_at - 900;
                claims.exp = expired_at;
            },
            real,
        ),
    ));

    let mut unknown_kid_header = real_header.clone();
    unknown_kid_header["kid"] = json!("no-such-key");
    tokens.push((
        "unknown kid, our signature".to_owned(),
        forger.sign_rs256(&unknown_kid_header, &payload),
    ));
    let claims: AccessClaims =
        serde_json::from_value(payload.clone()).expect("the payload is AccessClaims");
    tokens.push((
        "foreign key set".to_owned(),
        token::sign(&common::key_set(Algorithm::RS256), &claims),
    ));

    for garbage in [
        "not-a-token",
        "a.b.c",
        "..",
        "eyJ.eyJ.eyJ",
        "%%%.%%%.%%%",
        "токен.токен.токен",
    ] {
        tokens.push((format!("garbage {garbage:?}"), garbage.to_owned()));
    }
    tokens.push(("10 KiB of garbage".to_owned(), "A".repeat(10 * 1024)));
    tokens
}

// ---------------------------------------------------------------------------------------------
// Cases run for every event shape

async fn access_token_allowed(shape: Shape) {
    let app = app_for(shape, &[]);
    let user = sign_in(&app, EMAIL).await;

    let event = shape.bearer_event(&user.access_token, "GET", "/orders");
    let expected = expected_allow(
        shape,
        &user.id,
        "user",
        token_context(&user, "user", "read write"),
    );
    assert_response(authorize(&app, &event).await, &expected, "access token");
}

async fn missing_credential_unauthorized(shape: Shape) {
    let app = app_for(shape, &[]);
    sign_in(&app, EMAIL).await;

    let cases: [(&str, &[(&str, &str)]); 4] = [
        ("no credential header", &[]),
        ("Basic scheme", &[("Authorization", "Basic YWRhOnB3")]),
        ("Bearer without a token", &[("Authorization", "Bearer ")]),
        ("empty x-api-key", &[("x-api-key", "  ")]),
    ];
    for (case, headers) in cases {
        let event = shape.event(headers, "GET", "/orders");
        assert_unauthorized(authorize(&app, &event).await, case);
    }
}

async fn invalid_token_unauthorized(shape: Shape) {
    let app = app_for(shape, &[]);
    let user = sign_in(&app, EMAIL).await;
    let truncated = &user.access_token[..user.access_token.len() - 2];

    for (case, token) in [
        ("not a JWT", "not-a-token"),
        ("truncated signature", truncated),
    ] {
        let event = shape.bearer_event(token, "GET", "/orders");
        assert_unauthorized(authorize(&app, &event).await, case);
    }
}

async fn bearer_api_key_allowed(shape: Shape) {
    let app = app_for(shape, &[]);
    let user = sign_in(&app, EMAIL).await;
    let (key, key_id) = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;

    let event = shape.bearer_event(&key, "GET", "/orders");
    let expected = expected_allow(
        shape,
        &user.id,
        "user",
        key_context(&user.id, "user", "read", &key_id),
    );
    assert_response(authorize(&app, &event).await, &expected, "Bearer API key");
}

async fn x_api_key_allowed(shape: Shape) {
    let app = app_for(shape, &[]);
    let user = sign_in(&app, EMAIL).await;
    let (key, key_id) = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;

    let event = shape.event(&[("x-api-key", &key)], "GET", "/orders");
    let expected = expected_allow(
        shape,
        &user.id,
        "user",
        key_context(&user.id, "user", "read", &key_id),
    );
    assert_response(authorize(&app, &event).await, &expected, "x-api-key");
}

async fn attack_tokens_unauthorized(shape: Shape) {
    let forger = Forger::new(shape.overrides());
    let user = sign_in(&forger.app, EMAIL).await;
    let real_event = shape.bearer_event(&user.access_token, "GET", "/orders");
    let expected = expected_allow(
        shape,
        &user.id,
        "user",
        token_context(&user, "user", "read write"),
    );
    assert_response(
        authorize(&forger.app, &real_event).await,
        &expected,
        "real token of the forger's app",
    );

    for (case, token) in attack_tokens(&forger, &user.access_token) {
        let event = shape.bearer_event(&token, "GET", "/orders");
        assert_unauthorized(authorize(&forger.app, &event).await, &case);
    }
}

async fn required_scope_missing_forbidden(shape: Shape) {
    let app = app_for(shape, &[("AUTHORIZER_REQUIRED_SCOPE", "admin")]);
    let user = sign_in(&app, EMAIL).await;

    let event = shape.bearer_event(&user.access_token, "GET", "/orders");
    let expected = expected_forbidden(shape, &user.id, token_context(&user, "user", "read write"));
    assert_response(authorize(&app, &event).await, &expected, "user token");
}

async fn required_scope_held_allowed(shape: Shape) {
    let app = app_for(shape, &[("AUTHORIZER_REQUIRED_SCOPE", "admin")]);
    let user = sign_in(&app, EMAIL).await;
    set_profile_attribute(&app, &user.id, "role", "admin").await;
    let admin = log_in(&app, EMAIL).await;

    let event = shape.bearer_event(&admin.access_token, "GET", "/orders");
    let expected = expected_allow(
        shape,
        &admin.id,
        "admin",
        token_context(&admin, "admin", "read write admin"),
    );
    assert_response(authorize(&app, &event).await, &expected, "admin token");
}

async fn read_key_without_required_scope_forbidden(shape: Shape) {
    let app = app_for(shape, &[("AUTHORIZER_REQUIRED_SCOPE", "write")]);
    let user = sign_in(&app, EMAIL).await;
    let (key, key_id) = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;

    let event = shape.event(&[("x-api-key", &key)], "GET", "/orders");
    let expected = expected_forbidden(
        shape,
        &user.id,
        key_context(&user.id, "user", "read", &key_id),
    );
    assert_response(authorize(&app, &event).await, &expected, "read-only key");
}

/// Checks that a logout reaches the authorizer once `STRICT_CACHE_SECONDS` have passed since
/// the last strict check, because strict mode trusts a passed check that long.
async fn strict_logout_denied_after_cache(shape: Shape) {
    let app = app_for(shape, &[("AUTHORIZER_STRICT", "true")]);
    let cache_seconds = app.app.config().strict_cache_seconds;
    assert_eq!(cache_seconds, 5, "the default STRICT_CACHE_SECONDS");
    let user = sign_in(&app, EMAIL).await;
    let event = shape.bearer_event(&user.access_token, "GET", "/orders");
    allowed(authorize(&app, &event).await, "before logout");

    log_out(&app, &user.access_token).await;
    app.clock.advance(cache_seconds - 1);
    allowed(
        authorize(&app, &event).await,
        "after logout, within the strict cache time",
    );

    app.clock.advance(1);
    assert_unauthorized(
        authorize(&app, &event).await,
        "after logout, strict cache time passed",
    );
}

async fn strict_zero_cache_denied_at_once(shape: Shape) {
    let app = app_for(
        shape,
        &[("AUTHORIZER_STRICT", "true"), ("STRICT_CACHE_SECONDS", "0")],
    );
    let user = sign_in(&app, EMAIL).await;
    let event = shape.bearer_event(&user.access_token, "GET", "/orders");
    allowed(authorize(&app, &event).await, "before logout");

    log_out(&app, &user.access_token).await;
    assert_unauthorized(authorize(&app, &event).await, "right after logout");
}

/// Checks that without strict mode a logged-out token stays valid until it expires, because the
/// authorizer then verifies only the token and reads no session.
async fn logout_without_strict_still_allowed(shape: Shape) {
    let app = app_for(shape, &[]);
    let user = sign_in(&app, EMAIL).await;
    let event = shape.bearer_event(&user.access_token, "GET", "/orders");

    log_out(&app, &user.access_token).await;
    app.clock.advance(60);
    let expected = expected_allow(
        shape,
        &user.id,
        "user",
        token_context(&user, "user", "read write"),
    );
    assert_response(authorize(&app, &event).await, &expected, "after logout");
}

async fn strict_disabled_user_denied(shape: Shape) {
    let app = app_for(shape, &[("AUTHORIZER_STRICT", "true")]);
    let user = sign_in(&app, EMAIL).await;
    let event = shape.bearer_event(&user.access_token, "GET", "/orders");
    allowed(authorize(&app, &event).await, "before the user is disabled");

    set_profile_attribute(&app, &user.id, "status", "disabled").await;
    app.clock.advance(app.app.config().strict_cache_seconds);
    assert_unauthorized(authorize(&app, &event).await, "disabled user");
}

/// Checks that the policy built for `GET /orders` denies the admin paths to a user, because API
/// Gateway caches a policy per token and applies it to every route.
async fn admin_paths_denied_for_user(shape: Shape) {
    let app = app_for(shape, &[]);
    let user = sign_in(&app, EMAIL).await;

    if shape == Shape::HttpSimple {
        for path in ["/admin", "/admin/users"] {
            let event = shape.bearer_event(&user.access_token, "GET", path);
            let expected = json!({ "isAuthorized": false });
            assert_response(authorize(&app, &event).await, &expected, path);
        }
        let event = shape.bearer_event(&user.access_token, "GET", "/administrator");
        let response = allowed(authorize(&app, &event).await, "/administrator");
        assert_eq!(response["isAuthorized"], true, "/administrator");
        return;
    }

    let event = shape.bearer_event(&user.access_token, "GET", "/orders");
    let policy = allowed(authorize(&app, &event).await, "GET /orders");
    let stage = shape.stage_arn();
    for route in [
        "POST/orders/1",
        "GET/orders",
        "DELETE/orders/1/items/2",
        "GET/administrator",
        "GET/orders/admin",
    ] {
        assert!(
            policy_allows(&policy, &format!("{stage}/{route}")),
            "{route} is denied by {policy}"
        );
    }
    for route in [
        "GET/admin",
        "GET/admin/users",
        "POST/admin/users/7",
        "GET/admin/",
    ] {
        assert!(
            !policy_allows(&policy, &format!("{stage}/{route}")),
            "{route} is allowed by {policy}"
        );
    }
    let other_stage = stage.replace("/prod", "/dev").replace("/$default", "/beta");
    assert_ne!(other_stage, stage, "the other stage ARN differs");
    assert!(
        !policy_allows(&policy, &format!("{other_stage}/GET/orders")),
        "another stage is allowed by {policy}"
    );
}

async fn admin_paths_allowed_for_admin(shape: Shape) {
    let app = app_for(shape, &[]);
    let user = sign_in(&app, EMAIL).await;
    set_profile_attribute(&app, &user.id, "role", "admin").await;
    let admin = log_in(&app, EMAIL).await;
    let context = token_context(&admin, "admin", "read write admin");

    if shape == Shape::HttpSimple {
        let event = shape.bearer_event(&admin.access_token, "GET", "/admin/users");
        let expected = expected_allow(shape, &admin.id, "admin", context);
        assert_response(authorize(&app, &event).await, &expected, "/admin/users");
        return;
    }

    let event = shape.bearer_event(&admin.access_token, "GET", "/orders");
    let expected = expected_allow(shape, &admin.id, "admin", context);
    let policy = allowed(authorize(&app, &event).await, "GET /orders");
    assert_eq!(policy, expected, "admin policy");
    let stage = shape.stage_arn();
    for route in ["GET/admin", "GET/admin/users", "POST/orders/1"] {
        assert!(
            policy_allows(&policy, &format!("{stage}/{route}")),
            "{route} is denied by {policy}"
        );
    }
}

macro_rules! cases_for {
    ($module:ident, $shape:expr) => {
        mod $module {
            use super::*;

            cases_for!(@cases $shape;
                access_token_allowed,
                missing_credential_unauthorized,
                invalid_token_unauthorized,
                bearer_api_key_allowed,
                x_api_key_allowed,
                attack_tokens_unauthorized,
                required_scope_missing_forbidden,
                required_scope_held_allowed,
                read_key_without_required_scope_forbidden,
                strict_logout_denied_after_cache,
                strict_zero_cache_denied_at_once,
                logout_without_strict_still_allowed,
                strict_disabled_user_denied,
                admin_paths_denied_for_user,
                admin_paths_allowed_for_admin
            );
        }
    };
    (@cases $shape:expr; $($case:ident),*) => {
        $(
            #[tokio::test]
            async fn $case() {
                super::$case($shape).await;
            }
        )*
    };
}

cases_for!(rest_token, Shape::RestToken);
cases_for!(rest_request, Shape::RestRequest);
cases_for!(http_simple, Shape::HttpSimple);
cases_for!(http_iam, Shape::HttpIam);

// ---------------------------------------------------------------------------------------------
// Headers

#[tokio::test]
async fn header_names_ignore_case() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let (key, key_id) = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;
    let token_expected = allow_policy(
        REST_STAGE_ARN,
        &user.id,
        "user",
        token_context(&user, "user", "read write"),
    );
    let key_expected = allow_policy(
        REST_STAGE_ARN,
        &user.id,
        "user",
        key_context(&user.id, "user", "read", &key_id),
    );

    let bearer = format!("Bearer {}", user.access_token);
    for name in ["AUTHORIZATION", "authorization", "Authorization"] {
        let event = rest_request_event(&[(name, &bearer)], "GET", "/orders");
        assert_response(authorize(&app, &event).await, &token_expected, name);
    }
    for name in ["X-Api-Key", "X-API-KEY", "x-api-key"] {
        let event = rest_request_event(&[(name, &key)], "GET", "/orders");
        assert_response(authorize(&app, &event).await, &key_expected, name);
    }
}

#[tokio::test]
async fn bearer_scheme_ignores_case() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let expected = allow_policy(
        REST_STAGE_ARN,
        &user.id,
        "user",
        token_context(&user, "user", "read write"),
    );

    for scheme in ["bearer", "BEARER"] {
        let token = format!("{scheme} {}", user.access_token);
        let event = rest_token_event(&token, "GET", "/orders");
        assert_response(authorize(&app, &event).await, &expected, scheme);
    }
}

#[tokio::test]
async fn authorization_header_wins_over_x_api_key() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let (key, _) = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;
    let bearer = format!("Bearer {}", user.access_token);

    let event = http_api_event(
        "$default",
        &[("x-api-key", &key), ("authorization", &bearer)],
        "GET",
        "/orders",
    );
    let response = allowed(authorize(&app, &event).await, "both headers");
    assert_eq!(response["context"]["auth_method"], "access_token");
}

#[tokio::test]
async fn x_api_key_ignored_beside_basic_authorization() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let (key, _) = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;

    // API Gateway caches the response under the Authorization value alone, so a response built
    // from the x-api-key beside it would serve every caller that sends the same Basic value.
    let event = rest_request_event(
        &[("Authorization", "Basic YWRhOnB3"), ("X-Api-Key", &key)],
        "GET",
        "/orders",
    );

    assert_unauthorized(authorize(&app, &event).await, "Basic and x-api-key");
}

#[tokio::test]
async fn named_stage_admin_path_denied() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let bearer = format!("Bearer {}", user.access_token);
    let headers = [("authorization", bearer.as_str())];

    for path in ["/admin", "/admin/users"] {
        let event = http_api_event("prod", &headers, "GET", path);
        assert_eq!(
            event["requestContext"]["http"]["path"],
            format!("/prod{path}"),
            "the request path carries the stage"
        );
        let expected = json!({ "isAuthorized": false });
        assert_response(authorize(&app, &event).await, &expected, path);
    }
    let event = http_api_event("prod", &headers, "GET", "/orders");
    let response = allowed(authorize(&app, &event).await, "/orders");
    assert_eq!(response["isAuthorized"], true, "/orders on stage prod");
}

// ---------------------------------------------------------------------------------------------
// Malformed events

#[tokio::test]
async fn non_object_event_invalid() {
    let app = common::sqlite_app(&[]);

    for event in [
        json!(null),
        json!("TOKEN"),
        json!(42),
        json!([]),
        json!(true),
    ] {
        let outcome = authorize(&app, &event).await;
        assert_eq!(
            outcome,
            Err(AuthorizerError::InvalidEvent("methodArn is missing")),
            "event {event}"
        );
    }
}

#[tokio::test]
async fn missing_method_arn_invalid() {
    let app = common::sqlite_app(&[]);

    for fixture in [REST_TOKEN_EVENT, REST_REQUEST_EVENT] {
        let mut event = parse_fixture(fixture);
        let object = event.as_object_mut().expect("the fixture is an object");
        object.remove("methodArn");
        let outcome = authorize(&app, &event).await;
        assert_eq!(
            outcome,
            Err(AuthorizerError::InvalidEvent("methodArn is missing")),
            "{} event without methodArn",
            event["type"]
        );

        event["methodArn"] = json!(42);
        let outcome = authorize(&app, &event).await;
        assert_eq!(
            outcome,
            Err(AuthorizerError::InvalidEvent("methodArn is missing")),
            "{} event with a numeric methodArn",
            event["type"]
        );
    }
}

#[tokio::test]
async fn unknown_type_invalid() {
    let app = common::sqlite_app(&[]);
    let expected = Err(AuthorizerError::InvalidEvent(
        "type is neither TOKEN nor REQUEST",
    ));

    for kind in [
        json!("COGNITO_USER_POOLS"),
        json!("token"),
        json!(null),
        json!(1),
    ] {
        let mut event = parse_fixture(REST_TOKEN_EVENT);
        event["type"] = kind.clone();
        assert_eq!(authorize(&app, &event).await, expected, "type {kind}");
    }
    let mut event = parse_fixture(REST_REQUEST_EVENT);
    event
        .as_object_mut()
        .expect("the fixture is an object")
        .remove("type");
    assert_eq!(authorize(&app, &event).await, expected, "no type");
}

#[tokio::test]
async fn missing_route_arn_invalid() {
    let app = common::sqlite_app(&[]);
    let mut event = parse_fixture(HTTP_API_EVENT);
    event
        .as_object_mut()
        .expect("the fixture is an object")
        .remove("routeArn");

    assert_eq!(
        authorize(&app, &event).await,
        Err(AuthorizerError::InvalidEvent("routeArn is missing"))
    );
}

#[test]
fn invalid_event_message_names_field() {
    let error = AuthorizerError::InvalidEvent("methodArn is missing");

    assert_eq!(
        error.to_string(),
        "the event is not an API Gateway authorizer event: methodArn is missing"
    );
}

#[tokio::test]
async fn malformed_headers_unauthorized() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    for headers in [
        json!(null),
        json!("Authorization: Bearer x"),
        json!(["Authorization", "Bearer x"]),
        json!({ "Authorization": 42 }),
        json!({ "Authorization": [format!("Bearer {}", user.access_token)] }),
    ] {
        let mut event = parse_fixture(REST_REQUEST_EVENT);
        event["headers"] = headers.clone();
        assert_unauthorized(
            authorize(&app, &event).await,
            &format!("REST headers {headers}"),
        );

        let mut event = parse_fixture(HTTP_API_EVENT);
        event["headers"] = headers.clone();
        assert_unauthorized(
            authorize(&app, &event).await,
            &format!("HTTP headers {headers}"),
        );
    }
}

#[tokio::test]
async fn simple_response_uses_route_key_for_admin() {
    let app = app_for(Shape::HttpSimple, &[]);
    let user = sign_in(&app, "mapped@example.com").await;
    let bearer = format!("Bearer {}", user.access_token);
    let mut event = http_api_event(
        "$default",
        &[("authorization", &bearer)],
        "GET",
        "/admin/users",
    );
    // A custom domain's API mapping key stays in the request path, not in the route key.
    event["rawPath"] = json!("/v1/admin/users");
    event["requestContext"]["http"]["path"] = json!("/v1/admin/users");

    let response = authorize(&app, &event).await.unwrap();

    assert_eq!(response, json!({ "isAuthorized": false }));
}

#[tokio::test]
async fn simple_response_checks_path_of_greedy_route() {
    let app = app_for(Shape::HttpSimple, &[]);
    let user = sign_in(&app, "greedy@example.com").await;
    let bearer = format!("Bearer {}", user.access_token);
    let mut event = http_api_event(
        "$default",
        &[("authorization", &bearer)],
        "GET",
        "/admin/users",
    );
    event["routeKey"] = json!("ANY /{proxy+}");
    event["requestContext"]["routeKey"] = json!("ANY /{proxy+}");

    let response = authorize(&app, &event).await.unwrap();

    assert_eq!(response, json!({ "isAuthorized": false }));
}
