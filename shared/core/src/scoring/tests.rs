use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::loudness::{LoudnessLog, LoudnessRow, LoudnessSummary, SummaryRowCells};
use crate::rekognition::{
    CelebrityRecognition, ContentModerationDetection, Emotion, FaceDetail, FaceDetection,
    LabelDetection, NamedDetection, Segment, SegmentDetection, TechnicalCueSegment, VideoMetadata,
};

// ---------- builders ----------

fn track(levels: &[(f64, f64)], max: f64) -> LoudnessLog {
    LoudnessLog {
        rows: levels
            .iter()
            .map(|&(seconds, s)| LoudnessRow {
                seconds,
                momentary: s,
                integrated: -23.0,
                short_term: s,
                true_peak: -1.0,
            })
            .collect(),
        summary: LoudnessSummary {
            input_integrated: -23.0,
            input_max_loudness: max,
            input_true_peak: -1.0,
        },
    }
}

/// One row per second from 0 to `end`, loud (-20) except at the given seconds (-60).
fn track_silent_at(end: u32, silent: &[u32]) -> LoudnessLog {
    let levels: Vec<(f64, f64)> = (0..=end)
        .map(|s| (s as f64, if silent.contains(&s) { -60.0 } else { -20.0 }))
        .collect();
    track(&levels, -10.0)
}

/// What a loudness meter logs for sound at -20 LUFS from 0 to `end` s, digitally silent inside
/// `silences`: 100 ms rows of the 400 ms momentary loudness (stamped at the window's end, the
/// meter's empty value while the first window fills).
fn metered(end: u32, silences: &[(f64, f64)]) -> LoudnessLog {
    let n = end as usize * 10;
    let blocks: Vec<f64> = (0..n)
        .map(|i| {
            let (a, b) = (i as f64 / 10.0, (i + 1) as f64 / 10.0);
            let quiet: f64 = silences
                .iter()
                .map(|&(s, e)| (b.min(e) - a.max(s)).max(0.0))
                .sum();
            0.01 * (1.0 - quiet * 10.0)
        })
        .collect();
    let levels: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let m = if i < 3 {
                -120.691
            } else {
                let mean = blocks[i - 3..=i].iter().sum::<f64>() / 4.0;
                if mean > 0.0 {
                    ((10.0 * mean.log10()).max(-120.691) * 1000.0).round() / 1000.0
                } else {
                    -120.691
                }
            };
            ((i as f64 + 1.0) / 10.0, m)
        })
        .collect();
    track(&levels, -10.0)
}

trait WithinMs {
    fn abs_diff_eq_ms(self, other: f64) -> bool;
}

impl WithinMs for f64 {
    fn abs_diff_eq_ms(self, other: f64) -> bool {
        (self - other).abs() < 1e-3
    }
}

fn seg_cue(cue: &str, start_ms: u64, end_ms: u64) -> Segment {
    Segment {
        segment_type: "TECHNICAL_CUE".into(),
        start_timestamp_millis: start_ms,
        end_timestamp_millis: end_ms,
        duration_millis: end_ms.saturating_sub(start_ms),
        technical_cue_segment: Some(TechnicalCueSegment {
            cue_type: cue.into(),
            confidence: Some(99.0),
        }),
        ..Segment::default()
    }
}

fn seg_shot(start_ms: u64) -> Segment {
    Segment {
        segment_type: "SHOT".into(),
        start_timestamp_millis: start_ms,
        ..Segment::default()
    }
}

fn segments(duration_ms: u64, segs: Vec<Segment>) -> SegmentDetection {
    SegmentDetection {
        video_metadata: vec![VideoMetadata {
            duration_millis: Some(duration_ms),
            ..VideoMetadata::default()
        }],
        segments: segs,
        ..SegmentDetection::default()
    }
}

fn named(name: &str, confidence: f64) -> NamedDetection {
    NamedDetection {
        name: name.into(),
        confidence,
        ..NamedDetection::default()
    }
}

