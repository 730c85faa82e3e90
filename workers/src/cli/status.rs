//! `cuepoint status [ASSET]`, `cuepoint events send FILE`, `cuepoint dlq ...`: operator views
//! over the configured backend.

use std::path::PathBuf;

use anyhow::Context as _;
use cuepoint_core::domain::AssetId;
use cuepoint_core::events::envelope::PutEventsEntry;

use crate::backend::Backend;
use crate::cli::summary::{render, summarize_with};

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// One asset id; all assets when omitted.
    pub asset: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

pub async fn status(
    backend: &Backend,
    settings: &cuepoint_runtime::config::Settings,
    args: &StatusArgs,
) -> anyhow::Result<()> {
    let store = &backend.ctx.ports.store;
    let assets = match &args.asset {
        Some(id) => {
            let id = AssetId::parse(id.clone())?;
            vec![store
                .get(&id)
                .await?
                .with_context(|| format!("no asset {id}"))?]
        }
        None => store.list().await?,
    };
    if args.json {
        if args.asset.is_some() {
            let summary =
                summarize_with(settings, backend.ctx.ports.blobs.as_ref(), &assets[0]).await;
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&asset_status(&assets[0], &summary))?
            );
        } else {
            let mut out = Vec::new();
            for a in &assets {
                out.push(summarize_with(settings, backend.ctx.ports.blobs.as_ref(), a).await);
            }
            crate::outln!("{}", serde_json::to_string_pretty(&out)?);
        }
        return Ok(());
    }
    if assets.is_empty() {
        crate::outln!("no assets");
    }
    for a in &assets {
        crate::outln!(
            "{}",
            render(&summarize_with(settings, backend.ctx.ports.blobs.as_ref(), a).await)
        );
    }
    Ok(())
}

/// `cuepoint status ASSET --json`: the asset record, plus what each content analysis found and
/// where speech, faces and the main labels are (read from the results files).
#[derive(serde::Serialize)]
pub struct AssetStatus<'a> {
    #[serde(flatten)]
    asset: &'a cuepoint_core::asset::Asset,
    content_analyses: &'a [cuepoint_core::content::AnalysisLine],
    content: &'a cuepoint_core::content::ContentTimeline,
}

pub fn asset_status<'a>(
    asset: &'a cuepoint_core::asset::Asset,
    summary: &'a crate::cli::summary::AssetSummary,
) -> AssetStatus<'a> {
    AssetStatus {
        asset,
        content_analyses: &summary.content_analyses,
        content: &summary.content,
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum EventsCommand {
    /// Put a raw event on the bus. FILE holds an EventBridge event (`source`, `detail-type`,
    /// `detail`) or a PutEvents entry; the bus routes it like any other.
    Send { file: PathBuf },
}

pub async fn events(backend: &Backend, cmd: &EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::Send { file } => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", file.display()))?;
            let entry = entry_from_json(&v).with_context(|| format!("{}", file.display()))?;
            backend.bus().put_events(&[entry]).await?;
            crate::outln!("sent 1 event to the bus");
            Ok(())
        }
    }
}

