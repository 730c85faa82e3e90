//! Where the default policy puts breaks in a generated programme with an exact ground truth:
//! real FFmpeg pictures, real espeak-ng speech found by the installed voice-activity model,
//! the engine's own shots, black frames, fades and silences.
//!
//! The programme: a dialogue (two looks cut back and forth, each cut in the middle of a
//! sentence, a pause between sentences without a cut), a change of place in a pause, a second
//! scene, a fade to black and up again between acts, and a last scene whose only cut falls in
//! the middle of a sentence (the picture changes, the sentence keeps it one scene).

use std::path::Path;

use cuepoint_core::loudness::LoudnessLog;
use cuepoint_core::rekognition::{CUE_DISSOLVE, CUE_FADE_IN, CUE_FADE_OUT};
use cuepoint_core::scenes::{of_inputs, SceneOptions};
use cuepoint_core::scoring::{
    score, DefaultPolicyConfig, Policy, Reason, Schedule, ScoringInputs, Targets,
};
use cuepoint_core::speech::SpeechResults;
use cuepoint_engine::*;
use cuepoint_speech::testclip::{espeak_available, generate_speech_clip, SpeechClipSpec};

const FPS: f64 = 25.0;
const FADE: f64 = 0.8;
const BLACK: f64 = 1.0;

fn frame(t: f64) -> f64 {
    (t * FPS).round() / FPS
}

/// Precision and recall of `found` against `truth`, each true boundary a window of time.
fn precision_recall(found: &[f64], truth: &[(f64, f64)]) -> (f64, f64) {
    let inside = |x: f64, w: &(f64, f64)| w.0 <= x && x <= w.1;
    let tp = found
        .iter()
        .filter(|f| truth.iter().any(|w| inside(**f, w)))
        .count() as f64;
    let hit = truth
        .iter()
        .filter(|w| found.iter().any(|f| inside(*f, w)))
        .count() as f64;
    (
        tp / found.len().max(1) as f64,
        hit / truth.len().max(1) as f64,
    )
}

async fn ffmpeg(args: &[String]) {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
}

fn models_required() -> bool {
    std::env::var("CUEPOINT_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread")]
