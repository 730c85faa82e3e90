//! Detection accuracy against generated media with an exact ground truth: silence edges,
//! the audio layout from channel counts, short shots and gradual transitions.

use std::path::Path;

use cuepoint_core::loudness::{AudioLayout, AudioOptions, AudioReport, LoudnessLog};
use cuepoint_engine::*;

async fn ffmpeg(args: &[&str]) {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
}

fn audio_only() -> AnalyzeOptions {
    AnalyzeOptions {
        video: false,
        ..AnalyzeOptions::default()
    }
}

/// The audio report as the pipeline makes it: logs written as CSV, read back, channels probed.
async fn report(path: &Path, opts: &AudioOptions) -> AudioReport {
    let a = analyze(path, &audio_only(), None).await.unwrap();
    let logs: Vec<LoudnessLog> = a
        .loudness
        .iter()
        .map(|l| LoudnessLog::parse(&l.to_csv()).unwrap())
        .collect();
    let channels: Vec<u32> = a.probe.audio_tracks.iter().map(|t| t.channels).collect();
    AudioReport::from_logs(&logs, &channels, opts)
}

/// `expr` silenced inside `gaps` (an aevalsrc expression, sample-exact).
fn gated(expr: &str, gaps: &[(f64, f64)]) -> String {
    let mut e = format!("({expr})");
    for (a, b) in gaps {
        e.push_str(&format!("*not(between(t,{a},{b}))"));
    }
    e
}

/// Gaps of 0.3 s to 1 s, on and off the meter's 100 ms grid, in a tone at about -24 LUFS and
/// in pink noise whose level swings by 10 dB: every gap is found, each edge within 0.1 s.
#[tokio::test]
async fn silence_edges_match_the_generated_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gaps.mov");
    let gaps = [
        (2.0, 3.0),
        (4.0, 4.3),
        (5.05, 5.35),
        (6.02, 6.34),
        (7.0, 7.5),
        (8.07, 8.62),
        (9.5, 10.2),
        (11.13, 11.75),
    ];
    let tone = gated("0.1*sin(2*PI*440*t)", &gaps);
    let tone_src = format!("aevalsrc='{tone}':s=48000:d=13");
    // Pink noise, its level swinging slowly, then gated sample-exactly.
    let noise_gate = gated("val(0)*(0.4+0.6*abs(sin(2*PI*0.3*t)))", &gaps);
    let noise_src = "anoisesrc=c=pink:a=0.2:s=48000:d=13:seed=7".to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:size=64x36:rate=25:d=13",
        "-f",
        "lavfi",
        "-i",
        &tone_src,
        "-f",
        "lavfi",
        "-i",
        &noise_src,
        "-filter_complex",
        &format!("[2:a]aeval='{noise_gate}':c=same[n]"),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "[n]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "pcm_s24le",
        path.to_str().unwrap(),
    ])
    .await;

    let r = report(&path, &AudioOptions::default()).await;
    assert_eq!(r.loudnessmap, vec![1, 1]);
    for (track, found) in r.silences.iter().enumerate() {
        assert_eq!(
            found.len(),
            gaps.len(),
            "track {}: found {found:?}",
            track + 1
        );
        let mut worst = 0.0f64;
        for (f, (s, e)) in found.iter().zip(&gaps) {
            let err = (f.start - s).abs().max((f.end - e).abs());
            worst = worst.max(err);
            assert!(err <= 0.1, "track {}: {f:?} against {s}-{e}", track + 1);
        }
        println!(
            "track {}: {} gaps of 0.3-1 s, worst edge error {:.0} ms",
            track + 1,
            gaps.len(),
            worst * 1000.0
        );
    }
    // The shortest reported silence is configurable.
    let long = report(
        &path,
        &AudioOptions {
            min_silence_seconds: 0.6,
            ..AudioOptions::default()
        },
    )
    .await;
    assert_eq!(long.silences[0].len(), 3, "{:?}", long.silences[0]);
}

