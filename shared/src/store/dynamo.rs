//! The DynamoDB backend: one table with string keys `pk` and `sk` and TTL on `expires_at`.
//!
//! Conditions become condition expressions, so DynamoDB checks them atomically with the write.
//! Reads are strongly consistent, because refresh-token rotation compares what it just read.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

use super::{is_live, AttrValue, Condition, Item, Key, Store, StoreError, Write, EXPIRES_AT};

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// The expressions of one write.
#[derive(Default)]
struct Expressions {
    condition: Option<String>,
    update: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expressions {
    fn for_write(write: &Write, now: i64) -> Self {
        let mut expressions = Expressions::default();
        if let Write::Update { set, .. } = write {
            let mut assignments = Vec::new();
            for (index, (name, value)) in set.iter().enumerate() {
                expressions.names.insert(format!("#u{index}"), name.clone());
                expressions
                    .values
                    .insert(format!(":u{index}"), to_attribute(value));
                assignments.push(format!("#u{index} = :u{index}"));
            }
            expressions.update = Some(format!("SET {}", assignments.join(", ")));
        }

        let mut clauses = Vec::new();
        for (index, condition) in write.effective_conditions().iter().enumerate() {
            match condition {
                Condition::Absent => {
                    expressions.use_liveness_names(now);
                    clauses.push("(attribute_not_exists(#pk) OR #exp <= :now)".to_owned());
                }
                Condition::Present => {
                    expressions.use_liveness_names(now);
                    clauses.push(
                        "(attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now))"
                            .to_owned(),
                    );
                }
                Condition::Equals(name, value) => {
                    expressions.names.insert(format!("#c{index}"), name.clone());
                    expressions
                        .values
                        .insert(format!(":c{index}"), to_attribute(value));
                    clauses.push(format!("#c{index} = :c{index}"));
                }
            }
        }
        if !clauses.is_empty() {
            expressions.condition = Some(clauses.join(" AND "));
        }
        expressions
    }

    fn use_liveness_names(&mut self, now: i64) {
        self.names.insert("#pk".into(), "pk".into());
        self.names.insert("#exp".into(), EXPIRES_AT.into());
        self.values
            .insert(":now".into(), AttributeValue::N(now.to_string()));
    }

    /// DynamoDB rejects empty expression maps, so empty ones are sent as absent.
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn to_attribute(value: &AttrValue) -> AttributeValue {
    match value {
        AttrValue::S(text) => AttributeValue::S(text.clone()),
        AttrValue::N(number) => AttributeValue::N(number.to_string()),
        AttrValue::Bool(flag) => AttributeValue::Bool(*flag),
    }
}

fn key_attributes(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn full_item(key: &Key, item: &Item) -> HashMap<String, AttributeValue> {
    let mut attributes = key_attributes(key);
    for (name, value) in item {
        attributes.insert(name.clone(), to_attribute(value));
    }
    attributes
}

/// Converts a stored item back, without its key. Attributes of other types are skipped, and a
/// number that is not an integer is reported as a backend error.
fn from_attributes(
    mut attributes: HashMap<String, AttributeValue>,
) -> Result<(Key, Item), StoreError> {
    let mut take_key = |name: &str| match attributes.remove(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Backend(format!("item without a string {name}"))),
    };
    let key = Key::new(take_key("pk")?, take_key("sk")?);
    let mut item = Item::new();
    for (name, value) in attributes {
        let value = match value {
            AttributeValue::S(text) => AttrValue::S(text),
            AttributeValue::Bool(flag) => AttrValue::Bool(flag),
            AttributeValue::N(number) => AttrValue::N(number.parse().map_err(|_| {
                StoreError::Backend(format!("attribute {name} is not an integer: {number}"))
            })?),
            _ => continue,
        };
        item.insert(name, value);
    }
    Ok((key, item))
}

fn backend<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(DisplayErrorContext(&error).to_string())
}

/// Maps the error of a PutItem, UpdateItem or DeleteItem call. Their error types share the
/// method names but no trait, hence a macro.
macro_rules! single_write_error {
    ($error:expr) => {{
        let error = $error;
        let service = error.as_service_error();
        let failed = service.is_some_and(|e| e.is_conditional_check_failed_exception());
        let conflict = service.is_some_and(|e| e.is_transaction_conflict_exception());
        write_error(error, failed, conflict)
    }};
}

/// Maps a single-item write error: failed conditions and conflicts are expected outcomes.
fn write_error<E, R>(error: SdkError<E, R>, condition_failed: bool, conflict: bool) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if condition_failed {
        StoreError::ConditionFailed
    } else if conflict {
        StoreError::Conflict
    } else {
        backend(error)
    }
}

