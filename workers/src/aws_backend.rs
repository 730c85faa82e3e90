//! The AWS wiring (feature `aws`): every port on aws-sdk-rust, configured by `aws.*` settings,
//! the endpoint by the standard `AWS_ENDPOINT_URL`, credentials by the default chain.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use cuepoint_aws::{
    AwsClients, DynamoAssetStore, EventBridgeBus, MediaConvertTranscoder, RekognitionAnalyzer,
    S3BlobStore, SnsTopic, SqsDeadLetters, SqsQueue, TranscribeTranscriber,
};
use cuepoint_runtime::config::{LogFormat, Settings};
use cuepoint_runtime::metrics::Metrics;
use cuepoint_runtime::ports::{
    BlobStore, Clock, EventBus, Ports, Queue, SystemClock, Transcoder, Transcriber, VideoAnalyzer,
};

use crate::backend::{routing, Backend};
use crate::context::WorkerContext;

/// `with_engine`: this process submits jobs (ingest, analysis) and so runs the local media
/// engine's jobs, resuming its unfinished ones; other processes only read job results.
pub async fn build(settings: &Settings, with_engine: bool) -> anyhow::Result<Backend> {
    let routing = routing(settings)?;
    let aws = &settings.aws;
    let clients = AwsClients::from_env(aws).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(&clients));
    let bus: Arc<dyn EventBus> = Arc::new(EventBridgeBus::from_settings(&clients, aws));

    let mut engine = None;
    let (transcoder, analyzer, transcriber): (
        Arc<dyn Transcoder>,
        Arc<dyn VideoAnalyzer>,
        Arc<dyn Transcriber>,
    ) = if aws.local_media_engine {
        // Emulators have no MediaConvert or Rekognition: FFmpeg plays them and announces
        // through the emulator's EventBridge and SNS. Its job ledger is local bookkeeping.
        let topic = Arc::new(SnsTopic::new(&clients, aws.rekognition_topic_arn.clone()));
        let ledger_dir = settings.data_dir.clone();
        let opts = cuepoint_embedded::EmbeddedOptions::new(routing.clone());
        let local = tokio::task::spawn_blocking(move || {
            cuepoint_embedded::EmbeddedBackend::open(&ledger_dir, opts)
        })
        .await?
        .context("opening the local engine's job ledger")?;
        // MediaConvert announces on the default bus (the only bus AWS services deliver to, where
        // the MediaConvert rule lives), whatever bus carries cuepoint's own events.
        let service_bus: Arc<dyn EventBus> = Arc::new(EventBridgeBus::new(&clients, "default"));
        let e = cuepoint_engine::local::LocalEngine::new(
            blobs.clone(),
            service_bus,
            topic,
            local.ledger(),
            clock.clone(),
            cuepoint_engine::local::LocalEngineConfig {
                scratch_dir: Some(settings.data_dir.join("scratch")),
                models_dir: settings.models.dir.clone(),
                vision: crate::backend::vision_config(settings),
                region: clients.region().unwrap_or("us-east-1").to_string(),
                ..Default::default()
            },
        );
        if with_engine {
            e.resume(true, true)
                .await
                .context("resuming local engine jobs")?;
        }
        // Transcribe too: its stand-in announces on the default bus, as Transcribe does.
        let pair = (
            Arc::new(e.media_convert.clone()) as Arc<dyn Transcoder>,
            Arc::new(e.rekognition.clone()) as Arc<dyn VideoAnalyzer>,
            Arc::new(e.transcribe.clone()) as Arc<dyn Transcriber>,
        );
        engine = Some(e);
        pair
    } else {
        (
            Arc::new(MediaConvertTranscoder::from_settings(&clients, aws)),
            Arc::new(RekognitionAnalyzer::from_settings(&clients, aws)),
            Arc::new(TranscribeTranscriber::new(&clients)),
        )
    };

    let mut queues: BTreeMap<String, Arc<dyn Queue>> = BTreeMap::new();
    for q in routing.queues() {
        if aws.queue_urls.contains_key(&q.name) {
            queues.insert(
                q.name.clone(),
                Arc::new(SqsQueue::from_settings(&clients, aws, &q.name)?),
            );
        }
    }
    let ports = Ports {
        store: Arc::new(DynamoAssetStore::from_settings(&clients, aws)),
        blobs,
        bus,
        prober: Arc::new(cuepoint_engine::probe::FfprobeProber),
        transcoder,
        analyzer,
        transcriber,
        clock,
    };
    let metrics = Metrics::new("cuepoint", settings.log_format == LogFormat::Json);
    let mut backend = Backend::from_parts(
        WorkerContext::new(ports, settings.clone(), metrics)?,
        Arc::new(SqsDeadLetters::from_settings(&clients, aws)),
        queues,
    );
    backend.engine = engine;
    Ok(backend)
}
