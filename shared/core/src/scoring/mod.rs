//! Ad-slot scoring: candidate break points from audio silence, black frames, shot changes and
//! end credits, scored and filtered into slots, of which the best become ad breaks.
//!
//! Two policies:
//! - [`Policy::Reference`] reproduces the public sample `aws-samples/aws-smart-ad-breaks`
//!   exactly (slots, timestamps, reasons, scores, quirks), so users migrating from it keep their
//!   breaks. See `reference.rs` and `docs/slot-scoring.md`.
//! - [`Policy::Default`] is what a broadcaster wants: silence intervals, breaks in time order, a
//!   minimum spacing, no break near the start or end, HLS-aligned breaks. See `default_policy.rs`.
//!
//! Both policies read the same pure [`ScoringInputs`] and share candidate extraction
//! (`candidates.rs`) and the context look-up (`context.rs`).

mod candidates;
mod context;
mod default_policy;
mod inputs;
mod reference;
mod schedule;

use serde::{Deserialize, Serialize};

pub use candidates::{visual_cues, BlackSpan, Candidate, VisualCues};
pub use context::{context_at, context_with, ContextExtras, ContextParams, FACE_ENTRY};
pub use default_policy::{
    candidates as default_candidates, silence_intervals as default_silence_intervals, BrandSafety,
    DefaultPolicyConfig, ReasonWeights, SilenceTracks,
};
pub use inputs::{
    first_variant, parse_hls_boundaries, InputError, ScoringInputs, MAX_LOUDNESS_TRACKS,
};
pub use reference::{
    candidates as reference_candidates, CONTEXT_INTERVAL_SECONDS, CONTEXT_MIN_CONFIDENCE,
    MERGE_DISTANCE_SECONDS, SILENCE_THRESHOLD, START_THRESHOLD_SECONDS,
};
pub use schedule::{Schedule, ScheduleReport, TargetOutcome, Targets, Unserved};

/// Default number of breaks chosen.
pub const DEFAULT_TOP_N: usize = 3;

/// Why a slot is a candidate break. Serialized exactly as the variant names (the sample's
/// strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    Silence,
    BlackFrame,
    ShotChange,
    EndCredits,
    /// A new scene starts here (default policy only; the reference never finds one).
    SceneChange,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Silence => "Silence",
            Self::BlackFrame => "BlackFrame",
            Self::ShotChange => "ShotChange",
            Self::EndCredits => "EndCredits",
            Self::SceneChange => "SceneChange",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One name seen near a slot (a label, a celebrity, a face's emotion, a moderation label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextEntry {
    pub name: String,
    pub confidence: f64,
}

/// What was seen in the seconds before and after a slot, one entry per name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextSide {
    pub before: Vec<ContextEntry>,
    pub after: Vec<ContextEntry>,
}

impl ContextSide {
    pub fn before_names(&self) -> impl Iterator<Item = &str> {
        self.before.iter().map(|e| e.name.as_str())
    }
    pub fn after_names(&self) -> impl Iterator<Item = &str> {
        self.after.iter().map(|e| e.name.as_str())
    }
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }
}

/// The context of a slot, per Rekognition result list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotContext {
    pub celebrities: ContextSide,
    pub faces: ContextSide,
    pub labels: ContextSide,
    pub moderation: ContextSide,
}

impl SlotContext {
    /// Label names for ad choice: the names before the slot, then the names after it that are
    /// not already there.
    pub fn ad_labels(&self) -> Vec<String> {
        let mut names: Vec<String> = self.labels.before_names().map(str::to_string).collect();
        for name in self.labels.after_names() {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }
}

/// A scored candidate break.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// Seconds from the start of the programme.
    pub timestamp: f64,
    /// In [0, 1].
    pub score: f64,
    /// Distinct reasons, in the order they were found.
    pub reasons: Vec<Reason>,
    #[serde(default)]
    pub context: SlotContext,
    /// Where the slot was before it was moved onto an HLS segment boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapped_from: Option<f64>,
    /// Why the default policy marked the slot down or will not break there (the reference policy
    /// writes none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<SlotNote>,
    /// One line saying why the slot is (or cannot be) a break (the reference policy writes
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

impl Slot {
    /// True when a note rules the slot out as a break.
    pub fn refused(&self) -> bool {
        self.notes.iter().any(SlotNote::refuses)
    }

