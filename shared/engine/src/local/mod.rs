//! Local stand-ins for MediaConvert, Rekognition Video and Amazon Transcribe over the ports.
//!
//! Both behave like the services as cuepoint sees them: a request is accepted at once and
//! recorded in the job ledger under its client token (the same token returns the same job and
//! runs nothing twice), the work runs on a background task (at most `max_concurrent_jobs` at a
//! time), and completion is announced exactly as AWS announces it — a "MediaConvert Job State
//! Change" event on the bus, a Rekognition completion notification on the topic, a "Transcribe
//! Job State Change" event on the bus. Nothing polls.
//! Results live in the ledger, so `get_page` works after a restart, and `resume_unfinished`
//! re-runs what a crash left `SUBMITTED`.

mod mediaconvert;
mod rekognition;
mod transcribe;
mod vision;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cuepoint_core::domain::S3Uri;
use cuepoint_runtime::ports::{
    BlobStore, JobLedger, LedgerJob, LedgerService, LedgerStatus, PortError, PortResult,
};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub use mediaconvert::{package_spec, packaging_spec, rendition_spec, LocalMediaConvert};
pub use rekognition::{LocalRekognition, SEGMENTS_PAGE_SIZE};
pub use transcribe::{
    LocalTranscribe, ModelSpeechEngine, NoSpeechModels, SpeechEngine, SpeechEngineError,
};

/// Settings shared by both stand-ins.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalEngineConfig {
    /// Account id in event envelopes and ARNs.
    pub account: String,
    pub region: String,
    /// Jobs running at once (each FFmpeg run already uses every core).
    pub max_concurrent_jobs: usize,
    /// Where inputs are downloaded and outputs staged, one directory per running job, plus the
    /// jobs' locks (system temp dir and no cross-process locks when `None`). Cleaned of what
    /// killed runs left when the engine starts.
    pub scratch_dir: Option<PathBuf>,
    /// Where the offline models are installed (`models.dir`; unset: the default location).
    pub models_dir: Option<PathBuf>,
    /// The vision pass of label, face and moderation jobs (models dir, sampling, thresholds).
    pub vision: cuepoint_vision::VisionConfig,
}

impl Default for LocalEngineConfig {
    fn default() -> Self {
        LocalEngineConfig {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            max_concurrent_jobs: 1,
            scratch_dir: None,
            models_dir: None,
            vision: cuepoint_vision::VisionConfig::default(),
        }
    }
}

/// Background jobs of one stand-in: a concurrency limit, the handles to wait on, and a claim
/// per job so that no job runs twice at once.
///
/// With a scratch directory (the embedded backend: `<data_dir>/scratch`), a job runs only
/// while its process holds an exclusive lock on `<scratch>/locks/<job id>.lock`. The lock dies
/// with the process (even on `kill -9`), so two processes on one data directory (two `cuepoint
/// run`s, or a restart that resumes while the old process still drains) never run one job
/// together, and a job abandoned by a dead process is picked up by the next rescan.
pub(crate) struct Runner {
    permits: Arc<tokio::sync::Semaphore>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Set by a graceful stop: jobs still waiting for a permit are left `SUBMITTED` in the
    /// ledger (the next start resumes them) instead of starting now.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Jobs spawned in this process and not yet ended (a rescan does not queue them twice).
    queued: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    scratch: Option<PathBuf>,
}

