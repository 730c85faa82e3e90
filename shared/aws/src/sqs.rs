//! SQS queues ([`Queue`]) and their dead-letter queues ([`DeadLetters`]).
//!
//! Failure reasons live in the DynamoDB table next to the assets (`pk = failure#<messageId>`,
//! expiring after 14 days like the messages): SQS keeps a message's id when it moves it to the
//! DLQ, so `cuepoint dlq list` can show why each dead letter failed last.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use cuepoint_runtime::config::AwsSettings;
use cuepoint_runtime::ports::{
    DeadLetter, DeadLetters, PortError, PortResult, Queue, ReceivedMessage,
};

use crate::clients::AwsClients;
use backon::BackoffBuilder;

use crate::error::{backoff, error_code, port_error, retry_transient};
use crate::time::{now_ms, now_secs};

/// SQS limits.
const MAX_BATCH: usize = 10;
const MAX_WAIT_SECONDS: u64 = 20;
const MAX_DELAY_SECONDS: u64 = 900;
const MAX_VISIBILITY_SECONDS: u64 = 43_200;
/// How long failure records are kept: the longest an SQS message can live.
const FAILURE_TTL_SECONDS: u64 = 14 * 24 * 3600;
/// Bytes of the message body kept with a failure record.
const BODY_EXCERPT_BYTES: usize = 1024;

/// Partition key of the failure record of one message.
pub fn failure_key(message_id: &str) -> String {
    format!("failure#{message_id}")
}

/// One SQS queue, addressed by URL, with the table that records failure reasons.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    name: String,
    url: String,
    failure_table: String,
}

impl SqsQueue {
    pub fn new(
        clients: &AwsClients,
        name: impl Into<String>,
        url: impl Into<String>,
        failure_table: impl Into<String>,
    ) -> Self {
        Self {
            sqs: clients.sqs.clone(),
            dynamodb: clients.dynamodb.clone(),
            name: name.into(),
            url: url.into(),
            failure_table: failure_table.into(),
        }
    }

    /// The queue called `name` in `settings.queue_urls`; failures go to `settings.table`.
    pub fn from_settings(
        clients: &AwsClients,
        settings: &AwsSettings,
        name: &str,
    ) -> PortResult<Self> {
        let url = settings.queue_urls.get(name).ok_or_else(|| {
            PortError::NotFound(format!(
                "no URL for queue {name:?} in aws.queue_urls (have: {:?})",
                settings.queue_urls.keys()
            ))
        })?;
        Ok(Self::new(
            clients,
            name,
            url.clone(),
            settings.table.clone(),
        ))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Delete one chunk (≤ 10) of receipts; returns the receipts worth another try.
    async fn delete_chunk(&self, receipts: &[String]) -> PortResult<Vec<String>> {
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .map_err(|e| PortError::Permanent(format!("sqs delete {}: {e}", self.name)))
            })
            .collect::<PortResult<Vec<_>>>()?;
        let out = retry_transient("sqs delete", || async {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| port_error(&format!("sqs delete {}", self.name), e))
        })
        .await?;
        let mut again = Vec::new();
        for failed in out.failed() {
            let receipt = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| receipts.get(i));
            let Some(receipt) = receipt else { continue };
            if is_stale_receipt(failed.code(), failed.message()) {
                // The message was already deleted, or its visibility ran out and someone else
                // holds it now: either way there is nothing left for us to delete.
                tracing::debug!(queue = %self.name, code = failed.code(), "delete: receipt no longer valid, ignored");
            } else if failed.sender_fault() {
                return Err(PortError::Permanent(format!(
                    "sqs delete {}: {} {}",
                    self.name,
                    failed.code(),
                    failed.message().unwrap_or("")
                )));
            } else {
                again.push(receipt.clone());
            }
        }
        Ok(again)
    }
}

/// A delete/visibility error that only says the receipt is stale.
fn is_stale_receipt(code: &str, message: Option<&str>) -> bool {
    let message = message.unwrap_or("").to_ascii_lowercase();
    code == "ReceiptHandleIsInvalid"
        || code == "AWS.SimpleQueueService.ReceiptHandleIsInvalid"
        || (code == "InvalidParameterValue"
            && (message.contains("receipt handle") || message.contains("receipthandle")))
}

