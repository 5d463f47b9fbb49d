//! API keys through their routes and the Lambda authorizer: creation, listing, revocation,
//! expiry, scopes, the per-account limit and the last-used time, on SQLite and on DynamoDB
//! (moto).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use common::{assert_problem, body_json, TestApp, PASSWORD, START};
use futures::future::BoxFuture;
use lambda_auth::authorizer::AuthorizerError;
use lambda_auth::clock::Clock as _;
use lambda_auth::http::Response;
use lambda_auth::store::{AttrValue, Item, Key, Store, StoreError, Write};
use lambda_auth::token::Algorithm;
use lambda_auth::App;
use serde_json::{json, Value};

const REST_REQUEST_EVENT: &str = include_str!("events/authorizer-rest-request.json");
const HTTP_API_EVENT: &str = include_str!("events/authorizer-http-api-v2.json");

const EMAIL: &str = "ada@example.com";
const OTHER_EMAIL: &str = "grace@example.com";

// ---------------------------------------------------------------------------------------------
// Authorizer events

fn parse_fixture(fixture: &str) -> Value {
    serde_json::from_str(fixture).expect("the event fixture is JSON")
}

/// Builds a REST API REQUEST event for `GET /orders` on stage `prod` with these extra headers.
fn rest_request_event(headers: &[(&str, &str)]) -> Value {
    let mut event = parse_fixture(REST_REQUEST_EVENT);
    for (name, value) in headers {
        event["headers"][*name] = json!(value);
        event["multiValueHeaders"][*name] = json!([value]);
    }
    event
}

/// Builds an HTTP API payload 2.0 event for `GET /orders` on the `$default` stage.
fn http_api_event(headers: &[(&str, &str)]) -> Value {
    let mut event = parse_fixture(HTTP_API_EVENT);
    let identity: Vec<&str> = headers.iter().map(|(_, value)| *value).collect();
    event["identitySource"] = json!(identity);
    for (name, value) in headers {
        event["headers"][*name] = json!(value);
    }
    event
}

fn x_api_key_event(key: &str) -> Value {
    rest_request_event(&[("x-api-key", key)])
}

fn bearer_key_event(key: &str) -> Value {
    http_api_event(&[("authorization", &format!("Bearer {key}"))])
}

async fn authorize(app: &App, event: &Value) -> Result<Value, AuthorizerError> {
    app.authorizer_response(event).await
}

/// Returns the response of an allowed request, failing the test on an error.
fn allowed(outcome: Result<Value, AuthorizerError>, case: &str) -> Value {
    outcome.unwrap_or_else(|error| panic!("{case}: expected a response, got the error {error:?}"))
}

fn assert_unauthorized(outcome: Result<Value, AuthorizerError>, case: &str) {
    assert_eq!(outcome, Err(AuthorizerError::Unauthorized), "{case}");
}

fn key_context(user_id: &str, scopes: &str, key_id: &str) -> Value {
    json!({
        "principal_id": user_id,
        "role": "user",
        "scopes": scopes,
        "session_id": "",
        "key_id": key_id,
        "auth_method": "api_key",
    })
}

