//! The default policy: what a broadcaster wants from ad breaks.
//!
//! 1. Audio: silence *intervals* (not just where a quiet run starts) at least
//!    `min_silence_seconds` long. With `silence_tracks = all_active` (the default) every track that
//!    carries audio must be silent at once: a 5.1 mix with dialogue on the centre track is not
//!    silent because the fronts are. Tracks without audio are ignored; a programme with no audio
//!    offers no silence. `programme` uses track 1 only.
//! 2. Candidate points: the middle of each silence interval and of each black-frame run (a cut
//!    there leaves equal quiet/black on both sides), the start of each shot (the frame-exact cut)
//!    and of the end credits.
//! 3. Points closer than `merge_distance_seconds` to their neighbour form one slot (chained, so
//!    kept slots are always at least that far apart). The slot sits on its shot change if it has
//!    one, else end credits, else black middle, else silence middle. Its reasons are those of its
//!    points plus Silence / BlackFrame when it lies inside a silence interval / black run, so a
//!    shot change inside a silence is a `[Silence, ShotChange]` slot.
//!    Scenes: when the segments have shots (and `use_scenes`), shots are grouped into scenes
//!    (`crate::scenes`: key-frame signatures, speech across a cut, black barriers). A slot at a
//!    scene's first frame (or in the black that opens it) gains `SceneChange`, weighted by the
//!    boundary's confidence; every other slot is inside a scene and refused (`InsideScene`).
//!    Without shots (audio only), silence and black frames are the candidates, as before.
//! 4. Score: the probabilistic "or" of the reasons' weights (a lone shot change is a weak break,
//!    silence + black + scene change a strong one), then "or" `context_weight * label distance`
//!    when labels exist on both sides (a change of scene; a label's parents count as labels). A
//!    slot inside a speech interval (`speech.json`), at the slot or where its break would sit,
//!    is multiplied by `1 - speech_penalty`; the default 1 refuses it: a break there cuts
//!    someone off mid-sentence. Without `speech.json` nobody knows, and nothing is refused.
//!    A slot strictly inside the end credits (their start is a post-roll) or inside a fade or a
//!    dissolve is refused. Every slot carries a one-line `explanation`.
//!    No position penalty: hard guards instead.
//!    Brand safety: a slot within `brand_safety.window_seconds` of a moderation label of at least
//!    `brand_safety.min_confidence` (measured from where the break would sit, HLS snapping
//!    included) is never a break; its notes say which label refused it.
//! 5. Breaks: slots at least `lead_in_seconds` after the start and `lead_out_seconds` before the
//!    end, scoring at least `min_break_score`, taken best first (ties: earlier first) while at least
//!    `min_spacing_seconds` from every break already taken, up to N; returned in time order.
//!    When HLS segment boundaries are known (and `snap_to_hls`), each slot is moved to its nearest
//!    boundary (ties: the earlier) before the guards and spacing apply, so a break never splits a
//!    segment.
//! 6. With a `schedule`, breaks follow its targets instead of the best N (see `schedule.rs`):
//!    each target the best acceptable slot within its window, and the output says per target
//!    which break served it or why none could.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::candidates::{visual_cues, Candidate};
use super::context::{context_with, ContextExtras, ContextParams};
use super::schedule::{
    within_hourly_limit, Schedule, ScheduleReport, Served, TargetOutcome, Unserved,
};
use super::{
    checked_duration, disjunction, PolicyName, Reason, ScoringError, ScoringInputs, ScoringOutput,
    Slot, SlotNote,
};
use crate::loudness::{
    common_silence, silence_intervals as track_silences, LoudnessMeasure, SilenceInterval,
};
use crate::rekognition::{CUE_DISSOLVE, CUE_END_CREDITS, CUE_FADE_IN, CUE_FADE_OUT};
use crate::scenes::SceneOptions;

/// Which audio tracks must be silent for a silence candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceTracks {
    /// Every track whose Input Max Loudness is above the threshold, at the same time.
    #[default]
    AllActive,
    /// Track 1 only (when it carries audio).
    Programme,
}