impl Runner {
    pub fn new(config: &LocalEngineConfig) -> Self {
        if let Some(root) = &config.scratch_dir {
            clean_scratch(root);
        }
        Runner {
            permits: Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_jobs.max(1),
            )),
            tasks: Mutex::new(Vec::new()),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            queued: Arc::default(),
            scratch: config.scratch_dir.clone(),
        }
    }

    /// Run `run(job)` in the background once a permit is free and the job is claimed. The job
    /// is re-read from the ledger after the claim: one that another run finished meanwhile is
    /// not run again. Returns whether the job was queued by this call (false: it is already
    /// queued or running here, or another process holds it).
    pub async fn spawn<F, Fut>(&self, job: LedgerJob, ledger: Arc<dyn JobLedger>, run: F) -> bool
    where
        F: FnOnce(LedgerJob) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let key = format!("{}/{}", job.service, job.job_id);
        if let Ok(mut q) = self.queued.lock() {
            if !q.insert(key.clone()) {
                return false;
            }
        }
        // Claimed when queued, not when started: a job waiting for a permit here is this
        // process's, and neither another process's rescan nor `assets stuck` takes it for lost.
        let claim = match &self.scratch {
            Some(root) => claim_job(root, &job.job_id),
            None => Some(None),
        };
        let Some(claim) = claim else {
            tracing::debug!(job_id = %job.job_id, "job running in another process; not started here");
            if let Ok(mut q) = self.queued.lock() {
                q.remove(&key);
            }
            return false;
        };
        let permits = self.permits.clone();
        let stopping = self.stopping.clone();
        let queued = self.queued.clone();
        let handle = tokio::spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = permits.acquire_owned().await;
            if !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                match ledger.get(job.service, &job.job_id).await {
                    Ok(Some(current)) if current.status == LedgerStatus::Submitted => {
                        run(current).await
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(job_id = %job.job_id, error = %e, "could not re-read the job; the next rescan retries it")
                    }
                }
            }
            drop(claim);
            if let Ok(mut q) = queued.lock() {
                q.remove(&key);
            }
        });
        let mut tasks = self.tasks.lock().await;
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
        true
    }

    /// Start no more jobs and give the running ones `grace` to finish. Returns whether they
    /// all did; the others are stopped with the process (their FFmpeg children die with it) and
    /// resume, still `SUBMITTED`, on the next start.
    pub async fn drain(&self, grace: std::time::Duration) -> bool {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(grace, self.wait_idle()).await.is_ok()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Run `op` until it succeeds, backing off up to 5 s between tries: a job's outcome must
    /// be recorded and announced even while the database is locked for a while (a backup, a
    /// long write by another process). Gives up only on a graceful stop (`false`): the job then
    /// stays `SUBMITTED` and is resumed.
    pub async fn persist<T, F, Fut>(&self, what: &str, job_id: &str, mut op: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = PortResult<T>>,
    {
        let mut delay = std::time::Duration::from_millis(200);
        let mut attempt = 1u32;
        loop {
            match op().await {
                Ok(v) => {
                    if attempt > 1 {
                        tracing::info!(%job_id, attempt, "{what}: done after retrying");
                    }
                    return Some(v);
                }
                Err(e) if self.is_stopping() => {
                    tracing::warn!(%job_id, error = %e, "{what} failed while stopping; the job resumes on the next start");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(%job_id, attempt, error = %e, "{what} failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                    attempt += 1;
                }
            }
        }
    }

    /// Wait until every job spawned so far has finished.
    pub async fn wait_idle(&self) {
        loop {
            let pending: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock().await);
            if pending.is_empty() {
                return;
            }
            for t in pending {
                if let Err(e) = t.await {
                    tracing::error!(error = %e, "local engine job task panicked");
                }
            }
        }
    }
}

/// A job's file-system name: its id without anything a path could misread.
fn job_dir_name(job_id: &str) -> String {
    job_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(80)
        .collect()
}

/// Held while a job runs: the lock on `<scratch>/locks/<job>.lock`, and the job's scratch
/// directory `<scratch>/jobs/<job>/`, removed when the claim ends.
pub(crate) struct JobClaim {
    _lock: std::fs::File,
    dir: PathBuf,
}

impl Drop for JobClaim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `Some(Some(claim))`: this process may run the job; `None`: another holder runs it.
/// `Some(None)` when the lock cannot be made at all (the job runs unguarded, as before locks).
fn claim_job(root: &Path, job_id: &str) -> Option<Option<JobClaim>> {
    let name = job_dir_name(job_id);
    let locks = root.join("locks");
    let lock = std::fs::create_dir_all(&locks).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(locks.join(format!("{name}.lock")))
    });
    let file = match lock {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(dir = %locks.display(), error = %e, "cannot create a job lock; running unguarded");
            return Some(None);
        }
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return None,
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(error = %e, "cannot lock a job; running unguarded");
            return Some(None);
        }
    }
    // Whatever a killed run left here is stale: this process owns the job now.
    let dir = root.join("jobs").join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    Some(Some(JobClaim { _lock: file, dir }))
}