/// Asserts that both event kinds accept the key: a REST API REQUEST event with `x-api-key`
/// and an HTTP API event with `Authorization: Bearer`.
async fn assert_key_allowed(app: &App, key: &str, context: &Value, case: &str) {
    let rest = allowed(authorize(app, &x_api_key_event(key)).await, case);
    assert_eq!(
        rest["principalId"], context["principal_id"],
        "{case}: REST principal"
    );
    assert_eq!(
        rest["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{case}: REST policy {rest}"
    );
    assert_eq!(&rest["context"], context, "{case}: REST context");

    let http = allowed(authorize(app, &bearer_key_event(key)).await, case);
    let expected = json!({ "isAuthorized": true, "context": context });
    assert_eq!(http, expected, "{case}: HTTP API response");
}

async fn assert_key_unauthorized(app: &App, key: &str, case: &str) {
    assert_unauthorized(
        authorize(app, &x_api_key_event(key)).await,
        &format!("{case}, REST API x-api-key"),
    );
    assert_unauthorized(
        authorize(app, &bearer_key_event(key)).await,
        &format!("{case}, HTTP API Bearer"),
    );
}

// ---------------------------------------------------------------------------------------------
// Users and key routes

struct SignedIn {
    id: String,
    access_token: String,
}

impl SignedIn {
    fn from_tokens(tokens: &Value) -> SignedIn {
        let access_token = tokens["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("the token response has no access_token: {tokens}"))
            .to_owned();
        let payload = access_token
            .split('.')
            .nth(1)
            .expect("the access token has a payload");
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(payload)
                .expect("the payload is base64url"),
        )
        .expect("the payload is JSON");
        SignedIn {
            id: claims["sub"].as_str().expect("sub is a string").to_owned(),
            access_token,
        }
    }
}

async fn sign_in(app: &TestApp, email: &str) -> SignedIn {
    SignedIn::from_tokens(&app.signed_in(email).await)
}

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

fn key_route_request(
    method: &str,
    path: &str,
    access_token: Option<&str>,
    body: Option<&str>,
) -> lambda_auth::http::Request {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("user-agent", "lambda-auth-tests/1.0");
    if let Some(token) = access_token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    builder
        .body(Bytes::from(body.unwrap_or_default().to_owned()))
        .expect("a valid test request")
}

async fn create(app: &TestApp, access_token: &str, body: Value) -> Response {
    let request = key_route_request(
        "POST",
        "/auth/api-keys",
        Some(access_token),
        Some(&body.to_string()),
    );
    app.app.handle(request).await
}

/// A key as returned once by `POST /auth/api-keys`.
struct CreatedKey {
    key: String,
    id: String,
}

async fn create_key(app: &TestApp, access_token: &str, body: Value) -> CreatedKey {
    let response = create(app, access_token, body).await;
    assert_eq!(
        response.status(),
        201,
        "key creation: {:?}",
        response.body()
    );
    let created = body_json(&response);
    CreatedKey {
        key: created["key"].as_str().expect("key is a string").to_owned(),
        id: created["id"].as_str().expect("id is a string").to_owned(),
    }
}

async fn list(app: &TestApp, access_token: &str) -> Response {
    let request = key_route_request("GET", "/auth/api-keys", Some(access_token), None);
    app.app.handle(request).await
}

/// Returns the listed keys of the token's user.
async fn listed_keys(app: &TestApp, access_token: &str) -> Vec<Value> {
    let response = list(app, access_token).await;
    assert_eq!(response.status(), 200, "listing: {:?}", response.body());
    body_json(&response)["keys"]
        .as_array()
        .expect("keys is an array")
        .clone()
}

async fn revoke(app: &TestApp, access_token: &str, key_id: &str) -> Response {
    let path = format!("/auth/api-keys/{key_id}");
    let request = key_route_request("DELETE", &path, Some(access_token), None);
    app.app.handle(request).await
}

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

/// Builds a second app over the same store and clock, like another Lambda process of the
/// authorizer with its own key cache.
fn other_process(app: &TestApp, overrides: &[(&str, &str)]) -> App {
    App::new(
        common::test_config(overrides),
        Arc::clone(app.app.store()),
        common::key_set(Algorithm::RS256),
        app.clock.clone(),
    )
}

// ---------------------------------------------------------------------------------------------
// A store that counts reads

/// A store that passes every call on to `inner` and counts the reads (`get` and `query`).
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn Store>,
    reads: AtomicUsize,
}

impl CountingStore {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

// The method signatures are the ones `#[async_trait]` generates for `Store`, written out
// because the test crate does not depend on async-trait.
impl Store for CountingStore {
    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 Key,
        now: i64,
    ) -> BoxFuture<'async_trait, Result<Option<Item>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key, now)
    }

    fn write<'life0, 'async_trait>(
        &'life0 self,
        write: Write,
        now: i64,
    ) -> BoxFuture<'async_trait, Result<(), StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.write(write, now)
    }

    fn transact<'life0, 'async_trait>(
        &'life0 self,
        writes: Vec<Write>,
        now: i64,
    ) -> BoxFuture<'async_trait, Result<(), StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.transact(writes, now)
    }

    fn query<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        pk: &'life1 str,
        sk_prefix: &'life2 str,
        now: i64,
    ) -> BoxFuture<'async_trait, Result<Vec<(Key, Item)>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.query(pk, sk_prefix, now)
    }
}

// ---------------------------------------------------------------------------------------------
// Create, use, list and revoke

