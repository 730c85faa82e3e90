//! Classify a queue message body into the event it carries.
//! OWNER: events helper. Public API below is relied on by workers.
//!
//! Shapes recognised, as they appear in an SQS message body:
//! - an EventBridge envelope (`source` + `detail-type` + `detail`): `aws.s3`, `aws.mediaconvert`,
//!   `cuepoint.pipeline`;
//! - the S3 notification form `{"Records": [...]}` and its `s3:TestEvent`;
//! - a Rekognition Video completion, raw or inside an SNS `Notification` envelope (any of the
//!   above inside an SNS envelope is unwrapped the same way).

use serde_json::Value;

use super::envelope::EventBridgeEvent;
use super::mediaconvert::{self, JobStateChange};
use super::pipeline::{PipelineEvent, PIPELINE_SOURCE};
use super::rekognition::{self, VideoJobCompletion, SNS_NOTIFICATION};
use super::s3::{self, ObjectCreated};

/// What a queue message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    S3ObjectCreated(ObjectCreated),
    MediaConvert(JobStateChange),
    Rekognition(VideoJobCompletion),
    Pipeline(PipelineEvent),
    /// A well-formed event that needs no action (MediaConvert PROGRESSING, s3:TestEvent, ...).
    Ignored { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("unrecognised event shape: {0}")]
    UnknownShape(String),
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
}

/// Parse one SQS message body. A body may carry several events (S3 notification `Records`).
pub fn parse_message(body: &str) -> Result<Vec<Inbound>, InboundError> {
    let v: Value = serde_json::from_str(body).map_err(|e| InboundError::NotJson(e.to_string()))?;
    classify(&v, None)
}

/// `sns_message_id` is `Some` when `v` came out of an SNS envelope (which is never nested).
fn classify(v: &Value, sns_message_id: Option<String>) -> Result<Vec<Inbound>, InboundError> {
    let Value::Object(obj) = v else {
        return Err(InboundError::UnknownShape(format!("a JSON {}, expected an object", kind_of(v))));
    };

    if sns_message_id.is_none() && obj.contains_key("TopicArn") {
        if let Some(Value::String(t)) = obj.get("Type") {
            return from_sns(v, t);
        }
    }

    if obj.contains_key("detail-type") && obj.contains_key("source") {
        return from_eventbridge(v).map(|i| vec![i]);
    }

    if let Some(records) = obj.get("Records") {
        let Value::Array(records) = records else {
            return Err(InboundError::Invalid { what: "S3 notification", why: format!("Records is {records}, expected an array") });
        };
        return s3::from_records(records);
    }

    if obj.get("Event").and_then(Value::as_str) == Some(s3::TEST_EVENT) {
        let bucket = obj.get("Bucket").and_then(Value::as_str).unwrap_or("?");
        return Ok(vec![Inbound::Ignored { reason: format!("S3 test event for bucket {bucket}") }]);
    }

    if rekognition::is_completion(v) {
        return Ok(vec![Inbound::Rekognition(rekognition::from_value(v, sns_message_id)?)]);
    }

    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let shown = keys.iter().take(12).copied().collect::<Vec<_>>().join(", ");
    let more = if keys.len() > 12 { format!(", ... ({} keys)", keys.len()) } else { String::new() };
    let inside = if sns_message_id.is_some() { " inside an SNS notification" } else { "" };
    Err(InboundError::UnknownShape(format!("JSON object{inside} with keys [{shown}{more}]")))
}

fn from_sns(v: &Value, msg_type: &str) -> Result<Vec<Inbound>, InboundError> {
    const WHAT: &str = "SNS notification";
    let topic = req_str(v, "TopicArn", WHAT)?;
    if msg_type != SNS_NOTIFICATION {
        // SubscriptionConfirmation / UnsubscribeConfirmation reach a queue subscribed across accounts.
        return Ok(vec![Inbound::Ignored { reason: format!("SNS {msg_type} from {topic}") }]);
    }
    let id = req_str(v, "MessageId", WHAT)?.to_string();
    let message = req_str(v, "Message", WHAT)?;
    let inner: Value = serde_json::from_str(message).map_err(|e| {
        InboundError::UnknownShape(format!("SNS notification {id} from {topic} whose Message is not JSON ({e})"))
    })?;
    classify(&inner, Some(id))
}

fn from_eventbridge(v: &Value) -> Result<Inbound, InboundError> {
    let ev: EventBridgeEvent<Value> = serde_json::from_value(v.clone())
        .map_err(|e| InboundError::Invalid { what: "EventBridge event", why: e.to_string() })?;
    match ev.source.as_str() {
        s3::SOURCE => s3::from_eventbridge(&ev),
        mediaconvert::SOURCE => mediaconvert::from_eventbridge(&ev),
        PIPELINE_SOURCE => PipelineEvent::from_envelope(&ev)
            .map(Inbound::Pipeline)
            .map_err(|e| InboundError::Invalid { what: "pipeline event", why: e.to_string() }),
        other => Err(InboundError::UnknownShape(format!(
            "EventBridge event with source {other:?} and detail-type {:?}",
            ev.detail_type
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// Field readers shared by the event modules: each error names the field and what holds it.

pub(crate) fn req_str<'a>(v: &'a Value, key: &str, what: &'static str) -> Result<&'a str, InboundError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(InboundError::Invalid { what, why: format!("{key} is missing") }),
        Some(other) => Err(InboundError::Invalid { what, why: format!("{key} is {other}, expected a string") }),
    }
}

pub(crate) fn req_obj<'a>(v: &'a Value, key: &str, what: &'static str) -> Result<&'a Value, InboundError> {
    match v.get(key) {
        Some(o @ Value::Object(_)) => Ok(o),
        None | Some(Value::Null) => Err(InboundError::Invalid { what, why: format!("{key} is missing") }),
        Some(other) => Err(InboundError::Invalid { what, why: format!("{key} is {other}, expected an object") }),
    }
}

/// Absent or `null` is `None`; anything but a string is an error.
pub(crate) fn opt_str(v: &Value, key: &str, what: &'static str) -> Result<Option<String>, InboundError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(InboundError::Invalid { what, why: format!("{key} is {other}, expected a string") }),
    }
}

/// Absent or `null` is `None`; anything but a non-negative integer is an error.
pub(crate) fn opt_u64(v: &Value, key: &str, what: &'static str) -> Result<Option<u64>, InboundError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| InboundError::Invalid { what, why: format!("{key} is {n}, expected a non-negative integer") }),
    }
}
