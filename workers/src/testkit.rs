//! In-memory ports for handler unit tests: a store with real conditional-write semantics (and a
//! way to lose the next race), blobs in a map, a bus that keeps what it is given, media services
//! that record their requests, and a clock that stands still.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cuepoint_core::asset::{Asset, AudioTrackInfo, ProbeInfo, VideoStreamInfo};
use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::config::Settings;
use cuepoint_runtime::metrics::Metrics;
use cuepoint_runtime::ports::{
    AnalysisRequest, AssetStore, AssetWrite, BlobMeta, BlobStore, Clock, EventBus, PortError,
    PortResult, Ports, ProbeError, Prober, ResultsPage, StoreError, TranscodeRequest, Transcoder,
    Transcriber, TranscriptionJob, TranscriptionRequest, TranscriptionStatus, VideoAnalyzer,
};

use crate::context::WorkerContext;

#[derive(Default)]
pub struct MemStore {
    pub assets: Mutex<HashMap<AssetId, Asset>>,
    pub counters: Mutex<HashMap<String, i64>>,
    /// The next this many commits find another writer got there first (the stored version
    /// moves on, the content does not).
    pub lose_races: AtomicU32,
    /// Another writer's write, committed just before the next commit (which then loses the
    /// race unless it expected that version).
    pub race_with: Mutex<Option<AssetWrite>>,
    pub commits: AtomicU64,
    /// Commits refused for a stale version.
    pub conflicts: AtomicU64,
}

impl MemStore {
    /// The next commit loses the race (see `lose_races`).
    pub fn lose_next_race(&self) {
        self.lose_races.store(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl AssetStore for MemStore {
    async fn get(&self, id: &AssetId) -> PortResult<Option<Asset>> {
        Ok(self.assets.lock().unwrap().get(id).cloned())
    }

    async fn commit(&self, write: AssetWrite) -> Result<(), StoreError> {
        let competing = self.race_with.lock().unwrap().take();
        if let Some(other) = competing {
            Box::pin(self.commit(other))
                .await
                .expect("the competing write commits");
        }
        let mut assets = self.assets.lock().unwrap();
        let id = write.asset.id.clone();
        let lose = self
            .lose_races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lose {
            if let Some(a) = assets.get_mut(&id) {
                a.version += 1;
            }
            self.conflicts.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Conflict {
                asset: id,
                detail: "someone else wrote first".into(),
            });
        }
        let stored = assets.get(&id).map(|a| a.version);
        if stored != write.expected_version {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Conflict {
                asset: id,
                detail: format!("stored version {stored:?}"),
            });
        }
        let mut counters = self.counters.lock().unwrap();
        if let Some(c) = &write.counter {
            let now = counters.get(&c.name).copied().unwrap_or(0);
            if c.max.is_some_and(|max| now + c.delta > max) {
                return Err(StoreError::CounterLimit {
                    name: c.name.clone(),
                    max: c.max.unwrap_or(0),
                });
            }
            counters.insert(c.name.clone(), now + c.delta);
        }
        assets.insert(id, write.asset);
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn list(&self) -> PortResult<Vec<Asset>> {
        Ok(self.assets.lock().unwrap().values().cloned().collect())
    }

    async fn counter(&self, name: &str) -> PortResult<i64> {
        Ok(self
            .counters
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0))
    }
}

#[derive(Default)]
pub struct MemBlobs {
    pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemBlobs {
    pub fn insert(&self, uri: &S3Uri, bytes: impl Into<Vec<u8>>) {
        self.objects
            .lock()
            .unwrap()
            .insert(uri.to_string(), bytes.into());
    }

    pub fn read(&self, uri: &S3Uri) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(&uri.to_string()).cloned()
    }
}

#[async_trait]
impl BlobStore for MemBlobs {
    async fn get(&self, uri: &S3Uri) -> PortResult<Option<Vec<u8>>> {
        Ok(self.read(uri))
    }
    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>, _content_type: &str) -> PortResult<()> {
        self.insert(uri, bytes);
        Ok(())
    }
    async fn head(&self, uri: &S3Uri) -> PortResult<Option<BlobMeta>> {
        Ok(self.read(uri).map(|b| BlobMeta {
            size: b.len() as u64,
            etag: None,
        }))
    }
    async fn list(&self, prefix: &S3Uri) -> PortResult<Vec<S3Uri>> {
        let p = prefix.to_string();
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .keys()
            .filter(|k| k.starts_with(&p))
            .filter_map(|k| S3Uri::parse(k).ok())
            .collect())
    }
    async fn put_file(
        &self,
        uri: &S3Uri,
        path: &std::path::Path,
        _content_type: &str,
    ) -> PortResult<()> {
        let bytes = std::fs::read(path).map_err(|e| PortError::Permanent(e.to_string()))?;
        self.insert(uri, bytes);
        Ok(())
    }
    async fn readable_location(&self, uri: &S3Uri) -> PortResult<String> {
        match self.read(uri) {
            Some(_) => Ok(format!("mem://{uri}")),
            None => Err(PortError::NotFound(uri.to_string())),
        }
    }
}