async fn key_lifecycle(store: Arc<dyn Store>) {
    let app = common::test_app(store, &[]);
    let user = sign_in(&app, EMAIL).await;

    let response = create(&app, &user.access_token, json!({ "name": "deploy bot" })).await;
    assert_eq!(response.status(), 201, "creation: {:?}", response.body());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created = body_json(&response);
    let key = created["key"].as_str().expect("key is a string").to_owned();
    let key_id = created["id"].as_str().expect("id is a string").to_owned();
    let prefix = created["prefix"].as_str().expect("prefix is a string");
    assert!(key.starts_with("lak_"), "key {key}");
    assert_eq!(key.len(), 53, "key length");
    assert!(key.starts_with(prefix), "prefix {prefix} of {key}");
    assert!(
        prefix.len() < key.len() / 2,
        "prefix {prefix} reveals most of the key"
    );
    assert_eq!(created["name"], "deploy bot");
    assert_eq!(created["scopes"], json!(["read"]));
    assert_eq!(created["created_at"], START);
    assert_eq!(created["expires_at"], Value::Null);

    let context = key_context(&user.id, "read", &key_id);
    assert_key_allowed(&app.app, &key, &context, "new key").await;

    let listing = list(&app, &user.access_token).await;
    assert_eq!(listing.status(), 200, "listing: {:?}", listing.body());
    let text = String::from_utf8_lossy(listing.body()).into_owned();
    let hash = digest::digest(&digest::SHA256, key.as_bytes());
    let hash_forms = [
        URL_SAFE_NO_PAD.encode(hash.as_ref()),
        STANDARD.encode(hash.as_ref()),
        hash.as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    ];
    assert!(!text.contains(&key), "the listing contains the key: {text}");
    for form in &hash_forms {
        assert!(
            !text.contains(form),
            "the listing contains the key hash: {text}"
        );
    }
    let keys = body_json(&listing)["keys"].clone();
    let expected_entry = json!({
        "id": key_id,
        "name": "deploy bot",
        "prefix": prefix,
        "scopes": ["read"],
        "created_at": START,
        "expires_at": null,
        "last_used_at": START,
    });
    assert_eq!(keys, json!([expected_entry]), "listing");

    let revoked = revoke(&app, &user.access_token, &key_id).await;
    assert_eq!(revoked.status(), 204, "revocation: {:?}", revoked.body());
    app.clock.advance(app.app.config().api_key_cache_seconds);
    assert_key_unauthorized(&app.app, &key, "revoked key").await;
    let keys = listed_keys(&app, &user.access_token).await;
    assert!(keys.is_empty(), "listing after revocation: {keys:?}");
}

#[tokio::test]
async fn key_lifecycle_sqlite() {
    key_lifecycle(Arc::new(common::sqlite_store())).await;
}

#[tokio::test]
async fn key_lifecycle_dynamo() {
    key_lifecycle(Arc::new(common::dynamo_store().await)).await;
}

#[tokio::test]
async fn revoking_process_rejects_at_once() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;
    let context = key_context(&user.id, "read", &created.id);
    assert_key_allowed(&app.app, &created.key, &context, "before revocation").await;

    let revoked = revoke(&app, &user.access_token, &created.id).await;
    assert_eq!(revoked.status(), 204, "revocation: {:?}", revoked.body());
    assert_key_unauthorized(&app.app, &created.key, "right after revocation").await;
}

/// Checks that a revocation reaches another process once `API_KEY_CACHE_SECONDS` have passed,
/// because that process keeps a verified key that long.
#[tokio::test]
async fn other_process_rejects_after_cache() {
    let app = common::sqlite_app(&[]);
    let authorizer = other_process(&app, &[]);
    let cache_seconds = authorizer.config().api_key_cache_seconds;
    assert_eq!(cache_seconds, 5, "the default API_KEY_CACHE_SECONDS");
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;
    let context = key_context(&user.id, "read", &created.id);
    assert_key_allowed(&authorizer, &created.key, &context, "before revocation").await;

    let revoked = revoke(&app, &user.access_token, &created.id).await;
    assert_eq!(revoked.status(), 204, "revocation: {:?}", revoked.body());
    app.clock.advance(cache_seconds - 1);
    assert_key_allowed(&authorizer, &created.key, &context, "within the cache time").await;

    app.clock.advance(1);
    assert_key_unauthorized(&authorizer, &created.key, "cache time passed").await;
}