/// Whether no process holds `job_id` (`false` without a scratch directory: unknown).
pub(crate) fn is_unattended(root: Option<&Path>, job_id: &str) -> bool {
    match root {
        Some(root) => matches!(claim_job(root, job_id), Some(Some(_))),
        None => false,
    }
}

/// What the job control the local stand-ins share needs from one of them (its `Inner`): its
/// ledger service, the runner and ledger of its jobs, and how to run one job.
pub(crate) trait JobService: Send + Sync + 'static {
    const SERVICE: LedgerService;
    /// What the log calls one of its jobs.
    const JOB: &'static str;
    fn runner(&self) -> &Runner;
    fn ledger(&self) -> &Arc<dyn JobLedger>;
    fn scratch_dir(&self) -> Option<&Path>;
    fn run_job(self: Arc<Self>, job: LedgerJob) -> impl std::future::Future<Output = ()> + Send;
}

/// Queue `job` on the stand-in's runner; whether this call queued it (see `Runner::spawn`).
pub(crate) async fn spawn_job<S: JobService>(service: &Arc<S>, job: LedgerJob) -> bool {
    let this = service.clone();
    service
        .runner()
        .spawn(job, service.ledger().clone(), move |job| this.run_job(job))
        .await
}

/// Take up the jobs the ledger still has `SUBMITTED` (after a crash or restart, or abandoned
/// by a dead process). A rescan finds the jobs this process is running too: only those it
/// takes up now are resumed (and said so). Returns how many.
pub(crate) async fn resume_jobs<S: JobService>(service: &Arc<S>) -> PortResult<usize> {
    let mut n = 0;
    for job in service.ledger().unfinished(S::SERVICE).await? {
        let (job_id, asset) = (job.job_id.clone(), job.asset_id.clone());
        if spawn_job(service, job).await {
            tracing::info!(%job_id, %asset, "resuming {}", S::JOB);
            n += 1;
        }
    }
    Ok(n)
}

/// The job control of a stand-in `$standin { inner: Arc<Inner> }` whose `Inner` has `runner`,
/// `ledger` and `config` and runs a job with `async fn run(&self, job: LedgerJob)`.
macro_rules! job_control {
    ($standin:ty, $service:expr, $job:literal) => {
        impl super::JobService for Inner {
            const SERVICE: LedgerService = $service;
            const JOB: &'static str = $job;

            fn runner(&self) -> &Runner {
                &self.runner
            }

            fn ledger(&self) -> &Arc<dyn JobLedger> {
                &self.ledger
            }

            fn scratch_dir(&self) -> Option<&std::path::Path> {
                self.config.scratch_dir.as_deref()
            }

            fn run_job(
                self: Arc<Self>,
                job: LedgerJob,
            ) -> impl std::future::Future<Output = ()> + Send {
                async move { self.run(job).await }
            }
        }

        impl $standin {
            /// Re-run the jobs the ledger still has `SUBMITTED` that this process is not
            /// running yet. Returns how many it took up.
            pub async fn resume_unfinished(&self) -> PortResult<usize> {
                super::resume_jobs(&self.inner).await
            }

            /// Wait until every job started so far has finished and been announced.
            pub async fn wait_idle(&self) {
                super::JobService::runner(&*self.inner).wait_idle().await;
            }

            /// Unfinished jobs no process holds (see `LocalEngine::unattended`).
            pub async fn unattended(&self) -> PortResult<Vec<LedgerJob>> {
                let inner = &*self.inner;
                super::unattended_jobs(
                    super::JobService::ledger(inner).as_ref(),
                    <Inner as super::JobService>::SERVICE,
                    super::JobService::scratch_dir(inner),
                )
                .await
            }

            pub(crate) fn is_stopping(&self) -> bool {
                super::JobService::runner(&*self.inner).is_stopping()
            }

            /// Start no queued job; give the running ones `grace` (see `LocalEngine::drain`).
            pub async fn drain(&self, grace: std::time::Duration) -> bool {
                super::JobService::runner(&*self.inner).drain(grace).await
            }

            async fn spawn(&self, job: LedgerJob) -> bool {
                super::spawn_job(&self.inner, job).await
            }
        }
    };
}
pub(crate) use job_control;

