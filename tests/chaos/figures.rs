//! The figures a run ends with, and the verdict.

use std::time::Duration;

use crate::engine::EngineStats;

/// One asset that did not end as it should (printed before the figures).
#[derive(Debug, Clone)]
pub struct Problem {
    pub asset: String,
    /// Index of its source in the upload order (`usize::MAX`: not tied to one source).
    pub source_index: usize,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct Figures {
    pub assets: u64,
    pub completed: u64,
    pub failed_as_expected: u64,
    pub failed_unexpectedly: u64,
    /// Not terminal when the run ended.
    pub lost: u64,
    pub duplicate_transcoder_jobs: u64,
    pub duplicate_analyzer_jobs: u64,
    /// Terminal events delivered more than once per asset to the audit queue.
    pub duplicate_terminal_events: u64,
    /// Terminal assets whose terminal event never reached the audit queue.
    pub missing_terminal_events: u64,
    /// Terminal events that contradict the record ("Asset Completed" for a failed asset...).
    pub wrong_terminal_events: u64,
    /// The open-Rekognition-jobs counter once everything is terminal (must be back at 0).
    pub open_analyzer_jobs_left: i64,
    pub unreadable_audit_messages: u64,
    pub dead_lettered: u64,
    pub messages_left: u64,
    pub timed_out: bool,

    pub messages_received: u64,
    pub messages_handled: u64,
    pub handler_transient: u64,
    pub handler_permanent: u64,
    pub handler_delayed: u64,
    /// Lost conditional writes on assets re-read and re-applied in the same delivery.
    pub races_reapplied: u64,
    /// Lost conditional writes that ran out of attempts: each one a backoff sleep.
    pub races_left_to_backoff: u64,
    /// Completions that overtook the write recording their job and waited for it in the same
    /// delivery.
    pub early_waited: u64,
    pub concurrent_runs: u64,
    pub terminal_publishes: u64,
    pub terminal_deliveries: u64,
    pub transient_by_port: Vec<(&'static str, u64)>,
    pub injected: Vec<(&'static str, u64)>,
    pub engine: EngineStats,
    pub wall: Duration,
    /// CPU seconds of the whole run (workers, embedded backend, fast engine and harness).
    pub cpu_seconds: Option<f64>,
    pub problems: Vec<Problem>,
}

impl Figures {
    /// The reasons the run fails, empty when it passes.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut must_be_zero = |name: &str, v: i64| {
            if v != 0 {
                out.push(format!("{name} = {v}, must be 0"));
            }
        };
        must_be_zero("failed unexpectedly", self.failed_unexpectedly as i64);
        must_be_zero("lost", self.lost as i64);
        must_be_zero(
            "duplicate transcoder jobs",
            self.duplicate_transcoder_jobs as i64,
        );
        must_be_zero(
            "duplicate analyzer jobs",
            self.duplicate_analyzer_jobs as i64,
        );
        must_be_zero(
            "duplicate terminal events",
            self.duplicate_terminal_events as i64,
        );
        must_be_zero(
            "missing terminal events",
            self.missing_terminal_events as i64,
        );
        must_be_zero("wrong terminal events", self.wrong_terminal_events as i64);
        must_be_zero("open analyzer jobs left", self.open_analyzer_jobs_left);
        if self.completed + self.failed_as_expected + self.failed_unexpectedly + self.lost
            != self.assets
        {
            out.push("the outcomes do not add up to the asset count".into());
        }
        out
    }

    /// Problem assets (at most `limit`), then the figures, one per line, last.
    pub fn print(&self, limit: usize) {
        if !self.problems.is_empty() {
            println!(
                "problems ({} in all, first {}):",
                self.problems.len(),
                self.problems.len().min(limit)
            );
            for p in self.problems.iter().take(limit) {
                let src = if p.source_index == usize::MAX {
                    String::new()
                } else {
                    format!(" (source #{})", p.source_index)
                };
                println!("  {}{src}: {}", p.asset, p.what);
            }
        }
        let injected_total: u64 = self.transient_by_port.iter().map(|(_, n)| n).sum::<u64>()
            + self.injected.iter().map(|(_, n)| n).sum::<u64>();
        println!("assets: {}", self.assets);
        println!("completed: {}", self.completed);
        println!("failed as expected: {}", self.failed_as_expected);
        println!("failed unexpectedly: {}", self.failed_unexpectedly);
        println!("lost: {}", self.lost);
        println!(
            "duplicate transcoder jobs: {}",
            self.duplicate_transcoder_jobs
        );
        println!("duplicate analyzer jobs: {}", self.duplicate_analyzer_jobs);
        println!(
            "duplicate terminal events: {}",
            self.duplicate_terminal_events
        );
        println!("missing terminal events: {}", self.missing_terminal_events);
        println!("wrong terminal events: {}", self.wrong_terminal_events);
        println!("open analyzer jobs left: {}", self.open_analyzer_jobs_left);
        println!(
            "transcoder jobs for unusable sources: {}",
            self.engine.transcodes_of_unusable_sources
        );
        println!("dead-lettered messages: {}", self.dead_lettered);
        println!("messages left in queues: {}", self.messages_left);
        println!("transcoder jobs: {}", self.engine.transcoder_jobs);
        println!("analyzer jobs: {}", self.engine.analyzer_jobs);
        println!(
            "jobs returned again by client token: {}",
            self.engine.token_reuses
        );
        println!(
            "transcode jobs found by find_job: {}",
            self.engine.find_job_hits
        );
        println!("injected faults: {injected_total}");
        for (port, n) in &self.transient_by_port {
            println!("injected transient errors ({port}): {n}");
        }
        for (kind, n) in &self.injected {
            println!("injected {kind}: {n}");
        }
        println!(
            "injected completion delays (engine): {}",
            self.engine.delays
        );
        println!(
            "completion announcements repeated (engine): {}",
            self.engine.announce_retries
        );
        println!("concurrent runs of one message: {}", self.concurrent_runs);
        println!(
            "terminal events published (copies included): {}",
            self.terminal_publishes
        );
        println!(
            "terminal events delivered to the audit queue: {}",
            self.terminal_deliveries
        );
        println!("messages received: {}", self.messages_received);
        println!("messages handled: {}", self.messages_handled);
        println!(
            "handler transient failures (retried): {}",
            self.handler_transient
        );
        println!("handler permanent failures: {}", self.handler_permanent);
        println!("handler delays (open-job cap): {}", self.handler_delayed);
        println!(
            "lost conditional writes re-applied at once: {}",
            self.races_reapplied
        );
        println!(
            "lost conditional writes left to the retry backoff: {}",
            self.races_left_to_backoff
        );
        println!(
            "completions that waited for their job's record: {}",
            self.early_waited
        );
        if self.timed_out {
            println!("timed out: yes");
        }
        println!("wall time: {:.1} s", self.wall.as_secs_f64());
        println!(
            "handled messages per second: {:.0}",
            self.messages_handled as f64 / self.wall.as_secs_f64().max(1e-9)
        );
        if let Some(cpu) = self.cpu_seconds {
            println!(
                "CPU per asset (orchestration, fast engine included): {:.1} ms",
                cpu * 1000.0 / self.assets.max(1) as f64
            );
        }
    }
}