#[derive(Default)]
pub struct MemBus {
    pub entries: Mutex<Vec<PutEventsEntry>>,
}

impl MemBus {
    /// (detail-type, detail JSON) of everything published, in order.
    pub fn published(&self) -> Vec<(String, serde_json::Value)> {
        let entries = self.entries.lock().unwrap();
        entries
            .iter()
            .map(|e| {
                (
                    e.detail_type.clone(),
                    serde_json::from_str(&e.detail).unwrap_or_default(),
                )
            })
            .collect()
    }

    pub fn detail_types(&self) -> Vec<String> {
        self.published().into_iter().map(|(t, _)| t).collect()
    }
}

#[async_trait]
impl EventBus for MemBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> PortResult<()> {
        self.entries.lock().unwrap().extend_from_slice(entries);
        Ok(())
    }
}

/// Answers every probe with `info`, or refuses the media with `unusable`.
pub struct StubProber {
    pub info: ProbeInfo,
    pub unusable: Option<String>,
}

#[async_trait]
impl Prober for StubProber {
    async fn probe(&self, location: &str) -> Result<ProbeInfo, ProbeError> {
        match &self.unusable {
            Some(why) => Err(ProbeError::Unusable(format!("{location}: {why}"))),
            None => Ok(self.info.clone()),
        }
    }
}

#[derive(Default)]
pub struct StubTranscoder {
    pub submitted: Mutex<Vec<TranscodeRequest>>,
    /// What `find_job` answers for every asset.
    pub existing: Mutex<Option<String>>,
}

#[async_trait]
impl Transcoder for StubTranscoder {
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String> {
        let mut s = self.submitted.lock().unwrap();
        // Like MediaConvert's ClientRequestToken: the same token gets the same job (every call
        // is still recorded).
        let first = s
            .iter()
            .position(|r| r.client_token == request.client_token);
        s.push(request.clone());
        Ok(format!("mc-{}", first.map(|i| i + 1).unwrap_or(s.len())))
    }
    async fn find_job(&self, _asset_id: &AssetId) -> PortResult<Option<String>> {
        Ok(self.existing.lock().unwrap().clone())
    }
    async fn find_tagged_job(
        &self,
        asset_id: &AssetId,
        key: &str,
        value: &str,
    ) -> PortResult<Option<String>> {
        let s = self.submitted.lock().unwrap();
        Ok(s.iter()
            .position(|r| {
                &r.asset_id == asset_id
                    && r.user_metadata.get(key).map(String::as_str) == Some(value)
            })
            .map(|i| format!("mc-{}", i + 1)))
    }
}

/// Starts jobs named `<kind>-job` and serves each job's results in `pages` pages.
pub struct StubAnalyzer {
    pub started: Mutex<Vec<AnalysisRequest>>,
    pub pages: usize,
    /// When set, every job reads as FAILED with this `StatusMessage`.
    pub failed_with: Mutex<Option<String>>,
}

impl Default for StubAnalyzer {
    fn default() -> Self {
        Self {
            started: Mutex::default(),
            pages: 1,
            failed_with: Mutex::default(),
        }
    }
}

