//! LocalMediaConvert and LocalRekognition over in-memory fakes of the ports, with real FFmpeg.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_core::events::inbound::{parse_message, Inbound};
use cuepoint_core::events::mediaconvert::JobState;
use cuepoint_core::loudness::LoudnessLog;
use cuepoint_core::mediaconvert::{build_job_settings, default_template, JobPlan};
use cuepoint_core::rekognition::{AnalysisKind, SegmentDetection, CUE_BLACK_FRAMES};
use cuepoint_engine::local::{LocalEngineConfig, LocalMediaConvert, LocalRekognition};
use cuepoint_engine::{generate_sample, AnalyzeOptions, SampleSpec};
use cuepoint_runtime::ports::{
    AnalysisRequest, BlobMeta, BlobStore, Clock, EventBus, JobLedger, LedgerJob, LedgerService,
    LedgerStatus, PortError, PortResult, Topic, TranscodeRequest, Transcoder, VideoAnalyzer,
};

// ---- fakes -------------------------------------------------------------------------------

/// S3 in memory; optionally mirrored to a directory so `local_path` works (embedded mode).
#[derive(Default)]
struct MemBlobs {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    root: Option<PathBuf>,
}

impl MemBlobs {
    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.objects.lock().unwrap().keys().cloned().collect();
        k.sort();
        k
    }
    fn bytes(&self, uri: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(uri).cloned()
    }
}

#[async_trait]
impl BlobStore for MemBlobs {
    async fn get(&self, uri: &S3Uri) -> PortResult<Option<Vec<u8>>> {
        Ok(self.bytes(&uri.to_string()))
    }
    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>, _ct: &str) -> PortResult<()> {
        self.objects.lock().unwrap().insert(uri.to_string(), bytes);
        Ok(())
    }
    async fn head(&self, uri: &S3Uri) -> PortResult<Option<BlobMeta>> {
        Ok(self.bytes(&uri.to_string()).map(|b| BlobMeta {
            size: b.len() as u64,
            etag: None,
        }))
    }
    async fn list(&self, prefix: &S3Uri) -> PortResult<Vec<S3Uri>> {
        let p = prefix.to_string();
        Ok(self
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(&p))
            .filter_map(|k| S3Uri::parse(&k).ok())
            .collect())
    }
    async fn put_file(&self, uri: &S3Uri, path: &Path, _ct: &str) -> PortResult<()> {
        let bytes = std::fs::read(path).map_err(|e| PortError::Transient(e.to_string()))?;
        self.objects.lock().unwrap().insert(uri.to_string(), bytes);
        Ok(())
    }
    async fn readable_location(&self, uri: &S3Uri) -> PortResult<String> {
        Err(PortError::NotFound(uri.to_string()))
    }
    fn local_path(&self, uri: &S3Uri) -> Option<PathBuf> {
        let root = self.root.as_ref()?;
        let p = root.join(uri.bucket.as_str()).join(uri.key.as_str());
        // Mirror the object so the engine can read it in place.
        if let Some(bytes) = self.bytes(&uri.to_string()) {
            std::fs::create_dir_all(p.parent()?).ok()?;
            std::fs::write(&p, bytes).ok()?;
        }
        Some(p)
    }
}

#[derive(Default)]
struct MemBus {
    entries: Mutex<Vec<PutEventsEntry>>,
}

#[async_trait]
impl EventBus for MemBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> PortResult<()> {
        self.entries.lock().unwrap().extend(entries.iter().cloned());
        Ok(())
    }
}

#[derive(Default)]
struct MemTopic {
    messages: Mutex<Vec<String>>,
}

#[async_trait]
impl Topic for MemTopic {
    async fn publish(&self, message: &str) -> PortResult<String> {
        let mut m = self.messages.lock().unwrap();
        m.push(message.to_string());
        Ok(format!("msg-{}", m.len()))
    }
}

#[derive(Default)]
struct MemLedger {
    jobs: Mutex<Vec<LedgerJob>>,
}

