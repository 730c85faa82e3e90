//! Choosing and wiring backends from configuration: the same workers run embedded (SQLite,
//! files, FFmpeg) or on AWS (feature `aws`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use cuepoint_core::domain::BucketName;
use cuepoint_core::routing::RoutingDefinition;
use cuepoint_runtime::config::{Backend as BackendKind, LogFormat, Settings};
use cuepoint_runtime::metrics::Metrics;
use cuepoint_runtime::ports::{Clock, DeadLetters, EventBus, Ports, Queue, SystemClock};

use crate::context::WorkerContext;

/// Everything a process needs: the worker context, the queues, the DLQ tooling, and (embedded)
/// the local media engine that plays MediaConvert and Rekognition.
pub struct Backend {
    pub ctx: WorkerContext,
    pub dead_letters: Arc<dyn DeadLetters>,
    queues: BTreeMap<String, Arc<dyn Queue>>,
    /// Embedded only: the backend itself (status views, raw events) and the engine.
    pub embedded: Option<Arc<cuepoint_embedded::EmbeddedBackend>>,
    pub engine: Option<cuepoint_engine::local::LocalEngine>,
}

impl Backend {
    pub fn queue(&self, name: &str) -> Arc<dyn Queue> {
        self.queues
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no queue named {name} in the routing definition"))
    }

    pub fn try_queue(&self, name: &str) -> Option<Arc<dyn Queue>> {
        self.queues.get(name).cloned()
    }

    pub fn bus(&self) -> Arc<dyn EventBus> {
        self.ctx.ports.bus.clone()
    }

    /// Stop (after the consume loops): the local engine starts no queued job and gives the
    /// running ones the shutdown grace period (`consumer.shutdown_grace_seconds`) to finish
    /// and announce. Jobs still running then are abandoned with the process (their FFmpeg
    /// children are killed with it) and stay unfinished in the ledger: the next start resumes
    /// them.
    pub async fn shutdown(&self) {
        if let Some(engine) = &self.engine {
            let grace =
                std::time::Duration::from_secs(self.ctx.settings.consumer.shutdown_grace_seconds);
            if !engine.drain(grace).await {
                tracing::warn!(grace_seconds = grace.as_secs(), "media jobs still running after the grace period; they resume on the next start");
            }
        }
    }
}

/// The routing definition with this deployment's names substituted.
pub fn routing(settings: &Settings) -> anyhow::Result<RoutingDefinition> {
    let mut vars = BTreeMap::new();
    vars.insert("IngestBucket", settings.ingest_bucket.as_str());
    vars.insert("WorkflowName", settings.workflow.as_str());
    RoutingDefinition::load(&vars).context("routing definition (infra/routing.json)")
}

/// The routing definition the embedded bus runs: `routing.json` plus its `embeddedOnly` routes
/// (the review app's catalog queue, which the AWS template does not carry).
pub fn embedded_routing(settings: &Settings) -> anyhow::Result<RoutingDefinition> {
    let mut doc: serde_json::Value =
        serde_json::from_str(cuepoint_core::routing::ROUTING_JSON).context("infra/routing.json")?;
    if let Some(extra) = doc.get("embeddedOnly").cloned() {
        for key in ["queues", "rules"] {
            let add = extra
                .get(key)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            if let Some(list) = doc.get_mut(key).and_then(|v| v.as_array_mut()) {
                list.extend(add);
            }
        }
    }
    let mut vars = BTreeMap::new();
    vars.insert("IngestBucket", settings.ingest_bucket.as_str());
    vars.insert("WorkflowName", settings.workflow.as_str());
    RoutingDefinition::from_json_str(&doc.to_string(), &vars)
        .context("routing definition (infra/routing.json)")
}

/// The local vision pass from the settings: models dir, sampling rate, moderation threshold.
pub(crate) fn vision_config(settings: &Settings) -> cuepoint_engine::vision::VisionConfig {
    let mut v = cuepoint_engine::vision::VisionConfig {
        models_dir: cuepoint_models::ModelsDir::resolve(settings.models.dir.as_deref())
            .root()
            .to_path_buf(),
        moderation_min_confidence: settings.analysis.moderation_min_confidence,
        moderation_interval: settings.analysis.moderation_sample_seconds,
        faces_interval: settings.analysis.face_sample_seconds,
        ..Default::default()
    };
    v.sampling.interval = settings.analysis.vision_sample_seconds;
    v
}

