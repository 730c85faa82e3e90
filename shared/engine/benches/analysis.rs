//! Benchmark (not a timed test): one-pass `analyze()` against a plain decode of the same file.
//!
//! Generates (once, cached under `target/cuepoint-bench/`) a 1080p25 H.264 asset with 8 mono
//! 24-bit PCM tracks, a hard cut every 40 s and a 2 s black silent gap every 150 s, then measures
//! in the same run:
//!   1. `ffmpeg -i FILE -map 0:v -map 0:a -f null -`   (decode every stream, nothing else)
//!   2. `analyze(FILE)`                                  (loudness x8, blackdetect, scdet, credits)
//!   3. the same with true peak (4x oversampled) instead of sample peak
//!
//! wall time and CPU time of the child processes (getrusage(RUSAGE_CHILDREN)), and the ratio.
//! Target: analysis ≤ 1.3 × decode-only. It also checks the analysis against the ground truth.
//!
//! Environment: CUEPOINT_BENCH_SECONDS (default 600), CUEPOINT_BENCH_SIZE (default 1920x1080),
//! CUEPOINT_BENCH_RUNS (default 1; the median is reported).
//!
//!     cargo bench -p cuepoint-engine --bench analysis
//!     CUEPOINT_BENCH_SECONDS=60 cargo bench -p cuepoint-engine --bench analysis

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cuepoint_core::rekognition::CUE_BLACK_FRAMES;
use cuepoint_engine::{analyze, generate_sample, AnalyzeOptions, GroundTruth, SampleSpec};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of all waited-for children so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) != 0 {
            return f64::NAN;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

#[derive(Debug, Clone, Copy)]
struct Cost {
    wall: f64,
    cpu: f64,
}

fn median(mut v: Vec<Cost>) -> Cost {
    v.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
    v[v.len() / 2]
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("cuepoint-bench")
}

fn decode_only(file: &Path) -> Cost {
    let cpu0 = children_cpu();
    let t0 = Instant::now();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v", "-map", "0:a", "-f", "null", "-"])
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "decode-only ffmpeg failed: {status}");
    Cost {
        wall: t0.elapsed().as_secs_f64(),
        cpu: children_cpu() - cpu0,
    }
}

