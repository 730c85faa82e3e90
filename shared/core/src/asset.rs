//! The asset record and its state machine.
//!
//! ```text
//! Registered ──TranscodeSubmitted──▶ Transcoding ──MediaPrepared──▶ MediaPrepared
//!     ──AnalysesStarted──▶ Analysing ──AnalysisCompleted|AnalysisFailed(last kind)──▶ Analysed
//!     ──Scored──▶ Complete
//! any non-terminal state ──Failed──▶ Failed
//! ```
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
    Complete,
    Failed,
}

impl AssetState {
    pub const ALL: [AssetState; 7] = [
        Self::Registered,
        Self::Transcoding,
        Self::MediaPrepared,
        Self::Analysing,
        Self::Analysed,
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
            Self::Complete => Some(5),
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
pub struct Failure {
    pub stage: FailureStage,
    pub reason: String,
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
    /// Corrections of the breaks by people, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<BreakEdit>,
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
            edits: Vec::new(),
        }
    }

    /// The VMAP version the current breaks are in (1: as scored, then one more per edit).
    pub fn vmap_version(&self) -> u32 {
        self.edits.last().map(|e| e.version).unwrap_or(1)
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
}

/// What happened to an asset: the inputs of the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AssetEvent {
    /// The transcode job was created (or found) for this asset.
    TranscodeSubmitted { job: JobRecord },
    /// The transcode job completed and its loudness logs were read.
    MediaPrepared {
        job_id: String,
        audio: AudioReport,
        hls_master: S3Uri,
        proxy: S3Uri,
    },
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
    /// Something failed for good.
    Failed { stage: FailureStage, reason: String },
    /// A person corrected the breaks of a complete asset.
    BreaksEdited { edit: BreakEdit },
}

impl AssetEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::TranscodeSubmitted { .. } => "TranscodeSubmitted",
            Self::MediaPrepared { .. } => "MediaPrepared",
            Self::AnalysesStarted { .. } => "AnalysesStarted",
            Self::AnalysisCompleted { .. } => "AnalysisCompleted",
            Self::AnalysisFailed { .. } => "AnalysisFailed",
            Self::Scored { .. } => "Scored",
            Self::Failed { .. } => "Failed",
            Self::BreaksEdited { .. } => "BreaksEdited",
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
            hls_master,
            proxy,
        } => {
            check_transcode_job(asset, job_id, event.name())?;
            match asset.state {
                S::Transcoding => {
                    if let Some(j) = next.transcode.as_mut() {
                        j.status = JobStatus::Succeeded;
                    }
                    next.audio = Some(audio.clone());
                    next.results.hls_master = Some(hls_master.clone());
                    next.results.proxy = Some(proxy.clone());
                    next.state = S::MediaPrepared;
                }
                s if s.at_or_after(S::MediaPrepared) => return Ok(Transition::AlreadyApplied),
                _ => return Err(illegal()),
            }
        }
        AssetEvent::AnalysesStarted { jobs } => match asset.state {
            S::MediaPrepared => {
                if jobs.is_empty() {
                    return Err(TransitionError::NoAnalyses {
                        asset: asset.id.clone(),
                    });
                }
                next.analyses = jobs.clone();
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
                next.state = S::Complete;
            }
            S::Complete => return Ok(Transition::AlreadyApplied),
            _ => return Err(illegal()),
        },
        AssetEvent::Failed { stage, reason } => match asset.state {
            S::Failed => return Ok(Transition::AlreadyApplied),
            S::Complete => return Err(illegal()),
            _ => {
                next.failure = Some(Failure {
                    stage: *stage,
                    reason: reason.clone(),
                });
                next.state = S::Failed;
            }
        },
        AssetEvent::BreaksEdited { edit } => match asset.state {
            S::Complete => {
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
                // edit); `edit.vmap` is the kept copy of this version.
                next.breaks = edit.breaks.clone();
                next.edits.push(edit.clone());
            }
            _ => return Err(illegal()),
        },
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
                hls_master: uri("s3://out/a/hls/index.m3u8"),
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
        ]
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
            AssetState::Complete,
        ];
        for (e, want) in events().iter().zip(expected) {
            a = applied(&a, e);
            assert_eq!(a.state, want, "after {}", e.name());
        }
        assert_eq!(a.results.vmap, Some(uri("s3://out/a/ad_breaks.vmap")));
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
        a = applied(&a, &events()[5]);
        assert_eq!(a.vmap_version(), 1);
        let b = applied(&a, &first);
        assert_eq!(b.vmap_version(), 2);
        assert_eq!(b.breaks[0].timestamp, 12.0);
        assert_eq!(
            b.results.vmap, a.results.vmap,
            "the current VMAP keeps its name"
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
            hls_master: uri("s3://out/a/h.m3u8"),
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
        let done = applied(&a, &events()[5]);
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
        a = applied(&a, &events()[5]);
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

    #[test]
    fn a_job_not_yet_recorded_is_not_a_sentinel() {
        let a = asset();
        let e = AssetEvent::MediaPrepared {
            job_id: "mc-1".into(),
            audio: audio(),
            hls_master: uri("s3://out/a/h.m3u8"),
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
