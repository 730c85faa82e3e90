//! The default policy with scenes, speech, credits, fades and a schedule, on generated
//! programmes whose scene boundaries are known exactly.

use super::*;
use crate::scenes::KEY_FRAME_FIELD;

/// A shot whose key frames look like `look` (a signature, as the local engine writes it).
fn shot(start_ms: u64, end_ms: u64, look: [f64; 3]) -> Segment {
    let mut s = Segment {
        segment_type: "SHOT".into(),
        start_timestamp_millis: start_ms,
        end_timestamp_millis: end_ms,
        ..Segment::default()
    };
    s.extra
        .insert(KEY_FRAME_FIELD.into(), json!({ "Signature": look }));
    s
}

const FACE_A: [f64; 3] = [40.0, 60.0, 128.0];
const FACE_B: [f64; 3] = [40.0, 160.0, 128.0];
const STREET: [f64; 3] = [150.0, 90.0, 110.0];
const CAR: [f64; 3] = [200.0, 30.0, 140.0];
const BLACK: [f64; 3] = [16.0, 128.0, 128.0];

fn times(v: &[Slot]) -> Vec<f64> {
    v.iter().map(|s| s.timestamp).collect()
}

/// A dialogue (two faces, cut back and forth) whose sentence runs across the cut at 10 s and
/// whose speaker pauses (silence) at 14.5-15.5 s without a cut; then, after a pause in speech,
/// a real change of place at 30 s. The break goes to 30 s; the cut inside the sentence and the
/// quiet moment inside the scene are refused, each saying why.
#[test]
fn dialogue_break_goes_to_the_scene_change_not_into_the_sentence() {
    let segs = vec![
        shot(0, 10_000, FACE_A),
        shot(10_000, 20_000, FACE_B),
        shot(20_000, 30_000, FACE_A),
        shot(30_000, 45_000, STREET),
        shot(45_000, 60_000, CAR),
    ];
    let mut i = inputs(
        vec![metered(60, &[(14.5, 15.5), (29.4, 30.6)])],
        segments(60_000, segs),
    );
    i.speech = Some(speech(&[
        (1, 6_000, 14_500),
        (1, 15_500, 29_300),
        (1, 31_000, 44_000),
    ]));
    let out = default_out(&i, DefaultPolicyConfig::default(), 3);
    assert_eq!(times(&out.breaks), vec![30.0], "{:#?}", out.slots);
    let b = &out.breaks[0];
    assert_eq!(
        b.reasons,
        vec![Reason::Silence, Reason::ShotChange, Reason::SceneChange]
    );
    let line = b.explanation.as_deref().unwrap();
    assert!(
        line.starts_with("scene change + silence + cut at 00:00:30.000, nobody speaking"),
        "{line}"
    );
    let at = |t: f64| out.slots.iter().find(|s| s.timestamp == t).unwrap();
    // The cut at 10 s is inside the sentence.
    assert!(at(10.0).refused());
    assert!(at(10.0)
        .explanation
        .as_deref()
        .unwrap()
        .contains("someone speaks on track 1 (6.000-14.500 s)"));
    // The quiet moment at 15 s is inside the dialogue scene.
    assert_eq!(
        at(15.0).notes,
        vec![SlotNote::InsideScene {
            start: 0.0,
            end: 30.0
        }]
    );
    // The cut at 45 s to another place is a scene change too, but someone speaks until 44 s and
    // it has no silence: it does not qualify over 30 s when only one break is wanted.
    assert!(at(45.0).reasons.contains(&Reason::SceneChange));
    let one = default_out(&i, DefaultPolicyConfig::default(), 1);
    assert_eq!(times(&one.breaks), vec![30.0]);
    // Without speech results, the sentence is unknown: the cut at 10 s is still no scene change
    // (the faces return at 20 s), so the break stays at 30 s.
    let mut unknown = i.clone();
    unknown.speech = None;
    let out = default_out(&unknown, DefaultPolicyConfig::default(), 1);
    assert_eq!(times(&out.breaks), vec![30.0]);
}

