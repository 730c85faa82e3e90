//! Results: a Rekognition completion (SNS → SQS) → fetch every page → store the merged
//! response in the results layout → mark the analysis done. A "Transcribe Job State Change"
//! (EventBridge → SQS) → read the job and its transcript → `transcript.json`, `speech.json`.
//! The write that completes the last analysis is the one that announces "Analyses Completed":
//! the conditional write on the asset's version guarantees exactly one writer wins it.

use cuepoint_core::asset::{Asset, AssetEvent, AssetState, FailureStage, JobStatus};
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::rekognition::VideoJobCompletion;
use cuepoint_core::events::transcribe::{self, TranscriptionJobStateChange};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_core::results;
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::{CounterDelta, TranscriptionStatus};
use serde_json::Value;

use crate::context::{WorkerContext, OPEN_JOBS_COUNTER};
use crate::flow::{advance, announce, announce_failure, fail, load_when_ready, put_results};

/// Safety net against a service that never stops paging.
const MAX_PAGES: usize = 10_000;

pub async fn on_completion(
    ctx: &WorkerContext,
    c: &VideoJobCompletion,
) -> Result<(), HandlerError> {
    let Some(tag) = c.job_tag.as_deref() else {
        return Err(HandlerError::Permanent(format!(
            "Rekognition job {} notification has no JobTag",
            c.job_id
        )));
    };
    let id = AssetId::parse(tag)
        .map_err(|e| HandlerError::Permanent(format!("Rekognition JobTag: {e}")))?;
    let Some(kind) = c.kind() else {
        return Err(HandlerError::Permanent(format!(
            "Rekognition API {:?} is not one cuepoint starts",
            c.api
        )));
    };
    let asset = load_when_ready(ctx, &id, |a| not_recorded_yet(a, kind)).await?;
    if asset
        .failure
        .as_ref()
        .is_some_and(|f| f.stage == FailureStage::Analysis(kind))
        && asset
            .analyses
            .get(&kind)
            .is_some_and(|j| j.job_id == c.job_id)
    {
        // This completion failed the asset; its announcement may not have gone out.
        return announce_failure(ctx, &asset).await;
    }
    if asset.state.is_terminal() {
        tracing::info!(state = %asset.state, "asset finished; completion ignored");
        return Ok(());
    }
    if !asset.state.at_or_after(AssetState::Analysing) {
        return Err(HandlerError::Transient(format!(
            "completion arrived while the asset is {}",
            asset.state
        )));
    }
    let Some(job) = asset.analyses.get(&kind) else {
        return Err(HandlerError::Transient(format!(
            "analysis {kind} not recorded yet"
        )));
    };
    if job.job_id != c.job_id {
        tracing::warn!(job_id = %c.job_id, recorded = %job.job_id, "completion of a job this asset does not own; ignored");
        return Ok(());
    }
    if !c.succeeded() {
        let mut reason = format!("Rekognition {} job {} ended {}", c.api, c.job_id, c.status);
        // The notification carries no cause; the job's StatusMessage does (and says whether
        // the fault was the machine's, which decides if `cuepoint retry` may re-drive it).
        if let Some(why) = status_message(ctx, kind, &c.job_id).await {
            reason.push_str(&format!(": {why}"));
        }
        return fail(ctx, &asset, FailureStage::Analysis(kind), reason).await;
    }
    if job.status == JobStatus::Succeeded {
        // Redelivery: maybe the announcement was lost.
        return announce_if_analysed(ctx, &asset).await;
    }

    let merged = fetch_all_pages(ctx, kind, &c.job_id).await?;
    let body = serde_json::to_vec_pretty(&merged).unwrap_or_default();
    ctx.ports
        .blobs
        .put(
            &ctx.result_uri(&id, kind.results_file()),
            body,
            "application/json",
        )
        .await?;

    let counter = CounterDelta {
        name: OPEN_JOBS_COUNTER.into(),
        delta: -1,
        max: None,
    };
    let event = AssetEvent::AnalysisCompleted {
        kind,
        job_id: c.job_id.clone(),
    };
    match advance(ctx, &asset, event, Some(counter))
        .await?
        .recorded("completion")
    {
        Some(a) => announce_if_analysed(ctx, &a).await,
        None => Ok(()),
    }
}

