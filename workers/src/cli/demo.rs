//! `cuepoint demo`: generate a sample with a known answer (hard cuts, black silent gaps, 8 mono
//! tracks of which some carry audio), run it through the whole embedded pipeline, and show how
//! the results compare with the ground truth.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cuepoint_core::scoring::DefaultPolicyConfig;
use cuepoint_engine::sample::{generate_sample, GroundTruth, SampleSpec};
use serde::Serialize;

use crate::cli::run::{ingest_files, run_until_terminal, CommonArgs};
use crate::cli::summary::{clock, render, summarize, AssetSummary};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Length of the generated programme, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Frame size of the generated programme, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    pub resolution: String,
    /// JSON output (summary and comparison).
    #[arg(long)]
    pub json: bool,
}

/// A (start, end) span in seconds.
type Span = (f64, f64);

/// How the pipeline's answer compares with the generated truth.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub frame_seconds: f64,
    /// (truth start, detected start) per black gap; detected None when missed.
    pub black_gaps: Vec<(Span, Option<Span>)>,
    pub black_gaps_within_one_frame: bool,
    /// (truth cut, nearest detected shot start).
    pub cuts: Vec<(f64, Option<f64>)>,
    pub cuts_within_one_frame: bool,
    pub silent_tracks_truth: Vec<usize>,
    pub silent_tracks_found: Vec<usize>,
    pub silent_tracks_exact: bool,
    /// Breaks that fall inside a black silent gap.
    pub breaks_in_gaps: usize,
    pub breaks: usize,
}

pub fn compare(truth: &GroundTruth, s: &AssetSummary, shot_starts: &[f64]) -> Comparison {
    let frame = 1.0 / truth.fps;
    let tol = frame + 1e-6;
    let black_gaps: Vec<_> = truth
        .black_gaps
        .iter()
        .map(|&(a, b)| {
            let found = s
                .black_frames
                .iter()
                .copied()
                .min_by(|x, y| (x.0 - a).abs().total_cmp(&(y.0 - a).abs()));
            ((a, b), found.filter(|f| (f.0 - a).abs() <= 1.0))
        })
        .collect();
    let black_ok = black_gaps
        .iter()
        .all(|((a, b), f)| f.is_some_and(|(x, y)| (x - a).abs() <= tol && (y - b).abs() <= tol));
    let cuts: Vec<_> = truth
        .cuts
        .iter()
        .map(|&c| {
            (
                c,
                shot_starts
                    .iter()
                    .copied()
                    .min_by(|x, y| (x - c).abs().total_cmp(&(y - c).abs())),
            )
        })
        .collect();
    let cuts_ok = cuts
        .iter()
        .all(|(c, f)| f.is_some_and(|x| (x - c).abs() <= tol));
    let silent_truth: Vec<usize> = (1..=truth.track_count as usize)
        .filter(|t| !truth.active_tracks.contains(&(*t as u32)))
        .collect();
    let breaks_in_gaps = s
        .breaks
        .iter()
        .filter(|b| {
            truth
                .black_gaps
                .iter()
                .any(|&(a, e)| b.timestamp >= a - tol && b.timestamp <= e + tol)
        })
        .count();
    Comparison {
        frame_seconds: frame,
        black_gaps_within_one_frame: black_ok,
        black_gaps,
        cuts_within_one_frame: cuts_ok,
        cuts,
        silent_tracks_exact: silent_truth == s.silent_tracks,
        silent_tracks_truth: silent_truth,
        silent_tracks_found: s.silent_tracks.clone(),
        breaks_in_gaps,
        breaks: s.breaks.len(),
    }
}

pub fn render_comparison(c: &Comparison) -> String {
    let mark = |ok: bool| if ok { "ok " } else { "MISS" };
    let mut out = String::from("ground truth vs pipeline\n");
    for ((a, b), f) in &c.black_gaps {
        let found = f
            .map(|(x, y)| format!("{} - {}", clock(x), clock(y)))
            .unwrap_or_else(|| "not found".into());
        out.push_str(&format!(
            "  black gap {} - {}  ->  {}\n",
            clock(*a),
            clock(*b),
            found
        ));
    }
    out.push_str(&format!(
        "  [{}] black gaps within one frame ({:.0} ms)\n",
        mark(c.black_gaps_within_one_frame),
        c.frame_seconds * 1000.0
    ));
    let worst = c
        .cuts
        .iter()
        .filter_map(|(t, f)| f.map(|x| (x - t).abs()))
        .fold(0.0, f64::max);
    out.push_str(&format!(
        "  [{}] {} hard cuts found within one frame (worst error {:.0} ms)\n",
        mark(c.cuts_within_one_frame),
        c.cuts.len(),
        worst * 1000.0
    ));
    out.push_str(&format!(
        "  [{}] silent tracks: truth {:?}, found {:?}\n",
        mark(c.silent_tracks_exact),
        c.silent_tracks_truth,
        c.silent_tracks_found
    ));
    out.push_str(&format!(
        "  [{}] {} of {} breaks inside the black silent gaps\n",
        mark(c.breaks_in_gaps > 0),
        c.breaks_in_gaps,
        c.breaks
    ));
    out
}

