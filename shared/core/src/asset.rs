//! The asset record and its state machine.
//!
//! ```text
//! Registered ──TranscodeSubmitted──▶ Transcoding ──MediaPrepared──▶ MediaPrepared
//!     (──AnalysesReserved──▶ MediaPrepared) ──AnalysesStarted──▶ Analysing ──AnalysisCompleted|AnalysisFailed(last kind)──▶ Analysed
//!     ──Scored──▶ Scored ──PackagingSubmitted──▶ Packaging ──Packaged──▶ Complete
//! Complete ──BreaksEdited──▶ Scored   (the HLS is packaged again with the new cue points)
//! any non-terminal state ──Failed──▶ Failed
//! Failed (transient cause) ──Retried──▶ Registered | MediaPrepared | Analysed | Scored
//! ```
//!
//! Packaging comes after scoring because the HLS ladder carries an IDR frame and a segment
//! boundary at every chosen break: the breaks must be known before the full-resolution encode.
//!
//! `Retried` re-drives an asset whose failure was a fault of the machine (a full disk, a missing
//! tool, a job that never reported back) once the operator fixed it: the asset goes back to
//! the state that restarts the failed stage, and the caller publishes that state's event. Each
//! re-drive is numbered, so a second request for the same attempt (a concurrent `cuepoint
//! retry`, a redelivery) is recognised as already applied and starts nothing.
//!
//! [`transition`] is a pure function of (asset, event). It returns the next asset, or says the
//! event was already applied (a redelivered message: the caller re-announces instead of acting
//! twice), or a typed error for an illegal move. The store's conditional write on `version`
//! makes sure only one writer wins a race; this function makes sure the winner is right.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{AssetId, S3Uri, SourceObject};
use crate::loudness::AudioReport;
use crate::rekognition::AnalysisKind;

/// Where an asset is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssetState {
    Registered,
    Transcoding,
    MediaPrepared,
    Analysing,
    Analysed,
    /// Breaks chosen, VMAP written; the packaging job is not submitted yet.
    Scored,
    /// The packaging job (the HLS ladder conditioned at the breaks) is running.
    Packaging,
    Complete,
    Failed,
}

impl AssetState {
    pub const ALL: [AssetState; 9] = [
        Self::Registered,
        Self::Transcoding,
        Self::MediaPrepared,
        Self::Analysing,
        Self::Analysed,
        Self::Scored,
        Self::Packaging,
        Self::Complete,
        Self::Failed,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }

    /// Position along the happy path (Failed has none).
    fn rank(self) -> Option<u8> {
        match self {
            Self::Registered => Some(0),
            Self::Transcoding => Some(1),
            Self::MediaPrepared => Some(2),
            Self::Analysing => Some(3),
            Self::Analysed => Some(4),
            Self::Scored => Some(5),
            Self::Packaging => Some(6),
            Self::Complete => Some(7),
            Self::Failed => None,
        }
    }

    /// True when `self` is `other` or lies after it on the happy path.
    pub fn at_or_after(self, other: AssetState) -> bool {
        matches!((self.rank(), other.rank()), (Some(a), Some(b)) if a >= b)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::Transcoding => "TRANSCODING",
            Self::MediaPrepared => "MEDIA_PREPARED",
            Self::Analysing => "ANALYSING",
            Self::Analysed => "ANALYSED",
            Self::Scored => "SCORED",
            Self::Packaging => "PACKAGING",
            Self::Complete => "COMPLETE",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for AssetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What ffprobe (or MediaInfo) told us about the source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeInfo {
    pub container: String,
    pub duration_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoStreamInfo>,
    #[serde(default)]
    pub audio_tracks: Vec<AudioTrackInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoStreamInfo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Frames per second as a float (25.0, 29.97...).
    pub frame_rate: f64,
    /// The exact rational rate, e.g. "30000/1001".
    pub frame_rate_ratio: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioTrackInfo {
    /// 1-based track number, the order of audio streams in the file.
    pub track: u32,
    /// Stream index in the container.
    pub stream_index: u32,
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
}

/// A job cuepoint started on an external engine (MediaConvert, Rekognition or their local stand-ins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    /// The idempotency token the job was submitted with.
    pub client_token: String,
    pub submitted_at_ms: u64,
    #[serde(default)]
    pub status: JobStatus,
    /// Why the job failed, when it failed without failing the asset (an analysis the breaks
    /// can do without: the transcription).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    #[default]
    Submitted,
    Succeeded,
    Failed,
}

/// Where an asset's outputs live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultLocations {
    /// Prefix of the results layout (`.../assets/<id>/`).
    pub prefix: S3Uri,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls_master: Option<S3Uri>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<S3Uri>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmap: Option<S3Uri>,
}

/// Why an asset failed, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredFailure")]
pub struct Failure {
    pub stage: FailureStage,
    pub reason: String,
    /// Whether the cause can heal (see [`FailureKind`]).
    pub kind: FailureKind,
    /// The state the asset was in when it failed: where a re-drive picks it up again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_in: Option<AssetState>,
}

/// A failure as stored: records written before the kind was recorded get it from their stage
/// and reason, as a new failure would.
#[derive(Deserialize)]
struct StoredFailure {
    stage: FailureStage,
    reason: String,
    #[serde(default)]
    kind: Option<FailureKind>,
    #[serde(default)]
    failed_in: Option<AssetState>,
}

impl From<StoredFailure> for Failure {
    fn from(f: StoredFailure) -> Self {
        Failure {
            kind: f
                .kind
                .unwrap_or_else(|| FailureKind::classify(f.stage, &f.reason)),
            stage: f.stage,
            reason: f.reason,
            failed_in: f.failed_in,
        }
    }
}

/// What the engines write into a failure message when the fault is the machine's, not the
/// media's (the local MediaConvert and Rekognition stand-ins prefix their messages with it).
pub const INFRASTRUCTURE_FAULT: &str = "infrastructure fault";

/// Whether a failure can heal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A verdict on the media or the request (corrupt, unusable, too long, unscorable):
    /// retrying cannot change it.
    Permanent,
    /// A fault of the machine or the services (a full disk, a missing tool, a locked
    /// database, a job that never reported back): once fixed, `cuepoint retry` re-drives it.
    Transient,
}

