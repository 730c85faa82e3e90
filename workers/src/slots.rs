//! `cuepoint slots DIR`: score saved analysis results.
//! OWNER: scoring helper.

/// Arguments of `cuepoint slots`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlotsArgs {
    /// Results directory (loudness/track-<n>.csv, segments.json, labels.json, ...).
    pub dir: std::path::PathBuf,
}

/// Run the command; the returned error is printed by the binary (exit status 1).
pub fn run(args: &SlotsArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not yet implemented")
}