/// Act one fades to black (28-30 s), black 30-32 s, act two fades in (32-34 s); a dissolve at
/// 45-46 s. The fades overlap the black by a few frames, as the detector finds them (a fade's
/// last frames are as dark as black). The break lands in the black; nothing inside a fade
/// outside the black, or in the dissolve.
#[test]
fn fade_to_black_between_acts_breaks_in_the_black() {
    let segs = vec![
        seg_cue("FadeOut", 28_000, 30_160),
        seg_cue("BlackFrames", 30_000, 32_000),
        seg_cue("FadeIn", 31_960, 34_000),
        seg_cue("Dissolve", 45_000, 46_000),
        shot(0, 15_000, STREET),
        shot(15_000, 30_000, FACE_A),
        shot(30_000, 32_000, BLACK),
        shot(32_000, 45_500, CAR),
        shot(45_500, 60_000, FACE_B),
    ];
    let mut i = inputs(vec![metered(60, &[(29.5, 32.5)])], segments(60_000, segs));
    i.speech = Some(speech(&[(1, 2_000, 29_000), (1, 34_000, 44_000)]));
    let out = default_out(&i, DefaultPolicyConfig::default(), 3);
    assert!(!out.breaks.is_empty());
    for b in &out.breaks {
        assert!(
            (30.0..=32.0).contains(&b.timestamp),
            "break at {} outside the black: {:#?}",
            b.timestamp,
            out.breaks
        );
        assert!(
            b.reasons.contains(&Reason::BlackFrame) && b.reasons.contains(&Reason::SceneChange)
        );
    }
    let dissolve = out.slots.iter().find(|s| s.timestamp == 45.5).unwrap();
    assert!(
        matches!(
            dissolve.notes.as_slice(),
            [SlotNote::InsideTransition { transition, .. }] if transition == "Dissolve"
        ),
        "{:?}",
        dissolve.notes
    );
}

/// Shots that leave the black out (the cut after it starts the scene): the black before the cut
/// is part of the scene change, its middle as acceptable as the cut that ends it.
#[test]
fn black_left_out_of_the_shots_belongs_to_the_scene_change() {
    let segs = vec![
        seg_cue("BlackFrames", 10_000, 12_000),
        shot(0, 10_000, STREET),
        shot(12_000, 30_000, CAR),
    ];
    let i = inputs(vec![metered(30, &[(10.0, 12.0)])], segments(30_000, segs));
    let out = default_out(&i, DefaultPolicyConfig::default(), 1);
    assert_eq!(times(&out.breaks), vec![12.0]);
    let middle = out.slots.iter().find(|s| s.timestamp == 11.0).unwrap();
    assert!(
        !middle.refused() && middle.reasons.contains(&Reason::SceneChange),
        "{middle:?}"
    );
    // Without the cut's shot change, the middle of the black is the break.
    let c = DefaultPolicyConfig {
        weights: ReasonWeights {
            shot_change: 0.0,
            ..ReasonWeights::default()
        },
        ..DefaultPolicyConfig::default()
    };
    assert_eq!(times(&default_out(&i, c, 1).breaks), vec![11.0]);
}

/// The end credits' start is a post-roll; nothing inside them.
#[test]
fn credits_start_is_allowed_nothing_inside() {
    let segs = vec![
        seg_cue("EndCredits", 50_000, 68_000),
        shot(0, 25_000, STREET),
        shot(25_000, 50_000, CAR),
        shot(50_000, 58_000, BLACK),
        shot(58_000, 70_000, FACE_A),
    ];
    let i = inputs(vec![], segments(70_000, segs));
    let c = DefaultPolicyConfig {
        min_spacing_seconds: 5.0,
        min_break_score: 0.0,
        ..DefaultPolicyConfig::default()
    };
    let out = default_out(&i, c, 5);
    assert_eq!(times(&out.breaks), vec![25.0, 50.0]);
    let inside = out.slots.iter().find(|s| s.timestamp == 58.0).unwrap();
    assert_eq!(
        inside.notes,
        vec![SlotNote::InsideCredits {
            start: 50.0,
            end: 68.0
        }]
    );
}

/// Scene boundaries of a generated 30-minute programme and its results: scenes of 50-110 s,
/// each cutting between two looks every 4-9 s (a cut to a third look inside some scenes, spoken
/// across), speech throughout with a pause at each scene change, a silence at each scene change
/// and a quiet moment mid-scene, every third change through a second of black.
struct Programme {
    inputs: ScoringInputs,
    boundaries: Vec<f64>,
}

