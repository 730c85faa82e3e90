//! A fast stand-in for FFmpeg behind the media ports: it accepts the same requests the real
//! stand-ins do, writes small but valid outputs through the blob store (MediaConvert-layout
//! loudness logs, an HLS master and variant playlist, a proxy; Get* responses) and announces
//! completion the way the services do — a "MediaConvert Job State Change" on the event bus, a
//! Rekognition notification on the topic — after a random delay, so completions reorder.
//!
//! It also keeps the books the harness judges by: every *distinct* job created per asset (and
//! per analysis kind). A second job for the same asset and service is a duplicate.
//!
//! What each source becomes is written in its file name (`000042-mcerror-t2.mov`), so the
//! prober and the transcoder can tell without a side channel; the analyzer learns it from the
//! harness ([`FastEngine::expect`]) because Rekognition only sees the proxy.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cuepoint_core::asset::{AudioTrackInfo, FailureStage, ProbeInfo, VideoStreamInfo};
use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::mediaconvert::{job_state_change_entry, JobState, JobStateChange};
use cuepoint_core::events::rekognition::{completion_message, VideoJobCompletion};
use cuepoint_core::events::transcribe::{
    self as transcribe_events, TranscriptionJobStateChange, TranscriptionState,
};
use cuepoint_core::loudness::{LoudnessLog, LoudnessRow, LoudnessSummary};
use cuepoint_core::mediaconvert::{JobPlan, PackagingPlan, PROXY_GROUP_NAME};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::ports::{
    AnalysisRequest, BlobStore, Clock, EventBus, PortError, PortResult, ProbeError, Prober,
    ResultsPage, SystemClock, Topic, TranscodeRequest, Transcoder, Transcriber, TranscriptionJob,
    TranscriptionRequest, TranscriptionStatus, VideoAnalyzer,
};
use serde_json::{json, Value};

use crate::rng::Dice;

/// Programme length of every chaos source.
pub const DURATION_MS: u64 = 30_000;
/// Black, silent gaps in every programme (where breaks belong).
const GAPS_MS: [(u64, u64); 2] = [(10_000, 12_000), (24_000, 26_000)];
const SHOT_CUTS_MS: [u64; 2] = [4_000, 17_200];

/// How an asset is meant to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// The prober finds no usable streams: FAILED at `probe`.
    UnusableProbe,
    /// MediaConvert ends the job in ERROR: FAILED at `transcode`.
    TranscodeError,
    /// One Rekognition job ends FAILED: FAILED at `analysis:<kind>`.
    AnalysisFailed(AnalysisKind),
    /// Segment detection returns a response scoring cannot read: FAILED at `scoring`.
    ScoringError,
    /// MediaConvert reports COMPLETE but track 1's loudness log is not there: FAILED at
    /// `loudness`.
    LoudnessMissing,
}

/// One source: its outcome and how many audio tracks it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub outcome: Outcome,
    pub tracks: u32,
}

impl Scenario {
    fn tag(&self) -> String {
        match self.outcome {
            Outcome::Complete => "ok".into(),
            Outcome::UnusableProbe => "unusable".into(),
            Outcome::TranscodeError => "mcerror".into(),
            Outcome::AnalysisFailed(k) => format!("rekfail_{k}"),
            Outcome::ScoringError => "scorefail".into(),
            Outcome::LoudnessMissing => "nolog".into(),
        }
    }

    /// `<index>-<outcome>-t<tracks>.mov`.
    pub fn file_name(&self, index: usize) -> String {
        format!("{index:06}-{}-t{}.mov", self.tag(), self.tracks)
    }

    /// The scenario a file name (or a path / URL ending in one) describes.
    pub fn from_location(location: &str) -> Option<Scenario> {
        let path = location.split('?').next().unwrap_or(location);
        let name = path.rsplit('/').next()?.strip_suffix(".mov")?;
        let mut parts = name.split('-');
        let _index = parts.next()?;
        let tag = parts.next()?;
        let tracks: u32 = parts.next()?.strip_prefix('t')?.parse().ok()?;
        let outcome = match tag {
            "ok" => Outcome::Complete,
            "unusable" => Outcome::UnusableProbe,
            "mcerror" => Outcome::TranscodeError,
            "scorefail" => Outcome::ScoringError,
            "nolog" => Outcome::LoudnessMissing,
            other => {
                let kind = other.strip_prefix("rekfail_")?;
                Outcome::AnalysisFailed(AnalysisKind::ALL.into_iter().find(|k| k.as_str() == kind)?)
            }
        };
        Some(Scenario { outcome, tracks })
    }