/// A transcription finished: store `transcript.json` and `speech.json`, mark the analysis done
/// (or failed: the asset goes on without it, the files say why).
pub async fn on_transcription(
    ctx: &WorkerContext,
    ev: &TranscriptionJobStateChange,
) -> Result<(), HandlerError> {
    let id = transcribe::asset_of(&ev.job_name, &ctx.settings.workflow)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let kind = AnalysisKind::Transcription;
    let asset = load_when_ready(ctx, &id, |a| not_recorded_yet(a, kind)).await?;
    if asset.state.is_terminal() {
        tracing::info!(state = %asset.state, "asset finished; transcription ignored");
        return Ok(());
    }
    if !asset.state.at_or_after(AssetState::Analysing) {
        return Err(HandlerError::Transient(format!(
            "transcription finished while the asset is {}",
            asset.state
        )));
    }
    let Some(job) = asset.analyses.get(&kind) else {
        return Err(HandlerError::Transient(format!(
            "analysis {kind} not recorded yet"
        )));
    };
    if job.job_id != ev.job_name {
        tracing::warn!(job = %ev.job_name, recorded = %job.job_id, "transcription this asset does not own; ignored");
        return Ok(());
    }
    if job.status != JobStatus::Submitted {
        // Redelivery: maybe the announcement was lost.
        return announce_if_analysed(ctx, &asset).await;
    }
    let got = ctx.ports.transcriber.get(&ev.job_name).await?;
    let failure = match (ev.succeeded(), got.status) {
        (_, TranscriptionStatus::InProgress) => {
            return Err(HandlerError::Transient(format!(
                "transcription job {} announced {} but reads IN_PROGRESS",
                ev.job_name,
                ev.state.as_status()
            )))
        }
        (true, TranscriptionStatus::Completed) => None,
        _ => Some(
            got.failure_reason
                .clone()
                .or_else(|| ev.failure_reason.clone())
                .unwrap_or_else(|| format!("transcription job {} failed", ev.job_name)),
        ),
    };
    let (transcript, speech) = match &failure {
        Some(reason) => (
            crate::speech::failed_transcript(reason),
            crate::speech::failed_speech(reason),
        ),
        None => {
            let Some(uri) = got.transcript.as_ref() else {
                return Err(HandlerError::Permanent(format!(
                    "transcription job {} completed without a transcript location",
                    ev.job_name
                )));
            };
            let Some(bytes) = ctx.ports.blobs.get(uri).await? else {
                return Err(HandlerError::Transient(format!(
                    "transcript {uri} not readable yet"
                )));
            };
            let transcript: Value = serde_json::from_slice(&bytes).map_err(|e| {
                HandlerError::Permanent(format!("transcript {uri} is not JSON: {e}"))
            })?;
            if transcript
                .pointer("/results/transcripts")
                .and_then(Value::as_array)
                .is_none()
            {
                return Err(HandlerError::Permanent(format!(
                    "transcript {uri} lacks results.transcripts (not Transcribe's output shape)"
                )));
            }
            let track = asset
                .audio
                .as_ref()
                .and_then(|a| a.main_dialogue_track())
                .unwrap_or(1);
            let speech = got
                .speech
                .clone()
                .unwrap_or_else(|| crate::speech::speech_from_transcript(&transcript, track));
            (transcript, speech)
        }
    };
    let json = |body: &Value| serde_json::to_vec_pretty(body).unwrap_or_default();
    put_results(
        ctx,
        &id,
        vec![
            (results::TRANSCRIPT, json(&transcript), "application/json"),
            (results::SPEECH, json(&speech), "application/json"),
        ],
    )
    .await?;
    let event = match failure {
        Some(reason) => {
            tracing::warn!(job = %ev.job_name, %reason, "transcription failed; the asset goes on without it");
            AssetEvent::AnalysisFailed {
                kind,
                job_id: ev.job_name.clone(),
                reason,
            }
        }
        None => AssetEvent::AnalysisCompleted {
            kind,
            job_id: ev.job_name.clone(),
        },
    };
    match advance(ctx, &asset, event, None)
        .await?
        .recorded("transcription outcome")
    {
        Some(a) => announce_if_analysed(ctx, &a).await,
        None => Ok(()),
    }
}