#[async_trait]
impl JobLedger for MemLedger {
    async fn create_or_get(&self, job: &LedgerJob) -> PortResult<(LedgerJob, bool)> {
        let mut jobs = self.jobs.lock().unwrap();
        if let Some(j) = jobs
            .iter()
            .find(|j| j.service == job.service && j.client_token == job.client_token)
        {
            return Ok((j.clone(), false));
        }
        jobs.push(job.clone());
        Ok((job.clone(), true))
    }
    async fn get(&self, service: LedgerService, job_id: &str) -> PortResult<Option<LedgerJob>> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .iter()
            .find(|j| j.service == service && j.job_id == job_id)
            .cloned())
    }
    async fn find_by_asset(
        &self,
        service: LedgerService,
        asset_id: &str,
    ) -> PortResult<Vec<LedgerJob>> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|j| j.service == service && j.asset_id == asset_id)
            .cloned()
            .collect())
    }
    async fn finish(
        &self,
        service: LedgerService,
        job_id: &str,
        status: LedgerStatus,
        result: serde_json::Value,
    ) -> PortResult<()> {
        let mut jobs = self.jobs.lock().unwrap();
        let j = jobs
            .iter_mut()
            .find(|j| j.service == service && j.job_id == job_id)
            .ok_or_else(|| PortError::NotFound(job_id.to_string()))?;
        j.status = status;
        j.result = Some(result);
        Ok(())
    }
    async fn unfinished(&self, service: LedgerService) -> PortResult<Vec<LedgerJob>> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|j| j.service == service && j.status == LedgerStatus::Submitted)
            .cloned()
            .collect())
    }
}

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

struct World {
    blobs: Arc<MemBlobs>,
    bus: Arc<MemBus>,
    topic: Arc<MemTopic>,
    ledger: Arc<MemLedger>,
    clock: Arc<TestClock>,
    config: LocalEngineConfig,
    _scratch: tempfile::TempDir,
}

impl World {
    fn new(local_files: bool) -> Self {
        let scratch = tempfile::tempdir().unwrap();
        World {
            blobs: Arc::new(MemBlobs {
                objects: Mutex::default(),
                root: local_files.then(|| scratch.path().join("blobs")),
            }),
            bus: Arc::default(),
            topic: Arc::default(),
            ledger: Arc::default(),
            clock: Arc::new(TestClock(AtomicU64::new(1_795_325_848_000))),
            config: LocalEngineConfig {
                scratch_dir: Some(scratch.path().join("scratch")),
                ..LocalEngineConfig::default()
            },
            _scratch: scratch,
        }
    }
    fn mediaconvert(&self) -> LocalMediaConvert {
        LocalMediaConvert::new(
            self.blobs.clone(),
            self.bus.clone(),
            self.ledger.clone(),
            self.clock.clone(),
            self.config.clone(),
        )
    }
    /// The shared analysis passes the local Rekognition has kept (one file per pass).
    fn vision_passes(&self) -> Vec<PathBuf> {
        let cache = self
            .config
            .scratch_dir
            .as_ref()
            .unwrap()
            .join("cuepoint-vision");
        files_with(&cache, "json")
    }

    fn rekognition(&self, page_size: usize) -> LocalRekognition {
        LocalRekognition::with_options(
            self.blobs.clone(),
            self.topic.clone(),
            self.ledger.clone(),
            self.clock.clone(),
            self.config.clone(),
            AnalyzeOptions::default(),
            page_size,
        )
    }
    fn events(&self) -> Vec<PutEventsEntry> {
        self.bus.entries.lock().unwrap().clone()
    }
}

fn uri(s: &str) -> S3Uri {
    S3Uri::parse(s).unwrap()
}

async fn sample_bytes(spec: SampleSpec) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("clip.mov");
    generate_sample(&p, &spec).await.unwrap();
    std::fs::read(p).unwrap()
}

fn small() -> SampleSpec {
    SampleSpec {
        duration: 6.0,
        width: 320,
        height: 180,
        track_count: 3,
        active_tracks: vec![1, 3],
        cuts: vec![2.0],
        black_gaps: vec![(3.0, 4.0)],
        end_credits_from: None,
        x264_preset: "ultrafast".into(),
        ..SampleSpec::default()
    }
}

fn transcode_request(asset: &str, input: &S3Uri, tracks: u32) -> TranscodeRequest {
    let settings = build_job_settings(
        &default_template(),
        input,
        &uri(&format!("s3://media-out/{asset}/")),
        tracks,
    )
    .unwrap();
    TranscodeRequest {
        asset_id: AssetId::parse(asset).unwrap(),
        client_token: format!("{asset}-transcode"),
        settings,
        user_metadata: BTreeMap::from([
            ("assetId".to_string(), asset.to_string()),
            ("workflow".into(), "cuepoint".into()),
        ]),
    }
}

