//! The results layout: where every stage writes, relative to an asset's results prefix (or a
//! local directory for `cuepoint slots` / `cuepoint analyze`).

use crate::rekognition::AnalysisKind;

pub const PROBE: &str = "probe.json";
pub const AUDIO: &str = "audio.json";
pub const SEGMENTS: &str = "segments.json";
pub const LABELS: &str = "labels.json";
pub const FACES: &str = "faces.json";
pub const CELEBRITIES: &str = "celebrities.json";
pub const MODERATION: &str = "moderation.json";
/// Speech activity per audio track (`crate::speech`).
pub const SPEECH: &str = "speech.json";
/// What was said, in Amazon Transcribe's output shape (`crate::transcript`).
pub const TRANSCRIPT: &str = "transcript.json";
pub const SLOTS: &str = "slots.json";
pub const VMAP: &str = "ad_breaks.vmap";
pub const ASSET: &str = "asset.json";
pub const HLS_DIR: &str = "hls";
pub const HLS_MASTER: &str = "hls/index.m3u8";
pub const PROXY: &str = "proxy/proxy.mp4";
pub const LOUDNESS_DIR: &str = "loudness";

/// `loudness/track-<n>.csv`, n from 1.
pub fn loudness_track(n: usize) -> String {
    format!("{LOUDNESS_DIR}/track-{n}.csv")
}

pub fn analysis_file(kind: AnalysisKind) -> &'static str {
    kind.results_file()
}
pub const TIMELINE: &str = "timeline.svg";
/// Shots grouped into scenes (`cuepoint_core::scenes::SceneResults`).
pub const SCENES: &str = "scenes.json";
