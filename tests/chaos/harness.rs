//! The run itself, independent of the backend: given raw ports and queues ([`Target`]), wrap
//! them in fault decorators, start the real workers on the real consume loop, upload a mix of
//! sources, wait until every asset is terminal and the queues are empty, and judge.
//!
//! A backend provides a [`Target`]; `embedded.rs` builds one over SQLite. Another (LocalStack)
//! needs only its own `Target` constructor.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cuepoint_core::asset::{Asset, AssetState};
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri};
use cuepoint_core::events::s3::{object_created_entry, ObjectCreated};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::config::Settings;
use cuepoint_runtime::consumer::{Consumer, ConsumerStats};
use cuepoint_runtime::metrics::Metrics;
use cuepoint_runtime::ports::{
    AssetStore, BlobStore, Clock, DeadLetters, EventBus, PortResult, Ports, Queue, SystemClock,
    Topic,
};
use cuepoint_workers::context::{RaceStats, WorkerContext, OPEN_JOBS_COUNTER};
use cuepoint_workers::handlers::{WorkerHandler, WorkerKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::engine::{EngineOptions, EngineStats, FastEngine, Outcome, Scenario};
use crate::faults::{
    ChaosHandler, Fault, FaultPlan, Faults, FaultyAnalyzer, FaultyBlobs, FaultyBus, FaultyProber,
    FaultyQueue, FaultyStore, FaultyTopic, FaultyTranscoder, FaultyTranscriber, Port,
};
use crate::figures::{Figures, Problem};
use crate::rng::Dice;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How many messages are still waiting or in flight in the worker queues.
#[async_trait]
pub trait Backlog: Send + Sync {
    async fn messages_left(&self) -> PortResult<u64>;
}

/// A backend under test: raw (fault-free) ports and queues, and its settings.
pub struct Target {
    pub name: String,
    pub settings: Settings,
    pub store: Arc<dyn AssetStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub bus: Arc<dyn EventBus>,
    /// The topic Rekognition notifies.
    pub topic: Arc<dyn Topic>,
    /// The worker queues by name (`ingest`, `media`, `analysis`, `results`, `scoring`).
    pub queues: BTreeMap<String, Arc<dyn Queue>>,
    /// Receives "Asset Completed" / "Asset Failed" through an extra routing rule.
    pub audit: Arc<dyn Queue>,
    pub backlog: Arc<dyn Backlog>,
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// The embedded bus drops a pipeline event whose `eventId` a queue already received; on
    /// EventBridge copies do arrive (consumers dedupe by `eventId`), so there a duplicate
    /// terminal event means a second *distinct* event id.
    pub bus_dedups_pipeline_events: bool,
    /// The SQLite file another process may lock (embedded only).
    pub database: Option<std::path::PathBuf>,
    /// The embedded backend itself (its group-commit figures).
    pub embedded: Option<Arc<cuepoint_embedded::EmbeddedBackend>>,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub assets: usize,
    pub seed: u64,
    pub plan: FaultPlan,
    pub engine: EngineOptions,
    /// Give up (and count the rest as lost) after this long.
    pub timeout: Duration,
    /// After every asset is terminal, how long to wait for the queues to drain.
    pub settle: Duration,
    pub progress: bool,
    /// Uploads in flight at once. One at a time, the burst reaches the open-jobs cap slowly
    /// enough that analyses are rarely held back; many at a time, a fault-free run with the
    /// engine's delays spends most of its time in the cap's retries.
    pub parallel_uploads: usize,
}

/// Consumer settings that make faults bite quickly: a 2 s visibility with a heartbeat slower
/// than it (so a stalled handler loses its message to a second consumer), 1-2 s retries.
pub fn chaos_settings(mut s: Settings) -> Settings {
    s.consumer.batch_size = 10;
    s.consumer.wait_seconds = 1;
    s.consumer.concurrency = 32;
    s.consumer.visibility_seconds = 2;
    s.consumer.heartbeat_seconds = 3;
    s.consumer.retry_base_seconds = 1;
    s.consumer.retry_max_seconds = 2;
    s.consumer.shutdown_grace_seconds = 5;
    // A cap low enough to be hit in a burst (work waits with "Delay"), retried after 2 s.
    s.analysis.max_open_jobs = 400;
    s.analysis.cap_retry_seconds = 2;
    s
}

/// What each asset is meant to be.
struct Expected {
    index: usize,
    scenario: Scenario,
}

/// Terminal events seen on the audit queue, by asset.
#[derive(Default)]
struct AuditBook {
    deliveries: HashMap<String, Vec<(String, String)>>,
    unreadable: u64,
}

impl AuditBook {
    fn record(&mut self, body: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
            self.unreadable += 1;
            return;
        };
        let detail_type = v
            .get("detail-type")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string();
        let asset = v
            .pointer("/detail/assetId")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string();
        let event_id = v
            .pointer("/detail/eventId")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string();
        if asset.is_empty() {
            self.unreadable += 1;
            return;
        }
        self.deliveries
            .entry(asset)
            .or_default()
            .push((detail_type, event_id));
    }
}

