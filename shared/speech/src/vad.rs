//! Voice activity with the silero VAD model (16 kHz) in tract-onnx (pure Rust).
//!
//! The model takes 512 new samples (32 ms) plus the last 64 samples of the previous chunk as
//! context (`input` f32 [1, 576]) and a recurrent state (`state` f32 [2, 1, 128]); it returns
//! the speech probability of the chunk and the next state. The probabilities go through the
//! hysteresis in [`cuepoint_core::speech::intervals_from_probabilities`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cuepoint_core::speech::{intervals_from_probabilities, SpeechInterval, VadParams};
use tract_onnx::prelude::*;

use crate::decode::SAMPLE_RATE;
use crate::error::SpeechError;
use crate::models::{vad_model_path, VAD_MODEL};

/// New samples per model call (32 ms at 16 kHz).
pub const CHUNK_SAMPLES: usize = 512;
/// Samples of the previous chunk the model sees again.
pub const CONTEXT_SAMPLES: usize = 64;
const STATE_SHAPE: [usize; 3] = [2, 1, 128];

/// A loaded silero VAD model. Cheap to share (`Clone` shares the compiled plan); each call to
/// [`Vad::probabilities`] runs with its own recurrent state, so one `Vad` serves many tracks.
#[derive(Clone)]
pub struct Vad {
    plan: Arc<TypedRunnableModel>,
    input_slot: usize,
    path: PathBuf,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Vad {
    /// Load the model from the installed-models directory.
    pub fn from_models_dir(models_dir: &Path) -> Result<Self, SpeechError> {
        Self::load(&vad_model_path(models_dir)?)
    }

    /// Load and compile the model file (about 70 ms).
    pub fn load(path: &Path) -> Result<Self, SpeechError> {
        if !path.is_file() {
            return Err(SpeechError::ModelMissing {
                model: VAD_MODEL,
                path: path.to_path_buf(),
            });
        }
        let corrupt = |cause: String| SpeechError::ModelCorrupt {
            model: VAD_MODEL,
            path: path.to_path_buf(),
            cause,
        };
        let mut model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| corrupt(format!("not a readable ONNX model ({e:#})")))?;
        unique_node_names(&mut model);
        let names: Vec<String> = model
            .input_outlets()
            .map_err(|e| corrupt(e.to_string()))?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let input_slot = names.iter().position(|n| n == "input");
        let state_slot = names.iter().position(|n| n == "state");
        let (Some(input_slot), Some(state_slot), 2) = (input_slot, state_slot, names.len()) else {
            return Err(corrupt(format!(
                "expected the inputs `input` and `state`, found {names:?}"
            )));
        };
        model
            .set_input_fact(
                input_slot,
                f32::fact([1, CONTEXT_SAMPLES + CHUNK_SAMPLES]).into(),
            )
            .and_then(|_| model.set_input_fact(state_slot, f32::fact(STATE_SHAPE).into()))
            .map_err(|e| corrupt(e.to_string()))?;
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| corrupt(format!("cannot compile it ({e:#})")))?;
        if plan.model().outputs.len() < 2 {
            return Err(corrupt(
                "expected two outputs (probability, next state)".into(),
            ));
        }
        Ok(Self {
            plan,
            input_slot,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Speech probability (0–1) of each 512-sample chunk of 16 kHz mono audio; a partial last
    /// chunk is padded with silence.
    pub fn probabilities(&self, samples: &[f32]) -> Result<Vec<f32>, SpeechError> {
        let failed = |e: TractError| SpeechError::Inference {
            model: VAD_MODEL,
            cause: e.to_string(),
        };
        let mut run = self.plan.spawn().map_err(failed)?;
        let mut state = Tensor::zero::<f32>(&STATE_SHAPE).map_err(failed)?;
        let mut window = vec![0f32; CONTEXT_SAMPLES + CHUNK_SAMPLES];
        let mut out = Vec::with_capacity(samples.len().div_ceil(CHUNK_SAMPLES));
        for chunk in samples.chunks(CHUNK_SAMPLES) {
            window.copy_within(CHUNK_SAMPLES.., 0);
            let new = &mut window[CONTEXT_SAMPLES..];
            new[..chunk.len()].copy_from_slice(chunk);
            new[chunk.len()..].fill(0.0);
            let input = Tensor::from_shape(&[1, CONTEXT_SAMPLES + CHUNK_SAMPLES], &window)
                .map_err(failed)?;
            let inputs: TVec<TValue> = if self.input_slot == 0 {
                tvec!(input.into(), state.into())
            } else {
                tvec!(state.into(), input.into())
            };
            let mut outputs = run.run(inputs).map_err(failed)?;
            let next_state = outputs.remove(1).into_tensor();
            let p = *outputs[0]
                .to_plain_array_view::<f32>()
                .map_err(failed)?
                .iter()
                .next()
                .ok_or_else(|| SpeechError::Inference {
                    model: VAD_MODEL,
                    cause: "empty probability output".into(),
                })?;
            out.push(p);
            state = next_state;
        }
        Ok(out)
    }

    /// Speech intervals of one track's 16 kHz mono audio.
    pub fn detect(
        &self,
        samples: &[f32],
        params: &VadParams,
        track: u32,
    ) -> Result<Vec<SpeechInterval>, SpeechError> {
        let probabilities = self.probabilities(samples)?;
        Ok(intervals_from_probabilities(
            &probabilities,
            CHUNK_SAMPLES,
            SAMPLE_RATE,
            samples.len(),
            params,
            track,
        ))
    }
}

/// The ONNX importer names some of this model's unnamed nodes alike (`F0::anon`), which the
/// typed graph refuses ("duplicate name for node"): make every name unique first.
fn unique_node_names(model: &mut InferenceModel) {
    let mut count = std::collections::HashMap::<String, usize>::new();
    for node in model.nodes() {
        *count.entry(node.name.clone()).or_default() += 1;
    }
    for id in 0..model.nodes().len() {
        let name = &model.node(id).name;
        if count.get(name).is_some_and(|&n| n > 1) {
            let unique = format!("{name}.{id}");
            model.node_mut(id).name = unique;
        }
    }
}
