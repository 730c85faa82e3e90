//! MediaConvert "Job State Change" events.
//! OWNER: events helper (serde shapes, fixtures, tests). Public API below is relied on by workers.

use std::collections::BTreeMap;

pub const SOURCE: &str = "aws.mediaconvert";
pub const DETAIL_TYPE: &str = "MediaConvert Job State Change";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Complete,
    Error,
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
