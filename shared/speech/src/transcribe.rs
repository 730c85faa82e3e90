//! Speech to text offline: Whisper base (CTranslate2) through faster-whisper.
//!
//! No pure-Rust runtime loads the CTranslate2 model, so transcription runs an external engine,
//! the way FFmpeg is: the models venv's python (`<models>/venv/bin/python`, installed by
//! `cuepoint models install` with a pinned faster-whisper) runs the script
//! `shared/speech/transcribe/transcribe.py`, embedded in this crate. It works offline
//! (`local_files_only`, `HF_HUB_OFFLINE=1`), on the CPU with int8 weights, and writes Amazon
//! Transcribe's output shape, parsed here into [`Transcript`].
//!
//! [`transcribe`] blocks until the engine exits (call it from `spawn_blocking` in async code)
//! and reports the CPU the engine used, measured with `wait4` on that one child.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cuepoint_core::transcript::Transcript;
use serde::Deserialize;

use crate::error::{stderr_tail, SpeechError};
use crate::models::{check_whisper_dir, engine_python, WHISPER_MODEL};

/// The engine script (committed at `shared/speech/transcribe/transcribe.py`).
pub const ENGINE_SCRIPT: &str = include_str!("../transcribe/transcribe.py");

/// The interpreter that runs the engine script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionEngine {
    pub python: PathBuf,
}

impl TranscriptionEngine {
    pub fn new(python: impl Into<PathBuf>) -> Self {
        Self {
            python: python.into(),
        }
    }

    /// The engine of the installed-models layout (`<models>/venv/bin/python`).
    pub fn from_models_dir(models_dir: &Path) -> Result<Self, SpeechError> {
        Ok(Self::new(engine_python(models_dir)?))
    }
}

/// How to transcribe.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeOptions {
    /// `jobName` in the output.
    pub job_name: String,
    /// Whisper language code (`en`, `fr`, …); `None` detects it from the first 30 s.
    pub language: Option<String>,
    /// Beam search width (1 = greedy, cheapest).
    pub beam_size: u32,
    /// CPU threads for the model (0 = the engine's default).
    pub threads: u32,
    /// faster-whisper's own silence skipping. Off by default: in faster-whisper 1.2.1 it dropped
    /// every sentence after the first ~36 s of a clip of sentences separated by 2 s silences.
    pub vad_filter: bool,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            job_name: "cuepoint".into(),
            language: None,
            beam_size: 5,
            threads: 0,
            vad_filter: false,
        }
    }
}

/// CPU time of a process (user and system), in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuUsage {
    pub user_seconds: f64,
    pub system_seconds: f64,
}

impl CpuUsage {
    pub fn total_seconds(&self) -> f64 {
        self.user_seconds + self.system_seconds
    }
}

/// A finished transcription and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    pub transcript: Transcript,
    /// Length of the audio the engine read.
    pub audio_seconds: f64,
    /// The language spoken (detected or as given) and the detector's probability.
    pub language: String,
    pub language_probability: f64,
    /// CPU of the whole engine process (interpreter start, model load, decoding), from `wait4`.
    /// `None` where the platform cannot measure it.
    pub cpu: Option<CpuUsage>,
    /// CPU spent transcribing once the model was loaded (measured inside the engine).
    pub inference_cpu_seconds: f64,
    pub wall_seconds: f64,
}

impl Transcription {
    /// CPU seconds of the whole engine run per minute of audio.
    pub fn cpu_seconds_per_audio_minute(&self) -> Option<f64> {
        let cpu = self.cpu?.total_seconds();
        (self.audio_seconds > 0.0).then(|| cpu * 60.0 / self.audio_seconds)
    }

    /// CPU seconds of decoding alone per minute of audio (what a long file converges to).
    pub fn inference_cpu_seconds_per_audio_minute(&self) -> Option<f64> {
        (self.audio_seconds > 0.0).then(|| self.inference_cpu_seconds * 60.0 / self.audio_seconds)
    }
}

