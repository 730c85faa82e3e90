//! Amazon Transcribe played locally: the speech models hear the upload's tracks. One job per
//! asset, named like the Transcribe job (`<workflow>-<asset id>`, the idempotency key: the same
//! name returns the same job and runs nothing twice). The job writes Transcribe's output JSON
//! where the request says (`OutputBucketName`/`OutputKey` on AWS), keeps the speech activity it
//! measured on every track with sound, and announces completion as Transcribe does: a
//! "Transcribe Job State Change" event on the bus. Without models the job still completes, its
//! results marked `CuepointAnalysis.Status = NOT_INSTALLED`; a model that fails fails the job.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cuepoint_core::events::transcribe::{
    job_state_change_entry, TranscriptionJobStateChange, TranscriptionState,
};
use cuepoint_core::speech::{SpeechInterval, SpeechResults};
use cuepoint_core::transcript::Transcript;
use cuepoint_runtime::ports::{
    BlobStore, Clock, EventBus, JobLedger, LedgerJob, LedgerService, LedgerStatus, PortError,
    PortResult, Transcriber, TranscriptionJob, TranscriptionRequest, TranscriptionStatus,
};
use serde_json::{json, Value};

use super::{job_scratch, local_input, LocalEngineConfig, Runner};

const TRANSCRIBE_SERVICE: LedgerService = LedgerService::Transcribe;
const STATUS_SUBMITTED: LedgerStatus = LedgerStatus::Submitted;
const STATUS_COMPLETE: LedgerStatus = LedgerStatus::Complete;
const STATUS_ERROR: LedgerStatus = LedgerStatus::Error;

/// Why the speech models gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechEngineError {
    /// The model is not installed (or its files fail their check): the analysis completes,
    /// marked `NOT_INSTALLED` with this message.
    #[error("{message}")]
    NotInstalled { model: String, message: String },
    /// The model ran and failed: the analysis fails with this cause.
    #[error("{0}")]
    Failed(String),
}

/// What the local Transcribe asks of the speech models. Blocking calls (run off the async
/// threads).
pub trait SpeechEngine: Send + Sync {
    /// Speech activity on one audio track (1-based) of `media`.
    fn speech(&self, media: &Path, track: u32) -> Result<Vec<SpeechInterval>, SpeechEngineError>;
    /// One audio track (1-based) of `media` to text, in Transcribe's output shape.
    fn transcribe(&self, media: &Path, track: u32) -> Result<Transcript, SpeechEngineError>;
}

/// The `Transcriber` port on the local speech models.
#[derive(Clone)]
pub struct LocalTranscribe {
    inner: Arc<Inner>,
}

struct Inner {
    blobs: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    ledger: Arc<dyn JobLedger>,
    clock: Arc<dyn Clock>,
    config: LocalEngineConfig,
    engine: Arc<dyn SpeechEngine>,
    runner: Runner,
}

impl LocalTranscribe {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        ledger: Arc<dyn JobLedger>,
        clock: Arc<dyn Clock>,
        config: LocalEngineConfig,
        engine: Arc<dyn SpeechEngine>,
    ) -> Self {
        let runner = Runner::new(&config);
        LocalTranscribe {
            inner: Arc::new(Inner {
                blobs,
                bus,
                ledger,
                clock,
                config,
                engine,
                runner,
            }),
        }
    }
}

super::job_control!(LocalTranscribe, TRANSCRIBE_SERVICE, "transcription job");

#[async_trait]
impl Transcriber for LocalTranscribe {
    async fn start(&self, request: &TranscriptionRequest) -> PortResult<String> {
        let now = self.inner.clock.now_ms();
        // Like Transcribe: the job name is the job's identity and its idempotency key.
        let job = LedgerJob {
            service: TRANSCRIBE_SERVICE,
            job_id: request.job_name.clone(),
            client_token: request.job_name.clone(),
            asset_id: request.asset_id.to_string(),
            request: serde_json::to_value(request)
                .map_err(|e| PortError::Permanent(format!("request does not serialize: {e}")))?,
            status: STATUS_SUBMITTED,
            result: None,
            created_at_ms: now,
        };
        let (stored, created) = self.inner.ledger.create_or_get(&job).await?;
        if created {
            tracing::info!(job = %stored.job_id, track = request.audio_track, "transcription job accepted");
            self.spawn(stored.clone()).await;
        }
        Ok(stored.job_id)
    }