/// Accept an EventBridge event (`detail-type`, `detail` object) or a PutEvents entry
/// (`DetailType`, `Detail` string).
pub fn entry_from_json(v: &serde_json::Value) -> anyhow::Result<PutEventsEntry> {
    let source = v
        .get("source")
        .or_else(|| v.get("Source"))
        .and_then(|s| s.as_str())
        .context("missing `source`")?;
    let detail_type = v
        .get("detail-type")
        .or_else(|| v.get("DetailType"))
        .and_then(|s| s.as_str())
        .context("missing `detail-type`")?;
    let detail = match v.get("detail").or_else(|| v.get("Detail")) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(d @ serde_json::Value::Object(_)) => d.to_string(),
        _ => anyhow::bail!("missing `detail` object"),
    };
    let resources = v
        .get("resources")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(PutEventsEntry {
        source: source.into(),
        detail_type: detail_type.into(),
        detail,
        resources,
        time_ms: None,
    })
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqCommand {
    /// Dead-letter queues and how many messages each holds.
    List,
    /// The messages in one queue's DLQ, with their failure reasons.
    Show {
        /// Source queue name (ingest, media, analysis, results, scoring).
        queue: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Move a queue's dead letters back to it (after fixing the cause).
    Replay { queue: String },
}

pub async fn dlq(backend: &Backend, cmd: &DlqCommand) -> anyhow::Result<()> {
    let dl = &backend.dead_letters;
    match cmd {
        DlqCommand::List => {
            crate::outln!("{:<12} {:>8}", "queue", "dead");
            for (q, n) in dl.counts().await? {
                crate::outln!("{q:<12} {n:>8}");
            }
        }
        DlqCommand::Show { queue, limit, json } => {
            let letters = dl.list(queue, *limit).await?;
            if *json {
                crate::outln!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                crate::outln!("the {queue} DLQ is empty");
            } else {
                for l in letters {
                    let body: String = l.body.chars().take(160).collect();
                    crate::outln!(
                        "{}  receives {}  reason: {}\n    {}",
                        l.message_id,
                        l.receive_count,
                        l.reason.as_deref().unwrap_or("(none recorded)"),
                        body
                    );
                }
            }
        }
        DlqCommand::Replay { queue } => {
            let n = dl.replay(queue).await?;
            crate::outln!("moved {n} message(s) from the {queue} DLQ back to {queue}");
        }
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AssetsCommand {
    /// Assets past their state's deadline (see the `stuck` configuration section).
    Stuck {
        #[arg(long)]
        json: bool,
    },
}

pub async fn assets(backend: &Backend, cmd: &AssetsCommand) -> anyhow::Result<()> {
    match cmd {
        AssetsCommand::Stuck { json } => {
            let stuck =
                crate::sweeper::find_stuck(&backend.ctx, &backend.ctx.settings.stuck).await?;
            let rows: Vec<_> = stuck.into_iter().map(|(_, s)| s).collect();
            // Embedded: a job no live process holds will not finish however long one waits.
            let unattended = match &backend.engine {
                Some(engine) => engine.unattended().await?,
                None => Vec::new(),
            };
            for j in &unattended {
                eprintln!(
                    "asset {}: {} job {} is unfinished and no process runs it; start `cuepoint run` or a worker ({}) on this data directory to resume it",
                    j.asset_id,
                    j.service,
                    j.job_id,
                    if j.service == cuepoint_runtime::ports::LedgerService::MediaConvert { "ingest" } else { "analysis" }
                );
            }
            if *json {
                crate::outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() && unattended.is_empty() {
                crate::outln!("no stuck assets");
            } else if rows.is_empty() {
                crate::outln!("no asset past its deadline");
            } else {
                crate::outln!(
                    "{:<22} {:<15} {:>12} {:>6}  action",
                    "asset",
                    "state",
                    "overdue (s)",
                    "sweeps"
                );
                for r in rows {
                    crate::outln!(
                        "{:<22} {:<15} {:>12.0} {:>6}  {}",
                        r.asset_id,
                        r.state,
                        r.overdue_seconds,
                        r.sweeps,
                        action_text(&r.action)
                    );
                }
            }
            Ok(())
        }
    }
}

fn action_text(a: &cuepoint_core::stuck::SweepAction) -> String {
    match a {
        cuepoint_core::stuck::SweepAction::Reannounce => "re-announce".into(),
        cuepoint_core::stuck::SweepAction::Fail { reason } => format!("fail: {reason}"),
    }
}

/// `cuepoint sweep`: apply the stuck-asset policy once.
pub async fn sweep(backend: &Backend, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let outcomes = crate::sweeper::sweep(
        &backend.ctx,
        &backend.ctx.settings.stuck,
        dry_run,
        backend.try_queue("ingest"),
    )
    .await?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&outcomes)?);
        return Ok(());
    }
    if outcomes.is_empty() {
        crate::outln!("no stuck assets");
    }
    for o in outcomes {
        let status = match (&o.error, o.done) {
            (Some(e), _) => format!("error: {e}"),
            (None, true) => "done".into(),
            (None, false) => "dry run".into(),
        };
        crate::outln!(
            "{}  {}  {}  [{status}]",
            o.stuck.asset_id,
            o.stuck.state,
            action_text(&o.stuck.action)
        );
    }
    Ok(())
}
