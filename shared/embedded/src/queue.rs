//! SQS-like queues in the `messages` table.
//!
//! - receive: up to `max` visible messages, made invisible for the visibility timeout, with
//!   `receive_count` + 1 and a fresh receipt handle (the previous receipt stops working, as
//!   in SQS: deleting with it is a silent no-op, extending with it is `NotFound`);
//! - redrive: a visible message whose `receive_count` already reached the queue's
//!   `maxReceiveCount` is moved to the queue's dead-letter queue (`<name>-dlq`) instead of being
//!   delivered, keeping the last failure reason recorded for it;
//! - long polling: wait up to `wait` for the first message, polling the database (other
//!   processes) every `poll_interval` and waking at once when this process sends to the queue;
//! - dedup: `send_dedup` accepts a key once per queue, forever;
//! - orphans: a receipt records the process that holds the message (`holder`); when a process
//!   opens the data directory, messages held by processes that no longer exist are made
//!   visible at once (`release_orphans`), so a rerun after `kill -9` does not wait out their
//!   visibility timeout. A live holder keeps its messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cuepoint_runtime::ports::{
    Clock, DeadLetter, DeadLetters, PortError, PortResult, Queue, ReceivedMessage,
};
use rusqlite::{params, Connection};
use tokio::sync::Notify;

use crate::db::{blocking, write_tx, Db, SqlResultExt};
use crate::holder::{self, Liveness, ProcessIdentity};
use crate::ids;

/// The dead-letter queue of `source` (SQS redrive target).
pub fn dead_letter_queue_name(source: &str) -> String {
    format!("{source}-dlq")
}

/// Redrive policy of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    pub max_receive_count: u32,
    pub dead_letter_queue: String,
}

/// In-process wake-ups per queue name: a send in this process wakes its long pollers at once
/// (other processes are seen by polling).
#[derive(Default)]
pub(crate) struct Notifiers {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Notifiers {
    pub(crate) fn get(&self, queue: &str) -> Arc<Notify> {
        let mut map = match self.map.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(map.entry(queue.to_string()).or_default())
    }

    pub(crate) fn wake(&self, queue: &str) {
        self.get(queue).notify_waiters();
    }
}

/// Insert one message; with a dedup key, only if the key is new for this queue. Returns the
/// message id, or `None` for a duplicate.
pub(crate) fn insert_message(
    conn: &Connection,
    queue: &str,
    body: &str,
    now_ms: u64,
    visible_at_ms: u64,
    dedup_key: Option<&str>,
) -> PortResult<Option<String>> {
    let message_id = ids::new_uuid();
    if let Some(key) = dedup_key {
        let fresh = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO message_dedup (queue, dedup_key, message_id, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![queue, key, message_id, now_ms as i64]))
            .sql("insert dedup key")?;
        if fresh == 0 {
            tracing::debug!(queue, dedup_key = key, "duplicate message dropped");
            return Ok(None);
        }
    }
    conn.prepare_cached(
        "INSERT INTO messages (message_id, queue, body, sent_at_ms, visible_at_ms, receive_count) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
    )
    .and_then(|mut st| st.execute(params![message_id, queue, body, now_ms as i64, visible_at_ms as i64]))
    .sql("insert message")?;
    Ok(Some(message_id))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4)
}

/// How many messages a queue holds, by visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Receivable now.
    pub visible: u64,
    /// Received and not yet visible again, or sent with a delay not yet passed.
    pub invisible: u64,
}

/// One named queue in the embedded database.
pub struct SqliteQueue {
    name: String,
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    redrive: Option<Redrive>,
    notifiers: Arc<Notifiers>,
    poll_interval: Duration,
    /// The last receive found messages: the queue is probably busy, so the next one claims
    /// at once instead of first reading whether anything is visible.
    busy: AtomicBool,
}

impl SqliteQueue {
    pub(crate) fn new(
        name: &str,
        db: Arc<Db>,
        clock: Arc<dyn Clock>,
        redrive: Option<Redrive>,
        notifiers: Arc<Notifiers>,
        poll_interval: Duration,
    ) -> Self {
        Self {
            name: name.to_string(),
            db,
            clock,
            redrive,
            notifiers,
            poll_interval,
            busy: AtomicBool::new(false),
        }
    }

    pub fn redrive(&self) -> Option<&Redrive> {
        self.redrive.as_ref()
    }

