//! Five worker processes (the real binaries) share one embedded data directory: an asset
//! ingested by a sixth process runs to COMPLETE, and SIGTERM stops every worker cleanly.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cuepoint_engine::sample::{generate_sample, SampleSpec};

fn worker(bin: &str, data: &Path) -> Child {
    Command::new(bin)
        .env("CUEPOINT_DATA_DIR", data)
        .env("CUEPOINT_CONSUMER__WAIT_SECONDS", "1")
        .env("CUEPOINT_CONSUMER__RETRY_BASE_SECONDS", "1")
        .env("CUEPOINT_CONSUMER__RETRY_MAX_SECONDS", "2")
        .env("CUEPOINT_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker")
}

fn status_json(data: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cuepoint"))
        .args(["status", "--json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

#[test]
fn worker_processes_share_one_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mov");
    let spec = SampleSpec {
        duration: 8.0,
        width: 160,
        height: 90,
        track_count: 2,
        active_tracks: vec![2],
        cuts: vec![3.0],
        black_gaps: vec![(5.0, 6.0)],
        end_credits_from: None,
        ..SampleSpec::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(generate_sample(&clip, &spec))
        .unwrap();
    let data = dir.path().join("data");

    let bins = [
        env!("CARGO_BIN_EXE_cuepoint-ingest"),
        env!("CARGO_BIN_EXE_cuepoint-media"),
        env!("CARGO_BIN_EXE_cuepoint-analysis"),
        env!("CARGO_BIN_EXE_cuepoint-results"),
        env!("CARGO_BIN_EXE_cuepoint-scoring"),
        env!("CARGO_BIN_EXE_cuepoint-packaging"),
    ];
    // The first `ingest` creates the database; the workers then open it.
    let out = Command::new(env!("CARGO_BIN_EXE_cuepoint"))
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(&clip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut children: Vec<Child> = bins.iter().map(|b| worker(b, &data)).collect();

    let t0 = Instant::now();
    let state = loop {
        let s = status_json(&data);
        let state = s[0]["state"].as_str().unwrap_or("").to_string();
        if state == "COMPLETE" || state == "FAILED" || t0.elapsed() > Duration::from_secs(180) {
            break (state, s);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    for c in &children {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
    }
    for (c, b) in children.iter_mut().zip(bins) {
        let status = c.wait().unwrap();
        assert!(status.success(), "{b} exited with {status} after SIGTERM");
    }
    assert_eq!(state.0, "COMPLETE", "{}", state.1);
    assert_eq!(state.1[0]["silent_tracks"], serde_json::json!([1]));
    // The packaging worker's ladder, cue markers at the break.
    let hls = state.1[0]["hls"].as_str().expect("hls location");
    let master = std::fs::read_to_string(hls).unwrap();
    assert!(master.contains("#EXT-X-STREAM-INF:"), "{master}");
}
