//! Shared test helpers: a controllable clock and a backend in a temp directory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cuepoint_core::routing::RoutingDefinition;
use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions};
use cuepoint_runtime::ports::Clock;

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start_ms: u64) -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(start_ms)))
    }
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// 2026-11-22T05:37:28Z
pub const T0: u64 = 1_795_325_848_000;

/// infra/routing.json with the test's ingest bucket and workflow name.
pub fn routing() -> RoutingDefinition {
    let vars = BTreeMap::from([
        ("IngestBucket", "cuepoint-ingest"),
        ("WorkflowName", "cuepoint"),
    ]);
    RoutingDefinition::load(&vars).expect("routing.json loads")
}

pub fn options(clock: Arc<ManualClock>) -> EmbeddedOptions {
    EmbeddedOptions::new(routing()).with_clock(clock)
}

pub fn backend(dir: &tempfile::TempDir) -> (Arc<EmbeddedBackend>, Arc<ManualClock>) {
    let clock = ManualClock::new(T0);
    let b = EmbeddedBackend::open(dir.path(), options(clock.clone())).expect("open backend");
    (b, clock)
}