#[tokio::test]
async fn other_process_without_cache_rejects_at_once() {
    let app = common::sqlite_app(&[]);
    let authorizer = other_process(&app, &[("API_KEY_CACHE_SECONDS", "0")]);
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;
    let context = key_context(&user.id, "read", &created.id);
    assert_key_allowed(&authorizer, &created.key, &context, "before revocation").await;

    let revoked = revoke(&app, &user.access_token, &created.id).await;
    assert_eq!(revoked.status(), 204, "revocation: {:?}", revoked.body());
    assert_key_unauthorized(&authorizer, &created.key, "right after revocation").await;
}

#[tokio::test]
async fn expired_key_rejected() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let response = create(
        &app,
        &user.access_token,
        json!({ "name": "ci", "expires_in_days": 1 }),
    )
    .await;
    assert_eq!(response.status(), 201, "creation: {:?}", response.body());
    let created = body_json(&response);
    assert_eq!(created["expires_at"], START + 86_400);
    let key = created["key"].as_str().expect("key is a string");
    let key_id = created["id"].as_str().expect("id is a string");
    let context = key_context(&user.id, "read", key_id);
    assert_key_allowed(&app.app, key, &context, "new key").await;

    app.clock.advance(86_400 + 1);
    assert_key_unauthorized(&app.app, key, "one day and one second later").await;
    let user = log_in(&app, EMAIL).await;
    let keys = listed_keys(&app, &user.access_token).await;
    assert!(keys.is_empty(), "listing after expiry: {keys:?}");
}

/// Checks that a key verified one second before it expires is rejected after expiry, although
/// its cache entry is younger than `API_KEY_CACHE_SECONDS`.
#[tokio::test]
async fn expired_key_rejected_despite_cache() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(
        &app,
        &user.access_token,
        json!({ "name": "ci", "expires_in_days": 1 }),
    )
    .await;
    let context = key_context(&user.id, "read", &created.id);

    app.clock.advance(86_400 - 1);
    assert_key_allowed(&app.app, &created.key, &context, "one second before expiry").await;
    app.clock.advance(2);
    assert_key_unauthorized(&app.app, &created.key, "one second after expiry").await;
}

#[tokio::test]
async fn other_users_key_not_revoked() {
    let app = common::sqlite_app(&[("API_KEY_CACHE_SECONDS", "0")]);
    let owner = sign_in(&app, EMAIL).await;
    let other = sign_in(&app, OTHER_EMAIL).await;
    let created = create_key(&app, &owner.access_token, json!({ "name": "ci" })).await;

    let response = revoke(&app, &other.access_token, &created.id).await;
    assert_problem(&response, 404, "not_found");
    let other_keys = listed_keys(&app, &other.access_token).await;
    assert!(
        other_keys.is_empty(),
        "the other user's listing: {other_keys:?}"
    );
    let owner_keys = listed_keys(&app, &owner.access_token).await;
    assert_eq!(owner_keys.len(), 1, "the owner's listing: {owner_keys:?}");
    let context = key_context(&owner.id, "read", &created.id);
    assert_key_allowed(
        &app.app,
        &created.key,
        &context,
        "after the other user's attempt",
    )
    .await;
}

#[tokio::test]
async fn disabled_owner_key_rejected() {
    let app = common::sqlite_app(&[("API_KEY_CACHE_SECONDS", "0")]);
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;
    let context = key_context(&user.id, "read", &created.id);
    assert_key_allowed(
        &app.app,
        &created.key,
        &context,
        "before the owner is disabled",
    )
    .await;

    set_profile_attribute(&app, &user.id, "status", "disabled").await;
    assert_key_unauthorized(&app.app, &created.key, "owner disabled").await;
}

#[tokio::test]
async fn unknown_key_id_not_found() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    let response = revoke(&app, &user.access_token, "no-such-key").await;
    assert_problem(&response, 404, "not_found");
}

