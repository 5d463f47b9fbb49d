//! Provider sign-in against real OpenID providers on 127.0.0.1: oidc-provider for the full
//! flow, and a misbehaving provider for ID-token checks. Both are started by scripts/test.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use common::{assert_problem, body_json, oidc, TestApp, PASSWORD};
use lambda_auth::store::{Item, Key, Store, Write};
use serde_json::json;

const RETURN_URL: &str = "http://127.0.0.1:5173/after-login";
const CALLBACK_BASE: &str = "http://127.0.0.1:3000";

fn oauth_app(store: Arc<dyn Store>, extra: &[(&str, &str)]) -> TestApp {
    let issuer = oidc::issuer();
    let fake = oidc::fake_issuer();
    let mut variables: Vec<(&str, String)> = vec![
        ("OAUTH_PROVIDERS", "test,fake".to_owned()),
        ("OAUTH_TEST_ISSUER", issuer),
        ("OAUTH_TEST_CLIENT_ID", "lambda-auth-test".to_owned()),
        (
            "OAUTH_TEST_CLIENT_SECRET",
            "lambda-auth-test-secret".to_owned(),
        ),
        ("OAUTH_TEST_TRUST_EMAIL_VERIFIED", "true".to_owned()),
        ("OAUTH_FAKE_ISSUER", fake),
        ("OAUTH_FAKE_CLIENT_ID", "lambda-auth-test".to_owned()),
        (
            "OAUTH_FAKE_CLIENT_SECRET",
            "lambda-auth-test-secret".to_owned(),
        ),
        ("OAUTH_RETURN_URLS", RETURN_URL.to_owned()),
        ("OAUTH_CALLBACK_BASE_URL", CALLBACK_BASE.to_owned()),
    ];
    for (name, value) in extra {
        variables.retain(|(existing, _)| existing != name);
        variables.push((name, (*value).to_owned()));
    }
    let pairs: Vec<(&str, &str)> = variables
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    common::test_app(store, &pairs)
}

fn get(path_and_query: &str, cookie: Option<&str>) -> lambda_auth::http::Request {
    let mut builder = http::Request::builder().method("GET").uri(path_and_query);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(Bytes::new()).unwrap()
}

fn location(response: &lambda_auth::http::Response) -> String {
    let location = response
        .headers()
        .get("location")
        .unwrap_or_else(|| {
            panic!(
                "no Location in {}: {}",
                response.status(),
                String::from_utf8_lossy(response.body())
            )
        })
        .to_str()
        .unwrap()
        .to_owned();
    oidc::assert_no_token_in_url(&location);
    location
}

