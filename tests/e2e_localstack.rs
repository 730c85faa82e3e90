//! The whole choreography on LocalStack, through the real aws-sdk-rust adapters: S3 →
//! EventBridge → SQS → the workers → DynamoDB, with the local media engine playing
//! MediaConvert (announcing on EventBridge) and Rekognition (announcing through SNS → SQS).
//!
//! Needs an emulator (`tests/emulator/localstack.sh start`, then
//! `eval "$(tests/emulator/localstack.sh env)"`), so the tests are ignored unless asked for, and
//! asked for without `AWS_ENDPOINT_URL` they fail; `tests/run.sh` runs them. Run one at a time
//! (they share two cores with FFmpeg):
//!
//! ```text
//! cargo test -p cuepoint-tests --features aws --test e2e_localstack -- --include-ignored --test-threads 1
//! ```

mod localstack_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cuepoint_aws::EventBridgeBus;
use cuepoint_core::asset::AssetState;
use cuepoint_core::domain::{BucketName, ObjectKey};
use cuepoint_core::events::mediaconvert::{job_state_change_entry, JobState, JobStateChange};
use cuepoint_core::events::s3::{object_created_entry, ObjectCreated};
use cuepoint_core::results;
use cuepoint_runtime::ports::{
    AssetStore, BlobStore, DeadLetters, EventBus, LedgerService, Queue, ReceivedMessage,
};
use cuepoint_workers::handlers::WorkerKind;
use localstack_support::{ledger, wait_until, worker_binary, Stack, WorkerProcess};

const ASSET_TIMEOUT: Duration = Duration::from_secs(240);

/// The asset version after one pass of a clip with sound: register 1, transcoding 2, media
/// prepared 3, the open-jobs cap taken 4, analysing 5, five video analyses and the
/// transcription completing 6..=11, scored 12, packaging 13, complete 14.
const ONE_PASS_VERSION: u64 = 14;

fn handled(workers: &cuepoint_workers::app::RunningWorkers, kind: WorkerKind) -> u64 {
    workers.stats[&kind].snapshot()[1]
}

