//! Face detection with RetinaFace (MobileNet-0.25 backbone).
//!
//! Input: BGR minus the training mean, NCHW, any size (padded here to a multiple of 32 so the
//! feature pyramid's levels line up). Outputs per anchor: box offsets, [background, face]
//! probabilities and five landmark offsets, decoded against anchors of strides 8/16/32.

use std::collections::HashMap;
use std::path::Path;

use crate::error::VisionError;
use crate::frame::Frame;
use crate::models::ModelId;
use crate::onnx::{run, Parsed, Plan};
use crate::shapes::{BoundingBox, Face, Landmark};

const MEAN_BGR: [f32; 3] = [104.0, 117.0, 127.0];
const STRIDES: [usize; 3] = [8, 16, 32];
const SIZES: [[f32; 2]; 3] = [[16.0, 32.0], [64.0, 128.0], [256.0, 512.0]];
const VARIANCE_CENTRE: f32 = 0.1;
const VARIANCE_SIZE: f32 = 0.2;
/// Rekognition's landmark names, in RetinaFace's order (left/right as seen in the picture).
const LANDMARKS: [&str; 5] = ["eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceOptions {
    /// Minimum face probability, 0-1.
    pub min_score: f32,
    /// Overlap (IoU) above which the weaker of two boxes is dropped.
    pub nms_iou: f32,
}

impl Default for FaceOptions {
    fn default() -> Self {
        FaceOptions {
            min_score: 0.9,
            nms_iou: 0.4,
        }
    }
}

pub struct FaceDetector {
    parsed: Parsed,
    options: FaceOptions,
    /// Optimised plans by padded input size (frames of one video share one).
    plans: HashMap<(usize, usize), Plan>,
}

impl FaceDetector {
    pub fn load(path: &Path, options: FaceOptions) -> Result<FaceDetector, VisionError> {
        Ok(FaceDetector {
            parsed: Parsed::load(ModelId::RetinaFace, path)?,
            options,
            plans: HashMap::new(),
        })
    }

    /// The faces in `frame`, strongest first.
    pub fn detect(&mut self, frame: &Frame) -> Result<Vec<Face>, VisionError> {
        let pw = frame.width.div_ceil(32) * 32;
        let ph = frame.height.div_ceil(32) * 32;
        let shape = [1, 3, ph, pw];
        let plan = match self.plans.get(&(pw, ph)) {
            Some(p) => p.clone(),
            None => {
                let p = self.parsed.plan(&shape)?;
                self.plans.insert((pw, ph), p.clone());
                p
            }
        };
        // Padding is the mean colour, which is zero after the subtraction.
        let mut input = vec![0f32; 3 * ph * pw];
        for y in 0..frame.height {
            for x in 0..frame.width {
                let p = (y * frame.width + x) * 3;
                for c in 0..3 {
                    // channel c is B, G, R
                    let v = frame.rgb[p + 2 - c] as f32 - MEAN_BGR[c];
                    input[c * ph * pw + y * pw + x] = v;
                }
            }
        }
        let outputs = run(ModelId::RetinaFace, &plan, &shape, input)?;
        let anchors = anchors(pw, ph);
        let bad = |what: String| VisionError::Inference {
            model: ModelId::RetinaFace,
            cause: what,
        };
        let [(_, boxes), (_, scores), (_, points)] = <[_; 3]>::try_from(outputs)
            .map_err(|o: Vec<_>| bad(format!("{} outputs, expected 3", o.len())))?;
        let n = anchors.len();
        if boxes.len() != n * 4 || scores.len() != n * 2 || points.len() != n * 10 {
            return Err(bad(format!(
                "output sizes {}/{}/{} do not fit {n} anchors",
                boxes.len(),
                scores.len(),
                points.len()
            )));
        }
        // Ratios of the padded input, scaled back to ratios of the frame.
        let sx = pw as f32 / frame.width as f32;
        let sy = ph as f32 / frame.height as f32;
        let mut found: Vec<(f32, [f32; 4], [f32; 10])> = Vec::new();
        for (i, a) in anchors.iter().enumerate() {
            let score = scores[i * 2 + 1];
            if score.is_nan() || score <= self.options.min_score {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            let cx = a[0] + a[2] * b[0] * VARIANCE_CENTRE;
            let cy = a[1] + a[3] * b[1] * VARIANCE_CENTRE;
            let w = a[2] * (b[2] * VARIANCE_SIZE).exp();
            let h = a[3] * (b[3] * VARIANCE_SIZE).exp();
            let bbox = [(cx - w / 2.0) * sx, (cy - h / 2.0) * sy, w * sx, h * sy];
            let mut pts = [0f32; 10];
            for k in 0..5 {
                pts[k * 2] = (a[0] + a[2] * points[i * 10 + k * 2] * VARIANCE_CENTRE) * sx;
                pts[k * 2 + 1] = (a[1] + a[3] * points[i * 10 + k * 2 + 1] * VARIANCE_CENTRE) * sy;
            }
            found.push((score, bbox, pts));
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut kept: Vec<(f32, [f32; 4], [f32; 10])> = Vec::new();
        for f in found {
            if kept.iter().all(|k| iou(&k.1, &f.1) <= self.options.nms_iou) {
                kept.push(f);
            }
        }
        Ok(kept.into_iter().map(|(s, b, p)| to_face(s, b, p)).collect())
    }
}

/// Anchors `[cx, cy, w, h]` as ratios of the input, in the model's output order.
fn anchors(width: usize, height: usize) -> Vec<[f32; 4]> {
    let mut out = Vec::new();
    for (stride, sizes) in STRIDES.iter().zip(SIZES.iter()) {
        let nx = width.div_ceil(*stride);
        let ny = height.div_ceil(*stride);
        for y in 0..ny {
            for x in 0..nx {
                for s in sizes {
                    out.push([
                        (x as f32 + 0.5) * *stride as f32 / width as f32,
                        (y as f32 + 0.5) * *stride as f32 / height as f32,
                        s / width as f32,
                        s / height as f32,
                    ]);
                }
            }
        }
    }
    out
}

/// Intersection over union of two `[left, top, width, height]` boxes.
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

fn to_face(score: f32, b: [f32; 4], p: [f32; 10]) -> Face {
    // Clip to the frame, as Rekognition's boxes stay inside it.
    let left = b[0].clamp(0.0, 1.0);
    let top = b[1].clamp(0.0, 1.0);
    let right = (b[0] + b[2]).clamp(0.0, 1.0);
    let bottom = (b[1] + b[3]).clamp(0.0, 1.0);
    Face {
        bounding_box: BoundingBox {
            width: right - left,
            height: bottom - top,
            left,
            top,
        },
        confidence: (score * 100.0).clamp(0.0, 100.0),
        landmarks: LANDMARKS
            .iter()
            .enumerate()
            .map(|(k, name)| Landmark {
                kind: (*name).into(),
                x: p[k * 2],
                y: p[k * 2 + 1],
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_grid_matches_strides() {
        let a = anchors(64, 32);
        // stride 8: 8x4 positions, 16: 4x2, 32: 2x1; two sizes each.
        assert_eq!(a.len(), (32 + 8 + 2) * 2);
        assert_eq!(a[0], [4.0 / 64.0, 4.0 / 32.0, 16.0 / 64.0, 16.0 / 32.0]);
        assert_eq!(a[1][2], 32.0 / 64.0);
    }

    #[test]
    fn iou_of_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 1.0, 1.0]), 0.0);
        assert!((iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 2.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
