//! MediaConvert played by FFmpeg: the job settings are read back into a `JobPlan`, done in one
//! `transcode` run, the outputs stored at the plan's destinations, and the job announced with a
//! "MediaConvert Job State Change" event (COMPLETE with `outputGroupDetails`, or ERROR with
//! `errorCode` 1010 for an unusable input, 1401 when an output cannot be stored, 1999 else).
//!
//! Two kinds of job come in, told apart by their output groups: the first job (a `Proxy` and
//! an `Audio` group: the proxy and the loudness logs) and the packaging job (one `HLS` group:
//! the ladder, conditioned at the insertion points of its ESAM signal, see `crate::package`).
//!
//! One deliberate difference: MediaConvert writes its loudness logs beside a real file of the
//! "Audio" output group (a small video plus one AAC encode per measured track). Nothing in
//! cuepoint reads that file, only the logs, so here the meters run on the source tracks inside
//! the same FFmpeg run that makes the rendition and the proxy, and the Audio group's file is
//! neither encoded nor announced (its `outputGroupDetails` entry is left out). The logs are
//! the same bytes either way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_core::events::mediaconvert::OutputGroupDetail;
use cuepoint_core::events::mediaconvert::{job_state_change_entry, JobState, JobStateChange};
use cuepoint_core::mediaconvert::{JobPlan, JobSettingsError, PackagingPlan, PROXY_GROUP_NAME};
use cuepoint_runtime::ports::{
    BlobStore, Clock, EventBus, JobLedger, LedgerJob, LedgerService, LedgerStatus, PortError,
    PortResult, TranscodeRequest, Transcoder,
};
use serde_json::{json, Value};

use super::{content_type, digest, job_scratch, local_input, sibling, LocalEngineConfig, Runner};
use crate::package::{package, PackageSpec, RenditionSpec};
use crate::transcode::{transcode, HlsSpec, LoudnessLogSpec, ProxySpec, TranscodeSpec};

/// The two jobs cuepoint submits.
enum LocalJob {
    Media(Box<JobPlan>),
    Packaging(PackagingPlan),
}

fn parse_job(settings: &Value) -> Result<LocalJob, JobSettingsError> {
    let has_proxy = settings
        .get("OutputGroups")
        .and_then(Value::as_array)
        .is_some_and(|g| {
            g.iter()
                .any(|g| g.get("Name").and_then(Value::as_str) == Some(PROXY_GROUP_NAME))
        });
    if has_proxy {
        JobPlan::from_settings(settings).map(|p| LocalJob::Media(Box::new(p)))
    } else {
        PackagingPlan::from_settings(settings).map(LocalJob::Packaging)
    }
}

/// `errorCode` for an input MediaConvert cannot open or decode ("File access error").
const ERROR_INPUT: i64 = 1010;
/// `errorCode` for an output that could not be written.
const ERROR_OUTPUT: i64 = 1401;
/// `errorCode` for anything else.
const ERROR_OTHER: i64 = 1999;

/// The `Transcoder` port on FFmpeg.
#[derive(Clone)]
pub struct LocalMediaConvert {
    inner: Arc<Inner>,
}

struct Inner {
    blobs: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    ledger: Arc<dyn JobLedger>,
    clock: Arc<dyn Clock>,
    config: LocalEngineConfig,
    runner: Runner,
}

impl LocalMediaConvert {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        ledger: Arc<dyn JobLedger>,
        clock: Arc<dyn Clock>,
        config: LocalEngineConfig,
    ) -> Self {
        let runner = Runner::new(&config);
        LocalMediaConvert {
            inner: Arc::new(Inner {
                blobs,
                bus,
                ledger,
                clock,
                config,
                runner,
            }),
        }
    }
}

super::job_control!(
    LocalMediaConvert,
    LedgerService::MediaConvert,
    "transcode job"
);

