//! Account rules that need stored state: hash upgrades and disabled accounts.

mod common;

use std::sync::Arc;

use common::{assert_problem, body_json, test_app, PASSWORD};
use lambda_auth::store::{Item, ItemExt, Key, Store, Write};

async fn stored_hash(store: &Arc<dyn Store>, user_id: &str) -> String {
    let profile = store
        .get(
            &Key::new(format!("USER#{user_id}"), "PROFILE"),
            common::START,
        )
        .await
        .unwrap()
        .expect("the profile exists");
    profile.string("password_hash").unwrap().to_owned()
}

#[tokio::test]
async fn login_rehashes_with_new_parameters() {
    let store: Arc<dyn Store> = Arc::new(common::sqlite_store());
    let before = test_app(store.clone(), &[("ARGON2_ITERATIONS", "1")]);
    let registered = before.register("ada@example.com", PASSWORD).await;
    let user_id = body_json(&registered)["id"].as_str().unwrap().to_owned();
    let old_hash = stored_hash(&store, &user_id).await;
    assert!(old_hash.contains("m=8192,t=1,p=1"), "{old_hash}");

    let after = test_app(store.clone(), &[("ARGON2_ITERATIONS", "2")]);
    assert_eq!(after.login("ada@example.com", PASSWORD).await.status(), 200);

    let new_hash = stored_hash(&store, &user_id).await;
    assert!(new_hash.contains("m=8192,t=2,p=1"), "{new_hash}");
    assert_eq!(after.login("ada@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn unchanged_parameters_keep_hash() {
    let store: Arc<dyn Store> = Arc::new(common::sqlite_store());
    let app = test_app(store.clone(), &[]);
    let registered = app.register("ada@example.com", PASSWORD).await;
    let user_id = body_json(&registered)["id"].as_str().unwrap().to_owned();
    let hash = stored_hash(&store, &user_id).await;

    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);

    assert_eq!(stored_hash(&store, &user_id).await, hash);
}

#[tokio::test]
async fn disabled_account_cannot_sign_in_or_refresh() {
    let store: Arc<dyn Store> = Arc::new(common::sqlite_store());
    let app = test_app(store.clone(), &[]);
    let tokens = app.signed_in("ada@example.com").await;
    let user_id = body_json(&app.me(tokens["access_token"].as_str().unwrap()).await)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let disable = Write::Update {
        key: Key::new(format!("USER#{user_id}"), "PROFILE"),
        set: Item::from([("status".to_owned(), "disabled".into())]),
        conditions: vec![],
    };
    store.write(disable, common::START).await.unwrap();

    assert_problem(
        &app.login("ada@example.com", PASSWORD).await,
        403,
        "account_disabled",
    );
    assert_problem(
        &app.refresh(tokens["refresh_token"].as_str().unwrap()).await,
        403,
        "account_disabled",
    );
    assert_problem(
        &app.me(tokens["access_token"].as_str().unwrap()).await,
        403,
        "account_disabled",
    );
    assert_problem(
        &app.login("ada@example.com", "not the password at all")
            .await,
        401,
        "invalid_credentials",
    );
}
