//! MediaConvert "Job State Change" events.
//!
//! Shapes follow the MediaConvert user guide ("Events with COMPLETE status", "Events with ERROR
//! status", "Output file names and paths"). Only COMPLETE and ERROR are acted on; the other
//! statuses (PROGRESSING, STATUS_UPDATE, INPUT_INFORMATION, NEW_WARNING, QUEUE_HOP, CANCELED)
//! are `Inbound::Ignored` with a reason.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::envelope::{EventBridgeEvent, PutEventsEntry};
use super::inbound::{opt_str, opt_u64, req_str, Inbound, InboundError};

pub const SOURCE: &str = "aws.mediaconvert";
pub const DETAIL_TYPE: &str = "MediaConvert Job State Change";

/// `outputGroupDetails[].type` of an Apple HLS group.
pub const HLS_GROUP: &str = "HLS_GROUP";
/// `outputGroupDetails[].type` of a file group.
pub const FILE_GROUP: &str = "FILE_GROUP";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Complete,
    Error,
}

impl JobState {
    /// The `status` string MediaConvert sends.
    pub fn as_status(&self) -> &'static str {
        match self {
            Self::Complete => "COMPLETE",
            Self::Error => "ERROR",
        }
    }
}

/// `outputDetails[].videoDetails` (the QVBR statistics are not kept).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoDetails {
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub average_bitrate: Option<u64>,
}

/// One output group's details (`outputGroupDetails[]`), paths as `s3://` strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputGroupDetail {
    pub output_group_type: Option<String>,
    /// `outputDetails[].outputFilePaths[]`, flattened.
    pub output_file_paths: Vec<String>,
    /// `playlistFilePaths[]` (HLS/DASH groups).
    pub playlist_file_paths: Vec<String>,
    /// `outputDetails[].durationInMs` of the first output.
    pub duration_ms: Option<u64>,
    /// `outputDetails[].videoDetails` of the first output.
    pub video: Option<VideoDetails>,
}

/// A COMPLETE or ERROR job state change (other statuses are `Inbound::Ignored`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobStateChange {
    pub job_id: String,
    pub state: JobState,
    pub queue: Option<String>,
    pub user_metadata: BTreeMap<String, String>,
    pub output_group_details: Vec<OutputGroupDetail>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub timestamp_ms: Option<u64>,
}

impl JobStateChange {
    /// A `userMetadata` value (cuepoint correlates jobs by the ids it put there itself).
    pub fn user(&self, key: &str) -> Option<&str> {
        self.user_metadata.get(key).map(String::as_str)
    }

    /// Every output file path of every group, in event order.
    pub fn output_file_paths(&self) -> impl Iterator<Item = &str> {
        self.output_group_details
            .iter()
            .flat_map(|g| g.output_file_paths.iter().map(String::as_str))
    }

    /// The multivariant playlist of the (first) HLS group.
    pub fn hls_playlist(&self) -> Option<&str> {
        self.output_group_details
            .iter()
            .find(|g| g.output_group_type.as_deref() == Some(HLS_GROUP))
            .and_then(|g| g.playlist_file_paths.first())
            .map(String::as_str)
    }
}

/// The queue ARN MediaConvert names when a job runs on the account's default queue.
pub fn default_queue_arn(account: &str, region: &str) -> String {
    format!("arn:aws:mediaconvert:{region}:{account}:queues/Default")
}

/// The PutEvents entry MediaConvert would send for `job`, detail exactly as AWS shapes it:
/// `timestamp`, `accountId`, `queue` (the default queue's ARN when `job.queue` is `None`),
/// `jobId`, `status`, `userMetadata`, then `outputGroupDetails` (COMPLETE) or
/// `errorCode` + `errorMessage` (ERROR). The local media engine announces completion with it.
pub fn job_state_change_entry(job: &JobStateChange, account: &str, region: &str) -> PutEventsEntry {
    let mut d = Map::new();
    if let Some(ts) = job.timestamp_ms {
        d.insert("timestamp".into(), json!(ts));
    }
    d.insert("accountId".into(), json!(account));
    d.insert(
        "queue".into(),
        json!(job
            .queue
            .clone()
            .unwrap_or_else(|| default_queue_arn(account, region))),
    );
    d.insert("jobId".into(), json!(job.job_id));
    d.insert("status".into(), json!(job.state.as_status()));
    d.insert("userMetadata".into(), json!(job.user_metadata));
    match job.state {
        JobState::Complete => {
            let groups: Vec<Value> = job.output_group_details.iter().map(group_json).collect();
            d.insert("outputGroupDetails".into(), Value::Array(groups));
        }
        JobState::Error => {
            if let Some(code) = job.error_code {
                d.insert("errorCode".into(), json!(code));
            }
            if let Some(msg) = &job.error_message {
                d.insert("errorMessage".into(), json!(msg));
            }
        }
    }
    PutEventsEntry {
        source: SOURCE.to_string(),
        detail_type: DETAIL_TYPE.to_string(),
        detail: Value::Object(d).to_string(),
        resources: vec![format!(
            "arn:aws:mediaconvert:{region}:{account}:jobs/{}",
            job.job_id
        )],
        time_ms: job.timestamp_ms,
    }
}