/// Checks that a key with one changed character is rejected before any store read, because it
/// fails the checksum.
#[tokio::test]
async fn altered_key_rejected_without_store_read() {
    let counting = Arc::new(CountingStore {
        inner: Arc::new(common::sqlite_store()),
        reads: AtomicUsize::new(0),
    });
    let app = common::test_app(counting.clone(), &[("API_KEY_CACHE_SECONDS", "0")]);
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;

    let before = counting.reads();
    let context = key_context(&user.id, "read", &created.id);
    assert_key_allowed(&app.app, &created.key, &context, "real key").await;
    assert!(
        counting.reads() > before,
        "verifying the real key read the store"
    );

    for position in [4, 25, created.key.len() - 1] {
        let mut altered = created.key.clone().into_bytes();
        altered[position] = if altered[position] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let altered = String::from_utf8(altered).expect("the altered key is ASCII");

        let before = counting.reads();
        assert_key_unauthorized(&app.app, &altered, &format!("character {position} changed")).await;
        assert_eq!(
            counting.reads(),
            before,
            "store reads for a key with character {position} changed"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes

#[tokio::test]
async fn user_cannot_grant_admin_scope() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    let response = create(
        &app,
        &user.access_token,
        json!({ "name": "ci", "scopes": ["read", "admin"] }),
    )
    .await;
    assert_problem(&response, 403, "insufficient_scope");
}

#[tokio::test]
async fn unknown_scope_rejected() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    for scopes in [json!(["deploy"]), json!(["read", "READ"]), json!([""])] {
        let response = create(
            &app,
            &user.access_token,
            json!({ "name": "ci", "scopes": scopes }),
        )
        .await;
        assert_problem(&response, 400, "invalid_scope");
    }
}

#[tokio::test]
async fn empty_scopes_rejected() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    let response = create(
        &app,
        &user.access_token,
        json!({ "name": "ci", "scopes": [] }),
    )
    .await;
    assert_problem(&response, 400, "invalid_scope");
}

#[tokio::test]
async fn default_scopes_read_only() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    let response = create(&app, &user.access_token, json!({ "name": "ci" })).await;
    assert_eq!(response.status(), 201, "creation: {:?}", response.body());
    assert_eq!(body_json(&response)["scopes"], json!(["read"]));
}

#[tokio::test]
async fn duplicate_scopes_listed_once() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    let response = create(
        &app,
        &user.access_token,
        json!({ "name": "ci", "scopes": ["write", "read", "write"] }),
    )
    .await;
    assert_eq!(response.status(), 201, "creation: {:?}", response.body());
    assert_eq!(body_json(&response)["scopes"], json!(["write", "read"]));
}

/// Checks that the context carries the key's scopes, not the `read write` of the owner's token.
#[tokio::test]
async fn context_carries_key_scopes() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    for (scopes, expected) in [
        (json!(["write"]), "write"),
        (json!(["read"]), "read"),
        (json!(["read", "write"]), "read write"),
    ] {
        let created = create_key(
            &app,
            &user.access_token,
            json!({ "name": "ci", "scopes": scopes }),
        )
        .await;
        let context = key_context(&user.id, expected, &created.id);
        assert_key_allowed(
            &app.app,
            &created.key,
            &context,
            &format!("scopes {scopes}"),
        )
        .await;
    }
}

#[tokio::test]
async fn admin_key_carries_admin_role() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    set_profile_attribute(&app, &user.id, "role", "admin").await;
    let admin = log_in(&app, EMAIL).await;

    let created = create_key(
        &app,
        &admin.access_token,
        json!({ "name": "ops", "scopes": ["admin"] }),
    )
    .await;
    let response = allowed(
        authorize(&app.app, &bearer_key_event(&created.key)).await,
        "admin key",
    );
    assert_eq!(response["context"]["role"], "admin");
    assert_eq!(response["context"]["scopes"], "admin");
}

/// Checks that a key created while its owner was admin loses the admin scope when the owner is
/// demoted, because the owner's current role limits the key's scopes.
#[tokio::test]
async fn demoted_owner_key_loses_admin_scope() {
    let app = common::sqlite_app(&[
        ("AUTHORIZER_REQUIRED_SCOPE", "admin"),
        ("API_KEY_CACHE_SECONDS", "0"),
    ]);
    let user = sign_in(&app, EMAIL).await;
    set_profile_attribute(&app, &user.id, "role", "admin").await;
    let admin = log_in(&app, EMAIL).await;
    let created = create_key(
        &app,
        &admin.access_token,
        json!({ "name": "ops", "scopes": ["read", "admin"] }),
    )
    .await;
    let response = allowed(
        authorize(&app.app, &bearer_key_event(&created.key)).await,
        "while admin",
    );
    assert_eq!(response["isAuthorized"], true, "while admin");

    set_profile_attribute(&app, &user.id, "role", "user").await;
    let response = allowed(
        authorize(&app.app, &bearer_key_event(&created.key)).await,
        "after demotion",
    );
    assert_eq!(
        response,
        json!({ "isAuthorized": false }),
        "admin scope required, owner demoted"
    );
}