/// Weight of each reason in [0, 1]; a slot's base score is their probabilistic "or".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReasonWeights {
    pub silence: f64,
    pub black_frame: f64,
    pub shot_change: f64,
    pub end_credits: f64,
    pub scene_change: f64,
}

impl Default for ReasonWeights {
    fn default() -> Self {
        Self {
            silence: 0.6,
            black_frame: 0.7,
            shot_change: 0.3,
            end_credits: 0.5,
            scene_change: 0.4,
        }
    }
}

impl ReasonWeights {
    pub fn of(&self, reason: Reason) -> f64 {
        match reason {
            Reason::Silence => self.silence,
            Reason::BlackFrame => self.black_frame,
            Reason::ShotChange => self.shot_change,
            Reason::EndCredits => self.end_credits,
            Reason::SceneChange => self.scene_change,
        }
    }
}

/// No break near unsafe content: advertisers do not want their ad next to what content
/// moderation flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrandSafety {
    /// Off: moderation labels never refuse a slot.
    pub enabled: bool,
    /// Moderation labels at or above this confidence (percent, 0-100) count.
    pub min_confidence: f64,
    /// A slot this close (seconds, either side) to such a label is refused.
    pub window_seconds: f64,
}

impl Default for BrandSafety {
    fn default() -> Self {
        Self {
            enabled: true,
            // Rekognition's own default MinConfidence for content moderation.
            min_confidence: 50.0,
            window_seconds: 10.0,
        }
    }
}

/// Every constant of the default policy. Deserializes from JSON with defaults for missing
/// fields (unknown fields are rejected, to catch typos).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefaultPolicyConfig {
    /// LUFS; below is silence, and a track whose Input Max Loudness is not above it has no audio.
    pub silence_threshold: f64,
    pub silence_measure: LoudnessMeasure,
    pub silence_tracks: SilenceTracks,
    /// Shortest silence interval that is a candidate, seconds.
    pub min_silence_seconds: f64,
    /// Candidate points closer than this to their neighbour form one slot, seconds.
    pub merge_distance_seconds: f64,
    /// Least distance between two chosen breaks, seconds.
    pub min_spacing_seconds: f64,
    /// No break in the first this many seconds.
    pub lead_in_seconds: f64,
    /// No break in the last this many seconds.
    pub lead_out_seconds: f64,
    /// Slots scoring less are never breaks (0.5: a lone shot change, 0.3, needs a change of
    /// scene in the labels to qualify; silence or black frames qualify on their own).
    pub min_break_score: f64,
    pub weights: ReasonWeights,
    /// How much a change of labels across the slot adds, in [0, 1].
    pub context_weight: f64,
    pub context_interval_seconds: f64,
    pub context_min_confidence: f64,
    /// Move breaks onto HLS segment boundaries when they are known.
    pub snap_to_hls: bool,
    /// How much a slot inside a speech interval loses, in [0, 1]: its score is multiplied by
    /// `1 - speech_penalty`; 1 (the default) never breaks while someone speaks.
    pub speech_penalty: f64,
    pub brand_safety: BrandSafety,
    /// When shots are known, group them into scenes (`scenes`) and break only where a scene
    /// starts; off, every shot change, black run and silence is a candidate, scenes unknown.
    pub use_scenes: bool,
    /// How shots are grouped into scenes.
    pub scenes: SceneOptions,
    /// Break positions a broadcaster asks for; without one, the best `top` breaks.
    pub schedule: Option<Schedule>,
}

impl Default for DefaultPolicyConfig {
    fn default() -> Self {
        Self {
            silence_threshold: crate::loudness::DEFAULT_SILENCE_THRESHOLD,
            silence_measure: LoudnessMeasure::Momentary,
            silence_tracks: SilenceTracks::AllActive,
            min_silence_seconds: 0.5,
            merge_distance_seconds: 0.5,
            min_spacing_seconds: 30.0,
            lead_in_seconds: 5.0,
            lead_out_seconds: 5.0,
            min_break_score: 0.5,
            weights: ReasonWeights::default(),
            context_weight: 0.3,
            context_interval_seconds: 2.0,
            context_min_confidence: 70.0,
            snap_to_hls: true,
            speech_penalty: 1.0,
            brand_safety: BrandSafety::default(),
            use_scenes: true,
            scenes: SceneOptions::default(),
            schedule: None,
        }
    }
}