/// The unfinished jobs of `service` that no process holds (see `LocalEngine::unattended`).
pub(crate) async fn unattended_jobs(
    ledger: &dyn JobLedger,
    service: LedgerService,
    root: Option<&Path>,
) -> PortResult<Vec<LedgerJob>> {
    let jobs = ledger.unfinished(service).await?;
    Ok(jobs
        .into_iter()
        .filter(|j| is_unattended(root, &j.job_id))
        .collect())
}

/// Remove what killed runs left in the scratch directory: job directories whose lock nobody
/// holds, and the per-run temporary directories of older versions.
fn clean_scratch(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root.join("jobs")) else {
        return legacy(root);
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if let Some(Some(claim)) = claim_job(root, &name) {
            tracing::info!(dir = %claim.dir.display(), "removing the scratch of an interrupted job");
            drop(claim);
        }
    }
    legacy(root);

    fn legacy(root: &Path) {
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("cuepoint-job-"))
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A stable 64-bit digest of some strings (std's SipHash with fixed keys).
pub(crate) fn digest(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// A scratch directory for one job.
pub(crate) fn job_scratch(
    config: &LocalEngineConfig,
    job_id: &str,
) -> PortResult<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    let prefix = format!(
        "cuepoint-job-{}-",
        job_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(24)
            .collect::<String>()
    );
    b.prefix(&prefix);
    let dir = match &config.scratch_dir {
        Some(root) => {
            let d = root.join("jobs").join(job_dir_name(job_id));
            std::fs::create_dir_all(&d).map_err(|e| {
                PortError::Transient(format!("creating scratch dir {}: {e}", d.display()))
            })?;
            b.tempdir_in(&d)
        }
        None => b.tempdir(),
    };
    dir.map_err(|e| PortError::Transient(format!("creating a scratch directory: {e}")))
}

/// A local file holding `uri`: the blob itself when the store is a directory tree (embedded),
/// else a download into `scratch`. `Ok(None)` when the object does not exist.
pub(crate) async fn local_input(
    blobs: &Arc<dyn BlobStore>,
    uri: &S3Uri,
    scratch: &Path,
) -> PortResult<Option<PathBuf>> {
    if let Some(p) = blobs.local_path(uri) {
        if p.is_file() {
            return Ok(Some(p));
        }
    }
    let Some(bytes) = blobs.get(uri).await? else {
        return Ok(None);
    };
    let name = uri.key.file_name();
    let name = if name.is_empty() { "input" } else { name };
    let path = scratch.join(format!("input-{name}"));
    tokio::fs::write(&path, bytes)
        .await
        .map_err(|e| PortError::Transient(format!("writing {}: {e}", path.display())))?;
    Ok(Some(path))
}

/// `s3://bucket/<dir of uri>/<name>`.
pub(crate) fn sibling(uri: &S3Uri, name: &str) -> PortResult<S3Uri> {
    let key = uri.key.as_str();
    let full = match key.rsplit_once('/') {
        Some((dir, _)) => format!("s3://{}/{dir}/{name}", uri.bucket),
        None => format!("s3://{}/{name}", uri.bucket),
    };
    S3Uri::parse(&full)
        .map_err(|e| PortError::Permanent(format!("output name {name:?} next to {uri}: {e}")))
}

/// Content type by file extension, as S3 would store MediaConvert's outputs.
pub(crate) fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/MP2T",
        "mp4" => "video/mp4",
        "csv" => "text/csv",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_and_types() {
        let u = S3Uri::parse("s3://out-bucket/a1/hls/index.m3u8").unwrap();
        assert_eq!(
            sibling(&u, "index_main_00001.ts").unwrap().to_string(),
            "s3://out-bucket/a1/hls/index_main_00001.ts"
        );
        assert_eq!(content_type(Path::new("x/y.ts")), "video/MP2T");
        assert_eq!(digest(&["a", "b"]), digest(&["a", "b"]));
        assert_ne!(digest(&["ab", ""]), digest(&["a", "b"]));
    }
}

