//! Scenes: shots grouped by what the picture shows, what is said and where the programme
//! pauses. Written as `scenes.json`.
//!
//! A scene is a run of shots. Shot `j` *links back* to an earlier shot `i` (at most
//! `link_shots` shots back) when their key-frame signatures are close: a dialogue cutting
//! between two faces returns to the same picture, and everything between `i` and `j` belongs
//! to the same scene (the "overlapping links" rule). A speech interval running across a cut
//! links the two shots (a sentence is not split between scenes). A black run of at least
//! `barrier_black_seconds` at a cut is a barrier no link crosses (a fade to black between
//! acts). Every cut no link spans is a scene boundary; its reasons say what was seen there.
//!
//! The signature is what the local engine writes on each `SHOT` segment as
//! `CuepointKeyFrame.Signature` (luma and chroma levels of the shot's frames, 8-bit) and
//! `CuepointKeyFrame.Histogram` (the colour histogram of the shot's frames, 64 RGB bins, from
//! real decoded frames). Two shots look alike when their levels are close and, when both have
//! histograms, their histograms overlap by at least `min_histogram_overlap`. Shots without a
//! signature (Rekognition's) link only through speech, so every cut is then a boundary unless
//! someone speaks across it.

use serde::{Deserialize, Serialize};

use crate::loudness::SilenceInterval;
use crate::rekognition::{
    SegmentDetection, CUE_BLACK_FRAMES, CUE_DISSOLVE, CUE_FADE_IN, CUE_FADE_OUT,
};
use crate::speech::SpeechResults;

/// The `SHOT` segment field holding the key-frame signature (cuepoint's own, in `extra`).
pub const KEY_FRAME_FIELD: &str = "CuepointKeyFrame";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SceneOptions {
    /// Shots a link may reach back.
    pub link_shots: usize,
    /// Signatures closer than this (mean absolute difference, 8-bit levels) are the same
    /// picture.
    pub max_distance: f64,
    /// A black run at least this long at a cut ends the scene whatever the links say.
    pub barrier_black_seconds: f64,
    /// Speech must run at least this far on both sides of a cut to link it.
    pub speech_margin_seconds: f64,
    /// Colour histograms must share at least this fraction of their pixels (histogram
    /// intersection, 0-1) for two shots to look alike.
    pub min_histogram_overlap: f64,
}

impl Default for SceneOptions {
    fn default() -> Self {
        Self {
            link_shots: 4,
            max_distance: 6.0,
            barrier_black_seconds: 0.5,
            speech_margin_seconds: 0.2,
            min_histogram_overlap: 0.6,
        }
    }
}

/// Why a scene starts where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoundaryReason {
    /// The programme starts.
    Start,
    /// No shot of the new scene resembles the shots just before it.
    VisualChange,
    /// Black frames at the cut.
    BlackFrames,
    /// A fade or a dissolve at the cut.
    Transition,
    /// Every track with sound is silent at the cut.
    Silence,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Scene {
    /// Milliseconds, as the segments.
    pub start_timestamp: u64,
    pub end_timestamp: u64,
    /// Indexes of the shots (`ShotSegment.Index`, in order).
    pub shots: Vec<u64>,
    /// How sure the boundary that starts this scene is, 0-100.
    pub confidence: f64,
    pub boundary: Vec<BoundaryReason>,
}

/// `scenes.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SceneResults {
    pub scenes: Vec<Scene>,
}

struct Shot {
    index: u64,
    start: u64,
    end: u64,
    signature: Option<Vec<f64>>,
    histogram: Option<Vec<f64>>,
}

/// The share of two histograms' mass in common (1: identical).
fn overlap(a: &[f64], b: &[f64]) -> Option<f64> {
    (a.len() == b.len() && !a.is_empty()).then(|| a.iter().zip(b).map(|(x, y)| x.min(*y)).sum())
}

fn distance(a: &[f64], b: &[f64]) -> Option<f64> {
    (a.len() == b.len() && !a.is_empty())
        .then(|| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64)
}