    async fn get(&self, job_name: &str) -> PortResult<TranscriptionJob> {
        let job = self
            .inner
            .ledger
            .get(TRANSCRIBE_SERVICE, job_name)
            .await?
            .ok_or_else(|| PortError::NotFound(format!("no transcription job {job_name}")))?;
        Ok(job_view(&job))
    }
}

/// GetTranscriptionJob's view of a ledger job.
fn job_view(job: &LedgerJob) -> TranscriptionJob {
    let outcome = stored_outcome(job);
    let status = match outcome
        .and_then(|o| o.get("status"))
        .and_then(Value::as_str)
    {
        Some("COMPLETED") => TranscriptionStatus::Completed,
        Some("FAILED") => TranscriptionStatus::Failed,
        _ if job.status == STATUS_ERROR => TranscriptionStatus::Failed,
        _ => TranscriptionStatus::InProgress,
    };
    let field = |k: &str| outcome.and_then(|o| o.get(k));
    TranscriptionJob {
        job_name: job.job_id.clone(),
        status,
        failure_reason: field("failureReason")
            .and_then(Value::as_str)
            .map(str::to_string),
        transcript: field("transcript")
            .and_then(Value::as_str)
            .and_then(|s| cuepoint_core::domain::S3Uri::parse(s).ok()),
        speech: field("speech").cloned(),
    }
}

/// The outcome stored for a job (an object with `status`), once it has one.
fn stored_outcome(job: &LedgerJob) -> Option<&Value> {
    job.result.as_ref().filter(|r| {
        r.get("status")
            .and_then(Value::as_str)
            .is_some_and(|s| s == "COMPLETED" || s == "FAILED")
    })
}

/// The transcript of a main track on which speech activity found no speech: complete and
/// empty, saying why Whisper did not run.
fn no_speech_transcript(track: u32) -> Value {
    json!({
        "status": "COMPLETED",
        "results": {"transcripts": [{"transcript": ""}], "items": []},
        "CuepointAnalysis": analysis_status(
            "COMPLETE",
            Some("silero-vad"),
            &format!("no speech on track {track}: nothing to transcribe"),
        ),
    })
}

/// A results file's `CuepointAnalysis` object.
fn analysis_status(status: &str, model: Option<&str>, message: &str) -> Value {
    let mut v = json!({"Status": status, "Message": message});
    if let Some(m) = model {
        v["Model"] = json!(m);
    }
    v
}