impl DefaultPolicyConfig {
    /// Checks ranges: weights and scores in [0, 1], durations finite and not negative.
    pub fn validate(&self) -> Result<(), ScoringError> {
        let unit = [
            ("weights.silence", self.weights.silence),
            ("weights.black_frame", self.weights.black_frame),
            ("weights.shot_change", self.weights.shot_change),
            ("weights.end_credits", self.weights.end_credits),
            ("weights.scene_change", self.weights.scene_change),
            ("context_weight", self.context_weight),
            ("min_break_score", self.min_break_score),
            ("speech_penalty", self.speech_penalty),
        ];
        for (name, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return Err(ScoringError::Config(format!(
                    "{name} must be in [0, 1], got {v}"
                )));
            }
        }
        let seconds = [
            ("min_silence_seconds", self.min_silence_seconds),
            ("merge_distance_seconds", self.merge_distance_seconds),
            ("min_spacing_seconds", self.min_spacing_seconds),
            ("lead_in_seconds", self.lead_in_seconds),
            ("lead_out_seconds", self.lead_out_seconds),
            ("context_interval_seconds", self.context_interval_seconds),
            (
                "brand_safety.window_seconds",
                self.brand_safety.window_seconds,
            ),
        ];
        for (name, v) in seconds {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ScoringError::Config(format!(
                    "{name} must be a finite number >= 0, got {v}"
                )));
            }
        }
        if !self.silence_threshold.is_finite() || !self.context_min_confidence.is_finite() {
            return Err(ScoringError::Config(
                "silence_threshold and context_min_confidence must be finite".into(),
            ));
        }
        let c = self.brand_safety.min_confidence;
        if !(0.0..=100.0).contains(&c) {
            return Err(ScoringError::Config(format!(
                "brand_safety.min_confidence must be a percentage in [0, 100], got {c}"
            )));
        }
        let o = &self.scenes;
        let scene_knobs = [
            ("scenes.max_distance", o.max_distance),
            ("scenes.barrier_black_seconds", o.barrier_black_seconds),
            ("scenes.speech_margin_seconds", o.speech_margin_seconds),
            ("scenes.min_histogram_overlap", o.min_histogram_overlap),
        ];
        for (name, v) in scene_knobs {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ScoringError::Config(format!(
                    "{name} must be a finite number >= 0, got {v}"
                )));
            }
        }
        if let Some(s) = &self.schedule {
            s.validate()?;
        }
        Ok(())
    }
}

/// The silence intervals the policy uses (see the module docs), in time order.
pub fn silence_intervals(
    inputs: &ScoringInputs,
    cfg: &DefaultPolicyConfig,
) -> Vec<SilenceInterval> {
    let intervals = |log: &crate::loudness::LoudnessLog| {
        track_silences(&log.rows, cfg.silence_threshold, cfg.silence_measure, 0.0)
    };
    let active = |log: &&crate::loudness::LoudnessLog| log.has_audio(cfg.silence_threshold);
    let tracks: Vec<Vec<SilenceInterval>> = match cfg.silence_tracks {
        SilenceTracks::Programme => inputs
            .loudness
            .first()
            .filter(active)
            .map(intervals)
            .into_iter()
            .collect(),
        SilenceTracks::AllActive => inputs
            .loudness
            .iter()
            .filter(active)
            .map(intervals)
            .collect(),
    };
    common_silence(&tracks, cfg.min_silence_seconds)
}