fn labels(items: &[(i64, &str, f64)]) -> crate::rekognition::LabelResults {
    crate::rekognition::LabelResults {
        labels: items
            .iter()
            .map(|&(ts, n, c)| LabelDetection {
                timestamp: ts,
                label: named(n, c),
                ..LabelDetection::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn inputs(loudness: Vec<LoudnessLog>, segs: SegmentDetection) -> ScoringInputs {
    ScoringInputs {
        loudness,
        segments: Some(segs),
        ..ScoringInputs::default()
    }
}

fn reasons(slot: &Slot) -> Vec<&'static str> {
    slot.reasons.iter().map(|r| r.as_str()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

// ---------- reference policy ----------

/// A small case worked by hand from the note. T = 20 s.
///
/// Candidates (sorted; ties keep Silence, BlackFrame, ShotChange, EndCredits):
///   0.0 Shot, 5.0 Silence (first silent row after 3 s; the run at 0-1 s is before 3 s),
///   5.3 Shot, 9.0 Shot, 12.0 Silence, 12.2 BlackFrame, 15.0 Shot, 18.0 EndCredits.
/// Labels (ms, name, confidence): 4000 Car 90, 6000 Tree 80, 8000 Tree 75, 10500 Tree 95,
///   11000 Car 60 (under 70: dropped), 13000 Tree 70 (exactly 70: kept), 14500 Person 99.
///
///  0.0 Shot: 0.7 * (0/20)^0.3 = 0. Context [-2,0] / [0,2]: nothing. Keep A = 0.
///  5.0 Sil: 0.7 (5/20 = 0.25 is not < 0.25). d = 5, d/T = 0.25: no penalty.
///       Before [3,5] {Car}, after [5,7] {Tree}: distance 1 -> or(0.7, 1) = 1. Keep B = 1.
///  5.3 Shot: 0.7; d = 0.3 < 0.5: merge into B: B.t = 5.3, reasons [Silence, ShotChange],
///       B = or(1, 0.7) = 1. B's context stays the one computed at 5.0.
///  9.0 Shot: 0.7; d = 3.7, d/T = 0.185 < 0.25 and 0.7 < B = 1 -> c = 0.7 * 0.185^0.05.
///       Before [7,9] {Tree}, after [9,11] {Tree}: distance 0 -> unchanged. Keep C.
/// 12.0 Sil: 0.7; d = 3, d/T = 0.15; 0.7 is not < C (0.643...) -> C *= 0.15^0.05.
///       Before {Tree} (10.5), after {Tree} (13.0 at exactly 70): distance 0. Keep D = 0.7.
/// 12.2 Black: 0.8; d = 0.2: merge: D.t = 12.2, [Silence, BlackFrame], D = or(0.7, 0.8) = 0.94.
/// 15.0 Shot: 0.7; d = 2.8, d/T = 0.14; 0.7 < 0.94 -> c = 0.7 * 0.14^0.05.
///       Before [13,15] {Tree, Person}, after {}: distance 1 -> or(c, 1) = 1. Keep E = 1.
/// 18.0 EndCredits: 1.0; d = 3, d/T = 0.15; 1.0 is not < E = 1.0 (a tie penalises prev):
///       E = 0.15^0.05. No labels near 18. Keep F = 1.
///
/// Slots: A 0.0 = 0 | B 5.3 = 1 | C 9.0 = 0.7 * 0.185^0.05 * 0.15^0.05 ≈ 0.58514 |
///        D 12.2 = 0.94 | E 15.0 = 0.15^0.05 ≈ 0.90950 | F 18.0 = 1.
/// Top 3: ascending stable sort A, C, E, D, B, F -> last three D, B, F (score order).
fn hand_example() -> ScoringInputs {
    let mut i = inputs(
        vec![track_silent_at(20, &[0, 1, 5, 6, 12])],
        segments(
            20_000,
            vec![
                seg_shot(0),
                seg_cue("BlackFrames", 12_200, 12_800),
                seg_shot(5_300),
                seg_shot(9_000),
                seg_cue("ColorBars", 1_000, 2_000),
                seg_shot(15_000),
                seg_cue("EndCredits", 18_000, 20_000),
            ],
        ),
    );
    i.labels = Some(labels(&[
        (4000, "Car", 90.0),
        (6000, "Tree", 80.0),
        (8000, "Tree", 75.0),
        (10500, "Tree", 95.0),
        (11000, "Car", 60.0),
        (13000, "Tree", 70.0),
        (14500, "Person", 99.0),
    ]));
    i
}

#[test]
fn reference_hand_computed_example() {
    let out = score(&hand_example(), &Policy::Reference, 3).unwrap();
    assert_eq!(out.policy, PolicyName::Reference);
    assert_eq!(out.duration, Some(20.0));
    let got: Vec<(f64, Vec<&str>)> = out
        .slots
        .iter()
        .map(|s| (s.timestamp, reasons(s)))
        .collect();
    assert_eq!(
        got,
        vec![
            (0.0, vec!["ShotChange"]),
            (5.3, vec!["Silence", "ShotChange"]),
            (9.0, vec!["ShotChange"]),
            (12.2, vec!["Silence", "BlackFrame"]),
            (15.0, vec!["ShotChange"]),
            (18.0, vec!["EndCredits"]),
        ]
    );
    let scores: Vec<f64> = out.slots.iter().map(|s| s.score).collect();
    let c = 0.7 * 0.185f64.powf(0.05) * 0.15f64.powf(0.05);
    let want = [0.0, 1.0, c, 1.0 - 0.3 * 0.2, 0.15f64.powf(0.05), 1.0];
    for (g, w) in scores.iter().zip(want) {
        assert!(close(*g, w), "{scores:?} vs {want:?}");
    }
    // The same numbers by hand, to 5 places.
    assert!((scores[2] - 0.58514).abs() < 1e-5, "{}", scores[2]);
    assert!((scores[4] - 0.90950).abs() < 1e-5, "{}", scores[4]);
    // The merged slot keeps the context computed at 5.0: Car before, Tree after.
    let b = &out.slots[1];
    assert_eq!(b.context.labels.before_names().collect::<Vec<_>>(), ["Car"]);
    assert_eq!(b.context.labels.after_names().collect::<Vec<_>>(), ["Tree"]);
    // 13000 Tree at exactly 70 is kept; 11000 Car at 60 is not.
    let d = &out.slots[3];
    assert_eq!(
        d.context.labels.after,
        vec![ContextEntry {
            name: "Tree".into(),
            confidence: 70.0
        }]
    );
    assert_eq!(
        d.context.labels.before_names().collect::<Vec<_>>(),
        ["Tree"]
    );
    // Breaks: ascending score, later wins ties.
    let breaks: Vec<f64> = out.breaks.iter().map(|s| s.timestamp).collect();
    assert_eq!(breaks, vec![12.2, 5.3, 18.0]);
}

#[test]
fn reference_json_shape() {
    let out = score(&hand_example(), &Policy::Reference, 3).unwrap();
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(v["policy"], "reference");
    assert_eq!(v["slots"][1]["timestamp"], json!(5.3));
    assert_eq!(v["slots"][1]["score"], json!(1.0));
    assert_eq!(v["slots"][1]["reasons"], json!(["Silence", "ShotChange"]));
    assert_eq!(
        v["slots"][1]["context"]["labels"]["before"][0]["name"],
        "Car"
    );
    assert_eq!(v["breaks"].as_array().unwrap().len(), 3);
    assert!(v["slots"][1].get("snapped_from").is_none());
}

#[test]
fn reference_first_shot_at_zero_is_lifted_by_labels_just_after() {
    let mut i = inputs(
        vec![],
        segments(60_000, vec![seg_shot(0), seg_shot(30_000)]),
    );
    i.labels = Some(labels(&[(500, "Dog", 90.0)]));
    let out = score(&i, &Policy::Reference, 3).unwrap();
    assert_eq!(out.slots[0].timestamp, 0.0);
    assert_eq!(out.slots[0].score, 1.0);
    // The other shot has no labels near it: 0.7, no penalties (d/T = 0.5).
    assert_eq!(out.slots[1].score, 0.7);
    assert_eq!(out.breaks.last().unwrap().timestamp, 0.0);
    // Without the label, the shot at 0 scores 0.
    i.labels = Some(labels(&[(0, "Dog", 90.0), (500, "Dog", 90.0)]));
    let out = score(&i, &Policy::Reference, 3).unwrap();
    assert_eq!(
        out.slots[0].score, 0.0,
        "same label on both sides: distance 0"
    );
}

#[test]
fn reference_context_compares_in_float_seconds() {
    // t = 2.1: t - 2.0 = 0.10000000000000009 > 0.1, so a label at 100 ms is NOT before it,
    // while integer milliseconds would say exactly 2 s before.
    let mut i = inputs(vec![], segments(100_000, vec![seg_shot(2_100)]));
    i.labels = Some(labels(&[(100, "Sea", 99.0), (4_100, "Sea", 99.0)]));
    let out = score(&i, &Policy::Reference, 3).unwrap();
    let ctx = &out.slots[0].context.labels;
    assert!(ctx.before.is_empty());
    assert_eq!(ctx.after_names().collect::<Vec<_>>(), ["Sea"]);
}

#[test]
fn reference_context_lists_faces_celebrities_moderation() {
    let mut i = inputs(vec![], segments(100_000, vec![seg_shot(50_000)]));
    let face = |ts, emotions: Option<Vec<(&str, f64)>>| FaceDetection {
        timestamp: ts,
        face: FaceDetail {
            confidence: Some(99.0),
            emotions: emotions.map(|e| {
                e.into_iter()
                    .map(|(t, c)| Emotion {
                        emotion_type: t.into(),
                        confidence: c,
                    })
                    .collect()
            }),
            ..FaceDetail::default()
        },
        ..FaceDetection::default()
    };
    i.faces = Some(crate::rekognition::FaceResults {
        faces: vec![
            face(49_000, Some(vec![("HAPPY", 80.0), ("SAD", 10.0)])),
            face(49_500, Some(vec![("HAPPY", 95.0), ("CALM", 95.0)])),
            face(49_800, Some(vec![("CALM", 95.0)])),
            face(50_000, None),
            face(51_000, Some(vec![("ANGRY", 70.0)])),
        ],
        ..Default::default()
    });
    i.celebrities = Some(crate::rekognition::CelebrityResults {
        celebrities: vec![CelebrityRecognition {
            timestamp: 50_000,
            celebrity: named("Ada", 99.0),
            ..Default::default()
        }],
        ..Default::default()
    });
    i.moderation = Some(crate::rekognition::ModerationResults {
        moderation_labels: vec![
            ContentModerationDetection {
                timestamp: 51_999,
                moderation_label: named("Violence", 88.0),
                ..Default::default()
            },
            // Past t + 2: the scan stops here, so the later (out of order) entry is never seen.
            ContentModerationDetection {
                timestamp: 53_000,
                moderation_label: named("Smoking", 88.0),
                ..Default::default()
            },
            ContentModerationDetection {
                timestamp: 51_000,
                moderation_label: named("Drugs", 88.0),
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    let out = score(&i, &Policy::Reference, 3).unwrap();
    let ctx = &out.slots[0].context;
    // HAPPY keeps its highest confidence at its first position; CALM keeps the first of equals.
    assert_eq!(
        ctx.faces.before,
        vec![
            ContextEntry {
                name: "HAPPY".into(),
                confidence: 95.0
            },
            ContextEntry {
                name: "CALM".into(),
                confidence: 95.0
            }
        ]
    );
    assert_eq!(ctx.faces.after_names().collect::<Vec<_>>(), ["ANGRY"]);
    // Exactly at t: Before only.
    assert_eq!(ctx.celebrities.before_names().collect::<Vec<_>>(), ["Ada"]);
    assert!(ctx.celebrities.after.is_empty());
    assert_eq!(
        ctx.moderation.after_names().collect::<Vec<_>>(),
        ["Violence"]
    );
    // None of these move the score: only labels do.
    assert_eq!(out.slots[0].score, 0.7);
}

#[test]
fn reference_silence_walk() {
    // A run from 0 s is entered at its first row after 3 s (3.0 itself is not after 3 s).
    let l = track(
        &[
            (0.0, -70.0),
            (2.5, -70.0),
            (3.0, -70.0),
            (3.5, -70.0),
            (4.0, -70.0),
            (5.0, -20.0),
            (6.0, -60.0),
        ],
        -10.0,
    );
    assert_eq!(reference::silence_starts(&l, None), vec![3.5, 6.0]);
    // A run that ends before 3 s gives nothing.
    let l = track(
        &[(1.0, -70.0), (2.0, -20.0), (3.0, -70.0), (4.0, -20.0)],
        -10.0,
    );
    assert!(reference::silence_starts(&l, None).is_empty());
    // The summary row is walked: a silent summary row after a loud row opens a run there...
    let l = track(&[(5.0, -20.0)], -10.0);
    let quiet_summary = SummaryRowCells {
        seconds: Some(9.0),
        short_term: Some(-70.0),
    };
    assert_eq!(
        reference::silence_starts(&l, Some(quiet_summary)),
        vec![9.0]
    );
    // ...but not when the log already ends in an opened run, nor with our marker (0 LUFS).
    let l = track(&[(5.0, -70.0)], -10.0);
    assert_eq!(
        reference::silence_starts(&l, Some(quiet_summary)),
        vec![5.0]
    );
    let marker = SummaryRowCells {
        seconds: Some(9.0),
        short_term: Some(0.0),
    };
    assert!(reference::silence_starts(&track(&[(5.0, -20.0)], -10.0), Some(marker)).is_empty());
}

#[test]
fn reference_uses_track_one_only() {
    let i = inputs(
        vec![track_silent_at(10, &[]), track_silent_at(10, &[5])],
        segments(10_000, vec![]),
    );
    assert!(score(&i, &Policy::Reference, 3).unwrap().slots.is_empty());
}

#[test]
fn reference_top_n_keeps_later_slots_on_ties() {
    // Four shots far apart with labels changing at each: all 1.0; the last three win.
    let mut i = inputs(
        vec![],
        segments(
            1_000_000,
            vec![
                seg_shot(300_000),
                seg_shot(500_000),
                seg_shot(700_000),
                seg_shot(900_000),
            ],
        ),
    );
    i.labels = Some(labels(&[
        (300_500, "A", 99.0),
        (500_500, "B", 99.0),
        (700_500, "C", 99.0),
        (900_500, "D", 99.0),
    ]));
    let out = score(&i, &Policy::Reference, 3).unwrap();
    assert!(out.slots.iter().all(|s| s.score == 1.0));
    let t: Vec<f64> = out.breaks.iter().map(|s| s.timestamp).collect();
    assert_eq!(t, vec![500.0, 700.0, 900.0]);
    assert_eq!(score(&i, &Policy::Reference, 10).unwrap().breaks.len(), 4);
    assert!(score(&i, &Policy::Reference, 0).unwrap().breaks.is_empty());
}

#[test]
fn reference_ties_at_one_timestamp_keep_the_reason_order() {
    // Shot, black frame, end credits and silence all at 10 s: Silence first, then BlackFrame...
    let i = inputs(
        vec![track_silent_at(20, &[10])],
        segments(
            20_000,
            vec![
                seg_cue("EndCredits", 10_000, 20_000),
                seg_shot(10_000),
                seg_cue("BlackFrames", 10_000, 10_500),
            ],
        ),
    );
    let out = score(&i, &Policy::Reference, 3).unwrap();
    assert_eq!(out.slots.len(), 1);
    assert_eq!(
        reasons(&out.slots[0]),
        ["Silence", "BlackFrame", "ShotChange", "EndCredits"]
    );
    let want = disjunction(disjunction(disjunction(0.7, 0.8), 0.7), 1.0);
    assert_eq!(out.slots[0].score, want);
}

#[test]
fn scoring_needs_a_duration_when_there_is_something_to_score() {
    let mut i = ScoringInputs::default();
    let out = score(&i, &Policy::Reference, 3).unwrap();
    assert!(out.slots.is_empty() && out.breaks.is_empty());
    assert_eq!(out.duration, None);
    i.segments = Some(SegmentDetection {
        segments: vec![seg_shot(1000)],
        ..Default::default()
    });
    assert_eq!(
        score(&i, &Policy::Reference, 3),
        Err(ScoringError::UnknownDuration { candidates: 1 })
    );
    assert!(matches!(
        score(&i, &Policy::default(), 3),
        Err(ScoringError::UnknownDuration { .. })
    ));
    i.segments = Some(segments(0, vec![seg_shot(1000)]));
    assert_eq!(
        score(&i, &Policy::Reference, 3),
        Err(ScoringError::BadDuration(0.0))
    );
}

#[test]
fn duration_falls_back_to_other_results_then_loudness() {
    let mut i = ScoringInputs {
        loudness: vec![track_silent_at(42, &[])],
        ..Default::default()
    };
    assert_eq!(i.duration_seconds(), Some(42.0));
    i.labels = Some(crate::rekognition::LabelResults {
        video_metadata: vec![VideoMetadata {
            duration_millis: Some(41_500),
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_eq!(i.duration_seconds(), Some(41.5));
    i.segments = Some(segments(40_000, vec![]));
    assert_eq!(i.duration_seconds(), Some(40.0));
}

// ---------- default policy ----------

/// The default configuration with no score floor and without scenes, so the mechanics below
/// (spacing, guards, snapping) can be shown on weak single-reason slots.
fn cfg() -> DefaultPolicyConfig {
    DefaultPolicyConfig {
        min_break_score: 0.0,
        use_scenes: false,
        ..DefaultPolicyConfig::default()
    }
}

fn default_out(i: &ScoringInputs, c: DefaultPolicyConfig, n: usize) -> ScoringOutput {
    score(i, &Policy::Default(c), n).unwrap()
}

#[test]
fn default_config_from_json_with_defaults_and_typo_check() {
    let c: DefaultPolicyConfig =
        serde_json::from_str(r#"{"min_spacing_seconds": 120, "weights": {"shot_change": 0.1}, "silence_tracks": "programme"}"#)
            .unwrap();
    assert_eq!(c.min_spacing_seconds, 120.0);
    assert_eq!(c.weights.shot_change, 0.1);
    assert_eq!(c.weights.silence, ReasonWeights::default().silence);
    assert_eq!(c.silence_tracks, SilenceTracks::Programme);
    assert_eq!(c.lead_in_seconds, cfg().lead_in_seconds);
    assert!(serde_json::from_str::<DefaultPolicyConfig>(r#"{"min_spacing": 1}"#).is_err());
    let bad = DefaultPolicyConfig {
        context_weight: 1.5,
        ..cfg()
    };
    assert!(matches!(bad.validate(), Err(ScoringError::Config(m)) if m.contains("context_weight")));
    let bad = DefaultPolicyConfig {
        min_spacing_seconds: -1.0,
        ..cfg()
    };
    let i = inputs(vec![], segments(10_000, vec![seg_shot(5000)]));
    assert!(matches!(
        score(&i, &Policy::Default(bad), 3),
        Err(ScoringError::Config(_))
    ));
}

#[test]
fn default_silence_needs_every_active_track() {
    // Track 1 silent 10-13 s, track 2 silent 11-14 s, track 3 has no audio at all.
    let t1 = metered(60, &[(10.0, 13.0)]);
    let t2 = metered(60, &[(11.0, 14.0)]);
    let t3 = track(
        &(0..=60).map(|s| (s as f64, -90.0)).collect::<Vec<_>>(),
        -90.0,
    );
    let i = inputs(vec![t1, t2, t3], segments(60_000, vec![]));
    let all = default_silence_intervals(&i, &cfg());
    assert_eq!(all.len(), 1);
    // Placed from the meter's rounded readings: within a millisecond.
    assert!(
        all[0].start.abs_diff_eq_ms(11.0) && all[0].end.abs_diff_eq_ms(13.0),
        "{all:?}"
    );
    let prog = default_silence_intervals(
        &i,
        &DefaultPolicyConfig {
            silence_tracks: SilenceTracks::Programme,
            ..cfg()
        },
    );
    assert!(
        prog[0].start.abs_diff_eq_ms(10.0) && prog[0].end.abs_diff_eq_ms(13.0),
        "{prog:?}"
    );
    // The candidate sits in the middle of the common silence.
    let out = default_out(&i, cfg(), 3);
    assert_eq!(out.slots.len(), 1);
    assert_eq!(out.slots[0].timestamp, 12.0);
    assert_eq!(reasons(&out.slots[0]), ["Silence"]);
    assert_eq!(out.slots[0].score, 0.6);
    // A silent programme offers no silence at all.
    let silent = track(&[(0.0, -90.0), (60.0, -90.0)], -90.0);
    assert!(
        default_silence_intervals(&inputs(vec![silent], segments(60_000, vec![])), &cfg())
            .is_empty()
    );
}

#[test]
fn default_min_silence_length() {
    let i = inputs(vec![metered(60, &[(20.0, 21.0)])], segments(60_000, vec![]));
    assert_eq!(
        default_out(&i, cfg(), 3).slots.len(),
        1,
        "20-21 s is 1 s long"
    );
    let c = DefaultPolicyConfig {
        min_silence_seconds: 1.5,
        ..cfg()
    };
    assert!(default_out(&i, c, 3).slots.is_empty());
}

#[test]
fn default_slot_sits_on_the_shot_change_inside_a_silence() {
    // Silence 19-23 s (middle 21), a shot at 20.0 s, a black run 20.8-21.2 (middle 21.0).
    let i = inputs(
        vec![metered(60, &[(19.0, 23.0)])],
        segments(
            60_000,
            vec![
                seg_shot(0),
                seg_shot(20_000),
                seg_cue("BlackFrames", 20_800, 21_200),
                seg_shot(40_000),
            ],
        ),
    );
    let out = default_out(&i, cfg(), 3);
    let got: Vec<(f64, Vec<&str>)> = out
        .slots
        .iter()
        .map(|s| (s.timestamp, reasons(s)))
        .collect();
    assert_eq!(
        got,
        vec![
            (0.0, vec!["ShotChange"]),
            // 20.0 shot alone in its cluster, but inside the silence.
            (20.0, vec!["Silence", "ShotChange"]),
            // Silence middle and black middle both at 21.0 merge; the black middle places it.
            (21.0, vec!["Silence", "BlackFrame"]),
            (40.0, vec!["ShotChange"]),
        ]
    );
    let w = ReasonWeights::default();
    assert!(close(
        out.slots[1].score,
        disjunction(w.silence, w.shot_change)
    ));
    assert!(close(
        out.slots[2].score,
        disjunction(w.silence, w.black_frame)
    ));
    // Breaks: 21.0 is best; 20.0 is too close (30 s spacing); 40.0 next; 0.0 is in the lead-in.
    let breaks: Vec<f64> = out.breaks.iter().map(|s| s.timestamp).collect();
    assert_eq!(breaks, vec![21.0]);
    let out = default_out(
        &i,
        DefaultPolicyConfig {
            min_spacing_seconds: 10.0,
            ..cfg()
        },
        3,
    );
    let breaks: Vec<f64> = out.breaks.iter().map(|s| s.timestamp).collect();
    assert_eq!(breaks, vec![21.0, 40.0], "time order, spacing 10 s");
}

#[test]
fn default_breaks_are_in_time_order_and_respect_guards() {
    // Black runs (0.7) at 2, 30, 58 s and shots (0.3) at 15, 45 s; 60 s programme.
    let i = inputs(
        vec![],
        segments(
            60_000,
            vec![
                seg_cue("BlackFrames", 2_000, 2_000),
                seg_shot(15_000),
                seg_cue("BlackFrames", 30_000, 30_000),
                seg_shot(45_000),
                seg_cue("BlackFrames", 58_000, 58_000),
            ],
        ),
    );
    let c = DefaultPolicyConfig {
        min_spacing_seconds: 10.0,
        ..cfg()
    };
    let out = default_out(&i, c.clone(), 3);
    let t: Vec<f64> = out.breaks.iter().map(|s| s.timestamp).collect();
    // 2 s and 58 s are inside the 5 s lead-in / lead-out.
    assert_eq!(t, vec![15.0, 30.0, 45.0]);
    let t: Vec<f64> = default_out(&i, c.clone(), 2)
        .breaks
        .iter()
        .map(|s| s.timestamp)
        .collect();
    // Best first: 30 (0.7), then the tie between 15 and 45 goes to the earlier.
    assert_eq!(t, vec![15.0, 30.0]);
    let strict = DefaultPolicyConfig {
        min_break_score: 0.5,
        ..c
    };
    let t: Vec<f64> = default_out(&i, strict, 3)
        .breaks
        .iter()
        .map(|s| s.timestamp)
        .collect();
    assert_eq!(t, vec![30.0]);
}

#[test]
fn default_label_change_adds_context_weight() {
    let mut i = inputs(
        vec![],
        segments(60_000, vec![seg_shot(20_000), seg_shot(40_000)]),
    );
    i.labels = Some(labels(&[
        (19_000, "Kitchen", 90.0),
        (21_000, "Beach", 90.0),
        (39_000, "Car", 90.0),
    ]));
    let out = default_out(&i, cfg(), 3);
    let w = ReasonWeights::default();
    // 20 s: {Kitchen} vs {Beach}, distance 1. 40 s: one side empty: no adjustment (unlike the reference).
    assert!(close(out.slots[0].score, disjunction(w.shot_change, 0.3)));
    assert_eq!(out.slots[1].score, w.shot_change);
}

#[test]
fn default_snaps_breaks_to_hls_boundaries() {
    let mut i = inputs(
        vec![],
        segments(
            60_000,
            vec![seg_cue("BlackFrames", 20_300, 20_500), seg_shot(40_000)],
        ),
    );
    i.hls_segment_boundaries = Some((0..=10).map(|k| k as f64 * 6.0).collect());
    let out = default_out(
        &i,
        DefaultPolicyConfig {
            min_spacing_seconds: 10.0,
            ..cfg()
        },
        3,
    );
    // 20.4 -> 18 (nearest of 18 and 24); 40 -> 42 (nearest of 36 and 42).
    let t: Vec<(f64, Option<f64>)> = out
        .breaks
        .iter()
        .map(|s| (s.timestamp, s.snapped_from))
        .collect();
    assert_eq!(t, vec![(18.0, Some(20.4)), (42.0, Some(40.0))]);
    // Slots keep their own times.
    assert_eq!(out.slots[0].timestamp, 20.4);
    let v = serde_json::to_value(&out.breaks[0]).unwrap();
    assert_eq!(v["snapped_from"], json!(20.4));
    // Ties go to the earlier boundary; snapping can be turned off.
    assert_eq!(
        default_policy::nearest_boundary(&[0.0, 6.0, 12.0], 9.0),
        6.0
    );
    let off = default_out(
        &i,
        DefaultPolicyConfig {
            snap_to_hls: false,
            min_spacing_seconds: 10.0,
            ..cfg()
        },
        3,
    );
    assert_eq!(off.breaks[0].timestamp, 20.4);
}

#[test]
fn hls_playlist_boundaries() {
    let b = parse_hls_boundaries("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\na.ts\n#EXTINF:1.5,\nb.ts\n#EXTINF:2,\nc.ts\n#EXT-X-ENDLIST\n").unwrap();
    assert_eq!(b, vec![0.0, 2.0, 3.5, 5.5]);
    let err = parse_hls_boundaries("#EXTM3U\n#EXTINF:abc,\na.ts\n").unwrap_err();
    assert!(err.contains("line 2"), "{err}");
    assert!(parse_hls_boundaries("#EXTM3U\n").is_err());
}

// ---------- reading a results layout ----------

fn layout(files: &[(&str, String)]) -> impl Fn(&str) -> Result<Option<Vec<u8>>, String> {
    let map: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().into_bytes()))
        .collect();
    move |path: &str| Ok(map.get(path).cloned())
}

#[test]
fn from_files_reads_every_kind_and_treats_missing_as_none() {
    let t1 = track_silent_at(10, &[5]);
    let t2 = track_silent_at(10, &[]);
    let seg = serde_json::to_string(&segments(10_000, vec![seg_shot(0), seg_shot(5_000)])).unwrap();
    let read = layout(&[
        ("loudness/track-1.csv", t1.to_csv()),
        ("loudness/track-2.csv", t2.to_csv()),
        // track-4 without track-3 is not read: tracks are numbered without gaps.
        ("loudness/track-4.csv", "garbage".into()),
        ("segments.json", seg),
        ("labels.json", r#"{"JobStatus":"SUCCEEDED","Labels":[{"Timestamp":500,"Label":{"Name":"Dog","Confidence":91.5}}]}"#.into()),
        ("hls/index.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv0/index.m3u8\n".into()),
        ("hls/v0/index.m3u8", "#EXTM3U\n#EXTINF:5,\na.ts\n#EXTINF:5,\nb.ts\n".into()),
    ]);
    let i = ScoringInputs::from_files(read).unwrap();
    assert_eq!(i.loudness, vec![t1, t2]);
    assert_eq!(
        i.programme_summary_cells,
        Some(SummaryRowCells {
            seconds: Some(10.0),
            short_term: Some(0.0)
        })
    );
    assert_eq!(i.segments.as_ref().unwrap().segments.len(), 2);
    assert_eq!(i.labels.as_ref().unwrap().labels[0].label.name, "Dog");
    assert!(i.faces.is_none() && i.celebrities.is_none() && i.moderation.is_none());
    assert_eq!(i.hls_segment_boundaries, Some(vec![0.0, 5.0, 10.0]));
    // And scoring works on it.
    assert!(!score(&i, &Policy::Reference, 3).unwrap().slots.is_empty());
}

#[test]
fn from_files_errors_name_the_file_and_problem() {
    let good = track_silent_at(10, &[]).to_csv();
    let truncated: String = good.lines().take(4).collect::<Vec<_>>().join("\n");
    let err = ScoringInputs::from_files(layout(&[
        ("loudness/track-1.csv", good.clone()),
        ("loudness/track-2.csv", truncated),
    ]))
    .unwrap_err();
    assert_eq!(err.file(), "loudness/track-2.csv");
    let msg = err.to_string();
    assert!(msg.starts_with("loudness/track-2.csv: line 4:"), "{msg}");

    let err = ScoringInputs::from_files(layout(&[(
        "labels.json",
        r#"{"Labels":[{"Timestamp":"x"}]}"#.into(),
    )]))
    .unwrap_err();
    assert_eq!(err.file(), "labels.json");
    assert!(
        err.to_string()
            .starts_with("labels.json: invalid JSON for label detection:"),
        "{err}"
    );

    let err = ScoringInputs::from_files(layout(&[("faces.json", "{".into())])).unwrap_err();
    assert_eq!(err.file(), "faces.json");

    let err = ScoringInputs::from_files(layout(&[(
        "hls/index.m3u8",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv0.m3u8\n".into(),
    )]))
    .unwrap_err();
    assert!(
        err.to_string().contains("hls/v0.m3u8, which is missing"),
        "{err}"
    );

    let failing = |path: &str| -> Result<Option<Vec<u8>>, String> {
        if path == "segments.json" {
            Err("permission denied".into())
        } else {
            Ok(None)
        }
    };
    let err = ScoringInputs::from_files(failing).unwrap_err();
    assert_eq!(
        err.to_string(),
        "segments.json: cannot read: permission denied"
    );

    let bytes = |path: &str| -> Result<Option<Vec<u8>>, String> {
        Ok((path == "moderation.json").then(|| vec![0xff, 0xfe]))
    };
    assert!(matches!(
        ScoringInputs::from_files(bytes),
        Err(InputError::NotUtf8 { .. })
    ));
}

#[test]
fn from_files_caps_the_track_count() {
    let csv = track_silent_at(2, &[]).to_csv();
    let read = move |path: &str| -> Result<Option<Vec<u8>>, String> {
        Ok(path
            .starts_with("loudness/")
            .then(|| csv.clone().into_bytes()))
    };
    assert!(matches!(
        ScoringInputs::from_files(read),
        Err(InputError::TooManyTracks { .. })
    ));
}

// ---------- properties ----------

fn arb_inputs() -> impl Strategy<Value = ScoringInputs> {
    let rows =
        proptest::collection::vec(prop_oneof![Just(-70.0), Just(-20.0), -80.0f64..0.0], 0..80);
    let shots = proptest::collection::vec(0u64..120_000, 0..25);
    let blacks = proptest::collection::vec((0u64..120_000, 0u64..3_000), 0..6);
    let credits = proptest::collection::vec(0u64..120_000, 0..2);
    let label_items = proptest::collection::vec((0i64..120_000, 0usize..4, 50.0f64..100.0), 0..30);
    let step = prop_oneof![Just(0.1), Just(0.25), Just(1.0), Just(1.5)];
    (
        rows,
        step,
        shots,
        blacks,
        credits,
        label_items,
        60_000u64..120_000,
        any::<bool>(),
    )
        .prop_map(
            |(levels, step, shots, blacks, credits, mut items, duration, two_tracks)| {
                let mut shots = shots;
                shots.sort_unstable();
                let mut segs: Vec<Segment> = shots.into_iter().map(seg_shot).collect();
                segs.extend(
                    blacks
                        .into_iter()
                        .map(|(s, d)| seg_cue("BlackFrames", s, s + d)),
                );
                segs.extend(
                    credits
                        .into_iter()
                        .map(|s| seg_cue("EndCredits", s, s + 1000)),
                );
                items.sort_by_key(|(ts, _, _)| *ts);
                let names = ["Car", "Tree", "Sea", "Dog"];
                let label_items: Vec<(i64, &str, f64)> =
                    items.iter().map(|&(ts, n, c)| (ts, names[n], c)).collect();
                let levels: Vec<(f64, f64)> = levels
                    .iter()
                    .enumerate()
                    .map(|(k, &s)| (k as f64 * step, s))
                    .collect();
                let mut loudness = vec![track(&levels, -10.0)];
                if two_tracks {
                    let shifted: Vec<(f64, f64)> = levels
                        .iter()
                        .map(|&(t, s)| (t, if s < -50.0 { s } else { -60.0 }))
                        .collect();
                    loudness.push(track(&shifted, -12.0));
                }
                let mut i = inputs(loudness, segments(duration, segs));
                i.labels = Some(labels(&label_items));
                i
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn scores_stay_in_unit_interval(i in arb_inputs(), n in 0usize..6) {
        for policy in [Policy::Reference, Policy::default()] {
            let out = score(&i, &policy, n).unwrap();
            for s in out.slots.iter().chain(&out.breaks) {
                prop_assert!((0.0..=1.0).contains(&s.score), "{:?} score {}", policy.name(), s.score);
                prop_assert!(!s.reasons.is_empty());
            }
            prop_assert!(out.breaks.len() <= n);
        }
    }

    #[test]
    fn reference_slots_are_at_least_the_merge_distance_apart(i in arb_inputs()) {
        let out = score(&i, &Policy::Reference, 3).unwrap();
        for w in out.slots.windows(2) {
            prop_assert!(w[1].timestamp - w[0].timestamp >= MERGE_DISTANCE_SECONDS, "{} then {}", w[0].timestamp, w[1].timestamp);
        }
        // Breaks come out in ascending score order.
        for w in out.breaks.windows(2) {
            prop_assert!(w[0].score <= w[1].score);
        }
    }

    #[test]
    fn default_slots_and_breaks_are_spaced_and_ordered(i in arb_inputs(), spacing in 0.0f64..40.0) {
        let c = DefaultPolicyConfig { min_spacing_seconds: spacing, ..DefaultPolicyConfig::default() };
        let out = score(&i, &Policy::Default(c.clone()), 4).unwrap();
        for w in out.slots.windows(2) {
            prop_assert!(w[1].timestamp - w[0].timestamp >= c.merge_distance_seconds);
        }
        let duration = out.duration.unwrap();
        for w in out.breaks.windows(2) {
            prop_assert!(w[1].timestamp - w[0].timestamp >= spacing);
            prop_assert!(w[1].timestamp > w[0].timestamp);
        }
        for b in &out.breaks {
            prop_assert!(b.timestamp >= c.lead_in_seconds && b.timestamp <= duration - c.lead_out_seconds);
        }
        // Deterministic.
        prop_assert_eq!(score(&i, &Policy::Default(c), 4).unwrap(), out);
    }

    #[test]
    fn policies_agree_on_candidate_extraction(i in arb_inputs()) {
        let c = DefaultPolicyConfig {
            silence_tracks: SilenceTracks::Programme,
            min_silence_seconds: 0.0,
            ..DefaultPolicyConfig::default()
        };
        let reference = reference_candidates(&i);
        let default = default_candidates(&i, &c);
        let of = |cands: &[Candidate], r: Reason| -> Vec<f64> {
            let mut v: Vec<f64> = cands.iter().filter(|c| c.reason == r).map(|c| c.timestamp).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        // Shots and end credits: the same times.
        prop_assert_eq!(of(&reference, Reason::ShotChange), of(&default, Reason::ShotChange));
        prop_assert_eq!(of(&reference, Reason::EndCredits), of(&default, Reason::EndCredits));
        // Black frames: the same runs; the reference takes their start, the default their middle.
        let cues = visual_cues(i.segments.as_ref());
        let mut starts: Vec<f64> = cues.black_frames.iter().map(|b| b.start).collect();
        let mut middles: Vec<f64> = cues.black_frames.iter().map(|b| b.middle()).collect();
        starts.sort_by(f64::total_cmp);
        middles.sort_by(f64::total_cmp);
        prop_assert_eq!(of(&reference, Reason::BlackFrame), starts);
        prop_assert_eq!(of(&default, Reason::BlackFrame), middles);
        // Silence: the same runs of track 1. Every reference silence start lies in exactly one
        // default interval, and every default interval reaching past 3 s holds exactly one.
        let intervals = default_silence_intervals(&i, &c);
        let starts = of(&reference, Reason::Silence);
        // (The default places each interval where the sound stopped and came back, a window
        // before a quiet row's time, and merges runs whose placed intervals touch.)
        for &s in &starts {
            prop_assert_eq!(intervals.iter().filter(|iv| iv.start <= s && s <= iv.end).count(), 1);
        }
    }
}

// ---------- content analyses in the default policy ----------

fn bare_face(ts: i64, confidence: f64) -> FaceDetection {
    FaceDetection {
        timestamp: ts,
        face: FaceDetail {
            confidence: Some(confidence),
            ..FaceDetail::default()
        },
        ..FaceDetection::default()
    }
}

fn speech(intervals: &[(u32, i64, i64)]) -> crate::speech::SpeechResults {
    crate::speech::SpeechResults {
        job_status: Some("SUCCEEDED".into()),
        speech: intervals
            .iter()
            .map(|&(track, a, b)| crate::speech::SpeechInterval {
                track,
                start_timestamp: a,
                end_timestamp: b,
                confidence: 90.0,
            })
            .collect(),
        ..Default::default()
    }
}

fn moderation(items: &[(i64, &str, f64)]) -> crate::rekognition::ModerationResults {
    crate::rekognition::ModerationResults {
        moderation_labels: items
            .iter()
            .map(|&(ts, n, c)| ContentModerationDetection {
                timestamp: ts,
                moderation_label: named(n, c),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn default_context_counts_faces_without_emotions_the_reference_does_not() {
    let mut i = inputs(vec![], segments(60_000, vec![seg_shot(30_000)]));
    i.faces = Some(crate::rekognition::FaceResults {
        faces: vec![
            bare_face(29_000, 97.0),
            bare_face(29_500, 99.0),
            bare_face(31_000, 60.0),
        ],
        ..Default::default()
    });
    let reference = score(&i, &Policy::Reference, 3).unwrap();
    assert!(reference.slots[0].context.faces.is_empty());
    let out = default_out(&i, cfg(), 3);
    let faces = &out.slots[0].context.faces;
    // One "Face" entry per side at its best confidence; the 60 % face is under the filter.
    assert_eq!(
        faces.before,
        vec![ContextEntry {
            name: FACE_ENTRY.into(),
            confidence: 99.0
        }]
    );
    assert!(faces.after.is_empty());
}

#[test]
fn default_context_counts_label_parents() {
    let mut i = inputs(vec![], segments(60_000, vec![seg_shot(30_000)]));
    i.labels = Some(
        serde_json::from_value(json!({"Labels": [
            {"Timestamp": 29_000, "Label": {"Name": "Tabby Cat", "Confidence": 91.0,
                "Parents": [{"Name": "Cat"}, {"Name": "Animal"}, {"Name": "Pet"}]}},
            {"Timestamp": 31_000, "Label": {"Name": "Tiger Cat", "Confidence": 88.0,
                "Parents": [{"Name": "Cat"}, {"Name": "Animal"}, {"Name": "Pet"}]}},
        ]}))
        .unwrap(),
    );
    let out = default_out(&i, cfg(), 3);
    let labels = &out.slots[0].context.labels;
    assert_eq!(
        labels.before_names().collect::<Vec<_>>(),
        ["Tabby Cat", "Cat", "Animal", "Pet"]
    );
    assert_eq!(labels.before[1].confidence, 91.0);
    // 3 of 5 names in common: the scene barely changes.
    let w = ReasonWeights::default();
    assert!(close(
        out.slots[0].score,
        disjunction(w.shot_change, 0.3 * (1.0 - 3.0 / 5.0))
    ));
    // The reference sees names only.
    let reference = score(&i, &Policy::Reference, 3).unwrap();
    assert_eq!(
        reference.slots[0]
            .context
            .labels
            .before_names()
            .collect::<Vec<_>>(),
        ["Tabby Cat"]
    );
}

/// The default policy with breaks allowed 10 s apart, speech a soft penalty.
fn spaced() -> DefaultPolicyConfig {
    DefaultPolicyConfig {
        min_spacing_seconds: 10.0,
        speech_penalty: 0.5,
        ..DefaultPolicyConfig::default()
    }
}

#[test]
fn default_penalises_a_slot_inside_speech() {
    // Black runs (0.7) at 20 s and 40 s; someone speaks 38-45 s on track 2.
    let mut i = inputs(
        vec![],
        segments(
            60_000,
            vec![
                seg_cue("BlackFrames", 20_000, 20_000),
                seg_cue("BlackFrames", 40_000, 40_000),
            ],
        ),
    );
    let without = default_out(&i, spaced(), 3);
    assert_eq!(
        without
            .breaks
            .iter()
            .map(|s| s.timestamp)
            .collect::<Vec<_>>(),
        vec![20.0, 40.0]
    );
    i.speech = Some(speech(&[(1, 5_000, 20_000), (2, 38_000, 45_000)]));
    let out = default_out(&i, spaced(), 3);
    let w = ReasonWeights::default();
    // 20 s is where speech ends, not inside it.
    assert_eq!(out.slots[0].score, w.black_frame);
    assert!(out.slots[0].notes.is_empty());
    assert!(close(out.slots[1].score, w.black_frame * 0.5));
    assert_eq!(
        out.slots[1].notes,
        vec![SlotNote::InsideSpeech {
            track: 2,
            start: 38.0,
            end: 45.0,
            penalty: 0.5
        }]
    );
    assert!(out.slots[1].notes[0]
        .to_string()
        .contains("inside speech on track 2"));
    // 0.35 is under the 0.5 floor: no break mid-sentence.
    assert_eq!(
        out.breaks.iter().map(|s| s.timestamp).collect::<Vec<_>>(),
        vec![20.0]
    );
    // The weight is a knob; 0 turns it off.
    let off = default_out(
        &i,
        DefaultPolicyConfig {
            speech_penalty: 0.0,
            ..spaced()
        },
        3,
    );
    // Same slots and breaks; only the explanations say whether anyone speaks.
    let plain = |o: &ScoringOutput| {
        let f = |v: &[Slot]| -> Vec<(f64, f64, Vec<SlotNote>)> {
            v.iter()
                .map(|s| (s.timestamp, s.score, s.notes.clone()))
                .collect()
        };
        (f(&o.slots), f(&o.breaks))
    };
    assert_eq!(plain(&off), plain(&without));
    // The reference policy does not read speech at all.
    let mut no_speech = i.clone();
    no_speech.speech = None;
    assert_eq!(
        score(&i, &Policy::Reference, 3).unwrap(),
        score(&no_speech, &Policy::Reference, 3).unwrap()
    );
}

#[test]
fn default_refuses_a_break_next_to_a_moderation_label() {
    // Black runs (0.7) at 20 s and 40 s of a 60 s programme.
    let mut i = inputs(
        vec![],
        segments(
            60_000,
            vec![
                seg_cue("BlackFrames", 20_000, 20_000),
                seg_cue("BlackFrames", 40_000, 40_000),
            ],
        ),
    );
    i.moderation = Some(moderation(&[
        (12_000, "Violence", 45.0),
        (47_000, "Smoking", 60.0),
        (48_000, "Explicit Nudity", 95.0),
    ]));
    let out = default_out(&i, spaced(), 3);
    // 20 s: only a 45 % label, under the 50 % default. 40 s: two labels within 10 s; the
    // nearer one refuses it.
    assert!(out.slots[0].notes.is_empty());
    assert!(out.slots[1].refused());
    match &out.slots[1].notes[..] {
        [SlotNote::NearModeration {
            name,
            confidence,
            at,
            distance,
            window,
        }] => {
            assert_eq!(
                (name.as_str(), *confidence, *at, *distance, *window),
                ("Smoking", 60.0, 47.0, 7.0, 10.0)
            );
        }
        other => panic!("{other:?}"),
    }
    let why = out.slots[1].notes[0].to_string();
    assert!(
        why.contains("brand safety") && why.contains("\"Smoking\""),
        "{why}"
    );
    // The score is kept (the slot is good, the neighbourhood is not).
    assert_eq!(out.slots[1].score, ReasonWeights::default().black_frame);
    assert_eq!(
        out.breaks.iter().map(|s| s.timestamp).collect::<Vec<_>>(),
        vec![20.0]
    );
    // Confidence and window are knobs, and the check can be turned off.
    let strict = |safety: BrandSafety| {
        default_out(
            &i,
            DefaultPolicyConfig {
                brand_safety: safety,
                ..spaced()
            },
            3,
        )
        .breaks
        .iter()
        .map(|s| s.timestamp)
        .collect::<Vec<_>>()
    };
    let base = BrandSafety::default();
    assert_eq!(
        strict(BrandSafety {
            min_confidence: 40.0,
            ..base.clone()
        }),
        Vec::<f64>::new()
    );
    assert_eq!(
        strict(BrandSafety {
            window_seconds: 6.0,
            ..base.clone()
        }),
        vec![20.0, 40.0]
    );
    assert_eq!(
        strict(BrandSafety {
            enabled: false,
            ..base
        }),
        vec![20.0, 40.0]
    );
}

#[test]
fn brand_safety_measures_from_where_the_break_would_sit() {
    // A black run at 20.4 s snaps to the 6 s segment boundary at 18 s; a label at 12.5 s is
    // 7.9 s from the slot but 5.5 s from the break.
    let mut i = inputs(
        vec![],
        segments(60_000, vec![seg_cue("BlackFrames", 20_400, 20_400)]),
    );
    i.hls_segment_boundaries = Some((0..=10).map(|k| k as f64 * 6.0).collect());
    i.moderation = Some(moderation(&[(12_500, "Violence", 90.0)]));
    let safety = BrandSafety {
        window_seconds: 6.0,
        ..BrandSafety::default()
    };
    let c = DefaultPolicyConfig {
        brand_safety: safety,
        ..spaced()
    };
    let out = default_out(&i, c.clone(), 3);
    assert!(out.slots[0].refused(), "{:?}", out.slots[0].notes);
    assert!(out.breaks.is_empty());
    let no_snap = default_out(
        &i,
        DefaultPolicyConfig {
            snap_to_hls: false,
            ..c
        },
        3,
    );
    assert_eq!(no_snap.breaks.len(), 1);
}

#[test]
fn content_knobs_are_validated_and_read_from_json() {
    let c: DefaultPolicyConfig = serde_json::from_str(
        r#"{"speech_penalty": 0.8, "brand_safety": {"min_confidence": 70, "window_seconds": 4}}"#,
    )
    .unwrap();
    assert_eq!(c.speech_penalty, 0.8);
    assert_eq!(c.brand_safety.min_confidence, 70.0);
    assert_eq!(c.brand_safety.window_seconds, 4.0);
    assert!(c.brand_safety.enabled);
    assert!(c.validate().is_ok());
    assert!(
        serde_json::from_str::<DefaultPolicyConfig>(r#"{"brand_safety": {"confidence": 70}}"#)
            .is_err()
    );
    for (bad, field) in [
        (
            DefaultPolicyConfig {
                speech_penalty: 1.5,
                ..cfg()
            },
            "speech_penalty",
        ),
        (
            DefaultPolicyConfig {
                speech_penalty: f64::NAN,
                ..cfg()
            },
            "speech_penalty",
        ),
        (
            DefaultPolicyConfig {
                brand_safety: BrandSafety {
                    min_confidence: 101.0,
                    ..BrandSafety::default()
                },
                ..cfg()
            },
            "brand_safety.min_confidence",
        ),
        (
            DefaultPolicyConfig {
                brand_safety: BrandSafety {
                    window_seconds: -1.0,
                    ..BrandSafety::default()
                },
                ..cfg()
            },
            "brand_safety.window_seconds",
        ),
    ] {
        match bad.validate() {
            Err(ScoringError::Config(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn from_files_reads_speech_and_missing_speech_is_unknown() {
    let seg = serde_json::to_string(&segments(10_000, vec![seg_shot(5_000)])).unwrap();
    let i = ScoringInputs::from_files(layout(&[("segments.json", seg.clone())])).unwrap();
    assert!(i.speech.is_none());
    let i = ScoringInputs::from_files(layout(&[
        ("segments.json", seg.clone()),
        (
            "speech.json",
            r#"{"JobStatus":"SUCCEEDED","Speech":[{"Track":1,"StartTimestamp":4000,"EndTimestamp":6000,"Confidence":88.0}]}"#.into(),
        ),
    ]))
    .unwrap();
    assert_eq!(i.speech.as_ref().unwrap().speech[0].end_seconds(), 6.0);
    let err = ScoringInputs::from_files(layout(&[
        ("segments.json", seg),
        ("speech.json", r#"{"Speech":[{"Track":"one"}]}"#.into()),
    ]))
    .unwrap_err();
    assert_eq!(err.file(), "speech.json");
    assert!(err.to_string().contains("speech activity"), "{err}");
}

/// Inputs, the moderation labels (ms, confidence) and the speech intervals (ms) added to them.
type ContentCase = (ScoringInputs, Vec<(i64, f64)>, Vec<(i64, i64)>);

fn arb_content() -> impl Strategy<Value = ContentCase> {
    let flagged = proptest::collection::vec((0i64..120_000, 0.0f64..100.0), 0..4);
    let spoken = proptest::collection::vec((0i64..120_000, 0i64..8_000), 0..5);
    (arb_inputs(), flagged, spoken).prop_map(|(mut i, mut m, s)| {
        m.sort_by_key(|x| x.0);
        let items: Vec<(i64, &str, f64)> = m.iter().map(|&(ts, c)| (ts, "Violence", c)).collect();
        i.moderation = Some(moderation(&items));
        let spans: Vec<(i64, i64)> = s.iter().map(|&(a, d)| (a, a + d)).collect();
        let tracks: Vec<(u32, i64, i64)> = spans.iter().map(|&(a, b)| (1, a, b)).collect();
        i.speech = Some(speech(&tracks));
        (i, m, spans)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_break_within_the_brand_safety_window(
        (i, labels, _) in arb_content(),
        min_confidence in 0.0f64..100.0,
        window in 0.0f64..20.0,
    ) {
        let c = DefaultPolicyConfig {
            min_break_score: 0.0,
            brand_safety: BrandSafety { enabled: true, min_confidence, window_seconds: window },
            ..DefaultPolicyConfig::default()
        };
        let out = score(&i, &Policy::Default(c), 5).unwrap();
        for b in &out.breaks {
            for &(ts, conf) in &labels {
                let at = ts as f64 / 1000.0;
                prop_assert!(
                    conf < min_confidence || (at - b.timestamp).abs() > window,
                    "break at {} next to a {conf} % label at {at}", b.timestamp
                );
            }
        }
        // Every refused slot says which label refused it.
        for s in &out.slots {
            for n in &s.notes {
                if let SlotNote::NearModeration { confidence, distance, .. } = n {
                    prop_assert!(*confidence >= min_confidence && *distance <= window);
                }
            }
        }
    }

    #[test]
    fn speech_only_ever_lowers_scores_by_the_penalty(
        (i, _, spans) in arb_content(),
        penalty in 0.0f64..=1.0,
    ) {
        // Without scenes: speech also joins shots into scenes, which moves scores otherwise.
        let c = DefaultPolicyConfig { speech_penalty: penalty, use_scenes: false, ..DefaultPolicyConfig::default() };
        let mut silent = i.clone();
        silent.speech = None;
        let with = score(&i, &Policy::Default(c.clone()), 3).unwrap();
        let without = score(&silent, &Policy::Default(c), 3).unwrap();
        prop_assert_eq!(with.slots.len(), without.slots.len());
        for (a, b) in with.slots.iter().zip(&without.slots) {
            prop_assert_eq!(a.timestamp, b.timestamp);
            let t = a.timestamp;
            let inside = spans.iter().any(|&(s, e)| (s as f64 / 1000.0) < t && t < (e as f64 / 1000.0));
            if inside && penalty > 0.0 {
                prop_assert!(close(a.score, b.score * (1.0 - penalty)), "{} vs {}", a.score, b.score);
                let noted = a.notes.iter().any(|n| matches!(n, SlotNote::InsideSpeech { .. }));
                prop_assert!(noted);
            } else {
                prop_assert_eq!(a.score, b.score);
            }
        }
        // The reference policy ignores speech and the new knobs entirely.
        prop_assert_eq!(
            score(&i, &Policy::Reference, 3).unwrap(),
            score(&silent, &Policy::Reference, 3).unwrap()
        );
    }
}

mod v2;
