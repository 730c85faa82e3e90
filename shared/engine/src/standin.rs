//! Local stand-ins for MediaConvert and Rekognition Video over the ports (the lead's version, wired into the workers; `local/` is the engine helper's parallel version — one of the two will be removed).
//! `LocalMediaConvert` and `LocalRekognition` live here).
//!
//! They take the same requests the AWS adapters send (MediaConvert job settings; Start*
//! requests), run FFmpeg on a background task, and announce completion exactly as AWS does: a
//! "MediaConvert Job State Change" event on the event bus, a Rekognition completion
//! notification on the SNS topic. Workers cannot tell them from the real services.
//!
//! Jobs are recorded in a [`JobLedger`] keyed by client token before they run: a repeated
//! submission returns the same job, and jobs a crash interrupted are resumed by
//! [`LocalEngine::resume_unfinished`]. Completion is announced *before* the ledger marks the
//! job finished, so a crash in between repeats the announcement (which consumers dedupe)
//! rather than losing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::mediaconvert::{job_state_change_entry, JobState, JobStateChange};
use cuepoint_core::events::rekognition::{completion_message, VideoJobCompletion};
use cuepoint_core::mediaconvert::JobPlan;
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::ports::{
    AnalysisRequest, BlobStore, Clock, EventBus, JobLedger, LedgerJob, PortError, PortResult, ResultsPage, Topic,
    TranscodeRequest, Transcoder, VideoAnalyzer,
};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::analyze::{analyze, AnalyzeOptions};
use crate::error::EngineError;
use crate::transcode::{transcode, HlsSpec, LoudnessLogSpec, ProxySpec, TranscodeSpec};

pub const MEDIACONVERT: &str = "mediaconvert";
pub const REKOGNITION: &str = "rekognition";

#[derive(Debug, Clone)]
pub struct LocalEngineOptions {
    /// Where inputs are downloaded and outputs staged when blobs are not local files.
    pub scratch_dir: PathBuf,
    /// FFmpeg jobs run at once (each uses every core it can).
    pub max_parallel_jobs: usize,
    pub account: String,
    pub region: String,
    /// Segment detection settings.
    pub analyze: AnalyzeOptions,
    /// Items per Get* page (Rekognition's MaxResults is at most 1000).
    pub page_size: usize,
}

impl Default for LocalEngineOptions {
    fn default() -> Self {
        Self {
            scratch_dir: std::env::temp_dir().join("cuepoint-engine"),
            max_parallel_jobs: 1,
            account: "000000000000".into(),
            region: "local".into(),
            analyze: AnalyzeOptions { loudness: false, ..AnalyzeOptions::default() },
            page_size: 1000,
        }
    }
}

struct Inner {
    blobs: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    topic: Arc<dyn Topic>,
    ledger: Arc<dyn JobLedger>,
    clock: Arc<dyn Clock>,
    opts: LocalEngineOptions,
    permits: Semaphore,
    tasks: Mutex<JoinSet<()>>,
}

/// The local media engine: hands out the two stand-ins and runs their jobs.
#[derive(Clone)]
pub struct LocalEngine {
    inner: Arc<Inner>,
}

