//! Bad input, one test each, on the real embedded pipeline with real FFmpeg: each bad input
//! either fails its asset with the cause recorded, or lands in a dead-letter queue with its
//! reason, and a good asset ingested alongside still completes. docs/bad-input.md is the table
//! of what each case does (run with `--nocapture` to see the `BAD-INPUT |` lines it was
//! filled from).

#[path = "bad_input/harness.rs"]
mod harness;
#[path = "bad_input/media.rs"]
mod media;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cuepoint_core::asset::AssetState;
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey};
use cuepoint_core::events::mediaconvert::{job_state_change_entry, JobState, JobStateChange};
use cuepoint_core::events::rekognition::{completion_message, VideoJobCompletion};
use cuepoint_core::events::s3::ObjectCreated;
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_core::loudness::{AudioLayout, LoudnessLog};
use cuepoint_core::mediaconvert::{build_job_settings, JobPlan};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_engine::sample::{generate_sample, SampleSpec};
use harness::{assert_good_completed, good_clip, ingest_good, Pipeline};
use serde_json::json;

/// One line of the table in docs/bad-input.md.
fn observed(case: &str, outcome: &str) {
    eprintln!("BAD-INPUT | {case} | {outcome}");
}

fn dead_letters(expected: &[(&str, u64)]) -> BTreeMap<String, u64> {
    expected.iter().map(|(q, n)| (q.to_string(), *n)).collect()
}

/// After the bad input: the good asset completed, the dead-letter queues hold exactly what the
/// test expects, and nothing is left retrying.
async fn assert_others_unaffected(p: &Pipeline, good: &AssetId, expected_dead: &[(&str, u64)]) {
    assert_good_completed(p, good).await;
    assert_eq!(
        p.dead_letter_counts().await,
        dead_letters(expected_dead),
        "dead-letter queues"
    );
    p.assert_queues_drained().await;
}

