//! `cuepoint slots DIR`: score saved analysis results, choose ad breaks and ads, write a VMAP.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use cuepoint_core::ads::AdInventory;
use cuepoint_core::scoring::{
    self, DefaultPolicyConfig, Policy, Schedule, ScoringInputs, ScoringOutput, Slot,
};
use cuepoint_core::vmap::{self, VmapBreak};

/// Which scoring policy `cuepoint slots` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Same slots and scores as the public aws-smart-ad-breaks sample.
    Reference,
    /// Silence intervals, spacing, lead-in/out guards, breaks in time order, HLS-aligned.
    Default,
}

/// Arguments of `cuepoint slots`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlotsArgs {
    /// Results directory (loudness/track-<n>.csv, segments.json, labels.json, ...).
    pub dir: PathBuf,
    /// Scoring policy.
    #[arg(long, value_enum, default_value_t = PolicyArg::Default)]
    pub policy: PolicyArg,
    /// Number of breaks to choose.
    #[arg(long, default_value_t = scoring::DEFAULT_TOP_N)]
    pub top: usize,
    /// Ad inventory JSON ({"ads": [{"url", "labels": [...]}]}); the built-in one by default.
    #[arg(long, value_name = "FILE")]
    pub ads: Option<PathBuf>,
    /// Write the VMAP (VMAP 1.0 with inline VAST 3.0) here.
    #[arg(long, value_name = "OUT")]
    pub vmap: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Default policy: settings as JSON (any subset of DefaultPolicyConfig's fields).
    #[arg(long, value_name = "FILE")]
    pub policy_config: Option<PathBuf>,
    /// Default policy: least seconds between two breaks.
    #[arg(long, value_name = "SECONDS")]
    pub min_spacing: Option<f64>,
    /// Default policy: no break in the first SECONDS.
    #[arg(long, value_name = "SECONDS")]
    pub lead_in: Option<f64>,
    /// Default policy: no break in the last SECONDS.
    #[arg(long, value_name = "SECONDS")]
    pub lead_out: Option<f64>,
    /// Default policy: break near target positions instead of the best --top, e.g.
    /// `every=8m,deviation=60,duration=90` or `at=480/960/1440` (also `from=`, `per_hour=`;
    /// times in seconds or with s, m, h). The VMAP announces the break duration.
    #[arg(long, value_name = "SPEC")]
    pub schedule: Option<String>,
}

/// Run the command; the returned error is printed by the binary (exit status 1).
pub fn run(args: &SlotsArgs) -> anyhow::Result<()> {
    let policy = policy(args)?;
    let inventory = match &args.ads {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            AdInventory::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => AdInventory::default_inventory(),
    };
    let inputs = read_results(&args.dir)?;
    let output = scoring::score(&inputs, &policy, args.top)
        .map_err(|e| anyhow!("scoring {}: {e}", args.dir.display()))?;
    let plan = vmap::plan_breaks(&output.breaks, &inventory);

    if let Some(out) = &args.vmap {
        let text =
            vmap::build_vmap_with_duration(&plan, crate::scoring_config::break_seconds(&output))?;
        std::fs::write(out, text)
            .with_context(|| format!("{}: cannot write the VMAP", out.display()))?;
    }

    let stdout = if args.json {
        json_report(&output, &plan, args.vmap.as_deref())?
    } else {
        table(&output, &plan)
    };
    crate::cli::write_stdout(format_args!("{stdout}"));
    Ok(())
}

fn policy(args: &SlotsArgs) -> anyhow::Result<Policy> {
    let knobs = args.policy_config.is_some()
        || args.min_spacing.is_some()
        || args.lead_in.is_some()
        || args.lead_out.is_some()
        || args.schedule.is_some();
    if args.policy == PolicyArg::Reference {
        if knobs {
            bail!("--policy-config, --min-spacing, --lead-in, --lead-out and --schedule apply to --policy default only");
        }
        return Ok(Policy::Reference);
    }
    let mut cfg = match &args.policy_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            serde_json::from_str::<DefaultPolicyConfig>(&text).map_err(|e| {
                anyhow!(
                    "{}: invalid default policy configuration: {e}",
                    path.display()
                )
            })?
        }
        None => DefaultPolicyConfig::default(),
    };
    if let Some(v) = args.min_spacing {
        cfg.min_spacing_seconds = v;
    }
    if let Some(v) = args.lead_in {
        cfg.lead_in_seconds = v;
    }
    if let Some(v) = args.lead_out {
        cfg.lead_out_seconds = v;
    }
    if let Some(spec) = &args.schedule {
        cfg.schedule =
            Some(Schedule::parse_spec(spec).map_err(|e| anyhow!("--schedule {spec:?}: {e}"))?);
    }
    cfg.validate()?;
    Ok(Policy::Default(cfg))
}