impl LocalEngine {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        topic: Arc<dyn Topic>,
        ledger: Arc<dyn JobLedger>,
        clock: Arc<dyn Clock>,
        opts: LocalEngineOptions,
    ) -> Self {
        let permits = Semaphore::new(opts.max_parallel_jobs.max(1));
        Self { inner: Arc::new(Inner { blobs, bus, topic, ledger, clock, opts, permits, tasks: Mutex::new(JoinSet::new()) }) }
    }

    pub fn media_convert(&self) -> LocalMediaConvert {
        LocalMediaConvert { engine: self.clone() }
    }

    pub fn rekognition(&self) -> LocalRekognition {
        LocalRekognition { engine: self.clone() }
    }

    /// Run again every job a previous process accepted but did not finish.
    pub async fn resume_unfinished(&self) -> PortResult<usize> {
        self.resume_services(&[MEDIACONVERT, REKOGNITION]).await
    }

    /// Resume only these services' jobs: with several worker processes sharing one ledger, each
    /// resumes the jobs of the service it submits to, so no job runs in two processes.
    pub async fn resume_services(&self, services: &[&str]) -> PortResult<usize> {
        let mut n = 0;
        for &service in services {
            for job in self.inner.ledger.unfinished(service).await? {
                tracing::info!(service, job_id = %job.job_id, asset_id = %job.asset_id, "resuming an unfinished local job");
                self.spawn(job);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Jobs accepted but not finished, per service (for progress displays and tests).
    pub async fn running(&self) -> usize {
        self.inner.tasks.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Stop running jobs. They stay unfinished in the ledger and resume on the next start.
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("engine task lock"));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }

    fn spawn(&self, job: LedgerJob) {
        let engine = self.clone();
        let mut tasks = self.inner.tasks.lock().expect("engine task lock");
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let Ok(_permit) = engine.inner.permits.acquire().await else { return };
            let span = tracing::info_span!("local_job", service = %job.service, job_id = %job.job_id, asset_id = %job.asset_id);
            let _ = tracing::Instrument::instrument(engine.run(job), span).await;
        });
    }

    async fn run(&self, job: LedgerJob) {
        let result = match job.service.as_str() {
            MEDIACONVERT => self.run_mediaconvert(&job).await,
            REKOGNITION => self.run_rekognition(&job).await,
            other => Err(format!("unknown service {other}")),
        };
        if let Err(e) = result {
            // Announcing failed (a transient port error): leave the job unfinished so the next
            // start (or resume) retries it.
            tracing::error!(error = %e, "local job could not be completed; it will be resumed");
        }
    }

    fn scratch(&self, job: &LedgerJob) -> PathBuf {
        self.inner.opts.scratch_dir.join(format!("{}-{}", job.service, job.job_id))
    }

    /// A local path for an input object: the blob's own file, or a downloaded copy.
    async fn local_input(&self, uri: &S3Uri, scratch: &Path) -> Result<PathBuf, EngineFailure> {
        if let Some(p) = self.inner.blobs.local_path(uri) {
            if p.is_file() {
                return Ok(p);
            }
        }
        let bytes = self
            .inner
            .blobs
            .get(uri)
            .await
            .map_err(EngineFailure::Port)?
            .ok_or_else(|| EngineFailure::Input(format!("input {uri} does not exist")))?;
        let name = uri.key.file_name().replace(['/', '\\'], "_");
        let path = scratch.join(format!("input-{name}"));
        tokio::fs::write(&path, bytes).await.map_err(|e| EngineFailure::Port(PortError::Transient(format!("{}: {e}", path.display()))))?;
        Ok(path)
    }

    // ---------------------------------------------------------------------------------------
    // MediaConvert

    async fn run_mediaconvert(&self, job: &LedgerJob) -> Result<(), String> {
        let outcome = self.transcode_job(job).await;
        let user_metadata: BTreeMap<String, String> = job
            .request
            .get("userMetadata")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        let mut change = JobStateChange {
            job_id: job.job_id.clone(),
            state: JobState::Complete,
            queue: None,
            user_metadata,
            output_group_details: vec![],
            error_code: None,
            error_message: None,
            timestamp_ms: Some(self.inner.clock.now_ms()),
        };
        let (status, result) = match &outcome {
            Ok((plan, duration_ms)) => {
                change.output_group_details = plan.output_group_details(Some(*duration_ms));
                ("COMPLETE", json!({"durationMs": duration_ms}))
            }
            Err(EngineFailure::Port(e)) => return Err(e.to_string()),
            Err(EngineFailure::Input(msg)) | Err(EngineFailure::Engine(msg)) => {
                change.state = JobState::Error;
                let code = if matches!(outcome, Err(EngineFailure::Input(_))) { 1010 } else { 1999 };
                change.error_code = Some(code);
                change.error_message = Some(msg.clone());
                ("ERROR", json!({"errorCode": code, "errorMessage": msg}))
            }
        };
        let entry = job_state_change_entry(&change, &self.inner.opts.account, &self.inner.opts.region);
        self.inner.bus.put_events(&[entry]).await.map_err(|e| e.to_string())?;
        self.inner.ledger.finish(MEDIACONVERT, &job.job_id, status, result).await.map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(self.scratch(job));
        tracing::info!(status, "local MediaConvert job finished");
        Ok(())
    }

    async fn transcode_job(&self, job: &LedgerJob) -> Result<(JobPlan, u64), EngineFailure> {
        let settings = job.request.get("settings").cloned().unwrap_or(Value::Null);
        let plan = JobPlan::from_settings(&settings).map_err(|e| EngineFailure::Input(format!("job settings: {e}")))?;
        let scratch = self.scratch(job);
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| EngineFailure::Port(PortError::Transient(format!("{}: {e}", scratch.display()))))?;
        let input = self.local_input(&plan.input, &scratch).await?;

        let hls_dir = scratch.join("hls");
        let mut hls = HlsSpec::new(&hls_dir);
        hls.master_name = plan.hls.master.key.file_name().to_string();
        hls.media_name = plan.hls.variant.key.file_name().to_string();
        hls.segment_seconds = plan.hls.segment_length_s.max(1);
        hls.audio_track = plan.hls.audio_track;
        let mut proxy = ProxySpec::new(scratch.join("proxy.mp4"));
        if let Some(w) = plan.proxy.width {
            proxy.width = w;
        }
        proxy.height = plan.proxy.height;
        // The proxy carries the rendition's audio, or none when the source has no audio.
        proxy.audio_track = plan.hls.audio_track;
        let mut spec = TranscodeSpec::new(&input);
        spec.hls = Some(hls);
        spec.proxy = Some(proxy);
        let track_count = plan.audio.as_ref().map(|a| a.tracks.len() as u32).unwrap_or(0);
        let mut log_uris = Vec::new();
        if let Some(audio) = &plan.audio {
            for t in audio.tracks.iter().filter(|t| t.loudness_logging) {
                let path = scratch.join(format!("loudness-{}.csv", t.position));
                spec.loudness_logs.push(LoudnessLogSpec { track: t.track, path: path.clone() });
                if let Some(uri) = audio.loudness_log_uri(t.position, track_count) {
                    log_uris.push((path, uri));
                }
            }
        }
        let out = transcode(&spec, None).await.map_err(|e| match e.is_input_problem() {
            true => EngineFailure::Input(e.to_string()),
            false => EngineFailure::Engine(e.to_string()),
        })?;

        // Upload in dependency order: segments and variant before the master playlist, so a
        // reader that sees the master finds everything it names.
        let hls_prefix = plan.hls.master.clone();
        let put = |path: PathBuf, uri: S3Uri, ct: &'static str| async move {
            self.inner.blobs.put_file(&uri, &path, ct).await.map_err(EngineFailure::Port)
        };
        for seg in &out.hls_segments {
            let name = seg.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            put(seg.clone(), sibling(&hls_prefix, &name)?, "video/mp2t").await?;
        }
        if let Some(media) = &out.hls_media_playlist {
            put(media.clone(), plan.hls.variant.clone(), "application/vnd.apple.mpegurl").await?;
        }
        if let Some(p) = &out.proxy {
            put(p.clone(), plan.proxy.output.clone(), "video/mp4").await?;
        }
        for (path, uri) in log_uris {
            put(path, uri, "text/csv").await?;
        }
        if let Some(master) = &out.hls_master {
            put(master.clone(), plan.hls.master.clone(), "application/vnd.apple.mpegurl").await?;
        }
        Ok((plan, (out.duration_seconds * 1000.0).round() as u64))
    }

    // ---------------------------------------------------------------------------------------
    // Rekognition

    async fn run_rekognition(&self, job: &LedgerJob) -> Result<(), String> {
        let request: AnalysisRequest =
            serde_json::from_value(job.request.clone()).map_err(|e| format!("stored analysis request: {e}"))?;
        let outcome = self.analysis_job(job, &request).await;
        let (status, result) = match outcome {
            Ok(body) => ("SUCCEEDED", body),
            Err(EngineFailure::Port(e)) => return Err(e.to_string()),
            Err(EngineFailure::Input(m)) | Err(EngineFailure::Engine(m)) => ("FAILED", json!({"StatusMessage": m})),
        };
        let completion = VideoJobCompletion {
            job_id: job.job_id.clone(),
            status: status.to_string(),
            api: request.kind.start_api().to_string(),
            job_tag: Some(request.job_tag.clone()),
            timestamp_ms: Some(self.inner.clock.now_ms()),
            video_bucket: Some(request.video.bucket.to_string()),
            video_key: Some(request.video.key.to_string()),
            sns_message_id: None,
        };
        self.inner.topic.publish(&completion_message(&completion)).await.map_err(|e| e.to_string())?;
        let ledger_status = if status == "SUCCEEDED" { "COMPLETE" } else { "ERROR" };
        self.inner.ledger.finish(REKOGNITION, &job.job_id, ledger_status, result).await.map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(self.scratch(job));
        tracing::info!(status, kind = %request.kind, "local Rekognition job finished");
        Ok(())
    }

    async fn analysis_job(&self, job: &LedgerJob, req: &AnalysisRequest) -> Result<Value, EngineFailure> {
        if req.kind != AnalysisKind::Segments {
            // No offline models for these yet: they complete with empty results.
            let mut body = serde_json::Map::new();
            body.insert("JobStatus".into(), json!("SUCCEEDED"));
            body.insert(req.kind.list_field().into(), json!([]));
            return Ok(Value::Object(body));
        }
        let scratch = self.scratch(job);
        std::fs::create_dir_all(&scratch).map_err(|e| EngineFailure::Port(PortError::Transient(format!("{}: {e}", scratch.display()))))?;
        let input = self.local_input(&req.video, &scratch).await?;
        let analysis = analyze(&input, &self.inner.opts.analyze, None).await.map_err(|e| match e.is_input_problem() {
            true => EngineFailure::Input(e.to_string()),
            false => EngineFailure::Engine(e.to_string()),
        })?;
        let mut body = serde_json::to_value(&analysis.segments).map_err(|e| EngineFailure::Engine(e.to_string()))?;
        body["JobStatus"] = json!("SUCCEEDED");
        Ok(body)
    }

    async fn page(&self, kind: AnalysisKind, job_id: &str, next_token: Option<&str>) -> PortResult<ResultsPage> {
        let job = self
            .inner
            .ledger
            .get(REKOGNITION, job_id)
            .await?
            .ok_or_else(|| PortError::NotFound(format!("Rekognition job {job_id}")))?;
        match job.status.as_str() {
            "COMPLETE" => {}
            "ERROR" => {
                let msg = job.result.as_ref().and_then(|r| r.get("StatusMessage")).cloned().unwrap_or(Value::Null);
                return Ok(ResultsPage { body: json!({"JobStatus": "FAILED", "StatusMessage": msg}), next_token: None });
            }
            _ => return Ok(ResultsPage { body: json!({"JobStatus": "IN_PROGRESS"}), next_token: None }),
        }
        let full = job.result.unwrap_or_else(|| json!({}));
        Ok(paginate(full, kind.list_field(), next_token, self.inner.opts.page_size))
    }
}

