//! `cuepoint analyze FILE --out DIR`: the local media engine alone (no transcode, no queues):
//! one decode pass writes probe.json, loudness/track-<n>.csv, audio.json and segments.json, so
//! that `cuepoint slots DIR` works on the result.

use std::path::PathBuf;

use anyhow::Context as _;
use cuepoint_core::loudness::{AudioOptions, AudioReport};
use cuepoint_core::results;

#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeArgs {
    /// The media file.
    pub file: PathBuf,
    /// Results directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Silence threshold (LUFS) for the audio verdicts.
    #[arg(long, default_value_t = -50.0, allow_hyphen_values = true)]
    pub silence_threshold: f64,
    /// Shortest reported silence interval, seconds.
    #[arg(long, default_value_t = cuepoint_core::loudness::DEFAULT_MIN_SILENCE_SECONDS)]
    pub min_silence: f64,
}

pub async fn run(args: &AnalyzeArgs) -> anyhow::Result<()> {
    // A bar on a terminal, nothing in logs (indicatif hides it when stderr is not a terminal).
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("analysing [{bar:30}] {percent:>3}% {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let progress = {
        let bar = bar.clone();
        move |f: f64| bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64)
    };
    let opts = cuepoint_engine::analyze::AnalyzeOptions::default();
    let analysis = cuepoint_engine::analyze::analyze(&args.file, &opts, Some(&progress))
        .await
        .with_context(|| format!("analysing {}", args.file.display()));
    bar.finish();
    let analysis = analysis?;
    let out = &args.out;
    std::fs::create_dir_all(out.join(results::LOUDNESS_DIR))
        .with_context(|| format!("creating {}", out.display()))?;
    let write = |rel: &str, bytes: Vec<u8>| -> anyhow::Result<()> {
        let p = out.join(rel);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write(results::PROBE, serde_json::to_vec_pretty(&analysis.probe)?)?;
    for (i, log) in analysis.loudness.iter().enumerate() {
        write(&results::loudness_track(i + 1), log.to_csv().into_bytes())?;
    }
    let channels: Vec<u32> = analysis
        .probe
        .audio_tracks
        .iter()
        .map(|t| t.channels)
        .collect();
    let audio = AudioReport::from_logs(
        &analysis.loudness,
        &channels,
        &AudioOptions {
            silence_threshold: args.silence_threshold,
            min_silence_seconds: args.min_silence,
        },
    );
    write(results::AUDIO, serde_json::to_vec_pretty(&audio)?)?;
    write(
        results::SEGMENTS,
        serde_json::to_vec_pretty(&analysis.segments)?,
    )?;
    let black = analysis
        .segments
        .segments
        .iter()
        .filter(|s| s.cue_type() == Some(cuepoint_core::rekognition::CUE_BLACK_FRAMES))
        .count();
    let shots = analysis
        .segments
        .segments
        .iter()
        .filter(|s| s.is_shot())
        .count();
    crate::outln!(
        "{}: {:.1} s, {} audio track(s) (silent: {:?}, layout {:?}), {} black segment(s), {} shot(s) -> {}",
        args.file.display(),
        analysis.probe.duration_seconds,
        audio.audiocount,
        audio.loudnessmap.iter().enumerate().filter(|(_, v)| **v == 0).map(|(i, _)| i + 1).collect::<Vec<_>>(),
        audio.layout,
        black,
        shots,
        out.display()
    );
    Ok(())
}
