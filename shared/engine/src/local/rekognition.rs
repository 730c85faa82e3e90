//! Rekognition Video played locally. Segment detection (the FFmpeg detectors of `analyze`) and
//! the label, face and moderation jobs (local models, see `cuepoint-vision`) share one pass
//! over the video, one decode for all of them (see `vision`), each answering in its Get* shape with a `CuepointAnalysis` status;
//! celebrity recognition has no offline model and says so. Completion is the notification
//! Rekognition publishes to its SNS topic; results are served by `get_page` in pages with a
//! `NextToken`.

use std::sync::Arc;

use async_trait::async_trait;
use cuepoint_core::asset::INFRASTRUCTURE_FAULT;
use cuepoint_core::events::rekognition::{completion_message, VideoJobCompletion};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::ports::{
    AnalysisRequest, BlobStore, Clock, JobLedger, LedgerJob, LedgerService, LedgerStatus,
    PortError, PortResult, ResultsPage, Topic, VideoAnalyzer,
};
use cuepoint_vision::{AnalysisStatus, CuepointAnalysis, Outcome, VisionResults};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::vision::{PassResults, ProxyPasses};
use super::{digest, job_scratch, local_input, LocalEngineConfig, Runner};
use crate::analyze::AnalyzeOptions;

/// Items per `get_page` page (Rekognition's MaxResults ceiling is 1000).
pub const SEGMENTS_PAGE_SIZE: usize = 1000;

/// The `VideoAnalyzer` port on FFmpeg.
#[derive(Clone)]
pub struct LocalRekognition {
    inner: Arc<Inner>,
}

struct Inner {
    blobs: Arc<dyn BlobStore>,
    topic: Arc<dyn Topic>,
    ledger: Arc<dyn JobLedger>,
    clock: Arc<dyn Clock>,
    config: LocalEngineConfig,
    page_size: usize,
    runner: Runner,
    passes: ProxyPasses,
}

impl LocalRekognition {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        topic: Arc<dyn Topic>,
        ledger: Arc<dyn JobLedger>,
        clock: Arc<dyn Clock>,
        config: LocalEngineConfig,
    ) -> Self {
        Self::with_options(
            blobs,
            topic,
            ledger,
            clock,
            config,
            AnalyzeOptions::default(),
            SEGMENTS_PAGE_SIZE,
        )
    }

    /// As `new`, with the analysis options (loudness is always off here) and the page size.
    pub fn with_options(
        blobs: Arc<dyn BlobStore>,
        topic: Arc<dyn Topic>,
        ledger: Arc<dyn JobLedger>,
        clock: Arc<dyn Clock>,
        config: LocalEngineConfig,
        options: AnalyzeOptions,
        page_size: usize,
    ) -> Self {
        let runner = Runner::new(&config);
        let options = AnalyzeOptions {
            loudness: false,
            video: true,
            ..options
        };
        let passes = ProxyPasses::new(
            options,
            config.vision.clone(),
            config
                .scratch_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir)
                .join("cuepoint-vision"),
        );
        LocalRekognition {
            inner: Arc::new(Inner {
                blobs,
                topic,
                ledger,
                clock,
                config,
                page_size: page_size.max(1),
                runner,
                passes,
            }),
        }
    }
}

super::job_control!(
    LocalRekognition,
    LedgerService::Rekognition,
    "video analysis job"
);

/// 64 hex digits, like Rekognition's job ids.
fn job_id(now_ms: u64, token: &str) -> String {
    let now = now_ms.to_string();
    (0..4u8)
        .map(|i| {
            format!(
                "{:016x}",
                digest(&[
                    LedgerService::Rekognition.as_str(),
                    token,
                    &now,
                    &i.to_string()
                ])
            )
        })
        .collect()
}

/// Rekognition's idempotency is per operation: the same token on two Start* APIs is two jobs.
fn ledger_token(kind: AnalysisKind, token: &str) -> String {
    format!("{}/{token}", kind.start_api())
}

#[async_trait]
impl VideoAnalyzer for LocalRekognition {
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String> {
        let now = self.inner.clock.now_ms();
        let token = ledger_token(request.kind, &request.client_token);
        let job = LedgerJob {
            service: LedgerService::Rekognition,
            job_id: job_id(now, &token),
            client_token: token,
            asset_id: request.job_tag.clone(),
            request: serde_json::to_value(request)
                .map_err(|e| PortError::Permanent(format!("request does not serialize: {e}")))?,
            status: LedgerStatus::Submitted,
            result: None,
            created_at_ms: now,
        };
        let (stored, created) = self.inner.ledger.create_or_get(&job).await?;
        if created {
            tracing::info!(job_id = %stored.job_id, kind = %request.kind, "video analysis job accepted");
            self.spawn(stored.clone()).await;
        }
        Ok(stored.job_id)
    }

