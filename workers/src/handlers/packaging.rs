//! Packaging: "Breaks Chosen" (or "Breaks Edited") → the packaging MediaConvert job (the HLS
//! ladder with a key frame, a segment boundary and cue markers at every break) → PACKAGING;
//! its COMPLETE → COMPLETE and "Asset Completed"; its ERROR → the asset fails at packaging.
//!
//! The job's token names the asset, the VMAP version whose breaks it carries and the attempt,
//! so a redelivered "Breaks Chosen" finds the job it already created, and an edit packages
//! again under a new token. Completion arrives as an event, like the first job's.

use std::collections::BTreeMap;

use cuepoint_core::asset::{Asset, AssetEvent, AssetState, FailureStage, JobRecord, JobStatus};
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::mediaconvert::{JobState, JobStateChange};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::mediaconvert::{
    build_packaging_settings, packaging_workflow, PackagingPlan, PackagingSource,
};
use cuepoint_core::packaging::FrameRate;
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::TranscodeRequest;

use crate::context::WorkerContext;
use crate::flow::{advance, announce, announce_failure, fail, load, write_record};

/// `UserMetadata` key of a packaging job naming its token (found again by it).
pub const PACKAGING_TOKEN_KEY: &str = "packagingToken";

/// The packaging job's idempotency token for the asset's current breaks and attempt.
pub fn packaging_token(asset: &Asset) -> String {
    format!(
        "{}-package-v{}{}",
        asset.id,
        asset.vmap_version(),
        asset.attempt_suffix()
    )
}

/// The track muxed into the ladder: the first track with sound (track 1 when all are silent).
fn audio_track(asset: &Asset) -> Option<u32> {
    let tracks = asset.probe.as_ref()?.audio_tracks.len() as u32;
    if tracks == 0 {
        return None;
    }
    let loud = asset.audio.as_ref().and_then(|a| {
        a.loudnessmap
            .iter()
            .position(|v| *v != 0)
            .map(|i| i as u32 + 1)
    });
    Some(loud.filter(|t| *t <= tracks).unwrap_or(1))
}

/// The job settings for `asset`'s current breaks.
pub fn packaging_settings(
    ctx: &WorkerContext,
    asset: &Asset,
) -> Result<serde_json::Value, HandlerError> {
    let probe = asset
        .probe
        .as_ref()
        .ok_or_else(|| HandlerError::Permanent(format!("asset {} has no probe", asset.id)))?;
    let video = probe
        .video
        .as_ref()
        .ok_or_else(|| HandlerError::Permanent(format!("asset {} has no video", asset.id)))?;
    let frame_rate = FrameRate::parse(&video.frame_rate_ratio)
        .or_else(|| FrameRate::parse(&format!("{}", video.frame_rate.round() as u64)))
        .unwrap_or(FrameRate { num: 25, den: 1 });
    let source = PackagingSource {
        width: video.width,
        height: video.height,
        frame_rate,
        duration_s: probe.duration_seconds,
        audio_track: audio_track(asset),
    };
    let breaks: Vec<f64> = asset.breaks.iter().map(|b| b.timestamp).collect();
    build_packaging_settings(
        &ctx.packaging_template,
        &asset.source.uri(),
        &ctx.results_prefix(&asset.id),
        &source,
        &ctx.settings.packaging.ladder,
        &breaks,
    )
    .map_err(|e| HandlerError::Permanent(format!("packaging job settings: {e}")))
}

/// "Breaks Chosen" / "Breaks Edited": package the current breaks.
pub async fn on_breaks_chosen(ctx: &WorkerContext, ev: &PipelineEvent) -> Result<(), HandlerError> {
    let asset = load(ctx, &ev.asset_id).await?;
    match asset.state {
        AssetState::Scored => submit(ctx, &asset).await,
        AssetState::Packaging => Ok(()),
        AssetState::Complete => {
            // An edit's announcement before its record, or a redelivery: the record decides.
            let wanted = match &ev.detail {
                PipelineDetail::BreaksEdited { version, .. }
                | PipelineDetail::BreaksChosen { version, .. } => *version,
                _ => 1,
            };
            if wanted > asset.vmap_version() {
                return Err(HandlerError::Transient(format!(
                    "VMAP version {wanted} is not recorded yet (the asset has {})",
                    asset.vmap_version()
                )));
            }
            announce_complete(ctx, &asset).await
        }
        AssetState::Failed => {
            if asset
                .failure
                .as_ref()
                .is_some_and(|f| f.stage == FailureStage::Packaging)
            {
                return announce_failure(ctx, &asset).await;
            }
            Ok(())
        }
        other => Err(HandlerError::Transient(format!(
            "asset is {other}, its breaks are not chosen yet"
        ))),
    }
}

