//! Rekognition Video's result items (field names as the service writes them), so a results
//! file from the local engine reads like one from AWS. Confidences are percentages 0-100;
//! positions are ratios of the frame's width and height.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedRef {
    pub name: String,
}

/// GetLabelDetection's `Label`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Label {
    pub name: String,
    pub confidence: f32,
    pub parents: Vec<NamedRef>,
    pub categories: Vec<NamedRef>,
}

/// One item of `Labels[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelDetection {
    pub timestamp: u64,
    pub label: Label,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BoundingBox {
    pub width: f32,
    pub height: f32,
    pub left: f32,
    pub top: f32,
}

/// A facial landmark: `Type` is one of Rekognition's names (`eyeLeft`, `eyeRight`, `nose`,
/// `mouthLeft`, `mouthRight`); left and right as seen in the picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Landmark {
    #[serde(rename = "Type")]
    pub kind: String,
    pub x: f32,
    pub y: f32,
}

/// GetFaceDetection's `Face` (the fields a detector without attributes can fill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Face {
    pub bounding_box: BoundingBox,
    pub confidence: f32,
    pub landmarks: Vec<Landmark>,
}

/// One item of `Faces[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceDetection {
    pub timestamp: u64,
    pub face: Face,
}

/// GetContentModeration's `ModerationLabel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModerationLabel {
    pub name: String,
    pub confidence: f32,
    pub parent_name: String,
}

/// One item of `ModerationLabels[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModerationDetection {
    pub timestamp: u64,
    pub moderation_label: ModerationLabel,
}

/// `CuepointAnalysis.Status`: why a local results file is empty (AWS never writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnalysisStatus {
    Complete,
    NotInstalled,
    UnavailableOffline,
    Failed,
}

/// The `CuepointAnalysis` object of a local results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CuepointAnalysis {
    pub status: AnalysisStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_in_rekognition_field_names() {
        let f = FaceDetection {
            timestamp: 1000,
            face: Face {
                bounding_box: BoundingBox {
                    width: 0.1,
                    height: 0.2,
                    left: 0.3,
                    top: 0.4,
                },
                confidence: 99.0,
                landmarks: vec![Landmark {
                    kind: "nose".into(),
                    x: 0.35,
                    y: 0.5,
                }],
            },
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["Timestamp"], 1000);
        assert_eq!(v["Face"]["Landmarks"][0]["Type"], "nose");
        assert!(v["Face"]["BoundingBox"]["Left"].is_number());
        let m = ModerationDetection {
            timestamp: 5,
            moderation_label: ModerationLabel {
                name: "Explicit Nudity".into(),
                confidence: 80.0,
                parent_name: String::new(),
            },
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"Timestamp": 5, "ModerationLabel": {"Name": "Explicit Nudity", "Confidence": 80.0, "ParentName": ""}})
        );
        let a = CuepointAnalysis {
            status: AnalysisStatus::NotInstalled,
            model: Some("retinaface".into()),
            message: None,
        };
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"Status": "NOT_INSTALLED", "Model": "retinaface"})
        );
    }
}