    /// The `failure.stage` the asset must end with, `None` when it must complete.
    pub fn expected_failure_stage(&self) -> Option<FailureStage> {
        match self.outcome {
            Outcome::Complete => None,
            // A failed transcription fails that analysis only: the asset still completes.
            Outcome::AnalysisFailed(AnalysisKind::Transcription) => None,
            Outcome::UnusableProbe => Some(FailureStage::Probe),
            Outcome::TranscodeError => Some(FailureStage::Transcode),
            Outcome::AnalysisFailed(k) => Some(FailureStage::Analysis(k)),
            Outcome::ScoringError => Some(FailureStage::Scoring),
            Outcome::LoudnessMissing => Some(FailureStage::Loudness),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Most completions come after `fast` (min, max); a share `slow_share` after `slow`.
    pub fast: (Duration, Duration),
    pub slow: (Duration, Duration),
    pub slow_share: f64,
    /// How long a transcode `ClientRequestToken` returns the same job. Short on purpose: a
    /// retry after the window must be caught by the worker's `find_job`, not by the token.
    pub transcode_token_window: Duration,
    /// Items per Get* page (small, so results are paged).
    pub page_size: usize,
    pub account: String,
    pub region: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            fast: (Duration::from_millis(5), Duration::from_millis(150)),
            slow: (Duration::from_millis(200), Duration::from_millis(1500)),
            slow_share: 0.2,
            transcode_token_window: Duration::from_secs(2),
            page_size: 3,
            account: "000000000000".into(),
            region: "local".into(),
        }
    }
}

impl EngineOptions {
    /// Completions at once: the services take no time.
    pub fn without_delays() -> Self {
        Self {
            fast: (Duration::ZERO, Duration::ZERO),
            slow: (Duration::ZERO, Duration::ZERO),
            slow_share: 0.0,
            ..Self::default()
        }
    }
}

/// The engine's books, read by the harness at the end.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    pub transcoder_jobs: u64,
    /// Σ over assets of (distinct transcode jobs − 1).
    pub duplicate_transcoder_jobs: u64,
    pub analyzer_jobs: u64,
    /// Σ over (asset, kind) of (distinct analysis jobs − 1).
    pub duplicate_analyzer_jobs: u64,
    /// Transcode jobs created for sources the prober called unusable.
    pub transcodes_of_unusable_sources: u64,
    /// Submissions answered with an existing job because of the client token.
    pub token_reuses: u64,
    /// `find_job` answers naming an existing job (the worker adopts it).
    pub find_job_hits: u64,
    /// Completion announcements that failed and were repeated.
    pub announce_retries: u64,
    /// Completion delays (reordering).
    pub delays: u64,
    /// Completions not announced yet.
    pub pending: u64,
}

#[derive(Default)]
struct Books {
    /// What the harness said each asset is (for the analyzer, which sees only the proxy).
    scenarios: HashMap<AssetId, Scenario>,
    transcode_tokens: HashMap<String, (String, Instant)>,
    transcode_jobs: HashMap<AssetId, Vec<String>>,
    /// Packaging jobs (the second MediaConvert job) per asset and VMAP version.
    packaging_jobs: HashMap<(AssetId, String), Vec<String>>,
    /// The first job per (asset, `key=value` of its user metadata): what ListJobs would find.
    packaging_tags: HashMap<(AssetId, String), String>,
    analysis_tokens: HashMap<String, String>,
    analysis_jobs: HashMap<(AssetId, AnalysisKind), Vec<String>>,
    /// Finished Get* responses by job id.
    results: HashMap<String, Value>,
    /// Finished transcription jobs by name: (failed, transcript location).
    transcriptions: HashMap<String, (bool, S3Uri)>,
    transcodes_of_unusable: u64,
    token_reuses: u64,
    find_job_hits: u64,
    next_job: u64,
}

struct Inner {
    /// Where outputs go (the services write straight to S3; no faults on this side).
    blobs: Arc<dyn BlobStore>,
    /// Completions go out through these (faulty: duplicates, failures, retries).
    bus: Arc<dyn EventBus>,
    topic: Arc<dyn Topic>,
    dice: Dice,
    opts: EngineOptions,
    books: Mutex<Books>,
    pending: AtomicU64,
    announce_retries: AtomicU64,
    delays: AtomicU64,
}

