//! Fault injection: decorators around every port, driven by one seeded [`Dice`].
//!
//! Each decorator may, per call:
//! - fail *before* doing anything with `PortError::Transient` (throttling, a 5xx, a timeout);
//! - do the work and then fail (a crash at a step boundary: the effect is durable, the caller
//!   never hears of it): after a state write, a publish, a job submission, a blob write;
//! - deliver twice (the bus and the topic publish a copy; the queue re-sends a message it
//!   handed out, as SQS may);
//! - drop a delete (the message comes back when its visibility expires).
//!
//! The worker handler is wrapped too ([`ChaosHandler`]): a random delay before handling
//! reorders work, and now and then a stall longer than the visibility timeout lets a second
//! consumer receive the same message while the first still holds it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cuepoint_core::asset::{Asset, ProbeInfo};
use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::consumer::{Handler, HandlerError};
use cuepoint_runtime::ports::{
    AnalysisRequest, AssetStore, AssetWrite, BlobMeta, BlobPut, BlobStore, EventBus, PortError,
    PortResult, ProbeError, Prober, Queue, ReceivedMessage, ResultsPage, StoreError, Topic,
    TranscodeRequest, Transcoder, Transcriber, TranscriptionJob, TranscriptionRequest,
    VideoAnalyzer,
};

use crate::rng::Dice;

/// How often each fault happens. Probabilities are per call (or per message for queue faults).
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Any port call fails before doing anything.
    pub transient: f64,
    /// A call that did its work reports an error instead (store commit, blob put, bus put,
    /// topic publish, job submission).
    pub crash_after_effect: f64,
    /// A delete of a handled message is silently dropped.
    pub drop_delete: f64,
    /// The bus or topic publishes a second copy; the queue re-sends a message on its first
    /// receive.
    pub duplicate: f64,
    /// A handler run is delayed by up to `short_delay_max` before it starts (reordering).
    pub short_delay: f64,
    pub short_delay_max: Duration,
    /// A handler run stalls past the visibility timeout before it starts.
    pub stall: f64,
    pub stall_min: Duration,
    pub stall_max: Duration,
    /// A blob write finds the disk full, and every write fails for a window up to
    /// `disk_full_max` (the workers' writes; the operator frees space).
    pub disk_full: f64,
    pub disk_full_max: Duration,
    /// A probe finds ffprobe missing, and every probe fails so for a window up to
    /// `missing_tool_max` (the operator reinstalls FFmpeg).
    pub missing_tool: f64,
    pub missing_tool_max: Duration,
    /// Another process takes the database's write lock every `db_lock_every` (±50%) and holds
    /// it 0.3–2 s, one time in eight past the 10 s busy timeout (embedded target only).
    pub db_lock_every: Option<Duration>,
}

impl FaultPlan {
    /// The default rates: 10% transient errors, 30% duplicates, crashes at every step boundary.
    pub fn standard(visibility: Duration) -> Self {
        Self {
            transient: 0.10,
            crash_after_effect: 0.08,
            drop_delete: 0.08,
            duplicate: 0.30,
            short_delay: 0.30,
            short_delay_max: Duration::from_millis(300),
            stall: 0.03,
            stall_min: visibility + Duration::from_millis(300),
            stall_max: visibility * 2,
            disk_full: 0.002,
            disk_full_max: Duration::from_millis(1500),
            missing_tool: 0.01,
            missing_tool_max: Duration::from_millis(2000),
            db_lock_every: Some(Duration::from_secs(10)),
        }
    }

    /// No faults at all (a baseline run).
    pub fn none() -> Self {
        Self {
            transient: 0.0,
            crash_after_effect: 0.0,
            drop_delete: 0.0,
            duplicate: 0.0,
            short_delay: 0.0,
            short_delay_max: Duration::ZERO,
            stall: 0.0,
            stall_min: Duration::ZERO,
            stall_max: Duration::ZERO,
            disk_full: 0.0,
            disk_full_max: Duration::ZERO,
            missing_tool: 0.0,
            missing_tool_max: Duration::ZERO,
            db_lock_every: None,
        }
    }
}

/// Where a transient error was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Port {
    Store,
    Blobs,
    Bus,
    Topic,
    Queue,
    Transcoder,
    Analyzer,
    Prober,
}

impl Port {
    pub const ALL: [Port; 8] = [
        Self::Store,
        Self::Blobs,
        Self::Bus,
        Self::Topic,
        Self::Queue,
        Self::Transcoder,
        Self::Analyzer,
        Self::Prober,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Blobs => "blobs",
            Self::Bus => "bus",
            Self::Topic => "topic",
            Self::Queue => "queue",
            Self::Transcoder => "transcoder",
            Self::Analyzer => "analyzer",
            Self::Prober => "prober",
        }
    }
}

