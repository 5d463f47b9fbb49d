//! The logs of a full flow carry an audit event per decision and no secret.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{body_json, credentials, json_request, PASSWORD};
use lambda_auth::http::SourceIp;
use lambda_auth::store::{ItemExt, Key};
use lambda_auth::token::refresh::hash_refresh_token;
use serde_json::Value;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn from_client(mut request: lambda_auth::http::Request) -> lambda_auth::http::Request {
    request
        .extensions_mut()
        .insert(SourceIp("203.0.113.9".to_owned()));
    request
}

#[tokio::test]
async fn full_flow_logs_audit_events_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = common::sqlite_app(&[]);
    let handle = |request| app.app.handle(from_client(request));
    let wrong_password = "definitely not the right passphrase";

    let registered = handle(json_request(
        "POST",
        "/auth/register",
        &credentials("ada@example.com", PASSWORD),
    ))
    .await;
    let user_id = body_json(&registered)["id"].as_str().unwrap().to_owned();
    let failed = handle(json_request(
        "POST",
        "/auth/login",
        &credentials("ada@example.com", wrong_password),
    ))
    .await;
    assert_eq!(failed.status(), 401);
    let unknown = handle(json_request(
        "POST",
        "/auth/login",
        &credentials("nobody@example.com", PASSWORD),
    ))
    .await;
    assert_eq!(unknown.status(), 401);
    let tokens = body_json(
        &handle(json_request(
            "POST",
            "/auth/login",
            &credentials("ada@example.com", PASSWORD),
        ))
        .await,
    );
    let refresh_body = |token: &Value| serde_json::json!({ "refresh_token": token }).to_string();
    let rotated = body_json(
        &handle(json_request(
            "POST",
            "/auth/refresh",
            &refresh_body(&tokens["refresh_token"]),
        ))
        .await,
    );
    app.clock.advance(60);
    let reused = handle(json_request(
        "POST",
        "/auth/refresh",
        &refresh_body(&tokens["refresh_token"]),
    ))
    .await;
    assert_eq!(reused.status(), 401);
    let second = body_json(
        &handle(json_request(
            "POST",
            "/auth/login",
            &credentials("ada@example.com", PASSWORD),
        ))
        .await,
    );
    let logout = handle(common::bearer_request(
        "POST",
        "/auth/logout",
        second["access_token"].as_str().unwrap(),
    ))
    .await;
    assert_eq!(logout.status(), 204);

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .filter(|event: &Value| event["target"] == "audit")
        .collect();
    let find = |name: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|event| event["event"] == name)
            .collect()
    };

    assert_eq!(find("register").len(), 1);
    assert_eq!(find("register")[0]["user_id"], user_id.as_str());
    let failures = find("login_failure");
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["reason"], "wrong_password");
    assert_eq!(failures[0]["user_id"], user_id.as_str());
    assert_eq!(failures[1]["reason"], "unknown_email");
    assert_eq!(find("login_success").len(), 2);
    assert_eq!(find("refresh").len(), 1);
    assert_eq!(find("refresh_token_reused").len(), 1);
    assert_eq!(find("logout").len(), 1);
    for event in &events {
        assert_eq!(event["source_ip"], "203.0.113.9", "{event}");
        assert_eq!(event["user_agent"], "lambda-auth-tests/1.0", "{event}");
    }
    for name in ["login_success", "refresh", "refresh_token_reused", "logout"] {
        for event in find(name) {
            assert!(
                !event["session_id"].as_str().unwrap().is_empty(),
                "{name} names its session"
            );
        }
    }

    let profile = app
        .app
        .store()
        .get(
            &Key::new(format!("USER#{user_id}"), "PROFILE"),
            common::START + 60,
        )
        .await
        .unwrap()
        .unwrap();
    let password_hash = profile.string("password_hash").unwrap().to_owned();
    let mut secrets = vec![
        PASSWORD.to_owned(),
        wrong_password.to_owned(),
        password_hash,
    ];
    for body in [&tokens, &rotated, &second] {
        for field in ["access_token", "refresh_token"] {
            let token = body[field].as_str().unwrap();
            secrets.push(token.to_owned());
            secrets.push(hash_refresh_token(token));
        }
        // A JWT's signature alone is enough to find it in a log.
        secrets.push(
            body["access_token"]
                .as_str()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "a secret appears in the logs"
        );
    }
    assert!(
        !output.contains("$argon2id$"),
        "a password hash appears in the logs"
    );
}