impl FailureKind {
    /// The kind of a failure at `stage` with `reason`. Failure messages cross process and
    /// service boundaries as text (MediaConvert's `errorMessage`, Rekognition's
    /// `StatusMessage`), so the engines mark a machine fault in the text and this reads it.
    pub fn classify(stage: FailureStage, reason: &str) -> Self {
        const MACHINE_FAULTS: [&str; 4] = [
            INFRASTRUCTURE_FAULT,
            "No space left on device",
            "Disk quota exceeded",
            "database is locked",
        ];
        match stage {
            // Unusable media is refused at probe; a probe that could not run is retried and
            // dead-lettered, never recorded as a failure.
            FailureStage::Probe => Self::Permanent,
            // A job that never reported back, or an event that was lost.
            FailureStage::Stuck => Self::Transient,
            _ if MACHINE_FAULTS.iter().any(|m| reason.contains(m)) => Self::Transient,
            _ => Self::Permanent,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::Transient => "transient",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Failure {
    /// The state a re-drive puts the asset back in: the one whose event restarts the failed
    /// stage (Registered: transcode again; MediaPrepared: start the analyses again; Analysed:
    /// score again).
    pub fn restart_state(&self) -> Option<AssetState> {
        let from = match self.failed_in {
            Some(s) => s,
            // Records from before `failed_in`: where the stage runs.
            None => match self.stage {
                FailureStage::Probe => return None,
                FailureStage::Transcode | FailureStage::Loudness => AssetState::Transcoding,
                FailureStage::Analysis(_) => AssetState::Analysing,
                FailureStage::Scoring => AssetState::Analysed,
                FailureStage::Packaging => AssetState::Packaging,
                FailureStage::Stuck => return None,
            },
        };
        match from {
            AssetState::Registered | AssetState::Transcoding => Some(AssetState::Registered),
            AssetState::MediaPrepared | AssetState::Analysing => Some(AssetState::MediaPrepared),
            AssetState::Analysed => Some(AssetState::Analysed),
            AssetState::Scored | AssetState::Packaging => Some(AssetState::Scored),
            AssetState::Complete | AssetState::Failed => None,
        }
    }
}

/// The pipeline step an asset failed at. Stored and announced as text (`probe`, `transcode`,
/// `loudness`, `analysis:<kind>`, `scoring`, `stuck`), the form records have always had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FailureStage {
    /// The source is not usable media.
    Probe,
    /// The transcode job ended in error.
    Transcode,
    /// A loudness log of the transcode is missing or unreadable.
    Loudness,
    /// An analysis job ended unsuccessfully.
    Analysis(AnalysisKind),
    /// The stored results could not be scored.
    Scoring,
    /// The packaging job (the HLS ladder with the breaks) ended in error.
    Packaging,
    /// The asset stayed in one state past its deadline (the stuck-asset sweeper).
    Stuck,
}

impl FailureStage {
    const ANALYSIS_PREFIX: &'static str = "analysis:";

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "probe" => Some(Self::Probe),
            "transcode" => Some(Self::Transcode),
            "loudness" => Some(Self::Loudness),
            "scoring" => Some(Self::Scoring),
            "packaging" => Some(Self::Packaging),
            "stuck" => Some(Self::Stuck),
            _ => {
                let kind = s.strip_prefix(Self::ANALYSIS_PREFIX)?;
                serde_json::from_value(serde_json::Value::String(kind.to_string()))
                    .ok()
                    .map(Self::Analysis)
            }
        }
    }
}

impl fmt::Display for FailureStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Probe => f.write_str("probe"),
            Self::Transcode => f.write_str("transcode"),
            Self::Loudness => f.write_str("loudness"),
            Self::Analysis(kind) => write!(f, "{}{kind}", Self::ANALYSIS_PREFIX),
            Self::Scoring => f.write_str("scoring"),
            Self::Packaging => f.write_str("packaging"),
            Self::Stuck => f.write_str("stuck"),
        }
    }
}

impl TryFrom<String> for FailureStage {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown failure stage {s:?}"))
    }
}

impl From<FailureStage> for String {
    fn from(stage: FailureStage) -> String {
        stage.to_string()
    }
}

/// One chosen ad break, as recorded on the asset for summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakSummary {
    pub timestamp: f64,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// One saved correction of an asset's breaks: who, when, what, and the VMAP version it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakEdit {
    /// VMAP version this edit wrote: 2 for the first edit (1 is what scoring wrote).
    pub version: u32,
    pub at_ms: u64,
    /// Who saved it (the editor's name as given, or `anonymous`).
    pub by: String,
    /// What changed, in words ("moved 00:00:22.000 to 00:00:24.000; deleted 00:00:42.000").
    pub summary: String,
    /// The breaks after the edit, in time order.
    pub breaks: Vec<BreakSummary>,
    /// Where this version of the VMAP is kept.
    pub vmap: S3Uri,
}

/// The asset record: the single source of truth for one upload's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: AssetId,
    pub source: SourceObject,
    pub state: AssetState,
    /// Optimistic-concurrency version: 1 when created, +1 on every write.
    pub version: u64,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// When the asset entered its current state (stuck-asset deadlines count from here).
    pub state_entered_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcode: Option<JobRecord>,
    /// The packaging job of the current breaks (the HLS ladder with a segment boundary at each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packaging: Option<JobRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub analyses: BTreeMap<AnalysisKind, JobRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioReport>,
    pub results: ResultLocations,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaks: Vec<BreakSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// How many times the stuck-asset sweeper re-announced the current state.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sweeps: u32,
    /// How many times the asset was re-driven after a transient failure (`cuepoint retry`).
    /// Job tokens and event ids of a re-driven asset carry it, so its new jobs and
    /// announcements are not mistaken for the failed attempt's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Corrections of the breaks by people, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<BreakEdit>,
    /// Rekognition jobs this asset holds under the open-jobs cap but has not started yet: the
    /// cap is taken before any job starts, so a burst of assets never starts more jobs than it
    /// allows. They become the asset's jobs when the analyses start; a failure releases them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reserved_jobs: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Asset {
    /// A freshly registered asset (version 1), after the source was probed.
    pub fn register(
        source: SourceObject,
        probe: ProbeInfo,
        results_prefix: S3Uri,
        now_ms: u64,
    ) -> Self {
        Asset {
            id: AssetId::for_source(&source),
            source,
            state: AssetState::Registered,
            version: 1,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            state_entered_at_ms: now_ms,
            probe: Some(probe),
            transcode: None,
            packaging: None,
            analyses: BTreeMap::new(),
            audio: None,
            results: ResultLocations {
                prefix: results_prefix,
                hls_master: None,
                proxy: None,
                vmap: None,
            },
            breaks: Vec::new(),
            failure: None,
            sweeps: 0,
            retries: 0,
            edits: Vec::new(),
            reserved_jobs: 0,
        }
    }

    /// The VMAP version the current breaks are in (1: as scored, then one more per edit).
    pub fn vmap_version(&self) -> u32 {
        self.edits.last().map(|e| e.version).unwrap_or(1)
    }

    /// Suffix of job tokens and event ids for the current attempt: empty until the asset is
    /// re-driven, then `-r1`, `-r2`... (the first attempt keeps the names it always had).
    pub fn attempt_suffix(&self) -> String {
        if self.retries == 0 {
            String::new()
        } else {
            format!("-r{}", self.retries)
        }
    }

    /// The analyses that have not completed yet.
    pub fn pending_analyses(&self) -> Vec<AnalysisKind> {
        self.analyses
            .iter()
            .filter(|(_, j)| j.status == JobStatus::Submitted)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The Rekognition Video analyses still open (what the open-jobs cap counts).
    pub fn pending_video_analyses(&self) -> usize {
        self.pending_analyses()
            .into_iter()
            .filter(|k| k.is_video())
            .count()
    }

    /// What this asset holds under the open-jobs cap: its reservation before the analyses
    /// start, then its open Rekognition Video jobs.
    pub fn cap_held(&self) -> usize {
        match self.state {
            AssetState::MediaPrepared => self.reserved_jobs as usize,
            AssetState::Analysing => self.pending_video_analyses(),
            _ => 0,
        }
    }
}

/// What happened to an asset: the inputs of the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AssetEvent {
    /// The transcode job was created (or found) for this asset.
    TranscodeSubmitted { job: JobRecord },
    /// The transcode job (proxy and loudness logs) completed and its loudness logs were read.
    MediaPrepared {
        job_id: String,
        audio: AudioReport,
        proxy: S3Uri,
    },
    /// `jobs` Rekognition jobs were taken under the open-jobs cap for this asset's analyses
    /// (before any of them starts).
    AnalysesReserved { jobs: u32 },
    /// Every analysis job was started.
    AnalysesStarted {
        jobs: BTreeMap<AnalysisKind, JobRecord>,
    },
    /// One analysis job completed and its results were stored.
    AnalysisCompleted { kind: AnalysisKind, job_id: String },
    /// One analysis job failed, and the asset goes on without it (its results file says why).
    AnalysisFailed {
        kind: AnalysisKind,
        job_id: String,
        reason: String,
    },
    /// Slots were scored and the VMAP written.
    Scored {
        breaks: Vec<BreakSummary>,
        vmap: S3Uri,
    },
    /// The packaging job for the current breaks was created (or found).
    PackagingSubmitted { job: JobRecord },
    /// The packaging job completed: the HLS ladder is at `hls_master`.
    Packaged { job_id: String, hls_master: S3Uri },
    /// Something failed for good.
    Failed { stage: FailureStage, reason: String },
    /// A person corrected the breaks of a complete asset.
    BreaksEdited { edit: BreakEdit },
    /// The operator re-drives a transiently failed asset; `attempt` is its retry count after
    /// this re-drive (1 for the first).
    Retried { attempt: u32 },
}