/// One page of a stored Get* response: items `[offset, offset + size)`, and the next offset as
/// the token.
pub fn paginate(mut full: Value, field: &str, token: Option<&str>, size: usize) -> ResultsPage {
    let offset: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
    let items = full.get(field).and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let end = (offset + size.max(1)).min(items.len());
    let page: Vec<Value> = items.get(offset.min(items.len())..end).map(|s| s.to_vec()).unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    if let Some(obj) = full.as_object_mut() {
        obj.insert(field.to_string(), Value::Array(page));
        if let Some(n) = &next {
            obj.insert("NextToken".into(), json!(n));
        }
    }
    ResultsPage { body: full, next_token: next }
}

fn sibling(of: &S3Uri, name: &str) -> Result<S3Uri, EngineFailure> {
    let dir = of.key.as_str().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let key = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
    S3Uri::parse(&format!("s3://{}/{}", of.bucket, key)).map_err(|e| EngineFailure::Engine(e.to_string()))
}

/// How a local job failed: the input's fault (the job ends in ERROR), the engine's (ERROR too),
/// or a port's (transient: the job stays unfinished and is retried).
#[derive(Debug)]
enum EngineFailure {
    Input(String),
    Engine(String),
    Port(PortError),
}

impl From<EngineError> for EngineFailure {
    fn from(e: EngineError) -> Self {
        if e.is_input_problem() {
            EngineFailure::Input(e.to_string())
        } else {
            EngineFailure::Engine(e.to_string())
        }
    }
}

