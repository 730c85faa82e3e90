//! cuepoint's own pipeline events, published on the event bus with source [`PIPELINE_SOURCE`].
//!
//! Every event carries a deterministic `eventId` (`<asset>:<kind>`): an asset takes each step
//! once, so a re-announcement after a crash has the same id as the first announcement and
//! consumers (and the embedded bus) can drop the copy.

use serde::{Deserialize, Serialize};

use crate::domain::{AssetId, S3Uri};

use super::envelope::{EventBridgeEvent, PutEventsEntry};

pub const PIPELINE_SOURCE: &str = "cuepoint.pipeline";

fn first_version() -> u32 {
    1
}

/// The step an event announces. Serialized into the EventBridge `detail-type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PipelineDetail {
    /// Ingest registered the asset and submitted its transcode.
    TranscodeSubmitted { job_id: String },
    /// Transcode done, audio verdicts known: start the analyses.
    MediaPrepared { proxy: S3Uri },
    /// Every analysis landed: score the slots.
    AnalysesCompleted,
    /// Breaks chosen and the VMAP (version `version`) written: package the HLS ladder with a
    /// segment boundary and cue markers at each break.
    BreaksChosen {
        version: u32,
        vmap: S3Uri,
        breaks: usize,
    },
    /// Terminal: VMAP and results are written, and the ladder is packaged with the breaks of
    /// VMAP version `version` (1 unless a person edited the breaks; absent in events from before
    /// edits existed).
    AssetCompleted {
        vmap: S3Uri,
        breaks: usize,
        #[serde(default = "first_version")]
        version: u32,
    },
    /// Terminal: the asset failed at `stage`.
    AssetFailed {
        stage: crate::asset::FailureStage,
        reason: String,
    },
    /// A person corrected a complete asset's breaks: `vmap` (the current VMAP) was rewritten as
    /// VMAP version `version`; packaging and ad insertion may pick it up.
    BreaksEdited {
        version: u32,
        vmap: S3Uri,
        breaks: usize,
        editor: String,
    },
}

impl PipelineDetail {
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::TranscodeSubmitted { .. } => "Transcode Submitted",
            Self::MediaPrepared { .. } => "Media Prepared",
            Self::AnalysesCompleted => "Analyses Completed",
            Self::BreaksChosen { .. } => "Breaks Chosen",
            Self::AssetCompleted { .. } => "Asset Completed",
            Self::AssetFailed { .. } => "Asset Failed",
            Self::BreaksEdited { .. } => "Breaks Edited",
        }
    }

    /// Short slug used in event ids.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::TranscodeSubmitted { .. } => "transcode-submitted",
            Self::MediaPrepared { .. } => "media-prepared",
            Self::AnalysesCompleted => "analyses-completed",
            Self::BreaksChosen { .. } => "breaks-chosen",
            Self::AssetCompleted { .. } => "asset-completed",
            Self::AssetFailed { .. } => "asset-failed",
            Self::BreaksEdited { .. } => "breaks-edited",
        }
    }

    /// The part of the event id after the asset: the slug, plus the version for steps an asset
    /// may take more than once (every edit is its own event).
    pub fn id_suffix(&self) -> String {
        match self {
            Self::BreaksEdited { version, .. } => format!("{}-v{version}", self.slug()),
            // The first packaging keeps the plain id; each edit's re-packaging is its own step.
            // An asset completes again after each edit's re-packaging: a new event, not a copy.
            Self::BreaksChosen { version, .. } | Self::AssetCompleted { version, .. }
                if *version > 1 =>
            {
                format!("{}-v{version}", self.slug())
            }
            _ => self.slug().to_string(),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::AssetCompleted { .. } | Self::AssetFailed { .. })
    }

    pub const DETAIL_TYPES: [&'static str; 7] = [
        "Transcode Submitted",
        "Media Prepared",
        "Analyses Completed",
        "Breaks Chosen",
        "Asset Completed",
        "Asset Failed",
        "Breaks Edited",
    ];
}