/// The layout counts sounding channels, not tracks.
#[tokio::test]
async fn layout_follows_channel_counts() {
    let dir = tempfile::tempdir().unwrap();
    let tone = |f: u32| format!("0.1*sin(2*PI*{f}*t)");
    let make = |name: &str, inputs: Vec<String>| {
        let path = dir.path().join(name);
        let mut args: Vec<String> = vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "color=c=gray:size=64x36:rate=25:d=2".into(),
        ];
        for i in &inputs {
            args.extend(["-f".into(), "lavfi".into(), "-i".into(), i.clone()]);
        }
        args.extend(["-map".into(), "0:v".into()]);
        for n in 1..=inputs.len() {
            args.extend(["-map".into(), format!("{n}:a")]);
        }
        args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-c:a",
                "pcm_s24le",
            ]
            .map(String::from),
        );
        args.push(path.to_str().unwrap().into());
        (path, args)
    };
    let six: Vec<String> = (0..6).map(|c| tone(300 + 100 * c)).collect();
    let cases = [
        (
            "surround.mov",
            vec![format!(
                "aevalsrc='{}':channel_layout=5.1:s=48000:d=2",
                six.join("|")
            )],
            AudioLayout::Surround51,
        ),
        (
            "stereo.mov",
            vec![format!(
                "aevalsrc='{}|{}':channel_layout=stereo:s=48000:d=2",
                tone(440),
                tone(660)
            )],
            AudioLayout::Stereo,
        ),
        (
            "two-mono.mov",
            vec![
                format!("aevalsrc='{}':s=48000:d=2", tone(440)),
                format!("aevalsrc='{}':s=48000:d=2", tone(660)),
                "anullsrc=channel_layout=mono:sample_rate=48000:d=2".into(),
            ],
            AudioLayout::Stereo,
        ),
        (
            "mono.mov",
            vec![format!("aevalsrc='{}':s=48000:d=2", tone(440))],
            AudioLayout::Mono,
        ),
    ];
    for (name, inputs, want) in cases {
        let (path, args) = make(name, inputs);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ffmpeg(&args).await;
        let r = report(&path, &AudioOptions::default()).await;
        assert_eq!(r.layout, want, "{name}: {r:?}");
    }
}

fn small(duration: f64) -> SampleSpec {
    SampleSpec {
        duration,
        width: 320,
        height: 180,
        fps: 25,
        track_count: 1,
        active_tracks: vec![1],
        cuts: vec![],
        black_gaps: vec![],
        end_credits_from: None,
        x264_preset: "ultrafast".into(),
        ..SampleSpec::default()
    }
}

/// Shots of 2, 3, 8 and 14 frames, and a 0.3 s close-up cut to black: every cut is found, to
/// the frame, and nothing else.
#[tokio::test]
async fn short_shots_keep_the_cut_that_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.mov");
    let spec = SampleSpec {
        cuts: vec![2.0, 2.08, 2.2, 2.52, 4.0, 4.56, 7.7],
        black_gaps: vec![(8.0, 10.0)],
        ..small(12.0)
    };
    let truth = generate_sample(&path, &spec).await.unwrap();
    let opts = AnalyzeOptions {
        loudness: false,
        ..AnalyzeOptions::default()
    };
    let a = analyze(&path, &opts, None).await.unwrap();
    let starts: Vec<u64> = a
        .segments
        .segments
        .iter()
        .filter(|s| s.is_shot())
        .map(|s| s.start_frame_number.unwrap())
        .collect();
    let mut want: Vec<u64> = vec![0];
    want.extend(truth.cuts.iter().map(|c| (c * 25.0).round() as u64));
    for (s, e) in &truth.black_gaps {
        want.extend([(s * 25.0).round() as u64, (e * 25.0).round() as u64]);
    }
    want.sort();
    want.dedup();
    assert_eq!(starts, want);
}

/// A fade to black (3-4 s), black (4-6 s), a fade from black (6-7 s) and a cross-dissolve
/// (9-10 s) between moving test patterns: each reported as a transition cue over its frames,
/// within 0.1 s, with a shot boundary for each, and no other transition or shot.
#[tokio::test]
async fn fades_and_dissolves_are_transitions() {
    use cuepoint_core::rekognition::{CUE_DISSOLVE, CUE_FADE_IN, CUE_FADE_OUT};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transitions.mov");
    let size = "320x180";
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=25:d=4"),
        "-f",
        "lavfi",
        "-i",
        &format!("color=c=black:size={size}:rate=25:d=2"),
        "-f",
        "lavfi",
        "-i",
        &format!("smptebars=size={size}:rate=25:d=4"),
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size={size}:rate=25:d=3"),
        "-filter_complex",
        "[0:v]format=yuv420p,fade=t=out:st=3:d=1,settb=1/25[a];\
         [1:v]format=yuv420p,settb=1/25[k];\
         [2:v]format=yuv420p,fade=t=in:st=0:d=1,settb=1/25[b];\
         [3:v]format=yuv420p,settb=1/25[c];\
         [b][c]xfade=transition=fade:duration=1:offset=3[bc];\
         [a][k][bc]concat=n=3:v=1[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        path.to_str().unwrap(),
    ])
    .await;
    let opts = AnalyzeOptions {
        loudness: false,
        ..AnalyzeOptions::default()
    };
    let a = analyze(&path, &opts, None).await.unwrap();
    let s = |ms: u64| ms as f64 / 1000.0;
    let cues: Vec<(&str, f64, f64)> = a
        .segments
        .segments
        .iter()
        .filter_map(|g| {
            g.cue_type()
                .filter(|c| [CUE_FADE_OUT, CUE_FADE_IN, CUE_DISSOLVE].contains(c))
                .map(|c| (c, s(g.start_timestamp_millis), s(g.end_timestamp_millis)))
        })
        .collect();
    let truth = [
        (CUE_FADE_OUT, 3.0, 4.0),
        (CUE_FADE_IN, 6.0, 7.0),
        (CUE_DISSOLVE, 9.0, 10.0),
    ];
    assert_eq!(cues.len(), truth.len(), "{cues:?}");
    let mut worst = 0.0f64;
    for (c, t) in cues.iter().zip(&truth) {
        assert_eq!(c.0, t.0, "{cues:?}");
        let err = (c.1 - t.1).abs().max((c.2 - t.2).abs());
        worst = worst.max(err);
        assert!(err <= 0.1, "{c:?} against {t:?}");
    }
    println!(
        "3 of 3 transitions found, none spurious; worst edge error {:.0} ms",
        worst * 1000.0
    );
    // Shots: the picture, the black, the faded-in bars, the pattern dissolved to.
    let shots: Vec<f64> = a
        .segments
        .segments
        .iter()
        .filter(|g| g.is_shot())
        .map(|g| s(g.start_timestamp_millis))
        .collect();
    assert_eq!(shots.len(), 4, "{shots:?}");
    for (got, want) in shots.iter().zip([0.0, 4.0, 6.0, 9.5]) {
        assert!((got - want).abs() <= 0.2, "shots {shots:?}");
    }
}