    async fn get_page(
        &self,
        kind: AnalysisKind,
        job_id: &str,
        next_token: Option<&str>,
    ) -> PortResult<ResultsPage> {
        let job = self
            .inner
            .ledger
            .get(LedgerService::Rekognition, job_id)
            .await?
            .ok_or_else(|| PortError::NotFound(format!("no video analysis job {job_id}")))?;
        let request: AnalysisRequest =
            serde_json::from_value(job.request.clone()).map_err(|e| {
                PortError::Permanent(format!("job {job_id}: stored request does not parse: {e}"))
            })?;
        if request.kind != kind {
            return Err(PortError::Permanent(format!(
                "job {job_id} is a {} job, not {kind}",
                request.kind
            )));
        }
        let mut body = match stored_response(&job) {
            Some(Value::Object(response)) => response.clone(),
            _ if job.status == LedgerStatus::Error => {
                let mut m = Map::new();
                m.insert("JobStatus".into(), json!("FAILED"));
                m.insert("StatusMessage".into(), json!("the job failed"));
                m
            }
            _ => {
                let mut m = Map::new();
                m.insert("JobStatus".into(), json!("IN_PROGRESS"));
                m
            }
        };
        body.insert("JobId".into(), json!(job.job_id));
        body.insert("JobTag".into(), json!(request.job_tag));
        body.insert(
            "Video".into(),
            json!({"S3Object": {"Bucket": request.video.bucket.to_string(), "Name": request.video.key.to_string()}}),
        );
        let field = kind.list_field();
        let items = match body.remove(field) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let start = match next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("page-")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n <= items.len())
                .ok_or_else(|| {
                    PortError::Permanent(format!("invalid NextToken {t:?} for job {job_id}"))
                })?,
        };
        let end = (start + self.inner.page_size).min(items.len());
        let next = (end < items.len()).then(|| format!("page-{end}"));
        body.insert(field.into(), Value::Array(items[start..end].to_vec()));
        if let Some(t) = &next {
            body.insert("NextToken".into(), json!(t));
        }
        Ok(ResultsPage {
            body: Value::Object(body),
            next_token: next,
        })
    }
}

