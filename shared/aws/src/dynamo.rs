//! DynamoDB ([`AssetStore`]): one item per asset, written with optimistic concurrency.
//!
//! Items of the one table (string partition key `pk`):
//! - `asset#<id>`: `version` (N), `state` (S), `updatedAt` (N, ms), `body` (S, the asset JSON).
//! - `counter#<name>`: `count` (N), moved in the same transaction as an asset write.
//! - `failure#<messageId>`: see [`crate::sqs`].

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use cuepoint_core::asset::Asset;
use cuepoint_core::domain::AssetId;
use cuepoint_runtime::config::AwsSettings;
use cuepoint_runtime::ports::{
    AssetStore, AssetWrite, CounterDelta, PortError, PortResult, StoreError,
};

use crate::clients::AwsClients;
use crate::error::{port_error, retry_transient};

pub const ASSET_PREFIX: &str = "asset#";
pub const COUNTER_PREFIX: &str = "counter#";
const COUNT_ATTR: &str = "count";

pub fn asset_key(id: &AssetId) -> String {
    format!("{ASSET_PREFIX}{id}")
}

pub fn counter_key(name: &str) -> String {
    format!("{COUNTER_PREFIX}{name}")
}

#[derive(Clone, Debug)]
pub struct DynamoAssetStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// How one conditional write attempt ended.
enum Outcome {
    Written,
    /// The asset's condition failed; `stored` is the item as it was, when DynamoDB returned it.
    AssetConflict {
        stored: Option<HashMap<String, AttributeValue>>,
    },
    /// The counter's condition failed (limit reached, or a decrement below zero).
    CounterRefused,
}

/// How the counter item moves in a transaction.
#[derive(Debug, Clone, PartialEq)]
enum CounterMove {
    /// `ADD delta`, refused if the result would pass `max`.
    Rise { delta: i64, max: Option<i64> },
    /// `ADD -amount`, only while the count is at least `amount`.
    Fall { amount: i64 },
    /// The count is below the decrement: set it to 0 instead (never below zero).
    ClampToZero { amount: i64 },
}

impl DynamoAssetStore {
    pub fn new(clients: &AwsClients, table: impl Into<String>) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: table.into(),
        }
    }

    pub fn from_settings(clients: &AwsClients, settings: &AwsSettings) -> Self {
        Self::new(clients, settings.table.clone())
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The asset condition: absent on create, at the expected version on update.
    fn condition(
        expected: Option<u64>,
    ) -> (
        String,
        HashMap<String, String>,
        HashMap<String, AttributeValue>,
    ) {
        match expected {
            None => (
                "attribute_not_exists(pk)".into(),
                HashMap::new(),
                HashMap::new(),
            ),
            Some(v) => (
                "#version = :expected".into(),
                HashMap::from([("#version".to_string(), "version".to_string())]),
                HashMap::from([(":expected".to_string(), AttributeValue::N(v.to_string()))]),
            ),
        }
    }

    async fn put_asset(
        &self,
        item: &HashMap<String, AttributeValue>,
        expected: Option<u64>,
    ) -> PortResult<Outcome> {
        let (cond, names, values) = Self::condition(expected);
        let what = format!("dynamodb put {}", pk_of(item));
        retry_transient(&what, || async {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(&cond)
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => Ok(Outcome::Written),
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        Ok(Outcome::AssetConflict {
                            stored: c.item().cloned(),
                        })
                    }
                    _ => Err(port_error(&what, e)),
                },
            }
        })
        .await
    }

    async fn transact(
        &self,
        item: &HashMap<String, AttributeValue>,
        expected: Option<u64>,
        counter: &str,
        movement: &CounterMove,
    ) -> PortResult<Outcome> {
        let (cond, names, values) = Self::condition(expected);
        let build_err = |e: aws_sdk_dynamodb::error::BuildError| {
            PortError::Permanent(format!("dynamodb transaction: {e}"))
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression(cond)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        let n = |v: i64| AttributeValue::N(v.to_string());
        let (update_expr, counter_cond, counter_values) = match *movement {
            CounterMove::Rise {
                delta,
                max: Some(max),
            } => (
                "ADD #count :delta",
                Some("attribute_not_exists(#count) OR #count <= :limit"),
                HashMap::from([
                    (":delta".to_string(), n(delta)),
                    (":limit".to_string(), n(max - delta)),
                ]),
            ),
            CounterMove::Rise { delta, max: None } => (
                "ADD #count :delta",
                None,
                HashMap::from([(":delta".to_string(), n(delta))]),
            ),
            CounterMove::Fall { amount } => (
                "ADD #count :delta",
                Some("#count >= :amount"),
                HashMap::from([
                    (":delta".to_string(), n(-amount)),
                    (":amount".to_string(), n(amount)),
                ]),
            ),
            CounterMove::ClampToZero { amount } => (
                "SET #count = :zero",
                Some("attribute_not_exists(#count) OR #count < :amount"),
                HashMap::from([
                    (":zero".to_string(), n(0)),
                    (":amount".to_string(), n(amount)),
                ]),
            ),
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(counter_key(counter)))
            .update_expression(update_expr)
            .set_condition_expression(counter_cond.map(str::to_string))
            .expression_attribute_names("#count", COUNT_ATTR)
            .set_expression_attribute_values(Some(counter_values))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        let what = format!(
            "dynamodb transaction {} + {}",
            pk_of(item),
            counter_key(counter)
        );
        retry_transient(&what, || async {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Outcome::Written),
                Err(e) => e,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                err.as_service_error()
            else {
                return Err(port_error(&what, err));
            };
            // Reasons line up with the items: [asset put, counter update].
            let reasons = cancel.cancellation_reasons();
            let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
            match (code(0), code(1)) {
                ("ConditionalCheckFailed", _) => Ok(Outcome::AssetConflict {
                    stored: reasons.first().and_then(|r| r.item()).cloned(),
                }),
                (_, "ConditionalCheckFailed") => Ok(Outcome::CounterRefused),
                (a, c) if is_transient_reason(a) || is_transient_reason(c) => Err(
                    PortError::Transient(format!("{what}: cancelled ({a}, {c})")),
                ),
                (a, c) => Err(PortError::Permanent(format!(
                    "{what}: cancelled ({a}, {c}): {}",
                    cancel.message().unwrap_or("")
                ))),
            }
        })
        .await
    }
}