fn programme_30min() -> Programme {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |lo: u64, hi: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + seed % (hi - lo + 1)
    };
    let end_ms = 1_800_000u64;
    let mut segs = Vec::new();
    let mut speech_iv = Vec::new();
    let mut silences = Vec::new();
    let mut boundaries = Vec::new();
    let mut t = 0u64;
    let mut k = 0u64;
    while t < end_ms {
        let len = next(50, 110) * 1000;
        let scene_end = (t + len).min(end_ms);
        if end_ms - scene_end < 50_000 {
            // No short last scene.
        }
        let base = (k * 23 % 230) as f64;
        let looks = [
            [base, 40.0, 128.0],
            [base, 140.0, 128.0],
            [base, 240.0, 60.0],
        ];
        let mut s = t;
        if k > 0 {
            boundaries.push(t as f64 / 1000.0);
            silences.push((t as f64 / 1000.0 - 0.5, t as f64 / 1000.0 + 0.5));
            if k.is_multiple_of(3) {
                segs.push(seg_cue("BlackFrames", t, t + 1000));
                segs.push(shot(t, t + 1000, BLACK));
                s = t + 1000;
            }
        }
        let mut n = 0;
        while s < scene_end {
            let e = (s + next(4, 9) * 1000).min(scene_end);
            // Now and then a cut to a third look, which the sentence runs across.
            let look = if n == 3 && !k.is_multiple_of(2) {
                2
            } else {
                n % 2
            };
            segs.push(shot(s, e, looks[look]));
            s = e;
            n += 1;
        }
        // Speech from 0.6 s after the change to 0.7 s before the next, in sentences with short
        // breaths; a quiet moment of 1.2 s in the middle.
        let quiet = t + len / 2;
        silences.push((quiet as f64 / 1000.0, quiet as f64 / 1000.0 + 1.2));
        let (mut a, stop) = (t + 600, scene_end.saturating_sub(700));
        while a < stop {
            let mut b = (a + next(3000, 8000)).min(stop);
            if a < quiet && b > quiet {
                b = quiet;
            }
            if b > a {
                speech_iv.push((1, a as i64, b as i64));
            }
            a = if b == quiet { quiet + 1200 } else { b + 300 };
        }
        t = scene_end;
        k += 1;
    }
    let mut inputs = inputs(vec![metered(1800, &silences)], segments(end_ms, segs));
    inputs.speech = Some(speech(&speech_iv));
    Programme { inputs, boundaries }
}

/// Precision and recall of found boundaries against the truth, to within `tol` seconds.
fn precision_recall(found: &[f64], truth: &[f64], tol: f64) -> (f64, f64) {
    let hit = |x: &f64, ys: &[f64]| ys.iter().any(|y| (x - y).abs() <= tol);
    let tp = found.iter().filter(|f| hit(f, truth)).count() as f64;
    let recalled = truth.iter().filter(|t| hit(t, found)).count() as f64;
    (
        tp / found.len().max(1) as f64,
        recalled / truth.len().max(1) as f64,
    )
}

#[test]
fn thirty_minutes_one_break_every_8_minutes_each_at_a_scene_boundary_in_its_window() {
    let p = programme_30min();
    let scenes = crate::scenes::of_inputs(&p.inputs, &crate::scenes::SceneOptions::default());
    let found: Vec<f64> = scenes.scenes[1..]
        .iter()
        .map(|s| s.start_timestamp as f64 / 1000.0)
        .collect();
    let (precision, recall) = precision_recall(&found, &p.boundaries, 0.05);
    println!(
        "scene boundaries (results level): {} true, {} found, precision {precision:.2}, recall {recall:.2}",
        p.boundaries.len(),
        found.len()
    );
    assert_eq!(
        (precision, recall),
        (1.0, 1.0),
        "{found:?}\n{:?}",
        p.boundaries
    );

    let cfg = DefaultPolicyConfig {
        schedule: Some(Schedule::parse_spec("every=480,deviation=60,duration=90").unwrap()),
        ..DefaultPolicyConfig::default()
    };
    let out = default_out(&p.inputs, cfg, 3);
    let report = out.schedule.as_ref().unwrap();
    assert_eq!(report.break_seconds, Some(90.0));
    let targets: Vec<f64> = report.targets.iter().map(|t| t.target).collect();
    assert_eq!(targets, vec![480.0, 960.0, 1440.0]);
    assert_eq!(out.breaks.len(), 3);
    let sp = p.inputs.speech.as_ref().unwrap();
    for t in &report.targets {
        let served = t
            .served_by
            .as_ref()
            .unwrap_or_else(|| panic!("target {} unserved: {:?}", t.target, t.unserved));
        let b = &out.breaks[served.break_index];
        assert_eq!(b.timestamp, served.timestamp);
        assert!(served.offset.abs() <= 60.0);
        // At a true scene boundary (or in the black that starts it).
        assert!(
            p.boundaries
                .iter()
                .any(|&x| b.timestamp >= x - 0.05 && b.timestamp <= x + 1.0),
            "break {} is at no scene boundary",
            b.timestamp
        );
        assert!(sp.speaking_at(b.timestamp).is_none());
        assert!(b.explanation.as_deref().unwrap().contains("serves the"));
        println!(
            "target {:>6.1} s: break at {:>8.3} s ({:+.3} s), {}",
            t.target,
            b.timestamp,
            served.offset,
            b.explanation.as_deref().unwrap()
        );
    }
    // Every third change goes through black: the breaks prefer those inside their window.
}

