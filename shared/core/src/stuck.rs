//! Stuck assets: every non-terminal state has a deadline, and an asset past it gets a
//! decision. A choreography has no conductor to notice a lost event, so this is the safety net:
//! the sweeper re-announces what can be re-announced (idempotent downstream) and fails what
//! cannot, with the cause.

use serde::{Deserialize, Serialize};

use crate::asset::{Asset, AssetState};

/// Seconds an asset may stay in each state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StuckPolicy {
    pub registered_seconds: u64,
    pub transcoding_seconds: u64,
    pub media_prepared_seconds: u64,
    pub analysing_seconds: u64,
    pub analysed_seconds: u64,
    /// Breaks chosen, packaging not yet submitted ("Breaks Chosen" is re-announced).
    pub scored_seconds: u64,
    /// The packaging job (the full-resolution HLS ladder) running.
    pub packaging_seconds: u64,
    /// Re-announcements before the sweeper gives up and fails the asset.
    pub max_reannouncements: u32,
}

impl Default for StuckPolicy {
    fn default() -> Self {
        Self {
            registered_seconds: 15 * 60,
            // MediaConvert and Rekognition take minutes per hour of video; hours mean lost.
            transcoding_seconds: 6 * 3600,
            media_prepared_seconds: 15 * 60,
            analysing_seconds: 6 * 3600,
            analysed_seconds: 15 * 60,
            scored_seconds: 15 * 60,
            // The ladder encode takes about as long as the transcode did before it.
            packaging_seconds: 6 * 3600,
            max_reannouncements: 3,
        }
    }
}

/// What the sweeper does with a stuck asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SweepAction {
    /// Publish the event that moves this state on again (ingest's S3 event, "Media Prepared",
    /// "Analyses Completed"): the consumers are idempotent.
    Reannounce,
    /// Nothing to re-announce (a transcode or analysis job that never reported back), or
    /// re-announcing did not help: fail with this reason.
    Fail { reason: String },
}

impl StuckPolicy {
    pub fn limit_seconds(&self, state: AssetState) -> Option<u64> {
        match state {
            AssetState::Registered => Some(self.registered_seconds),
            AssetState::Transcoding => Some(self.transcoding_seconds),
            AssetState::MediaPrepared => Some(self.media_prepared_seconds),
            AssetState::Analysing => Some(self.analysing_seconds),
            AssetState::Analysed => Some(self.analysed_seconds),
            AssetState::Scored => Some(self.scored_seconds),
            AssetState::Packaging => Some(self.packaging_seconds),
            AssetState::Complete | AssetState::Failed => None,
        }
    }

    /// When the asset's current state times out (epoch ms); `None` for terminal assets.
    pub fn deadline_ms(&self, asset: &Asset) -> Option<u64> {
        self.limit_seconds(asset.state)
            .map(|s| asset.state_entered_at_ms.saturating_add(s * 1000))
    }

    pub fn is_stuck(&self, asset: &Asset, now_ms: u64) -> bool {
        self.deadline_ms(asset).is_some_and(|d| now_ms > d)
    }

    /// The decision for a stuck asset that has been re-announced `reannounced` times already.
    pub fn decide(&self, asset: &Asset, reannounced: u32) -> SweepAction {
        let limit = self.limit_seconds(asset.state).unwrap_or(0);
        let reannounceable = matches!(
            asset.state,
            AssetState::Registered
                | AssetState::MediaPrepared
                | AssetState::Analysed
                | AssetState::Scored
        );
        if reannounceable && reannounced < self.max_reannouncements {
            return SweepAction::Reannounce;
        }
        let what = match asset.state {
            AssetState::Transcoding => format!(
                "transcode job {} did not report back",
                asset
                    .transcode
                    .as_ref()
                    .map(|j| j.job_id.as_str())
                    .unwrap_or("<none>")
            ),
            AssetState::Analysing => format!(
                "analyses {:?} did not report back",
                asset.pending_analyses()
            ),
            AssetState::Packaging => format!(
                "packaging job {} did not report back",
                asset
                    .packaging
                    .as_ref()
                    .map(|j| j.job_id.as_str())
                    .unwrap_or("<none>")
            ),
            s => format!("no progress from {s} after {reannounced} re-announcement(s)"),
        };
        SweepAction::Fail {
            reason: format!("stuck in {} for more than {limit} s: {what}", asset.state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::{ProbeInfo, ResultLocations};
    use crate::domain::{BucketName, ObjectKey, S3Uri, SourceObject};

    fn asset(state: AssetState, entered: u64) -> Asset {
        let source = SourceObject {
            bucket: BucketName::parse("ingest").unwrap(),
            key: ObjectKey::parse("k.mov").unwrap(),
            version_id: None,
            etag: None,
            size: None,
        };
        let mut a = Asset::register(
            source,
            ProbeInfo::default(),
            S3Uri::parse("s3://out/assets/x/").unwrap(),
            0,
        );
        a.state = state;
        a.state_entered_at_ms = entered;
        a.results = ResultLocations {
            prefix: S3Uri::parse("s3://out/assets/x/").unwrap(),
            hls_master: None,
            proxy: None,
            vmap: None,
        };
        a
    }

    #[test]
    fn deadlines_per_state_and_none_for_terminal() {
        let p = StuckPolicy::default();
        for s in AssetState::ALL {
            let a = asset(s, 1_000);
            match s {
                AssetState::Complete | AssetState::Failed => {
                    assert_eq!(p.deadline_ms(&a), None);
                    assert!(!p.is_stuck(&a, u64::MAX));
                }
                _ => {
                    let d = p.deadline_ms(&a).unwrap();
                    assert!(!p.is_stuck(&a, d), "exactly at the deadline is not stuck");
                    assert!(p.is_stuck(&a, d + 1));
                }
            }
        }
    }

    #[test]
    fn reannounce_until_the_limit_then_fail() {
        let p = StuckPolicy {
            max_reannouncements: 2,
            ..Default::default()
        };
        for s in [
            AssetState::Registered,
            AssetState::MediaPrepared,
            AssetState::Analysed,
            AssetState::Scored,
        ] {
            let a = asset(s, 0);
            assert_eq!(p.decide(&a, 0), SweepAction::Reannounce);
            assert_eq!(p.decide(&a, 1), SweepAction::Reannounce);
            assert!(matches!(p.decide(&a, 2), SweepAction::Fail { .. }));
        }
        for s in [
            AssetState::Transcoding,
            AssetState::Analysing,
            AssetState::Packaging,
        ] {
            match p.decide(&asset(s, 0), 0) {
                SweepAction::Fail { reason } => {
                    assert!(reason.contains("did not report back"), "{reason}")
                }
                other => panic!("{s}: {other:?}"),
            }
        }
    }
}
