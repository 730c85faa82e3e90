//! Ears for the embedded default: who speaks when, and what is said.
//!
//! - [`decode_track_16k`]: one FFmpeg process decodes one audio track to 16 kHz mono f32.
//! - [`Vad`]: the silero voice-activity model in `tract-onnx` (pure Rust) → [`SpeechInterval`]s,
//!   written as `speech.json` ([`SpeechResults`]).
//! - [`transcribe`]: Whisper base through faster-whisper, an external engine run with the models
//!   venv's python (no pure-Rust runtime loads the CTranslate2 model), → [`Transcript`] in Amazon
//!   Transcribe's output shape, with the CPU it cost.
//! - [`testclip`]: a clip of synthetic speech (espeak-ng) with exact speech intervals.
//!
//! The result shapes and the pure steps (hysteresis, intervals from word times) live in
//! [`cuepoint_core::speech`] and [`cuepoint_core::transcript`] so the AWS side can use them
//! without the models; the file names are in [`cuepoint_core::results`].

pub mod decode;
pub mod error;
pub mod models;
pub mod testclip;
pub mod transcribe;
pub mod vad;
pub mod wer;

pub use cuepoint_core::analysis::{AnalysisState, CuepointAnalysis};
pub use cuepoint_core::speech::{
    intervals_from_probabilities, intervals_from_transcript, SpeechInterval, SpeechResults,
    VadParams, DEFAULT_WORD_GAP_MS,
};
pub use cuepoint_core::transcript::Transcript;
pub use decode::{decode_track_16k, write_wav_16k, SAMPLE_RATE};
pub use error::SpeechError;
pub use models::default_models_dir;
pub use transcribe::{transcribe, CpuUsage, TranscribeOptions, Transcription, TranscriptionEngine};
pub use vad::Vad;
pub use wer::word_error_rate;