/// What was injected, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    CrashAfterStateWrite,
    CrashAfterPublish,
    CrashAfterSubmit,
    CrashAfterBlobWrite,
    DeleteDropped,
    DuplicateEvent,
    DuplicateNotification,
    DuplicateMessage,
    HandlerDelay,
    StallPastVisibility,
    DiskFull,
    ToolMissing,
    DatabaseLock,
    DatabaseLockPastBusyTimeout,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Self::CrashAfterStateWrite,
        Self::CrashAfterPublish,
        Self::CrashAfterSubmit,
        Self::CrashAfterBlobWrite,
        Self::DeleteDropped,
        Self::DuplicateEvent,
        Self::DuplicateNotification,
        Self::DuplicateMessage,
        Self::HandlerDelay,
        Self::StallPastVisibility,
        Self::DiskFull,
        Self::ToolMissing,
        Self::DatabaseLock,
        Self::DatabaseLockPastBusyTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CrashAfterStateWrite => "crash after state write",
            Self::CrashAfterPublish => "crash after publish",
            Self::CrashAfterSubmit => "crash after job submission",
            Self::CrashAfterBlobWrite => "crash after blob write",
            Self::DeleteDropped => "delete dropped",
            Self::DuplicateEvent => "duplicate bus event",
            Self::DuplicateNotification => "duplicate topic notification",
            Self::DuplicateMessage => "duplicate queue message",
            Self::HandlerDelay => "handler delay (reordering)",
            Self::StallPastVisibility => "handler stall past visibility",
            Self::DiskFull => "blob write on a full disk",
            Self::ToolMissing => "probe with ffprobe missing",
            Self::DatabaseLock => "database write lock held by another process",
            Self::DatabaseLockPastBusyTimeout => "database lock held past the busy timeout",
        }
    }
}

/// The plan, the dice and the tallies, shared by every decorator.
pub struct Faults {
    pub plan: FaultPlan,
    dice: Dice,
    transient: HashMap<Port, AtomicU64>,
    injected: HashMap<Fault, AtomicU64>,
    /// Handler runs that started while another run of the same message was in progress.
    pub concurrent_runs: AtomicU64,
    /// "Asset Completed" / "Asset Failed" entries the bus accepted, copies included (the
    /// audit queue shows how many reached a consumer).
    pub terminal_publishes: AtomicU64,
    disk_full_until: Mutex<Option<std::time::Instant>>,
    tool_missing_until: Mutex<Option<std::time::Instant>>,
}

impl Faults {
    pub fn new(plan: FaultPlan, dice: Dice) -> Arc<Self> {
        Arc::new(Self {
            plan,
            dice,
            transient: Port::ALL.iter().map(|p| (*p, AtomicU64::new(0))).collect(),
            injected: Fault::ALL.iter().map(|f| (*f, AtomicU64::new(0))).collect(),
            concurrent_runs: AtomicU64::new(0),
            terminal_publishes: AtomicU64::new(0),
            disk_full_until: Mutex::new(None),
            tool_missing_until: Mutex::new(None),
        })
    }

    pub fn dice(&self) -> &Dice {
        &self.dice
    }

    /// Inside a fault window (opening one with probability `p`, up to `max` long)?
    fn in_window(&self, until: &Mutex<Option<std::time::Instant>>, p: f64, max: Duration) -> bool {
        let now = std::time::Instant::now();
        let mut until = until.lock().unwrap_or_else(|e| e.into_inner());
        if until.is_some_and(|u| now < u) {
            return true;
        }
        if self.dice.chance(p) {
            *until = Some(now + self.dice.millis(100, max.as_millis().max(101) as u64));
            return true;
        }
        false
    }

    /// A blob write on a full disk fails as the file system says it.
    fn disk_full(&self, op: &str) -> PortResult<()> {
        let p = &self.plan;
        if self.in_window(&self.disk_full_until, p.disk_full, p.disk_full_max) {
            self.count(Fault::DiskFull);
            return Err(PortError::Transient(format!(
                "injected: {op}: No space left on device (os error 28)"
            )));
        }
        Ok(())
    }

