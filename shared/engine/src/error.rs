//! How the local media engine fails. Callers match on the kind: an unusable or truncated input
//! fails the asset for good; a missing tool is a setup problem; the rest are engine faults.

use std::path::PathBuf;

use cuepoint_runtime::ports::{PortError, ProbeError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `ffmpeg` or `ffprobe` is not installed (or the override points nowhere).
    #[error("{tool} was not found ({looked_for}); install FFmpeg (Debian: apt-get install ffmpeg) or set {env_var} to its path")]
    ToolMissing {
        tool: &'static str,
        looked_for: String,
        env_var: &'static str,
    },
    /// The input is not usable media: zero bytes, corrupt, no audio or video stream.
    #[error("unusable media {input}: {message}")]
    Unusable { input: String, message: String },
    /// The input decodes but stops well before the duration its header announces.
    #[error("{input} ended early: decoded {decoded:.2} s of the {expected:.2} s its header announces{}", tool_detail(.message))]
    Truncated {
        input: String,
        decoded: f64,
        expected: f64,
        message: String,
    },
    /// FFmpeg/ffprobe exited with an error.
    #[error("{tool} failed on {input} ({status}): {message}")]
    ToolFailed {
        tool: &'static str,
        input: String,
        status: String,
        message: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file FFmpeg wrote (metadata log, playlist) did not read as expected.
    #[error("cannot read {path} line {line}: {detail}")]
    Parse {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    /// The request itself is wrong (a cut outside the clip, track 0...).
    #[error("invalid {field}: {detail}")]
    InvalidSpec { field: &'static str, detail: String },
}

fn tool_detail(message: &str) -> String {
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(" (ffmpeg: {})", message.trim())
    }
}

impl EngineError {
    /// True when the input media is at fault (the job fails for good, retrying cannot help).
    /// A fault of this machine, not of the media: a missing tool, a full disk, an I/O error.
    /// It heals when the operator fixes it, so it is retried, never a verdict on the asset.
    pub fn is_infrastructure(&self) -> bool {
        match self {
            EngineError::ToolMissing { .. } | EngineError::Io { .. } => true,
            other => mentions_full_disk(&other.to_string()),
        }
    }

    pub fn is_input_problem(&self) -> bool {
        matches!(
            self,
            EngineError::Unusable { .. } | EngineError::Truncated { .. }
        )
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

impl From<EngineError> for ProbeError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Unusable { input, message } => {
                ProbeError::Unusable(format!("{input}: {message}"))
            }
            e @ EngineError::Truncated { .. } => ProbeError::Unusable(e.to_string()),
            // Install FFmpeg and the same message succeeds: retried with backoff, and
            // dead-lettered with this reason if it never is.
            e @ EngineError::ToolMissing { .. } => {
                ProbeError::Port(PortError::Transient(format!("infrastructure fault: {e}")))
            }
            e @ EngineError::InvalidSpec { .. } => {
                ProbeError::Port(PortError::Permanent(e.to_string()))
            }
            e => ProbeError::Port(PortError::Transient(e.to_string())),
        }
    }
}

impl From<EngineError> for PortError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Io { .. } | EngineError::ToolFailed { .. } => {
                PortError::Transient(e.to_string())
            }
            EngineError::ToolMissing { .. } => {
                PortError::Transient(format!("infrastructure fault: {e}"))
            }
            _ => PortError::Permanent(e.to_string()),
        }
    }
}

/// Whether an error message says the disk is full (FFmpeg and the OS say it the same way).
pub fn mentions_full_disk(message: &str) -> bool {
    message.contains("No space left on device") || message.contains("Disk quota exceeded")
}
