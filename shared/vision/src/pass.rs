//! One pass over a video: one decode, every sampled frame through every installed model.
//!
//! Each analysis ends on its own: a model that is not installed, cannot be loaded or fails on
//! a frame gives that analysis a status and a message, and the others carry on. Only a video
//! that cannot be decoded fails the pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::decode::{FrameSampler, SampleOptions, TimedFrame};
use crate::error::VisionError;
use crate::faces::{FaceDetector, FaceOptions};
use crate::labels::{LabelClassifier, LabelOptions};
use crate::models::ModelFiles;
use crate::moderation::NsfwClassifier;
use crate::shapes::{
    AnalysisStatus, CuepointAnalysis, FaceDetection, LabelDetection, ModerationDetection,
};

/// Settings of a vision pass.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub models_dir: PathBuf,
    pub sampling: SampleOptions,
    pub faces: FaceOptions,
    pub labels: LabelOptions,
    /// Minimum confidence (0-100) of a moderation label.
    pub moderation_min_confidence: f32,
    /// Seconds between the frames the moderation model sees (the costliest model; brand
    /// safety looks seconds around a break, so every second or third sample is enough).
    pub moderation_interval: f64,
    /// Seconds between the frames the face model sees (a face stays on screen for seconds).
    pub faces_interval: f64,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            models_dir: crate::models::default_models_dir(),
            sampling: SampleOptions::default(),
            faces: FaceOptions::default(),
            labels: LabelOptions::default(),
            moderation_min_confidence: 50.0,
            moderation_interval: 3.0,
            faces_interval: 2.0,
        }
    }
}

/// How one analysis of the pass ended, with its items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome<T> {
    pub analysis: CuepointAnalysis,
    pub items: Vec<T>,
}

impl<T> Outcome<T> {
    fn complete(items: Vec<T>) -> Self {
        Outcome {
            analysis: CuepointAnalysis {
                status: AnalysisStatus::Complete,
                model: None,
                message: None,
            },
            items,
        }
    }

    fn from_error(e: &VisionError) -> Self {
        Outcome {
            analysis: CuepointAnalysis {
                status: if e.is_not_installed() {
                    AnalysisStatus::NotInstalled
                } else {
                    AnalysisStatus::Failed
                },
                model: e.model().map(|m| m.name().to_string()),
                message: Some(e.to_string()),
            },
            items: Vec::new(),
        }
    }

    pub fn status(&self) -> AnalysisStatus {
        self.analysis.status
    }
}

/// What a pass found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionResults {
    pub labels: Outcome<LabelDetection>,
    pub faces: Outcome<FaceDetection>,
    pub moderation: Outcome<ModerationDetection>,
    /// Frames sampled and analysed.
    pub frames: usize,
    /// Time spent in each model over the pass (labels, faces, moderation), for the benchmark.
    #[serde(default)]
    pub model_seconds: ModelSeconds,
    /// Frames labelled as the still picture before them, without running the label model.
    #[serde(default)]
    pub labels_reused: usize,
}

/// Seconds spent in each model over a pass (on one thread: its CPU time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSeconds {
    pub labels: f64,
    pub faces: f64,
    pub moderation: f64,
}

/// A model while the pass runs: loaded, or the error that ended its analysis.
enum Slot<M, T> {
    Running(M, Vec<T>, Duration),
    Ended(VisionError),
}

impl<M, T> Slot<M, T> {
    fn load(f: impl FnOnce() -> Result<M, VisionError>) -> Self {
        match f() {
            Ok(m) => Slot::Running(m, Vec::new(), Duration::ZERO),
            Err(e) => {
                tracing::warn!(error = %e, "vision analysis cannot run");
                Slot::Ended(e)
            }
        }
    }

    fn running(&self) -> bool {
        matches!(self, Slot::Running(..))
    }

    /// Apply `f` to the model; its first error ends this analysis.
    fn step(&mut self, f: impl FnOnce(&mut M) -> Result<Vec<T>, VisionError>) {
        if let Slot::Running(m, items, spent) = self {
            let t0 = Instant::now();
            let got = f(m);
            *spent += t0.elapsed();
            match got {
                Ok(more) => items.extend(more),
                Err(e) => {
                    tracing::warn!(error = %e, "vision analysis failed");
                    *self = Slot::Ended(e);
                }
            }
        }
    }

    fn seconds(&self) -> f64 {
        match self {
            Slot::Running(_, _, spent) => spent.as_secs_f64(),
            Slot::Ended(_) => 0.0,
        }
    }

    fn outcome(self) -> Outcome<T> {
        match self {
            Slot::Running(_, items, _) => Outcome::complete(items),
            Slot::Ended(e) => Outcome::from_error(&e),
        }
    }
}

/// Whether a model that sees a frame every `interval_seconds` sees the one at `ts` (ms), the
/// last it saw being at `last`: on the sampling grid give or take a quarter second; shot frames
/// in between wait.
fn due(last: Option<u64>, ts: u64, interval_seconds: f64) -> bool {
    last.is_none_or(|last| ts + 250 >= last + (interval_seconds * 1000.0).round() as u64)
}

/// Run labels, faces and moderation over `video` in one decode, with the models installed in
/// `config.models_dir`.
pub fn analyze_video(video: &Path, config: &VisionConfig) -> Result<VisionResults, VisionError> {
    analyze_video_with(video, ModelFiles::installed(&config.models_dir), config)
}

