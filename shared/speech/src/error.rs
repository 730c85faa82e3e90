//! Errors callers match on: what is missing or broken, and how to fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// A model file or directory is not where the installed-models layout puts it.
    #[error("model {model} is not installed ({} not found); run `cuepoint models install`", path.display())]
    ModelMissing { model: &'static str, path: PathBuf },

    /// A model file exists but cannot be loaded (truncated, wrong file, corrupt).
    #[error("model file {} ({model}) cannot be loaded: {cause}; reinstall it with `cuepoint models install`", path.display())]
    ModelCorrupt {
        model: &'static str,
        path: PathBuf,
        cause: String,
    },

    /// The model loaded but failed while running.
    #[error("model {model} failed while running: {cause}")]
    Inference { model: &'static str, cause: String },

    /// The transcription engine (the models venv's python with faster-whisper) is missing or
    /// cannot import its packages.
    #[error("transcription engine {} is not usable ({reason}); run `cuepoint models install`", path.display())]
    EngineMissing { path: PathBuf, reason: String },

    /// The transcription engine ran and failed.
    #[error("transcription engine failed ({status}): {stderr_tail}")]
    EngineFailed { status: String, stderr_tail: String },

    /// The engine finished but its output is not a readable transcript.
    #[error("transcription output {} is unreadable: {cause}", path.display())]
    BadOutput { path: PathBuf, cause: String },

    /// FFmpeg could not decode the requested audio track.
    #[error("decoding audio track {track} of {} failed: {message}", media.display())]
    Decode {
        media: PathBuf,
        track: u32,
        message: String,
    },

    /// An external tool (espeak-ng, ffmpeg) is not installed.
    #[error("{tool} was not found; {hint}")]
    ToolMissing {
        tool: &'static str,
        hint: &'static str,
    },

    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SpeechError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// True when installing the models would fix this (the analysis is `NOT_INSTALLED`, not
    /// `FAILED`).
    pub fn is_not_installed(&self) -> bool {
        matches!(self, Self::ModelMissing { .. } | Self::EngineMissing { .. })
    }
}

/// The last `max_lines` non-empty lines of a tool's stderr.
pub(crate) fn stderr_tail(stderr: &[u8], max_lines: usize) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let from = lines.len().saturating_sub(max_lines);
    let tail = lines[from..].join("\n");
    if tail.is_empty() {
        "(no message)".to_string()
    } else {
        tail
    }
}