/// `<epoch ms>-<6 base-36 characters>`, like MediaConvert's ids (`1515368087458-qnoxtd`).
fn job_id(now_ms: u64, token: &str) -> String {
    let mut h = digest(&[
        LedgerService::MediaConvert.as_str(),
        token,
        &now_ms.to_string(),
    ]);
    let mut s = String::with_capacity(6);
    for _ in 0..6 {
        s.push(char::from_digit((h % 36) as u32, 36).unwrap_or('x'));
        h /= 36;
    }
    format!("{now_ms}-{s}")
}

#[async_trait]
impl Transcoder for LocalMediaConvert {
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String> {
        // CreateJob validates the settings synchronously (HTTP 400), so do we.
        parse_job(&request.settings)
            .map_err(|e| PortError::Permanent(format!("invalid MediaConvert job settings: {e}")))?;
        let now = self.inner.clock.now_ms();
        let job = LedgerJob {
            service: LedgerService::MediaConvert,
            job_id: job_id(now, &request.client_token),
            client_token: request.client_token.clone(),
            asset_id: request.asset_id.to_string(),
            request: serde_json::to_value(request)
                .map_err(|e| PortError::Permanent(format!("request does not serialize: {e}")))?,
            status: LedgerStatus::Submitted,
            result: None,
            created_at_ms: now,
        };
        let (stored, created) = self.inner.ledger.create_or_get(&job).await?;
        if created {
            tracing::info!(job_id = %stored.job_id, asset = %stored.asset_id, "transcode job accepted");
            self.spawn(stored.clone()).await;
        } else {
            tracing::info!(job_id = %stored.job_id, "transcode job already exists for this token");
        }
        Ok(stored.job_id)
    }

    async fn find_job(&self, asset_id: &AssetId) -> PortResult<Option<String>> {
        let mut jobs = self
            .inner
            .ledger
            .find_by_asset(LedgerService::MediaConvert, asset_id.as_str())
            .await?;
        jobs.sort_by_key(|j| j.created_at_ms);
        Ok(jobs.pop().map(|j| j.job_id))
    }

    async fn find_tagged_job(
        &self,
        asset_id: &AssetId,
        key: &str,
        value: &str,
    ) -> PortResult<Option<String>> {
        let mut jobs = self
            .inner
            .ledger
            .find_by_asset(LedgerService::MediaConvert, asset_id.as_str())
            .await?;
        jobs.retain(|j| j.request["user_metadata"][key].as_str() == Some(value));
        jobs.sort_by_key(|j| j.created_at_ms);
        Ok(jobs.pop().map(|j| j.job_id))
    }
}

/// Why a job failed, as MediaConvert would report it.
struct JobFailure {
    code: i64,
    message: String,
    /// A fault of this machine (missing tool, full disk, I/O): the job is retried.
    infrastructure: bool,
}

impl JobFailure {
    /// An FFmpeg run of the job failed: MediaConvert's input error when the input is at fault.
    fn of_engine(
        e: &crate::error::EngineError,
        input: &impl std::fmt::Display,
        doing: &str,
    ) -> Self {
        let input_problem = e.is_input_problem();
        JobFailure {
            code: if input_problem {
                ERROR_INPUT
            } else {
                ERROR_OTHER
            },
            message: if input_problem {
                format!("Unable to open input file [{input}]: [{e}]")
            } else {
                format!("{doing} {input} failed: {e}")
            },
            infrastructure: e.is_infrastructure(),
        }
    }
}

/// Logs a job's progress once per tenth done (FFmpeg reports it many times a second).
fn progress_log(job_id: &str, doing: &'static str) -> impl Fn(f64) + Send + Sync {
    let job_id = job_id.to_string();
    let last_tenth = std::sync::atomic::AtomicU32::new(0);
    move |f: f64| {
        let tenth = (f * 10.0).floor() as u32;
        if last_tenth.fetch_max(tenth, std::sync::atomic::Ordering::Relaxed) < tenth {
            tracing::info!(job_id = %job_id, percent = tenth * 10, "{doing}");
        }
    }
}

