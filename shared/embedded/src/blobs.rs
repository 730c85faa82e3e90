//! Blobs as files: `s3://bucket/key` is `<data_dir>/blobs/<bucket>/<key segments>`.
//!
//! - A key that would escape (or alias) its bucket directory — `..`, `.`, empty segments, a
//!   leading `/`, a backslash — is refused (`ObjectKey::relative_path_segments`), and so is a
//!   path that passes through a symbolic link below the blob root, so a planted link cannot
//!   redirect reads or writes outside it.
//! - Writes are atomic: a temp file in the target directory, fsync, rename, fsync of the
//!   directory. Readers see the old object or the new one, never half of one. Writes in
//!   flight into one directory share its fsync (`DirSyncs`): one that started after a write's
//!   rename makes that rename durable as surely as a sync of its own, and an asset's results
//!   are written side by side into one directory. `put_many` writes its objects one by one
//!   (each synced before its rename) and syncs each directory once after all the renames.
//! - `head`'s etag is a hash of the content (SHA-256, first 16 bytes in hex), as S3's is for a
//!   single-part upload: the etag names the asset (`AssetId::for_source`), so the same bytes
//!   must give the same etag whether they were uploaded twice at once, copied with the data
//!   directory (`cp -a`, a restore: new inodes) or written by another process. Hashing large
//!   media on every head would be slow, so the hash is kept in a sidecar under
//!   `<root>/.etags/` with the file's (size, mtime, inode, device) stamp, and recomputed when
//!   the stamp no longer matches. Files up to 16 KiB (results, playlists) are hashed on every head instead.
//! - Content types are not stored (files have none).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use async_trait::async_trait;
use cuepoint_core::domain::{ObjectKey, S3Uri};
use cuepoint_runtime::ports::{BlobMeta, BlobPut, BlobStore, PortError, PortResult};
use sha2::{Digest, Sha256};

use crate::ids;

/// Temp files start with this; keys with a segment starting with it are refused so a listing
/// never confuses one with an object.
const TEMP_PREFIX: &str = ".cuepoint-tmp-";

/// Content-hash sidecars live under `<root>/.etags/<bucket>/<key>.etag` (no bucket name starts
/// with a dot, so no bucket can collide with it).
const ETAG_DIR: &str = ".etags";

/// Files up to this size are hashed on every `head`: reading them costs less than a sidecar
/// (a file, and directories, created beside each).
const HASH_WITHOUT_SIDECAR: u64 = 16 * 1024;

#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    syncs: Arc<DirSyncs>,
}

/// Directory fsyncs shared by the writes in flight (blocking threads), per directory.
#[derive(Debug, Default)]
struct DirSyncs {
    dirs: Mutex<HashMap<PathBuf, Arc<DirSync>>>,
    writes: AtomicU64,
    syncs: AtomicU64,
}

/// How many blob writes shared how many directory fsyncs (this store, so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirSyncStats {
    pub writes: u64,
    pub syncs: u64,
}

/// `1.4 (2500 writes, 1780 directory syncs)`.
impl std::fmt::Display for DirSyncStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} ({} writes, {} directory syncs)",
            self.writes as f64 / self.syncs.max(1) as f64,
            self.writes,
            self.syncs
        )
    }
}