/// Two places, each shown in alternating shots (A B A B, then C D C): from the picture alone,
/// two scenes, the second starting at the cut to C.
#[tokio::test]
async fn scenes_group_shots_that_return_to_the_same_picture() {
    use cuepoint_core::scenes::{detect, BoundaryReason, SceneOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenes.mov");
    let size = "320x180";
    let src = |s: &str| format!("{s}=size={size}:rate=25:d=14");
    let order = ["a", "b", "a", "b", "c", "d", "c"];
    let mut graph = String::from(
        "[0:v]format=yuv420p,split=2[a0][a1];[1:v]format=yuv420p,split=2[b0][b1];\
         [2:v]format=yuv420p,split=2[c0][c1];[3:v]format=yuv420p[d0];",
    );
    let mut used = std::collections::HashMap::new();
    let mut parts = String::new();
    for (i, p) in order.iter().enumerate() {
        let n = used.entry(*p).or_insert(0);
        let (a, b) = (i * 2, i * 2 + 2);
        graph.push_str(&format!("[{p}{n}]trim={a}:{b},setpts=PTS-STARTPTS[s{i}];"));
        *n += 1;
        parts.push_str(&format!("[s{i}]"));
    }
    graph.push_str(&format!("{parts}concat=n={}:v=1[v]", order.len()));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src("testsrc2"),
        "-f",
        "lavfi",
        "-i",
        &src("smptebars"),
        "-f",
        "lavfi",
        "-i",
        &src("rgbtestsrc"),
        "-f",
        "lavfi",
        "-i",
        &src("pal75bars"),
        "-filter_complex",
        &graph,
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        path.to_str().unwrap(),
    ])
    .await;
    let opts = AnalyzeOptions {
        loudness: false,
        ..AnalyzeOptions::default()
    };
    let a = analyze(&path, &opts, None).await.unwrap();
    let shots = a.segments.segments.iter().filter(|s| s.is_shot()).count();
    assert_eq!(shots, 7, "{:#?}", a.segments.segments);
    let r = detect(&a.segments, None, &[], &SceneOptions::default());
    let starts: Vec<u64> = r.scenes.iter().map(|s| s.start_timestamp).collect();
    assert_eq!(starts, vec![0, 8000], "{r:#?}\n{:#?}", a.segments.segments);
    assert_eq!(r.scenes[1].boundary, vec![BoundaryReason::VisualChange]);
    assert_eq!(r.scenes[0].shots, vec![0, 1, 2, 3]);
    println!("scene boundaries: 1 of 1 found, none spurious (6 cuts)");
    // Each shot carries the colour histogram of its decoded frames: the same picture shares
    // most of its colours, different pictures few.
    let hist: Vec<Vec<f64>> = a
        .segments
        .segments
        .iter()
        .filter(|s| s.is_shot())
        .map(|s| {
            serde_json::from_value(
                s.extra[cuepoint_core::scenes::KEY_FRAME_FIELD]["Histogram"].clone(),
            )
            .unwrap()
        })
        .collect();
    let overlap =
        |i: usize, j: usize| -> f64 { hist[i].iter().zip(&hist[j]).map(|(x, y)| x.min(*y)).sum() };
    for (i, j) in [(0, 2), (1, 3), (4, 6)] {
        println!(
            "same picture, shots {i} and {j}: overlap {:.2}",
            overlap(i, j)
        );
        assert!(overlap(i, j) >= 0.8, "shots {i} {j}: {}", overlap(i, j));
    }
    for (i, j) in [(0, 1), (3, 4), (4, 5), (2, 4)] {
        println!(
            "different pictures, shots {i} and {j}: overlap {:.2}",
            overlap(i, j)
        );
        assert!(overlap(i, j) < 0.6, "shots {i} {j}: {}", overlap(i, j));
    }
}
