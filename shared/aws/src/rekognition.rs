//! Rekognition Video ([`VideoAnalyzer`]).
//!
//! Jobs notify the SNS topic on completion (nothing polls). `get_page` turns the SDK's typed
//! Get* output back into the API's JSON (PascalCase field names, as in
//! `cuepoint_core::rekognition`), so stored results look exactly like an AWS response page.
//! The conversion writes every field core reads plus a few cheap neighbours; the rest of the
//! typed output (landmarks, poses, instances...) is not carried over.

use async_trait::async_trait;
use aws_sdk_rekognition::operation::get_celebrity_recognition::GetCelebrityRecognitionOutput;
use aws_sdk_rekognition::operation::get_content_moderation::GetContentModerationOutput;
use aws_sdk_rekognition::operation::get_face_detection::GetFaceDetectionOutput;
use aws_sdk_rekognition::operation::get_label_detection::GetLabelDetectionOutput;
use aws_sdk_rekognition::operation::get_segment_detection::GetSegmentDetectionOutput;
use aws_sdk_rekognition::types::{
    AudioMetadata, BoundingBox, CelebrityRecognition, ContentModerationDetection, FaceAttributes,
    FaceDetection, LabelDetection, NotificationChannel, S3Object, SegmentDetection, SegmentType,
    Video, VideoJobStatus, VideoMetadata,
};
use cuepoint_core::rekognition::AnalysisKind;
use cuepoint_runtime::config::AwsSettings;
use cuepoint_runtime::ports::{AnalysisRequest, PortError, PortResult, ResultsPage, VideoAnalyzer};
use serde_json::{Map, Value};

use crate::clients::AwsClients;
use crate::error::{port_error, retry_transient};

/// Results per Get* page (the API maximum).
const PAGE_SIZE: i32 = 1000;

#[derive(Clone, Debug)]
pub struct RekognitionAnalyzer {
    client: aws_sdk_rekognition::Client,
    topic_arn: String,
    role_arn: String,
}

impl RekognitionAnalyzer {
    /// `topic_arn`/`role_arn`: the SNS topic jobs notify, and the role Rekognition publishes with.
    pub fn new(
        clients: &AwsClients,
        topic_arn: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> Self {
        Self {
            client: clients.rekognition.clone(),
            topic_arn: topic_arn.into(),
            role_arn: role_arn.into(),
        }
    }

    pub fn from_settings(clients: &AwsClients, settings: &AwsSettings) -> Self {
        Self::new(
            clients,
            settings.rekognition_topic_arn.clone(),
            settings.rekognition_role_arn.clone(),
        )
    }

    fn channel(&self) -> PortResult<NotificationChannel> {
        if self.topic_arn.is_empty() || self.role_arn.is_empty() {
            return Err(PortError::Permanent(
                "rekognition needs aws.rekognition_topic_arn and aws.rekognition_role_arn: completion is only ever notified".into(),
            ));
        }
        NotificationChannel::builder()
            .sns_topic_arn(&self.topic_arn)
            .role_arn(&self.role_arn)
            .build()
            .map_err(|e| PortError::Permanent(format!("rekognition notification channel: {e}")))
    }
}

fn video(request: &AnalysisRequest) -> Video {
    Video::builder()
        .s3_object(
            S3Object::builder()
                .bucket(request.video.bucket.as_str())
                .name(request.video.key.as_str())
                .build(),
        )
        .build()
}

#[async_trait]
impl VideoAnalyzer for RekognitionAnalyzer {
    async fn start(&self, request: &AnalysisRequest) -> PortResult<String> {
        let channel = self.channel()?;
        let c = &self.client;
        let what = format!(
            "rekognition {} for {}",
            request.kind.start_api(),
            request.video
        );
        let (token, tag) = (request.client_token.as_str(), request.job_tag.as_str());
        // Retrying is safe: the ClientRequestToken makes a repeated start return the same job.
        let job_id = retry_transient(&what, || {
            let (channel, video) = (channel.clone(), video(request));
            let what = what.as_str();
            async move {
                let id = match request.kind {
                    AnalysisKind::Segments => {
                        c.start_segment_detection()
                            .video(video)
                            .client_request_token(token)
                            .job_tag(tag)
                            .notification_channel(channel)
                            .segment_types(SegmentType::TechnicalCue)
                            .segment_types(SegmentType::Shot)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?
                            .job_id
                    }
                    AnalysisKind::Labels => {
                        c.start_label_detection()
                            .video(video)
                            .client_request_token(token)
                            .job_tag(tag)
                            .notification_channel(channel)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?
                            .job_id
                    }
                    AnalysisKind::Faces => {
                        c.start_face_detection()
                            .video(video)
                            .client_request_token(token)
                            .job_tag(tag)
                            .notification_channel(channel)
                            // ALL: emotions are among the attributes only returned with ALL.
                            .face_attributes(FaceAttributes::All)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?
                            .job_id
                    }
                    AnalysisKind::Celebrities => {
                        c.start_celebrity_recognition()
                            .video(video)
                            .client_request_token(token)
                            .job_tag(tag)
                            .notification_channel(channel)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?
                            .job_id
                    }
                    AnalysisKind::Moderation => {
                        c.start_content_moderation()
                            .video(video)
                            .client_request_token(token)
                            .job_tag(tag)
                            .notification_channel(channel)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?
                            .job_id
                    }
                    AnalysisKind::Transcription => {
                        return Err(PortError::Permanent(format!(
                            "{what}: the transcription is Amazon Transcribe's, not Rekognition's"
                        )))
                    }
                };
                Ok(id)
            }
        })
        .await?;
        job_id.ok_or_else(|| PortError::Permanent(format!("{what}: response carries no JobId")))
    }

