//! Offline vision for the embedded default: what is shown in a video, in the shapes
//! Rekognition Video returns, from models that run in pure Rust (tract).
//!
//! - labels: MobileNetV2 (ImageNet-1k) with a small hierarchy for broader labels;
//! - faces: RetinaFace (boxes, confidence, five landmarks);
//! - moderation: open_nsfw ("Explicit Nudity").
//!
//! One FFmpeg process decodes the video once and hands over sampled frames (by default one a
//! second plus the first frame of each shot); every model sees every sample ([`analyze_video`]).
//! Celebrity recognition has no offline model: no face-embedding model with a usable licence
//! runs in pure Rust, so it stays with Rekognition.
//!
//! Inference is synchronous and single-threaded; callers on an async runtime run a pass on a
//! blocking thread.

pub mod decode;
pub mod error;
pub mod faces;
pub mod frame;
pub mod labels;
pub mod levels;
pub mod models;
pub mod moderation;
mod onnx;
pub mod pass;
pub mod shapes;

pub use decode::{FrameSampler, SampleOptions, TimedFrame};
pub use error::{VisionError, INSTALL_COMMAND};
pub use faces::{FaceDetector, FaceOptions};
pub use frame::Frame;
pub use labels::{LabelClassifier, LabelOptions};
pub use levels::{FrameLevels, LevelMeter};
pub use models::{default_models_dir, model_path, ModelFiles, ModelId};
pub use moderation::NsfwClassifier;
pub use pass::{
    analyze_video, analyze_video_with, ModelSeconds, Outcome, VisionConfig, VisionModels,
    VisionResults,
};
pub use shapes::{AnalysisStatus, CuepointAnalysis};
