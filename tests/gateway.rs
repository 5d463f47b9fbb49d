//! The local server's gateway mode over real HTTP: the authorizer's decision in front of an echo
//! upstream on 127.0.0.1, the `x-auth-*` context headers, and the upstream failures.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lambda_auth::gateway::{Gateway, GatewayError, MAX_FORWARDED_BODY_BYTES};
use lambda_auth::local::{app_for_data_dir, serve};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream on 127.0.0.1 that responds to every request with `202 Accepted` and a JSON echo of
/// the method, path, query, headers and body it received.
///
/// NOTE: it parses HTTP/1.1 by hand because the test package has no hyper dependency. It reads
/// one request per connection, needs a `Content-Length` for a body, and closes the connection
/// after answering, which is all the gateway's client sends and needs.
struct EchoUpstream {
    url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoUpstream {
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn echo_upstream(delay: Duration) -> EchoUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                echo(stream, &counter, delay).await;
            });
        }
    });
    EchoUpstream {
        url,
        requests,
        task,
    }
}

async fn echo(mut stream: TcpStream, counter: &AtomicUsize, delay: Duration) {
    let mut received = Vec::new();
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0_u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target.clone(), String::new()),
    };

    let mut headers = Map::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_owned();
            let joined = match headers.get(&name).and_then(Value::as_str) {
                Some(previous) => format!("{previous}, {value}"),
                None => value,
            };
            headers.insert(name, Value::String(joined));
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(Value::as_str)
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = received[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0_u8; 65536];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => body.extend_from_slice(&chunk[..read]),
        }
    }
    counter.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(delay).await;

    let echoed = json!({
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_length": body.len(),
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\nx-echo: yes\r\n\
         keep-alive: timeout=5\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{echoed}",
        echoed.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The local server with a gateway in front of an upstream, on a free port of 127.0.0.1.
struct Server {
    url: String,
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(gateway: Gateway) -> Server {
    let dir = std::env::temp_dir().join(common::unique_name("lambda-auth-gateway"));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let variables = HashMap::from([
        ("ARGON2_MEMORY_KIB", "8192".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
    ]);
    let (app, _) = app_for_data_dir(&dir, port, &|name| variables.get(name).cloned()).unwrap();
    Server {
        url: format!("http://127.0.0.1:{port}"),
        dir,
        task: tokio::spawn(serve(listener, Arc::new(app), Some(Arc::new(gateway)))),
    }
}

/// A signed-in user of the server: the access token and the user id from `/auth/me`.
struct User {
    access_token: String,
    user_id: String,
}

async fn sign_in(server: &Server, email: &str) -> User {
    let client = reqwest::Client::new();
    let credentials = json!({ "email": email, "password": common::PASSWORD });
    let registered = client
        .post(format!("{}/auth/register", server.url))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(
        registered.status().as_u16(),
        201,
        "register beside the gateway"
    );

    let login: Value = client
        .post(format!("{}/auth/login", server.url))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = login["access_token"].as_str().unwrap().to_owned();

    let me = client
        .get(format!("{}/auth/me", server.url))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200, "/auth/me beside the gateway");
    let profile: Value = me.json().await.unwrap();
    User {
        access_token,
        user_id: profile["id"].as_str().unwrap().to_owned(),
    }
}

async fn gateway_with_echo() -> (EchoUpstream, Server) {
    let upstream = echo_upstream(Duration::ZERO).await;
    let server = start(Gateway::new("/api", &upstream.url).unwrap()).await;
    (upstream, server)
}

/// Asserts a problem response's status, content type and `code`, and returns its body so that
/// callers can check more members.
async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "content type"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], code, "code of {problem}");
    problem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credential_gets_401() {
    let (upstream, server) = gateway_with_echo().await;

    let response = reqwest::get(format!("{}/api/orders", server.url))
        .await
        .unwrap();

    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_problem(response, 401, "missing_credentials").await;
    assert_eq!(upstream.requests(), 0, "the upstream saw no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_credentials_get_401() {
    let (upstream, server) = gateway_with_echo().await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{}/api/orders", server.url))
        .bearer_auth("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_problem(response, 401, "invalid_token").await;

    let response = client
        .get(format!("{}/api/orders", server.url))
        .header(
            "x-api-key",
            "lak_0000000000000000000000000000000000000000000",
        )
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "invalid_token").await;

    assert_eq!(upstream.requests(), 0, "the upstream saw no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_forwards_with_context() {
    let (upstream, server) = gateway_with_echo().await;
    let user = sign_in(&server, "gateway-token@example.com").await;

    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/orders/7?expand=items&note=a%20b",
            server.url
        ))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .header("X-Auth-Role", "admin")
        .header("x-auth-principal-id", "someone-else")
        .header("X-AUTH-METHOD", "api_key")
        .header("X-Auth-Tenant", "other-tenant")
        .header("proxy-authorization", "Basic eDp5")
        .header("keep-alive", "timeout=99")
        .header("x-request-id", "req-1")
        .body(r#"{"item":"tea","count":2}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 202, "the upstream's status");
    assert_eq!(response.headers()["x-echo"], "yes", "the upstream's header");
    assert!(
        !response.headers().contains_key("keep-alive"),
        "the upstream's hop-by-hop header is removed"
    );
    let echoed: Value = response.json().await.unwrap();
    let headers = &echoed["headers"];
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/orders/7");
    assert_eq!(echoed["query"], "expand=items&note=a%20b");
    assert_eq!(echoed["body"], r#"{"item":"tea","count":2}"#);
    assert_eq!(headers["x-auth-principal-id"], user.user_id.as_str());
    assert_eq!(
        headers["x-auth-role"], "user",
        "the client's role is not passed"
    );
    assert_eq!(headers["x-auth-scopes"], "read write");
    assert_eq!(headers["x-auth-method"], "access_token");
    assert!(
        !headers["x-auth-session-id"].as_str().unwrap().is_empty(),
        "the session id is set: {headers}"
    );
    assert_eq!(headers["x-auth-key-id"], "");
    assert!(
        headers.get("x-auth-tenant").is_none(),
        "a client-sent x-auth-* header outside the context is removed: {headers}"
    );
    assert_eq!(
        headers["authorization"],
        format!("Bearer {}", user.access_token).as_str(),
        "the Authorization header is passed"
    );
    assert_eq!(headers["x-request-id"], "req-1");
    assert_eq!(headers["content-type"], "application/json");
    let upstream_host = upstream.url.trim_start_matches("http://");
    assert_eq!(headers["host"], upstream_host);
    assert!(headers.get("proxy-authorization").is_none(), "{headers}");
    assert!(headers.get("keep-alive").is_none(), "{headers}");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_matches_whole_segments() {
    let (upstream, server) = gateway_with_echo().await;
    let user = sign_in(&server, "gateway-prefix@example.com").await;
    let client = reqwest::Client::new();

    let echoed: Value = client
        .get(format!("{}/api", server.url))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        echoed["path"], "/",
        "the prefix alone is the upstream's root"
    );

    let response = client
        .get(format!("{}/apiary", server.url))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "not_found").await;
    assert_eq!(upstream.requests(), 1, "/apiary did not reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_base_path_prepended() {
    let upstream = echo_upstream(Duration::ZERO).await;
    let gateway = Gateway::new("/shop/", &format!("{}/v1/", upstream.url)).unwrap();
    let server = start(gateway).await;
    let user = sign_in(&server, "gateway-base@example.com").await;

    let echoed: Value = reqwest::Client::new()
        .get(format!("{}/shop/orders?page=2", server.url))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(echoed["path"], "/v1/orders");
    assert_eq!(echoed["query"], "page=2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_forwards_with_key_id() {
    let (upstream, server) = gateway_with_echo().await;
    let user = sign_in(&server, "gateway-key@example.com").await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/auth/api-keys", server.url))
        .bearer_auth(&user.access_token)
        .json(&json!({ "name": "gateway test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = created.json().await.unwrap();

    let response = client
        .get(format!("{}/api/reports", server.url))
        .header("x-api-key", created["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 202);
    let echoed: Value = response.json().await.unwrap();
    let headers = &echoed["headers"];
    assert_eq!(echoed["path"], "/reports");
    assert_eq!(headers["x-auth-method"], "api_key");
    assert_eq!(headers["x-auth-key-id"], created["id"]);
    assert_eq!(headers["x-auth-principal-id"], user.user_id.as_str());
    assert_eq!(headers["x-auth-role"], "user");
    assert_eq!(headers["x-auth-scopes"], "read", "a new key gets read only");
    assert_eq!(headers["x-auth-session-id"], "");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_path_forbidden_for_user() {
    let (upstream, server) = gateway_with_echo().await;
    let user = sign_in(&server, "gateway-admin@example.com").await;
    let client = reqwest::Client::new();

    for path in [
        "/api/admin",
        "/api/admin/x",
        "/api//admin/x",
        "/api/%61dmin/x",
    ] {
        let response = client
            .get(format!("{}{path}", server.url))
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 403, "forbidden").await;
        assert!(
            problem["detail"].as_str().unwrap().contains("admin"),
            "detail for {path}: {problem}"
        );
    }
    assert_eq!(upstream.requests(), 0, "the upstream saw no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_routes_work_beside_gateway() {
    let (upstream, server) = gateway_with_echo().await;

    let user = sign_in(&server, "gateway-routes@example.com").await;
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", server.url))
        .await
        .unwrap();

    assert!(!user.user_id.is_empty());
    assert_eq!(jwks.status().as_u16(), 200);
    assert_eq!(
        upstream.requests(),
        0,
        "auth routes never reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limits_per_route() {
    let (upstream, server) = gateway_with_echo().await;
    let user = sign_in(&server, "gateway-body@example.com").await;
    let client = reqwest::Client::new();

    let large = "x".repeat(100 * 1024);
    let response = client
        .put(format!("{}/api/files/a", server.url))
        .bearer_auth(&user.access_token)
        .body(large.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202, "100 KiB is forwarded");
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["body_length"], large.len());

    let too_large = "x".repeat(MAX_FORWARDED_BODY_BYTES + 1);
    let response = client
        .put(format!("{}/api/files/b", server.url))
        .bearer_auth(&user.access_token)
        .body(too_large)
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload_too_large").await;

    let response = client
        .post(format!("{}/auth/register", server.url))
        .header("content-type", "application/json")
        .body(format!("{{\"email\":\"{large}\"}}"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload_too_large").await;
    assert_eq!(
        upstream.requests(),
        1,
        "only the 100 KiB body was forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_upstream_gets_502() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let server = start(Gateway::new("/api", &dead_url).unwrap()).await;
    let user = sign_in(&server, "gateway-dead@example.com").await;

    let response = reqwest::Client::new()
        .get(format!("{}/api/orders", server.url))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();

    let problem = assert_problem(response, 502, "bad_gateway").await;
    assert!(
        problem["detail"].as_str().unwrap().contains(&dead_url),
        "the detail names the upstream: {problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_gets_504() {
    let upstream = echo_upstream(Duration::from_secs(5)).await;
    let gateway = Gateway::new("/api", &upstream.url)
        .unwrap()
        .with_upstream_timeout(Duration::from_millis(300));
    let server = start(gateway).await;
    let user = sign_in(&server, "gateway-slow@example.com").await;

    let response = reqwest::Client::new()
        .get(format!("{}/api/orders", server.url))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();

    assert_problem(response, 504, "gateway_timeout").await;
}

#[test]
fn remote_upstreams_rejected() {
    for url in [
        "http://10.0.0.1:80",
        "https://127.0.0.1",
        "http://192.168.1.10:8080",
        "http://example.com:80",
    ] {
        let error = Gateway::new("/api", url).unwrap_err();
        assert!(
            matches!(error, GatewayError::InvalidUpstream { .. }),
            "{url}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(url),
            "the message names the URL: {message}"
        );
    }

    let message = Gateway::new("/api", "http://10.0.0.1:80")
        .unwrap_err()
        .to_string();
    assert!(message.contains("local upstream"), "{message}");
    let message = Gateway::new("/api", "https://127.0.0.1")
        .unwrap_err()
        .to_string();
    assert!(message.contains("http://"), "{message}");
}

#[test]
fn invalid_prefixes_rejected() {
    for prefix in ["api", "/", "/auth", "/.well-known"] {
        let error = Gateway::new(prefix, "http://127.0.0.1:8080").unwrap_err();
        assert!(
            matches!(error, GatewayError::InvalidPrefix { .. }),
            "{prefix}: {error}"
        );
    }
}
