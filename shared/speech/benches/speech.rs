//! What speech costs: CPU of decoding one track, of voice activity and of transcription, per
//! minute of audio, on a generated espeak-ng clip (default 3 minutes; set
//! `CUEPOINT_BENCH_SPEECH_MINUTES`). Needs the models (`cuepoint models install`) and espeak-ng.
//!
//! `cargo bench -p cuepoint-speech` (or `--profile dev`: the model runtime is optimised there
//! too). Set `CUEPOINT_BENCH_SKIP_TRANSCRIBE=1` to measure the VAD alone, and
//! `CUEPOINT_BENCH_KEEP_WAV=<path>` to keep the decoded track.

use std::time::Instant;

use cuepoint_speech::testclip::{generate_speech_clip, SpeechClipSpec};
use cuepoint_speech::{
    decode_track_16k, default_models_dir, transcribe, word_error_rate, write_wav_16k,
    TranscribeOptions, TranscriptionEngine, Vad, VadParams,
};

fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

fn main() {
    let minutes: f64 = std::env::var("CUEPOINT_BENCH_SPEECH_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let models = default_models_dir();
    let ffmpeg: std::path::PathBuf =
        std::env::var_os("CUEPOINT_FFMPEG").map_or_else(|| "ffmpeg".into(), Into::into);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let work = tempfile::tempdir().unwrap();

    // About 14 s per round of three sentences.
    let base = SpeechClipSpec::default();
    let rounds = ((minutes * 60.0) / 14.0).ceil().max(1.0) as usize;
    let spec = SpeechClipSpec {
        sentences: base
            .sentences
            .iter()
            .cycle()
            .take(rounds * base.sentences.len())
            .cloned()
            .collect(),
        ..base
    };
    let clip = work.path().join("speech.mov");
    let truth = rt
        .block_on(generate_speech_clip(&ffmpeg, &clip, &spec))
        .expect("clip");
    let audio_minutes = truth.duration_seconds / 60.0;
    println!(
        "clip: {:.2} min of audio, {} sentences",
        audio_minutes,
        truth.utterances.len()
    );

    let before = cpu_seconds(libc::RUSAGE_CHILDREN);
    let samples = rt
        .block_on(decode_track_16k(&ffmpeg, &clip, 1))
        .expect("decode");
    let decode_cpu = cpu_seconds(libc::RUSAGE_CHILDREN) - before;
    println!(
        "decode track to 16 kHz: {:.2} s CPU per audio minute",
        decode_cpu / audio_minutes
    );

    let vad = Vad::from_models_dir(&models).expect("silero-vad installed");
    let before = cpu_seconds(libc::RUSAGE_SELF);
    let wall = Instant::now();
    let found = vad.detect(&samples, &VadParams::default(), 1).expect("vad");
    let vad_cpu = cpu_seconds(libc::RUSAGE_SELF) - before;
    println!(
        "voice activity: {:.2} s CPU per audio minute ({:.0}x real time); {} intervals for {} sentences",
        vad_cpu / audio_minutes,
        truth.duration_seconds / wall.elapsed().as_secs_f64(),
        found.len(),
        truth.utterances.len()
    );

    let wav = work.path().join("track-1.wav");
    write_wav_16k(&wav, &samples).unwrap();
    if let Some(keep) = std::env::var_os("CUEPOINT_BENCH_KEEP_WAV") {
        std::fs::copy(&wav, keep).unwrap();
    }
    if std::env::var_os("CUEPOINT_BENCH_SKIP_TRANSCRIBE").is_some() {
        return;
    }
    let engine = TranscriptionEngine::from_models_dir(&models).expect("engine installed");
    let model = cuepoint_speech::models::whisper_model_dir(&models).expect("whisper installed");
    for (name, beam_size) in [("greedy", 1), ("beam 5 (default)", 5)] {
        let options = TranscribeOptions {
            beam_size,
            ..TranscribeOptions::default()
        };
        let run = transcribe(&engine, &model, &wav, &options).expect("transcribe");
        println!(
            "transcription, {name}: {:.1} s CPU per audio minute ({:.1} once loaded), wall {:.1} s, WER {:.1}%",
            run.cpu_seconds_per_audio_minute().unwrap_or(f64::NAN),
            run.inference_cpu_seconds_per_audio_minute().unwrap_or(f64::NAN),
            run.wall_seconds,
            word_error_rate(&truth.script(), &run.transcript.text()) * 100.0
        );
    }
}
