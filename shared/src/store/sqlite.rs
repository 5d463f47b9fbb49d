//! The embedded backend for local mode: one SQLite table of items, one connection.
//!
//! Writes run inside `BEGIN IMMEDIATE` transactions, so conditions and the writes they guard
//! are atomic against every other writer, including a second process on the same file.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    conditions_hold, is_live, Item, Key, Store, StoreError, Write, EXPIRES_AT,
    MAX_TRANSACTION_WRITES,
};
use crate::store::ItemExt;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attributes TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
";

#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(backend)?;
        Self::with_connection(connection)
    }

    /// Opens a private in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory().map_err(backend)?)
    }

    fn with_connection(connection: Connection) -> Result<Self, StoreError> {
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(backend)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        connection.execute_batch(SCHEMA).map_err(backend)?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied write: SQLite rolls back
        // the open transaction when it is dropped, so a poisoned lock is safe to take over.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn read_live(connection: &Connection, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
    let text: Option<String> = connection
        .query_row(
            "SELECT attributes FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk, key.sk],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    let Some(text) = text else {
        return Ok(None);
    };
    let item: Item = serde_json::from_str(&text).map_err(backend)?;
    Ok(is_live(&item, now).then_some(item))
}

fn store_item(connection: &Connection, key: &Key, item: &Item) -> Result<(), StoreError> {
    let text = serde_json::to_string(item).map_err(backend)?;
    connection
        .execute(
            "INSERT INTO items (pk, sk, attributes, expires_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (pk, sk) DO UPDATE SET attributes = excluded.attributes,
                                                expires_at = excluded.expires_at",
            params![key.pk, key.sk, text, item.number(EXPIRES_AT)],
        )
        .map_err(backend)?;
    Ok(())
}

/// Checks one write's conditions and applies it, inside the caller's transaction.
fn apply(connection: &Connection, write: &Write, now: i64) -> Result<(), StoreError> {
    let live = read_live(connection, write.key(), now)?;
    if !conditions_hold(&write.effective_conditions(), live.as_ref()) {
        return Err(StoreError::ConditionFailed);
    }
    match write {
        Write::Put { key, item, .. } => store_item(connection, key, item),
        Write::Update { key, set, .. } => {
            let mut item = live.expect("an update's conditions require a live item");
            item.extend(
                set.iter()
                    .map(|(name, value)| (name.clone(), value.clone())),
            );
            store_item(connection, key, &item)
        }
        Write::Delete { key, .. } => {
            connection
                .execute(
                    "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
                    params![key.pk, key.sk],
                )
                .map_err(backend)?;
            Ok(())
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
        read_live(&self.lock(), key, now)
    }

    async fn write(&self, write: Write, now: i64) -> Result<(), StoreError> {
        self.transact(vec![write], now).await
    }

    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), StoreError> {
        let distinct: BTreeSet<&Key> = writes.iter().map(Write::key).collect();
        if writes.len() > MAX_TRANSACTION_WRITES || distinct.len() != writes.len() {
            return Err(StoreError::Backend(
                "a transaction takes at most 25 writes to distinct keys".into(),
            ));
        }

        let mut connection = self.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        for write in &writes {
            // Returning early drops the transaction, which rolls back the writes applied so far.
            apply(&transaction, write, now)?;
        }
        transaction.commit().map_err(backend)
    }

    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        now: i64,
    ) -> Result<Vec<(Key, Item)>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT sk, attributes FROM items
                 WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 ORDER BY sk",
            )
            .map_err(backend)?;
        let rows = statement
            .query_map(params![pk, sk_prefix], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(backend)?;

        let mut items = Vec::new();
        for row in rows {
            let (sk, text) = row.map_err(backend)?;
            let item: Item = serde_json::from_str(&text).map_err(backend)?;
            if is_live(&item, now) {
                items.push((Key::new(pk, sk), item));
            }
        }
        Ok(items)
    }
}

/// Deletes expired items. DynamoDB's TTL does this in the cloud; local mode calls it at start.
impl SqliteStore {
    pub fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.lock()
            .execute(
                "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                params![now],
            )
            .map_err(backend)
    }
}