fn new_job_id(now_ms: u64, token: &str) -> String {
    // MediaConvert ids look like "1700000000000-abc123"; derive the suffix from the token so
    // ids are stable for a token even across processes that race to create it.
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    format!("{now_ms}-{:06x}", h.finish() & 0xff_ffff)
}

fn new_rekognition_job_id(token: &str, now_ms: u64) -> String {
    use std::hash::{Hash, Hasher};
    let mut out = String::with_capacity(64);
    for salt in 0u64..4 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (token, now_ms, salt).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// MediaConvert, played by FFmpeg.
#[derive(Clone)]
pub struct LocalMediaConvert {
    engine: LocalEngine,
}

#[async_trait]
impl Transcoder for LocalMediaConvert {
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String> {
        let inner = &self.engine.inner;
        let now = inner.clock.now_ms();
        let job = LedgerJob {
            service: MEDIACONVERT.into(),
            job_id: new_job_id(now, &request.client_token),
            client_token: request.client_token.clone(),
            asset_id: request.asset_id.to_string(),
            request: json!({"settings": request.settings, "userMetadata": request.user_metadata}),
            status: "SUBMITTED".into(),
            result: None,
            created_at_ms: now,
        };
        let (stored, created) = inner.ledger.create_or_get(&job).await?;
        if created {
            tracing::info!(job_id = %stored.job_id, "local MediaConvert job created");
            self.engine.spawn(stored.clone());
        }
        Ok(stored.job_id)
    }

    async fn find_job(&self, asset_id: &AssetId) -> PortResult<Option<String>> {
        let jobs = self.engine.inner.ledger.find_by_asset(MEDIACONVERT, asset_id.as_str()).await?;
        Ok(jobs.into_iter().next().map(|j| j.job_id))
    }
}

/// Rekognition Video, played by FFmpeg (segments) and empty results (the rest, for now).
#[derive(Clone)]
pub struct LocalRekognition {
    engine: LocalEngine,
}

#[async_trait]
impl VideoAnalyzer for LocalRekognition {
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String> {
        let inner = &self.engine.inner;
        let now = inner.clock.now_ms();
        let job = LedgerJob {
            service: REKOGNITION.into(),
            job_id: new_rekognition_job_id(&request.client_token, now),
            client_token: request.client_token.clone(),
            asset_id: request.job_tag.clone(),
            request: serde_json::to_value(request).map_err(|e| PortError::Permanent(e.to_string()))?,
            status: "SUBMITTED".into(),
            result: None,
            created_at_ms: now,
        };
        let (stored, created) = inner.ledger.create_or_get(&job).await?;
        if created {
            tracing::info!(job_id = %stored.job_id, kind = %request.kind, "local Rekognition job created");
            self.engine.spawn(stored.clone());
        }
        Ok(stored.job_id)
    }

    async fn get_page(&self, kind: AnalysisKind, job_id: &str, next_token: Option<&str>) -> PortResult<ResultsPage> {
        self.engine.page(kind, job_id, next_token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<Value> = (0..2503).map(|i| json!({"i": i})).collect();
        let full = json!({"JobStatus": "SUCCEEDED", "VideoMetadata": [{"DurationMillis": 1}], "Segments": items});
        let mut token: Option<String> = None;
        let mut seen = vec![];
        let mut pages = 0;
        loop {
            let p = paginate(full.clone(), "Segments", token.as_deref(), 1000);
            pages += 1;
            seen.extend(p.body["Segments"].as_array().unwrap().iter().map(|v| v["i"].as_i64().unwrap()));
            assert_eq!(p.body["VideoMetadata"][0]["DurationMillis"], 1);
            token = p.next_token;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, (0..2503).collect::<Vec<_>>());
        let empty = paginate(json!({"Labels": []}), "Labels", None, 1000);
        assert!(empty.next_token.is_none());
        assert_eq!(empty.body["Labels"], json!([]));
    }

    #[test]
    fn job_ids_are_stable_per_token() {
        assert_eq!(new_job_id(5, "t"), new_job_id(5, "t"));
        assert_ne!(new_job_id(5, "t"), new_job_id(5, "u"));
        assert_eq!(new_rekognition_job_id("t", 1).len(), 64);
    }
}
