//! The steps every handler shares: load the asset, apply an event through the pure state
//! machine, commit it with a conditional write, announce the next step.
//!
//! Idempotency lives here. A redelivered message finds its effect already in the record
//! (`Transition::AlreadyApplied`) and only re-announces; the announcement has a deterministic
//! event id, so the copy is recognisable downstream. A lost race (conditional write conflict)
//! is retried: the next attempt re-reads the record and decides again.

use cuepoint_core::asset::{
    transition, Asset, AssetEvent, AssetState, FailureStage, Transition, TransitionError,
};
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::{AssetWrite, CounterDelta, StoreError};

use crate::context::{WorkerContext, OPEN_JOBS_COUNTER};

/// What applying an event did.
#[derive(Debug)]
pub enum Advanced {
    /// Stored; here is the new record.
    Applied(Asset),
    /// Already in the record (a redelivery); here is the record as stored.
    AlreadyApplied(Asset),
    /// Not applicable and never will be (a stale job, an event for a finished asset): dropped.
    Ignored(String),
}

impl Advanced {
    /// The record the event leaves behind (applied now or by an earlier delivery), or `None`
    /// when it was ignored; `what` names the step in the log line that says so.
    pub fn recorded(self, what: &str) -> Option<Asset> {
        match self {
            Advanced::Applied(a) | Advanced::AlreadyApplied(a) => Some(a),
            Advanced::Ignored(why) => {
                tracing::warn!(%why, "{what} not recorded");
                None
            }
        }
    }
}

/// Load an asset; an event naming an asset we never registered is a poison message.
pub async fn load(ctx: &WorkerContext, id: &AssetId) -> Result<Asset, HandlerError> {
    tracing::Span::current().record("asset_id", id.as_str());
    match ctx.ports.store.get(id).await? {
        Some(a) => Ok(a),
        None => Err(HandlerError::Permanent(format!(
            "event for unknown asset {id}"
        ))),
    }
}

/// Apply `event` to `asset` and commit it (with an optional counter move in the same write).
pub async fn advance(
    ctx: &WorkerContext,
    asset: &Asset,
    event: AssetEvent,
    counter: Option<CounterDelta>,
) -> Result<Advanced, HandlerError> {
    let now = ctx.now_ms();
    match transition(asset, &event, now) {
        Ok(Transition::AlreadyApplied) => Ok(Advanced::AlreadyApplied(asset.clone())),
        Ok(Transition::Applied(next)) => {
            let mut next = *next;
            next.version = asset.version + 1;
            let write = AssetWrite {
                asset: next.clone(),
                expected_version: Some(asset.version),
                counter,
            };
            match ctx.ports.store.commit(write).await {
                Ok(()) => {
                    tracing::info!(asset_id = %next.id, from = %asset.state, to = %next.state, event = event.name(), "asset advanced");
                    Ok(Advanced::Applied(next))
                }
                Err(StoreError::Conflict { detail, .. }) => Err(HandlerError::Transient(format!(
                    "lost a conditional write ({detail}); will re-read"
                ))),
                Err(e @ StoreError::CounterLimit { .. }) => Err(HandlerError::Delay {
                    after: std::time::Duration::from_secs(ctx.settings.analysis.cap_retry_seconds),
                    reason: e.to_string(),
                }),
                Err(StoreError::Port(p)) => Err(p.into()),
            }
        }
        Err(e) => classify(asset, e),
    }
}

/// Decide what an illegal transition means for the message that carried it.
fn classify(asset: &Asset, e: TransitionError) -> Result<Advanced, HandlerError> {
    match &e {
        // The asset is finished (or failed): late or stale events change nothing.
        TransitionError::Illegal { state, .. } if state.is_terminal() => {
            Ok(Advanced::Ignored(e.to_string()))
        }
        // The event arrived before the step that makes it legal was recorded (reordering, or a
        // crash between starting a job and recording it): retry until it is.
        TransitionError::Illegal { .. } | TransitionError::UnknownAnalysis { .. } => {
            Err(HandlerError::Transient(e.to_string()))
        }
        // The job is not recorded yet (the write that records it is still in flight).
        TransitionError::UnknownJob { expected: None, .. } => {
            Err(HandlerError::Transient(e.to_string()))
        }
        // A job we did not record for this asset (a stale duplicate): drop it.
        TransitionError::UnknownJob { .. } => {
            tracing::warn!(asset_id = %asset.id, error = %e, "ignoring event for a job this asset does not own");
            Ok(Advanced::Ignored(e.to_string()))
        }
        TransitionError::NoAnalyses { .. } | TransitionError::EditVersion { .. } => {
            Err(HandlerError::Permanent(e.to_string()))
        }
    }
}

/// Publish pipeline events.
pub async fn announce(ctx: &WorkerContext, events: &[PipelineEvent]) -> Result<(), HandlerError> {
    if events.is_empty() {
        return Ok(());
    }
    let now = ctx.now_ms();
    let entries: Vec<_> = events.iter().map(|e| e.to_entry(Some(now))).collect();
    for e in events {
        tracing::info!(event_id = %e.event_id, detail_type = e.detail_type(), "announcing");
    }
    ctx.ports
        .bus
        .put_events(&entries)
        .await
        .map_err(HandlerError::from)
}

/// Fail an asset for good (idempotent) and announce it. Releases its open analysis jobs from
/// the cap counter in the same write.
pub async fn fail(
    ctx: &WorkerContext,
    asset: &Asset,
    stage: FailureStage,
    reason: String,
) -> Result<(), HandlerError> {
    tracing::warn!(asset_id = %asset.id, %stage, %reason, "asset failed");
    let pending = if asset.state == AssetState::Analysing {
        asset.pending_analyses().len() as i64
    } else {
        0
    };
    let counter = (pending > 0).then(|| CounterDelta {
        name: OPEN_JOBS_COUNTER.into(),
        delta: -pending,
        max: None,
    });
    let event = AssetEvent::Failed { stage, reason };
    let Some(a) = advance(ctx, asset, event, counter)
        .await?
        .recorded("failure")
    else {
        return Ok(());
    };
    write_record(ctx, &a).await;
    announce_failure(ctx, &a).await
}

/// Announce an asset's recorded failure ("Asset Failed"). Re-announcing after a crash between
/// the write and the announcement reuses the first announcement's event id.
pub async fn announce_failure(ctx: &WorkerContext, asset: &Asset) -> Result<(), HandlerError> {
    let Some(f) = asset.failure.clone() else {
        return Ok(());
    };
    announce(
        ctx,
        &[PipelineEvent::new(
            asset.id.clone(),
            PipelineDetail::AssetFailed {
                stage: f.stage,
                reason: f.reason,
            },
        )],
    )
    .await
}

/// Save the asset record next to its results (`asset.json`), best effort: the store is the
/// source of truth, this copy is for people browsing the results.
pub async fn write_record(ctx: &WorkerContext, asset: &Asset) {
    let uri = ctx.result_uri(&asset.id, cuepoint_core::results::ASSET);
    let body = serde_json::to_vec_pretty(asset).unwrap_or_default();
    if let Err(e) = ctx.ports.blobs.put(&uri, body, "application/json").await {
        tracing::warn!(error = %e, "could not write asset.json");
    }
}
