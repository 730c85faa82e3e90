//! Each handler against in-memory ports: the first delivery, a redelivery, an event that is
//! ignored, a lost race and the failure paths.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use cuepoint_core::asset::{
    transition, Asset, AssetEvent, AssetState, FailureStage, JobRecord, JobStatus, Transition,
};
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri};
use cuepoint_core::events::mediaconvert::{JobState, JobStateChange};
use cuepoint_core::events::rekognition::VideoJobCompletion;
use cuepoint_core::events::s3::ObjectCreated;
use cuepoint_core::events::transcribe::{TranscriptionJobStateChange, TranscriptionState};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::loudness::AudioReport;
use cuepoint_core::mediaconvert::{build_job_settings, JobPlan};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_core::results;
use cuepoint_runtime::config::Settings;
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::{AssetWrite, CounterDelta, TranscriptionJob, TranscriptionStatus};

use super::{analysis, ingest, media, packaging, results as results_handler, scoring};
use crate::context::OPEN_JOBS_COUNTER;
use crate::testkit::{probe_info, Kit};

const LOUDNESS_CSV: &str =
    include_str!("../../../fuzz/seeds/loudness_log/slots-example-track-1.csv");

fn created(bucket: &str, key: &str) -> ObjectCreated {
    ObjectCreated {
        bucket: BucketName::parse(bucket).unwrap(),
        key: ObjectKey::parse(key).unwrap(),
        size: Some(1000),
        etag: Some("etag-1".into()),
        version_id: None,
        sequencer: None,
        event_time: None,
        reason: Some("PutObject".into()),
    }
}

/// An upload to the ingest bucket whose bytes exist.
fn upload(kit: &Kit, key: &str) -> ObjectCreated {
    let obj = created(&kit.ctx.settings.ingest_bucket, key);
    kit.blobs
        .insert(&obj.source_object().uri(), b"media".to_vec());
    obj
}

fn id_of(obj: &ObjectCreated) -> AssetId {
    AssetId::for_source(&obj.source_object())
}

fn job(id: &str) -> JobRecord {
    JobRecord {
        job_id: id.into(),
        client_token: format!("tok-{id}"),
        submitted_at_ms: 1,
        status: JobStatus::Submitted,
        reason: None,
    }
}

/// Apply `event` the way the store would record it.
fn apply(a: &Asset, event: AssetEvent) -> Asset {
    match transition(a, &event, 5).unwrap() {
        Transition::Applied(next) => Asset {
            version: a.version + 1,
            ..*next
        },
        Transition::AlreadyApplied => panic!("{} already applied", event.name()),
    }
}

/// An asset registered from `obj` and moved through the happy path up to `state`.
/// The job an asset records per analysis: `<kind>-job` for the video analyses (as the stub
/// analyzer names them), `cuepoint-<asset>` for the transcription (its job name).
fn job_name(id: &AssetId, kind: AnalysisKind) -> String {
    match kind {
        AnalysisKind::Transcription => format!("cuepoint-{id}"),
        k => format!("{k}-job"),
    }
}

fn asset_at(kit: &Kit, obj: &ObjectCreated, state: AssetState) -> Asset {
    let id = id_of(obj);
    let mut a = Asset::register(
        obj.source_object(),
        probe_info(2),
        kit.ctx.results_prefix(&id),
        1,
    );
    let steps = [
        (
            AssetState::Transcoding,
            AssetEvent::TranscodeSubmitted { job: job("mc-1") },
        ),
        (
            AssetState::MediaPrepared,
            AssetEvent::MediaPrepared {
                job_id: "mc-1".into(),
                audio: AudioReport::from_logs(&[], &[], &Default::default()),
                proxy: kit.ctx.result_uri(&id, results::PROXY),
            },
        ),
        (
            AssetState::Analysing,
            AssetEvent::AnalysesStarted {
                jobs: AnalysisKind::ALL
                    .iter()
                    .map(|k| (*k, job(&job_name(&id, *k))))
                    .collect::<BTreeMap<_, _>>(),
            },
        ),
    ];
    for (reached, event) in steps {
        if !state.at_or_after(reached) {
            break;
        }
        a = apply(&a, event);
    }
    if state.at_or_after(AssetState::Analysed) {
        for k in AnalysisKind::ALL {
            a = apply(
                &a,
                AssetEvent::AnalysisCompleted {
                    kind: k,
                    job_id: job_name(&id, k),
                },
            );
        }
    }
    assert_eq!(a.state, state);
    kit.put_asset(&a);
    if state == AssetState::Analysing {
        kit.store
            .counters
            .lock()
            .unwrap()
            .insert(OPEN_JOBS_COUNTER.into(), AnalysisKind::VIDEO.len() as i64);
    }
    a
}

fn transient(r: Result<(), HandlerError>) -> String {
    match r {
        Err(HandlerError::Transient(why)) => why,
        other => panic!("expected a transient error, got {other:?}"),
    }
}

fn failure_of(kit: &Kit, id: &AssetId) -> (AssetState, Option<FailureStage>) {
    let a = kit.asset(id);
    (a.state, a.failure.map(|f| f.stage))
}

// ----------------------------------------------------------------------------------------------
// ingest

#[tokio::test]
async fn ingest_registers_submits_and_reannounces_on_redelivery() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    ingest::on_object_created(&kit.ctx, &obj).await.unwrap();
    let id = id_of(&obj);
    let a = kit.asset(&id);
    assert_eq!(a.state, AssetState::Transcoding);
    assert_eq!(a.transcode.as_ref().unwrap().job_id, "mc-1");
    assert!(
        kit.blobs
            .read(&kit.ctx.result_uri(&id, results::PROBE))
            .is_some(),
        "probe.json written"
    );
    let submitted = kit.transcoder.submitted.lock().unwrap().clone();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].user_metadata["assetId"], id.to_string());

    // The same message again: nothing submitted, the same announcement again.
    ingest::on_object_created(&kit.ctx, &obj).await.unwrap();
    assert_eq!(kit.transcoder.submitted.lock().unwrap().len(), 1);
    assert_eq!(kit.asset(&id).version, a.version, "nothing written");
    let published = kit.bus.published();
    assert_eq!(published.len(), 2);
    assert_eq!(
        published[0], published[1],
        "a redelivery re-announces the same event (same id)"
    );
    assert_eq!(published[0].0, "Transcode Submitted");
}