/// A completion that overtook the write recording its job's start: the asset is still going
/// and does not list the analysis yet.
fn not_recorded_yet(asset: &Asset, kind: AnalysisKind) -> bool {
    !asset.state.is_terminal()
        && (!asset.state.at_or_after(AssetState::Analysing) || !asset.analyses.contains_key(&kind))
}

async fn announce_if_analysed(ctx: &WorkerContext, asset: &Asset) -> Result<(), HandlerError> {
    if asset.state == AssetState::Analysed {
        announce(
            ctx,
            &[PipelineEvent::about(
                asset,
                PipelineDetail::AnalysesCompleted,
            )],
        )
        .await
    } else {
        Ok(())
    }
}

/// A failed job's `StatusMessage`, best effort: the failure is recorded either way.
async fn status_message(ctx: &WorkerContext, kind: AnalysisKind, job_id: &str) -> Option<String> {
    match ctx.ports.analyzer.get_page(kind, job_id, None).await {
        Ok(page) if page.body.get("JobStatus").and_then(Value::as_str) == Some("FAILED") => page
            .body
            .get("StatusMessage")
            .and_then(Value::as_str)
            .map(str::to_string),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "could not read the failed job's status message");
            None
        }
    }
}

async fn fetch_all_pages(
    ctx: &WorkerContext,
    kind: AnalysisKind,
    job_id: &str,
) -> Result<Value, HandlerError> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .ports
            .analyzer
            .get_page(kind, job_id, token.as_deref())
            .await?;
        token = page.next_token.clone();
        pages.push(page.body);
        if token.is_none() {
            break;
        }
        if pages.len() >= MAX_PAGES {
            return Err(HandlerError::Permanent(format!(
                "{kind} job {job_id}: more than {MAX_PAGES} pages"
            )));
        }
    }
    Ok(merge_pages(kind, pages))
}

/// Merge Get* pages: the first page's metadata, every page's items in order, no NextToken.
pub fn merge_pages(kind: AnalysisKind, pages: Vec<Value>) -> Value {
    let field = kind.list_field();
    let mut iter = pages.into_iter();
    let mut merged = iter
        .next()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let Some(obj) = merged.as_object_mut() else {
        return merged;
    };
    obj.remove("NextToken");
    let mut items = match obj.remove(field) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    for page in iter {
        if let Some(Value::Array(more)) = page.get(field) {
            items.extend(more.iter().cloned());
        }
    }
    obj.insert(field.to_string(), Value::Array(items));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_merge_in_order_without_next_token() {
        let pages = vec![
            json!({"JobStatus":"SUCCEEDED","VideoMetadata":[{"DurationMillis":1000}],"Segments":[{"i":1},{"i":2}],"NextToken":"t1"}),
            json!({"JobStatus":"SUCCEEDED","VideoMetadata":[{"DurationMillis":1000}],"Segments":[{"i":3}],"NextToken":"t2"}),
            json!({"JobStatus":"SUCCEEDED","Segments":[]}),
        ];
        let m = merge_pages(AnalysisKind::Segments, pages);
        assert_eq!(m["Segments"], json!([{"i":1},{"i":2},{"i":3}]));
        assert!(m.get("NextToken").is_none());
        assert_eq!(m["VideoMetadata"][0]["DurationMillis"], 1000);
        let empty = merge_pages(
            AnalysisKind::Moderation,
            vec![json!({"JobStatus":"SUCCEEDED"})],
        );
        assert_eq!(empty["ModerationLabels"], json!([]));
    }
}
