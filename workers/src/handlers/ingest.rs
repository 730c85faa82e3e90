//! Ingest: S3 "Object Created" → probe → register the asset → submit the transcode.

use std::collections::BTreeMap;

use cuepoint_core::asset::{
    Asset, AssetEvent, AssetState, FailureStage, JobRecord, JobStatus, ProbeInfo,
};
use cuepoint_core::domain::{AssetId, SourceObject};
use cuepoint_core::events::s3::ObjectCreated;
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::mediaconvert::build_job_settings;
use cuepoint_core::results;
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::{AssetWrite, PortError, ProbeError, StoreError, TranscodeRequest};

use crate::context::WorkerContext;
use crate::flow::{advance, announce, announce_failure, fail};

pub async fn on_object_created(
    ctx: &WorkerContext,
    obj: &ObjectCreated,
) -> Result<(), HandlerError> {
    if obj.bucket.as_str() != ctx.settings.ingest_bucket {
        tracing::warn!(bucket = %obj.bucket, "object created in a bucket that is not the ingest bucket; ignored");
        return Ok(());
    }
    // The S3 console's "Create folder" writes a zero-byte object named `prefix/`: not media.
    if obj.key.as_str().ends_with('/') && obj.size.unwrap_or(0) == 0 {
        tracing::info!(key = %obj.key, "zero-byte folder object; ignored");
        return Ok(());
    }
    let obj = &with_etag(ctx, obj).await?;
    let source = obj.source_object();
    let id = AssetId::for_source(&source);
    tracing::Span::current().record("asset_id", id.as_str());

    let asset = match ctx.ports.store.get(&id).await? {
        Some(a) => a,
        None => match register(ctx, source).await? {
            Some(a) => a,
            None => return Ok(()), // registered as FAILED (unusable media) and announced
        },
    };
    match asset.state {
        AssetState::Registered => match asset.probe.as_ref().and_then(check_usable) {
            // Registered unusable, then a crash before the failure was recorded: finish failing
            // it; never transcode it.
            Some(why) => {
                fail(
                    ctx,
                    &asset,
                    FailureStage::Probe,
                    format!("{}: {why}", asset.source.uri()),
                )
                .await
            }
            None => submit_transcode(ctx, &asset).await,
        },
        // A redelivery after the failure was recorded: re-announce it.
        AssetState::Failed => announce_failure(ctx, &asset).await,
        _ => {
            // Already submitted: re-announce, never submit again.
            let job_id = asset
                .transcode
                .as_ref()
                .map(|j| j.job_id.clone())
                .unwrap_or_default();
            announce(
                ctx,
                &[PipelineEvent::about(
                    &asset,
                    PipelineDetail::TranscodeSubmitted { job_id },
                )],
            )
            .await
        }
    }
}