/// Hands out the three ports.
#[derive(Clone)]
pub struct FastEngine {
    inner: Arc<Inner>,
}

impl FastEngine {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        topic: Arc<dyn Topic>,
        dice: Dice,
        opts: EngineOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                blobs,
                bus,
                topic,
                dice,
                opts,
                books: Mutex::new(Books::default()),
                pending: AtomicU64::new(0),
                announce_retries: AtomicU64::new(0),
                delays: AtomicU64::new(0),
            }),
        }
    }

    /// Tell the engine what `asset` is.
    pub fn expect(&self, asset: AssetId, scenario: Scenario) {
        self.books().scenarios.insert(asset, scenario);
    }

    pub fn prober(&self) -> Arc<dyn Prober> {
        Arc::new(FastProber)
    }

    pub fn transcoder(&self) -> Arc<dyn Transcoder> {
        Arc::new(FastTranscoder {
            engine: self.clone(),
        })
    }

    pub fn analyzer(&self) -> Arc<dyn VideoAnalyzer> {
        Arc::new(FastAnalyzer {
            engine: self.clone(),
        })
    }

    pub fn transcriber(&self) -> Arc<dyn Transcriber> {
        Arc::new(FastTranscriber {
            engine: self.clone(),
        })
    }

    pub fn stats(&self) -> EngineStats {
        let b = self.books();
        let dups = |n: usize| n.saturating_sub(1) as u64;
        EngineStats {
            transcoder_jobs: b
                .transcode_jobs
                .values()
                .map(|v| v.len() as u64)
                .sum::<u64>()
                + b.packaging_jobs
                    .values()
                    .map(|v| v.len() as u64)
                    .sum::<u64>(),
            duplicate_transcoder_jobs: b
                .transcode_jobs
                .values()
                .map(|v| dups(v.len()))
                .sum::<u64>()
                + b.packaging_jobs
                    .values()
                    .map(|v| dups(v.len()))
                    .sum::<u64>(),
            analyzer_jobs: b.analysis_jobs.values().map(|v| v.len() as u64).sum(),
            duplicate_analyzer_jobs: b.analysis_jobs.values().map(|v| dups(v.len())).sum(),
            transcodes_of_unusable_sources: b.transcodes_of_unusable,
            token_reuses: b.token_reuses,
            find_job_hits: b.find_job_hits,
            announce_retries: self.inner.announce_retries.load(Ordering::Relaxed),
            delays: self.inner.delays.load(Ordering::Relaxed),
            pending: self.inner.pending.load(Ordering::Relaxed),
        }
    }

    /// Assets with more than one transcode job, or more than one job for an analysis kind.
    pub fn assets_with_duplicate_jobs(&self) -> Vec<String> {
        let b = self.books();
        let mut out: Vec<String> = b
            .transcode_jobs
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(a, v)| format!("{a}: transcode jobs {v:?}"))
            .chain(
                b.packaging_jobs
                    .iter()
                    .filter(|(_, v)| v.len() > 1)
                    .map(|((a, ver), v)| format!("{a}: packaging jobs of VMAP v{ver} {v:?}")),
            )
            .chain(
                b.analysis_jobs
                    .iter()
                    .filter(|(_, v)| v.len() > 1)
                    .map(|((a, k), v)| format!("{a}: {k} jobs {v:?}")),
            )
            .collect();
        out.sort();
        out
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.inner.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delay(&self) -> Duration {
        let o = &self.inner.opts;
        let d = &self.inner.dice;
        self.inner.delays.fetch_add(1, Ordering::Relaxed);
        let (lo, hi) = if d.chance(o.slow_share) {
            o.slow
        } else {
            o.fast
        };
        d.millis(lo.as_millis() as u64, hi.as_millis() as u64)
    }

    fn now_ms() -> u64 {
        SystemClock.now_ms()
    }

    /// Run `job` in the background, counted as pending until it has announced.
    fn spawn(&self, job: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.pending.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            job.await;
            inner.pending.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Services deliver their notifications at least once: keep trying until one publish
    /// reports success (a failed publish may still have gone out — that is the duplicate).
    async fn announce<F, Fut>(&self, what: &str, mut publish: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = PortResult<()>>,
    {
        let mut backoff = Duration::from_millis(20);
        loop {
            match publish().await {
                Ok(()) => return,
                Err(e) => {
                    self.inner.announce_retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(what, error = %e, "completion announcement failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// Write an output; the service side of S3 does not fail here, but a real error still
    /// must not be ignored, so retry a few times and then give up loudly.
    async fn put(&self, uri: &S3Uri, body: Vec<u8>, content_type: &str) {
        for attempt in 0..10u64 {
            match self.inner.blobs.put(uri, body.clone(), content_type).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(%uri, error = %e, "engine output write failed");
                    tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
                }
            }
        }
        tracing::error!(%uri, "engine could not write an output; the job will read as incomplete");
    }

    // -----------------------------------------------------------------------------------------
    // MediaConvert

    async fn run_transcode(
        self,
        job_id: String,
        scenario: Option<Scenario>,
        plan: JobPlan,
        user_metadata: BTreeMap<String, String>,
    ) {
        tokio::time::sleep(self.delay()).await;
        let mut change = JobStateChange {
            job_id: job_id.clone(),
            state: JobState::Complete,
            queue: None,
            user_metadata,
            output_group_details: vec![],
            error_code: None,
            error_message: None,
            timestamp_ms: None,
        };
        match scenario.map(|s| s.outcome) {
            Some(Outcome::TranscodeError) | Some(Outcome::UnusableProbe) | None => {
                change.state = JobState::Error;
                change.error_code = Some(1010);
                change.error_message = Some(format!(
                    "Unable to open input file [{}]: no usable streams",
                    plan.input
                ));
            }
            Some(outcome) => {
                self.write_transcode_outputs(&plan, outcome == Outcome::LoudnessMissing)
                    .await;
                change.output_group_details = plan.output_group_details(Some(DURATION_MS));
            }
        }
        change.timestamp_ms = Some(Self::now_ms());
        let entry =
            job_state_change_entry(&change, &self.inner.opts.account, &self.inner.opts.region);
        let bus = self.inner.bus.clone();
        self.announce("MediaConvert job state change", || {
            let (bus, entry) = (bus.clone(), entry.clone());
            async move { bus.put_events(&[entry]).await }
        })
        .await;
    }

    /// The packaging job: playlists naming segments at the breaks (no media), then COMPLETE.
    async fn run_packaging(
        self,
        job_id: String,
        plan: PackagingPlan,
        user_metadata: BTreeMap<String, String>,
    ) {
        tokio::time::sleep(self.delay()).await;
        let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
        let mut starts: Vec<u64> = vec![0];
        starts.extend(plan.breaks.iter().map(|b| (b * 1000.0).round() as u64));
        starts.retain(|t| *t < DURATION_MS);
        starts.dedup();
        for r in &plan.renditions {
            let name = r.playlist.key.file_name().to_string();
            let stem = name.trim_end_matches(".m3u8").to_string();
            let mut media = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:60\n");
            for (i, t) in starts.iter().enumerate() {
                let end = starts.get(i + 1).copied().unwrap_or(DURATION_MS);
                media.push_str(&format!(
                    "#EXTINF:{:.6},\n{stem}_{i:05}.ts\n",
                    (end - t) as f64 / 1000.0
                ));
            }
            media.push_str("#EXT-X-ENDLIST\n");
            let media = cuepoint_core::packaging::add_cue_markers(&media, &plan.breaks, 0.02)
                .unwrap_or(media);
            self.put(
                &r.playlist,
                media.into_bytes(),
                "application/vnd.apple.mpegurl",
            )
            .await;
            master.push_str(&format!(
                "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION={}x{}\n{name}\n",
                r.width, r.height
            ));
        }
        self.put(
            &plan.master,
            master.into_bytes(),
            "application/vnd.apple.mpegurl",
        )
        .await;
        let change = JobStateChange {
            job_id,
            state: JobState::Complete,
            queue: None,
            user_metadata,
            output_group_details: plan.output_group_details(Some(DURATION_MS)),
            error_code: None,
            error_message: None,
            timestamp_ms: Some(Self::now_ms()),
        };
        let entry =
            job_state_change_entry(&change, &self.inner.opts.account, &self.inner.opts.region);
        let bus = self.inner.bus.clone();
        self.announce("MediaConvert job state change", || {
            let (bus, entry) = (bus.clone(), entry.clone());
            async move { bus.put_events(&[entry]).await }
        })
        .await;
    }

    /// Loudness logs and the proxy (the HLS ladder is the packaging job's).
    async fn write_transcode_outputs(&self, plan: &JobPlan, skip_first_log: bool) {
        let count = plan
            .audio
            .as_ref()
            .map(|a| a.tracks.len() as u32)
            .unwrap_or(0);
        let first = if skip_first_log { 2 } else { 1 };
        for position in first..=count {
            if let Some(uri) = plan.try_loudness_log_uri(position, count) {
                let csv = loudness_log(position <= 2).to_csv();
                self.put(&uri, csv.into_bytes(), "text/csv").await;
            }
        }
        self.put(
            &plan.proxy.output,
            b"chaos proxy: not a real MP4".to_vec(),
            "video/mp4",
        )
        .await;
    }

    // -----------------------------------------------------------------------------------------
    // Rekognition

    async fn run_analysis(
        self,
        job_id: String,
        request: AnalysisRequest,
        scenario: Option<Scenario>,
    ) {
        tokio::time::sleep(self.delay()).await;
        let kind = request.kind;
        let (status, body) = analysis_result(kind, scenario);
        self.books().results.insert(job_id.clone(), body);
        let completion = VideoJobCompletion {
            job_id,
            status: status.to_string(),
            api: kind.start_api().to_string(),
            job_tag: Some(request.job_tag.clone()),
            timestamp_ms: Some(Self::now_ms()),
            video_bucket: Some(request.video.bucket.to_string()),
            video_key: Some(request.video.key.to_string()),
            sns_message_id: None,
        };
        let message = completion_message(&completion);
        let topic = self.inner.topic.clone();
        self.announce("Rekognition completion", || {
            let (topic, message) = (topic.clone(), message.clone());
            async move { topic.publish(&message).await.map(|_| ()) }
        })
        .await;
    }
}

impl FastEngine {
    async fn run_transcription(self, request: TranscriptionRequest, scenario: Option<Scenario>) {
        tokio::time::sleep(self.delay()).await;
        let outcome = scenario.map(|s| s.outcome);
        let failed = outcome.is_none()
            || outcome == Some(Outcome::AnalysisFailed(AnalysisKind::Transcription));
        if !failed {
            let transcript = json!({"jobName": request.job_name, "status": "COMPLETED", "results": {
            "transcripts": [{"transcript": "Back after the break."}],
            "items": [
                {"start_time": "1.0", "end_time": "1.4", "type": "pronunciation", "alternatives": [{"content": "Back", "confidence": "0.98"}]},
                {"start_time": "1.5", "end_time": "1.9", "type": "pronunciation", "alternatives": [{"content": "after", "confidence": "0.97"}]},
            ]}});
            self.put(
                &request.output,
                transcript.to_string().into_bytes(),
                "application/json",
            )
            .await;
        }
        self.books()
            .transcriptions
            .insert(request.job_name.clone(), (failed, request.output.clone()));
        let change = TranscriptionJobStateChange {
            job_name: request.job_name.clone(),
            state: if failed {
                TranscriptionState::Failed
            } else {
                TranscriptionState::Completed
            },
            failure_reason: None,
        };
        let entry = transcribe_events::job_state_change_entry(&change, Some(Self::now_ms()));
        let bus = self.inner.bus.clone();
        self.announce("Transcribe Job State Change", || {
            let (bus, entry) = (bus.clone(), entry.clone());
            async move { bus.put_events(std::slice::from_ref(&entry)).await }
        })
        .await;
    }
}

struct FastTranscriber {
    engine: FastEngine,
}

#[async_trait]
impl Transcriber for FastTranscriber {
    async fn start(&self, request: &TranscriptionRequest) -> PortResult<String> {
        let scenario = {
            let mut b = self.engine.books();
            let key = (request.asset_id.clone(), AnalysisKind::Transcription);
            // Transcribe: a second start under a job name that exists is a ConflictException,
            // which the adapter reads as "already started".
            if b.analysis_jobs
                .get(&key)
                .is_some_and(|v| v.contains(&request.job_name))
            {
                b.token_reuses += 1;
                return Ok(request.job_name.clone());
            }
            b.analysis_jobs
                .entry(key)
                .or_default()
                .push(request.job_name.clone());
            b.scenarios.get(&request.asset_id).copied()
        };
        let engine = self.engine.clone();
        self.engine
            .spawn(engine.run_transcription(request.clone(), scenario));
        Ok(request.job_name.clone())
    }

    async fn get(&self, job_name: &str) -> PortResult<TranscriptionJob> {
        let done = self.engine.books().transcriptions.get(job_name).cloned();
        Ok(match done {
            Some((failed, uri)) => TranscriptionJob {
                job_name: job_name.to_string(),
                status: if failed {
                    TranscriptionStatus::Failed
                } else {
                    TranscriptionStatus::Completed
                },
                failure_reason: failed
                    .then(|| "The media file could not be decoded (chaos scenario)".to_string()),
                transcript: (!failed).then_some(uri),
                speech: None,
            },
            None => TranscriptionJob {
                job_name: job_name.to_string(),
                status: TranscriptionStatus::InProgress,
                failure_reason: None,
                transcript: None,
                speech: None,
            },
        })
    }
}

/// A loudness log for a 30 s programme: an active track sits at about -20 LUFS and drops to
/// silence in the black gaps; a silent track never rises above -80.
fn loudness_log(active: bool) -> LoudnessLog {
    let mut rows = Vec::new();
    let mut ms = 200;
    while ms <= DURATION_MS {
        let in_gap = GAPS_MS.iter().any(|&(a, b)| ms > a + 200 && ms <= b);
        let momentary = if !active {
            -82.0
        } else if in_gap {
            -75.0
        } else {
            -20.0
        };
        rows.push(LoudnessRow {
            seconds: ms as f64 / 1000.0,
            momentary,
            integrated: if active { -21.0 } else { -82.0 },
            short_term: if active { -21.5 } else { -82.0 },
            true_peak: if active { -3.0 } else { -70.0 },
        });
        ms += 200;
    }
    let summary = if active {
        LoudnessSummary {
            input_integrated: -21.0,
            input_max_loudness: -14.0,
            input_true_peak: -1.0,
        }
    } else {
        LoudnessSummary {
            input_integrated: -82.0,
            input_max_loudness: -80.0,
            input_true_peak: -70.0,
        }
    };
    LoudnessLog { rows, summary }
}

fn video_metadata() -> Value {
    json!([{"Codec": "h264", "DurationMillis": DURATION_MS, "Format": "QuickTime / MOV", "FrameRate": 25.0,
            "FrameHeight": 360, "FrameWidth": 640, "ColorRange": "LIMITED"}])
}

/// The full Get* response for one analysis, and the job's status.
fn analysis_result(kind: AnalysisKind, scenario: Option<Scenario>) -> (&'static str, Value) {
    let outcome = scenario.map(|s| s.outcome);
    if outcome == Some(Outcome::AnalysisFailed(kind)) || outcome.is_none() {
        return (
            "FAILED",
            json!({"JobStatus": "FAILED", "StatusMessage": "Unsupported codec (chaos scenario)"}),
        );
    }
    let mut body = serde_json::Map::new();
    body.insert("JobStatus".into(), json!("SUCCEEDED"));
    body.insert("VideoMetadata".into(), video_metadata());
    let items = match kind {
        AnalysisKind::Segments if outcome == Some(Outcome::ScoringError) => {
            // No StartTimestampMillis: GetSegmentDetection never answers this; scoring must
            // refuse it rather than guess.
            json!([{"Type": "SHOT", "ShotSegment": {"Index": 0, "Confidence": 99.0}}])
        }
        AnalysisKind::Segments => segments(),
        _ => json!([]),
    };
    body.insert(kind.list_field().into(), items);
    if kind == AnalysisKind::Segments {
        body.insert(
            "SelectedSegmentTypes".into(),
            json!([{"Type": "TECHNICAL_CUE"}, {"Type": "SHOT"}]),
        );
    }
    ("SUCCEEDED", Value::Object(body))
}

/// BlackFrames cues in the gaps and the shots between them, in time order.
fn segments() -> Value {
    let mut out: Vec<(u64, Value)> = Vec::new();
    for (a, b) in GAPS_MS {
        out.push((
            a,
            json!({"Type": "TECHNICAL_CUE", "StartTimestampMillis": a, "EndTimestampMillis": b, "DurationMillis": b - a,
                   "TechnicalCueSegment": {"Type": "BlackFrames", "Confidence": 99.5}}),
        ));
    }
    let mut bounds: Vec<u64> = vec![0];
    bounds.extend(SHOT_CUTS_MS);
    for (a, b) in GAPS_MS {
        bounds.push(a);
        bounds.push(b);
    }
    bounds.push(DURATION_MS);
    bounds.sort_unstable();
    bounds.dedup();
    let mut index = 0;
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        if GAPS_MS.iter().any(|&(ga, gb)| a >= ga && b <= gb) {
            continue;
        }
        out.push((
            a,
            json!({"Type": "SHOT", "StartTimestampMillis": a, "EndTimestampMillis": b, "DurationMillis": b - a,
                   "ShotSegment": {"Index": index, "Confidence": 98.0}}),
        ));
        index += 1;
    }
    out.sort_by_key(|(t, _)| *t);
    Value::Array(out.into_iter().map(|(_, v)| v).collect())
}

/// Items `[offset, offset + size)` of the list field, the next offset as the token.
fn page_of(full: &Value, field: &str, token: Option<&str>, size: usize) -> PortResult<ResultsPage> {
    let offset: usize = match token {
        None => 0,
        Some(t) => t
            .parse()
            .map_err(|_| PortError::Permanent(format!("InvalidPaginationTokenException: {t:?}")))?,
    };
    let items = full
        .get(field)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let end = (offset + size.max(1)).min(items.len());
    let page: Vec<Value> = items
        .get(offset.min(items.len())..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    let mut body = full.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.insert(field.to_string(), Value::Array(page));
        if let Some(n) = &next {
            obj.insert("NextToken".into(), json!(n));
        }
    }
    Ok(ResultsPage {
        body,
        next_token: next,
    })
}

// ---------------------------------------------------------------------------------------------
// The ports

struct FastProber;

#[async_trait]
impl Prober for FastProber {
    async fn probe(&self, location: &str) -> Result<ProbeInfo, ProbeError> {
        let Some(s) = Scenario::from_location(location) else {
            return Err(ProbeError::Unusable(format!(
                "{location}: not a chaos source"
            )));
        };
        if s.outcome == Outcome::UnusableProbe {
            return Err(ProbeError::Unusable(
                "moov atom not found: no streams (chaos scenario)".into(),
            ));
        }
        Ok(ProbeInfo {
            container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration_seconds: DURATION_MS as f64 / 1000.0,
            video: Some(VideoStreamInfo {
                codec: "h264".into(),
                width: 640,
                height: 360,
                frame_rate: 25.0,
                frame_rate_ratio: "25/1".into(),
                frames: Some(DURATION_MS / 40),
            }),
            audio_tracks: (1..=s.tracks)
                .map(|t| AudioTrackInfo {
                    track: t,
                    stream_index: t,
                    codec: "aac".into(),
                    channels: 1,
                    sample_rate: 48_000,
                })
                .collect(),
        })
    }
}

struct FastTranscoder {
    engine: FastEngine,
}

impl FastTranscoder {
    fn submit_packaging(&self, request: &TranscodeRequest) -> PortResult<String> {
        let plan = PackagingPlan::from_settings(&request.settings)
            .map_err(|e| PortError::Permanent(format!("BadRequestException: job settings: {e}")))?;
        let window = self.engine.inner.opts.transcode_token_window;
        let version = request
            .user_metadata
            .get("vmapVersion")
            .cloned()
            .unwrap_or_default();
        let job_id = {
            let mut b = self.engine.books();
            if let Some((id, at)) = b.transcode_tokens.get(&request.client_token) {
                if at.elapsed() < window {
                    let id = id.clone();
                    b.token_reuses += 1;
                    return Ok(id);
                }
            }
            b.next_job += 1;
            let id = format!("{}-chaos{:06}", FastEngine::now_ms(), b.next_job);
            b.transcode_tokens
                .insert(request.client_token.clone(), (id.clone(), Instant::now()));
            b.packaging_jobs
                .entry((request.asset_id.clone(), version))
                .or_default()
                .push(id.clone());
            for (k, v) in &request.user_metadata {
                b.packaging_tags
                    .entry((request.asset_id.clone(), format!("{k}={v}")))
                    .or_insert_with(|| id.clone());
            }
            id
        };
        let engine = self.engine.clone();
        self.engine.spawn(engine.run_packaging(
            job_id.clone(),
            plan,
            request.user_metadata.clone(),
        ));
        Ok(job_id)
    }
}

#[async_trait]
impl Transcoder for FastTranscoder {
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String> {
        let is_packaging = !request
            .settings
            .get("OutputGroups")
            .and_then(Value::as_array)
            .is_some_and(|g| {
                g.iter()
                    .any(|g| g.get("Name").and_then(Value::as_str) == Some(PROXY_GROUP_NAME))
            });
        if is_packaging {
            return self.submit_packaging(request);
        }
        let plan = JobPlan::from_settings(&request.settings)
            .map_err(|e| PortError::Permanent(format!("BadRequestException: job settings: {e}")))?;
        let scenario = Scenario::from_location(plan.input.key.as_str());
        let window = self.engine.inner.opts.transcode_token_window;
        let job_id = {
            let mut b = self.engine.books();
            if let Some((id, at)) = b.transcode_tokens.get(&request.client_token) {
                if at.elapsed() < window {
                    let id = id.clone();
                    b.token_reuses += 1;
                    return Ok(id);
                }
            }
            b.next_job += 1;
            let id = format!("{}-chaos{:06}", FastEngine::now_ms(), b.next_job);
            b.transcode_tokens
                .insert(request.client_token.clone(), (id.clone(), Instant::now()));
            b.transcode_jobs
                .entry(request.asset_id.clone())
                .or_default()
                .push(id.clone());
            if scenario.map(|s| s.outcome) == Some(Outcome::UnusableProbe) {
                b.transcodes_of_unusable += 1;
            }
            id
        };
        let engine = self.engine.clone();
        self.engine.spawn(engine.run_transcode(
            job_id.clone(),
            scenario,
            plan,
            request.user_metadata.clone(),
        ));
        Ok(job_id)
    }

    async fn find_job(&self, asset_id: &AssetId) -> PortResult<Option<String>> {
        let mut b = self.engine.books();
        let found = b
            .transcode_jobs
            .get(asset_id)
            .and_then(|v| v.first().cloned());
        if found.is_some() {
            b.find_job_hits += 1;
        }
        Ok(found)
    }

    async fn find_tagged_job(
        &self,
        asset_id: &AssetId,
        key: &str,
        value: &str,
    ) -> PortResult<Option<String>> {
        let mut b = self.engine.books();
        let found = b
            .packaging_tags
            .get(&(asset_id.clone(), format!("{key}={value}")))
            .cloned();
        if found.is_some() {
            b.find_job_hits += 1;
        }
        Ok(found)
    }
}

struct FastAnalyzer {
    engine: FastEngine,
}

#[async_trait]
impl VideoAnalyzer for FastAnalyzer {
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String> {
        let asset = AssetId::parse(request.job_tag.clone())
            .map_err(|e| PortError::Permanent(format!("InvalidParameterException: JobTag: {e}")))?;
        let (job_id, scenario) = {
            let mut b = self.engine.books();
            // Rekognition: the same ClientRequestToken returns the same JobId.
            if let Some(id) = b.analysis_tokens.get(&request.client_token) {
                let id = id.clone();
                b.token_reuses += 1;
                return Ok(id);
            }
            b.next_job += 1;
            let id = format!(
                "{:016x}{:016x}",
                self.engine.inner.dice.next_u64(),
                b.next_job
            );
            b.analysis_tokens
                .insert(request.client_token.clone(), id.clone());
            b.analysis_jobs
                .entry((asset.clone(), request.kind))
                .or_default()
                .push(id.clone());
            (id, b.scenarios.get(&asset).copied())
        };
        let engine = self.engine.clone();
        self.engine
            .spawn(engine.run_analysis(job_id.clone(), request.clone(), scenario));
        Ok(job_id)
    }

    async fn get_page(
        &self,
        kind: AnalysisKind,
        job_id: &str,
        next_token: Option<&str>,
    ) -> PortResult<ResultsPage> {
        let full = self.engine.books().results.get(job_id).cloned();
        match full {
            Some(full) => page_of(
                &full,
                kind.list_field(),
                next_token,
                self.engine.inner.opts.page_size,
            ),
            None => Ok(ResultsPage {
                body: json!({"JobStatus": "IN_PROGRESS"}),
                next_token: None,
            }),
        }
    }
}