#[tokio::test]
async fn ingest_ignores_other_buckets_and_refuses_missing_sources() {
    let kit = Kit::new();
    let elsewhere = created("some-other-bucket", "uploads/a.mov");
    ingest::on_object_created(&kit.ctx, &elsewhere)
        .await
        .unwrap();
    assert!(kit.store.assets.lock().unwrap().is_empty());
    assert!(kit.bus.published().is_empty());

    let gone = created(&kit.ctx.settings.ingest_bucket, "uploads/deleted.mov");
    let r = ingest::on_object_created(&kit.ctx, &gone).await;
    assert!(
        matches!(&r, Err(HandlerError::Permanent(m)) if m.contains("does not exist")),
        "{r:?}"
    );
    assert!(kit.transcoder.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unusable_media_fails_at_probe_and_is_never_transcoded() {
    let kit = Kit::with(Settings::default(), probe_info(0), Some("no streams"));
    let obj = upload(&kit, "uploads/broken.mov");
    ingest::on_object_created(&kit.ctx, &obj).await.unwrap();
    let id = id_of(&obj);
    assert_eq!(
        failure_of(&kit, &id),
        (AssetState::Failed, Some(FailureStage::Probe))
    );
    assert_eq!(
        kit.asset(&id).version,
        1,
        "FAILED in the record's first write"
    );
    ingest::on_object_created(&kit.ctx, &obj).await.unwrap();
    assert!(kit.transcoder.submitted.lock().unwrap().is_empty());
    let published = kit.bus.published();
    assert_eq!(kit.bus.detail_types(), ["Asset Failed", "Asset Failed"]);
    assert_eq!(published[0].1["stage"], "probe");
    assert!(
        !published[0].1["reason"]
            .as_str()
            .unwrap()
            .contains("mem://"),
        "the readable location stays private"
    );
}

#[tokio::test]
async fn a_transcode_created_before_a_crash_is_adopted() {
    let kit = Kit::new();
    *kit.transcoder.existing.lock().unwrap() = Some("mc-from-before".into());
    let obj = upload(&kit, "uploads/a.mov");
    ingest::on_object_created(&kit.ctx, &obj).await.unwrap();
    assert!(kit.transcoder.submitted.lock().unwrap().is_empty());
    assert_eq!(
        kit.asset(&id_of(&obj)).transcode.unwrap().job_id,
        "mc-from-before"
    );
}

#[tokio::test]
async fn ingest_that_loses_the_race_retries_with_the_same_token() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    asset_at(&kit, &obj, AssetState::Registered);
    // Losing every re-read-and-re-apply attempt leaves the message to the queue's backoff.
    kit.store
        .lose_races
        .store(crate::flow::WRITE_ATTEMPTS, Ordering::SeqCst);
    transient(ingest::on_object_created(&kit.ctx, &obj).await);
    assert_eq!(kit.ctx.races.exhausted.load(Ordering::SeqCst), 1);
    assert!(
        kit.bus.published().is_empty(),
        "nothing announced for a write that did not happen"
    );
    ingest::on_object_created(&kit.ctx, &obj).await.unwrap();
    let submitted = kit.transcoder.submitted.lock().unwrap().clone();
    assert_eq!(submitted.len(), 2);
    assert_eq!(
        submitted[0].client_token, submitted[1].client_token,
        "MediaConvert returns the first job"
    );
    assert_eq!(kit.asset(&id_of(&obj)).state, AssetState::Transcoding);
}

// ----------------------------------------------------------------------------------------------
// media

fn job_change(kit: &Kit, id: &AssetId, job_id: &str, state: JobState) -> JobStateChange {
    let mut user_metadata = BTreeMap::new();
    user_metadata.insert("assetId".to_string(), id.to_string());
    user_metadata.insert("workflow".to_string(), kit.ctx.settings.workflow.clone());
    let error = state == JobState::Error;
    JobStateChange {
        job_id: job_id.into(),
        state,
        queue: None,
        user_metadata,
        output_group_details: vec![],
        error_code: error.then_some(1010),
        error_message: error.then(|| "bad input".to_string()),
        timestamp_ms: None,
    }
}

/// Where the transcode of `a` writes its loudness logs.
fn loudness_logs(kit: &Kit, a: &Asset) -> Vec<S3Uri> {
    let settings = build_job_settings(
        &kit.ctx.job_template,
        &a.source.uri(),
        &kit.ctx.results_prefix(&a.id),
        2,
    )
    .unwrap();
    let plan = JobPlan::from_settings(&settings).unwrap();
    (1..=2).map(|t| plan.loudness_log_uri(t, 2)).collect()
}

#[tokio::test]
async fn complete_prepares_media_once_and_reannounces_on_redelivery() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Transcoding);
    for uri in loudness_logs(&kit, &a) {
        kit.blobs.insert(&uri, LOUDNESS_CSV);
    }
    let change = job_change(&kit, &a.id, "mc-1", JobState::Complete);
    media::on_job_state_change(&kit.ctx, &change).await.unwrap();
    let prepared = kit.asset(&a.id);
    assert_eq!(prepared.state, AssetState::MediaPrepared);
    assert_eq!(prepared.audio.as_ref().unwrap().audiocount, 2);
    assert!(kit
        .blobs
        .read(&kit.ctx.result_uri(&a.id, results::AUDIO))
        .is_some());
    assert!(kit
        .blobs
        .read(&kit.ctx.result_uri(&a.id, &results::loudness_track(2)))
        .is_some());

    media::on_job_state_change(&kit.ctx, &change).await.unwrap();
    assert_eq!(
        kit.asset(&a.id).version,
        prepared.version,
        "a redelivery writes nothing"
    );
    assert_eq!(kit.bus.detail_types(), ["Media Prepared", "Media Prepared"]);
}

#[tokio::test]
async fn a_missing_loudness_log_fails_at_loudness() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Transcoding);
    kit.blobs.insert(&loudness_logs(&kit, &a)[0], LOUDNESS_CSV);
    let change = job_change(&kit, &a.id, "mc-1", JobState::Complete);
    media::on_job_state_change(&kit.ctx, &change).await.unwrap();
    assert_eq!(
        failure_of(&kit, &a.id),
        (AssetState::Failed, Some(FailureStage::Loudness))
    );
    assert!(kit
        .asset(&a.id)
        .failure
        .unwrap()
        .reason
        .contains("track 2 missing"));
    // Redelivered: the failure is announced again (the first announcement may have been lost).
    media::on_job_state_change(&kit.ctx, &change).await.unwrap();
    assert_eq!(kit.bus.detail_types(), ["Asset Failed", "Asset Failed"]);
}

#[tokio::test]
async fn a_transcode_error_fails_the_asset_unless_the_job_is_not_its_own() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Transcoding);
    let stale = job_change(&kit, &a.id, "mc-stale", JobState::Error);
    media::on_job_state_change(&kit.ctx, &stale).await.unwrap();
    assert_eq!(
        kit.asset(&a.id).state,
        AssetState::Transcoding,
        "another job's ERROR is ignored"
    );

    let other = JobStateChange {
        user_metadata: [("workflow".to_string(), "someone-else".to_string())].into(),
        ..job_change(&kit, &a.id, "mc-1", JobState::Error)
    };
    media::on_job_state_change(&kit.ctx, &other).await.unwrap();
    assert!(
        kit.bus.published().is_empty(),
        "another workflow's job is not ours"
    );

    let error = job_change(&kit, &a.id, "mc-1", JobState::Error);
    media::on_job_state_change(&kit.ctx, &error).await.unwrap();
    let failed = kit.asset(&a.id);
    assert_eq!(
        failed.failure.as_ref().unwrap().stage,
        FailureStage::Transcode
    );
    assert!(failed
        .failure
        .unwrap()
        .reason
        .contains("error 1010: bad input"));
    assert_eq!(kit.bus.published()[0].1["stage"], "transcode");
}