/// Returns the browser-binding cookie as a `Cookie` header value.
fn binding_cookie(response: &lambda_auth::http::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Starts a sign-in and returns the provider URL and the browser cookie.
async fn start(app: &TestApp, provider: &str) -> (String, String) {
    let response = app
        .app
        .handle(get(
            &format!("/auth/oauth/{provider}/authorize?return_to={RETURN_URL}"),
            None,
        ))
        .await;
    assert_eq!(
        response.status(),
        302,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    (location(&response), binding_cookie(&response))
}

/// Sends the provider's redirect to the callback route, as the browser would.
async fn callback(app: &TestApp, callback_url: &str, cookie: &str) -> lambda_auth::http::Response {
    oidc::assert_no_token_in_url(callback_url);
    let path = callback_url
        .strip_prefix(CALLBACK_BASE)
        .expect("the provider redirects to our callback");
    app.app.handle(get(path, Some(cookie))).await
}

/// Trades the login code in the front-end URL for tokens.
async fn exchange(app: &TestApp, return_url: &str) -> lambda_auth::http::Response {
    assert!(return_url.starts_with(RETURN_URL), "{return_url}");
    let code = url_parameter(return_url, "code").expect("the return URL carries a login code");
    let body = json!({ "code": code }).to_string();
    app.app
        .handle(common::json_request("POST", "/auth/oauth/exchange", &body))
        .await
}

fn url_parameter(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// Runs the whole flow at oidc-provider for `login` and returns the token response.
async fn sign_in(app: &TestApp, login: &str) -> serde_json::Value {
    let (authorize_url, cookie) = start(app, "test").await;
    let callback_url = oidc::sign_in_at_provider(&authorize_url, login).await;
    let finished = callback(app, &callback_url, &cookie).await;
    assert_eq!(
        finished.status(),
        302,
        "{}",
        String::from_utf8_lossy(finished.body())
    );
    let tokens = exchange(app, &location(&finished)).await;
    assert_eq!(
        tokens.status(),
        200,
        "{}",
        String::from_utf8_lossy(tokens.body())
    );
    body_json(&tokens)
}

async fn me(app: &TestApp, tokens: &serde_json::Value) -> serde_json::Value {
    let response = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    body_json(&response)
}

fn unique(prefix: &str) -> String {
    common::unique_name(prefix)
        .to_ascii_lowercase()
        .replace('_', "-")
}

#[tokio::test]
async fn new_user_signs_in() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let subject = unique("alice");
    let email = format!("{subject}@example.com");

    let tokens = sign_in(&app, &format!("{subject};{email};true")).await;

    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(me(&app, &tokens).await["email"], email.as_str());
}

#[tokio::test]
async fn returning_user_gets_same_account() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let subject = unique("returning");
    let login = format!("{subject};{subject}@example.com;true");

    let first = me(&app, &sign_in(&app, &login).await).await;
    let second = me(&app, &sign_in(&app, &login).await).await;

    assert_eq!(first["id"], second["id"]);
}

#[tokio::test]
async fn full_flow_on_dynamodb() {
    let app = oauth_app(Arc::new(common::dynamo_store().await), &[]);
    let subject = unique("dynamo");

    let tokens = sign_in(&app, &format!("{subject};{subject}@example.com;true")).await;

    assert_eq!(
        me(&app, &tokens).await["email"],
        format!("{subject}@example.com").as_str()
    );
}

#[tokio::test]
async fn other_browser_cookie_rejected() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let (authorize_url, _) = start(&app, "test").await;
    let (_, other_cookie) = start(&app, "test").await;
    let callback_url = oidc::sign_in_at_provider(&authorize_url, &unique("mallory")).await;

    let response = callback(&app, &callback_url, &other_cookie).await;

    assert_problem(&response, 400, "state_mismatch");
}

#[tokio::test]
async fn replayed_callback_rejected() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let (authorize_url, cookie) = start(&app, "test").await;
    let subject = unique("replay");
    let callback_url = oidc::sign_in_at_provider(
        &authorize_url,
        &format!("{subject};{subject}@example.com;true"),
    )
    .await;
    assert_eq!(callback(&app, &callback_url, &cookie).await.status(), 302);

    let replay = callback(&app, &callback_url, &cookie).await;

    assert_problem(&replay, 400, "invalid_state");
}

#[tokio::test]
async fn login_code_works_once() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let (authorize_url, cookie) = start(&app, "test").await;
    let subject = unique("once");
    let callback_url = oidc::sign_in_at_provider(
        &authorize_url,
        &format!("{subject};{subject}@example.com;true"),
    )
    .await;
    let return_url = location(&callback(&app, &callback_url, &cookie).await);
    assert_eq!(exchange(&app, &return_url).await.status(), 200);

    let second = exchange(&app, &return_url).await;

    assert_problem(&second, 400, "invalid_grant");
}

#[tokio::test]
async fn unlisted_return_target_rejected_before_redirect() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    for target in [
        "https://evil.example/after-login",
        "http://127.0.0.1:5173/after-login/extra",
        "",
    ] {
        let response = app
            .app
            .handle(get(
                &format!("/auth/oauth/test/authorize?return_to={target}"),
                None,
            ))
            .await;
        assert_problem(&response, 400, "invalid_return_to");
        assert!(response.headers().get("location").is_none());
        assert!(response.headers().get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn unknown_provider_not_found() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let response = app
        .app
        .handle(get(
            &format!("/auth/oauth/nope/authorize?return_to={RETURN_URL}"),
            None,
        ))
        .await;
    assert_problem(&response, 404, "unknown_provider");
}

/// Hash of a `state` value as the store keys it.
fn state_key(state: &str) -> Key {
    let hash = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, state.as_bytes()));
    Key::new(format!("OAUTHSTATE#{hash}"), "STATE")
}

