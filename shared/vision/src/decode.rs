//! One FFmpeg process that decodes a video once and hands over the sampled frames.
//!
//! FFmpeg selects the frames (one every `interval` seconds, plus the first frame of each shot by
//! its scene-change score), scales only those, converts them to RGB and writes them raw to a
//! pipe; `showinfo` reports each frame's time and size on stderr just before the frame goes out.
//! For H.264 and MPEG-2/4 the decoder skips B-frames: no other frame is predicted from them
//! in the encodes cuepoint makes, so every sample is still a clean picture, at most a few frames
//! from the sampling time, for about half the decoding work.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::VisionError;
use crate::frame::Frame;

/// Which frames to take and at what size.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Seconds between samples (1.0: one frame per second).
    pub interval: f64,
    /// Scene-change score (0-1, FFmpeg's `scene`) above which a frame starts a new shot and is
    /// taken too; `None` takes only the regular samples.
    pub shot_threshold: Option<f64>,
    /// The longer side of the frames handed over, in pixels (never upscaled).
    pub max_side: usize,
    /// Skip B-frames while decoding (H.264 and MPEG-2/4 only).
    pub skip_bidirectional: bool,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            interval: 1.0,
            shot_threshold: Some(0.4),
            max_side: 480,
            skip_bidirectional: true,
        }
    }
}

/// A sampled frame and its time from the start of the video.
#[derive(Debug, Clone)]
pub struct TimedFrame {
    pub timestamp_ms: u64,
    pub frame: Frame,
}

/// The sampled frames of one video, in order, as FFmpeg produces them.
pub struct FrameSampler {
    input: PathBuf,
    child: Child,
    stdout: BufReader<ChildStdout>,
    info: Receiver<FrameInfo>,
    stderr_tail: Arc<Mutex<Vec<String>>>,
    stderr_thread: Option<JoinHandle<()>>,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct FrameInfo {
    pts_time: f64,
    width: usize,
    height: usize,
}

const STDERR_TAIL: usize = 12;

impl FrameSampler {
    /// Start FFmpeg on `input` (any file it reads: a video, or a still image as one frame).
    pub fn open(input: &Path, options: &SampleOptions) -> Result<FrameSampler, VisionError> {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"]);
        if options.skip_bidirectional && skippable_codec(input) {
            cmd.args(["-skip_frame", "bidir"]);
        }
        cmd.arg("-i").arg(input);
        cmd.args(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf"]);
        cmd.arg(sample_filter(options));
        cmd.args(SAMPLE_OUTPUT);
        FrameSampler::spawn(cmd, input)
    }

    /// Run `cmd`, an FFmpeg command whose info-level log (stderr) carries the `showinfo` line
    /// of every frame it writes to stdout as [`SAMPLE_OUTPUT`] (the chain
    /// [`sample_filter`] builds does both). `input` names the video in errors. Other outputs
    /// of the same decode are the caller's.
    pub fn spawn(mut cmd: Command, input: &Path) -> Result<FrameSampler, VisionError> {
        let err = |cause: String| VisionError::Decode {
            input: input.to_path_buf(),
            cause,
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot run ffmpeg: {e}")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let tail = Arc::new(Mutex::new(Vec::new()));
        let tail2 = tail.clone();
        let thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(info) = parse_showinfo(&line) {
                    if tx.send(info).is_err() {
                        break;
                    }
                } else if !line.contains("Parsed_showinfo") {
                    let mut t = tail2.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() == STDERR_TAIL {
                        t.remove(0);
                    }
                    t.push(line);
                }
            }
        });
        Ok(FrameSampler {
            input: input.to_path_buf(),
            child,
            stdout: BufReader::with_capacity(1 << 20, stdout),
            info: rx,
            stderr_tail: tail,
            stderr_thread: Some(thread),
            done: false,
        })
    }

    fn error(&self, cause: String) -> VisionError {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join(" | ");
        VisionError::Decode {
            input: self.input.clone(),
            cause: if tail.is_empty() {
                cause
            } else {
                format!("{cause}; ffmpeg said: {tail}")
            },
        }
    }

