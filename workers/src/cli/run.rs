//! `cuepoint run FILE...`: ingest local files into the embedded pipeline, run every worker in
//! this process until each asset is terminal, print a summary per asset.
//!
//! Durable: kill it at any point and run it again with the same files; the queues, the asset
//! records and the local engine's job ledger live in the data directory, so work resumes where
//! it stopped and no step is done twice.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use cuepoint_core::asset::Asset;
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri};
use cuepoint_core::events::s3::{object_created_entry, ObjectCreated};
use cuepoint_runtime::config::Settings;

use crate::app;
use crate::backend::{build_embedded, Backend};
use crate::cli::summary::{render, summarize_with, AssetSummary};
use crate::handlers::WorkerKind;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Media files to ingest.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print the summaries as one JSON array instead of text.
    #[arg(long)]
    pub json: bool,
    /// Give up waiting after this many seconds (work stays queued for the next run).
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

/// Options every embedded command shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Configuration file (TOML); environment variables CUEPOINT_* override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (database, blobs, outputs). Default: ./cuepoint-data or `data_dir` in the config.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

impl CommonArgs {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = Settings::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            s.data_dir = d.clone();
        }
        Ok(s)
    }
}

pub async fn run(args: &RunArgs) -> anyhow::Result<Vec<AssetSummary>> {
    let mut settings = args.common.settings()?;
    // `run` is the embedded pipeline whatever the configured backend.
    settings.backend = cuepoint_runtime::config::Backend::Embedded;
    let backend = build_embedded(
        &settings,
        true,
        std::sync::Arc::new(cuepoint_runtime::ports::SystemClock),
    )
    .await?;
    let ids = ingest_files(&backend, &settings, &args.files).await?;
    let assets = run_until_terminal(&backend, &ids, Duration::from_secs(args.timeout)).await?;
    let mut out = Vec::new();
    for a in &assets {
        out.push(summarize_with(&settings, backend.ctx.ports.blobs.as_ref(), a).await);
    }
    Ok(out)
}

pub fn print(summaries: &[AssetSummary], json: bool) {
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(summaries).unwrap_or_default()
        );
    } else {
        for s in summaries {
            crate::outln!("{}", render(s));
        }
    }
}

/// Copy each file into the ingest bucket and announce it as S3 would ("Object Created").
pub async fn ingest_files(
    backend: &Backend,
    settings: &Settings,
    files: &[PathBuf],
) -> anyhow::Result<Vec<AssetId>> {
    let blobs = &backend.ctx.ports.blobs;
    let bucket = BucketName::parse(settings.ingest_bucket.clone())?;
    let mut ids = Vec::new();
    for file in files {
        let meta = std::fs::metadata(file).with_context(|| format!("{}", file.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", file.display());
        }
        let key = ObjectKey::parse(format!("uploads/{}", file_name(file)?))?;
        let uri = S3Uri::new(bucket.clone(), key.clone());
        if !already_uploaded(backend, &uri, &meta) {
            blobs
                .put_file(&uri, file, "application/octet-stream")
                .await
                .with_context(|| format!("uploading {}", file.display()))?;
        }
        let head = blobs
            .head(&uri)
            .await?
            .context("uploaded object vanished")?;
        let mut created = ObjectCreated::new(bucket.clone(), key);
        created.size = Some(head.size);
        created.etag = head.etag.clone();
        let id = AssetId::for_source(&created.source_object());
        backend
            .bus()
            .put_events(&[object_created_entry(&created, Some(backend.ctx.now_ms()))])
            .await?;
        tracing::info!(asset_id = %id, file = %file.display(), "ingested");
        ids.push(id);
    }
    Ok(ids)
}

/// Re-running on the same file must not rewrite its upload: the upload's etag names the asset,
/// and a second copy would start a second asset. Same size and an upload no older than the
/// file count as the same file.
fn already_uploaded(backend: &Backend, uri: &S3Uri, source: &std::fs::Metadata) -> bool {
    let Some(p) = backend.ctx.ports.blobs.local_path(uri) else {
        return false;
    };
    let Ok(up) = std::fs::metadata(&p) else {
        return false;
    };
    match (up.modified(), source.modified()) {
        (Ok(u), Ok(s)) => up.len() == source.len() && u >= s,
        _ => false,
    }
}

fn file_name(p: &Path) -> anyhow::Result<String> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no usable file name", p.display()))
}

