//! The login handler end to end on the in-memory SQLite store, and the argon2id verification it
//! contains, measured in the same run: their difference is the handler's own cost.
//!
//! Run: `cargo bench -p lambda-auth --bench login`

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use lambda_auth::clock::SystemClock;
use lambda_auth::config::Config;
use lambda_auth::password::{normalize, PasswordHasher};
use lambda_auth::store::sqlite::SqliteStore;
use lambda_auth::token::{KeySet, StoredKeySet};
use lambda_auth::App;

const PASSWORD: &str = "correct horse battery staple";

fn request(path: &str) -> http::Request<Bytes> {
    let body = format!("{{\"email\":\"bench@example.com\",\"password\":\"{PASSWORD}\"}}");
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Bytes::from(body))
        .unwrap()
}

fn bench_login(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::from_env(&|_| None, Some("https://auth.example.com")).unwrap();
    let keys =
        KeySet::from_stored(&StoredKeySet::generate(config.signing_algorithm, 0).unwrap()).unwrap();
    let hasher = PasswordHasher::new(config.argon2);
    let app = App::new(
        config,
        Arc::new(SqliteStore::in_memory().unwrap()),
        Arc::new(keys),
        Arc::new(SystemClock),
    );
    let registered = runtime.block_on(app.handle(request("/auth/register")));
    assert_eq!(registered.status(), 201);

    let stored_hash = hasher.hash(&normalize(PASSWORD));
    let mut group = c.benchmark_group("login");
    group.sample_size(30);
    group.bench_function("handler (default argon2id, RS256)", |b| {
        b.iter(|| {
            let response = runtime.block_on(app.handle(request("/auth/login")));
            assert_eq!(response.status(), 200);
        })
    });
    group.bench_function("argon2id verify alone", |b| {
        b.iter(|| hasher.verify(&normalize(PASSWORD), &stored_hash))
    });
    group.finish();
}

criterion_group!(benches, bench_login);
criterion_main!(benches);
