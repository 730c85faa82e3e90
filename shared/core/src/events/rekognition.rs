//! Rekognition Video completion notifications (published to SNS, delivered to SQS either
//! wrapped in the SNS envelope or raw).
//!
//! Payload per the Rekognition developer guide ("Reference: Video analysis results
//! notification"): `{"JobId","Status","API","JobTag","Timestamp","Video":{"S3ObjectName",
//! "S3Bucket"}}`. The guide's own example names the API `LABEL_DETECTION` while services name
//! the Start operation (`StartLabelDetection`); [`VideoJobCompletion::kind`] accepts both.

use serde_json::{json, Map, Value};

use crate::rekognition::AnalysisKind;

use super::inbound::{opt_str, opt_u64, req_str, InboundError};

/// SNS envelope `Type` of a published message.
pub const SNS_NOTIFICATION: &str = "Notification";

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
    /// `MessageId` of the SNS envelope when the notification was wrapped (for audit), else
    /// `None` (raw delivery).
    pub sns_message_id: Option<String>,
}

impl VideoJobCompletion {
    pub fn kind(&self) -> Option<AnalysisKind> {
        if let Some(kind) = AnalysisKind::from_start_api(&self.api) {
            return Some(kind);
        }
        // the developer guide's example spells the API this way
        match self.api.as_str() {
            "SEGMENT_DETECTION" => Some(AnalysisKind::Segments),
            "LABEL_DETECTION" => Some(AnalysisKind::Labels),
            "FACE_DETECTION" => Some(AnalysisKind::Faces),
            "CELEBRITY_RECOGNITION" => Some(AnalysisKind::Celebrities),
            "CONTENT_MODERATION" => Some(AnalysisKind::Moderation),
            _ => None,
        }
    }
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}

/// The notification Rekognition publishes to SNS for `c` (the `Message` of the SNS envelope,
/// or the whole SQS body with raw message delivery). `sns_message_id` is not part of it.
pub fn completion_message(c: &VideoJobCompletion) -> String {
    let mut m = Map::new();
    m.insert("JobId".into(), json!(c.job_id));
    m.insert("Status".into(), json!(c.status));
    m.insert("API".into(), json!(c.api));
    if let Some(tag) = &c.job_tag {
        m.insert("JobTag".into(), json!(tag));
    }
    if let Some(ts) = c.timestamp_ms {
        m.insert("Timestamp".into(), json!(ts));
    }
    if c.video_key.is_some() || c.video_bucket.is_some() {
        let mut v = Map::new();
        if let Some(k) = &c.video_key {
            v.insert("S3ObjectName".into(), json!(k));
        }
        if let Some(b) = &c.video_bucket {
            v.insert("S3Bucket".into(), json!(b));
        }
        m.insert("Video".into(), Value::Object(v));
    }
    Value::Object(m).to_string()
}

/// The body SNS delivers to an SQS subscriber without raw message delivery. The signature
/// fields (`SignatureVersion`, `Signature`, `SigningCertURL`, `UnsubscribeURL`) are left out:
/// a local topic cannot sign, and cuepoint's consumers do not verify them.
pub fn sns_envelope(
    message: &str,
    topic_arn: &str,
    message_id: &str,
    timestamp_rfc3339: &str,
) -> String {
    json!({
        "Type": SNS_NOTIFICATION,
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": timestamp_rfc3339,
    })
    .to_string()
}

/// Does this JSON object look like a Rekognition Video completion?
pub(crate) fn is_completion(v: &Value) -> bool {
    v.get("JobId").is_some() && v.get("Status").is_some() && v.get("API").is_some()
}

pub(crate) fn from_value(
    v: &Value,
    sns_message_id: Option<String>,
) -> Result<VideoJobCompletion, InboundError> {
    const WHAT: &str = "Rekognition completion notification";
    let video = match v.get("Video") {
        None | Some(Value::Null) => None,
        Some(o @ Value::Object(_)) => Some(o),
        Some(other) => {
            return Err(InboundError::Invalid {
                what: WHAT,
                why: format!("Video is {other}, expected an object"),
            })
        }
    };
    Ok(VideoJobCompletion {
        job_id: req_str(v, "JobId", WHAT)?.to_string(),
        status: req_str(v, "Status", WHAT)?.to_string(),
        api: req_str(v, "API", WHAT)?.to_string(),
        job_tag: opt_str(v, "JobTag", WHAT)?,
        timestamp_ms: opt_u64(v, "Timestamp", WHAT)?,
        video_bucket: video
            .map(|o| opt_str(o, "S3Bucket", WHAT))
            .transpose()?
            .flatten(),
        video_key: video
            .map(|o| opt_str(o, "S3ObjectName", WHAT))
            .transpose()?
            .flatten(),
        sns_message_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_accepts_start_operation_and_documented_names() {
        let mut c = VideoJobCompletion {
            job_id: "j".into(),
            status: "SUCCEEDED".into(),
            api: "StartSegmentDetection".into(),
            job_tag: None,
            timestamp_ms: None,
            video_bucket: None,
            video_key: None,
            sns_message_id: None,
        };
        assert_eq!(c.kind(), Some(AnalysisKind::Segments));
        c.api = "LABEL_DETECTION".into();
        assert_eq!(c.kind(), Some(AnalysisKind::Labels));
        c.api = "StartPersonTracking".into();
        assert_eq!(c.kind(), None);
        assert!(c.succeeded());
        c.status = "FAILED".into();
        assert!(!c.succeeded());
    }

    #[test]
    fn message_omits_absent_fields() {
        let c = VideoJobCompletion {
            job_id: "j1".into(),
            status: "ERROR".into(),
            api: "StartLabelDetection".into(),
            job_tag: None,
            timestamp_ms: None,
            video_bucket: None,
            video_key: None,
            sns_message_id: Some("ignored".into()),
        };
        let v: Value = serde_json::from_str(&completion_message(&c)).unwrap();
        assert_eq!(
            v,
            json!({"API": "StartLabelDetection", "JobId": "j1", "Status": "ERROR"})
        );
    }
}
