//! `kill -9` of `cuepoint run` in the middle, then running it again, finishes the asset with
//! nothing lost and no step done twice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cuepoint_core::asset::AssetState;
use cuepoint_core::routing::RoutingDefinition;
use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions};
use cuepoint_engine::sample::{generate_sample, SampleSpec};

fn cuepoint(data: &Path, clip: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cuepoint"))
        .args(["run", "--json", "--data-dir"])
        .arg(data)
        .arg(clip)
        .env("CUEPOINT_CONSUMER__WAIT_SECONDS", "1")
        .env("CUEPOINT_CONSUMER__RETRY_BASE_SECONDS", "1")
        .env("CUEPOINT_CONSUMER__RETRY_MAX_SECONDS", "2")
        .env("CUEPOINT_CONSUMER__VISIBILITY_SECONDS", "4")
        .env("CUEPOINT_CONSUMER__HEARTBEAT_SECONDS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cuepoint")
}

/// Files under the asset folder, to see how far a run got.
fn outputs(data: &Path) -> Vec<PathBuf> {
    let root = data.join("blobs/cuepoint-output/assets");
    let mut out = vec![];
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

fn kill_when(data: &Path, clip: &Path, reached: impl Fn(&[PathBuf]) -> bool, what: &str) {
    let mut child = cuepoint(data, clip);
    let t0 = Instant::now();
    loop {
        if reached(&outputs(data)) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cuepoint run ended ({status}) before {what}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "never reached {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
    let _ = child.wait();
    eprintln!(
        "killed -9 after {what} ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn kill_dash_nine_then_rerun_finishes_without_doing_anything_twice() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mov");
    let spec = SampleSpec {
        duration: 16.0,
        width: 320,
        height: 180,
        track_count: 3,
        active_tracks: vec![1],
        cuts: vec![3.0, 11.0],
        black_gaps: vec![(6.0, 8.0)],
        end_credits_from: None,
        ..SampleSpec::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(generate_sample(&clip, &spec)).unwrap();
    let data = dir.path().join("data");

    // 1: during the transcode (the probe is written, no HLS yet).
    kill_when(
        &data,
        &clip,
        |f| f.iter().any(|p| p.ends_with("probe.json")),
        "ingest registered the asset",
    );
    // 2: after the transcode's outputs landed, while analyses run.
    kill_when(
        &data,
        &clip,
        |f| f.iter().any(|p| p.ends_with("audio.json")),
        "media prepared",
    );
    // 3: run to the end.
    let out = cuepoint(&data, &clip).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "final run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summaries: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(summaries[0]["state"], "COMPLETE", "{summaries}");

    // Nothing done twice: one transcode job and one job per analysis in the ledger, and the
    // record's version counts exactly the transitions of one pass
    // (register 1, transcoding 2, media prepared 3, the open-jobs cap taken 4, analysing 5, one
    // completion per analysis: five video analyses and the transcription of this clip with
    // sound, 6..=11, scored 12, packaging 13, complete 14).
    let routing = RoutingDefinition::load(
        &[
            ("IngestBucket", "cuepoint-ingest"),
            ("WorkflowName", "cuepoint"),
        ]
        .into_iter()
        .collect(),
    )
    .unwrap();
    let backend = EmbeddedBackend::open(&data, EmbeddedOptions::new(routing)).unwrap();
    rt.block_on(async {
        let assets = backend.store().list().await.unwrap();
        assert_eq!(assets.len(), 1, "exactly one asset");
        let a = &assets[0];
        assert_eq!(a.state, AssetState::Complete);
        assert_eq!(
            a.analyses.len(),
            6,
            "five video analyses and the transcription"
        );
        assert_eq!(a.version, 14, "one pass through the state machine");
        let ledger = backend.ledger();
        assert_eq!(
            ledger
                .find_by_asset(
                    cuepoint_runtime::ports::LedgerService::MediaConvert,
                    a.id.as_str()
                )
                .await
                .unwrap()
                .len(),
            2,
            "one transcode job and one packaging job"
        );
        assert_eq!(
            ledger
                .find_by_asset(
                    cuepoint_runtime::ports::LedgerService::Rekognition,
                    a.id.as_str()
                )
                .await
                .unwrap()
                .len(),
            5,
            "one job per analysis"
        );
        assert_eq!(
            backend
                .store()
                .counter("rekognition-open-jobs")
                .await
                .unwrap(),
            0,
            "every open job released"
        );
        for q in [
            "ingest",
            "media",
            "analysis",
            "results",
            "scoring",
            "packaging",
        ] {
            let dlq = backend.dead_letters().list(q, 10).await.unwrap();
            assert!(dlq.is_empty(), "dead letters in {q}: {dlq:?}");
        }
    });
    let _ = Arc::new(());
}
