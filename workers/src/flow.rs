//! The steps every handler shares: load the asset, apply an event through the pure state
//! machine, commit it with a conditional write, announce the next step.
//!
//! Idempotency lives here. A redelivered message finds its effect already in the record
//! (`Transition::AlreadyApplied`) and only re-announces; the announcement has a deterministic
//! event id, so the copy is recognisable downstream. A lost race (conditional write conflict)
//! means another writer committed first (typically a sibling analysis finishing at the same
//! moment): the record is re-read and the event re-applied at once, a few times, before the
//! message goes back to the queue's retry backoff.

use cuepoint_core::asset::{
    transition, Asset, AssetEvent, FailureStage, Transition, TransitionError,
};
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_runtime::consumer::HandlerError;
use cuepoint_runtime::ports::{AssetWrite, BlobPut, CounterDelta, StoreError};
use std::sync::atomic::Ordering;

use crate::context::{WorkerContext, OPEN_JOBS_COUNTER};

/// Conditional writes tried per delivery before a lost race becomes a transient failure (the
/// queue's backoff). Every loss means another writer made progress on the same asset, and at
/// most one writer per analysis kind can be in flight, so a handful of attempts is plenty.
pub const WRITE_ATTEMPTS: u32 = 8;

/// What applying an event did.
#[derive(Debug)]
pub enum Advanced {
    /// Stored; here is the new record.
    Applied(Asset),
    /// Already in the record (a redelivery); here is the record as stored.
    AlreadyApplied(Asset),
    /// Not applicable and never will be (a stale job, an event for a finished asset): dropped.
    Ignored(String),
}

impl Advanced {
    /// The record the event leaves behind (applied now or by an earlier delivery), or `None`
    /// when it was ignored; `what` names the step in the log line that says so.
    pub fn recorded(self, what: &str) -> Option<Asset> {
        match self {
            Advanced::Applied(a) | Advanced::AlreadyApplied(a) => Some(a),
            Advanced::Ignored(why) => {
                tracing::warn!(%why, "{what} not recorded");
                None
            }
        }
    }
}

/// Load an asset; an event naming an asset we never registered is a poison message.
pub async fn load(ctx: &WorkerContext, id: &AssetId) -> Result<Asset, HandlerError> {
    tracing::Span::current().record("asset_id", id.as_str());
    match ctx.ports.store.get(id).await? {
        Some(a) => Ok(a),
        None => Err(HandlerError::Permanent(format!(
            "event for unknown asset {id}"
        ))),
    }
}

/// Naps, in milliseconds, while an early event waits for the write that makes it applicable
/// (0.13 s in all; then the queue's retry backoff takes over). Short: a wait that is not a
/// race of a few milliseconds (the analyses held back by the open-jobs cap) must not keep the
/// results worker's slots from the completions that free the cap.
pub const EARLY_NAPS_MS: [u64; 6] = [2, 4, 8, 16, 32, 64];

/// Load an asset; while `early` says the event came before the write that makes it applicable
/// (a job's completion overtaking the write that records the job's start, usually by a few
/// milliseconds), re-read it after short naps rather than handing the message back to the
/// queue's retry backoff (a second or more) at once. The caller judges the record it gets.
pub async fn load_when_ready(
    ctx: &WorkerContext,
    id: &AssetId,
    early: impl Fn(&Asset) -> bool,
) -> Result<Asset, HandlerError> {
    let mut asset = load(ctx, id).await?;
    if !early(&asset) {
        return Ok(asset);
    }
    ctx.races.early_waited.fetch_add(1, Ordering::Relaxed);
    for nap in EARLY_NAPS_MS {
        tokio::time::sleep(std::time::Duration::from_millis(nap)).await;
        asset = load(ctx, id).await?;
        if !early(&asset) {
            break;
        }
    }
    Ok(asset)
}

/// Apply `event` to `asset` and commit it (with an optional counter move in the same write).
/// A lost race re-reads the record and applies the event again (see `WRITE_ATTEMPTS`).
pub async fn advance(
    ctx: &WorkerContext,
    asset: &Asset,
    event: AssetEvent,
    counter: Option<CounterDelta>,
) -> Result<Advanced, HandlerError> {
    advance_with(ctx, asset, |_| (event.clone(), counter.clone())).await
}