#[derive(Deserialize)]
struct EngineInfo {
    duration: f64,
    language: String,
    language_probability: f64,
    #[serde(default)]
    transcribe_cpu_seconds: f64,
}

/// Transcribe `audio` (a WAV, or any media FFmpeg's libraries read: its first audio stream) with
/// the Whisper model directory `model_dir`. Blocks until the engine exits.
pub fn transcribe(
    engine: &TranscriptionEngine,
    model_dir: &Path,
    audio: &Path,
    options: &TranscribeOptions,
) -> Result<Transcription, SpeechError> {
    if !engine.python.exists() {
        return Err(SpeechError::EngineMissing {
            path: engine.python.clone(),
            reason: "not installed".into(),
        });
    }
    check_whisper_dir(model_dir)?;
    if !audio.is_file() {
        return Err(SpeechError::io(
            "reading",
            audio,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let work = tempfile::tempdir().map_err(|e| SpeechError::io("creating", "a temp dir", e))?;
    let output_path = work.path().join("transcript.json");
    let info_path = work.path().join("info.json");

    let mut cmd = Command::new(&engine.python);
    cmd.arg("-c")
        .arg(ENGINE_SCRIPT)
        .arg("--model")
        .arg(model_dir)
        .arg("--audio")
        .arg(audio)
        .arg("--output")
        .arg(&output_path)
        .arg("--info")
        .arg(&info_path)
        .args(["--job-name", &options.job_name])
        .args(["--language", options.language.as_deref().unwrap_or("")])
        .args(["--beam-size", &options.beam_size.max(1).to_string()])
        .args(["--threads", &options.threads.to_string()]);
    if options.vad_filter {
        cmd.arg("--vad-filter");
    }
    cmd.env("HF_HUB_OFFLINE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);

    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| SpeechError::EngineMissing {
        path: engine.python.clone(),
        reason: format!("cannot start it: {e}"),
    })?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let (exit, cpu) =
        wait_with_cpu(child).map_err(|e| SpeechError::io("waiting for", &engine.python, e))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let err = reader.join().unwrap_or_default();
    tracing::debug!(wall_seconds, cpu = ?cpu, "transcription engine finished");

    match exit {
        Exit::Code(0) => {}
        Exit::Code(3) => {
            return Err(SpeechError::ModelCorrupt {
                model: WHISPER_MODEL,
                path: model_dir.join("model.bin"),
                cause: stderr_tail(&err, 3),
            })
        }
        Exit::Code(5) => {
            return Err(SpeechError::EngineMissing {
                path: engine.python.clone(),
                reason: stderr_tail(&err, 3),
            })
        }
        other => {
            return Err(SpeechError::EngineFailed {
                status: other.to_string(),
                stderr_tail: stderr_tail(&err, 8),
            })
        }
    }

    let transcript: Transcript = read_json(&output_path)?;
    let info: EngineInfo = read_json(&info_path)?;
    Ok(Transcription {
        transcript,
        audio_seconds: info.duration,
        language: info.language,
        language_probability: info.language_probability,
        cpu,
        inference_cpu_seconds: info.transcribe_cpu_seconds,
        wall_seconds,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SpeechError> {
    let bytes = std::fs::read(path).map_err(|e| SpeechError::BadOutput {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| SpeechError::BadOutput {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })
}

enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

#[cfg(unix)]
fn wait_with_cpu(child: std::process::Child) -> std::io::Result<(Exit, Option<CpuUsage>)> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child, which `child` has not reaped (std only reaps in
        // wait/try_wait, never on drop).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    drop(child);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = CpuUsage {
        user_seconds: secs(usage.ru_utime),
        system_seconds: secs(usage.ru_stime),
    };
    let exit = if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    };
    Ok((exit, Some(cpu)))
}

#[cfg(not(unix))]
fn wait_with_cpu(mut child: std::process::Child) -> std::io::Result<(Exit, Option<CpuUsage>)> {
    let status = child.wait()?;
    Ok((Exit::Code(status.code().unwrap_or(-1)), None))
}

/// The engine dies with the worker, even on kill -9.
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
