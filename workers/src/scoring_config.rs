//! The `scoring` section of the configuration: which policy, how many breaks, the ad
//! inventory, and the default policy's knobs.

use cuepoint_core::ads::AdInventory;
use cuepoint_core::scoring::{score, DefaultPolicyConfig, Policy, ScoringInputs, ScoringOutput};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ScoringSettings {
    /// `default` or `reference`.
    pub policy: String,
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
            policy: "default".into(),
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

    pub fn policy(&self) -> Result<Policy, String> {
        match self.policy.as_str() {
            "reference" => Ok(Policy::Reference),
            "default" => Ok(Policy::Default(self.default_policy.clone())),
            other => Err(format!(
                "unknown scoring policy {other:?} (expected default or reference)"
            )),
        }
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