async fn drain_audit(
    queue: Arc<dyn Queue>,
    book: Arc<Mutex<AuditBook>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stopping = *stop.borrow();
        let got = queue
            .receive(
                10,
                Duration::from_secs(if stopping { 0 } else { 1 }),
                Duration::from_secs(60),
            )
            .await;
        match got {
            Ok(msgs) if msgs.is_empty() && stopping => return,
            Ok(msgs) => {
                if msgs.is_empty() {
                    continue;
                }
                {
                    let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
                    for m in &msgs {
                        b.record(&m.body);
                    }
                }
                let receipts: Vec<String> = msgs.into_iter().map(|m| m.receipt).collect();
                if let Err(e) = queue.delete(&receipts).await {
                    tracing::warn!(error = %e, "audit queue delete failed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit queue receive failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

fn pick_scenario(dice: &Dice) -> Scenario {
    let r = dice.unit();
    let outcome = if r < 0.75 {
        Outcome::Complete
    } else if r < 0.80 {
        Outcome::LoudnessMissing
    } else if r < 0.85 {
        Outcome::UnusableProbe
    } else if r < 0.90 {
        Outcome::TranscodeError
    } else if r < 0.95 {
        Outcome::AnalysisFailed(
            AnalysisKind::ALL[dice.between(0, AnalysisKind::ALL.len() as u64 - 1) as usize],
        )
    } else {
        Outcome::ScoringError
    };
    let tracks = if dice.chance(0.05) && outcome != Outcome::LoudnessMissing {
        0
    } else {
        dice.between(1, 4) as u32
    };
    Scenario { outcome, tracks }
}

/// Upload one source and announce it the way S3 does (at least once: a failed put is retried,
/// and may have gone out anyway).
async fn upload(
    blobs: Arc<dyn BlobStore>,
    bucket: String,
    bus: Arc<dyn EventBus>,
    key: ObjectKey,
) -> Result<AssetId, BoxError> {
    let bucket = BucketName::parse(bucket)?;
    let uri = S3Uri::new(bucket.clone(), key.clone());
    blobs
        .put(
            &uri,
            format!("chaos source {key}\n").into_bytes(),
            "video/quicktime",
        )
        .await?;
    let head = blobs
        .head(&uri)
        .await?
        .ok_or_else(|| format!("{uri} vanished after upload"))?;
    let mut created = ObjectCreated::new(bucket, key);
    created.size = Some(head.size);
    created.etag = head.etag;
    let id = AssetId::for_source(&created.source_object());
    let entry = object_created_entry(&created, Some(SystemClock.now_ms()));
    let mut tries = 0;
    while let Err(e) = bus.put_events(std::slice::from_ref(&entry)).await {
        tries += 1;
        if tries > 50 {
            return Err(format!("could not announce {uri}: {e}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(id)
}

type UploadResult = Result<Result<(AssetId, usize, Scenario), BoxError>, tokio::task::JoinError>;

fn record_upload(
    done: Option<UploadResult>,
    engine: &FastEngine,
    expected: &mut HashMap<AssetId, Expected>,
) -> Result<(), BoxError> {
    let Some(done) = done else { return Ok(()) };
    let (id, index, scenario) = done??;
    engine.expect(id.clone(), scenario);
    expected.insert(id, Expected { index, scenario });
    Ok(())
}

fn worker_totals(stats: &BTreeMap<WorkerKind, Arc<ConsumerStats>>) -> [u64; 6] {
    let mut t = [0u64; 6];
    for s in stats.values() {
        for (i, v) in s.snapshot().iter().enumerate() {
            t[i] += v;
        }
    }
    t
}

/// Run the chaos test against `target`.
pub async fn run(target: Target, opts: RunOptions) -> Result<Figures, BoxError> {
    let started = Instant::now();
    let cpu_at_start = process_cpu_seconds();
    let dice = Dice::new(opts.seed);
    let faults = Faults::new(opts.plan.clone(), dice.fork(1));
    let stop_locks = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let locker = target
        .database
        .clone()
        .map(|db| crate::faults::hold_database_locks(db, faults.clone(), stop_locks.clone()));
    let bus: Arc<dyn EventBus> = Arc::new(FaultyBus {
        inner: target.bus.clone(),
        faults: faults.clone(),
    });
    let topic: Arc<dyn Topic> = Arc::new(FaultyTopic {
        inner: target.topic.clone(),
        faults: faults.clone(),
    });
    let engine = FastEngine::new(
        target.blobs.clone(),
        bus.clone(),
        topic,
        dice.fork(2),
        opts.engine.clone(),
    );
    let ports = Ports {
        store: Arc::new(FaultyStore {
            inner: target.store.clone(),
            faults: faults.clone(),
        }),
        blobs: Arc::new(FaultyBlobs {
            inner: target.blobs.clone(),
            faults: faults.clone(),
        }),
        bus: bus.clone(),
        prober: Arc::new(FaultyProber {
            inner: engine.prober(),
            faults: faults.clone(),
        }),
        transcoder: Arc::new(FaultyTranscoder {
            inner: engine.transcoder(),
            faults: faults.clone(),
        }),
        analyzer: Arc::new(FaultyAnalyzer {
            inner: engine.analyzer(),
            faults: faults.clone(),
        }),
        transcriber: Arc::new(FaultyTranscriber {
            inner: engine.transcriber(),
            faults: faults.clone(),
        }),
        clock: Arc::new(SystemClock),
    };
    let ctx = WorkerContext::new(ports, target.settings.clone(), Metrics::new("chaos", false))
        .expect("the chaos settings score with a valid configuration");

    // The real workers on the real consume loop, each queue and handler wrapped.
    let (stop, stop_rx) = watch::channel(false);
    let mut workers = JoinSet::new();
    let mut stats = BTreeMap::new();
    for kind in WorkerKind::ALL {
        let raw = target
            .queues
            .get(kind.queue())
            .cloned()
            .ok_or_else(|| format!("target has no {} queue", kind.queue()))?;
        let queue: Arc<dyn Queue> = Arc::new(FaultyQueue {
            inner: raw,
            faults: faults.clone(),
        });
        let handler = Arc::new(ChaosHandler::new(
            Arc::new(WorkerHandler {
                kind,
                ctx: ctx.clone(),
            }),
            faults.clone(),
        ));
        let consumer = Consumer::new(
            kind.queue(),
            queue,
            handler,
            target.settings.consumer.clone(),
        );
        stats.insert(kind, consumer.stats.clone());
        let mut rx = stop_rx.clone();
        workers.spawn(consumer.run(async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }));
    }
    let audit_book = Arc::new(Mutex::new(AuditBook::default()));
    let (audit_stop, audit_stop_rx) = watch::channel(false);
    let audit_task = tokio::spawn(drain_audit(
        target.audit.clone(),
        audit_book.clone(),
        audit_stop_rx,
    ));

    // The uploads: all at once, the burst a bulk ingest makes (`parallel_uploads` at a time).
    let mix = dice.fork(3);
    let mut expected: HashMap<AssetId, Expected> = HashMap::new();
    let mut uploads = JoinSet::new();
    for index in 0..opts.assets {
        let scenario = pick_scenario(&mix);
        let key = ObjectKey::parse(format!("chaos/{}/{}", opts.seed, scenario.file_name(index)))?;
        if uploads.len() >= opts.parallel_uploads.max(1) {
            record_upload(uploads.join_next().await, &engine, &mut expected)?;
        }
        let (blobs, bucket, bus) = (
            target.blobs.clone(),
            target.settings.ingest_bucket.clone(),
            bus.clone(),
        );
        uploads.spawn(async move {
            let id = upload(blobs, bucket, bus, key).await?;
            Ok::<_, BoxError>((id, index, scenario))
        });
    }
    while let Some(done) = uploads.join_next().await {
        record_upload(Some(done), &engine, &mut expected)?;
    }
    if opts.progress {
        eprintln!(
            "[chaos {:>6.1}s] {} sources uploaded",
            started.elapsed().as_secs_f64(),
            opts.assets
        );
    }

    // Wait for every asset to be terminal and the queues and engine to go quiet.
    let mut all_terminal_since: Option<Instant> = None;
    let mut quiet_ticks = 0;
    let mut last_progress = Instant::now();
    let mut timed_out = false;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let terminal = match target.store.list().await {
            Ok(list) => list
                .iter()
                .filter(|a| expected.contains_key(&a.id) && a.state.is_terminal())
                .count(),
            Err(e) => {
                tracing::warn!(error = %e, "listing assets failed");
                continue;
            }
        };
        let backlog = target.backlog.messages_left().await.unwrap_or(u64::MAX);
        let pending = engine.stats().pending;
        if opts.progress && last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            let t = worker_totals(&stats);
            eprintln!(
                "[chaos {:>6.1}s] terminal {terminal}/{}  queued {backlog}  engine jobs running {pending}  handled {}  retried {}",
                started.elapsed().as_secs_f64(),
                opts.assets,
                t[1],
                t[2]
            );
        }
        if terminal == opts.assets {
            let since = *all_terminal_since.get_or_insert_with(Instant::now);
            if backlog == 0 && pending == 0 {
                quiet_ticks += 1;
                if quiet_ticks >= 2 {
                    break;
                }
            } else {
                quiet_ticks = 0;
            }
            if since.elapsed() > opts.settle {
                break;
            }
        }
        if started.elapsed() > opts.timeout {
            timed_out = true;
            break;
        }
    }
    let _ = stop.send(true);
    while workers.join_next().await.is_some() {}
    stop_locks.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(l) = locker {
        let _ = tokio::task::spawn_blocking(move || l.join()).await;
    }
    let _ = audit_stop.send(true);
    let _ = audit_task.await;

    judge(
        &target,
        &engine,
        &faults,
        &stats,
        &ctx.races,
        &audit_book,
        &expected,
        (started, cpu_at_start),
        timed_out,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn judge(
    target: &Target,
    engine: &FastEngine,
    faults: &Faults,
    stats: &BTreeMap<WorkerKind, Arc<ConsumerStats>>,
    races: &RaceStats,
    audit: &Mutex<AuditBook>,
    expected: &HashMap<AssetId, Expected>,
    (started, cpu_at_start): (Instant, Option<f64>),
    timed_out: bool,
) -> Result<Figures, BoxError> {
    let records: HashMap<AssetId, Asset> = target
        .store
        .list()
        .await?
        .into_iter()
        .filter(|a| expected.contains_key(&a.id))
        .map(|a| (a.id.clone(), a))
        .collect();
    // The audit drain has stopped: take its book out of the lock.
    let audit = std::mem::take(&mut *audit.lock().unwrap_or_else(|p| p.into_inner()));
    let mut f = Figures {
        assets: expected.len() as u64,
        timed_out,
        ..Figures::default()
    };
    let mut ids: Vec<(&AssetId, &Expected)> = expected.iter().collect();
    ids.sort_by_key(|(_, e)| e.index);
    for (id, exp) in ids {
        let want_stage = exp.scenario.expected_failure_stage();
        let problem = |what: String| Problem {
            asset: id.to_string(),
            source_index: exp.index,
            what,
        };
        let Some(a) = records.get(id) else {
            f.lost += 1;
            f.problems.push(problem("never registered".into()));
            continue;
        };
        match (a.state, &want_stage) {
            (AssetState::Complete, None) => {
                let vmap_ok = match &a.results.vmap {
                    Some(v) => target.blobs.head(v).await.ok().flatten().is_some(),
                    None => false,
                };
                if vmap_ok {
                    f.completed += 1;
                } else {
                    f.failed_unexpectedly += 1;
                    f.problems
                        .push(problem("COMPLETE but its VMAP is missing".into()));
                }
            }
            (AssetState::Failed, Some(stage))
                if a.failure.as_ref().is_some_and(|x| &x.stage == stage) =>
            {
                f.failed_as_expected += 1;
            }
            (s, want) if s.is_terminal() => {
                f.failed_unexpectedly += 1;
                let got = a
                    .failure
                    .as_ref()
                    .map(|x| format!("FAILED at {}: {}", x.stage, x.reason))
                    .unwrap_or_else(|| s.to_string());
                let want = want
                    .as_ref()
                    .map(|w| format!("FAILED at {w}"))
                    .unwrap_or_else(|| "COMPLETE".into());
                f.problems
                    .push(problem(format!("ended {got}; expected {want}")));
            }
            (s, _) => {
                f.lost += 1;
                f.problems.push(problem(format!("still {s} at the end")));
            }
        }
        // Terminal events: exactly one per terminal asset, of the right kind.
        let seen = audit
            .deliveries
            .get(id.as_str())
            .cloned()
            .unwrap_or_default();
        let copies = if target.bus_dedups_pipeline_events {
            seen.len()
        } else {
            let mut ids: Vec<&str> = seen.iter().map(|(_, e)| e.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        };
        if copies > 1 {
            f.duplicate_terminal_events += copies as u64 - 1;
            f.problems
                .push(problem(format!("terminal events {seen:?}")));
        }
        if a.state.is_terminal() {
            let want_type = if a.state == AssetState::Complete {
                "Asset Completed"
            } else {
                "Asset Failed"
            };
            if seen.is_empty() {
                f.missing_terminal_events += 1;
                let how = a
                    .failure
                    .as_ref()
                    .map(|x| format!(" (FAILED at {})", x.stage))
                    .unwrap_or_default();
                f.problems.push(problem(format!(
                    "{}{how}, but no \"{want_type}\" event was ever published",
                    a.state
                )));
            } else if seen.iter().any(|(t, _)| t != want_type) {
                f.wrong_terminal_events += 1;
                f.problems.push(problem(format!(
                    "record is {} but terminal events are {seen:?}",
                    a.state
                )));
            }
        }
    }
    f.unreadable_audit_messages = audit.unreadable;
    f.open_analyzer_jobs_left = target.store.counter(OPEN_JOBS_COUNTER).await?;
    if let Some(dl) = &target.dead_letters {
        f.dead_lettered = dl.counts().await?.iter().map(|(_, n)| n).sum();
    }
    f.messages_left = target.backlog.messages_left().await.unwrap_or(0);

    let e: EngineStats = engine.stats();
    f.duplicate_transcoder_jobs = e.duplicate_transcoder_jobs;
    f.duplicate_analyzer_jobs = e.duplicate_analyzer_jobs;
    for d in engine.assets_with_duplicate_jobs() {
        f.problems.push(Problem {
            asset: d.split(':').next().unwrap_or_default().to_string(),
            source_index: usize::MAX,
            what: d,
        });
    }
    f.engine = e;
    let t = worker_totals(stats);
    f.messages_received = t[0];
    f.messages_handled = t[1];
    f.handler_transient = t[2];
    f.handler_permanent = t[3];
    f.handler_delayed = t[4];
    f.races_reapplied = races.reapplied.load(Ordering::Relaxed);
    f.races_left_to_backoff = races.exhausted.load(Ordering::Relaxed);
    f.early_waited = races.early_waited.load(Ordering::Relaxed);
    f.transient_by_port = Port::ALL
        .iter()
        .map(|p| (p.name(), faults.transient_count(*p)))
        .collect();
    f.injected = Fault::ALL
        .iter()
        .map(|k| (k.name(), faults.injected_count(*k)))
        .collect();
    f.concurrent_runs = faults.concurrent_runs.load(Ordering::Relaxed);
    f.terminal_publishes = faults.terminal_publishes.load(Ordering::Relaxed);
    f.terminal_deliveries = audit.deliveries.values().map(|v| v.len() as u64).sum();
    f.wall = started.elapsed();
    f.cpu_seconds = process_cpu_seconds()
        .zip(cpu_at_start)
        .map(|(end, start)| end - start);
    Ok(f)
}

/// CPU seconds (user + system) this process has used so far (`None` without `/proc`).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // utime and stime: fields 14 and 15, the 12th and 13th after the command name.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in USER_HZ, 100 on every mainstream architecture.
    Some(ticks / 100.0)
}