async fn submit(ctx: &WorkerContext, asset: &Asset) -> Result<(), HandlerError> {
    let settings = packaging_settings(ctx, asset)?;
    let client_token = packaging_token(asset);
    let mut user_metadata = BTreeMap::new();
    user_metadata.insert("assetId".to_string(), asset.id.to_string());
    user_metadata.insert(
        "workflow".to_string(),
        packaging_workflow(&ctx.settings.workflow),
    );
    user_metadata.insert("vmapVersion".to_string(), asset.vmap_version().to_string());
    user_metadata.insert(PACKAGING_TOKEN_KEY.to_string(), client_token.clone());
    // A job created for this token before (a crash before it was recorded, the token's
    // idempotency window long gone) is adopted, never duplicated.
    let found = ctx
        .ports
        .transcoder
        .find_tagged_job(&asset.id, PACKAGING_TOKEN_KEY, &client_token)
        .await?;
    let job_id = match found {
        Some(j) => {
            tracing::info!(job_id = %j, "adopting the packaging job already created for these breaks");
            j
        }
        None => {
            let request = TranscodeRequest {
                asset_id: asset.id.clone(),
                client_token: client_token.clone(),
                settings,
                user_metadata,
            };
            // The token makes the submission idempotent within its window too.
            ctx.ports.transcoder.submit(&request).await?
        }
    };
    let job = JobRecord {
        job_id,
        client_token,
        submitted_at_ms: ctx.now_ms(),
        status: JobStatus::Submitted,
        reason: None,
    };
    advance(ctx, asset, AssetEvent::PackagingSubmitted { job }, None)
        .await?
        .recorded("packaging submission");
    Ok(())
}

/// The packaging job finished.
pub async fn on_job_state_change(
    ctx: &WorkerContext,
    ev: &JobStateChange,
) -> Result<(), HandlerError> {
    let workflow = packaging_workflow(&ctx.settings.workflow);
    if ev.user_metadata.get("workflow") != Some(&workflow) {
        tracing::info!(job_id = %ev.job_id, "MediaConvert job of another workflow; ignored");
        return Ok(());
    }
    let Some(raw_id) = ev.user_metadata.get("assetId") else {
        return Err(HandlerError::Permanent(format!(
            "packaging job {} has no userMetadata.assetId",
            ev.job_id
        )));
    };
    let id = AssetId::parse(raw_id.clone())
        .map_err(|e| HandlerError::Permanent(format!("packaging job {}: {e}", ev.job_id)))?;
    let asset = load(ctx, &id).await?;
    let ours = asset
        .packaging
        .as_ref()
        .is_some_and(|j| j.job_id == ev.job_id);
    match ev.state {
        JobState::Error => {
            if asset.state == AssetState::Failed {
                return announce_failure(ctx, &asset).await;
            }
            if !ours || asset.state != AssetState::Packaging {
                if asset.packaging.is_none() && asset.state == AssetState::Scored {
                    // Recorded in a moment (the submission's write is in flight).
                    return Err(HandlerError::Transient(format!(
                        "packaging job {} is not recorded yet",
                        ev.job_id
                    )));
                }
                tracing::warn!(job_id = %ev.job_id, "ERROR of a packaging job this asset does not wait for; ignored");
                return Ok(());
            }
            let reason = format!(
                "MediaConvert packaging job {} failed: error {}: {}",
                ev.job_id,
                ev.error_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "?".into()),
                ev.error_message.as_deref().unwrap_or("no message")
            );
            fail(ctx, &asset, FailureStage::Packaging, reason).await
        }
        JobState::Complete => {
            let settings = packaging_settings(ctx, &asset)?;
            let plan = PackagingPlan::from_settings(&settings)
                .map_err(|e| HandlerError::Permanent(format!("packaging plan: {e}")))?;
            let event = AssetEvent::Packaged {
                job_id: ev.job_id.clone(),
                hls_master: plan.master,
            };
            let Some(a) = advance(ctx, &asset, event, None)
                .await?
                .recorded("packaging COMPLETE")
            else {
                return Ok(());
            };
            if a.state != AssetState::Complete {
                return Ok(());
            }
            write_record(ctx, &a).await;
            announce_complete(ctx, &a).await
        }
    }
}

async fn announce_complete(ctx: &WorkerContext, asset: &Asset) -> Result<(), HandlerError> {
    let Some(vmap) = asset.results.vmap.clone() else {
        return Ok(());
    };
    let detail = PipelineDetail::AssetCompleted {
        vmap,
        breaks: asset.breaks.len(),
        version: asset.vmap_version(),
    };
    announce(ctx, &[PipelineEvent::about(asset, detail)]).await
}