    /// Send `body` unless a message with `dedup_key` was ever accepted by this queue. Returns
    /// the new message id, or `None` for a duplicate.
    pub async fn send_dedup(&self, body: &str, dedup_key: &str) -> PortResult<Option<String>> {
        let (queue, body, key, now) = (
            self.name.clone(),
            body.to_string(),
            dedup_key.to_string(),
            self.clock.now_ms(),
        );
        let id = self
            .db
            .write(move |tx| {
                let id = insert_message(tx, &queue, &body, now, now, Some(&key))?;
                Ok::<_, PortError>(id)
            })
            .await?;
        if id.is_some() {
            self.notifiers.wake(&self.name);
        }
        Ok(id)
    }

    /// Visible and invisible message counts.
    pub async fn counts(&self) -> PortResult<QueueCounts> {
        let (queue, now) = (self.name.clone(), self.clock.now_ms() as i64);
        blocking(&self.db, move |conn| {
            conn.prepare_cached(
                "SELECT COALESCE(SUM(visible_at_ms <= ?2), 0), COALESCE(SUM(visible_at_ms > ?2), 0) FROM messages WHERE queue = ?1",
            )
            .and_then(|mut st| {
                st.query_row(params![queue, now], |r| {
                    Ok(QueueCounts { visible: r.get::<_, i64>(0)? as u64, invisible: r.get::<_, i64>(1)? as u64 })
                })
            })
            .sql("count messages")
        })
        .await
    }

    /// One receive attempt, no waiting.
    async fn receive_now(
        &self,
        max: usize,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        let queue = self.name.clone();
        let redrive = self.redrive.clone();
        let now = self.clock.now_ms();
        let invisible_until = now.saturating_add(ms(visibility));
        // An empty queue is the common case of a long poll: a read (which never waits for a
        // writer in WAL mode) says so without taking the write lock. A queue that had messages
        // at the last receive is claimed from at once (the look would cost a thread hand-off
        // per receive under load).
        if !self.busy.load(Ordering::Relaxed) {
            let look = queue.clone();
            let ready: bool = blocking(&self.db, move |conn| {
                conn.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND visible_at_ms <= ?2)",
                )
                .and_then(|mut st| st.query_row(params![look, now as i64], |r| r.get(0)))
                .sql("look for visible messages")
            })
            .await?;
            if !ready {
                return Ok(Vec::new());
            }
        }
        let (received, moved) = self
            .db
            .write(move |tx| claim(tx, &queue, redrive.as_ref(), now, invisible_until, max))
            .await?;
        self.busy.store(!received.is_empty(), Ordering::Relaxed);
        if moved > 0 {
            if let Some(r) = &self.redrive {
                tracing::warn!(queue = %self.name, dlq = %r.dead_letter_queue, moved, "messages moved to the dead-letter queue");
                self.notifiers.wake(&r.dead_letter_queue);
            }
        }
        Ok(received)
    }
}

