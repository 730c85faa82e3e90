//! Speech activity (`speech.json`): when someone is speaking, per audio track. cuepoint's own
//! shape (docs/content-analyses.md), in Rekognition's conventions: times in milliseconds from the
//! start of the video, confidences in percent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stretch of speech on one audio track.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpeechInterval {
    /// 1-based audio track index, as in `loudness/track-<n>.csv`.
    pub track: u32,
    pub start_timestamp: i64,
    pub end_timestamp: i64,
    #[serde(default)]
    pub confidence: f64,
}

impl SpeechInterval {
    pub fn start_seconds(&self) -> f64 {
        self.start_timestamp as f64 / 1000.0
    }
    pub fn end_seconds(&self) -> f64 {
        self.end_timestamp as f64 / 1000.0
    }
    /// True when `t` (seconds) lies strictly inside the interval: a cut exactly where speech
    /// starts or stops does not split a word.
    pub fn contains_strictly(&self, t: f64) -> bool {
        self.start_seconds() < t && t < self.end_seconds()
    }
}

/// The contents of `speech.json`. Fields cuepoint does not read (such as the `CuepointAnalysis`
/// status) are kept in `extra`, so a stored file round-trips unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpeechResults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    #[serde(default)]
    pub speech: Vec<SpeechInterval>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SpeechResults {
    /// The interval with speech at `t` (strictly inside), on any track.
    pub fn speaking_at(&self, t: f64) -> Option<&SpeechInterval> {
        self.speech.iter().find(|s| s.contains_strictly(t))
    }

    /// When anyone speaks on any track: the union of all intervals, seconds, in time order.
    pub fn merged_seconds(&self) -> Vec<(f64, f64)> {
        let mut spans: Vec<(f64, f64)> = self
            .speech
            .iter()
            .map(|s| (s.start_seconds(), s.end_seconds()))
            .filter(|(a, b)| a.is_finite() && b.is_finite() && b > a)
            .collect();
        spans.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut out: Vec<(f64, f64)> = Vec::with_capacity(spans.len());
        for (a, b) in spans {
            match out.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        out
    }

    /// Seconds during which someone speaks (overlaps across tracks counted once).
    pub fn total_seconds(&self) -> f64 {
        self.merged_seconds().iter().map(|(a, b)| b - a).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shape_and_keeps_unknown_fields() {
        let json = r#"{"JobStatus":"SUCCEEDED","Speech":[{"Track":1,"StartTimestamp":1230,"EndTimestamp":2480,"Confidence":93.1}],
            "CuepointAnalysis":{"Status":"COMPLETE","Model":"silero-vad"}}"#;
        let s: SpeechResults = serde_json::from_str(json).unwrap();
        assert_eq!(s.speech[0].track, 1);
        assert_eq!(s.speech[0].start_seconds(), 1.23);
        assert_eq!(s.speech[0].end_seconds(), 2.48);
        assert!(s.extra.contains_key("CuepointAnalysis"));
        let back: SpeechResults =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn speaking_at_excludes_the_edges() {
        let s = SpeechResults {
            speech: vec![SpeechInterval {
                track: 1,
                start_timestamp: 1000,
                end_timestamp: 2000,
                confidence: 90.0,
            }],
            ..Default::default()
        };
        assert!(s.speaking_at(1.5).is_some());
        assert!(s.speaking_at(1.0).is_none());
        assert!(s.speaking_at(2.0).is_none());
        assert!(s.speaking_at(0.5).is_none());
    }

    #[test]
    fn merged_counts_overlaps_across_tracks_once() {
        let iv = |track, a, b| SpeechInterval {
            track,
            start_timestamp: a,
            end_timestamp: b,
            confidence: 80.0,
        };
        let s = SpeechResults {
            speech: vec![
                iv(1, 0, 2000),
                iv(1, 5000, 6000),
                iv(2, 1000, 3000),
                iv(2, 7000, 7000),
            ],
            ..Default::default()
        };
        assert_eq!(s.merged_seconds(), vec![(0.0, 3.0), (5.0, 6.0)]);
        assert!((s.total_seconds() - 4.0).abs() < 1e-12);
    }
}
