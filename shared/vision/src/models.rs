//! Which model files a pass loads.
//!
//! Installed models are resolved through `cuepoint-models`: the file must be installed and
//! match its pinned sha256, else the error names the file and the command that fixes it.
//! [`ModelFiles::unchecked`] takes the same layout without the check (hand-placed files).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::VisionError;
use crate::labels::CLASSES_FILE;

/// The vision models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelId {
    /// Face detection (RetinaFace, MobileNet-0.25 backbone).
    RetinaFace,
    /// Nudity classification (Yahoo open_nsfw).
    OpenNsfw,
    /// Image classification (MobileNetV2, ImageNet-1k).
    MobileNetV2,
}

impl ModelId {
    pub const ALL: [ModelId; 3] = [ModelId::RetinaFace, ModelId::OpenNsfw, ModelId::MobileNetV2];

    /// The model's name: its directory in the models dir and `Model` in `CuepointAnalysis`.
    pub fn name(self) -> &'static str {
        match self {
            ModelId::RetinaFace => cuepoint_models::registry::RETINAFACE,
            ModelId::OpenNsfw => cuepoint_models::registry::OPENNSFW,
            ModelId::MobileNetV2 => cuepoint_models::registry::MOBILENET_V2,
        }
    }

    /// The ONNX file inside the model's directory.
    pub fn onnx_file(self) -> &'static str {
        match self {
            ModelId::RetinaFace => "retinaface.onnx",
            ModelId::OpenNsfw => "open-nsfw.onnx",
            ModelId::MobileNetV2 => "mobilenet_v2.onnx",
        }
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The models directory when none is configured (`CUEPOINT_MODELS_DIR`, else the user's cache).
pub fn default_models_dir() -> PathBuf {
    cuepoint_models::ModelsDir::resolve(None)
        .root()
        .to_path_buf()
}

/// The checked ONNX file of an installed `model` in `dir`.
pub fn model_path(dir: &Path, model: ModelId) -> Result<PathBuf, VisionError> {
    cuepoint_models::model_path(dir, model.name())
        .map_err(|source| VisionError::Model { model, source })
}

/// The files each analysis of a pass loads, or why it cannot.
#[derive(Debug)]
pub struct ModelFiles {
    /// The MobileNetV2 ONNX file and its class names.
    pub labels: Result<(PathBuf, PathBuf), VisionError>,
    pub faces: Result<PathBuf, VisionError>,
    pub moderation: Result<PathBuf, VisionError>,
}

impl ModelFiles {
    /// The installed models of `dir`, each checked against its pinned hashes.
    pub fn installed(dir: &Path) -> ModelFiles {
        let models = cuepoint_models::ModelsDir::new(dir);
        let err = |model| move |source| VisionError::Model { model, source };
        ModelFiles {
            labels: models
                .path(ModelId::MobileNetV2.name())
                .and_then(|onnx| {
                    Ok((
                        onnx,
                        models.file(ModelId::MobileNetV2.name(), CLASSES_FILE)?,
                    ))
                })
                .map_err(err(ModelId::MobileNetV2)),
            faces: model_path(dir, ModelId::RetinaFace),
            moderation: model_path(dir, ModelId::OpenNsfw),
        }
    }

    /// The files at their places in `dir`, unchecked (only their presence).
    pub fn unchecked(dir: &Path) -> ModelFiles {
        let file = |model: ModelId, name: &str| {
            let path = dir.join(model.name()).join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(VisionError::Missing { model, path })
            }
        };
        ModelFiles {
            labels: file(ModelId::MobileNetV2, ModelId::MobileNetV2.onnx_file())
                .and_then(|onnx| Ok((onnx, file(ModelId::MobileNetV2, CLASSES_FILE)?))),
            faces: file(ModelId::RetinaFace, ModelId::RetinaFace.onnx_file()),
            moderation: file(ModelId::OpenNsfw, ModelId::OpenNsfw.onnx_file()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_models_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let files = ModelFiles::installed(dir.path());
        for e in [
            files.labels.unwrap_err(),
            files.faces.unwrap_err(),
            files.moderation.unwrap_err(),
        ] {
            assert!(e.is_not_installed(), "{e}");
            assert!(e.to_string().contains("cuepoint models install"), "{e}");
        }
        let e = ModelFiles::unchecked(dir.path()).faces.unwrap_err();
        assert!(e.is_not_installed());
        assert!(e.to_string().contains("retinaface/retinaface.onnx"), "{e}");
        std::fs::create_dir_all(dir.path().join("opennsfw")).unwrap();
        std::fs::write(dir.path().join("opennsfw/open-nsfw.onnx"), b"x").unwrap();
        assert!(ModelFiles::unchecked(dir.path()).moderation.is_ok());
        // Installed means recorded and hashed, not merely present.
        let e = ModelFiles::installed(dir.path()).moderation.unwrap_err();
        assert!(e.is_not_installed(), "{e}");
    }
}
