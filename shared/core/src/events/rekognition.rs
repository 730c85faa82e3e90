//! Rekognition Video completion notifications (published to SNS, delivered to SQS either
//! wrapped in the SNS envelope or raw).
//! OWNER: events helper (serde shapes, fixtures, tests). Public API below is relied on by workers.

use crate::rekognition::AnalysisKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoJobCompletion {
    pub job_id: String,
    /// `SUCCEEDED`, `FAILED` or `ERROR`.
    pub status: String,
    /// e.g. `StartSegmentDetection`.
    pub api: String,
    pub job_tag: Option<String>,
    pub timestamp_ms: Option<u64>,
    pub video_bucket: Option<String>,
    pub video_key: Option<String>,
    /// `Message` of the SNS envelope when it was wrapped (for audit), else `None`.
    pub sns_message_id: Option<String>,
}

impl VideoJobCompletion {
    pub fn kind(&self) -> Option<AnalysisKind> {
        AnalysisKind::from_start_api(&self.api)
    }
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}