#[tokio::test]
async fn wrong_pkce_verifier_rejected() {
    let store: Arc<dyn Store> = Arc::new(common::sqlite_store());
    let app = oauth_app(store.clone(), &[]);
    let (authorize_url, cookie) = start(&app, "test").await;
    let state = url_parameter(&authorize_url, "state").unwrap();
    let replace = Write::Update {
        key: state_key(&state),
        set: Item::from([("pkce_verifier".to_owned(), "a".repeat(43).into())]),
        conditions: vec![],
    };
    store.write(replace, common::START).await.unwrap();
    let subject = unique("pkce");
    let callback_url = oidc::sign_in_at_provider(
        &authorize_url,
        &format!("{subject};{subject}@example.com;true"),
    )
    .await;

    let response = callback(&app, &callback_url, &cookie).await;

    assert_problem(&response, 401, "invalid_grant");
}

/// Runs a sign-in at the misbehaving provider in `mode` and returns the callback response.
async fn fake_sign_in(app: &TestApp, mode: &str) -> lambda_auth::http::Response {
    let _fake = oidc::set_fake_mode(mode).await;
    let (authorize_url, cookie) = start(app, "fake").await;
    let callback_url = oidc::follow_fake_provider(&authorize_url).await;
    callback(app, &callback_url, &cookie).await
}

#[tokio::test]
async fn fake_provider_ok_signs_in() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let response = fake_sign_in(&app, "ok").await;
    assert_eq!(
        response.status(),
        302,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    assert_eq!(exchange(&app, &location(&response)).await.status(), 200);
}

#[tokio::test]
async fn provider_access_denied_rejected() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    assert_problem(
        &fake_sign_in(&app, "access_denied").await,
        400,
        "access_denied",
    );
}

#[tokio::test]
async fn bad_id_tokens_rejected() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    for mode in [
        "wrong_aud",
        "wrong_iss",
        "expired",
        "bad_signature",
        "wrong_nonce",
    ] {
        let response = fake_sign_in(&app, mode).await;
        assert_eq!(
            response.status(),
            401,
            "{mode}: {}",
            String::from_utf8_lossy(response.body())
        );
        assert_eq!(body_json(&response)["code"], "invalid_id_token", "{mode}");
        assert!(
            response.headers().get("location").is_none(),
            "{mode} gave no redirect"
        );
    }
}

async fn register(app: &TestApp, email: &str) -> String {
    let response = app.register(email, PASSWORD).await;
    assert_eq!(response.status(), 201);
    body_json(&response)["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn verified_email_links_existing_account() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let subject = unique("owner");
    let email = format!("{subject}@example.com");
    let user_id = register(&app, &email).await;
    let squatter = body_json(&app.login(&email, PASSWORD).await);
    let key_request = common::bearer_request(
        "POST",
        "/auth/api-keys",
        squatter["access_token"].as_str().unwrap(),
    );
    let (parts, _) = key_request.into_parts();
    let mut key_request = http::Request::from_parts(parts, Bytes::from(r#"{"name":"squatter"}"#));
    key_request
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let key = body_json(&app.app.handle(key_request).await)["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let tokens = sign_in(&app, &format!("{subject};{email};true")).await;

    assert_eq!(
        me(&app, &tokens).await["id"],
        user_id.as_str(),
        "the identity joins the account"
    );
    assert_problem(
        &app.login(&email, PASSWORD).await,
        401,
        "invalid_credentials",
    );
    assert_problem(
        &app.refresh(squatter["refresh_token"].as_str().unwrap())
            .await,
        401,
        "invalid_refresh_token",
    );
    assert!(
        app.app.verify_api_key(&key).await.is_err(),
        "the squatter's API key is revoked"
    );
}

#[tokio::test]
async fn untrusted_issuer_does_not_link() {
    let app = oauth_app(
        Arc::new(common::sqlite_store()),
        &[("OAUTH_TEST_TRUST_EMAIL_VERIFIED", "false")],
    );
    let subject = unique("untrusted");
    let email = format!("{subject}@example.com");
    register(&app, &email).await;
    let (authorize_url, cookie) = start(&app, "test").await;
    let callback_url =
        oidc::sign_in_at_provider(&authorize_url, &format!("{subject};{email};true")).await;

    assert_problem(
        &callback(&app, &callback_url, &cookie).await,
        409,
        "account_exists",
    );
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        200,
        "the account keeps its password"
    );
}

#[tokio::test]
async fn disabled_account_not_changed_by_link() {
    let store: Arc<dyn Store> = Arc::new(common::sqlite_store());
    let app = oauth_app(store.clone(), &[]);
    let subject = unique("disabled");
    let email = format!("{subject}@example.com");
    let user_id = register(&app, &email).await;
    let disable = Write::Update {
        key: Key::new(format!("USER#{user_id}"), "PROFILE"),
        set: Item::from([("status".to_owned(), "disabled".into())]),
        conditions: vec![],
    };
    store.write(disable, common::START).await.unwrap();
    let (authorize_url, cookie) = start(&app, "test").await;
    let callback_url =
        oidc::sign_in_at_provider(&authorize_url, &format!("{subject};{email};true")).await;

    assert_problem(
        &callback(&app, &callback_url, &cookie).await,
        403,
        "account_disabled",
    );
    let profile = store
        .get(
            &Key::new(format!("USER#{user_id}"), "PROFILE"),
            common::START,
        )
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        profile.get("password_hash"),
        Some(&"".into()),
        "the password is kept"
    );
}

#[tokio::test]
async fn unverified_email_does_not_link() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let subject = unique("claimer");
    let email = format!("{subject}@example.com");
    register(&app, &email).await;
    let (authorize_url, cookie) = start(&app, "test").await;
    let callback_url =
        oidc::sign_in_at_provider(&authorize_url, &format!("{subject};{email};false")).await;

    let response = callback(&app, &callback_url, &cookie).await;

    assert_problem(&response, 409, "account_exists");
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        200,
        "the account keeps its password"
    );
}

