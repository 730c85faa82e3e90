//! The embedded event bus (EventBridge) and notification topics (SNS), routed by
//! `cuepoint_core::routing` (infra/routing.json).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_core::events::pipeline::PIPELINE_SOURCE;
use cuepoint_core::events::rekognition::sns_envelope;
use cuepoint_core::routing::{RoutingDefinition, TopicDef};
use cuepoint_core::timefmt;
use cuepoint_runtime::ports::{Clock, EventBus, PortError, PortResult, Topic};

use crate::db::Db;
use crate::ids;
use crate::queue::{insert_message, Notifiers};

/// One event ready to enqueue: its envelope as JSON, where it goes, its dedup key.
struct Routed {
    body: String,
    targets: Vec<String>,
    dedup_key: Option<String>,
}

/// What one `put_events` call did, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PutOutcome {
    /// Messages enqueued (one per event per target queue).
    pub enqueued: u64,
    /// Copies dropped because their pipeline `eventId` was already delivered to that queue.
    pub duplicates: u64,
    /// Events no rule matched.
    pub unrouted: u64,
}

pub struct SqliteEventBus {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    routing: Arc<RoutingDefinition>,
    account: String,
    region: String,
    notifiers: Arc<Notifiers>,
    unrouted: AtomicU64,
}

impl SqliteEventBus {
    pub(crate) fn new(
        db: Arc<Db>,
        clock: Arc<dyn Clock>,
        routing: Arc<RoutingDefinition>,
        account: String,
        region: String,
        notifiers: Arc<Notifiers>,
    ) -> Self {
        Self {
            db,
            clock,
            routing,
            account,
            region,
            notifiers,
            unrouted: AtomicU64::new(0),
        }
    }

    /// Events published through this bus (this process) that no rule matched.
    pub fn unrouted_count(&self) -> u64 {
        self.unrouted.load(Ordering::Relaxed)
    }

    fn route(&self, entry: &PutEventsEntry, now_ms: u64) -> PortResult<Option<Routed>> {
        let time = timefmt::rfc3339_seconds(entry.time_ms.unwrap_or(now_ms));
        let (source, detail_type) = (entry.source.clone(), entry.detail_type.clone());
        let envelope = entry
            .clone()
            .into_envelope(ids::new_uuid(), &self.account, &self.region, time)
            .map_err(|e| {
                PortError::Permanent(format!(
                    "event {source:?}/{detail_type:?}: detail is not a JSON document: {e}"
                ))
            })?;
        let value = serde_json::to_value(&envelope).map_err(|e| {
            PortError::Permanent(format!(
                "event {source:?}/{detail_type:?} does not serialize: {e}"
            ))
        })?;
        let targets = self.routing.targets(&value);
        if targets.is_empty() {
            self.unrouted.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(source = %source, detail_type = %detail_type, "no rule matches the event");
            return Ok(None);
        }
        // Pipeline events carry a deterministic eventId: a re-announcement is the same event.
        let dedup_key = if source == PIPELINE_SOURCE {
            let key = value
                .pointer("/detail/eventId")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            if key.is_none() {
                tracing::debug!(detail_type = %detail_type, "pipeline event without detail.eventId: not deduplicated");
            }
            key
        } else {
            None
        };
        let body = value.to_string();
        Ok(Some(Routed {
            body,
            targets,
            dedup_key,
        }))
    }

    /// `put_events`, reporting what happened.
    pub async fn put_events_outcome(&self, entries: &[PutEventsEntry]) -> PortResult<PutOutcome> {
        let now = self.clock.now_ms();
        let mut outcome = PutOutcome::default();
        let mut routed = Vec::with_capacity(entries.len());
        for e in entries {
            match self.route(e, now)? {
                Some(r) => routed.push(r),
                None => outcome.unrouted += 1,
            }
        }
        if routed.is_empty() {
            return Ok(outcome);
        }
        let (enqueued, duplicates, touched) = self
            .db
            .write(move |tx| {
                // The whole batch in one transaction: all of it is enqueued or none.
                let (mut enqueued, mut duplicates) = (0u64, 0u64);
                let mut touched: Vec<String> = Vec::new();
                for r in &routed {
                    for q in &r.targets {
                        match insert_message(tx, q, &r.body, now, now, r.dedup_key.as_deref())? {
                            Some(_) => {
                                enqueued += 1;
                                if !touched.contains(q) {
                                    touched.push(q.clone());
                                }
                            }
                            None => duplicates += 1,
                        }
                    }
                }
                Ok::<_, PortError>((enqueued, duplicates, touched))
            })
            .await?;
        for q in &touched {
            self.notifiers.wake(q);
        }
        outcome.enqueued = enqueued;
        outcome.duplicates = duplicates;
        Ok(outcome)
    }
}

#[async_trait]
impl EventBus for SqliteEventBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> PortResult<()> {
        self.put_events_outcome(entries).await.map(|_| ())
    }
}

/// A topic with its queue subscriptions (routing.json `topics`).
pub struct SqliteTopic {
    name: String,
    arn: String,
    subscriptions: Vec<TopicDef>,
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    notifiers: Arc<Notifiers>,
}

impl SqliteTopic {
    pub(crate) fn new(
        name: &str,
        arn: String,
        subscriptions: Vec<TopicDef>,
        db: Arc<Db>,
        clock: Arc<dyn Clock>,
        notifiers: Arc<Notifiers>,
    ) -> Self {
        Self {
            name: name.to_string(),
            arn,
            subscriptions,
            db,
            clock,
            notifiers,
        }
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }
}

#[async_trait]
impl Topic for SqliteTopic {
    /// Deliver `message` to every subscribed queue: wrapped in the SNS notification envelope, or
    /// as is with raw message delivery. Publishing to a topic the routing definition does not
    /// name is `NotFound` (as SNS answers for a missing topic), so a misnamed topic cannot drop
    /// notifications silently.
    async fn publish(&self, message: &str) -> PortResult<String> {
        if self.subscriptions.is_empty() {
            return Err(PortError::NotFound(format!(
                "topic {:?} is not in the routing definition",
                self.name
            )));
        }
        let message_id = ids::new_uuid();
        let now = self.clock.now_ms();
        let wrapped = sns_envelope(
            message,
            &self.arn,
            &message_id,
            &timefmt::rfc3339_millis(now),
        );
        let deliveries: Vec<(String, String)> = self
            .subscriptions
            .iter()
            .map(|s| {
                (
                    s.queue.clone(),
                    if s.raw_message_delivery {
                        message.to_string()
                    } else {
                        wrapped.clone()
                    },
                )
            })
            .collect();
        let queues: Vec<String> = deliveries.iter().map(|(q, _)| q.clone()).collect();
        self.db
            .write(move |tx| {
                for (q, body) in &deliveries {
                    insert_message(tx, q, body, now, now, None)?;
                }
                Ok::<_, PortError>(())
            })
            .await?;
        for q in &queues {
            self.notifiers.wake(q);
        }
        Ok(message_id)
    }
}