/// Claim up to `max` visible messages inside a write transaction, dead-lettering those that
/// were received too often. Returns the received messages and how many were dead-lettered.
fn claim(
    conn: &Connection,
    queue: &str,
    redrive: Option<&Redrive>,
    now: u64,
    invisible_until: u64,
    max: usize,
) -> PortResult<(Vec<ReceivedMessage>, u64)> {
    let mut out = Vec::new();
    let mut moved = 0u64;
    loop {
        let want = max - out.len();
        if want == 0 {
            break;
        }
        let rows: Vec<(i64, String, String, u32, i64)> = conn
            .prepare_cached(
                "SELECT seq, message_id, body, receive_count, sent_at_ms FROM messages
                 WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY visible_at_ms, seq LIMIT ?3",
            )
            .and_then(|mut st| {
                st.query_map(params![queue, now as i64, want as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .sql("select visible messages")?;
        let fetched = rows.len();
        let mut moved_now = 0;
        for (seq, message_id, body, receive_count, sent_at_ms) in rows {
            if let Some(r) = redrive.filter(|r| receive_count >= r.max_receive_count) {
                conn.prepare_cached(
                    "UPDATE messages SET queue = ?2, source_queue = ?3, dead_lettered_at_ms = ?4, visible_at_ms = ?4,
                     receipt = NULL WHERE seq = ?1",
                )
                .and_then(|mut st| st.execute(params![seq, r.dead_letter_queue, queue, now as i64]))
                .sql("dead-letter message")?;
                moved_now += 1;
                continue;
            }
            let receipt = holder::receipt(ids::new_token());
            let count = receive_count + 1;
            conn.prepare_cached("UPDATE messages SET visible_at_ms = ?2, receive_count = ?3, receipt = ?4 WHERE seq = ?1")
                .and_then(|mut st| st.execute(params![seq, invisible_until as i64, count, receipt]))
                .sql("mark message received")?;
            out.push(ReceivedMessage {
                message_id,
                receipt,
                body,
                receive_count: count,
                sent_at_ms: u64::try_from(sent_at_ms).ok(),
            });
        }
        moved += moved_now;
        // Only dead-lettering can free room for more in the same receive.
        if moved_now == 0 || fetched < want {
            break;
        }
    }
    Ok((out, moved))
}

/// Make visible now every in-flight message whose holder process no longer exists (any
/// queue). Their receipts stop working, as after a visibility timeout; receive counts stay.
/// Returns how many messages were released.
pub(crate) fn release_orphans(conn: &mut Connection, now: u64) -> PortResult<u64> {
    let holders: Vec<String> = conn
        .prepare(
            "SELECT DISTINCT substr(receipt, instr(receipt, '@') + 1) FROM messages
             WHERE receipt IS NOT NULL AND instr(receipt, '@') > 0 AND visible_at_ms > ?1",
        )
        .and_then(|mut st| st.query_map(params![now as i64], |r| r.get(0))?.collect())
        .sql("list message holders")?;
    let gone: Vec<String> = holders
        .into_iter()
        .filter(|h| ProcessIdentity::parse(h).is_some_and(|id| id.liveness() == Liveness::Gone))
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    let tx = write_tx(conn)?;
    let mut released = 0;
    for h in &gone {
        // Checked again inside the write: a message received again since the look has a new
        // receipt (a live holder) and is left alone.
        released += tx
            .prepare_cached(
                "UPDATE messages SET visible_at_ms = ?2, receipt = NULL
                 WHERE receipt IS NOT NULL AND substr(receipt, instr(receipt, '@') + 1) = ?1
                   AND instr(receipt, '@') > 0 AND visible_at_ms > ?2",
            )
            .and_then(|mut st| st.execute(params![h, now as i64]))
            .sql("release orphaned messages")? as u64;
    }
    tx.commit().sql("commit release")?;
    Ok(released)
}

#[async_trait]
impl Queue for SqliteQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = tokio::time::Instant::now() + wait;
        let notify = self.notifiers.get(&self.name);
        loop {
            // Register for the wake-up before looking, so a send between the look and the wait
            // is not missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.receive_now(max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let nap = self.poll_interval.min(deadline - now);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn delete(&self, receipts: &[String]) -> PortResult<()> {
        if receipts.is_empty() {
            return Ok(());
        }
        let (queue, receipts) = (self.name.clone(), receipts.to_vec());
        self.db
            .write(move |tx| {
                for r in &receipts {
                    // A stale or unknown receipt matches nothing: not an error (SQS behaves the same).
                    tx.prepare_cached("DELETE FROM messages WHERE receipt = ?1 AND queue = ?2")
                        .and_then(|mut st| st.execute(params![r, queue]))
                        .sql("delete message")?;
                }
                Ok(())
            })
            .await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> PortResult<()> {
        let (queue, receipt_s) = (self.name.clone(), receipt.to_string());
        let until = self.clock.now_ms().saturating_add(ms(timeout));
        let changed = self
            .db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE messages SET visible_at_ms = ?3 WHERE receipt = ?1 AND queue = ?2",
                    )
                    .and_then(|mut st| st.execute(params![receipt_s, queue, until as i64]))
                    .sql("change visibility")?;
                Ok::<_, PortError>(n)
            })
            .await?;
        if changed == 0 {
            return Err(PortError::NotFound(format!(
                "receipt {receipt} on queue {}: the message was deleted or received again",
                self.name
            )));
        }
        if timeout.is_zero() {
            self.notifiers.wake(&self.name);
        }
        Ok(())
    }

    async fn send(&self, body: &str, delay: Duration) -> PortResult<String> {
        let (queue, body, now) = (self.name.clone(), body.to_string(), self.clock.now_ms());
        let visible_at = now.saturating_add(ms(delay));
        let id = self
            .db
            .write(move |tx| {
                let id = insert_message(tx, &queue, &body, now, visible_at, None)?;
                Ok::<_, PortError>(id)
            })
            .await?
            .ok_or_else(|| {
                PortError::Permanent("message without dedup key reported as duplicate".into())
            })?;
        self.notifiers.wake(&self.name);
        Ok(id)
    }

    async fn record_failure(&self, message: &ReceivedMessage, reason: &str) -> PortResult<()> {
        let (id, reason) = (message.message_id.clone(), reason.to_string());
        let n = self
            .db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("UPDATE messages SET failure_reason = ?2 WHERE message_id = ?1")
                    .and_then(|mut st| st.execute(params![id, reason]))
                    .sql("record failure")?;
                Ok::<_, PortError>(n)
            })
            .await?;
        if n == 0 {
            tracing::debug!(queue = %self.name, message_id = %message.message_id, "failure recorded for a message that is gone");
        }
        Ok(())
    }
}

