//! MediaConvert loudness logs and the per-track audio verdicts derived from them.
//!
//! OWNER: scoring helper — parser, derivations and tests go here. The types below are used by
//! the asset record and must keep their names and serde shape.

use serde::{Deserialize, Serialize};

/// Layout verdict from the number of tracks that carry audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AudioLayout {
    /// The source has no audio tracks at all.
    #[serde(rename = "none")]
    NoAudio,
    /// Every track is silent.
    #[serde(rename = "silent")]
    Silent,
    #[serde(rename = "mono")]
    Mono,
    #[serde(rename = "2.0")]
    Stereo,
    #[serde(rename = "5.1")]
    Surround51,
    #[serde(rename = "other")]
    Other,
}

/// A run of silence in one track, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceInterval {
    pub start: f64,
    pub end: f64,
    pub duration: f64,
}

/// The seed's per-asset audio attributes (what `audio.json` holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioReport {
    pub audiocount: usize,
    /// Input Max Loudness per track (track 1 first).
    pub maxloudness: Vec<f64>,
    /// 1 = track has audio, 0 = silent.
    pub loudnessmap: Vec<u8>,
    pub layout: AudioLayout,
    /// Silence intervals per track (track 1 first).
    #[serde(default)]
    pub silences: Vec<Vec<SilenceInterval>>,
}

/// One measurement row of a MediaConvert loudness log (one per logging interval).
/// The CSV column order is fixed by `LoudnessLog::to_csv`/`parse`: column 0 is `seconds`,
/// column 3 is `short_term`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessRow {
    pub seconds: f64,
    pub momentary: f64,
    pub integrated: f64,
    pub short_term: f64,
    pub true_peak: f64,
}

/// The log's last (summary) row: column 6 is the Input Max Loudness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessSummary {
    pub input_integrated: f64,
    pub input_max_loudness: f64,
    pub input_true_peak: f64,
}

/// A whole loudness log for one audio track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessLog {
    pub rows: Vec<LoudnessRow>,
    pub summary: LoudnessSummary,
}
