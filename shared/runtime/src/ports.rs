//! Ports: the small traits between cuepoint's workers and the world.
//!
//! Each has an embedded implementation (SQLite + files + FFmpeg, crate `cuepoint-embedded` /
//! `cuepoint-engine`) and an AWS one (crate `cuepoint-aws`). Workers see only these traits.
//! Completion of transcoder and analyzer jobs arrives as events on a queue, never by polling.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cuepoint_core::asset::Asset;
use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::envelope::PutEventsEntry;
use cuepoint_core::rekognition::AnalysisKind;
use serde::{Deserialize, Serialize};

/// How a port call failed. Callers match on the kind: transient failures are retried with
/// backoff, permanent ones fail the message (and eventually dead-letter it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Throttling, 5xx, timeouts, a locked database: try again later.
    #[error("transient: {0}")]
    Transient(String),
    /// The request can never succeed as sent.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

impl PortError {
    pub fn is_transient(&self) -> bool {
        matches!(self, PortError::Transient(_))
    }
}

pub type PortResult<T> = Result<T, PortError>;

// ---------------------------------------------------------------------------------------------
// Queue

/// A message as received from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Handle for delete / change-visibility of *this* receive.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included (SQS
    /// `ApproximateReceiveCount`).
    pub receive_count: u32,
    /// When the message was sent, ms since the epoch (SQS `SentTimestamp`), when known: for a
    /// routed event, when it was published.
    pub sent_at_ms: Option<u64>,
}

/// One queue (an SQS queue URL, or a named queue in the embedded database). Messages received
/// more than the queue's max-receive count go to its dead-letter queue (SQS redrive policy).
#[async_trait]
pub trait Queue: Send + Sync {
    fn name(&self) -> &str;
    /// Receive up to `max` messages, waiting up to `wait` for the first (long polling); each is
    /// invisible to other consumers for `visibility`.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>>;
    /// Delete finished messages (batch). Deleting an already-deleted message is not an error.
    async fn delete(&self, receipts: &[String]) -> PortResult<()>;
    /// Extend (heartbeat) or shorten (release for retry) a message's invisibility.
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> PortResult<()>;
    /// Send a message, visible after `delay`.
    async fn send(&self, body: &str, delay: Duration) -> PortResult<String>;
    /// Remember why a message failed, so a dead-lettered copy can be shown with its reason.
    async fn record_failure(&self, message: &ReceivedMessage, reason: &str) -> PortResult<()>;
}

/// A message in a dead-letter queue, with the last failure recorded for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub reason: Option<String>,
    pub dead_lettered_at_ms: Option<u64>,
}

/// Operator access to dead-letter queues (`cuepoint dlq ...`).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// The source queues that have a DLQ, with how many messages each DLQ holds.
    async fn counts(&self) -> PortResult<Vec<(String, u64)>>;
    async fn list(&self, source_queue: &str, limit: usize) -> PortResult<Vec<DeadLetter>>;
    /// Move dead letters back to their source queue (SQS StartMessageMoveTask). Returns how many
    /// were moved (or, on AWS, how many the move task will move).
    async fn replay(&self, source_queue: &str) -> PortResult<u64>;
}

// ---------------------------------------------------------------------------------------------
// Event bus and notification topic

/// EventBridge: publish events; rules (see `cuepoint_core::routing`) route them to queues.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publish all entries (batched and retried by the adapter); error if any entry failed for good.
    async fn put_events(&self, entries: &[PutEventsEntry]) -> PortResult<()>;
}

/// SNS: the topic Rekognition notifies; subscriptions deliver to queues.
#[async_trait]
pub trait Topic: Send + Sync {
    async fn publish(&self, message: &str) -> PortResult<String>;
}

// ---------------------------------------------------------------------------------------------
// Asset store

/// A conditional write of an asset record.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetWrite {
    /// The record to store. Its `version` must be `expected_version + 1` (or 1 on create).
    pub asset: Asset,
    /// `None`: create, the asset must not exist. `Some(v)`: the stored version must be `v`.
    pub expected_version: Option<u64>,
    /// A counter that must move in the same transaction (e.g. open Rekognition jobs).
    pub counter: Option<CounterDelta>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    pub name: String,
    pub delta: i64,
    /// Refuse the whole write if the counter would go above this.
    pub max: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The condition failed: someone else wrote first (or the asset exists / does not exist).
    #[error("conditional write lost for asset {asset}: {detail}")]
    Conflict { asset: AssetId, detail: String },
    /// The counter would pass its maximum.
    #[error("counter {name} is at its limit {max}")]
    CounterLimit { name: String, max: i64 },
    #[error(transparent)]
    Port(#[from] PortError),
}

