//! Media events: the first MediaConvert job (proxy and loudness logs) COMPLETE → loudness logs →
//! silent tracks → "Media Prepared";
//! MediaConvert ERROR → the asset fails with MediaConvert's cause.

use cuepoint_core::asset::{Asset, AssetEvent, AssetState, FailureStage, JobStatus};
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::mediaconvert::{JobState, JobStateChange};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::loudness::{AudioOptions, AudioReport, LoudnessLog};
use cuepoint_core::mediaconvert::{build_job_settings, JobPlan};
use cuepoint_core::results;
use cuepoint_runtime::consumer::HandlerError;

use crate::context::WorkerContext;
use crate::flow::{advance, announce, announce_failure, fail, load, put_results};

pub async fn on_job_state_change(
    ctx: &WorkerContext,
    ev: &JobStateChange,
) -> Result<(), HandlerError> {
    if ev.user_metadata.get("workflow").map(String::as_str) != Some(ctx.settings.workflow.as_str())
    {
        tracing::info!(job_id = %ev.job_id, "MediaConvert job of another workflow; ignored");
        return Ok(());
    }
    let Some(raw_id) = ev.user_metadata.get("assetId") else {
        return Err(HandlerError::Permanent(format!(
            "MediaConvert job {} has no userMetadata.assetId",
            ev.job_id
        )));
    };
    let id = AssetId::parse(raw_id.clone())
        .map_err(|e| HandlerError::Permanent(format!("MediaConvert job {}: {e}", ev.job_id)))?;
    let asset = load(ctx, &id).await?;
    match ev.state {
        JobState::Error => {
            let recorded = asset.transcode.as_ref();
            if recorded.map(|j| j.job_id.as_str()) != Some(ev.job_id.as_str())
                && asset.state != AssetState::Registered
            {
                tracing::warn!(job_id = %ev.job_id, "ERROR for a job this asset does not own; ignored");
                return Ok(());
            }
            if recorded.is_some_and(|j| j.job_id == ev.job_id && j.status == JobStatus::Failed) {
                // The failed attempt of a re-driven asset, delivered again.
                tracing::info!(job_id = %ev.job_id, "ERROR of a job that already failed the asset's earlier attempt; ignored");
                return Ok(());
            }
            let reason = format!(
                "MediaConvert job {} failed: error {}: {}",
                ev.job_id,
                ev.error_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "?".into()),
                ev.error_message.as_deref().unwrap_or("no message")
            );
            fail(ctx, &asset, FailureStage::Transcode, reason).await
        }
        JobState::Complete => prepare(ctx, &asset, &ev.job_id).await,
    }
}

async fn prepare(ctx: &WorkerContext, asset: &Asset, job_id: &str) -> Result<(), HandlerError> {
    if asset.state.at_or_after(AssetState::MediaPrepared) {
        return reannounce(ctx, asset).await;
    }
    if asset.state == AssetState::Failed {
        let failed_here = asset
            .failure
            .as_ref()
            .is_some_and(|f| f.stage == FailureStage::Loudness);
        if failed_here && asset.transcode.as_ref().is_some_and(|j| j.job_id == job_id) {
            // This COMPLETE failed the asset (a missing or unreadable loudness log): the
            // announcement may not have gone out.
            return announce_failure(ctx, asset).await;
        }
        tracing::info!("asset already failed; COMPLETE ignored");
        return Ok(());
    }
    // The job's outputs follow from the same settings the ingest worker submitted.
    let tracks = asset
        .probe
        .as_ref()
        .map(|p| p.audio_tracks.len() as u32)
        .unwrap_or(0);
    let settings = build_job_settings(
        &ctx.job_template,
        &asset.source.uri(),
        &ctx.results_prefix(&asset.id),
        tracks,
    )
    .map_err(|e| HandlerError::Permanent(format!("MediaConvert job settings: {e}")))?;
    let plan = JobPlan::from_settings(&settings)
        .map_err(|e| HandlerError::Permanent(format!("job plan: {e}")))?;

    let mut logs = Vec::with_capacity(tracks as usize);
    let mut files = Vec::with_capacity(tracks as usize + 1);
    for track in 1..=tracks {
        let uri = plan.loudness_log_uri(track, tracks);
        let Some(bytes) = ctx.ports.blobs.get(&uri).await? else {
            return fail(
                ctx,
                asset,
                FailureStage::Loudness,
                format!("loudness log for track {track} missing at {uri}"),
            )
            .await;
        };
        let log = match LoudnessLog::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    ctx,
                    asset,
                    FailureStage::Loudness,
                    format!("loudness log for track {track} ({uri}): {e}"),
                )
                .await
            }
        };
        files.push((results::loudness_track(track as usize), bytes, "text/csv"));
        logs.push(log);
    }
    let opts = AudioOptions {
        silence_threshold: ctx.settings.audio.silence_threshold_lufs,
        min_silence_seconds: ctx.settings.audio.min_silence_seconds,
    };
    let channels: Vec<u32> = asset
        .probe
        .as_ref()
        .map(|p| p.audio_tracks.iter().map(|t| t.channels).collect())
        .unwrap_or_default();
    let audio = AudioReport::from_logs(&logs, &channels, &opts);
    files.push((
        results::AUDIO.to_string(),
        serde_json::to_vec_pretty(&audio).unwrap_or_default(),
        "application/json",
    ));
    // The copies of the logs and the report, one fsync per directory.
    put_results(ctx, &asset.id, files).await?;

    let event = AssetEvent::MediaPrepared {
        job_id: job_id.to_string(),
        audio,
        proxy: plan.proxy_uri(),
    };
    match advance(ctx, asset, event, None).await?.recorded("COMPLETE") {
        Some(a) => reannounce(ctx, &a).await,
        None => Ok(()),
    }
}

async fn reannounce(ctx: &WorkerContext, asset: &Asset) -> Result<(), HandlerError> {
    let Some(proxy) = asset.results.proxy.clone() else {
        return Ok(());
    };
    announce(
        ctx,
        &[PipelineEvent::about(
            asset,
            PipelineDetail::MediaPrepared { proxy },
        )],
    )
    .await
}