/// Scenes from the results a slot scorer reads: its segments, speech, and the silences
/// common to every track with sound (as the default policy finds them). No segments, no scenes.
pub fn of_inputs(inputs: &crate::scoring::ScoringInputs, o: &SceneOptions) -> SceneResults {
    let Some(segments) = inputs.segments.as_ref() else {
        return SceneResults { scenes: Vec::new() };
    };
    let silences = crate::scoring::default_silence_intervals(
        inputs,
        &crate::scoring::DefaultPolicyConfig::default(),
    );
    detect(segments, inputs.speech.as_ref(), &silences, o)
}

/// Scenes of a programme from its segments, when someone speaks, and the silences common to
/// every track with sound (seconds).
pub fn detect(
    segments: &SegmentDetection,
    speech: Option<&SpeechResults>,
    silences: &[SilenceInterval],
    o: &SceneOptions,
) -> SceneResults {
    let mut shots: Vec<Shot> = segments
        .segments
        .iter()
        .filter(|s| s.is_shot())
        .enumerate()
        .map(|(i, s)| Shot {
            index: s
                .shot_segment
                .as_ref()
                .and_then(|x| x.index)
                .unwrap_or(i as u64),
            start: s.start_timestamp_millis,
            end: s.end_timestamp_millis,
            signature: s
                .extra
                .get(KEY_FRAME_FIELD)
                .and_then(|k| k.get("Signature"))
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
            histogram: s
                .extra
                .get(KEY_FRAME_FIELD)
                .and_then(|k| k.get("Histogram"))
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
        })
        .collect();
    shots.sort_by_key(|s| s.start);
    if shots.is_empty() {
        return SceneResults { scenes: Vec::new() };
    }
    let cues = |kinds: &[&str]| -> Vec<(u64, u64)> {
        segments
            .segments
            .iter()
            .filter(|s| s.cue_type().is_some_and(|c| kinds.contains(&c)))
            .map(|s| (s.start_timestamp_millis, s.end_timestamp_millis))
            .collect()
    };
    let black = cues(&[CUE_BLACK_FRAMES]);
    let transitions = cues(&[CUE_FADE_OUT, CUE_FADE_IN, CUE_DISSOLVE]);
    // Within a frame or two of the cut.
    const NEAR_MS: u64 = 80;
    let near = |spans: &[(u64, u64)], t: u64| {
        spans
            .iter()
            .any(|(s, e)| s.saturating_sub(NEAR_MS) <= t && t <= e + NEAR_MS)
    };
    let barrier_ms = (o.barrier_black_seconds * 1000.0) as u64;
    // cut k sits before shot k (k >= 1).
    let n = shots.len();
    let barrier: Vec<bool> = (0..n)
        .map(|k| {
            k > 0
                && black.iter().any(|(s, e)| {
                    e - s >= barrier_ms
                        && s.saturating_sub(NEAR_MS) <= shots[k].start
                        && shots[k].start <= s + NEAR_MS
                })
        })
        .collect();
    let mut inside = vec![false; n];
    // The black itself opens the next scene: the cut where it ends is no boundary.
    for k in 1..n {
        let prev = &shots[k - 1];
        if black.iter().any(|(s, e)| {
            e - s >= barrier_ms
                && prev.start + NEAR_MS >= *s
                && prev.end <= e + NEAR_MS
                && shots[k].start.abs_diff(*e) <= NEAR_MS
        }) {
            inside[k] = true;
        }
    }
    for j in 1..n {
        for i in j.saturating_sub(o.link_shots)..j {
            let levels = match (&shots[i].signature, &shots[j].signature) {
                (Some(a), Some(b)) => distance(a, b).is_some_and(|d| d <= o.max_distance),
                _ => false,
            };
            let colours = match (&shots[i].histogram, &shots[j].histogram) {
                (Some(a), Some(b)) => overlap(a, b).is_some_and(|x| x >= o.min_histogram_overlap),
                _ => true,
            };
            let close = levels && colours;
            if close && !barrier[i + 1..=j].iter().any(|b| *b) {
                for flag in &mut inside[i + 1..=j] {
                    *flag = true;
                }
            }
        }
    }
    let margin = (o.speech_margin_seconds * 1000.0) as i64;
    if let Some(sp) = speech {
        for (k, flag) in inside.iter_mut().enumerate().skip(1) {
            let t = shots[k].start as i64;
            if !barrier[k]
                && sp
                    .speech
                    .iter()
                    .any(|iv| iv.start_timestamp <= t - margin && iv.end_timestamp >= t + margin)
            {
                *flag = true;
            }
        }
    }
    let mut scenes: Vec<Scene> = Vec::new();
    for (k, shot) in shots.iter().enumerate() {
        if k > 0 && inside[k] {
            let s = scenes.last_mut().expect("the first shot opens a scene");
            s.end_timestamp = shot.end;
            s.shots.push(shot.index);
            continue;
        }
        let t = shot.start;
        let mut why = Vec::new();
        let mut confidence = 100.0;
        if k == 0 {
            why.push(BoundaryReason::Start);
        } else {
            why.push(BoundaryReason::VisualChange);
            // Without signatures the picture says nothing; a cut alone is a weak boundary.
            confidence = if shot.signature.is_some() { 60.0 } else { 30.0 };
            let ts = t as f64 / 1000.0;
            let mut add = |r: BoundaryReason, gain: f64| {
                why.push(r);
                confidence += (100.0 - confidence) * gain;
            };
            if near(&black, t) {
                add(BoundaryReason::BlackFrames, 0.6);
            }
            if near(&transitions, t) {
                add(BoundaryReason::Transition, 0.4);
            }
            if silences
                .iter()
                .any(|s| s.start - 0.1 <= ts && ts <= s.end + 0.1)
            {
                add(BoundaryReason::Silence, 0.4);
            }
        }
        scenes.push(Scene {
            start_timestamp: t,
            end_timestamp: shot.end,
            shots: vec![shot.index],
            confidence: (confidence * 10.0_f64).round() / 10.0,
            boundary: why,
        });
    }
    SceneResults { scenes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rekognition::{
        Segment, ShotSegment, TechnicalCueSegment, SEGMENT_SHOT, SEGMENT_TECHNICAL_CUE,
    };
    use crate::speech::SpeechInterval;
    use serde_json::json;

    fn shot(i: u64, start: u64, end: u64, sig: Option<f64>) -> Segment {
        let mut s = Segment {
            segment_type: SEGMENT_SHOT.into(),
            start_timestamp_millis: start,
            end_timestamp_millis: end,
            shot_segment: Some(ShotSegment {
                index: Some(i),
                confidence: Some(90.0),
            }),
            ..Default::default()
        };
        if let Some(v) = sig {
            s.extra.insert(
                KEY_FRAME_FIELD.into(),
                json!({"Signature": [v, v + 10.0, 128.0]}),
            );
        }
        s
    }

    fn black(start: u64, end: u64) -> Segment {
        Segment {
            segment_type: SEGMENT_TECHNICAL_CUE.into(),
            start_timestamp_millis: start,
            end_timestamp_millis: end,
            technical_cue_segment: Some(TechnicalCueSegment {
                cue_type: CUE_BLACK_FRAMES.into(),
                confidence: Some(99.0),
            }),
            ..Default::default()
        }
    }

    fn starts(r: &SceneResults) -> Vec<u64> {
        r.scenes.iter().map(|s| s.start_timestamp).collect()
    }

    #[test]
    fn dialogue_alternation_is_one_scene_and_a_new_place_starts_another() {
        // A B A B (two faces), then C D C (another place): two scenes.
        let sigs = [40.0, 90.0, 41.0, 91.0, 150.0, 200.0, 151.0];
        let segs: Vec<Segment> = sigs
            .iter()
            .enumerate()
            .map(|(i, &v)| shot(i as u64, i as u64 * 3000, (i as u64 + 1) * 3000, Some(v)))
            .collect();
        let d = SegmentDetection {
            segments: segs,
            ..Default::default()
        };
        let r = detect(&d, None, &[], &SceneOptions::default());
        assert_eq!(starts(&r), vec![0, 12000]);
        assert_eq!(r.scenes[0].shots, vec![0, 1, 2, 3]);
        assert_eq!(r.scenes[1].shots, vec![4, 5, 6]);
        assert_eq!(r.scenes[1].boundary, vec![BoundaryReason::VisualChange]);
        assert_eq!(r.scenes[1].end_timestamp, 21000);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["Scenes"][1]["Boundary"][0], "VisualChange");
        assert_eq!(json["Scenes"][1]["StartTimestamp"], 12000);
    }

    #[test]
    fn colours_must_agree_when_both_shots_have_histograms() {
        // A B A: the levels of A and its return are close; the colours decide.
        let with = |hists: [[f64; 2]; 3]| {
            let segs: Vec<Segment> = [40.0, 90.0, 41.0]
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let mut s = shot(i as u64, i as u64 * 3000, (i as u64 + 1) * 3000, Some(v));
                    s.extra.get_mut(KEY_FRAME_FIELD).unwrap()["Histogram"] = json!(hists[i]);
                    s
                })
                .collect();
            let d = SegmentDetection {
                segments: segs,
                ..Default::default()
            };
            starts(&detect(&d, None, &[], &SceneOptions::default()))
        };
        assert_eq!(with([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2]]), vec![0]);
        // Same levels, other colours (overlap 0.3): a new scene.
        assert_eq!(
            with([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8]]),
            vec![0, 3000, 6000]
        );
    }

    #[test]
    fn speech_across_a_cut_links_and_black_separates() {
        // Three different pictures; someone speaks across the first cut; a 2 s black at 9 s.
        let mut segs = vec![
            shot(0, 0, 3000, Some(40.0)),
            shot(1, 3000, 9000, Some(90.0)),
            shot(2, 9000, 11000, Some(40.0)),
            shot(3, 11000, 20000, Some(40.0)),
        ];
        segs.push(black(9000, 11000));
        let d = SegmentDetection {
            segments: segs,
            ..Default::default()
        };
        let speech = SpeechResults {
            job_status: None,
            speech: vec![SpeechInterval {
                track: 1,
                start_timestamp: 1000,
                end_timestamp: 5000,
                confidence: 90.0,
            }],
            extra: Default::default(),
        };
        let silence = [SilenceInterval {
            start: 9.0,
            end: 11.0,
            duration: 2.0,
        }];
        let r = detect(&d, Some(&speech), &silence, &SceneOptions::default());
        // Shot 3 looks like shot 0, but the black (shot 2) between is a barrier; the black
        // opens the next scene.
        assert_eq!(starts(&r), vec![0, 9000]);
        assert_eq!(r.scenes[1].shots, vec![2, 3]);
        assert_eq!(r.scenes[0].shots, vec![0, 1]);
        assert_eq!(
            r.scenes[1].boundary,
            vec![
                BoundaryReason::VisualChange,
                BoundaryReason::BlackFrames,
                BoundaryReason::Silence
            ]
        );
        assert!(r.scenes[1].confidence > 90.0);
        // Without speech, the first cut is a boundary too.
        let r = detect(&d, None, &silence, &SceneOptions::default());
        assert_eq!(starts(&r), vec![0, 3000, 9000]);
        // Without signatures (Rekognition), every cut is a weak boundary.
        let plain: Vec<Segment> = (0..3)
            .map(|i| shot(i, i * 1000, (i + 1) * 1000, None))
            .collect();
        let r = detect(
            &SegmentDetection {
                segments: plain,
                ..Default::default()
            },
            None,
            &[],
            &SceneOptions::default(),
        );
        assert_eq!(r.scenes.len(), 3);
        assert_eq!(r.scenes[1].confidence, 30.0);
        assert!(detect(
            &SegmentDetection::default(),
            None,
            &[],
            &SceneOptions::default()
        )
        .scenes
        .is_empty());
    }
}
