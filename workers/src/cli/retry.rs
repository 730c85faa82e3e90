//! `cuepoint retry ASSET`: re-drive a FAILED asset whose cause was transient (a full disk, a
//! missing tool, a locked database, a job that never reported back), once the cause is fixed.
//! On the embedded default it then runs the workers until the asset is terminal, as `cuepoint
//! run` does; with `--no-wait` (or on AWS, where the workers are services) it only re-drives.

use std::time::Duration;

use anyhow::Context as _;
use cuepoint_core::asset::AssetState;
use cuepoint_core::domain::AssetId;
use cuepoint_runtime::config::Backend as BackendKind;

use crate::backend::{build, build_embedded};
use crate::cli::run::{run_until_terminal, CommonArgs};
use crate::cli::summary::{summarize_with, AssetSummary};
use crate::redrive::{retry, RetryError, RetryOutcome};

#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// The asset id (as `cuepoint status` lists it).
    pub asset: String,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only re-drive; leave the work to worker processes running elsewhere.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Give up waiting after this many seconds (work stays queued for the next run).
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

/// Re-drive, then (embedded, waiting) run the workers until the asset is terminal. Returns the
/// asset's summary when the command waited for it.
pub async fn run(args: &RetryArgs) -> anyhow::Result<Option<AssetSummary>> {
    let id = AssetId::parse(args.asset.clone())
        .with_context(|| format!("{:?} is not an asset id", args.asset))?;
    let settings = args.common.settings()?;
    let wait = !args.no_wait && settings.backend == BackendKind::Embedded;
    // Waiting runs the workers here, and with them the local engine that runs their jobs.
    let backend = if wait {
        build_embedded(
            &settings,
            true,
            std::sync::Arc::new(cuepoint_runtime::ports::SystemClock),
        )
        .await?
    } else {
        build(&settings, false).await?
    };
    let ingest = backend.try_queue("ingest");
    let outcome = match retry(&backend.ctx, &id, ingest.as_ref()).await {
        Ok(o) => o,
        Err(e) => {
            backend.shutdown().await;
            return Err(match e {
                RetryError::Refused(t) => anyhow::anyhow!("{t}; not retried"),
                e => e.into(),
            });
        }
    };
    let asset = match outcome {
        RetryOutcome::Redriven {
            asset,
            failure,
            announced,
        } => {
            eprintln!(
                "asset {id}: re-driven (attempt {}) from FAILED at {} ({} cause: {}) to {}; announced {announced}",
                asset.retries, failure.stage, failure.kind, failure.reason, asset.state
            );
            asset
        }
        RetryOutcome::NotFailed { asset } => {
            let again = if asset.retries > 0 {
                format!(" (re-driven {} time(s) before)", asset.retries)
            } else {
                String::new()
            };
            eprintln!(
                "asset {id} is {}, not FAILED{again}: nothing to retry",
                asset.state
            );
            if !wait {
                backend.shutdown().await;
                return Ok(None);
            }
            if asset.state.is_terminal() {
                let summary =
                    summarize_with(&settings, backend.ctx.ports.blobs.as_ref(), &asset).await;
                backend.shutdown().await;
                return Ok(Some(summary));
            }
            // Re-driven by another request and still working: see it through.
            asset
        }
    };
    if !wait {
        backend.shutdown().await;
        return Ok(None);
    }
    debug_assert_ne!(asset.state, AssetState::Failed);
    let done = run_until_terminal(&backend, &[id], Duration::from_secs(args.timeout)).await?;
    let asset = done.into_iter().next().context("the asset vanished")?;
    Ok(Some(
        summarize_with(&settings, backend.ctx.ports.blobs.as_ref(), &asset).await,
    ))
}
