//! The `scoring` section of the configuration: which policy, how many breaks, the ad
//! inventory, and the default policy's knobs.

use cuepoint_core::ads::AdInventory;
use cuepoint_core::scoring::{
    score, DefaultPolicyConfig, Policy, PolicyName, ScoringInputs, ScoringOutput,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringSettings {
    /// `default` or `reference`.
    pub policy: PolicyName,
    /// How many breaks to choose.
    pub top: usize,
    /// Ad inventory file (`{"ads":[{"url","labels":[...]}]}`); the built-in one when unset.
    pub ads: Option<std::path::PathBuf>,
    /// Knobs of the default policy (see `DefaultPolicyConfig`).
    #[serde(rename = "default")]
    pub default_policy: DefaultPolicyConfig,
}

impl Default for ScoringSettings {
    fn default() -> Self {
        Self {
            policy: PolicyName::Default,
            top: 3,
            ads: None,
            default_policy: DefaultPolicyConfig::default(),
        }
    }
}

impl ScoringSettings {
    pub fn from_value(v: &serde_json::Value) -> Result<Self, String> {
        if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(Self::default());
        }
        serde_json::from_value(v.clone()).map_err(|e| format!("scoring configuration: {e}"))
    }

    /// Parses and checks everything a scoring run will need (knob ranges, the ad inventory), so a
    /// bad value stops the process at start-up instead of failing every asset later.
    pub fn validated(v: &serde_json::Value) -> Result<Self, String> {
        let s = Self::from_value(v)?;
        s.default_policy
            .validate()
            .map_err(|e| format!("scoring.default: {e}"))?;
        s.inventory()?;
        Ok(s)
    }

    pub fn policy(&self) -> Result<Policy, String> {
        Ok(match self.policy {
            PolicyName::Reference => Policy::Reference,
            PolicyName::Default => Policy::Default(self.default_policy.clone()),
        })
    }

    pub fn inventory(&self) -> Result<AdInventory, String> {
        match &self.ads {
            None => Ok(AdInventory::default_inventory()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("ad inventory {}: {e}", p.display()))?;
                AdInventory::parse(&text).map_err(|e| format!("ad inventory {}: {e}", p.display()))
            }
        }
    }

    pub fn score(&self, inputs: &ScoringInputs) -> Result<ScoringOutput, String> {
        score(inputs, &self.policy()?, self.top).map_err(|e| e.to_string())
    }

    pub fn vmap(&self, output: &ScoringOutput) -> Result<String, String> {
        let inventory = self.inventory()?;
        let planned = cuepoint_core::vmap::plan_breaks(&output.breaks, &inventory);
        cuepoint_core::vmap::build_vmap(&planned).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn knobs_are_typed_and_checked() {
        let v = json!({"policy": "reference", "default": {"speech_penalty": 0.25, "brand_safety": {"window_seconds": 3}}});
        let s = ScoringSettings::validated(&v).unwrap();
        assert_eq!(s.policy, PolicyName::Reference);
        assert_eq!(s.default_policy.speech_penalty, 0.25);
        assert_eq!(s.default_policy.brand_safety.window_seconds, 3.0);
        assert!(ScoringSettings::validated(&json!({})).is_ok());
        let err =
            ScoringSettings::validated(&json!({"default": {"speech_penalty": 2}})).unwrap_err();
        assert!(err.contains("speech_penalty must be in [0, 1]"), "{err}");
        let err = ScoringSettings::validated(
            &json!({"default": {"brand_safety": {"min_confidence": 150}}}),
        )
        .unwrap_err();
        assert!(err.contains("brand_safety.min_confidence"), "{err}");
        let err = ScoringSettings::validated(&json!({"policy": "smart"})).unwrap_err();
        assert!(err.contains("unknown variant `smart`"), "{err}");
        // A knob in the wrong section is a typo, not silently ignored.
        let err = ScoringSettings::validated(&json!({"speech_penalty": 0.5})).unwrap_err();
        assert!(err.contains("unknown field `speech_penalty`"), "{err}");
        let err = ScoringSettings::validated(&json!({"ads": "/nonexistent/ads.json"})).unwrap_err();
        assert!(err.contains("/nonexistent/ads.json"), "{err}");
    }
}
