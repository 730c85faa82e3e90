//! A whole embedded pipeline in a throw-away directory, every worker running, with hooks for
//! feeding it bad input: raw queue bodies, hand-made events on the bus and the topic, and
//! "held" assets whose MediaConvert or Rekognition jobs are accepted but never run, so a test
//! can play the service's answer (an ERROR, a FAILED notification, a COMPLETE over a bad
//! loudness log) itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cuepoint_core::asset::{Asset, AssetState};
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri};
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_core::events::s3::{object_created_entry, ObjectCreated};
use cuepoint_core::loudness::AudioLayout;
use cuepoint_engine::sample::{generate_sample, SampleSpec};
use cuepoint_runtime::config::Settings;
use cuepoint_runtime::ports::{
    AnalysisRequest, Clock, DeadLetter, PortResult, ResultsPage, SystemClock, TranscodeRequest,
    Transcoder, VideoAnalyzer,
};
use cuepoint_workers::app::{self, RunningWorkers};
use cuepoint_workers::backend::{build_embedded, Backend};
use cuepoint_workers::handlers::WorkerKind;

/// How long any one wait may take before the test fails (a hang is a bug too).
pub const WAIT: Duration = Duration::from_secs(90);

/// Assets whose service jobs are accepted but never run.
#[derive(Default)]
pub struct Holds {
    transcode: Mutex<BTreeSet<AssetId>>,
    analyses: Mutex<BTreeSet<AssetId>>,
    /// (asset, client token) → job id handed out, so a resubmission gets the same job.
    jobs: Mutex<BTreeMap<(String, String), String>>,
}

impl Holds {
    fn job_id(&self, asset: &str, token: &str, make: impl FnOnce() -> String) -> String {
        let mut jobs = self.jobs.lock().expect("holds lock");
        jobs.entry((asset.to_string(), token.to_string()))
            .or_insert_with(make)
            .clone()
    }
}

/// MediaConvert that takes held assets' jobs and never runs them; the rest go to the engine.
struct HoldingTranscoder {
    inner: Arc<dyn Transcoder>,
    holds: Arc<Holds>,
}

#[async_trait]
impl Transcoder for HoldingTranscoder {
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String> {
        if self
            .holds
            .transcode
            .lock()
            .expect("holds lock")
            .contains(&request.asset_id)
        {
            let id = self
                .holds
                .job_id(request.asset_id.as_str(), &request.client_token, || {
                    format!("{}-held", SystemClock.now_ms())
                });
            return Ok(id);
        }
        self.inner.submit(request).await
    }

    async fn find_job(&self, asset_id: &AssetId) -> PortResult<Option<String>> {
        if self
            .holds
            .transcode
            .lock()
            .expect("holds lock")
            .contains(asset_id)
        {
            let jobs = self.holds.jobs.lock().expect("holds lock");
            return Ok(jobs
                .iter()
                .find(|((a, _), _)| a == asset_id.as_str())
                .map(|(_, j)| j.clone()));
        }
        self.inner.find_job(asset_id).await
    }

    async fn find_tagged_job(
        &self,
        asset_id: &AssetId,
        key: &str,
        value: &str,
    ) -> PortResult<Option<String>> {
        self.inner.find_tagged_job(asset_id, key, value).await
    }
}

/// Rekognition that takes held assets' analyses and never runs them.
struct HoldingAnalyzer {
    inner: Arc<dyn VideoAnalyzer>,
    holds: Arc<Holds>,
}

#[async_trait]
impl VideoAnalyzer for HoldingAnalyzer {
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String> {
        let held = AssetId::parse(request.job_tag.clone())
            .map(|id| {
                self.holds
                    .analyses
                    .lock()
                    .expect("holds lock")
                    .contains(&id)
            })
            .unwrap_or(false);
        if held {
            return Ok(self
                .holds
                .job_id(&request.job_tag, &request.client_token, || {
                    format!("held-{}-{}", request.kind, request.job_tag)
                }));
        }
        self.inner.start(request).await
    }

    async fn get_page(
        &self,
        kind: cuepoint_core::rekognition::AnalysisKind,
        job_id: &str,
        next_token: Option<&str>,
    ) -> PortResult<ResultsPage> {
        self.inner.get_page(kind, job_id, next_token).await
    }
}

/// A running embedded pipeline.
pub struct Pipeline {
    /// Everything the test owns: clips, the data directory, and room to check nothing else.
    pub root: tempfile::TempDir,
    pub settings: Settings,
    pub backend: Backend,
    pub holds: Arc<Holds>,
    workers: Option<RunningWorkers>,
}

