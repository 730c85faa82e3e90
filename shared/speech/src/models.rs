//! Where the speech models live: the installed-models layout (`models.dir`,
//! `CUEPOINT_MODELS_DIR`, else `$XDG_CACHE_HOME/cuepoint/models` or `~/.cache/cuepoint/models`).

use std::path::{Path, PathBuf};

use crate::error::SpeechError;

/// Environment variable naming the models directory.
pub const MODELS_DIR_ENV: &str = "CUEPOINT_MODELS_DIR";

/// Model names, as `cuepoint models list` shows them.
pub const VAD_MODEL: &str = "silero-vad";
pub const WHISPER_MODEL: &str = "whisper-base";
pub const ENGINE: &str = "venv";

/// The silero VAD file, relative to the models directory.
pub const VAD_FILE: &str = "silero-vad/silero_vad_openvino_16k.onnx";
/// The Whisper model directory (CTranslate2), relative to the models directory.
pub const WHISPER_DIR: &str = "whisper-base";
/// Files the Whisper model directory must hold.
pub const WHISPER_FILES: [&str; 3] = ["model.bin", "config.json", "tokenizer.json"];
/// The transcription engine's interpreter, relative to the models directory.
pub const ENGINE_PYTHON: &str = "venv/bin/python";

/// The models directory from the environment (no configuration file involved).
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODELS_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("cuepoint").join("models")
}

/// The silero VAD model file, if installed.
pub fn vad_model_path(models_dir: &Path) -> Result<PathBuf, SpeechError> {
    let path = models_dir.join(VAD_FILE);
    if path.is_file() {
        Ok(path)
    } else {
        Err(SpeechError::ModelMissing {
            model: VAD_MODEL,
            path,
        })
    }
}

/// The Whisper model directory, if it holds the files the engine loads.
pub fn whisper_model_dir(models_dir: &Path) -> Result<PathBuf, SpeechError> {
    let dir = models_dir.join(WHISPER_DIR);
    check_whisper_dir(&dir)?;
    Ok(dir)
}

pub(crate) fn check_whisper_dir(dir: &Path) -> Result<(), SpeechError> {
    for file in WHISPER_FILES {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(SpeechError::ModelMissing {
                model: WHISPER_MODEL,
                path,
            });
        }
    }
    Ok(())
}

/// The transcription engine's interpreter, if installed.
pub fn engine_python(models_dir: &Path) -> Result<PathBuf, SpeechError> {
    let path = models_dir.join(ENGINE_PYTHON);
    if path.exists() {
        Ok(path)
    } else {
        Err(SpeechError::EngineMissing {
            path,
            reason: "not installed".into(),
        })
    }
}
