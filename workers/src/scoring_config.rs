//! The scoring set-up a worker checks once, at start-up: the policy with its validated knobs,
//! how many breaks, and the ad inventory read from its file once. A bad value stops the worker
//! from starting instead of failing every asset at the last stage.

use std::collections::BTreeMap;

use cuepoint_core::ads::{AdInventory, AdsError};
use cuepoint_core::domain::{BucketName, ObjectKey, S3Uri};
use cuepoint_core::scenes::SceneOptions;
use cuepoint_core::scoring::{
    score, Policy, PolicyName, ScoringError, ScoringInputs, ScoringOutput,
};
use cuepoint_core::vmap::VmapError;
use cuepoint_runtime::config::ScoringSettings;

#[derive(Debug, thiserror::Error)]
pub enum ScoringConfigError {
    #[error("scoring configuration: {0}")]
    Policy(#[from] ScoringError),
    #[error("scoring configuration: top must be at least 1")]
    NoBreaks,
    #[error("ad inventory {path}: {reason}")]
    InventoryRead { path: String, reason: String },
    #[error("ad inventory {path}: {source}")]
    Inventory { path: String, source: AdsError },
    #[error("ad inventory: placeholder creative {0}")]
    Placeholder(#[from] cuepoint_core::domain::DomainError),
}

/// A checked scoring configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub policy: Policy,
    pub top: usize,
    pub inventory: AdInventory,
    /// The inventory's placeholder creatives (resolved url → object), generated on first use.
    pub placeholders: BTreeMap<String, S3Uri>,
}

impl Scoring {
    /// Placeholder creatives of the inventory live in `output_bucket` under their relative url.
    pub fn from_settings(
        s: &ScoringSettings,
        output_bucket: &str,
    ) -> Result<Self, ScoringConfigError> {
        let policy = match s.policy {
            PolicyName::Reference => Policy::Reference,
            PolicyName::Default => {
                s.default_policy.validate()?;
                Policy::Default(s.default_policy.clone())
            }
        };
        if s.top == 0 {
            return Err(ScoringConfigError::NoBreaks);
        }
        let mut inventory = match &s.ads {
            None => AdInventory::default_inventory(),
            Some(p) => {
                let path = p.display().to_string();
                let text =
                    std::fs::read_to_string(p).map_err(|e| ScoringConfigError::InventoryRead {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                AdInventory::parse(&text)
                    .map_err(|source| ScoringConfigError::Inventory { path, source })?
            }
        };
        let bucket = BucketName::parse(output_bucket.to_string())?;
        let mut placeholders = BTreeMap::new();
        for ad in inventory.ads.iter().filter(|a| a.is_placeholder()) {
            let key = ObjectKey::parse(ad.url.trim_start_matches('/').to_string())?;
            let uri = S3Uri::new(bucket.clone(), key);
            placeholders.insert(uri.to_string(), uri);
        }
        inventory.resolve_placeholders(&bucket)?;
        Ok(Self {
            policy,
            top: s.top,
            inventory,
            placeholders,
        })
    }

    pub fn score(&self, inputs: &ScoringInputs) -> Result<ScoringOutput, ScoringError> {
        score(inputs, &self.policy, self.top)
    }

    pub fn vmap(&self, output: &ScoringOutput) -> Result<String, VmapError> {
        let planned = cuepoint_core::vmap::plan_breaks(&output.breaks, &self.inventory);
        cuepoint_core::vmap::build_vmap_with_duration(&planned, break_seconds(output))
    }

    /// How shots are grouped into scenes for `scenes.json` (the default policy's settings).
    pub fn scene_options(&self) -> SceneOptions {
        match &self.policy {
            Policy::Default(cfg) => cfg.scenes.clone(),
            Policy::Reference => SceneOptions::default(),
        }
    }
}

/// The break duration a schedule asks for, announced in the VMAP.
pub fn break_seconds(output: &ScoringOutput) -> Option<f64> {
    output.schedule.as_ref().and_then(|s| s.break_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_use_the_built_in_inventory() {
        let s = Scoring::from_settings(&ScoringSettings::default(), "cuepoint-output").unwrap();
        assert_eq!(s.policy.name(), PolicyName::Default);
        assert_eq!(s.top, 3);
        assert_eq!(
            s.inventory.ads.len(),
            AdInventory::default_inventory().ads.len()
        );
        assert_eq!(
            s.placeholders.len(),
            s.inventory.ads.len(),
            "every built-in creative is a placeholder"
        );
        assert!(s.inventory.ads[0]
            .url
            .starts_with("s3://cuepoint-output/ads/"));
    }

    #[test]
    fn bad_values_fail_at_start() {
        let mut s = ScoringSettings::default();
        s.default_policy.min_break_score = 2.0;
        assert!(matches!(
            Scoring::from_settings(&s, "cuepoint-output"),
            Err(ScoringConfigError::Policy(_))
        ));
        // The reference policy has no knobs: the default policy's are not checked.
        s.policy = PolicyName::Reference;
        assert!(Scoring::from_settings(&s, "cuepoint-output").is_ok());

        let s = ScoringSettings {
            top: 0,
            ..Default::default()
        };
        assert!(matches!(
            Scoring::from_settings(&s, "cuepoint-output"),
            Err(ScoringConfigError::NoBreaks)
        ));

        let dir = tempfile::tempdir().unwrap();
        let missing = ScoringSettings {
            ads: Some(dir.path().join("nope.json")),
            ..Default::default()
        };
        let err = Scoring::from_settings(&missing, "cuepoint-output").unwrap_err();
        assert!(
            matches!(err, ScoringConfigError::InventoryRead { .. }),
            "{err}"
        );
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, r#"{"ads":[]}"#).unwrap();
        let s = ScoringSettings {
            ads: Some(empty),
            ..Default::default()
        };
        assert!(matches!(
            Scoring::from_settings(&s, "cuepoint-output"),
            Err(ScoringConfigError::Inventory {
                source: AdsError::Empty,
                ..
            })
        ));
    }

    #[test]
    fn the_inventory_file_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ads.json");
        std::fs::write(
            &path,
            r#"{"ads":[{"url":"https://ads.example/a.mp4","labels":["Car"]}]}"#,
        )
        .unwrap();
        let s = Scoring::from_settings(
            &ScoringSettings {
                ads: Some(path.clone()),
                ..Default::default()
            },
            "cuepoint-output",
        )
        .unwrap();
        assert!(s.placeholders.is_empty());
        std::fs::remove_file(&path).unwrap();
        let output = ScoringOutput {
            policy: PolicyName::Default,
            duration: Some(60.0),
            slots: vec![],
            breaks: vec![],
            schedule: None,
        };
        assert!(
            s.vmap(&output).is_ok(),
            "scoring needs no file after start-up"
        );
        assert_eq!(s.inventory.ads[0].url, "https://ads.example/a.mp4");
    }

    #[test]
    fn knobs_are_typed_and_checked() {
        use serde_json::json;
        let load = |v: serde_json::Value| -> Result<Scoring, String> {
            let s: ScoringSettings = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Scoring::from_settings(&s, "cuepoint-output").map_err(|e| e.to_string())
        };
        let v = json!({"policy": "default", "default": {"speech_penalty": 0.25, "brand_safety": {"window_seconds": 3}}});
        let Policy::Default(cfg) = load(v).unwrap().policy else {
            panic!("default policy expected")
        };
        assert_eq!(cfg.speech_penalty, 0.25);
        assert_eq!(cfg.brand_safety.window_seconds, 3.0);
        assert!(load(json!({})).is_ok());
        let err = load(json!({"default": {"speech_penalty": 2}})).unwrap_err();
        assert!(err.contains("speech_penalty must be in [0, 1]"), "{err}");
        let err = load(json!({"default": {"brand_safety": {"min_confidence": 150}}})).unwrap_err();
        assert!(err.contains("brand_safety.min_confidence"), "{err}");
        // A schedule under scoring.default.schedule.
        let v = json!({"default": {"schedule": {"targets": {"every_seconds": 480}, "max_deviation_seconds": 60, "break_seconds": 90, "max_breaks_per_hour": 6}}});
        let Policy::Default(cfg) = load(v).unwrap().policy else {
            panic!("default policy expected")
        };
        let sched = cfg.schedule.unwrap();
        assert_eq!(sched.positions(Some(1800.0)), vec![480.0, 960.0, 1440.0]);
        assert_eq!(sched.break_seconds, Some(90.0));
        let err =
            load(json!({"default": {"schedule": {"targets": {"every_seconds": 0}}}})).unwrap_err();
        assert!(err.contains("every_seconds must be at least 1"), "{err}");
        let err = load(json!({"policy": "smart"})).unwrap_err();
        assert!(err.contains("unknown variant `smart`"), "{err}");
        // A knob in the wrong section is a typo, not silently ignored.
        let err = load(json!({"speech_penalty": 0.5})).unwrap_err();
        assert!(err.contains("unknown field `speech_penalty`"), "{err}");
        let err = load(json!({"ads": "/nonexistent/ads.json"})).unwrap_err();
        assert!(err.contains("/nonexistent/ads.json"), "{err}");
    }
}
