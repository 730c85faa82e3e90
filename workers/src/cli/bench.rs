//! `cuepoint bench`: where the time of one asset goes, side by side in one run, on a generated
//! programme (60 s, 1920x1080, 8 mono tracks: the `cuepoint demo` sample at 1080p):
//!
//! - the whole pipeline (ingest to the packaged ladder) against bare FFmpeg encodes of the same
//!   ladder with the same settings and breaks (the packaging run: the one full-resolution encode
//!   of the pipeline) and of the proxy the analyses read (the first job's renditions): the
//!   encodes nothing can skip;
//! - the CPU of the local analyses of the proxy against decoding the proxy and nothing else: the
//!   one decode the local Rekognition runs for an asset's segment, label, face and moderation
//!   jobs (segment detection plus the vision samples, the models' own work left out), and the
//!   segment analysis alone (what runs when no model is installed), FFmpeg and the engine's
//!   own threads counted, the probe included;
//! - hop latency: from an event's publication to the next handler starting (p50, p99), with
//!   every worker in this process and with one process per worker sharing one data directory;
//! - the resident memory of an idle worker process (all six workers in it).
//!
//! Throughput of the embedded backend itself (no media work) is the chaos harness's figure:
//! `CUEPOINT_CHAOS_ASSETS=1000 CUEPOINT_CHAOS_FAULTS=off cargo test -p cuepoint-tests --test chaos`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cuepoint_engine::sample::{generate_sample, SampleSpec};
use cuepoint_engine::AnalyzeOptions;
use cuepoint_runtime::consumer::{hop_quantile, HOP_RANGE_MS};
use serde::Serialize;

use crate::cli::run::{ingest_files, run_workers_until_terminal, CommonArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Length of the generated programme, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Frame size of the generated programme, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080")]
    pub resolution: String,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Every figure of one bench run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchFigures {
    pub machine: String,
    pub programme: String,
    /// Ingest to a terminal asset (VMAP written), seconds.
    pub pipeline_wall_s: f64,
    /// FFmpeg encoding the same ladder and proxy with the same settings, seconds.
    pub bare_encode_wall_s: f64,
    pub pipeline_vs_encode: f64,
    /// CPU seconds (this process and its FFmpeg children) of the same two runs: on a machine
    /// shared with other work, steadier than wall time.
    pub pipeline_cpu_s: f64,
    pub bare_encode_cpu_s: f64,
    pub pipeline_vs_encode_cpu: f64,
    /// The bare encodes one by one: the ladder (packaging's run) and the proxy (the first job's).
    pub bare_ladder_wall_s: f64,
    pub bare_proxy_wall_s: f64,
    /// CPU seconds of the bare ladder alone.
    pub bare_ladder_cpu_s: f64,
    /// Cores this process may use: the pipeline's CPU over them is the least wall time any
    /// order of its work could take here.
    pub cores: usize,
    /// Where the pipeline's wall time went, from the asset record's timestamps.
    pub stages: Stages,
    /// CPU seconds of the one pass the local analyses of the proxy share: probe, segment
    /// detection and the vision samples (the models excluded), FFmpeg and this process.
    pub analysis_cpu_s: f64,
    /// The pass's CPU by who spent it: the probe, FFmpeg, and this process's own threads.
    pub analysis_probe_cpu_s: f64,
    pub analysis_ffmpeg_cpu_s: f64,
    pub analysis_own_cpu_s: f64,
    /// CPU seconds of the decode the pass runs (one thread, no deblocking filter) and nothing
    /// else: what is left of the pass without its detectors and samples.
    pub pass_decode_cpu_s: f64,
    /// CPU seconds of the segment analysis alone (probe and decode, FFmpeg and this process).
    pub segments_cpu_s: f64,
    /// CPU seconds of decoding the proxy's video and nothing else.
    pub decode_cpu_s: f64,
    pub analysis_vs_decode: f64,
    pub segments_vs_decode: f64,
    /// Event published → next handler starts, over every hop of the pipeline run.
    pub hops: u64,
    pub hop_p50_ms: Option<u64>,
    pub hop_p99_ms: Option<u64>,
    /// The same with each worker in its own process (`cuepoint worker <name>`), one data
    /// directory: a hop across processes is seen by polling.
    pub hops_multiprocess: u64,
    pub hop_multiprocess_p50_ms: Option<u64>,
    pub hop_multiprocess_p99_ms: Option<u64>,
    /// How often an idle long poll looks at the database for another process's messages.
    pub poll_interval_ms: u64,
    /// Resident memory of an idle `cuepoint worker all` process, MiB.
    pub idle_worker_rss_mib: Option<f64>,
}

/// The pipeline's wall time by step, from the asset record: each job's submission time and the
/// asset's last write (its completion).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stages {
    /// The first media job: the proxy and the loudness logs (submission to the analyses' start).
    pub first_job_s: f64,
    /// The analyses of the proxy and scoring (to the packaging job's submission).
    pub analyses_and_scoring_s: f64,
    /// The packaging job: the ladder with the breaks (to the asset's completion).
    pub packaging_s: f64,
}