/// Operator access to the dead-letter queues of the configured queues.
pub struct SqliteDeadLetters {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    /// Source queue → its redrive policy, in routing order.
    sources: Vec<(String, Redrive)>,
    notifiers: Arc<Notifiers>,
}

impl SqliteDeadLetters {
    pub(crate) fn new(
        db: Arc<Db>,
        clock: Arc<dyn Clock>,
        sources: Vec<(String, Redrive)>,
        notifiers: Arc<Notifiers>,
    ) -> Self {
        Self {
            db,
            clock,
            sources,
            notifiers,
        }
    }

    fn dlq_of(&self, source: &str) -> PortResult<String> {
        self.sources
            .iter()
            .find(|(s, _)| s == source)
            .map(|(_, r)| r.dead_letter_queue.clone())
            .ok_or_else(|| {
                PortError::NotFound(format!(
                    "queue {source:?} has no dead-letter queue (not in the routing definition)"
                ))
            })
    }
}

#[async_trait]
impl DeadLetters for SqliteDeadLetters {
    async fn counts(&self) -> PortResult<Vec<(String, u64)>> {
        let sources = self.sources.clone();
        blocking(&self.db, move |conn| {
            let mut out = Vec::with_capacity(sources.len());
            for (source, r) in &sources {
                let n: i64 = conn
                    .prepare_cached("SELECT COUNT(*) FROM messages WHERE queue = ?1")
                    .and_then(|mut st| st.query_row(params![r.dead_letter_queue], |row| row.get(0)))
                    .sql("count dead letters")?;
                out.push((source.clone(), n as u64));
            }
            Ok(out)
        })
        .await
    }

    async fn list(&self, source_queue: &str, limit: usize) -> PortResult<Vec<DeadLetter>> {
        let dlq = self.dlq_of(source_queue)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        blocking(&self.db, move |conn| {
            conn.prepare_cached(
                "SELECT message_id, body, receive_count, failure_reason, dead_lettered_at_ms FROM messages
                 WHERE queue = ?1 ORDER BY dead_lettered_at_ms, seq LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map(params![dlq, limit], |r| {
                    Ok(DeadLetter {
                        message_id: r.get(0)?,
                        body: r.get(1)?,
                        receive_count: r.get(2)?,
                        reason: r.get(3)?,
                        dead_lettered_at_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                    })
                })?
                .collect()
            })
            .sql("list dead letters")
        })
        .await
    }

    async fn replay(&self, source_queue: &str) -> PortResult<u64> {
        let dlq = self.dlq_of(source_queue)?;
        let (source, now) = (source_queue.to_string(), self.clock.now_ms() as i64);
        let moved = self.db.write(move |tx| {
            // A fresh start: receive count and reason reset, as a message moved back by SQS
            // StartMessageMoveTask counts its receives anew.
            let n = tx
                .prepare_cached(
                    "UPDATE messages SET queue = ?2, receive_count = 0, receipt = NULL, visible_at_ms = ?3,
                     failure_reason = NULL, source_queue = NULL, dead_lettered_at_ms = NULL WHERE queue = ?1",
                )
                .and_then(|mut st| st.execute(params![dlq, source, now]))
                .sql("replay dead letters")?;
            Ok::<_, PortError>(n as u64)
        })
        .await?;
        if moved > 0 {
            tracing::info!(queue = source_queue, moved, "dead letters moved back");
            self.notifiers.wake(source_queue);
        }
        Ok(moved)
    }
}