#[test]
fn unserved_targets_say_why() {
    let p = programme_30min();
    // Inside a scene far from any boundary, with a narrow window; at the very end; two targets
    // 10 s apart with 30 s spacing.
    let first = p.boundaries[0];
    let mid_scene = (p.boundaries[0] + p.boundaries[1]) / 2.0;
    let cfg = DefaultPolicyConfig {
        schedule: Some(Schedule {
            targets: Targets::At(vec![first, first + 10.0, mid_scene, 1799.0]),
            max_deviation_seconds: 12.0,
            break_seconds: None,
            max_breaks_per_hour: None,
        }),
        ..DefaultPolicyConfig::default()
    };
    let out = default_out(&p.inputs, cfg, 3);
    let r = out.schedule.unwrap();
    assert!(r.targets[0].served_by.is_some());
    assert!(
        matches!(r.targets[1].unserved, Some(Unserved::Spacing { .. })),
        "{:?}",
        r.targets[1]
    );
    match &r.targets[2].unserved {
        Some(u @ Unserved::NoneAcceptable { why, .. }) => {
            assert!(why.iter().any(|w| w.contains("inside the scene")), "{u}");
        }
        Some(Unserved::NoBoundary) => {}
        other => panic!("{other:?}"),
    }
    // The last seconds: cuts inside a sentence; counted by kind.
    match &r.targets[3].unserved {
        Some(Unserved::NoneAcceptable { slots, why }) => {
            assert_eq!(
                why,
                &vec![format!("{slots} x refused: someone speaks on track 1")]
            );
        }
        other => panic!("{other:?}"),
    }
    // The hourly limit.
    let cfg = DefaultPolicyConfig {
        schedule: Some(Schedule {
            max_breaks_per_hour: Some(2),
            ..Schedule::parse_spec("every=480").unwrap()
        }),
        ..DefaultPolicyConfig::default()
    };
    let out = default_out(&p.inputs, cfg, 3);
    let r = out.schedule.unwrap();
    assert_eq!(r.served(), 2);
    assert!(matches!(
        r.targets[2].unserved,
        Some(Unserved::PerHour { limit: 2, .. })
    ));
    assert!(r.targets[2]
        .unserved
        .as_ref()
        .unwrap()
        .to_string()
        .contains("more than 2 breaks"));
}

/// The schedule and the new fields never reach the reference policy's output.
#[test]
fn reference_output_is_unchanged_by_scenes_and_schedule() {
    let p = programme_30min();
    let out = score(&p.inputs, &Policy::Reference, 3).unwrap();
    assert!(out.schedule.is_none());
    assert!(out.slots.iter().all(|s| s.explanation.is_none()
        && s.notes.is_empty()
        && !s.reasons.contains(&Reason::SceneChange)));
    let json = serde_json::to_string(&out).unwrap();
    assert!(!json.contains("explanation") && !json.contains("schedule"));
}

