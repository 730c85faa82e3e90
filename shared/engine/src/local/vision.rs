//! The vision pass shared by a video's label, face and moderation jobs.
//!
//! Rekognition runs each Start* job on its own; locally that would decode the proxy three
//! times. Instead the first of the three jobs runs one pass (one decode, every model) and the
//! others reuse its result: in this process by waiting on the same cell, across processes
//! through a result file written under an exclusive file lock (the lock dies with its
//! process, so a crash never leaves a stale claim). The file's name is a digest of the video
//! (URI and version: size and mtime of a local file, else the object's ETag), the settings and
//! the installed model files, so a changed proxy or a newly installed model gets a fresh pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cuepoint_vision::{analyze_video, ModelId, VisionConfig, VisionResults};
use tokio::sync::OnceCell;

use super::digest;

/// Result files older than this are removed when a new one is written.
const KEEP_RESULTS: Duration = Duration::from_secs(24 * 3600);

type Shared = Arc<Result<Arc<VisionResults>, String>>;

/// Runs at most one pass per video at a time and shares its result.
pub(crate) struct VisionPasses {
    config: VisionConfig,
    cache_dir: PathBuf,
    running: Mutex<HashMap<String, Arc<OnceCell<Shared>>>>,
}

impl VisionPasses {
    pub fn new(config: VisionConfig, cache_dir: PathBuf) -> Self {
        VisionPasses {
            config,
            cache_dir,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The pass over the video `identity` names (its URI and version), run here or reused.
    /// `video` gives a local file of it (and what keeps that file alive); it is awaited only
    /// when no finished pass can be reused.
    pub async fn results<V>(&self, identity: &str, video: V) -> Shared
    where
        V: std::future::Future<Output = Result<(PathBuf, Option<tempfile::TempDir>), String>>,
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
                    tracing::info!(identity, "vision pass reused");
                    return Arc::new(Ok(Arc::new(r)));
                }
                let (path, guard) = match video.await {
                    Ok(v) => v,
                    Err(e) => return Arc::new(Err(e)),
                };
                let config = self.config.clone();
                let dir = self.cache_dir.clone();
                let key = key.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let r = cached_pass(&dir, &key, &path, &config);
                    drop(guard);
                    r
                })
                .await
                .map_err(|e| format!("the vision pass panicked: {e}"))
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
        let mut parts = vec![identity.to_string(), format!("{:?}", self.config)];
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

fn read_result(path: &Path) -> Option<VisionResults> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable vision result; running the pass again");
            None
        }
    }
}

/// The pass's result from `<dir>/<key>.json`, or a new pass written there, under the lock.
fn cached_pass(
    dir: &Path,
    key: &str,
    video: &Path,
    config: &VisionConfig,
) -> Result<VisionResults, String> {
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
        tracing::info!(video = %video.display(), "vision pass reused");
        return Ok(r);
    }
    let started = std::time::Instant::now();
    let results = analyze_video(video, config).map_err(|e| e.to_string())?;
    tracing::info!(
        video = %video.display(),
        frames = results.frames,
        labels = results.labels.items.len(),
        faces = results.faces.items.len(),
        moderation = results.moderation.items.len(),
        seconds = started.elapsed().as_secs_f32(),
        "vision pass finished"
    );
    let tmp = dir.join(format!("{key}.json.tmp"));
    let written = serde_json::to_vec(&results)
        .map_err(|e| e.to_string())
        .and_then(|b| std::fs::write(&tmp, b).map_err(|e| e.to_string()))
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        // The jobs of this process still get the result; another process would decode again.
        tracing::warn!(file = %path.display(), error = %e, "could not keep the vision result");
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