fn is_transient_reason(code: &str) -> bool {
    matches!(
        code,
        "TransactionConflict"
            | "ThrottlingError"
            | "ProvisionedThroughputExceeded"
            | "RequestLimitExceeded"
    )
}

fn pk_of(item: &HashMap<String, AttributeValue>) -> &str {
    match item.get("pk") {
        Some(AttributeValue::S(s)) => s,
        _ => "?",
    }
}

/// The item stored for an asset.
pub fn asset_item(asset: &Asset) -> PortResult<HashMap<String, AttributeValue>> {
    let body = serde_json::to_string(asset)
        .map_err(|e| PortError::Permanent(format!("asset {} does not serialize: {e}", asset.id)))?;
    Ok(HashMap::from([
        ("pk".to_string(), AttributeValue::S(asset_key(&asset.id))),
        (
            "version".to_string(),
            AttributeValue::N(asset.version.to_string()),
        ),
        (
            "state".to_string(),
            AttributeValue::S(asset.state.as_str().to_string()),
        ),
        (
            "updatedAt".to_string(),
            AttributeValue::N(asset.updated_at_ms.to_string()),
        ),
        ("body".to_string(), AttributeValue::S(body)),
    ]))
}

/// The asset in a stored item.
pub fn asset_from_item(item: &HashMap<String, AttributeValue>) -> PortResult<Asset> {
    let pk = pk_of(item).to_string();
    let Some(AttributeValue::S(body)) = item.get("body") else {
        return Err(PortError::Permanent(format!(
            "dynamodb item {pk}: no string attribute `body`"
        )));
    };
    serde_json::from_str(body).map_err(|e| {
        PortError::Permanent(format!("dynamodb item {pk}: `body` is not an asset: {e}"))
    })
}

fn stored_version(item: Option<&HashMap<String, AttributeValue>>) -> Option<String> {
    match item?.get("version") {
        Some(AttributeValue::N(v)) => Some(v.clone()),
        _ => None,
    }
}

fn conflict_detail(
    expected: Option<u64>,
    stored: Option<&HashMap<String, AttributeValue>>,
) -> String {
    match (expected, stored_version(stored)) {
        (None, Some(v)) => format!("the asset already exists (stored version {v})"),
        (None, None) => "the asset already exists".to_string(),
        (Some(e), Some(v)) => format!("expected version {e}, stored version is {v}"),
        (Some(e), None) => format!("expected version {e}, the asset does not exist"),
    }
}

