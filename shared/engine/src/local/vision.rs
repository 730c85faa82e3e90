//! The pass shared by a video's segment, label, face and moderation jobs.
//!
//! Rekognition runs each Start* job on its own; locally that would decode the proxy four
//! times. Instead the first of the jobs runs one pass (one FFmpeg decode: the segment detectors
//! on every frame, the vision models on the sampled ones) and the others reuse its result: in
//! this process by waiting on the same cell, across processes through a result file written
//! under an exclusive file lock (the lock dies with its process, so a crash never leaves a
//! stale claim). The file's name is a digest of the video (URI and version: size and mtime of a
//! local file, else the object's ETag), the settings and the installed model files, so a
//! changed proxy or a newly installed model gets a fresh pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cuepoint_core::asset::INFRASTRUCTURE_FAULT;
use cuepoint_core::rekognition::SegmentDetection;
use cuepoint_vision::{ModelFiles, ModelId, VisionConfig, VisionModels, VisionResults};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::digest;
use crate::analyze::{segments_with_samples, AnalyzeOptions};
use crate::error::EngineError;
use crate::probe::{probe_media, MediaInfo};

/// Result files older than this are removed when a new one is written.
const KEEP_RESULTS: Duration = Duration::from_secs(24 * 3600);

/// What one pass over a video found, for each of its jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PassResults {
    pub segments: SegmentDetection,
    pub vision: VisionResults,
}

/// A pass's results, or why it failed (the message each of the video's jobs reports).
pub(crate) type Shared = Arc<Result<Arc<PassResults>, String>>;

/// Runs at most one pass per video at a time and shares its result.
pub(crate) struct ProxyPasses {
    options: AnalyzeOptions,
    config: VisionConfig,
    cache_dir: PathBuf,
    running: Mutex<HashMap<String, Arc<OnceCell<Shared>>>>,
}

impl ProxyPasses {
    pub fn new(options: AnalyzeOptions, config: VisionConfig, cache_dir: PathBuf) -> Self {
        ProxyPasses {
            options: AnalyzeOptions {
                scratch_dir: None,
                ..options
            },
            config,
            cache_dir,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The pass over the video `identity` names (its URI and version), run here or reused.
    /// `video` gives a local file of it and a scratch directory (which keeps that file alive);
    /// it is awaited only when no finished pass can be reused.
    pub async fn results<V>(&self, identity: &str, video: V) -> Shared
    where
        V: std::future::Future<Output = Result<(PathBuf, tempfile::TempDir), String>>,
    {
        let key = self.key(identity);
        let cell = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let shared = cell
            .get_or_init(|| async {
                if let Some(r) = read_result(&self.cache_dir.join(format!("{key}.json"))) {
                    tracing::info!(identity, "analysis pass reused");
                    return Arc::new(Ok(Arc::new(r)));
                }
                let (path, scratch) = match video.await {
                    Ok(v) => v,
                    Err(e) => return Arc::new(Err(e)),
                };
                let info = match path
                    .to_str()
                    .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))
                {
                    Ok(location) => probe_media(location).await.map_err(|e| message(&e)),
                    Err(e) => Err(e),
                };
                let info = match info {
                    Ok(i) => i,
                    Err(e) => return Arc::new(Err(e)),
                };
                let pass = Pass {
                    options: AnalyzeOptions {
                        scratch_dir: Some(scratch.path().to_path_buf()),
                        ..self.options.clone()
                    },
                    config: self.config.clone(),
                    video: path,
                    info,
                };
                let dir = self.cache_dir.clone();
                let key = key.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let r = cached_pass(&dir, &key, &pass);
                    drop(scratch);
                    r
                })
                .await
                .map_err(|e| format!("the analysis pass panicked: {e}"))
                .and_then(|r| r);
                Arc::new(r.map(Arc::new))
            })
            .await
            .clone();
        // Later jobs read the result file; the cell only joins jobs running at the same time.
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            running.remove(&key);
        }
        shared
    }

    fn key(&self, identity: &str) -> String {
        let mut parts = vec![
            identity.to_string(),
            format!("{:?}", self.options),
            format!("{:?}", self.config),
        ];
        for m in ModelId::ALL {
            parts.push(file_stamp(
                &self.config.models_dir.join(m.name()).join(m.onnx_file()),
            ));
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        format!("{:016x}", digest(&parts))
    }
}

/// Size and modification time of a file, or "absent".
pub(crate) fn file_stamp(p: &Path) -> String {
    match std::fs::metadata(p) {
        Ok(m) => format!(
            "{}:{:?}",
            m.len(),
            m.modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        ),
        Err(_) => "absent".into(),
    }
}

/// The message a job reports for an engine error (a fault of the machine says so, and is
/// then retriable with `cuepoint retry`).
fn message(e: &EngineError) -> String {
    if e.is_infrastructure() {
        format!("{INFRASTRUCTURE_FAULT}: {e}")
    } else {
        e.to_string()
    }
}

/// One pass to run: the video, how it probed and the settings.
struct Pass {
    options: AnalyzeOptions,
    config: VisionConfig,
    video: PathBuf,
    info: MediaInfo,
}

impl Pass {
    /// Segment detection and every installed model in one decode of the video (no decode of
    /// samples when no model can run).
    fn run(&self) -> Result<PassResults, String> {
        let models =
            VisionModels::load(ModelFiles::installed(&self.config.models_dir), &self.config);
        let sampling = models.any_running().then_some(&self.config.sampling);
        let (segments, vision) =
            segments_with_samples(&self.video, &self.info, &self.options, sampling, |frames| {
                models.run(frames)
            })
            .map_err(|e| message(&e))?;
        Ok(PassResults {
            segments,
            vision: vision.map_err(|e| e.to_string())?,
        })
    }
}

fn read_result(path: &Path) -> Option<PassResults> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable analysis result; running the pass again");
            None
        }
    }
}

/// The pass's result from `<dir>/<key>.json`, or a new pass written there, under the lock.
fn cached_pass(dir: &Path, key: &str, pass: &Pass) -> Result<PassResults, String> {
    let video = &pass.video;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let lock_path = dir.join(format!("{key}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    lock_exclusive(&lock).map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    let path = dir.join(format!("{key}.json"));
    // Another process may have finished it while this one waited for the lock.
    if let Some(r) = read_result(&path) {
        tracing::info!(video = %video.display(), "analysis pass reused");
        return Ok(r);
    }
    let started = std::time::Instant::now();
    let results = pass.run()?;
    tracing::info!(
        video = %video.display(),
        shots = results.segments.segments.len(),
        frames = results.vision.frames,
        labels = results.vision.labels.items.len(),
        faces = results.vision.faces.items.len(),
        moderation = results.vision.moderation.items.len(),
        seconds = started.elapsed().as_secs_f32(),
        "analysis pass finished"
    );
    let tmp = dir.join(format!("{key}.json.tmp"));
    let written = serde_json::to_vec(&results)
        .map_err(|e| e.to_string())
        .and_then(|b| std::fs::write(&tmp, b).map_err(|e| e.to_string()))
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        // The jobs of this process still get the result; another process would decode again.
        tracing::warn!(file = %path.display(), error = %e, "could not keep the analysis result");
    }
    prune(dir, &path);
    drop(lock);
    Ok(results)
}

/// Remove old result files (never `keep`).
fn prune(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > KEEP_RESULTS);
        if old && p != keep && p.extension().is_some_and(|x| x == "json" || x == "lock") {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(target_os = "linux")]
fn lock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lock_exclusive(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}
