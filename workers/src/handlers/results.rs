//! Results: a Rekognition completion (SNS → SQS) → fetch every page → store the merged
//! response in the results layout → mark the analysis done. The write that completes the last
//! analysis is the one that announces "Analyses Completed": the conditional write on the
//! asset's version guarantees exactly one writer wins it.

use cuepoint_core::asset::{AssetEvent, AssetState, FailureStage, JobStatus};
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::rekognition::VideoJobCompletion;
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::CounterDelta;
use serde_json::Value;

use crate::context::{WorkerContext, OPEN_JOBS_COUNTER};
use crate::flow::{advance, announce, announce_failure, fail, load};

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
    let asset = load(ctx, &id).await?;
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
        let reason = format!("Rekognition {} job {} ended {}", c.api, c.job_id, c.status);
        return fail(ctx, &asset, FailureStage::Analysis(kind), reason).await;
    }
    if job.status == JobStatus::Succeeded {
        // Redelivery: maybe the announcement was lost.
        return announce_if_analysed(ctx, &asset.id, asset.state).await;
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
        Some(a) => announce_if_analysed(ctx, &a.id, a.state).await,
        None => Ok(()),
    }
}

async fn announce_if_analysed(
    ctx: &WorkerContext,
    id: &AssetId,
    state: AssetState,
) -> Result<(), HandlerError> {
    if state == AssetState::Analysed {
        announce(
            ctx,
            &[PipelineEvent::new(
                id.clone(),
                PipelineDetail::AnalysesCompleted,
            )],
        )
        .await
    } else {
        Ok(())
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