#[derive(Debug, Default)]
struct DirSync {
    state: Mutex<DirState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct DirState {
    /// Writes waiting on this entry (it is dropped from the map when none is left).
    users: usize,
    /// Renames registered so far, numbered from 1.
    registered: u64,
    /// Every rename numbered up to this is durable (a sync that started after it succeeded).
    synced: u64,
    /// A sync is running.
    syncing: bool,
    /// The renames numbered up to this were covered by a sync that failed: each of them fails
    /// (a later sync's success would not prove their entries reached the disk).
    failed: Option<(u64, io::ErrorKind, String)>,
}

impl DirSyncs {
    /// Make the renames done in `dir` so far durable (`writes` of them are the caller's): join
    /// the sync that starts next, or run it when none is running. Call after the renames.
    fn sync(&self, dir: &Path, writes: u64) -> io::Result<()> {
        let entry = {
            let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
            let e = Arc::clone(dirs.entry(dir.to_path_buf()).or_default());
            e.state.lock().unwrap_or_else(|p| p.into_inner()).users += 1;
            e
        };
        let result = entry.sync(dir, &self.syncs);
        self.writes.fetch_add(writes, Ordering::Relaxed);
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = entry.state.lock().unwrap_or_else(|p| p.into_inner());
        st.users -= 1;
        if st.users == 0 {
            dirs.remove(dir);
        }
        result
    }
}

impl DirSync {
    fn sync(&self, dir: &Path, syncs: &AtomicU64) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.registered += 1;
        let mine = st.registered;
        loop {
            if let Some((upto, kind, msg)) = &st.failed {
                if *upto >= mine {
                    return Err(io::Error::new(*kind, msg.clone()));
                }
            }
            if st.synced >= mine {
                return Ok(());
            }
            if st.syncing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Every rename registered so far happened before this sync starts.
            st.syncing = true;
            let target = st.registered;
            drop(st);
            syncs.fetch_add(1, Ordering::Relaxed);
            let outcome = fs::File::open(dir).and_then(|d| d.sync_all());
            st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.syncing = false;
            match outcome {
                Ok(()) => st.synced = target,
                Err(e) => st.failed = Some((target, e.kind(), e.to_string())),
            }
            self.done.notify_all();
        }
    }
}

fn io_error(what: &str, path: &Path, e: io::Error) -> PortError {
    let msg = format!("{what} {}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::NotFound => PortError::NotFound(msg),
        io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::TimedOut
        | io::ErrorKind::StorageFull => PortError::Transient(msg),
        _ => PortError::Permanent(msg),
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> PortResult<T> + Send + 'static,
) -> PortResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) => Err(PortError::Transient(format!("blob task failed: {e}"))),
    }
}

impl FsBlobStore {
    /// A store rooted at `root` (normally `<data_dir>/blobs`, created by the backend).
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            syncs: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many writes shared how many directory fsyncs so far.
    pub fn dir_sync_stats(&self) -> DirSyncStats {
        DirSyncStats {
            writes: self.syncs.writes.load(Ordering::Relaxed),
            syncs: self.syncs.syncs.load(Ordering::Relaxed),
        }
    }

    fn key_segments(key: &ObjectKey) -> PortResult<Vec<&str>> {
        let segs = key.relative_path_segments().ok_or_else(|| {
            PortError::Permanent(format!("object key \"{}\" would escape the blob directory (., .., empty segment, leading / or backslash)", key.as_str()))
        })?;
        if segs.iter().any(|s| s.starts_with(TEMP_PREFIX)) {
            return Err(PortError::Permanent(format!(
                "object key \"{}\": segments starting with {TEMP_PREFIX:?} are reserved",
                key.as_str()
            )));
        }
        Ok(segs)
    }

    /// The file of `uri`, after the key checks (no file-system access).
    pub fn path_of(&self, uri: &S3Uri) -> PortResult<PathBuf> {
        let mut p = self.root.join(uri.bucket.as_str());
        for seg in Self::key_segments(&uri.key)? {
            p.push(seg);
        }
        Ok(p)
    }

    /// The file of `uri`, refusing any path through a symbolic link below the root.
    fn checked_path(&self, uri: &S3Uri) -> PortResult<PathBuf> {
        let path = self.path_of(uri)?;
        self.refuse_symlinks(&path, uri)?;
        Ok(path)
    }