#[tokio::test]
async fn complete_before_the_job_is_recorded_is_retried_and_unknown_assets_are_refused() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Registered);
    for uri in loudness_logs(&kit, &a) {
        kit.blobs.insert(&uri, LOUDNESS_CSV);
    }
    let why = transient(
        media::on_job_state_change(
            &kit.ctx,
            &job_change(&kit, &a.id, "mc-1", JobState::Complete),
        )
        .await,
    );
    assert!(why.contains("records no job yet"), "{why}");

    let unknown = AssetId::parse("a0000000000000000beef").unwrap();
    let r = media::on_job_state_change(
        &kit.ctx,
        &job_change(&kit, &unknown, "mc-1", JobState::Complete),
    )
    .await;
    assert!(
        matches!(&r, Err(HandlerError::Permanent(m)) if m.contains("unknown asset")),
        "{r:?}"
    );
}

// ----------------------------------------------------------------------------------------------
// analysis

fn prepared_event(a: &Asset) -> PipelineEvent {
    PipelineEvent::new(
        a.id.clone(),
        PipelineDetail::MediaPrepared {
            proxy: a.results.proxy.clone().unwrap(),
        },
    )
}

/// An asset prepared with two audio tracks: track 2 the loudest with sound.
fn prepared_with_sound(kit: &Kit, obj: &ObjectCreated) -> Asset {
    let mut a = asset_at(kit, obj, AssetState::MediaPrepared);
    a.audio = Some(AudioReport {
        audiocount: 2,
        maxloudness: vec![-30.0, -14.0],
        loudnessmap: vec![1, 1],
        layout: cuepoint_core::loudness::AudioLayout::Stereo,
        silences: vec![vec![], vec![]],
    });
    kit.put_asset(&a);
    kit.asset(&a.id)
}

#[tokio::test]
async fn every_analysis_starts_once_within_the_cap() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = prepared_with_sound(&kit, &obj);
    analysis::on_media_prepared(&kit.ctx, &prepared_event(&a))
        .await
        .unwrap();
    let started = kit.analyzer.started.lock().unwrap().clone();
    assert_eq!(started.len(), AnalysisKind::VIDEO.len());
    assert!(started
        .iter()
        .all(|r| r.job_tag == a.id.to_string() && r.video == a.results.proxy.clone().unwrap()));
    let transcriptions = kit.transcriber.started.lock().unwrap().clone();
    assert_eq!(transcriptions.len(), 1);
    let t = &transcriptions[0];
    assert_eq!(t.job_name, format!("cuepoint-{}", a.id));
    assert_eq!(t.audio_track, 2, "the loudest track with sound");
    assert_eq!(t.speech_tracks, [1, 2]);
    assert_eq!(t.source, a.source.uri());
    assert_eq!(t.media, a.results.proxy.clone().unwrap());
    assert_eq!(
        t.output,
        kit.ctx
            .result_uri(&a.id, &format!("transcribe/cuepoint-{}.json", a.id))
    );
    let analysing = kit.asset(&a.id);
    assert_eq!(analysing.state, AssetState::Analysing);
    assert_eq!(analysing.pending_analyses().len(), AnalysisKind::ALL.len());
    assert_eq!(
        analysing.analyses[&AnalysisKind::Transcription].job_id,
        t.job_name
    );
    // The cap counts Rekognition's jobs only.
    assert_eq!(
        kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER],
        AnalysisKind::VIDEO.len() as i64
    );

    analysis::on_media_prepared(&kit.ctx, &prepared_event(&a))
        .await
        .unwrap();
    assert_eq!(
        kit.analyzer.started.lock().unwrap().len(),
        AnalysisKind::VIDEO.len(),
        "nothing started twice"
    );
    assert_eq!(kit.transcriber.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_source_without_sound_gets_empty_speech_results_and_no_transcription_job() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::MediaPrepared);
    analysis::on_media_prepared(&kit.ctx, &prepared_event(&a))
        .await
        .unwrap();
    assert!(kit.transcriber.started.lock().unwrap().is_empty());
    let analysing = kit.asset(&a.id);
    assert!(!analysing
        .analyses
        .contains_key(&AnalysisKind::Transcription));
    let speech: serde_json::Value = serde_json::from_slice(
        &kit.blobs
            .read(&kit.ctx.result_uri(&a.id, results::SPEECH))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(speech["Speech"], serde_json::json!([]));
    assert!(kit
        .blobs
        .read(&kit.ctx.result_uri(&a.id, results::TRANSCRIPT))
        .is_some());
}

#[tokio::test]
async fn analyses_wait_for_the_cap_and_for_prepared_media() {
    let mut settings = Settings::default();
    settings.analysis.max_open_jobs = 4;
    let kit = Kit::with(settings, probe_info(2), None);
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::MediaPrepared);
    let r = analysis::on_media_prepared(&kit.ctx, &prepared_event(&a)).await;
    assert!(
        matches!(&r, Err(HandlerError::Delay { reason, .. }) if reason.contains("cap 4")),
        "{r:?}"
    );
    assert!(kit.analyzer.started.lock().unwrap().is_empty());
    assert_eq!(kit.asset(&a.id).reserved_jobs, 0);

    let kit = Kit::new();
    let early = asset_at(&kit, &obj, AssetState::Transcoding);
    let ev = PipelineEvent::new(
        early.id.clone(),
        PipelineDetail::MediaPrepared {
            proxy: kit.ctx.result_uri(&early.id, results::PROXY),
        },
    );
    transient(analysis::on_media_prepared(&kit.ctx, &ev).await);
}

#[tokio::test]
async fn a_burst_of_prepared_assets_never_starts_more_jobs_than_the_cap() {
    // Room for two assets' five video analyses: the third waits without starting anything.
    let mut settings = Settings::default();
    settings.analysis.max_open_jobs = 10;
    let kit = Kit::with(settings, probe_info(2), None);
    let assets: Vec<_> = (0..3)
        .map(|i| {
            let obj = upload(&kit, &format!("uploads/{i}.mov"));
            asset_at(&kit, &obj, AssetState::MediaPrepared)
        })
        .collect();
    let events: Vec<_> = assets.iter().map(prepared_event).collect();
    let outcomes = futures_util::future::join_all(
        events
            .iter()
            .map(|ev| analysis::on_media_prepared(&kit.ctx, ev)),
    )
    .await;
    let delayed = outcomes
        .iter()
        .filter(
            |r| matches!(r, Err(HandlerError::Delay { reason, .. }) if reason.contains("cap 10")),
        )
        .count();
    assert_eq!(delayed, 1, "{outcomes:?}");
    let video_jobs = |kit: &Kit| {
        kit.analyzer
            .started
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.kind.is_video())
            .count()
    };
    assert_eq!(video_jobs(&kit), 10);
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 10);

    // A redelivery of a started asset's message takes nothing more.
    let started = assets
        .iter()
        .find(|a| kit.asset(&a.id).state == AssetState::Analysing)
        .unwrap();
    analysis::on_media_prepared(&kit.ctx, &prepared_event(started))
        .await
        .unwrap();
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 10);

    // An asset that took its share but failed before starting its jobs (stuck) gives the
    // share back in the failing write.
    let waiting = assets
        .iter()
        .find(|a| kit.asset(&a.id).state == AssetState::MediaPrepared)
        .unwrap();
    assert_eq!(kit.asset(&waiting.id).reserved_jobs, 0);
    let mut held = kit.asset(&waiting.id);
    held.reserved_jobs = 5;
    kit.put_asset(&held);
    *kit.store
        .counters
        .lock()
        .unwrap()
        .get_mut(OPEN_JOBS_COUNTER)
        .unwrap() += 5;
    crate::flow::fail(
        &kit.ctx,
        &kit.asset(&waiting.id),
        FailureStage::Stuck,
        "stuck in MEDIA_PREPARED".into(),
    )
    .await
    .unwrap();
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 10);
    assert_eq!(kit.asset(&waiting.id).reserved_jobs, 0);
    assert_eq!(video_jobs(&kit), 10);
}