fn delivered(entry: &PutEventsEntry) -> Inbound {
    let env = entry
        .clone()
        .into_envelope(
            "ev-1".into(),
            "000000000000",
            "us-east-1",
            "2026-11-22T05:37:28Z".into(),
        )
        .unwrap();
    let body = serde_json::to_string(&env).unwrap();
    parse_message(&body).unwrap().pop().unwrap()
}

// ---- MediaConvert ------------------------------------------------------------------------

#[tokio::test]
async fn the_packaging_job_writes_a_conditioned_ladder_and_announces_it_like_the_first_job() {
    use cuepoint_core::mediaconvert::{
        build_packaging_settings, default_packaging_template, PackagingPlan, PackagingSource,
    };
    use cuepoint_core::packaging::{FrameRate, DEFAULT_LADDER};
    let w = World::new(false);
    let input = uri("s3://media-in/src/clip.mov");
    w.blobs
        .put(&input, sample_bytes(small()).await, "video/quicktime")
        .await
        .unwrap();
    let source = PackagingSource {
        width: 320,
        height: 180,
        frame_rate: FrameRate { num: 25, den: 1 },
        duration_s: 6.0,
        audio_track: Some(1),
    };
    let settings = build_packaging_settings(
        &default_packaging_template(),
        &input,
        &uri("s3://media-out/a1/"),
        &source,
        &DEFAULT_LADDER,
        &[2.0, 4.52],
    )
    .unwrap();
    let plan = PackagingPlan::from_settings(&settings).unwrap();
    let request = TranscodeRequest {
        asset_id: AssetId::parse("a1").unwrap(),
        client_token: "a1-package-v1".into(),
        settings,
        user_metadata: BTreeMap::from([
            ("assetId".to_string(), "a1".to_string()),
            ("workflow".into(), "cuepoint-packaging".into()),
        ]),
    };
    let mc = w.mediaconvert();
    let id = mc.submit(&request).await.unwrap();
    assert_eq!(
        mc.submit(&request).await.unwrap(),
        id,
        "same token, same job"
    );
    mc.wait_idle().await;
    let events = w.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let Inbound::MediaConvert(change) = delivered(&events[0]) else {
        panic!("not a MediaConvert event")
    };
    assert_eq!(change.state, JobState::Complete, "{change:?}");
    assert_eq!(change.user("workflow"), Some("cuepoint-packaging"));
    assert_eq!(
        change.hls_playlist(),
        Some(plan.master.to_string().as_str())
    );
    let master = String::from_utf8(w.blobs.bytes(&plan.master.to_string()).unwrap()).unwrap();
    assert!(master.contains("RESOLUTION=320x180"), "{master}");
    let media = String::from_utf8(
        w.blobs
            .bytes(&plan.renditions[0].playlist.to_string())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(media.matches("#EXT-X-CUE-OUT:0").count(), 2, "{media}");
    let starts = cuepoint_core::packaging::segment_starts(&media).unwrap();
    for b in [2.0, 4.52] {
        assert!(
            starts.iter().any(|s| (s - b).abs() < 0.02),
            "{b}: {starts:?}"
        );
    }
    let segments = w
        .blobs
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("s3://media-out/a1/hls/") && k.ends_with(".ts"))
        .count();
    assert_eq!(segments, starts.len());
}

