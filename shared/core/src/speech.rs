//! Speech activity (`speech.json`): when someone is speaking, per audio track. cuepoint's own
//! shape (docs/content-analyses.md), in Rekognition's conventions: times in milliseconds from the
//! start of the video, confidences in percent.
//!
//! Also the pure steps that produce it: voice-activity probabilities → intervals (hysteresis,
//! the embedded default) and transcript word times → intervals (how the AWS side writes
//! `speech.json` from Amazon Transcribe's output).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::analysis::CuepointAnalysis;
use crate::transcript::Transcript;

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
    /// A finished analysis (`SUCCEEDED`); intervals sorted by track, then start.
    pub fn new(mut speech: Vec<SpeechInterval>) -> Self {
        speech.sort_by_key(|s| (s.track, s.start_timestamp, s.end_timestamp));
        Self {
            job_status: Some("SUCCEEDED".into()),
            speech,
            extra: Map::new(),
        }
    }

    /// An analysis that could not run: no intervals, and the status says why.
    pub fn not_run(status: &CuepointAnalysis) -> Self {
        let mut out = Self::new(Vec::new());
        out.set_analysis(status);
        out
    }

    /// Record how the analysis went (`CuepointAnalysis`).
    pub fn set_analysis(&mut self, status: &CuepointAnalysis) {
        let value = serde_json::to_value(status).expect("a status serialises");
        self.extra.insert("CuepointAnalysis".into(), value);
    }

    /// How the analysis went, when the file says.
    pub fn analysis(&self) -> Option<CuepointAnalysis> {
        serde_json::from_value(self.extra.get("CuepointAnalysis")?.clone()).ok()
    }

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

/// Hysteresis that turns per-chunk speech probabilities into intervals (the usual silero
/// post-processing). Durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VadParams {
    /// A chunk at or above this probability starts (or continues) speech.
    pub threshold: f32,
    /// Speech ends only after the probability falls below this.
    pub neg_threshold: f32,
    /// Shorter bursts are dropped (clicks, breaths).
    pub min_speech_ms: u32,
    /// Pauses shorter than this stay inside one interval (the pauses within a sentence).
    pub min_silence_ms: u32,
    /// Added before and after each interval (never overlapping the neighbour).
    pub speech_pad_ms: u32,
}

impl Default for VadParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 250,
            min_silence_ms: 300,
            speech_pad_ms: 30,
        }
    }
}

/// Turn the speech probability of consecutive chunks of `chunk_samples` samples into intervals.
/// `total_samples` is the length of the audio (the last chunk may be partial).
pub fn intervals_from_probabilities(
    probabilities: &[f32],
    chunk_samples: usize,
    sample_rate: u32,
    total_samples: usize,
    params: &VadParams,
    track: u32,
) -> Vec<SpeechInterval> {
    let rate = u64::from(sample_rate.max(1));
    let ms_to_samples = |ms: u32| (u64::from(ms) * rate / 1000) as usize;
    let min_speech = ms_to_samples(params.min_speech_ms);
    let min_silence = ms_to_samples(params.min_silence_ms);
    let pad = ms_to_samples(params.speech_pad_ms);
    let neg = params.neg_threshold.min(params.threshold);

    // (start sample, end sample, first chunk, end chunk)
    let mut raw: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize)> = None; // (start sample, first chunk)
    let mut pause_from: Option<(usize, usize)> = None; // (sample, chunk) where a pause began
    for (i, &p) in probabilities.iter().enumerate() {
        let at = i * chunk_samples;
        if p >= params.threshold {
            pause_from = None;
            if current.is_none() {
                current = Some((at, i));
            }
            continue;
        }
        let Some((start, first)) = current else {
            continue;
        };
        if p < neg {
            let (pause_at, pause_chunk) = *pause_from.get_or_insert((at, i));
            if at + chunk_samples - pause_at >= min_silence {
                if pause_at - start >= min_speech {
                    raw.push((start, pause_at, first, pause_chunk));
                }
                current = None;
                pause_from = None;
            }
        }
    }
    if let Some((start, first)) = current {
        let end = pause_from
            .map_or(total_samples, |(s, _)| s)
            .min(total_samples);
        let end_chunk = pause_from.map_or(probabilities.len(), |(_, c)| c);
        if end.saturating_sub(start) >= min_speech {
            raw.push((start, end, first, end_chunk));
        }
    }

    // Pad, splitting the gap between neighbours that are closer than two pads.
    let mut padded: Vec<(usize, usize)> = Vec::with_capacity(raw.len());
    for (k, &(start, end, _, _)) in raw.iter().enumerate() {
        let lo = match k.checked_sub(1).map(|j| raw[j].1) {
            Some(prev_end) if start - prev_end < 2 * pad => start - (start - prev_end) / 2,
            _ => start.saturating_sub(pad),
        };
        let hi = match raw.get(k + 1).map(|n| n.0) {
            Some(next_start) if next_start - end < 2 * pad => end + (next_start - end) / 2,
            _ => (end + pad).min(total_samples.max(end)),
        };
        padded.push((lo, hi));
    }

    raw.iter()
        .zip(padded)
        .map(|(&(_, _, first, end_chunk), (lo, hi))| {
            let window = &probabilities[first..end_chunk.max(first + 1).min(probabilities.len())];
            let mean =
                window.iter().map(|&p| f64::from(p)).sum::<f64>() / window.len().max(1) as f64;
            SpeechInterval {
                track,
                start_timestamp: (lo as u64 * 1000 / rate) as i64,
                end_timestamp: (hi as u64 * 1000 / rate) as i64,
                confidence: round1(mean * 100.0),
            }
        })
        .collect()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Words closer than this are one stretch of speech when deriving intervals from a transcript.