// ---------------------------------------------------------------------------------------------
// The per-account limit

#[tokio::test]
async fn limit_reached_until_revocation() {
    let app = common::sqlite_app(&[("API_KEY_LIMIT", "2")]);
    let user = sign_in(&app, EMAIL).await;
    let first = create_key(&app, &user.access_token, json!({ "name": "one" })).await;
    create_key(&app, &user.access_token, json!({ "name": "two" })).await;

    let third = create(&app, &user.access_token, json!({ "name": "three" })).await;
    assert_problem(&third, 409, "api_key_limit_reached");

    let revoked = revoke(&app, &user.access_token, &first.id).await;
    assert_eq!(revoked.status(), 204, "revocation: {:?}", revoked.body());
    let replacement = create(&app, &user.access_token, json!({ "name": "three" })).await;
    assert_eq!(
        replacement.status(),
        201,
        "after revocation: {:?}",
        replacement.body()
    );
    assert_eq!(listed_keys(&app, &user.access_token).await.len(), 2);
}

#[tokio::test]
async fn limit_counts_per_user() {
    let app = common::sqlite_app(&[("API_KEY_LIMIT", "1")]);
    let owner = sign_in(&app, EMAIL).await;
    let other = sign_in(&app, OTHER_EMAIL).await;
    create_key(&app, &owner.access_token, json!({ "name": "one" })).await;

    let response = create(&app, &other.access_token, json!({ "name": "one" })).await;
    assert_eq!(
        response.status(),
        201,
        "the other user's key: {:?}",
        response.body()
    );
}

async fn concurrent_creates_respect_limit(store: Arc<dyn Store>) {
    let app = Arc::new(common::test_app(store, &[("API_KEY_LIMIT", "3")]));
    let user = sign_in(&app, EMAIL).await;

    let attempts = (0..10).map(|index| {
        let app = Arc::clone(&app);
        let token = user.access_token.clone();
        tokio::spawn(async move {
            create(&app, &token, json!({ "name": format!("key {index}") })).await
        })
    });
    let responses: Vec<Response> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.expect("the creation task does not panic"))
        .collect();

    let created: Vec<&Response> = responses
        .iter()
        .filter(|response| response.status() == 201)
        .collect();
    assert_eq!(created.len(), 3, "keys created");
    for response in responses.iter().filter(|response| response.status() != 201) {
        let body = body_json(response);
        assert_eq!(response.status(), 409, "a refused creation: {body}");
        assert!(
            body["code"] == "api_key_limit_reached" || body["code"] == "api_key_conflict",
            "the code of a refused creation: {body}"
        );
    }
    let mut listed: Vec<String> = listed_keys(&app, &user.access_token)
        .await
        .iter()
        .map(|key| key["id"].as_str().expect("id is a string").to_owned())
        .collect();
    let mut returned: Vec<String> = created
        .iter()
        .map(|response| {
            body_json(response)["id"]
                .as_str()
                .expect("id is a string")
                .to_owned()
        })
        .collect();
    listed.sort();
    returned.sort();
    assert_eq!(listed, returned, "the listed keys are the created ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_respect_limit_sqlite() {
    concurrent_creates_respect_limit(Arc::new(common::sqlite_store())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_respect_limit_dynamo() {
    concurrent_creates_respect_limit(Arc::new(common::dynamo_store().await)).await;
}

// ---------------------------------------------------------------------------------------------
// Bad requests to the key routes

#[tokio::test]
async fn missing_name_rejected() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    for body in [
        json!({}),
        json!({ "scopes": ["read"] }),
        json!({ "name": null }),
    ] {
        let response = create(&app, &user.access_token, body).await;
        assert_problem(&response, 400, "invalid_request");
    }
}

#[tokio::test]
async fn blank_name_rejected() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    for name in ["", "   "] {
        let response = create(&app, &user.access_token, json!({ "name": name })).await;
        assert_problem(&response, 400, "invalid_request");
    }
}

