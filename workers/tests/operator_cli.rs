//! The operator CLI and the worker binaries as a person or a process supervisor uses them:
//! real processes, real FFmpeg, signals and pipes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cuepoint_engine::sample::{generate_sample, SampleSpec};

const CUEPOINT: &str = env!("CARGO_BIN_EXE_cuepoint");

fn clip(dir: &Path, name: &str, seconds: f64) -> PathBuf {
    let path = dir.join(name);
    let spec = SampleSpec {
        duration: seconds,
        width: 160,
        height: 90,
        track_count: 2,
        active_tracks: vec![1],
        cuts: vec![seconds / 3.0],
        black_gaps: vec![(seconds / 2.0, seconds / 2.0 + 1.0)],
        end_credits_from: None,
        ..SampleSpec::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(generate_sample(&path, &spec))
        .unwrap();
    path
}

/// Fast retries and short polls, as the other multi-process tests use.
fn quick(cmd: &mut Command) -> &mut Command {
    cmd.env("CUEPOINT_CONSUMER__WAIT_SECONDS", "1")
        .env("CUEPOINT_CONSUMER__RETRY_BASE_SECONDS", "1")
        .env("CUEPOINT_CONSUMER__RETRY_MAX_SECONDS", "1")
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Wait for `child` at most `limit`; kill it and fail when it does not end.
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn states(data: &Path) -> Vec<String> {
    let out = Command::new(CUEPOINT)
        .args(["status", "--json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["state"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn status_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // The reader is gone before cuepoint writes its first line (`cuepoint status | head -0`).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(CUEPOINT)
        .args(["status", "--data-dir"])
        .arg(dir.path().join("d"))
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn worker_binaries_take_the_options_of_cuepoint_worker() {
    for bin in [
        env!("CARGO_BIN_EXE_cuepoint-ingest"),
        env!("CARGO_BIN_EXE_cuepoint-media"),
        env!("CARGO_BIN_EXE_cuepoint-analysis"),
        env!("CARGO_BIN_EXE_cuepoint-results"),
        env!("CARGO_BIN_EXE_cuepoint-scoring"),
        env!("CARGO_BIN_EXE_cuepoint-packaging"),
    ] {
        let cwd = tempfile::tempdir().unwrap();
        // Before, `--help` started a worker that never ended: fail after a bound instead.
        let help = Command::new(bin)
            .arg("--help")
            .current_dir(cwd.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let help = wait_output(help, Duration::from_secs(20));
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{bin} --help: {:?}", help.status);
        for opt in ["--data-dir", "--config", "--log"] {
            assert!(text.contains(opt), "{bin} --help lacks {opt}:\n{text}");
        }
        let bad = Command::new(bin)
            .arg("--no-such-option")
            .current_dir(cwd.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let bad = wait_output(bad, Duration::from_secs(20));
        let same = Command::new(CUEPOINT)
            .args(["worker", "ingest", "--no-such-option"])
            .current_dir(cwd.path())
            .output()
            .unwrap();
        assert_eq!(
            bad.status.code(),
            Some(2),
            "{bin}: {}",
            String::from_utf8_lossy(&bad.stderr)
        );
        assert_eq!(bad.status.code(), same.status.code());
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("unexpected argument '--no-such-option'")
        );
        assert!(
            !cwd.path().join("cuepoint-data").exists(),
            "{bin} started a worker on --help or a bad option"
        );

        // `--data-dir` is served, not ./cuepoint-data.
        let data = cwd.path().join("elsewhere");
        let mut child = quick(Command::new(bin).arg("--data-dir").arg(&data))
            .current_dir(cwd.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while !data.join("cuepoint.db").exists() && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Still starting up (the database is new): a SIGTERM now must stop it gracefully too.
        sigterm(&child);
        let status = child.wait().unwrap();
        assert!(status.success(), "{bin} after SIGTERM: {status}");
        assert!(
            data.join("cuepoint.db").exists(),
            "{bin} did not open --data-dir"
        );
        assert!(
            !cwd.path().join("cuepoint-data").exists(),
            "{bin} served ./cuepoint-data despite --data-dir"
        );
        child.stderr.take();
    }
}

#[test]
fn sigterm_drains_cuepoint_run_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "long.mov", 40.0);
    let data = dir.path().join("data");
    let mut child = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Stop it mid-flight: any state after registration and before the end. Under a loaded
    // machine the transcode can be over between two polls, so TRANSCODING alone is too narrow.
    let t0 = Instant::now();
    loop {
        let seen = states(&data);
        if seen.iter().any(|s| {
            matches!(
                s.as_str(),
                "TRANSCODING" | "MEDIA_PREPARED" | "ANALYSING" | "ANALYSED"
            )
        }) {
            break;
        }
        assert!(
            !seen.iter().any(|s| s == "COMPLETE" || s == "FAILED"),
            "finished before it could be stopped: {seen:?}"
        );
        if child.try_wait().unwrap().is_some() {
            let out = wait_output(child, Duration::from_secs(1));
            panic!(
                "`cuepoint run` ended before it was stopped ({:?}; states {seen:?}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "never saw the asset in flight; last states {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&child);
    let out = wait_output(child, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "`cuepoint run` after SIGTERM: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("stopped on request"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Nothing was lost: the next run finishes the asset.
    let again = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(states(&data), vec!["COMPLETE".to_string()]);
}

#[test]
fn run_returns_promptly_with_the_dead_letter_and_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "clip.mov", 4.0);
    let data = dir.path().join("data");
    let t0 = Instant::now();
    let child = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data)
            .args(["--timeout", "600"]),
    )
    .env("CUEPOINT_FFPROBE", dir.path().join("no-ffprobe-here"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = wait_output(child, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        t0.elapsed() < Duration::from_secs(90),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("DLQ ingest"), "{stderr}");
    assert!(
        stderr.contains("no-ffprobe-here") && stderr.contains("infrastructure fault"),
        "the reason names the missing tool: {stderr}"
    );
    assert!(stderr.contains("cuepoint dlq replay ingest"), "{stderr}");
}

#[test]
fn scratch_stays_in_the_data_directory_and_a_killed_runs_scratch_is_cleaned_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "long.mov", 40.0);
    let data = dir.path().join("data");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .env("TMPDIR", &tmp)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    while !states(&data).iter().any(|s| s == "TRANSCODING") {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "never saw TRANSCODING"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let FFmpeg get going, then kill -9: no drain, no destructors.
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let leaked: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leaked.is_empty(),
        "scratch outside the data directory: {leaked:?}"
    );
    let jobs = data.join("scratch").join("jobs");
    assert!(
        std::fs::read_dir(&jobs).map(|d| d.count()).unwrap_or(0) > 0,
        "the killed job's scratch is in {}",
        jobs.display()
    );

    // The job no process runs is reported, and any start cleans its scratch (nothing holds
    // the job's lock).
    let out = Command::new(CUEPOINT)
        .args(["assets", "stuck", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mediaconvert job") && stderr.contains("no process runs it"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&jobs).unwrap().count(),
        0,
        "stale scratch left after a start"
    );
    let again = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .env("TMPDIR", &tmp)
    .output()
    .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_dir(&jobs).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// The embedded backend of a data directory, as the CLI opens it (default settings).
fn open_data_dir(data: &Path) -> std::sync::Arc<cuepoint_embedded::EmbeddedBackend> {
    let settings = cuepoint_runtime::config::Settings {
        data_dir: data.to_path_buf(),
        ..Default::default()
    };
    let routing = cuepoint_workers::backend::routing(&settings).unwrap();
    cuepoint_embedded::EmbeddedBackend::open(data, cuepoint_embedded::EmbeddedOptions::new(routing))
        .unwrap()
}

/// Messages in the worker queues of a data directory (visible, in flight or delayed).
fn queued_messages(data: &Path) -> u64 {
    let backend = open_data_dir(data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    [
        "ingest",
        "media",
        "analysis",
        "results",
        "scoring",
        "packaging",
    ]
    .iter()
    .map(|q| {
        let c = rt.block_on(backend.sqlite_queue(q).counts()).unwrap();
        c.visible + c.invisible
    })
    .sum()
}

#[test]
fn a_rerun_on_finished_assets_leaves_no_message_queued() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "clip.mov", 4.0);
    let data = dir.path().join("data");
    let first = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(queued_messages(&data), 0);
    // Left behind as by a killed run: an upload announced with no worker running.
    let ingest = Command::new(CUEPOINT)
        .arg("ingest")
        .arg(&src)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(ingest.status.success());
    assert_eq!(queued_messages(&data), 1);
    // The next run finds the asset terminal at once; it still handles what is queued.
    let again = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(queued_messages(&data), 0, "stale messages left queued");
    assert_eq!(states(&data), vec!["COMPLETE".to_string()]);
}

/// In-flight messages of the data directory held by process `pid` (a receipt names its holder:
/// `<token>@<pid>:<start>:<boot>`). Read without opening the backend, which would release them.
fn held_by(data: &Path, pid: u32) -> u64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        data.join("cuepoint.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    conn.query_row(
        "SELECT COUNT(*) FROM messages WHERE receipt LIKE ?1 AND visible_at_ms > ?2",
        rusqlite::params![format!("%@{pid}:%"), now],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .unwrap_or(0)
}

#[test]
fn a_rerun_after_kill_9_takes_back_the_killed_runs_messages_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "clip.mov", 4.0);
    let data = dir.path().join("data");
    let run = || {
        quick(
            Command::new(CUEPOINT)
                .arg("run")
                .arg(&src)
                .arg("--data-dir")
                .arg(&data),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
    };
    // kill -9 while a handler holds a message (its visibility timeout is 120 s). A handler can
    // finish between the look and the kill: then try again on the same data directory.
    let mut killed = None;
    for _ in 0..5 {
        let mut child = run();
        let pid = child.id();
        let t0 = Instant::now();
        while held_by(&data, pid) == 0 && child.try_wait().unwrap().is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the run never held a message"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        child.wait().unwrap();
        if held_by(&data, pid) > 0 {
            killed = Some(pid);
            break;
        }
    }
    let pid = killed.expect("never killed a run while it held a message");

    let t0 = Instant::now();
    let again = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    let took = t0.elapsed();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(held_by(&data, pid), 0);
    assert_eq!(
        queued_messages(&data),
        0,
        "the killed run's messages were left to their visibility timeout"
    );
    assert_eq!(states(&data), vec!["COMPLETE".to_string()]);
    // Without the release the rerun waits for them (up to its 30 s settle limit).
    assert!(took < Duration::from_secs(25), "the rerun took {took:?}");
}

#[test]
fn a_database_locked_for_25_s_mid_run_delays_the_run_and_it_completes() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| clip(dir.path(), &format!("v{i}.mov"), 6.0))
        .collect();
    let data = dir.path().join("data");
    let child = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .args(&files)
            .arg("--data-dir")
            .arg(&data)
            .args(["--timeout", "600", "--log", "warn"]),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    while !states(&data).iter().any(|s| s == "TRANSCODING") {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "never saw TRANSCODING"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another process takes the write lock and keeps it 25 s (longer than the 10 s busy
    // timeout): every write of the run fails meanwhile, the transcode's outcome included.
    let lock = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(25); c.execute('COMMIT')")
        .arg(data.join("cuepoint.db"))
        .output()
        .unwrap();
    assert!(
        lock.status.success(),
        "{}",
        String::from_utf8_lossy(&lock.stderr)
    );
    assert!(String::from_utf8_lossy(&lock.stdout).contains("locked"));
    let out = wait_output(child, Duration::from_secs(240));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert_eq!(states(&data), vec!["COMPLETE".to_string(); 3], "{stderr}");
    assert!(
        stderr.contains("recording the job outcome failed; retrying"),
        "the lock did not hit the outcome: {stderr}"
    );
}

/// Asset ids and their transcode jobs in a data directory.
/// The first MediaConvert job of each asset (proxy and loudness logs), not its packaging jobs.
fn transcode_jobs(data: &Path) -> Vec<(String, usize)> {
    ledger_jobs(
        data,
        cuepoint_runtime::ports::LedgerService::MediaConvert,
        Some(FIRST_JOB),
    )
}

/// `kind` of `ledger_jobs` for the first MediaConvert job, and for the packaging job.
const FIRST_JOB: &str = "first MediaConvert job";
const PACKAGING_JOB: &str = "packaging job";

#[test]
fn a_copied_data_directory_knows_its_assets() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (1..=2)
        .map(|i| clip(dir.path(), &format!("c{i}.mov"), 3.0))
        .collect();
    let data = dir.path().join("data");
    let first = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .args(&files)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let copy = dir.path().join("copy");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    // New inodes, and the sidecars' stamps no longer match: the content hash decides.
    let again = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .args(&files)
            .arg("--data-dir")
            .arg(&copy),
    )
    .output()
    .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let jobs = transcode_jobs(&copy);
    assert_eq!(
        jobs.len(),
        2,
        "assets after the rerun on the copy: {jobs:?}"
    );
    assert!(jobs.iter().all(|(_, n)| *n == 1), "{jobs:?}");
    assert_eq!(transcode_jobs(&data), jobs);
}

#[test]
fn two_runs_on_one_file_make_one_asset_and_one_transcode() {
    let dir = tempfile::tempdir().unwrap();
    // A large upload, so the two runs' copies overlap.
    let big = dir.path().join("big.mov");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
        ])
        .args([
            "-c:v",
            "prores_ks",
            "-profile:v",
            "2",
            "-c:a",
            "pcm_s16le",
            "-shortest",
        ])
        .arg(&big)
        .status()
        .unwrap();
    assert!(made.success());
    let other = clip(dir.path(), "other.mov", 3.0);
    let data = dir.path().join("data");
    // The database exists before both start, as when a user starts two runs on a used directory.
    assert!(Command::new(CUEPOINT)
        .args(["status", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap()
        .status
        .success());
    let runs: Vec<Child> = (0..2)
        .map(|_| {
            quick(
                Command::new(CUEPOINT)
                    .arg("run")
                    .arg(&big)
                    .arg(&other)
                    .arg("--data-dir")
                    .arg(&data),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for run in runs {
        let out = wait_output(run, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let jobs = transcode_jobs(&data);
    assert_eq!(jobs.len(), 2, "two files, assets {jobs:?}");
    assert!(
        jobs.iter().all(|(_, n)| *n == 1),
        "transcode jobs per asset: {jobs:?}"
    );
}

#[test]
fn an_object_created_without_etag_names_the_same_asset_and_a_folder_key_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "clip.mov", 3.0);
    let data = dir.path().join("data");
    let first = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for (name, detail) in [
        (
            "no-etag.json",
            serde_json::json!({"bucket": {"name": "cuepoint-ingest"}, "object": {"key": "uploads/clip.mov"}}),
        ),
        (
            "folder.json",
            serde_json::json!({"bucket": {"name": "cuepoint-ingest"}, "object": {"key": "uploads/new-folder/", "size": 0}}),
        ),
    ] {
        let event = serde_json::json!({"source": "aws.s3", "detail-type": "Object Created", "detail": detail});
        let file = dir.path().join(name);
        std::fs::write(&file, event.to_string()).unwrap();
        let sent = Command::new(CUEPOINT)
            .args(["events", "send"])
            .arg(&file)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    // The rerun handles the queued events before it returns.
    let again = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(queued_messages(&data), 0);
    let jobs = transcode_jobs(&data);
    assert_eq!(jobs.len(), 1, "assets: {jobs:?}");
    assert_eq!(jobs[0].1, 1);
    let dlq = Command::new(CUEPOINT)
        .args(["dlq", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&dlq.stdout);
    assert!(
        listing
            .lines()
            .skip(1)
            .all(|l| l.trim_end().ends_with(" 0")),
        "{listing}"
    );
}

/// Set the first track's display matrix (`tkhd`) of an MP4 to a −90° turn, as phones write it.
fn rotate_minus_90(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.windows(4).position(|w| w == b"tkhd").expect("tkhd box");
    let version = b[i + 4];
    // version/flags, times, track id, reserved, duration, reserved, layer..volume, reserved
    let off = i
        + 4
        + 4
        + if version == 0 { 8 } else { 16 }
        + 4
        + 4
        + if version == 0 { 4 } else { 8 }
        + 8
        + 8;
    for (k, v) in [0i32, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x4000_0000]
        .iter()
        .enumerate()
    {
        b[off + 4 * k..off + 4 * k + 4].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(path, b).unwrap();
}

fn ffprobe_video(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["streams"][0].clone()
}

fn rotation(stream: &serde_json::Value) -> i64 {
    stream["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|d| d["rotation"].as_i64()))
        .unwrap_or(0)
}

#[test]
fn a_phone_video_turned_minus_90_comes_out_upright() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("phone.mp4");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=3",
        ])
        .args([
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&src)
        .status()
        .unwrap();
    assert!(made.success());
    rotate_minus_90(&src);
    let probed = ffprobe_video(&src);
    assert_eq!(rotation(&probed), -90, "{probed}");
    let data = dir.path().join("data");
    let out = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut outputs = Vec::new();
    let mut stack = vec![data.join("blobs").join("cuepoint-output")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ts" || x == "mp4")
                && !p.components().any(|c| c.as_os_str() == "audio")
            {
                // (audio/: the loudness carrier, a fixed 320x240 by the job settings, not a rendition)
                outputs.push(p);
            }
        }
    }
    assert!(
        outputs.iter().any(|p| p.extension().unwrap() == "ts"),
        "{outputs:?}"
    );
    for p in outputs {
        let v = ffprobe_video(&p);
        if v.is_null() {
            continue; // audio-only rendition
        }
        let (w, h) = (v["width"].as_i64().unwrap(), v["height"].as_i64().unwrap());
        let shown = if rotation(&v).rem_euclid(180) == 90 {
            (h, w)
        } else {
            (w, h)
        };
        assert!(
            shown.0 < shown.1,
            "{} is shown {}x{}: sideways",
            p.display(),
            shown.0,
            shown.1
        );
        // Upright pixels, not a portrait frame with the landscape picture squeezed into it.
        assert_eq!(
            rotation(&v),
            0,
            "{}: the output still asks players to turn it",
            p.display()
        );
    }
}

#[test]
fn a_full_disk_during_the_transcode_is_retried_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "clip.mov", 3.0);
    let data = dir.path().join("data");
    // FFmpeg whose first two runs meet a full disk, as a transcode does when the data
    // directory's file system fills up; then the operator frees space.
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v ffmpeg"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let counter = dir.path().join("runs");
    let wrapper = dir.path().join("ffmpeg");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nn=$(cat '{c}' 2>/dev/null || echo 0)\necho $((n+1)) > '{c}'\nif [ \"$n\" -lt 2 ]; then echo 'av_interleaved_write_frame(): No space left on device' >&2; exit 1; fi\nexec {real} \"$@\"\n",
            c = counter.display(),
            real = real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = quick(
        Command::new(CUEPOINT)
            .arg("run")
            .arg(&src)
            .arg("--data-dir")
            .arg(&data)
            .args(["--log", "warn"]),
    )
    .env("CUEPOINT_FFMPEG", &wrapper)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(states(&data), vec!["COMPLETE".to_string()], "{stderr}");
    assert!(
        stderr.contains("infrastructure fault; retrying the transcode"),
        "{stderr}"
    );
    let runs: u32 = std::fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(runs >= 3, "FFmpeg ran {runs} times");
}

/// The path of a tool on PATH.
fn which(tool: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Analysis jobs of `service` in the ledger of `data`, per asset, optionally of one kind only.
fn ledger_jobs(
    data: &Path,
    service: cuepoint_runtime::ports::LedgerService,
    kind: Option<&str>,
) -> Vec<(String, usize)> {
    let backend = open_data_dir(data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let assets = rt.block_on(backend.store().list()).unwrap();
    let ledger = backend.ledger();
    assets
        .iter()
        .map(|a| {
            let jobs = rt
                .block_on(ledger.find_by_asset(service, a.id.as_str()))
                .unwrap();
            let packaging = |j: &cuepoint_runtime::ports::LedgerJob| {
                j.request["user_metadata"]["workflow"]
                    .as_str()
                    .is_some_and(|w| w.ends_with("-packaging"))
            };
            let n = jobs
                .iter()
                .filter(|j| match kind {
                    None => true,
                    Some(FIRST_JOB) => !packaging(j),
                    Some(PACKAGING_JOB) => packaging(j),
                    Some(k) => j.request["kind"] == k,
                })
                .count();
            (a.id.to_string(), n)
        })
        .collect()
}

fn status_json(data: &Path, id: &str) -> serde_json::Value {
    let out = Command::new(CUEPOINT)
        .args(["status", id, "--json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

#[test]
fn retry_re_drives_a_transient_failure_exactly_once_and_refuses_a_permanent_one() {
    use cuepoint_runtime::ports::LedgerService;
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "clip.mov", 4.0);
    let data = dir.path().join("data");
    // ffprobe is there for the upload's probe and the transcode's, then goes missing (the
    // wrapped FFmpeg takes it away when it starts writing the proxy), as when a
    // package upgrade removes it mid-run: the segment analysis meets a missing tool.
    let tools = dir.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let ffprobe = tools.join("ffprobe");
    executable(
        &ffprobe,
        &format!("#!/bin/sh\nexec {} \"$@\"\n", which("ffprobe")),
    );
    let once = tools.join("take-ffprobe-away");
    std::fs::write(&once, "").unwrap();
    let ffmpeg = tools.join("ffmpeg");
    executable(
        &ffmpeg,
        &format!(
            "#!/bin/sh\ncase \"$*\" in *proxy.mp4*) if [ -f '{once}' ]; then rm -f '{once}'; chmod -x '{probe}'; fi;; esac\nexec {real} \"$@\"\n",
            once = once.display(),
            probe = ffprobe.display(),
            real = which("ffmpeg")
        ),
    );
    let with_tools = |cmd: &mut Command| {
        quick(cmd)
            .env("CUEPOINT_FFPROBE", &ffprobe)
            .env("CUEPOINT_FFMPEG", &ffmpeg)
            .arg("--data-dir")
            .arg(&data);
    };
    let mut run = Command::new(CUEPOINT);
    run.arg("run").arg(&src);
    with_tools(&mut run);
    let out = run.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "the asset fails: {stderr}");
    let statuses = Command::new(CUEPOINT)
        .args(["status", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&statuses.stdout).unwrap();
    let id = all[0]["asset_id"]
        .as_str()
        .or(all[0]["id"].as_str())
        .expect("an asset id")
        .to_string();
    let record = status_json(&data, &id);
    assert_eq!(record["state"], "FAILED");
    // Every analysis of the shared pass meets the missing tool; the first completion recorded
    // fails the asset (usually the segments').
    let stage = record["failure"]["stage"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ["segments", "labels", "faces", "moderation"]
            .iter()
            .any(|k| stage == format!("analysis:{k}")),
        "{record}"
    );
    assert_eq!(record["failure"]["kind"], "transient", "{record}");
    let reason = record["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("ffprobe"), "the cause is named: {reason}");

    // The operator puts ffprobe back; two retries at once re-drive it once and both see it
    // finish.
    std::fs::set_permissions(&ffprobe, {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o755)
    })
    .unwrap();
    let retries: Vec<Child> = (0..2)
        .map(|_| {
            let mut cmd = Command::new(CUEPOINT);
            cmd.args(["retry", &id]);
            with_tools(&mut cmd);
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = retries
        .into_iter()
        .map(|c| wait_output(c, Duration::from_secs(300)))
        .collect();
    let mut redriven = 0;
    for out in &outs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stderr}");
        assert!(stdout.contains("COMPLETE"), "{stdout}\n{stderr}");
        if stderr.contains(&format!("re-driven (attempt 1) from FAILED at {stage}")) {
            redriven += 1;
        } else {
            assert!(stderr.contains("not FAILED"), "{stderr}");
        }
    }
    assert_eq!(
        redriven, 1,
        "exactly one of two concurrent retries re-drives"
    );
    assert_eq!(states(&data), vec!["COMPLETE".to_string()]);
    let segments = || ledger_jobs(&data, LedgerService::Rekognition, Some("segments"));
    assert_eq!(
        segments(),
        vec![(id.clone(), 2)],
        "the failed segment job and one new one"
    );
    assert_eq!(
        ledger_jobs(&data, LedgerService::MediaConvert, Some(FIRST_JOB)),
        vec![(id.clone(), 1)],
        "the transcode is not redone for an analysis failure"
    );
    assert_eq!(
        ledger_jobs(&data, LedgerService::MediaConvert, Some(PACKAGING_JOB)),
        vec![(id.clone(), 1)],
        "packaged once, after the breaks"
    );

    // Once more: the asset is COMPLETE; nothing starts.
    let mut again = Command::new(CUEPOINT);
    again.args(["retry", &id]);
    with_tools(&mut again);
    let out = again.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is COMPLETE, not FAILED (re-driven 1 time(s) before): nothing to retry"),
        "{stderr}"
    );
    assert_eq!(segments(), vec![(id.clone(), 2)]);

    // Corrupt media is a verdict, not a fault: refused, with the cause.
    let bad = dir.path().join("bad.mov");
    std::fs::write(&bad, b"this is not a video file at all").unwrap();
    let mut run = Command::new(CUEPOINT);
    run.arg("run").arg(&bad);
    with_tools(&mut run);
    let out = run.output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let all: serde_json::Value = serde_json::from_slice(
        &Command::new(CUEPOINT)
            .args(["status", "--json", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bad_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["state"] == "FAILED")
        .and_then(|a| a["asset_id"].as_str().or(a["id"].as_str()))
        .unwrap()
        .to_string();
    let mut refused = Command::new(CUEPOINT);
    refused.args(["retry", &bad_id]);
    with_tools(&mut refused);
    let out = refused.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed for good at probe") && stderr.contains("permanent"),
        "{stderr}"
    );
    assert_eq!(status_json(&data, &bad_id)["state"], "FAILED");

    let mut unknown = Command::new(CUEPOINT);
    unknown.args(["retry", "a00000000000000000000"]);
    with_tools(&mut unknown);
    let out = unknown.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("no asset a00000000000000000000"),
        "{stderr}"
    );
}
