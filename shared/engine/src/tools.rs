//! Finding and running `ffmpeg` / `ffprobe`.
//!
//! Runs are asynchronous child processes (`tokio::process`) without a time limit: a long
//! transcode simply runs to the end. Dropping the future kills the child. FFmpeg is always
//! started with `-nostdin -nostats -v error -progress pipe:1`, so stderr carries only errors and
//! stdout carries `key=value` progress blocks, turned into a fraction of the expected duration.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::error::EngineError;

/// A progress callback: receives the fraction done, 0.0 ..= 1.0, non-decreasing.
pub type ProgressFn<'a> = &'a (dyn Fn(f64) + Send + Sync);

/// Environment variable overriding the `ffmpeg` binary.
pub const FFMPEG_ENV: &str = "CUEPOINT_FFMPEG";
/// Environment variable overriding the `ffprobe` binary.
pub const FFPROBE_ENV: &str = "CUEPOINT_FFPROBE";

/// The FFmpeg binaries in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Tools {
    /// Locate both tools (override variables first, then `PATH`).
    pub fn locate() -> Result<Self, EngineError> {
        Ok(Tools {
            ffmpeg: locate_tool("ffmpeg", FFMPEG_ENV)?,
            ffprobe: locate_tool("ffprobe", FFPROBE_ENV)?,
        })
    }

    /// The first line of `ffmpeg -version` (e.g. `ffmpeg version 5.1.9-0+deb12u1 ...`).
    pub async fn ffmpeg_version(&self) -> Result<String, EngineError> {
        let out = Command::new(&self.ffmpeg)
            .arg("-version")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| EngineError::io("running", &self.ffmpeg, e))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string())
    }
}

