//! Shared test harness: the moto endpoint, stores, applications and request helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use lambda_auth::clock::ManualClock;
use lambda_auth::config::Config;
use lambda_auth::http::{Request, Response};
use lambda_auth::store::dynamo::DynamoStore;
use lambda_auth::store::sqlite::SqliteStore;
use lambda_auth::store::Store;
use lambda_auth::token::{Algorithm, KeySet, StoredKeySet};
use lambda_auth::App;
use serde_json::Value;

/// A fixed start time for manual clocks: 2026-12-04T20:00:00Z.
pub const START: i64 = 1_796_414_400;

/// A password that passes the default policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// Returns the moto server's endpoint. Tests that need it fail, never skip, when the test
/// command did not start one.
pub fn moto_endpoint() -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test, which starts a moto server",
    );
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "AWS_ENDPOINT_URL must point at a moto server on 127.0.0.1, found {endpoint}"
    );
    for variable in [
        "AWS_EC2_METADATA_DISABLED",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        assert!(
            std::env::var(variable).is_ok(),
            "{variable} must be set by the test command"
        );
    }
    endpoint
}

pub async fn aws_config() -> aws_config::SdkConfig {
    let endpoint = moto_endpoint();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", lambda_auth::token::refresh::new_id())
}

/// Creates a DynamoDB store on a new table of the moto server.
pub async fn dynamo_store() -> DynamoStore {
    let config = aws_config().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        unique_name("lambda-auth-test"),
    );
    store
        .create_table()
        .await
        .expect("moto creates the test table");
    store
}

pub fn sqlite_store() -> SqliteStore {
    SqliteStore::in_memory().expect("an in-memory SQLite store opens")
}

/// Configuration for tests: the defaults, with cheaper argon2 parameters unless overridden.
pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    let mut variables: HashMap<String, String> = HashMap::from([
        (
            "AUTH_ISSUER".to_owned(),
            "https://auth.test.example".to_owned(),
        ),
        ("ARGON2_MEMORY_KIB".to_owned(), "8192".to_owned()),
        ("ARGON2_ITERATIONS".to_owned(), "1".to_owned()),
    ]);
    for (name, value) in overrides {
        variables.insert((*name).to_owned(), (*value).to_owned());
    }
    Config::from_env(&|name| variables.get(name).cloned(), None)
        .expect("test configuration is valid")
}

pub fn key_set(algorithm: Algorithm) -> Arc<KeySet> {
    let stored = StoredKeySet::generate(algorithm, START).expect("key generation succeeds");
    Arc::new(KeySet::from_stored(&stored).expect("a generated key set parses"))
}

pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
}

pub fn test_app(store: Arc<dyn Store>, overrides: &[(&str, &str)]) -> TestApp {
    let config = test_config(overrides);
    let clock = Arc::new(ManualClock::new(START));
    let keys = key_set(config.signing_algorithm);
    TestApp {
        app: App::new(config, store, keys, clock.clone()),
        clock,
    }
}

pub fn sqlite_app(overrides: &[(&str, &str)]) -> TestApp {
    test_app(Arc::new(sqlite_store()), overrides)
}

pub fn json_request(method: &str, path: &str, body: &str) -> Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("user-agent", "lambda-auth-tests/1.0")
        .body(Bytes::from(body.to_owned()))
        .expect("a valid test request")
}

pub fn bearer_request(method: &str, path: &str, token: &str) -> Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "lambda-auth-tests/1.0")
        .body(Bytes::new())
        .expect("a valid test request")
}

pub fn credentials(email: &str, password: &str) -> String {
    serde_json::json!({ "email": email, "password": password }).to_string()
}

pub fn body_json(response: &Response) -> Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|error| {
        panic!(
            "response body is not JSON ({error}): {}",
            String::from_utf8_lossy(response.body())
        )
    })
}

/// Asserts a problem response: status, `code`, and the problem content type.
pub fn assert_problem(response: &Response, status: u16, code: &str) {
    let body = String::from_utf8_lossy(response.body());
    assert_eq!(response.status().as_u16(), status, "status of {body}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "content type of {body}"
    );
    assert_eq!(body_json(response)["code"], code, "code of {body}");
}

impl TestApp {
    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.app
            .handle(json_request(
                "POST",
                "/auth/register",
                &credentials(email, password),
            ))
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.app
            .handle(json_request(
                "POST",
                "/auth/login",
                &credentials(email, password),
            ))
            .await
    }

    /// Registers and logs in; returns the token response body.
    pub async fn signed_in(&self, email: &str) -> Value {
        let registered = self.register(email, PASSWORD).await;
        assert_eq!(registered.status(), 201, "{:?}", registered.body());
        let login = self.login(email, PASSWORD).await;
        assert_eq!(login.status(), 200, "{:?}", login.body());
        body_json(&login)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        let body = serde_json::json!({ "refresh_token": refresh_token }).to_string();
        self.app
            .handle(json_request("POST", "/auth/refresh", &body))
            .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.app
            .handle(bearer_request("GET", "/auth/me", access_token))
            .await
    }
}

pub mod oidc;