    async fn get_page(
        &self,
        kind: AnalysisKind,
        job_id: &str,
        next_token: Option<&str>,
    ) -> PortResult<ResultsPage> {
        let c = &self.client;
        let what = format!("rekognition get {kind} results of job {job_id}");
        let token = next_token.map(str::to_string);
        retry_transient(&what, || {
            let (token, what) = (token.clone(), what.as_str());
            async move {
                let (body, next) = match kind {
                    AnalysisKind::Segments => {
                        let out = c
                            .get_segment_detection()
                            .job_id(job_id)
                            .max_results(PAGE_SIZE)
                            .set_next_token(token)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?;
                        (segments_json(&out), out.next_token)
                    }
                    AnalysisKind::Labels => {
                        let out = c
                            .get_label_detection()
                            .job_id(job_id)
                            .max_results(PAGE_SIZE)
                            .set_next_token(token)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?;
                        (labels_json(&out), out.next_token)
                    }
                    AnalysisKind::Faces => {
                        let out = c
                            .get_face_detection()
                            .job_id(job_id)
                            .max_results(PAGE_SIZE)
                            .set_next_token(token)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?;
                        (faces_json(&out), out.next_token)
                    }
                    AnalysisKind::Celebrities => {
                        let out = c
                            .get_celebrity_recognition()
                            .job_id(job_id)
                            .max_results(PAGE_SIZE)
                            .set_next_token(token)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?;
                        (celebrities_json(&out), out.next_token)
                    }
                    AnalysisKind::Moderation => {
                        let out = c
                            .get_content_moderation()
                            .job_id(job_id)
                            .max_results(PAGE_SIZE)
                            .set_next_token(token)
                            .send()
                            .await
                            .map_err(|e| port_error(what, e))?;
                        (moderation_json(&out), out.next_token)
                    }
                    AnalysisKind::Transcription => {
                        return Err(PortError::Permanent(format!(
                            "{what}: the transcription is Amazon Transcribe's, not Rekognition's"
                        )))
                    }
                };
                Ok(ResultsPage {
                    body,
                    next_token: next.filter(|t| !t.is_empty()),
                })
            }
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// SDK output → API JSON

/// A JSON object that leaves out absent fields.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_string(), value.into());
        self
    }
    fn opt(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }
    fn list(self, key: &str, items: Vec<Value>) -> Self {
        self.put(key, Value::Array(items))
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

/// An `f32` from the SDK as the decimal the API sent (`99.9`, not `99.90000152587891`).
fn num(f: f32) -> Value {
    let shortest: f64 = f.to_string().parse().unwrap_or(f as f64);
    serde_json::Number::from_f64(shortest)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn status(s: Option<&VideoJobStatus>) -> Option<String> {
    s.map(|s| s.as_str().to_string())
}

fn video_metadata_json(m: &VideoMetadata) -> Value {
    Obj::default()
        .opt("Codec", m.codec())
        .opt("DurationMillis", m.duration_millis())
        .opt("Format", m.format())
        .opt("FrameRate", m.frame_rate().map(num))
        .opt("FrameHeight", m.frame_height())
        .opt("FrameWidth", m.frame_width())
        .opt("ColorRange", m.color_range().map(|c| c.as_str()))
        .done()
}

fn audio_metadata_json(m: &AudioMetadata) -> Value {
    Obj::default()
        .opt("Codec", m.codec())
        .opt("DurationMillis", m.duration_millis())
        .opt("SampleRate", m.sample_rate())
        .opt("NumberOfChannels", m.number_of_channels())
        .done()
}

fn bounding_box_json(b: &BoundingBox) -> Value {
    Obj::default()
        .opt("Width", b.width().map(num))
        .opt("Height", b.height().map(num))
        .opt("Left", b.left().map(num))
        .opt("Top", b.top().map(num))
        .done()
}

fn segment_json(s: &SegmentDetection) -> Value {
    Obj::default()
        .opt("Type", s.r#type().map(|t| t.as_str()))
        .put("StartTimestampMillis", s.start_timestamp_millis())
        .put("EndTimestampMillis", s.end_timestamp_millis())
        .opt("DurationMillis", s.duration_millis())
        .opt("StartTimecodeSMPTE", s.start_timecode_smpte())
        .opt("EndTimecodeSMPTE", s.end_timecode_smpte())
        .opt("DurationSMPTE", s.duration_smpte())
        .opt(
            "TechnicalCueSegment",
            s.technical_cue_segment().map(|c| {
                Obj::default()
                    .opt("Type", c.r#type().map(|t| t.as_str()))
                    .opt("Confidence", c.confidence().map(num))
                    .done()
            }),
        )
        .opt(
            "ShotSegment",
            s.shot_segment().map(|c| {
                Obj::default()
                    .opt("Index", c.index())
                    .opt("Confidence", c.confidence().map(num))
                    .done()
            }),
        )
        .opt("StartFrameNumber", s.start_frame_number())
        .opt("EndFrameNumber", s.end_frame_number())
        .opt("DurationFrames", s.duration_frames())
        .done()
}

pub fn segments_json(out: &GetSegmentDetectionOutput) -> Value {
    Obj::default()
        .opt("JobStatus", status(out.job_status()))
        .opt("StatusMessage", out.status_message())
        .opt("JobId", out.job_id())
        .opt("JobTag", out.job_tag())
        .list(
            "VideoMetadata",
            out.video_metadata()
                .iter()
                .map(video_metadata_json)
                .collect(),
        )
        .list(
            "AudioMetadata",
            out.audio_metadata()
                .iter()
                .map(audio_metadata_json)
                .collect(),
        )
        .list(
            "Segments",
            out.segments().iter().map(segment_json).collect(),
        )
        .list(
            "SelectedSegmentTypes",
            out.selected_segment_types()
                .iter()
                .map(|t| {
                    Obj::default()
                        .opt("Type", t.r#type().map(|t| t.as_str()))
                        .opt("ModelVersion", t.model_version())
                        .done()
                })
                .collect(),
        )
        .done()
}

/// The fields shared by the four non-segment Get* responses (`VideoMetadata` is one object
/// there, a list only in GetSegmentDetection).
fn header(
    job_status: Option<&VideoJobStatus>,
    message: Option<&str>,
    job_id: Option<&str>,
    job_tag: Option<&str>,
    meta: Option<&VideoMetadata>,
) -> Obj {
    Obj::default()
        .opt("JobStatus", status(job_status))
        .opt("StatusMessage", message)
        .opt("JobId", job_id)
        .opt("JobTag", job_tag)
        .opt("VideoMetadata", meta.map(video_metadata_json))
}

fn label_json(d: &LabelDetection) -> Value {
    let label = d.label().map(|l| {
        Obj::default()
            .opt("Name", l.name())
            .opt("Confidence", l.confidence().map(num))
            .list(
                "Parents",
                l.parents()
                    .iter()
                    .map(|p| Obj::default().opt("Name", p.name()).done())
                    .collect(),
            )
            .list(
                "Categories",
                l.categories()
                    .iter()
                    .map(|c| Obj::default().opt("Name", c.name()).done())
                    .collect(),
            )
            .done()
    });
    Obj::default()
        .put("Timestamp", d.timestamp())
        .opt("Label", label)
        .opt("StartTimestampMillis", d.start_timestamp_millis())
        .opt("EndTimestampMillis", d.end_timestamp_millis())
        .opt("DurationMillis", d.duration_millis())
        .done()
}

pub fn labels_json(out: &GetLabelDetectionOutput) -> Value {
    header(
        out.job_status(),
        out.status_message(),
        out.job_id(),
        out.job_tag(),
        out.video_metadata(),
    )
    .opt("LabelModelVersion", out.label_model_version())
    .list("Labels", out.labels().iter().map(label_json).collect())
    .done()
}

fn face_json(d: &FaceDetection) -> Value {
    let face = d.face().map(|f| {
        Obj::default()
            .opt("BoundingBox", f.bounding_box().map(bounding_box_json))
            .opt("Confidence", f.confidence().map(num))
            .list(
                "Emotions",
                f.emotions()
                    .iter()
                    .map(|e| {
                        Obj::default()
                            .opt("Type", e.r#type().map(|t| t.as_str()))
                            .opt("Confidence", e.confidence().map(num))
                            .done()
                    })
                    .collect(),
            )
            .done()
    });
    Obj::default()
        .put("Timestamp", d.timestamp())
        .opt("Face", face)
        .done()
}

pub fn faces_json(out: &GetFaceDetectionOutput) -> Value {
    header(
        out.job_status(),
        out.status_message(),
        out.job_id(),
        out.job_tag(),
        out.video_metadata(),
    )
    .list("Faces", out.faces().iter().map(face_json).collect())
    .done()
}

fn celebrity_json(d: &CelebrityRecognition) -> Value {
    let celebrity = d.celebrity().map(|c| {
        Obj::default()
            .opt("Name", c.name())
            .opt("Id", c.id())
            .opt("Confidence", c.confidence().map(num))
            .list(
                "Urls",
                c.urls().iter().map(|u| Value::String(u.clone())).collect(),
            )
            .opt("BoundingBox", c.bounding_box().map(bounding_box_json))
            .done()
    });
    Obj::default()
        .put("Timestamp", d.timestamp())
        .opt("Celebrity", celebrity)
        .done()
}

pub fn celebrities_json(out: &GetCelebrityRecognitionOutput) -> Value {
    header(
        out.job_status(),
        out.status_message(),
        out.job_id(),
        out.job_tag(),
        out.video_metadata(),
    )
    .list(
        "Celebrities",
        out.celebrities().iter().map(celebrity_json).collect(),
    )
    .done()
}

fn moderation_label_json(d: &ContentModerationDetection) -> Value {
    let label = d.moderation_label().map(|l| {
        Obj::default()
            .opt("Name", l.name())
            .opt("Confidence", l.confidence().map(num))
            .opt("ParentName", l.parent_name())
            .opt("TaxonomyLevel", l.taxonomy_level())
            .done()
    });
    Obj::default()
        .put("Timestamp", d.timestamp())
        .opt("ModerationLabel", label)
        .opt("StartTimestampMillis", d.start_timestamp_millis())
        .opt("EndTimestampMillis", d.end_timestamp_millis())
        .opt("DurationMillis", d.duration_millis())
        .done()
}

pub fn moderation_json(out: &GetContentModerationOutput) -> Value {
    header(
        out.job_status(),
        out.status_message(),
        out.job_id(),
        out.job_tag(),
        out.video_metadata(),
    )
    .opt("ModerationModelVersion", out.moderation_model_version())
    .list(
        "ModerationLabels",
        out.moderation_labels()
            .iter()
            .map(moderation_label_json)
            .collect(),
    )
    .done()
}

#[cfg(test)]
mod tests {
    use cuepoint_core::domain::S3Uri;
    use cuepoint_core::rekognition::{
        CelebrityRecognition as CoreCelebrity, ContentModerationDetection as CoreModeration,
        FaceDetection as CoreFace, LabelDetection as CoreLabel, SegmentDetection as CoreSegments,
        CUE_BLACK_FRAMES,
    };
    use serde_json::json;

    use super::*;
    use crate::test_http::{test_clients, FakeServer, Recorded, Reply};

    /// Canned Get* responses in the API's own JSON, keyed by the JSON-1.1 target.
    fn canned(req: &Recorded) -> Reply {
        let target = req.header("x-amz-target").unwrap_or_default();
        let op = target.trim_start_matches("RekognitionService.");
        let body = match op {
            "GetSegmentDetection" => json!({
                "JobStatus": "SUCCEEDED", "JobId": "job-seg", "JobTag": "a1",
                "VideoMetadata": [{"Codec": "h264", "DurationMillis": 60000, "Format": "QuickTime / MOV", "FrameRate": 25.0, "FrameHeight": 1080, "FrameWidth": 1920, "ColorRange": "LIMITED"}],
                "AudioMetadata": [{"Codec": "aac", "DurationMillis": 60000, "SampleRate": 48000, "NumberOfChannels": 2}],
                "Segments": [
                    {"Type": "TECHNICAL_CUE", "StartTimestampMillis": 10000, "EndTimestampMillis": 12000, "DurationMillis": 2000,
                     "StartTimecodeSMPTE": "00:00:10:00", "EndTimecodeSMPTE": "00:00:12:00", "DurationSMPTE": "00:00:02:00",
                     "TechnicalCueSegment": {"Type": "BlackFrames", "Confidence": 99.9}, "StartFrameNumber": 250, "EndFrameNumber": 300, "DurationFrames": 50},
                    {"Type": "SHOT", "StartTimestampMillis": 0, "EndTimestampMillis": 9960, "DurationMillis": 9960, "ShotSegment": {"Index": 0, "Confidence": 99.1}}
                ],
                "SelectedSegmentTypes": [{"Type": "SHOT", "ModelVersion": "1.0"}],
                "NextToken": "page-2"
            }),
            "GetLabelDetection" => json!({
                "JobStatus": "SUCCEEDED", "VideoMetadata": {"Codec": "h264", "DurationMillis": 60000, "FrameRate": 29.97},
                "Labels": [{"Timestamp": 1500, "Label": {"Name": "Car", "Confidence": 87.25, "Parents": [{"Name": "Vehicle"}]}}],
                "LabelModelVersion": "3.0"
            }),
            "GetFaceDetection" => json!({
                "JobStatus": "SUCCEEDED",
                "Faces": [{"Timestamp": 2000, "Face": {"Confidence": 99.5, "BoundingBox": {"Width": 0.25, "Height": 0.5, "Left": 0.1, "Top": 0.2},
                  "Emotions": [{"Type": "HAPPY", "Confidence": 80.5}, {"Type": "CALM", "Confidence": 10.0}]}}]
            }),
            "GetCelebrityRecognition" => json!({
                "JobStatus": "SUCCEEDED",
                "Celebrities": [{"Timestamp": 3000, "Celebrity": {"Name": "Jane Doe", "Id": "abc", "Confidence": 97.0, "Urls": ["www.example.com/jane"]}}]
            }),
            "GetContentModeration" => json!({
                "JobStatus": "IN_PROGRESS",
                "ModerationLabels": [{"Timestamp": 4000, "ModerationLabel": {"Name": "Smoking", "Confidence": 75.5, "ParentName": "Drugs & Tobacco", "TaxonomyLevel": 2}}],
                "ModerationModelVersion": "7.0"
            }),
            op if op.starts_with("Start") => json!({"JobId": format!("job-{op}")}),
            other => {
                return Reply::json(
                    400,
                    &json!({"__type": "InvalidParameterException", "Message": other}).to_string(),
                )
            }
        };
        Reply::json(200, &body.to_string())
    }

    fn analyzer(server: &FakeServer) -> RekognitionAnalyzer {
        RekognitionAnalyzer::new(
            &test_clients(&server.url()),
            "arn:aws:sns:us-east-1:1:rek",
            "arn:aws:iam::1:role/rek",
        )
    }

    #[tokio::test]
    async fn segment_page_converts_to_the_api_json_core_reads() {
        let server = FakeServer::start(canned);
        let page = analyzer(&server)
            .get_page(AnalysisKind::Segments, "job-seg", Some("page-1"))
            .await
            .unwrap();
        assert_eq!(page.next_token.as_deref(), Some("page-2"));
        let sent: Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
        assert_eq!(
            sent,
            json!({"JobId": "job-seg", "MaxResults": 1000, "NextToken": "page-1"})
        );

        let b = &page.body;
        assert_eq!(
            b["Segments"][0]["TechnicalCueSegment"],
            json!({"Type": "BlackFrames", "Confidence": 99.9})
        );
        assert_eq!(b["Segments"][0]["StartTimecodeSMPTE"], "00:00:10:00");
        assert_eq!(b["Segments"][0]["DurationFrames"], 50);
        assert_eq!(
            b["Segments"][1]["ShotSegment"],
            json!({"Index": 0, "Confidence": 99.1})
        );
        assert_eq!(b["VideoMetadata"][0]["FrameRate"], 25.0);
        assert_eq!(b["AudioMetadata"][0]["NumberOfChannels"], 2);
        assert!(
            b.get("NextToken").is_none(),
            "the token travels beside the body"
        );

        let core: CoreSegments = serde_json::from_value(page.body.clone()).unwrap();
        assert_eq!(core.duration_seconds(), Some(60.0));
        assert_eq!(core.segments[0].cue_type(), Some(CUE_BLACK_FRAMES));
        assert_eq!(core.segments[0].end_timestamp_millis, 12000);
        assert_eq!(core.segments[0].duration_millis, 2000);
        assert!(core.segments[1].is_shot());
        assert_eq!(
            core.video_metadata[0].color_range.as_deref(),
            Some("LIMITED")
        );
    }

    #[tokio::test]
    async fn label_face_celebrity_and_moderation_pages_convert() {
        let server = FakeServer::start(canned);
        let a = analyzer(&server);

        let labels = a.get_page(AnalysisKind::Labels, "j", None).await.unwrap();
        assert_eq!(labels.next_token, None);
        assert_eq!(
            labels.body["VideoMetadata"]["FrameRate"], 29.97,
            "one object outside segment detection, as in the API"
        );
        let label: CoreLabel = serde_json::from_value(labels.body["Labels"][0].clone()).unwrap();
        assert_eq!(
            (
                label.timestamp,
                label.label.name.as_str(),
                label.label.confidence
            ),
            (1500, "Car", 87.25)
        );
        assert_eq!(
            labels.body["Labels"][0]["Label"]["Parents"],
            json!([{"Name": "Vehicle"}])
        );

        let faces = a.get_page(AnalysisKind::Faces, "j", None).await.unwrap();
        let face: CoreFace = serde_json::from_value(faces.body["Faces"][0].clone()).unwrap();
        assert_eq!(face.timestamp, 2000);
        assert_eq!(face.face.confidence, Some(99.5));
        let emotions = face.face.emotions.unwrap();
        assert_eq!(
            (emotions[0].emotion_type.as_str(), emotions[0].confidence),
            ("HAPPY", 80.5)
        );
        assert_eq!(faces.body["Faces"][0]["Face"]["BoundingBox"]["Width"], 0.25);

        let celebs = a
            .get_page(AnalysisKind::Celebrities, "j", None)
            .await
            .unwrap();
        let celeb: CoreCelebrity =
            serde_json::from_value(celebs.body["Celebrities"][0].clone()).unwrap();
        assert_eq!(
            (
                celeb.timestamp,
                celeb.celebrity.name.as_str(),
                celeb.celebrity.confidence
            ),
            (3000, "Jane Doe", 97.0)
        );

        let moderation = a
            .get_page(AnalysisKind::Moderation, "j", None)
            .await
            .unwrap();
        assert_eq!(moderation.body["JobStatus"], "IN_PROGRESS");
        let m: CoreModeration =
            serde_json::from_value(moderation.body["ModerationLabels"][0].clone()).unwrap();
        assert_eq!(
            (m.timestamp, m.moderation_label.name.as_str()),
            (4000, "Smoking")
        );
        assert_eq!(
            moderation.body["ModerationLabels"][0]["ModerationLabel"]["ParentName"],
            "Drugs & Tobacco"
        );

        let targets: Vec<String> = server
            .requests()
            .iter()
            .filter_map(|r| r.header("x-amz-target"))
            .collect();
        assert_eq!(
            targets,
            [
                "RekognitionService.GetLabelDetection",
                "RekognitionService.GetFaceDetection",
                "RekognitionService.GetCelebrityRecognition",
                "RekognitionService.GetContentModeration"
            ]
        );
    }

    #[tokio::test]
    async fn start_requests_carry_token_tag_channel_and_options() {
        let server = FakeServer::start(canned);
        let a = analyzer(&server);
        for kind in AnalysisKind::VIDEO {
            let request = AnalysisRequest {
                kind,
                video: S3Uri::parse("s3://out-bucket/assets/a1/proxy/my clip é.mp4").unwrap(),
                client_token: format!("a1-{kind}"),
                job_tag: "a1".into(),
            };
            assert_eq!(
                a.start(&request).await.unwrap(),
                format!("job-{}", kind.start_api())
            );
        }
        let seen = server.requests();
        assert_eq!(seen.len(), 5);
        for (req, kind) in seen.iter().zip(AnalysisKind::VIDEO) {
            assert_eq!(
                req.header("x-amz-target").unwrap(),
                format!("RekognitionService.{}", kind.start_api())
            );
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body["ClientRequestToken"], format!("a1-{kind}"));
            assert_eq!(body["JobTag"], "a1");
            assert_eq!(
                body["Video"]["S3Object"],
                json!({"Bucket": "out-bucket", "Name": "assets/a1/proxy/my clip é.mp4"})
            );
            assert_eq!(
                body["NotificationChannel"],
                json!({"SNSTopicArn": "arn:aws:sns:us-east-1:1:rek", "RoleArn": "arn:aws:iam::1:role/rek"})
            );
            match kind {
                AnalysisKind::Segments => {
                    assert_eq!(body["SegmentTypes"], json!(["TECHNICAL_CUE", "SHOT"]))
                }
                AnalysisKind::Faces => assert_eq!(body["FaceAttributes"], "ALL"),
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn start_without_a_notification_channel_is_refused() {
        let server = FakeServer::start(canned);
        let a = RekognitionAnalyzer::new(&test_clients(&server.url()), "", "");
        let request = AnalysisRequest {
            kind: AnalysisKind::Labels,
            video: S3Uri::parse("s3://b-1/k.mp4").unwrap(),
            client_token: "t".into(),
            job_tag: "a1".into(),
        };
        assert!(matches!(
            a.start(&request).await,
            Err(PortError::Permanent(_))
        ));
        assert!(server.requests().is_empty());
    }

    #[test]
    fn floats_keep_their_decimal_form() {
        assert_eq!(num(99.9), json!(99.9));
        assert_eq!(num(0.1), json!(0.1));
        assert_eq!(num(f32::NAN), Value::Null);
    }
}
