//! Access tokens issued over HTTP by the local server and verified by PyJWT, an independent
//! JWT implementation, through `tests/verify_with_pyjwt.py`.
//!
//! LAMBDA_AUTH_PYTHON must name a Python interpreter with `PyJWT[crypto]` installed, as
//! scripts/test sets it to `.venv/bin/python`. The tests fail when it is not set.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_with_pyjwt.py");
const EMAIL: &str = "ada@example.com";

/// A data folder under the system temporary directory, removed on drop.
struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The local server in this process on 127.0.0.1, stopped on drop.
struct LocalServer {
    base_url: String,
    issuer: String,
    audience: String,
    client: reqwest::Client,
    task: JoinHandle<()>,
    _data_dir: DataDir,
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A signed-in user's access token and user id.
struct SignedIn {
    access_token: String,
    user_id: String,
}

impl LocalServer {
    /// Starts the server on a new data folder with keys of the given algorithm.
    async fn start(algorithm: &str) -> LocalServer {
        let data_dir = DataDir(std::env::temp_dir().join(common::unique_name("lambda-auth-pyjwt")));
        // The port is bound first, so that the default issuer names the port actually served.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 succeeds");
        let port = listener
            .local_addr()
            .expect("the listener has an address")
            .port();

        let variables = HashMap::from([
            ("ARGON2_MEMORY_KIB", "8192"),
            ("ARGON2_ITERATIONS", "1"),
            ("SIGNING_ALGORITHM", algorithm),
        ]);
        let env = |name: &str| variables.get(name).map(|value| (*value).to_owned());
        let (app, created) = lambda_auth::local::app_for_data_dir(&data_dir.0, port, &env)
            .unwrap_or_else(|error| panic!("the local app does not start: {error}"));
        assert!(created, "a new data folder gets a new key set");
        let issuer = app.config().issuer.clone();
        let audience = app.config().audience.clone();

        let task = tokio::spawn(lambda_auth::local::serve(listener, Arc::new(app), None));
        // The proxy settings of the environment are ignored, so requests go to 127.0.0.1 only.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("the HTTP client builds");
        LocalServer {
            base_url: format!("http://127.0.0.1:{port}"),
            issuer,
            audience,
            client,
            task,
            _data_dir: data_dir,
        }
    }

    async fn get_json(&self, path: &str, bearer: Option<&str>) -> Value {
        let mut request = self.client.get(format!("{}{path}", self.base_url));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path} failed: {error}"));
        let status = response.status();
        let body = response
            .text()
            .await
            .expect("the response body is readable");
        assert_eq!(status, 200, "GET {path} returned {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("GET {path} is not JSON ({error}): {body}"))
    }

    async fn post_credentials(&self, path: &str, expected_status: u16) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(common::credentials(EMAIL, common::PASSWORD))
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {path} failed: {error}"));
        let status = response.status();
        let body = response
            .text()
            .await
            .expect("the response body is readable");
        assert_eq!(status, expected_status, "POST {path} returned {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("POST {path} is not JSON ({error}): {body}"))
    }

