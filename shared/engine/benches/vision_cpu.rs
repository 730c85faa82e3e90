//! Benchmark (not a timed test): every local vision and speech-activity analysis (labels,
//! faces, moderation in one decode; silero VAD on each track with sound) against a plain decode
//! of the same file.
//!
//! Uses the same generated asset as the `analysis` bench (10 minutes of 1080p25 H.264 with a hard
//! cut every 40 s, cached under `target/cuepoint-bench/`), then measures in the same run:
//!   1. `ffmpeg -i FILE -map 0:v -f null -`       (decode the video, nothing else)
//!   2. `analyze_video(FILE)` at the default rate  (FFmpeg sampling + the three models)
//!   3. speech activity: each track with sound decoded to 16 kHz and run through silero VAD
//!   4. the vision pass decoding every frame (no B-frame skipping), for comparison
//!   5. a plain decode of the whole file (video and every audio track), for comparison
//!
//! CPU is user + system time: FFmpeg's from getrusage(RUSAGE_CHILDREN), the models' from
//! getrusage(RUSAGE_SELF). Target: vision + speech activity ≤ 1.5 × decode-only (the video
//! decode: the stricter of the two denominators). Transcription is not counted here: its cost is
//! reported per minute of audio by `cargo bench -p cuepoint-speech`. Needs the
//! models installed (`cuepoint models install`, or `CUEPOINT_MODELS_DIR`).
//!
//! Environment: CUEPOINT_BENCH_SECONDS (default 600), CUEPOINT_BENCH_SIZE (default 1920x1080).
//!
//!     cargo bench -p cuepoint-engine --bench vision_cpu

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cuepoint_engine::{generate_sample, GroundTruth, SampleSpec};
use cuepoint_speech::VadParams;
use cuepoint_vision::{analyze_video, AnalysisStatus, SampleOptions, VisionConfig};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of `who` so far.
fn cpu(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut ru) != 0 {
            return f64::NAN;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

#[derive(Debug, Clone, Copy)]
struct Cost {
    wall: f64,
    ffmpeg: f64,
    models: f64,
}

impl Cost {
    fn cpu(&self) -> f64 {
        self.ffmpeg + self.models
    }
}

fn measure<T>(f: impl FnOnce() -> T) -> (Cost, T) {
    let (c0, s0) = (cpu(libc::RUSAGE_CHILDREN), cpu(libc::RUSAGE_SELF));
    let t0 = Instant::now();
    let out = f();
    (
        Cost {
            wall: t0.elapsed().as_secs_f64(),
            ffmpeg: cpu(libc::RUSAGE_CHILDREN) - c0,
            models: cpu(libc::RUSAGE_SELF) - s0,
        },
        out,
    )
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("cuepoint-bench")
}

fn main() {
    let seconds: f64 = env_or("CUEPOINT_BENCH_SECONDS", 600.0);
    let size: String = env_or("CUEPOINT_BENCH_SIZE", "1920x1080".to_string());
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .expect("CUEPOINT_BENCH_SIZE is WIDTHxHEIGHT");
    let dir = target_dir();
    std::fs::create_dir_all(&dir).expect("bench dir");
    // Same name and tag as the analysis bench, so the asset is generated once for both.
    let file = dir.join(format!("bench_v2_{seconds}s_{w}x{h}.mov"));
    let truth_file = file.with_extension("truth.json");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let truth: GroundTruth = if !(file.exists() && truth_file.exists()) {
        let spec = SampleSpec::regular(seconds, w, h, 40.0, 150.0);
        println!("generating {} ({seconds} s {w}x{h}) ...", file.display());
        let t: GroundTruth = rt
            .block_on(generate_sample(&file, &spec))
            .expect("generate the asset");
        std::fs::write(&truth_file, serde_json::to_vec_pretty(&t).unwrap()).expect("write truth");
        t
    } else {
        println!("asset: {} (cached)", file.display());
        serde_json::from_slice(&std::fs::read(&truth_file).expect("read truth")).expect("truth")
    };

    let config = VisionConfig::default();
    println!("models: {}", config.models_dir.display());

    let (decode, ()) = measure(|| {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i"])
            .arg(&file)
            .args(["-map", "0:v:0", "-f", "null", "-"])
            .stdin(Stdio::null())
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "decode-only ffmpeg failed: {status}");
    });
    println!(
        "decode-only (video):           wall {:7.2} s  cpu {:7.2} s",
        decode.wall,
        decode.cpu()
    );
    let (vision, results) = measure(|| analyze_video(&file, &config).expect("vision pass"));
    for (name, a) in [
        ("labels", &results.labels.analysis),
        ("faces", &results.faces.analysis),
        ("moderation", &results.moderation.analysis),
    ] {
        assert_eq!(
            a.status,
            AnalysisStatus::Complete,
            "{name}: {:?} (install the models first)",
            a.message
        );
    }
    println!(
        "vision pass ({} frames):      wall {:7.2} s  cpu {:7.2} s  (ffmpeg {:.2} s, models {:.2} s, {:.1} ms/frame)",
        results.frames,
        vision.wall,
        vision.cpu(),
        vision.ffmpeg,
        vision.models,
        vision.models * 1000.0 / results.frames.max(1) as f64
    );
    println!(
        "  label model ran on {} of {} frames (the others: still pictures, labels kept)",
        results.frames - results.labels_reused,
        results.frames
    );
    println!(
        "  model time: labels {:.2} s, faces {:.2} s (a frame every {} s), moderation {:.2} s (every {} s)",
        results.model_seconds.labels,
        results.model_seconds.faces,
        config.faces_interval,
        results.model_seconds.moderation,
        config.moderation_interval
    );
    // Speech activity as the pipeline runs it: every track with sound, one decode each.
    let vad = cuepoint_speech::Vad::from_models_dir(&config.models_dir)
        .expect("silero VAD installed (cuepoint models install)");
    let ffmpeg = PathBuf::from(std::env::var_os("CUEPOINT_FFMPEG").unwrap_or("ffmpeg".into()));
    let (speech, intervals) = measure(|| {
        let mut n = 0;
        for &track in &truth.active_tracks {
            let samples = rt
                .block_on(cuepoint_speech::decode_track_16k(&ffmpeg, &file, track))
                .expect("decode the track");
            n += vad
                .detect(&samples, &VadParams::default(), track)
                .expect("speech activity")
                .len();
        }
        n
    });
    println!(
        "speech activity ({} tracks):   wall {:7.2} s  cpu {:7.2} s  (ffmpeg {:.2} s, VAD {:.2} s, {} intervals)",
        truth.active_tracks.len(),
        speech.wall,
        speech.cpu(),
        speech.ffmpeg,
        speech.models,
        intervals
    );
    let (whole, ()) = measure(|| {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i"])
            .arg(&file)
            .args(["-map", "0:v:0", "-map", "0:a", "-f", "null", "-"])
            .stdin(Stdio::null())
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "decode-only ffmpeg failed: {status}");
    });
    println!(
        "decode-only (whole file):      wall {:7.2} s  cpu {:7.2} s  ({} audio tracks)",
        whole.wall,
        whole.cpu(),
        truth.track_count
    );
    let every_frame = VisionConfig {
        sampling: SampleOptions {
            skip_bidirectional: false,
            ..SampleOptions::default()
        },
        ..VisionConfig::default()
    };
    let (full, full_results) = measure(|| analyze_video(&file, &every_frame).expect("vision pass"));
    println!(
        "vision, every frame decoded:   wall {:7.2} s  cpu {:7.2} s  (ffmpeg {:.2} s, models {:.2} s, {} frames)",
        full.wall,
        full.cpu(),
        full.ffmpeg,
        full.models,
        full_results.frames
    );
    println!();
    println!(
        "labels {}, faces {}, moderation {} over {} frames",
        results.labels.items.len(),
        results.faces.items.len(),
        results.moderation.items.len(),
        results.frames
    );
    let analyses = vision.cpu() + speech.cpu();
    println!(
        "ratio vision/decode:           cpu {:.3}, wall {:.3}",
        vision.cpu() / decode.cpu(),
        vision.wall / decode.wall
    );
    println!(
        "ratio (vision + speech activity)/decode-only video: cpu {:.3} (target <= 1.5)",
        analyses / decode.cpu()
    );
    println!(
        "ratio (vision + speech activity)/decode-only whole file: cpu {:.3}",
        analyses / whole.cpu()
    );
    println!(
        "ratio, every frame decoded:    cpu {:.3}",
        full.cpu() / decode.cpu()
    );
}
