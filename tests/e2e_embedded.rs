//! End to end on the embedded backend: a generated clip with a known answer goes through
//! ingest → transcode (local MediaConvert) → silent tracks → analyses (local Rekognition) →
//! scoring → VMAP, with every hop a queue.

use std::sync::Arc;
use std::time::Duration;

use cuepoint_core::asset::AssetState;
use cuepoint_engine::sample::generate_sample;
use cuepoint_runtime::ports::SystemClock;
use cuepoint_tests::{short_clip, test_settings};
use cuepoint_workers::backend::build_embedded;
use cuepoint_workers::cli::run::{ingest_files, run_until_terminal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_clip_runs_to_a_vmap_with_breaks_in_the_black_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mov");
    let truth = generate_sample(&clip, &short_clip())
        .await
        .expect("generate clip");
    let settings = test_settings(&dir.path().join("data"));
    let backend = build_embedded(&settings, true, Arc::new(SystemClock))
        .await
        .unwrap();

    let ids = ingest_files(&backend, &settings, &[clip]).await.unwrap();
    let assets = run_until_terminal(&backend, &ids, Duration::from_secs(300))
        .await
        .unwrap();
    let asset = &assets[0];
    assert_eq!(
        asset.state,
        AssetState::Complete,
        "failure: {:?}",
        asset.failure
    );

    // Checked against the stored results as raw JSON, not through the product's own summary
    // and comparison code.
    let frame = 1.0 / truth.fps + 1e-6;
    let read = |rel: &str| -> serde_json::Value {
        let uri = asset.results.prefix.join(rel).unwrap();
        let path = backend.ctx.ports.blobs.local_path(&uri).unwrap();
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    };
    let segments = read("segments.json");
    let spans = |want: &dyn Fn(&serde_json::Value) -> bool| -> Vec<(f64, f64)> {
        segments["Segments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| want(s))
            .map(|s| {
                (
                    s["StartTimestampMillis"].as_f64().unwrap() / 1000.0,
                    s["EndTimestampMillis"].as_f64().unwrap() / 1000.0,
                )
            })
            .collect()
    };
    let black = spans(&|s| s["TechnicalCueSegment"]["Type"] == "BlackFrames");
    for &(a, b) in &truth.black_gaps {
        assert!(
            black
                .iter()
                .any(|&(x, y)| (x - a).abs() <= frame && (y - b).abs() <= frame),
            "black gap {a}-{b} not found within one frame in {black:?}"
        );
    }
    let shots = spans(&|s| s["Type"] == "SHOT");
    for &c in &truth.cuts {
        assert!(
            shots.iter().any(|&(x, _)| (x - c).abs() <= frame),
            "cut at {c} not found within one frame in {shots:?}"
        );
    }
    // Tracks 1 and 2 carry tone, 3 and 4 are silent (short_clip).
    let audio = read("audio.json");
    assert_eq!(
        audio["loudnessmap"],
        serde_json::json!([1, 1, 0, 0]),
        "{audio}"
    );

    // The VMAP on disk: every break sits inside a black, silent gap.
    let vmap_path = backend
        .ctx
        .ports
        .blobs
        .local_path(asset.results.vmap.as_ref().unwrap())
        .unwrap();
    let vmap = std::fs::read_to_string(&vmap_path).unwrap();
    let offsets: Vec<f64> = vmap
        .split("timeOffset=\"")
        .skip(1)
        .map(|s| {
            let t = &s[..12];
            let h: f64 = t[0..2].parse().unwrap();
            let m: f64 = t[3..5].parse().unwrap();
            let sec: f64 = t[6..12].parse().unwrap();
            h * 3600.0 + m * 60.0 + sec
        })
        .collect();
    assert!(!offsets.is_empty(), "VMAP has no breaks:\n{vmap}");
    for t in &offsets {
        assert!(
            truth
                .black_gaps
                .iter()
                .any(|&(a, b)| *t >= a - 0.04 && *t <= b + 0.04),
            "break at {t} is outside the black gaps {:?}\n{vmap}",
            truth.black_gaps
        );
    }
    // Each gap got its break (they are 14 s apart, spacing is 10 s).
    assert_eq!(offsets.len(), 2, "{vmap}");

    // Packaged after scoring: in every rendition of the ladder, each VMAP timeOffset is a
    // segment boundary, carries the cue markers, and the segment there starts with a key frame
    // at that time (ffprobe on the segments written).
    let master_uri = asset.results.hls_master.clone().expect("packaged");
    let master_path = backend.ctx.ports.blobs.local_path(&master_uri).unwrap();
    let master = std::fs::read_to_string(&master_path).unwrap();
    let hls_dir = master_path.parent().unwrap();
    let variants: Vec<&str> = master
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!variants.is_empty(), "{master}");
    for line in master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
    {
        for attr in [
            "BANDWIDTH=",
            "AVERAGE-BANDWIDTH=",
            "RESOLUTION=",
            "CODECS=",
            "FRAME-RATE=",
        ] {
            assert!(line.contains(attr), "{line}");
        }
    }
    for v in variants {
        let text = std::fs::read_to_string(hls_dir.join(v)).unwrap();
        let starts = cuepoint_core::packaging::segment_starts(&text).unwrap();
        let segs: Vec<std::path::PathBuf> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| hls_dir.join(l))
            .collect();
        let keys = cuepoint_engine::package::key_frame_times_of(&segs)
            .await
            .unwrap();
        let origin = keys[0];
        for t in &offsets {
            assert!(
                starts.iter().any(|s| (s - t).abs() < 0.001),
                "{v}: no segment starts at the break {t}: {starts:?}"
            );
            assert!(
                keys.iter().any(|k| (k - origin - t).abs() < 0.001),
                "{v}: no key frame at the break {t}"
            );
        }
        assert_eq!(
            text.matches("#EXT-X-CUE-OUT:0").count(),
            offsets.len(),
            "{text}"
        );
        assert_eq!(text.matches("SCTE35-OUT=").count(), offsets.len(), "{text}");
    }

    // The results layout is complete.
    for rel in [
        "probe.json",
        "audio.json",
        "segments.json",
        "labels.json",
        "slots.json",
        "ad_breaks.vmap",
        "asset.json",
        "loudness/track-1.csv",
        "loudness/track-4.csv",
        "hls/index.m3u8",
    ] {
        let uri = asset.results.prefix.join(rel).unwrap();
        assert!(
            backend.ctx.ports.blobs.head(&uri).await.unwrap().is_some(),
            "missing {rel}"
        );
    }

    // Scenes: each black gap opens a new scene, and timeline.svg draws one bar per scene.
    let scenes = read("scenes.json");
    let starts: Vec<f64> = scenes["Scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["StartTimestamp"].as_f64().unwrap() / 1000.0)
        .collect();
    for &(a, _) in &truth.black_gaps {
        assert!(
            starts.iter().any(|s| (s - a).abs() <= frame),
            "no scene starts at the black gap at {a}: {scenes}"
        );
    }
    let svg_uri = asset.results.prefix.join("timeline.svg").unwrap();
    let svg =
        std::fs::read_to_string(backend.ctx.ports.blobs.local_path(&svg_uri).unwrap()).unwrap();
    assert_eq!(
        svg.matches(r#"class="scene""#).count(),
        starts.len(),
        "one bar per scene on the timeline"
    );
}
