//! Races that the storage conditions must settle: registrations of one email and refreshes of
//! one token, on both backends.

mod common;

use std::sync::Arc;

use common::{body_json, TestApp, PASSWORD};
use lambda_auth::store::Store;

fn claims(access_token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn registrations_race(store: Arc<dyn Store>) {
    let app = Arc::new(common::test_app(store, &[]));
    let spellings: Vec<String> = (0..20)
        .map(|index| {
            let name: String = "race.condition"
                .chars()
                .enumerate()
                .map(|(position, c)| {
                    if (index >> (position % 5)) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            format!("{name}@Example.com")
        })
        .collect();

    let attempts = spellings.iter().map(|email| {
        let app = Arc::clone(&app);
        let email = email.clone();
        tokio::spawn(async move { app.register(&email, PASSWORD).await })
    });
    let responses: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.expect("registration task does not panic"))
        .collect();

    let created = responses
        .iter()
        .filter(|response| response.status() == 201)
        .count();
    let conflicts = responses
        .iter()
        .filter(|response| response.status() == 409 && body_json(response)["code"] == "email_taken")
        .count();
    assert_eq!(created, 1, "exactly one account is created");
    assert_eq!(conflicts, 19, "every other registration gets email_taken");

    let login = app.login("RACE.CONDITION@example.COM", PASSWORD).await;
    assert_eq!(login.status(), 200);
}

async fn refreshes_race_in_grace(store: Arc<dyn Store>) {
    let app = Arc::new(common::test_app(store, &[]));
    let tokens = app.signed_in("tabs@example.com").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let session = claims(tokens["access_token"].as_str().unwrap())["sid"].clone();

    let attempts = (0..8).map(|_| {
        let app = Arc::clone(&app);
        let refresh_token = refresh_token.clone();
        tokio::spawn(async move { app.refresh(&refresh_token).await })
    });
    let responses: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.expect("refresh task does not panic"))
        .collect();

    for response in &responses {
        assert_eq!(
            response.status(),
            200,
            "{}",
            String::from_utf8_lossy(response.body())
        );
    }
    let bodies: Vec<_> = responses.iter().map(body_json).collect();
    for body in &bodies {
        assert_eq!(
            claims(body["access_token"].as_str().unwrap())["sid"],
            session,
            "one session"
        );
    }
    let me = app.me(bodies[0]["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200, "the session stays active");

    // Every issued token still works once, inside the grace period.
    let next = app
        .refresh(bodies[7]["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(next.status(), 200);
}

async fn replay_after_grace_revokes(store: Arc<dyn Store>) {
    let app: TestApp = common::test_app(store, &[]);
    let tokens = app.signed_in("replay@example.com").await;
    let original = tokens["refresh_token"].as_str().unwrap();
    let rotated = body_json(&app.refresh(original).await);

    app.clock.advance(11);
    let replay = app.refresh(original).await;
    common::assert_problem(&replay, 401, "refresh_token_reused");

    let newest = app
        .refresh(rotated["refresh_token"].as_str().unwrap())
        .await;
    common::assert_problem(&newest, 401, "invalid_refresh_token");
    let me = app.me(rotated["access_token"].as_str().unwrap()).await;
    common::assert_problem(&me, 401, "invalid_token");
}

async fn old_generation_reuse_revokes(store: Arc<dyn Store>) {
    let app = common::test_app(store, &[]);
    let tokens = app.signed_in("twice@example.com").await;
    let original = tokens["refresh_token"].as_str().unwrap();
    let second = body_json(&app.refresh(original).await);
    let third = body_json(&app.refresh(second["refresh_token"].as_str().unwrap()).await);
    assert!(third["refresh_token"].is_string());

    // Two generations old: reuse even inside the grace period.
    let replay = app.refresh(original).await;
    common::assert_problem(&replay, 401, "refresh_token_reused");
    let newest = app.refresh(third["refresh_token"].as_str().unwrap()).await;
    common::assert_problem(&newest, 401, "invalid_refresh_token");
}

async fn idle_session_expires(store: Arc<dyn Store>) {
    let app = common::test_app(
        store,
        &[
            ("SESSION_IDLE_TTL_SECONDS", "3600"),
            ("SESSION_ABSOLUTE_TTL_SECONDS", "7200"),
        ],
    );
    let tokens = app.signed_in("idle@example.com").await;

    app.clock.advance(3000);
    let kept_alive = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        kept_alive.status(),
        200,
        "a refresh inside the idle lifetime succeeds"
    );
    let kept_alive = body_json(&kept_alive);

    app.clock.advance(3000);
    let still_alive = app
        .refresh(kept_alive["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        still_alive.status(),
        200,
        "the idle lifetime restarts at each refresh"
    );
    let still_alive = body_json(&still_alive);

    app.clock.advance(1300);
    let past_absolute = app
        .refresh(still_alive["refresh_token"].as_str().unwrap())
        .await;
    common::assert_problem(&past_absolute, 401, "invalid_refresh_token");
}

macro_rules! on_both_stores {
    ($($case:ident),*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(super::common::sqlite_store())).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(super::common::dynamo_store().await)).await;
                }
            )*
        }
    };
}

on_both_stores!(
    registrations_race,
    refreshes_race_in_grace,
    replay_after_grace_revokes,
    old_generation_reuse_revokes,
    idle_session_expires
);