impl AssetEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::TranscodeSubmitted { .. } => "TranscodeSubmitted",
            Self::MediaPrepared { .. } => "MediaPrepared",
            Self::AnalysesReserved { .. } => "AnalysesReserved",
            Self::AnalysesStarted { .. } => "AnalysesStarted",
            Self::AnalysisCompleted { .. } => "AnalysisCompleted",
            Self::AnalysisFailed { .. } => "AnalysisFailed",
            Self::Scored { .. } => "Scored",
            Self::PackagingSubmitted { .. } => "PackagingSubmitted",
            Self::Packaged { .. } => "Packaged",
            Self::Failed { .. } => "Failed",
            Self::BreaksEdited { .. } => "BreaksEdited",
            Self::Retried { .. } => "Retried",
        }
    }
}

/// The result of applying an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The event moves the asset: store this (the store bumps `version`).
    Applied(Box<Asset>),
    /// The event's effect is already in the record (a redelivery): do nothing but re-announce.
    AlreadyApplied,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("asset {asset} is {state}: event {event} is not allowed there")]
    Illegal {
        asset: AssetId,
        state: AssetState,
        event: &'static str,
    },
    #[error(
        "asset {asset}: {event} names job {got}, but {}",
        recorded_job(expected)
    )]
    UnknownJob {
        asset: AssetId,
        event: &'static str,
        /// The job the asset records, `None` when it records none yet.
        expected: Option<String>,
        got: String,
    },
    #[error("asset {asset}: analysis {kind} was never started")]
    UnknownAnalysis { asset: AssetId, kind: AnalysisKind },
    #[error("asset {asset}: AnalysesStarted with no jobs")]
    NoAnalyses { asset: AssetId },
    #[error("asset {asset} failed for good at {stage}: {reason} (a {kind} cause: retrying cannot change it)")]
    NotRetriable {
        asset: AssetId,
        stage: FailureStage,
        kind: FailureKind,
        reason: String,
    },
    #[error("asset {asset}: retry attempt {got}, the next attempt is {expected}")]
    RetryAttempt {
        asset: AssetId,
        expected: u32,
        got: u32,
    },
    #[error("asset {asset}: edit writes VMAP version {got}, the next version is {expected}")]
    EditVersion {
        asset: AssetId,
        expected: u32,
        got: u32,
    },
}

fn recorded_job(expected: &Option<String>) -> String {
    match expected {
        Some(job) => format!("the asset's job is {job}"),
        None => "the asset records no job yet".to_string(),
    }
}

