//! Real models on real audio: the silero VAD and Whisper on a generated espeak-ng clip with
//! exact speech intervals.
//!
//! Tests that need the models (or espeak-ng) skip when they are missing, unless
//! `CUEPOINT_REQUIRE_MODELS` is set (CI sets it after `cuepoint models install`): then they fail.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cuepoint_core::transcript::ITEM_PUNCTUATION;

use cuepoint_speech::models::{vad_model_path, whisper_model_dir, ENGINE_PYTHON, VAD_FILE};
use cuepoint_speech::testclip::{
    espeak_available, generate_speech_clip, ExtraTrack, SpeechClipSpec, SpeechClipTruth,
};
use cuepoint_speech::{
    decode_track_16k, default_models_dir, intervals_from_transcript, transcribe, word_error_rate,
    write_wav_16k, SpeechError, TranscribeOptions, TranscriptionEngine, Vad, VadParams,
    DEFAULT_WORD_GAP_MS,
};

const EDGE_TOLERANCE_MS: f64 = 300.0;

fn required() -> bool {
    std::env::var_os("CUEPOINT_REQUIRE_MODELS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skip (return) when something is missing, or fail when models are required.
macro_rules! need {
    ($what:expr) => {
        match $what {
            Ok(v) => v,
            Err(reason) => {
                if required() {
                    panic!("{reason} (CUEPOINT_REQUIRE_MODELS is set)");
                }
                eprintln!("skipping: {reason}");
                return;
            }
        }
    };
}

fn ffmpeg() -> PathBuf {
    std::env::var_os("CUEPOINT_FFMPEG")
        .map(PathBuf::from)
        .unwrap_or_else(|| "ffmpeg".into())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The clip (generated once per test run): speech on track 1, silence on 2, a tone on 3.
fn clip() -> Result<&'static SpeechClipTruth, String> {
    static CLIP: OnceLock<Result<SpeechClipTruth, String>> = OnceLock::new();
    CLIP.get_or_init(|| {
        if !espeak_available() {
            return Err("espeak-ng is not installed (Debian: apt-get install espeak-ng)".into());
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("speech-clip.mov");
        let spec = SpeechClipSpec {
            extra_tracks: vec![ExtraTrack::Silent, ExtraTrack::Tone(440.0)],
            ..SpeechClipSpec::default()
        };
        let truth = runtime()
            .block_on(generate_speech_clip(&ffmpeg(), &out, &spec))
            .map_err(|e| e.to_string())?;
        eprintln!(
            "clip {:.2} s: {:#?}",
            truth.duration_seconds, truth.utterances
        );
        Ok(truth)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The installed VAD; `Err` (skip) only when it is not installed: a broken one fails the test.
fn vad() -> Result<Vad, String> {
    match Vad::from_models_dir(&default_models_dir()) {
        Ok(vad) => Ok(vad),
        Err(e) if e.is_not_installed() => Err(e.to_string()),
        Err(e) => panic!("{e}"),
    }
}

fn decode(path: &Path, track: u32) -> Vec<f32> {
    runtime()
        .block_on(decode_track_16k(&ffmpeg(), path, track))
        .expect("decode")
}

#[test]
fn generated_clip_has_the_script_and_sane_truth() {
    let truth = need!(clip());
    assert_eq!(truth.utterances.len(), 3);
    assert!(
        (13.0..20.0).contains(&truth.duration_seconds),
        "{}",
        truth.duration_seconds
    );
    let mut last_end = 0.0;
    for u in &truth.utterances {
        assert!(
            u.start_ms > last_end + 1500.0,
            "sentences are separated by silence"
        );
        assert!(u.end_ms - u.start_ms > 1500.0, "a sentence lasts: {u:?}");
        last_end = u.end_ms;
    }
    let samples = decode(&truth.path, 1);
    let seconds = samples.len() as f64 / 16_000.0;
    assert!(
        (seconds - truth.duration_seconds).abs() < 0.1,
        "decoded {seconds} s"
    );
}

#[test]
fn vad_finds_each_sentence_within_300_ms_of_its_edges() {
    let truth = need!(clip());
    let vad = need!(vad());
    let samples = decode(&truth.path, 1);
    let started = std::time::Instant::now();
    let found = vad
        .detect(&samples, &VadParams::default(), 1)
        .expect("vad runs");
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "VAD: {:.1} s of audio in {:.3} s ({:.0}x real time); found {found:?}",
        samples.len() as f64 / 16_000.0,
        elapsed,
        samples.len() as f64 / 16_000.0 / elapsed
    );
    assert_eq!(
        found.len(),
        truth.utterances.len(),
        "one interval per sentence: {found:?}"
    );
    let mut worst: f64 = 0.0;
    for (u, f) in truth.utterances.iter().zip(&found) {
        let start_err = f.start_timestamp as f64 - u.start_ms;
        let end_err = f.end_timestamp as f64 - u.end_ms;
        eprintln!(
            "edge errors: start {start_err:+.0} ms, end {end_err:+.0} ms (confidence {:.1}) {:?}",
            f.confidence, u.text
        );
        assert!(
            start_err.abs() <= EDGE_TOLERANCE_MS,
            "start {start_err} ms off: {u:?} vs {f:?}"
        );
        assert!(
            end_err.abs() <= EDGE_TOLERANCE_MS,
            "end {end_err} ms off: {u:?} vs {f:?}"
        );
        assert!(f.confidence > 50.0 && f.confidence <= 100.0);
        assert_eq!(f.track, 1);
        worst = worst.max(start_err.abs()).max(end_err.abs());
    }
    eprintln!("worst speech edge error: {worst:.0} ms");
}

#[test]
fn vad_finds_no_speech_on_a_silent_track_or_a_tone() {
    let truth = need!(clip());
    let vad = need!(vad());
    for (track, kind) in &truth.extra_tracks {
        let samples = decode(&truth.path, *track);
        assert!(samples.len() > 16_000 * 10, "track {track} decoded");
        if matches!(kind, ExtraTrack::Tone(_)) {
            let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
            assert!(peak > 0.05, "the tone track carries sound ({peak})");
        }
        let found = vad
            .detect(&samples, &VadParams::default(), *track)
            .expect("vad runs");
        assert!(
            found.is_empty(),
            "no speech on {kind:?} track {track}: {found:?}"
        );
    }
}

#[test]
fn transcript_has_the_spoken_words() {
    let truth = need!(clip());
    let dir = default_models_dir();
    let engine = need!(TranscriptionEngine::from_models_dir(&dir).map_err(|e| e.to_string()));
    let model = need!(whisper_model_dir(&dir).map_err(|e| e.to_string()));
    let work = tempfile::tempdir().unwrap();
    let wav = work.path().join("track-1.wav");
    write_wav_16k(&wav, &decode(&truth.path, 1)).unwrap();
    let options = TranscribeOptions {
        job_name: "speech-clip".into(),
        language: Some("en".into()),
        ..TranscribeOptions::default()
    };
    let run = transcribe(&engine, &model, &wav, &options).expect("transcribes");
    let text = run.transcript.text();
    let wer = word_error_rate(&truth.script(), &text);
    eprintln!("transcript: {text:?}");
    eprintln!("reference:  {:?}", truth.script());
    eprintln!(
        "word error rate {:.1}%; engine CPU {:.2} s for {:.1} s of audio = {:.1} s CPU per audio minute \
         ({:.1} s per minute once loaded), wall {:.2} s",
        wer * 100.0,
        run.cpu.map_or(f64::NAN, |c| c.total_seconds()),
        run.audio_seconds,
        run.cpu_seconds_per_audio_minute().unwrap_or(f64::NAN),
        run.inference_cpu_seconds_per_audio_minute().unwrap_or(f64::NAN),
        run.wall_seconds,
    );
    assert_eq!(run.transcript.job_name.as_deref(), Some("speech-clip"));
    assert_eq!(run.transcript.status.as_deref(), Some("COMPLETED"));
    assert_eq!(run.transcript.extra["accountId"], "local");
    assert_eq!(run.language, "en");
    assert!((run.audio_seconds - truth.duration_seconds).abs() < 0.2);
    assert!(
        run.cpu.is_some_and(|c| c.total_seconds() > 0.1),
        "the engine's CPU is measured"
    );
    let lower = text.to_lowercase();
    for word in [
        "quick", "brown", "fox", "lazy", "dog", "call", "store", "back", "break",
    ] {
        assert!(lower.contains(word), "{word:?} missing from {text:?}");
    }
    assert!(wer <= 0.25, "word error rate {wer}");
    // Transcribe's item shape: words with times, punctuation without.
    for item in &run.transcript.results.items {
        let timed = item.start_time.is_some() && item.end_time.is_some();
        assert_eq!(timed, item.is_word(), "{item:?}");
        assert!(
            item.is_word() || item.item_type == ITEM_PUNCTUATION,
            "{item:?}"
        );
        assert_eq!(item.alternatives.len(), 1);
    }
    // Word times land on the sentences (Whisper's edges are looser than the VAD's).
    let from_words = intervals_from_transcript(&run.transcript, 1, DEFAULT_WORD_GAP_MS);
    eprintln!("speech from word times: {from_words:?}");
    for u in &truth.utterances {
        assert!(
            from_words
                .iter()
                .any(|s| (s.start_timestamp as f64) < u.end_ms
                    && (s.end_timestamp as f64) > u.start_ms),
            "words found in {u:?}"
        );
    }
}

#[test]
fn corrupt_vad_model_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Vad::from_models_dir(dir.path()).unwrap_err();
    assert!(
        matches!(missing, SpeechError::ModelMissing { .. }),
        "{missing}"
    );
    assert!(missing.is_not_installed());
    assert!(
        missing.to_string().contains("cuepoint models install"),
        "{missing}"
    );

    let path = dir.path().join(VAD_FILE);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"this is not an onnx model").unwrap();
    let err = Vad::from_models_dir(dir.path()).unwrap_err();
    let message = err.to_string();
    eprintln!("{message}");
    assert!(matches!(err, SpeechError::ModelCorrupt { .. }), "{message}");
    assert!(!err.is_not_installed());
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("cuepoint models install"), "{message}");

    // A real model, cut short.
    if let Ok(real) = vad_model_path(&default_models_dir()) {
        let bytes = std::fs::read(real).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = Vad::from_models_dir(dir.path()).unwrap_err();
        assert!(matches!(err, SpeechError::ModelCorrupt { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn corrupt_whisper_model_names_the_file_and_the_fix() {
    let models = default_models_dir();
    let engine = need!(TranscriptionEngine::from_models_dir(&models).map_err(|e| e.to_string()));
    let real = need!(whisper_model_dir(&models).map_err(|e| e.to_string()));
    let truth = need!(clip());
    let broken = tempfile::tempdir().unwrap();
    for file in ["config.json", "tokenizer.json", "vocabulary.txt"] {
        std::fs::copy(real.join(file), broken.path().join(file)).unwrap();
    }
    let bin = broken.path().join("model.bin");
    std::fs::write(&bin, vec![7u8; 4096]).unwrap();
    let err = transcribe(
        &engine,
        broken.path(),
        &truth.path,
        &TranscribeOptions::default(),
    )
    .unwrap_err();
    let message = err.to_string();
    eprintln!("{message}");
    assert!(matches!(err, SpeechError::ModelCorrupt { .. }), "{message}");
    assert!(message.contains(&bin.display().to_string()), "{message}");
    assert!(message.contains("cuepoint models install"), "{message}");

    std::fs::remove_file(&bin).unwrap();
    let err = transcribe(
        &engine,
        broken.path(),
        &truth.path,
        &TranscribeOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SpeechError::ModelMissing { .. }), "{err}");
}

#[test]
fn missing_engine_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let err = TranscriptionEngine::from_models_dir(dir.path()).unwrap_err();
    assert!(err.is_not_installed());
    let message = err.to_string();
    assert!(
        message.contains(ENGINE_PYTHON) && message.contains("cuepoint models install"),
        "{message}"
    );
    // An engine without its packages (a plain python) is reported the same way.
    let Ok(python) = which("python3") else { return };
    let engine = TranscriptionEngine::new(python);
    let model = dir.path().join("whisper-base");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["model.bin", "config.json", "tokenizer.json"] {
        std::fs::write(model.join(f), b"{}").unwrap();
    }
    let audio = dir.path().join("a.wav");
    write_wav_16k(&audio, &[0.0; 1600]).unwrap();
    match transcribe(&engine, &model, &audio, &TranscribeOptions::default()) {
        Err(e @ SpeechError::EngineMissing { .. }) => {
            assert!(e.to_string().contains("faster_whisper"), "{e}");
        }
        // The system python happens to have faster-whisper: the bogus model fails instead.
        Err(e) => assert!(matches!(e, SpeechError::ModelCorrupt { .. }), "{e}"),
        Ok(_) => panic!("a bogus model cannot transcribe"),
    }
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
