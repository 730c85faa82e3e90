//! Several consumers — in separate processes, and on separate connections in threads — share
//! one queue: no message is handed to two consumers at once, and every message is processed
//! exactly once when handlers delete in time.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions};

const MESSAGES: usize = 2_000;
const QUEUE: &str = "media";
const VIS: Duration = Duration::from_secs(120);
const CHILD_ENV: &str = "CUEPOINT_HAMMER_DIR";

fn open(dir: &Path) -> Arc<EmbeddedBackend> {
    EmbeddedBackend::open(dir, EmbeddedOptions::new(common::routing())).expect("open backend")
}

async fn seed(b: &EmbeddedBackend) {
    let q = b.queue(QUEUE);
    for i in 0..MESSAGES {
        q.send(&format!("msg-{i}"), Duration::ZERO).await.unwrap();
    }
}

/// Receive, "handle", delete until the queue is empty. `in_flight` (when shared) catches two
/// consumers holding the same message at once. Returns the bodies handled.
async fn consume(
    b: Arc<EmbeddedBackend>,
    in_flight: Option<Arc<Mutex<HashSet<String>>>>,
) -> Vec<String> {
    let q = b.queue(QUEUE);
    let counts = b.sqlite_queue(QUEUE);
    let mut handled = Vec::new();
    loop {
        let got = q
            .receive(10, Duration::from_millis(100), VIS)
            .await
            .unwrap();
        if got.is_empty() {
            let c = counts.counts().await.unwrap();
            if c.visible + c.invisible == 0 {
                return handled;
            }
            continue;
        }
        if let Some(f) = &in_flight {
            let mut f = f.lock().unwrap();
            for m in &got {
                assert!(
                    f.insert(m.message_id.clone()),
                    "message {} handed to two consumers at once",
                    m.body
                );
            }
        }
        // a little work between receive and delete, so consumers overlap
        tokio::time::sleep(Duration::from_millis(1)).await;
        let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
        if let Some(f) = &in_flight {
            let mut f = f.lock().unwrap();
            for m in &got {
                f.remove(&m.message_id);
            }
        }
        q.delete(&receipts).await.unwrap();
        handled.extend(got.into_iter().map(|m| m.body));
    }
}

fn assert_each_once(all: Vec<String>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for b in all {
        *seen.entry(b).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert_eq!(seen.len(), MESSAGES, "every message handled");
}

/// Four consumers, each with its own backend (own connections) on its own thread and runtime.
#[test]
fn four_backends_on_threads_share_one_queue() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(seed(&open(dir.path())));
    let in_flight = Arc::new(Mutex::new(HashSet::new()));
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (path, in_flight) = (dir.path().to_path_buf(), Arc::clone(&in_flight));
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(consume(open(&path), Some(in_flight)))
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut per = Vec::new();
    for t in threads {
        let got = t.join().expect("consumer thread");
        per.push(got.len());
        all.extend(got);
    }
    eprintln!(
        "4 threads handled {MESSAGES} messages in {:?} (per consumer {per:?})",
        started.elapsed()
    );
    assert_each_once(all);
}

/// Two child processes (this test binary re-run as `hammer_child`), two consumers each.
#[test]
fn two_processes_share_one_queue() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(seed(&open(dir.path())));
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "hammer_child",
                    "--include-ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, dir.path())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    let mut pids = Vec::new();
    for mut c in children {
        pids.push(c.id());
        assert!(c.wait().unwrap().success(), "child failed");
    }
    let mut all = Vec::new();
    for pid in pids {
        let text = std::fs::read_to_string(dir.path().join(format!("handled-{pid}.txt"))).unwrap();
        let mine: Vec<String> = text.lines().map(str::to_string).collect();
        eprintln!("process {pid} handled {}", mine.len());
        all.extend(mine);
    }
    eprintln!(
        "2 processes handled {MESSAGES} messages in {:?}",
        started.elapsed()
    );
    assert_each_once(all);
}

/// The child process of `two_processes_share_one_queue`: not a test of its own, so it is ignored
/// unless spawned (the parent passes `--include-ignored`).
#[test]
#[ignore = "child process of two_processes_share_one_queue; runs only when spawned"]
fn hammer_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handled = rt.block_on(async {
        let b = open(&dir);
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let (x, y) = tokio::join!(
            consume(Arc::clone(&b), Some(Arc::clone(&in_flight))),
            consume(b, Some(in_flight))
        );
        [x, y].concat()
    });
    std::fs::write(
        dir.join(format!("handled-{}.txt", std::process::id())),
        handled.join("\n"),
    )
    .unwrap();
}
