//! Chaos test: exactly-once effects under at-least-once delivery, with numbers.
//!
//! The real workers (`WorkerHandler` on the real `Consumer` loop) run over the real embedded
//! backend (SQLite queues, store and bus, files) with every port wrapped in a fault injector
//! and FFmpeg replaced by a fast engine. It uploads a mix of sources — most should complete,
//! some are built to fail at a known stage — and then checks that every asset ended as it
//! should, no job was started twice, and each asset's terminal event was published once.
//!
//! ```text
//! cargo test -p cuepoint-tests --test chaos                   # 200 assets, seed 1
//! CUEPOINT_CHAOS_ASSETS=1000 CUEPOINT_CHAOS_SEED=7 cargo test -p cuepoint-tests --test chaos --release
//! ```
//! Other knobs: `CUEPOINT_CHAOS_TIMEOUT` (seconds, default 600), `CUEPOINT_CHAOS_FAULTS=off`
//! (a baseline run without faults), `CUEPOINT_CHAOS_DELAYS=off` (engine completions at once and
//! the open-jobs cap out of reach: what the backend and workers sustain, not the simulated
//! service latency), `RUST_LOG` (worker logs on stderr).
//!
//! `CUEPOINT_CHAOS_TARGET=localstack` runs the same harness over the AWS adapters against
//! LocalStack (`AWS_ENDPOINT_URL`; 30 assets and a 3 s visibility unless told), built with the
//! `aws` feature (`CUEPOINT_CHAOS_VISIBILITY`: the visibility timeout in seconds, either target):
//! ```text
//! CUEPOINT_CHAOS_TARGET=localstack cargo test -p cuepoint-tests --features aws --test chaos
//! ```
//!
//! Figures are printed last, one per line; the process exits non-zero when anything that must
//! be zero is not.

#[cfg(feature = "aws")]
mod aws;
mod embedded;
mod engine;
mod faults;
mod figures;
mod harness;
mod rng;

use std::process::ExitCode;
use std::time::Duration;

use cuepoint_runtime::config::Settings;
use cuepoint_tests::test_settings;

use crate::faults::FaultPlan;
use crate::harness::{chaos_settings, RunOptions};

const DEFAULT_ASSETS: usize = 200;
/// Against LocalStack every port call is an HTTP request to one Python process.
const DEFAULT_ASSETS_LOCALSTACK: usize = 30;
const LOCALSTACK_VISIBILITY_SECONDS: u64 = 3;
const DEFAULT_SEED: u64 = 1;
/// Redrive limit in the chaos routing (see `embedded::routing_text`).
const MAX_RECEIVE_COUNT: u32 = 100;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a valid value")),
    }
}

#[cfg(feature = "aws")]
async fn localstack_target(settings: Settings) -> Result<harness::Target, harness::BoxError> {
    aws::target(settings, MAX_RECEIVE_COUNT).await
}

#[cfg(not(feature = "aws"))]
async fn localstack_target(_: Settings) -> Result<harness::Target, harness::BoxError> {
    Err(
        "CUEPOINT_CHAOS_TARGET=localstack needs the AWS adapters: build with `--features aws`"
            .into(),
    )
}

fn main() -> ExitCode {
    // `cargo test` passes libtest flags (`--test-threads 2`, `--nocapture`...): not ours to
    // parse, and this binary has no sub-tests to filter.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let localstack = match std::env::var("CUEPOINT_CHAOS_TARGET").as_deref() {
        Err(_) | Ok("") | Ok("embedded") => false,
        Ok("localstack") => true,
        Ok(other) => {
            eprintln!("chaos: CUEPOINT_CHAOS_TARGET={other:?}: expected embedded or localstack");
            return ExitCode::from(2);
        }
    };
    let parsed = (|| -> Result<(usize, u64, u64, bool), String> {
        Ok((
            env_or(
                "CUEPOINT_CHAOS_ASSETS",
                if localstack {
                    DEFAULT_ASSETS_LOCALSTACK
                } else {
                    DEFAULT_ASSETS
                },
            )?,
            env_or("CUEPOINT_CHAOS_SEED", DEFAULT_SEED)?,
            env_or("CUEPOINT_CHAOS_TIMEOUT", 600u64)?,
            std::env::var("CUEPOINT_CHAOS_FAULTS")
                .map(|v| v != "off")
                .unwrap_or(true),
        ))
    })();
    let with_delays = std::env::var("CUEPOINT_CHAOS_DELAYS")
        .map(|v| v != "off")
        .unwrap_or(true);
    let (assets, seed, timeout, with_faults) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    // LocalStack answers in tens to hundreds of milliseconds under this load: at 2 s an
    // ordinary handler already outlives its visibility now and then (docs/reliability.md).
    let default_visibility = if localstack {
        LOCALSTACK_VISIBILITY_SECONDS
    } else {
        0
    };
    let visibility_override = match env_or("CUEPOINT_CHAOS_VISIBILITY", default_visibility) {
        Ok(0) => None,
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let mut settings = chaos_settings(test_settings(&dir.path().join("data")));
        if !with_delays {
            // Every asset in flight at once may hold its analyses open.
            settings.analysis.max_open_jobs = 10 * assets as i64 + 100;
        }
        if let Some(v) = visibility_override {
            // The heartbeat stays slower than the visibility: a stalled handler still loses
            // its message to a second consumer.
            settings.consumer.visibility_seconds = v;
            settings.consumer.heartbeat_seconds = v + 1;
        }
        let visibility = Duration::from_secs(settings.consumer.visibility_seconds);
        let target = if localstack {
            localstack_target(settings).await?
        } else {
            embedded::target(settings, MAX_RECEIVE_COUNT).await?
        };
        println!(
            "chaos: {assets} assets, seed {seed}, faults {}, engine delays {}, visibility {} s, backend {}",
            if with_faults { "on" } else { "off" },
            if with_delays { "on" } else { "off" },
            visibility.as_secs(),
            target.name
        );
        let backend = target.embedded.clone();
        let opts = RunOptions {
            assets,
            seed,
            plan: if with_faults {
                FaultPlan::standard(visibility)
            } else {
                FaultPlan::none()
            },
            engine: if with_delays {
                Default::default()
            } else {
                engine::EngineOptions::without_delays()
            },
            timeout: Duration::from_secs(timeout),
            settle: Duration::from_secs(60),
            progress: true,
            parallel_uploads: if with_delays { 1 } else { 16 },
        };
        let figures = harness::run(target, opts).await?;
        let writes = backend.map(|b| b.write_stats());
        drop(dir);
        Ok::<_, harness::BoxError>((figures, writes))
    });
    // Background tasks (SQLite pollers) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(5));
    let (figures, writes) = match result {
        Ok(f) => f,
        Err(e) => {
            eprintln!("chaos: the run could not be carried out: {e}");
            return ExitCode::from(2);
        }
    };
    let failures = figures.failures();
    if failures.is_empty() {
        println!("chaos: PASS");
    } else {
        println!("chaos: FAIL: {}", failures.join("; "));
    }
    figures.print(40);
    if let Some(w) = writes {
        println!("database writes per commit (group commit): {w}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
