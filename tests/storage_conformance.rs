//! One conformance suite for the storage port, run against SQLite and against DynamoDB (moto).

mod common;

use std::sync::Arc;

use lambda_auth::store::{
    AttrValue, Condition, Item, ItemExt, Key, Store, StoreError, Write, EXPIRES_AT,
};

const NOW: i64 = common::START;

fn item(pairs: &[(&str, AttrValue)]) -> Item {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

fn put(key: &Key, attributes: Item, conditions: Vec<Condition>) -> Write {
    Write::Put {
        key: key.clone(),
        item: attributes,
        conditions,
    }
}

async fn get_missing_item_is_none(store: Arc<dyn Store>) {
    let found = store
        .get(&Key::new("USER#nobody", "PROFILE"), NOW)
        .await
        .unwrap();
    assert!(found.is_none());
}

async fn put_then_get_round_trips(store: Arc<dyn Store>) {
    let key = Key::new("USER#1", "PROFILE");
    let attributes = item(&[
        ("email", "ada@example.com".into()),
        ("count", 42.into()),
        ("admin", false.into()),
    ]);
    store
        .write(put(&key, attributes.clone(), vec![]), NOW)
        .await
        .unwrap();

    let found = store
        .get(&key, NOW)
        .await
        .unwrap()
        .expect("item is present");
    assert_eq!(found, attributes);
}

async fn absent_condition_rejects_live_item(store: Arc<dyn Store>) {
    let key = Key::new("EMAIL#ada@example.com", "EMAIL");
    store
        .write(
            put(
                &key,
                item(&[("user_id", "1".into())]),
                vec![Condition::Absent],
            ),
            NOW,
        )
        .await
        .unwrap();

    let second = store
        .write(
            put(
                &key,
                item(&[("user_id", "2".into())]),
                vec![Condition::Absent],
            ),
            NOW,
        )
        .await;
    assert!(
        matches!(second, Err(StoreError::ConditionFailed)),
        "{second:?}"
    );
    let kept = store.get(&key, NOW).await.unwrap().unwrap();
    assert_eq!(kept.string("user_id"), Some("1"));
}

async fn expired_item_reads_as_absent(store: Arc<dyn Store>) {
    let key = Key::new("REFRESH#h", "REFRESH");
    store
        .write(
            put(&key, item(&[(EXPIRES_AT, (NOW + 10).into())]), vec![]),
            NOW,
        )
        .await
        .unwrap();

    assert!(store.get(&key, NOW + 9).await.unwrap().is_some());
    assert!(store.get(&key, NOW + 10).await.unwrap().is_none());
    assert!(store
        .query("REFRESH#h", "", NOW + 10)
        .await
        .unwrap()
        .is_empty());
}

async fn expired_item_satisfies_absent(store: Arc<dyn Store>) {
    let key = Key::new("STATE#s", "STATE");
    store
        .write(
            put(
                &key,
                item(&[(EXPIRES_AT, (NOW + 10).into()), ("v", 1.into())]),
                vec![],
            ),
            NOW,
        )
        .await
        .unwrap();

    store
        .write(
            put(&key, item(&[("v", 2.into())]), vec![Condition::Absent]),
            NOW + 11,
        )
        .await
        .expect("an expired item does not block an Absent put");
    let found = store.get(&key, NOW + 11).await.unwrap().unwrap();
    assert_eq!(found.number("v"), Some(2));
}

async fn expired_item_fails_present(store: Arc<dyn Store>) {
    let key = Key::new("USER#1", "SESSION#s");
    store
        .write(
            put(&key, item(&[(EXPIRES_AT, (NOW + 10).into())]), vec![]),
            NOW,
        )
        .await
        .unwrap();

    let update = Write::Update {
        key: key.clone(),
        set: item(&[("status", "revoked".into())]),
        conditions: vec![],
    };
    let result = store.write(update, NOW + 10).await;
    assert!(
        matches!(result, Err(StoreError::ConditionFailed)),
        "{result:?}"
    );
}

async fn update_sets_fields_and_keeps_others(store: Arc<dyn Store>) {
    let key = Key::new("USER#1", "SESSION#s");
    store
        .write(
            put(
                &key,
                item(&[("generation", 0.into()), ("status", "active".into())]),
                vec![],
            ),
            NOW,
        )
        .await
        .unwrap();

    let update = Write::Update {
        key: key.clone(),
        set: item(&[("generation", 1.into())]),
        conditions: vec![Condition::Equals("generation".into(), 0.into())],
    };
    store.write(update, NOW).await.unwrap();

    let found = store.get(&key, NOW).await.unwrap().unwrap();
    assert_eq!(found.number("generation"), Some(1));
    assert_eq!(found.string("status"), Some("active"));
}

async fn update_of_missing_item_fails(store: Arc<dyn Store>) {
    let key = Key::new("USER#missing", "SESSION#s");
    let update = Write::Update {
        key: key.clone(),
        set: item(&[("status", "revoked".into())]),
        conditions: vec![],
    };
    let result = store.write(update, NOW).await;

    assert!(
        matches!(result, Err(StoreError::ConditionFailed)),
        "{result:?}"
    );
    assert!(
        store.get(&key, NOW).await.unwrap().is_none(),
        "the update must not create the item"
    );
}

async fn equals_mismatch_leaves_item(store: Arc<dyn Store>) {
    let key = Key::new("USER#1", "SESSION#s");
    store
        .write(put(&key, item(&[("generation", 3.into())]), vec![]), NOW)
        .await
        .unwrap();

    let update = Write::Update {
        key: key.clone(),
        set: item(&[("generation", 9.into())]),
        conditions: vec![Condition::Equals("generation".into(), 2.into())],
    };
    let result = store.write(update, NOW).await;
    assert!(
        matches!(result, Err(StoreError::ConditionFailed)),
        "{result:?}"
    );
    assert_eq!(
        store
            .get(&key, NOW)
            .await
            .unwrap()
            .unwrap()
            .number("generation"),
        Some(3)
    );
}

async fn transaction_is_all_or_nothing(store: Arc<dyn Store>) {
    let taken = Key::new("EMAIL#taken@example.com", "EMAIL");
    store
        .write(put(&taken, item(&[("user_id", "1".into())]), vec![]), NOW)
        .await
        .unwrap();

    let profile = Key::new("USER#2", "PROFILE");
    let result = store
        .transact(
            vec![
                put(
                    &profile,
                    item(&[("email", "taken@example.com".into())]),
                    vec![Condition::Absent],
                ),
                put(
                    &taken,
                    item(&[("user_id", "2".into())]),
                    vec![Condition::Absent],
                ),
            ],
            NOW,
        )
        .await;

    assert!(
        matches!(result, Err(StoreError::ConditionFailed)),
        "{result:?}"
    );
    assert!(
        store.get(&profile, NOW).await.unwrap().is_none(),
        "the first write must be rolled back"
    );
    assert_eq!(
        store
            .get(&taken, NOW)
            .await
            .unwrap()
            .unwrap()
            .string("user_id"),
        Some("1")
    );
}

async fn transaction_applies_every_write(store: Arc<dyn Store>) {
    let session = Key::new("USER#1", "SESSION#s");
    let refresh = Key::new("REFRESH#h", "REFRESH");
    store
        .transact(
            vec![
                put(
                    &session,
                    item(&[("generation", 0.into())]),
                    vec![Condition::Absent],
                ),
                put(
                    &refresh,
                    item(&[("session_id", "s".into())]),
                    vec![Condition::Absent],
                ),
            ],
            NOW,
        )
        .await
        .unwrap();

    assert!(store.get(&session, NOW).await.unwrap().is_some());
    assert!(store.get(&refresh, NOW).await.unwrap().is_some());
}

async fn conditional_delete(store: Arc<dyn Store>) {
    let key = Key::new("STATE#s", "STATE");
    store
        .write(put(&key, item(&[("v", 1.into())]), vec![]), NOW)
        .await
        .unwrap();

    let wrong = Write::Delete {
        key: key.clone(),
        conditions: vec![Condition::Equals("v".into(), 2.into())],
    };
    assert!(matches!(
        store.write(wrong, NOW).await,
        Err(StoreError::ConditionFailed)
    ));
    let right = Write::Delete {
        key: key.clone(),
        conditions: vec![Condition::Present],
    };
    store.write(right, NOW).await.unwrap();
    assert!(store.get(&key, NOW).await.unwrap().is_none());

    let again = Write::Delete {
        key: key.clone(),
        conditions: vec![Condition::Present],
    };
    assert!(
        matches!(
            store.write(again, NOW).await,
            Err(StoreError::ConditionFailed)
        ),
        "a second delete of the same item must fail its condition"
    );
}

async fn query_filters_by_prefix_in_order(store: Arc<dyn Store>) {
    for (sk, expires) in [
        ("SESSION#b", NOW + 100),
        ("SESSION#a", NOW + 100),
        ("SESSION#c", NOW - 1),
        ("PROFILE", NOW + 100),
    ] {
        let key = Key::new("USER#q", sk);
        store
            .write(
                put(&key, item(&[(EXPIRES_AT, expires.into())]), vec![]),
                NOW - 10,
            )
            .await
            .unwrap();
    }
    store
        .write(
            put(&Key::new("USER#other", "SESSION#z"), item(&[]), vec![]),
            NOW,
        )
        .await
        .unwrap();

    let found = store.query("USER#q", "SESSION#", NOW).await.unwrap();
    let sort_keys: Vec<&str> = found.iter().map(|(key, _)| key.sk.as_str()).collect();
    assert_eq!(sort_keys, ["SESSION#a", "SESSION#b"]);
    assert!(found.iter().all(|(key, _)| key.pk == "USER#q"));

    let everything = store.query("USER#q", "", NOW).await.unwrap();
    assert_eq!(everything.len(), 3);
}

async fn concurrent_absent_puts_have_one_winner(store: Arc<dyn Store>) {
    let key = Key::new("EMAIL#race@example.com", "EMAIL");
    let attempts = (0..20).map(|index| {
        let store = Arc::clone(&store);
        let key = key.clone();
        tokio::spawn(async move {
            store
                .write(
                    put(
                        &key,
                        item(&[("user_id", index.to_string().into())]),
                        vec![Condition::Absent],
                    ),
                    NOW,
                )
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;

    let winners = results
        .iter()
        .filter(|result| matches!(result, Ok(Ok(()))))
        .count();
    let losers = results
        .iter()
        .filter(|result| {
            matches!(
                result,
                Ok(Err(StoreError::ConditionFailed | StoreError::Conflict))
            )
        })
        .count();
    assert_eq!(winners, 1);
    assert_eq!(losers, 19);
}

macro_rules! conformance_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            async fn store() -> Arc<dyn Store> {
                $make
            }

            conformance_suite!(@cases
                get_missing_item_is_none,
                put_then_get_round_trips,
                absent_condition_rejects_live_item,
                expired_item_reads_as_absent,
                expired_item_satisfies_absent,
                expired_item_fails_present,
                update_sets_fields_and_keeps_others,
                update_of_missing_item_fails,
                equals_mismatch_leaves_item,
                transaction_is_all_or_nothing,
                transaction_applies_every_write,
                conditional_delete,
                query_filters_by_prefix_in_order,
                concurrent_absent_puts_have_one_winner
            );
        }
    };
    (@cases $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case(store().await).await;
            }
        )*
    };
}

conformance_suite!(sqlite, Arc::new(common::sqlite_store()));
conformance_suite!(dynamodb, Arc::new(common::dynamo_store().await));