/// Apply `event` to `asset` at time `now_ms`. Pure.
pub fn transition(
    asset: &Asset,
    event: &AssetEvent,
    now_ms: u64,
) -> Result<Transition, TransitionError> {
    use AssetState as S;
    let illegal = || TransitionError::Illegal {
        asset: asset.id.clone(),
        state: asset.state,
        event: event.name(),
    };
    let mut next = asset.clone();
    match event {
        AssetEvent::TranscodeSubmitted { job } => match asset.state {
            S::Registered => {
                next.transcode = Some(job.clone());
                next.state = S::Transcoding;
            }
            s if s.at_or_after(S::Transcoding) => {
                let recorded = asset.transcode.as_ref().map(|j| j.job_id.as_str());
                return if recorded == Some(job.job_id.as_str()) {
                    Ok(Transition::AlreadyApplied)
                } else {
                    Err(TransitionError::UnknownJob {
                        asset: asset.id.clone(),
                        event: event.name(),
                        expected: recorded.map(str::to_string),
                        got: job.job_id.clone(),
                    })
                };
            }
            _ => return Err(illegal()),
        },
        AssetEvent::MediaPrepared {
            job_id,
            audio,
            proxy,
        } => {
            check_transcode_job(asset, job_id, event.name())?;
            match asset.state {
                S::Transcoding => {
                    if let Some(j) = next.transcode.as_mut() {
                        j.status = JobStatus::Succeeded;
                    }
                    next.audio = Some(audio.clone());
                    next.results.proxy = Some(proxy.clone());
                    next.state = S::MediaPrepared;
                }
                s if s.at_or_after(S::MediaPrepared) => return Ok(Transition::AlreadyApplied),
                _ => return Err(illegal()),
            }
        }
        AssetEvent::AnalysesReserved { jobs } => match asset.state {
            // One reservation per attempt: a redelivery finds it taken.
            S::MediaPrepared if asset.reserved_jobs > 0 => return Ok(Transition::AlreadyApplied),
            S::MediaPrepared => {
                if *jobs == 0 {
                    return Err(TransitionError::NoAnalyses {
                        asset: asset.id.clone(),
                    });
                }
                next.reserved_jobs = *jobs;
            }
            s if s.at_or_after(S::Analysing) && !s.is_terminal() => {
                return Ok(Transition::AlreadyApplied)
            }
            _ => return Err(illegal()),
        },
        AssetEvent::AnalysesStarted { jobs } => match asset.state {
            S::MediaPrepared => {
                if jobs.is_empty() {
                    return Err(TransitionError::NoAnalyses {
                        asset: asset.id.clone(),
                    });
                }
                next.analyses = jobs.clone();
                // The reservation is now the jobs themselves (the cap counts them until each
                // one completes).
                next.reserved_jobs = 0;
                next.state = S::Analysing;
            }
            s if s.at_or_after(S::Analysing) => return Ok(Transition::AlreadyApplied),
            _ => return Err(illegal()),
        },
        AssetEvent::AnalysisCompleted { kind, job_id } => {
            if !record_outcome(
                asset,
                &mut next,
                event,
                *kind,
                job_id,
                JobStatus::Succeeded,
                None,
            )? {
                return Ok(Transition::AlreadyApplied);
            }
        }
        AssetEvent::AnalysisFailed {
            kind,
            job_id,
            reason,
        } => {
            if !record_outcome(
                asset,
                &mut next,
                event,
                *kind,
                job_id,
                JobStatus::Failed,
                Some(reason),
            )? {
                return Ok(Transition::AlreadyApplied);
            }
        }
        AssetEvent::Scored { breaks, vmap } => match asset.state {
            S::Analysed => {
                next.breaks = breaks.clone();
                next.results.vmap = Some(vmap.clone());
                next.state = S::Scored;
            }
            s if s.at_or_after(S::Scored) => return Ok(Transition::AlreadyApplied),
            _ => return Err(illegal()),
        },
        AssetEvent::PackagingSubmitted { job } => {
            let recorded = asset.packaging.as_ref().map(|j| j.job_id.as_str());
            match asset.state {
                // A re-packaging (after an edit or a re-drive) replaces the earlier job.
                S::Scored if recorded != Some(job.job_id.as_str()) => {
                    next.packaging = Some(job.clone());
                    next.state = S::Packaging;
                }
                S::Scored | S::Packaging | S::Complete => {
                    return if recorded == Some(job.job_id.as_str()) {
                        Ok(Transition::AlreadyApplied)
                    } else {
                        Err(TransitionError::UnknownJob {
                            asset: asset.id.clone(),
                            event: event.name(),
                            expected: recorded.map(str::to_string),
                            got: job.job_id.clone(),
                        })
                    };
                }
                _ => return Err(illegal()),
            }
        }
        AssetEvent::Packaged { job_id, hls_master } => {
            let recorded = asset.packaging.as_ref();
            if recorded.map(|j| j.job_id.as_str()) != Some(job_id.as_str()) {
                return Err(TransitionError::UnknownJob {
                    asset: asset.id.clone(),
                    event: event.name(),
                    expected: recorded.map(|j| j.job_id.clone()),
                    got: job_id.clone(),
                });
            }
            match asset.state {
                S::Packaging => {
                    if let Some(j) = next.packaging.as_mut() {
                        j.status = JobStatus::Succeeded;
                    }
                    next.results.hls_master = Some(hls_master.clone());
                    next.state = S::Complete;
                }
                S::Complete => return Ok(Transition::AlreadyApplied),
                // The job already has its outcome (an edit or a re-drive since): a redelivery.
                S::Scored if recorded.is_some_and(|j| j.status != JobStatus::Submitted) => {
                    return Ok(Transition::AlreadyApplied)
                }
                _ => return Err(illegal()),
            }
        }
        AssetEvent::Failed { stage, reason } => match asset.state {
            S::Failed => return Ok(Transition::AlreadyApplied),
            S::Complete => return Err(illegal()),
            _ => {
                next.failure = Some(Failure {
                    stage: *stage,
                    reason: reason.clone(),
                    kind: FailureKind::classify(*stage, reason),
                    failed_in: Some(asset.state),
                });
                // Released from the cap in the same write (see the workers' `fail`).
                next.reserved_jobs = 0;
                next.state = S::Failed;
            }
        },
        // Breaks can be corrected once chosen, also while their HLS is being packaged: the
        // newest edit is what gets packaged.
        AssetEvent::BreaksEdited { edit } => match asset.state {
            S::Complete | S::Scored | S::Packaging => {
                if asset.edits.iter().any(|e| e == edit) {
                    return Ok(Transition::AlreadyApplied);
                }
                let expected = asset.vmap_version() + 1;
                if edit.version != expected {
                    return Err(TransitionError::EditVersion {
                        asset: asset.id.clone(),
                        expected,
                        got: edit.version,
                    });
                }
                // `results.vmap` keeps naming the current VMAP (`ad_breaks.vmap`, rewritten by the
                // edit); `edit.vmap` is the kept copy of this version. The HLS is packaged again
                // so its segment boundaries and cue markers follow the new breaks; until then
                // `results.hls_master` keeps serving the previous packaging.
                next.breaks = edit.breaks.clone();
                next.edits.push(edit.clone());
                next.state = S::Scored;
                // A packaging job still running packages the previous breaks: superseded, its
                // late completion changes nothing.
                if let Some(j) = next.packaging.as_mut() {
                    if j.status == JobStatus::Submitted {
                        j.status = JobStatus::Failed;
                        j.reason = Some(format!(
                            "superseded by the edit to version {}",
                            edit.version
                        ));
                    }
                }
            }
            _ => return Err(illegal()),
        },
        AssetEvent::Retried { attempt } => {
            if *attempt <= asset.retries {
                // This re-drive happened (a second request, a concurrent one, a redelivery).
                return Ok(Transition::AlreadyApplied);
            }
            if asset.state != S::Failed {
                return Err(illegal());
            }
            if *attempt != asset.retries + 1 {
                return Err(TransitionError::RetryAttempt {
                    asset: asset.id.clone(),
                    expected: asset.retries + 1,
                    got: *attempt,
                });
            }
            let Some(failure) = &asset.failure else {
                return Err(illegal());
            };
            let restart = match (failure.kind, failure.restart_state()) {
                (FailureKind::Transient, Some(state)) => state,
                (kind, _) => {
                    return Err(TransitionError::NotRetriable {
                        asset: asset.id.clone(),
                        stage: failure.stage,
                        kind,
                        reason: failure.reason.clone(),
                    })
                }
            };
            match restart {
                S::Registered => {
                    // Keep the failed job, marked failed: its late events are then known as
                    // the old attempt's, and the next submission replaces it.
                    if let Some(j) = next.transcode.as_mut() {
                        j.status = JobStatus::Failed;
                        j.reason = Some(failure.reason.clone());
                    }
                    next.audio = None;
                    next.results.proxy = None;
                    next.analyses.clear();
                }
                // Every analysis starts again (its cap counter was released on failure).
                S::MediaPrepared => next.analyses.clear(),
                S::Scored => {
                    // Like the transcode: the failed packaging job stays known as the old
                    // attempt's; the new submission (a new token) replaces it.
                    if let Some(j) = next.packaging.as_mut() {
                        if j.status == JobStatus::Submitted {
                            j.status = JobStatus::Failed;
                            j.reason = Some(failure.reason.clone());
                        }
                    }
                }
                _ => {}
            }
            next.failure = None;
            next.retries = *attempt;
            next.state = restart;
        }
    }
    if next.state != asset.state {
        next.state_entered_at_ms = now_ms;
        next.sweeps = 0;
    }
    next.updated_at_ms = now_ms;
    Ok(Transition::Applied(Box::new(next)))
}

/// Record one analysis job's outcome in `next`; the last outcome moves the asset to Analysed.
/// `Ok(false)`: the job already has an outcome (the first one recorded stands) or the asset is
/// past Analysing: a redelivery.
fn record_outcome(
    asset: &Asset,
    next: &mut Asset,
    event: &AssetEvent,
    kind: AnalysisKind,
    job_id: &str,
    status: JobStatus,
    reason: Option<&String>,
) -> Result<bool, TransitionError> {
    use AssetState as S;
    match asset.state {
        S::Analysing => {
            let Some(job) = asset.analyses.get(&kind) else {
                return Err(TransitionError::UnknownAnalysis {
                    asset: asset.id.clone(),
                    kind,
                });
            };
            if job.job_id != job_id {
                return Err(TransitionError::UnknownJob {
                    asset: asset.id.clone(),
                    event: event.name(),
                    expected: Some(job.job_id.clone()),
                    got: job_id.to_string(),
                });
            }
            if job.status != JobStatus::Submitted {
                return Ok(false);
            }
            if let Some(j) = next.analyses.get_mut(&kind) {
                j.status = status;
                j.reason = reason.cloned();
            }
            if next.pending_analyses().is_empty() {
                next.state = S::Analysed;
            }
            Ok(true)
        }
        s if s.at_or_after(S::Analysed) => Ok(false),
        _ => Err(TransitionError::Illegal {
            asset: asset.id.clone(),
            state: asset.state,
            event: event.name(),
        }),
    }
}

