//! Stuck assets: an asset whose next step was never announced is re-announced by the sweeper
//! and completes; one whose job never reports back is failed with the cause.

use std::sync::Arc;
use std::time::Duration;

use cuepoint_core::asset::{Asset, AssetEvent, AssetState, JobRecord, JobStatus, ProbeInfo};
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri, SourceObject};
use cuepoint_core::stuck::{StuckPolicy, SweepAction};
use cuepoint_engine::sample::{generate_sample, SampleSpec};
use cuepoint_runtime::ports::{AssetWrite, SystemClock};
use cuepoint_tests::test_settings;
use cuepoint_workers::app;
use cuepoint_workers::backend::build_embedded;
use cuepoint_workers::cli::run::{ingest_files, run_until_terminal};
use cuepoint_workers::handlers::WorkerKind;
use cuepoint_workers::sweeper::{find_stuck, sweep};

async fn wait_for_state(
    backend: &cuepoint_workers::backend::Backend,
    id: &AssetId,
    state: AssetState,
) -> Asset {
    for _ in 0..1200 {
        if let Some(a) = backend.ctx.ports.store.get(id).await.unwrap() {
            if a.state == state {
                return a;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("asset never reached {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_announcement_is_reannounced_and_the_asset_completes() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mov");
    let spec = SampleSpec {
        duration: 8.0,
        width: 160,
        height: 90,
        track_count: 2,
        active_tracks: vec![1],
        cuts: vec![3.0],
        black_gaps: vec![(5.0, 6.0)],
        end_credits_from: None,
        ..SampleSpec::default()
    };
    generate_sample(&clip, &spec).await.unwrap();
    let mut settings = test_settings(&dir.path().join("data"));
    settings.stuck = StuckPolicy {
        media_prepared_seconds: 1,
        ..StuckPolicy::default()
    };
    let backend = build_embedded(&settings, true, Arc::new(SystemClock))
        .await
        .unwrap();
    let ids = ingest_files(&backend, &settings, &[clip]).await.unwrap();

    // Only ingest and media run, and the "Media Prepared" announcement is consumed by nobody:
    // purge it from the analysis queue to play a lost event.
    let workers = app::start(
        &backend.ctx,
        &[WorkerKind::Ingest, WorkerKind::Media],
        |q| backend.queue(q),
        false,
    );
    let asset = wait_for_state(&backend, &ids[0], AssetState::MediaPrepared).await;
    workers.shutdown().await;
    let analysis = backend.queue("analysis");
    for m in analysis
        .receive(10, Duration::from_millis(200), Duration::from_secs(60))
        .await
        .unwrap()
    {
        analysis.delete(&[m.receipt]).await.unwrap();
    }
    assert!(
        find_stuck(&backend.ctx, &settings.stuck)
            .await
            .unwrap()
            .is_empty(),
        "not stuck before its deadline"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let stuck = find_stuck(&backend.ctx, &settings.stuck).await.unwrap();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].1.action, SweepAction::Reannounce);
    let outcomes = sweep(
        &backend.ctx,
        &settings.stuck,
        false,
        backend.try_queue("ingest"),
    )
    .await
    .unwrap();
    assert!(outcomes[0].done, "{:?}", outcomes[0].error);
    assert_eq!(
        backend
            .ctx
            .ports
            .store
            .get(&asset.id)
            .await
            .unwrap()
            .unwrap()
            .sweeps,
        1
    );

    let done = run_until_terminal(&backend, &ids, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(done[0].state, AssetState::Complete, "{:?}", done[0].failure);
    assert_eq!(
        done[0].sweeps, 0,
        "the sweep count resets when the state moves on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcode_that_never_reports_back_fails_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir.path().join("data"));
    settings.stuck = StuckPolicy {
        transcoding_seconds: 1,
        ..StuckPolicy::default()
    };
    let backend = build_embedded(&settings, false, Arc::new(SystemClock))
        .await
        .unwrap();
    let source = SourceObject {
        bucket: BucketName::parse("cuepoint-ingest").unwrap(),
        key: ObjectKey::parse("uploads/lost.mov").unwrap(),
        version_id: None,
        etag: Some("e1".into()),
        size: Some(1),
    };
    let now = backend.ctx.now_ms();
    let mut a = Asset::register(
        source,
        ProbeInfo::default(),
        S3Uri::parse("s3://cuepoint-output/assets/x/").unwrap(),
        now - 10_000,
    );
    let job = JobRecord {
        job_id: "1700000000000-lost01".into(),
        client_token: "t".into(),
        submitted_at_ms: now - 10_000,
        status: JobStatus::Submitted,
        reason: None,
    };
    let store = &backend.ctx.ports.store;
    store
        .commit(AssetWrite {
            asset: a.clone(),
            expected_version: None,
            counter: None,
        })
        .await
        .unwrap();
    let cuepoint_core::asset::Transition::Applied(next) =
        cuepoint_core::asset::transition(&a, &AssetEvent::TranscodeSubmitted { job }, now - 5_000)
            .unwrap()
    else {
        panic!()
    };
    let mut next = *next;
    next.version = 2;
    store
        .commit(AssetWrite {
            asset: next.clone(),
            expected_version: Some(1),
            counter: None,
        })
        .await
        .unwrap();
    a = next;

    let outcomes = sweep(
        &backend.ctx,
        &settings.stuck,
        false,
        backend.try_queue("ingest"),
    )
    .await
    .unwrap();
    assert_eq!(outcomes.len(), 1);
    let failed = store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(failed.state, AssetState::Failed);
    let f = failed.failure.unwrap();
    assert_eq!(f.stage, cuepoint_core::asset::FailureStage::Stuck);
    assert!(
        f.reason.contains("1700000000000-lost01") && f.reason.contains("did not report back"),
        "{}",
        f.reason
    );
    // A second sweep finds nothing: terminal assets have no deadline.
    assert!(sweep(
        &backend.ctx,
        &settings.stuck,
        false,
        backend.try_queue("ingest")
    )
    .await
    .unwrap()
    .is_empty());
}