pub const DEFAULT_WORD_GAP_MS: u64 = 300;

/// Speech intervals from a transcript's word times: consecutive words whose gap is below
/// `max_gap_ms` merge into one interval; its confidence is the mean word confidence.
pub fn intervals_from_transcript(
    transcript: &Transcript,
    track: u32,
    max_gap_ms: u64,
) -> Vec<SpeechInterval> {
    let mut out: Vec<(i64, i64, f64, usize)> = Vec::new();
    let max_gap_ms = i64::try_from(max_gap_ms).unwrap_or(i64::MAX);
    for word in transcript.words() {
        let (Some(start), Some(end)) = (word.start, word.end) else {
            continue;
        };
        let (start, end) = (seconds_to_ms(start), seconds_to_ms(end));
        let confidence = word.confidence.unwrap_or(0.0).clamp(0.0, 1.0);
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(max_gap_ms) => {
                last.1 = last.1.max(end);
                last.2 += confidence;
                last.3 += 1;
            }
            _ => out.push((start, end.max(start), confidence, 1)),
        }
    }
    out.into_iter()
        .map(|(start_timestamp, end_timestamp, sum, n)| SpeechInterval {
            track,
            start_timestamp,
            end_timestamp,
            confidence: round1(sum / n as f64 * 100.0),
        })
        .collect()
}

