//! Why a content analysis came back empty: the `CuepointAnalysis` object the local engine may add
//! to a results file (AWS never writes it). See docs/content-analyses.md.

use serde::{Deserialize, Serialize};

/// Outcome of one content analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnalysisState {
    /// Ran to the end (the results are what the model saw, possibly nothing).
    Complete,
    /// The model is not installed; `cuepoint models install` fixes it.
    NotInstalled,
    /// No model with a usable licence exists offline (e.g. celebrities).
    UnavailableOffline,
    /// The model ran and failed; `message` has the cause.
    Failed,
}

/// The `CuepointAnalysis` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CuepointAnalysis {
    pub status: AnalysisState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CuepointAnalysis {
    pub fn complete(model: impl Into<String>) -> Self {
        Self {
            status: AnalysisState::Complete,
            model: Some(model.into()),
            message: None,
        }
    }

    pub fn not_installed(model: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: AnalysisState::NotInstalled,
            model: Some(model.into()),
            message: Some(message.into()),
        }
    }

    pub fn failed(model: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: AnalysisState::Failed,
            model: Some(model.into()),
            message: Some(message.into()),
        }
    }

    /// True when the results are trustworthy (an empty list then means "nothing there").
    pub fn is_complete(&self) -> bool {
        self.status == AnalysisState::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shape() {
        let json = r#"{"Status": "NOT_INSTALLED", "Model": "mobilenet-v2", "Message": "run `cuepoint models install`"}"#;
        let a: CuepointAnalysis = serde_json::from_str(json).unwrap();
        assert_eq!(a.status, AnalysisState::NotInstalled);
        assert_eq!(a.model.as_deref(), Some("mobilenet-v2"));
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(back["Status"], "NOT_INSTALLED");
        let done = serde_json::to_value(CuepointAnalysis::complete("silero-vad")).unwrap();
        assert_eq!(
            done,
            serde_json::json!({"Status": "COMPLETE", "Model": "silero-vad"})
        );
    }
}
