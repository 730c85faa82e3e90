//! Re-driving a failed asset whose cause was transient (`cuepoint retry ASSET`): the state
//! machine's `Retried` event, committed with a conditional write, puts the asset back in the
//! state that restarts its failed stage; then that state's event is published and the workers
//! take it from there as from any other announcement. Nothing here runs a stage itself.
//!
//! Exactly once: the event names the attempt (the asset's retry count after it), so a second
//! request, a concurrent one that lost the conditional write, or a redelivered announcement
//! finds the attempt already applied and starts nothing; the new attempt's job tokens and event
//! ids carry the attempt, so its jobs are new ones and its announcements are not dropped as
//! copies of the failed attempt's.

use std::sync::Arc;

use cuepoint_core::asset::{transition, Asset, AssetEvent, AssetState, TransitionError};
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::Queue;

use crate::context::WorkerContext;
use crate::flow::{advance, announce, write_record, Advanced};
use crate::sweeper::reannounce_upload;

/// What a retry request did.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryOutcome {
    /// The asset was re-driven: it is back in `asset.state` for attempt `asset.retries`, and
    /// the event that restarts the stage (`announced`, a detail-type) was published.
    Redriven {
        asset: Box<Asset>,
        failure: Box<cuepoint_core::asset::Failure>,
        announced: &'static str,
    },
    /// The asset is not FAILED (never failed, finished, or re-driven already by another
    /// request): nothing was started.
    NotFailed { asset: Box<Asset> },
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no asset {0}")]
    UnknownAsset(AssetId),
    /// The failure is a verdict on the media (or the record cannot be re-driven).
    #[error("{0}")]
    Refused(TransitionError),
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

/// Lost conditional writes re-read and decide again this many times.
const ATTEMPTS: usize = 5;

/// Re-drive asset `id` if its failure was transient. `ingest` is the ingest queue: a transcode
/// is restarted by sending the asset's upload event there (see [`reannounce_upload`]).
pub async fn retry(
    ctx: &WorkerContext,
    id: &AssetId,
    ingest: Option<&Arc<dyn Queue>>,
) -> Result<RetryOutcome, RetryError> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let asset = ctx
            .ports
            .store
            .get(id)
            .await
            .map_err(HandlerError::from)?
            .ok_or_else(|| RetryError::UnknownAsset(id.clone()))?;
        let Some(failure) = asset
            .failure
            .clone()
            .filter(|_| asset.state == AssetState::Failed)
        else {
            return Ok(RetryOutcome::NotFailed {
                asset: Box::new(asset),
            });
        };
        let event = AssetEvent::Retried {
            attempt: asset.retries + 1,
        };
        // The typed refusal (a permanent cause) before any write.
        transition(&asset, &event, ctx.now_ms()).map_err(RetryError::Refused)?;
        match advance(ctx, &asset, event, None).await {
            Ok(Advanced::Applied(next)) => {
                tracing::warn!(asset_id = %next.id, attempt = next.retries, stage = %failure.stage, to = %next.state, "asset re-driven");
                write_record(ctx, &next).await;
                let announced = restart(ctx, &next, ingest).await?;
                return Ok(RetryOutcome::Redriven {
                    asset: Box::new(next),
                    failure: Box::new(failure),
                    announced,
                });
            }
            Ok(Advanced::AlreadyApplied(a)) => {
                return Ok(RetryOutcome::NotFailed { asset: Box::new(a) })
            }
            Ok(Advanced::Ignored(why)) => return Err(HandlerError::Permanent(why).into()),
            // Another writer moved the asset (a concurrent retry): read it again.
            Err(HandlerError::Transient(why)) => last = Some(why),
            Err(e) => return Err(e.into()),
        }
    }
    Err(HandlerError::Transient(last.unwrap_or_default()).into())
}

/// Publish the event that restarts a re-driven asset's stage; returns its detail-type.
pub async fn restart(
    ctx: &WorkerContext,
    asset: &Asset,
    ingest: Option<&Arc<dyn Queue>>,
) -> Result<&'static str, HandlerError> {
    let detail = match asset.state {
        AssetState::Registered => {
            let id = format!("{}:retry-{}", asset.id, asset.retries);
            reannounce_upload(ctx, asset, &id, "retry", ingest).await?;
            return Ok("Object Created");
        }
        AssetState::MediaPrepared => {
            let proxy = asset.results.proxy.clone().ok_or_else(|| {
                HandlerError::Permanent("re-driven to MEDIA_PREPARED without a proxy".into())
            })?;
            PipelineDetail::MediaPrepared { proxy }
        }
        AssetState::Analysed => PipelineDetail::AnalysesCompleted,
        AssetState::Scored => PipelineDetail::BreaksChosen {
            version: asset.vmap_version(),
            vmap: asset.results.vmap.clone().ok_or_else(|| {
                HandlerError::Permanent("re-driven to SCORED without a VMAP".into())
            })?,
            breaks: asset.breaks.len(),
        },
        other => {
            return Err(HandlerError::Permanent(format!(
                "nothing restarts an asset in {other}"
            )))
        }
    };
    let ev = PipelineEvent::about(asset, detail);
    let detail_type = ev.detail_type();
    announce(ctx, &[ev]).await?;
    Ok(detail_type)
}
