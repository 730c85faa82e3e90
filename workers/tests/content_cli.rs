//! What a person sees after `cuepoint run` on a clip with people speaking and pictures with a
//! known content: the summary's content lines, and the result files behind them, with the
//! models installed and without them.

#[path = "../../shared/vision/tests/common/mod.rs"]
mod pictures;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cuepoint_speech::testclip::{
    espeak_available, generate_speech_clip, SpeechClipSpec, SpeechClipTruth,
};

const CUEPOINT: &str = env!("CARGO_BIN_EXE_cuepoint");

/// The clip: three spoken sentences over an astronaut's portrait, then a cat, then a cup of
/// coffee; `None` (skipped) when espeak-ng or the pictures are missing and models are not required.
fn speaking_clip(dir: &Path) -> Option<SpeechClipTruth> {
    if !espeak_available() {
        assert!(
            !pictures::required(),
            "espeak-ng is not installed (tests/install.sh installs it)"
        );
        eprintln!("skipping: espeak-ng is not installed");
        return None;
    }
    let pictures: Vec<PathBuf> = ["astronaut.png", "chelsea.png", "coffee.png"]
        .into_iter()
        .map(pictures::picture)
        .collect::<Option<_>>()?;
    let spec = SpeechClipSpec {
        width: 640,
        height: 360,
        pictures,
        ..SpeechClipSpec::default()
    };
    let out = dir.join("speaking.mov");
    let ffmpeg = PathBuf::from("ffmpeg");
    Some(
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(generate_speech_clip(&ffmpeg, &out, &spec))
            .expect("generate the speaking clip"),
    )
}

