//! Amazon Transcribe "Transcribe Job State Change" events, and the transcription job names
//! cuepoint derives from asset ids.
//!
//! Shape per the Transcribe developer guide ("Using Amazon EventBridge with Amazon Transcribe"):
//! `source` `aws.transcribe`, `detail-type` `Transcribe Job State Change`, `detail`
//! `{"TranscriptionJobName", "TranscriptionJobStatus"}` with status `COMPLETED` or `FAILED`.
//! The event carries no failure reason (GetTranscriptionJob has it) and no tag, so the job name
//! is what ties a job to its asset: `<workflow>-<asset id>`.

use serde_json::{json, Map, Value};

use super::envelope::{EventBridgeEvent, PutEventsEntry};
use super::inbound::{opt_str, req_str, Inbound, InboundError};
use crate::domain::AssetId;

pub const SOURCE: &str = "aws.transcribe";
pub const DETAIL_TYPE: &str = "Transcribe Job State Change";

/// Transcribe's limit on `TranscriptionJobName`.
pub const MAX_JOB_NAME_LEN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptionState {
    Completed,
    Failed,
}

impl TranscriptionState {
    /// The `TranscriptionJobStatus` string Transcribe sends.
    pub fn as_status(self) -> &'static str {
        match self {
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
}

/// A COMPLETED or FAILED transcription job (other statuses are `Inbound::Ignored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionJobStateChange {
    pub job_name: String,
    pub state: TranscriptionState,
    /// `FailureReason`, when a sender includes it (the local engine does; AWS documents none:
    /// read it with GetTranscriptionJob).
    pub failure_reason: Option<String>,
}

impl TranscriptionJobStateChange {
    pub fn succeeded(&self) -> bool {
        self.state == TranscriptionState::Completed
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobNameError {
    #[error("workflow name {0:?} cannot start a Transcribe job name (letters, digits, '.', '_', '-' only)")]
    Workflow(String),
    #[error("transcription job name {name:?} is not one workflow {workflow:?} starts (<workflow>-<asset id>)")]
    Foreign { name: String, workflow: String },
}

/// The transcription job name of an asset: `<workflow>-<asset id>`. Transcribe takes no client
/// token; a job name is unique in the account and region, so this name is the idempotency key.
pub fn job_name(workflow: &str, asset: &AssetId) -> Result<String, JobNameError> {
    attempt_job_name(workflow, asset, 0)
}

/// The job name of a re-driven asset's attempt `retries`: `<workflow>-<asset id>.r<n>` (the
/// first attempt's name is [`job_name`]; a name is never reused, even for a failed job). An
/// asset id holds no `.`, so the suffix cannot be mistaken for part of it.
pub fn attempt_job_name(
    workflow: &str,
    asset: &AssetId,
    retries: u32,
) -> Result<String, JobNameError> {
    let suffix = if retries == 0 {
        String::new()
    } else {
        format!(".r{retries}")
    };
    let ok = !workflow.is_empty()
        && workflow
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && workflow.len() + 1 + asset.as_str().len() + suffix.len() <= MAX_JOB_NAME_LEN;
    if !ok {
        return Err(JobNameError::Workflow(workflow.to_string()));
    }
    Ok(format!("{workflow}-{}{suffix}", asset.as_str()))
}

/// The asset a job name of `workflow` belongs to.
pub fn asset_of(job_name: &str, workflow: &str) -> Result<AssetId, JobNameError> {
    let foreign = || JobNameError::Foreign {
        name: job_name.to_string(),
        workflow: workflow.to_string(),
    };
    let rest = job_name
        .strip_prefix(workflow)
        .and_then(|r| r.strip_prefix('-'))
        .ok_or_else(foreign)?;
    let rest = match rest.rsplit_once(".r") {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => rest,
    };
    AssetId::parse(rest).map_err(|_| foreign())
}

/// The PutEvents entry Transcribe sends for `c` (the local engine announces with it).
pub fn job_state_change_entry(
    c: &TranscriptionJobStateChange,
    time_ms: Option<u64>,
) -> PutEventsEntry {
    let mut d = Map::new();
    d.insert("TranscriptionJobName".into(), json!(c.job_name));
    d.insert("TranscriptionJobStatus".into(), json!(c.state.as_status()));
    if let Some(r) = &c.failure_reason {
        d.insert("FailureReason".into(), json!(r));
    }
    PutEventsEntry {
        source: SOURCE.to_string(),
        detail_type: DETAIL_TYPE.to_string(),
        detail: Value::Object(d).to_string(),
        resources: vec![],
        time_ms,
    }
}

const WHAT: &str = "Transcribe Job State Change";

pub(crate) fn from_eventbridge(ev: &EventBridgeEvent<Value>) -> Result<Inbound, InboundError> {
    if ev.detail_type != DETAIL_TYPE {
        return Ok(Inbound::Ignored {
            reason: format!("Transcribe event {:?} needs no action", ev.detail_type),
        });
    }
    let d = &ev.detail;
    let job_name = req_str(d, "TranscriptionJobName", WHAT)?.to_string();
    let state = match req_str(d, "TranscriptionJobStatus", WHAT)? {
        "COMPLETED" => TranscriptionState::Completed,
        "FAILED" => TranscriptionState::Failed,
        other => {
            return Ok(Inbound::Ignored {
                reason: format!("transcription job {job_name} status {other} needs no action"),
            })
        }
    };
    Ok(Inbound::Transcribe(TranscriptionJobStateChange {
        job_name,
        state,
        failure_reason: opt_str(d, "FailureReason", WHAT)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_round_trip_and_refuse_strangers() {
        let id = AssetId::parse("a0123456789abcdef0123").unwrap();
        let name = job_name("cuepoint", &id).unwrap();
        assert_eq!(name, "cuepoint-a0123456789abcdef0123");
        assert_eq!(asset_of(&name, "cuepoint").unwrap(), id);
        // a workflow with dashes of its own
        let name = job_name("news-prod", &id).unwrap();
        assert_eq!(asset_of(&name, "news-prod").unwrap(), id);
        assert!(
            matches!(asset_of(&name, "news"), Ok(a) if a.as_str() == "prod-a0123456789abcdef0123")
        );
        assert!(matches!(
            asset_of("other-a1", "cuepoint"),
            Err(JobNameError::Foreign { .. })
        ));
        assert!(matches!(
            asset_of("cuepoint-", "cuepoint"),
            Err(JobNameError::Foreign { .. })
        ));
        assert!(matches!(
            asset_of("cuepointa1", "cuepoint"),
            Err(JobNameError::Foreign { .. })
        ));
        assert!(matches!(
            job_name("my workflow", &id),
            Err(JobNameError::Workflow(_))
        ));
        assert!(matches!(job_name("", &id), Err(JobNameError::Workflow(_))));
        // a re-driven asset's attempts have names of their own, of the same asset
        let again = attempt_job_name("news-prod", &id, 2).unwrap();
        assert_eq!(again, "news-prod-a0123456789abcdef0123.r2");
        assert_eq!(asset_of(&again, "news-prod").unwrap(), id);
        assert_eq!(attempt_job_name("news-prod", &id, 0).unwrap(), name);
        for bad in ["cuepoint-a1.r", "cuepoint-a1.rx", "cuepoint-a1.x2"] {
            assert!(asset_of(bad, "cuepoint").is_err(), "{bad}");
        }
        assert!(matches!(
            job_name(&"w".repeat(190), &id),
            Err(JobNameError::Workflow(_))
        ));
    }
}
