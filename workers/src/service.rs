//! The main of every worker binary: configuration, logging, backend, one consume loop, and a
//! graceful stop on SIGTERM.

use std::path::PathBuf;

use anyhow::Context as _;
use cuepoint_runtime::config::{LogFormat, Settings};
use cuepoint_runtime::telemetry;

use crate::app;
use crate::backend;
use crate::handlers::WorkerKind;

/// Run `kinds` until SIGTERM/Ctrl-C. In the embedded backend the process also runs the local
/// media engine for the jobs it submits.
pub async fn serve(settings: Settings, kinds: &[WorkerKind]) -> anyhow::Result<()> {
    let backend = backend::build(&settings, false).await?;
    // The process that submits a kind of job runs (and resumes) it: ingest → transcodes,
    // analysis → analyses. Other processes only read results, so no job runs twice.
    if let Some(engine) = &backend.engine {
        let n = engine
            .resume(
                kinds.contains(&WorkerKind::Ingest),
                kinds.contains(&WorkerKind::Analysis),
            )
            .await?;
        if n > 0 {
            tracing::info!(jobs = n, "resumed unfinished local media jobs");
        }
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.queue()).collect();
    tracing::info!(workers = ?names, backend = ?settings.backend, "starting");
    let workers = app::start(
        &backend.ctx,
        kinds,
        |q| backend.queue(q),
        settings.log_format == LogFormat::Json,
    );
    telemetry::shutdown_signal().await;
    workers.shutdown().await;
    backend.shutdown().await;
    Ok(())
}

/// `main` of a worker binary.
pub fn main_for(kind: WorkerKind) {
    let config = config_arg();
    let result = (|| -> anyhow::Result<()> {
        let settings = Settings::load(config.as_deref()).context("loading configuration")?;
        telemetry::init(settings.log_format, "info");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(serve(settings, &[kind]))
    })();
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn config_arg() -> Option<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}