impl Stages {
    fn of(asset: &cuepoint_core::asset::Asset) -> Option<Self> {
        let transcode = asset.transcode.as_ref()?.submitted_at_ms;
        let analyses = asset.analyses.values().map(|j| j.submitted_at_ms).min()?;
        let packaging = asset.packaging.as_ref()?.submitted_at_ms;
        let s = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1000.0;
        Some(Self {
            first_job_s: s(transcode, analyses),
            analyses_and_scoring_s: s(analyses, packaging),
            packaging_s: s(packaging, asset.updated_at_ms),
        })
    }
}

impl BenchFigures {
    pub fn render(&self) -> String {
        let ms = |v: Option<u64>| match v {
            Some(v) if v >= HOP_RANGE_MS => format!(">= {v} ms"),
            Some(v) => format!("{v} ms"),
            None => "n/a".into(),
        };
        let mut out = format!(
            "machine    {}\nprogramme  {}\n",
            self.machine, self.programme
        );
        out.push_str(&format!(
            "pipeline wall time (ingest to ladder) {:>7.1} s   bare FFmpeg encodes of the same ladder + proxy {:>6.1} s   ratio {:.2}x\n",
            self.pipeline_wall_s, self.bare_encode_wall_s, self.pipeline_vs_encode
        ));
        out.push_str(&format!(
            "pipeline CPU                          {:>7.1} s   bare FFmpeg encodes' CPU                       {:>6.1} s   ratio {:.2}x\n",
            self.pipeline_cpu_s, self.bare_encode_cpu_s, self.pipeline_vs_encode_cpu
        ));
        out.push_str(&format!(
            "  by step: first job {:.1} s (bare proxy {:.1} s), analyses and scoring {:.1} s, packaging {:.1} s (bare ladder {:.1} s; pipeline / ladder alone {:.2}x)\n",
            self.stages.first_job_s,
            self.bare_proxy_wall_s,
            self.stages.analyses_and_scoring_s,
            self.stages.packaging_s,
            self.bare_ladder_wall_s,
            self.pipeline_wall_s / self.bare_ladder_wall_s.max(1e-9)
        ));
        // The breaks must be chosen before the ladder is encoded, so everything else the
        // pipeline does (its CPU beyond the ladder's) comes first: spread over every core, that
        // is about the least time before the ladder can start, and so the least ratio in this
        // order.
        let before_ladder = (self.pipeline_cpu_s - self.bare_ladder_cpu_s).max(0.0);
        let floor = self.bare_ladder_wall_s + before_ladder / self.cores.max(1) as f64;
        out.push_str(&format!(
            "  CPU: the ladder {:.1} s, the rest of the pipeline {:.1} s; the rest comes before the ladder (the breaks decide its key frames) and needs about {:.1} s on {} cores: about {:.2}x the ladder alone at best in this order\n",
            self.bare_ladder_cpu_s,
            before_ladder,
            before_ladder / self.cores.max(1) as f64,
            self.cores,
            floor / self.bare_ladder_wall_s.max(1e-9)
        ));
        out.push_str(&format!(
            "local analysis CPU (proxy)            {:>7.2} s   decode-only CPU of the same file           {:>6.2} s   ratio {:.2}x\n",
            self.analysis_cpu_s, self.decode_cpu_s, self.analysis_vs_decode
        ));
        out.push_str(&format!(
            "  one decode for segments and the vision samples (models excluded); segments alone {:.2} s ({:.2}x)\n",
            self.segments_cpu_s, self.segments_vs_decode
        ));
        out.push_str(&format!(
            "  the pass by who spent it: probe {:.2} s, FFmpeg {:.2} s (its decode alone, one thread without the deblocking filter: {:.2} s), this process {:.2} s\n",
            self.analysis_probe_cpu_s,
            self.analysis_ffmpeg_cpu_s,
            self.pass_decode_cpu_s,
            self.analysis_own_cpu_s
        ));
        out.push_str(&format!(
            "hop latency, one process              p50 {}   p99 {}   ({} hops)\n",
            ms(self.hop_p50_ms),
            ms(self.hop_p99_ms),
            self.hops
        ));
        out.push_str(&format!(
            "hop latency, one process per worker   p50 {}   p99 {}   ({} hops; poll interval {} ms)\n",
            ms(self.hop_multiprocess_p50_ms),
            ms(self.hop_multiprocess_p99_ms),
            self.hops_multiprocess,
            self.poll_interval_ms
        ));
        out.push_str(&format!(
            "idle worker RSS (cuepoint worker all) {}\n",
            self.idle_worker_rss_mib
                .map(|m| format!("{m:.1} MiB"))
                .unwrap_or_else(|| "n/a".into())
        ));
        out
    }
}