/// The candidate points, sorted by time (ties: Silence, BlackFrame, ShotChange, EndCredits).
pub fn candidates(inputs: &ScoringInputs, cfg: &DefaultPolicyConfig) -> Vec<Candidate> {
    let mut points: Vec<Candidate> = silence_intervals(inputs, cfg)
        .iter()
        .map(|iv| Candidate {
            timestamp: iv.start + iv.duration / 2.0,
            reason: Reason::Silence,
        })
        .collect();
    let cues = visual_cues(inputs.segments.as_ref());
    let at = |reason| {
        move |t: f64| Candidate {
            timestamp: t,
            reason,
        }
    };
    points.extend(
        cues.black_frames
            .iter()
            .map(|b| b.middle())
            .map(at(Reason::BlackFrame)),
    );
    points.extend(cues.shots.iter().copied().map(at(Reason::ShotChange)));
    points.extend(cues.end_credits.iter().copied().map(at(Reason::EndCredits)));
    points.sort_by(|a, b| {
        a.timestamp
            .total_cmp(&b.timestamp)
            .then(a.reason.cmp(&b.reason))
    });
    points
}

/// Which point of a slot gives its time: the most precise cut first.
fn placement_rank(reason: Reason) -> u8 {
    match reason {
        Reason::ShotChange => 0,
        Reason::EndCredits => 1,
        Reason::BlackFrame => 2,
        Reason::Silence => 3,
        // Added to a slot after placement, never a point.
        Reason::SceneChange => 4,
    }
}

/// Where the picture says a scene changes, and what a break must not interrupt.
struct PictureGuards {
    /// Scenes are known (the segments have shots).
    scenes_known: bool,
    /// Seconds: each scene's start and end.
    scenes: Vec<(f64, f64)>,
    /// Where a break counts as "at the scene change": a moment around each boundary, stretched
    /// over a black run starting there; with the boundary's confidence (0-100).
    boundary_zones: Vec<(f64, f64, f64)>,
    credits: Vec<(f64, f64)>,
    transitions: Vec<(&'static str, f64, f64)>,
    /// Black runs: a fade's darkest frames are found as black too, and a break there is in the
    /// black, not in the fade.
    blacks: Vec<super::BlackSpan>,
}

/// A slot this close to a scene's first frame is at the scene change, seconds.
const AT_BOUNDARY_SECONDS: f64 = 0.05;

impl PictureGuards {
    fn new(
        inputs: &ScoringInputs,
        silences: &[SilenceInterval],
        cfg: &DefaultPolicyConfig,
    ) -> Self {
        let s = |ms: u64| ms as f64 / 1000.0;
        let mut g = PictureGuards {
            scenes_known: false,
            scenes: Vec::new(),
            boundary_zones: Vec::new(),
            credits: Vec::new(),
            transitions: Vec::new(),
            blacks: Vec::new(),
        };
        let Some(segments) = inputs.segments.as_ref() else {
            return g;
        };
        for seg in &segments.segments {
            let span = (s(seg.start_timestamp_millis), s(seg.end_timestamp_millis));
            match seg.cue_type() {
                Some(CUE_END_CREDITS) => g.credits.push(span),
                Some(c @ (CUE_FADE_OUT | CUE_FADE_IN | CUE_DISSOLVE)) => {
                    let name = match c {
                        CUE_FADE_OUT => "FadeOut",
                        CUE_FADE_IN => "FadeIn",
                        _ => "Dissolve",
                    };
                    g.transitions.push((name, span.0, span.1));
                }
                _ => {}
            }
        }
        g.blacks = visual_cues(Some(segments)).black_frames;
        if !cfg.use_scenes || !segments.segments.iter().any(|x| x.is_shot()) {
            return g;
        }
        g.scenes_known = true;
        let blacks = g.blacks.clone();
        let scenes = crate::scenes::detect(segments, inputs.speech.as_ref(), silences, &cfg.scenes);
        let starts: Vec<f64> = scenes.scenes.iter().map(|x| s(x.start_timestamp)).collect();
        for (k, scene) in scenes.scenes.iter().enumerate() {
            // A scene runs to the next one (shots may not say where they end).
            let start = starts[k];
            let end = starts
                .get(k + 1)
                .copied()
                .unwrap_or_else(|| s(scene.end_timestamp).max(start));
            g.scenes.push((start, end));
            if k == 0 {
                continue;
            }
            let mut zone = (
                start - AT_BOUNDARY_SECONDS,
                start + AT_BOUNDARY_SECONDS,
                scene.confidence,
            );
            // Black at the cut is part of the change: the black that opens the scene (the local
            // engine makes it a shot of its own) or a black run that ends at it (segments whose
            // shots leave the black out).
            for b in blacks.iter().filter(|b| b.end > b.start) {
                if (b.start - start).abs() <= 0.08 {
                    zone.1 = zone.1.max(b.end);
                }
                if (b.end - start).abs() <= 0.08 {
                    zone.0 = zone.0.min(b.start);
                }
            }
            g.boundary_zones.push(zone);
        }
        g
    }

