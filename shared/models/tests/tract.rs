//! The converted MobileNetV2 runs in tract (the pure-Rust engine the label analysis uses) and
//! computes what onnxruntime computes on the same input.

use tract_onnx::prelude::*;

#[test]
fn converted_mobilenet_v2_runs_in_tract_as_in_onnxruntime() {
    let Some(path) = cuepoint_models::testing::installed("mobilenet-v2") else {
        return;
    };
    let model = tract_onnx::onnx()
        .model_for_path(&path)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    // A smooth synthetic pattern; the reference logits come from onnxruntime 1.32 on the same
    // f32 input.
    let x = tract_ndarray::Array4::from_shape_fn((1, 3, 224, 224), |(_, c, h, w)| {
        ((0.05 * (h as f64 + 1.0) * (c as f64 + 1.0)).sin() * (0.03 * (w as f64 + 1.0)).cos() * 2.0)
            as f32
    });
    let out = model.run(tvec!(Tensor::from(x).into())).unwrap();
    let y = out[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(y.shape(), &[1, 1000]);
    let y: Vec<f32> = y.iter().copied().collect();
    let mut order: Vec<usize> = (0..1000).collect();
    order.sort_by(|&a, &b| y[b].total_cmp(&y[a]));
    assert_eq!(order[..5], [782, 800, 590, 531, 851]);
    for (i, want) in [
        (782, 9.756798),
        (800, 8.131695),
        (0, -1.2130162),
        (999, -3.2592192),
    ] {
        assert!(
            (y[i] - want).abs() < 1e-3,
            "logit {i}: {} vs onnxruntime {want}",
            y[i]
        );
    }
}