// ----------------------------------------------------------------------------------------------
// results

fn completion(a: &Asset, kind: AnalysisKind, job_id: &str, status: &str) -> VideoJobCompletion {
    VideoJobCompletion {
        job_id: job_id.into(),
        status: status.into(),
        api: kind.start_api().into(),
        job_tag: Some(a.id.to_string()),
        timestamp_ms: None,
        video_bucket: None,
        video_key: None,
        sns_message_id: None,
    }
}

#[tokio::test]
async fn the_last_completion_announces_analyses_completed_once() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    // The transcription first; then every video analysis.
    transcription_done(&kit, &a).await;
    assert!(kit.bus.published().is_empty());
    for (i, kind) in AnalysisKind::VIDEO.into_iter().enumerate() {
        let c = completion(&a, kind, &format!("{kind}-job"), "SUCCEEDED");
        results_handler::on_completion(&kit.ctx, &c).await.unwrap();
        // A redelivery of each completion changes nothing.
        let version = kit.asset(&a.id).version;
        results_handler::on_completion(&kit.ctx, &c).await.unwrap();
        assert_eq!(kit.asset(&a.id).version, version);
        let stored = kit
            .blobs
            .read(&kit.ctx.result_uri(&a.id, kind.results_file()))
            .unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        assert!(stored[kind.list_field()].is_array());
        if i + 1 < AnalysisKind::VIDEO.len() {
            assert!(
                kit.bus.published().is_empty(),
                "announced before the last analysis"
            );
        }
    }
    assert_eq!(kit.asset(&a.id).state, AssetState::Analysed);
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 0);
    // The last completion announced; its redelivery announced again (same event id).
    assert_eq!(
        kit.bus.detail_types(),
        ["Analyses Completed", "Analyses Completed"]
    );
}

/// Two analyses finish together: the sibling's write lands between this handler's read and its
/// write. The handler re-reads and re-applies at once (no transient failure, so no backoff), and
/// as its analysis is the last one, it alone announces "Analyses Completed".
#[tokio::test]
async fn a_completion_that_loses_the_race_re_reads_and_re_applies_at_once() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    transcription_done(&kit, &a).await;
    let kinds = AnalysisKind::VIDEO;
    let (other, mine) = (kinds[kinds.len() - 2], kinds[kinds.len() - 1]);
    for kind in &kinds[..kinds.len() - 2] {
        let c = completion(&a, *kind, &format!("{kind}-job"), "SUCCEEDED");
        results_handler::on_completion(&kit.ctx, &c).await.unwrap();
    }
    let before = kit.asset(&a.id);
    let theirs = apply(
        &before,
        AssetEvent::AnalysisCompleted {
            kind: other,
            job_id: format!("{other}-job"),
        },
    );
    assert_eq!(theirs.state, AssetState::Analysing);
    *kit.store.race_with.lock().unwrap() = Some(AssetWrite {
        asset: theirs,
        expected_version: Some(before.version),
        counter: Some(CounterDelta {
            name: OPEN_JOBS_COUNTER.into(),
            delta: -1,
            max: None,
        }),
    });
    let conflicts = kit.store.conflicts.load(Ordering::SeqCst);

    let c = completion(&a, mine, &format!("{mine}-job"), "SUCCEEDED");
    results_handler::on_completion(&kit.ctx, &c).await.unwrap();

    assert_eq!(
        kit.store.conflicts.load(Ordering::SeqCst),
        conflicts + 1,
        "the handler's first write lost the race"
    );
    assert_eq!(kit.ctx.races.reapplied.load(Ordering::SeqCst), 1);
    assert_eq!(kit.ctx.races.exhausted.load(Ordering::SeqCst), 0);
    let after = kit.asset(&a.id);
    assert_eq!(after.state, AssetState::Analysed);
    assert_eq!(
        after.version,
        before.version + 2,
        "each completion written once"
    );
    for kind in [other, mine] {
        assert_eq!(after.analyses[&kind].status, JobStatus::Succeeded, "{kind}");
    }
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 0);
    assert_eq!(kit.bus.detail_types(), ["Analyses Completed"]);
}

fn transcribe_event(name: &str, state: TranscriptionState) -> TranscriptionJobStateChange {
    TranscriptionJobStateChange {
        job_name: name.into(),
        state,
        failure_reason: None,
    }
}

