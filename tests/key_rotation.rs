//! Key-set rotation through Secrets Manager's four steps on moto, and the warm functions' key
//! cache that follows it.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use lambda_auth::clock::ManualClock;
use lambda_auth::lambda::app_from;
use lambda_auth::rotation::{rotate, RotationError, RotationEvent};
use lambda_auth::token::{
    self, Algorithm, KeySet, KeySetCache, RefreshPolicy, SecretsManagerSource, StoredKeySet,
    TokenError, VerificationPolicy,
};
use serde_json::Value;

async fn secrets_client() -> Client {
    Client::new(&common::aws_config().await)
}

/// Creates the secret the way the template does: a key set with no keys yet.
async fn empty_key_set_secret(client: &Client) -> String {
    client
        .create_secret()
        .name(common::unique_name("lambda-auth-keyset"))
        .secret_string(r#"{"keys":[]}"#)
        .send()
        .await
        .expect("moto creates the secret")
        .arn()
        .unwrap()
        .to_owned()
}

/// Returns a fresh ClientRequestToken. Secrets Manager requires 32 to 64 characters.
fn rotation_token() -> String {
    use lambda_auth::token::refresh::new_id;
    format!("{}{}", new_id(), new_id())
}

async fn step(client: &Client, secret: &str, name: &str, token: &str) -> Result<(), RotationError> {
    let event = RotationEvent {
        step: name.to_owned(),
        secret_id: secret.to_owned(),
        client_request_token: token.to_owned(),
    };
    rotate(client, &event, Algorithm::RS256, common::START).await
}

async fn pending_value(client: &Client, secret: &str, token: &str) -> String {
    client
        .get_secret_value()
        .secret_id(secret)
        .version_id(token)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned()
}

async fn current_set(client: &Client, secret: &str) -> StoredKeySet {
    let output = client
        .get_secret_value()
        .secret_id(secret)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    StoredKeySet::from_json(output.secret_string().unwrap()).unwrap()
}

/// Runs one rotation as Secrets Manager does, retrying createSecret and finishSecret once as
/// its retries would.
async fn full_rotation(client: &Client, secret: &str) -> String {
    let token = rotation_token();
    step(client, secret, "createSecret", &token).await.unwrap();
    let written = pending_value(client, secret, &token).await;
    step(client, secret, "createSecret", &token).await.unwrap();
    assert_eq!(
        pending_value(client, secret, &token).await,
        written,
        "a retried createSecret keeps the pending set"
    );
    step(client, secret, "setSecret", &token).await.unwrap();
    step(client, secret, "testSecret", &token).await.unwrap();
    step(client, secret, "finishSecret", &token).await.unwrap();
    step(client, secret, "finishSecret", &token).await.unwrap();
    token
}

fn current_kid(set: &StoredKeySet) -> String {
    set.keys
        .iter()
        .find(|key| key.status == token::KeyStatus::Current)
        .unwrap()
        .kid
        .clone()
}

fn kid_of(access_token: &str) -> String {
    use base64::Engine as _;
    let header = access_token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rotation_keeps_old_tokens_until_second_rotation() {
    let client = secrets_client().await;
    let secret = empty_key_set_secret(&client).await;
    full_rotation(&client, &secret).await;
    let first = current_set(&client, &secret).await;
    assert_eq!(first.keys.len(), 1);
    let kid_a = current_kid(&first);

    let store = common::dynamo_store().await;
    let variables = HashMap::from([
        ("AUTH_ISSUER", "https://auth.test.example".to_owned()),
        ("TABLE_NAME", store.table().to_owned()),
        ("KEYSET_SECRET_ARN", secret.clone()),
        ("KEYSET_MAX_AGE_SECONDS", "0".to_owned()),
        ("KEYSET_REFETCH_INTERVAL_SECONDS", "0".to_owned()),
        ("ARGON2_MEMORY_KIB", "8192".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
    ]);
    let clock = Arc::new(ManualClock::new(common::START));
    let app = common::TestApp {
        app: app_from(&|name| variables.get(name).cloned(), clock.clone())
            .await
            .unwrap(),
        clock,
    };
    let before = app.signed_in("rotating@example.com").await;
    let token_a = before["access_token"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&token_a), kid_a);

    full_rotation(&client, &secret).await;
    let second = current_set(&client, &secret).await;
    let kid_b = current_kid(&second);
    assert_ne!(kid_b, kid_a);
    assert_eq!(
        second.keys.len(),
        2,
        "the new set holds the new and the previous key"
    );

    assert_eq!(
        app.me(&token_a).await.status(),
        200,
        "a token signed before the rotation verifies"
    );
    let after = common::body_json(&app.login("rotating@example.com", common::PASSWORD).await);
    assert_eq!(
        kid_of(after["access_token"].as_str().unwrap()),
        kid_b,
        "new tokens carry the new kid"
    );
    let jwks = common::body_json(
        &app.app
            .handle(common::json_request("GET", "/.well-known/jwks.json", ""))
            .await,
    );
    let mut published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    published.sort_unstable();
    let mut expected = vec![kid_a.as_str(), kid_b.as_str()];
    expected.sort_unstable();
    assert_eq!(published, expected);

    full_rotation(&client, &secret).await;
    let third = current_set(&client, &secret).await;
    let kids: Vec<&str> = third.keys.iter().map(|key| key.kid.as_str()).collect();
    assert!(
        !kids.contains(&kid_a.as_str()),
        "the oldest key is gone after a second rotation"
    );
    assert!(kids.contains(&kid_b.as_str()));
    common::assert_problem(&app.me(&token_a).await, 401, "invalid_token");
    assert_eq!(
        app.me(after["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn step_for_unknown_version_fails() {
    let client = secrets_client().await;
    let secret = empty_key_set_secret(&client).await;
    full_rotation(&client, &secret).await;

    for name in ["setSecret", "testSecret", "finishSecret"] {
        let result = step(&client, &secret, name, "no-such-version-token-0000000000").await;
        assert!(
            matches!(result, Err(RotationError::NotPending { .. })),
            "{name}: {result:?}"
        );
    }
}

#[tokio::test]
async fn step_for_superseded_version_fails() {
    let client = secrets_client().await;
    let secret = empty_key_set_secret(&client).await;
    let first = full_rotation(&client, &secret).await;
    full_rotation(&client, &secret).await;

    let result = step(&client, &secret, "createSecret", &first).await;

    assert!(
        matches!(result, Err(RotationError::NotPending { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn unknown_step_rejected() {
    let client = secrets_client().await;
    let secret = empty_key_set_secret(&client).await;
    let token = rotation_token();
    step(&client, &secret, "createSecret", &token)
        .await
        .unwrap();

    let result = step(&client, &secret, "deleteSecret", &token).await;

    assert!(
        matches!(result, Err(RotationError::UnknownStep(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn current_version_step_is_no_op() {
    let client = secrets_client().await;
    let secret = empty_key_set_secret(&client).await;
    let token = full_rotation(&client, &secret).await;
    let before = current_set(&client, &secret).await;

    step(&client, &secret, "createSecret", &token)
        .await
        .unwrap();

    assert_eq!(
        current_kid(&current_set(&client, &secret).await),
        current_kid(&before)
    );
}

#[tokio::test]
async fn warm_cache_fetches_once_for_new_kid() {
    let client = secrets_client().await;
    let secret = empty_key_set_secret(&client).await;
    full_rotation(&client, &secret).await;
    let source = SecretsManagerSource {
        client: client.clone(),
        secret_id: secret.clone(),
    };
    let policy = RefreshPolicy {
        max_age: Duration::from_secs(3600),
        min_refetch_interval: Duration::from_secs(3600),
    };
    let cache = Arc::new(KeySetCache::load(Arc::new(source), policy).await.unwrap());
    assert_eq!(cache.fetch_count(), 1);

    full_rotation(&client, &secret).await;
    let rotated = KeySet::from_stored(&current_set(&client, &secret).await).unwrap();
    let verification = VerificationPolicy::new("https://auth.test.example", "lambda-auth", 30);
    let claims = token::AccessClaims {
        iss: verification.issuer.clone(),
        sub: "user".into(),
        aud: verification.audience.clone(),
        exp: common::START + 600,
        iat: common::START,
        nbf: common::START,
        jti: "jti".into(),
        sid: "sid".into(),
        role: "user".into(),
        scope: "profile".into(),
        client_id: "lambda-auth".into(),
    };
    let new_token = token::sign(&rotated, &claims);

    let verified = cache.verify(&verification, &new_token, common::START).await;
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(cache.fetch_count(), 2, "the unknown kid caused one fetch");
    assert!(cache
        .verify(&verification, &new_token, common::START)
        .await
        .is_ok());
    assert_eq!(cache.fetch_count(), 2, "a known kid causes none");

    let forged = (0..50).map(|_| {
        let cache = Arc::clone(&cache);
        let foreign = common::key_set(Algorithm::ES256);
        let token = token::sign(&foreign, &claims);
        let verification = verification.clone();
        tokio::spawn(async move { cache.verify(&verification, &token, common::START).await })
    });
    for result in futures::future::join_all(forged).await {
        assert_eq!(result.unwrap(), Err(TokenError::UnknownKey));
    }
    assert_eq!(
        cache.fetch_count(),
        2,
        "a flood of unknown kids causes no further fetch"
    );
}