impl Pipeline {
    /// Start every worker on a fresh data directory `<root>/data`, with fast retries.
    pub async fn start() -> Pipeline {
        let root = tempfile::tempdir().expect("temp dir");
        let mut settings = cuepoint_tests::test_settings(&root.path().join("data"));
        settings.consumer.wait_seconds = 1;
        settings.consumer.retry_base_seconds = 1;
        settings.consumer.retry_max_seconds = 2;
        settings.consumer.shutdown_grace_seconds = 10;
        settings.analysis.max_open_jobs = 1000;
        settings.analysis.cap_retry_seconds = 1;
        let mut backend = build_embedded(&settings, true, Arc::new(SystemClock))
            .await
            .expect("embedded backend");
        let holds = Arc::new(Holds::default());
        let ports = &mut backend.ctx.ports;
        ports.transcoder = Arc::new(HoldingTranscoder {
            inner: ports.transcoder.clone(),
            holds: holds.clone(),
        });
        ports.analyzer = Arc::new(HoldingAnalyzer {
            inner: ports.analyzer.clone(),
            holds: holds.clone(),
        });
        let workers = app::start(&backend.ctx, &WorkerKind::ALL, |q| backend.queue(q), false);
        Pipeline {
            root,
            settings,
            backend,
            holds,
            workers: Some(workers),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }

    pub fn ingest_bucket(&self) -> BucketName {
        BucketName::parse(self.settings.ingest_bucket.clone()).expect("ingest bucket")
    }

    /// Upload `file` to the ingest bucket under `key` (as a client would); S3's event is not sent.
    pub async fn upload(&self, file: &Path, key: &str) -> ObjectCreated {
        let key = ObjectKey::parse(key).expect("key");
        let uri = S3Uri::new(self.ingest_bucket(), key.clone());
        let blobs = &self.backend.ctx.ports.blobs;
        blobs
            .put_file(&uri, file, "application/octet-stream")
            .await
            .expect("upload");
        let head = blobs
            .head(&uri)
            .await
            .expect("head")
            .expect("uploaded object");
        let mut created = ObjectCreated::new(self.ingest_bucket(), key);
        created.size = Some(head.size);
        created.etag = head.etag;
        created
    }

    /// S3's "Object Created" through EventBridge, as `cuepoint run` announces uploads.
    pub async fn announce(&self, created: &ObjectCreated) -> AssetId {
        self.put(object_created_entry(
            created,
            Some(self.backend.ctx.now_ms()),
        ))
        .await;
        AssetId::for_source(&created.source_object())
    }

    pub async fn ingest(&self, file: &Path, key: &str) -> AssetId {
        let created = self.upload(file, key).await;
        self.announce(&created).await
    }

    /// The asset an upload will become, before it is announced (to hold its jobs).
    pub fn asset_id_of(created: &ObjectCreated) -> AssetId {
        AssetId::for_source(&created.source_object())
    }

    pub fn hold_transcode(&self, id: &AssetId) {
        self.holds
            .transcode
            .lock()
            .expect("holds lock")
            .insert(id.clone());
    }

    pub fn hold_analyses(&self, id: &AssetId) {
        self.holds
            .analyses
            .lock()
            .expect("holds lock")
            .insert(id.clone());
    }

    pub async fn put(&self, entry: PutEventsEntry) {
        self.backend
            .bus()
            .put_events(&[entry])
            .await
            .expect("put event");
    }

    /// A raw body straight onto a queue (what a misconfigured producer could send).
    pub async fn send_raw(&self, queue: &str, body: &str) {
        self.backend
            .queue(queue)
            .send(body, Duration::ZERO)
            .await
            .expect("send");
    }

    /// Publish on the topic Rekognition notifies.
    pub async fn publish_rekognition(&self, message: &str) {
        let embedded = self.backend.embedded.as_ref().expect("embedded backend");
        embedded
            .topic("rekognition")
            .publish(message)
            .await
            .expect("publish");
    }

    pub async fn asset(&self, id: &AssetId) -> Option<Asset> {
        self.backend
            .ctx
            .ports
            .store
            .get(id)
            .await
            .expect("store get")
    }

    /// Wait until `id` is in `state` (or terminal, which fails the wait if it is the wrong one).
    pub async fn wait_state(&self, id: &AssetId, state: AssetState) -> Asset {
        let started = Instant::now();
        loop {
            if let Some(a) = self.asset(id).await {
                if a.state == state {
                    return a;
                }
                assert!(
                    !a.state.is_terminal(),
                    "asset {id} ended {} while waiting for {state}: {:?}",
                    a.state,
                    a.failure
                );
            }
            assert!(
                started.elapsed() < WAIT,
                "asset {id} not {state} after {WAIT:?}: {:?}",
                self.asset(id).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until `id` is COMPLETE or FAILED.
    pub async fn wait_terminal(&self, id: &AssetId) -> Asset {
        let started = Instant::now();
        loop {
            if let Some(a) = self.asset(id).await.filter(|a| a.state.is_terminal()) {
                return a;
            }
            assert!(
                started.elapsed() < WAIT,
                "asset {id} not finished after {WAIT:?}: {:?}",
                self.asset(id).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until `id` FAILED; returns (stage, reason).
    pub async fn wait_failed(&self, id: &AssetId) -> (String, String) {
        let a = self.wait_terminal(id).await;
        assert_eq!(
            a.state,
            AssetState::Failed,
            "asset {id} should have failed: {a:?}"
        );
        let f = a.failure.expect("a failed asset records its failure");
        (f.stage.to_string(), f.reason)
    }

    /// Wait until a message whose body contains `marker` is in `queue`'s dead-letter queue.
    pub async fn wait_dead_letter(&self, queue: &str, marker: &str) -> DeadLetter {
        let started = Instant::now();
        loop {
            let letters = self
                .backend
                .dead_letters
                .list(queue, 1000)
                .await
                .expect("list dead letters");
            if let Some(d) = letters.into_iter().find(|d| d.body.contains(marker)) {
                return d;
            }
            assert!(
                started.elapsed() < WAIT,
                "no dead letter containing {marker:?} on {queue} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Dead letters per source queue (only non-empty ones).
    pub async fn dead_letter_counts(&self) -> BTreeMap<String, u64> {
        let counts = self
            .backend
            .dead_letters
            .counts()
            .await
            .expect("dead letter counts");
        counts.into_iter().filter(|(_, n)| *n > 0).collect()
    }

    /// Every queue is empty (nothing retrying, nothing stuck).
    pub async fn assert_queues_drained(&self) {
        let embedded = self.backend.embedded.as_ref().expect("embedded backend");
        let started = Instant::now();
        loop {
            let mut busy = Vec::new();
            for kind in WorkerKind::ALL {
                let counts = embedded
                    .sqlite_queue(kind.queue())
                    .counts()
                    .await
                    .expect("queue counts");
                if counts.visible + counts.invisible > 0 {
                    busy.push(format!("{}: {counts:?}", kind.queue()));
                }
            }
            if busy.is_empty() {
                return;
            }
            assert!(started.elapsed() < WAIT, "queues not drained: {busy:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop the workers and the engine.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(w) = self.workers.take() {
            w.shutdown().await;
        }
        self.backend.shutdown().await;
        self.root
    }
}

/// The good asset every test runs next to its bad input: 6 s 160x90, two mono tracks (track 1
/// carries a tone, track 2 is silent), a hard cut and a black silent gap.
pub fn good_spec() -> SampleSpec {
    SampleSpec {
        duration: 6.0,
        width: 160,
        height: 90,
        fps: 25,
        track_count: 2,
        active_tracks: vec![1],
        cuts: vec![1.5],
        black_gaps: vec![(3.0, 4.0)],
        end_credits_from: None,
        ..SampleSpec::default()
    }
}

pub async fn good_clip(p: &Pipeline) -> PathBuf {
    let path = p.path("good.mov");
    generate_sample(&path, &good_spec())
        .await
        .expect("generate the good clip");
    path
}

/// Ingest the good clip under `uploads/good.mov`.
pub async fn ingest_good(p: &Pipeline) -> AssetId {
    let clip = good_clip(p).await;
    p.ingest(&clip, "uploads/good.mov").await
}

/// The good asset went all the way, with the verdicts its clip implies.
pub async fn assert_good_completed(p: &Pipeline, id: &AssetId) {
    let a = p.wait_terminal(id).await;
    assert_eq!(
        a.state,
        AssetState::Complete,
        "the good asset was affected: {:?}",
        a.failure
    );
    let audio = a.audio.as_ref().expect("audio verdicts");
    assert_eq!(audio.loudnessmap, vec![1, 0], "good asset audio: {audio:?}");
    assert_eq!(audio.layout, AudioLayout::Mono);
    let vmap = a.results.vmap.as_ref().expect("a VMAP");
    assert!(
        p.backend
            .ctx
            .ports
            .blobs
            .head(vmap)
            .await
            .expect("head")
            .is_some(),
        "VMAP missing"
    );
}