/// Tries of a job that meets an infrastructure fault, and the pause before the first retry
/// (doubling, at most a minute): about ten minutes for the operator to free disk space or
/// install FFmpeg before the asset fails with the fault named.
const INFRA_ATTEMPTS: u32 = 12;
const INFRA_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

impl JobFailure {
    fn new(code: i64, message: String) -> Self {
        let infrastructure = crate::error::mentions_full_disk(&message);
        JobFailure {
            code,
            message,
            infrastructure,
        }
    }
}

impl Inner {
    async fn run(&self, job: LedgerJob) {
        if let Some((status, outcome, entry)) = pending_announcement(&job) {
            // Finished before a restart but not announced: announce only.
            self.publish(&job, &entry, status, outcome).await;
            return;
        }
        let request: TranscodeRequest = match serde_json::from_value(job.request.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job_id = %job.job_id, error = %e, "ledger holds an unreadable transcode request");
                let fail = JobFailure::new(
                    ERROR_OTHER,
                    format!("the stored job request does not parse: {e}"),
                );
                self.finish_error(&job, BTreeMap::new(), fail).await;
                return;
            }
        };
        let mut pause = INFRA_FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            match self.execute(&job, &request).await {
                Ok(details) => return self.finish_complete(&job, &request, details).await,
                Err(fail)
                    if fail.infrastructure
                        && attempt < INFRA_ATTEMPTS
                        && !self.runner.is_stopping() =>
                {
                    tracing::warn!(job_id = %job.job_id, attempt, retry_in = ?pause, message = %fail.message, "infrastructure fault; retrying the transcode");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(60));
                    attempt += 1;
                }
                Err(mut fail) => {
                    if fail.infrastructure {
                        if self.runner.is_stopping() {
                            // Resumed on the next start, with the fault perhaps fixed.
                            return;
                        }
                        fail.message = format!(
                            "infrastructure fault (transient; retried {attempt} times): {}",
                            fail.message
                        );
                    }
                    return self
                        .finish_error(&job, request.user_metadata.clone(), fail)
                        .await;
                }
            }
        }
    }

    /// The job's scratch directory and its input file copied (or linked) into it: a missing
    /// object is MediaConvert's input error, a storage fault is retried.
    async fn job_input(
        &self,
        job_id: &str,
        input: &S3Uri,
    ) -> Result<(tempfile::TempDir, PathBuf), JobFailure> {
        let scratch = job_scratch(&self.config, job_id).map_err(|e| JobFailure {
            code: ERROR_OTHER,
            message: e.to_string(),
            infrastructure: true,
        })?;
        let path = local_input(&self.blobs, input, scratch.path())
            .await
            .map_err(|e| JobFailure {
                code: ERROR_OTHER,
                message: format!("reading input {input}: {e}"),
                infrastructure: e.is_transient(),
            })?
            .ok_or_else(|| {
                JobFailure::new(
                    ERROR_INPUT,
                    format!("Unable to open input file [{input}]: [object not found]"),
                )
            })?;
        Ok((scratch, path))
    }

    /// Do the job; returns the `outputGroupDetails` of what it wrote.
    async fn execute(
        &self,
        job: &LedgerJob,
        request: &TranscodeRequest,
    ) -> Result<Vec<OutputGroupDetail>, JobFailure> {
        let other = |message: String| JobFailure::new(ERROR_OTHER, message);
        let plan = match parse_job(&request.settings)
            .map_err(|e| other(format!("invalid job settings: {e}")))?
        {
            LocalJob::Media(plan) => *plan,
            LocalJob::Packaging(plan) => return self.execute_packaging(job, plan).await,
        };
        let (scratch, input) = self.job_input(&job.job_id, &plan.input).await?;

        let out = scratch.path().join("out");
        let (mut spec, uploads) = transcode_spec(&plan, &request.settings, input, &out)
            .map_err(|e| other(e.to_string()))?;
        spec.scratch_dir = Some(scratch.path().to_path_buf());
        let progress = progress_log(&job.job_id, "transcoding");
        let output = transcode(&spec, Some(&progress))
            .await
            .map_err(|e| JobFailure::of_engine(&e, &plan.input, "transcoding"))?;

        // Segments first, playlists last: a reader that finds the playlist finds its segments.
        let mut files: Vec<(PathBuf, S3Uri)> = Vec::new();
        if let Some(hls) = &plan.hls {
            for seg in &output.hls_segments {
                let name = seg.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let uri = sibling(&hls.master, name).map_err(|e| other(e.to_string()))?;
                files.push((seg.clone(), uri));
            }
        }
        files.extend(uploads);
        for (path, uri) in &files {
            self.blobs
                .put_file(uri, path, content_type(path))
                .await
                .map_err(|e| JobFailure {
                    code: ERROR_OUTPUT,
                    message: format!("Unable to write output file [{uri}]: {e}"),
                    infrastructure: e.is_transient(),
                })?;
        }
        let duration_ms = (output.duration_seconds * 1000.0).round() as u64;
        // The Audio group's file is not written (see the module comment): name only what exists.
        let skipped = plan.audio.as_ref().map(|a| a.output.to_string());
        let mut details = plan.output_group_details(Some(duration_ms));
        details.retain(|g| {
            skipped
                .as_ref()
                .is_none_or(|s| !g.output_file_paths.contains(s))
        });
        Ok(details)
    }

    /// The packaging job: the ladder, conditioned at the signal's insertion points.
    async fn execute_packaging(
        &self,
        job: &LedgerJob,
        plan: PackagingPlan,
    ) -> Result<Vec<OutputGroupDetail>, JobFailure> {
        let other = |message: String| JobFailure::new(ERROR_OTHER, message);
        let (scratch, input) = self.job_input(&job.job_id, &plan.input).await?;
        let out = scratch.path().join("out").join("hls");
        let spec = package_spec(&plan, input, &out);
        let progress = progress_log(&job.job_id, "packaging");
        let output = package(&spec, Some(&progress))
            .await
            .map_err(|e| JobFailure::of_engine(&e, &plan.input, "packaging"))?;
        // Segments, then media playlists, then the master (`files()` keeps that order).
        for path in output.files() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let uri = sibling(&plan.master, name).map_err(|e| other(e.to_string()))?;
            self.blobs
                .put_file(&uri, &path, content_type(&path))
                .await
                .map_err(|e| JobFailure {
                    code: ERROR_OUTPUT,
                    message: format!("Unable to write output file [{uri}]: {e}"),
                    infrastructure: e.is_transient(),
                })?;
        }
        let duration_ms = (output.duration_seconds * 1000.0).round() as u64;
        Ok(plan.output_group_details(Some(duration_ms)))
    }

    async fn finish_complete(
        &self,
        job: &LedgerJob,
        request: &TranscodeRequest,
        details: Vec<OutputGroupDetail>,
    ) {
        let change = JobStateChange {
            job_id: job.job_id.clone(),
            state: JobState::Complete,
            queue: None,
            user_metadata: request.user_metadata.clone(),
            output_group_details: details,
            error_code: None,
            error_message: None,
            timestamp_ms: Some(self.clock.now_ms()),
        };
        let entry = job_state_change_entry(&change, &self.config.account, &self.config.region);
        let result = serde_json::from_str::<Value>(&entry.detail).unwrap_or(Value::Null);
        self.announce(job, entry, LedgerStatus::Complete, result)
            .await;
    }

    async fn finish_error(
        &self,
        job: &LedgerJob,
        user_metadata: BTreeMap<String, String>,
        fail: JobFailure,
    ) {
        tracing::warn!(job_id = %job.job_id, code = fail.code, message = %fail.message, "transcode job failed");
        let change = JobStateChange {
            job_id: job.job_id.clone(),
            state: JobState::Error,
            queue: None,
            user_metadata,
            output_group_details: Vec::new(),
            error_code: Some(fail.code),
            error_message: Some(fail.message.clone()),
            timestamp_ms: Some(self.clock.now_ms()),
        };
        let entry = job_state_change_entry(&change, &self.config.account, &self.config.region);
        let result = json!({"errorCode": fail.code, "errorMessage": fail.message});
        self.announce(job, entry, LedgerStatus::Error, result).await;
    }

    /// Store the event while the job is still SUBMITTED, publish it, then mark the job
    /// finished. A crash before the final mark re-publishes the stored event on resume (consumers
    /// are idempotent) instead of transcoding again; a lost event cannot happen.
    async fn announce(
        &self,
        job: &LedgerJob,
        entry: PutEventsEntry,
        status: LedgerStatus,
        result: Value,
    ) {
        let pending = json!({"status": status, "outcome": result, "event": entry});
        let stored = self
            .runner
            .persist("recording the job outcome", &job.job_id, || {
                self.ledger.finish(
                    LedgerService::MediaConvert,
                    &job.job_id,
                    LedgerStatus::Submitted,
                    pending.clone(),
                )
            })
            .await;
        if stored.is_some() {
            self.publish(job, &entry, status, result).await;
        }
    }

    async fn publish(
        &self,
        job: &LedgerJob,
        entry: &PutEventsEntry,
        status: LedgerStatus,
        result: Value,
    ) {
        let published = self
            .runner
            .persist("announcing the transcode job", &job.job_id, || {
                self.bus.put_events(std::slice::from_ref(entry))
            })
            .await;
        if published.is_none() {
            return;
        }
        self.runner
            .persist("marking the announced job finished", &job.job_id, || {
                self.ledger.finish(
                    LedgerService::MediaConvert,
                    &job.job_id,
                    status,
                    result.clone(),
                )
            })
            .await;
    }
}