#[async_trait]
impl AssetStore for DynamoAssetStore {
    async fn get(&self, id: &AssetId) -> PortResult<Option<Asset>> {
        let what = format!("dynamodb get {}", asset_key(id));
        let out = retry_transient(&what, || async {
            self.client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(asset_key(id)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        out.item().map(asset_from_item).transpose()
    }

    async fn commit(&self, write: AssetWrite) -> Result<(), StoreError> {
        let asset = &write.asset;
        let wanted = write.expected_version.map_or(1, |v| v + 1);
        if asset.version != wanted {
            return Err(PortError::Permanent(format!(
                "asset {}: record version {} must be {wanted} (expected version {:?} + 1)",
                asset.id, asset.version, write.expected_version
            ))
            .into());
        }
        let item = asset_item(asset)?;
        let movement = match &write.counter {
            None | Some(CounterDelta { delta: 0, .. }) => None,
            Some(c) if c.delta > 0 => {
                if let Some(max) = c.max {
                    if c.delta > max {
                        return Err(StoreError::CounterLimit {
                            name: c.name.clone(),
                            max,
                        });
                    }
                }
                Some((
                    c,
                    CounterMove::Rise {
                        delta: c.delta,
                        max: c.max,
                    },
                ))
            }
            Some(c) => Some((
                c,
                CounterMove::Fall {
                    amount: c.delta.saturating_neg(),
                },
            )),
        };
        let outcome = match movement {
            None => self.put_asset(&item, write.expected_version).await?,
            Some((c, first)) => {
                let mut movement = first;
                // A decrement that would go below zero is retried as a clamp to zero; a clamp
                // that then finds the count high enough (a concurrent rise) goes back to `Fall`.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match self
                        .transact(&item, write.expected_version, &c.name, &movement)
                        .await?
                    {
                        Outcome::CounterRefused => match movement {
                            CounterMove::Rise { max, .. } => {
                                return Err(StoreError::CounterLimit {
                                    name: c.name.clone(),
                                    max: max.unwrap_or(i64::MAX),
                                })
                            }
                            CounterMove::Fall { amount } if attempts < 4 => {
                                tracing::warn!(counter = %c.name, amount, "counter below the decrement; clamping at 0");
                                movement = CounterMove::ClampToZero { amount };
                            }
                            CounterMove::ClampToZero { amount } if attempts < 4 => {
                                movement = CounterMove::Fall { amount }
                            }
                            _ => {
                                return Err(PortError::Transient(format!(
                                    "counter {} kept changing during the write; try again",
                                    c.name
                                ))
                                .into())
                            }
                        },
                        other => break other,
                    }
                }
            }
        };
        match outcome {
            Outcome::Written => Ok(()),
            Outcome::AssetConflict { stored } => Err(StoreError::Conflict {
                asset: asset.id.clone(),
                detail: conflict_detail(write.expected_version, stored.as_ref()),
            }),
            Outcome::CounterRefused => Err(PortError::Permanent("counter refused".into()).into()),
        }
    }

    async fn list(&self) -> PortResult<Vec<Asset>> {
        let mut assets = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let what = "dynamodb scan assets";
            let page = retry_transient(what, || async {
                self.client
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("begins_with(pk, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(ASSET_PREFIX.into()))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.clone())
                    .send()
                    .await
                    .map_err(|e| port_error(what, e))
            })
            .await?;
            for item in page.items() {
                assets.push(asset_from_item(item)?);
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        assets.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(assets)
    }

    async fn counter(&self, name: &str) -> PortResult<i64> {
        let what = format!("dynamodb get {}", counter_key(name));
        let out = retry_transient(&what, || async {
            self.client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(counter_key(name)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        match out.item().and_then(|i| i.get(COUNT_ATTR)) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| {
                PortError::Permanent(format!("{what}: `{COUNT_ATTR}` is not an integer: {n}"))
            }),
            Some(other) => Err(PortError::Permanent(format!(
                "{what}: `{COUNT_ATTR}` is not a number: {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_details_name_versions() {
        let stored = HashMap::from([("version".to_string(), AttributeValue::N("4".into()))]);
        assert_eq!(
            conflict_detail(Some(3), Some(&stored)),
            "expected version 3, stored version is 4"
        );
        assert_eq!(
            conflict_detail(Some(3), None),
            "expected version 3, the asset does not exist"
        );
        assert_eq!(
            conflict_detail(None, Some(&stored)),
            "the asset already exists (stored version 4)"
        );
    }
}