fn parse_resolution(s: &str) -> anyhow::Result<(u32, u32)> {
    s.split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|(w, h)| *w >= 64 && *h >= 36 && w % 2 == 0 && h % 2 == 0)
        .with_context(|| format!("resolution {s:?}: expected WIDTHxHEIGHT with even numbers"))
}

/// `cuepoint bench`. `cuepoint` is the binary whose idle worker is measured (this one for the
/// subcommand).
pub async fn run(args: &BenchArgs, cuepoint: &Path) -> anyhow::Result<BenchFigures> {
    let (width, height) = parse_resolution(&args.resolution)?;
    let mut settings = args.common.settings()?;
    settings.backend = cuepoint_runtime::config::Backend::Embedded;
    let sampling = crate::backend::vision_config(&settings).sampling;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    // A fresh data directory inside the given one: nothing from earlier runs is reused.
    let scratch = tempfile::Builder::new()
        .prefix("bench-")
        .tempdir_in(&settings.data_dir)
        .context("creating the bench directory")?;
    settings.data_dir = scratch.path().join("data");

    let spec = SampleSpec {
        width,
        height,
        ..super::demo::programme(args.duration)
    };
    let clip = scratch.path().join(format!("bench-{height}p.mov"));
    eprintln!(
        "generating the {} s {width}x{height} programme...",
        spec.duration
    );
    generate_sample(&clip, &spec).await?;
    let programme = format!(
        "{} s {width}x{height} at {} fps, {} mono tracks",
        spec.duration, spec.fps, spec.track_count
    );

    // 1. The pipeline, ingest to the packaged ladder, in this process.
    eprintln!("running the pipeline...");
    let backend = crate::backend::build_embedded(
        &settings,
        true,
        std::sync::Arc::new(cuepoint_runtime::ports::SystemClock),
    )
    .await?;
    let cpu_before = process_cpu();
    let started = Instant::now();
    let ids = ingest_files(&backend, &settings, std::slice::from_ref(&clip)).await?;
    let (assets, stats) =
        run_workers_until_terminal(&backend, &ids, Duration::from_secs(3600)).await;
    let pipeline_wall = started.elapsed();
    let pipeline_cpu = process_cpu() - cpu_before;
    let assets = assets?;
    let asset = assets.first().context("the pipeline returned no asset")?;
    anyhow::ensure!(
        asset.state == cuepoint_core::asset::AssetState::Complete,
        "the bench asset ended {}: {:?}",
        asset.state,
        asset.failure
    );
    let stages = Stages::of(asset).unwrap_or_default();
    let mut hop_counts = vec![0u64; HOP_RANGE_MS as usize + 1];
    for s in stats.values() {
        for (sum, n) in hop_counts.iter_mut().zip(s.hops.counts()) {
            *sum += n;
        }
    }
    let proxy = backend
        .embedded
        .as_ref()
        .and_then(|e| {
            let uri = asset
                .results
                .prefix
                .join(cuepoint_core::results::PROXY)
                .ok()?;
            e.fs_blobs().path_of(&uri).ok()
        })
        .context("the proxy of the bench asset is not on disk")?;

    // 2. The same outputs, bare: the packaging job's FFmpeg run with the asset's breaks (the
    // one full-resolution encode of the pipeline) and the first job's renditions (the proxy the
    // analyses read), each with the very settings the jobs use, without the pipeline around them.
    eprintln!("encoding the same ladder and proxy with FFmpeg alone...");
    let out = scratch.path().join("bare");
    let settings = crate::handlers::packaging::packaging_settings(&backend.ctx, asset)
        .map_err(|e| anyhow::anyhow!("packaging settings: {e}"))?;
    let bare = cuepoint_engine::local::packaging_spec(&settings, clip.clone(), &out)?;
    let cpu_before = process_cpu();
    let started = Instant::now();
    cuepoint_engine::package::package(&bare, None).await?;
    let bare_ladder = started.elapsed();
    let bare_ladder_cpu = process_cpu() - cpu_before;
    let job = cuepoint_core::mediaconvert::build_job_settings(
        &cuepoint_core::mediaconvert::default_template(),
        &cuepoint_core::domain::S3Uri::parse("s3://bench/in/bench.mov")?,
        &cuepoint_core::domain::S3Uri::parse("s3://bench/out/")?,
        spec.track_count,
    )?;
    let mut proxy_only = cuepoint_engine::local::rendition_spec(
        &job,
        clip.clone(),
        &scratch.path().join("bare-proxy"),
    )?;
    proxy_only.scratch_dir = Some(scratch.path().to_path_buf());
    cuepoint_engine::transcode::transcode(&proxy_only, None).await?;
    let bare_wall = started.elapsed();
    let bare_proxy = bare_wall - bare_ladder;
    let bare_cpu = process_cpu() - cpu_before;

    // 3. Analysis vs decode: CPU of the FFmpeg children and of this process, once the
    // workers have stopped (nothing else runs here then).
    backend.shutdown().await;
    eprintln!("analysing and decoding the proxy...");
    // What the local Rekognition runs for an asset's segment and vision jobs, one pass.
    let options = AnalyzeOptions {
        loudness: false,
        video: true,
        scratch_dir: Some(scratch.path().to_path_buf()),
        ..AnalyzeOptions::default()
    };
    let before = process_cpu();
    let info = cuepoint_engine::probe_media(proxy.to_str().context("proxy path")?).await?;
    let probe_cpu = process_cpu() - before;
    let children_before = children_cpu();
    let (path, opts) = (proxy.clone(), options.clone());
    let (_, samples) = tokio::task::spawn_blocking(move || {
        cuepoint_engine::analyze::segments_with_samples(
            &path,
            &info,
            &opts,
            Some(&sampling),
            |frames| frames.filter(|f| f.is_ok()).count(),
        )
    })
    .await??;
    let analysis_cpu = process_cpu() - before;
    let analysis_ffmpeg_cpu = children_cpu() - children_before;
    anyhow::ensure!(samples > 0, "the pass handed over no vision samples");
    // The segment analysis alone (no model installed).
    let before = process_cpu();
    cuepoint_engine::analyze(&proxy, &options, None).await?;
    let segments_cpu = process_cpu() - before;
    let decode_cpu = decode_only_cpu(&proxy, &[]).await?;
    let pass_decode_cpu =
        decode_only_cpu(&proxy, &["-skip_loop_filter:v", "all", "-threads", "1"]).await?;

    // 4. The pipeline again, each worker in its own process on one data directory.
    eprintln!("running the pipeline with one process per worker...");
    let multi = multiprocess_hops(cuepoint, args, &scratch.path().join("multi"), &clip).await?;

    // 5. An idle worker process.
    eprintln!("measuring an idle worker...");
    let rss = idle_rss(cuepoint, &scratch.path().join("idle")).await;

    Ok(BenchFigures {
        machine: machine(),
        programme,
        pipeline_wall_s: pipeline_wall.as_secs_f64(),
        bare_encode_wall_s: bare_wall.as_secs_f64(),
        pipeline_vs_encode: pipeline_wall.as_secs_f64() / bare_wall.as_secs_f64().max(1e-9),
        pipeline_cpu_s: pipeline_cpu,
        bare_encode_cpu_s: bare_cpu,
        pipeline_vs_encode_cpu: pipeline_cpu / bare_cpu.max(1e-9),
        bare_ladder_wall_s: bare_ladder.as_secs_f64(),
        bare_proxy_wall_s: bare_proxy.as_secs_f64(),
        bare_ladder_cpu_s: bare_ladder_cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        stages,
        analysis_cpu_s: analysis_cpu,
        analysis_probe_cpu_s: probe_cpu,
        analysis_ffmpeg_cpu_s: analysis_ffmpeg_cpu,
        analysis_own_cpu_s: analysis_cpu - probe_cpu - analysis_ffmpeg_cpu,
        pass_decode_cpu_s: pass_decode_cpu,
        segments_cpu_s: segments_cpu,
        decode_cpu_s: decode_cpu,
        analysis_vs_decode: analysis_cpu / decode_cpu.max(1e-9),
        segments_vs_decode: segments_cpu / decode_cpu.max(1e-9),
        hops: hop_counts.iter().sum(),
        hop_p50_ms: hop_quantile(&hop_counts, 0.50),
        hop_p99_ms: hop_quantile(&hop_counts, 0.99),
        hops_multiprocess: multi.iter().sum(),
        hop_multiprocess_p50_ms: hop_quantile(&multi, 0.50),
        hop_multiprocess_p99_ms: hop_quantile(&multi, 0.99),
        poll_interval_ms: cuepoint_embedded::DEFAULT_POLL_INTERVAL.as_millis() as u64,
        idle_worker_rss_mib: rss,
    })
}

