//! The AWS adapters against LocalStack, through the real SDK clients.
//!
//! Needs an emulator endpoint in `AWS_ENDPOINT_URL`, so the tests are ignored unless asked for;
//! asked for without an endpoint they fail. `tests/run.sh` runs them; by hand, start one with
//! `tests/emulator/localstack.sh start`, then:
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 cargo test -p cuepoint-aws --test localstack -- --include-ignored
//! ```
//!
//! Every test provisions its own resources from `infra/routing.json` under a random prefix,
//! so tests run in parallel and reruns never collide.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use cuepoint_aws::provision::{provision, ProvisionNames, Provisioned};
use cuepoint_aws::{
    AwsClients, DynamoAssetStore, EventBridgeBus, S3BlobStore, SnsTopic, SqsDeadLetters, SqsQueue,
};
use cuepoint_core::asset::{Asset, AssetState, ProbeInfo};
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri, SourceObject};
use cuepoint_core::events::envelope::{EventBridgeEvent, PutEventsEntry};
use cuepoint_runtime::config::AwsSettings;
use cuepoint_runtime::ports::{
    AssetStore, AssetWrite, BlobStore, CounterDelta, DeadLetters, EventBus, Queue, ReceivedMessage,
    StoreError, Topic,
};
use serde_json::{json, Value};

const ROUTING: &str = include_str!("../../../infra/routing.json");

/// The emulator endpoint. These tests are ignored unless asked for (`tests/run.sh` runs them
/// with `--include-ignored` after starting LocalStack); asked for without an emulator, they fail.
fn endpoint(test: &str) -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!(
            "{test}: AWS_ENDPOINT_URL is not set. Run `tests/emulator/localstack.sh start` and set \
             AWS_ENDPOINT_URL=http://127.0.0.1:4566 (tests/run.sh does both)"
        ),
    }
}

/// A name prefix unique to this test run and call (lowercase, bucket-safe).
fn unique_prefix(test: &str) -> String {
    format!("cp{:08x}-{test}", fastrand::u32(..))
}

struct Env {
    clients: AwsClients,
    names: ProvisionNames,
    res: Provisioned,
    settings: AwsSettings,
}

async fn setup(test: &str) -> Option<Env> {
    endpoint(test)?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    // The endpoint comes from AWS_ENDPOINT_URL through aws-config itself, like in production.
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(Credentials::new("test", "test", None, None, "test"));
    }
    let sdk = loader.load().await;
    let mut settings = AwsSettings {
        s3_path_style: true,
        ..AwsSettings::default()
    };
    let clients = AwsClients::from_sdk_config(&sdk, &settings);
    let names = ProvisionNames::with_prefix(&unique_prefix(test));
    let started = Instant::now();
    let res = provision(&clients, ROUTING, &names)
        .await
        .expect("provision from routing.json");
    eprintln!(
        "{test}: provisioned {} in {:?}",
        names.prefix,
        started.elapsed()
    );
    res.apply_to(&mut settings);
    Some(Env {
        clients,
        names,
        res,
        settings,
    })
}

impl Env {
    fn queue(&self, name: &str) -> SqsQueue {
        SqsQueue::from_settings(&self.clients, &self.settings, name).expect("queue in settings")
    }
}

/// Receive until `pred` holds for a message (deleting what is looked at) or `timeout` passes.
async fn wait_for(
    queue: &SqsQueue,
    timeout: Duration,
    pred: impl Fn(&ReceivedMessage) -> bool,
) -> Option<ReceivedMessage> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let got = queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(30))
            .await
            .expect("receive");
        for m in got {
            queue
                .delete(std::slice::from_ref(&m.receipt))
                .await
                .expect("delete");
            if pred(&m) {
                return Some(m);
            }
        }
    }
    None
}

/// Everything currently deliverable on a queue within `window` (deleted as read).
async fn drain(queue: &SqsQueue, window: Duration) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + window;
    let mut all = Vec::new();
    while Instant::now() < deadline {
        let got = queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(30))
            .await
            .expect("receive");
        let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
        queue.delete(&receipts).await.expect("delete");
        all.extend(got);
    }
    all
}

