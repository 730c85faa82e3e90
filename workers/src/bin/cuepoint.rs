//! `cuepoint`: the operator CLI.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cuepoint", version, about = "Find ad breaks, silent tracks and what is on screen in video.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score saved analysis results (a results directory) and choose ad breaks.
    Slots(cuepoint_workers::slots::SlotsArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Slots(args) => cuepoint_workers::slots::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