fn check_transcode_job(
    asset: &Asset,
    job_id: &str,
    event: &'static str,
) -> Result<(), TransitionError> {
    match &asset.transcode {
        Some(j) if j.job_id == job_id => Ok(()),
        other => Err(TransitionError::UnknownJob {
            asset: asset.id.clone(),
            event,
            expected: other.as_ref().map(|j| j.job_id.clone()),
            got: job_id.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BucketName, ObjectKey};
    use crate::loudness::AudioLayout;

    fn asset() -> Asset {
        let source = SourceObject {
            bucket: BucketName::parse("ingest").unwrap(),
            key: ObjectKey::parse("in/a.mov").unwrap(),
            version_id: None,
            etag: Some("e".into()),
            size: Some(10),
        };
        Asset::register(
            source,
            ProbeInfo::default(),
            S3Uri::parse("s3://out/assets/x/").unwrap(),
            1,
        )
    }

    fn job(id: &str) -> JobRecord {
        JobRecord {
            job_id: id.into(),
            client_token: format!("tok-{id}"),
            submitted_at_ms: 1,
            status: JobStatus::Submitted,
            reason: None,
        }
    }

    fn audio() -> AudioReport {
        AudioReport {
            audiocount: 2,
            maxloudness: vec![-12.0, -140.0],
            loudnessmap: vec![1, 0],
            layout: AudioLayout::Mono,
            silences: vec![],
        }
    }

    fn uri(s: &str) -> S3Uri {
        S3Uri::parse(s).unwrap()
    }

    fn applied(a: &Asset, e: &AssetEvent) -> Asset {
        match transition(a, e, 100).unwrap() {
            Transition::Applied(n) => *n,
            Transition::AlreadyApplied => panic!("expected applied for {}", e.name()),
        }
    }

    fn events() -> Vec<AssetEvent> {
        let jobs: BTreeMap<_, _> = [AnalysisKind::Segments, AnalysisKind::Labels]
            .into_iter()
            .map(|k| (k, job(k.as_str())))
            .collect();
        vec![
            AssetEvent::TranscodeSubmitted { job: job("mc-1") },
            AssetEvent::MediaPrepared {
                job_id: "mc-1".into(),
                audio: audio(),
                proxy: uri("s3://out/a/proxy.mp4"),
            },
            AssetEvent::AnalysesStarted { jobs },
            AssetEvent::AnalysisCompleted {
                kind: AnalysisKind::Labels,
                job_id: "labels".into(),
            },
            AssetEvent::AnalysisCompleted {
                kind: AnalysisKind::Segments,
                job_id: "segments".into(),
            },
            AssetEvent::Scored {
                breaks: vec![],
                vmap: uri("s3://out/a/ad_breaks.vmap"),
            },
            AssetEvent::PackagingSubmitted { job: job("pk-1") },
            AssetEvent::Packaged {
                job_id: "pk-1".into(),
                hls_master: uri("s3://out/a/hls/index.m3u8"),
            },
        ]
    }

    /// Scored, packaged, complete.
    fn finish(a: &Asset) -> Asset {
        events()[5..].iter().fold(a.clone(), |a, e| applied(&a, e))
    }

    #[test]
    fn happy_path_reaches_complete() {
        let mut a = asset();
        let expected = [
            AssetState::Transcoding,
            AssetState::MediaPrepared,
            AssetState::Analysing,
            AssetState::Analysing,
            AssetState::Analysed,
            AssetState::Scored,
            AssetState::Packaging,
            AssetState::Complete,
        ];
        for (e, want) in events().iter().zip(expected) {
            a = applied(&a, e);
            assert_eq!(a.state, want, "after {}", e.name());
        }
        assert_eq!(a.results.vmap, Some(uri("s3://out/a/ad_breaks.vmap")));
        assert_eq!(a.results.hls_master, Some(uri("s3://out/a/hls/index.m3u8")));
        assert_eq!(a.packaging.as_ref().unwrap().status, JobStatus::Succeeded);
        assert!(a.pending_analyses().is_empty());
    }

    fn edit(version: u32, at: f64) -> BreakEdit {
        BreakEdit {
            version,
            at_ms: 5,
            by: "ed".into(),
            summary: format!("added {at}"),
            breaks: vec![BreakSummary {
                timestamp: at,
                score: 0.0,
                reasons: vec!["Editor".into()],
            }],
            vmap: uri(&format!("s3://out/a/vmap/v{version}.vmap")),
        }
    }

    #[test]
    fn break_edits_apply_to_complete_assets_only_in_version_order() {
        let mut a = asset();
        for e in events().iter().take(5) {
            a = applied(&a, e);
        }
        let first = AssetEvent::BreaksEdited {
            edit: edit(2, 12.0),
        };
        assert!(matches!(
            transition(&a, &first, 1),
            Err(TransitionError::Illegal {
                state: AssetState::Analysed,
                ..
            })
        ));
        a = finish(&a);
        assert_eq!(a.vmap_version(), 1);
        let b = applied(&a, &first);
        assert_eq!(b.vmap_version(), 2);
        assert_eq!(b.breaks[0].timestamp, 12.0);
        assert_eq!(
            b.results.vmap, a.results.vmap,
            "the current VMAP keeps its name"
        );
        // Packaged again with the new cue points; the old ladder plays until then.
        assert_eq!(b.state, AssetState::Scored);
        assert_eq!(b.results.hls_master, a.results.hls_master);
        assert_eq!(
            transition(&b, &first, 2).unwrap(),
            Transition::AlreadyApplied
        );
        // Editing again before the packaging of the last edit: the newest edit is packaged.
        let again = applied(
            &b,
            &AssetEvent::BreaksEdited {
                edit: edit(3, 31.0),
            },
        );
        assert_eq!((again.state, again.vmap_version()), (AssetState::Scored, 3));
        let running = applied(&again, &AssetEvent::PackagingSubmitted { job: job("pk-3") });
        let superseded = applied(
            &running,
            &AssetEvent::BreaksEdited {
                edit: edit(4, 32.0),
            },
        );
        assert_eq!(
            superseded.packaging.as_ref().unwrap().status,
            JobStatus::Failed
        );
        assert_eq!(
            transition(
                &superseded,
                &AssetEvent::Packaged {
                    job_id: "pk-3".into(),
                    hls_master: uri("s3://out/a/hls/index.m3u8"),
                },
                3
            )
            .unwrap(),
            Transition::AlreadyApplied,
            "the superseded job's completion changes nothing"
        );
        // The old job's completion, delivered again, changes nothing.
        assert_eq!(
            transition(&b, &events()[7], 2).unwrap(),
            Transition::AlreadyApplied
        );
        let b = applied(&b, &AssetEvent::PackagingSubmitted { job: job("pk-2") });
        assert!(matches!(
            transition(&b, &events()[7], 2),
            Err(TransitionError::UnknownJob { .. })
        ));
        let b = applied(
            &b,
            &AssetEvent::Packaged {
                job_id: "pk-2".into(),
                hls_master: uri("s3://out/a/hls/index.m3u8"),
            },
        );
        assert_eq!(b.state, AssetState::Complete);
        assert_eq!(
            transition(&b, &first, 2).unwrap(),
            Transition::AlreadyApplied
        );
        // A second editor who read version 1 too loses: the next version is 3.
        let stale = AssetEvent::BreaksEdited {
            edit: edit(2, 30.0),
        };
        assert!(matches!(
            transition(&b, &stale, 3),
            Err(TransitionError::EditVersion {
                expected: 3,
                got: 2,
                ..
            })
        ));
        let c = applied(
            &b,
            &AssetEvent::BreaksEdited {
                edit: edit(3, 30.0),
            },
        );
        assert_eq!(c.edits.len(), 2);
        let failed = applied(
            &asset(),
            &AssetEvent::Failed {
                stage: FailureStage::Probe,
                reason: "x".into(),
            },
        );
        assert!(transition(&failed, &first, 1).is_err());
    }

    #[test]
    fn the_cap_is_reserved_once_before_the_analyses_start_and_released_by_a_failure() {
        let evs = events();
        let prepared = applied(&applied(&asset(), &evs[0]), &evs[1]);
        assert_eq!(prepared.cap_held(), 0);
        let reserve = AssetEvent::AnalysesReserved { jobs: 5 };
        let held = applied(&prepared, &reserve);
        assert_eq!(
            (held.state, held.reserved_jobs, held.cap_held()),
            (AssetState::MediaPrepared, 5, 5)
        );
        // A redelivery does not take the cap twice, even asking for another count.
        for again in [reserve.clone(), AssetEvent::AnalysesReserved { jobs: 2 }] {
            assert_eq!(
                transition(&held, &again, 1).unwrap(),
                Transition::AlreadyApplied
            );
        }
        assert!(matches!(
            transition(&prepared, &AssetEvent::AnalysesReserved { jobs: 0 }, 1),
            Err(TransitionError::NoAnalyses { .. })
        ));
        // The jobs replace the reservation; the cap now counts the open ones.
        let started = applied(&held, &evs[2]);
        assert_eq!((started.reserved_jobs, started.cap_held()), (0, 2));
        assert_eq!(
            transition(&started, &reserve, 1).unwrap(),
            Transition::AlreadyApplied
        );
        // A reservation cannot come before the media is prepared, nor after a failure.
        assert!(transition(&asset(), &reserve, 1).is_err());
        let failed = applied(
            &held,
            &AssetEvent::Failed {
                stage: FailureStage::Stuck,
                reason: "x".into(),
            },
        );
        assert_eq!((failed.reserved_jobs, failed.cap_held()), (0, 0));
        assert!(transition(&failed, &reserve, 1).is_err());
        // Old records (no reservation field) read as holding none.
        let mut old = serde_json::to_value(&held).unwrap();
        old.as_object_mut().unwrap().remove("reserved_jobs");
        let old: Asset = serde_json::from_value(old).unwrap();
        assert_eq!(old.reserved_jobs, 0);
    }

    #[test]
    fn every_event_is_recognised_when_replayed_later() {
        // Replaying any already-applied event at any later point is AlreadyApplied, never a change.
        let evs = events();
        let mut a = asset();
        let mut history = vec![];
        for e in &evs {
            a = applied(&a, e);
            history.push(e.clone());
            for old in &history {
                assert_eq!(
                    transition(&a, old, 200).unwrap(),
                    Transition::AlreadyApplied,
                    "{} in {}",
                    old.name(),
                    a.state
                );
            }
        }
    }

    #[test]
    fn out_of_order_events_are_typed_errors() {
        let evs = events();
        let a = asset();
        for e in &evs[1..] {
            let r = transition(&a, e, 1);
            assert!(
                r.is_err(),
                "{} on REGISTERED must fail, got {r:?}",
                e.name()
            );
        }
        // a stale job's completion is refused by id
        let a = applied(&a, &evs[0]);
        let stale = AssetEvent::MediaPrepared {
            job_id: "other".into(),
            audio: audio(),
            proxy: uri("s3://out/a/p.mp4"),
        };
        assert!(matches!(
            transition(&a, &stale, 1),
            Err(TransitionError::UnknownJob { .. })
        ));
        // a second, different transcode job is refused, not recorded
        let second = AssetEvent::TranscodeSubmitted { job: job("mc-2") };
        assert!(matches!(
            transition(&a, &second, 1),
            Err(TransitionError::UnknownJob { .. })
        ));
    }

    #[test]
    fn failure_is_terminal_and_idempotent() {
        let fail = AssetEvent::Failed {
            stage: FailureStage::Transcode,
            reason: "bad".into(),
        };
        let mut a = asset();
        for e in events().iter().take(5) {
            let f = applied(&a, &fail);
            assert_eq!(f.state, AssetState::Failed);
            assert_eq!(f.failure.as_ref().unwrap().reason, "bad");
            assert_eq!(
                transition(&f, &fail, 1).unwrap(),
                Transition::AlreadyApplied
            );
            for e2 in events() {
                // nothing but a repeat moves a failed asset
                let r = transition(&f, &e2, 1);
                assert!(
                    !matches!(r, Ok(Transition::Applied(_))),
                    "{} moved a FAILED asset",
                    e2.name()
                );
            }
            a = applied(&a, e);
        }
        let done = finish(&a);
        assert!(matches!(
            transition(&done, &fail, 1),
            Err(TransitionError::Illegal { .. })
        ));
    }

    /// An asset analysing every kind, the transcription among them.
    fn analysing_all() -> Asset {
        let mut a = asset();
        let jobs: BTreeMap<_, _> = AnalysisKind::ALL
            .into_iter()
            .map(|k| (k, job(k.as_str())))
            .collect();
        for e in [
            events()[0].clone(),
            events()[1].clone(),
            AssetEvent::AnalysesStarted { jobs },
        ] {
            a = applied(&a, &e);
        }
        a
    }

    fn done(kind: AnalysisKind) -> AssetEvent {
        AssetEvent::AnalysisCompleted {
            kind,
            job_id: kind.as_str().into(),
        }
    }

    fn transcription_failed() -> AssetEvent {
        AssetEvent::AnalysisFailed {
            kind: AnalysisKind::Transcription,
            job_id: "transcription".into(),
            reason: "Transcribe: unsupported media".into(),
        }
    }

    #[test]
    fn the_transcription_is_awaited_like_every_analysis() {
        // In any completion order, the asset is Analysed exactly when the last one lands.
        for last in AnalysisKind::ALL {
            let mut a = analysing_all();
            assert_eq!(a.pending_video_analyses(), 5);
            for k in AnalysisKind::ALL.into_iter().filter(|k| *k != last) {
                a = applied(&a, &done(k));
                assert_eq!(a.state, AssetState::Analysing, "{k} is not the last");
            }
            a = applied(&a, &done(last));
            assert_eq!(a.state, AssetState::Analysed, "last was {last}");
            assert!(a.pending_analyses().is_empty());
            for k in AnalysisKind::ALL {
                assert_eq!(
                    transition(&a, &done(k), 5).unwrap(),
                    Transition::AlreadyApplied,
                    "{k} again"
                );
            }
        }
    }

    #[test]
    fn a_failed_transcription_fails_only_that_analysis() {
        let mut a = analysing_all();
        a = applied(&a, &transcription_failed());
        assert_eq!(a.state, AssetState::Analysing);
        let t = &a.analyses[&AnalysisKind::Transcription];
        assert_eq!(t.status, JobStatus::Failed);
        assert_eq!(t.reason.as_deref(), Some("Transcribe: unsupported media"));
        assert_eq!(
            a.pending_video_analyses(),
            5,
            "the failure releases no video job"
        );
        // duplicates of either outcome for the same job change nothing: the first one stands
        assert_eq!(
            transition(&a, &transcription_failed(), 5).unwrap(),
            Transition::AlreadyApplied
        );
        assert_eq!(
            transition(&a, &done(AnalysisKind::Transcription), 5).unwrap(),
            Transition::AlreadyApplied
        );
        for k in AnalysisKind::VIDEO {
            a = applied(&a, &done(k));
        }
        assert_eq!(
            a.state,
            AssetState::Analysed,
            "the asset goes on without the transcript"
        );
        assert_eq!(
            a.analyses[&AnalysisKind::Transcription].status,
            JobStatus::Failed
        );
        a = finish(&a);
        assert_eq!(a.state, AssetState::Complete);
        assert_eq!(
            transition(&a, &transcription_failed(), 5).unwrap(),
            Transition::AlreadyApplied
        );
        let back: Asset = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn transcription_outcomes_out_of_order_or_for_other_jobs_are_typed_errors() {
        // before the jobs are recorded: illegal (the handler retries until they are)
        let mut a = asset();
        for e in events().iter().take(2) {
            a = applied(&a, e);
        }
        for e in [transcription_failed(), done(AnalysisKind::Transcription)] {
            assert!(
                matches!(transition(&a, &e, 1), Err(TransitionError::Illegal { .. })),
                "{}",
                e.name()
            );
        }
        // a job the asset does not own
        let a = analysing_all();
        let stale = AssetEvent::AnalysisFailed {
            kind: AnalysisKind::Transcription,
            job_id: "cuepoint-other".into(),
            reason: "x".into(),
        };
        assert!(matches!(
            transition(&a, &stale, 1),
            Err(TransitionError::UnknownJob { .. })
        ));
        // an analysis never started (an asset from before the transcription existed)
        let mut old = a.clone();
        old.analyses.remove(&AnalysisKind::Transcription);
        assert!(matches!(
            transition(&old, &transcription_failed(), 1),
            Err(TransitionError::UnknownAnalysis { .. })
        ));
        // a failed asset is moved by nothing
        let f = applied(
            &a,
            &AssetEvent::Failed {
                stage: FailureStage::Analysis(AnalysisKind::Segments),
                reason: "r".into(),
            },
        );
        assert!(matches!(
            transition(&f, &transcription_failed(), 1),
            Err(TransitionError::Illegal { .. })
        ));
    }

    #[test]
    fn records_from_before_the_reason_field_still_read() {
        let old = r#"{"job_id":"j","client_token":"t","submitted_at_ms":1,"status":"SUCCEEDED"}"#;
        let j: JobRecord = serde_json::from_str(old).unwrap();
        assert_eq!(j.reason, None);
        assert_eq!(serde_json::to_string(&j).unwrap(), old);
    }

    #[test]
    fn timestamps_follow_state_changes() {
        let a = asset();
        let b = applied(&a, &events()[0]);
        assert_eq!(b.state_entered_at_ms, 100);
        assert_eq!(b.updated_at_ms, 100);
        assert_eq!(
            b.version, a.version,
            "the store bumps the version, not the state machine"
        );
    }

    #[test]
    fn asset_round_trips_through_json() {
        let mut a = asset();
        for e in events() {
            a = applied(&a, &e);
            let back: Asset = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            assert_eq!(back, a);
        }
    }

    #[test]
    fn failure_stages_keep_their_stored_text() {
        let stages = [
            (FailureStage::Probe, "probe"),
            (FailureStage::Transcode, "transcode"),
            (FailureStage::Loudness, "loudness"),
            (
                FailureStage::Analysis(AnalysisKind::Labels),
                "analysis:labels",
            ),
            (
                FailureStage::Analysis(AnalysisKind::Moderation),
                "analysis:moderation",
            ),
            (FailureStage::Scoring, "scoring"),
            (FailureStage::Packaging, "packaging"),
            (FailureStage::Stuck, "stuck"),
        ];
        for (stage, text) in stages {
            assert_eq!(
                serde_json::to_value(stage).unwrap(),
                serde_json::json!(text)
            );
            assert_eq!(
                serde_json::from_value::<FailureStage>(serde_json::json!(text)).unwrap(),
                stage
            );
        }
        // A record written before the stage was typed loads as it was.
        let mut stored = serde_json::to_value(asset()).unwrap();
        stored["state"] = serde_json::json!("FAILED");
        stored["failure"] = serde_json::json!({"stage": "analysis:faces", "reason": "FAILED"});
        let a: Asset = serde_json::from_value(stored).unwrap();
        assert_eq!(
            a.failure.unwrap().stage,
            FailureStage::Analysis(AnalysisKind::Faces)
        );
        for bad in ["", "analysis:", "analysis:nope", "Probe", "x"] {
            assert!(FailureStage::parse(bad).is_none(), "{bad:?}");
        }
    }

    /// The asset after the first `n` happy-path events (0: Registered ... 5: Analysed).
    fn after(n: usize) -> Asset {
        let mut a = asset();
        for e in events().iter().take(n) {
            a = applied(&a, e);
        }
        a
    }

    fn failed(a: &Asset, stage: FailureStage, reason: &str) -> Asset {
        applied(
            a,
            &AssetEvent::Failed {
                stage,
                reason: reason.into(),
            },
        )
    }

    const DISK_FULL: &str = "MediaConvert job mc-1 failed: error 1999: infrastructure fault (transient; retried 12 times): No space left on device";

    #[test]
    fn failures_say_whether_they_can_heal() {
        let t = FailureKind::Transient;
        let p = FailureKind::Permanent;
        let cases = [
            (FailureStage::Transcode, DISK_FULL, t),
            (FailureStage::Transcode, "av_interleaved_write_frame(): No space left on device", t),
            (FailureStage::Analysis(AnalysisKind::Segments), "Rekognition StartSegmentDetection job j ended FAILED: infrastructure fault: ffprobe was not found", t),
            (FailureStage::Scoring, "database is locked", t),
            (FailureStage::Stuck, "stuck in TRANSCODING for more than 21600 s", t),
            (FailureStage::Transcode, "MediaConvert job mc-1 failed: error 1010: Unable to open input file", p),
            (FailureStage::Analysis(AnalysisKind::Segments), "Rekognition job ended FAILED: Unsupported codec", p),
            (FailureStage::Loudness, "loudness log for track 1 missing", p),
            (FailureStage::Scoring, "no slot scored", p),
            // Unusable media; a probe that could not run never fails an asset.
            (FailureStage::Probe, "infrastructure fault: ffprobe was not found", p),
        ];
        for (stage, reason, want) in cases {
            assert_eq!(
                FailureKind::classify(stage, reason),
                want,
                "{stage}: {reason}"
            );
            let f = failed(&after(1), stage, reason).failure.unwrap();
            assert_eq!(f.kind, want, "{stage}: {reason}");
            assert_eq!(f.failed_in, Some(AssetState::Transcoding));
        }
    }

    #[test]
    fn a_record_from_before_the_kind_classifies_its_reason() {
        let mut stored = serde_json::to_value(asset()).unwrap();
        stored["state"] = serde_json::json!("FAILED");
        stored["failure"] = serde_json::json!({"stage": "transcode", "reason": DISK_FULL});
        let a: Asset = serde_json::from_value(stored.clone()).unwrap();
        let f = a.failure.clone().unwrap();
        assert_eq!((f.kind, f.failed_in), (FailureKind::Transient, None));
        assert_eq!(f.restart_state(), Some(AssetState::Registered));
        // Re-drivable as a new record is.
        let b = applied(&a, &AssetEvent::Retried { attempt: 1 });
        assert_eq!(b.state, AssetState::Registered);
        stored["failure"] =
            serde_json::json!({"stage": "transcode", "reason": "error 1010: bad input"});
        let a: Asset = serde_json::from_value(stored).unwrap();
        assert_eq!(a.failure.unwrap().kind, FailureKind::Permanent);
        // A stored kind stands, and round-trips.
        let f = failed(
            &after(3),
            FailureStage::Analysis(AnalysisKind::Faces),
            "FAILED",
        );
        let back: Asset = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn a_transient_failure_is_re_driven_to_the_state_that_restarts_its_stage() {
        // (events applied before the failure, stage, where the re-drive puts the asset)
        let cases = [
            (0, FailureStage::Transcode, AssetState::Registered),
            (1, FailureStage::Transcode, AssetState::Registered),
            (1, FailureStage::Loudness, AssetState::Registered),
            (2, FailureStage::Stuck, AssetState::MediaPrepared),
            (
                3,
                FailureStage::Analysis(AnalysisKind::Segments),
                AssetState::MediaPrepared,
            ),
            (
                4,
                FailureStage::Analysis(AnalysisKind::Segments),
                AssetState::MediaPrepared,
            ),
            (5, FailureStage::Scoring, AssetState::Analysed),
            (5, FailureStage::Stuck, AssetState::Analysed),
            (6, FailureStage::Stuck, AssetState::Scored),
            (7, FailureStage::Packaging, AssetState::Scored),
        ];
        for (n, stage, want) in cases {
            let before = after(n);
            let f = failed(
                &before,
                stage,
                "infrastructure fault: No space left on device",
            );
            let retry = AssetEvent::Retried { attempt: 1 };
            let r = applied(&f, &retry);
            assert_eq!(r.state, want, "{stage} after {n} events");
            assert_eq!((r.retries, r.failure.clone()), (1, None));
            assert_eq!(r.attempt_suffix(), "-r1");
            assert_eq!(r.state_entered_at_ms, 100);
            if want == AssetState::MediaPrepared {
                assert!(r.analyses.is_empty(), "every analysis starts again");
                assert_eq!(r.results.proxy, before.results.proxy);
            }
            if want == AssetState::Registered {
                if let Some(j) = &r.transcode {
                    assert_eq!(
                        j.status,
                        JobStatus::Failed,
                        "the old job stays known, failed"
                    );
                }
                assert_eq!(r.results.proxy, None);
            }
            // Exactly once: the same attempt again, now or after the asset moved on, is a repeat.
            assert_eq!(
                transition(&r, &retry, 200).unwrap(),
                Transition::AlreadyApplied
            );
            let mut later = r.clone();
            for e in events().iter().skip(match want {
                AssetState::Registered => 0,
                AssetState::MediaPrepared => 2,
                AssetState::Analysed => 5,
                _ => 6,
            }) {
                let e = match e {
                    AssetEvent::TranscodeSubmitted { .. } => {
                        AssetEvent::TranscodeSubmitted { job: job("mc-r1") }
                    }
                    AssetEvent::MediaPrepared { audio, proxy, .. } => AssetEvent::MediaPrepared {
                        job_id: "mc-r1".into(),
                        audio: audio.clone(),
                        proxy: proxy.clone(),
                    },
                    AssetEvent::PackagingSubmitted { .. } => {
                        AssetEvent::PackagingSubmitted { job: job("pk-r1") }
                    }
                    AssetEvent::Packaged { hls_master, .. } => AssetEvent::Packaged {
                        job_id: "pk-r1".into(),
                        hls_master: hls_master.clone(),
                    },
                    e => e.clone(),
                };
                later = applied(&later, &e);
                assert_eq!(
                    transition(&later, &retry, 300).unwrap(),
                    Transition::AlreadyApplied
                );
            }
            assert_eq!(
                later.state,
                AssetState::Complete,
                "{stage} after {n} events"
            );
            // The next attempt needs a new failure first.
            assert!(matches!(
                transition(&later, &AssetEvent::Retried { attempt: 2 }, 1),
                Err(TransitionError::Illegal { .. })
            ));
        }
    }

    #[test]
    fn a_re_driven_transcode_takes_a_new_job_and_refuses_the_old_ones() {
        let f = failed(&after(1), FailureStage::Transcode, DISK_FULL);
        let r = applied(&f, &AssetEvent::Retried { attempt: 1 });
        let old_done = events()[1].clone(); // MediaPrepared of mc-1
        assert!(matches!(
            transition(&r, &old_done, 1),
            Err(TransitionError::Illegal { .. })
        ));
        let t = applied(&r, &AssetEvent::TranscodeSubmitted { job: job("mc-r1") });
        assert_eq!(t.transcode.as_ref().unwrap().job_id, "mc-r1");
        assert_eq!(t.transcode.as_ref().unwrap().status, JobStatus::Submitted);
        assert!(matches!(
            transition(&t, &old_done, 1),
            Err(TransitionError::UnknownJob {
                expected: Some(_),
                ..
            })
        ));
        assert!(matches!(
            transition(&t, &AssetEvent::TranscodeSubmitted { job: job("mc-1") }, 1),
            Err(TransitionError::UnknownJob { .. })
        ));
        // Failing again transiently allows a second re-drive, and only the second.
        let f2 = failed(&t, FailureStage::Transcode, DISK_FULL);
        assert_eq!(
            transition(&f2, &AssetEvent::Retried { attempt: 1 }, 1).unwrap(),
            Transition::AlreadyApplied
        );
        assert!(matches!(
            transition(&f2, &AssetEvent::Retried { attempt: 3 }, 1),
            Err(TransitionError::RetryAttempt {
                expected: 2,
                got: 3,
                ..
            })
        ));
        let r2 = applied(&f2, &AssetEvent::Retried { attempt: 2 });
        assert_eq!(
            (r2.state, r2.retries, r2.attempt_suffix().as_str()),
            (AssetState::Registered, 2, "-r2")
        );
    }

    #[test]
    fn a_permanent_failure_is_not_re_driven_and_says_why() {
        let f = failed(&after(1), FailureStage::Transcode, "MediaConvert job mc-1 failed: error 1010: Unable to open input file [s3://in/a.mov]: moov atom not found");
        let err = transition(&f, &AssetEvent::Retried { attempt: 1 }, 1).unwrap_err();
        assert!(
            matches!(
                err,
                TransitionError::NotRetriable {
                    kind: FailureKind::Permanent,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("moov atom not found")
                && text.contains("transcode")
                && text.contains("permanent"),
            "{text}"
        );
        let unusable = failed(
            &asset(),
            FailureStage::Probe,
            "s3://in/a.mov: no video stream",
        );
        assert!(matches!(
            transition(&unusable, &AssetEvent::Retried { attempt: 1 }, 1),
            Err(TransitionError::NotRetriable { .. })
        ));
    }

    #[test]
    fn retried_is_applied_only_to_a_transiently_failed_asset_in_every_state() {
        // Every state (with and without a failure of each kind) against the first re-drive.
        let stages = [
            FailureStage::Probe,
            FailureStage::Transcode,
            FailureStage::Loudness,
            FailureStage::Analysis(AnalysisKind::Labels),
            FailureStage::Scoring,
            FailureStage::Packaging,
            FailureStage::Stuck,
        ];
        let retry = AssetEvent::Retried { attempt: 1 };
        for n in 0..=8 {
            let a = after(n);
            assert!(
                matches!(
                    transition(&a, &retry, 1),
                    Err(TransitionError::Illegal { .. })
                ),
                "{} is not failed",
                a.state
            );
            if a.state == AssetState::Complete {
                continue;
            }
            for stage in stages {
                for reason in ["infrastructure fault: disk", "bad media"] {
                    let f = failed(&a, stage, reason);
                    let kind = f.failure.as_ref().unwrap().kind;
                    let r = transition(&f, &retry, 1);
                    if kind == FailureKind::Transient {
                        assert!(
                            matches!(r, Ok(Transition::Applied(_))),
                            "{stage} {reason} in {}: {r:?}",
                            a.state
                        );
                    } else {
                        assert!(
                            matches!(r, Err(TransitionError::NotRetriable { .. })),
                            "{stage} {reason} in {}: {r:?}",
                            a.state
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_job_not_yet_recorded_is_not_a_sentinel() {
        let a = asset();
        let e = AssetEvent::MediaPrepared {
            job_id: "mc-1".into(),
            audio: audio(),
            proxy: uri("s3://out/a/p.mp4"),
        };
        let err = transition(&a, &e, 1).unwrap_err();
        assert!(
            matches!(err, TransitionError::UnknownJob { expected: None, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("records no job yet"), "{err}");
        let b = applied(&a, &events()[0]);
        let stale = AssetEvent::TranscodeSubmitted { job: job("mc-2") };
        let err = transition(&b, &stale, 1).unwrap_err();
        assert!(
            matches!(&err, TransitionError::UnknownJob { expected: Some(j), .. } if j == "mc-1"),
            "{err:?}"
        );
    }
}