/// The asset's identity is (bucket, key, version or content etag). An event that carries
/// neither (hand-made, or from a tool that leaves the etag out) gets the etag of the object as
/// stored, so it names the same asset as S3's own event for the same bytes; an object whose
/// store gives no etag is refused rather than made a second asset.
async fn with_etag(
    ctx: &WorkerContext,
    obj: &ObjectCreated,
) -> Result<ObjectCreated, HandlerError> {
    if obj.etag.is_some() || obj.version_id.is_some() {
        return Ok(obj.clone());
    }
    let uri = obj.source_object().uri();
    match ctx.ports.blobs.head(&uri).await {
        Ok(Some(meta)) => match meta.etag {
            Some(etag) => {
                let mut filled = obj.clone();
                filled.etag = Some(etag);
                if filled.size.is_none() {
                    filled.size = Some(meta.size);
                }
                Ok(filled)
            }
            None => Err(HandlerError::Permanent(format!(
                "Object Created for {uri} has no etag or version id, and the store gives none: cannot tell which content it names"
            ))),
        },
        Ok(None) | Err(PortError::NotFound(_)) => {
            Err(HandlerError::Permanent(format!("source object {uri} does not exist")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Probe the source and create its record. `Ok(None)`: the media is unusable; the asset was
/// created FAILED with the cause.
async fn register(
    ctx: &WorkerContext,
    source: SourceObject,
) -> Result<Option<Asset>, HandlerError> {
    let uri = source.uri();
    let location = match ctx.ports.blobs.readable_location(&uri).await {
        Ok(l) => l,
        Err(PortError::NotFound(_)) => {
            return Err(HandlerError::Permanent(format!(
                "source object {uri} does not exist"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let probed = ctx.ports.prober.probe(&location).await;
    let (probe, unusable) = match probed {
        Ok(p) => {
            let problem = check_usable(&p);
            (p, problem)
        }
        // The location may be a presigned URL: never let its signature into records and logs.
        Err(ProbeError::Unusable(why)) => (
            ProbeInfo::default(),
            Some(why.replace(&location, &uri.to_string())),
        ),
        Err(ProbeError::Port(e)) => return Err(e.into()),
    };
    let now = ctx.now_ms();
    let id = AssetId::for_source(&source);
    let mut asset = Asset::register(source, probe.clone(), ctx.results_prefix(&id), now);
    if let Some(why) = &unusable {
        // Unusable media is FAILED in the record's first write: no crash can leave it
        // REGISTERED (and so transcodable) in between.
        let failed = AssetEvent::Failed {
            stage: FailureStage::Probe,
            reason: format!("{uri}: {why}"),
        };
        if let Ok(cuepoint_core::asset::Transition::Applied(next)) =
            cuepoint_core::asset::transition(&asset, &failed, now)
        {
            asset = *next;
        }
    } else {
        let body = serde_json::to_vec_pretty(&probe).unwrap_or_default();
        ctx.ports
            .blobs
            .put(
                &ctx.result_uri(&id, results::PROBE),
                body,
                "application/json",
            )
            .await?;
    }
    match ctx
        .ports
        .store
        .commit(AssetWrite {
            asset: asset.clone(),
            expected_version: None,
            counter: None,
        })
        .await
    {
        Ok(()) => tracing::info!(asset_id = %id, source = %uri, "asset registered"),
        Err(StoreError::Conflict { .. }) => {
            // A concurrent duplicate registered it first: carry on with the stored record.
            let stored = ctx.ports.store.get(&id).await?;
            return stored
                .map(Some)
                .ok_or_else(|| HandlerError::Transient("asset vanished after conflict".into()));
        }
        Err(StoreError::CounterLimit { .. }) => unreachable!("no counter on create"),
        Err(StoreError::Port(e)) => return Err(e.into()),
    }
    if asset.state == AssetState::Failed {
        tracing::warn!(asset_id = %id, reason = ?asset.failure.as_ref().map(|f| &f.reason), "unusable media: asset failed");
        crate::flow::write_record(ctx, &asset).await;
        announce_failure(ctx, &asset).await?;
        return Ok(None);
    }
    Ok(Some(asset))
}

/// The longest video Rekognition Video analyses (6 hours).
pub const MAX_DURATION_SECONDS: f64 = 6.0 * 3600.0;

/// What makes a probed file unusable for this pipeline.
pub fn check_usable(p: &ProbeInfo) -> Option<String> {
    if p.video.is_none() {
        return Some("no video stream (audio-only files cannot be analysed for ad breaks)".into());
    }
    if p.duration_seconds <= 0.0 || !p.duration_seconds.is_finite() {
        return Some(format!("unusable duration {}", p.duration_seconds));
    }
    // Rekognition Video refuses longer videos; failing here saves the transcode it would
    // waste first.
    if p.duration_seconds > MAX_DURATION_SECONDS {
        return Some(format!(
            "duration {:.0} s is over the {} s (6 h) Rekognition Video accepts",
            p.duration_seconds, MAX_DURATION_SECONDS as u64
        ));
    }
    None
}

async fn submit_transcode(ctx: &WorkerContext, asset: &Asset) -> Result<(), HandlerError> {
    let tracks = asset
        .probe
        .as_ref()
        .map(|p| p.audio_tracks.len() as u32)
        .unwrap_or(0);
    let prefix = ctx.results_prefix(&asset.id);
    let settings = build_job_settings(&ctx.job_template, &asset.source.uri(), &prefix, tracks)
        .map_err(|e| HandlerError::Permanent(format!("MediaConvert job settings: {e}")))?;
    let client_token = format!("{}-transcode{}", asset.id, asset.attempt_suffix());
    // A job created earlier for this asset (crash before we recorded it, token window long
    // gone) is adopted, never duplicated; the failed job of a re-driven asset is not.
    let failed_before = asset
        .transcode
        .as_ref()
        .filter(|j| j.status == JobStatus::Failed)
        .map(|j| j.job_id.clone());
    let found = ctx.ports.transcoder.find_job(&asset.id).await?;
    let job_id = match found.filter(|j| Some(j) != failed_before.as_ref()) {
        Some(j) => {
            tracing::info!(job_id = %j, "adopting the transcode job already created for this asset");
            j
        }
        None => {
            let mut user_metadata = BTreeMap::new();
            user_metadata.insert("assetId".to_string(), asset.id.to_string());
            user_metadata.insert("workflow".to_string(), ctx.settings.workflow.clone());
            let request = TranscodeRequest {
                asset_id: asset.id.clone(),
                client_token: client_token.clone(),
                settings,
                user_metadata,
            };
            ctx.ports.transcoder.submit(&request).await?
        }
    };
    let job = JobRecord {
        job_id: job_id.clone(),
        client_token,
        submitted_at_ms: ctx.now_ms(),
        status: JobStatus::Submitted,
        reason: None,
    };
    let event = AssetEvent::TranscodeSubmitted { job };
    let Some(a) = advance(ctx, asset, event, None)
        .await?
        .recorded("transcode submission")
    else {
        return Ok(());
    };
    let job_id = a
        .transcode
        .as_ref()
        .map(|j| j.job_id.clone())
        .unwrap_or(job_id);
    let detail = PipelineDetail::TranscodeSubmitted { job_id };
    announce(ctx, &[PipelineEvent::about(&a, detail)]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use cuepoint_core::asset::VideoStreamInfo;

    fn probe(seconds: f64) -> ProbeInfo {
        ProbeInfo {
            container: "mov".into(),
            duration_seconds: seconds,
            video: Some(VideoStreamInfo {
                codec: "h264".into(),
                width: 160,
                height: 90,
                ..Default::default()
            }),
            audio_tracks: Vec::new(),
        }
    }

    #[test]
    fn sources_over_six_hours_are_unusable_before_any_transcode() {
        assert_eq!(check_usable(&probe(6.0 * 3600.0)), None);
        let why = check_usable(&probe(6.0 * 3600.0 + 1.0)).expect("refused");
        assert!(why.contains("6 h") && why.contains("Rekognition"), "{why}");
    }
}