/// An outcome stored by `announce` but not yet marked finished: (status, outcome, event).
fn pending_announcement(job: &LedgerJob) -> Option<(LedgerStatus, Value, PutEventsEntry)> {
    let r = job.result.as_ref()?;
    let status = LedgerStatus::parse(r.get("status")?.as_str()?)?;
    let entry: PutEventsEntry = serde_json::from_value(r.get("event")?.clone()).ok()?;
    Some((
        status,
        r.get("outcome").cloned().unwrap_or(Value::Null),
        entry,
    ))
}

/// The FFmpeg packaging run for `plan`, written under `out`.
pub fn package_spec(plan: &PackagingPlan, input: PathBuf, out: &std::path::Path) -> PackageSpec {
    let mut spec = PackageSpec::new(input, out);
    spec.master_name = plan.master.key.file_name().to_string();
    spec.segment_seconds = plan.segment_length_s.max(1);
    spec.breaks = plan.breaks.clone();
    spec.audio_track = plan.renditions.iter().find_map(|r| r.audio_track);
    spec.renditions = plan
        .renditions
        .iter()
        .map(|r| RenditionSpec {
            playlist_name: r.playlist.key.file_name().to_string(),
            width: r.width,
            height: r.height,
            max_bitrate: r.max_bitrate,
        })
        .collect();
    spec
}