    /// The first note that rules the slot out.
    pub fn refusal(&self) -> Option<&SlotNote> {
        self.notes.iter().find(|n| n.refuses())
    }
}

/// Something the default policy found at a slot beyond its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlotNote {
    /// The slot is inside a speech interval: a break there would cut someone off. The score was
    /// multiplied by `1 - penalty`; a penalty of 1 refuses the slot.
    InsideSpeech {
        track: u32,
        /// Seconds.
        start: f64,
        end: f64,
        penalty: f64,
    },
    /// A moderation label at or above the brand-safety confidence lies within the brand-safety
    /// window: no advertiser wants to follow or precede it, so the slot is never a break.
    NearModeration {
        name: String,
        confidence: f64,
        /// Seconds from the start of the programme.
        at: f64,
        /// Seconds between the label and the slot.
        distance: f64,
        window: f64,
    },
    /// Scenes are known and the slot is inside one (seconds: the scene's start and end): a
    /// break belongs where a scene changes.
    InsideScene { start: f64, end: f64 },
    /// Inside the end credits (their start is a post-roll and allowed).
    InsideCredits { start: f64, end: f64 },
    /// Inside a fade or a dissolve: the picture is neither the old scene nor the new one.
    InsideTransition {
        /// `FadeOut`, `FadeIn` or `Dissolve`.
        transition: String,
        start: f64,
        end: f64,
    },
}

impl SlotNote {
    pub fn refuses(&self) -> bool {
        match self {
            Self::InsideSpeech { penalty, .. } => *penalty >= 1.0,
            Self::NearModeration { .. }
            | Self::InsideScene { .. }
            | Self::InsideCredits { .. }
            | Self::InsideTransition { .. } => true,
        }
    }
}

impl std::fmt::Display for SlotNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InsideSpeech {
                track,
                start,
                end,
                penalty,
            } if *penalty >= 1.0 => write!(
                f,
                "refused: someone speaks on track {track} ({start:.3}-{end:.3} s)"
            ),
            Self::InsideSpeech {
                track,
                start,
                end,
                penalty,
            } => write!(
                f,
                "inside speech on track {track} ({start:.3}-{end:.3} s): score x {:.2}",
                1.0 - penalty
            ),
            Self::InsideScene { start, end } => write!(
                f,
                "refused: inside the scene {start:.3}-{end:.3} s, not where a scene changes"
            ),
            Self::InsideCredits { start, end } => write!(
                f,
                "refused: inside the end credits ({start:.3}-{end:.3} s; their start is allowed)"
            ),
            Self::InsideTransition {
                transition,
                start,
                end,
            } => write!(f, "refused: inside a {transition} ({start:.3}-{end:.3} s)"),
            Self::NearModeration {
                name,
                confidence,
                at,
                distance,
                window,
            } => write!(
                f,
                "refused for brand safety: moderation label \"{name}\" ({confidence:.1}%) at \
                 {at:.3} s, {distance:.3} s away (window {window} s)"
            ),
        }
    }
}

/// Which policy produced an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    Reference,
    Default,
}

impl PolicyName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Default => "default",
        }
    }
}

/// A scoring policy and its settings.
// Built once per worker and passed by reference: the size of the settings costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Reproduces the public sample exactly; it has no settings.
    Reference,
    Default(DefaultPolicyConfig),
}

impl Policy {
    pub fn name(&self) -> PolicyName {
        match self {
            Self::Reference => PolicyName::Reference,
            Self::Default(_) => PolicyName::Default,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::Default(DefaultPolicyConfig::default())
    }
}

/// Result of scoring one asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringOutput {
    pub policy: PolicyName,
    /// Programme duration used for scoring, seconds (see [`ScoringInputs::duration_seconds`]).
    pub duration: Option<f64>,
    /// Every kept slot, in time order.
    pub slots: Vec<Slot>,
    /// The chosen breaks: ascending score for the reference policy (the sample's order), time
    /// order for the default policy.
    pub breaks: Vec<Slot>,
    /// With a schedule (default policy): per target, the break that served it or why none
    /// could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleReport>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoringError {
    #[error(
        "the programme duration is unknown (no VideoMetadata DurationMillis in segments.json or \
         the other results, and no loudness rows); cannot score {candidates} candidate(s)"
    )]
    UnknownDuration { candidates: usize },
    #[error("the programme duration is {0} s; scoring needs a positive duration")]
    BadDuration(f64),
    #[error("default policy configuration: {0}")]
    Config(String),
}

/// Scores the inputs with `policy` and chooses up to `top_n` breaks.
pub fn score(
    inputs: &ScoringInputs,
    policy: &Policy,
    top_n: usize,
) -> Result<ScoringOutput, ScoringError> {
    match policy {
        Policy::Reference => reference::score(inputs, top_n),
        Policy::Default(cfg) => default_policy::score(inputs, cfg, top_n),
    }
}

/// Probabilistic "or": `1 - (1 - x)(1 - y)`, evaluated in exactly that order (the reference
/// scores must match to the last bits).
pub fn disjunction(x: f64, y: f64) -> f64 {
    1.0 - ((1.0 - x) * (1.0 - y))
}

/// Duration to score against: must be known and positive when there is anything to score.
fn checked_duration(
    inputs: &ScoringInputs,
    candidates: usize,
) -> Result<Option<f64>, ScoringError> {
    match inputs.duration_seconds() {
        Some(t) if t > 0.0 && t.is_finite() => Ok(Some(t)),
        Some(t) if candidates > 0 => Err(ScoringError::BadDuration(t)),
        None if candidates > 0 => Err(ScoringError::UnknownDuration { candidates }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests;