fn run(clip: &Path, data: &Path, models: Option<&Path>) -> Output {
    let mut cmd = Command::new(CUEPOINT);
    cmd.arg("run").arg(clip).arg("--data-dir").arg(data);
    if let Some(m) = models {
        cmd.env("CUEPOINT_MODELS_DIR", m);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cuepoint run: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The summary line of one content analysis (`  speech      7.5 s over 2 intervals`).
fn line<'a>(summary: &'a str, analysis: &str) -> &'a str {
    let prefix = format!("  {analysis} ");
    summary
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{analysis}` line in the summary:\n{summary}"))
}

fn result(data: &Path, file: &str) -> serde_json::Value {
    let found: Vec<PathBuf> = walk(data)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == file))
        .collect();
    assert_eq!(found.len(), 1, "{file} in {}: {found:?}", data.display());
    serde_json::from_slice(&std::fs::read(&found[0]).unwrap()).unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn run_on_a_speaking_clip_shows_speech_faces_labels_and_transcript() {
    let needed = [
        "silero-vad",
        "whisper-base",
        "retinaface",
        "mobilenet-v2",
        "opennsfw",
    ];
    if needed
        .iter()
        .any(|m| cuepoint_models::testing::installed(m).is_none())
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(truth) = speaking_clip(dir.path()) else {
        return;
    };
    let data = dir.path().join("data");
    let out = run(&truth.path, &data, None);
    let summary = String::from_utf8_lossy(&out.stdout);
    println!("{summary}");

    // The summary, as a person reads it.
    let speech = line(&summary, "speech");
    assert!(speech.contains("intervals"), "{speech}");
    let faces = line(&summary, "faces");
    assert!(
        !faces.contains("none") && !faces.contains("not installed"),
        "{faces}"
    );
    let labels = line(&summary, "labels");
    assert!(
        !labels.contains("none") && !labels.contains("not installed"),
        "{labels}"
    );
    let transcript = line(&summary, "transcript");
    assert!(transcript.contains("words"), "{transcript}");

    // The files behind it, read as raw JSON. Speech: one interval per sentence, each edge
    // within 0.3 s of where espeak-ng spoke.
    let speech = result(&data, "speech.json");
    let found: Vec<(f64, f64)> = speech["Speech"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Track"] == truth.speech_track)
        .map(|s| {
            (
                s["StartTimestamp"].as_f64().unwrap(),
                s["EndTimestamp"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found.len(),
        truth.utterances.len(),
        "{found:?} vs {:?}",
        truth.utterances
    );
    for (u, (start, end)) in truth.utterances.iter().zip(&found) {
        assert!(
            (start - u.start_ms).abs() <= 300.0,
            "start {start} vs {}",
            u.start_ms
        );
        assert!((end - u.end_ms).abs() <= 300.0, "end {end} vs {}", u.end_ms);
    }
    // The silent second track has no speech.
    assert!(speech["Speech"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["Track"] == truth.speech_track));

    // Transcript: the spoken words, in Transcribe's shape.
    let transcript = result(&data, "transcript.json");
    let text = transcript["results"]["transcripts"][0]["transcript"]
        .as_str()
        .unwrap()
        .to_lowercase();
    for word in ["quick", "brown", "fox", "stella", "break"] {
        assert!(text.contains(word), "{word} not in {text:?}");
    }
    assert!(transcript["results"]["items"][0]["start_time"].is_string());

    // Faces in the astronaut's third of the clip, none in the cat's or the coffee's.
    let third = truth.duration_seconds * 1000.0 / 3.0;
    let faces = result(&data, "faces.json");
    let at: Vec<f64> = faces["Faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Timestamp"].as_f64().unwrap())
        .collect();
    assert!(
        at.iter().any(|t| *t < third),
        "no face on the portrait: {at:?}"
    );
    assert!(
        at.iter().all(|t| *t < third + 1000.0),
        "faces off the portrait: {at:?}"
    );

    // Labels: a cat where the cat is.
    let labels = result(&data, "labels.json");
    let cat = labels["Labels"].as_array().unwrap().iter().any(|l| {
        let t = l["Timestamp"].as_f64().unwrap();
        let name = l["Label"]["Name"].as_str().unwrap_or("").to_lowercase();
        t > third && t < 2.0 * third && name.contains("cat")
    });
    assert!(cat, "no cat label on the cat: {labels}");

    // Moderation flags nothing on this safe content.
    let moderation = result(&data, "moderation.json");
    assert_eq!(moderation["ModerationLabels"], serde_json::json!([]));
}

#[test]
fn without_models_the_summary_says_not_installed_and_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    if !espeak_available() {
        assert!(!pictures::required(), "espeak-ng is not installed");
        return;
    }
    // A plain test pattern is enough here: nothing can be seen or heard without models.
    let out = dir.path().join("speaking.mov");
    let truth = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(generate_speech_clip(
            Path::new("ffmpeg"),
            &out,
            &SpeechClipSpec::default(),
        ))
        .unwrap();
    let empty = dir.path().join("no-models");
    std::fs::create_dir_all(&empty).unwrap();
    let data = dir.path().join("data");
    let out = run(&truth.path, &data, Some(&empty));
    let summary = String::from_utf8_lossy(&out.stdout);
    println!("{summary}");
    for analysis in ["speech", "transcript", "faces", "labels", "moderation"] {
        let l = line(&summary, analysis);
        assert!(
            l.contains("not installed") && l.contains("cuepoint models install"),
            "{l}"
        );
    }
    let speech = result(&data, "speech.json");
    assert_eq!(speech["Speech"], serde_json::json!([]));
    assert_eq!(speech["CuepointAnalysis"]["Status"], "NOT_INSTALLED");
    let transcript = result(&data, "transcript.json");
    assert_eq!(transcript["CuepointAnalysis"]["Status"], "NOT_INSTALLED");
}

#[test]
fn a_dialogue_track_without_speech_is_not_sent_to_whisper() {
    if ["silero-vad", "whisper-base"]
        .iter()
        .any(|m| cuepoint_models::testing::installed(m).is_none())
    {
        return;
    }
    // A tone is sound (the track is the main dialogue track) but nobody speaks.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("tone.mov");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x180:rate=25:duration=8")
        .args(["-f", "lavfi", "-i", "sine=f=440:r=48000:duration=8"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    let data = dir.path().join("data");
    let out = run(&clip, &data, None);
    let summary = String::from_utf8_lossy(&out.stdout);
    println!("{summary}");

    let speech = result(&data, "speech.json");
    assert_eq!(speech["Speech"], serde_json::json!([]), "{speech}");
    let transcript = result(&data, "transcript.json");
    assert_eq!(transcript["status"], "COMPLETED");
    assert_eq!(transcript["results"]["transcripts"][0]["transcript"], "");
    assert_eq!(transcript["results"]["items"], serde_json::json!([]));
    let status = &transcript["CuepointAnalysis"];
    assert_eq!(status["Status"], "COMPLETE", "{transcript}");
    assert!(
        status["Message"]
            .as_str()
            .is_some_and(|m| m.contains("no speech on track 1")),
        "{transcript}"
    );
}