/// Reads a results directory; a missing file is "no results of that kind".
pub fn read_results(dir: &Path) -> anyhow::Result<ScoringInputs> {
    if !dir.is_dir() {
        bail!(
            "results directory {} does not exist or is not a directory",
            dir.display()
        );
    }
    let read = |rel: &str| -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(dir.join(rel)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    };
    ScoringInputs::from_files(read)
        .map_err(|e| anyhow!("in results directory {}: {e}", dir.display()))
}

/// What `--json` prints: the scoring output, then the ad chosen for each break and the VMAP path.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    output: &'a ScoringOutput,
    ads: Vec<AdChoice<'a>>,
    vmap: Option<String>,
}

#[derive(serde::Serialize)]
struct AdChoice<'a> {
    break_id: String,
    timestamp: f64,
    time_offset: Option<String>,
    ad_url: &'a str,
    similarity: f64,
    labels: &'a [String],
}

fn json_report(
    output: &ScoringOutput,
    plan: &[VmapBreak],
    vmap_path: Option<&Path>,
) -> anyhow::Result<String> {
    let ads = plan
        .iter()
        .enumerate()
        .map(|(i, b)| AdChoice {
            break_id: vmap::break_id(i + 1),
            timestamp: b.timestamp,
            time_offset: vmap::time_offset(b.timestamp),
            ad_url: &b.ad_url,
            similarity: b.similarity,
            labels: &b.labels,
        })
        .collect();
    let report = JsonReport {
        output,
        ads,
        vmap: vmap_path.map(|p| p.display().to_string()),
    };
    let mut text = serde_json::to_string_pretty(&report)?;
    text.push('\n');
    Ok(text)
}

fn hms(t: f64) -> String {
    crate::cli::summary::clock(t)
}

fn reasons(slot: &Slot) -> String {
    slot.reasons
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(output: &ScoringOutput, plan: &[VmapBreak]) -> String {
    let mut s = String::new();
    let duration = output.duration.map_or("unknown".to_string(), hms);
    let _ = writeln!(
        s,
        "policy {}  duration {}  {} slot(s)  {} break(s)",
        output.policy.as_str(),
        duration,
        output.slots.len(),
        output.breaks.len()
    );
    let _ = writeln!(s, "{:<14} {:>7}  {:<11} REASONS", "TIME", "SCORE", "BREAK");
    for slot in &output.slots {
        // A break is the slot it came from, possibly moved onto an HLS boundary.
        let id = output
            .breaks
            .iter()
            .position(|b| b.snapped_from.unwrap_or(b.timestamp) == slot.timestamp)
            .map(|i| vmap::break_id(i + 1))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<14} {:>7.4}  {:<11} {}",
            hms(slot.timestamp),
            slot.score,
            id,
            reasons(slot)
        );
        // Why the slot was marked down or refused (default policy).
        for note in &slot.notes {
            let _ = writeln!(s, "{:<14} {:>7}  {:<11} {note}", "", "", "");
        }
    }
    if !output.breaks.is_empty() {
        let _ = writeln!(s, "\nbreaks:");
        for (i, (b, ad)) in output.breaks.iter().zip(plan).enumerate() {
            let moved = b
                .snapped_from
                .map(|f| format!(" (moved from {} to a segment boundary)", hms(f)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:<11} {}  {:.4}  {}{}",
                vmap::break_id(i + 1),
                hms(b.timestamp),
                b.score,
                ad.ad_url,
                moved
            );
            if let Some(line) = &b.explanation {
                let _ = writeln!(s, "  {:<11} {line}", "");
            }
        }
    }
    if let Some(r) = &output.schedule {
        let length = r
            .break_seconds
            .map(|d| format!(", breaks of {d} s"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "\nschedule: {} of {} target(s) served, within {} s{length}:",
            r.served(),
            r.targets.len(),
            r.max_deviation_seconds
        );
        for t in &r.targets {
            let outcome = match (&t.served_by, &t.unserved) {
                (Some(b), _) => format!(
                    "{} at {} ({:+.3} s)",
                    vmap::break_id(b.break_index + 1),
                    hms(b.timestamp),
                    b.offset
                ),
                (None, Some(why)) => format!("not served: {why}"),
                (None, None) => "not served".into(),
            };
            let _ = writeln!(s, "  target {}  {outcome}", hms(t.target));
        }
    }
    s
}
