use std::path::PathBuf;

use crate::models::ModelId;

/// What the command that installs models is called; every "how to fix it" names it.
pub const INSTALL_COMMAND: &str = "cuepoint models install";

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The installed model is missing or fails its check (the message names the fix).
    #[error("{source}")]
    Model {
        model: ModelId,
        source: cuepoint_models::ModelError,
    },
    /// A model file is not where it was looked for.
    #[error("model {model} is not installed ({path} is missing); run `{INSTALL_COMMAND}`")]
    Missing { model: ModelId, path: PathBuf },
    /// The file is there but is not a model this engine can load (truncated, wrong file, ...).
    #[error("model file {path} of {model} cannot be loaded ({cause}); run `{INSTALL_COMMAND}` to reinstall it")]
    Corrupt {
        model: ModelId,
        path: PathBuf,
        cause: String,
    },
    /// The model loaded but failed on a frame.
    #[error("model {model} failed on a frame: {cause}")]
    Inference { model: ModelId, cause: String },
    /// A companion file (e.g. the class names) is unusable.
    #[error("{path} of {model} is unusable ({cause}); run `{INSTALL_COMMAND}` to reinstall it")]
    BadCompanion {
        model: ModelId,
        path: PathBuf,
        cause: String,
    },
    /// FFmpeg could not be run or could not decode the input.
    #[error("decoding {input}: {cause}")]
    Decode { input: PathBuf, cause: String },
}

impl VisionError {
    /// The model this error is about, if any.
    pub fn model(&self) -> Option<ModelId> {
        match self {
            VisionError::Model { model, .. }
            | VisionError::Missing { model, .. }
            | VisionError::Corrupt { model, .. }
            | VisionError::Inference { model, .. }
            | VisionError::BadCompanion { model, .. } => Some(*model),
            VisionError::Decode { .. } => None,
        }
    }

    /// True when installing the models fixes it.
    pub fn is_not_installed(&self) -> bool {
        match self {
            VisionError::Missing { .. } => true,
            VisionError::Model { source, .. } => source.analysis_status() == "NOT_INSTALLED",
            _ => false,
        }
    }
}