impl Inner {
    async fn run(&self, job: LedgerJob) {
        let request: TranscriptionRequest = match serde_json::from_value(job.request.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job = %job.job_id, error = %e, "ledger holds an unreadable transcription request");
                let outcome = json!({"status": "FAILED", "failureReason": format!("stored request does not parse: {e}")});
                self.finish_and_announce(&job, outcome).await;
                return;
            }
        };
        if let Some(outcome) = stored_outcome(&job) {
            // Finished before a restart but not announced: announce only.
            self.announce(&job, outcome.clone()).await;
            return;
        }
        let outcome = match self.hear(&job, &request).await {
            Ok(o) => o,
            Err(reason) => {
                tracing::warn!(job = %job.job_id, %reason, "transcription failed");
                json!({"status": "FAILED", "failureReason": reason})
            }
        };
        self.finish_and_announce(&job, outcome).await;
    }

    /// Store the outcome while the job is still SUBMITTED, publish, then mark it finished: a
    /// notified consumer reads the job at once and finds it, and a crash before the final mark
    /// re-publishes on resume without hearing the media again.
    async fn finish_and_announce(&self, job: &LedgerJob, outcome: Value) {
        let stored = self
            .runner
            .persist("recording the transcription", &job.job_id, || {
                self.ledger.finish(
                    TRANSCRIBE_SERVICE,
                    &job.job_id,
                    STATUS_SUBMITTED,
                    outcome.clone(),
                )
            })
            .await;
        if stored.is_some() {
            self.announce(job, outcome).await;
        }
    }

    async fn announce(&self, job: &LedgerJob, outcome: Value) {
        let completed = outcome.get("status").and_then(Value::as_str) == Some("COMPLETED");
        let change = TranscriptionJobStateChange {
            job_name: job.job_id.clone(),
            state: if completed {
                TranscriptionState::Completed
            } else {
                TranscriptionState::Failed
            },
            failure_reason: outcome
                .get("failureReason")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let entry = job_state_change_entry(&change, Some(self.clock.now_ms()));
        let published = self
            .runner
            .persist("announcing the transcription", &job.job_id, || {
                self.bus.put_events(std::slice::from_ref(&entry))
            })
            .await;
        if published.is_none() {
            return;
        }
        let status = if completed {
            STATUS_COMPLETE
        } else {
            STATUS_ERROR
        };
        self.runner
            .persist(
                "marking the announced transcription finished",
                &job.job_id,
                || {
                    self.ledger
                        .finish(TRANSCRIBE_SERVICE, &job.job_id, status, outcome.clone())
                },
            )
            .await;
    }

    /// Run the models: speech activity on every track with sound, the transcript of the main
    /// track; write the transcript where the request says. `Err`: the job fails with that cause.
    async fn hear(&self, job: &LedgerJob, request: &TranscriptionRequest) -> Result<Value, String> {
        let scratch = job_scratch(&self.config, &job.job_id).map_err(|e| e.to_string())?;
        let media = local_input(&self.blobs, &request.source, scratch.path())
            .await
            .map_err(|e| format!("reading {}: {e}", request.source))?
            .ok_or_else(|| {
                format!(
                    "The media file {} could not be read: it does not exist",
                    request.source
                )
            })?;
        let engine = self.engine.clone();
        let (tracks, main) = (request.speech_tracks.clone(), request.audio_track);
        let heard = tokio::task::spawn_blocking(move || {
            let mut speech = Vec::new();
            let mut speech_status = None;
            let main_listened = tracks.contains(&main);
            for t in tracks {
                match engine.speech(&media, t) {
                    Ok(iv) => speech.extend(iv),
                    Err(SpeechEngineError::NotInstalled { model, message }) => {
                        speech_status =
                            Some(analysis_status("NOT_INSTALLED", Some(&model), &message));
                        speech.clear();
                        break;
                    }
                    Err(SpeechEngineError::Failed(m)) => {
                        return Err(format!("speech activity on track {t}: {m}"))
                    }
                }
            }
            let transcript = if main_listened
                && speech_status.is_none()
                && !speech.iter().any(|s| s.track == main)
            {
                // Speech activity heard no one on the main track (music, tone, silence): the
                // transcript is empty, as the breaks already assume, without Whisper's minutes.
                no_speech_transcript(main)
            } else {
                match engine.transcribe(&media, main) {
                    Ok(t) => serde_json::to_value(t)
                        .map_err(|e| format!("transcript does not serialize: {e}"))?,
                    Err(SpeechEngineError::NotInstalled { model, message }) => json!({
                        "status": "COMPLETED",
                        "results": {"transcripts": [], "items": []},
                        "CuepointAnalysis": analysis_status("NOT_INSTALLED", Some(&model), &message),
                    }),
                    Err(SpeechEngineError::Failed(m)) => {
                        return Err(format!("transcription of track {main}: {m}"))
                    }
                }
            };
            speech.sort_by_key(|s| (s.track, s.start_timestamp));
            let mut results = SpeechResults {
                job_status: Some("SUCCEEDED".into()),
                speech,
                ..Default::default()
            };
            if let Some(status) = speech_status {
                results.extra.insert("CuepointAnalysis".into(), status);
            }
            Ok::<_, String>((transcript, results))
        })
        .await
        .map_err(|e| format!("the speech models stopped: {e}"))??;
        let (mut transcript, speech) = heard;
        if let Value::Object(m) = &mut transcript {
            m.insert("jobName".into(), json!(job.job_id));
            m.entry("status").or_insert(json!("COMPLETED"));
        }
        let body = serde_json::to_vec_pretty(&transcript).map_err(|e| e.to_string())?;
        self.blobs
            .put(&request.output, body, "application/json")
            .await
            .map_err(|e| format!("writing the transcript to {}: {e}", request.output))?;
        Ok(json!({
            "status": "COMPLETED",
            "transcript": request.output.to_string(),
            "speech": serde_json::to_value(&speech).map_err(|e| e.to_string())?,
        }))
    }
}

/// The installed speech models: silero VAD (tract-onnx) for speech activity, Whisper through
/// faster-whisper for the transcript (`cuepoint-speech`). A model that is not installed gives
/// `NotInstalled`; one that fails, `Failed` with its cause.
pub struct ModelSpeechEngine {
    models_dir: std::path::PathBuf,
    /// The last track decoded for speech activity, kept for its transcription: the main
    /// dialogue track is decoded once, not twice. Taken (emptied) by `transcribe`.
    decoded: std::sync::Mutex<Option<DecodedTrack>>,
}