    /// The confidence (0-100) of the scene change at `t`, if there is one.
    fn scene_change(&self, t: f64) -> Option<f64> {
        self.boundary_zones
            .iter()
            .filter(|(a, b, _)| *a <= t && t <= *b)
            .map(|z| z.2)
            .reduce(f64::max)
    }

    fn at_scene_change(&self, t: f64) -> bool {
        self.scene_change(t).is_some()
    }

    /// Why the picture refuses a break at `t`.
    fn refusals(&self, t: f64, notes: &mut Vec<SlotNote>) {
        if self.scenes_known && !self.at_scene_change(t) {
            // The scene the slot is in: the last to start at or before it (before the first
            // shot, the stretch up to it).
            let (start, end) = match self.scenes.iter().rposition(|(a, _)| *a <= t) {
                Some(k) => self.scenes[k],
                None => (0.0, self.scenes.first().map_or(t, |x| x.0)),
            };
            push_new(notes, SlotNote::InsideScene { start, end });
        }
        if let Some(&(start, end)) = self.credits.iter().find(|(a, b)| *a < t && t < *b) {
            push_new(notes, SlotNote::InsideCredits { start, end });
        }
        let in_black = self.blacks.iter().any(|b| b.contains(t));
        if let Some(&(name, start, end)) = self
            .transitions
            .iter()
            .find(|(_, a, b)| *a < t && t < *b && !in_black)
        {
            push_new(
                notes,
                SlotNote::InsideTransition {
                    transition: name.to_string(),
                    start,
                    end,
                },
            );
        }
    }
}

fn push_new(notes: &mut Vec<SlotNote>, note: SlotNote) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

pub(super) fn score(
    inputs: &ScoringInputs,
    cfg: &DefaultPolicyConfig,
    top_n: usize,
) -> Result<ScoringOutput, ScoringError> {
    cfg.validate()?;
    let silences = silence_intervals(inputs, cfg);
    let blacks = visual_cues(inputs.segments.as_ref()).black_frames;
    let guards = PictureGuards::new(inputs, &silences, cfg);
    let points = candidates(inputs, cfg);
    let duration = checked_duration(inputs, points.len())?;
    let params = ContextParams {
        interval: cfg.context_interval_seconds,
        min_confidence: cfg.context_min_confidence,
    };
    let boundaries = inputs
        .hls_segment_boundaries
        .as_deref()
        .filter(|b| cfg.snap_to_hls && !b.is_empty());

    // Chain points into clusters.
    let mut clusters: Vec<Vec<Candidate>> = Vec::new();
    for p in points {
        match clusters.last_mut() {
            Some(c) if p.timestamp - c[c.len() - 1].timestamp < cfg.merge_distance_seconds => {
                c.push(p)
            }
            _ => clusters.push(vec![p]),
        }
    }

    let slots: Vec<Slot> = clusters
        .iter()
        .map(|cluster| {
            // min_by_key keeps the first of equals: the earliest point of the best rank.
            let anchor = cluster
                .iter()
                .min_by_key(|p| placement_rank(p.reason))
                .map_or(0.0, |p| p.timestamp);
            let mut reasons: Vec<Reason> = cluster.iter().map(|p| p.reason).collect();
            if silences
                .iter()
                .any(|s| s.start <= anchor && anchor <= s.end)
            {
                reasons.push(Reason::Silence);
            }
            if blacks.iter().any(|b| b.contains(anchor)) {
                reasons.push(Reason::BlackFrame);
            }
            let scene_confidence = guards.scene_change(anchor);
            if scene_confidence.is_some() {
                reasons.push(Reason::SceneChange);
            }
            reasons.sort();
            reasons.dedup();
            // A scene change counts as much as the picture, speech and pauses make it sure.
            let weight = |r: Reason| match r {
                Reason::SceneChange => {
                    cfg.weights.scene_change * scene_confidence.unwrap_or(0.0) / 100.0
                }
                r => cfg.weights.of(r),
            };
            let mut score = reasons
                .iter()
                .map(|&r| weight(r))
                .reduce(disjunction)
                .unwrap_or(0.0);
            let context = context_with(anchor, inputs, &params, ContextExtras::ALL);
            let labels = &context.labels;
            if !labels.before.is_empty() && !labels.after.is_empty() {
                let common = labels
                    .before_names()
                    .filter(|n| labels.after_names().any(|m| m == *n))
                    .count();
                let union = labels.before.len() + labels.after.len() - common;
                let distance = 1.0 - common as f64 / union as f64;
                score = disjunction(score, cfg.context_weight * distance);
            }
            let mut notes = Vec::new();
            let at_break = boundaries.map_or(anchor, |b| nearest_boundary(b, anchor));
            // Where the slot is and where its break would sit (HLS snapping) must both be clear.
            let speaking = inputs
                .speech
                .as_ref()
                .and_then(|s| s.speaking_at(anchor).or_else(|| s.speaking_at(at_break)));
            if let Some(iv) = speaking.filter(|_| cfg.speech_penalty > 0.0) {
                score *= 1.0 - cfg.speech_penalty;
                notes.push(SlotNote::InsideSpeech {
                    track: iv.track,
                    start: iv.start_seconds(),
                    end: iv.end_seconds(),
                    penalty: cfg.speech_penalty,
                });
            }
            // The picture guards judge the slot itself: HLS snapping moves a break by at most
            // half a segment, and segments do not follow cuts.
            guards.refusals(anchor, &mut notes);
            notes.extend(unsafe_nearby(inputs, &cfg.brand_safety, anchor, at_break));
            let mut slot = Slot {
                timestamp: anchor,
                score,
                reasons,
                context,
                snapped_from: None,
                notes,
                explanation: None,
            };
            slot.explanation = Some(explain(&slot, inputs.speech.is_some()));
            slot
        })
        .collect();

    let (breaks, schedule) = match &cfg.schedule {
        None => (
            choose_breaks(&slots, duration, cfg, boundaries, top_n),
            None,
        ),
        Some(sched) => {
            let (b, r) = scheduled_breaks(&slots, duration, cfg, boundaries, sched);
            (b, Some(r))
        }
    };
    Ok(ScoringOutput {
        policy: PolicyName::Default,
        duration,
        slots,
        breaks,
        schedule,
    })
}

fn clock(t: f64) -> String {
    crate::vmap::time_offset(t).unwrap_or_else(|| format!("{t} s"))
}

/// One line: what the slot offers and whether anything stands in the way.
fn explain(slot: &Slot, speech_known: bool) -> String {
    let at = clock(slot.timestamp);
    if let Some(why) = slot.refusal() {
        return format!("no break at {at}: {why}");
    }
    let mut what: Vec<&str> = Vec::new();
    for (r, words) in [
        (Reason::SceneChange, "scene change"),
        (Reason::BlackFrame, "black"),
        (Reason::Silence, "silence"),
        (Reason::ShotChange, "cut"),
        (Reason::EndCredits, "start of the end credits"),
    ] {
        if slot.reasons.contains(&r) {
            what.push(words);
        }
    }
    let mut line = format!("{} at {at}", what.join(" + "));
    match slot
        .notes
        .iter()
        .find(|n| matches!(n, SlotNote::InsideSpeech { .. }))
    {
        Some(n) => line.push_str(&format!(", {n}")),
        None if speech_known => line.push_str(", nobody speaking"),
        None => {}
    }
    line.push_str(&format!(" (score {:.2})", slot.score));
    line
}

/// The moderation label that refuses a break between `from` and `to` (the slot and where the
/// break would sit): the nearest one at or above the brand-safety confidence within the window
/// (ties: the more confident, then the earlier in the list).
fn unsafe_nearby(
    inputs: &ScoringInputs,
    safety: &BrandSafety,
    from: f64,
    to: f64,
) -> Option<SlotNote> {
    if !safety.enabled {
        return None;
    }
    let (lo, hi) = (from.min(to), from.max(to));
    let labels = inputs.moderation.as_ref()?.moderation_labels.iter();
    labels
        .filter(|m| m.moderation_label.confidence >= safety.min_confidence)
        .map(|m| {
            let at = m.timestamp as f64 / 1000.0;
            let distance = if at < lo {
                lo - at
            } else if at > hi {
                at - hi
            } else {
                0.0
            };
            (m, at, distance)
        })
        .filter(|&(_, _, d)| d <= safety.window_seconds)
        .min_by(|a, b| {
            a.2.total_cmp(&b.2).then(
                b.0.moderation_label
                    .confidence
                    .total_cmp(&a.0.moderation_label.confidence),
            )
        })
        .map(|(m, at, distance)| SlotNote::NearModeration {
            name: m.moderation_label.name.clone(),
            confidence: m.moderation_label.confidence,
            at,
            distance,
            window: safety.window_seconds,
        })
}

/// The boundary nearest to `t` (ties: the earlier). `boundaries` must not be empty.
pub(super) fn nearest_boundary(boundaries: &[f64], t: f64) -> f64 {
    let mut best = boundaries[0];
    for &b in &boundaries[1..] {
        let (db, dbest) = ((b - t).abs(), (best - t).abs());
        if db < dbest || (db == dbest && b < best) {
            best = b;
        }
    }
    best
}

/// Each slot moved onto its HLS boundary (when known), and why it cannot be a break, if so.
fn placed(
    slots: &[Slot],
    duration: Option<f64>,
    cfg: &DefaultPolicyConfig,
    boundaries: Option<&[f64]>,
) -> Vec<(Slot, Option<String>)> {
    let end = duration.unwrap_or(f64::INFINITY);
    slots
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(b) = boundaries {
                let snapped = nearest_boundary(b, s.timestamp);
                if snapped != s.timestamp {
                    s.snapped_from = Some(s.timestamp);
                    s.timestamp = snapped;
                }
            }
            let why = if let Some(n) = s.refusal() {
                Some(n.to_string())
            } else if s.timestamp < cfg.lead_in_seconds {
                Some(format!("in the first {} s (lead-in)", cfg.lead_in_seconds))
            } else if s.timestamp > end - cfg.lead_out_seconds {
                Some(format!("in the last {} s (lead-out)", cfg.lead_out_seconds))
            } else if s.score < cfg.min_break_score {
                Some(format!("scores below {}", cfg.min_break_score))
            } else {
                None
            };
            (s, why)
        })
        .collect()
}