/// Ingest a bad file next to the good clip; it must fail at `stage`. Returns the reason.
async fn bad_file_fails(case: &str, file: &Path, key: &str, stage: &str) -> String {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let bad = p.ingest(file, key).await;
    let (got_stage, reason) = p.wait_failed(&bad).await;
    observed(case, &format!("FAILED at {got_stage}: {reason}"));
    assert_eq!(got_stage, stage, "{reason}");
    assert!(
        reason.contains(key),
        "the reason names the upload: {reason}"
    );
    // The failure is announced and written next to the results, like a success would be.
    // (written just after the record is committed: wait for it)
    let record = p
        .backend
        .ctx
        .result_uri(&bad, cuepoint_core::results::ASSET);
    let started = std::time::Instant::now();
    let saved = loop {
        if let Some(json) = p.backend.ctx.ports.blobs.get(&record).await.unwrap() {
            break serde_json::from_slice::<serde_json::Value>(&json).unwrap();
        }
        assert!(
            started.elapsed() < harness::WAIT,
            "no asset.json for the failed asset"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(saved["state"], "FAILED");
    assert_eq!(saved["failure"]["reason"], reason.as_str());
    assert_others_unaffected(&p, &good, &[]).await;
    p.stop().await;
    reason
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Media

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_byte_file_fails_at_probe() {
    let dir = scratch();
    let empty = dir.path().join("empty.mov");
    std::fs::write(&empty, b"").unwrap();
    let reason = bad_file_fails(
        "zero-byte file (empty.mov)",
        &empty,
        "uploads/empty.mov",
        "probe",
    )
    .await;
    assert!(
        reason.contains("Invalid data found when processing input"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_half_of_a_mov_fails_at_probe() {
    // The sample is QuickTime as cameras write it, moov at the end: half the file has no index.
    let dir = scratch();
    let full = dir.path().join("full.mov");
    generate_sample(&full, &harness::good_spec()).await.unwrap();
    let half = media::first_half(&full, &dir.path().join("half.mov"));
    let reason = bad_file_fails(
        "first half of a MOV (moov at the end)",
        &half,
        "uploads/half.mov",
        "probe",
    )
    .await;
    assert!(reason.contains("moov atom not found"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_half_of_a_faststart_mp4_fails_at_transcode() {
    // moov first: the header promises 6 s, the data stops after about 3 s.
    let dir = scratch();
    let full = media::faststart_mp4(dir.path(), 6);
    let half = media::first_half(&full, &dir.path().join("half.mp4"));
    let reason = bad_file_fails(
        "first half of a +faststart MP4 (moov first)",
        &half,
        "uploads/half.mp4",
        "transcode",
    )
    .await;
    assert!(reason.contains("ended early"), "{reason}");
    assert!(reason.contains("6.00 s its header announces"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_half_of_a_short_faststart_mp4_is_not_accepted() {
    let dir = scratch();
    let full = media::faststart_mp4(dir.path(), 3);
    let half = media::first_half(&full, &dir.path().join("half-3s.mp4"));
    let reason = bad_file_fails(
        "first half of a 3 s +faststart MP4",
        &half,
        "uploads/half-3s.mp4",
        "transcode",
    )
    .await;
    assert!(reason.contains("ended early"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_named_mp4_fail_at_probe() {
    let dir = scratch();
    let junk = media::garbage(&dir.path().join("junk.mp4"), 64 * 1024);
    let reason = bad_file_fails(
        "64 KiB of random bytes named .mp4",
        &junk,
        "uploads/junk.mp4",
        "probe",
    )
    .await;
    assert!(
        reason.contains("Invalid data found when processing input"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_files_fail_at_probe() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let wav = media::wav(p.root.path());
    let m4a = media::m4a(p.root.path());
    let bad_wav = p.ingest(&wav, "uploads/tone.wav").await;
    let bad_m4a = p.ingest(&m4a, "uploads/tone.m4a").await;
    for (case, id, key) in [
        ("audio only: WAV", &bad_wav, "tone.wav"),
        ("audio only: M4A (AAC)", &bad_m4a, "tone.m4a"),
    ] {
        let (stage, reason) = p.wait_failed(id).await;
        observed(case, &format!("FAILED at {stage}: {reason}"));
        assert_eq!(stage, "probe");
        assert!(
            reason.contains(key) && reason.contains("no video stream"),
            "{reason}"
        );
    }
    assert_others_unaffected(&p, &good, &[]).await;
    p.stop().await;
}

/// A clip without audio completes: no loudness logs, layout "none", every analysis run.
async fn completes_without_audio(case: &str, file: &Path, key: &str) {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let id = p.ingest(file, key).await;
    let a = p.wait_terminal(&id).await;
    observed(
        case,
        &format!(
            "{} (failure: {:?}; audio: {:?})",
            a.state, a.failure, a.audio
        ),
    );
    assert_eq!(a.state, AssetState::Complete, "{:?}", a.failure);
    assert!(a.probe.as_ref().unwrap().audio_tracks.is_empty());
    let audio = a.audio.as_ref().expect("audio verdicts");
    assert_eq!((audio.audiocount, audio.layout), (0, AudioLayout::NoAudio));
    assert!(audio.loudnessmap.is_empty() && audio.maxloudness.is_empty());
    let blobs = &p.backend.ctx.ports.blobs;
    let listed = blobs
        .list(&a.results.prefix.join("loudness/").unwrap())
        .await
        .unwrap();
    assert!(
        listed.is_empty(),
        "no loudness logs for a clip without audio: {listed:?}"
    );
    let audio_json = blobs
        .get(&a.results.prefix.join("audio.json").unwrap())
        .await
        .unwrap()
        .expect("audio.json");
    let audio_json: serde_json::Value = serde_json::from_slice(&audio_json).unwrap();
    assert_eq!(audio_json["layout"], "none");
    assert!(a.results.vmap.is_some() && a.results.hls_master.is_some());
    assert_others_unaffected(&p, &good, &[]).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_only_mov_completes_with_layout_none() {
    let dir = scratch();
    let clip = dir.path().join("video-only.mov");
    let spec = SampleSpec {
        track_count: 0,
        active_tracks: vec![],
        ..harness::good_spec()
    };
    generate_sample(&clip, &spec).await.unwrap();
    completes_without_audio(
        "video only (MOV, no audio stream)",
        &clip,
        "uploads/video-only.mov",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkv_with_video_and_subtitles_but_no_audio_completes_with_layout_none() {
    let dir = scratch();
    let clip = media::mkv_video_and_subtitles(dir.path());
    completes_without_audio(
        "no audio tracks (MKV: video + subtitle stream)",
        &clip,
        "uploads/video+subs.mkv",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mono_tracks_complete_with_64_verdicts() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let clip = p.path("64-tracks.mov");
    let active = vec![1, 2, 33, 64];
    let spec = SampleSpec {
        duration: 3.0,
        track_count: 64,
        active_tracks: active.clone(),
        cuts: vec![1.0],
        black_gaps: vec![],
        ..harness::good_spec()
    };
    generate_sample(&clip, &spec).await.unwrap();
    let id = p.ingest(&clip, "uploads/64-tracks.mov").await;
    let a = p.wait_terminal(&id).await;
    assert_eq!(a.state, AssetState::Complete, "{:?}", a.failure);
    assert_eq!(a.probe.as_ref().unwrap().audio_tracks.len(), 64);
    let audio = a.audio.as_ref().unwrap();
    observed(
        "64 mono audio tracks (4 with tone)",
        &format!(
            "{}: audiocount {}, layout {:?}, active {:?}",
            a.state,
            audio.audiocount,
            audio.layout,
            audio.active_tracks()
        ),
    );
    assert_eq!(audio.audiocount, 64);
    let expected: Vec<u8> = (1..=64).map(|t| u8::from(active.contains(&t))).collect();
    assert_eq!(audio.loudnessmap, expected);
    assert_eq!(audio.maxloudness.len(), 64);
    let blobs = &p.backend.ctx.ports.blobs;
    let logs = blobs
        .list(&a.results.prefix.join("loudness/").unwrap())
        .await
        .unwrap();
    assert_eq!(logs.len(), 64, "one loudness log per track: {logs:?}");
    for t in [1, 32, 64] {
        let uri = a
            .results
            .prefix
            .join(&format!("loudness/track-{t}.csv"))
            .unwrap();
        assert!(logs.contains(&uri), "missing {uri}");
    }
    assert_others_unaffected(&p, &good, &[]).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_stream_with_an_unknown_codec_fails_clearly() {
    let dir = scratch();
    let mov = media::mov_unknown_video_codec(dir.path());
    let reason = bad_file_fails(
        "video stream with an unknown codec tag (zzzz in place of avc1)",
        &mov,
        "uploads/unknown-codec.mov",
        "transcode",
    )
    .await;
    assert!(
        reason.contains("Decoder (codec none) not found"),
        "the reason says nothing can decode it: {reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtitle_only_file_fails_at_probe() {
    let dir = scratch();
    let mkv = media::mkv_subtitles_only(dir.path());
    let reason = bad_file_fails(
        "subtitle stream only (MKV)",
        &mkv,
        "uploads/subs-only.mkv",
        "probe",
    )
    .await;
    assert!(reason.contains("no audio or video stream"), "{reason}");
}

// ---------------------------------------------------------------------------------------------
// Messages

const QUEUES: [(&str, u64); 5] = [
    ("ingest", 5),
    ("media", 5),
    ("analysis", 8),
    ("results", 5),
    ("scoring", 5),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_on_every_queue_is_dead_lettered() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    for (q, _) in QUEUES {
        p.send_raw(
            q,
            &format!("{{\"Records\": [{{\"marker\": \"truncated-{q}\""),
        )
        .await;
    }
    for (q, max_receives) in QUEUES {
        let d = p.wait_dead_letter(q, &format!("truncated-{q}")).await;
        let reason = d.reason.clone().unwrap_or_default();
        observed(
            &format!("malformed JSON on the {q} queue"),
            &format!("DLQ {q} after {} receives: {reason}", d.receive_count),
        );
        assert_eq!(
            d.receive_count, max_receives as u32,
            "maxReceiveCount of {q}"
        );
        assert!(
            reason.starts_with(&format!(
                "malformed message on queue {q}: message body is not JSON"
            )),
            "{reason}"
        );
        assert!(reason.contains("EOF while parsing"), "{reason}");
    }
    let all: Vec<(&str, u64)> = QUEUES.iter().map(|(q, _)| (*q, 1)).collect();
    assert_others_unaffected(&p, &good, &all).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_misrouted_events_are_dead_lettered() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let ec2 = json!({
        "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": "000000000000", "time": "2026-11-22T05:00:00Z", "region": "local",
        "resources": [], "detail": {"instance-id": "i-abcd1111", "state": "pending"}
    });
    p.send_raw("ingest", &ec2.to_string()).await;
    p.send_raw(
        "results",
        r#"{"hello": "world", "marker": "unknown-shape"}"#,
    )
    .await;
    let pipeline_unknown = json!({
        "version": "0", "id": "1", "detail-type": "Asset Exploded", "source": "cuepoint.pipeline",
        "account": "000000000000", "time": "2026-11-22T05:00:00Z", "region": "local", "resources": [],
        "detail": {"eventId": "unknown-detail-type", "assetId": "a00000000000000000000"}
    });
    p.send_raw("analysis", &pipeline_unknown.to_string()).await;
    // A real S3 event, on the wrong queue.
    let created = ObjectCreated::new(
        BucketName::parse("cuepoint-ingest").unwrap(),
        ObjectKey::parse("uploads/misrouted.mov").unwrap(),
    );
    let entry = cuepoint_core::events::s3::object_created_entry(&created, None);
    let envelope = entry
        .into_envelope(
            "misrouted-1".into(),
            "000000000000",
            "local",
            "2026-11-22T05:00:00Z".into(),
        )
        .unwrap();
    p.send_raw("scoring", &serde_json::to_string(&envelope).unwrap())
        .await;

    let cases = [
        (
            "unknown event type (aws.ec2) on the ingest queue",
            "ingest",
            "i-abcd1111",
            "unrecognised event shape: EventBridge event with source \"aws.ec2\"",
        ),
        (
            "JSON of no known shape on the results queue",
            "results",
            "unknown-shape",
            "unrecognised event shape: JSON object with keys [hello, marker]",
        ),
        (
            "pipeline event with an unknown detail-type on the analysis queue",
            "analysis",
            "unknown-detail-type",
            "invalid pipeline event",
        ),
        (
            "S3 Object Created on the scoring queue",
            "scoring",
            "misrouted.mov",
            "unexpected event on the scoring queue: S3 Object Created s3://cuepoint-ingest/uploads/misrouted.mov",
        ),
    ];
    for (case, q, marker, needle) in cases {
        let d = p.wait_dead_letter(q, marker).await;
        let reason = d.reason.unwrap_or_default();
        observed(case, &format!("DLQ {q}: {reason}"));
        assert!(reason.contains(needle), "{case}: {reason}");
    }
    // On the bus, an event no rule matches goes nowhere (as on EventBridge).
    let bus = p.backend.embedded.as_ref().unwrap().event_bus();
    let before = bus.unrouted_count();
    let stray = cuepoint_core::events::envelope::PutEventsEntry {
        source: "aws.ec2".into(),
        detail_type: "EC2 Instance State-change Notification".into(),
        detail: json!({"instance-id": "i-abcd2222"}).to_string(),
        resources: vec![],
        time_ms: None,
    };
    p.put(stray).await;
    assert_eq!(bus.unrouted_count(), before + 1);
    observed(
        "unknown event type put on the bus",
        "not routed to any queue (counted as unrouted)",
    );
    assert_others_unaffected(
        &p,
        &good,
        &[
            ("ingest", 1),
            ("results", 1),
            ("analysis", 1),
            ("scoring", 1),
        ],
    )
    .await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_unknown_assets_are_dead_lettered() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let ghost = AssetId::parse("a0000000000000000dead").unwrap();
    let ghost2 = AssetId::parse("a0000000000000000beef").unwrap();
    let proxy = p.backend.ctx.result_uri(&ghost, "proxy/proxy.mp4");
    p.put(
        PipelineEvent::new(ghost.clone(), PipelineDetail::MediaPrepared { proxy }).to_entry(None),
    )
    .await;
    p.put(PipelineEvent::new(ghost2.clone(), PipelineDetail::AnalysesCompleted).to_entry(None))
        .await;
    let mut meta = BTreeMap::new();
    meta.insert("assetId".to_string(), "a00000000000000000c0de".to_string());
    meta.insert("workflow".to_string(), p.settings.workflow.clone());
    let complete = JobStateChange {
        job_id: "1795325848000-ghost1".into(),
        state: JobState::Complete,
        queue: None,
        user_metadata: meta,
        output_group_details: vec![],
        error_code: None,
        error_message: None,
        timestamp_ms: None,
    };
    p.put(job_state_change_entry(&complete, "000000000000", "local"))
        .await;
    let done = VideoJobCompletion {
        job_id: "ghost-segments-job".into(),
        status: "SUCCEEDED".into(),
        api: AnalysisKind::Segments.start_api().into(),
        job_tag: Some("a0000000000000000f00d".into()),
        timestamp_ms: None,
        video_bucket: Some("cuepoint-output".into()),
        video_key: Some("assets/a0000000000000000f00d/proxy/proxy.mp4".into()),
        sns_message_id: None,
    };
    p.publish_rekognition(&completion_message(&done)).await;
    // S3 announces an object that is gone by the time ingest looks (deleted right after upload).
    p.send_raw(
        "ingest",
        &s3_notification(
            "cuepoint-ingest",
            "uploads/never-uploaded.mov",
            1234,
            "etag-gone",
        ),
    )
    .await;

    let cases = [
        (
            "pipeline Media Prepared for an unknown asset",
            "analysis",
            "a0000000000000000dead",
            8,
        ),
        (
            "pipeline Analyses Completed for an unknown asset",
            "scoring",
            "a0000000000000000beef",
            5,
        ),
        (
            "MediaConvert COMPLETE with an unknown assetId",
            "media",
            "a00000000000000000c0de",
            5,
        ),
        (
            "Rekognition SUCCEEDED for an unknown asset (JobTag)",
            "results",
            "a0000000000000000f00d",
            5,
        ),
    ];
    for (case, q, id, receives) in cases {
        let d = p.wait_dead_letter(q, id).await;
        let reason = d.reason.unwrap_or_default();
        observed(
            case,
            &format!("DLQ {q} after {} receives: {reason}", d.receive_count),
        );
        assert_eq!(d.receive_count, receives);
        assert_eq!(reason, format!("event for unknown asset {id}"), "{case}");
        assert!(
            p.asset(&AssetId::parse(id).unwrap()).await.is_none(),
            "no record is created for {id}"
        );
    }
    let d = p.wait_dead_letter("ingest", "never-uploaded.mov").await;
    let reason = d.reason.unwrap_or_default();
    observed(
        "S3 Object Created for an object that does not exist",
        &format!("DLQ ingest after {} receives: {reason}", d.receive_count),
    );
    assert_eq!(
        reason,
        "source object s3://cuepoint-ingest/uploads/never-uploaded.mov does not exist"
    );
    assert_others_unaffected(
        &p,
        &good,
        &[
            ("analysis", 1),
            ("scoring", 1),
            ("media", 1),
            ("results", 1),
            ("ingest", 1),
        ],
    )
    .await;
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// A service's bad news about a real asset

/// Upload the good clip again under `key` with its service jobs held, announce it, wait for
/// `state`.
async fn held_asset(
    p: &Pipeline,
    clip: &Path,
    key: &str,
    transcode: bool,
    state: AssetState,
) -> cuepoint_core::asset::Asset {
    let created = p.upload(clip, key).await;
    let id = Pipeline::asset_id_of(&created);
    if transcode {
        p.hold_transcode(&id);
    } else {
        p.hold_analyses(&id);
    }
    p.announce(&created).await;
    p.wait_state(&id, state).await
}

fn job_change(p: &Pipeline, id: &AssetId, job_id: &str, state: JobState) -> JobStateChange {
    let mut meta = BTreeMap::new();
    meta.insert("assetId".to_string(), id.to_string());
    meta.insert("workflow".to_string(), p.settings.workflow.clone());
    JobStateChange {
        job_id: job_id.to_string(),
        state,
        queue: None,
        user_metadata: meta,
        output_group_details: vec![],
        error_code: None,
        error_message: None,
        timestamp_ms: Some(p.backend.ctx.now_ms()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediaconvert_error_fails_the_asset_with_code_and_message() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let clip = good_clip(&p).await;
    let a = held_asset(
        &p,
        &clip,
        "uploads/victim.mov",
        true,
        AssetState::Transcoding,
    )
    .await;
    let job_id = a.transcode.as_ref().unwrap().job_id.clone();
    let message = "Unable to open input file [s3://cuepoint-ingest/uploads/victim.mov]: [Failed probe/open: [Failed to read data]]";
    let mut change = job_change(&p, &a.id, &job_id, JobState::Error);
    change.error_code = Some(1040);
    change.error_message = Some(message.into());
    p.put(job_state_change_entry(&change, "000000000000", "local"))
        .await;
    let (stage, reason) = p.wait_failed(&a.id).await;
    observed(
        "MediaConvert ERROR event for a real asset",
        &format!("FAILED at {stage}: {reason}"),
    );
    assert_eq!(stage, "transcode");
    assert_eq!(
        reason,
        format!("MediaConvert job {job_id} failed: error 1040: {message}")
    );
    assert_others_unaffected(&p, &good, &[]).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekognition_failed_notification_fails_the_asset_and_frees_its_jobs() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let clip = good_clip(&p).await;
    let a = held_asset(
        &p,
        &clip,
        "uploads/victim.mov",
        false,
        AssetState::Analysing,
    )
    .await;
    // Every video analysis, and the transcription: the clip has sound.
    assert!(AnalysisKind::VIDEO
        .iter()
        .all(|k| a.analyses.contains_key(k)));
    assert!(a.analyses.contains_key(&AnalysisKind::Transcription));
    assert_eq!(a.analyses.len(), AnalysisKind::VIDEO.len() + 1);
    let job = &a.analyses[&AnalysisKind::Segments];
    let proxy = a.results.proxy.clone().unwrap();
    let failed = VideoJobCompletion {
        job_id: job.job_id.clone(),
        status: "FAILED".into(),
        api: AnalysisKind::Segments.start_api().into(),
        job_tag: Some(a.id.to_string()),
        timestamp_ms: Some(p.backend.ctx.now_ms()),
        video_bucket: Some(proxy.bucket.to_string()),
        video_key: Some(proxy.key.to_string()),
        sns_message_id: None,
    };
    p.publish_rekognition(&completion_message(&failed)).await;
    let (stage, reason) = p.wait_failed(&a.id).await;
    observed(
        "Rekognition FAILED notification for an asset in ANALYSING",
        &format!("FAILED at {stage}: {reason}"),
    );
    assert_eq!(stage, "analysis:segments");
    assert_eq!(
        reason,
        format!(
            "Rekognition StartSegmentDetection job {} ended FAILED",
            job.job_id
        )
    );
    assert_others_unaffected(&p, &good, &[]).await;
    // The failed asset's five open jobs were released with it.
    let open = p
        .backend
        .ctx
        .ports
        .store
        .counter(cuepoint_workers::context::OPEN_JOBS_COUNTER)
        .await
        .unwrap();
    assert_eq!(open, 0, "open Rekognition jobs after both assets finished");
    p.stop().await;
}

/// The loudness-log URI of `track` for the asset, as the media worker derives it.
fn loudness_log_uri(
    p: &Pipeline,
    a: &cuepoint_core::asset::Asset,
    track: u32,
) -> cuepoint_core::domain::S3Uri {
    let tracks = a.probe.as_ref().unwrap().audio_tracks.len() as u32;
    let settings = build_job_settings(
        &p.backend.ctx.job_template,
        &a.source.uri(),
        &p.backend.ctx.results_prefix(&a.id),
        tracks,
    )
    .unwrap();
    JobPlan::from_settings(&settings)
        .unwrap()
        .loudness_log_uri(track, tracks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_or_garbage_loudness_log_fails_the_asset_naming_track_and_line() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let clip = good_clip(&p).await;
    let cut = held_asset(
        &p,
        &clip,
        "uploads/cut-log.mov",
        true,
        AssetState::Transcoding,
    )
    .await;
    let junk = held_asset(
        &p,
        &clip,
        "uploads/junk-log.mov",
        true,
        AssetState::Transcoding,
    )
    .await;
    assert_good_completed(&p, &good).await;

    // A real log, as the engine wrote it for the good asset (same clip, same track layout).
    let blobs = &p.backend.ctx.ports.blobs;
    let good_asset = p.asset(&good).await.unwrap();
    let real = blobs
        .get(
            &good_asset
                .results
                .prefix
                .join("loudness/track-2.csv")
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let real = String::from_utf8(real).unwrap();
    assert!(LoudnessLog::parse(&real).is_ok());

    // cut-log: track 1 intact, track 2 cut in the middle of a measurement row (an upload that
    // stopped early).
    let at = real.len() * 3 / 5;
    let at = (at..real.len())
        .find(|&i| real.is_char_boundary(i) && real.as_bytes()[i] == b',')
        .unwrap()
        + 1;
    let truncated = &real[..at];
    let last_line = truncated.lines().count();
    blobs
        .put(
            &loudness_log_uri(&p, &cut, 1),
            real.clone().into_bytes(),
            "text/csv",
        )
        .await
        .unwrap();
    blobs
        .put(
            &loudness_log_uri(&p, &cut, 2),
            truncated.as_bytes().to_vec(),
            "text/csv",
        )
        .await
        .unwrap();
    // junk-log: track 1 is random bytes, track 2 intact.
    let noise = std::fs::read(media::garbage(&p.path("noise.bin"), 4096)).unwrap();
    let noise_err = LoudnessLog::parse(&String::from_utf8_lossy(&noise)).unwrap_err();
    blobs
        .put(&loudness_log_uri(&p, &junk, 1), noise, "text/csv")
        .await
        .unwrap();
    blobs
        .put(
            &loudness_log_uri(&p, &junk, 2),
            real.clone().into_bytes(),
            "text/csv",
        )
        .await
        .unwrap();

    for a in [&cut, &junk] {
        let job_id = a.transcode.as_ref().unwrap().job_id.clone();
        p.put(job_state_change_entry(
            &job_change(&p, &a.id, &job_id, JobState::Complete),
            "000000000000",
            "local",
        ))
        .await;
    }
    let (stage, reason) = p.wait_failed(&cut.id).await;
    observed(
        "loudness log of track 2 cut mid-row",
        &format!("FAILED at {stage}: {reason}"),
    );
    assert_eq!(stage, "loudness");
    assert!(reason.starts_with("loudness log for track 2 ("), "{reason}");
    assert!(
        reason.contains(&format!("line {last_line}: expected the summary row")),
        "{reason}"
    );
    assert!(reason.contains("looks truncated"), "{reason}");

    let (stage, reason) = p.wait_failed(&junk.id).await;
    observed(
        "loudness log of track 1 is random bytes",
        &format!("FAILED at {stage}: {reason}"),
    );
    assert_eq!(stage, "loudness");
    assert!(reason.starts_with("loudness log for track 1 ("), "{reason}");
    assert!(
        reason.ends_with(&noise_err.to_string()) && reason.contains("line "),
        "{reason}"
    );
    assert_others_unaffected(&p, &good, &[]).await;
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Keys

/// An S3 notification (the `Records` form S3 sends to SQS) with the key exactly as given.
fn s3_notification(bucket: &str, raw_key: &str, size: u64, etag: &str) -> String {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T05:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": raw_key, "size": size, "eTag": etag, "sequencer": "0066A1B2C3D4E5F601"}}
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_spaces_unicode_and_percent_signs_are_decoded() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let clip = p.path("good.mov");
    // (key as stored, key as S3 writes it into the event: form-encoded, space as '+')
    let keys = [
        (
            "uploads/My Show S01E01 (final) + extras.mov",
            "uploads/My+Show+S01E01+%28final%29+%2B+extras.mov",
        ),
        (
            "uploads/café/épisode 1 — 日本語 ☕.mov",
            "uploads/caf%C3%A9/%C3%A9pisode+1+%E2%80%94+%E6%97%A5%E6%9C%AC%E8%AA%9E+%E2%98%95.mov",
        ),
        (
            "uploads/100% done %41 %2F.mov",
            "uploads/100%25+done+%2541+%252F.mov",
        ),
    ];
    let mut ids = Vec::new();
    for (i, (key, encoded)) in keys.iter().enumerate() {
        let created = p.upload(&clip, key).await;
        let id = Pipeline::asset_id_of(&created);
        let etag = created.etag.clone().unwrap();
        if i % 2 == 0 {
            // S3 → SQS directly.
            p.send_raw(
                "ingest",
                &s3_notification("cuepoint-ingest", encoded, created.size.unwrap(), &etag),
            )
            .await;
        } else {
            // S3 → EventBridge → SQS.
            let detail = json!({"version": "0", "bucket": {"name": "cuepoint-ingest"},
                                "object": {"key": encoded, "size": created.size, "etag": etag}, "reason": "PutObject"});
            p.put(cuepoint_core::events::envelope::PutEventsEntry {
                source: "aws.s3".into(),
                detail_type: "Object Created".into(),
                detail: detail.to_string(),
                resources: vec!["arn:aws:s3:::cuepoint-ingest".into()],
                time_ms: None,
            })
            .await;
        }
        ids.push((key, id));
    }
    for (key, id) in &ids {
        let a = p.wait_terminal(id).await;
        observed(
            &format!("key {key:?} (encoded in the event)"),
            &format!(
                "{}; source key in the record: {:?}",
                a.state,
                a.source.key.as_str()
            ),
        );
        assert_eq!(a.state, AssetState::Complete, "{key}: {:?}", a.failure);
        assert_eq!(a.source.key.as_str(), **key);
    }
    assert_others_unaffected(&p, &good, &[]).await;
    p.stop().await;
}

/// Every file under `dir` except those under `skip`, relative.
fn files_outside(dir: &Path, skip: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.starts_with(skip) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_escaping_the_data_directory_are_dead_lettered_and_touch_nothing_outside() {
    let p = Pipeline::start().await;
    let good = ingest_good(&p).await;
    let root = p.root.path().to_path_buf();
    let data = p.data_dir().to_path_buf();
    // Real media where a key that climbs out of the bucket would land: following the key
    // would find a perfectly good clip and register it.
    std::fs::copy(p.path("good.mov"), root.join("outside.mov")).unwrap();
    std::fs::create_dir_all(data.join("etc")).unwrap();
    std::fs::copy(p.path("good.mov"), data.join("etc").join("passwd")).unwrap();
    let before = files_outside(&root, &data.join("blobs"));

    // Resolved naively from the bucket directory (<data>/blobs/cuepoint-ingest) these land in
    // the data dir, in the blob root, and outside the data dir.
    let keys = [
        ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"),
        ("a/../../b", "a/../../b"),
        ("../../../outside.mov", "../../../outside.mov"),
    ];
    for (i, (_, encoded)) in keys.iter().enumerate() {
        p.send_raw(
            "ingest",
            &s3_notification(
                "cuepoint-ingest",
                encoded,
                1000 + i as u64,
                &format!("etag-escape-{i}"),
            ),
        )
        .await;
    }
    for (i, (key, _)) in keys.iter().enumerate() {
        let d = p
            .wait_dead_letter("ingest", &format!("etag-escape-{i}"))
            .await;
        let reason = d.reason.unwrap_or_default();
        observed(
            &format!("key {key:?} (escapes the bucket directory)"),
            &format!("DLQ ingest after {} receives: {reason}", d.receive_count),
        );
        assert!(
            reason.contains(&format!(
                "object key \"{key}\" would escape the blob directory"
            )),
            "{reason}"
        );
        let mut created = ObjectCreated::new(
            BucketName::parse("cuepoint-ingest").unwrap(),
            ObjectKey::parse(*key).unwrap(),
        );
        created.size = Some(1000 + i as u64);
        created.etag = Some(format!("etag-escape-{i}"));
        let id = Pipeline::asset_id_of(&created);
        assert!(p.asset(&id).await.is_none(), "no asset for {key}");
    }
    assert_others_unaffected(&p, &good, &[("ingest", keys.len() as u64)]).await;
    let after = files_outside(&root, &data.join("blobs"));
    let new: Vec<_> = after
        .iter()
        .filter(|f| !before.contains(f) && !f.starts_with("data"))
        .collect();
    assert!(
        new.is_empty(),
        "files written outside the data dir: {new:?}"
    );
    assert!(
        !data.join("blobs").join("b").exists(),
        "a/../../b was written into the blob root"
    );
    assert_eq!(
        std::fs::read(root.join("outside.mov")).unwrap(),
        std::fs::read(p.path("good.mov")).unwrap()
    );
    observed(
        "keys escaping the data dir",
        "nothing read or written outside the blob directory; no asset registered",
    );
    p.stop().await;
}