/// CPU seconds of FFmpeg decoding the video of `file` and nothing else, with `decoder` options.
async fn decode_only_cpu(file: &Path, decoder: &[&str]) -> anyhow::Result<f64> {
    let before = children_cpu();
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(decoder)
        .arg("-i")
        .arg(file)
        .args(["-map", "0:v:0", "-f", "null", "-"])
        .stdin(Stdio::null())
        .status()
        .await
        .context("running ffmpeg")?;
    anyhow::ensure!(
        status.success(),
        "decoding {} failed: {status}",
        file.display()
    );
    Ok(children_cpu() - before)
}

/// Run the pipeline on `clip` with `cuepoint worker <name>` in one process per worker sharing the data
/// directory `data`, and gather their hop latencies (per-millisecond counts) from the
/// `HopLatencyMs` metric lines each process prints.
async fn multiprocess_hops(
    cuepoint: &Path,
    args: &BenchArgs,
    data: &Path,
    clip: &Path,
) -> anyhow::Result<Vec<u64>> {
    use tokio::io::AsyncBufReadExt as _;
    let mut settings = args.common.settings()?;
    settings.backend = cuepoint_runtime::config::Backend::Embedded;
    settings.data_dir = data.to_path_buf();
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let counts = std::sync::Arc::new(std::sync::Mutex::new(vec![0u64; HOP_RANGE_MS as usize + 1]));
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for kind in crate::handlers::WorkerKind::ALL {
        let mut cmd = tokio::process::Command::new(cuepoint);
        cmd.args(["worker", kind.queue(), "--data-dir"]).arg(data);
        if let Some(c) = &args.common.config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .env("CUEPOINT_LOG_FORMAT", "json")
            .env("CUEPOINT_BACKEND", "embedded")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} worker {kind}", cuepoint.display()))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let counts = counts.clone();
        readers.push(tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let hop = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("HopLatencyMs").and_then(|h| h.as_f64()));
                if let Some(ms) = hop {
                    let i = (ms.max(0.0) as u64).min(HOP_RANGE_MS) as usize;
                    counts.lock().unwrap_or_else(|p| p.into_inner())[i] += 1;
                }
            }
        }));
        children.push(child);
    }
    let backend = crate::backend::build_embedded(
        &settings,
        false,
        std::sync::Arc::new(cuepoint_runtime::ports::SystemClock),
    )
    .await?;
    let ids = ingest_files(&backend, &settings, &[clip.to_path_buf()]).await?;
    let id = ids.first().context("nothing ingested")?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asset = backend.ctx.ports.store.get(id).await?;
        if let Some(a) = asset.filter(|a| a.state.is_terminal()) {
            break Ok(a);
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "the run with one process per worker did not finish within an hour"
            ));
        }
        if let Some(i) = children
            .iter_mut()
            .position(|c| matches!(c.try_wait(), Ok(Some(_))))
        {
            break Err(anyhow::anyhow!(
                "worker {} exited before the asset finished",
                crate::handlers::WorkerKind::ALL[i]
            ));
        }
    };
    for c in &mut children {
        if let Some(pid) = c.id() {
            // SIGTERM: the workers drain and stop as in production.
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
    }
    for c in &mut children {
        if tokio::time::timeout(Duration::from_secs(30), c.wait())
            .await
            .is_err()
        {
            let _ = c.kill().await;
        }
    }
    for r in readers {
        let _ = r.await;
    }
    backend.shutdown().await;
    let asset = outcome?;
    anyhow::ensure!(
        asset.state == cuepoint_core::asset::AssetState::Complete,
        "the bench asset of the run with one process per worker ended {}: {:?}",
        asset.state,
        asset.failure
    );
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(counts)
}

/// CPU seconds (user + system) of the children this process has waited for.
fn children_cpu() -> f64 {
    // Fields 16 and 17 (cutime, cstime) are the 14th and 15th after the command name.
    stat_ticks(&[13, 14]) / clock_ticks()
}

/// CPU seconds of this process and of the children it has waited for: the pipeline's own
/// work (the models run in-process) and its FFmpeg runs.
fn process_cpu() -> f64 {
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    stat_ticks(&[11, 12, 13, 14]) / clock_ticks()
}

fn stat_ticks(fields: &[usize]) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    fields
        .iter()
        .map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        .sum()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Start `cuepoint worker all` on an empty data directory, let it settle, read its RSS.
async fn idle_rss(cuepoint: &Path, data: &Path) -> Option<f64> {
    let mut child = tokio::process::Command::new(cuepoint)
        .args(["worker", "all", "--data-dir"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = child.id().and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    });
    let _ = child.kill().await;
    rss
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    format!("{cores} cores, {model}, {build}")
}
