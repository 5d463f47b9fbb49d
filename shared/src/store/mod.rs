//! The storage port: the few DynamoDB-shaped operations the domain needs, with two backends.
//!
//! Every item lives under a partition key and a sort key. An item whose `expires_at` attribute
//! (epoch seconds) is at or before `now` is absent for every operation, reads and conditions
//! alike, because DynamoDB's TTL deletes expired items only eventually. Callers pass `now` so
//! that both backends and the domain agree on one clock.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod dynamo;
pub mod sqlite;

/// Name of the attribute that contains an item's expiry time. It is the DynamoDB table's TTL
/// attribute.
pub const EXPIRES_AT: &str = "expires_at";

/// An attribute value: the subset of DynamoDB types the domain uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttrValue {
    S(String),
    N(i64),
    Bool(bool),
}

impl From<&str> for AttrValue {
    fn from(value: &str) -> Self {
        AttrValue::S(value.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(value: String) -> Self {
        AttrValue::S(value)
    }
}

impl From<i64> for AttrValue {
    fn from(value: i64) -> Self {
        AttrValue::N(value)
    }
}

impl From<bool> for AttrValue {
    fn from(value: bool) -> Self {
        AttrValue::Bool(value)
    }
}

/// The attributes of one item, without its key.
pub type Item = BTreeMap<String, AttrValue>;

/// Reads typed attributes from an item. A missing or mistyped attribute is `None`, so that a
/// damaged item is handled by the caller instead of panicking.
pub trait ItemExt {
    fn string(&self, name: &str) -> Option<&str>;
    fn number(&self, name: &str) -> Option<i64>;
    fn boolean(&self, name: &str) -> Option<bool>;
}

impl ItemExt for Item {
    fn string(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(AttrValue::S(value)) => Some(value),
            _ => None,
        }
    }

    fn number(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(AttrValue::N(value)) => Some(*value),
            _ => None,
        }
    }

    fn boolean(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(AttrValue::Bool(value)) => Some(*value),
            _ => None,
        }
    }
}

/// Partition key and sort key of an item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A condition on the item under a write's key, checked atomically with the write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// No live item exists (an expired item counts as absent).
    Absent,
    /// A live item exists.
    Present,
    /// A live item exists and its attribute equals the value.
    Equals(String, AttrValue),
}

/// One write. Conditions are combined with AND; an empty list writes unconditionally.
#[derive(Clone, Debug)]
pub enum Write {
    /// Replaces the whole item.
    Put {
        key: Key,
        item: Item,
        conditions: Vec<Condition>,
    },
    /// Sets attributes of a live item, leaving the others. Fails when no live item exists.
    Update {
        key: Key,
        set: Item,
        conditions: Vec<Condition>,
    },
    Delete {
        key: Key,
        conditions: Vec<Condition>,
    },
}

impl Write {
    pub fn key(&self) -> &Key {
        match self {
            Write::Put { key, .. } | Write::Update { key, .. } | Write::Delete { key, .. } => key,
        }
    }

    /// Returns the conditions to check, with the implicit `Present` of an update made explicit.
    fn effective_conditions(&self) -> Vec<Condition> {
        match self {
            Write::Put { conditions, .. } | Write::Delete { conditions, .. } => conditions.clone(),
            Write::Update { conditions, .. } => {
                let mut all = vec![Condition::Present];
                all.extend(conditions.iter().cloned());
                all
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold; nothing was written.
    #[error("a write condition did not hold")]
    ConditionFailed,
    /// Another write to the same items was in progress; nothing was written and a retry may
    /// succeed.
    #[error("a concurrent write to the same items conflicted")]
    Conflict,
    /// The backend failed or could not be reached.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// The storage port. Implementations make `transact` all-or-nothing.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Reads one live item.
    async fn get(&self, key: &Key, now: i64) -> Result<Option<Item>, StoreError>;

    /// Applies one conditional write.
    async fn write(&self, write: Write, now: i64) -> Result<(), StoreError>;

    /// Applies up to 25 writes to distinct keys atomically: all conditions hold and all writes
    /// apply, or nothing is written.
    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), StoreError>;

    /// Lists the live items of a partition whose sort key starts with `sk_prefix`, ordered by
    /// sort key.
    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        now: i64,
    ) -> Result<Vec<(Key, Item)>, StoreError>;
}

/// Returns whether an item with these attributes is live at `now`.
pub fn is_live(item: &Item, now: i64) -> bool {
    match item.number(EXPIRES_AT) {
        Some(expires_at) => expires_at > now,
        None => true,
    }
}

/// Checks conditions against the current live item (or its absence). Backends that evaluate
/// conditions themselves (SQLite) use this; DynamoDB translates them to an expression.
pub(crate) fn conditions_hold(conditions: &[Condition], live: Option<&Item>) -> bool {
    conditions.iter().all(|condition| match condition {
        Condition::Absent => live.is_none(),
        Condition::Present => live.is_some(),
        Condition::Equals(name, value) => live.and_then(|item| item.get(name)) == Some(value),
    })
}

/// Largest number of writes in one transaction; DynamoDB accepts 100, the domain needs few.
pub const MAX_TRANSACTION_WRITES: usize = 25;
