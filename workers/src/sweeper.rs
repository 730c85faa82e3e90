//! The stuck-asset sweeper: finds assets past their state's deadline and re-announces or fails
//! them (see `cuepoint_core::stuck`). Run by `cuepoint sweep` (on AWS, a scheduled task).

use cuepoint_core::asset::{Asset, AssetState, FailureStage};
use cuepoint_core::events::s3::{object_created_entry, ObjectCreated};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::stuck::{StuckPolicy, SweepAction};
use cuepoint_runtime::consumer::HandlerError;
use std::sync::Arc;

use cuepoint_runtime::ports::{AssetWrite, Queue};
use serde::Serialize;

use crate::context::WorkerContext;
use crate::flow::fail;

#[derive(Debug, Clone, Serialize)]
pub struct StuckAsset {
    pub asset_id: String,
    pub state: AssetState,
    pub since_ms: u64,
    pub deadline_ms: u64,
    pub overdue_seconds: f64,
    pub sweeps: u32,
    pub action: SweepAction,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepOutcome {
    #[serde(flatten)]
    pub stuck: StuckAsset,
    pub done: bool,
    pub error: Option<String>,
}

/// Assets past their deadline, most overdue first.
pub async fn find_stuck(
    ctx: &WorkerContext,
    policy: &StuckPolicy,
) -> Result<Vec<(Asset, StuckAsset)>, HandlerError> {
    let now = ctx.now_ms();
    let mut out: Vec<(Asset, StuckAsset)> = Vec::new();
    for a in ctx.ports.store.list().await? {
        let Some(deadline) = policy.deadline_ms(&a) else {
            continue;
        };
        if now <= deadline {
            continue;
        }
        let s = StuckAsset {
            asset_id: a.id.to_string(),
            state: a.state,
            since_ms: a.state_entered_at_ms,
            deadline_ms: deadline,
            overdue_seconds: (now - deadline) as f64 / 1000.0,
            sweeps: a.sweeps,
            action: policy.decide(&a, a.sweeps),
        };
        out.push((a, s));
    }
    out.sort_by(|x, y| y.1.overdue_seconds.total_cmp(&x.1.overdue_seconds));
    Ok(out)
}

/// Apply each stuck asset's action (unless `dry_run`). `ingest` is the ingest queue: a stuck
/// registration is re-driven by sending its upload event there directly (on AWS only S3 may
/// put `aws.s3` events on EventBridge).
pub async fn sweep(
    ctx: &WorkerContext,
    policy: &StuckPolicy,
    dry_run: bool,
    ingest: Option<Arc<dyn Queue>>,
) -> Result<Vec<SweepOutcome>, HandlerError> {
    let mut outcomes = Vec::new();
    for (asset, stuck) in find_stuck(ctx, policy).await? {
        let result = if dry_run {
            Ok(())
        } else {
            apply(ctx, &asset, &stuck.action, ingest.as_ref()).await
        };
        outcomes.push(SweepOutcome {
            done: !dry_run && result.is_ok(),
            error: result.err().map(|e| e.to_string()),
            stuck,
        });
    }
    Ok(outcomes)
}

async fn apply(
    ctx: &WorkerContext,
    asset: &Asset,
    action: &SweepAction,
    ingest: Option<&Arc<dyn Queue>>,
) -> Result<(), HandlerError> {
    match action {
        SweepAction::Fail { reason } => fail(ctx, asset, FailureStage::Stuck, reason.clone()).await,
        SweepAction::Reannounce => {
            // Count the attempt first (conditional: a worker that moved the asset meanwhile wins).
            let mut next = asset.clone();
            next.sweeps += 1;
            next.version = asset.version + 1;
            ctx.ports
                .store
                .commit(AssetWrite {
                    asset: next.clone(),
                    expected_version: Some(asset.version),
                    counter: None,
                })
                .await
                .map_err(|e| HandlerError::Transient(e.to_string()))?;
            tracing::warn!(asset_id = %asset.id, state = %asset.state, attempt = next.sweeps, "re-announcing a stuck asset");
            let entry = match asset.state {
                AssetState::Registered => {
                    let id = format!("{}:sweep-{}", asset.id, next.sweeps);
                    return reannounce_upload(ctx, asset, &id, "sweeper", ingest).await;
                }
                AssetState::MediaPrepared | AssetState::Analysed | AssetState::Scored => {
                    let detail =
                        if asset.state == AssetState::Analysed {
                            PipelineDetail::AnalysesCompleted
                        } else if asset.state == AssetState::Scored {
                            let vmap = asset.results.vmap.clone().ok_or_else(|| {
                                HandlerError::Permanent("no VMAP recorded".into())
                            })?;
                            PipelineDetail::BreaksChosen {
                                version: asset.vmap_version(),
                                vmap,
                                breaks: asset.breaks.len(),
                            }
                        } else {
                            let proxy = asset.results.proxy.clone().ok_or_else(|| {
                                HandlerError::Permanent("no proxy recorded".into())
                            })?;
                            PipelineDetail::MediaPrepared { proxy }
                        };
                    let mut ev = PipelineEvent::new(asset.id.clone(), detail);
                    // A new id: the first announcement's copy may have been consumed (or
                    // dead-lettered), and buses drop repeated ids.
                    ev.event_id = format!("{}:sweep-{}", ev.event_id, next.sweeps);
                    ev.to_entry(Some(ctx.now_ms()))
                }
                other => {
                    return Err(HandlerError::Permanent(format!(
                        "nothing to re-announce in {other}"
                    )))
                }
            };
            ctx.ports
                .bus
                .put_events(&[entry])
                .await
                .map_err(HandlerError::from)
        }
    }
}

/// Re-announce an asset's upload ("Object Created"), which makes the ingest worker submit its
/// transcode. With the ingest queue at hand the event goes there directly, as envelope `id`
/// (on AWS only S3 may put `aws.s3` events on EventBridge); otherwise it goes on the bus.
pub async fn reannounce_upload(
    ctx: &WorkerContext,
    asset: &Asset,
    id: &str,
    region: &str,
    ingest: Option<&Arc<dyn Queue>>,
) -> Result<(), HandlerError> {
    let src = &asset.source;
    let mut created = ObjectCreated::new(src.bucket.clone(), src.key.clone());
    created.size = src.size;
    created.etag = src.etag.clone();
    created.version_id = src.version_id.clone();
    let entry = object_created_entry(&created, Some(ctx.now_ms()));
    let Some(q) = ingest else {
        return ctx
            .ports
            .bus
            .put_events(&[entry])
            .await
            .map_err(HandlerError::from);
    };
    let time = cuepoint_core::timefmt::rfc3339_seconds(ctx.now_ms());
    let env = entry
        .into_envelope(id.to_string(), "000000000000", region, time)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let body = serde_json::to_string(&env).map_err(|e| HandlerError::Permanent(e.to_string()))?;
    q.send(&body, std::time::Duration::ZERO).await?;
    Ok(())
}