    /// A probe while ffprobe is missing fails as the real prober does (the engine's own error
    /// and its classification).
    fn tool_missing(&self) -> Result<(), ProbeError> {
        let p = &self.plan;
        if self.in_window(&self.tool_missing_until, p.missing_tool, p.missing_tool_max) {
            self.count(Fault::ToolMissing);
            return Err(cuepoint_engine::error::EngineError::ToolMissing {
                tool: "ffprobe",
                looked_for: "not on PATH (injected)".into(),
                env_var: cuepoint_engine::tools::FFPROBE_ENV,
            }
            .into());
        }
        Ok(())
    }

    fn count(&self, f: Fault) {
        self.injected[&f].fetch_add(1, Ordering::Relaxed);
    }

    /// Fail before the call, sometimes.
    fn before(&self, port: Port, op: &str) -> PortResult<()> {
        if self.dice.chance(self.plan.transient) {
            self.transient[&port].fetch_add(1, Ordering::Relaxed);
            return Err(PortError::Transient(format!(
                "injected: {} {op} throttled",
                port.name()
            )));
        }
        Ok(())
    }

    /// Report failure after the effect happened, sometimes.
    fn after(&self, fault: Fault, op: &str) -> PortResult<()> {
        if self.dice.chance(self.plan.crash_after_effect) {
            self.count(fault);
            return Err(PortError::Transient(format!(
                "injected: {} ({op} done, caller told it failed)",
                fault.name()
            )));
        }
        Ok(())
    }

    fn duplicate(&self, fault: Fault) -> bool {
        let dup = self.dice.chance(self.plan.duplicate);
        if dup {
            self.count(fault);
        }
        dup
    }

    pub fn transient_count(&self, port: Port) -> u64 {
        self.transient[&port].load(Ordering::Relaxed)
    }

    pub fn injected_count(&self, fault: Fault) -> u64 {
        self.injected[&fault].load(Ordering::Relaxed)
    }