#[tokio::test]
async fn name_length_bounded() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    let too_long = create(&app, &user.access_token, json!({ "name": "n".repeat(101) })).await;
    assert_problem(&too_long, 400, "invalid_request");
    let longest = create(&app, &user.access_token, json!({ "name": "é".repeat(100) })).await;
    assert_eq!(
        longest.status(),
        201,
        "100 characters: {:?}",
        longest.body()
    );
}

#[tokio::test]
async fn expiry_days_bounded() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    for days in [json!(0), json!(-1), json!(4000), json!(3651)] {
        let response = create(
            &app,
            &user.access_token,
            json!({ "name": "ci", "expires_in_days": days }),
        )
        .await;
        assert_problem(&response, 400, "invalid_request");
    }
    let response = create(
        &app,
        &user.access_token,
        json!({ "name": "ci", "expires_in_days": "30" }),
    )
    .await;
    assert_problem(&response, 400, "invalid_request");
    let longest = create(
        &app,
        &user.access_token,
        json!({ "name": "ci", "expires_in_days": 3650 }),
    )
    .await;
    assert_eq!(longest.status(), 201, "3650 days: {:?}", longest.body());
}

#[tokio::test]
async fn non_json_body_rejected() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;

    let request = key_route_request(
        "POST",
        "/auth/api-keys",
        Some(&user.access_token),
        Some("name=ci"),
    );
    assert_problem(&app.app.handle(request).await, 400, "malformed_json");
    let request = key_route_request(
        "POST",
        "/auth/api-keys",
        Some(&user.access_token),
        Some(r#"["ci"]"#),
    );
    assert_problem(&app.app.handle(request).await, 400, "invalid_request");
}

#[tokio::test]
async fn key_routes_require_bearer() {
    let app = common::sqlite_app(&[]);

    for (method, path, body) in [
        ("POST", "/auth/api-keys", Some(r#"{"name":"ci"}"#)),
        ("GET", "/auth/api-keys", None),
        ("DELETE", "/auth/api-keys/some-id", None),
    ] {
        let request = key_route_request(method, path, None, body);
        assert_problem(&app.app.handle(request).await, 401, "missing_token");
    }
}

/// Checks that the key routes accept access tokens only, so that a key cannot mint or revoke
/// keys.
#[tokio::test]
async fn key_routes_reject_api_key_bearer() {
    let app = common::sqlite_app(&[]);
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(
        &app,
        &user.access_token,
        json!({ "name": "ci", "scopes": ["read", "write"] }),
    )
    .await;

    for (method, path, body) in [
        (
            "POST",
            "/auth/api-keys".to_owned(),
            Some(r#"{"name":"minted"}"#),
        ),
        ("GET", "/auth/api-keys".to_owned(), None),
        ("DELETE", format!("/auth/api-keys/{}", created.id), None),
    ] {
        let request = key_route_request(method, &path, Some(&created.key), body);
        let response = app.app.handle(request).await;
        assert_problem(&response, 401, "invalid_token");
    }
    assert_eq!(listed_keys(&app, &user.access_token).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Last-used time

#[tokio::test]
async fn last_used_written_once_a_minute() {
    let app = common::sqlite_app(&[("API_KEY_CACHE_SECONDS", "0")]);
    let user = sign_in(&app, EMAIL).await;
    let created = create_key(&app, &user.access_token, json!({ "name": "ci" })).await;
    let context = key_context(&user.id, "read", &created.id);
    let keys = listed_keys(&app, &user.access_token).await;
    assert_eq!(keys[0]["last_used_at"], Value::Null, "before any use");

    assert_key_allowed(&app.app, &created.key, &context, "first use").await;
    app.clock.advance(30);
    assert_key_allowed(&app.app, &created.key, &context, "30 s later").await;
    let keys = listed_keys(&app, &user.access_token).await;
    assert_eq!(keys[0]["last_used_at"], START, "after uses 30 s apart");

    app.clock.advance(31);
    assert_key_allowed(&app.app, &created.key, &context, "61 s after the first").await;
    let keys = listed_keys(&app, &user.access_token).await;
    assert_eq!(
        keys[0]["last_used_at"],
        START + 61,
        "after a use 61 s later"
    );
}