/// `advance` with the event and counter move decided from the record as it stands at each
/// attempt (a re-read record may call for a different counter move).
pub async fn advance_with(
    ctx: &WorkerContext,
    asset: &Asset,
    decide: impl Fn(&Asset) -> (AssetEvent, Option<CounterDelta>),
) -> Result<Advanced, HandlerError> {
    // This process's handlers of the asset commit in turn, each from the newest record the
    // others left (see `crate::latest`); the conditional write still guards against other
    // processes.
    let slot = ctx.latest.slot(&asset.id);
    let mut newest = slot.lock().await;
    let mut current = match newest.as_ref() {
        Some(n) if n.version > asset.version => std::borrow::Cow::Owned(n.clone()),
        _ => std::borrow::Cow::Borrowed(asset),
    };
    let mut attempt = 1;
    loop {
        let (event, counter) = decide(&current);
        let next = match transition(&current, &event, ctx.now_ms()) {
            Ok(Transition::AlreadyApplied) => {
                return Ok(Advanced::AlreadyApplied(current.into_owned()))
            }
            Ok(Transition::Applied(next)) => next,
            Err(e) => return classify(&current, e),
        };
        let mut next = *next;
        next.version = current.version + 1;
        let write = AssetWrite {
            asset: next.clone(),
            expected_version: Some(current.version),
            counter,
        };
        match ctx.ports.store.commit(write).await {
            Ok(()) => {
                tracing::info!(asset_id = %next.id, from = %current.state, to = %next.state, event = event.name(), "asset advanced");
                if next.state.is_terminal() {
                    drop(newest);
                    ctx.latest.forget(&next.id);
                } else {
                    *newest = Some(next.clone());
                }
                return Ok(Advanced::Applied(next));
            }
            Err(StoreError::Conflict { detail, .. }) if attempt >= WRITE_ATTEMPTS => {
                ctx.races.exhausted.fetch_add(1, Ordering::Relaxed);
                return Err(HandlerError::Transient(format!(
                    "lost a conditional write {attempt} times in a row ({detail}); will re-read"
                )));
            }
            Err(StoreError::Conflict { detail, .. }) => {
                ctx.races.reapplied.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(asset_id = %current.id, attempt, %detail, "lost a conditional write; re-reading");
                let stored = load(ctx, &current.id).await?;
                *newest = Some(stored.clone());
                current = std::borrow::Cow::Owned(stored);
                attempt += 1;
            }
            Err(e @ StoreError::CounterLimit { .. }) => {
                return Err(HandlerError::Delay {
                    after: std::time::Duration::from_secs(ctx.settings.analysis.cap_retry_seconds),
                    reason: e.to_string(),
                })
            }
            Err(StoreError::Port(p)) => return Err(p.into()),
        }
    }
}

/// Decide what an illegal transition means for the message that carried it.
fn classify(asset: &Asset, e: TransitionError) -> Result<Advanced, HandlerError> {
    match &e {
        // The asset is finished (or failed): late or stale events change nothing.
        TransitionError::Illegal { state, .. } if state.is_terminal() => {
            Ok(Advanced::Ignored(e.to_string()))
        }
        // The event arrived before the step that makes it legal was recorded (reordering, or a
        // crash between starting a job and recording it): retry until it is.
        TransitionError::Illegal { .. } | TransitionError::UnknownAnalysis { .. } => {
            Err(HandlerError::Transient(e.to_string()))
        }
        // The job is not recorded yet (the write that records it is still in flight).
        TransitionError::UnknownJob { expected: None, .. } => {
            Err(HandlerError::Transient(e.to_string()))
        }
        // A job we did not record for this asset (a stale duplicate): drop it.
        TransitionError::UnknownJob { .. } => {
            tracing::warn!(asset_id = %asset.id, error = %e, "ignoring event for a job this asset does not own");
            Ok(Advanced::Ignored(e.to_string()))
        }
        TransitionError::NoAnalyses { .. }
        | TransitionError::EditVersion { .. }
        | TransitionError::NotRetriable { .. }
        | TransitionError::RetryAttempt { .. } => Err(HandlerError::Permanent(e.to_string())),
    }
}