pub async fn run(args: &DemoArgs) -> anyhow::Result<bool> {
    let mut settings = args.common.settings()?;
    settings.backend = cuepoint_runtime::config::Backend::Embedded;
    // A one-minute demo has room for a break per black gap only if breaks may be 15 s apart
    // (broadcast spacing is minutes); keep any spacing the user configured.
    let spacing = &mut settings.scoring.default_policy.min_spacing_seconds;
    if *spacing == DefaultPolicyConfig::default().min_spacing_seconds {
        *spacing = 15.0;
    }
    let (width, height) = args
        .resolution
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|(w, h)| *w >= 64 && *h >= 36 && w % 2 == 0 && h % 2 == 0)
        .with_context(|| {
            format!(
                "--resolution {:?}: expected WIDTHxHEIGHT with even numbers, e.g. 1920x1080",
                args.resolution
            )
        })?;
    let sample_dir = settings.data_dir.join("demo");
    std::fs::create_dir_all(&sample_dir)
        .with_context(|| format!("creating {}", sample_dir.display()))?;
    let spec = programme(args.duration);
    let spec = SampleSpec {
        width,
        height,
        ..spec
    };
    let path = sample_dir.join(format!(
        "cuepoint-demo-{}s-{}p.{}",
        args.duration as u64,
        height,
        match spec.container {
            cuepoint_engine::sample::SampleContainer::Mov => "mov",
            cuepoint_engine::sample::SampleContainer::Mkv => "mkv",
        }
    ));
    eprintln!(
        "generating a {:.0}-second sample with FFmpeg: {}",
        args.duration,
        path.display()
    );
    let t0 = Instant::now();
    let truth = generate_sample(&path, &spec)
        .await
        .context("generating the demo sample")?;
    std::fs::write(
        sample_dir.join("ground-truth.json"),
        serde_json::to_vec_pretty(&truth)?,
    )?;
    eprintln!(
        "generated in {:.1} s; running the pipeline (ingest -> transcode -> analyse -> score)",
        t0.elapsed().as_secs_f64()
    );

    let backend = crate::backend::build_embedded(
        &settings,
        true,
        std::sync::Arc::new(cuepoint_runtime::ports::SystemClock),
    )
    .await?;
    let t1 = Instant::now();
    let ids = ingest_files(&backend, &settings, &[path]).await?;
    let assets = run_until_terminal(&backend, &ids, Duration::from_secs(3600)).await?;
    let wall = t1.elapsed();
    let asset = assets.into_iter().next().context("no asset")?;
    let summary = summarize(backend.ctx.ports.blobs.as_ref(), &asset).await;
    let shots = shot_starts(&backend, &asset).await;
    let cmp = compare(&truth, &summary, &shots);
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"summary": summary, "comparison": cmp, "seconds": wall.as_secs_f64()})
            )?
        );
    } else {
        crate::outln!("{}", render(&summary));
        crate::outln!("{}", render_comparison(&cmp));
        crate::outln!(
            "pipeline wall time {:.1} s (ingest to VMAP)",
            wall.as_secs_f64()
        );
    }
    Ok(cmp.black_gaps_within_one_frame && cmp.cuts_within_one_frame && cmp.silent_tracks_exact)
}

pub async fn shot_starts(
    backend: &crate::backend::Backend,
    asset: &cuepoint_core::asset::Asset,
) -> Vec<f64> {
    let uri = asset
        .results
        .prefix
        .join(cuepoint_core::results::SEGMENTS)
        .expect("valid");
    let Ok(Some(bytes)) = backend.ctx.ports.blobs.get(&uri).await else {
        return vec![];
    };
    let Ok(seg) = serde_json::from_slice::<cuepoint_core::rekognition::SegmentDetection>(&bytes)
    else {
        return vec![];
    };
    seg.segments
        .iter()
        .filter(|s| s.is_shot())
        .map(|s| s.start_timestamp_millis as f64 / 1000.0)
        .collect()
}

/// The demo programme of `duration` seconds: the standard 60 s sample, or the same shape scaled
/// (a cut every ~7 s, a black silent gap every ~20 s).
pub(crate) fn programme(duration: f64) -> SampleSpec {
    if (duration - 60.0).abs() < 1e-9 {
        return SampleSpec::default();
    }
    let d = SampleSpec::default();
    SampleSpec {
        active_tracks: d.active_tracks,
        track_count: d.track_count,
        ..SampleSpec::regular(duration, d.width, d.height, 7.0, 20.0)
    }
}