#[async_trait]
pub trait AssetStore: Send + Sync {
    async fn get(&self, id: &AssetId) -> PortResult<Option<Asset>>;
    async fn commit(&self, write: AssetWrite) -> Result<(), StoreError>;
    /// All assets (operator views; the embedded store and small tables).
    async fn list(&self) -> PortResult<Vec<Asset>>;
    async fn counter(&self, name: &str) -> PortResult<i64>;
}

// ---------------------------------------------------------------------------------------------
// Blob store

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub etag: Option<String>,
}

/// One object of `BlobStore::put_many`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPut {
    pub uri: S3Uri,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// S3 (or a directory tree), addressed by `s3://bucket/key`.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// `Ok(None)` when the object does not exist.
    async fn get(&self, uri: &S3Uri) -> PortResult<Option<Vec<u8>>>;
    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>, content_type: &str) -> PortResult<()>;
    /// Store several objects, each as `put` does (each one atomic on its own; not the set):
    /// all of them are stored when it returns `Ok`. A store that can share work between them
    /// (one fsync per directory) does.
    async fn put_many(&self, objects: Vec<BlobPut>) -> PortResult<()> {
        for o in objects {
            self.put(&o.uri, o.bytes, o.content_type).await?;
        }
        Ok(())
    }
    async fn head(&self, uri: &S3Uri) -> PortResult<Option<BlobMeta>>;
    /// Keys under a prefix (recursive).
    async fn list(&self, prefix: &S3Uri) -> PortResult<Vec<S3Uri>>;
    /// Upload a local file (large media) to `uri`.
    async fn put_file(
        &self,
        uri: &S3Uri,
        path: &std::path::Path,
        content_type: &str,
    ) -> PortResult<()>;
    /// A location FFmpeg can read the object from: a local path (embedded) or a presigned URL (AWS).
    async fn readable_location(&self, uri: &S3Uri) -> PortResult<String>;
    /// A local directory mirror, when blobs *are* files (embedded): lets the local engine write
    /// outputs in place. `None` on S3.
    fn local_path(&self, _uri: &S3Uri) -> Option<PathBuf> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Media probing

/// ffprobe (or MediaInfo) on a source object.
#[async_trait]
pub trait Prober: Send + Sync {
    async fn probe(&self, location: &str) -> Result<cuepoint_core::asset::ProbeInfo, ProbeError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The file is not usable media (zero bytes, corrupt, no streams...): the asset fails.
    #[error("unusable media: {0}")]
    Unusable(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

// ---------------------------------------------------------------------------------------------
// Transcoder (MediaConvert)

/// A transcode job request: MediaConvert job settings plus what cuepoint adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscodeRequest {
    pub asset_id: AssetId,
    /// Idempotency token (MediaConvert `ClientRequestToken`).
    pub client_token: String,
    /// MediaConvert `Settings` JSON (inputs, output groups).
    pub settings: serde_json::Value,
    /// MediaConvert `UserMetadata`: carries `assetId` and `workflow`.
    pub user_metadata: BTreeMap<String, String>,
}

#[async_trait]
pub trait Transcoder: Send + Sync {
    /// Create the job (or return the one this token already created). Completion is announced
    /// as a "MediaConvert Job State Change" event, never polled.
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String>;
    /// A job already created for this asset, if any: guards against a second job when a
    /// message is redelivered after the token's idempotency window has passed.
    async fn find_job(&self, asset_id: &AssetId) -> PortResult<Option<String>>;
    /// The newest job created for this asset whose `UserMetadata[key]` is `value`: the same
    /// guard for a job of one kind (the packaging job of one VMAP version) when the asset has
    /// several.
    async fn find_tagged_job(
        &self,
        asset_id: &AssetId,
        key: &str,
        value: &str,
    ) -> PortResult<Option<String>>;
}

// ---------------------------------------------------------------------------------------------
// Video analyzer (Rekognition Video)

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRequest {
    pub kind: AnalysisKind,
    pub video: S3Uri,
    /// `ClientRequestToken`.
    pub client_token: String,
    /// `JobTag`: the asset id.
    pub job_tag: String,
}

/// One page of a Get* response (the raw JSON, AWS field names) and the token for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsPage {
    pub body: serde_json::Value,
    pub next_token: Option<String>,
}

#[async_trait]
pub trait VideoAnalyzer: Send + Sync {
    /// Start a job; completion arrives as a Rekognition notification (SNS → SQS).
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String>;
    async fn get_page(
        &self,
        kind: AnalysisKind,
        job_id: &str,
        next_token: Option<&str>,
    ) -> PortResult<ResultsPage>;
}

// ---------------------------------------------------------------------------------------------
// Transcriber (Amazon Transcribe)