pub(crate) fn locate_tool(
    name: &'static str,
    env_var: &'static str,
) -> Result<PathBuf, EngineError> {
    if let Some(custom) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&custom);
        if is_executable(&p) {
            return Ok(p);
        }
        return Err(EngineError::ToolMissing {
            tool: name,
            looked_for: format!("{env_var}={} is not an executable file", p.display()),
            env_var,
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(EngineError::ToolMissing {
        tool: name,
        looked_for: "not on PATH".into(),
        env_var,
    })
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// What a finished FFmpeg run left behind.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunOutcome {
    /// Error-level messages (the run succeeded anyway: e.g. a few undecodable packets).
    pub stderr: String,
    /// The last `out_time` FFmpeg reported, in seconds.
    pub out_time: Option<f64>,
}

/// Run `ffmpeg <args>` to the end, reporting progress against `duration` seconds.
/// `input` names the input in error messages.
pub(crate) async fn run_ffmpeg(
    args: &[OsString],
    duration: f64,
    input: &str,
    progress: Option<ProgressFn<'_>>,
) -> Result<RunOutcome, EngineError> {
    run_ffmpeg_piped(args, duration, input, progress, None).await
}

/// A pipe for one more FFmpeg output: FFmpeg writes to `pipe:3` (the write end becomes its
/// file descriptor 3), the engine reads `reader` until FFmpeg exits.
pub(crate) struct OutputPipe {
    pub reader: std::fs::File,
    pub writer: std::os::fd::OwnedFd,
}

/// A new output pipe; both ends close on exec, so no other child holds the write end open.
pub(crate) fn output_pipe() -> Result<OutputPipe, EngineError> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2/pipe write two descriptors into `fds`, which this function then owns.
    #[cfg(target_os = "linux")]
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(not(target_os = "linux"))]
    let r = unsafe {
        let r = libc::pipe(fds.as_mut_ptr());
        if r == 0 {
            libc::fcntl(fds[0], libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(fds[1], libc::F_SETFD, libc::FD_CLOEXEC);
        }
        r
    };
    if r == -1 {
        return Err(EngineError::io(
            "creating a pipe for",
            "ffmpeg",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    unsafe {
        Ok(OutputPipe {
            reader: std::fs::File::from_raw_fd(fds[0]),
            writer: std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        })
    }
}

/// Let a child inherit `writer` as its file descriptor 3.
pub(crate) fn inherit_as_fd3(cmd: &mut std::process::Command, writer: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = writer.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would leave close-on-exec set.
            let r = if fd == 3 {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// As `run_ffmpeg`, with `pipe:3` writing into `fd3` (see `output_pipe`).
pub(crate) async fn run_ffmpeg_piped(
    args: &[OsString],
    duration: f64,
    input: &str,
    progress: Option<ProgressFn<'_>>,
    fd3: Option<std::os::fd::OwnedFd>,
) -> Result<RunOutcome, EngineError> {
    let ffmpeg = locate_tool("ffmpeg", FFMPEG_ENV)?;
    let mut cmd = Command::new(&ffmpeg);
    if let Some(w) = &fd3 {
        inherit_as_fd3(cmd.as_std_mut(), w);
    }
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        "-progress",
        "pipe:1",
    ])
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    die_with_parent(&mut cmd);
    tracing::debug!(command = %render_command(&ffmpeg, args), "running ffmpeg");
    let spawned = cmd.spawn();
    // The child has its copy; FFmpeg's exit must be the reader's end of file.
    drop(fd3);
    let mut child = spawned.map_err(|e| EngineError::io("starting", &ffmpeg, e))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let read_progress = async {
        let mut last: Option<f64> = None;
        let mut reported = 0.0_f64;
        if let Some(out) = stdout {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                match key {
                    // out_time_ms is microseconds too (an old FFmpeg misnomer); out_time_us is exact.
                    "out_time_us" => {
                        if let Ok(us) = value.trim().parse::<i64>() {
                            let t = us.max(0) as f64 / 1e6;
                            last = Some(t);
                            if let Some(cb) = progress {
                                if duration > 0.0 {
                                    let f = (t / duration).clamp(0.0, 1.0);
                                    if f > reported {
                                        reported = f;
                                        cb(f);
                                    }
                                }
                            }
                        }
                    }
                    "progress" if value.trim() == "end" => {
                        if let Some(cb) = progress {
                            if reported < 1.0 {
                                reported = 1.0;
                                cb(1.0);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        last
    };
    let read_errors = async {
        let mut buf = Vec::new();
        if let Some(mut err) = stderr {
            let _ = err.read_to_end(&mut buf).await;
        }
        String::from_utf8_lossy(&buf).into_owned()
    };
    let (out_time, stderr) = tokio::join!(read_progress, read_errors);
    let status = child
        .wait()
        .await
        .map_err(|e| EngineError::io("waiting for", &ffmpeg, e))?;
    if !status.success() {
        return Err(EngineError::ToolFailed {
            tool: "ffmpeg",
            input: input.to_string(),
            status: status.to_string(),
            message: summarize_stderr(&stderr),
        });
    }
    if !stderr.trim().is_empty() {
        tracing::warn!(input, messages = %summarize_stderr(&stderr), "ffmpeg reported errors but finished");
    }
    Ok(RunOutcome { stderr, out_time })
}

/// Make the child die when this process dies, however it dies: `kill_on_drop` covers a
/// graceful stop, but after `kill -9` of a worker an orphaned FFmpeg would go on encoding (and
/// writing into the scratch directory the resumed job reuses).
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Run ffprobe with `args`; returns stdout, or the exit status and stderr.
pub(crate) async fn run_ffprobe(
    args: &[&OsStr],
) -> Result<Result<Vec<u8>, (String, String)>, EngineError> {
    let ffprobe = locate_tool("ffprobe", FFPROBE_ENV)?;
    let out = Command::new(&ffprobe)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| EngineError::io("running", &ffprobe, e))?;
    if out.status.success() {
        Ok(Ok(out.stdout))
    } else {
        Ok(Err((
            out.status.to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )))
    }
}

/// The stderr of a failed run, shortened for an error message: distinct lines, at most ten.
pub(crate) fn summarize_stderr(stderr: &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    let more = seen.len().saturating_sub(10);
    let mut s = seen.into_iter().take(10).collect::<Vec<_>>().join("; ");
    if more > 0 {
        s.push_str(&format!("; ... {more} more"));
    }
    if s.is_empty() {
        s.push_str("no message");
    }
    s
}

fn render_command(bin: &Path, args: &[OsString]) -> String {
    let mut s = bin.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Escape a value (a file path) for use as a filter option inside a `-filter_complex` graph:
/// first for the option parser (`\ ' :`), then for the graph parser (`\ ' [ ] , ;`).
pub(crate) fn escape_filter_value(value: &str) -> String {
    let mut level1 = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '\'' | ':') {
            level1.push('\\');
        }
        level1.push(c);
    }
    let mut level2 = String::with_capacity(level1.len());
    for c in level1.chars() {
        if matches!(c, '\\' | '\'' | '[' | ']' | ',' | ';') {
            level2.push('\\');
        }
        level2.push(c);
    }
    level2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_both_levels() {
        assert_eq!(escape_filter_value("/tmp/a.txt"), "/tmp/a.txt");
        assert_eq!(escape_filter_value("C:/x"), "C\\\\:/x");
        assert_eq!(escape_filter_value("a,b"), "a\\,b");
    }

    #[test]
    fn summarizes_repeated_lines() {
        let s = summarize_stderr("x: bad\nx: bad\n\ny: worse\n");
        assert_eq!(s, "x: bad; y: worse");
        assert_eq!(summarize_stderr(""), "no message");
    }
}