fn seconds_to_ms(s: f64) -> i64 {
    (s.max(0.0) * 1000.0).round() as i64
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

    const RATE: u32 = 16_000;
    const CHUNK: usize = 512; // 32 ms

    fn probs(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern
            .iter()
            .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
            .collect()
    }

    #[test]
    fn one_burst_becomes_one_padded_interval() {
        // 10 chunks of silence, 50 of speech (1.6 s), 30 of silence.
        let p = probs(&[(0.01, 10), (0.9, 50), (0.02, 30)]);
        let total = p.len() * CHUNK;
        let got = intervals_from_probabilities(&p, CHUNK, RATE, total, &VadParams::default(), 1);
        assert_eq!(got.len(), 1);
        // speech from chunk 10 (320 ms) to chunk 60 (1920 ms), padded by 30 ms
        assert_eq!(got[0].start_timestamp, 290);
        assert_eq!(got[0].end_timestamp, 1950);
        assert_eq!(got[0].track, 1);
        assert!((got[0].confidence - 90.0).abs() < 0.01);
    }

    #[test]
    fn short_pauses_stay_inside_long_pauses_split() {
        let params = VadParams::default(); // min silence 300 ms ≈ 9.4 chunks
        let p = probs(&[
            (0.9, 20),
            (0.1, 5),
            (0.9, 20),
            (0.1, 20),
            (0.9, 20),
            (0.1, 15),
        ]);
        let total = p.len() * CHUNK;
        let got = intervals_from_probabilities(&p, CHUNK, RATE, total, &params, 2);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].start_timestamp, 0);
        assert_eq!(got[0].end_timestamp, 45 * 32 + 30);
        assert_eq!(got[1].start_timestamp, 65 * 32 - 30);
    }

    #[test]
    fn hysteresis_keeps_speech_between_the_thresholds() {
        // 0.4 is below the threshold but above the negative threshold: still speech.
        let p = probs(&[(0.9, 10), (0.4, 30), (0.9, 10), (0.0, 20)]);
        let total = p.len() * CHUNK;
        let got = intervals_from_probabilities(&p, CHUNK, RATE, total, &VadParams::default(), 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].end_timestamp, 50 * 32 + 30);
    }

    #[test]
    fn clicks_are_dropped_and_silence_gives_nothing() {
        let p = probs(&[(0.0, 20), (0.95, 3), (0.0, 40)]);
        let total = p.len() * CHUNK;
        assert!(
            intervals_from_probabilities(&p, CHUNK, RATE, total, &VadParams::default(), 1)
                .is_empty()
        );
        let silent = vec![0.01; 200];
        assert!(intervals_from_probabilities(
            &silent,
            CHUNK,
            RATE,
            200 * CHUNK,
            &VadParams::default(),
            1
        )
        .is_empty());
    }

    #[test]
    fn speech_running_to_the_end_is_closed_at_the_end() {
        let p = probs(&[(0.0, 10), (0.8, 30)]);
        let total = p.len() * CHUNK - 100; // partial last chunk
        let got = intervals_from_probabilities(&p, CHUNK, RATE, total, &VadParams::default(), 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].end_timestamp, (total * 1000 / 16_000) as i64);
    }

    #[test]
    fn close_neighbours_share_the_gap_instead_of_overlapping() {
        let params = VadParams {
            min_silence_ms: 30,
            speech_pad_ms: 100,
            ..VadParams::default()
        };
        let p = probs(&[(0.9, 20), (0.0, 2), (0.9, 20), (0.0, 10)]);
        let total = p.len() * CHUNK;
        let got = intervals_from_probabilities(&p, CHUNK, RATE, total, &params, 1);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].end_timestamp <= got[1].start_timestamp);
        assert_eq!(got[0].end_timestamp, 21 * 32);
    }

    fn sample_transcript() -> Transcript {
        serde_json::from_value(serde_json::json!({
            "jobName": "asset-1",
            "accountId": "000000000000",
            "status": "COMPLETED",
            "results": {
                "transcripts": [{"transcript": "Hello there. We are back."}],
                "items": [
                    {"start_time": "1.0", "end_time": "1.4", "alternatives": [{"confidence": "0.9", "content": "Hello"}], "type": "pronunciation"},
                    {"start_time": "1.5", "end_time": "1.9", "alternatives": [{"confidence": "0.7", "content": "there"}], "type": "pronunciation"},
                    {"alternatives": [{"confidence": "0.0", "content": "."}], "type": "punctuation"},
                    {"start_time": "3.0", "end_time": "3.2", "alternatives": [{"confidence": "1.0", "content": "We"}], "type": "pronunciation"},
                    {"start_time": "3.3", "end_time": "3.5", "alternatives": [{"confidence": "1.0", "content": "are"}], "type": "pronunciation"},
                    {"start_time": "3.6", "end_time": "4.05", "alternatives": [{"confidence": "0.8", "content": "back"}], "type": "pronunciation"},
                    {"alternatives": [{"confidence": "0.0", "content": "."}], "type": "punctuation"}
                ],
                "audio_segments": []
            }
        }))
        .unwrap()
    }

    #[test]
    fn transcript_words_become_intervals() {
        let t = sample_transcript();
        assert_eq!(t.text(), "Hello there. We are back.");
        assert_eq!(t.words().count(), 5);
        let got = intervals_from_transcript(&t, 1, DEFAULT_WORD_GAP_MS);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].start_timestamp, got[0].end_timestamp), (1000, 1900));
        assert!((got[0].confidence - 80.0).abs() < 0.01);
        assert_eq!((got[1].start_timestamp, got[1].end_timestamp), (3000, 4050));
        // One big gap allowed: one interval.
        assert_eq!(intervals_from_transcript(&t, 1, 2000).len(), 1);
    }

    #[test]
    fn new_results_are_sorted_and_carry_their_status() {
        let iv = |track, a, b| SpeechInterval {
            track,
            start_timestamp: a,
            end_timestamp: b,
            confidence: 70.0,
        };
        let doc = SpeechResults::new(vec![iv(2, 10, 20), iv(1, 1230, 2480), iv(1, 100, 200)]);
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(v["JobStatus"], "SUCCEEDED");
        assert_eq!(
            v["Speech"][1],
            serde_json::json!({"Track": 1, "StartTimestamp": 1230, "EndTimestamp": 2480, "Confidence": 70.0})
        );
        assert_eq!(v["Speech"][2]["Track"], 2);
        assert!(v.get("CuepointAnalysis").is_none());
        assert_eq!(doc.analysis(), None);

        let failed = SpeechResults::not_run(&CuepointAnalysis::not_installed(
            "silero-vad",
            "run `cuepoint models install`",
        ));
        let v = serde_json::to_value(&failed).unwrap();
        assert_eq!(v["CuepointAnalysis"]["Status"], "NOT_INSTALLED");
        assert_eq!(v["Speech"], serde_json::json!([]));
        let back: SpeechResults = serde_json::from_value(v).unwrap();
        assert_eq!(
            back.analysis().unwrap().model.as_deref(),
            Some("silero-vad")
        );
    }
}
