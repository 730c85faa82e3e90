//! What every handler gets: the ports, the settings, and a few derived values.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri};
use cuepoint_runtime::config::Settings;
use cuepoint_runtime::metrics::Metrics;
use cuepoint_runtime::ports::Ports;

use crate::latest::LatestRecords;
use crate::scoring_config::{Scoring, ScoringConfigError};

/// Name of the counter of open Rekognition jobs (cap: `analysis.max_open_jobs`).
pub const OPEN_JOBS_COUNTER: &str = "rekognition-open-jobs";

#[derive(Clone)]
pub struct WorkerContext {
    pub ports: Ports,
    pub settings: Arc<Settings>,
    /// MediaConvert job-settings template (infra/mediaconvert-job-template.json unless configured).
    pub job_template: Arc<serde_json::Value>,
    /// The packaging job's template (infra/mediaconvert-packaging-template.json).
    pub packaging_template: Arc<serde_json::Value>,
    /// The scoring configuration, checked and its inventory read at start-up.
    pub scoring: Arc<Scoring>,
    pub metrics: Metrics,
    /// Conditional writes lost to another writer (shared by the clones of one context).
    pub races: Arc<RaceStats>,
    /// The newest record of each asset in flight and its turn (shared by the clones).
    pub latest: Arc<LatestRecords>,
}

/// How lost conditional writes on assets were resolved.
#[derive(Debug, Default)]
pub struct RaceStats {
    /// Re-read and re-applied at once, in the same delivery.
    pub reapplied: AtomicU64,
    /// Lost `WRITE_ATTEMPTS` times in a row: left to the queue's retry backoff.
    pub exhausted: AtomicU64,
    /// Events that arrived before the write making them applicable and waited for it in the
    /// same delivery (`flow::load_when_ready`).
    pub early_waited: AtomicU64,
}

impl WorkerContext {
    /// Fails when the scoring configuration is invalid (or its ad inventory unreadable).
    pub fn new(
        ports: Ports,
        settings: Settings,
        metrics: Metrics,
    ) -> Result<Self, ScoringConfigError> {
        Ok(Self {
            ports,
            scoring: Arc::new(Scoring::from_settings(
                &settings.scoring,
                &settings.output_bucket,
            )?),
            settings: Arc::new(settings),
            job_template: Arc::new(cuepoint_core::mediaconvert::default_template()),
            packaging_template: Arc::new(cuepoint_core::mediaconvert::default_packaging_template()),
            metrics,
            races: Arc::default(),
            latest: Arc::default(),
        })
    }

    pub fn now_ms(&self) -> u64 {
        self.ports.clock.now_ms()
    }

    /// `s3://<output bucket>/assets/<id>/`: the asset's results prefix.
    pub fn results_prefix(&self, id: &AssetId) -> S3Uri {
        let bucket = BucketName::parse(self.settings.output_bucket.clone())
            .expect("output bucket validated at startup");
        S3Uri::new(
            bucket,
            ObjectKey::parse(format!("assets/{id}/")).expect("asset ids are key-safe"),
        )
    }

    /// A file of the results layout under the asset's prefix.
    pub fn result_uri(&self, id: &AssetId, rel: &str) -> S3Uri {
        self.results_prefix(id)
            .join(rel)
            .expect("results layout names are valid keys")
    }
}