/// `a`'s transcription job completes, its transcript in place.
async fn transcription_done(kit: &Kit, a: &Asset) {
    let name = format!("cuepoint-{}", a.id);
    let uri = kit
        .ctx
        .result_uri(&a.id, &format!("transcribe/{name}.json"));
    kit.blobs.insert(
        &uri,
        serde_json::json!({"jobName": name, "status": "COMPLETED", "results": {
            "transcripts": [{"transcript": "Back after the break."}],
            "items": [
                {"start_time": "1.0", "end_time": "1.4", "type": "pronunciation", "alternatives": [{"content": "Back", "confidence": "0.9"}]},
                {"start_time": "1.5", "end_time": "2.0", "type": "pronunciation", "alternatives": [{"content": "after", "confidence": "0.7"}]},
                {"start_time": "4.0", "end_time": "4.5", "type": "pronunciation", "alternatives": [{"content": "break", "confidence": "1.0"}]},
            ]}})
        .to_string(),
    );
    *kit.transcriber.outcome.lock().unwrap() = TranscriptionJob {
        job_name: name.clone(),
        status: TranscriptionStatus::Completed,
        failure_reason: None,
        transcript: Some(uri),
        speech: None,
    };
    let ev = transcribe_event(&name, TranscriptionState::Completed);
    results_handler::on_transcription(&kit.ctx, &ev)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_completed_transcription_stores_transcript_and_speech() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    transcription_done(&kit, &a).await;
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_slice(&kit.blobs.read(&kit.ctx.result_uri(&a.id, f)).unwrap()).unwrap()
    };
    assert_eq!(
        read(results::TRANSCRIPT)["results"]["transcripts"][0]["transcript"],
        "Back after the break."
    );
    // Amazon Transcribe measures no speech activity: it comes from the word times.
    assert_eq!(
        read(results::SPEECH)["Speech"],
        serde_json::json!([
            {"Track": 1, "StartTimestamp": 1000, "EndTimestamp": 2000, "Confidence": 80.0},
            {"Track": 1, "StartTimestamp": 4000, "EndTimestamp": 4500, "Confidence": 100.0},
        ])
    );
    let rec = kit.asset(&a.id);
    assert_eq!(
        rec.analyses[&AnalysisKind::Transcription].status,
        JobStatus::Succeeded
    );
    assert_eq!(
        rec.state,
        AssetState::Analysing,
        "the video analyses are still open"
    );
    assert_eq!(
        kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER],
        AnalysisKind::VIDEO.len() as i64,
        "a transcription holds no Rekognition slot"
    );
    // Redelivered (even after the engine forgot the job): nothing changes.
    let version = rec.version;
    *kit.transcriber.outcome.lock().unwrap() = TranscriptionJob {
        job_name: String::new(),
        status: TranscriptionStatus::InProgress,
        failure_reason: None,
        transcript: None,
        speech: None,
    };
    let ev = transcribe_event(&format!("cuepoint-{}", a.id), TranscriptionState::Completed);
    results_handler::on_transcription(&kit.ctx, &ev)
        .await
        .unwrap();
    assert_eq!(kit.asset(&a.id).version, version);
}

#[tokio::test]
async fn a_failed_transcription_fails_only_that_analysis() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    let name = format!("cuepoint-{}", a.id);
    for kind in AnalysisKind::VIDEO {
        let c = completion(&a, kind, &format!("{kind}-job"), "SUCCEEDED");
        results_handler::on_completion(&kit.ctx, &c).await.unwrap();
    }
    assert!(
        kit.bus.published().is_empty(),
        "the transcription is still open"
    );
    *kit.transcriber.outcome.lock().unwrap() = TranscriptionJob {
        job_name: name.clone(),
        status: TranscriptionStatus::Failed,
        failure_reason: Some(
            "The media format that you specified doesn't match the detected media format.".into(),
        ),
        transcript: None,
        speech: None,
    };
    let ev = transcribe_event(&name, TranscriptionState::Failed);
    results_handler::on_transcription(&kit.ctx, &ev)
        .await
        .unwrap();
    let rec = kit.asset(&a.id);
    assert_eq!(rec.state, AssetState::Analysed, "the asset goes on");
    let t = &rec.analyses[&AnalysisKind::Transcription];
    assert_eq!(t.status, JobStatus::Failed);
    assert!(t.reason.as_deref().unwrap().contains("media format"));
    let speech: serde_json::Value = serde_json::from_slice(
        &kit.blobs
            .read(&kit.ctx.result_uri(&a.id, results::SPEECH))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(speech["CuepointAnalysis"]["Status"], "FAILED");
    assert_eq!(kit.bus.detail_types(), ["Analyses Completed"]);
    // A duplicate announces again, applies nothing.
    results_handler::on_transcription(&kit.ctx, &ev)
        .await
        .unwrap();
    assert_eq!(kit.asset(&a.id).version, rec.version);
    assert_eq!(
        kit.bus.detail_types(),
        ["Analyses Completed", "Analyses Completed"]
    );
}

#[tokio::test]
async fn transcriptions_early_foreign_or_of_another_job() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    // Before the jobs are recorded: retried.
    let a = asset_at(&kit, &obj, AssetState::MediaPrepared);
    let ev = transcribe_event(&format!("cuepoint-{}", a.id), TranscriptionState::Completed);
    transient(results_handler::on_transcription(&kit.ctx, &ev).await);
    // Another workflow's job: refused for good.
    let foreign = transcribe_event("voicemail-42", TranscriptionState::Completed);
    let r = results_handler::on_transcription(&kit.ctx, &foreign).await;
    assert!(matches!(r, Err(HandlerError::Permanent(_))), "{r:?}");
    // A job the asset does not own: ignored.
    let kit = Kit::new();
    let mut a = asset_at(&kit, &obj, AssetState::Analysing);
    a.analyses
        .get_mut(&AnalysisKind::Transcription)
        .unwrap()
        .job_id = "cuepoint-older".into();
    kit.put_asset(&a);
    let a = kit.asset(&a.id);
    let ev = transcribe_event(&format!("cuepoint-{}", a.id), TranscriptionState::Completed);
    results_handler::on_transcription(&kit.ctx, &ev)
        .await
        .unwrap();
    assert_eq!(
        kit.asset(&a.id).version,
        a.version,
        "not this asset's recorded job"
    );
}

#[tokio::test]
async fn results_are_fetched_across_pages() {
    let mut kit = Kit::new();
    kit.analyzer = std::sync::Arc::new(crate::testkit::StubAnalyzer {
        pages: 3,
        ..Default::default()
    });
    kit.ctx.ports.analyzer = kit.analyzer.clone();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    let c = completion(&a, AnalysisKind::Labels, "labels-job", "SUCCEEDED");
    results_handler::on_completion(&kit.ctx, &c).await.unwrap();
    let stored = kit
        .blobs
        .read(
            &kit.ctx
                .result_uri(&a.id, AnalysisKind::Labels.results_file()),
        )
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(
        stored["Labels"],
        serde_json::json!([{"page": 0}, {"page": 1}, {"page": 2}])
    );
    assert!(stored.get("NextToken").is_none());
}

#[tokio::test]
async fn a_failed_analysis_fails_the_asset_and_releases_its_open_jobs() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    let c = completion(&a, AnalysisKind::Faces, "faces-job", "FAILED");
    results_handler::on_completion(&kit.ctx, &c).await.unwrap();
    assert_eq!(
        failure_of(&kit, &a.id),
        (
            AssetState::Failed,
            Some(FailureStage::Analysis(AnalysisKind::Faces))
        )
    );
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 0);
    // Redelivered: announced again, the counter is not released twice.
    results_handler::on_completion(&kit.ctx, &c).await.unwrap();
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 0);
    assert_eq!(kit.bus.detail_types(), ["Asset Failed", "Asset Failed"]);
    assert_eq!(kit.bus.published()[0].1["stage"], "analysis:faces");
}

#[tokio::test]
async fn stale_early_and_racing_completions() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    // A job this asset does not own: ignored.
    results_handler::on_completion(
        &kit.ctx,
        &completion(&a, AnalysisKind::Labels, "old-job", "SUCCEEDED"),
    )
    .await
    .unwrap();
    assert_eq!(kit.asset(&a.id).version, a.version);
    // A lost race: re-read and re-applied in the same delivery.
    let c = completion(&a, AnalysisKind::Labels, "labels-job", "SUCCEEDED");
    kit.store.lose_next_race();
    results_handler::on_completion(&kit.ctx, &c).await.unwrap();
    assert_eq!(kit.ctx.races.reapplied.load(Ordering::SeqCst), 1);
    assert_eq!(
        kit.asset(&a.id).analyses[&AnalysisKind::Labels].status,
        JobStatus::Succeeded
    );
    // A completion before the analyses were recorded: retried.
    let kit = Kit::new();
    let early = asset_at(&kit, &obj, AssetState::MediaPrepared);
    transient(
        results_handler::on_completion(
            &kit.ctx,
            &completion(&early, AnalysisKind::Labels, "labels-job", "SUCCEEDED"),
        )
        .await,
    );
}

