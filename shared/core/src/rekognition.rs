//! Amazon Rekognition Video result shapes (Get* responses, pages merged), as cuepoint stores
//! them in the results layout. Field names follow the AWS API exactly; fields cuepoint does not
//! read are kept in `extra` so a stored response round-trips unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What kind of analysis an asset tracks: the five Rekognition Video analyses, and the
/// transcription (Amazon Transcribe, or its local stand-in), which yields both the transcript
/// and the speech activity. Also names the results file(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisKind {
    Segments,
    Labels,
    Faces,
    Celebrities,
    Moderation,
    Transcription,
}

impl AnalysisKind {
    /// Every analysis an asset goes through.
    pub const ALL: [AnalysisKind; 6] = [
        Self::Segments,
        Self::Labels,
        Self::Faces,
        Self::Celebrities,
        Self::Moderation,
        Self::Transcription,
    ];

    /// The Rekognition Video analyses (they count against the open-jobs cap and complete with a
    /// Rekognition notification).
    pub const VIDEO: [AnalysisKind; 5] = [
        Self::Segments,
        Self::Labels,
        Self::Faces,
        Self::Celebrities,
        Self::Moderation,
    ];

    /// A Rekognition Video analysis (not the transcription).
    pub fn is_video(self) -> bool {
        self != Self::Transcription
    }

