//! The `cuepoint` operator CLI's commands.

pub mod analyze;
pub mod bench;
pub mod demo;
pub mod models;
pub mod retry;
pub mod run;
pub mod status;
pub mod summary;

/// Write a line to stdout. A reader that went away (`cuepoint status | head -2`) ends the
/// process quietly with status 0, as Unix filters do; `println!` would panic with a backtrace.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Write to stdout; see [`outln!`].
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}