fn seconds_i32(d: Duration, max: u64) -> i32 {
    d.as_secs().min(max) as i32
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        let what = format!("sqs receive {}", self.name);
        let out = retry_transient(&what, || async {
            self.sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
                .wait_time_seconds(seconds_i32(wait, MAX_WAIT_SECONDS))
                .visibility_timeout(seconds_i32(visibility, MAX_VISIBILITY_SECONDS))
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        out.messages()
            .iter()
            .map(|m| {
                let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                    return Err(PortError::Permanent(format!(
                        "{what}: message without id or receipt handle"
                    )));
                };
                Ok(ReceivedMessage {
                    message_id: id.to_string(),
                    receipt: receipt.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count: receive_count(m.attributes()),
                    // Hop latency is measured on the embedded backend only.
                    sent_at_ms: None,
                })
            })
            .collect()
    }

    async fn delete(&self, receipts: &[String]) -> PortResult<()> {
        for chunk in receipts.chunks(MAX_BATCH) {
            let mut pending = chunk.to_vec();
            // Entries that failed on the server side (not our fault) get a few more tries.
            let mut delays = backoff().build();
            while !pending.is_empty() {
                pending = self.delete_chunk(&pending).await?;
                if pending.is_empty() {
                    break;
                }
                let Some(delay) = delays.next() else {
                    return Err(PortError::Transient(format!(
                        "sqs delete {}: {} entries still failing after retries",
                        self.name,
                        pending.len()
                    )));
                };
                tokio::time::sleep(delay).await;
            }
        }
        Ok(())
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> PortResult<()> {
        let what = format!("sqs change visibility {}", self.name);
        retry_transient(&what, || async {
            match self
                .sqs
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .visibility_timeout(seconds_i32(timeout, MAX_VISIBILITY_SECONDS))
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let code = error_code(&e).unwrap_or("").to_string();
                    let err = port_error(&what, e);
                    // Already deleted or no longer ours: the caller learns the message is gone.
                    if code.contains("MessageNotInflight")
                        || is_stale_receipt(&code, Some(&err.to_string()))
                    {
                        Err(PortError::NotFound(err.to_string()))
                    } else {
                        Err(err)
                    }
                }
            }
        })
        .await
    }

    async fn send(&self, body: &str, delay: Duration) -> PortResult<String> {
        let what = format!("sqs send {}", self.name);
        // A retried send after a lost response can duplicate the message; consumers are
        // idempotent (conditional writes), so at-least-once is the contract anyway.
        let out = retry_transient(&what, || async {
            self.sqs
                .send_message()
                .queue_url(&self.url)
                .message_body(body)
                .delay_seconds(seconds_i32(delay, MAX_DELAY_SECONDS))
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    async fn record_failure(&self, message: &ReceivedMessage, reason: &str) -> PortResult<()> {
        let what = format!("record failure of {} on {}", message.message_id, self.name);
        let now = now_secs();
        let item = HashMap::from([
            (
                "pk".to_string(),
                AttributeValue::S(failure_key(&message.message_id)),
            ),
            ("reason".to_string(), AttributeValue::S(reason.to_string())),
            ("queue".to_string(), AttributeValue::S(self.name.clone())),
            (
                "body".to_string(),
                AttributeValue::S(excerpt(&message.body, BODY_EXCERPT_BYTES).to_string()),
            ),
            (
                "receiveCount".to_string(),
                AttributeValue::N(message.receive_count.to_string()),
            ),
            (
                "failedAt".to_string(),
                AttributeValue::N(now_ms().to_string()),
            ),
            (
                "expiresAt".to_string(),
                AttributeValue::N((now + FAILURE_TTL_SECONDS).to_string()),
            ),
        ]);
        retry_transient(&what, || async {
            self.dynamodb
                .put_item()
                .table_name(&self.failure_table)
                .set_item(Some(item.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| port_error(&what, e))
        })
        .await
    }
}

fn receive_count(attributes: Option<&HashMap<MessageSystemAttributeName, String>>) -> u32 {
    attributes
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn excerpt(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ---------------------------------------------------------------------------------------------

/// Dead-letter queues of the configured source queues, found through their redrive policies.
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    failure_table: String,
    queue_urls: BTreeMap<String, String>,
}

/// A source queue and its dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlqBinding {
    pub source_url: String,
    pub source_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    pub max_receive_count: Option<u32>,
}

impl SqsDeadLetters {
    pub fn new(
        clients: &AwsClients,
        queue_urls: BTreeMap<String, String>,
        failure_table: impl Into<String>,
    ) -> Self {
        Self {
            sqs: clients.sqs.clone(),
            dynamodb: clients.dynamodb.clone(),
            failure_table: failure_table.into(),
            queue_urls,
        }
    }

    pub fn from_settings(clients: &AwsClients, settings: &AwsSettings) -> Self {
        Self::new(clients, settings.queue_urls.clone(), settings.table.clone())
    }

    /// The DLQ of `source` (a queue name from the settings), or `None` without a redrive policy.
    pub async fn binding(&self, source: &str) -> PortResult<Option<DlqBinding>> {
        let source_url = self.queue_urls.get(source).ok_or_else(|| {
            PortError::NotFound(format!(
                "no queue named {source:?} (have: {:?})",
                self.queue_urls.keys()
            ))
        })?;
        let what = format!("sqs redrive policy of {source}");
        let attrs = retry_transient(&what, || async {
            self.sqs
                .get_queue_attributes()
                .queue_url(source_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .attribute_names(QueueAttributeName::RedrivePolicy)
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        let attrs = attrs.attributes().cloned().unwrap_or_default();
        let Some(policy) = attrs.get(&QueueAttributeName::RedrivePolicy) else {
            return Ok(None);
        };
        let (dlq_arn, max_receive_count) = parse_redrive_policy(policy).ok_or_else(|| {
            PortError::Permanent(format!("{what}: unreadable RedrivePolicy {policy}"))
        })?;
        let (account, dlq_name) = arn_account_and_name(&dlq_arn).ok_or_else(|| {
            PortError::Permanent(format!("{what}: bad deadLetterTargetArn {dlq_arn}"))
        })?;
        let what = format!("sqs url of dead-letter queue {dlq_name}");
        let dlq_url = retry_transient(&what, || async {
            self.sqs
                .get_queue_url()
                .queue_name(dlq_name)
                .queue_owner_aws_account_id(account)
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_string();
        Ok(Some(DlqBinding {
            source_url: source_url.clone(),
            source_arn: attrs
                .get(&QueueAttributeName::QueueArn)
                .cloned()
                .unwrap_or_default(),
            dlq_url,
            dlq_arn,
            max_receive_count,
        }))
    }

    async fn dlq_of(&self, source: &str) -> PortResult<DlqBinding> {
        self.binding(source).await?.ok_or_else(|| {
            PortError::NotFound(format!(
                "queue {source:?} has no dead-letter queue (no RedrivePolicy)"
            ))
        })
    }

    /// Messages held by a queue: visible plus in flight (a peek makes messages briefly in flight).
    async fn depth(&self, url: &str) -> PortResult<u64> {
        let what = format!("sqs depth of {url}");
        let out = retry_transient(&what, || async {
            self.sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        let n = |k: QueueAttributeName| {
            attrs
                .get(&k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Failure records for these message ids (BatchGetItem, 100 keys per call).
    async fn reasons(&self, ids: &[String]) -> PortResult<HashMap<String, String>> {
        let mut reasons = HashMap::new();
        for chunk in ids.chunks(100) {
            let keys = chunk
                .iter()
                .map(|id| HashMap::from([("pk".to_string(), AttributeValue::S(failure_key(id)))]))
                .collect::<Vec<_>>();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("pk, reason")
                    .build()
                    .map_err(|e| PortError::Permanent(format!("failure lookup: {e}")))?,
            );
            let mut delays = backoff().build();
            while let Some(keys) = request.take() {
                let out = retry_transient("dynamodb failure lookup", || async {
                    self.dynamodb
                        .batch_get_item()
                        .request_items(&self.failure_table, keys.clone())
                        .send()
                        .await
                        .map_err(|e| port_error("dynamodb failure lookup", e))
                })
                .await?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.failure_table))
                    .into_iter()
                    .flatten()
                {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(reason))) =
                        (item.get("pk"), item.get("reason"))
                    {
                        if let Some(id) = pk.strip_prefix("failure#") {
                            reasons.insert(id.to_string(), reason.clone());
                        }
                    }
                }
                // Throttled keys come back as unprocessed: ask again, briefly.
                request = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.failure_table))
                    .cloned();
                if request.is_some() {
                    match delays.next() {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => break,
                    }
                }
            }
        }
        Ok(reasons)
    }
}

/// `deadLetterTargetArn` and `maxReceiveCount` (a string or a number) of a RedrivePolicy.
pub fn parse_redrive_policy(policy: &str) -> Option<(String, Option<u32>)> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    let arn = v.get("deadLetterTargetArn")?.as_str()?.to_string();
    let max = match v.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| n as u32),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Some((arn, max))
}

/// Account id and resource name of `arn:aws:sqs:<region>:<account>:<name>`.
pub fn arn_account_and_name(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, _, _, account, name] if !name.is_empty() => Some((account, name)),
        _ => None,
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn counts(&self) -> PortResult<Vec<(String, u64)>> {
        let mut counts = Vec::new();
        for name in self.queue_urls.keys() {
            if let Some(binding) = self.binding(name).await? {
                counts.push((name.clone(), self.depth(&binding.dlq_url).await?));
            }
        }
        Ok(counts)
    }

    /// A **peek**: messages are received with visibility timeout 0, so they stay available to
    /// replay and to other readers, but each peek raises their `ApproximateReceiveCount`. SQS
    /// returns a sample per receive; up to `limit` distinct messages are collected over a few
    /// rounds, so a large DLQ may show a different subset each time. `dead_lettered_at_ms` is
    /// not known on SQS (no attribute records the move) and stays `None`.
    async fn list(&self, source_queue: &str, limit: usize) -> PortResult<Vec<DeadLetter>> {
        let binding = self.dlq_of(source_queue).await?;
        let mut seen = HashSet::new();
        let mut letters = Vec::new();
        let mut idle_rounds = 0;
        for _round in 0..20 {
            if letters.len() >= limit || idle_rounds >= 3 {
                break;
            }
            let what = format!("sqs peek dead letters of {source_queue}");
            let out = retry_transient(&what, || async {
                self.sqs
                    .receive_message()
                    .queue_url(&binding.dlq_url)
                    .max_number_of_messages((limit - letters.len()).clamp(1, MAX_BATCH) as i32)
                    .visibility_timeout(0)
                    .wait_time_seconds(if letters.is_empty() { 1 } else { 0 })
                    .message_system_attribute_names(
                        MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .send()
                    .await
                    .map_err(|e| port_error(&what, e))
            })
            .await?;
            let before = letters.len();
            for m in out.messages() {
                let Some(id) = m.message_id() else { continue };
                if letters.len() < limit && seen.insert(id.to_string()) {
                    letters.push(DeadLetter {
                        message_id: id.to_string(),
                        body: m.body().unwrap_or_default().to_string(),
                        receive_count: receive_count(m.attributes()),
                        reason: None,
                        dead_lettered_at_ms: None,
                    });
                }
            }
            idle_rounds = if letters.len() == before {
                idle_rounds + 1
            } else {
                0
            };
        }
        let ids: Vec<String> = letters.iter().map(|l| l.message_id.clone()).collect();
        let reasons = self.reasons(&ids).await?;
        for letter in &mut letters {
            letter.reason = reasons.get(&letter.message_id).cloned();
        }
        Ok(letters)
    }

    /// Starts an SQS message move task (DLQ → source queue) and returns how many messages the
    /// DLQ held when it started; the move itself proceeds asynchronously on the SQS side.
    async fn replay(&self, source_queue: &str) -> PortResult<u64> {
        let binding = self.dlq_of(source_queue).await?;
        let count = self.depth(&binding.dlq_url).await?;
        if count == 0 {
            return Ok(0);
        }
        let what = format!("sqs start message move task {source_queue}");
        // Not retried: a second task for the same DLQ is refused while the first runs.
        self.sqs
            .start_message_move_task()
            .source_arn(&binding.dlq_arn)
            .destination_arn(&binding.source_arn)
            .send()
            .await
            .map_err(|e| port_error(&what, e))?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policy_parses_both_number_forms() {
        let p = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:q-dlq","maxReceiveCount":"5"}"#;
        assert_eq!(
            parse_redrive_policy(p),
            Some(("arn:aws:sqs:us-east-1:000000000000:q-dlq".into(), Some(5)))
        );
        let p = r#"{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:1:x","maxReceiveCount":8}"#;
        assert_eq!(parse_redrive_policy(p).unwrap().1, Some(8));
        assert_eq!(parse_redrive_policy("{}"), None);
        assert_eq!(parse_redrive_policy("not json"), None);
    }

    #[test]
    fn arn_parts() {
        assert_eq!(
            arn_account_and_name("arn:aws:sqs:us-east-1:000000000000:q-dlq"),
            Some(("000000000000", "q-dlq"))
        );
        assert_eq!(arn_account_and_name("arn:aws:sqs:us-east-1:1"), None);
    }

    #[test]
    fn excerpt_respects_char_boundaries() {
        assert_eq!(excerpt("héllo", 2), "h");
        assert_eq!(excerpt("héllo", 3), "hé");
        assert_eq!(excerpt("abc", 10), "abc");
    }

    #[test]
    fn stale_receipts_are_recognised() {
        assert!(is_stale_receipt("ReceiptHandleIsInvalid", None));
        assert!(is_stale_receipt("InvalidParameterValue", Some("Value x for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.")));
        assert!(!is_stale_receipt(
            "InvalidParameterValue",
            Some("DelaySeconds too large")
        ));
        assert!(!is_stale_receipt("InternalError", None));
    }
}