// ----------------------------------------------------------------------------------------------
// scoring

fn analysed_event(a: &Asset) -> PipelineEvent {
    PipelineEvent::new(a.id.clone(), PipelineDetail::AnalysesCompleted)
}

#[tokio::test]
async fn an_analysed_asset_is_scored_once_and_completed() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysed);
    scoring::on_analyses_completed(&kit.ctx, &analysed_event(&a))
        .await
        .unwrap();
    let done = kit.asset(&a.id);
    assert_eq!(done.state, AssetState::Scored);
    let vmap = done.results.vmap.clone().unwrap();
    assert!(String::from_utf8(kit.blobs.read(&vmap).unwrap())
        .unwrap()
        .contains("vmap:VMAP"));
    assert!(kit
        .blobs
        .read(&kit.ctx.result_uri(&a.id, results::SLOTS))
        .is_some());
    assert!(kit
        .blobs
        .read(&kit.ctx.result_uri(&a.id, results::ASSET))
        .is_some());

    scoring::on_analyses_completed(&kit.ctx, &analysed_event(&a))
        .await
        .unwrap();
    assert_eq!(
        kit.asset(&a.id).version,
        done.version,
        "a redelivery does not score again"
    );
    assert_eq!(kit.bus.detail_types(), ["Breaks Chosen", "Breaks Chosen"]);
}

// ----------------------------------------------------------------------------------------------
// packaging

/// An asset scored with breaks at `times` (VMAP written).
fn scored_at(kit: &Kit, obj: &ObjectCreated, times: &[f64]) -> Asset {
    let a = asset_at(kit, obj, AssetState::Analysed);
    let a = apply(
        &a,
        AssetEvent::Scored {
            breaks: times
                .iter()
                .map(|t| cuepoint_core::asset::BreakSummary {
                    timestamp: *t,
                    score: 0.9,
                    reasons: vec!["ShotChange".into()],
                })
                .collect(),
            vmap: kit.ctx.result_uri(&id_of(obj), results::VMAP),
        },
    );
    kit.put_asset(&a);
    a
}

fn breaks_chosen(a: &Asset) -> PipelineEvent {
    PipelineEvent::new(
        a.id.clone(),
        PipelineDetail::BreaksChosen {
            version: a.vmap_version(),
            vmap: a.results.vmap.clone().unwrap(),
            breaks: a.breaks.len(),
        },
    )
}

fn packaging_change(kit: &Kit, id: &AssetId, job_id: &str, state: JobState) -> JobStateChange {
    let mut c = job_change(kit, id, job_id, state);
    c.user_metadata.insert(
        "workflow".into(),
        cuepoint_core::mediaconvert::packaging_workflow(&kit.ctx.settings.workflow),
    );
    c
}

#[tokio::test]
async fn chosen_breaks_are_packaged_once_and_the_asset_completes_on_the_jobs_event() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = scored_at(&kit, &obj, &[4.4, 8.0]);
    packaging::on_breaks_chosen(&kit.ctx, &breaks_chosen(&a))
        .await
        .unwrap();
    let p = kit.asset(&a.id);
    assert_eq!(p.state, AssetState::Packaging);
    let job = p.packaging.clone().unwrap();
    assert_eq!(job.client_token, format!("{}-package-v1", a.id));
    {
        let submitted = kit.transcoder.submitted.lock().unwrap();
        assert_eq!(submitted.len(), 1);
        let r = &submitted[0];
        assert_eq!(r.user_metadata["workflow"], "cuepoint-packaging");
        let plan = cuepoint_core::mediaconvert::PackagingPlan::from_settings(&r.settings).unwrap();
        assert_eq!(plan.breaks, vec![4.4, 8.0]);
        // a 320x180 source: one rung at its own size
        assert_eq!(
            plan.renditions
                .iter()
                .map(|r| (r.width, r.height))
                .collect::<Vec<_>>(),
            [(320, 180)]
        );
    }
    // Redelivered: no second job, no second write.
    packaging::on_breaks_chosen(&kit.ctx, &breaks_chosen(&a))
        .await
        .unwrap();
    assert_eq!(kit.transcoder.submitted.lock().unwrap().len(), 1);
    assert_eq!(kit.asset(&a.id).version, p.version);
    // The first job's events are not the packaging worker's.
    packaging::on_job_state_change(
        &kit.ctx,
        &job_change(&kit, &a.id, &job.job_id, JobState::Complete),
    )
    .await
    .unwrap();
    assert_eq!(kit.asset(&a.id).state, AssetState::Packaging);

    let done = packaging_change(&kit, &a.id, &job.job_id, JobState::Complete);
    packaging::on_job_state_change(&kit.ctx, &done)
        .await
        .unwrap();
    let c = kit.asset(&a.id);
    assert_eq!(c.state, AssetState::Complete);
    assert_eq!(
        c.results.hls_master,
        Some(kit.ctx.result_uri(&a.id, results::HLS_MASTER))
    );
    packaging::on_job_state_change(&kit.ctx, &done)
        .await
        .unwrap();
    assert_eq!(kit.asset(&a.id).version, c.version, "redelivered COMPLETE");
    assert_eq!(
        kit.bus.detail_types(),
        ["Asset Completed", "Asset Completed"]
    );
}

#[tokio::test]
async fn a_failed_packaging_job_fails_the_asset_at_packaging_and_early_events_wait() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let early = asset_at(&kit, &obj, AssetState::Analysed);
    let ev = PipelineEvent::new(
        early.id.clone(),
        PipelineDetail::BreaksChosen {
            version: 1,
            vmap: kit.ctx.result_uri(&early.id, results::VMAP),
            breaks: 0,
        },
    );
    transient(packaging::on_breaks_chosen(&kit.ctx, &ev).await);

    let a = scored_at(&kit, &obj, &[4.0]);
    packaging::on_breaks_chosen(&kit.ctx, &breaks_chosen(&a))
        .await
        .unwrap();
    let job = kit.asset(&a.id).packaging.unwrap();
    // Another job's ERROR: ignored.
    packaging::on_job_state_change(
        &kit.ctx,
        &packaging_change(&kit, &a.id, "other", JobState::Error),
    )
    .await
    .unwrap();
    assert_eq!(kit.asset(&a.id).state, AssetState::Packaging);
    packaging::on_job_state_change(
        &kit.ctx,
        &packaging_change(&kit, &a.id, &job.job_id, JobState::Error),
    )
    .await
    .unwrap();
    assert_eq!(
        failure_of(&kit, &a.id),
        (AssetState::Failed, Some(FailureStage::Packaging))
    );
    assert_eq!(kit.bus.detail_types(), ["Asset Failed"]);
}