#[tokio::test]
async fn mediaconvert_runs_a_token_once_writes_the_plan_and_announces_complete() {
    let w = World::new(false);
    let input = uri("s3://media-in/src/clip.mov");
    w.blobs
        .put(&input, sample_bytes(small()).await, "video/quicktime")
        .await
        .unwrap();
    let mc = w.mediaconvert();
    let request = transcode_request("a1", &input, 3);

    let id = mc.submit(&request).await.unwrap();
    assert_eq!(
        mc.submit(&request).await.unwrap(),
        id,
        "same token, same job"
    );
    assert_eq!(w.ledger.jobs.lock().unwrap().len(), 1);
    mc.wait_idle().await;
    assert_eq!(
        mc.submit(&request).await.unwrap(),
        id,
        "still the same job after it finished"
    );
    mc.wait_idle().await;
    assert_eq!(
        mc.find_job(&AssetId::parse("a1").unwrap()).await.unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        mc.find_job(&AssetId::parse("a2").unwrap()).await.unwrap(),
        None
    );

    let events = w.events();
    assert_eq!(events.len(), 1, "exactly one announcement: {events:#?}");
    let Inbound::MediaConvert(change) = delivered(&events[0]) else {
        panic!("not a MediaConvert event")
    };
    assert_eq!(change.job_id, id);
    assert_eq!(change.state, JobState::Complete);
    assert_eq!(change.user("assetId"), Some("a1"));
    let plan = JobPlan::from_settings(&request.settings).unwrap();
    // The first job makes no HLS: the packaging job does, once the breaks are known.
    assert_eq!(change.hls_playlist(), None);
    assert_eq!(plan.hls_master_uri(), None);
    let duration = change.output_group_details[0].duration_ms.unwrap();
    assert!((5800..=6100).contains(&duration), "{duration}");

    // Everything the event names exists, plus the segments and the loudness logs.
    for path in change.output_file_paths().chain(change.hls_playlist()) {
        assert!(
            w.blobs.bytes(path).is_some_and(|b| !b.is_empty()),
            "missing {path}; have {:#?}",
            w.blobs.keys()
        );
    }
    let segments = w
        .blobs
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("s3://media-out/a1/hls/"))
        .count();
    assert_eq!(segments, 0);
    for (track, log_uri) in plan.loudness_log_uris() {
        let text =
            String::from_utf8(w.blobs.bytes(&log_uri.to_string()).expect("log stored")).unwrap();
        let log = LoudnessLog::parse(&text).unwrap();
        assert_eq!(
            log.has_audio(-50.0),
            track != 2,
            "track {track}: {:?}",
            log.summary
        );
    }
    // The Audio group's own file is a vehicle for the logs that nothing reads: it is neither
    // encoded nor announced, and the logs are the only files under the audio destination.
    let audio = plan
        .audio
        .as_ref()
        .expect("the template has an Audio group");
    assert!(
        w.blobs.bytes(&audio.output.to_string()).is_none(),
        "the unused audio vehicle was written"
    );
    assert!(change
        .output_file_paths()
        .all(|p| p != audio.output.to_string()));
    let logs: Vec<String> = plan
        .loudness_log_uris()
        .iter()
        .map(|(_, u)| u.to_string())
        .collect();
    let audio_dir = audio.destination.to_string();
    let audio_dir = &audio_dir[..audio_dir.rfind('/').unwrap() + 1];
    let under_audio: Vec<String> = w
        .blobs
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(audio_dir))
        .collect();
    assert_eq!(under_audio.len(), logs.len(), "{under_audio:#?}");
    assert!(
        under_audio.iter().all(|k| logs.contains(k)),
        "{under_audio:#?}"
    );
    let job = w.ledger.jobs.lock().unwrap()[0].clone();
    assert_eq!(job.status, LedgerStatus::Complete);
}

#[tokio::test]
async fn mediaconvert_reads_local_blobs_in_place() {
    let w = World::new(true);
    let input = uri("s3://media-in/src/clip.mov");
    w.blobs
        .put(
            &input,
            sample_bytes(SampleSpec {
                duration: 3.0,
                cuts: vec![],
                black_gaps: vec![],
                ..small()
            })
            .await,
            "",
        )
        .await
        .unwrap();
    let mc = w.mediaconvert();
    mc.submit(&transcode_request("a3", &input, 3))
        .await
        .unwrap();
    mc.wait_idle().await;
    let Inbound::MediaConvert(change) = delivered(&w.events()[0]) else {
        panic!()
    };
    assert_eq!(change.state, JobState::Complete, "{change:?}");
}

#[tokio::test]
async fn mediaconvert_reports_a_corrupt_input_as_error_1010() {
    let w = World::new(false);
    let input = uri("s3://media-in/src/broken.mov");
    w.blobs
        .put(&input, b"this is not a movie".to_vec(), "video/quicktime")
        .await
        .unwrap();
    let mc = w.mediaconvert();
    let id = mc
        .submit(&transcode_request("a4", &input, 1))
        .await
        .unwrap();
    mc.wait_idle().await;
    let Inbound::MediaConvert(change) = delivered(&w.events()[0]) else {
        panic!()
    };
    assert_eq!(
        (change.job_id.as_str(), change.state.clone()),
        (id.as_str(), JobState::Error)
    );
    assert_eq!(change.error_code, Some(1010));
    let msg = change.error_message.clone().unwrap();
    assert!(
        msg.contains("s3://media-in/src/broken.mov") && msg.contains("Invalid data"),
        "{msg}"
    );
    assert_eq!(change.user("assetId"), Some("a4"));
    assert_eq!(w.ledger.jobs.lock().unwrap()[0].status, LedgerStatus::Error);

    // A missing input is the same error class.
    let missing = w.mediaconvert();
    missing
        .submit(&transcode_request(
            "a5",
            &uri("s3://media-in/src/absent.mov"),
            1,
        ))
        .await
        .unwrap();
    missing.wait_idle().await;
    let Inbound::MediaConvert(change) = delivered(&w.events()[1]) else {
        panic!()
    };
    assert_eq!(change.error_code, Some(1010));
}