impl Inner {
    async fn run(&self, job: LedgerJob) {
        let request: AnalysisRequest = match serde_json::from_value(job.request.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job_id = %job.job_id, error = %e, "ledger holds an unreadable analysis request");
                let _ = self
                    .ledger
                    .finish(
                        LedgerService::Rekognition,
                        &job.job_id,
                        LedgerStatus::Error,
                        json!({"StatusMessage": format!("stored request does not parse: {e}")}),
                    )
                    .await;
                return;
            }
        };
        if let Some(response) = stored_response(&job) {
            // Finished before a restart but not announced: announce only.
            self.announce(&job, &request, response.clone()).await;
            return;
        }
        let outcome = match request.kind {
            AnalysisKind::Segments => self.detect_segments(&job, &request).await,
            AnalysisKind::Celebrities => Ok(celebrities_unavailable()),
            kind @ (AnalysisKind::Labels | AnalysisKind::Faces | AnalysisKind::Moderation) => self
                .see(&job, &request)
                .await
                .map(|results| vision_response(kind, &results)),
            // Not a Rekognition analysis (Transcribe's stand-in runs it); nothing to find here.
            other => Ok(json!({"JobStatus": "SUCCEEDED", other.list_field(): []})),
        };
        let response = match outcome {
            Ok(result) => result,
            Err(message) => {
                tracing::warn!(job_id = %job.job_id, %message, "video analysis failed");
                json!({"JobStatus": "FAILED", "StatusMessage": message})
            }
        };
        // Store the response while the job is still SUBMITTED, publish, then mark it finished:
        // a notified consumer calls get_page at once and finds the results, and a crash before
        // the final mark re-publishes on resume without re-running the analysis.
        let stored = self
            .runner
            .persist("recording the analysis result", &job.job_id, || {
                self.ledger.finish(
                    LedgerService::Rekognition,
                    &job.job_id,
                    LedgerStatus::Submitted,
                    response.clone(),
                )
            })
            .await;
        if stored.is_some() {
            self.announce(&job, &request, response).await;
        }
    }

    /// Publish the completion of a job whose response is stored, then mark it finished.
    async fn announce(&self, job: &LedgerJob, request: &AnalysisRequest, response: Value) {
        let succeeded = response.get("JobStatus").and_then(Value::as_str) == Some("SUCCEEDED");
        let completion = VideoJobCompletion {
            job_id: job.job_id.clone(),
            status: if succeeded { "SUCCEEDED" } else { "FAILED" }.into(),
            api: request.kind.start_api().into(),
            job_tag: Some(request.job_tag.clone()),
            timestamp_ms: Some(self.clock.now_ms()),
            video_bucket: Some(request.video.bucket.to_string()),
            video_key: Some(request.video.key.to_string()),
            sns_message_id: None,
        };
        let message = completion_message(&completion);
        let published = self
            .runner
            .persist("publishing the completion", &job.job_id, || {
                self.topic.publish(&message)
            })
            .await;
        if published.is_none() {
            return;
        }
        let status = if succeeded {
            LedgerStatus::Complete
        } else {
            LedgerStatus::Error
        };
        self.runner
            .persist("marking the published job finished", &job.job_id, || {
                self.ledger.finish(
                    LedgerService::Rekognition,
                    &job.job_id,
                    status,
                    response.clone(),
                )
            })
            .await;
    }

    async fn detect_segments(
        &self,
        job: &LedgerJob,
        request: &AnalysisRequest,
    ) -> Result<Value, String> {
        let pass = self.pass(job, request).await?;
        serde_json::to_value(&pass.segments)
            .map_err(|e| format!("segment detection does not serialize: {e}"))
    }

    /// The vision results of the pass over the job's video.
    async fn see(
        &self,
        job: &LedgerJob,
        request: &AnalysisRequest,
    ) -> Result<VisionResults, String> {
        Ok(self.pass(job, request).await?.vision.clone())
    }

    /// The pass over the job's video: run by the first of the video's jobs, shared with the
    /// others (see `vision`).
    async fn pass(
        &self,
        job: &LedgerJob,
        request: &AnalysisRequest,
    ) -> Result<Arc<PassResults>, String> {
        let uri = &request.video;
        // A fault of the machine says so (and is then retriable with `cuepoint retry`).
        let infra = |e: &dyn std::fmt::Display| format!("{INFRASTRUCTURE_FAULT}: {e}");
        let reading = |e: PortError| {
            let message = format!("reading {uri}: {e}");
            if e.is_transient() {
                infra(&message)
            } else {
                message
            }
        };
        let missing = || {
            format!("Unable to get object metadata from S3. Check object key, region and/or access permissions: {uri}")
        };
        let identity = match self.blobs.local_path(uri).filter(|p| p.is_file()) {
            Some(p) => format!("{uri} {}", super::vision::file_stamp(&p)),
            None => {
                let meta = self
                    .blobs
                    .head(uri)
                    .await
                    .map_err(reading)?
                    .ok_or_else(missing)?;
                format!("{uri} {} {:?}", meta.size, meta.etag)
            }
        };
        let video = async {
            let scratch = job_scratch(&self.config, &job.job_id).map_err(|e| infra(&e))?;
            let path = local_input(&self.blobs, uri, scratch.path())
                .await
                .map_err(reading)?
                .ok_or_else(missing)?;
            Ok((path, scratch))
        };
        match &*self.passes.results(&identity, video).await {
            Ok(r) => Ok(r.clone()),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The Get* response of one vision analysis. A model that is missing or failed leaves its
/// list empty and says why in `CuepointAnalysis`; the job itself succeeds, so the asset goes
/// on with what the other analyses found.
fn vision_response(kind: AnalysisKind, results: &VisionResults) -> Value {
    fn body<T: Serialize>(kind: AnalysisKind, o: &Outcome<T>, model: &str) -> Value {
        let mut m = Map::new();
        m.insert("JobStatus".into(), json!("SUCCEEDED"));
        m.insert(
            kind.list_field().into(),
            serde_json::to_value(&o.items).unwrap_or_else(|_| json!([])),
        );
        let mut analysis = o.analysis.clone();
        analysis.model.get_or_insert_with(|| model.to_string());
        m.insert(
            "CuepointAnalysis".into(),
            serde_json::to_value(&analysis).unwrap_or(Value::Null),
        );
        Value::Object(m)
    }
    let mut v = match kind {
        AnalysisKind::Labels => body(kind, &results.labels, "mobilenet-v2"),
        AnalysisKind::Faces => body(kind, &results.faces, "retinaface"),
        _ => body(kind, &results.moderation, "opennsfw"),
    };
    if kind == AnalysisKind::Labels {
        v["LabelModelVersion"] = json!("mobilenet-v2-imagenet1k");
    }
    v
}

/// Celebrity recognition offline: an empty list and the reason.
fn celebrities_unavailable() -> Value {
    let analysis = CuepointAnalysis {
        status: AnalysisStatus::UnavailableOffline,
        model: None,
        message: Some(
            "celebrity recognition runs only on Rekognition: no face-embedding model with a licence that permits this use runs in pure Rust, so the embedded default does not recognise people"
                .into(),
        ),
    };
    json!({
        "JobStatus": "SUCCEEDED",
        "Celebrities": [],
        "CuepointAnalysis": analysis,
    })
}

/// The Get* response stored for a job (a JSON object with `JobStatus`), once it has one.
fn stored_response(job: &LedgerJob) -> Option<&Value> {
    job.result.as_ref().filter(|r| {
        r.get("JobStatus")
            .and_then(Value::as_str)
            .is_some_and(|s| s != "IN_PROGRESS")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tokens() {
        let id = job_id(1, "Start/x");
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(
            ledger_token(AnalysisKind::Labels, "t"),
            ledger_token(AnalysisKind::Faces, "t")
        );
        let c = celebrities_unavailable();
        assert_eq!(c["Celebrities"], json!([]));
        assert_eq!(c["CuepointAnalysis"]["Status"], "UNAVAILABLE_OFFLINE");
    }
}