/// As [`analyze_video`], with the given model files.
pub fn analyze_video_with(
    video: &Path,
    files: ModelFiles,
    config: &VisionConfig,
) -> Result<VisionResults, VisionError> {
    let models = VisionModels::load(files, config);
    if models.any_running() {
        models.run(FrameSampler::open(video, &config.sampling)?)
    } else {
        models.run(std::iter::empty())
    }
}

/// The three models of a pass, loaded: the frames may come from a decode shared with other
/// analyses (the local engine decodes a proxy once for segments and vision).
pub struct VisionModels<'c> {
    config: &'c VisionConfig,
    labels: Slot<LabelClassifier, LabelDetection>,
    faces: Slot<FaceDetector, FaceDetection>,
    moderation: Slot<NsfwClassifier, ModerationDetection>,
}

impl<'c> VisionModels<'c> {
    /// Load the models `files` names; one that cannot load ends only its own analysis.
    pub fn load(files: ModelFiles, config: &'c VisionConfig) -> Self {
        VisionModels {
            config,
            labels: Slot::load(|| {
                let (onnx, classes) = files.labels?;
                LabelClassifier::load(&onnx, &classes, config.labels)
            }),
            faces: Slot::load(|| FaceDetector::load(&files.faces?, config.faces)),
            moderation: Slot::load(|| NsfwClassifier::load(&files.moderation?)),
        }
    }

    /// Whether any model will look at frames (if none, nothing needs decoding).
    pub fn any_running(&self) -> bool {
        self.labels.running() || self.faces.running() || self.moderation.running()
    }

    /// Every model over `frames` (sampled as `config.sampling` says). Stops reading once no
    /// model runs; the first frame error fails the pass.
    pub fn run(
        self,
        frames: impl IntoIterator<Item = Result<TimedFrame, VisionError>>,
    ) -> Result<VisionResults, VisionError> {
        let VisionModels {
            config,
            mut labels,
            mut faces,
            mut moderation,
        } = self;
        let mut count = 0;
        if labels.running() || faces.running() || moderation.running() {
            // Two threads on the frames: the label model here, faces and moderation beside it
            // (each model still sees its frames in order). On two cores the pass takes about
            // the longer of the two instead of their sum.
            let others = faces.running() || moderation.running();
            let (returned, read) = std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<TimedFrame>>(4);
                let beside = scope.spawn(move || {
                    let mut last_moderated: Option<u64> = None;
                    let mut last_faces: Option<u64> = None;
                    for sample in rx {
                        let ts = sample.timestamp_ms;
                        let frame = &sample.frame;
                        if due(last_faces, ts, config.faces_interval) {
                            last_faces = Some(ts);
                            faces.step(|m| {
                                Ok(m.detect(frame)?
                                    .into_iter()
                                    .map(|face| FaceDetection {
                                        timestamp: ts,
                                        face,
                                    })
                                    .collect())
                            });
                        }
                        if due(last_moderated, ts, config.moderation_interval) {
                            last_moderated = Some(ts);
                            moderation.step(|m| {
                                Ok(m.moderate(frame, config.moderation_min_confidence)?
                                    .into_iter()
                                    .map(|moderation_label| ModerationDetection {
                                        timestamp: ts,
                                        moderation_label,
                                    })
                                    .collect())
                            });
                        }
                        if !(faces.running() || moderation.running()) {
                            break;
                        }
                    }
                    (faces, moderation)
                });
                // `None` once faces and moderation have both ended (their thread is gone).
                let mut tx = others.then_some(tx);
                let read = (|| -> Result<(), VisionError> {
                    for sample in frames {
                        let sample = std::sync::Arc::new(sample?);
                        count += 1;
                        if tx.as_ref().is_some_and(|t| t.send(sample.clone()).is_err()) {
                            tx = None;
                        }
                        let ts = sample.timestamp_ms;
                        labels.step(|m| {
                            Ok(m.next_labels(&sample.frame)?
                                .into_iter()
                                .map(|label| LabelDetection {
                                    timestamp: ts,
                                    label,
                                })
                                .collect())
                        });
                        if !labels.running() && tx.is_none() {
                            break;
                        }
                    }
                    Ok(())
                })();
                drop(tx);
                let returned = beside
                    .join()
                    .expect("the face and moderation thread panicked");
                (returned, read)
            });
            (faces, moderation) = returned;
            read?;
        }
        let labels_reused = match &labels {
            Slot::Running(m, ..) => m.reused,
            Slot::Ended(_) => 0,
        };
        let model_seconds = ModelSeconds {
            labels: labels.seconds(),
            faces: faces.seconds(),
            moderation: moderation.seconds(),
        };
        Ok(VisionResults {
            model_seconds,
            labels_reused,
            labels: labels.outcome(),
            faces: faces.outcome(),
            moderation: moderation.outcome(),
            frames: count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::due;

    #[test]
    fn a_model_sees_one_sample_in_every_interval() {
        // One sample a second (a little jitter), a shot frame at 4.5 s, every 3 s.
        let samples = [0, 1000, 2040, 3000, 3960, 4500, 5000, 6000, 7040];
        let mut last = None;
        let mut seen = Vec::new();
        for ts in samples {
            if due(last, ts, 3.0) {
                last = Some(ts);
                seen.push(ts);
            }
        }
        assert_eq!(seen, [0, 3000, 6000]);
        // Every sample at an interval of one second, jitter included.
        assert!(due(Some(1000), 1960, 1.0));
    }
}