/// Publish pipeline events.
pub async fn announce(ctx: &WorkerContext, events: &[PipelineEvent]) -> Result<(), HandlerError> {
    if events.is_empty() {
        return Ok(());
    }
    let now = ctx.now_ms();
    let entries: Vec<_> = events.iter().map(|e| e.to_entry(Some(now))).collect();
    for e in events {
        tracing::info!(event_id = %e.event_id, detail_type = e.detail_type(), "announcing");
    }
    ctx.ports
        .bus
        .put_events(&entries)
        .await
        .map_err(HandlerError::from)
}

/// Fail an asset for good (idempotent) and announce it. Releases its open analysis jobs from
/// the cap counter in the same write.
pub async fn fail(
    ctx: &WorkerContext,
    asset: &Asset,
    stage: FailureStage,
    reason: String,
) -> Result<(), HandlerError> {
    tracing::warn!(asset_id = %asset.id, %stage, %reason, "asset failed");
    // The jobs still open are counted on the record each attempt sees: a sibling completion
    // that won a race has already released its own.
    let decide = |a: &Asset| {
        let pending = a.cap_held() as i64;
        let counter = (pending > 0).then(|| CounterDelta {
            name: OPEN_JOBS_COUNTER.into(),
            delta: -pending,
            max: None,
        });
        (
            AssetEvent::Failed {
                stage,
                reason: reason.clone(),
            },
            counter,
        )
    };
    let Some(a) = advance_with(ctx, asset, decide).await?.recorded("failure") else {
        return Ok(());
    };
    write_record(ctx, &a).await;
    announce_failure(ctx, &a).await
}

/// Announce an asset's recorded failure ("Asset Failed"). Re-announcing after a crash between
/// the write and the announcement reuses the first announcement's event id.
pub async fn announce_failure(ctx: &WorkerContext, asset: &Asset) -> Result<(), HandlerError> {
    let Some(f) = asset.failure.clone() else {
        return Ok(());
    };
    announce(
        ctx,
        &[PipelineEvent::about(
            asset,
            PipelineDetail::AssetFailed {
                stage: f.stage,
                reason: f.reason,
            },
        )],
    )
    .await
}

