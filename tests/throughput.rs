//! Throughput of the embedded backend: handled messages per second and orchestration CPU per
//! asset over a fault-free run of the chaos harness (the real workers and consume loops over
//! SQLite queues, store and bus and the file blob store; the fast test engine in place of
//! FFmpeg, its completions at once, the open-jobs cap out of reach), plus the lost conditional
//! writes of the run.
//!
//! ```text
//! cargo bench -p cuepoint-tests --bench throughput                  # 1000 assets
//! CUEPOINT_CHAOS_ASSETS=200 cargo bench -p cuepoint-tests --bench throughput
//! ```

#[allow(dead_code)]
#[path = "chaos/embedded.rs"]
mod embedded;
#[allow(dead_code)]
#[path = "chaos/engine.rs"]
mod engine;
#[allow(dead_code)]
#[path = "chaos/faults.rs"]
mod faults;
#[allow(dead_code)]
#[path = "chaos/figures.rs"]
mod figures;
#[allow(dead_code)]
#[path = "chaos/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "chaos/rng.rs"]
mod rng;

use std::time::Duration;

use cuepoint_tests::test_settings;

use crate::faults::FaultPlan;
use crate::harness::{chaos_settings, RunOptions};

/// The chaos harness's redrive limit (nothing is dead-lettered without faults anyway).
const MAX_RECEIVE_COUNT: u32 = 100;

fn main() {
    let assets = std::env::var("CUEPOINT_CHAOS_ASSETS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let mut settings = chaos_settings(test_settings(&dir.path().join("data")));
        settings.analysis.max_open_jobs = 10 * assets as i64 + 100;
        let target = embedded::target(settings, MAX_RECEIVE_COUNT).await?;
        let backend = target.embedded.clone();
        let opts = RunOptions {
            assets,
            seed: 1,
            plan: FaultPlan::none(),
            engine: engine::EngineOptions::without_delays(),
            timeout: Duration::from_secs(600),
            settle: Duration::from_secs(60),
            progress: false,
            parallel_uploads: 16,
        };
        let figures = harness::run(target, opts).await?;
        let writes = backend.map(|b| (b.write_stats(), b.blob_sync_stats()));
        drop(dir);
        Ok::<_, harness::BoxError>((figures, writes))
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    let (f, writes) = match result {
        Ok(f) => f,
        Err(e) => {
            eprintln!("throughput bench: {e}");
            std::process::exit(2);
        }
    };
    let failures = f.failures();
    if !failures.is_empty() {
        eprintln!(
            "throughput bench: the run went wrong: {}",
            failures.join("; ")
        );
        std::process::exit(1);
    }
    let wall = f.wall.as_secs_f64().max(1e-9);
    println!(
        "embedded backend, {} assets, no faults, no service delays ({} cores, {} build)",
        f.assets,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "handled messages per second   {:.0} ({} in {wall:.1} s)",
        f.messages_handled as f64 / wall,
        f.messages_handled
    );
    if let Some(cpu) = f.cpu_seconds {
        println!(
            "CPU per asset                 {:.1} ms (workers, backend, fast engine, harness)",
            cpu * 1000.0 / f.assets.max(1) as f64
        );
    }
    println!(
        "lost conditional writes       {} re-applied at once, {} left to the retry backoff",
        f.races_reapplied, f.races_left_to_backoff
    );
    println!("handler retries               {}", f.handler_transient);
    if let Some((w, b)) = writes {
        println!("database writes per commit    {w}");
        println!("blob writes per directory sync {b}");
    }
}