#[async_trait]
impl VideoAnalyzer for StubAnalyzer {
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String> {
        // A real service answers later: handlers running at once interleave here.
        tokio::task::yield_now().await;
        self.started.lock().unwrap().push(request.clone());
        Ok(format!("{}-job", request.kind))
    }
    async fn get_page(
        &self,
        kind: AnalysisKind,
        job_id: &str,
        next_token: Option<&str>,
    ) -> PortResult<ResultsPage> {
        let page: usize = next_token.map(|t| t.parse().unwrap()).unwrap_or(0);
        let mut body = serde_json::json!({"JobStatus": "SUCCEEDED", "JobId": job_id});
        if let Some(message) = self.failed_with.lock().unwrap().clone() {
            return Ok(ResultsPage {
                body: serde_json::json!({"JobStatus": "FAILED", "JobId": job_id, "StatusMessage": message}),
                next_token: None,
            });
        }
        body[kind.list_field()] = serde_json::json!([{ "page": page }]);
        let next_token = (page + 1 < self.pages).then(|| (page + 1).to_string());
        Ok(ResultsPage { body, next_token })
    }
}

/// Starts transcription jobs under their names (a second start of a name finds the job, as a
/// ConflictException does); `get` answers what `outcome` says.
pub struct StubTranscriber {
    pub started: Mutex<Vec<TranscriptionRequest>>,
    pub outcome: Mutex<TranscriptionJob>,
}

impl Default for StubTranscriber {
    fn default() -> Self {
        Self {
            started: Mutex::default(),
            outcome: Mutex::new(TranscriptionJob {
                job_name: String::new(),
                status: TranscriptionStatus::InProgress,
                failure_reason: None,
                transcript: None,
                speech: None,
            }),
        }
    }
}

#[async_trait]
impl Transcriber for StubTranscriber {
    async fn start(&self, request: &TranscriptionRequest) -> PortResult<String> {
        self.started.lock().unwrap().push(request.clone());
        Ok(request.job_name.clone())
    }
    async fn get(&self, job_name: &str) -> PortResult<TranscriptionJob> {
        let mut j = self.outcome.lock().unwrap().clone();
        j.job_name = job_name.to_string();
        Ok(j)
    }
}

pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// A worker context over in-memory ports, and handles on them.
pub struct Kit {
    pub ctx: WorkerContext,
    pub store: Arc<MemStore>,
    pub blobs: Arc<MemBlobs>,
    pub bus: Arc<MemBus>,
    pub transcoder: Arc<StubTranscoder>,
    pub analyzer: Arc<StubAnalyzer>,
    pub transcriber: Arc<StubTranscriber>,
}

impl Kit {
    pub fn new() -> Self {
        Self::with(Settings::default(), probe_info(2), None)
    }

    pub fn with(settings: Settings, info: ProbeInfo, unusable: Option<&str>) -> Self {
        let store = Arc::new(MemStore::default());
        let blobs = Arc::new(MemBlobs::default());
        let bus = Arc::new(MemBus::default());
        let transcoder = Arc::new(StubTranscoder::default());
        let analyzer = Arc::new(StubAnalyzer::default());
        let transcriber = Arc::new(StubTranscriber::default());
        let ports = Ports {
            store: store.clone(),
            blobs: blobs.clone(),
            bus: bus.clone(),
            prober: Arc::new(StubProber {
                info,
                unusable: unusable.map(str::to_string),
            }),
            transcoder: transcoder.clone(),
            analyzer: analyzer.clone(),
            transcriber: transcriber.clone(),
            clock: Arc::new(FixedClock(1_700_000_000_000)),
        };
        let ctx = WorkerContext::new(ports, settings, Metrics::new("test", false))
            .expect("default scoring is valid");
        Self {
            ctx,
            store,
            blobs,
            bus,
            transcoder,
            analyzer,
            transcriber,
        }
    }

    pub fn asset(&self, id: &AssetId) -> Asset {
        self.store
            .assets
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .expect("asset stored")
    }

    /// Store `asset` as it is (a state reached earlier).
    pub fn put_asset(&self, asset: &Asset) {
        self.store
            .assets
            .lock()
            .unwrap()
            .insert(asset.id.clone(), asset.clone());
    }
}

/// A probed 10 s 320x180 source with `tracks` mono audio tracks.
pub fn probe_info(tracks: u32) -> ProbeInfo {
    ProbeInfo {
        container: "mov".into(),
        duration_seconds: 10.0,
        video: Some(VideoStreamInfo {
            codec: "h264".into(),
            width: 320,
            height: 180,
            frame_rate: 25.0,
            frame_rate_ratio: "25/1".into(),
            frames: Some(250),
        }),
        audio_tracks: (1..=tracks)
            .map(|t| AudioTrackInfo {
                track: t,
                stream_index: t,
                codec: "pcm_s16le".into(),
                channels: 1,
                sample_rate: 48_000,
            })
            .collect(),
    }
}
