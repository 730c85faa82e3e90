//! Candidate extraction shared by both policies: where the picture offers a break.
//! (Audio candidates come from `crate::loudness::silent_runs`, also shared.)

use serde::{Deserialize, Serialize};

use super::Reason;
use crate::rekognition::{SegmentDetection, CUE_BLACK_FRAMES, CUE_END_CREDITS};

/// One candidate break point before scoring.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub timestamp: f64,
    pub reason: Reason,
}

/// A run of black frames, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlackSpan {
    pub start: f64,
    pub end: f64,
}

impl BlackSpan {
    pub fn middle(&self) -> f64 {
        self.start + (self.end - self.start) / 2.0
    }
    pub fn contains(&self, t: f64) -> bool {
        self.start <= t && t <= self.end
    }
}

/// What segment detection offers, each list in the order of `segments.json`.
/// Times are `millis as f64 / 1000.0`, as the sample computes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VisualCues {
    /// `TECHNICAL_CUE` segments of type `BlackFrames`.
    pub black_frames: Vec<BlackSpan>,
    /// Start of every `TECHNICAL_CUE` segment of type `EndCredits`.
    pub end_credits: Vec<f64>,
    /// Start of every `SHOT` segment.
    pub shots: Vec<f64>,
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Black frames, end credits and shot starts; other cue types (ColorBars, Slate, StudioLogo,
/// OpeningCredits, Content) are ignored, and there is no confidence filter.
pub fn visual_cues(segments: Option<&SegmentDetection>) -> VisualCues {
    let mut cues = VisualCues::default();
    for seg in segments.map(|s| s.segments.as_slice()).unwrap_or_default() {
        if seg.is_shot() {
            cues.shots.push(seconds(seg.start_timestamp_millis));
            continue;
        }
        match seg.cue_type() {
            Some(CUE_BLACK_FRAMES) => {
                let start = seconds(seg.start_timestamp_millis);
                // A missing or inverted end (EndTimestampMillis defaults to 0) is a point.
                let end = seconds(seg.end_timestamp_millis).max(start);
                cues.black_frames.push(BlackSpan { start, end });
            }
            Some(CUE_END_CREDITS) => cues.end_credits.push(seconds(seg.start_timestamp_millis)),
            _ => {}
        }
    }
    cues
}
