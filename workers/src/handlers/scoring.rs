//! Scoring: "Analyses Completed" → slots and breaks from the stored results → VMAP → SCORED →
//! "Breaks Chosen" (the packaging worker then encodes the ladder with the breaks in it).
//!
//! Breaks are put on the source's frame grid before the VMAP is written: the packaging job puts
//! a key frame and a segment boundary at exactly these times, and the VMAP's `timeOffset`s must
//! name those boundaries.

use std::collections::HashMap;

use cuepoint_core::asset::{Asset, AssetEvent, AssetState, BreakSummary, FailureStage};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::packaging::FrameRate;
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_core::results;
use cuepoint_core::scoring::ScoringInputs;
use cuepoint_runtime::consumer::HandlerError;

use crate::context::WorkerContext;
use crate::flow::{advance, announce, announce_failure, fail, load, put_results, write_record};

pub async fn on_analyses_completed(
    ctx: &WorkerContext,
    ev: &PipelineEvent,
) -> Result<(), HandlerError> {
    let asset = load(ctx, &ev.asset_id).await?;
    match asset.state {
        AssetState::Scored => return announce_breaks_chosen(ctx, &asset).await,
        // Packaging (or packaged): the breaks went out.
        AssetState::Packaging | AssetState::Complete => return Ok(()),
        // Scoring failed it: the announcement may not have gone out.
        AssetState::Failed
            if asset
                .failure
                .as_ref()
                .is_some_and(|f| f.stage == FailureStage::Scoring) =>
        {
            return announce_failure(ctx, &asset).await
        }
        AssetState::Failed => return Ok(()),
        AssetState::Analysed => {}
        other => {
            return Err(HandlerError::Transient(format!(
                "asset is {other}, not yet ANALYSED"
            )))
        }
    }
    let scoring = &ctx.scoring;

    // Fetch the results layout once, then score from memory (the core is pure).
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let tracks = asset.audio.as_ref().map(|a| a.audiocount).unwrap_or(0);
    let mut wanted: Vec<String> = (1..=tracks).map(results::loudness_track).collect();
    wanted.extend(
        AnalysisKind::ALL
            .iter()
            .map(|k| k.results_file().to_string()),
    );
    wanted.push(results::SPEECH.to_string());
    for rel in wanted {
        if let Some(bytes) = ctx
            .ports
            .blobs
            .get(&ctx.result_uri(&asset.id, &rel))
            .await?
        {
            files.insert(rel, bytes);
        }
    }
    let inputs = match ScoringInputs::from_files(|rel: &str| Ok(files.get(rel).cloned())) {
        Ok(i) => i,
        Err(e) => {
            return fail(
                ctx,
                &asset,
                FailureStage::Scoring,
                format!("results of asset {}: {e}", asset.id),
            )
            .await
        }
    };
    let mut output = match scoring.score(&inputs) {
        Ok(o) => o,
        Err(e) => return fail(ctx, &asset, FailureStage::Scoring, e.to_string()).await,
    };
    if let Some(rate) = frame_rate(&asset) {
        for b in output.breaks.iter_mut() {
            b.timestamp = rate.time_of(rate.frame_at(b.timestamp));
        }
    }
    let slots_json = serde_json::to_vec_pretty(&output).unwrap_or_default();
    let scenes = cuepoint_core::scenes::of_inputs(&inputs, &scoring.scene_options());
    let scenes_json = serde_json::to_vec_pretty(&scenes).unwrap_or_default();
    let title = format!("{} ({})", asset.source.key, asset.id);
    let svg = cuepoint_core::timeline::render_svg(&cuepoint_core::timeline::TimelineInput {
        title: &title,
        duration: output
            .duration
            .or(asset.probe.as_ref().map(|p| p.duration_seconds))
            .unwrap_or(0.0),
        loudness: &inputs.loudness,
        segments: inputs.segments.as_ref(),
        scenes: Some(&scenes),
        slots: &output.slots,
        breaks: &output.breaks,
        content: &cuepoint_core::content::ContentTimeline::of_inputs(
            &inputs,
            cuepoint_core::content::TOP_LABELS,
        ),
    });
    let planned = cuepoint_core::vmap::plan_breaks(&output.breaks, &scoring.inventory);
    for b in &planned {
        if let Some(creative) = scoring.placeholders.get(&b.ad_url) {
            crate::creatives::ensure(ctx, creative).await?;
        }
    }
    let vmap = cuepoint_core::vmap::build_vmap_with_duration(
        &planned,
        crate::scoring_config::break_seconds(&output),
    )
    .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    // Every file is stored before the record names the VMAP.
    put_results(
        ctx,
        &asset.id,
        vec![
            (results::SLOTS, slots_json, "application/json"),
            (results::SCENES, scenes_json, "application/json"),
            (results::TIMELINE, svg.into_bytes(), "image/svg+xml"),
            (results::VMAP, vmap.into_bytes(), "application/xml"),
        ],
    )
    .await?;
    let vmap_uri = ctx.result_uri(&asset.id, results::VMAP);

    let breaks = output
        .breaks
        .iter()
        .map(|s| BreakSummary {
            timestamp: s.timestamp,
            score: s.score,
            reasons: s.reasons.iter().map(|r| r.to_string()).collect(),
        })
        .collect();
    let event = AssetEvent::Scored {
        breaks,
        vmap: vmap_uri,
    };
    let Some(a) = advance(ctx, &asset, event, None).await?.recorded("score") else {
        return Ok(());
    };
    write_record(ctx, &a).await;
    announce_breaks_chosen(ctx, &a).await
}

/// The source's exact frame rate, from the probe.
fn frame_rate(asset: &Asset) -> Option<FrameRate> {
    let v = asset.probe.as_ref()?.video.as_ref()?;
    FrameRate::parse(&v.frame_rate_ratio)
}

/// "Breaks Chosen" for the asset's current breaks: the packaging worker takes it from here.
pub async fn announce_breaks_chosen(
    ctx: &WorkerContext,
    asset: &Asset,
) -> Result<(), HandlerError> {
    let Some(vmap) = asset.results.vmap.clone() else {
        return Ok(());
    };
    let detail = PipelineDetail::BreaksChosen {
        version: asset.vmap_version(),
        vmap,
        breaks: asset.breaks.len(),
    };
    announce(ctx, &[PipelineEvent::about(asset, detail)]).await
}
