//! Shared helpers for the integration tests: settings for a throw-away data directory, and the
//! ground-truth clip the end-to-end tests run.

use std::path::Path;

use cuepoint_core::scoring::DefaultPolicyConfig;
use cuepoint_engine::sample::SampleSpec;
use cuepoint_runtime::config::{ConsumerSettings, ScoringSettings, Settings};

/// Settings for an embedded pipeline in `dir`, tuned for tests (short polls and heartbeats) and
/// a default policy that may place breaks 10 s apart.
pub fn test_settings(dir: &Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        consumer: ConsumerSettings {
            wait_seconds: 1,
            heartbeat_seconds: 5,
            visibility_seconds: 60,
            retry_base_seconds: 1,
            retry_max_seconds: 5,
            shutdown_grace_seconds: 30,
            ..Default::default()
        },
        scoring: ScoringSettings {
            default_policy: DefaultPolicyConfig {
                min_spacing_seconds: 10.0,
                lead_in_seconds: 3.0,
                lead_out_seconds: 3.0,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A 30 s 320x180 clip: 4 mono tracks (1 and 2 carry tone), hard cuts, two black silent gaps.
pub fn short_clip() -> SampleSpec {
    SampleSpec {
        duration: 30.0,
        width: 320,
        height: 180,
        fps: 25,
        track_count: 4,
        active_tracks: vec![1, 2],
        cuts: vec![4.0, 7.6, 17.2, 22.0],
        black_gaps: vec![(10.0, 12.0), (24.0, 26.0)],
        end_credits_from: None,
        ..SampleSpec::default()
    }
}