/// Why `run_until_terminal` returned before every asset was terminal, for callers that treat
/// these apart from other errors (`cuepoint run` exits 0 on a requested stop).
#[derive(Debug, thiserror::Error)]
pub enum RunStopped {
    /// SIGTERM or Ctrl-C: the workers drained; the rest resumes on the next run.
    #[error("stopped on request; in-flight work was finished or left queued; run again to resume")]
    Requested,
    /// Work for an asset was dead-lettered: nothing will move it until the cause is fixed.
    #[error("{}", dead_letter_text(.0))]
    DeadLettered(Vec<DeadLetteredWork>),
}

/// A dead letter that belongs to one of the run's assets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetteredWork {
    pub asset_id: String,
    pub queue: String,
    pub message_id: String,
    pub receive_count: u32,
    pub reason: String,
}

fn dead_letter_text(work: &[DeadLetteredWork]) -> String {
    let mut out = format!(
        "{} message(s) of this run were dead-lettered; their assets cannot finish:",
        work.len()
    );
    for w in work {
        out.push_str(&format!(
            "\n  asset {}: DLQ {} message {} after {} receive(s): {}",
            w.asset_id, w.queue, w.message_id, w.receive_count, w.reason
        ));
    }
    let queues: std::collections::BTreeSet<&str> = work.iter().map(|w| w.queue.as_str()).collect();
    for q in queues {
        out.push_str(&format!("\nfix the cause, then `cuepoint dlq replay {q}` and run again (`cuepoint dlq show {q}` lists them)"));
    }
    out
}

/// The asset a queued message is about, when it names one of `ids`.
fn message_asset(body: &str, ids: &[AssetId]) -> Option<AssetId> {
    if let Ok(events) = cuepoint_core::events::parse_message(body) {
        for e in events {
            if let cuepoint_core::events::Inbound::S3ObjectCreated(o) = e {
                let id = AssetId::for_source(&o.source_object());
                if ids.contains(&id) {
                    return Some(id);
                }
            }
        }
    }
    // Pipeline events, MediaConvert user metadata and Rekognition job tags all carry the id.
    ids.iter().find(|id| body.contains(id.as_str())).cloned()
}

/// Dead letters that are not in `seen`, about the assets among `ids`.
async fn new_dead_letters(
    backend: &Backend,
    ids: &[AssetId],
    seen: &mut std::collections::BTreeSet<String>,
) -> anyhow::Result<Vec<DeadLetteredWork>> {
    let mut out = Vec::new();
    for (queue, n) in backend.dead_letters.counts().await? {
        if n == 0 {
            continue;
        }
        for letter in backend.dead_letters.list(&queue, n as usize).await? {
            if !seen.insert(letter.message_id.clone()) {
                continue;
            }
            if let Some(id) = message_asset(&letter.body, ids) {
                out.push(DeadLetteredWork {
                    asset_id: id.to_string(),
                    queue: queue.clone(),
                    message_id: letter.message_id,
                    receive_count: letter.receive_count,
                    reason: letter.reason.unwrap_or_else(|| "no reason recorded".into()),
                });
            }
        }
    }
    Ok(out)
}