#[tokio::test]
async fn mediaconvert_refuses_unreadable_settings_at_submit() {
    let w = World::new(false);
    let mut request = transcode_request("a6", &uri("s3://media-in/x.mov"), 1);
    request.settings = serde_json::json!({"Inputs": []});
    let e = w.mediaconvert().submit(&request).await.unwrap_err();
    assert!(matches!(e, PortError::Permanent(_)), "{e}");
    assert!(w.ledger.jobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn mediaconvert_resumes_after_a_crash() {
    let w = World::new(false);
    let input = uri("s3://media-in/src/clip.mov");
    w.blobs
        .put(
            &input,
            sample_bytes(SampleSpec {
                duration: 2.0,
                cuts: vec![],
                black_gaps: vec![],
                ..small()
            })
            .await,
            "",
        )
        .await
        .unwrap();
    let request = transcode_request("a7", &input, 3);
    // What a crash leaves: the job accepted, nothing run.
    w.ledger
        .create_or_get(&LedgerJob {
            service: LedgerService::MediaConvert,
            job_id: "1795325848000-crash1".into(),
            client_token: request.client_token.clone(),
            asset_id: "a7".into(),
            request: serde_json::to_value(&request).unwrap(),
            status: LedgerStatus::Submitted,
            result: None,
            created_at_ms: 1,
        })
        .await
        .unwrap();
    // And one that finished but whose announcement was not recorded as done.
    let stored = PutEventsEntry {
        source: "aws.mediaconvert".into(),
        detail_type: "MediaConvert Job State Change".into(),
        detail: r#"{"jobId":"1795325848000-crash2","status":"COMPLETE","userMetadata":{"assetId":"a8"},"outputGroupDetails":[]}"#.into(),
        resources: vec![],
        time_ms: Some(5),
    };
    w.ledger
        .create_or_get(&LedgerJob {
            service: LedgerService::MediaConvert,
            job_id: "1795325848000-crash2".into(),
            client_token: "a8-transcode".into(),
            asset_id: "a8".into(),
            request: serde_json::to_value(transcode_request("a8", &input, 3)).unwrap(),
            status: LedgerStatus::Submitted,
            result: Some(serde_json::json!({"status": "COMPLETE", "outcome": {"jobId": "1795325848000-crash2"}, "event": stored})),
            created_at_ms: 2,
        })
        .await
        .unwrap();

    let mc = w.mediaconvert();
    assert_eq!(mc.resume_unfinished().await.unwrap(), 2);
    mc.wait_idle().await;
    let events = w.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(
        events.contains(&stored),
        "the stored announcement is re-published as is"
    );
    let resumed = events.iter().find(|e| e.detail.contains("crash1")).unwrap();
    let Inbound::MediaConvert(change) = delivered(resumed) else {
        panic!()
    };
    assert_eq!(change.state, JobState::Complete);
    assert!(w
        .ledger
        .jobs
        .lock()
        .unwrap()
        .iter()
        .all(|j| j.status == LedgerStatus::Complete));
    assert_eq!(mc.resume_unfinished().await.unwrap(), 0);
}

// ---- Rekognition -------------------------------------------------------------------------

fn analysis_request(kind: AnalysisKind, video: &S3Uri, asset: &str) -> AnalysisRequest {
    AnalysisRequest {
        kind,
        video: video.clone(),
        client_token: format!("{asset}-analysis"),
        job_tag: asset.to_string(),
    }
}

#[tokio::test]
async fn rekognition_detects_segments_notifies_and_pages() {
    let w = World::new(false);
    let video = uri("s3://media-out/b1/proxy/proxy.mp4");
    let spec = SampleSpec {
        duration: 8.0,
        cuts: vec![1.0, 2.0, 5.0, 6.0],
        black_gaps: vec![(3.0, 4.0)],
        ..small()
    };
    w.blobs
        .put(&video, sample_bytes(spec).await, "video/mp4")
        .await
        .unwrap();
    let rk = w.rekognition(3);

    let seg = analysis_request(AnalysisKind::Segments, &video, "b1");
    let id = rk.start(&seg).await.unwrap();
    assert_eq!(rk.start(&seg).await.unwrap(), id);
    // Same token on another API is another job (Rekognition's idempotency is per operation).
    let labels_id = rk
        .start(&analysis_request(AnalysisKind::Labels, &video, "b1"))
        .await
        .unwrap();
    assert_ne!(labels_id, id);
    assert_eq!(id.len(), 64);
    rk.wait_idle().await;

    let messages = w.topic.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let mut completions = Vec::new();
    for m in &messages {
        let Inbound::Rekognition(c) = parse_message(m).unwrap().pop().unwrap() else {
            panic!("{m}")
        };
        completions.push(c);
    }
    let c = completions.iter().find(|c| c.job_id == id).unwrap();
    assert!(c.succeeded());
    assert_eq!(c.kind(), Some(AnalysisKind::Segments));
    assert_eq!(c.job_tag.as_deref(), Some("b1"));
    assert_eq!(
        (c.video_bucket.as_deref(), c.video_key.as_deref()),
        (Some("media-out"), Some("b1/proxy/proxy.mp4"))
    );

    // Pages of 3: walk the tokens, merge, compare with one big page.
    let mut merged = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = rk
            .get_page(AnalysisKind::Segments, &id, token.as_deref())
            .await
            .unwrap();
        assert_eq!(page.body["JobStatus"], "SUCCEEDED");
        assert_eq!(page.body["JobId"], id.as_str());
        assert!(page.body["VideoMetadata"][0]["FrameRate"]
            .as_f64()
            .is_some());
        merged.extend(page.body["Segments"].as_array().unwrap().iter().cloned());
        pages += 1;
        assert_eq!(
            page.body.get("NextToken").and_then(|t| t.as_str()),
            page.next_token.as_deref()
        );
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    // 1 black cue + 7 shots (cuts at 1, 2, 5, 6 and both gap edges).
    assert_eq!(merged.len(), 8, "{merged:#?}");
    assert_eq!(pages, 3);
    let mut body = rk
        .get_page(AnalysisKind::Segments, &id, None)
        .await
        .unwrap()
        .body;
    body["Segments"] = serde_json::Value::Array(merged);
    let detection: SegmentDetection = serde_json::from_value(body).unwrap();
    let black: Vec<_> = detection
        .segments
        .iter()
        .filter(|s| s.cue_type() == Some(CUE_BLACK_FRAMES))
        .collect();
    assert_eq!(black.len(), 1);
    assert_eq!(
        (
            black[0].start_timestamp_millis,
            black[0].end_timestamp_millis
        ),
        (3000, 4000)
    );
    assert_eq!(detection.segments.iter().filter(|s| s.is_shot()).count(), 7);

    // Labels: from the local model, or empty with the reason when it is not installed.
    let labels = rk
        .get_page(AnalysisKind::Labels, &labels_id, None)
        .await
        .unwrap();
    assert_eq!(labels.body["JobStatus"], "SUCCEEDED");
    assert!(labels.body["Labels"].is_array());
    let status = labels.body["CuepointAnalysis"]["Status"].as_str().unwrap();
    assert!(["COMPLETE", "NOT_INSTALLED"].contains(&status), "{status}");
    assert_eq!(labels.body["CuepointAnalysis"]["Model"], "mobilenet-v2");

    // Wrong kind, bad token, unknown job.
    assert!(matches!(
        rk.get_page(AnalysisKind::Faces, &id, None).await,
        Err(PortError::Permanent(_))
    ));
    assert!(matches!(
        rk.get_page(AnalysisKind::Segments, &id, Some("nope")).await,
        Err(PortError::Permanent(_))
    ));
    assert!(matches!(
        rk.get_page(AnalysisKind::Segments, "0000", None).await,
        Err(PortError::NotFound(_))
    ));

    // After a restart (a new instance on the same ledger) the results are still served.
    let again = w
        .rekognition(1000)
        .get_page(AnalysisKind::Segments, &id, None)
        .await
        .unwrap();
    assert_eq!(again.body["Segments"].as_array().unwrap().len(), 8);
    assert!(again.next_token.is_none());
}

#[tokio::test]
async fn rekognition_fails_a_missing_video_and_resumes_unfinished_jobs() {
    let w = World::new(false);
    let rk = w.rekognition(1000);
    let missing = uri("s3://media-out/c1/proxy/proxy.mp4");
    let id = rk
        .start(&analysis_request(AnalysisKind::Segments, &missing, "c1"))
        .await
        .unwrap();
    rk.wait_idle().await;
    let Inbound::Rekognition(c) = parse_message(&w.topic.messages.lock().unwrap()[0])
        .unwrap()
        .pop()
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (c.job_id.as_str(), c.status.as_str()),
        (id.as_str(), "FAILED")
    );
    let page = rk
        .get_page(AnalysisKind::Segments, &id, None)
        .await
        .unwrap();
    assert_eq!(page.body["JobStatus"], "FAILED");
    assert!(page.body["StatusMessage"]
        .as_str()
        .unwrap()
        .contains("c1/proxy/proxy.mp4"));

    // A job left SUBMITTED by a crash runs on resume.
    let request = analysis_request(AnalysisKind::Moderation, &missing, "c2");
    w.ledger
        .create_or_get(&LedgerJob {
            service: LedgerService::Rekognition,
            job_id: "f".repeat(64),
            client_token: "StartContentModeration/c2-analysis".into(),
            asset_id: "c2".into(),
            request: serde_json::to_value(&request).unwrap(),
            status: LedgerStatus::Submitted,
            result: None,
            created_at_ms: 1,
        })
        .await
        .unwrap();
    let fresh = w.rekognition(1000);
    assert_eq!(fresh.resume_unfinished().await.unwrap(), 1);
    fresh.wait_idle().await;
    assert_eq!(w.topic.messages.lock().unwrap().len(), 2);
    let page = fresh
        .get_page(AnalysisKind::Moderation, &"f".repeat(64), None)
        .await
        .unwrap();
    // Its video is missing too, so it fails as Rekognition's would.
    assert_eq!(page.body["JobStatus"], "FAILED");
    assert_eq!(page.body["ModerationLabels"], serde_json::json!([]));
    assert_eq!(
        w.ledger
            .get(LedgerService::Rekognition, &"f".repeat(64))
            .await
            .unwrap()
            .unwrap()
            .status,
        LedgerStatus::Error
    );
}

/// Files (not directories) directly in `dir` with extension `ext`.
fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == ext));
    v
}

