//! The one consume loop every worker runs.
//!
//! Long polling in batches, bounded concurrency, a visibility heartbeat while a handler runs,
//! batched deletes, retry with exponential backoff and jitter for transient failures, poison
//! messages left to the queue's redrive policy with their reason recorded, and graceful
//! shutdown: stop receiving, let in-flight handlers finish (up to a grace period), release what
//! is left, flush deletes, return.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::ConsumerSettings;
use crate::metrics::Metrics;
use crate::ports::{PortError, Queue, ReceivedMessage};

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (a port was unavailable, a race was lost, an event arrived early).
    #[error("transient: {0}")]
    Transient(String),
    /// The message can never be handled: recorded, then left for the redrive policy (DLQ).
    #[error("permanent: {0}")]
    Permanent(String),
    /// Not a failure: the work must wait (e.g. the open-job cap). The message is re-sent with a
    /// delay and the original deleted, so waiting does not count toward the receive limit.
    #[error("delayed {after:?}: {reason}")]
    Delay { after: Duration, reason: String },
}

impl From<PortError> for HandlerError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Transient(m) => HandlerError::Transient(m),
            PortError::Permanent(m) => HandlerError::Permanent(m),
            not_found @ PortError::NotFound(_) => HandlerError::Permanent(not_found.to_string()),
        }
    }
}

/// A worker's logic for one message.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, message: &ReceivedMessage) -> Result<(), HandlerError>;
}

/// Counters a caller can read while (and after) the loop runs.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub received: AtomicU64,
    pub handled: AtomicU64,
    pub transient: AtomicU64,
    pub permanent: AtomicU64,
    pub delayed: AtomicU64,
    pub released_on_shutdown: AtomicU64,
    /// From a message's sending (an event's publication) to its handler starting, first
    /// deliveries only (a retry's wait is its backoff, not the hop).
    pub hops: HopLatencies,
}

/// Hop latencies in whole milliseconds: a count per millisecond up to `HOP_RANGE_MS`, longer
/// ones in the last bucket (fixed memory however long a worker runs).
#[derive(Debug)]
pub struct HopLatencies {
    buckets: Vec<AtomicU64>,
}

/// Hops longer than this are counted as this long.
pub const HOP_RANGE_MS: u64 = 2_000;

