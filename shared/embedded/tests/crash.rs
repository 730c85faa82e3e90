//! Durability across a killed process: the database stays consistent (transactions are all or
//! nothing) and messages a dead consumer held come back after their visibility timeout.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions};

const ROLE_ENV: &str = "CUEPOINT_CRASH_ROLE";
const DIR_ENV: &str = "CUEPOINT_CRASH_DIR";

fn open(dir: &Path) -> Arc<EmbeddedBackend> {
    EmbeddedBackend::open(dir, EmbeddedOptions::new(common::routing())).expect("open backend")
}

fn spawn_child(role: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, role)
        .env(DIR_ENV, dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child")
}

/// The child process the crash tests spawn and kill: not a test of its own, so it is ignored
/// unless spawned (the parent passes `--include-ignored`).
#[test]
#[ignore = "child process of the crash tests; runs only when they spawn it"]
fn crash_child() {
    let (Some(role), Some(dir)) = (std::env::var_os(ROLE_ENV), std::env::var_os(DIR_ENV)) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = open(&dir);
        match role.to_str() {
            // send deduplicated messages until killed
            Some("sender") => {
                let q = b.sqlite_queue("analysis");
                for i in 0.. {
                    q.send_dedup(&format!("body-{i}"), &format!("key-{i}"))
                        .await
                        .unwrap();
                }
            }
            // take five messages, then die without deleting them
            Some("taker") => {
                let got = b
                    .queue("media")
                    .receive(5, Duration::from_secs(5), Duration::from_secs(1))
                    .await
                    .unwrap();
                assert_eq!(got.len(), 5);
                // no destructors, no clean close: as good as a crash for the database
                std::process::exit(3);
            }
            // take five messages for two minutes, say so, then stay alive until killed
            Some("holder") => {
                let got = b
                    .queue("media")
                    .receive(5, Duration::from_secs(5), Duration::from_secs(120))
                    .await
                    .unwrap();
                assert_eq!(got.len(), 5);
                std::fs::write(dir.join("held"), b"5").unwrap();
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            other => panic!("unknown role {other:?}"),
        }
    });
}

#[test]
fn killed_writer_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut child = spawn_child("sender", dir.path());
    let q = b.sqlite_queue("analysis");
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.block_on(q.counts()).unwrap().visible < 300 {
        assert!(Instant::now() < deadline, "child did not send");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("cuepoint.db")).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // every accepted dedup key has its message and every message its key: no half transaction
    let orphans: i64 = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM message_dedup d WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = d.message_id))
                  + (SELECT COUNT(*) FROM messages m WHERE m.queue = 'analysis'
                        AND NOT EXISTS (SELECT 1 FROM message_dedup d WHERE d.message_id = m.message_id))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
    let sent = rt.block_on(q.counts()).unwrap().visible;
    assert!(sent >= 300);
    // the keys form an unbroken run key-0..key-(n-1): no commit was lost before a later one
    let max_i: i64 = conn
        .query_row(
            "SELECT MAX(CAST(substr(dedup_key, 5) AS INTEGER)) FROM message_dedup",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(max_i + 1, sent as i64);
    // and the database keeps working
    assert!(rt
        .block_on(q.send_dedup("after", "key-0"))
        .unwrap()
        .is_none());
    assert!(rt
        .block_on(q.send_dedup("after", "after-crash"))
        .unwrap()
        .is_some());
}

#[test]
fn messages_of_a_dead_consumer_come_back_after_visibility() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let q = b.queue("media");
    rt.block_on(async {
        for i in 0..5 {
            q.send(&format!("m{i}"), Duration::ZERO).await.unwrap();
        }
    });
    let status = spawn_child("taker", dir.path()).wait().unwrap();
    assert!(!status.success(), "the child died");
    assert!(
        rt.block_on(q.receive(10, Duration::ZERO, Duration::from_secs(30)))
            .unwrap()
            .is_empty(),
        "held by the dead consumer"
    );
    let got = rt
        .block_on(q.receive(10, Duration::from_secs(5), Duration::from_secs(30)))
        .unwrap();
    let mut bodies: Vec<_> = got.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(got.iter().all(|m| m.receive_count == 2));
}

#[test]
fn a_new_process_takes_back_a_killed_holders_messages_at_once_never_a_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let q = b.queue("media");
    rt.block_on(async {
        for i in 0..5 {
            q.send(&format!("m{i}"), Duration::ZERO).await.unwrap();
        }
    });
    let mut child = spawn_child("holder", dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("held").exists() {
        assert!(
            Instant::now() < deadline,
            "the holder did not take the messages"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A live holder in another process keeps its messages, whoever opens the directory.
    let again = open(dir.path());
    assert_eq!(again.orphans_released(), 0);
    assert!(rt
        .block_on(
            again
                .queue("media")
                .receive(10, Duration::ZERO, Duration::from_secs(30))
        )
        .unwrap()
        .is_empty());

    // kill -9: the next process to open the directory gets them back at once, not after the
    // holder's 120 s visibility timeout.
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    let next = open(dir.path());
    assert_eq!(next.orphans_released(), 5);
    let got = rt
        .block_on(
            next.queue("media")
                .receive(10, Duration::ZERO, Duration::from_secs(30)),
        )
        .unwrap();
    let waited = started.elapsed();
    let mut bodies: Vec<_> = got.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(got.iter().all(|m| m.receive_count == 2));
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
    // Released once: opening again finds nothing more to release (this process holds them).
    assert_eq!(open(dir.path()).orphans_released(), 0);
}