/// A pipeline event: what goes in the EventBridge `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineEvent {
    pub event_id: String,
    pub asset_id: AssetId,
    #[serde(flatten)]
    pub detail: PipelineDetail,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineEventError {
    #[error("detail-type {detail_type:?} does not match the detail's kind {kind:?}")]
    DetailTypeMismatch {
        detail_type: String,
        kind: &'static str,
    },
    #[error("pipeline event detail: {0}")]
    Detail(#[from] serde_json::Error),
}

impl PipelineEvent {
    pub fn new(asset_id: AssetId, detail: PipelineDetail) -> Self {
        Self {
            event_id: format!("{}:{}", asset_id, detail.id_suffix()),
            asset_id,
            detail,
        }
    }

    /// An event about `asset` in its current attempt. A re-driven asset announces its steps
    /// again, so their ids carry the attempt (`<asset>:media-prepared-r1`): buses drop repeated
    /// ids, and the copy of a step must still be recognisable as one.
    pub fn about(asset: &crate::asset::Asset, detail: PipelineDetail) -> Self {
        let mut e = Self::new(asset.id.clone(), detail);
        e.event_id.push_str(&asset.attempt_suffix());
        e
    }

    pub fn detail_type(&self) -> &'static str {
        self.detail.detail_type()
    }

    /// The PutEvents entry for this event.
    pub fn to_entry(&self, time_ms: Option<u64>) -> PutEventsEntry {
        PutEventsEntry {
            source: PIPELINE_SOURCE.to_string(),
            detail_type: self.detail_type().to_string(),
            detail: serde_json::to_string(self).expect("pipeline events always serialize"),
            resources: vec![],
            time_ms,
        }
    }

    /// Read a pipeline event back from a delivered envelope, checking detail-type and kind agree.
    pub fn from_envelope(
        ev: &EventBridgeEvent<serde_json::Value>,
    ) -> Result<Self, PipelineEventError> {
        let e: PipelineEvent = serde_json::from_value(ev.detail.clone())?;
        if e.detail_type() != ev.detail_type {
            return Err(PipelineEventError::DetailTypeMismatch {
                detail_type: ev.detail_type.clone(),
                kind: e.detail.slug(),
            });
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<PipelineEvent> {
        let id = AssetId::parse("a0123456789abcdef0123").unwrap();
        let u = S3Uri::parse("s3://out/assets/a/proxy/proxy.mp4").unwrap();
        [
            PipelineDetail::TranscodeSubmitted {
                job_id: "1700000000000-abc123".into(),
            },
            PipelineDetail::MediaPrepared { proxy: u.clone() },
            PipelineDetail::AnalysesCompleted,
            PipelineDetail::AssetCompleted {
                vmap: u.clone(),
                breaks: 3,
                version: 1,
            },
            PipelineDetail::AssetFailed {
                stage: crate::asset::FailureStage::Transcode,
                reason: "ERROR 1010: bad input".into(),
            },
            PipelineDetail::BreaksEdited {
                version: 2,
                vmap: u.clone(),
                breaks: 1,
                editor: "ed".into(),
            },
            PipelineDetail::BreaksChosen {
                version: 1,
                vmap: u.clone(),
                breaks: 2,
            },
            PipelineDetail::BreaksChosen {
                version: 3,
                vmap: u.clone(),
                breaks: 2,
            },
        ]
        .into_iter()
        .map(|d| PipelineEvent::new(id.clone(), d))
        .collect()
    }

    #[test]
    fn round_trip_through_the_envelope() {
        for ev in all() {
            let entry = ev.to_entry(Some(0));
            assert_eq!(entry.source, PIPELINE_SOURCE);
            assert!(PipelineDetail::DETAIL_TYPES.contains(&entry.detail_type.as_str()));
            let env = entry
                .into_envelope(
                    "id-1".into(),
                    "000000000000",
                    "us-east-1",
                    "1970-01-01T00:00:00Z".into(),
                )
                .unwrap();
            let text = serde_json::to_string(&env).unwrap();
            let back: EventBridgeEvent<serde_json::Value> = serde_json::from_str(&text).unwrap();
            assert_eq!(PipelineEvent::from_envelope(&back).unwrap(), ev);
            assert_eq!(back.detail["assetId"], "a0123456789abcdef0123");
        }
    }

    #[test]
    fn every_edit_is_its_own_event() {
        let ev = &all()[5];
        assert_eq!(ev.event_id, "a0123456789abcdef0123:breaks-edited-v2");
        assert_eq!(ev.detail_type(), "Breaks Edited");
        // the packaging of the scored breaks, then of each edit
        assert_eq!(all()[6].event_id, "a0123456789abcdef0123:breaks-chosen");
        assert_eq!(all()[7].event_id, "a0123456789abcdef0123:breaks-chosen-v3");
        // each packaging completes the asset again: the first keeps the plain id
        assert_eq!(all()[3].event_id, "a0123456789abcdef0123:asset-completed");
        let again = PipelineEvent::new(
            AssetId::parse("a0123456789abcdef0123").unwrap(),
            PipelineDetail::AssetCompleted {
                vmap: S3Uri::parse("s3://out/assets/a/ad_breaks.vmap").unwrap(),
                breaks: 1,
                version: 3,
            },
        );
        assert_eq!(again.event_id, "a0123456789abcdef0123:asset-completed-v3");
        // an event written before versions existed reads as the first packaging
        let old: PipelineDetail = serde_json::from_str(
            r#"{"kind":"asset_completed","vmap":"s3://out/a.vmap","breaks":2}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            PipelineDetail::AssetCompleted { version: 1, .. }
        ));
    }

    #[test]
    fn golden_detail() {
        let ev = &all()[3];
        assert_eq!(
            serde_json::to_string(ev).unwrap(),
            r#"{"eventId":"a0123456789abcdef0123:asset-completed","assetId":"a0123456789abcdef0123","kind":"asset_completed","vmap":"s3://out/assets/a/proxy/proxy.mp4","breaks":3,"version":1}"#
        );
    }

    #[test]
    fn mismatched_detail_type_is_refused() {
        let ev = &all()[1];
        let mut env = ev
            .to_entry(None)
            .into_envelope("x".into(), "a", "r", "t".into())
            .unwrap();
        env.detail_type = "Asset Completed".into();
        assert!(matches!(
            PipelineEvent::from_envelope(&env),
            Err(PipelineEventError::DetailTypeMismatch { .. })
        ));
        env.detail = serde_json::json!({"eventId": "x"});
        assert!(PipelineEvent::from_envelope(&env).is_err());
    }
}
