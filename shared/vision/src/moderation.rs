//! Nudity classification with Yahoo's open_nsfw.
//!
//! Its reference preprocessing: squash to 256x256, take the centred 224x224, BGR minus the
//! training mean, NHWC. (The Python wrapper also re-encodes the crop as JPEG to match the
//! original Caffe scores bit for bit; video frames are already lossy, so that step is skipped.)

use std::path::Path;

use crate::error::VisionError;
use crate::frame::Frame;
use crate::models::ModelId;
use crate::onnx::{run, Parsed, Plan};
use crate::shapes::ModerationLabel;

const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
const RESIZE: usize = 256;
const CROP: usize = 224;
/// The one moderation label this model can give (a top-level Rekognition category).
pub const EXPLICIT_NUDITY: &str = "Explicit Nudity";

pub struct NsfwClassifier {
    plan: Plan,
}

impl NsfwClassifier {
    pub fn load(path: &Path) -> Result<NsfwClassifier, VisionError> {
        let parsed = Parsed::load(ModelId::OpenNsfw, path)?;
        Ok(NsfwClassifier {
            plan: parsed.plan(&[1, CROP, CROP, 3])?,
        })
    }

    /// The probability (0-1) that `frame` shows nudity.
    pub fn score(&self, frame: &Frame) -> Result<f32, VisionError> {
        let crop = frame.resize(RESIZE, RESIZE).center_crop(CROP, CROP);
        let mut input = Vec::with_capacity(CROP * CROP * 3);
        for p in crop.rgb.chunks_exact(3) {
            for c in 0..3 {
                input.push(p[2 - c] as f32 - MEAN_BGR[c]);
            }
        }
        let outputs = run(ModelId::OpenNsfw, &self.plan, &[1, CROP, CROP, 3], input)?;
        let probs = outputs.first().map(|o| &o.1);
        match probs {
            Some(p) if p.len() == 2 && p[1].is_finite() => Ok(p[1].clamp(0.0, 1.0)),
            other => Err(VisionError::Inference {
                model: ModelId::OpenNsfw,
                cause: format!("expected [sfw, nsfw] probabilities, got {other:?}"),
            }),
        }
    }

    /// The moderation labels of `frame` with confidence at least `min_confidence` (0-100).
    pub fn moderate(
        &self,
        frame: &Frame,
        min_confidence: f32,
    ) -> Result<Vec<ModerationLabel>, VisionError> {
        let confidence = self.score(frame)? * 100.0;
        Ok(if confidence >= min_confidence {
            vec![ModerationLabel {
                name: EXPLICIT_NUDITY.into(),
                confidence,
                parent_name: String::new(),
            }]
        } else {
            Vec::new()
        })
    }
}