/// Store several result files of an asset (`(layout name, bytes, content type)`), all of
/// them before the caller goes on: side by side in the results directory, they share its
/// fsync on the embedded blob store (`BlobStore::put_many`).
pub async fn put_results(
    ctx: &WorkerContext,
    id: &AssetId,
    files: Vec<(impl AsRef<str>, Vec<u8>, &'static str)>,
) -> Result<(), HandlerError> {
    let objects = files
        .into_iter()
        .map(|(rel, bytes, content_type)| BlobPut {
            uri: ctx.result_uri(id, rel.as_ref()),
            bytes,
            content_type,
        })
        .collect();
    ctx.ports.blobs.put_many(objects).await?;
    Ok(())
}

/// Save the asset record next to its results (`asset.json`), best effort: the store is the
/// source of truth, this copy is for people browsing the results.
pub async fn write_record(ctx: &WorkerContext, asset: &Asset) {
    let uri = ctx.result_uri(&asset.id, cuepoint_core::results::ASSET);
    let body = serde_json::to_vec_pretty(asset).unwrap_or_default();
    if let Err(e) = ctx.ports.blobs.put(&uri, body, "application/json").await {
        tracing::warn!(error = %e, "could not write asset.json");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use cuepoint_core::asset::{AssetState, JobRecord, JobStatus, ProbeInfo};
    use cuepoint_core::domain::{BucketName, ObjectKey, SourceObject};
    use cuepoint_core::rekognition::AnalysisKind;

    use super::*;
    use crate::testkit::Kit;

    fn registered(kit: &Kit) -> Asset {
        let source = SourceObject {
            bucket: BucketName::parse("cuepoint-ingest").unwrap(),
            key: ObjectKey::parse("uploads/a.mov").unwrap(),
            version_id: None,
            etag: Some("e".into()),
            size: Some(1),
        };
        let id = AssetId::for_source(&source);
        let a = Asset::register(source, ProbeInfo::default(), kit.ctx.results_prefix(&id), 1);
        kit.put_asset(&a);
        a
    }

    fn submitted(job_id: &str) -> AssetEvent {
        AssetEvent::TranscodeSubmitted {
            job: JobRecord {
                job_id: job_id.into(),
                client_token: "t".into(),
                submitted_at_ms: 1,
                status: JobStatus::Submitted,
                reason: None,
            },
        }
    }

    #[test]
    fn classify_decides_per_transition_error() {
        let kit = Kit::new();
        let a = registered(&kit);
        let id = a.id.clone();
        let illegal = |state| TransitionError::Illegal {
            asset: id.clone(),
            state,
            event: "Scored",
        };
        let unknown_job = |expected: Option<&str>| TransitionError::UnknownJob {
            asset: id.clone(),
            event: "MediaPrepared",
            expected: expected.map(str::to_string),
            got: "mc-9".into(),
        };
        // Finished assets ignore late events.
        assert!(matches!(
            classify(&a, illegal(AssetState::Complete)),
            Ok(Advanced::Ignored(_))
        ));
        assert!(matches!(
            classify(&a, illegal(AssetState::Failed)),
            Ok(Advanced::Ignored(_))
        ));
        // Too early: retried until the step that makes it legal is recorded.
        assert!(matches!(
            classify(&a, illegal(AssetState::Transcoding)),
            Err(HandlerError::Transient(_))
        ));
        let unknown_analysis = TransitionError::UnknownAnalysis {
            asset: id.clone(),
            kind: AnalysisKind::Labels,
        };
        assert!(matches!(
            classify(&a, unknown_analysis),
            Err(HandlerError::Transient(_))
        ));
        assert!(matches!(
            classify(&a, unknown_job(None)),
            Err(HandlerError::Transient(_))
        ));
        // Another job than the recorded one: a stale duplicate, dropped.
        assert!(matches!(
            classify(&a, unknown_job(Some("mc-1"))),
            Ok(Advanced::Ignored(_))
        ));
        // A bug, not a timing: never retried.
        let none = TransitionError::NoAnalyses { asset: id };
        assert!(matches!(
            classify(&a, none),
            Err(HandlerError::Permanent(_))
        ));
    }

    #[tokio::test]
    async fn advance_commits_once_and_recognises_a_redelivery() {
        let kit = Kit::new();
        let a = registered(&kit);
        let Advanced::Applied(next) = advance(&kit.ctx, &a, submitted("mc-1"), None)
            .await
            .unwrap()
        else {
            panic!("expected applied")
        };
        assert_eq!((next.version, next.state), (2, AssetState::Transcoding));
        assert_eq!(kit.asset(&a.id), next);
        let commits = kit.store.commits.load(Ordering::SeqCst);
        let again = advance(&kit.ctx, &next, submitted("mc-1"), None)
            .await
            .unwrap();
        assert!(matches!(&again, Advanced::AlreadyApplied(r) if *r == next));
        assert_eq!(
            kit.store.commits.load(Ordering::SeqCst),
            commits,
            "a redelivery writes nothing"
        );
        assert_eq!(again.recorded("test"), Some(next.clone()));
        let stale = advance(&kit.ctx, &next, submitted("mc-2"), None)
            .await
            .unwrap();
        assert!(matches!(stale, Advanced::Ignored(_)));
        assert_eq!(stale.recorded("test"), None);
    }

    #[tokio::test]
    async fn a_lost_race_is_reapplied_then_transient_and_a_full_counter_delays() {
        let kit = Kit::new();
        let a = registered(&kit);
        // Lost, then won on the re-read record, in one call.
        kit.store.lose_next_race();
        let r = advance(&kit.ctx, &a, submitted("mc-1"), None).await;
        assert!(
            matches!(&r, Ok(Advanced::Applied(n)) if n.version == a.version + 2),
            "{r:?}"
        );
        assert_eq!(kit.ctx.races.reapplied.load(Ordering::SeqCst), 1);

        // Lost every attempt: left to the queue's backoff, with nothing written.
        let kit = Kit::new();
        let a = registered(&kit);
        kit.store.lose_races.store(WRITE_ATTEMPTS, Ordering::SeqCst);
        let r = advance(&kit.ctx, &a, submitted("mc-1"), None).await;
        assert!(
            matches!(&r, Err(HandlerError::Transient(m)) if m.contains("lost a conditional write")),
            "{r:?}"
        );
        assert_eq!(kit.store.commits.load(Ordering::SeqCst), 0);
        assert_eq!(kit.ctx.races.exhausted.load(Ordering::SeqCst), 1);
        // The retry re-reads the record and wins.
        let stored = kit.asset(&a.id);
        assert!(matches!(
            advance(&kit.ctx, &stored, submitted("mc-1"), None).await,
            Ok(Advanced::Applied(_))
        ));

        let b = registered(&Kit::new());
        let kit = Kit::new();
        kit.put_asset(&b);
        let full = CounterDelta {
            name: OPEN_JOBS_COUNTER.into(),
            delta: 5,
            max: Some(4),
        };
        let r = advance(&kit.ctx, &b, submitted("mc-1"), Some(full)).await;
        assert!(matches!(r, Err(HandlerError::Delay { .. })), "{r:?}");
        assert_eq!(kit.asset(&b.id).state, AssetState::Registered);
    }

    #[tokio::test]
    async fn a_handler_with_an_older_record_starts_from_the_one_this_process_committed() {
        let kit = Kit::new();
        let a = registered(&kit);
        let Advanced::Applied(first) = advance(&kit.ctx, &a, submitted("mc-1"), None)
            .await
            .unwrap()
        else {
            panic!("expected applied")
        };
        // Handlers that read the record before that commit: a redelivery is recognised and a
        // new event is applied to the newer record, without losing a write.
        let again = advance(&kit.ctx, &a, submitted("mc-1"), None)
            .await
            .unwrap();
        assert!(matches!(&again, Advanced::AlreadyApplied(r) if *r == first));
        let failed = AssetEvent::Failed {
            stage: FailureStage::Transcode,
            reason: "broken".into(),
        };
        let r = advance(&kit.ctx, &a, failed, None).await.unwrap();
        assert!(
            matches!(&r, Advanced::Applied(n) if n.version == first.version + 1 && n.state == AssetState::Failed),
            "{r:?}"
        );
        assert_eq!(kit.asset(&a.id).version, first.version + 1);
        assert_eq!(kit.store.conflicts.load(Ordering::SeqCst), 0);
        assert_eq!(kit.ctx.races.reapplied.load(Ordering::SeqCst), 0);
        // A finished asset is forgotten.
        assert!(kit.ctx.latest.is_empty());

        // Another process's write is still caught by the conditional write.
        let kit = Kit::new();
        let a = registered(&kit);
        kit.store.lose_next_race();
        let r = advance(&kit.ctx, &a, submitted("mc-1"), None).await;
        assert!(matches!(&r, Ok(Advanced::Applied(_))), "{r:?}");
        assert_eq!(kit.ctx.races.reapplied.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn announce_publishes_events_with_their_ids_and_nothing_for_none() {
        let kit = Kit::new();
        announce(&kit.ctx, &[]).await.unwrap();
        assert!(kit.bus.entries.lock().unwrap().is_empty());
        let a = registered(&kit);
        let events = [
            PipelineEvent::new(a.id.clone(), PipelineDetail::AnalysesCompleted),
            PipelineEvent::new(
                a.id.clone(),
                PipelineDetail::TranscodeSubmitted {
                    job_id: "mc-1".into(),
                },
            ),
        ];
        announce(&kit.ctx, &events).await.unwrap();
        announce(&kit.ctx, &events[..1]).await.unwrap();
        let published = kit.bus.published();
        assert_eq!(published.len(), 3);
        assert_eq!(published[0].1["eventId"], events[0].event_id.as_str());
        assert_eq!(published[1].1["eventId"], events[1].event_id.as_str());
        assert_eq!(
            published[0], published[2],
            "the same event announced again is recognisably the same"
        );
        let entry = &kit.bus.entries.lock().unwrap()[0];
        assert_eq!(entry.time_ms, Some(kit.ctx.now_ms()));
    }
}