    fn finish(&mut self) -> Result<(), VisionError> {
        self.done = true;
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        let status = self
            .child
            .wait()
            .map_err(|e| self.error(format!("waiting for ffmpeg: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(self.error(format!("ffmpeg exited with {status}")))
        }
    }
}

impl Iterator for FrameSampler {
    type Item = Result<TimedFrame, VisionError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let Ok(info) = self.info.recv() else {
            // stderr closed: FFmpeg has finished.
            let mut rest = Vec::new();
            let _ = self.stdout.read_to_end(&mut rest);
            return match self.finish() {
                Ok(()) if rest.is_empty() => None,
                Ok(()) => Some(Err(self.error(format!(
                    "{} bytes of frame data without frame information",
                    rest.len()
                )))),
                Err(e) => Some(Err(e)),
            };
        };
        let mut rgb = vec![0u8; info.width * info.height * 3];
        if let Err(e) = self.stdout.read_exact(&mut rgb) {
            let _ = self.child.kill();
            let cause = format!("reading a {}x{} frame: {e}", info.width, info.height);
            let _ = self.finish();
            return Some(Err(self.error(cause)));
        }
        let frame = Frame::new(info.width, info.height, rgb)?;
        Some(Ok(TimedFrame {
            timestamp_ms: (info.pts_time.max(0.0) * 1000.0).round() as u64,
            frame,
        }))
    }
}

impl Drop for FrameSampler {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The output options of the sampled frames: raw RGB on stdout, one frame per selected frame.
pub const SAMPLE_OUTPUT: [&str; 7] = [
    "-fps_mode",
    "passthrough",
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "pipe:1",
];

/// The filter chain that picks the samples from every decoded frame: select, scale, RGB,
/// report (`showinfo`, at FFmpeg's info log level).
pub fn sample_filter(o: &SampleOptions) -> String {
    // The first frame decoded in each new interval of the grid (0, I, 2I, ...): samples stay on
    // the grid whatever frames are skipped or added for shots. A little slack keeps a frame
    // timed exactly on a grid line from rounding into the interval before it.
    let i = o.interval.max(0.001);
    let mut select = format!(
        "isnan(prev_selected_t)+gte(floor((t+0.0005)/{i})-floor((prev_selected_t+0.0005)/{i})\\,1)"
    );
    if let Some(th) = o.shot_threshold {
        select.push_str(&format!("+gt(scene\\,{th})"));
    }
    let side = o.max_side.max(16);
    format!(
        "select='{select}',scale=w='if(gte(iw\\,ih)\\,min({side}\\,iw)\\,-2)':h='if(gte(iw\\,ih)\\,-2\\,min({side}\\,ih))':flags=area,format=rgb24,showinfo"
    )
}

/// The frame time and size from a `showinfo` line.
fn parse_showinfo(line: &str) -> Option<FrameInfo> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let field = |key: &str| {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next()
    };
    let pts_time: f64 = field(" pts_time:")?.parse().ok()?;
    let (w, h) = field(" s:")?.split_once('x')?;
    Some(FrameInfo {
        pts_time,
        width: w.parse().ok()?,
        height: h.parse().ok()?,
    })
}

/// Whether the first video stream is a codec whose B-frames nothing else references.
fn skippable_codec(input: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(input)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => matches!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "h264" | "mpeg2video" | "mpeg4"
        ),
        _ => false,
    }
}

/// FFmpeg dies with this process, even on kill -9.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_showinfo_lines() {
        let line = "[Parsed_showinfo_3 @ 0x55d0] n:   2 pts:  25600 pts_time:2.04    duration:    512 duration_time:0.04    fmt:rgb24 sar:1/1 s:640x360 i:P iskey:0 type:P checksum:3A8C1F2B";
        assert_eq!(
            parse_showinfo(line),
            Some(FrameInfo {
                pts_time: 2.04,
                width: 640,
                height: 360
            })
        );
        assert_eq!(
            parse_showinfo("[Parsed_showinfo_3 @ 0x1] color_range:tv"),
            None
        );
        assert_eq!(parse_showinfo("Stream #0:0: Video: h264"), None);
    }

    #[test]
    fn filter_selects_interval_and_shots() {
        let f = sample_filter(&SampleOptions::default());
        assert!(
            f.contains("gte(floor((t+0.0005)/1)-floor((prev_selected_t+0.0005)/1)\\,1)"),
            "{f}"
        );
        assert!(f.contains("gt(scene\\,0.4)"), "{f}");
        assert!(f.ends_with("format=rgb24,showinfo"));
        let f = sample_filter(&SampleOptions {
            shot_threshold: None,
            ..Default::default()
        });
        assert!(!f.contains("scene"));
    }
}