fn envelope(m: &ReceivedMessage) -> EventBridgeEvent<Value> {
    serde_json::from_str(&m.body)
        .unwrap_or_else(|e| panic!("not an EventBridge envelope ({e}): {}", m.body))
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn sqs_receive_visibility_delete_and_delay() {
    let Some(env) = setup("sqs").await else {
        return;
    };
    let q = env.queue("media");
    assert_eq!(q.name(), "media");

    let id = q.send(r#"{"n":1}"#, Duration::ZERO).await.unwrap();
    let got = q
        .receive(10, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].message_id.as_str(),
            got[0].body.as_str(),
            got[0].receive_count
        ),
        (id.as_str(), r#"{"n":1}"#, 1)
    );

    // Invisible while held...
    assert!(q
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    // ...released for retry by shortening its visibility.
    q.change_visibility(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q
        .receive(10, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2, "ApproximateReceiveCount is read");

    q.delete(&[again[0].receipt.clone()]).await.unwrap();
    q.delete(&[again[0].receipt.clone(), got[0].receipt.clone()])
        .await
        .expect("deleting twice is not an error");
    assert!(q
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());

    // Batch delete of more than ten receipts (two DeleteMessageBatch calls).
    for i in 0..12 {
        q.send(&format!("{{\"i\":{i}}}"), Duration::ZERO)
            .await
            .unwrap();
    }
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while held.len() < 12 && Instant::now() < deadline {
        held.extend(
            q.receive(10, Duration::from_secs(1), Duration::from_secs(60))
                .await
                .unwrap(),
        );
    }
    assert_eq!(held.len(), 12);
    q.delete(&held.iter().map(|m| m.receipt.clone()).collect::<Vec<_>>())
        .await
        .unwrap();
    for m in &held {
        // Deleted messages cannot be made visible again.
        let err = q.change_visibility(&m.receipt, Duration::ZERO).await;
        assert!(err.is_err(), "message {} was deleted", m.message_id);
    }
    assert!(q
        .receive(10, Duration::from_secs(2), Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());

    // Delayed send: not visible before the delay.
    q.send("later", Duration::from_secs(3)).await.unwrap();
    assert!(q
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    let later = wait_for(&q, Duration::from_secs(15), |m| m.body == "later").await;
    assert!(later.is_some(), "delayed message arrives");
}

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn failures_dead_letter_with_their_reason_and_replay_back() {
    let Some(env) = setup("dlq").await else {
        return;
    };
    let q = env.queue("ingest");
    let max_receives = 5; // routing.json: ingest maxReceiveCount
    let body = r#"{"poison":true}"#;
    let id = q.send(body, Duration::ZERO).await.unwrap();

    // Fail it on every receive; release it at once (visibility 0) to speed things up.
    let mut receives = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let got = q
            .receive(1, Duration::from_secs(1), Duration::ZERO)
            .await
            .unwrap();
        let Some(m) = got.into_iter().next() else {
            if receives >= max_receives {
                break;
            }
            continue;
        };
        receives += 1;
        assert_eq!(m.message_id, id);
        assert_eq!(m.receive_count, receives);
        q.record_failure(&m, &format!("unusable media (attempt {receives})"))
            .await
            .unwrap();
    }
    assert_eq!(
        receives, max_receives,
        "received maxReceiveCount times, then moved to the DLQ"
    );

    let dlq = SqsDeadLetters::from_settings(&env.clients, &env.settings);
    let binding = dlq
        .binding("ingest")
        .await
        .unwrap()
        .expect("ingest has a DLQ");
    assert_eq!(binding.dlq_url, env.res.dlq_urls["ingest"]);
    assert_eq!(binding.max_receive_count, Some(max_receives));

    let counts: BTreeMap<String, u64> = dlq.counts().await.unwrap().into_iter().collect();
    assert_eq!(counts.len(), 6, "every routing queue has a DLQ: {counts:?}");
    assert_eq!(counts["packaging"], 0);
    assert_eq!(counts["ingest"], 1);
    assert_eq!(counts["media"], 0);

    let letters = dlq.list("ingest", 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        letters[0].message_id, id,
        "SQS keeps the message id on redrive"
    );
    assert_eq!(letters[0].body, body);
    assert_eq!(
        letters[0].reason.as_deref(),
        Some("unusable media (attempt 5)")
    );
    // Listing is a peek: the message is still there.
    assert_eq!(dlq.list("ingest", 10).await.unwrap().len(), 1);
    assert!(dlq.list("media", 10).await.unwrap().is_empty());
    assert!(dlq.list("nope", 10).await.is_err());

    assert_eq!(dlq.replay("ingest").await.unwrap(), 1);
    let back = wait_for(&q, Duration::from_secs(30), |m| m.body == body)
        .await
        .expect("replayed message is back on ingest");
    assert_eq!(back.body, body);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts: BTreeMap<String, u64> = dlq.counts().await.unwrap().into_iter().collect();
        if counts["ingest"] == 0 || Instant::now() > deadline {
            assert_eq!(counts["ingest"], 0, "the DLQ is empty after the move");
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(dlq.replay("ingest").await.unwrap(), 0, "nothing to replay");
}

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn eventbridge_rules_route_events_to_their_queues() {
    let Some(env) = setup("events").await else {
        return;
    };
    // Provisioning again converges instead of failing.
    let again = provision(&env.clients, ROUTING, &env.names)
        .await
        .expect("second provision");
    assert_eq!(again.queue_urls, env.res.queue_urls);

    let bus = EventBridgeBus::from_settings(&env.clients, &env.settings);
    let ingest_bucket = env.names.ingest_bucket.clone();
    let s3_detail = |bucket: &str, key: &str| {
        json!({"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 5, "etag": "e1"}, "reason": "PutObject"})
            .to_string()
    };
    let mc_detail = |workflow: &str, status: &str| {
        json!({"status": status, "jobId": format!("job-{workflow}-{status}"), "userMetadata": {"assetId": "a1", "workflow": workflow}})
            .to_string()
    };
    let entry = |source: &str, detail_type: &str, detail: String| PutEventsEntry {
        source: source.into(),
        detail_type: detail_type.into(),
        detail,
        resources: vec![],
        time_ms: None,
    };
    let mut entries = vec![
        entry(
            "aws.s3",
            "Object Created",
            s3_detail(&ingest_bucket, "in/movie.mxf"),
        ),
        entry(
            "aws.s3",
            "Object Created",
            s3_detail("someone-elses-bucket", "x.mxf"),
        ),
        entry(
            "aws.mediaconvert",
            "MediaConvert Job State Change",
            mc_detail(&env.names.workflow, "COMPLETE"),
        ),
        entry(
            "aws.mediaconvert",
            "MediaConvert Job State Change",
            mc_detail(&env.names.workflow, "PROGRESSING"),
        ),
        entry(
            "aws.mediaconvert",
            "MediaConvert Job State Change",
            mc_detail("other-workflow", "COMPLETE"),
        ),
        entry(
            "cuepoint.pipeline",
            "Media Prepared",
            json!({"eventId": "a1:media-prepared"}).to_string(),
        ),
        entry(
            "cuepoint.pipeline",
            "Analyses Completed",
            json!({"eventId": "a1:analyses-completed"}).to_string(),
        ),
    ];
    // More than ten entries: two PutEvents calls.
    for i in 0..5 {
        entries.push(entry(
            "cuepoint.pipeline",
            "Asset Completed",
            json!({"eventId": format!("a{i}:asset-completed")}).to_string(),
        ));
    }
    bus.put_events(&entries).await.unwrap();

    // Drain all five queues at once for a few seconds: late extra deliveries would show.
    let window = Duration::from_secs(6);
    let (qi, qm, qa, qs, qr) = (
        env.queue("ingest"),
        env.queue("media"),
        env.queue("analysis"),
        env.queue("scoring"),
        env.queue("results"),
    );
    let (ingest, media, analysis, scoring, results) = tokio::join!(
        drain(&qi, window),
        drain(&qm, window),
        drain(&qa, window),
        drain(&qs, window),
        drain(&qr, window)
    );
    assert_eq!(ingest.len(), 1, "only our bucket: {ingest:?}");
    let e = envelope(&ingest[0]);
    assert_eq!(
        (e.source.as_str(), e.detail_type.as_str()),
        ("aws.s3", "Object Created")
    );
    assert_eq!(e.detail["bucket"]["name"], ingest_bucket.as_str());

    assert_eq!(media.len(), 1, "COMPLETE of our workflow only: {media:?}");
    assert_eq!(envelope(&media[0]).detail["status"], "COMPLETE");

    assert_eq!(analysis.len(), 1);
    assert_eq!(envelope(&analysis[0]).detail_type, "Media Prepared");
    assert_eq!(scoring.len(), 1);
    assert_eq!(
        envelope(&scoring[0]).detail["eventId"],
        "a1:analyses-completed"
    );
    assert!(results.is_empty(), "no rule targets results: {results:?}");
}

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn s3_upload_to_ingest_bucket_arrives_as_object_created() {
    let Some(env) = setup("upload").await else {
        return;
    };
    let blobs = S3BlobStore::new(&env.clients);
    let key = "in/my movie é.mxf";
    let uri = S3Uri::new(
        BucketName::parse(&env.names.ingest_bucket).unwrap(),
        ObjectKey::parse(key).unwrap(),
    );
    blobs
        .put(&uri, b"media".to_vec(), "application/mxf")
        .await
        .unwrap();

    let q = env.queue("ingest");
    let m = wait_for(&q, Duration::from_secs(30), |m| {
        m.body.contains("Object Created")
    })
    .await
    .expect("S3 → EventBridge → ingest");
    let e = envelope(&m);
    assert_eq!(e.source, "aws.s3");
    assert_eq!(e.detail["bucket"]["name"], env.names.ingest_bucket.as_str());
    let raw = e.detail["object"]["key"].as_str().unwrap();
    // Keys in S3 events may arrive URL-encoded (spaces as `+`): decoding gives the key back.
    let decoded = ObjectKey::from_url_encoded(raw).unwrap();
    assert!(
        raw == key || decoded.as_str() == key,
        "event key {raw:?} is {key:?}"
    );
    assert_eq!(e.detail["object"]["size"], 5);

    // Uploads to the output bucket start nothing.
    let out = S3Uri::new(
        BucketName::parse(&env.names.output_bucket).unwrap(),
        ObjectKey::parse("x.txt").unwrap(),
    );
    blobs.put(&out, b"x".to_vec(), "text/plain").await.unwrap();
    assert!(drain(&q, Duration::from_secs(4)).await.is_empty());
}

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn sns_publish_arrives_wrapped_on_the_results_queue() {
    let Some(env) = setup("sns").await else {
        return;
    };
    let topic = SnsTopic::new(&env.clients, &env.res.topic_arn);
    let notification = json!({
        "JobId": "job-1", "Status": "SUCCEEDED", "API": "StartSegmentDetection", "JobTag": "a1",
        "Timestamp": 1700000000000u64, "Video": {"S3ObjectName": "assets/a1/proxy.mp4", "S3Bucket": "out"}
    })
    .to_string();
    let message_id = topic.publish(&notification).await.unwrap();
    let m = wait_for(&env.queue("results"), Duration::from_secs(20), |_| true)
        .await
        .expect("SNS → results");
    let wrapped: Value = serde_json::from_str(&m.body).unwrap();
    // rawMessageDelivery is false in routing.json: the SNS envelope carries our message.
    assert_eq!(wrapped["Type"], "Notification");
    assert_eq!(wrapped["TopicArn"], env.res.topic_arn.as_str());
    assert_eq!(wrapped["MessageId"], message_id.as_str());
    assert_eq!(wrapped["Message"], notification.as_str());
}

fn sample_asset(name: &str) -> Asset {
    let source = SourceObject {
        bucket: BucketName::parse("ingest-bucket").unwrap(),
        key: ObjectKey::parse(format!("in/{name}.mxf")).unwrap(),
        version_id: None,
        etag: Some("etag-1".into()),
        size: Some(10),
    };
    let probe = ProbeInfo {
        container: "mxf".into(),
        duration_seconds: 60.0,
        ..ProbeInfo::default()
    };
    Asset::register(
        source,
        probe,
        S3Uri::parse("s3://out-bucket/assets/x/").unwrap(),
        1_700_000_000_000,
    )
}

fn next_version(asset: &Asset, state: AssetState) -> Asset {
    let mut next = asset.clone();
    next.version += 1;
    next.state = state;
    next.updated_at_ms += 1000;
    next
}

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn dynamodb_conditional_writes_and_counter_transactions() {
    let Some(env) = setup("ddb").await else {
        return;
    };
    let store = DynamoAssetStore::from_settings(&env.clients, &env.settings);
    let a1 = sample_asset("one");
    let id = a1.id.clone();
    assert_eq!(store.get(&id).await.unwrap(), None);

    store
        .commit(AssetWrite {
            asset: a1.clone(),
            expected_version: None,
            counter: None,
        })
        .await
        .unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(a1.clone()));
    let dup = store
        .commit(AssetWrite {
            asset: a1.clone(),
            expected_version: None,
            counter: None,
        })
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { detail, .. }) if detail.contains("already exists")),
        "{dup:?}"
    );

    let a2 = next_version(&a1, AssetState::Transcoding);
    store
        .commit(AssetWrite {
            asset: a2.clone(),
            expected_version: Some(1),
            counter: None,
        })
        .await
        .unwrap();
    // A second writer that read version 1 loses.
    let stale = store
        .commit(AssetWrite {
            asset: next_version(&a1, AssetState::Failed),
            expected_version: Some(1),
            counter: None,
        })
        .await;
    assert!(
        matches!(&stale, Err(StoreError::Conflict { asset, detail }) if asset == &id && detail.contains("stored version is 2")),
        "{stale:?}"
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().state,
        AssetState::Transcoding
    );
    let wrong = store
        .commit(AssetWrite {
            asset: a2.clone(),
            expected_version: Some(2),
            counter: None,
        })
        .await;
    assert!(
        matches!(wrong, Err(StoreError::Port(_))),
        "the record's version must be expected + 1"
    );
    let missing = sample_asset("missing");
    let ghost = store
        .commit(AssetWrite {
            asset: next_version(&missing, AssetState::Transcoding),
            expected_version: Some(1),
            counter: None,
        })
        .await;
    assert!(
        matches!(&ghost, Err(StoreError::Conflict { detail, .. }) if detail.contains("does not exist")),
        "{ghost:?}"
    );

    // Counter moves with the asset, atomically; the limit refuses the whole write.
    let jobs = "open-rekognition-jobs";
    let rise = |n| {
        Some(CounterDelta {
            name: jobs.into(),
            delta: n,
            max: Some(2),
        })
    };
    let mut current = a2;
    for expected in [1, 2] {
        let next = next_version(&current, AssetState::Analysing);
        store
            .commit(AssetWrite {
                asset: next.clone(),
                expected_version: Some(current.version),
                counter: rise(1),
            })
            .await
            .unwrap();
        assert_eq!(store.counter(jobs).await.unwrap(), expected);
        current = next;
    }
    let refused = next_version(&current, AssetState::Analysing);
    let err = store
        .commit(AssetWrite {
            asset: refused,
            expected_version: Some(current.version),
            counter: rise(1),
        })
        .await;
    assert_eq!(
        err,
        Err(StoreError::CounterLimit {
            name: jobs.into(),
            max: 2
        })
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().version,
        current.version,
        "the asset write rolled back"
    );
    assert_eq!(store.counter(jobs).await.unwrap(), 2);
    let too_big = store
        .commit(AssetWrite {
            asset: next_version(&current, AssetState::Analysing),
            expected_version: Some(current.version),
            counter: rise(3),
        })
        .await;
    assert_eq!(
        too_big,
        Err(StoreError::CounterLimit {
            name: jobs.into(),
            max: 2
        })
    );

    // A conflicting asset write does not move the counter either.
    let stale = store
        .commit(AssetWrite {
            asset: next_version(&a1, AssetState::Analysing),
            expected_version: Some(1),
            counter: rise(-1),
        })
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(store.counter(jobs).await.unwrap(), 2);

    // Decrements: by one, then one that would go below zero clamps at zero.
    let next = next_version(&current, AssetState::Analysing);
    store
        .commit(AssetWrite {
            asset: next.clone(),
            expected_version: Some(current.version),
            counter: Some(CounterDelta {
                name: jobs.into(),
                delta: -1,
                max: None,
            }),
        })
        .await
        .unwrap();
    assert_eq!(store.counter(jobs).await.unwrap(), 1);
    current = next;
    let next = next_version(&current, AssetState::Analysed);
    store
        .commit(AssetWrite {
            asset: next.clone(),
            expected_version: Some(current.version),
            counter: Some(CounterDelta {
                name: jobs.into(),
                delta: -5,
                max: None,
            }),
        })
        .await
        .unwrap();
    assert_eq!(store.counter(jobs).await.unwrap(), 0, "never below zero");
    assert_eq!(store.get(&id).await.unwrap(), Some(next.clone()));
    assert_eq!(store.counter("never-touched").await.unwrap(), 0);

    // list: assets only (not counters or failure records), all of them.
    let other = sample_asset("two");
    store
        .commit(AssetWrite {
            asset: other.clone(),
            expected_version: None,
            counter: None,
        })
        .await
        .unwrap();
    let q = env.queue("ingest");
    let fake = ReceivedMessage {
        message_id: "m-1".into(),
        receipt: "r".into(),
        body: "{}".into(),
        receive_count: 1,
        sent_at_ms: None,
    };
    q.record_failure(&fake, "boom").await.unwrap();
    let mut expected = vec![next, other];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list().await.unwrap(), expected);
}

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn s3_blob_store_round_trips_odd_keys_and_presigns() {
    let Some(env) = setup("blobs").await else {
        return;
    };
    let blobs = S3BlobStore::new(&env.clients);
    let bucket = BucketName::parse(&env.names.output_bucket).unwrap();
    let at = |key: &str| S3Uri::new(bucket.clone(), ObjectKey::parse(key).unwrap());
    let keys = [
        "assets/a1/my movie é.json",
        "assets/a1/a+b %20 ü/100%.txt",
        "assets/a1/plain.txt",
        "assets/a2/other.txt",
    ];
    for (i, key) in keys.iter().enumerate() {
        blobs
            .put(&at(key), format!("body {i}").into_bytes(), "text/plain")
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            blobs.get(&at(key)).await.unwrap(),
            Some(format!("body {i}").into_bytes()),
            "{key}"
        );
    }
    let meta = blobs.head(&at(keys[0])).await.unwrap().unwrap();
    assert_eq!(meta.size, 6);
    assert!(meta.etag.is_some());
    assert_eq!(blobs.get(&at("assets/a1/missing")).await.unwrap(), None);
    assert_eq!(blobs.head(&at("assets/a1/missing")).await.unwrap(), None);

    let mut listed = blobs.list(&at("assets/a1/")).await.unwrap();
    listed.sort();
    let mut want: Vec<S3Uri> = keys[..3].iter().map(|k| at(k)).collect();
    want.sort();
    assert_eq!(listed, want);

    // put_file streams a file; the presigned URL serves it to a plain HTTP client.
    let dir = std::env::temp_dir().join(unique_prefix("file"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.mp4");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let target = at("assets/a1/proxy/clip é 1.mp4");
    blobs.put_file(&target, &path, "video/mp4").await.unwrap();
    assert_eq!(
        blobs.head(&target).await.unwrap().unwrap().size,
        content.len() as u64
    );
    assert_eq!(blobs.local_path(&target), None);

    let url = blobs.readable_location(&target).await.unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let fetched = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "20", &url])
        .output()
        .expect("run curl");
    assert!(
        fetched.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert_eq!(fetched.stdout, content);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn missing_resources_are_not_found() {
    let Some(env) = setup("missing").await else {
        return;
    };
    let mut settings = env.settings.clone();
    settings.queue_urls.insert(
        "ghost".into(),
        format!(
            "{}/000000000000/no-such-queue",
            endpoint("missing").unwrap()
        ),
    );
    let ghost = SqsQueue::from_settings(&env.clients, &settings, "ghost").unwrap();
    let err = ghost.send("x", Duration::ZERO).await.unwrap_err();
    assert!(
        matches!(err, cuepoint_runtime::ports::PortError::NotFound(_)),
        "{err}"
    );
    assert!(SqsQueue::from_settings(&env.clients, &settings, "nothing").is_err());
    let id = AssetId::parse("a-none").unwrap();
    let store = DynamoAssetStore::new(&env.clients, "no-such-table-cuepoint");
    assert!(store.get(&id).await.is_err());
}