    /// The delay before a handler run, if any.
    fn handler_delay(&self) -> Option<Duration> {
        let p = &self.plan;
        if self.dice.chance(p.stall) {
            self.count(Fault::StallPastVisibility);
            return Some(self.dice.millis(
                p.stall_min.as_millis() as u64,
                p.stall_max.as_millis() as u64,
            ));
        }
        if self.dice.chance(p.short_delay) {
            self.count(Fault::HandlerDelay);
            return Some(self.dice.millis(1, p.short_delay_max.as_millis() as u64));
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Store

pub struct FaultyStore {
    pub inner: Arc<dyn AssetStore>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl AssetStore for FaultyStore {
    async fn get(&self, id: &AssetId) -> PortResult<Option<Asset>> {
        self.faults.before(Port::Store, "get")?;
        self.inner.get(id).await
    }

    async fn commit(&self, write: AssetWrite) -> Result<(), StoreError> {
        self.faults.before(Port::Store, "commit")?;
        self.inner.commit(write).await?;
        self.faults.after(Fault::CrashAfterStateWrite, "commit")?;
        Ok(())
    }

    async fn list(&self) -> PortResult<Vec<Asset>> {
        self.faults.before(Port::Store, "list")?;
        self.inner.list().await
    }

    async fn counter(&self, name: &str) -> PortResult<i64> {
        self.faults.before(Port::Store, "counter")?;
        self.inner.counter(name).await
    }
}

// ---------------------------------------------------------------------------------------------
// Blobs

pub struct FaultyBlobs {
    pub inner: Arc<dyn BlobStore>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl BlobStore for FaultyBlobs {
    async fn get(&self, uri: &S3Uri) -> PortResult<Option<Vec<u8>>> {
        self.faults.before(Port::Blobs, "get")?;
        self.inner.get(uri).await
    }

    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>, content_type: &str) -> PortResult<()> {
        self.faults.disk_full("put")?;
        self.faults.before(Port::Blobs, "put")?;
        self.inner.put(uri, bytes, content_type).await?;
        self.faults.after(Fault::CrashAfterBlobWrite, "put")
    }

    async fn put_many(&self, objects: Vec<BlobPut>) -> PortResult<()> {
        self.faults.disk_full("put_many")?;
        self.faults.before(Port::Blobs, "put_many")?;
        self.inner.put_many(objects).await?;
        self.faults.after(Fault::CrashAfterBlobWrite, "put_many")
    }

    async fn head(&self, uri: &S3Uri) -> PortResult<Option<BlobMeta>> {
        self.faults.before(Port::Blobs, "head")?;
        self.inner.head(uri).await
    }

    async fn list(&self, prefix: &S3Uri) -> PortResult<Vec<S3Uri>> {
        self.faults.before(Port::Blobs, "list")?;
        self.inner.list(prefix).await
    }

    async fn put_file(
        &self,
        uri: &S3Uri,
        path: &std::path::Path,
        content_type: &str,
    ) -> PortResult<()> {
        self.faults.disk_full("put_file")?;
        self.faults.before(Port::Blobs, "put_file")?;
        self.inner.put_file(uri, path, content_type).await?;
        self.faults.after(Fault::CrashAfterBlobWrite, "put_file")
    }

    async fn readable_location(&self, uri: &S3Uri) -> PortResult<String> {
        self.faults.before(Port::Blobs, "readable_location")?;
        self.inner.readable_location(uri).await
    }

    fn local_path(&self, uri: &S3Uri) -> Option<std::path::PathBuf> {
        self.inner.local_path(uri)
    }
}

// ---------------------------------------------------------------------------------------------
// Bus and topic

pub struct FaultyBus {
    pub inner: Arc<dyn EventBus>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl EventBus for FaultyBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> PortResult<()> {
        self.faults.before(Port::Bus, "put_events")?;
        let terminal = entries
            .iter()
            .filter(|e| e.detail_type == "Asset Completed" || e.detail_type == "Asset Failed")
            .count() as u64;
        self.inner.put_events(entries).await?;
        self.faults
            .terminal_publishes
            .fetch_add(terminal, Ordering::Relaxed);
        if self.faults.duplicate(Fault::DuplicateEvent) {
            // EventBridge is at-least-once: the same entries delivered again.
            self.inner.put_events(entries).await?;
            self.faults
                .terminal_publishes
                .fetch_add(terminal, Ordering::Relaxed);
        }
        self.faults.after(Fault::CrashAfterPublish, "put_events")
    }
}

pub struct FaultyTopic {
    pub inner: Arc<dyn Topic>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Topic for FaultyTopic {
    async fn publish(&self, message: &str) -> PortResult<String> {
        self.faults.before(Port::Topic, "publish")?;
        let id = self.inner.publish(message).await?;
        if self.faults.duplicate(Fault::DuplicateNotification) {
            self.inner.publish(message).await?;
        }
        self.faults.after(Fault::CrashAfterPublish, "publish")?;
        Ok(id)
    }
}

// ---------------------------------------------------------------------------------------------
// Queue

pub struct FaultyQueue {
    pub inner: Arc<dyn Queue>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Queue for FaultyQueue {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        self.faults.before(Port::Queue, "receive")?;
        let got = self.inner.receive(max, wait, visibility).await?;
        for m in &got {
            // Only on a message's first receive, so copies do not breed copies without bound.
            if m.receive_count == 1 && self.faults.duplicate(Fault::DuplicateMessage) {
                // A failed re-send just means no duplicate this time.
                let _ = self.inner.send(&m.body, Duration::ZERO).await;
            }
        }
        Ok(got)
    }

    async fn delete(&self, receipts: &[String]) -> PortResult<()> {
        self.faults.before(Port::Queue, "delete")?;
        let kept: Vec<String> = receipts
            .iter()
            .filter(|_| {
                let drop = self.faults.dice.chance(self.faults.plan.drop_delete);
                if drop {
                    self.faults.count(Fault::DeleteDropped);
                }
                !drop
            })
            .cloned()
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        self.inner.delete(&kept).await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> PortResult<()> {
        self.faults.before(Port::Queue, "change_visibility")?;
        self.inner.change_visibility(receipt, timeout).await
    }

    async fn send(&self, body: &str, delay: Duration) -> PortResult<String> {
        self.faults.before(Port::Queue, "send")?;
        self.inner.send(body, delay).await
    }

    async fn record_failure(&self, message: &ReceivedMessage, reason: &str) -> PortResult<()> {
        self.faults.before(Port::Queue, "record_failure")?;
        self.inner.record_failure(message, reason).await
    }
}

// ---------------------------------------------------------------------------------------------
// Media services

pub struct FaultyTranscoder {
    pub inner: Arc<dyn Transcoder>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Transcoder for FaultyTranscoder {
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String> {
        self.faults.before(Port::Transcoder, "submit")?;
        let id = self.inner.submit(request).await?;
        self.faults.after(Fault::CrashAfterSubmit, "submit")?;
        Ok(id)
    }

    async fn find_job(&self, asset_id: &AssetId) -> PortResult<Option<String>> {
        self.faults.before(Port::Transcoder, "find_job")?;
        self.inner.find_job(asset_id).await
    }

    async fn find_tagged_job(
        &self,
        asset_id: &AssetId,
        key: &str,
        value: &str,
    ) -> PortResult<Option<String>> {
        self.faults.before(Port::Transcoder, "find_tagged_job")?;
        self.inner.find_tagged_job(asset_id, key, value).await
    }
}

pub struct FaultyAnalyzer {
    pub inner: Arc<dyn VideoAnalyzer>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl VideoAnalyzer for FaultyAnalyzer {
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String> {
        self.faults.before(Port::Analyzer, "start")?;
        let id = self.inner.start(request).await?;
        self.faults.after(Fault::CrashAfterSubmit, "start")?;
        Ok(id)
    }

    async fn get_page(
        &self,
        kind: AnalysisKind,
        job_id: &str,
        next_token: Option<&str>,
    ) -> PortResult<ResultsPage> {
        self.faults.before(Port::Analyzer, "get_page")?;
        self.inner.get_page(kind, job_id, next_token).await
    }
}

/// The transcriber shares the analyzer's faults (both are the analysis services).
pub struct FaultyTranscriber {
    pub inner: Arc<dyn Transcriber>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Transcriber for FaultyTranscriber {
    async fn start(&self, request: &TranscriptionRequest) -> PortResult<String> {
        self.faults.before(Port::Analyzer, "start transcription")?;
        let name = self.inner.start(request).await?;
        self.faults
            .after(Fault::CrashAfterSubmit, "start transcription")?;
        Ok(name)
    }

    async fn get(&self, job_name: &str) -> PortResult<TranscriptionJob> {
        self.faults.before(Port::Analyzer, "get transcription")?;
        self.inner.get(job_name).await
    }
}

pub struct FaultyProber {
    pub inner: Arc<dyn Prober>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Prober for FaultyProber {
    async fn probe(&self, location: &str) -> Result<ProbeInfo, ProbeError> {
        self.faults.tool_missing()?;
        self.faults.before(Port::Prober, "probe")?;
        self.inner.probe(location).await
    }
}

// ---------------------------------------------------------------------------------------------
// Handler

/// Wraps a worker's handler: delays (reordering), stalls past the visibility timeout, and
/// notices when two runs of one message overlap.
pub struct ChaosHandler {
    pub inner: Arc<dyn Handler>,
    pub faults: Arc<Faults>,
    running: Mutex<HashMap<String, u32>>,
}

impl ChaosHandler {
    pub fn new(inner: Arc<dyn Handler>, faults: Arc<Faults>) -> Self {
        Self {
            inner,
            faults,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn enter(&self, id: &str) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(id.to_string()).or_insert(0);
        if *n > 0 {
            self.faults.concurrent_runs.fetch_add(1, Ordering::Relaxed);
        }
        *n += 1;
    }

    fn leave(&self, id: &str) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                running.remove(id);
            }
        }
    }
}

#[async_trait]
impl Handler for ChaosHandler {
    async fn handle(&self, message: &ReceivedMessage) -> Result<(), HandlerError> {
        self.enter(&message.message_id);
        if let Some(d) = self.faults.handler_delay() {
            tokio::time::sleep(d).await;
        }
        let result = self.inner.handle(message).await;
        self.leave(&message.message_id);
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Database lock

/// Another process taking the database's write lock now and then (`FaultPlan::db_lock_every`)
/// while the workers run: every write of theirs waits for it, and past the busy timeout fails.
/// Stops when `stop` is set.
pub fn hold_database_locks(
    database: std::path::PathBuf,
    faults: Arc<Faults>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(every) = faults.plan.db_lock_every else {
            return;
        };
        let dice = faults.dice().fork(7);
        let sleep = |d: Duration| {
            let end = std::time::Instant::now() + d;
            while std::time::Instant::now() < end && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let every_ms = every.as_millis() as u64;
        while !stop.load(Ordering::Relaxed) {
            sleep(dice.millis(every_ms / 2, every_ms * 3 / 2));
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Ok(conn) = rusqlite::Connection::open(&database) else {
                continue;
            };
            let _ = conn.busy_timeout(Duration::from_secs(60));
            if conn.execute_batch("BEGIN EXCLUSIVE").is_err() {
                continue;
            }
            let hold = if dice.chance(1.0 / 8.0) {
                faults.count(Fault::DatabaseLockPastBusyTimeout);
                dice.millis(10_500, 12_000)
            } else {
                dice.millis(300, 2000)
            };
            faults.count(Fault::DatabaseLock);
            sleep(hold);
            let _ = conn.execute_batch("COMMIT");
        }
    })
}