/// A transcription job: the main dialogue track to text, plus the speech activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionRequest {
    /// `TranscriptionJobName` (`<workflow>-<asset id>`). Transcribe takes no client token: a
    /// job name is unique in the account and region, so the name is the idempotency key.
    pub job_name: String,
    pub asset_id: AssetId,
    /// The upload, with every audio track (the local engine decodes tracks from it).
    pub source: S3Uri,
    /// A small rendition whose only audio is the template's dialogue track (Amazon Transcribe
    /// reads it: it cannot pick a track out of a multi-track file).
    pub media: S3Uri,
    /// The main dialogue track (1-based): the loudest track with sound.
    pub audio_track: u32,
    /// Every track with sound (1-based): where the local engine measures speech activity.
    pub speech_tracks: Vec<u32>,
    /// Where the transcript lands (`OutputBucketName` + `OutputKey`), inside the results layout.
    pub output: S3Uri,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TranscriptionStatus {
    InProgress,
    Completed,
    Failed,
}

/// What GetTranscriptionJob tells about a job.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionJob {
    pub job_name: String,
    pub status: TranscriptionStatus,
    pub failure_reason: Option<String>,
    /// Where the transcript (Transcribe's output JSON) was written.
    pub transcript: Option<S3Uri>,
    /// Speech activity the engine measured itself (`speech.json` shape: the local engine runs a
    /// VAD on every track with sound). `None`: derive it from the transcript's word times.
    pub speech: Option<serde_json::Value>,
}

#[async_trait]
pub trait Transcriber: Send + Sync {
    /// Start the job, or find the one already started under this name. Completion arrives as a
    /// "Transcribe Job State Change" event on the bus, never polled.
    async fn start(&self, request: &TranscriptionRequest) -> PortResult<String>;
    async fn get(&self, job_name: &str) -> PortResult<TranscriptionJob>;
}

// ---------------------------------------------------------------------------------------------
// Clock

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Everything a worker may touch, wired once by the binary.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn AssetStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub bus: Arc<dyn EventBus>,
    pub prober: Arc<dyn Prober>,
    pub transcoder: Arc<dyn Transcoder>,
    pub analyzer: Arc<dyn VideoAnalyzer>,
    pub transcriber: Arc<dyn Transcriber>,
    pub clock: Arc<dyn Clock>,
}

// ---------------------------------------------------------------------------------------------
// Job ledger (local stand-ins for MediaConvert, Rekognition and Transcribe)

/// The service a local engine job plays. Stored as `mediaconvert` / `rekognition` /
/// `transcribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerService {
    MediaConvert,
    Rekognition,
    Transcribe,
}

impl LedgerService {
    pub const ALL: [LedgerService; 3] = [Self::MediaConvert, Self::Rekognition, Self::Transcribe];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MediaConvert => "mediaconvert",
            Self::Rekognition => "rekognition",
            Self::Transcribe => "transcribe",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for LedgerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a local engine job is. Stored as `SUBMITTED` / `COMPLETE` / `ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerStatus {
    /// Accepted, still to run (resumed after a restart).
    Submitted,
    /// Finished and announced.
    Complete,
    /// Failed and announced.
    Error,
}

impl LedgerStatus {
    pub const ALL: [LedgerStatus; 3] = [Self::Submitted, Self::Complete, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::Complete => "COMPLETE",
            Self::Error => "ERROR",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for LedgerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job the local media engine accepted, keyed by (service, client token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerJob {
    pub service: LedgerService,
    pub job_id: String,
    pub client_token: String,
    pub asset_id: String,
    /// The request as submitted (job settings, or the analysis request).
    pub request: serde_json::Value,
    pub status: LedgerStatus,
    /// Outcome: output paths, results, or the error.
    pub result: Option<serde_json::Value>,
    pub created_at_ms: u64,
}

/// Durable record of local engine jobs: makes submission idempotent by token and lets the
/// engine resume unfinished jobs after a crash.
#[async_trait]
pub trait JobLedger: Send + Sync {
    /// Insert `job` unless a job with the same (service, client_token) exists; return the
    /// stored job and whether it was created now.
    async fn create_or_get(&self, job: &LedgerJob) -> PortResult<(LedgerJob, bool)>;
    async fn get(&self, service: LedgerService, job_id: &str) -> PortResult<Option<LedgerJob>>;
    async fn find_by_asset(
        &self,
        service: LedgerService,
        asset_id: &str,
    ) -> PortResult<Vec<LedgerJob>>;
    async fn finish(
        &self,
        service: LedgerService,
        job_id: &str,
        status: LedgerStatus,
        result: serde_json::Value,
    ) -> PortResult<()>;
    /// Jobs still `SUBMITTED` (to resume after a restart).
    async fn unfinished(&self, service: LedgerService) -> PortResult<Vec<LedgerJob>>;
}
