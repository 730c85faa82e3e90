//! The EventBridge event envelope, generic over its `detail` (as in aws-lambda-rust-runtime's
//! `EventBridgeEvent<T>`). This is the body an EventBridge rule delivers to an SQS target.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBridgeEvent<T> {
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: T,
}

fn default_version() -> String {
    "0".to_string()
}

/// One entry of a PutEvents request (what a publisher sends; the bus adds id, time, account).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PutEventsEntry {
    pub source: String,
    pub detail_type: String,
    /// The detail as a JSON string, as PutEvents takes it.
    pub detail: String,
    #[serde(default)]
    pub resources: Vec<String>,
    /// Milliseconds since the epoch; `None` lets the bus stamp it.
    #[serde(default)]
    pub time_ms: Option<u64>,
}

impl PutEventsEntry {
    /// Wrap the entry into the envelope a rule target receives.
    pub fn into_envelope(
        self,
        id: String,
        account: &str,
        region: &str,
        time: String,
    ) -> Result<EventBridgeEvent<serde_json::Value>, serde_json::Error> {
        Ok(EventBridgeEvent {
            version: "0".into(),
            id,
            detail_type: self.detail_type,
            source: self.source,
            account: account.to_string(),
            time,
            region: region.to_string(),
            resources: self.resources,
            detail: serde_json::from_str(&self.detail)?,
        })
    }
}
