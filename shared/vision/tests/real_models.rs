//! The vision models on real pictures and real FFmpeg output.

mod common;

use std::path::Path;

use common::{clip_of, ffmpeg, models_with, picture, test_patterns};
use cuepoint_vision::labels::CLASSES_FILE;
use cuepoint_vision::{
    analyze_video, analyze_video_with, model_path, AnalysisStatus, FaceDetector, FaceOptions,
    Frame, FrameSampler, LabelClassifier, LabelOptions, ModelFiles, ModelId, NsfwClassifier,
    SampleOptions, VisionConfig, VisionError,
};

/// The single frame of a still picture, as the video path decodes it.
fn frame_of(path: &Path) -> Frame {
    let frames: Vec<_> = FrameSampler::open(path, &SampleOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(frames.len(), 1, "{}", path.display());
    frames.into_iter().next().unwrap().frame
}

fn config(models_dir: &Path) -> VisionConfig {
    VisionConfig {
        models_dir: models_dir.to_path_buf(),
        ..VisionConfig::default()
    }
}

#[test]
fn faces_found_on_a_portrait() {
    let Some(dir) = models_with(&[ModelId::RetinaFace]) else {
        return;
    };
    let Some(astronaut) = picture("astronaut.png") else {
        return;
    };
    let mut detector = FaceDetector::load(
        &model_path(&dir, ModelId::RetinaFace).unwrap(),
        FaceOptions::default(),
    )
    .unwrap();
    let faces = detector.detect(&frame_of(&astronaut)).unwrap();
    assert_eq!(faces.len(), 1, "{faces:#?}");
    let f = &faces[0];
    assert!(f.confidence > 95.0, "{f:?}");
    let b = f.bounding_box;
    // The face is in the upper middle of the picture, a few tenths of it wide.
    assert!(
        b.width > 0.1 && b.width < 0.4 && b.height > 0.1 && b.height < 0.5,
        "{b:?}"
    );
    assert!(
        b.left > 0.25 && b.left + b.width < 0.75 && b.top < 0.4,
        "{b:?}"
    );
    let at = |kind: &str| f.landmarks.iter().find(|l| l.kind == kind).unwrap();
    let inside =
        |x: f32, y: f32| x > b.left && x < b.left + b.width && y > b.top && y < b.top + b.height;
    for l in &f.landmarks {
        assert!(inside(l.x, l.y), "{l:?} outside {b:?}");
    }
    assert!(at("eyeLeft").x < at("eyeRight").x);
    assert!(at("mouthLeft").x < at("mouthRight").x);
    assert!(at("eyeLeft").y < at("nose").y && at("nose").y < at("mouthLeft").y);
}

#[test]
fn no_faces_or_nudity_in_test_patterns() {
    let Some(dir) = models_with(&[ModelId::RetinaFace, ModelId::OpenNsfw]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let video = test_patterns(tmp.path());
    let results = analyze_video(&video, &config(&dir)).unwrap();
    // One a second over 8 s, plus the first frame of each pattern.
    assert!(results.frames >= 8, "{} frames", results.frames);
    assert_eq!(results.faces.status(), AnalysisStatus::Complete);
    assert!(results.faces.items.is_empty(), "{:#?}", results.faces.items);
    assert_eq!(results.moderation.status(), AnalysisStatus::Complete);
    assert!(
        results.moderation.items.is_empty(),
        "{:#?}",
        results.moderation.items
    );
}

#[test]
fn moderation_flags_nothing_on_safe_pictures() {
    let Some(dir) = models_with(&[ModelId::OpenNsfw]) else {
        return;
    };
    let nsfw = NsfwClassifier::load(&model_path(&dir, ModelId::OpenNsfw).unwrap()).unwrap();
    for name in ["astronaut.png", "chelsea.png", "coffee.png"] {
        let Some(p) = picture(name) else { return };
        let score = nsfw.score(&frame_of(&p)).unwrap();
        assert!(score < 0.2, "{name}: {score}");
        assert!(nsfw.moderate(&frame_of(&p), 50.0).unwrap().is_empty());
    }
}

#[test]
fn labels_name_what_the_picture_shows() {
    let Some(dir) = models_with(&[ModelId::MobileNetV2]) else {
        return;
    };
    let labels = LabelClassifier::from_models_dir(&dir, LabelOptions::default()).unwrap();
    let top = |name: &str| -> (String, Vec<String>) {
        let p = picture(name).unwrap();
        let frame = frame_of(&p);
        let probs = labels.probabilities(&frame).unwrap();
        let best = (0..probs.len())
            .max_by(|a, b| probs[*a].total_cmp(&probs[*b]))
            .unwrap();
        let names = labels
            .labels(&frame)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        (labels.class_name(best).unwrap().to_string(), names)
    };
    if picture("chelsea.png").is_none() {
        return;
    }
    let (best, names) = top("chelsea.png");
    assert!(
        ["Tabby", "Tiger Cat", "Egyptian Cat"].contains(&best.as_str()),
        "{best}"
    );
    for n in ["Cat", "Mammal", "Animal", "Pet"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
    let (best, names) = top("coffee.png");
    assert!(
        ["Espresso", "Cup", "Coffee Mug"].contains(&best.as_str()),
        "{best}"
    );
    assert!(!names.is_empty());
    assert!(!names.iter().any(|x| x == "Animal"), "{names:?}");
}

#[test]
fn one_pass_over_a_clip_finds_faces_at_each_sample_the_face_model_sees() {
    let Some(dir) = models_with(&[ModelId::RetinaFace, ModelId::OpenNsfw]) else {
        return;
    };
    let Some(astronaut) = picture("astronaut.png") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let clip = clip_of(&astronaut, 5, tmp.path());
    let results = analyze_video(&clip, &config(&dir)).unwrap();
    let times: Vec<u64> = results.faces.items.iter().map(|f| f.timestamp).collect();
    assert_eq!(results.frames, 5);
    // One frame a second is sampled; the face model sees one every 2 s (the default). Samples
    // are the clean frames nearest each time (B-frames are skipped).
    assert_eq!(times.len(), 3, "{times:?}");
    for (t, want) in times.iter().zip([0u64, 2000, 4000]) {
        assert!(t.abs_diff(want) <= 160, "{times:?}");
    }
    // Every sample when asked.
    let every = VisionConfig {
        faces_interval: 1.0,
        ..config(&dir)
    };
    let all = analyze_video(&clip, &every).unwrap();
    assert_eq!(all.faces.items.len(), 5, "{:?}", all.faces.items);
    assert_eq!(results.moderation.status(), AnalysisStatus::Complete);
    assert!(results.moderation.items.is_empty());
}

#[test]
fn a_still_picture_is_labelled_once_and_keeps_its_labels() {
    let Some(dir) = models_with(&[ModelId::MobileNetV2]) else {
        return;
    };
    let Some(chelsea) = picture("chelsea.png") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let clip = clip_of(&chelsea, 5, tmp.path());
    let names_at = |r: &cuepoint_vision::VisionResults| {
        let mut at = std::collections::BTreeMap::<u64, Vec<String>>::new();
        for l in &r.labels.items {
            at.entry(l.timestamp)
                .or_default()
                .push(l.label.name.clone());
        }
        at
    };
    let still = analyze_video(&clip, &config(&dir)).unwrap();
    assert_eq!(still.frames, 5);
    // The model ran on the first frame only; every sample still carries the cat's labels.
    assert_eq!(still.labels_reused, 4);
    let at = names_at(&still);
    assert_eq!(at.len(), 5, "{at:?}");
    let first = at.values().next().unwrap().clone();
    assert!(first.iter().any(|n| n == "Cat"), "{first:?}");
    assert!(at.values().all(|names| *names == first), "{at:?}");
    // With reuse off, the model sees every sample and names the same things.
    let mut every = config(&dir);
    every.labels.still_difference = 0.0;
    let ran = analyze_video(&clip, &every).unwrap();
    assert_eq!(ran.labels_reused, 0);
    assert_eq!(names_at(&ran), at);
}

#[test]
fn a_moving_picture_is_labelled_by_the_model_at_every_sample() {
    let Some(dir) = models_with(&[ModelId::MobileNetV2]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("zoom.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "mandelbrot=s=640x360:r=25",
        "-t",
        "5",
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        clip.to_str().unwrap(),
    ]);
    let r = analyze_video(&clip, &config(&dir)).unwrap();
    assert_eq!(r.frames, 5);
    assert_eq!(r.labels_reused, 0);
}

#[test]
fn a_model_failing_at_run_time_fails_only_its_analysis() {
    let Some(dir) = models_with(&[ModelId::RetinaFace, ModelId::OpenNsfw]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    for m in [ModelId::RetinaFace, ModelId::OpenNsfw] {
        std::fs::create_dir_all(models.join(m.name())).unwrap();
        std::fs::copy(
            model_path(&dir, m).unwrap(),
            models.join(m.name()).join(m.onnx_file()),
        )
        .unwrap();
    }
    // A real model in the labels slot: it loads and runs, but gives boxes, not class scores.
    let labels_dir = models.join(ModelId::MobileNetV2.name());
    std::fs::create_dir_all(&labels_dir).unwrap();
    std::fs::copy(
        model_path(&dir, ModelId::RetinaFace).unwrap(),
        labels_dir.join(ModelId::MobileNetV2.onnx_file()),
    )
    .unwrap();
    let names: String = (0..1000).map(|i| format!("class {i}\n")).collect();
    std::fs::write(labels_dir.join(CLASSES_FILE), names).unwrap();
    let video = test_patterns(tmp.path());
    let results =
        analyze_video_with(&video, ModelFiles::unchecked(&models), &config(&models)).unwrap();
    assert_eq!(results.labels.status(), AnalysisStatus::Failed);
    let message = results.labels.analysis.message.clone().unwrap();
    assert!(
        message.contains("mobilenet-v2") && message.contains("class scores"),
        "{message}"
    );
    assert_eq!(results.faces.status(), AnalysisStatus::Complete);
    assert_eq!(results.moderation.status(), AnalysisStatus::Complete);
    assert!(results.frames >= 8);
}

#[test]
fn a_corrupt_model_file_is_named_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("retinaface");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("retinaface.onnx");
    std::fs::write(&file, b"\x08\x06\x12\x07pytorch truncated").unwrap();
    let err = FaceDetector::load(&file, FaceOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, VisionError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(file.to_str().unwrap()), "{msg}");
    assert!(msg.contains("cuepoint models install"), "{msg}");

    // In a pass: that analysis fails with the same message; the others are not installed.
    let video = test_patterns(tmp.path());
    let results = analyze_video_with(
        &video,
        ModelFiles::unchecked(tmp.path()),
        &config(tmp.path()),
    )
    .unwrap();
    assert_eq!(results.faces.status(), AnalysisStatus::Failed);
    assert_eq!(
        results.faces.analysis.message.as_deref(),
        Some(msg.as_str())
    );
    assert_eq!(results.faces.analysis.model.as_deref(), Some("retinaface"));
    for o in [&results.labels.analysis, &results.moderation.analysis] {
        assert_eq!(o.status, AnalysisStatus::NotInstalled);
        assert!(o
            .message
            .as_ref()
            .unwrap()
            .contains("cuepoint models install"));
    }
}

#[test]
fn without_models_every_analysis_says_not_installed_and_nothing_is_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    // Not even a video: with no model installed the pass does not decode.
    let results = analyze_video(&tmp.path().join("absent.mp4"), &config(tmp.path())).unwrap();
    assert_eq!(results.frames, 0);
    let all = [
        &results.labels.analysis,
        &results.faces.analysis,
        &results.moderation.analysis,
    ];
    let models: Vec<_> = all.iter().map(|a| a.model.clone().unwrap()).collect();
    assert_eq!(models, ["mobilenet-v2", "retinaface", "opennsfw"]);
    for a in all {
        assert_eq!(a.status, AnalysisStatus::NotInstalled);
        assert!(a
            .message
            .as_ref()
            .unwrap()
            .contains("cuepoint models install"));
    }
}

#[test]
fn an_unreadable_video_fails_the_pass() {
    let Some(dir) = models_with(&[ModelId::RetinaFace]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.mp4");
    std::fs::write(&bad, b"not a video").unwrap();
    let err = analyze_video(&bad, &config(&dir)).unwrap_err();
    assert!(matches!(err, VisionError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("bad.mp4"));
}

#[test]
fn an_installed_model_with_the_wrong_hash_is_named_with_the_fix() {
    let Some(dir) = models_with(&[ModelId::RetinaFace]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("retinaface");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(
        dir.join("retinaface/installed.json"),
        model.join("installed.json"),
    )
    .unwrap();
    let mut bytes = std::fs::read(model_path(&dir, ModelId::RetinaFace).unwrap()).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(model.join("retinaface.onnx"), bytes).unwrap();
    let err = ModelFiles::installed(tmp.path()).faces.unwrap_err();
    assert!(!err.is_not_installed());
    let msg = err.to_string();
    assert!(
        msg.contains(model.join("retinaface.onnx").to_str().unwrap()),
        "{msg}"
    );
    assert!(msg.contains("cuepoint models install"), "{msg}");
    // The pass reports it as that analysis's failure.
    let results = analyze_video(&tmp.path().join("absent.mp4"), &config(tmp.path())).unwrap();
    assert_eq!(results.faces.status(), AnalysisStatus::Failed);
    assert_eq!(
        results.faces.analysis.message.as_deref(),
        Some(msg.as_str())
    );
}
