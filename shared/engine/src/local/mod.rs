//! Local stand-ins for MediaConvert and Rekognition Video over the ports.
//!
//! Both behave like the services as cuepoint sees them: a request is accepted at once and
//! recorded in the job ledger under its client token (the same token returns the same job and
//! runs nothing twice), the work runs on a background task (at most `max_concurrent_jobs` at a
//! time), and completion is announced exactly as AWS announces it — a "MediaConvert Job State
//! Change" event on the bus, a Rekognition completion notification on the topic. Nothing polls.
//! Results live in the ledger, so `get_page` works after a restart, and `resume_unfinished`
//! re-runs what a crash left `SUBMITTED`.

mod mediaconvert;
mod rekognition;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cuepoint_core::domain::S3Uri;
use cuepoint_runtime::ports::{BlobStore, PortError, PortResult};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub use mediaconvert::{LocalMediaConvert, MEDIACONVERT_SERVICE};
pub use rekognition::{LocalRekognition, REKOGNITION_SERVICE, SEGMENTS_PAGE_SIZE};

/// Ledger status of a job still to run.
pub const STATUS_SUBMITTED: &str = "SUBMITTED";
/// Ledger status of a job that finished and was announced.
pub const STATUS_COMPLETE: &str = "COMPLETE";
/// Ledger status of a job that failed and was announced.
pub const STATUS_ERROR: &str = "ERROR";

/// Settings shared by both stand-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEngineConfig {
    /// Account id in event envelopes and ARNs.
    pub account: String,
    pub region: String,
    /// Jobs running at once (each FFmpeg run already uses every core).
    pub max_concurrent_jobs: usize,
    /// Where inputs are downloaded and outputs staged (system temp dir when `None`).
    pub scratch_dir: Option<PathBuf>,
}

impl Default for LocalEngineConfig {
    fn default() -> Self {
        LocalEngineConfig {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            max_concurrent_jobs: 1,
            scratch_dir: None,
        }
    }
}

/// Background jobs of one stand-in: a concurrency limit and the handles to wait on.
pub(crate) struct Runner {
    permits: Arc<tokio::sync::Semaphore>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Set by a graceful stop: jobs still waiting for a permit are left `SUBMITTED` in the
    /// ledger (the next start resumes them) instead of starting now.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Runner {
    pub fn new(max: usize) -> Self {
        Runner {
            permits: Arc::new(tokio::sync::Semaphore::new(max.max(1))),
            tasks: Mutex::new(Vec::new()),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Run `job` in the background once a permit is free.
    pub async fn spawn<F>(&self, job: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let permits = self.permits.clone();
        let stopping = self.stopping.clone();
        let handle = tokio::spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = permits.acquire_owned().await;
            if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            job.await;
        });
        let mut tasks = self.tasks.lock().await;
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Start no more jobs and give the running ones `grace` to finish. Returns whether they
    /// all did; the others are stopped with the process (their FFmpeg children die with it) and
    /// resume, still `SUBMITTED`, on the next start.
    pub async fn drain(&self, grace: std::time::Duration) -> bool {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(grace, self.wait_idle()).await.is_ok()
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
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| {
                PortError::Transient(format!("creating scratch dir {}: {e}", d.display()))
            })?;
            b.tempdir_in(d)
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

/// Both stand-ins over one set of ports: what a process that runs the local media engine holds.
#[derive(Clone)]
pub struct LocalEngine {
    pub media_convert: LocalMediaConvert,
    pub rekognition: LocalRekognition,
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
                bus,
                ledger.clone(),
                clock.clone(),
                config.clone(),
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
            n += self.rekognition.resume_unfinished().await?;
        }
        Ok(n)
    }

    /// A graceful stop: start no queued job, give the running ones `grace` to finish (see
    /// `Runner::drain`). Returns whether every job finished.
    pub async fn drain(&self, grace: std::time::Duration) -> bool {
        let (a, b) = tokio::join!(
            self.media_convert.drain(grace),
            self.rekognition.drain(grace)
        );
        a && b
    }

    /// Wait for every job started so far (tests; a clean stop).
    pub async fn wait_idle(&self) {
        self.media_convert.wait_idle().await;
        self.rekognition.wait_idle().await;
    }
}