/// The packaging job's encode alone, from its settings (what `cuepoint bench` compares the
/// pipeline with: the same ladder, the same FFmpeg settings, no pipeline around it).
pub fn packaging_spec(
    settings: &Value,
    input: PathBuf,
    out: &std::path::Path,
) -> PortResult<PackageSpec> {
    let plan = PackagingPlan::from_settings(settings)
        .map_err(|e| PortError::Permanent(format!("invalid packaging job settings: {e}")))?;
    Ok(package_spec(&plan, input, out))
}

/// The renditions of a job alone (the HLS group and the proxy, with the very FFmpeg settings the
/// job uses, no loudness meters): the encode a job cannot do without, what `cuepoint bench`
/// compares the pipeline with.
pub fn rendition_spec(
    settings: &Value,
    input: PathBuf,
    out: &std::path::Path,
) -> PortResult<TranscodeSpec> {
    let plan = JobPlan::from_settings(settings)
        .map_err(|e| PortError::Permanent(format!("invalid MediaConvert job settings: {e}")))?;
    let (mut spec, _) = transcode_spec(&plan, settings, input, out)?;
    spec.loudness_logs.clear();
    spec.true_peak = false;
    Ok(spec)
}

/// The FFmpeg job for `plan`, staged under `out`, and where each staged file goes (segments
/// are added after the run, when their names are known).
fn transcode_spec(
    plan: &JobPlan,
    settings: &Value,
    input: PathBuf,
    out: &std::path::Path,
) -> PortResult<(TranscodeSpec, Vec<(PathBuf, S3Uri)>)> {
    let name = |u: &S3Uri| u.key.file_name().to_string();
    let mut uploads: Vec<(PathBuf, S3Uri)> = Vec::new();
    let mut spec = TranscodeSpec::new(input);

    if let Some(plan_hls) = &plan.hls {
        let hls_dir = out.join("hls");
        let mut hls = HlsSpec::new(&hls_dir);
        hls.master_name = name(&plan_hls.master);
        hls.media_name = name(&plan_hls.variant);
        hls.segment_seconds = plan_hls.segment_length_s.max(1);
        hls.audio_track = plan_hls.audio_track;
        uploads.push((hls_dir.join(&hls.media_name), plan_hls.variant.clone()));
        uploads.push((hls_dir.join(&hls.master_name), plan_hls.master.clone()));
        spec.hls = Some(hls);
    }

    let proxy_path = out.join("proxy").join(name(&plan.proxy.output));
    let mut proxy = ProxySpec::new(&proxy_path);
    proxy.width = plan.proxy.width.unwrap_or(640);
    proxy.height = plan.proxy.height;
    // The template's proxy output has no audio description.
    proxy.audio_track = None;
    uploads.push((proxy_path, plan.proxy.output.clone()));
    spec.proxy = Some(proxy);

    if plan.audio.is_some() {
        // Only the logs: the meters hang off the source tracks in this same run, and the
        // Audio group's own file (a vehicle nothing reads) is not encoded.
        spec.true_peak = wants_true_peak(settings);
        for (track, uri) in plan.loudness_log_uris() {
            let path = out.join("audio").join(name(&uri));
            spec.loudness_logs.push(LoudnessLogSpec {
                track,
                path: path.clone(),
            });
            uploads.push((path, uri));
        }
    }
    Ok((spec, uploads))
}

/// Whether any audio description asks for `PeakCalculation: TRUE_PEAK`.
fn wants_true_peak(settings: &Value) -> bool {
    let Some(groups) = settings.get("OutputGroups").and_then(Value::as_array) else {
        return false;
    };
    groups
        .iter()
        .filter_map(|g| g.get("Outputs").and_then(Value::as_array))
        .flatten()
        .filter_map(|o| o.get("AudioDescriptions").and_then(Value::as_array))
        .flatten()
        .any(|d| {
            d.pointer("/AudioNormalizationSettings/PeakCalculation")
                .and_then(Value::as_str)
                == Some("TRUE_PEAK")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_look_like_mediaconvert_ids() {
        let id = job_id(1_515_368_087_458, "a1-transcode");
        let (ms, tail) = id.split_once('-').unwrap();
        assert_eq!(ms, "1515368087458");
        assert_eq!(tail.len(), 6);
        assert!(tail
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(id, job_id(1_515_368_087_458, "a1-transcode"));
        assert_ne!(id, job_id(1_515_368_087_458, "a2-transcode"));
    }
}
