//! One handler per worker. Each takes the parsed inbound event; `WorkerHandler` does the
//! parsing and refuses events that do not belong on its queue.

pub mod analysis;
pub mod ingest;
pub mod media;
pub mod packaging;
pub mod results;
pub mod scoring;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use cuepoint_core::events::{parse_message, Inbound, PipelineDetail};
use cuepoint_runtime::consumer::{Handler, HandlerError};
use cuepoint_runtime::ports::ReceivedMessage;

use crate::context::WorkerContext;

/// The workers of the pipeline, each consuming its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkerKind {
    Ingest,
    Media,
    Analysis,
    Results,
    Scoring,
    Packaging,
}

impl WorkerKind {
    pub const ALL: [WorkerKind; 6] = [
        Self::Ingest,
        Self::Media,
        Self::Analysis,
        Self::Results,
        Self::Scoring,
        Self::Packaging,
    ];

    /// The queue it consumes (names in infra/routing.json).
    pub fn queue(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Media => "media",
            Self::Analysis => "analysis",
            Self::Results => "results",
            Self::Scoring => "scoring",
            Self::Packaging => "packaging",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.queue() == s)
    }
}

impl std::fmt::Display for WorkerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.queue())
    }
}

pub struct WorkerHandler {
    pub kind: WorkerKind,
    pub ctx: WorkerContext,
}

#[async_trait]
impl Handler for WorkerHandler {
    async fn handle(&self, message: &ReceivedMessage) -> Result<(), HandlerError> {
        let events = parse_message(&message.body).map_err(|e| {
            HandlerError::Permanent(format!(
                "malformed message on queue {}: {e}",
                self.kind.queue()
            ))
        })?;
        for event in &events {
            self.dispatch(event).await?;
        }
        Ok(())
    }
}

impl WorkerHandler {
    async fn dispatch(&self, event: &Inbound) -> Result<(), HandlerError> {
        let ctx = &self.ctx;
        if let Inbound::Pipeline(p) = event {
            tracing::Span::current().record("event_id", p.event_id.as_str());
            tracing::Span::current().record("asset_id", p.asset_id.as_str());
        }
        match (self.kind, event) {
            (_, Inbound::Ignored { reason }) => {
                tracing::debug!(%reason, "event needs no action");
                Ok(())
            }
            (WorkerKind::Ingest, Inbound::S3ObjectCreated(o)) => {
                ingest::on_object_created(ctx, o).await
            }
            (WorkerKind::Media, Inbound::MediaConvert(j)) => {
                media::on_job_state_change(ctx, j).await
            }
            (WorkerKind::Analysis, Inbound::Pipeline(p))
                if matches!(p.detail, PipelineDetail::MediaPrepared { .. }) =>
            {
                analysis::on_media_prepared(ctx, p).await
            }
            (WorkerKind::Results, Inbound::Rekognition(c)) => results::on_completion(ctx, c).await,
            (WorkerKind::Results, Inbound::Transcribe(t)) => {
                results::on_transcription(ctx, t).await
            }
            (WorkerKind::Scoring, Inbound::Pipeline(p))
                if matches!(p.detail, PipelineDetail::AnalysesCompleted) =>
            {
                scoring::on_analyses_completed(ctx, p).await
            }
            (WorkerKind::Packaging, Inbound::Pipeline(p))
                if matches!(
                    p.detail,
                    PipelineDetail::BreaksChosen { .. } | PipelineDetail::BreaksEdited { .. }
                ) =>
            {
                packaging::on_breaks_chosen(ctx, p).await
            }
            (WorkerKind::Packaging, Inbound::MediaConvert(j)) => {
                packaging::on_job_state_change(ctx, j).await
            }
            (kind, other) => Err(HandlerError::Permanent(format!(
                "unexpected event on the {kind} queue: {}",
                describe(other)
            ))),
        }
    }
}

fn describe(e: &Inbound) -> String {
    match e {
        Inbound::S3ObjectCreated(o) => format!("S3 Object Created s3://{}/{}", o.bucket, o.key),
        Inbound::MediaConvert(j) => format!("MediaConvert job {} state change", j.job_id),
        Inbound::Rekognition(c) => format!("Rekognition {} completion for job {}", c.api, c.job_id),
        Inbound::Transcribe(t) => {
            format!("transcription job {} {}", t.job_name, t.state.as_status())
        }
        Inbound::Pipeline(p) => format!("pipeline event {} ({})", p.detail_type(), p.event_id),
        Inbound::Ignored { reason } => format!("ignored event ({reason})"),
    }
}
