//! Analysis: "Media Prepared" → start every Rekognition analysis on the proxy, within the cap
//! on open jobs (excess work waits in the queue), and the transcription of the main dialogue
//! track (Amazon Transcribe or its local stand-in).

use std::collections::BTreeMap;

use cuepoint_core::asset::Asset;
use cuepoint_core::asset::{AssetEvent, AssetState, JobRecord, JobStatus};
use cuepoint_core::domain::S3Uri;
use cuepoint_core::events::transcribe;
use cuepoint_core::events::PipelineEvent;
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_core::results;
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::{AnalysisRequest, CounterDelta, TranscriptionRequest};

use crate::context::{WorkerContext, OPEN_JOBS_COUNTER};
use crate::flow::{advance, load, put_results, Advanced};

pub async fn on_media_prepared(
    ctx: &WorkerContext,
    ev: &PipelineEvent,
) -> Result<(), HandlerError> {
    let asset = load(ctx, &ev.asset_id).await?;
    if asset.state.at_or_after(AssetState::Analysing) || asset.state.is_terminal() {
        tracing::info!(state = %asset.state, "analyses already started; nothing to do");
        return Ok(());
    }
    if asset.state != AssetState::MediaPrepared {
        return Err(HandlerError::Transient(format!(
            "asset is {}, not yet MEDIA_PREPARED",
            asset.state
        )));
    }
    let Some(proxy) = asset.results.proxy.clone() else {
        return Err(HandlerError::Permanent(
            "media prepared without a proxy location".into(),
        ));
    };
    let kinds = AnalysisKind::VIDEO;
    let max = ctx.settings.analysis.max_open_jobs;
    // Take the cap before starting anything: with many assets prepared at once, the handlers
    // that do not get a share wait in the queue instead of starting jobs past the cap. The
    // reservation is part of the asset's record, so a redelivery (or a crash after it) finds
    // it taken and goes on to start the jobs. The cap counts Rekognition jobs only: Transcribe
    // has a quota of its own.
    let asset = if asset.reserved_jobs == 0 {
        let counter = CounterDelta {
            name: OPEN_JOBS_COUNTER.into(),
            delta: kinds.len() as i64,
            max: Some(max),
        };
        let event = AssetEvent::AnalysesReserved {
            jobs: kinds.len() as u32,
        };
        // A concurrent copy of this message that took it first leaves its record: go on with
        // that share. A full cap is a delay (the message waits in the queue).
        let reserved = advance(ctx, &asset, event, Some(counter))
            .await
            .map_err(|e| match e {
                HandlerError::Delay { after, .. } => HandlerError::Delay {
                    after,
                    reason: format!(
                        "the open Rekognition jobs leave no room for {} more (cap {max})",
                        kinds.len()
                    ),
                },
                e => e,
            })?;
        match reserved {
            Advanced::Applied(a) | Advanced::AlreadyApplied(a) => a,
            Advanced::Ignored(why) => {
                tracing::info!(%why, "analyses moved on meanwhile; nothing to do");
                return Ok(());
            }
        }
    } else {
        asset
    };
    if asset.state != AssetState::MediaPrepared {
        return Ok(());
    }
    // Start every job; the tokens make a restart return the same jobs (and a re-driven
    // asset's attempt new ones).
    let mut jobs = BTreeMap::new();
    for kind in kinds {
        let client_token = format!("{}-{}{}", asset.id, kind, asset.attempt_suffix());
        let request = AnalysisRequest {
            kind,
            video: proxy.clone(),
            client_token: client_token.clone(),
            job_tag: asset.id.to_string(),
        };
        let job_id = ctx.ports.analyzer.start(&request).await?;
        jobs.insert(
            kind,
            JobRecord {
                job_id,
                client_token,
                submitted_at_ms: ctx.now_ms(),
                status: JobStatus::Submitted,
                reason: None,
            },
        );
    }
    if let Some(job) = start_transcription(ctx, &asset, &proxy).await? {
        jobs.insert(AnalysisKind::Transcription, job);
    }
    let event = AssetEvent::AnalysesStarted { jobs };
    if advance(ctx, &asset, event, None)
        .await?
        .recorded("analyses")
        .is_some()
    {
        if let Ok(n) = ctx.ports.store.counter(OPEN_JOBS_COUNTER).await {
            ctx.metrics.open_jobs(n);
        }
    }
    Ok(())
}

/// Start the transcription of the main dialogue track. `None` when no track carries sound:
/// there is nothing to hear, so empty results are written at once and no job is tracked.
async fn start_transcription(
    ctx: &WorkerContext,
    asset: &Asset,
    proxy: &S3Uri,
) -> Result<Option<JobRecord>, HandlerError> {
    let audio = asset.audio.as_ref();
    let Some(track) = audio.and_then(|a| a.main_dialogue_track()) else {
        let json = |body: serde_json::Value| serde_json::to_vec_pretty(&body).unwrap_or_default();
        put_results(
            ctx,
            &asset.id,
            vec![
                (
                    results::TRANSCRIPT,
                    json(crate::speech::silent_transcript()),
                    "application/json",
                ),
                (
                    results::SPEECH,
                    json(crate::speech::silent_speech()),
                    "application/json",
                ),
            ],
        )
        .await?;
        return Ok(None);
    };
    let job_name = transcribe::attempt_job_name(&ctx.settings.workflow, &asset.id, asset.retries)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let request = TranscriptionRequest {
        job_name: job_name.clone(),
        asset_id: asset.id.clone(),
        source: asset.source.uri(),
        media: proxy.clone(),
        audio_track: track,
        speech_tracks: audio.map(|a| a.tracks_with_sound()).unwrap_or_default(),
        output: ctx.result_uri(&asset.id, &format!("transcribe/{job_name}.json")),
    };
    // The job name is the idempotency key: a restart finds the job already started.
    let job_id = ctx.ports.transcriber.start(&request).await?;
    Ok(Some(JobRecord {
        job_id,
        client_token: job_name,
        submitted_at_ms: ctx.now_ms(),
        status: JobStatus::Submitted,
        reason: None,
    }))
}
