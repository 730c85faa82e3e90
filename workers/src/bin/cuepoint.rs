//! `cuepoint`: the operator CLI. Wiring only; every command lives in `cuepoint_workers::cli`.

use clap::{Parser, Subcommand};
use cuepoint_workers::cli::run::CommonArgs;
use cuepoint_workers::cli::{analyze, bench, demo, models, retry, run, status};
use cuepoint_workers::handlers::WorkerKind;

#[derive(Debug, Parser)]
#[command(
    name = "cuepoint",
    version,
    about = "Find ad breaks, silent audio tracks and what is on screen in video."
)]
struct Cli {
    /// Log level: error, warn, info, debug (or RUST_LOG). Retried races and redeliveries log
    /// at warn; the default shows only what needs attention.
    #[arg(long, global = true, default_value = "error")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a sample with known ad breaks and silent tracks, run it through the whole
    /// pipeline on this machine, and compare with the ground truth.
    Demo(demo::DemoArgs),
    /// Run local files through the whole pipeline (embedded backend) and summarise each asset.
    Run(run::RunArgs),
    /// Upload local files to the embedded ingest bucket and announce them, without running any
    /// worker (for worker processes running elsewhere on the same data directory).
    Ingest {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run the media engine alone on a file and write a results directory.
    Analyze(analyze::AnalyzeArgs),
    /// Measure where the time of one asset goes: pipeline vs bare encode, analysis vs decode,
    /// hop latency, idle worker memory (a generated 60 s 1080p programme with 8 tracks).
    Bench(bench::BenchArgs),
    /// Score saved analysis results (a results directory) and choose ad breaks.
    Slots(cuepoint_workers::slots::SlotsArgs),
    /// Show assets and their state.
    Status {
        #[command(flatten)]
        args: status::StatusArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Put raw events on the bus.
    Events {
        #[command(subcommand)]
        cmd: status::EventsCommand,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Inspect and replay dead-letter queues.
    Dlq {
        #[command(subcommand)]
        cmd: status::DlqCommand,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Operator views of assets.
    Assets {
        #[command(subcommand)]
        cmd: status::AssetsCommand,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Re-drive a FAILED asset whose cause was transient (a full disk, a missing tool, a locked
    /// database), once, after the cause is fixed; then run the workers until it is finished.
    /// A failure caused by the media itself is refused with its cause.
    Retry(retry::RetryArgs),
    /// Re-announce or fail assets stuck past their state's deadline (run it periodically).
    Sweep {
        /// Show what would be done without doing it.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Install, list and locate the offline models of the embedded default.
    Models {
        #[command(subcommand)]
        cmd: models::ModelsCommand,
    },
    /// The review app: assets, player, timeline, break editing and search in a browser, and
    /// its JSON API under /api. Runs the pipeline's workers too unless --no-workers.
    Serve(cuepoint_workers::serve::ServeArgs),
    /// Run one or more workers in this process until SIGTERM (as the worker binaries do).
    Worker {
        /// ingest, media, analysis, results, scoring, or all.
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

fn main() {
    let cli = Cli::parse();
    cuepoint_runtime::telemetry::init(cuepoint_runtime::config::LogFormat::Text, &cli.log);
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => match rt.block_on(dispatch(cli.command)) {
            Ok(code) => code,
            Err(e)
                if matches!(
                    e.downcast_ref::<run::RunStopped>(),
                    Some(run::RunStopped::Requested)
                ) =>
            {
                eprintln!("{e}");
                0
            }
            Err(e)
                if matches!(
                    e.downcast_ref::<run::RunStopped>(),
                    Some(run::RunStopped::DeadLettered(_))
                ) =>
            {
                eprintln!("error: {e}");
                4
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                1
            }
        },
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}

async fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Demo(args) => Ok(if demo::run(&args).await? { 0 } else { 2 }),
        Command::Run(args) => {
            let summaries = run::run(&args).await?;
            run::print(&summaries, args.json);
            let failed = summaries
                .iter()
                .any(|s| s.state == cuepoint_core::asset::AssetState::Failed);
            Ok(if failed { 3 } else { 0 })
        }
        Command::Analyze(args) => analyze::run(&args).await.map(|_| 0),
        Command::Bench(args) => {
            let me = std::env::current_exe()?;
            let figures = bench::run(&args, &me).await?;
            if args.json {
                cuepoint_workers::outln!("{}", serde_json::to_string_pretty(&figures)?);
            } else {
                cuepoint_workers::outln!("{}", figures.render());
            }
            Ok(0)
        }
        Command::Ingest { files, common } => {
            let settings = common.settings()?;
            let backend = cuepoint_workers::backend::build_embedded(
                &settings,
                false,
                std::sync::Arc::new(cuepoint_runtime::ports::SystemClock),
            )
            .await?;
            for id in run::ingest_files(&backend, &settings, &files).await? {
                cuepoint_workers::outln!("{id}");
            }
            Ok(0)
        }
        Command::Slots(args) => cuepoint_workers::slots::run(&args).map(|_| 0),
        Command::Status { args, common } => {
            let settings = common.settings()?;
            let backend = cuepoint_workers::backend::build(&settings, false).await?;
            status::status(&backend, &settings, &args).await.map(|_| 0)
        }
        Command::Events { cmd, common } => {
            let backend = cuepoint_workers::backend::build(&common.settings()?, false).await?;
            status::events(&backend, &cmd).await.map(|_| 0)
        }
        Command::Dlq { cmd, common } => {
            let backend = cuepoint_workers::backend::build(&common.settings()?, false).await?;
            status::dlq(&backend, &cmd).await.map(|_| 0)
        }
        Command::Assets { cmd, common } => {
            let backend = cuepoint_workers::backend::build(&common.settings()?, false).await?;
            status::assets(&backend, &cmd).await.map(|_| 0)
        }
        Command::Retry(args) => match retry::run(&args).await? {
            Some(summary) => {
                let failed = summary.state == cuepoint_core::asset::AssetState::Failed;
                run::print(std::slice::from_ref(&summary), args.json);
                Ok(if failed { 3 } else { 0 })
            }
            None => Ok(0),
        },
        Command::Sweep {
            dry_run,
            json,
            common,
        } => {
            let backend = cuepoint_workers::backend::build(&common.settings()?, false).await?;
            status::sweep(&backend, dry_run, json).await.map(|_| 0)
        }
        Command::Models { cmd } => tokio::task::spawn_blocking(move || models::run(&cmd)).await?,
        Command::Serve(args) => cuepoint_workers::serve::run(&args).await.map(|_| 0),
        Command::Worker { names, common } => {
            let kinds: Vec<WorkerKind> = if names.iter().any(|n| n == "all") {
                WorkerKind::ALL.to_vec()
            } else {
                names
                    .iter()
                    .map(|n| {
                        WorkerKind::parse(n).ok_or_else(|| anyhow::anyhow!("unknown worker {n:?}"))
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            cuepoint_workers::service::serve(common.settings()?, &kinds)
                .await
                .map(|_| 0)
        }
    }
}