impl Default for HopLatencies {
    fn default() -> Self {
        Self {
            buckets: (0..=HOP_RANGE_MS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl HopLatencies {
    pub fn record(&self, ms: u64) {
        self.buckets[ms.min(HOP_RANGE_MS) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts per millisecond (index = ms), the last one "at least `HOP_RANGE_MS`".
    pub fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

/// The `q` quantile (0..=1) of per-millisecond counts, possibly summed over several workers:
/// the smallest ms with at least that share of the hops at or below it.
pub fn hop_quantile(counts: &[u64], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let want = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (ms, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= want {
            return Some(ms as u64);
        }
    }
    Some(HOP_RANGE_MS)
}

impl ConsumerStats {
    pub fn snapshot(&self) -> [u64; 6] {
        [
            self.received.load(Ordering::Relaxed),
            self.handled.load(Ordering::Relaxed),
            self.transient.load(Ordering::Relaxed),
            self.permanent.load(Ordering::Relaxed),
            self.delayed.load(Ordering::Relaxed),
            self.released_on_shutdown.load(Ordering::Relaxed),
        ]
    }
}

pub struct Consumer {
    pub worker: String,
    pub queue: Arc<dyn Queue>,
    pub handler: Arc<dyn Handler>,
    pub settings: ConsumerSettings,
    pub stats: Arc<ConsumerStats>,
    pub metrics: Metrics,
}

impl Consumer {
    pub fn new(
        worker: impl Into<String>,
        queue: Arc<dyn Queue>,
        handler: Arc<dyn Handler>,
        settings: ConsumerSettings,
    ) -> Self {
        let worker = worker.into();
        Self {
            metrics: Metrics::new(&worker, false),
            worker,
            queue,
            handler,
            settings,
            stats: Arc::new(ConsumerStats::default()),
        }
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Run until `shutdown` resolves, then drain.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let s = self.settings.clone();
        let limit = Arc::new(Semaphore::new(s.concurrency.max(1)));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<String>();
        let deleter = tokio::spawn(delete_batches(self.queue.clone(), done_rx));
        let mut tasks: JoinSet<()> = JoinSet::new();
        // Receipts of messages whose handler is still running: released at once if the grace
        // period runs out, so another consumer picks them up without waiting for visibility.
        let in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
        tokio::pin!(shutdown);
        let mut receive_backoff = Duration::from_millis(200);

        loop {
            // Reap finished tasks so the JoinSet does not grow without bound.
            while tasks.try_join_next().is_some() {}
            // Wait for a free slot (or shutdown) before asking for more work.
            let free = tokio::select! {
                _ = &mut shutdown => break,
                p = limit.clone().acquire_many_owned(1) => p,
            };
            drop(free);
            let room = limit.available_permits().min(s.batch_size.max(1));
            let received = tokio::select! {
                _ = &mut shutdown => break,
                r = self.queue.receive(room, Duration::from_secs(s.wait_seconds), Duration::from_secs(s.visibility_seconds)) => r,
            };
            let messages = match received {
                Ok(m) => {
                    receive_backoff = Duration::from_millis(200);
                    m
                }
                Err(e) => {
                    tracing::warn!(worker = %self.worker, queue = self.queue.name(), error = %e, "receive failed; backing off");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(jitter(receive_backoff)) => {}
                    }
                    receive_backoff = (receive_backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            for message in messages {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                let permit = limit
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed");
                let job = MessageJob {
                    worker: self.worker.clone(),
                    queue: self.queue.clone(),
                    handler: self.handler.clone(),
                    settings: s.clone(),
                    stats: self.stats.clone(),
                    metrics: self.metrics.clone(),
                    done: done_tx.clone(),
                };
                let span = tracing::info_span!(
                    "message",
                    worker = %self.worker,
                    message_id = %message.message_id,
                    receive_count = message.receive_count,
                    asset_id = tracing::field::Empty,
                    event_id = tracing::field::Empty,
                );
                let receipt = message.receipt.clone();
                in_flight
                    .lock()
                    .expect("in-flight lock")
                    .insert(receipt.clone());
                let in_flight = in_flight.clone();
                tasks.spawn(
                    async move {
                        job.process(message).await;
                        in_flight.lock().expect("in-flight lock").remove(&receipt);
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
        }

        // Shutdown: no more receives. Give in-flight handlers the grace period.
        tracing::info!(worker = %self.worker, in_flight = tasks.len(), "shutting down: draining in-flight messages");
        let grace = Duration::from_secs(s.shutdown_grace_seconds);
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            // Handlers still running hold messages: stop them (their heartbeats stop too) and
            // release their messages for another consumer. Handlers are idempotent, so work
            // they did before the abort is recognised when the message comes back.
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            let abandoned: Vec<String> =
                in_flight.lock().expect("in-flight lock").drain().collect();
            self.stats
                .released_on_shutdown
                .fetch_add(abandoned.len() as u64, Ordering::Relaxed);
            tracing::warn!(worker = %self.worker, n = abandoned.len(), "grace period over: in-flight handlers stopped, their messages released");
            for receipt in abandoned {
                if let Err(e) = self.queue.change_visibility(&receipt, Duration::ZERO).await {
                    tracing::warn!(error = %e, "could not release a message; it reappears when its visibility expires");
                }
            }
        }
        drop(done_tx);
        let _ = deleter.await;
        tracing::info!(worker = %self.worker, "stopped");
    }
}

struct MessageJob {
    worker: String,
    queue: Arc<dyn Queue>,
    handler: Arc<dyn Handler>,
    settings: ConsumerSettings,
    stats: Arc<ConsumerStats>,
    metrics: Metrics,
    done: mpsc::UnboundedSender<String>,
}

impl MessageJob {
    async fn process(self, message: ReceivedMessage) {
        let started = Instant::now();
        if let (1, Some(sent)) = (message.receive_count, message.sent_at_ms) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(sent);
            let hop = now.saturating_sub(sent);
            self.stats.hops.record(hop);
            self.metrics.hop(hop);
        }
        let heartbeat = spawn_heartbeat(&self.queue, &message.receipt, &self.settings);
        let result = self.handler.handle(&message).await;
        heartbeat.abort();
        let latency = started.elapsed();
        match result {
            Ok(()) => {
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                self.metrics.handled(latency);
                tracing::debug!(ms = latency.as_millis() as u64, "handled");
                let _ = self.done.send(message.receipt.clone());
            }
            Err(HandlerError::Transient(reason)) => {
                self.stats.transient.fetch_add(1, Ordering::Relaxed);
                self.metrics.failed(latency, "transient");
                let delay = retry_delay(&self.settings, message.receive_count);
                tracing::warn!(%reason, retry_in_s = delay.as_secs_f64(), "transient failure; will retry");
                // The last reason goes with the message: if retries run out (a fault nobody
                // fixed, such as a missing tool), the dead letter says why.
                if let Err(e) = self.queue.record_failure(&message, &reason).await {
                    tracing::debug!(error = %e, "could not record the failure reason");
                }
                if let Err(e) = self.queue.change_visibility(&message.receipt, delay).await {
                    tracing::warn!(error = %e, "could not set retry delay; message reappears when its visibility expires");
                }
            }
            Err(HandlerError::Permanent(reason)) => {
                self.stats.permanent.fetch_add(1, Ordering::Relaxed);
                self.metrics.failed(latency, "permanent");
                tracing::error!(%reason, worker = %self.worker, "poison message: left for the redrive policy");
                if let Err(e) = self.queue.record_failure(&message, &reason).await {
                    tracing::warn!(error = %e, "could not record the failure reason");
                }
                // Release at once: each receive counts toward maxReceiveCount, then the DLQ.
                let _ = self
                    .queue
                    .change_visibility(&message.receipt, Duration::ZERO)
                    .await;
            }
            Err(HandlerError::Delay { after, reason }) => {
                self.stats.delayed.fetch_add(1, Ordering::Relaxed);
                let after = after.min(Duration::from_secs(900));
                tracing::info!(%reason, delay_s = after.as_secs(), "work delayed");
                match self.queue.send(&message.body, after).await {
                    Ok(_) => {
                        let _ = self.done.send(message.receipt.clone());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not re-send delayed message; retrying by visibility");
                        let _ = self.queue.change_visibility(&message.receipt, after).await;
                    }
                }
            }
        }
    }
}

fn spawn_heartbeat(
    queue: &Arc<dyn Queue>,
    receipt: &str,
    s: &ConsumerSettings,
) -> tokio::task::JoinHandle<()> {
    let queue = queue.clone();
    let receipt = receipt.to_string();
    let every = Duration::from_secs(s.heartbeat_seconds.max(1));
    let extend = Duration::from_secs(s.visibility_seconds.max(s.heartbeat_seconds * 2));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = queue.change_visibility(&receipt, extend).await {
                tracing::warn!(error = %e, "visibility heartbeat failed");
            }
        }
    })
}

/// Deletes finished messages in batches of up to 10 (the SQS maximum).
async fn delete_batches(queue: Arc<dyn Queue>, mut done: mpsc::UnboundedReceiver<String>) {
    let mut batch = Vec::with_capacity(10);
    loop {
        let first = done.recv().await;
        let Some(first) = first else { break };
        batch.push(first);
        // Gather whatever else is already finished, without waiting.
        while batch.len() < 10 {
            match done.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let deleted = (|| queue.delete(&batch))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_times(5)
                    .with_jitter(),
            )
            .when(PortError::is_transient)
            .await;
        if let Err(e) = deleted {
            // Not fatal: the messages come back and the handlers recognise them as done.
            tracing::warn!(error = %e, n = batch.len(), "delete failed; messages will be redelivered and re-acknowledged");
        }
        batch.clear();
    }
}

/// Exponential backoff by receive count, capped, with full jitter in its upper half.
pub fn retry_delay(s: &ConsumerSettings, receive_count: u32) -> Duration {
    let exp = receive_count.saturating_sub(1).min(16);
    let base = s
        .retry_base_seconds
        .max(1)
        .saturating_mul(1u64 << exp)
        .min(s.retry_max_seconds.max(1));
    jitter(Duration::from_secs(base))
}

/// A duration between d/2 and d.
pub fn jitter(d: Duration) -> Duration {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(nanos / 2..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    /// An in-memory queue with SQS-like visibility, enough to test the loop's decisions.
    #[derive(Default)]
    struct MemQueue {
        inner: Mutex<MemInner>,
    }
    #[derive(Default)]
    struct MemInner {
        ready: VecDeque<(String, String, u32)>,
        in_flight: BTreeMap<String, (String, String, u32)>,
        deleted: Vec<String>,
        failures: Vec<(String, String)>,
        sent: Vec<(String, Duration)>,
        visibility: Vec<(String, Duration)>,
        next: u64,
    }

    #[async_trait]
    impl Queue for MemQueue {
        fn name(&self) -> &str {
            "mem"
        }
        async fn receive(
            &self,
            max: usize,
            _wait: Duration,
            _vis: Duration,
        ) -> Result<Vec<ReceivedMessage>, PortError> {
            let out = {
                let mut g = self.inner.lock().unwrap();
                let mut out = vec![];
                while out.len() < max {
                    let Some((id, body, count)) = g.ready.pop_front() else {
                        break;
                    };
                    g.next += 1;
                    let receipt = format!("r{}", g.next);
                    g.in_flight
                        .insert(receipt.clone(), (id.clone(), body.clone(), count + 1));
                    out.push(ReceivedMessage {
                        message_id: id,
                        receipt,
                        body,
                        receive_count: count + 1,
                        sent_at_ms: None,
                    });
                }
                out
            };
            if out.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(out)
        }
        async fn delete(&self, receipts: &[String]) -> Result<(), PortError> {
            let mut g = self.inner.lock().unwrap();
            for r in receipts {
                if let Some((id, _, _)) = g.in_flight.remove(r) {
                    g.deleted.push(id);
                }
            }
            Ok(())
        }
        async fn change_visibility(
            &self,
            receipt: &str,
            timeout: Duration,
        ) -> Result<(), PortError> {
            let mut g = self.inner.lock().unwrap();
            g.visibility.push((receipt.to_string(), timeout));
            if timeout.is_zero() {
                if let Some(m) = g.in_flight.remove(receipt) {
                    g.ready.push_back(m);
                }
            }
            Ok(())
        }
        async fn send(&self, body: &str, delay: Duration) -> Result<String, PortError> {
            let mut g = self.inner.lock().unwrap();
            g.sent.push((body.to_string(), delay));
            Ok("sent".into())
        }
        async fn record_failure(&self, m: &ReceivedMessage, reason: &str) -> Result<(), PortError> {
            self.inner
                .lock()
                .unwrap()
                .failures
                .push((m.message_id.clone(), reason.to_string()));
            Ok(())
        }
    }

    struct ByBody;
    #[async_trait]
    impl Handler for ByBody {
        async fn handle(&self, m: &ReceivedMessage) -> Result<(), HandlerError> {
            match m.body.as_str() {
                "ok" => Ok(()),
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(())
                }
                "poison" => Err(HandlerError::Permanent("bad json".into())),
                "flaky" => Err(HandlerError::Transient("throttled".into())),
                "wait" => Err(HandlerError::Delay {
                    after: Duration::from_secs(30),
                    reason: "cap".into(),
                }),
                "hang" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(())
                }
                _ => unreachable!(),
            }
        }
    }

    fn settings() -> ConsumerSettings {
        ConsumerSettings {
            wait_seconds: 0,
            heartbeat_seconds: 1,
            shutdown_grace_seconds: 5,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn decisions_per_outcome_and_drain_on_shutdown() {
        let q = Arc::new(MemQueue::default());
        {
            let mut g = q.inner.lock().unwrap();
            for (i, b) in ["ok", "poison", "flaky", "wait", "slow"].iter().enumerate() {
                g.ready.push_back((format!("m{i}"), b.to_string(), 0));
            }
        }
        let consumer = Consumer::new("test", q.clone(), Arc::new(ByBody), settings());
        let stats = consumer.stats.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(consumer.run(async {
            let _ = rx.await;
        }));
        // Let the first batch start, then ask for shutdown while "slow" is in flight.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(()).unwrap();
        run.await.unwrap();

        let g = q.inner.lock().unwrap();
        assert!(g.deleted.contains(&"m0".to_string()), "ok is deleted");
        assert!(
            g.deleted.contains(&"m4".to_string()),
            "in-flight slow message finished and was deleted during drain"
        );
        assert!(
            g.deleted.contains(&"m3".to_string()),
            "delayed message's original is deleted"
        );
        assert_eq!(g.sent, vec![("wait".to_string(), Duration::from_secs(30))]);
        assert!(
            g.failures
                .iter()
                .any(|(id, r)| id == "m1" && r == "bad json"),
            "poison reason recorded"
        );
        assert!(!g.deleted.contains(&"m1".to_string()) && !g.deleted.contains(&"m2".to_string()));
        assert!(stats.permanent.load(Ordering::Relaxed) >= 1);
        assert!(stats.transient.load(Ordering::Relaxed) >= 1);
        // The transient failure was given a non-zero retry delay.
        assert!(g.visibility.iter().any(|(_, d)| !d.is_zero()));
    }

    #[tokio::test]
    async fn handlers_past_the_grace_period_are_stopped_and_their_messages_released() {
        let q = Arc::new(MemQueue::default());
        q.inner
            .lock()
            .unwrap()
            .ready
            .push_back(("m0".into(), "hang".into(), 0));
        let s = ConsumerSettings {
            shutdown_grace_seconds: 1,
            ..settings()
        };
        let consumer = Consumer::new("test", q.clone(), Arc::new(ByBody), s);
        let stats = consumer.stats.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(consumer.run(async {
            let _ = rx.await;
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(()).unwrap();
        let started = std::time::Instant::now();
        run.await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown waits the grace period, not the handler"
        );
        assert_eq!(stats.released_on_shutdown.load(Ordering::Relaxed), 1);
        let g = q.inner.lock().unwrap();
        assert!(
            g.deleted.is_empty(),
            "an unfinished message is never deleted"
        );
        assert_eq!(
            g.ready.front().map(|m| m.0.as_str()),
            Some("m0"),
            "released for the next consumer"
        );
    }

    #[test]
    fn retry_delay_grows_and_caps() {
        let s = ConsumerSettings {
            retry_base_seconds: 2,
            retry_max_seconds: 60,
            ..Default::default()
        };
        let d1 = retry_delay(&s, 1);
        assert!(d1 >= Duration::from_secs(1) && d1 <= Duration::from_secs(2));
        let d4 = retry_delay(&s, 4);
        assert!(d4 >= Duration::from_secs(8) && d4 <= Duration::from_secs(16));
        let d20 = retry_delay(&s, 20);
        assert!(d20 >= Duration::from_secs(30) && d20 <= Duration::from_secs(60));
    }

    #[test]
    fn hop_quantiles_from_per_millisecond_counts() {
        let h = HopLatencies::default();
        for ms in 1..=100 {
            h.record(ms);
        }
        h.record(60_000);
        let counts = h.counts();
        assert_eq!(counts.iter().sum::<u64>(), 101);
        assert_eq!(hop_quantile(&counts, 0.5), Some(51));
        assert_eq!(hop_quantile(&counts, 0.99), Some(100));
        assert_eq!(hop_quantile(&counts, 1.0), Some(HOP_RANGE_MS));
        assert_eq!(hop_quantile(&[0, 0], 0.5), None);
    }
}