fn spaced(taken: &[Slot], t: f64, min_spacing: f64) -> bool {
    taken.iter().all(|c| {
        let gap = (c.timestamp - t).abs();
        gap > 0.0 && gap >= min_spacing
    })
}

fn choose_breaks(
    slots: &[Slot],
    duration: Option<f64>,
    cfg: &DefaultPolicyConfig,
    boundaries: Option<&[f64]>,
    top_n: usize,
) -> Vec<Slot> {
    let mut eligible: Vec<Slot> = placed(slots, duration, cfg, boundaries)
        .into_iter()
        .filter(|(_, why)| why.is_none())
        .map(|(s, _)| s)
        .collect();
    // Best first; ties: the earlier slot (the sort is stable, slots are in time order).
    eligible.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(Ordering::Equal)
            .then(a.timestamp.total_cmp(&b.timestamp))
    });
    let mut chosen: Vec<Slot> = Vec::new();
    for s in eligible {
        if chosen.len() >= top_n {
            break;
        }
        if spaced(&chosen, s.timestamp, cfg.min_spacing_seconds) {
            chosen.push(s);
        }
    }
    chosen.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    chosen
}

/// One break per target where one can be found (see `schedule.rs`), in time order, and the
/// report of every target.
fn scheduled_breaks(
    slots: &[Slot],
    duration: Option<f64>,
    cfg: &DefaultPolicyConfig,
    boundaries: Option<&[f64]>,
    sched: &Schedule,
) -> (Vec<Slot>, ScheduleReport) {
    let all = placed(slots, duration, cfg, boundaries);
    let dev = sched.max_deviation_seconds;
    let mut chosen: Vec<Slot> = Vec::new();
    let mut outcomes: Vec<(TargetOutcome, Option<f64>)> = Vec::new();
    for target in sched.positions(duration) {
        let (earliest, latest) = (target - dev, target + dev);
        let in_window: Vec<&(Slot, Option<String>)> = all
            .iter()
            .filter(|(s, _)| earliest <= s.timestamp && s.timestamp <= latest)
            .collect();
        let mut acceptable: Vec<&Slot> = in_window
            .iter()
            .filter(|(_, why)| why.is_none())
            .map(|(s, _)| s)
            .collect();
        // Best first; ties: nearest the target, then the earlier.
        acceptable.sort_by(|a, b| {
            b.score
                .partial_cmp(&a.score)
                .unwrap_or(Ordering::Equal)
                .then(
                    (a.timestamp - target)
                        .abs()
                        .total_cmp(&(b.timestamp - target).abs()),
                )
                .then(a.timestamp.total_cmp(&b.timestamp))
        });
        let taken: Vec<f64> = chosen.iter().map(|c| c.timestamp).collect();
        let pick = acceptable.iter().find(|s| {
            spaced(&chosen, s.timestamp, cfg.min_spacing_seconds)
                && within_hourly_limit(&taken, s.timestamp, sched.max_breaks_per_hour)
        });
        let mut outcome = TargetOutcome {
            target,
            earliest,
            latest,
            served_by: None,
            unserved: None,
        };
        match pick {
            Some(s) => {
                let mut b = (*s).clone();
                let offset = b.timestamp - target;
                let line = b.explanation.take().unwrap_or_default();
                b.explanation = Some(format!(
                    "{line}; serves the {} target ({offset:+.3} s)",
                    clock(target)
                ));
                outcomes.push((outcome, Some(b.timestamp)));
                chosen.push(b);
                continue;
            }
            None if in_window.is_empty() => outcome.unserved = Some(Unserved::NoBoundary),
            None if acceptable.is_empty() => {
                let mut counts: Vec<(String, usize)> = Vec::new();
                for (_, why) in &in_window {
                    // The kind of refusal, without the particulars of each slot.
                    let why = why.as_deref().unwrap_or_default();
                    let kind = why.split(" (").next().unwrap_or(why).to_string();
                    match counts.iter_mut().find(|(k, _)| *k == kind) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((kind, 1)),
                    }
                }
                outcome.unserved = Some(Unserved::NoneAcceptable {
                    slots: in_window.len(),
                    why: counts.iter().map(|(k, n)| format!("{n} x {k}")).collect(),
                });
            }
            None => {
                let spacing_ok = acceptable
                    .iter()
                    .any(|s| spaced(&chosen, s.timestamp, cfg.min_spacing_seconds));
                outcome.unserved = Some(match (spacing_ok, sched.max_breaks_per_hour) {
                    (true, Some(limit)) => Unserved::PerHour {
                        acceptable: acceptable.len(),
                        limit,
                    },
                    _ => Unserved::Spacing {
                        acceptable: acceptable.len(),
                        min_spacing: cfg.min_spacing_seconds,
                    },
                });
            }
        }
        outcomes.push((outcome, None));
    }
    chosen.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    let targets = outcomes
        .into_iter()
        .map(|(mut o, at)| {
            if let Some(t) = at {
                let i = chosen
                    .iter()
                    .position(|c| c.timestamp == t)
                    .expect("a chosen break");
                o.served_by = Some(Served {
                    break_index: i,
                    timestamp: t,
                    offset: t - o.target,
                });
            }
            o
        })
        .collect();
    (
        chosen,
        ScheduleReport {
            break_seconds: sched.break_seconds,
            max_deviation_seconds: dev,
            targets,
        },
    )
}