async fn breaks_go_to_scene_changes_and_the_black_between_acts_never_into_a_sentence() {
    if !espeak_available() {
        assert!(!models_required(), "espeak-ng is needed for this test");
        eprintln!("skipped: espeak-ng is not installed");
        return;
    }
    let models = cuepoint_speech::default_models_dir();
    let vad = match cuepoint_speech::Vad::from_models_dir(&models) {
        Ok(v) => v,
        Err(e) => {
            assert!(!models_required(), "{e}");
            eprintln!("skipped: {e}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let speech_clip = dir.path().join("speech.mov");
    let spec = SpeechClipSpec {
        sentences: vec![
            "I told you the train leaves at nine tomorrow morning.".into(),
            "Then we should pack our bags before dinner tonight.".into(),
            "The market is busy every Saturday before noon.".into(),
            "Fresh bread and apples are sold by the river.".into(),
            "Years later the old house by the sea was empty.".into(),
        ],
        lead_in: 1.0,
        gap: 3.0,
        tail: 1.5,
        width: 320,
        height: 180,
        fps: 25,
        extra_tracks: vec![],
        ..SpeechClipSpec::default()
    };
    let truth = generate_speech_clip(Path::new("ffmpeg"), &speech_clip, &spec)
        .await
        .unwrap();
    let u: Vec<(f64, f64)> = truth
        .utterances
        .iter()
        .map(|x| (x.start_ms / 1000.0, x.end_ms / 1000.0))
        .collect();
    assert_eq!(u.len(), 5);
    let mid = |i: usize| frame((u[i].0 + u[i].1) / 2.0);
    let end = frame(truth.duration_seconds - 0.02);

    // Cuts: in the middle of sentences 1 and 2 (dialogue), the change of place halfway through
    // the pause after sentence 2, sentences 3 and 4 (the second place), then the fade out, the
    // black, the fade in, and the middle of sentence 5.
    let (c1, c2) = (mid(0), mid(1));
    let t1 = frame((u[1].1 + u[2].0) / 2.0);
    let (c3, c4) = (mid(2), mid(3));
    let fade_out = frame(u[3].1 + 0.2);
    let black_start = frame(fade_out + FADE);
    let black_end = frame(black_start + BLACK);
    assert!(
        black_end + FADE < u[4].0 - 0.1,
        "the gap is too short: {u:?}"
    );
    let c5 = mid(4);
    // (source, start, end, filter on the piece)
    let pieces: Vec<(&str, f64, f64, String)> = vec![
        ("testsrc2", 0.0, c1, String::new()),
        ("smptebars", c1, c2, String::new()),
        ("testsrc2", c2, t1, String::new()),
        ("rgbtestsrc", t1, c3, String::new()),
        ("pal75bars", c3, c4, String::new()),
        (
            "rgbtestsrc",
            c4,
            black_start,
            format!(",fade=t=out:st={:.3}:d={FADE}", fade_out - c4),
        ),
        ("black", black_start, black_end, String::new()),
        (
            "testsrc",
            black_end,
            c5,
            format!(",fade=t=in:st=0:d={FADE}"),
        ),
        ("yuvtestsrc", c5, end, String::new()),
    ];
    let size = "320x180";
    let mut args: Vec<String> = vec!["-i".into(), speech_clip.to_str().unwrap().into()];
    let mut graph = String::new();
    let mut concat = String::new();
    for (k, (src, a, b, extra)) in pieces.iter().enumerate() {
        let source = if *src == "black" {
            format!("color=c=black:size={size}:rate=25:d={end}")
        } else {
            format!("{src}=size={size}:rate=25:d={end}")
        };
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), source]);
        graph.push_str(&format!(
            "[{}:v]format=yuv420p,trim={a:.3}:{b:.3},setpts=PTS-STARTPTS{extra},settb=1/25[p{k}];",
            k + 1
        ));
        concat.push_str(&format!("[p{k}]"));
    }
    graph.push_str(&format!("{concat}concat=n={}:v=1[v]", pieces.len()));
    let path = dir.path().join("programme.mov");
    args.extend(
        [
            "-filter_complex",
            &graph,
            "-map",
            "[v]",
            "-map",
            "0:a:0",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-c:a",
            "pcm_s16le",
            path.to_str().unwrap(),
        ]
        .map(String::from),
    );
    ffmpeg(&args).await;

    // The engine's findings, as the pipeline stores and reads them.
    let a = analyze(&path, &AnalyzeOptions::default(), None)
        .await
        .unwrap();
    let samples = cuepoint_speech::decode_track_16k(Path::new("ffmpeg"), &path, 1)
        .await
        .unwrap();
    let speech =
        tokio::task::spawn_blocking(move || vad.detect(&samples, &Default::default(), 1).unwrap())
            .await
            .unwrap();
    let inputs = ScoringInputs {
        loudness: a
            .loudness
            .iter()
            .map(|l| LoudnessLog::parse(&l.to_csv()).unwrap())
            .collect(),
        segments: Some(a.segments.clone()),
        speech: Some(SpeechResults {
            job_status: Some("SUCCEEDED".into()),
            speech,
            ..Default::default()
        }),
        ..ScoringInputs::default()
    };
    let found_speech = &inputs.speech.as_ref().unwrap().speech;
    assert!(found_speech.len() >= 5, "speech found: {found_speech:?}");

    // Transitions: the fade out and the fade in, nothing else.
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
    let fades_truth = [
        (CUE_FADE_OUT, fade_out, black_start),
        (CUE_FADE_IN, black_end, black_end + FADE),
    ];
    let matched = |c: &(&str, f64, f64), t: &(&str, f64, f64)| {
        c.0 == t.0 && (c.1 - t.1).abs() <= 0.1 && (c.2 - t.2).abs() <= 0.1
    };
    let tp = cues
        .iter()
        .filter(|c| fades_truth.iter().any(|t| matched(c, t)))
        .count();
    let hit = fades_truth
        .iter()
        .filter(|t| cues.iter().any(|c| matched(c, t)))
        .count();
    println!(
        "transitions: {} found, {} true; precision {:.2}, recall {:.2}",
        cues.len(),
        fades_truth.len(),
        tp as f64 / cues.len().max(1) as f64,
        hit as f64 / fades_truth.len() as f64
    );
    assert_eq!((tp, hit, cues.len()), (2, 2, 2), "{cues:?}");

    // Scenes: the change of place and the black between acts; the cuts inside sentences and
    // the dialogue's back-and-forth are not boundaries.
    let scenes = of_inputs(&inputs, &SceneOptions::default());
    let found: Vec<f64> = scenes.scenes[1..]
        .iter()
        .map(|x| s(x.start_timestamp))
        .collect();
    // The change of place to within 0.1 s; the act break anywhere in the darkest half of the
    // fade or the black (the last frames of a fade are as dark as black).
    let scene_truth = [(t1 - 0.1, t1 + 0.1), (fade_out + FADE / 2.0, black_end)];
    let (precision, recall) = precision_recall(&found, &scene_truth);
    println!(
        "scene boundaries: {} found {found:?}, {} true {scene_truth:?}; precision {precision:.2}, recall {recall:.2}",
        found.len(),
        scene_truth.len()
    );
    assert_eq!((precision, recall), (1.0, 1.0), "{scenes:#?}");
    // Without the speech the cut in the last sentence is a change of picture like any other.
    let mut unheard = inputs.clone();
    unheard.speech = None;
    let no_speech = of_inputs(&unheard, &SceneOptions::default());
    assert!(
        no_speech
            .scenes
            .iter()
            .any(|x| (s(x.start_timestamp) - c5).abs() <= 0.1),
        "{no_speech:#?}"
    );

    // Breaks: at the change of place and in the black, nowhere else.
    let cfg = DefaultPolicyConfig {
        min_spacing_seconds: 3.0,
        ..DefaultPolicyConfig::default()
    };
    let out = score(&inputs, &Policy::Default(cfg.clone()), 5).unwrap();
    let breaks: Vec<f64> = out.breaks.iter().map(|b| b.timestamp).collect();
    for b in &out.breaks {
        println!(
            "break at {:.3} s: {}",
            b.timestamp,
            b.explanation.as_deref().unwrap()
        );
        for (a, e) in &u {
            assert!(
                !(*a < b.timestamp && b.timestamp < *e),
                "break at {} inside the sentence {a:.3}-{e:.3}",
                b.timestamp
            );
        }
        assert!(b.reasons.contains(&Reason::SceneChange));
    }
    assert_eq!(breaks.len(), 2, "{:#?}", out.slots);
    assert!((breaks[0] - t1).abs() <= 0.05, "{breaks:?} vs {t1}");
    let blacks: Vec<(f64, f64)> = a
        .segments
        .segments
        .iter()
        .filter(|g| g.cue_type() == Some(cuepoint_core::rekognition::CUE_BLACK_FRAMES))
        .map(|g| (s(g.start_timestamp_millis), s(g.end_timestamp_millis)))
        .collect();
    assert!(
        blacks
            .iter()
            .any(|(x, y)| *x <= breaks[1] && breaks[1] < *y)
            && breaks[1] >= fade_out + FADE / 2.0
            && breaks[1] <= black_end,
        "{breaks:?} vs black {black_start}-{black_end} (found {blacks:?})"
    );
    println!(
        "change of place at {t1:.3} s: break {:+.3} s; black {black_start:.3}-{black_end:.3} s \
         (found {blacks:?}): break at {:.3} s",
        breaks[0] - t1,
        breaks[1]
    );
    // The cuts inside sentences say why they are not breaks.
    for c in [c1, c2, c3, c4, c5] {
        let slot = out
            .slots
            .iter()
            .find(|x| (x.timestamp - c).abs() <= 0.05)
            .unwrap_or_else(|| panic!("no slot at the cut {c}"));
        assert!(slot.refused(), "{slot:?}");
    }

    // A schedule asking for a break 3 s after the change of place and 2 s before the black,
    // give or take 4 s: each served where the scene changes.
    let sched = DefaultPolicyConfig {
        schedule: Some(Schedule {
            targets: Targets::At(vec![t1 + 3.0, black_start - 2.0]),
            max_deviation_seconds: 4.0,
            break_seconds: Some(60.0),
            max_breaks_per_hour: None,
        }),
        ..cfg
    };
    let out = score(&inputs, &Policy::Default(sched), 5).unwrap();
    let report = out.schedule.unwrap();
    for t in &report.targets {
        let b = t.served_by.as_ref().unwrap_or_else(|| panic!("{t:?}"));
        println!(
            "target {:.3} s served at {:.3} s ({:+.3} s)",
            t.target, b.timestamp, b.offset
        );
    }
    assert_eq!(report.served(), 2);
}