/// How long a finished run keeps its workers for messages still queued.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// Keep the workers running until the worker queues are empty (at most `limit`). A rerun on
/// finished assets, or messages a killed run left behind (redeliveries, late completions),
/// would otherwise stay queued: the assets are terminal at once and the run would stop before
/// any worker received them. Handling them is cheap: every handler recognises a finished asset.
async fn settle(backend: &Backend, limit: Duration) {
    let Some(embedded) = &backend.embedded else {
        return;
    };
    let started = Instant::now();
    loop {
        let mut queued = 0;
        for kind in WorkerKind::ALL {
            if let Ok(c) = embedded.sqlite_queue(kind.queue()).counts().await {
                queued += c.visible + c.invisible;
            }
        }
        if queued == 0 {
            return;
        }
        if started.elapsed() > limit {
            tracing::info!(
                messages = queued,
                "messages still queued (in flight or delayed); the next run handles them"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run every worker until all `ids` are COMPLETE or FAILED, with a progress line on a terminal.
/// Returns early with [`RunStopped`] on SIGTERM/Ctrl-C (after the same drain as the worker
/// processes) or when a message about one of the unfinished assets is dead-lettered.
pub async fn run_until_terminal(
    backend: &Backend,
    ids: &[AssetId],
    timeout: Duration,
) -> anyhow::Result<Vec<Asset>> {
    run_workers_until_terminal(backend, ids, timeout).await.0
}

/// `run_until_terminal`, also returning the counters of each worker's consume loop.
pub async fn run_workers_until_terminal(
    backend: &Backend,
    ids: &[AssetId],
    timeout: Duration,
) -> (
    anyhow::Result<Vec<Asset>>,
    std::collections::BTreeMap<
        WorkerKind,
        std::sync::Arc<cuepoint_runtime::consumer::ConsumerStats>,
    >,
) {
    // Dead letters from earlier runs are history: the new upload event may well succeed.
    let mut seen = std::collections::BTreeSet::new();
    if let Err(e) = new_dead_letters(backend, &[], &mut seen).await {
        return (Err(e), Default::default());
    }
    let workers = app::start(&backend.ctx, &WorkerKind::ALL, |q| backend.queue(q), false);
    let stats = workers.stats.clone();
    let result = until_terminal(backend, ids, timeout, &mut seen).await;
    workers.shutdown().await;
    backend.shutdown().await;
    (result, stats)
}

async fn until_terminal(
    backend: &Backend,
    ids: &[AssetId],
    timeout: Duration,
    seen: &mut std::collections::BTreeSet<String>,
) -> anyhow::Result<Vec<Asset>> {
    let started = Instant::now();
    // Each asset's state on one line, on a terminal only (indicatif hides it elsewhere).
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed:>3}] {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let stop = cuepoint_runtime::telemetry::shutdown_signal();
    tokio::pin!(stop);
    let mut polls = 0u64;
    let result = loop {
        let mut assets = Vec::new();
        for id in ids {
            if let Some(a) = backend.ctx.ports.store.get(id).await? {
                assets.push(a);
            }
        }
        let done = assets.len() == ids.len() && assets.iter().all(|a| a.state.is_terminal());
        let states: Vec<String> = assets
            .iter()
            .map(|a| format!("{} {}", &a.id.as_str()[..8], a.state))
            .collect();
        bar.set_message(states.join("  "));
        if done {
            settle(backend, SETTLE_LIMIT).await;
            break Ok(assets);
        }
        if polls.is_multiple_of(4) {
            let open: Vec<AssetId> = ids
                .iter()
                .filter(|id| !assets.iter().any(|a| &a.id == *id && a.state.is_terminal()))
                .cloned()
                .collect();
            let dead = new_dead_letters(backend, &open, seen).await?;
            if !dead.is_empty() {
                break Err(RunStopped::DeadLettered(dead).into());
            }
        }
        polls += 1;
        if started.elapsed() > timeout {
            break Err(anyhow::anyhow!(
                "timed out after {:?}; work stays queued for the next run",
                timeout
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = &mut stop => break Err(RunStopped::Requested.into()),
        }
    };
    bar.finish();
    result
}