#[tokio::test]
async fn vision_jobs_of_one_video_share_one_pass_across_instances() {
    // In memory (as in S3): the video is known by its URI, size and ETag.
    let w = World::new(false);
    let video = uri("s3://media-out/v1/proxy/proxy.mp4");
    let spec = SampleSpec {
        duration: 3.0,
        cuts: vec![1.5],
        black_gaps: vec![],
        ..small()
    };
    w.blobs
        .put(&video, sample_bytes(spec).await, "video/mp4")
        .await
        .unwrap();
    let rk = w.rekognition(1000);
    let mut ids = Vec::new();
    for kind in [
        AnalysisKind::Labels,
        AnalysisKind::Faces,
        AnalysisKind::Moderation,
        AnalysisKind::Celebrities,
    ] {
        ids.push((
            kind,
            rk.start(&analysis_request(kind, &video, "v1"))
                .await
                .unwrap(),
        ));
    }
    rk.wait_idle().await;
    let results = w.vision_passes();
    assert_eq!(results.len(), 1, "one pass for three jobs: {results:?}");
    let written = std::fs::metadata(&results[0]).unwrap().modified().unwrap();
    for (kind, id) in &ids {
        let page = rk.get_page(*kind, id, None).await.unwrap();
        assert_eq!(page.body["JobStatus"], "SUCCEEDED", "{kind}: {}", page.body);
        assert!(page.body[kind.list_field()].is_array());
        let status = page.body["CuepointAnalysis"]["Status"].as_str().unwrap();
        if *kind == AnalysisKind::Celebrities {
            assert_eq!(status, "UNAVAILABLE_OFFLINE");
            assert!(page.body["CuepointAnalysis"]["Message"]
                .as_str()
                .unwrap()
                .contains("Rekognition"));
        } else {
            assert!(
                ["COMPLETE", "NOT_INSTALLED"].contains(&status),
                "{kind}: {status}"
            );
            if std::env::var_os("CUEPOINT_REQUIRE_MODELS")
                .is_some_and(|v| !v.is_empty() && v != "0")
            {
                assert_eq!(status, "COMPLETE", "{kind}: {}", page.body);
            }
            if status == "NOT_INSTALLED" {
                let m = page.body["CuepointAnalysis"]["Message"].as_str().unwrap();
                assert!(m.contains("cuepoint models install"), "{m}");
            }
        }
    }
    // Another instance (as another process would) reuses the pass instead of decoding again.
    let other = w.rekognition(1000);
    let again = other
        .start(&analysis_request(AnalysisKind::Faces, &video, "v1-again"))
        .await
        .unwrap();
    other.wait_idle().await;
    let results = w.vision_passes();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(
        std::fs::metadata(&results[0]).unwrap().modified().unwrap(),
        written
    );
    let first = rk
        .get_page(AnalysisKind::Faces, &ids[1].1, None)
        .await
        .unwrap();
    let second = other
        .get_page(AnalysisKind::Faces, &again, None)
        .await
        .unwrap();
    assert_eq!(first.body["Faces"], second.body["Faces"]);
    assert_eq!(
        first.body["CuepointAnalysis"],
        second.body["CuepointAnalysis"]
    );
}

