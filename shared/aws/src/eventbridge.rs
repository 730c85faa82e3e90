//! EventBridge ([`EventBus`]): PutEvents in batches of ten, failed entries retried.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_runtime::config::AwsSettings;
use cuepoint_runtime::ports::{EventBus, PortError, PortResult};

use crate::clients::AwsClients;
use backon::BackoffBuilder;

use crate::error::{backoff, port_error, retry_transient};

/// PutEvents accepts at most ten entries per request.
const MAX_ENTRIES: usize = 10;

#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(clients: &AwsClients, bus_name: impl Into<String>) -> Self {
        Self {
            client: clients.eventbridge.clone(),
            bus_name: bus_name.into(),
        }
    }

    pub fn from_settings(clients: &AwsClients, settings: &AwsSettings) -> Self {
        Self::new(clients, settings.event_bus.clone())
    }

    fn entry(&self, e: &PutEventsEntry) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .source(&e.source)
            .detail_type(&e.detail_type)
            .detail(&e.detail)
            .set_resources((!e.resources.is_empty()).then(|| e.resources.clone()))
            .set_time(e.time_ms.map(|ms| DateTime::from_millis(ms as i64)))
            .event_bus_name(&self.bus_name)
            .build()
    }

    /// Send one batch; returns the entries that failed with a retryable code.
    async fn put_batch(
        &self,
        batch: Vec<PutEventsRequestEntry>,
    ) -> PortResult<Vec<PutEventsRequestEntry>> {
        let what = format!("eventbridge put events on {}", self.bus_name);
        let out = retry_transient(&what, || async {
            self.client
                .put_events()
                .set_entries(Some(batch.clone()))
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        if out.failed_entry_count() == 0 {
            return Ok(Vec::new());
        }
        let mut again = Vec::new();
        // Result entries line up with request entries by position.
        for (sent, result) in batch.into_iter().zip(out.entries()) {
            let Some(code) = result.error_code() else {
                continue;
            };
            if entry_error_is_transient(code) {
                again.push(sent);
            } else {
                return Err(PortError::Permanent(format!(
                    "{what}: entry {} / {} refused: {code} {}",
                    sent.source().unwrap_or(""),
                    sent.detail_type().unwrap_or(""),
                    result.error_message().unwrap_or("")
                )));
            }
        }
        Ok(again)
    }
}

/// Per-entry PutEvents error codes worth another try.
fn entry_error_is_transient(code: &str) -> bool {
    matches!(
        code,
        "InternalFailure" | "InternalException" | "ServiceUnavailable"
    ) || code.starts_with("Throttling")
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> PortResult<()> {
        for chunk in entries.chunks(MAX_ENTRIES) {
            let mut pending: Vec<PutEventsRequestEntry> =
                chunk.iter().map(|e| self.entry(e)).collect();
            let mut delays = backoff().build();
            loop {
                pending = self.put_batch(pending).await?;
                if pending.is_empty() {
                    break;
                }
                match delays.next() {
                    Some(delay) => {
                        tracing::debug!(bus = %self.bus_name, failed = pending.len(), "PutEvents entries failed, retrying");
                        tokio::time::sleep(delay.max(Duration::from_millis(50))).await;
                    }
                    None => {
                        return Err(PortError::Transient(format!(
                            "eventbridge put events on {}: {} entries still failing after retries",
                            self.bus_name,
                            pending.len()
                        )))
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_codes() {
        assert!(entry_error_is_transient("InternalFailure"));
        assert!(entry_error_is_transient("ThrottlingException"));
        assert!(!entry_error_is_transient("MalformedDetail"));
        assert!(!entry_error_is_transient("InvalidArgument"));
    }
}