    /// The main results file in the results layout.
    pub fn results_file(self) -> &'static str {
        match self {
            Self::Segments => "segments.json",
            Self::Labels => "labels.json",
            Self::Faces => "faces.json",
            Self::Celebrities => "celebrities.json",
            Self::Moderation => "moderation.json",
            Self::Transcription => "transcript.json",
        }
    }

    /// Every results file the analysis writes (the transcription writes two).
    pub fn results_files(self) -> &'static [&'static str] {
        match self {
            Self::Segments => &["segments.json"],
            Self::Labels => &["labels.json"],
            Self::Faces => &["faces.json"],
            Self::Celebrities => &["celebrities.json"],
            Self::Moderation => &["moderation.json"],
            Self::Transcription => &["transcript.json", "speech.json"],
        }
    }

    /// The operation that starts the job (for video analyses, the Rekognition `API` value in a
    /// completion notification).
    pub fn start_api(self) -> &'static str {
        match self {
            Self::Segments => "StartSegmentDetection",
            Self::Labels => "StartLabelDetection",
            Self::Faces => "StartFaceDetection",
            Self::Celebrities => "StartCelebrityRecognition",
            Self::Moderation => "StartContentModeration",
            Self::Transcription => "StartTranscriptionJob",
        }
    }

    /// The video analysis a Rekognition notification's `API` names.
    pub fn from_start_api(api: &str) -> Option<Self> {
        Self::VIDEO.into_iter().find(|k| k.start_api() == api)
    }

    /// The list field a Get* response pages over (`results` for the transcription, whose
    /// output is one document).
    pub fn list_field(self) -> &'static str {
        match self {
            Self::Segments => "Segments",
            Self::Labels => "Labels",
            Self::Faces => "Faces",
            Self::Celebrities => "Celebrities",
            Self::Moderation => "ModerationLabels",
            Self::Transcription => "results",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Segments => "segments",
            Self::Labels => "labels",
            Self::Faces => "faces",
            Self::Celebrities => "celebrities",
            Self::Moderation => "moderation",
            Self::Transcription => "transcription",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for AnalysisKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VideoMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_range: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AudioMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_channels: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `SegmentType`: `TECHNICAL_CUE` or `SHOT`.
pub const SEGMENT_TECHNICAL_CUE: &str = "TECHNICAL_CUE";
pub const SEGMENT_SHOT: &str = "SHOT";
/// `TechnicalCueType` values cuepoint acts on (others: ColorBars, Slate, StudioLogo, Content,
/// OpeningCredits are kept but ignored by scoring).
pub const CUE_BLACK_FRAMES: &str = "BlackFrames";
pub const CUE_END_CREDITS: &str = "EndCredits";
/// cuepoint's own cue types for gradual transitions (Rekognition has none; the local engine
/// writes them, consumers that do not know them ignore them): a fade to black (ending where
/// the `BlackFrames` cue starts), a fade from black (starting where it ends), and a
/// cross-dissolve between two shots. Start and end are the transition's first and last frame.
pub const CUE_FADE_OUT: &str = "FadeOut";
pub const CUE_FADE_IN: &str = "FadeIn";
pub const CUE_DISSOLVE: &str = "Dissolve";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TechnicalCueSegment {
    #[serde(rename = "Type")]
    pub cue_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShotSegment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Segment {
    #[serde(rename = "Type")]
    pub segment_type: String,
    pub start_timestamp_millis: u64,
    #[serde(default)]
    pub end_timestamp_millis: u64,
    #[serde(default)]
    pub duration_millis: u64,
    #[serde(
        default,
        rename = "StartTimecodeSMPTE",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_timecode_smpte: Option<String>,
    #[serde(
        default,
        rename = "EndTimecodeSMPTE",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_timecode_smpte: Option<String>,
    #[serde(
        default,
        rename = "DurationSMPTE",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_smpte: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technical_cue_segment: Option<TechnicalCueSegment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shot_segment: Option<ShotSegment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_frame_number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_frame_number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_frames: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Segment {
    pub fn is_shot(&self) -> bool {
        self.segment_type == SEGMENT_SHOT
    }
    /// The technical cue type when this is a `TECHNICAL_CUE` segment.
    pub fn cue_type(&self) -> Option<&str> {
        (self.segment_type == SEGMENT_TECHNICAL_CUE)
            .then(|| {
                self.technical_cue_segment
                    .as_ref()
                    .map(|c| c.cue_type.as_str())
            })
            .flatten()
    }
}

/// GetSegmentDetection response, pages merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SegmentDetection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    #[serde(default)]
    pub video_metadata: Vec<VideoMetadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audio_metadata: Vec<AudioMetadata>,
    #[serde(default)]
    pub segments: Vec<Segment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_segment_types: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SegmentDetection {
    /// Video duration in seconds from the first `VideoMetadata` entry.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.video_metadata
            .first()
            .and_then(|m| m.duration_millis)
            .map(|ms| ms as f64 / 1000.0)
    }
}

/// A named detection with a confidence (a label, a celebrity, a moderation label).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedDetection {
    pub name: String,
    #[serde(default)]
    pub confidence: f64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Emotion {
    #[serde(rename = "Type")]
    pub emotion_type: String,
    #[serde(default)]
    pub confidence: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotions: Option<Vec<Emotion>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelDetection {
    pub timestamp: i64,
    pub label: NamedDetection,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CelebrityRecognition {
    pub timestamp: i64,
    pub celebrity: NamedDetection,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceDetection {
    pub timestamp: i64,
    pub face: FaceDetail,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContentModerationDetection {
    pub timestamp: i64,
    pub moderation_label: NamedDetection,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// GetLabelDetection response, pages merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelResults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    /// GetLabelDetection & co. return one object here (GetSegmentDetection a list): both read.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub video_metadata: Vec<VideoMetadata>,
    #[serde(default)]
    pub labels: Vec<LabelDetection>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// GetCelebrityRecognition response, pages merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CelebrityResults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    /// GetLabelDetection & co. return one object here (GetSegmentDetection a list): both read.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub video_metadata: Vec<VideoMetadata>,
    #[serde(default)]
    pub celebrities: Vec<CelebrityRecognition>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// GetFaceDetection response, pages merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceResults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    /// GetLabelDetection & co. return one object here (GetSegmentDetection a list): both read.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub video_metadata: Vec<VideoMetadata>,
    #[serde(default)]
    pub faces: Vec<FaceDetection>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// GetContentModeration response, pages merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModerationResults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    /// GetLabelDetection & co. return one object here (GetSegmentDetection a list): both read.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub video_metadata: Vec<VideoMetadata>,
    #[serde(default)]
    pub moderation_labels: Vec<ContentModerationDetection>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A field the API gives as one object in some responses and as a list in others.
fn one_or_many<'de, D>(d: D) -> Result<Vec<VideoMetadata>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Box<VideoMetadata>),
        Many(Vec<VideoMetadata>),
        Null(()),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(m) => vec![*m],
        OneOrMany::Many(v) => v,
        OneOrMany::Null(()) => vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_results_read_video_metadata_as_object_or_list() {
        let one: LabelResults = serde_json::from_str(r#"{"JobStatus":"SUCCEEDED","VideoMetadata":{"DurationMillis":5000},"Labels":[{"Timestamp":0,"Label":{"Name":"Sea","Confidence":99.0}}]}"#).unwrap();
        assert_eq!(one.video_metadata[0].duration_millis, Some(5000));
        let many: FaceResults =
            serde_json::from_str(r#"{"VideoMetadata":[{"DurationMillis":7}],"Faces":[]}"#).unwrap();
        assert_eq!(many.video_metadata[0].duration_millis, Some(7));
        let none: ModerationResults = serde_json::from_str(r#"{"ModerationLabels":[]}"#).unwrap();
        assert!(none.video_metadata.is_empty());
    }

    #[test]
    fn segment_detection_round_trips_unknown_fields() {
        let raw = r#"{"JobStatus":"SUCCEEDED","VideoMetadata":[{"Codec":"h264","DurationMillis":60000,"Format":"QuickTime / MOV","FrameRate":25.0,"FrameHeight":1080,"FrameWidth":1920,"ColorRange":"LIMITED"}],
          "Segments":[{"Type":"TECHNICAL_CUE","StartTimestampMillis":10000,"EndTimestampMillis":12000,"DurationMillis":2000,
            "StartTimecodeSMPTE":"00:00:10:00","EndTimecodeSMPTE":"00:00:12:00","DurationSMPTE":"00:00:02:00",
            "TechnicalCueSegment":{"Type":"BlackFrames","Confidence":99.9},"StartFrameNumber":250,"EndFrameNumber":300,"DurationFrames":50},
            {"Type":"SHOT","StartTimestampMillis":0,"EndTimestampMillis":9960,"DurationMillis":9960,"ShotSegment":{"Index":0,"Confidence":99.0},"Future":1}],
          "SelectedSegmentTypes":[{"Type":"SHOT","ModelVersion":"1.0"}]}"#;
        let d: SegmentDetection = serde_json::from_str(raw).unwrap();
        assert_eq!(d.duration_seconds(), Some(60.0));
        assert_eq!(d.segments[0].cue_type(), Some(CUE_BLACK_FRAMES));
        assert!(d.segments[1].is_shot());
        assert_eq!(d.segments[1].extra["Future"], 1);
        let back: SegmentDetection =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn analysis_kind_maps_apis() {
        for k in AnalysisKind::VIDEO {
            assert_eq!(AnalysisKind::from_start_api(k.start_api()), Some(k));
            assert!(k.is_video());
        }
        assert_eq!(AnalysisKind::from_start_api("StartTextDetection"), None);
        // a Rekognition notification never names the transcription
        assert_eq!(AnalysisKind::from_start_api("StartTranscriptionJob"), None);
        assert!(!AnalysisKind::Transcription.is_video());
        for k in AnalysisKind::ALL {
            assert_eq!(AnalysisKind::parse(k.as_str()), Some(k));
            assert_eq!(k.results_files()[0], k.results_file());
        }
        assert_eq!(
            AnalysisKind::Transcription.results_files(),
            ["transcript.json", "speech.json"]
        );
    }
}