fn permanent(workers: &cuepoint_workers::app::RunningWorkers, kind: WorkerKind) -> u64 {
    workers.stats[&kind].snapshot()[3]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn upload_runs_to_a_complete_asset_with_every_result_in_the_output_bucket() {
    let Some(stack) = Stack::new("complete").await else {
        return;
    };
    let (clip, truth) = stack.clip("clip.mov").await;
    let (backend, workers) = stack.start_workers(&stack.settings, &WorkerKind::ALL).await;

    stack.upload(&clip, "uploads/clip one.mov").await;
    let assets = stack.wait_terminal(1, ASSET_TIMEOUT).await;
    workers.shutdown().await;
    backend.shutdown().await;

    assert_eq!(assets.len(), 1, "one upload, one asset: {assets:?}");
    let asset = &assets[0];
    assert_eq!(
        asset.state,
        AssetState::Complete,
        "failure: {:?}",
        asset.failure
    );
    // The record in DynamoDB names the object S3 announced (key decoded from the event).
    assert_eq!(asset.source.bucket.as_str(), stack.names.ingest_bucket);
    assert_eq!(asset.source.key.as_str(), "uploads/clip one.mov");
    assert_eq!(asset.version, ONE_PASS_VERSION);

    // Track 2 carries no sound; the audio report found it.
    let audio = asset.audio.as_ref().expect("audio report in the record");
    assert_eq!(audio.audiocount, 2);
    assert_eq!(
        audio.loudnessmap,
        vec![1, 0],
        "track 1 has sound, track 2 is silent: {audio:?}"
    );

    // Every break sits in the black, silent gap.
    assert!(!asset.breaks.is_empty(), "no breaks placed: {asset:?}");
    for b in &asset.breaks {
        assert!(
            truth
                .black_gaps
                .iter()
                .any(|&(s, e)| b.timestamp >= s - 0.04 && b.timestamp <= e + 0.04),
            "break at {} outside the black gaps {:?}",
            b.timestamp,
            truth.black_gaps
        );
    }

    // The results layout in the output bucket.
    let prefix = &asset.results.prefix;
    assert_eq!(prefix.bucket.as_str(), stack.names.output_bucket);
    for rel in [
        results::VMAP,
        results::SLOTS,
        results::SEGMENTS,
        results::AUDIO,
        results::HLS_MASTER,
        results::PROXY,
        results::PROBE,
    ] {
        assert!(
            stack.output_exists(&prefix.join(rel).unwrap()).await,
            "missing {rel} under {prefix}"
        );
    }
    let blobs = stack.blobs();
    let vmap_uri = asset
        .results
        .vmap
        .clone()
        .expect("VMAP location in the record");
    let vmap = String::from_utf8(blobs.get(&vmap_uri).await.unwrap().expect("VMAP")).unwrap();
    assert!(vmap.contains("vmap:VMAP"), "not a VMAP:\n{vmap}");
    assert_eq!(
        vmap.matches("timeOffset=\"").count(),
        asset.breaks.len(),
        "{vmap}"
    );
    let master = String::from_utf8(
        blobs
            .get(&prefix.join(results::HLS_MASTER).unwrap())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(master.starts_with("#EXTM3U"), "HLS master:\n{master}");
    let slots: serde_json::Value = serde_json::from_slice(
        &blobs
            .get(&prefix.join(results::SLOTS).unwrap())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        slots["breaks"].as_array().map(Vec::len),
        Some(asset.breaks.len()),
        "{slots}"
    );

    assert!(
        stack.dead_lettered().await.is_empty(),
        "nothing dead-lettered: {:?}",
        stack.dead_lettered().await
    );
    let l = ledger(&stack.settings, &stack.settings.data_dir);
    assert_eq!(
        l.find_by_asset(LedgerService::MediaConvert, asset.id.as_str())
            .await
            .unwrap()
            .len(),
        2,
        "the first job and the packaging job"
    );
    assert_eq!(
        l.find_by_asset(LedgerService::Rekognition, asset.id.as_str())
            .await
            .unwrap()
            .len(),
        5
    );
    stack.elapsed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn duplicated_messages_create_no_second_job_and_no_second_pass() {
    let Some(stack) = Stack::new("dupes").await else {
        return;
    };
    let (clip, _) = stack.clip("clip.mov").await;
    stack.upload(&clip, "uploads/dupe.mov").await;

    // Catch the S3 event S3 → EventBridge delivered, keep its body, and put it back.
    let ingest =
        cuepoint_aws::SqsQueue::from_settings(&stack.clients, &stack.settings.aws, "ingest")
            .unwrap();
    let s3_event: ReceivedMessage = wait_until(
        "the S3 Object Created event on the ingest queue",
        Duration::from_secs(30),
        || async {
            let got = ingest
                .receive(1, Duration::from_secs(1), Duration::from_secs(30))
                .await
                .expect("receive");
            got.into_iter().next()
        },
    )
    .await;
    assert!(
        s3_event.body.contains("Object Created"),
        "{}",
        s3_event.body
    );
    ingest
        .change_visibility(&s3_event.receipt, Duration::ZERO)
        .await
        .unwrap();

    let (backend, workers) = stack.start_workers(&stack.settings, &WorkerKind::ALL).await;
    let assets = stack.wait_terminal(1, ASSET_TIMEOUT).await;
    let asset = assets[0].clone();
    assert_eq!(
        asset.state,
        AssetState::Complete,
        "failure: {:?}",
        asset.failure
    );
    assert_eq!(asset.version, ONE_PASS_VERSION);
    let (ingest_before, media_before, analysis_before) = (
        handled(&workers, WorkerKind::Ingest),
        handled(&workers, WorkerKind::Media),
        handled(&workers, WorkerKind::Analysis),
    );

    // The same S3 event again, straight onto the ingest queue...
    ingest.send(&s3_event.body, Duration::ZERO).await.unwrap();
    // ...and MediaConvert's COMPLETE again, on the default bus where AWS sends it.
    let job_id = asset
        .transcode
        .as_ref()
        .expect("transcode job recorded")
        .job_id
        .clone();
    let complete = JobStateChange {
        job_id: job_id.clone(),
        state: JobState::Complete,
        queue: None,
        user_metadata: BTreeMap::from([
            ("assetId".to_string(), asset.id.to_string()),
            ("workflow".to_string(), stack.settings.workflow.clone()),
        ]),
        output_group_details: vec![],
        error_code: None,
        error_message: None,
        timestamp_ms: None,
    };
    let entry = job_state_change_entry(&complete, "000000000000", "us-east-1");
    EventBridgeBus::new(&stack.clients, "default")
        .put_events(&[entry])
        .await
        .unwrap();

    // Both were consumed, and the re-announced "Media Prepared" reached the analysis worker.
    wait_until(
        "the duplicates to be handled",
        Duration::from_secs(60),
        || async {
            (handled(&workers, WorkerKind::Ingest) > ingest_before
                && handled(&workers, WorkerKind::Media) > media_before
                && handled(&workers, WorkerKind::Analysis) > analysis_before)
                .then_some(())
        },
    )
    .await;
    // Anything they could have set off has had time to run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    workers.shutdown().await;
    backend.shutdown().await;

    let after = stack.assets().await;
    assert_eq!(after.len(), 1, "no second asset: {after:?}");
    assert_eq!(after[0].state, AssetState::Complete);
    assert_eq!(
        after[0].version, ONE_PASS_VERSION,
        "the duplicates changed the record: {:?}",
        after[0]
    );
    assert_eq!(after[0].updated_at_ms, asset.updated_at_ms);
    let l = ledger(&stack.settings, &stack.settings.data_dir);
    assert_eq!(
        l.find_by_asset(LedgerService::MediaConvert, asset.id.as_str())
            .await
            .unwrap()
            .len(),
        2,
        "one transcode job and one packaging job"
    );
    assert_eq!(
        l.find_by_asset(LedgerService::Rekognition, asset.id.as_str())
            .await
            .unwrap()
            .len(),
        5,
        "one job per analysis"
    );
    assert_eq!(
        stack
            .store()
            .counter("rekognition-open-jobs")
            .await
            .unwrap(),
        0
    );
    assert!(
        stack.dead_lettered().await.is_empty(),
        "{:?}",
        stack.dead_lettered().await
    );
    stack.elapsed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn malformed_message_is_dead_lettered_after_max_receives_with_its_reason() {
    let Some(stack) = Stack::new("poison").await else {
        return;
    };
    let (backend, workers) = stack.start_workers(&stack.settings, &WorkerKind::ALL).await;
    let ingest = backend.queue("ingest");
    let body = r#"{"detail-type": "Object Created", "source": "aws.s3", "detail": 42"#;
    let id = ingest.send(body, Duration::ZERO).await.unwrap();

    let dlq = stack.dead_letters();
    let letters = wait_until(
        "the malformed message in the ingest DLQ",
        Duration::from_secs(90),
        || async {
            let l = dlq.list("ingest", 10).await.expect("list DLQ");
            (!l.is_empty()).then_some(l)
        },
    )
    .await;
    let max = stack.max_receive_count("ingest");
    let attempts = permanent(&workers, WorkerKind::Ingest);
    workers.shutdown().await;
    backend.shutdown().await;

    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        letters[0].message_id, id,
        "SQS keeps the message id on redrive"
    );
    assert_eq!(letters[0].body, body);
    let reason = letters[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("malformed message on queue ingest"),
        "reason: {reason:?}"
    );
    // Received (and refused) exactly maxReceiveCount times before SQS moved it.
    assert_eq!(
        attempts,
        u64::from(max),
        "refusals before the move (maxReceiveCount {max})"
    );
    assert_eq!(
        stack.dead_lettered().await,
        BTreeMap::from([("ingest".to_string(), 1)])
    );
    assert!(stack.assets().await.is_empty());
    stack.elapsed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn replaying_the_dlq_after_the_fix_completes_the_asset() {
    let Some(stack) = Stack::new("replay").await else {
        return;
    };
    let (clip, _) = stack.clip("clip.mov").await;
    let (backend, workers) = stack.start_workers(&stack.settings, &WorkerKind::ALL).await;

    // S3 announces an object that is not there (yet): ingest cannot use it.
    let key = "uploads/late.mov";
    let created = ObjectCreated::new(
        BucketName::parse(&stack.names.ingest_bucket).unwrap(),
        ObjectKey::parse(key).unwrap(),
    );
    EventBridgeBus::new(&stack.clients, "default")
        .put_events(&[object_created_entry(&created, None)])
        .await
        .unwrap();
    let dlq = stack.dead_letters();
    let letters = wait_until(
        "the event in the ingest DLQ",
        Duration::from_secs(90),
        || async {
            let assets = stack.assets().await;
            assert!(
                assets.is_empty(),
                "a missing object must not become an asset: {assets:?}"
            );
            let l = dlq.list("ingest", 10).await.expect("list DLQ");
            (!l.is_empty()).then_some(l)
        },
    )
    .await;
    let reason = letters[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("does not exist"), "reason: {reason:?}");
    assert!(
        stack.assets().await.is_empty(),
        "no asset from a missing object"
    );

    // The fix: upload the object. Its own S3 event must not reach the ingest queue, so that
    // only the replayed message can start the asset: the ingest rule loses its target
    // (LocalStack 4.9 still delivers to a rule after DisableRule, so that is not enough).
    let rule_arn = &stack.res.rule_arns["ingest-object-created"];
    let rule = rule_arn
        .rsplit('/')
        .next()
        .expect("rule name in its ARN")
        .to_string();
    stack
        .clients
        .eventbridge
        .remove_targets()
        .rule(&rule)
        .event_bus_name("default")
        .ids("ingest-queue")
        .send()
        .await
        .expect("remove the ingest rule's target");
    stack.upload(&clip, key).await;
    let moved = backend
        .dead_letters
        .replay("ingest")
        .await
        .expect("replay (StartMessageMoveTask)");
    // How many the DLQ held when the move started (SQS's approximate count).
    assert!(moved >= 1, "the move task found nothing to move");
    let assets = stack.wait_terminal(1, ASSET_TIMEOUT).await;
    workers.shutdown().await;
    backend.shutdown().await;

    assert_eq!(assets.len(), 1);
    assert_eq!(
        assets[0].state,
        AssetState::Complete,
        "failure: {:?}",
        assets[0].failure
    );
    assert_eq!(assets[0].source.key.as_str(), key);
    // The replayed event carries no etag: ingest asks S3 for the object's, so the asset is
    // named by the object's content like any upload (the upload's own event never arrived:
    // the rule has no target).
    let etag = assets[0].source.etag.as_deref().unwrap_or("");
    assert!(
        etag.len() == 32 && etag.chars().all(|c| c.is_ascii_hexdigit()),
        "the object's etag, looked up at ingest: {etag:?}"
    );
    assert_eq!(assets[0].version, ONE_PASS_VERSION);
    assert!(
        stack.dead_lettered().await.is_empty(),
        "the DLQ is empty after the move: {:?}",
        stack.dead_lettered().await
    );
    stack.elapsed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LocalStack: run tests/run.sh"]
async fn sigterm_mid_batch_loses_nothing() {
    let Some(stack) = Stack::new("sigterm").await else {
        return;
    };
    let bin = worker_binary("cuepoint-ingest");
    let (clip, _) = stack.clip("clip.mov").await;
    const N: usize = 5;

    // Everything but ingest runs here; ingest (and the MediaConvert stand-in it submits to)
    // runs as the real binary, with a data directory of its own.
    let mut ingest_settings = stack.settings.clone();
    ingest_settings.data_dir = stack.dir.path().join("ingest-data");
    ingest_settings.consumer.concurrency = N;
    let others = [
        WorkerKind::Media,
        WorkerKind::Analysis,
        WorkerKind::Results,
        WorkerKind::Scoring,
        WorkerKind::Packaging,
    ];
    let (backend, workers) = stack.start_workers(&stack.settings, &others).await;

    for i in 0..N {
        stack.upload(&clip, &format!("uploads/batch-{i}.mov")).await;
    }
    // Let S3 → EventBridge deliver all five before the worker's first receive.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut first = WorkerProcess::spawn(&bin, &ingest_settings);
    let t0 = Instant::now();
    // SIGTERM as soon as the first asset is registered: the others are still being handled.
    wait_until(
        "the ingest worker to register an asset",
        Duration::from_secs(60),
        || {
            let seen = first.find("asset registered").is_some();
            async move { seen.then_some(()) }
        },
    )
    .await;
    let registered_at_sigterm = first.count("asset registered");
    first.sigterm();
    let (status, took) = first.wait_exit(Duration::from_secs(
        stack.settings.consumer.shutdown_grace_seconds + 15,
    ));
    let draining = first
        .find("shutting down: draining in-flight messages")
        .expect("the worker drained on SIGTERM");
    let in_flight = draining["in_flight"].as_u64().unwrap_or(0);
    let registered = first.count("asset registered");
    let jobs_created = first.count("local MediaConvert job created");
    eprintln!(
        "sigterm: first worker ran {:.1}s, exited {status} {:.1}s after SIGTERM; {in_flight} in flight at SIGTERM \
         ({registered_at_sigterm} registered then); {registered} registered, {jobs_created} transcodes submitted before stopping",
        t0.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
    assert!(
        status.success(),
        "exit status {status} after SIGTERM; log tail:\n{}",
        first.tail(30)
    );
    assert!(first
        .find(
            "grace period over: abandoning in-flight handlers; their messages will be redelivered"
        )
        .is_none());
    assert!(
        in_flight >= 1,
        "SIGTERM arrived with no handler running (nothing mid-batch)"
    );
    drop(first);

    // Restart: the rest of the batch, and the transcodes the stop interrupted, carry on.
    let mut second = WorkerProcess::spawn(&bin, &ingest_settings);
    let assets = stack.wait_terminal(N, ASSET_TIMEOUT).await;
    second.sigterm();
    let (status2, _) = second.wait_exit(Duration::from_secs(
        stack.settings.consumer.shutdown_grace_seconds + 15,
    ));
    assert!(status2.success(), "second worker exit {status2}");
    eprintln!(
        "sigterm: {} local jobs resumed after the restart",
        second.count("resuming transcode job")
    );
    workers.shutdown().await;
    backend.shutdown().await;

    assert_eq!(assets.len(), N, "every upload has its asset: {assets:?}");
    let mc = ledger(&ingest_settings, &ingest_settings.data_dir);
    let rk = ledger(&stack.settings, &stack.settings.data_dir);
    for a in &assets {
        assert_eq!(
            a.state,
            AssetState::Complete,
            "{} failed: {:?}",
            a.id,
            a.failure
        );
        assert_eq!(
            a.version, ONE_PASS_VERSION,
            "{} went through the states more than once",
            a.id
        );
        assert_eq!(
            mc.find_by_asset(LedgerService::MediaConvert, a.id.as_str())
                .await
                .unwrap()
                .len(),
            1,
            "one transcode job for {}",
            a.id
        );
        assert_eq!(
            rk.find_by_asset(LedgerService::Rekognition, a.id.as_str())
                .await
                .unwrap()
                .len(),
            5,
            "one job per analysis for {}",
            a.id
        );
    }
    assert!(
        stack.dead_lettered().await.is_empty(),
        "{:?}",
        stack.dead_lettered().await
    );
    stack.elapsed();
}