#[tokio::test]
async fn linking_can_be_turned_off() {
    let app = oauth_app(
        Arc::new(common::sqlite_store()),
        &[("OAUTH_LINK_VERIFIED_EMAIL", "false")],
    );
    let subject = unique("nolink");
    let email = format!("{subject}@example.com");
    register(&app, &email).await;
    let (authorize_url, cookie) = start(&app, "test").await;
    let callback_url =
        oidc::sign_in_at_provider(&authorize_url, &format!("{subject};{email};true")).await;

    assert_problem(
        &callback(&app, &callback_url, &cookie).await,
        409,
        "account_exists",
    );
}

#[tokio::test]
async fn provider_account_has_no_password() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let subject = unique("nopass");
    let email = format!("{subject}@example.com");
    sign_in(&app, &format!("{subject};{email};true")).await;

    assert_problem(
        &app.login(&email, PASSWORD).await,
        401,
        "invalid_credentials",
    );
    assert_problem(&app.register(&email, PASSWORD).await, 409, "email_taken");
}

#[tokio::test]
async fn configuration_errors_name_variable() {
    let variables: HashMap<&str, &str> = HashMap::from([
        ("AUTH_ISSUER", "https://auth.test.example"),
        ("OAUTH_PROVIDERS", "corp"),
        ("OAUTH_CORP_CLIENT_ID", "x"),
        ("OAUTH_CORP_CLIENT_SECRET", "y"),
        ("OAUTH_RETURN_URLS", RETURN_URL),
    ]);
    let error = lambda_auth::config::Config::from_env(
        &|name| variables.get(name).map(|v| v.to_string()),
        None,
    )
    .unwrap_err();
    assert!(error.to_string().contains("OAUTH_CORP_ISSUER"), "{error}");
}

#[tokio::test]
async fn callback_from_other_issuer_rejected() {
    let app = oauth_app(Arc::new(common::sqlite_store()), &[]);
    let (authorize_url, cookie) = start(&app, "test").await;
    let subject = unique("mixup");
    let callback_url = oidc::sign_in_at_provider(
        &authorize_url,
        &format!("{subject};{subject}@example.com;true"),
    )
    .await;
    let issuer: String = url::form_urlencoded::byte_serialize(oidc::issuer().as_bytes()).collect();
    let other: String =
        url::form_urlencoded::byte_serialize(oidc::fake_issuer().as_bytes()).collect();
    let mixed = callback_url.replace(&format!("iss={issuer}"), &format!("iss={other}"));
    assert_ne!(mixed, callback_url, "the callback carries iss");

    let response = callback(&app, &mixed, &cookie).await;

    assert_problem(&response, 400, "issuer_mismatch");
}