#[tokio::test]
async fn an_edit_packages_the_new_breaks_under_a_new_token() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = scored_at(&kit, &obj, &[4.0]);
    packaging::on_breaks_chosen(&kit.ctx, &breaks_chosen(&a))
        .await
        .unwrap();
    let job = kit.asset(&a.id).packaging.unwrap();
    packaging::on_job_state_change(
        &kit.ctx,
        &packaging_change(&kit, &a.id, &job.job_id, JobState::Complete),
    )
    .await
    .unwrap();
    let done = kit.asset(&a.id);
    let edit = cuepoint_core::asset::BreakEdit {
        version: 2,
        at_ms: 1,
        by: "ed".into(),
        summary: "moved".into(),
        breaks: vec![cuepoint_core::asset::BreakSummary {
            timestamp: 6.0,
            score: 0.0,
            reasons: vec!["Editor".into()],
        }],
        vmap: kit.ctx.result_uri(&a.id, "vmap/v2.vmap"),
    };
    let edited = apply(&done, AssetEvent::BreaksEdited { edit });
    assert_eq!(edited.state, AssetState::Scored);
    kit.put_asset(&edited);
    let ev = PipelineEvent::new(
        a.id.clone(),
        PipelineDetail::BreaksEdited {
            version: 2,
            vmap: kit.ctx.result_uri(&a.id, results::VMAP),
            breaks: 1,
            editor: "ed".into(),
        },
    );
    packaging::on_breaks_chosen(&kit.ctx, &ev).await.unwrap();
    let p = kit.asset(&a.id);
    assert_eq!(p.state, AssetState::Packaging);
    let second = p.packaging.clone().unwrap();
    assert_eq!(second.client_token, format!("{}-package-v2", a.id));
    assert_ne!(second.job_id, job.job_id);
    {
        let submitted = kit.transcoder.submitted.lock().unwrap();
        let plan =
            cuepoint_core::mediaconvert::PackagingPlan::from_settings(&submitted[1].settings)
                .unwrap();
        assert_eq!(plan.breaks, vec![6.0]);
    }
    // The old job's COMPLETE, late: nothing moves.
    packaging::on_job_state_change(
        &kit.ctx,
        &packaging_change(&kit, &a.id, &job.job_id, JobState::Complete),
    )
    .await
    .unwrap();
    assert_eq!(kit.asset(&a.id).state, AssetState::Packaging);
    packaging::on_job_state_change(
        &kit.ctx,
        &packaging_change(&kit, &a.id, &second.job_id, JobState::Complete),
    )
    .await
    .unwrap();
    assert_eq!(kit.asset(&a.id).state, AssetState::Complete);
    // Each packaging completes the asset with an event of its own: a bus that drops repeated
    // ids must not drop the edit's completion.
    let completions: Vec<_> = kit
        .bus
        .published()
        .into_iter()
        .filter(|(t, _)| t == "Asset Completed")
        .map(|(_, d)| {
            (
                d["eventId"].as_str().unwrap().to_string(),
                d["version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        completions,
        [
            (format!("{}:asset-completed", a.id), serde_json::json!(1)),
            (format!("{}:asset-completed-v2", a.id), serde_json::json!(2)),
        ]
    );
}

#[tokio::test]
async fn unreadable_results_fail_at_scoring_and_early_events_wait() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysed);
    kit.blobs.insert(
        &kit.ctx.result_uri(&a.id, results::SEGMENTS),
        b"{not json".to_vec(),
    );
    scoring::on_analyses_completed(&kit.ctx, &analysed_event(&a))
        .await
        .unwrap();
    assert_eq!(
        failure_of(&kit, &a.id),
        (AssetState::Failed, Some(FailureStage::Scoring))
    );
    scoring::on_analyses_completed(&kit.ctx, &analysed_event(&a))
        .await
        .unwrap();
    assert_eq!(kit.bus.detail_types(), ["Asset Failed", "Asset Failed"]);

    let kit = Kit::new();
    let early = asset_at(&kit, &obj, AssetState::Analysing);
    transient(scoring::on_analyses_completed(&kit.ctx, &analysed_event(&early)).await);
}

// ----------------------------------------------------------------------------------------------
// re-drive (`cuepoint retry`)

use crate::redrive::{retry, RetryError, RetryOutcome};

const DISK_FULL: &str =
    "infrastructure fault (transient; retried 12 times): av_interleaved_write_frame(): No space left on device";

#[tokio::test]
async fn a_packaging_job_failed_by_a_full_disk_is_re_driven_from_scored_with_a_new_token() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = scored_at(&kit, &obj, &[4.0]);
    packaging::on_breaks_chosen(&kit.ctx, &breaks_chosen(&a))
        .await
        .unwrap();
    let job = kit.asset(&a.id).packaging.unwrap();
    let error = JobStateChange {
        error_code: Some(1999),
        error_message: Some(DISK_FULL.into()),
        ..packaging_change(&kit, &a.id, &job.job_id, JobState::Error)
    };
    packaging::on_job_state_change(&kit.ctx, &error)
        .await
        .unwrap();
    let f = kit.asset(&a.id).failure.unwrap();
    assert_eq!(
        (f.stage, f.kind),
        (
            FailureStage::Packaging,
            cuepoint_core::asset::FailureKind::Transient
        )
    );
    let RetryOutcome::Redriven {
        asset, announced, ..
    } = retry(&kit.ctx, &a.id, None).await.unwrap()
    else {
        panic!("expected a re-drive")
    };
    assert_eq!((asset.state, asset.retries), (AssetState::Scored, 1));
    assert_eq!(announced, "Breaks Chosen");
    // The re-announced breaks are packaged under the attempt's token, in a new job.
    packaging::on_breaks_chosen(&kit.ctx, &breaks_chosen(&asset))
        .await
        .unwrap();
    let p = kit.asset(&a.id);
    assert_eq!(p.state, AssetState::Packaging);
    let second = p.packaging.unwrap();
    assert_eq!(second.client_token, format!("{}-package-v1-r1", a.id));
    assert_ne!(second.job_id, job.job_id);
    // The failed job's ERROR, delivered again: the new attempt is not failed by it.
    packaging::on_job_state_change(&kit.ctx, &error)
        .await
        .unwrap();
    assert_eq!(kit.asset(&a.id).state, AssetState::Packaging);
}