impl DynamoStore {
    fn transact_item(&self, write: &Write, now: i64) -> Result<TransactWriteItem, StoreError> {
        let expressions = Expressions::for_write(write, now);
        let built = match write {
            Write::Put { key, item, .. } => TransactWriteItem::builder().put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(full_item(key, item)))
                    .set_condition_expression(expressions.condition.clone())
                    .set_expression_attribute_names(expressions.names())
                    .set_expression_attribute_values(expressions.values())
                    .build()
                    .map_err(|error| StoreError::Backend(error.to_string()))?,
            ),
            Write::Update { key, .. } => TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attributes(key)))
                    .set_update_expression(expressions.update.clone())
                    .set_condition_expression(expressions.condition.clone())
                    .set_expression_attribute_names(expressions.names())
                    .set_expression_attribute_values(expressions.values())
                    .build()
                    .map_err(|error| StoreError::Backend(error.to_string()))?,
            ),
            Write::Delete { key, .. } => TransactWriteItem::builder().delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attributes(key)))
                    .set_condition_expression(expressions.condition.clone())
                    .set_expression_attribute_names(expressions.names())
                    .set_expression_attribute_values(expressions.values())
                    .build()
                    .map_err(|error| StoreError::Backend(error.to_string()))?,
            ),
        };
        Ok(built.build())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let Some(attributes) = output.item else {
            return Ok(None);
        };
        let (_, item) = from_attributes(attributes)?;
        Ok(is_live(&item, now).then_some(item))
    }

    async fn write(&self, write: Write, now: i64) -> Result<(), StoreError> {
        let expressions = Expressions::for_write(&write, now);
        match &write {
            Write::Put { key, item, .. } => self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(full_item(key, item)))
                .set_condition_expression(expressions.condition.clone())
                .set_expression_attribute_names(expressions.names())
                .set_expression_attribute_values(expressions.values())
                .send()
                .await
                .map(drop)
                .map_err(|error| single_write_error!(error)),
            Write::Update { key, .. } => self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_attributes(key)))
                .set_update_expression(expressions.update.clone())
                .set_condition_expression(expressions.condition.clone())
                .set_expression_attribute_names(expressions.names())
                .set_expression_attribute_values(expressions.values())
                .send()
                .await
                .map(drop)
                .map_err(|error| single_write_error!(error)),
            Write::Delete { key, .. } => self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_attributes(key)))
                .set_condition_expression(expressions.condition.clone())
                .set_expression_attribute_names(expressions.names())
                .set_expression_attribute_values(expressions.values())
                .send()
                .await
                .map(drop)
                .map_err(|error| single_write_error!(error)),
        }
    }

    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), StoreError> {
        let items = writes
            .iter()
            .map(|write| self.transact_item(write, now))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(error) = result else {
            return Ok(());
        };

        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        match error.as_service_error() {
            Some(E::TransactionCanceledException(canceled)) => {
                let codes: Vec<&str> = canceled
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|reason| reason.code())
                    .collect();
                if codes.contains(&"ConditionalCheckFailed") {
                    Err(StoreError::ConditionFailed)
                } else if codes.contains(&"TransactionConflict") {
                    Err(StoreError::Conflict)
                } else {
                    Err(backend(error))
                }
            }
            Some(E::TransactionInProgressException(_)) => Err(StoreError::Conflict),
            _ => Err(backend(error)),
        }
    }

    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        now: i64,
    ) -> Result<Vec<(Key, Item)>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        request = if sk_prefix.is_empty() {
            request.key_condition_expression("#pk = :pk")
        } else {
            request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
        };

        let mut pages = request.into_paginator().items().send();
        let mut items = Vec::new();
        while let Some(attributes) = pages.next().await {
            let (key, item) = from_attributes(attributes.map_err(backend)?)?;
            if is_live(&item, now) {
                items.push((key, item));
            }
        }
        Ok(items)
    }
}

#[cfg(feature = "test-support")]
impl DynamoStore {
    /// Creates the table with the same key schema and TTL attribute as `template.yaml`.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        let definition = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition has its required fields")
        };
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .expect("key schema element has its required fields")
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(definition("pk"))
            .attribute_definitions(definition("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await
            .map_err(backend)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(EXPIRES_AT)
                    .build()
                    .expect("TTL specification has its required fields"),
            )
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
