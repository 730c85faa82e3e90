//! The main of every worker binary: configuration, logging, backend, one consume loop, and a
//! graceful stop on SIGTERM.

use anyhow::Context as _;
use cuepoint_runtime::config::{LogFormat, Settings};
use cuepoint_runtime::telemetry;

use crate::app;
use crate::backend;
use crate::cli::run::CommonArgs;
use crate::handlers::WorkerKind;

/// Run `kinds` until SIGTERM/Ctrl-C. In the embedded backend the process also runs the local
/// media engine for the jobs it submits.
pub async fn serve(settings: Settings, kinds: &[WorkerKind]) -> anyhow::Result<()> {
    // Taken first: a SIGTERM while the backend opens ends the worker gracefully once started.
    let stop = telemetry::shutdown_signal();
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
        engine.rescan_every(
            kinds.contains(&WorkerKind::Ingest),
            kinds.contains(&WorkerKind::Analysis),
            backend::JOB_RESCAN_INTERVAL,
        );
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.queue()).collect();
    tracing::info!(workers = ?names, backend = ?settings.backend, "starting");
    let workers = app::start(
        &backend.ctx,
        kinds,
        |q| backend.queue(q),
        settings.log_format == LogFormat::Json,
    );
    stop.await;
    workers.shutdown().await;
    backend.shutdown().await;
    Ok(())
}

/// The command line of a worker binary: the same options as `cuepoint worker`.
#[derive(Debug, clap::Parser)]
struct WorkerCli {
    #[command(flatten)]
    common: CommonArgs,
    /// Log level: error, warn, info, debug (or RUST_LOG).
    #[arg(long, default_value = "info")]
    log: String,
}

/// `main` of a worker binary. `--help`, `--version` and unknown options behave as in every
/// `cuepoint` command (clap: usage on stderr, exit status 2).
pub fn main_for(kind: WorkerKind) {
    use clap::{CommandFactory as _, FromArgMatches as _};
    // Once per process: clap wants static names without its `string` feature.
    let name: &'static str = Box::leak(format!("cuepoint-{kind}").into_boxed_str());
    let about = format!("The {kind} worker: consumes the `{kind}` queue until SIGTERM (as `cuepoint worker {kind}`).");
    let matches = WorkerCli::command()
        .name(name)
        .bin_name(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .get_matches();
    let cli = WorkerCli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = (|| -> anyhow::Result<()> {
        let settings = cli.common.settings().context("loading configuration")?;
        telemetry::init(settings.log_format, &cli.log);
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
