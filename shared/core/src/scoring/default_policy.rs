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
//! 4. Score: the probabilistic "or" of the reasons' weights (a lone shot change is a weak break,
//!    silence + picture cut a strong one), then "or" `context_weight * label distance` when labels
//!    exist on both sides (a change of scene; a label's parents count as labels). A slot inside a
//!    speech interval (`speech.json`) is multiplied by `1 - speech_penalty`: a break there cuts
//!    someone off mid-sentence. Without `speech.json` nobody knows, and nothing is penalised.
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

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::candidates::{visual_cues, Candidate};
use super::context::{context_with, ContextExtras, ContextParams};
use super::{
    checked_duration, disjunction, PolicyName, Reason, ScoringError, ScoringInputs, ScoringOutput,
    Slot, SlotNote,
};
use crate::loudness::{
    common_silence, silence_intervals as track_silences, LoudnessMeasure, SilenceInterval,
};

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
}

impl Default for ReasonWeights {
    fn default() -> Self {
        Self {
            silence: 0.6,
            black_frame: 0.7,
            shot_change: 0.3,
            end_credits: 0.5,
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
    /// `1 - speech_penalty` (0.5: silence alone inside speech no longer qualifies).
    pub speech_penalty: f64,
    pub brand_safety: BrandSafety,
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
            speech_penalty: 0.5,
            brand_safety: BrandSafety::default(),
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
            reasons.sort();
            reasons.dedup();
            let mut score = reasons
                .iter()
                .map(|&r| cfg.weights.of(r))
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
            let speaking = inputs.speech.as_ref().and_then(|s| s.speaking_at(anchor));
            if let Some(iv) = speaking.filter(|_| cfg.speech_penalty > 0.0) {
                score *= 1.0 - cfg.speech_penalty;
                notes.push(SlotNote::InsideSpeech {
                    track: iv.track,
                    start: iv.start_seconds(),
                    end: iv.end_seconds(),
                    penalty: cfg.speech_penalty,
                });
            }
            let at_break = boundaries.map_or(anchor, |b| nearest_boundary(b, anchor));
            notes.extend(unsafe_nearby(inputs, &cfg.brand_safety, anchor, at_break));
            Slot {
                timestamp: anchor,
                score,
                reasons,
                context,
                snapped_from: None,
                notes,
            }
        })
        .collect();

    let breaks = choose_breaks(&slots, duration, cfg, boundaries, top_n);
    Ok(ScoringOutput {
        policy: PolicyName::Default,
        duration,
        slots,
        breaks,
    })
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

fn choose_breaks(
    slots: &[Slot],
    duration: Option<f64>,
    cfg: &DefaultPolicyConfig,
    boundaries: Option<&[f64]>,
    top_n: usize,
) -> Vec<Slot> {
    let end = duration.unwrap_or(f64::INFINITY);
    let mut eligible: Vec<Slot> = slots
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
            s
        })
        .filter(|s| {
            !s.refused()
                && s.timestamp >= cfg.lead_in_seconds
                && s.timestamp <= end - cfg.lead_out_seconds
                && s.score >= cfg.min_break_score
        })
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
        let clear = chosen.iter().all(|c| {
            let gap = (c.timestamp - s.timestamp).abs();
            gap > 0.0 && gap >= cfg.min_spacing_seconds
        });
        if clear {
            chosen.push(s);
        }
    }
    chosen.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    chosen
}
