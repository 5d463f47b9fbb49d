//! Authorizer decision time per credential, from event JSON text to response JSON text, beside
//! the bare aws-lc-rs verification of the same RS256 token in the same run.
//!
//! Run: `cargo bench -p lambda-auth --bench authorizer`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use lambda_auth::clock::SystemClock;
use lambda_auth::config::Config;
use lambda_auth::store::sqlite::SqliteStore;
use lambda_auth::token::{Algorithm, KeySet, StoredKeySet};
use lambda_auth::App;
use serde_json::Value;

const CREDENTIALS: &str =
    r#"{"email":"bench@example.com","password":"correct horse battery staple"}"#;

fn app(algorithm: Algorithm, extra: &[(&str, &str)]) -> App {
    let mut variables: HashMap<&str, String> = HashMap::from([
        ("ARGON2_MEMORY_KIB", "8192".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
        ("API_KEY_CACHE_SECONDS", "300".to_owned()),
    ]);
    for (name, value) in extra {
        variables.insert(name, (*value).to_owned());
    }
    let config = Config::from_env(
        &|name| variables.get(name).cloned(),
        Some("https://auth.example.com"),
    )
    .unwrap();
    let keys = KeySet::from_stored(&StoredKeySet::generate(algorithm, 0).unwrap()).unwrap();
    App::new(
        config,
        Arc::new(SqliteStore::in_memory().unwrap()),
        keys,
        Arc::new(SystemClock),
    )
}

fn request(method: &str, path: &str, bearer: Option<&str>, body: &str) -> http::Request<Bytes> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Bytes::from(body.to_owned())).unwrap()
}

fn body(response: http::Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

/// Registers, logs in and creates a key; returns the access token and the API key.
fn sign_in(runtime: &tokio::runtime::Runtime, app: &App) -> (String, String) {
    runtime.block_on(async {
        app.handle(request("POST", "/auth/register", None, CREDENTIALS))
            .await;
        let tokens = body(
            app.handle(request("POST", "/auth/login", None, CREDENTIALS))
                .await,
        );
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let created = body(
            app.handle(request(
                "POST",
                "/auth/api-keys",
                Some(&access),
                r#"{"name":"bench","scopes":["read"]}"#,
            ))
            .await,
        );
        (access, created["key"].as_str().unwrap().to_owned())
    })
}

/// Builds a REST API REQUEST authorizer event with the given Authorization header.
fn event(authorization: &str) -> String {
    serde_json::json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/orders",
        "resource": "/orders",
        "path": "/orders",
        "httpMethod": "GET",
        "headers": { "Authorization": authorization, "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com" },
        "requestContext": { "stage": "prod", "httpMethod": "GET", "path": "/prod/orders" }
    })
    .to_string()
}

fn decide(runtime: &tokio::runtime::Runtime, app: &App, event_json: &str) -> String {
    runtime.block_on(async {
        let event: Value = serde_json::from_str(event_json).unwrap();
        let response = app.authorizer_response(&event).await.unwrap();
        serde_json::to_string(&response).unwrap()
    })
}

fn bench_authorizer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rs256 = app(Algorithm::RS256, &[]);
    let es256 = app(Algorithm::ES256, &[]);
    let strict = app(
        Algorithm::RS256,
        &[
            ("AUTHORIZER_STRICT", "true"),
            ("STRICT_CACHE_SECONDS", "300"),
        ],
    );
    let (rs256_token, api_key) = sign_in(&runtime, &rs256);
    let (es256_token, _) = sign_in(&runtime, &es256);
    let (strict_token, _) = sign_in(&runtime, &strict);

    let rs256_event = event(&format!("Bearer {rs256_token}"));
    let es256_event = event(&format!("Bearer {es256_token}"));
    let key_event = event(&format!("Bearer {api_key}"));
    let strict_event = event(&format!("Bearer {strict_token}"));
    for (app, event) in [
        (&rs256, &rs256_event),
        (&es256, &es256_event),
        (&rs256, &key_event),
        (&strict, &strict_event),
    ] {
        assert!(
            decide(&runtime, app, event).contains("\"Allow\""),
            "the credential is allowed"
        );
    }

    // The bare primitive: the same RS256 signature checked with a prepared aws-lc-rs key.
    let jwk = rs256.keys().jwks()["keys"][0].clone();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let public: ParsedPublicKey = RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    let (signed, signature_b64) = rs256_token.rsplit_once('.').unwrap();
    let token_signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();

    let mut group = c.benchmark_group("authorizer");
    group.bench_function("RS256 verify primitive", |b| {
        b.iter(|| {
            public
                .verify_sig(black_box(signed.as_bytes()), black_box(&token_signature))
                .unwrap()
        })
    });
    group.bench_function("RS256 token decision", |b| {
        b.iter(|| decide(&runtime, &rs256, black_box(&rs256_event)))
    });
    group.bench_function("ES256 token decision", |b| {
        b.iter(|| decide(&runtime, &es256, black_box(&es256_event)))
    });
    group.bench_function("API key decision (warm cache)", |b| {
        b.iter(|| decide(&runtime, &rs256, black_box(&key_event)))
    });
    group.bench_function("RS256 token decision, strict mode (warm cache)", |b| {
        b.iter(|| decide(&runtime, &strict, black_box(&strict_event)))
    });
    group.finish();
}

criterion_group!(benches, bench_authorizer);
criterion_main!(benches);
