//! Bad requests get a 4xx problem response that names what is wrong, and never a 5xx.

mod common;

use bytes::Bytes;
use common::{assert_problem, body_json, credentials, json_request, sqlite_app, PASSWORD};

fn request_with_type(path: &str, content_type: &str, body: &str) -> lambda_auth::http::Request {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", content_type)
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn malformed_json_rejected() {
    let app = sqlite_app(&[]);
    for path in ["/auth/register", "/auth/login", "/auth/refresh"] {
        let response = app
            .app
            .handle(json_request("POST", path, "{\"email\": \"a@b.c\","))
            .await;
        assert_problem(&response, 400, "malformed_json");
    }
}

#[tokio::test]
async fn empty_json_body_rejected() {
    let app = sqlite_app(&[]);
    let response = app
        .app
        .handle(json_request("POST", "/auth/register", ""))
        .await;
    assert_problem(&response, 400, "malformed_json");
}

#[tokio::test]
async fn non_json_content_type_rejected() {
    let app = sqlite_app(&[]);
    let body = credentials("ada@example.com", PASSWORD);
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = app
            .app
            .handle(request_with_type("/auth/register", content_type, &body))
            .await;
        assert_problem(&response, 415, "unsupported_media_type");
    }
    let missing = http::Request::builder()
        .method("POST")
        .uri("/auth/login")
        .body(Bytes::from(body.clone()))
        .unwrap();
    assert_problem(
        &app.app.handle(missing).await,
        415,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn json_content_type_with_charset_accepted() {
    let app = sqlite_app(&[]);
    let body = credentials("ada@example.com", PASSWORD);
    let response = app
        .app
        .handle(request_with_type(
            "/auth/register",
            "Application/JSON; charset=utf-8",
            &body,
        ))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn oversized_body_rejected() {
    let app = sqlite_app(&[]);
    let padding = "x".repeat(20 * 1024);
    let body = format!("{{\"email\":\"ada@example.com\",\"password\":\"{padding}\"}}");
    for path in ["/auth/register", "/auth/login", "/auth/refresh"] {
        let response = app.app.handle(json_request("POST", path, &body)).await;
        assert_problem(&response, 413, "payload_too_large");
    }
}

#[tokio::test]
async fn missing_fields_named() {
    let app = sqlite_app(&[]);
    let cases = [
        (
            "/auth/register",
            r#"{"email":"ada@example.com"}"#,
            "password",
        ),
        (
            "/auth/register",
            r#"{"password":"correct horse battery staple"}"#,
            "email",
        ),
        ("/auth/login", r#"{}"#, "email"),
        ("/auth/refresh", r#"{}"#, "refresh_token"),
    ];
    for (path, body, field) in cases {
        let response = app.app.handle(json_request("POST", path, body)).await;
        assert_problem(&response, 400, "invalid_request");
        let detail = body_json(&response)["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains(field),
            "{path} detail {detail:?} names {field}"
        );
    }
}

#[tokio::test]
async fn wrong_json_types_rejected() {
    let app = sqlite_app(&[]);
    for body in [
        r#"{"email":42,"password":"correct horse battery staple"}"#,
        r#"["ada@example.com"]"#,
        "null",
        r#""text""#,
    ] {
        let response = app
            .app
            .handle(json_request("POST", "/auth/register", body))
            .await;
        assert_problem(&response, 400, "invalid_request");
    }
}

#[tokio::test]
async fn invalid_emails_rejected() {
    let app = sqlite_app(&[]);
    let long = format!("{}@example.com", "a".repeat(288));
    for email in [
        "ada.example.com",
        long.as_str(),
        "",
        "ada@",
        "ada @example.com",
    ] {
        let response = app.register(email, PASSWORD).await;
        assert_problem(&response, 400, "invalid_email");
        let login = app.login(email, PASSWORD).await;
        assert_problem(&login, 400, "invalid_email");
    }
}

#[tokio::test]
async fn password_over_byte_limit_rejected() {
    let app = sqlite_app(&[]);
    assert_eq!(
        app.register("ada@example.com", PASSWORD).await.status(),
        201
    );
    let hashes_before = app.app.hash_count();

    let long = "correct horse ".repeat(20);
    assert!(long.len() > 256);
    let register = app.register("grace@example.com", &long).await;
    assert_problem(&register, 400, "password_too_long");
    let login = app.login("ada@example.com", &long).await;
    assert_problem(&login, 400, "password_too_long");

    assert_eq!(
        app.app.hash_count(),
        hashes_before,
        "no password was hashed"
    );
}

#[tokio::test]
async fn common_passwords_rejected() {
    let app = sqlite_app(&[]);
    for password in [
        "password1234567",
        "123456789012345",
        "qwertyuiop12345",
        "aaaaaaaaaaaaaaaa",
    ] {
        let response = app.register("ada@example.com", password).await;
        assert_problem(&response, 400, "weak_password");
    }
}

#[tokio::test]
async fn short_password_rejected() {
    let app = sqlite_app(&[]);
    let response = app.register("ada@example.com", "only 14 chars!").await;
    assert_problem(&response, 400, "password_too_short");
}

#[tokio::test]
async fn sixty_four_characters_accepted() {
    let app = sqlite_app(&[]);
    // 64 four-byte characters (CJK Extension B), in no repeating or sequential order.
    let password: String = (0..64u32)
        .map(|index| char::from_u32(0x20000 + (index * 7919) % 4096).unwrap())
        .collect();
    assert_eq!(password.chars().count(), 64);
    assert_eq!(password.len(), 256);
    assert_eq!(
        app.register("ada@example.com", &password).await.status(),
        201
    );
    assert_eq!(app.login("ada@example.com", &password).await.status(), 200);
}

#[tokio::test]
async fn whole_password_counts_beyond_72_bytes() {
    let app = sqlite_app(&[]);
    let registered = format!(
        "{}{}",
        "a quiet harbour at dawn ".repeat(3),
        "and more words after it"
    );
    assert!(registered.len() > 72);
    assert_eq!(
        app.register("ada@example.com", &registered).await.status(),
        201
    );

    let mut probe = registered.as_bytes()[..72].to_vec();
    probe.extend(std::iter::repeat_n(b'z', 100 - 72));
    let probe = String::from_utf8(probe).unwrap();
    assert_eq!(probe.len(), 100);
    assert_problem(
        &app.login("ada@example.com", &probe).await,
        401,
        "invalid_credentials",
    );
    assert_eq!(
        app.login("ada@example.com", &registered).await.status(),
        200
    );
}

#[tokio::test]
async fn whole_multibyte_password_counts() {
    let app = sqlite_app(&[]);
    // 24 three-byte characters are 72 bytes; the passwords differ only after them.
    let prefix: String = "日本語のパスワードはとても長くて安全ですよね本当に"
        .chars()
        .take(24)
        .collect();
    assert_eq!(prefix.len(), 72);
    let registered = format!("{prefix}一二三四五六七八九");
    let probe = format!("{prefix}九八七六五四三二一");
    assert_eq!(
        app.register("ada@example.com", &registered).await.status(),
        201
    );

    assert_problem(
        &app.login("ada@example.com", &probe).await,
        401,
        "invalid_credentials",
    );
    assert_eq!(
        app.login("ada@example.com", &registered).await.status(),
        200
    );
}

#[tokio::test]
async fn normalised_password_logs_in() {
    let app = sqlite_app(&[]);
    // "é" as one code point at registration, as "e" plus a combining accent at login.
    let composed = "caf\u{e9} au lait every morning";
    let decomposed = "cafe\u{301} au lait every morning";
    assert_eq!(
        app.register("ada@example.com", composed).await.status(),
        201
    );
    assert_eq!(app.login("ada@example.com", decomposed).await.status(), 200);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_alike() {
    let app = sqlite_app(&[]);
    assert_eq!(
        app.register("ada@example.com", PASSWORD).await.status(),
        201
    );

    let hashes_before = app.app.hash_count();
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    let unknown_hashes = app.app.hash_count() - hashes_before;
    let wrong = app
        .login("ada@example.com", "an entirely wrong passphrase")
        .await;
    let wrong_hashes = app.app.hash_count() - hashes_before - unknown_hashes;

    assert_problem(&unknown, 401, "invalid_credentials");
    assert_problem(&wrong, 401, "invalid_credentials");
    assert_eq!(body_json(&unknown), body_json(&wrong));
    assert_eq!(
        unknown_hashes, 1,
        "an unknown email still costs one argon2 hash"
    );
    assert_eq!(wrong_hashes, 1);
}

#[tokio::test]
async fn duplicate_email_conflicts() {
    let app = sqlite_app(&[]);
    assert_eq!(
        app.register("ada@example.com", PASSWORD).await.status(),
        201
    );
    assert_problem(
        &app.register("ADA@Example.com", PASSWORD).await,
        409,
        "email_taken",
    );
}

#[tokio::test]
async fn garbage_refresh_token_rejected() {
    let app = sqlite_app(&[]);
    for token in ["", "short", &"A".repeat(43), &"€".repeat(20)] {
        let response = app.refresh(token).await;
        assert_problem(&response, 401, "invalid_refresh_token");
    }
}

#[tokio::test]
async fn logout_without_credentials_rejected() {
    let app = sqlite_app(&[]);
    let empty = http::Request::builder()
        .method("POST")
        .uri("/auth/logout")
        .body(Bytes::new())
        .unwrap();
    assert_problem(&app.app.handle(empty).await, 401, "missing_token");
    let garbage = common::bearer_request("POST", "/auth/logout", "not-a-token");
    assert_problem(&app.app.handle(garbage).await, 401, "invalid_token");
}

#[tokio::test]
async fn logout_with_refresh_token_ends_session() {
    let app = sqlite_app(&[]);
    let tokens = app.signed_in("ada@example.com").await;
    let body = serde_json::json!({ "refresh_token": tokens["refresh_token"] }).to_string();

    let logout = app
        .app
        .handle(json_request("POST", "/auth/logout", &body))
        .await;

    assert_eq!(logout.status(), 204);
    assert_problem(
        &app.refresh(tokens["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_refresh_token",
    );
    assert_problem(
        &app.me(tokens["access_token"].as_str().unwrap()).await,
        401,
        "invalid_token",
    );
}

#[tokio::test]
async fn wrong_method_and_path_rejected() {
    let app = sqlite_app(&[]);
    let get_login = http::Request::builder()
        .method("GET")
        .uri("/auth/login")
        .body(Bytes::new())
        .unwrap();
    let response = app.app.handle(get_login).await;
    assert_problem(&response, 405, "method_not_allowed");
    assert_eq!(response.headers()["allow"], "POST");

    let unknown = http::Request::builder()
        .method("GET")
        .uri("/auth/../etc/passwd")
        .body(Bytes::new())
        .unwrap();
    assert_problem(&app.app.handle(unknown).await, 404, "not_found");
}

#[tokio::test]
async fn me_without_token_rejected() {
    let app = sqlite_app(&[]);
    let request = http::Request::builder()
        .method("GET")
        .uri("/auth/me")
        .body(Bytes::new())
        .unwrap();
    let response = app.app.handle(request).await;
    assert_problem(&response, 401, "missing_token");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let basic = http::Request::builder()
        .method("GET")
        .uri("/auth/me")
        .header("authorization", "Basic YWRhOnB3")
        .body(Bytes::new())
        .unwrap();
    assert_problem(&app.app.handle(basic).await, 401, "invalid_token");
}

#[tokio::test]
async fn every_response_has_security_headers() {
    let app = sqlite_app(&[]);
    let responses = vec![
        app.register("ada@example.com", PASSWORD).await,
        app.login("ada@example.com", PASSWORD).await,
        app.login("ada@example.com", "wrong wrong wrong wrong")
            .await,
        app.app
            .handle(json_request("GET", "/.well-known/jwks.json", ""))
            .await,
        app.app.handle(json_request("GET", "/nowhere", "")).await,
    ];
    for response in responses {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert!(headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="));
        assert!(!headers.contains_key("x-xss-protection"));
    }
}
