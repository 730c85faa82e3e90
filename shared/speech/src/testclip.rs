//! A test clip with synthetic speech and exact ground truth, for the speech tests, the pipeline
//! tests and the benchmark.
//!
//! `espeak-ng` (Debian package `espeak-ng`) speaks each sentence of a script into its own WAV.
//! The speech track is laid out as: lead-in silence, sentence 1, a gap, sentence 2, …, a tail of
//! silence. Because each sentence's samples are placed at a known offset, the true speech edges
//! are exact: the first and last sample of each sentence louder than −40 dBFS. FFmpeg then muxes
//! a `testsrc2` video with the speech as audio track 1 and any extra tracks (digital silence, a
//! sine tone) after it. Audio is 48 kHz 16-bit PCM, so the container must hold PCM (`.mov` or
//! `.mkv`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::decode::{read_wav_mono_i16, wav_bytes};
use crate::error::{stderr_tail, SpeechError};

/// Samples quieter than this (−40 dBFS) at the ends of a sentence are not speech.
const EDGE_THRESHOLD: f32 = 0.01;

/// An audio track after the speech track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtraTrack {
    /// Digital silence.
    Silent,
    /// A continuous sine tone at this frequency (Hz), −18 dBFS (amplitude 1/8).
    Tone(f64),
}

/// What to generate. Times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpeechClipSpec {
    /// The sentences, spoken in order.
    pub sentences: Vec<String>,
    /// Silence before the first sentence.
    pub lead_in: f64,
    /// Silence between sentences (beyond espeak's own short pauses at the ends of each).
    pub gap: f64,
    /// Silence after the last sentence.
    pub tail: f64,
    /// espeak-ng voice and speed (words per minute).
    pub voice: String,
    pub words_per_minute: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub extra_tracks: Vec<ExtraTrack>,
    /// Still pictures shown in turn for equal shares of the clip (scaled and padded to the
    /// frame), so the picture analyses have something to see; empty: a test pattern.
    pub pictures: Vec<PathBuf>,
}

impl Default for SpeechClipSpec {
    fn default() -> Self {
        Self {
            sentences: vec![
                "The quick brown fox jumps over the lazy dog.".into(),
                "Please call Stella and ask her to bring these things with her from the store."
                    .into(),
                "We will be right back after a short break.".into(),
            ],
            lead_in: 1.5,
            gap: 2.0,
            tail: 1.5,
            voice: "en-us".into(),
            words_per_minute: 160,
            width: 320,
            height: 240,
            fps: 25,
            extra_tracks: vec![ExtraTrack::Silent],
            pictures: Vec::new(),
        }
    }
}

/// One sentence where it truly is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrueUtterance {
    pub text: String,
    pub start_ms: f64,
    pub end_ms: f64,
}

/// The ground truth of a generated clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechClipTruth {
    pub path: PathBuf,
    pub duration_seconds: f64,
    /// The speech track (1-based).
    pub speech_track: u32,
    pub utterances: Vec<TrueUtterance>,
    /// Extra tracks by 1-based index.
    pub extra_tracks: Vec<(u32, ExtraTrack)>,
}

impl SpeechClipTruth {
    /// Everything said, in order (the reference for the word error rate).
    pub fn script(&self) -> String {
        let parts: Vec<&str> = self.utterances.iter().map(|u| u.text.as_str()).collect();
        parts.join(" ")
    }
}