    fn refuse_symlinks(&self, path: &Path, uri: &S3Uri) -> PortResult<Walked> {
        let rel = path
            .strip_prefix(&self.root)
            .map_err(|_| PortError::Permanent(format!("{uri}: path outside the blob root")))?;
        let mut cur = self.root.clone();
        let count = rel.components().count();
        for (i, comp) in rel.components().enumerate() {
            cur.push(comp);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(PortError::Permanent(format!(
                        "object key \"{}\" passes through a symbolic link at {}",
                        uri.key.as_str(),
                        cur.display()
                    )))
                }
                Ok(m) if i + 1 == count => {
                    return Ok(Walked {
                        parent_exists: true,
                        is_dir: m.is_dir(),
                    })
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(Walked {
                        parent_exists: i + 1 == count,
                        is_dir: false,
                    })
                }
                Err(e) => return Err(io_error("inspecting", &cur, e)),
            }
        }
        Ok(Walked {
            parent_exists: true,
            is_dir: true,
        })
    }

    /// Write `fill`'s output to `path` atomically (temp file in the same directory, fsync, rename,
    /// fsync of the directory). Refuses a path through a symbolic link.
    fn write_atomic(
        &self,
        uri: &S3Uri,
        path: &Path,
        fill: impl FnOnce(&mut fs::File, &Path) -> io::Result<()>,
    ) -> PortResult<()> {
        let parent = self.write_renamed(uri, path, fill)?;
        // The rename itself is durable once the directory is synced.
        self.syncs
            .sync(parent, 1)
            .map_err(|e| io_error("writing", path, e))
    }

    /// Write objects as `write_atomic` does, one after the other, then sync each directory
    /// they went into once: a directory's fsync after every rename into it makes each of them
    /// as durable as a sync of its own would.
    fn write_many(&self, objects: &[(S3Uri, PathBuf, Vec<u8>)]) -> PortResult<()> {
        let mut dirs: Vec<(&Path, u64)> = Vec::new();
        for (uri, path, bytes) in objects {
            let parent = self.write_renamed(uri, path, |f, _| f.write_all(bytes))?;
            match dirs.iter_mut().find(|(d, _)| *d == parent) {
                Some((_, n)) => *n += 1,
                None => dirs.push((parent, 1)),
            }
        }
        for (dir, writes) in dirs {
            self.syncs
                .sync(dir, writes)
                .map_err(|e| io_error("syncing", dir, e))?;
        }
        Ok(())
    }

    /// Everything of `write_atomic` but the directory's sync; returns the directory.
    fn write_renamed<'p>(
        &self,
        uri: &S3Uri,
        path: &'p Path,
        fill: impl FnOnce(&mut fs::File, &Path) -> io::Result<()>,
    ) -> PortResult<&'p Path> {
        let parent = path
            .parent()
            .ok_or_else(|| PortError::Permanent(format!("{uri}: no parent directory")))?;
        let mut walked = self.refuse_symlinks(path, uri)?;
        if !walked.parent_exists {
            fs::create_dir_all(parent).map_err(|e| {
                PortError::Permanent(format!("{uri}: cannot create directory {} (does an object name a prefix of this key?): {e}", parent.display()))
            })?;
            // The directories now exist: check again that none of them is a link.
            walked = self.refuse_symlinks(path, uri)?;
        }
        if walked.is_dir {
            return Err(PortError::Permanent(format!(
                "{uri}: {} is a directory (other objects use this key as a prefix)",
                path.display()
            )));
        }
        let tmp = parent.join(format!("{TEMP_PREFIX}{}", ids::new_token()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            fill(&mut f, &tmp)?;
            f.flush()?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io_error("writing", path, e));
        }
        Ok(parent)
    }

    /// What identifies one version of a file cheaply: a rewrite (a new file by rename) or a
    /// copy changes it.
    fn stamp(meta: &fs::Metadata) -> String {
        format!(
            "{}-{}.{}-{}-{}",
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ino(),
            meta.dev()
        )
    }

    /// The content hash of the file at `path`.
    fn hash_file(path: &Path) -> PortResult<String> {
        let mut file = fs::File::open(path).map_err(|e| io_error("hashing", path, e))?;
        let mut h = Sha256::new();
        io::copy(&mut file, &mut h).map_err(|e| io_error("hashing", path, e))?;
        Ok(h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// The sidecar holding `uri`'s content hash.
    fn etag_path(&self, uri: &S3Uri) -> PortResult<PathBuf> {
        let mut p = self.root.join(ETAG_DIR).join(uri.bucket.as_str());
        let segs = Self::key_segments(&uri.key)?;
        let (last, dirs) = segs
            .split_last()
            .ok_or_else(|| PortError::Permanent(format!("{uri}: empty key")))?;
        for seg in dirs {
            p.push(seg);
        }
        p.push(format!("{last}.etag"));
        Ok(p)
    }

    /// The content hash of the file at `path` (the object `uri`), from the sidecar when its
    /// stamp still matches.
    fn etag(&self, uri: &S3Uri, path: &Path, meta: &fs::Metadata) -> PortResult<String> {
        if meta.len() <= HASH_WITHOUT_SIDECAR {
            return Self::hash_file(path);
        }
        let stamp = Self::stamp(meta);
        let side = self.etag_path(uri)?;
        if let Ok(text) = fs::read_to_string(&side) {
            if let Some((st, tag)) = text.trim().split_once(' ') {
                if st == stamp {
                    return Ok(tag.to_string());
                }
            }
        }
        let tag = Self::hash_file(path)?;
        // Best effort: without the sidecar the next head hashes again.
        if let Some(dir) = side.parent() {
            let tmp = dir.join(format!("{TEMP_PREFIX}{}", ids::new_token()));
            let written = fs::create_dir_all(dir)
                .and_then(|_| fs::write(&tmp, format!("{stamp} {tag}\n")))
                .and_then(|_| fs::rename(&tmp, &side));
            if written.is_err() {
                let _ = fs::remove_file(&tmp);
            }
        }
        Ok(tag)
    }

    fn list_blocking(&self, prefix: &S3Uri) -> PortResult<Vec<S3Uri>> {
        let p = prefix.key.as_str();
        // Walk only the directory the prefix names fully; filter the rest by string prefix.
        let dir_part = p.rfind('/').map_or("", |i| &p[..i]);
        let mut dir = self.root.join(prefix.bucket.as_str());
        if !dir_part.is_empty() {
            for seg in dir_part.split('/') {
                if seg.is_empty() || seg == "." || seg == ".." || seg.contains('\\') {
                    return Err(PortError::Permanent(format!(
                        "list prefix {p:?} would escape the blob directory"
                    )));
                }
                dir.push(seg);
            }
        }
        self.refuse_symlinks(&dir, prefix)?;
        let mut keys = Vec::new();
        let mut stack = vec![(dir, dir_part.to_string())];
        while let Some((d, rel)) = stack.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::NotADirectory =>
                {
                    continue
                }
                Err(e) => return Err(io_error("listing", &d, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error("listing", &d, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    tracing::debug!(dir = %d.display(), "skipping a file name that is not UTF-8");
                    continue;
                };
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let ft = entry
                    .file_type()
                    .map_err(|e| io_error("listing", &entry.path(), e))?;
                // Links are neither followed nor listed.
                if ft.is_dir() {
                    if key.starts_with(p) || p.starts_with(&format!("{key}/")) {
                        stack.push((entry.path(), key));
                    }
                } else if ft.is_file() && key.starts_with(p) {
                    if let Ok(k) = ObjectKey::parse(key) {
                        keys.push(S3Uri::new(prefix.bucket.clone(), k));
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn get(&self, uri: &S3Uri) -> PortResult<Option<Vec<u8>>> {
        let (me, uri) = (self.clone(), uri.clone());
        run_blocking(move || {
            let path = me.checked_path(&uri)?;
            match fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if absent(&e) || e.kind() == io::ErrorKind::IsADirectory => Ok(None),
                Err(e) => Err(io_error("reading", &path, e)),
            }
        })
        .await
    }

    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>, _content_type: &str) -> PortResult<()> {
        let (me, uri) = (self.clone(), uri.clone());
        run_blocking(move || {
            // `write_atomic` refuses links on the way.
            let path = me.path_of(&uri)?;
            me.write_atomic(&uri, &path, |f, _| f.write_all(&bytes))
        })
        .await
    }

    /// One blocking task for all of them, and one fsync per directory they go into.
    async fn put_many(&self, objects: Vec<BlobPut>) -> PortResult<()> {
        let me = self.clone();
        run_blocking(move || {
            let objects = objects
                .into_iter()
                .map(|o| Ok((me.path_of(&o.uri)?, o)))
                .collect::<PortResult<Vec<_>>>()?
                .into_iter()
                .map(|(path, o)| (o.uri, path, o.bytes))
                .collect::<Vec<_>>();
            me.write_many(&objects)
        })
        .await
    }

    async fn head(&self, uri: &S3Uri) -> PortResult<Option<BlobMeta>> {
        let (me, uri) = (self.clone(), uri.clone());
        run_blocking(move || {
            let path = me.checked_path(&uri)?;
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => Ok(Some(BlobMeta {
                    size: m.len(),
                    etag: Some(me.etag(&uri, &path, &m)?),
                })),
                Ok(_) => Ok(None),
                Err(e) if absent(&e) => Ok(None),
                Err(e) => Err(io_error("inspecting", &path, e)),
            }
        })
        .await
    }

    async fn list(&self, prefix: &S3Uri) -> PortResult<Vec<S3Uri>> {
        let (me, prefix) = (self.clone(), prefix.clone());
        run_blocking(move || me.list_blocking(&prefix)).await
    }

    async fn put_file(&self, uri: &S3Uri, path: &Path, _content_type: &str) -> PortResult<()> {
        let (me, uri, src) = (self.clone(), uri.clone(), path.to_path_buf());
        run_blocking(move || {
            let dest = me.checked_path(&uri)?;
            // The engine may have written the output in place (through `local_path`).
            if let (Ok(a), Ok(b)) = (fs::canonicalize(&src), fs::canonicalize(&dest)) {
                if a == b {
                    return Ok(());
                }
            }
            let mut input =
                fs::File::open(&src).map_err(|e| io_error("opening upload source", &src, e))?;
            me.write_atomic(&uri, &dest, |f, _| io::copy(&mut input, f).map(|_| ()))
        })
        .await
    }

    async fn readable_location(&self, uri: &S3Uri) -> PortResult<String> {
        let (me, uri) = (self.clone(), uri.clone());
        run_blocking(move || {
            let path = me.checked_path(&uri)?;
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => path.to_str().map(str::to_string).ok_or_else(|| {
                    PortError::Permanent(format!(
                        "{uri}: blob path {} is not UTF-8",
                        path.display()
                    ))
                }),
                Ok(_) => Err(PortError::NotFound(format!(
                    "{uri}: {} is not a file",
                    path.display()
                ))),
                Err(e) if absent(&e) => Err(PortError::NotFound(format!(
                    "{uri}: no such object ({})",
                    path.display()
                ))),
                Err(e) => Err(io_error("locating", &path, e)),
            }
        })
        .await
    }

    /// The file for `uri`; `None` when the key is refused (it would escape the blob directory
    /// or passes through a symbolic link).
    fn local_path(&self, uri: &S3Uri) -> Option<PathBuf> {
        self.checked_path(uri).ok()
    }
}

/// What walking a blob path found (no component being a link).
struct Walked {
    /// Every directory above the file exists.
    parent_exists: bool,
    /// The path itself is a directory.
    is_dir: bool,
}

/// The object does not exist (a missing file, or a file where a directory of the key should be).
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_directory_sync_fails_the_writes_it_covered_and_the_next_one_syncs_again() {
        let syncs = DirSyncs::default();
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let e = syncs.sync(&gone, 1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        syncs.sync(dir.path(), 1).unwrap();
        syncs.sync(dir.path(), 1).unwrap();
        assert_eq!(syncs.writes.load(Ordering::Relaxed), 3);
        assert_eq!(syncs.syncs.load(Ordering::Relaxed), 3);
        // Entries are dropped once no write waits on them.
        assert!(syncs.dirs.lock().unwrap().is_empty());
    }

    #[test]
    fn writes_waiting_while_a_sync_runs_share_the_next_one() {
        let syncs = Arc::new(DirSyncs::default());
        let dir = tempfile::tempdir().unwrap();
        let entry = Arc::clone(
            syncs
                .dirs
                .lock()
                .unwrap()
                .entry(dir.path().to_path_buf())
                .or_default(),
        );
        // A sync is running: the writes arriving now wait for the next one.
        entry.state.lock().unwrap().syncing = true;
        entry.state.lock().unwrap().users += 1;
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let (syncs, path) = (Arc::clone(&syncs), dir.path().to_path_buf());
                std::thread::spawn(move || syncs.sync(&path, 1))
            })
            .collect();
        while entry.state.lock().unwrap().registered < 8 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The running sync ends having covered none of them (it started before they registered).
        {
            let mut st = entry.state.lock().unwrap();
            st.syncing = false;
            st.users -= 1;
        }
        entry.done.notify_all();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
        assert_eq!(syncs.writes.load(Ordering::Relaxed), 8);
        assert_eq!(
            syncs.syncs.load(Ordering::Relaxed),
            1,
            "one sync for the eight"
        );
    }
}
