//! The local media engine: FFmpeg and ffprobe doing what MediaConvert and Rekognition segment
//! detection do, for the embedded pipeline, the CLI, the end-to-end tests and the benchmark.
//!
//! - [`probe`] / [`FfprobeProber`]: ffprobe → `ProbeInfo` (the `Prober` port).
//! - [`analyze`]: one decode → per-track loudness logs + a GetSegmentDetection response.
//! - [`transcode`]: one encode → HLS (1 s segments, master playlist), proxy MP4, loudness CSVs.
//! - [`generate_sample`]: synthetic media with known cuts, black gaps and silent tracks.
//! - [`LocalMediaConvert`] / [`LocalRekognition`]: the `Transcoder` / `VideoAnalyzer` ports on
//!   top of these, announcing completion as AWS does.
//!
//! FFmpeg 5.1 (`ffmpeg`/`ffprobe` on `PATH`, or `CUEPOINT_FFMPEG`/`CUEPOINT_FFPROBE`) is
//! required; its absence is `EngineError::ToolMissing`.

pub mod analyze;
pub mod error;
pub mod local;
mod metadata;
pub mod package;
pub mod placeholder;
pub mod probe;
pub mod sample;
pub mod segments;
pub mod timecode;
pub mod tools;
pub mod transcode;

pub use analyze::{analyze, Analysis, AnalyzeOptions, BlackOptions, CreditsOptions, ShotOptions};
/// The vision models behind the local label, face and moderation jobs.
pub use cuepoint_vision as vision;
pub use error::EngineError;
pub use local::{LocalEngineConfig, LocalMediaConvert, LocalRekognition};
pub use probe::{probe, probe_media, FfprobeProber, MediaInfo, Rational};
pub use sample::{generate_sample, GroundTruth, SampleAudioCodec, SampleContainer, SampleSpec};
pub use timecode::FrameClock;
pub use tools::{ProgressFn, Tools};
pub use transcode::{
    transcode, AudioOutputSpec, HlsSpec, LoudnessLogSpec, ProxySpec, TranscodeOutput, TranscodeSpec,
};
