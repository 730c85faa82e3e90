//! Loading and running ONNX models with tract (pure Rust, single-threaded).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::VisionError;
use crate::models::ModelId;

pub(crate) type Plan = Arc<TypedRunnableModel>;
/// An output tensor: its shape and its values in row-major order.
pub(crate) type Output = (Vec<usize>, Vec<f32>);

/// A parsed model, not yet specialised to an input shape.
#[derive(Clone)]
pub(crate) struct Parsed {
    pub model: ModelId,
    pub path: PathBuf,
    graph: InferenceModel,
}

impl Parsed {
    pub fn load(model: ModelId, path: &Path) -> Result<Parsed, VisionError> {
        let graph = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| VisionError::Corrupt {
                model,
                path: path.to_path_buf(),
                cause: root_cause(&e),
            })?;
        Ok(Parsed {
            model,
            path: path.to_path_buf(),
            graph,
        })
    }

    /// The model optimised for one f32 input of `shape`.
    pub fn plan(&self, shape: &[usize]) -> Result<Plan, VisionError> {
        let corrupt = |e: TractError| VisionError::Corrupt {
            model: self.model,
            path: self.path.clone(),
            cause: root_cause(&e),
        };
        self.graph
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(corrupt)
    }
}

/// Run `plan` on one input tensor; the outputs as f32 vectors with their shapes.
pub(crate) fn run(
    model: ModelId,
    plan: &Plan,
    shape: &[usize],
    data: Vec<f32>,
) -> Result<Vec<Output>, VisionError> {
    let failed = |e: TractError| VisionError::Inference {
        model,
        cause: root_cause(&e),
    };
    let input = Tensor::from_shape(shape, &data).map_err(failed)?;
    let outputs = plan.run(tvec!(input.into())).map_err(failed)?;
    outputs
        .iter()
        .map(|t| {
            let view = t.to_plain_array_view::<f32>().map_err(failed)?;
            Ok((view.shape().to_vec(), view.iter().copied().collect()))
        })
        .collect()
}

/// tract's error chain on one line.
fn root_cause(e: &TractError) -> String {
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    chain.join(": ")
}

/// Softmax of logits, in place.
pub(crate) fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    if sum > 0.0 {
        for x in v.iter_mut() {
            *x /= sum;
        }
    }
}