struct DecodedTrack {
    media: std::path::PathBuf,
    track: u32,
    samples: Vec<f32>,
}

fn speech_error(e: cuepoint_speech::SpeechError, model: &str) -> SpeechEngineError {
    if e.is_not_installed() {
        SpeechEngineError::NotInstalled {
            model: model.to_string(),
            message: e.to_string(),
        }
    } else {
        SpeechEngineError::Failed(e.to_string())
    }
}

impl ModelSpeechEngine {
    pub fn new(models_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            decoded: std::sync::Mutex::new(None),
        }
    }

    /// The samples `speech` decoded for this track, if it was the last one it decoded.
    fn take_decoded(&self, media: &Path, track: u32) -> Option<Vec<f32>> {
        let kept = self
            .decoded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        (kept.media == media && kept.track == track).then_some(kept.samples)
    }

    fn decode(&self, media: &Path, track: u32) -> Result<Vec<f32>, SpeechEngineError> {
        let tools =
            crate::tools::Tools::locate().map_err(|e| SpeechEngineError::Failed(e.to_string()))?;
        // Called on a blocking thread of the runtime: wait for the async decode here.
        tokio::runtime::Handle::current()
            .block_on(cuepoint_speech::decode_track_16k(
                &tools.ffmpeg,
                media,
                track,
            ))
            .map_err(|e| SpeechEngineError::Failed(e.to_string()))
    }
}

impl SpeechEngine for ModelSpeechEngine {
    fn speech(&self, media: &Path, track: u32) -> Result<Vec<SpeechInterval>, SpeechEngineError> {
        let vad = cuepoint_speech::Vad::from_models_dir(&self.models_dir)
            .map_err(|e| speech_error(e, "silero-vad"))?;
        let samples = self.decode(media, track)?;
        let found = vad
            .detect(
                &samples,
                &cuepoint_core::speech::VadParams::default(),
                track,
            )
            .map_err(|e| speech_error(e, "silero-vad"))?;
        *self.decoded.lock().unwrap_or_else(|p| p.into_inner()) = Some(DecodedTrack {
            media: media.to_path_buf(),
            track,
            samples,
        });
        Ok(found)
    }

    fn transcribe(&self, media: &Path, track: u32) -> Result<Transcript, SpeechEngineError> {
        let not = |e| speech_error(e, "whisper-base");
        let engine =
            cuepoint_speech::TranscriptionEngine::from_models_dir(&self.models_dir).map_err(not)?;
        let model = cuepoint_speech::models::whisper_model_dir(&self.models_dir).map_err(not)?;
        // The engine reads a file's first audio stream: hand it the one track, decoded.
        let samples = match self.take_decoded(media, track) {
            Some(samples) => samples,
            None => self.decode(media, track)?,
        };
        let dir = tempfile::tempdir().map_err(|e| SpeechEngineError::Failed(e.to_string()))?;
        let wav = dir.path().join(format!("track-{track}.wav"));
        cuepoint_speech::write_wav_16k(&wav, &samples).map_err(not)?;
        let t =
            cuepoint_speech::transcribe(&engine, &model, &wav, &Default::default()).map_err(not)?;
        Ok(t.transcript)
    }
}

/// The speech engine of a build without the speech models' runtime: every analysis completes
/// marked `NOT_INSTALLED`, saying where the models are looked for.
pub struct NoSpeechModels {
    pub models_dir: std::path::PathBuf,
}

impl SpeechEngine for NoSpeechModels {
    fn speech(&self, _media: &Path, _track: u32) -> Result<Vec<SpeechInterval>, SpeechEngineError> {
        Err(SpeechEngineError::NotInstalled {
            model: "silero-vad".into(),
            message: format!(
                "model silero-vad is not installed in {}; run `cuepoint models install`",
                self.models_dir.display()
            ),
        })
    }
    fn transcribe(&self, _media: &Path, _track: u32) -> Result<Transcript, SpeechEngineError> {
        Err(SpeechEngineError::NotInstalled {
            model: "whisper-base".into(),
            message: format!(
                "model whisper-base is not installed in {}; run `cuepoint models install`",
                self.models_dir.display()
            ),
        })
    }
}
