//! The local server over real HTTP: the flows, the body limit, and data and keys that survive a
//! restart.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lambda_auth::local::{app_for_data_dir, serve, KEY_SET_FILE};
use serde_json::{json, Value};

struct Server {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_name("lambda-auth-local"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the server on a free port. The issuer is fixed so that tokens outlive the port.
async fn start(dir: &Path) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let variables = HashMap::from([
        ("AUTH_ISSUER", "http://127.0.0.1:3000".to_owned()),
        ("ARGON2_MEMORY_KIB", "8192".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
        ("REFRESH_REUSE_GRACE_SECONDS", "1".to_owned()),
    ]);
    let (app, _) = app_for_data_dir(dir, port, &|name| variables.get(name).cloned()).unwrap();
    Server {
        url: format!("http://127.0.0.1:{port}"),
        task: tokio::spawn(serve(listener, Arc::new(app), None)),
    }
}

async fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn me(server: &Server, access_token: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/auth/me", server.url))
        .bearer_auth(access_token.as_str().unwrap())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn credentials() -> Value {
    json!({ "email": "local@example.com", "password": common::PASSWORD })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_over_http() {
    let dir = data_dir();
    let server = start(&dir).await;

    let (status, _) = post(&server, "/auth/register", credentials()).await;
    assert_eq!(status, 201);
    let (status, tokens) = post(&server, "/auth/login", credentials()).await;
    assert_eq!(status, 200);
    assert_eq!(me(&server, &tokens["access_token"]).await.0, 200);

    let (status, rotated) = post(
        &server,
        "/auth/refresh",
        json!({ "refresh_token": tokens["refresh_token"] }),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = post(
        &server,
        "/auth/refresh",
        json!({ "refresh_token": tokens["refresh_token"] }),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "refresh_token_reused");
    let (status, _) = post(
        &server,
        "/auth/refresh",
        json!({ "refresh_token": rotated["refresh_token"] }),
    )
    .await;
    assert_eq!(status, 401, "the newest refresh token stops working too");

    let (_, second) = post(&server, "/auth/login", credentials()).await;
    let logout = reqwest::Client::new()
        .post(format!("{}/auth/logout", server.url))
        .bearer_auth(second["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 204);
    assert_eq!(me(&server, &second["access_token"]).await.0, 401);

    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_gets_413() {
    let dir = data_dir();
    let server = start(&dir).await;
    let body = format!("{{\"email\":\"{}\"}}", "x".repeat(20 * 1024));

    let response = reqwest::Client::new()
        .post(format!("{}/auth/register", server.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "payload_too_large");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_keys_survive_restart() {
    let dir = data_dir();
    let first = start(&dir).await;
    assert_eq!(post(&first, "/auth/register", credentials()).await.0, 201);
    let (_, tokens) = post(&first, "/auth/login", credentials()).await;
    let key_file = dir.join(KEY_SET_FILE);
    let keys_before = std::fs::read_to_string(&key_file).unwrap();
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key set file is private");
    drop(first);

    let second = start(&dir).await;

    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        keys_before,
        "the keys are reused"
    );
    let (status, profile) = me(&second, &tokens["access_token"]).await;
    assert_eq!(
        status, 200,
        "a token from before the restart verifies: {profile}"
    );
    assert_eq!(profile["email"], "local@example.com");
    assert_eq!(post(&second, "/auth/login", credentials()).await.0, 200);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn readable_key_file_rejected() {
    let dir = data_dir();
    let key_file = dir.join(KEY_SET_FILE);
    std::fs::write(&key_file, "{}").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let error = app_for_data_dir(&dir, 3000, &|_| None).unwrap_err();

    assert!(error.to_string().contains("chmod 600"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}
