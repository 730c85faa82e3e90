//! LocalStack as a chaos [`Target`]: the real aws-sdk-rust adapters (SQS queues with redrive
//! policies, EventBridge rules on a bus of the run's own, SNS → SQS, the DynamoDB asset store
//! and counter, S3 blobs), provisioned from the same routing text as the embedded target
//! (infra/routing.json, the audit queue and rule, `maxReceiveCount` raised) under a fresh prefix.
//!
//! Needs `AWS_ENDPOINT_URL` (an emulator): the run creates resources and is never pointed at an
//! account by accident.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use cuepoint_aws::provision::{provision, ProvisionNames};
use cuepoint_aws::{
    AwsClients, DynamoAssetStore, EventBridgeBus, S3BlobStore, SnsTopic, SqsDeadLetters, SqsQueue,
};
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_runtime::config::{AwsSettings, Backend as BackendKind, Settings};
use cuepoint_runtime::ports::{EventBus, PortError, PortResult, Queue};
use cuepoint_workers::handlers::WorkerKind;

use crate::embedded::{routing_text, AUDIT_QUEUE};
use crate::harness::{Backlog, BoxError, Target};

/// The bus the workers and the fast engine publish on. AWS services (S3, MediaConvert) deliver
/// only to the default bus, where the rules for `aws.*` sources live; cuepoint's own events go
/// to the run's bus. The same split the AWS backend makes for its local media engine.
///
/// The emulator accepts `aws.*` sources in PutEvents (AWS reserves them). Provisioning also
/// points the ingest bucket at EventBridge, as in production, so every upload reaches the
/// ingest queue twice — from S3 and from the harness's own announcement — and both copies
/// must become one asset.
struct ServiceAwareBus {
    own: EventBridgeBus,
    service: EventBridgeBus,
}

#[async_trait]
impl EventBus for ServiceAwareBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> PortResult<()> {
        let (service, own): (Vec<PutEventsEntry>, Vec<PutEventsEntry>) = entries
            .iter()
            .cloned()
            .partition(|e| e.source.starts_with("aws."));
        if !service.is_empty() {
            self.service.put_events(&service).await?;
        }
        if !own.is_empty() {
            self.own.put_events(&own).await?;
        }
        Ok(())
    }
}

/// Messages visible, in flight or delayed in the worker queues (SQS's approximate counts).
struct SqsBacklog {
    clients: AwsClients,
    urls: Vec<String>,
}

#[async_trait]
impl Backlog for SqsBacklog {
    async fn messages_left(&self) -> PortResult<u64> {
        let mut n = 0;
        for url in &self.urls {
            let out = self
                .clients
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names("ApproximateNumberOfMessages".into())
                .attribute_names("ApproximateNumberOfMessagesNotVisible".into())
                .attribute_names("ApproximateNumberOfMessagesDelayed".into())
                .send()
                .await
                .map_err(|e| PortError::Transient(format!("sqs depth of {url}: {e}")))?;
            for (_, v) in out.attributes().into_iter().flatten() {
                n += v.parse::<u64>().unwrap_or(0);
            }
        }
        Ok(n)
    }
}

/// A name prefix unique to this run: lowercase, bucket-safe, short enough for every resource.
fn unique_prefix() -> String {
    format!("chaos{:08x}", fastrand::u32(..))
}

/// Provision a private stack on the emulator at `AWS_ENDPOINT_URL` and describe it as a
/// target. `settings` are the chaos consumer settings; names, buckets and AWS settings are
/// filled in here.
pub async fn target(mut settings: Settings, max_receive_count: u32) -> Result<Target, BoxError> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => {}
        _ => {
            return Err("the localstack target needs AWS_ENDPOINT_URL: run \
                 `tests/emulator/localstack.sh start` and `eval \"$(tests/emulator/localstack.sh env)\"`"
                .into())
        }
    }
    // The emulator takes any credentials.
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    let started = Instant::now();
    let prefix = unique_prefix();
    let mut names = ProvisionNames::with_prefix(&prefix);
    // A workflow and a bus of the run's own: the MediaConvert rule filters on the workflow,
    // and pipeline rules see only this run's events.
    names.workflow = prefix.clone();
    names.event_bus = format!("{prefix}-bus");

    let mut aws = AwsSettings {
        s3_path_style: true,
        ..AwsSettings::default()
    };
    let clients = AwsClients::from_env(&aws).await;
    let res = provision(&clients, &routing_text(max_receive_count)?, &names).await?;
    res.apply_to(&mut aws);
    if !res.queue_urls.contains_key(AUDIT_QUEUE) {
        return Err(format!("provisioning created no {AUDIT_QUEUE} queue").into());
    }

    settings.backend = BackendKind::Aws;
    settings.ingest_bucket = names.ingest_bucket.clone();
    settings.output_bucket = names.output_bucket.clone();
    settings.workflow = names.workflow.clone();
    settings.aws = aws;

    let aws = &settings.aws;
    let mut queues: BTreeMap<String, Arc<dyn Queue>> = BTreeMap::new();
    let mut urls = Vec::new();
    for kind in WorkerKind::ALL {
        let q = SqsQueue::from_settings(&clients, aws, kind.queue())?;
        urls.push(q.url().to_string());
        queues.insert(kind.queue().to_string(), Arc::new(q));
    }
    let target = Target {
        name: format!(
            "localstack ({prefix} at {})",
            std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
        ),
        store: Arc::new(DynamoAssetStore::from_settings(&clients, aws)),
        blobs: Arc::new(S3BlobStore::new(&clients)),
        bus: Arc::new(ServiceAwareBus {
            own: EventBridgeBus::from_settings(&clients, aws),
            service: EventBridgeBus::new(&clients, "default"),
        }),
        topic: Arc::new(SnsTopic::new(&clients, aws.rekognition_topic_arn.clone())),
        queues,
        audit: Arc::new(SqsQueue::from_settings(&clients, aws, AUDIT_QUEUE)?),
        backlog: Arc::new(SqsBacklog {
            clients: clients.clone(),
            urls,
        }),
        dead_letters: Some(Arc::new(SqsDeadLetters::from_settings(&clients, aws))),
        // EventBridge has no dedup: copies of one event arrive, and consumers dedupe by id.
        bus_dedups_pipeline_events: false,
        database: None,
        embedded: None,
        settings: settings.clone(),
    };
    eprintln!(
        "[chaos] provisioned {prefix} (queues, DLQs, rules, bus, topic, table, buckets) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(target)
}