fn validate(settings: &Settings) -> anyhow::Result<()> {
    BucketName::parse(settings.ingest_bucket.clone()).context("ingest_bucket")?;
    BucketName::parse(settings.output_bucket.clone()).context("output_bucket")?;
    let a = &settings.analysis;
    anyhow::ensure!(
        a.vision_sample_seconds.is_finite() && a.vision_sample_seconds > 0.0,
        "analysis.vision_sample_seconds must be a positive number of seconds"
    );
    for (name, seconds) in [
        ("moderation_sample_seconds", a.moderation_sample_seconds),
        ("face_sample_seconds", a.face_sample_seconds),
    ] {
        anyhow::ensure!(
            seconds.is_finite() && seconds > 0.0,
            "analysis.{name} must be a positive number of seconds"
        );
    }
    anyhow::ensure!(
        (0.0..=100.0).contains(&a.moderation_min_confidence),
        "analysis.moderation_min_confidence must be 0-100"
    );
    // Checked again when the worker context is built; here it fails before anything starts.
    crate::scoring_config::Scoring::from_settings(&settings.scoring, &settings.output_bucket)?;
    Ok(())
}

/// Build the configured backend. `engine` starts the local media engine in this process
/// (embedded: the processes that submit jobs run them).
pub async fn build(settings: &Settings, engine: bool) -> anyhow::Result<Backend> {
    validate(settings)?;
    match settings.backend {
        BackendKind::Embedded => build_embedded(settings, engine, Arc::new(SystemClock)).await,
        BackendKind::Aws => build_aws(settings, engine).await,
    }
}

/// How often a process running the local engine looks for jobs left by a process that died.
pub const JOB_RESCAN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn build_embedded(
    settings: &Settings,
    with_engine: bool,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Backend> {
    let routing = embedded_routing(settings)?;
    let opts = cuepoint_embedded::EmbeddedOptions::new(routing.clone()).with_clock(clock.clone());
    let dir = settings.data_dir.clone();
    let embedded =
        tokio::task::spawn_blocking(move || cuepoint_embedded::EmbeddedBackend::open(&dir, opts))
            .await?
            .with_context(|| {
                format!(
                    "opening the embedded backend in {}",
                    settings.data_dir.display()
                )
            })?;
    let blobs = embedded.blobs();
    let bus = embedded.bus();
    let topic_name = routing
        .topics()
        .first()
        .map(|t| t.name.clone())
        .unwrap_or_else(|| "rekognition".into());
    let engine = cuepoint_engine::local::LocalEngine::new(
        blobs.clone(),
        bus.clone(),
        embedded.topic(&topic_name),
        embedded.ledger(),
        clock.clone(),
        cuepoint_engine::local::LocalEngineConfig {
            scratch_dir: Some(settings.data_dir.join("scratch")),
            models_dir: settings.models.dir.clone(),
            region: "local".into(),
            vision: vision_config(settings),
            ..Default::default()
        },
    );
    if with_engine {
        engine
            .resume(true, true)
            .await
            .context("resuming unfinished local jobs")?;
        engine.rescan_every(true, true, JOB_RESCAN_INTERVAL);
    }
    let ports = Ports {
        store: embedded.store(),
        blobs,
        bus,
        prober: Arc::new(cuepoint_engine::probe::FfprobeProber),
        transcoder: Arc::new(engine.media_convert.clone()),
        analyzer: Arc::new(engine.rekognition.clone()),
        transcriber: Arc::new(engine.transcribe.clone()),
        clock,
    };
    let queues = routing
        .queues()
        .iter()
        .map(|q| (q.name.clone(), embedded.queue(&q.name)))
        .collect();
    let metrics = Metrics::new("cuepoint", settings.log_format == LogFormat::Json);
    Ok(Backend {
        ctx: WorkerContext::new(ports, settings.clone(), metrics)?,
        dead_letters: embedded.dead_letters(),
        queues,
        embedded: Some(embedded),
        engine: Some(engine),
    })
}

#[cfg(feature = "aws")]
async fn build_aws(settings: &Settings, engine: bool) -> anyhow::Result<Backend> {
    crate::aws_backend::build(settings, engine).await
}

#[cfg(not(feature = "aws"))]
async fn build_aws(_settings: &Settings, _engine: bool) -> anyhow::Result<Backend> {
    anyhow::bail!("backend = \"aws\" needs a build with the `aws` feature: cargo build --release --features aws")
}

impl Backend {
    /// Assemble a backend from parts (the AWS wiring uses this).
    pub fn from_parts(
        ctx: WorkerContext,
        dead_letters: Arc<dyn DeadLetters>,
        queues: BTreeMap<String, Arc<dyn Queue>>,
    ) -> Self {
        Self {
            ctx,
            dead_letters,
            queues,
            embedded: None,
            engine: None,
        }
    }
}