    /// Registers and logs in over HTTP, then reads the user id from `/auth/me`.
    async fn sign_in(&self) -> SignedIn {
        self.post_credentials("/auth/register", 201).await;
        let login = self.post_credentials("/auth/login", 200).await;
        let access_token = login["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("the login response has no access_token: {login}"))
            .to_owned();
        let profile = self.get_json("/auth/me", Some(&access_token)).await;
        let user_id = profile["id"]
            .as_str()
            .unwrap_or_else(|| panic!("the profile has no id: {profile}"))
            .to_owned();
        SignedIn {
            access_token,
            user_id,
        }
    }

    /// Reads the `jwks_uri` of the discovery document, after checking that it names our issuer.
    async fn jwks_uri(&self) -> String {
        let discovery = self
            .get_json("/.well-known/openid-configuration", None)
            .await;
        assert_eq!(
            discovery["issuer"],
            self.issuer.as_str(),
            "issuer of {discovery}"
        );
        assert_eq!(
            self.issuer, self.base_url,
            "the default issuer is the server's own address"
        );
        discovery["jwks_uri"]
            .as_str()
            .unwrap_or_else(|| panic!("the discovery document has no jwks_uri: {discovery}"))
            .to_owned()
    }
}

/// Runs the PyJWT script with the four arguments it takes and returns its output.
async fn run_pyjwt(jwks_uri: &str, token: &str, issuer: &str, audience: &str) -> Output {
    let python = std::env::var("LAMBDA_AUTH_PYTHON").unwrap_or_else(|_| {
        panic!(
            "LAMBDA_AUTH_PYTHON is not set: set it to a Python interpreter with PyJWT[crypto] \
             installed, or run the tests with scripts/test, which sets it to .venv/bin/python"
        )
    });
    let mut command = Command::new(&python);
    command
        .arg(SCRIPT)
        .args([jwks_uri, token, issuer, audience]);
    for variable in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(variable);
    }
    // The script fetches the JWK Set from the server on this runtime, so it runs off the
    // runtime's thread.
    tokio::task::spawn_blocking(move || {
        command
            .output()
            .unwrap_or_else(|error| panic!("running {python} {SCRIPT} failed: {error}"))
    })
    .await
    .expect("the PyJWT task completes")
}

fn describe(output: &Output) -> String {
    format!(
        "exit status {}, stdout {}, stderr {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that PyJWT exits 1 with the named exception on standard error.
fn assert_pyjwt_rejected(output: &Output, exception: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", describe(output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(exception),
        "expected {exception}: {}",
        describe(output)
    );
}

async fn assert_verified_by_pyjwt(algorithm: &str) {
    let server = LocalServer::start(algorithm).await;
    let jwks_uri = server.jwks_uri().await;
    let user = server.sign_in().await;

    let output = run_pyjwt(
        &jwks_uri,
        &user.access_token,
        &server.issuer,
        &server.audience,
    )
    .await;
    assert!(output.status.success(), "{}", describe(&output));
    let claims: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the script printed no JSON ({error}): {}",
            describe(&output)
        )
    });
    assert_eq!(claims["sub"], user.user_id.as_str(), "sub of {claims}");
    assert_eq!(claims["iss"], server.issuer.as_str(), "iss of {claims}");
    assert_eq!(claims["aud"], server.audience.as_str(), "aud of {claims}");
}

#[tokio::test]
async fn rs256_verified_by_pyjwt() {
    assert_verified_by_pyjwt("RS256").await;
}

#[tokio::test]
async fn es256_verified_by_pyjwt() {
    assert_verified_by_pyjwt("ES256").await;
}

#[tokio::test]
async fn eddsa_verified_by_pyjwt() {
    assert_verified_by_pyjwt("EdDSA").await;
}

/// Changes one character of the `sub` claim and keeps the signature.
fn tamper_sub(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS: {token}");
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("the payload is base64url");
    let mut claims: Value = serde_json::from_slice(&payload).expect("the payload is JSON");

    let sub = claims["sub"]
        .as_str()
        .expect("the payload has a sub")
        .to_owned();
    let replacement = if sub.starts_with('A') { "B" } else { "A" };
    claims["sub"] = Value::from(format!("{replacement}{}", &sub[1..]));
    let changed = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{changed}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn tampered_payload_rejected_by_pyjwt() {
    let server = LocalServer::start("RS256").await;
    let jwks_uri = server.jwks_uri().await;
    let user = server.sign_in().await;

    let tampered = tamper_sub(&user.access_token);
    let output = run_pyjwt(&jwks_uri, &tampered, &server.issuer, &server.audience).await;
    assert_pyjwt_rejected(&output, "InvalidSignatureError");
}

#[tokio::test]
async fn foreign_issuer_rejected_by_pyjwt() {
    let server = LocalServer::start("ES256").await;
    let jwks_uri = server.jwks_uri().await;
    let user = server.sign_in().await;

    let output = run_pyjwt(
        &jwks_uri,
        &user.access_token,
        "http://127.0.0.1:1",
        &server.audience,
    )
    .await;
    assert_pyjwt_rejected(&output, "InvalidIssuerError");
}

#[tokio::test]
async fn foreign_audience_rejected_by_pyjwt() {
    let server = LocalServer::start("EdDSA").await;
    let jwks_uri = server.jwks_uri().await;
    let user = server.sign_in().await;

    let output = run_pyjwt(
        &jwks_uri,
        &user.access_token,
        &server.issuer,
        "another-service",
    )
    .await;
    assert_pyjwt_rejected(&output, "InvalidAudienceError");
}