/// The stand-ins over one set of ports: what a process that runs the local media engine holds.
#[derive(Clone)]
pub struct LocalEngine {
    pub media_convert: LocalMediaConvert,
    pub rekognition: LocalRekognition,
    pub transcribe: LocalTranscribe,
}

/// The speech models of this build, from the configured models directory.
pub fn speech_engine(config: &LocalEngineConfig) -> Arc<dyn SpeechEngine> {
    let dir = cuepoint_models::ModelsDir::resolve(config.models_dir.as_deref());
    Arc::new(ModelSpeechEngine::new(dir.root()))
}

impl LocalEngine {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        bus: Arc<dyn cuepoint_runtime::ports::EventBus>,
        topic: Arc<dyn cuepoint_runtime::ports::Topic>,
        ledger: Arc<dyn cuepoint_runtime::ports::JobLedger>,
        clock: Arc<dyn cuepoint_runtime::ports::Clock>,
        config: LocalEngineConfig,
    ) -> Self {
        LocalEngine {
            media_convert: LocalMediaConvert::new(
                blobs.clone(),
                bus.clone(),
                ledger.clone(),
                clock.clone(),
                config.clone(),
            ),
            transcribe: LocalTranscribe::new(
                blobs.clone(),
                bus.clone(),
                ledger.clone(),
                clock.clone(),
                config.clone(),
                speech_engine(&config),
            ),
            rekognition: LocalRekognition::new(blobs, topic, ledger, clock, config),
        }
    }

    /// Resume the unfinished jobs of the services this process submits to. With several worker
    /// processes sharing one ledger, each resumes only its own service's jobs, so no job runs
    /// in two processes.
    pub async fn resume(&self, media_convert: bool, rekognition: bool) -> PortResult<usize> {
        let mut n = 0;
        if media_convert {
            n += self.media_convert.resume_unfinished().await?;
        }
        if rekognition {
            // The analysis worker starts the transcription beside the video analyses.
            n += self.rekognition.resume_unfinished().await?;
            n += self.transcribe.resume_unfinished().await?;
        }
        Ok(n)
    }

    /// Resume the unfinished jobs of these services every `every` until a graceful stop:
    /// a job whose process died (its lock died with it) while this one runs is taken over,
    /// and a job finished but not yet announced is announced. Jobs running elsewhere are left
    /// alone (see `Runner`).
    pub fn rescan_every(
        &self,
        media_convert: bool,
        rekognition: bool,
        every: std::time::Duration,
    ) -> JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if engine.media_convert.is_stopping()
                    || engine.rekognition.is_stopping()
                    || engine.transcribe.is_stopping()
                {
                    return;
                }
                if let Err(e) = engine.resume(media_convert, rekognition).await {
                    tracing::warn!(error = %e, "rescanning unfinished local jobs failed; retrying later");
                }
            }
        })
    }

    /// Unfinished jobs that no process holds (none runs or queues them): their process died,
    /// and no process that runs this service is alive to take them over.
    pub async fn unattended(&self) -> PortResult<Vec<LedgerJob>> {
        let mut out = self.media_convert.unattended().await?;
        out.extend(self.rekognition.unattended().await?);
        out.extend(self.transcribe.unattended().await?);
        Ok(out)
    }

    /// A graceful stop: start no queued job, give the running ones `grace` to finish (see
    /// `Runner::drain`). Returns whether every job finished.
    pub async fn drain(&self, grace: std::time::Duration) -> bool {
        let (a, b, c) = tokio::join!(
            self.media_convert.drain(grace),
            self.rekognition.drain(grace),
            self.transcribe.drain(grace)
        );
        a && b && c
    }

    /// Wait for every job started so far (tests; a clean stop).
    pub async fn wait_idle(&self) {
        self.media_convert.wait_idle().await;
        self.rekognition.wait_idle().await;
        self.transcribe.wait_idle().await;
    }
}