#[tokio::test]
async fn a_transcode_failed_by_a_full_disk_is_re_driven_once_with_a_new_job() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Transcoding);
    let error = JobStateChange {
        error_code: Some(1999),
        error_message: Some(DISK_FULL.into()),
        ..job_change(&kit, &a.id, "mc-1", JobState::Error)
    };
    media::on_job_state_change(&kit.ctx, &error).await.unwrap();
    let failed = kit.asset(&a.id);
    let f = failed.failure.clone().unwrap();
    assert_eq!(
        (f.stage, f.kind),
        (
            FailureStage::Transcode,
            cuepoint_core::asset::FailureKind::Transient
        )
    );

    let RetryOutcome::Redriven {
        asset, announced, ..
    } = retry(&kit.ctx, &a.id, None).await.unwrap()
    else {
        panic!("expected a re-drive")
    };
    assert_eq!((asset.state, asset.retries), (AssetState::Registered, 1));
    assert_eq!(announced, "Object Created");
    assert_eq!(
        kit.bus.detail_types(),
        ["Asset Failed", "Object Created"],
        "the upload is announced again for the ingest worker"
    );
    // A second request (or one that read the record before this one wrote it) starts nothing.
    let again = retry(&kit.ctx, &a.id, None).await.unwrap();
    assert!(matches!(again, RetryOutcome::NotFailed { ref asset } if asset.retries == 1));
    assert_eq!(kit.bus.detail_types().len(), 2);

    // The ingest worker submits a new job under the attempt's token; the failed job that
    // `find_job` still finds is not adopted.
    *kit.transcoder.existing.lock().unwrap() = Some("mc-1".into());
    // The first attempt's request, so that the stub names the next job mc-2.
    let first = cuepoint_runtime::ports::TranscodeRequest {
        asset_id: a.id.clone(),
        client_token: format!("{}-transcode", a.id),
        settings: serde_json::json!({}),
        user_metadata: BTreeMap::new(),
    };
    kit.transcoder.submitted.lock().unwrap().push(first);
    ingest::on_object_created(&kit.ctx, &obj).await.unwrap();
    let t = kit.asset(&a.id);
    assert_eq!(t.state, AssetState::Transcoding);
    assert_eq!(t.transcode.as_ref().unwrap().job_id, "mc-2");
    let submitted = kit.transcoder.submitted.lock().unwrap().clone();
    assert_eq!(
        submitted.last().unwrap().client_token,
        format!("{}-transcode-r1", a.id)
    );
    let (dt, detail) = kit.bus.published().pop().unwrap();
    assert_eq!(dt, "Transcode Submitted");
    assert_eq!(
        detail["eventId"],
        format!("{}:transcode-submitted-r1", a.id),
        "the attempt's announcement is not a copy of the first one's"
    );
    // The failed job's ERROR delivered again changes nothing.
    media::on_job_state_change(&kit.ctx, &error).await.unwrap();
    assert_eq!(kit.asset(&a.id).state, AssetState::Transcoding);
}

#[tokio::test]
async fn an_analysis_failed_by_a_missing_tool_restarts_every_analysis_under_new_names() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysing);
    *kit.analyzer.failed_with.lock().unwrap() = Some(
        "infrastructure fault: ffprobe was not found (CUEPOINT_FFPROBE=/x is not an executable file)"
            .into(),
    );
    let c = completion(&a, AnalysisKind::Segments, "segments-job", "FAILED");
    results_handler::on_completion(&kit.ctx, &c).await.unwrap();
    let f = kit.asset(&a.id).failure.unwrap();
    assert!(f.reason.contains("ffprobe was not found"), "{}", f.reason);
    assert_eq!(f.kind, cuepoint_core::asset::FailureKind::Transient);
    assert_eq!(kit.store.counters.lock().unwrap()[OPEN_JOBS_COUNTER], 0);
    *kit.analyzer.failed_with.lock().unwrap() = None;

    // A lost conditional write re-reads and decides again: one re-drive, one announcement.
    kit.store.lose_next_race();
    let out = retry(&kit.ctx, &a.id, None).await.unwrap();
    let RetryOutcome::Redriven { asset, .. } = out else {
        panic!("expected a re-drive, got {out:?}")
    };
    assert_eq!(asset.state, AssetState::MediaPrepared);
    assert!(asset.analyses.is_empty());
    let (dt, detail) = kit.bus.published().pop().unwrap();
    assert_eq!(dt, "Media Prepared");
    assert_eq!(detail["eventId"], format!("{}:media-prepared-r1", a.id));

    let prepared = PipelineEvent::about(
        &asset,
        PipelineDetail::MediaPrepared {
            proxy: asset.results.proxy.clone().unwrap(),
        },
    );
    analysis::on_media_prepared(&kit.ctx, &prepared)
        .await
        .unwrap();
    let started = kit.analyzer.started.lock().unwrap().clone();
    assert_eq!(started.len(), AnalysisKind::VIDEO.len());
    for r in &started {
        assert_eq!(r.client_token, format!("{}-{}-r1", a.id, r.kind));
    }
    let names: Vec<String> = kit
        .transcriber
        .started
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.job_name.clone())
        .collect();
    assert!(
        names.iter().all(|n| n.ends_with(".r1")),
        "a transcription name is never reused: {names:?}"
    );
    assert_eq!(kit.asset(&a.id).state, AssetState::Analysing);
    // The re-drive delivered again starts nothing.
    analysis::on_media_prepared(&kit.ctx, &prepared)
        .await
        .unwrap();
    assert_eq!(
        kit.analyzer.started.lock().unwrap().len(),
        AnalysisKind::VIDEO.len()
    );
}

#[tokio::test]
async fn a_permanent_failure_and_an_unknown_asset_are_refused_with_the_cause() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Transcoding);
    let error = job_change(&kit, &a.id, "mc-1", JobState::Error);
    media::on_job_state_change(&kit.ctx, &error).await.unwrap();
    let published = kit.bus.published().len();
    let err = retry(&kit.ctx, &a.id, None).await.unwrap_err();
    assert!(matches!(err, RetryError::Refused(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("bad input") && text.contains("permanent") && text.contains("transcode"),
        "{text}"
    );
    assert_eq!(kit.asset(&a.id).state, AssetState::Failed);
    assert_eq!(kit.bus.published().len(), published, "nothing announced");

    let nobody = AssetId::parse("a00000000000000000000").unwrap();
    let err = retry(&kit.ctx, &nobody, None).await.unwrap_err();
    assert!(matches!(err, RetryError::UnknownAsset(_)), "{err:?}");
    assert_eq!(err.to_string(), "no asset a00000000000000000000");
}

#[tokio::test]
async fn a_scoring_failure_from_a_locked_database_is_scored_again() {
    let kit = Kit::new();
    let obj = upload(&kit, "uploads/a.mov");
    let a = asset_at(&kit, &obj, AssetState::Analysed);
    crate::flow::fail(
        &kit.ctx,
        &a,
        FailureStage::Scoring,
        "writing the VMAP: database is locked".into(),
    )
    .await
    .unwrap();
    let RetryOutcome::Redriven {
        asset, announced, ..
    } = retry(&kit.ctx, &a.id, None).await.unwrap()
    else {
        panic!("expected a re-drive")
    };
    assert_eq!(
        (asset.state, announced),
        (AssetState::Analysed, "Analyses Completed")
    );
    let (_, detail) = kit.bus.published().pop().unwrap();
    assert_eq!(detail["eventId"], format!("{}:analyses-completed-r1", a.id));
}