/// One `outputGroupDetails[]` entry: one `outputDetails[]` per output file path, each carrying
/// the group's duration and video details (so reading back takes them from the first).
fn group_json(g: &OutputGroupDetail) -> Value {
    let outputs: Vec<Value> = g
        .output_file_paths
        .iter()
        .map(|p| {
            let mut o = Map::new();
            o.insert("outputFilePaths".into(), json!([p]));
            if let Some(ms) = g.duration_ms {
                o.insert("durationInMs".into(), json!(ms));
            }
            if let Some(v) = &g.video {
                let mut vd = Map::new();
                if let Some(b) = v.average_bitrate {
                    vd.insert("averageBitrate".into(), json!(b));
                }
                if let Some(w) = v.width_px {
                    vd.insert("widthInPx".into(), json!(w));
                }
                if let Some(h) = v.height_px {
                    vd.insert("heightInPx".into(), json!(h));
                }
                o.insert("videoDetails".into(), Value::Object(vd));
            }
            Value::Object(o)
        })
        .collect();
    let mut m = Map::new();
    m.insert("outputDetails".into(), Value::Array(outputs));
    if let Some(t) = &g.output_group_type {
        m.insert("type".into(), json!(t));
    }
    if !g.playlist_file_paths.is_empty() {
        m.insert("playlistFilePaths".into(), json!(g.playlist_file_paths));
    }
    Value::Object(m)
}

const WHAT: &str = "MediaConvert Job State Change";

/// A delivered MediaConvert event. COMPLETE/ERROR become `Inbound::MediaConvert`; other statuses
/// `Ignored`.
pub(crate) fn from_eventbridge(ev: &EventBridgeEvent<Value>) -> Result<Inbound, InboundError> {
    if ev.detail_type != DETAIL_TYPE {
        return Err(InboundError::UnknownShape(format!(
            "EventBridge event with source {SOURCE:?} and detail-type {:?}",
            ev.detail_type
        )));
    }
    let d = &ev.detail;
    let job_id = req_str(d, "jobId", WHAT)?.to_string();
    let status = req_str(d, "status", WHAT)?;
    let state = match status {
        "COMPLETE" => JobState::Complete,
        "ERROR" => JobState::Error,
        other => {
            return Ok(Inbound::Ignored {
                reason: format!("MediaConvert job {job_id} status {other} needs no action"),
            })
        }
    };
    let error_code = match d.get("errorCode") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| invalid(format!("errorCode {v} is not an integer")))?,
        ),
    };
    Ok(Inbound::MediaConvert(JobStateChange {
        job_id,
        state,
        queue: opt_str(d, "queue", WHAT)?,
        user_metadata: user_metadata(d)?,
        output_group_details: output_groups(d)?,
        error_code,
        error_message: opt_str(d, "errorMessage", WHAT)?,
        timestamp_ms: opt_u64(d, "timestamp", WHAT)?,
    }))
}

fn invalid(why: String) -> InboundError {
    InboundError::Invalid { what: WHAT, why }
}

fn user_metadata(d: &Value) -> Result<BTreeMap<String, String>, InboundError> {
    match d.get("userMetadata") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(invalid(format!(
                    "userMetadata.{k} is {other}, expected a string"
                ))),
            })
            .collect(),
        Some(other) => Err(invalid(format!(
            "userMetadata is {other}, expected an object"
        ))),
    }
}

fn output_groups(d: &Value) -> Result<Vec<OutputGroupDetail>, InboundError> {
    let groups = match d.get("outputGroupDetails") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(invalid(format!(
                "outputGroupDetails is {other}, expected an array"
            )))
        }
    };
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let at = |f: &str| format!("outputGroupDetails[{i}].{f}");
            let outputs = match g.get("outputDetails") {
                None | Some(Value::Null) => &[][..],
                Some(Value::Array(a)) => a.as_slice(),
                Some(_) => return Err(invalid(format!("{} is not an array", at("outputDetails")))),
            };
            let mut detail = OutputGroupDetail {
                output_group_type: opt_str(g, "type", WHAT)?,
                playlist_file_paths: strings(g.get("playlistFilePaths"), &at("playlistFilePaths"))?,
                ..Default::default()
            };
            for (j, o) in outputs.iter().enumerate() {
                let paths = strings(
                    o.get("outputFilePaths"),
                    &at(&format!("outputDetails[{j}].outputFilePaths")),
                )?;
                detail.output_file_paths.extend(paths);
                if j == 0 {
                    detail.duration_ms = opt_u64(o, "durationInMs", WHAT)?;
                    detail.video = match o.get("videoDetails") {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(VideoDetails {
                            width_px: opt_u32(v, "widthInPx")?,
                            height_px: opt_u32(v, "heightInPx")?,
                            average_bitrate: opt_u64(v, "averageBitrate", WHAT)?,
                        }),
                    };
                }
            }
            Ok(detail)
        })
        .collect()
}

fn opt_u32(v: &Value, key: &str) -> Result<Option<u32>, InboundError> {
    opt_u64(v, key, WHAT)?
        .map(|n| u32::try_from(n).map_err(|_| invalid(format!("{key} {n} is out of range"))))
        .transpose()
}

fn strings(v: Option<&Value>, at: &str) -> Result<Vec<String>, InboundError> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("{at} holds {s}, expected strings")))
            })
            .collect(),
        Some(other) => Err(invalid(format!(
            "{at} is {other}, expected an array of strings"
        ))),
    }
}