fn main() {
    let seconds: f64 = env_or("CUEPOINT_BENCH_SECONDS", 600.0);
    let size: String = env_or("CUEPOINT_BENCH_SIZE", "1920x1080".to_string());
    let runs: usize = env_or("CUEPOINT_BENCH_RUNS", 1usize).max(1);
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .expect("CUEPOINT_BENCH_SIZE is WIDTHxHEIGHT");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let dir = target_dir();
    std::fs::create_dir_all(&dir).expect("bench dir");
    // The version tag changes whenever the generator's content changes.
    let file = dir.join(format!("bench_v2_{seconds}s_{w}x{h}.mov"));
    let truth_file = file.with_extension("truth.json");
    let truth: GroundTruth = match std::fs::read(&truth_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(t) if file.exists() => {
            println!("asset: {} (cached)", file.display());
            t
        }
        _ => {
            let spec = SampleSpec::regular(seconds, w, h, 40.0, 150.0);
            println!(
                "generating {} ({seconds} s {w}x{h}, 8 mono PCM tracks) ...",
                file.display()
            );
            let t0 = Instant::now();
            let t = rt
                .block_on(generate_sample(&file, &spec))
                .expect("generate the asset");
            println!("generated in {:.1} s", t0.elapsed().as_secs_f64());
            std::fs::write(&truth_file, serde_json::to_vec_pretty(&t).unwrap())
                .expect("write truth");
            t
        }
    };

    let true_peak = AnalyzeOptions {
        true_peak: true,
        ..AnalyzeOptions::default()
    };
    let mut decode = Vec::new();
    let mut analysis = Vec::new();
    let mut analysis_tp = Vec::new();
    let mut last = None;
    let measure = |opts: &AnalyzeOptions| {
        let cpu0 = children_cpu();
        let t0 = Instant::now();
        let a = rt.block_on(analyze(&file, opts, None)).expect("analysis");
        (
            Cost {
                wall: t0.elapsed().as_secs_f64(),
                cpu: children_cpu() - cpu0,
            },
            a,
        )
    };
    for run in 1..=runs {
        let d = decode_only(&file);
        println!(
            "run {run}: decode-only          wall {:7.2} s  cpu {:7.2} s",
            d.wall, d.cpu
        );
        decode.push(d);
        let (c, a) = measure(&AnalyzeOptions::default());
        println!(
            "run {run}: analyze()            wall {:7.2} s  cpu {:7.2} s",
            c.wall, c.cpu
        );
        analysis.push(c);
        last = Some(a);
        let (c, _) = measure(&true_peak);
        println!(
            "run {run}: analyze(true peak)   wall {:7.2} s  cpu {:7.2} s",
            c.wall, c.cpu
        );
        analysis_tp.push(c);
    }
    let (d, a, tp) = (median(decode), median(analysis), median(analysis_tp));
    println!();
    println!("medians of {runs} run(s):");
    println!(
        "decode-only (every stream): wall {:.2} s, cpu {:.2} s",
        d.wall, d.cpu
    );
    println!(
        "analyze() one pass:         wall {:.2} s, cpu {:.2} s",
        a.wall, a.cpu
    );
    println!(
        "analyze() with true peak:   wall {:.2} s, cpu {:.2} s",
        tp.wall, tp.cpu
    );
    println!(
        "ratio analyze/decode:       wall {:.3}, cpu {:.3} (target <= 1.3)",
        a.wall / d.wall,
        a.cpu / d.cpu
    );
    println!(
        "ratio with true peak:       wall {:.3}, cpu {:.3}",
        tp.wall / d.wall,
        tp.cpu / d.cpu
    );

    // Accuracy against the ground truth.
    let a = last.expect("at least one run");
    let frame = 1.0 / truth.fps + 1e-9;
    let starts: Vec<f64> = a
        .segments
        .segments
        .iter()
        .filter(|s| s.is_shot())
        .map(|s| s.start_timestamp_millis as f64 / 1000.0)
        .collect();
    let found_cuts = truth
        .cuts
        .iter()
        .filter(|c| starts.iter().any(|s| (s - *c).abs() <= frame))
        .count();
    let mut edges = vec![0.0];
    edges.extend(&truth.cuts);
    for (s, e) in &truth.black_gaps {
        edges.extend([*s, *e]);
    }
    let spurious = starts
        .iter()
        .filter(|s| !edges.iter().any(|e| (*s - e).abs() <= frame))
        .count();
    let black: Vec<(f64, f64)> = a
        .segments
        .segments
        .iter()
        .filter(|s| s.cue_type() == Some(CUE_BLACK_FRAMES))
        .map(|s| {
            (
                s.start_timestamp_millis as f64 / 1000.0,
                s.end_timestamp_millis as f64 / 1000.0,
            )
        })
        .collect();
    let exact_black = truth
        .black_gaps
        .iter()
        .filter(|(s, e)| {
            black
                .iter()
                .any(|(bs, be)| (bs - s).abs() <= frame && (be - e).abs() <= frame)
        })
        .count();
    let verdicts_ok = a
        .loudness
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            (l.summary.input_max_loudness > -50.0) == truth.active_tracks.contains(&(*i as u32 + 1))
        })
        .count();
    println!(
        "accuracy: cuts {found_cuts}/{} within one frame ({spurious} shots elsewhere), black gaps {exact_black}/{} \
         within one frame ({} black cues), silent-track verdicts {verdicts_ok}/{}",
        truth.cuts.len(),
        truth.black_gaps.len(),
        black.len(),
        truth.track_count
    );
}