/// A generated 30-minute programme, small and at 10 frames a second to stay cheap: scenes of
/// 50-110 s, each cutting between two looks (a test pattern and its hue), a tone with a
/// silence at every scene change and a quiet moment inside every scene, a second of black at
/// every third change. A schedule of one break every 8 minutes, 60 s either way: each target
/// is served at a true scene boundary inside its window.
#[tokio::test]
async fn thirty_minutes_one_break_every_8_minutes_at_scene_boundaries() {
    let (w, h, fps) = (160, 90, 10.0);
    let total = 1800.0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |lo: u64, hi: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + seed % (hi - lo + 1)
    };
    let sources = [
        "testsrc2",
        "smptebars",
        "rgbtestsrc",
        "testsrc",
        "pal75bars",
        "yuvtestsrc",
    ];
    // (source, hue, duration)
    let mut pieces: Vec<(&str, u64, f64)> = Vec::new();
    let mut boundaries: Vec<f64> = Vec::new();
    let mut silences: Vec<(f64, f64)> = Vec::new();
    let (mut t, mut k) = (0.0f64, 0usize);
    while t < total - 1.0 {
        let len = (next(50, 110) as f64).min(total - t);
        let len = if total - (t + len) < 50.0 {
            total - t
        } else {
            len
        };
        let scene_end = t + len;
        if k > 0 {
            boundaries.push(t);
            silences.push((t - 0.6, t + 0.6));
        }
        let mut s = t;
        if k > 0 && k % 3 == 0 {
            pieces.push(("black", 0, 1.0));
            s += 1.0;
        }
        let looks = [
            (sources[k % sources.len()], (k as u64 * 47) % 360),
            (
                sources[(k + 3) % sources.len()],
                (k as u64 * 47 + 180) % 360,
            ),
        ];
        let mut n = 0;
        while s < scene_end - 1e-9 {
            let d = (next(5, 9) as f64).min(scene_end - s);
            let (src, hue) = looks[n % 2];
            pieces.push((src, hue, d));
            s += d;
            n += 1;
        }
        let quiet = t + len / 2.0 + 0.5;
        silences.push((quiet, quiet + 1.2));
        t = scene_end;
        k += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thirty.mov");
    let mut args: Vec<String> = Vec::new();
    let mut graph = String::new();
    let mut concat = String::new();
    for (i, (src, hue, d)) in pieces.iter().enumerate() {
        let source = if *src == "black" {
            format!("color=c=black:size={w}x{h}:rate={fps}:d={d}")
        } else {
            format!("{src}=size={w}x{h}:rate={fps}:d={d}")
        };
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), source]);
        graph.push_str(&format!(
            "[{i}:v]format=yuv420p,hue=h={hue},settb=1/10[p{i}];"
        ));
        concat.push_str(&format!("[p{i}]"));
    }
    graph.push_str(&format!("{concat}concat=n={}:v=1[v]", pieces.len()));
    let mut gate = String::from("0.1*sin(2*PI*440*t)");
    for (a, b) in &silences {
        gate.push_str(&format!("*not(between(t,{a},{b}))"));
    }
    args.extend([
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("aevalsrc='{gate}':s=16000:d={total}"),
    ]);
    args.extend(
        [
            "-filter_complex",
            &graph,
            "-map",
            "[v]",
            "-map",
            &format!("{}:a", pieces.len()),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "pcm_s16le",
            path.to_str().unwrap(),
        ]
        .map(String::from),
    );
    ffmpeg(&args).await;

    let a = analyze(&path, &AnalyzeOptions::default(), None)
        .await
        .unwrap();
    let inputs = ScoringInputs {
        loudness: a
            .loudness
            .iter()
            .map(|l| LoudnessLog::parse(&l.to_csv()).unwrap())
            .collect(),
        segments: Some(a.segments.clone()),
        ..ScoringInputs::default()
    };
    let s = |ms: u64| ms as f64 / 1000.0;
    let scenes = of_inputs(&inputs, &SceneOptions::default());
    let found: Vec<f64> = scenes.scenes[1..]
        .iter()
        .map(|x| s(x.start_timestamp))
        .collect();
    let truth: Vec<(f64, f64)> = boundaries.iter().map(|b| (b - 0.1, b + 0.1)).collect();
    let (precision, recall) = precision_recall(&found, &truth);
    println!(
        "30 min: {} shots, {} scene boundaries true, {} found; precision {precision:.2}, recall {recall:.2}",
        a.segments.segments.iter().filter(|g| g.is_shot()).count(),
        boundaries.len(),
        found.len()
    );
    assert!(
        precision >= 0.9 && recall >= 0.9,
        "{found:?}\n{boundaries:?}"
    );

    let cfg = DefaultPolicyConfig {
        schedule: Some(Schedule::parse_spec("every=8m,deviation=60,duration=90").unwrap()),
        ..DefaultPolicyConfig::default()
    };
    let out = score(&inputs, &Policy::Default(cfg), 3).unwrap();
    let report = out.schedule.unwrap();
    assert_eq!(report.targets.len(), 3);
    for target in &report.targets {
        let b = target
            .served_by
            .as_ref()
            .unwrap_or_else(|| panic!("{target:?}"));
        let at = boundaries
            .iter()
            .find(|x| b.timestamp >= **x - 0.1 && b.timestamp <= **x + 1.1)
            .unwrap_or_else(|| panic!("break {} at no scene boundary {boundaries:?}", b.timestamp));
        assert!(b.offset.abs() <= 60.0);
        println!(
            "target {:>6.1} s: break at {:>8.3} s ({:+.3} s), scene boundary at {at:.1} s: {}",
            target.target,
            b.timestamp,
            b.offset,
            out.breaks[b.break_index].explanation.as_deref().unwrap()
        );
    }
}