fn arb_programme() -> impl Strategy<Value = (ScoringInputs, f64, Option<Schedule>)> {
    let shots = proptest::collection::vec((1u64..20, 0usize..4), 1..30);
    let talk = proptest::collection::vec((0u64..300_000, 500u64..20_000), 0..12);
    let quiet = proptest::collection::vec((0u32..300, 1u32..4), 0..8);
    let fades = proptest::collection::vec((0u64..300_000, 200u64..3_000, 0usize..3), 0..4);
    let credits = proptest::option::of(100_000u64..300_000);
    let sched = proptest::option::of((30.0f64..200.0, 5.0f64..90.0, proptest::option::of(1u32..6)));
    (shots, talk, quiet, fades, credits, 0.0f64..60.0, sched).prop_map(
        |(shots, talk, quiet, fades, credits, spacing, sched)| {
            let looks = [FACE_A, FACE_B, STREET, CAR];
            let mut segs = Vec::new();
            let mut t = 0;
            for (len, look) in shots {
                let e = t + len * 5_000;
                segs.push(shot(t, e, looks[look]));
                t = e;
            }
            let end = t.max(60_000);
            let names = ["FadeOut", "FadeIn", "Dissolve"];
            for (s, d, k) in fades {
                segs.push(seg_cue(names[k], s, s + d));
            }
            if let Some(c) = credits.filter(|c| *c < end) {
                segs.push(seg_cue("EndCredits", c, end));
            }
            let silences: Vec<(f64, f64)> = quiet
                .iter()
                .map(|&(s, d)| (s as f64, (s + d) as f64))
                .collect();
            let mut i = inputs(
                vec![metered((end / 1000) as u32, &silences)],
                segments(end, segs),
            );
            let iv: Vec<(u32, i64, i64)> = talk
                .iter()
                .map(|&(s, d)| (1, s as i64, (s + d) as i64))
                .collect();
            i.speech = Some(speech(&iv));
            let sched = sched.map(|(every, dev, per_hour)| Schedule {
                targets: Targets::Every(schedule::Interval {
                    every_seconds: every,
                    from_seconds: None,
                }),
                max_deviation_seconds: dev,
                break_seconds: Some(90.0),
                max_breaks_per_hour: per_hour,
            });
            (i, spacing, sched)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn breaks_never_in_speech_credits_or_fades_ordered_and_spaced(
        (i, spacing, sched) in arb_programme(),
        n in 1usize..6,
    ) {
        let cfg = DefaultPolicyConfig {
            min_spacing_seconds: spacing,
            schedule: sched.clone(),
            ..DefaultPolicyConfig::default()
        };
        let out = score(&i, &Policy::Default(cfg), n).unwrap();
        let segs = &i.segments.as_ref().unwrap().segments;
        let spans = |kinds: &[&str]| -> Vec<(f64, f64)> {
            segs.iter()
                .filter(|s| s.cue_type().is_some_and(|c| kinds.contains(&c)))
                .map(|s| (s.start_timestamp_millis as f64 / 1000.0, s.end_timestamp_millis as f64 / 1000.0))
                .collect()
        };
        let credits = spans(&["EndCredits"]);
        let fades = spans(&["FadeOut", "FadeIn", "Dissolve"]);
        let blacks = spans(&["BlackFrames"]);
        let sp = i.speech.as_ref().unwrap();
        for b in &out.breaks {
            let t = b.timestamp;
            prop_assert!(sp.speaking_at(t).is_none(), "break at {} inside speech", t);
            prop_assert!(!credits.iter().any(|&(a, e)| a < t && t < e), "break at {} inside credits", t);
            let black = blacks.iter().any(|&(a, e)| a <= t && t <= e);
            prop_assert!(black || !fades.iter().any(|&(a, e)| a < t && t < e), "break at {} inside a fade", t);
            prop_assert!(b.reasons.contains(&Reason::SceneChange), "break at {} not at a scene change", t);
            prop_assert!(b.explanation.is_some());
        }
        for w in out.breaks.windows(2) {
            prop_assert!(w[1].timestamp > w[0].timestamp, "time order");
            prop_assert!(w[1].timestamp - w[0].timestamp >= spacing, "spacing");
        }
        match (&sched, &out.schedule) {
            (Some(s), Some(r)) => {
                prop_assert_eq!(r.served(), out.breaks.len());
                for t in &r.targets {
                    prop_assert!(t.served_by.is_some() != t.unserved.is_some());
                    if let Some(x) = &t.served_by {
                        prop_assert!((x.timestamp - t.target).abs() <= s.max_deviation_seconds + 1e-9);
                        prop_assert_eq!(out.breaks[x.break_index].timestamp, x.timestamp);
                    }
                }
                if let Some(limit) = s.max_breaks_per_hour {
                    for b in &out.breaks {
                        let hour = out.breaks.iter()
                            .filter(|c| c.timestamp >= b.timestamp && c.timestamp < b.timestamp + 3600.0)
                            .count();
                        prop_assert!(hour <= limit as usize);
                    }
                }
            }
            (None, None) => prop_assert!(out.breaks.len() <= n),
            _ => prop_assert!(false, "a schedule report exactly when scheduled"),
        }
    }
}
