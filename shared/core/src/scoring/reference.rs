//! The reference-compatible policy: on the same inputs, the same slots, timestamps, reasons and
//! scores as the public sample `aws-samples/aws-smart-ad-breaks`, quirks included. Documented in
//! `docs/slot-scoring.md`; each step below names the step there. Do not "fix"
//! anything here: better behaviour belongs in the default policy.

use std::cmp::Ordering;

use super::candidates::{visual_cues, Candidate};
use super::context::{context_at, ContextParams};
use super::{
    checked_duration, disjunction, PolicyName, Reason, ScoringError, ScoringInputs, ScoringOutput,
    Slot,
};
use crate::loudness::{silent_runs, LoudnessLog, LoudnessMeasure, LoudnessRow, SummaryRowCells};

/// Silence before this time never opens a candidate (strictly greater is required).
pub const START_THRESHOLD_SECONDS: f64 = 3.0;
/// Short-term loudness below this is silence.
pub const SILENCE_THRESHOLD: f64 = -50.0;
pub const CONTEXT_MIN_CONFIDENCE: f64 = 70.0;
pub const CONTEXT_INTERVAL_SECONDS: f64 = 2.0;
/// Candidates closer than this to the previous kept slot merge into it.
pub const MERGE_DISTANCE_SECONDS: f64 = 0.5;
/// Fraction of the programme within which the position and distance penalties apply.
const BLOCK_RATIO: f64 = 0.25;
const START_PENALTY_EXPONENT: f64 = 0.30;
const DISTANCE_PENALTY_EXPONENT: f64 = 0.05;
const LABEL_DISTANCE_EXPONENT: f64 = 4.0;

fn base_factor(reason: Reason) -> f64 {
    match reason {
        Reason::Silence => 0.7,
        Reason::BlackFrame => 0.8,
        Reason::ShotChange => 0.7,
        Reason::EndCredits => 1.0,
        // Never a reference candidate.
        Reason::SceneChange => 0.0,
    }
}

/// Where silent runs of the programme track begin: for every maximal run of rows with
/// short-term loudness below -50, the first row of the run later than 3 s (a run that began
/// before 3 s is entered at its first row after 3 s). `summary` is the summary row's cells, which
/// the sample walks like one more row.
pub fn silence_starts(log: &LoudnessLog, summary: Option<SummaryRowCells>) -> Vec<f64> {
    let mut rows = log.rows.clone();
    if let Some(SummaryRowCells {
        seconds,
        short_term: Some(short_term),
    }) = summary
    {
        // A non-numeric time cell crashes the sample if this row opens a run; here it never does.
        let seconds = seconds.unwrap_or(f64::NAN);
        let nan = f64::NAN;
        rows.push(LoudnessRow {
            seconds,
            momentary: nan,
            integrated: nan,
            short_term,
            true_peak: nan,
        });
    }
    silent_runs(&rows, SILENCE_THRESHOLD, LoudnessMeasure::ShortTerm)
        .into_iter()
        .filter_map(|run| {
            rows[run.first..=run.last]
                .iter()
                .map(|r| r.seconds)
                .find(|&s| s > START_THRESHOLD_SECONDS)
        })
        .collect()
}

/// The candidates in the sample's order before sorting: silences (track 1 only), black frames,
/// shot changes, end credits, each list in its own order.
pub fn candidates(inputs: &ScoringInputs) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(programme) = inputs.loudness.first() {
        let starts = silence_starts(programme, inputs.programme_summary_cells);
        out.extend(starts.into_iter().map(|t| Candidate {
            timestamp: t,
            reason: Reason::Silence,
        }));
    }
    let cues = visual_cues(inputs.segments.as_ref());
    let at = |reason| {
        move |t: f64| Candidate {
            timestamp: t,
            reason,
        }
    };
    out.extend(
        cues.black_frames
            .iter()
            .map(|b| b.start)
            .map(at(Reason::BlackFrame)),
    );
    out.extend(cues.shots.iter().copied().map(at(Reason::ShotChange)));
    out.extend(cues.end_credits.iter().copied().map(at(Reason::EndCredits)));
    out
}

pub(super) fn score(inputs: &ScoringInputs, top_n: usize) -> Result<ScoringOutput, ScoringError> {
    let mut cands = candidates(inputs);
    let duration = checked_duration(inputs, cands.len())?;
    // Stable: ties keep Silence, BlackFrame, ShotChange, EndCredits, then list order.
    cands.sort_by(|a, b| {
        a.timestamp
            .partial_cmp(&b.timestamp)
            .unwrap_or(Ordering::Equal)
    });

    let total = duration.unwrap_or(1.0);
    let params = ContextParams {
        interval: CONTEXT_INTERVAL_SECONDS,
        min_confidence: CONTEXT_MIN_CONFIDENCE,
    };
    let mut kept: Vec<Slot> = Vec::new();
    for c in cands {
        let t = c.timestamp;
        // 1. Base factor.
        let mut score = 1.0 * base_factor(c.reason);
        // 2. Near the start.
        if t / total < BLOCK_RATIO {
            score *= (t / total).powf(START_PENALTY_EXPONENT);
        }
        // 3. Merge into, or penalise against, the previous kept slot.
        if let Some(prev) = kept.last_mut() {
            let d = t - prev.timestamp;
            if d < MERGE_DISTANCE_SECONDS {
                // The merged slot moves to c but keeps its context.
                prev.timestamp = t;
                if !prev.reasons.contains(&c.reason) {
                    prev.reasons.push(c.reason);
                }
                prev.score = disjunction(prev.score, score);
                continue;
            } else if d / total < BLOCK_RATIO {
                let factor = (d / total).powf(DISTANCE_PENALTY_EXPONENT);
                if score < prev.score {
                    score *= factor;
                } else {
                    prev.score *= factor;
                }
            }
        }
        // 4. Context; 5. only the labels move the score.
        let context = context_at(t, inputs, &params);
        let labels = &context.labels;
        if !labels.is_empty() {
            let common = labels
                .before_names()
                .filter(|n| labels.after_names().any(|m| m == *n))
                .count();
            let union = labels.before.len() + labels.after.len() - common;
            let distance = 1.0 - (common as f64 / union as f64);
            score = disjunction(score, distance.powf(LABEL_DISTANCE_EXPONENT));
        }
        // 6. Keep.
        kept.push(Slot {
            timestamp: t,
            score,
            reasons: vec![c.reason],
            context,
            snapped_from: None,
            notes: Vec::new(),
            explanation: None,
        });
    }

    let breaks = top_by_score(&kept, top_n);
    Ok(ScoringOutput {
        policy: PolicyName::Reference,
        duration,
        slots: kept,
        breaks,
        schedule: None,
    })
}

/// A stable ascending sort by score, then the last `n`: equal scores favour later slots and the
/// result is in ascending score order (the sample's order).
fn top_by_score(slots: &[Slot], n: usize) -> Vec<Slot> {
    let mut sorted = slots.to_vec();
    sorted.sort_by(|a, b| a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal));
    let skip = sorted.len().saturating_sub(n);
    sorted.split_off(skip)
}
