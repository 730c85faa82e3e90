//! The figures of `cuepoint bench`, as a cargo bench: pipeline vs bare encode, analysis vs
//! decode, hop latency in one process and with one process per worker, idle worker memory.
//!
//! ```text
//! cargo bench -p cuepoint-workers --bench pipeline                     # 60 s 1080p, 8 tracks
//! CUEPOINT_BENCH_SECONDS=20 cargo bench -p cuepoint-workers --bench pipeline
//! ```
//! `CUEPOINT_BENCH_RESOLUTION` (WIDTHxHEIGHT) changes the frame size. The worker processes are
//! this build's `cuepoint` binary, so a `--release` bench measures release workers.

use std::path::Path;

use cuepoint_workers::cli::bench::{self, BenchArgs};
use cuepoint_workers::cli::run::CommonArgs;

fn main() {
    // `cargo bench` passes `--bench` (and filters): not ours to parse.
    let duration = std::env::var("CUEPOINT_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(60.0);
    let resolution =
        std::env::var("CUEPOINT_BENCH_RESOLUTION").unwrap_or_else(|_| "1920x1080".into());
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pipeline bench: no temporary directory: {e}");
            std::process::exit(2);
        }
    };
    let args = BenchArgs {
        common: CommonArgs {
            config: None,
            data_dir: Some(dir.path().to_path_buf()),
        },
        duration,
        resolution,
        json: false,
    };
    let cuepoint = Path::new(env!("CARGO_BIN_EXE_cuepoint"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(bench::run(&args, cuepoint)) {
        Ok(figures) => println!("{}", figures.render()),
        Err(e) => {
            eprintln!("pipeline bench: {e:#}");
            std::process::exit(1);
        }
    }
}
