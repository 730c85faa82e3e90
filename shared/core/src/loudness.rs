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
