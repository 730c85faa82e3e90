//! One configuration struct, layered: built-in defaults < TOML file < environment.
//!
//! File: `--config FILE` or `CUEPOINT_CONFIG`. Environment: `CUEPOINT_` prefix, `__` between
//! levels, e.g. `CUEPOINT_BACKEND=aws`, `CUEPOINT_AWS__TABLE=cuepoint-assets`,
//! `CUEPOINT_CONSUMER__CONCURRENCY=8`. Every key is listed in the README.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cuepoint_core::scoring::{DefaultPolicyConfig, PolicyName, DEFAULT_TOP_N};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite + files + FFmpeg on one machine.
    Embedded,
    /// SQS, EventBridge, DynamoDB, S3, MediaConvert, Rekognition.
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub backend: Backend,
    /// Embedded backend: where the database, blobs and job scratch space live.
    pub data_dir: PathBuf,
    /// Uploads here start the pipeline.
    pub ingest_bucket: String,
    /// HLS, proxies, results and VMAPs are written here under `assets/<asset-id>/`.
    pub output_bucket: String,
    /// Our workflow name: in MediaConvert `userMetadata.workflow` and the rule that filters on it.
    pub workflow: String,
    pub log_format: LogFormat,
    pub consumer: ConsumerSettings,
    pub audio: AudioSettings,
    pub analysis: AnalysisSettings,
    /// Slot scoring: policy, number of breaks, ad inventory, the default policy's knobs.
    pub scoring: ScoringSettings,
    /// The HLS ladder the packaging job encodes once the breaks are chosen.
    pub packaging: PackagingSettings,
    /// Deadlines per state and what the sweeper does past them.
    pub stuck: cuepoint_core::stuck::StuckPolicy,
    pub models: ModelsSettings,
    pub aws: AwsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            data_dir: PathBuf::from("cuepoint-data"),
            ingest_bucket: "cuepoint-ingest".into(),
            output_bucket: "cuepoint-output".into(),
            workflow: "cuepoint".into(),
            log_format: LogFormat::Text,
            consumer: ConsumerSettings::default(),
            audio: AudioSettings::default(),
            analysis: AnalysisSettings::default(),
            scoring: ScoringSettings::default(),
            packaging: PackagingSettings::default(),
            stuck: cuepoint_core::stuck::StuckPolicy::default(),
            models: ModelsSettings::default(),
            aws: AwsSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerSettings {
    /// Messages per receive (SQS allows up to 10).
    pub batch_size: usize,
    /// Long-poll wait (SQS allows up to 20 s).
    pub wait_seconds: u64,
    /// Handlers running at once per worker.
    pub concurrency: usize,
    /// Visibility timeout given on receive; extended by the heartbeat while a handler runs.
    pub visibility_seconds: u64,
    /// How often the heartbeat extends visibility.
    pub heartbeat_seconds: u64,
    /// On SIGTERM, how long in-flight handlers get before their messages are released.
    pub shutdown_grace_seconds: u64,
    /// First retry delay for transient failures (doubles per receive, with jitter).
    pub retry_base_seconds: u64,
    pub retry_max_seconds: u64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            batch_size: 10,
            wait_seconds: 20,
            concurrency: 4,
            visibility_seconds: 120,
            heartbeat_seconds: 30,
            shutdown_grace_seconds: 90,
            retry_base_seconds: 2,
            retry_max_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PackagingSettings {
    /// Rungs of the ladder, the shorter side of the picture in pixels; rungs above the source
    /// are left out (a 720p source gets 720/480/360).
    pub ladder: Vec<u32>,
}

impl Default for PackagingSettings {
    fn default() -> Self {
        Self {
            ladder: cuepoint_core::packaging::DEFAULT_LADDER.to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AudioSettings {
    /// A track whose Input Max Loudness is below this is silent (LUFS).
    pub silence_threshold_lufs: f64,
    /// Shortest silence interval reported (seconds).
    pub min_silence_seconds: f64,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self {
            silence_threshold_lufs: -50.0,
            min_silence_seconds: cuepoint_core::loudness::DEFAULT_MIN_SILENCE_SECONDS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisSettings {
    /// Open Rekognition jobs allowed at once (account-wide); excess work waits in the queue.
    pub max_open_jobs: i64,
    /// How long to delay a start when the cap is reached.
    pub cap_retry_seconds: u64,
    /// Local engine: seconds between the frames the vision models see (plus the first frame
    /// of each shot).
    pub vision_sample_seconds: f64,
    /// Local engine: minimum confidence (0-100) of a moderation label.
    pub moderation_min_confidence: f32,
    /// Local engine: seconds between the frames the moderation model sees.
    pub moderation_sample_seconds: f64,
    /// Local engine: seconds between the frames the face model sees.
    pub face_sample_seconds: f64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            max_open_jobs: 20,
            cap_retry_seconds: 30,
            vision_sample_seconds: 1.0,
            moderation_min_confidence: 50.0,
            moderation_sample_seconds: 3.0,
            face_sample_seconds: 2.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelsSettings {
    /// Where `cuepoint models install` puts the offline models. Unset: `CUEPOINT_MODELS_DIR`,
    /// else `$XDG_CACHE_HOME/cuepoint/models` or `~/.cache/cuepoint/models`.
    pub dir: Option<PathBuf>,
}

/// The `scoring` section. An unknown policy name or key fails when the configuration loads;
/// the workers check the values (and read the inventory) once at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringSettings {
    /// `default` or `reference`.
    pub policy: PolicyName,
    /// How many breaks to choose.
    pub top: usize,
    /// Ad inventory file (`{"ads":[{"url","labels":[...]}]}`); the built-in one when unset.
    pub ads: Option<PathBuf>,
    /// Knobs of the default policy.
    #[serde(rename = "default")]
    pub default_policy: DefaultPolicyConfig,
}

impl Default for ScoringSettings {
    fn default() -> Self {
        Self {
            policy: PolicyName::Default,
            top: DEFAULT_TOP_N,
            ads: None,
            default_policy: DefaultPolicyConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AwsSettings {
    /// DynamoDB table of asset records.
    pub table: String,
    /// Queue URL per queue name (`ingest`, `media`, `analysis`, `results`, `scoring`); DLQs are
    /// found from each queue's redrive policy.
    pub queue_urls: BTreeMap<String, String>,
    /// EventBridge bus for pipeline events.
    pub event_bus: String,
    /// SNS topic Rekognition notifies, and the role it publishes with.
    pub rekognition_topic_arn: String,
    pub rekognition_role_arn: String,
    /// MediaConvert role; endpoint discovered once (DescribeEndpoints) unless given.
    pub mediaconvert_role_arn: String,
    pub mediaconvert_endpoint: Option<String>,
    pub mediaconvert_queue: Option<String>,
    /// S3 path-style addressing (emulators).
    pub s3_path_style: bool,
    /// Let the local media engine (FFmpeg) play MediaConvert and Rekognition, announcing
    /// through EventBridge and SNS like the services do (emulators have neither service).
    pub local_media_engine: bool,
    /// MediaTailor's HLS session prefix (the stack output `MediaTailorHlsPrefix`): when set,
    /// summaries give each complete asset's ad-inserted playback URL.
    pub playback_prefix: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            table: "cuepoint-assets".into(),
            queue_urls: BTreeMap::new(),
            event_bus: "default".into(),
            rekognition_topic_arn: String::new(),
            rekognition_role_arn: String::new(),
            mediaconvert_role_arn: String::new(),
            mediaconvert_endpoint: None,
            mediaconvert_queue: None,
            s3_path_style: false,
            local_media_engine: false,
            playback_prefix: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(#[from] config::ConfigError);

impl Settings {
    /// Defaults < `file` (or `CUEPOINT_CONFIG`) < `CUEPOINT_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let defaults = config::Config::try_from(&Settings::default())?;
        let mut b = config::Config::builder().add_source(defaults);
        let env_file = std::env::var_os("CUEPOINT_CONFIG").map(PathBuf::from);
        if let Some(f) = file.map(Path::to_path_buf).or(env_file) {
            b = b.add_source(config::File::from(f).required(true));
        }
        b = b.add_source(
            config::Environment::with_prefix("CUEPOINT")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        );
        Ok(b.build()?.try_deserialize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_then_environment() {
        let dir = std::env::temp_dir().join(format!("cuepoint-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "workflow = \"from-file\"\noutput_bucket = \"file-out\"\n[consumer]\nconcurrency = 7\n",
        )
        .unwrap();
        // SAFETY: this is the only test touching these variables.
        unsafe {
            std::env::set_var("CUEPOINT_OUTPUT_BUCKET", "env-out");
            std::env::set_var("CUEPOINT_AWS__TABLE", "env-table");
        }
        let s = Settings::load(Some(&f)).unwrap();
        unsafe {
            std::env::remove_var("CUEPOINT_OUTPUT_BUCKET");
            std::env::remove_var("CUEPOINT_AWS__TABLE");
        }
        assert_eq!(s.workflow, "from-file");
        assert_eq!(s.output_bucket, "env-out");
        assert_eq!(s.consumer.concurrency, 7);
        assert_eq!(s.consumer.batch_size, 10, "default survives");
        assert_eq!(s.aws.table, "env-table");
        assert_eq!(s.backend, Backend::Embedded);
    }

    #[test]
    fn scoring_section_is_typed_at_load() {
        let dir = tempfile_dir("scoring");
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[scoring]\npolicy = \"reference\"\ntop = 5\n[scoring.default]\nmin_spacing_seconds = 12.0\n",
        )
        .unwrap();
        let s = Settings::load(Some(&good)).unwrap();
        assert_eq!(s.scoring.policy, PolicyName::Reference);
        assert_eq!(s.scoring.top, 5);
        assert_eq!(s.scoring.default_policy.min_spacing_seconds, 12.0);
        assert_eq!(
            s.scoring.default_policy.lead_in_seconds, 5.0,
            "default survives"
        );

        for (name, body) in [
            ("policy", "[scoring]\npolicy = \"best\"\n"),
            ("key", "[scoring]\ntopp = 2\n"),
            ("knob", "[scoring.default]\nmin_spacing = 2.0\n"),
        ] {
            let f = dir.join(format!("{name}.toml"));
            std::fs::write(&f, body).unwrap();
            let err = Settings::load(Some(&f)).unwrap_err().to_string();
            assert!(
                err.contains("scoring") || err.contains("unknown"),
                "{name}: {err}"
            );
        }
    }

    fn tempfile_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cuepoint-cfg-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