/// Generate the clip at `out` (`.mov` or `.mkv`) and return its ground truth.
pub async fn generate_speech_clip(
    ffmpeg: &Path,
    out: &Path,
    spec: &SpeechClipSpec,
) -> Result<SpeechClipTruth, SpeechError> {
    let work = tempfile::tempdir().map_err(|e| SpeechError::io("creating", "a temp dir", e))?;
    let mut rate = 0u32;
    let mut track: Vec<f32> = Vec::new();
    let mut utterances = Vec::new();
    for (i, sentence) in spec.sentences.iter().enumerate() {
        let wav = work.path().join(format!("sentence-{i}.wav"));
        let (r, samples) = speak(spec, sentence, &wav).await?;
        if rate == 0 {
            rate = r;
            track.resize(seconds_to_samples(spec.lead_in, rate), 0.0);
        } else if i > 0 {
            let len = track.len() + seconds_to_samples(spec.gap, rate);
            track.resize(len, 0.0);
        }
        let loud = |s: &&f32| s.abs() > EDGE_THRESHOLD;
        let first = samples.iter().position(|s| loud(&s));
        let last = samples.iter().rposition(|s| loud(&s));
        if let (Some(first), Some(last)) = (first, last) {
            let at = track.len();
            utterances.push(TrueUtterance {
                text: sentence.clone(),
                start_ms: (at + first) as f64 * 1000.0 / f64::from(rate),
                end_ms: (at + last + 1) as f64 * 1000.0 / f64::from(rate),
            });
        }
        track.extend_from_slice(&samples);
    }
    if rate == 0 {
        rate = 22_050;
        track.resize(seconds_to_samples(spec.lead_in, rate), 0.0);
    }
    let len = track.len() + seconds_to_samples(spec.tail, rate);
    track.resize(len, 0.0);
    let duration = track.len() as f64 / f64::from(rate);
    let speech_wav = work.path().join("speech.wav");
    std::fs::write(&speech_wav, wav_bytes(&track, rate))
        .map_err(|e| SpeechError::io("writing", &speech_wav, e))?;

    let mut cmd = Command::new(ffmpeg);
    cmd.args([
        "-nostdin", "-nostats", "-v", "error", "-y", "-f", "lavfi", "-i",
    ])
    .arg(format!(
        "testsrc2=size={}x{}:rate={}:duration={duration:.6}",
        spec.width, spec.height, spec.fps
    ));
    // Inputs: the pattern (0), the pictures (1..=n), the speech, the extra tracks.
    let share = duration / spec.pictures.len().max(1) as f64;
    for picture in &spec.pictures {
        cmd.args(["-loop", "1", "-framerate", &spec.fps.to_string()])
            .args(["-t", &format!("{share:.6}"), "-i"])
            .arg(picture);
    }
    let video = if spec.pictures.is_empty() {
        "0:v".to_string()
    } else {
        let (w, h, fps) = (spec.width, spec.height, spec.fps);
        let mut graph = String::new();
        for i in 1..=spec.pictures.len() {
            graph.push_str(&format!(
                "[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps},format=yuv420p[p{i}];"
            ));
        }
        for i in 1..=spec.pictures.len() {
            graph.push_str(&format!("[p{i}]"));
        }
        graph.push_str(&format!("concat=n={}:v=1:a=0[v]", spec.pictures.len()));
        cmd.args(["-filter_complex", &graph]);
        "[v]".to_string()
    };
    let first_audio = 1 + spec.pictures.len();
    cmd.arg("-i").arg(&speech_wav);
    for extra in &spec.extra_tracks {
        let source = match extra {
            ExtraTrack::Silent => "anullsrc=r=48000:cl=mono".to_string(),
            ExtraTrack::Tone(hz) => format!("sine=frequency={hz}:sample_rate=48000"),
        };
        cmd.args(["-f", "lavfi", "-i", &source]);
    }
    cmd.args(["-map", &video, "-map", &format!("{first_audio}:a")]);
    for i in 0..spec.extra_tracks.len() {
        cmd.args(["-map", &format!("{}:a", first_audio + 1 + i)]);
    }
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ])
    .args(["-c:a", "pcm_s16le", "-ar", "48000", "-ac", "1"])
    .args(["-t", &format!("{duration:.6}")])
    .arg(out)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let output = cmd.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SpeechError::ToolMissing {
                tool: "ffmpeg",
                hint: "install FFmpeg (Debian: apt-get install ffmpeg) or set CUEPOINT_FFMPEG",
            }
        } else {
            SpeechError::io("starting", ffmpeg, e)
        }
    })?;
    if !output.status.success() {
        return Err(SpeechError::Decode {
            media: out.to_path_buf(),
            track: 1,
            message: format!(
                "muxing the test clip failed: {}",
                stderr_tail(&output.stderr, 5)
            ),
        });
    }
    Ok(SpeechClipTruth {
        path: out.to_path_buf(),
        duration_seconds: duration,
        speech_track: 1,
        utterances,
        extra_tracks: spec
            .extra_tracks
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, t)| (i as u32 + 2, t))
            .collect(),
    })
}

/// Whether `espeak-ng` can be run (tests skip or fail on this).
pub fn espeak_available() -> bool {
    std::process::Command::new("espeak-ng")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn speak(
    spec: &SpeechClipSpec,
    sentence: &str,
    wav: &Path,
) -> Result<(u32, Vec<f32>), SpeechError> {
    let output = Command::new("espeak-ng")
        .args([
            "-v",
            &spec.voice,
            "-s",
            &spec.words_per_minute.to_string(),
            "-w",
        ])
        .arg(wav)
        .arg(sentence)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SpeechError::ToolMissing {
                    tool: "espeak-ng",
                    hint: "install it (Debian: apt-get install espeak-ng)",
                }
            } else {
                SpeechError::io("starting", "espeak-ng", e)
            }
        })?;
    if !output.status.success() {
        return Err(SpeechError::EngineFailed {
            status: format!("espeak-ng {}", output.status),
            stderr_tail: stderr_tail(&output.stderr, 5),
        });
    }
    let bytes = std::fs::read(wav).map_err(|e| SpeechError::io("reading", wav, e))?;
    read_wav_mono_i16(&bytes).ok_or_else(|| SpeechError::BadOutput {
        path: wav.to_path_buf(),
        cause: "espeak-ng did not write a mono 16-bit WAV".into(),
    })
}

fn seconds_to_samples(seconds: f64, rate: u32) -> usize {
    (seconds.max(0.0) * f64::from(rate)).round() as usize
}