#[tokio::test]
async fn segment_and_vision_jobs_of_one_video_share_one_decode() {
    let w = World::new(false);
    let video = uri("s3://media-out/d1/proxy/proxy.mp4");
    let spec = SampleSpec {
        duration: 6.0,
        cuts: vec![1.0, 2.5],
        black_gaps: vec![(3.5, 4.5)],
        ..small()
    };
    let bytes = sample_bytes(spec).await;
    w.blobs
        .put(&video, bytes.clone(), "video/mp4")
        .await
        .unwrap();
    let rk = w.rekognition(1000);
    let kinds = [
        AnalysisKind::Segments,
        AnalysisKind::Labels,
        AnalysisKind::Faces,
        AnalysisKind::Moderation,
    ];
    let mut ids = Vec::new();
    for kind in kinds {
        ids.push(
            rk.start(&analysis_request(kind, &video, "d1"))
                .await
                .unwrap(),
        );
    }
    rk.wait_idle().await;
    let results = w.vision_passes();
    assert_eq!(results.len(), 1, "one pass for four jobs: {results:?}");
    for (kind, id) in kinds.iter().zip(&ids) {
        let page = rk.get_page(*kind, id, None).await.unwrap();
        assert_eq!(page.body["JobStatus"], "SUCCEEDED", "{kind}: {}", page.body);
    }
    // The shared decode finds exactly what the segment analysis finds on its own.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let alone = cuepoint_engine::analyze(
        &file,
        &AnalyzeOptions {
            loudness: false,
            ..AnalyzeOptions::default()
        },
        None,
    )
    .await
    .unwrap();
    let shared = rk
        .get_page(AnalysisKind::Segments, &ids[0], None)
        .await
        .unwrap();
    assert_eq!(
        shared.body["Segments"],
        serde_json::to_value(&alone.segments).unwrap()["Segments"]
    );
    assert_eq!(
        alone
            .segments
            .segments
            .iter()
            .filter(|s| s.is_shot())
            .count(),
        5
    );

    // A video that does not decode fails each job that asks for the pass, saying why.
    let broken = uri("s3://media-out/d2/proxy/proxy.mp4");
    w.blobs
        .put(&broken, bytes[..bytes.len() / 3].to_vec(), "video/mp4")
        .await
        .unwrap();
    let mut ids = Vec::new();
    for kind in [AnalysisKind::Segments, AnalysisKind::Faces] {
        let id = rk
            .start(&analysis_request(kind, &broken, "d2"))
            .await
            .unwrap();
        ids.push((kind, id));
    }
    rk.wait_idle().await;
    let mut messages = Vec::new();
    for (kind, id) in ids {
        let page = rk.get_page(kind, &id, None).await.unwrap();
        assert_eq!(page.body["JobStatus"], "FAILED", "{kind}: {}", page.body);
        messages.push(page.body["StatusMessage"].as_str().unwrap().to_string());
    }
    // Jobs run one at a time here, so each tried the video (a failed pass is not kept).
    for m in &messages {
        assert!(m.contains("moov atom not found"), "{m}");
    }
}
