//! Classify a queue message body into the event it carries.
//!
//! Shapes recognised, as they appear in an SQS message body:
//! - an EventBridge envelope (`source` + `detail-type` + `detail`): `aws.s3`, `aws.mediaconvert`,
//!   `aws.transcribe`, `cuepoint.pipeline`;
//! - the S3 notification form `{"Records": [...]}` and its `s3:TestEvent`;
//! - a Rekognition Video completion, raw or inside an SNS `Notification` envelope (any of the
//!   above inside an SNS envelope is unwrapped the same way).

use serde_json::Value;

use super::envelope::EventBridgeEvent;
use super::mediaconvert::{self, JobStateChange};
use super::pipeline::{PipelineEvent, PIPELINE_SOURCE};
use super::rekognition::{self, VideoJobCompletion, SNS_NOTIFICATION};
use super::s3::{self, ObjectCreated};
use super::transcribe::{self, TranscriptionJobStateChange};

/// What a queue message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    S3ObjectCreated(ObjectCreated),
    MediaConvert(JobStateChange),
    Rekognition(VideoJobCompletion),
    Transcribe(TranscriptionJobStateChange),
    Pipeline(PipelineEvent),
    /// A well-formed event that needs no action (MediaConvert PROGRESSING, s3:TestEvent, ...).
    Ignored {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("unrecognised event shape: {0}")]
    UnknownShape(String),
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
}

/// Parse one SQS message body. A body may carry several events (S3 notification `Records`).
pub fn parse_message(body: &str) -> Result<Vec<Inbound>, InboundError> {
    let v: Value = serde_json::from_str(body).map_err(|e| InboundError::NotJson(e.to_string()))?;
    classify(&v, None)
}

/// `sns_message_id` is `Some` when `v` came out of an SNS envelope (which is never nested).
fn classify(v: &Value, sns_message_id: Option<String>) -> Result<Vec<Inbound>, InboundError> {
    let Value::Object(obj) = v else {
        return Err(InboundError::UnknownShape(format!(
            "a JSON {}, expected an object",
            kind_of(v)
        )));
    };

    if sns_message_id.is_none() && obj.contains_key("TopicArn") {
        if let Some(Value::String(t)) = obj.get("Type") {
            return from_sns(v, t);
        }
    }

    if obj.contains_key("detail-type") && obj.contains_key("source") {
        return from_eventbridge(v).map(|i| vec![i]);
    }

    if let Some(records) = obj.get("Records") {
        let Value::Array(records) = records else {
            return Err(InboundError::Invalid {
                what: "S3 notification",
                why: format!("Records is {records}, expected an array"),
            });
        };
        return s3::from_records(records);
    }

    if obj.get("Event").and_then(Value::as_str) == Some(s3::TEST_EVENT) {
        let bucket = obj.get("Bucket").and_then(Value::as_str).unwrap_or("?");
        return Ok(vec![Inbound::Ignored {
            reason: format!("S3 test event for bucket {bucket}"),
        }]);
    }

    if rekognition::is_completion(v) {
        return Ok(vec![Inbound::Rekognition(rekognition::from_value(
            v,
            sns_message_id,
        )?)]);
    }

    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let shown = keys.iter().take(12).copied().collect::<Vec<_>>().join(", ");
    let more = if keys.len() > 12 {
        format!(", ... ({} keys)", keys.len())
    } else {
        String::new()
    };
    let inside = if sns_message_id.is_some() {
        " inside an SNS notification"
    } else {
        ""
    };
    Err(InboundError::UnknownShape(format!(
        "JSON object{inside} with keys [{shown}{more}]"
    )))
}

fn from_sns(v: &Value, msg_type: &str) -> Result<Vec<Inbound>, InboundError> {
    const WHAT: &str = "SNS notification";
    let topic = req_str(v, "TopicArn", WHAT)?;
    if msg_type != SNS_NOTIFICATION {
        // SubscriptionConfirmation / UnsubscribeConfirmation reach a queue subscribed across accounts.
        return Ok(vec![Inbound::Ignored {
            reason: format!("SNS {msg_type} from {topic}"),
        }]);
    }
    let id = req_str(v, "MessageId", WHAT)?.to_string();
    let message = req_str(v, "Message", WHAT)?;
    let inner: Value = serde_json::from_str(message).map_err(|e| {
        InboundError::UnknownShape(format!(
            "SNS notification {id} from {topic} whose Message is not JSON ({e})"
        ))
    })?;
    classify(&inner, Some(id))
}

fn from_eventbridge(v: &Value) -> Result<Inbound, InboundError> {
    let ev: EventBridgeEvent<Value> =
        serde_json::from_value(v.clone()).map_err(|e| InboundError::Invalid {
            what: "EventBridge event",
            why: e.to_string(),
        })?;
    match ev.source.as_str() {
        s3::SOURCE => s3::from_eventbridge(&ev),
        mediaconvert::SOURCE => mediaconvert::from_eventbridge(&ev),
        transcribe::SOURCE => transcribe::from_eventbridge(&ev),
        PIPELINE_SOURCE => PipelineEvent::from_envelope(&ev)
            .map(Inbound::Pipeline)
            .map_err(|e| InboundError::Invalid {
                what: "pipeline event",
                why: e.to_string(),
            }),
        other => Err(InboundError::UnknownShape(format!(
            "EventBridge event with source {other:?} and detail-type {:?}",
            ev.detail_type
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// Field readers shared by the event modules: each error names the field and what holds it.

pub(crate) fn req_str<'a>(
    v: &'a Value,
    key: &str,
    what: &'static str,
) -> Result<&'a str, InboundError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(InboundError::Invalid {
            what,
            why: format!("{key} is missing"),
        }),
        Some(other) => Err(InboundError::Invalid {
            what,
            why: format!("{key} is {other}, expected a string"),
        }),
    }
}

pub(crate) fn req_obj<'a>(
    v: &'a Value,
    key: &str,
    what: &'static str,
) -> Result<&'a Value, InboundError> {
    match v.get(key) {
        Some(o @ Value::Object(_)) => Ok(o),
        None | Some(Value::Null) => Err(InboundError::Invalid {
            what,
            why: format!("{key} is missing"),
        }),
        Some(other) => Err(InboundError::Invalid {
            what,
            why: format!("{key} is {other}, expected an object"),
        }),
    }
}

/// Absent or `null` is `None`; anything but a string is an error.
pub(crate) fn opt_str(
    v: &Value,
    key: &str,
    what: &'static str,
) -> Result<Option<String>, InboundError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(InboundError::Invalid {
            what,
            why: format!("{key} is {other}, expected a string"),
        }),
    }
}

/// Absent or `null` is `None`; anything but a non-negative integer is an error.
pub(crate) fn opt_u64(
    v: &Value,
    key: &str,
    what: &'static str,
) -> Result<Option<u64>, InboundError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_u64().map(Some).ok_or_else(|| InboundError::Invalid {
            what,
            why: format!("{key} is {n}, expected a non-negative integer"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::domain::{AssetId, BucketName, ObjectKey, S3Uri};
    use crate::events::mediaconvert::{
        job_state_change_entry, JobState, OutputGroupDetail, VideoDetails,
    };
    use crate::events::pipeline::PipelineDetail;
    use crate::events::rekognition::{completion_message, sns_envelope};
    use crate::events::s3::object_created_entry;
    use crate::rekognition::AnalysisKind;
    use crate::timefmt::rfc3339_seconds;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../../tests/fixtures/events/", $name))
        };
    }

    fn one(body: &str) -> Inbound {
        let mut v = parse_message(body).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    fn ignored(i: Inbound) -> String {
        match i {
            Inbound::Ignored { reason } => reason,
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    fn created(i: Inbound) -> ObjectCreated {
        match i {
            Inbound::S3ObjectCreated(o) => o,
            other => panic!("expected S3ObjectCreated, got {other:?}"),
        }
    }

    fn job(i: Inbound) -> JobStateChange {
        match i {
            Inbound::MediaConvert(j) => j,
            other => panic!("expected MediaConvert, got {other:?}"),
        }
    }

    fn rek(i: Inbound) -> VideoJobCompletion {
        match i {
            Inbound::Rekognition(r) => r,
            other => panic!("expected Rekognition, got {other:?}"),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    // ---- S3 ----

    #[test]
    fn s3_eventbridge_object_created_doc_example() {
        let o = created(one(fixture!("s3-eventbridge-object-created.json")));
        assert_eq!(
            o,
            ObjectCreated {
                bucket: BucketName::parse("amzn-s3-demo-bucket1").unwrap(),
                key: ObjectKey::parse("example-key").unwrap(),
                size: Some(5),
                etag: s("b1946ac92492d2347c6235b4d2611184"),
                version_id: s("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"),
                sequencer: s("617f08299329d189"),
                event_time: s("2021-11-12T00:00:00Z"),
                reason: s("PutObject"),
            }
        );
        let src = o.source_object();
        assert_eq!(
            src.uri().to_string(),
            "s3://amzn-s3-demo-bucket1/example-key"
        );
        assert_eq!(
            src.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
    }

    #[test]
    fn s3_eventbridge_multipart_key_is_decoded() {
        let o = created(one(fixture!(
            "s3-eventbridge-object-created-multipart.json"
        )));
        assert_eq!(
            o,
            ObjectCreated {
                bucket: BucketName::parse("cuepoint-ingest").unwrap(),
                key: ObjectKey::parse("masters/My Show S01E01 (1).mxf").unwrap(),
                size: Some(198_524_144),
                etag: s("4af981f98d22a0b9979da24b259e5e42-12"),
                version_id: None,
                sequencer: s("0064D3901D00059242"),
                event_time: s("2026-11-22T05:37:28Z"),
                reason: s("CompleteMultipartUpload"),
            }
        );
    }

    #[test]
    fn s3_eventbridge_object_deleted_is_ignored() {
        let r = ignored(one(fixture!("s3-eventbridge-object-deleted.json")));
        assert!(r.contains("Object Deleted"), "{r}");
    }

    #[test]
    fn s3_notification_doc_example() {
        let o = created(one(fixture!("s3-notification-put.json")));
        assert_eq!(
            o,
            ObjectCreated {
                bucket: BucketName::parse("mybucket").unwrap(),
                key: ObjectKey::parse("HappyFace.jpg").unwrap(),
                size: Some(1024),
                etag: s("d41d8cd98f00b204e9800998ecf8427e"),
                version_id: s("096fKKXTRTtl3on89fVO.nfljtsv6qko"),
                sequencer: s("0055AED6DCD90281E5"),
                event_time: s("1970-01-01T00:00:00.000Z"),
                reason: s("PutObject"),
            }
        );
    }

    #[test]
    fn s3_notification_with_several_records() {
        let all = parse_message(fixture!("s3-notification-mixed.json")).unwrap();
        assert_eq!(all.len(), 3);
        let mut it = all.into_iter();
        let first = created(it.next().unwrap());
        assert_eq!(
            first,
            ObjectCreated {
                bucket: BucketName::parse("cuepoint-ingest").unwrap(),
                key: ObjectKey::parse("masters/café +1/cut.mov").unwrap(),
                size: Some(7_340_032_000),
                etag: s("0d1f2a8c3b4e5f60718293a4b5c6d7e8-834"),
                version_id: None, // `"versionId": null` on an unversioned bucket
                sequencer: s("0066A1B2C3D4E5F601"),
                event_time: s("2026-11-22T05:37:28.123Z"),
                reason: s("CompleteMultipartUpload"),
            }
        );
        let second = created(it.next().unwrap());
        assert_eq!(second.key.as_str(), "masters/promo.mp4");
        assert_eq!(second.reason.as_deref(), Some("CopyObject"));
        assert_eq!(second.version_id, None);
        let third = ignored(it.next().unwrap());
        assert!(
            third.contains("ObjectRemoved:Delete") && third.contains("masters/old+cut.mov"),
            "{third}"
        );
    }

    #[test]
    fn s3_test_event_is_ignored() {
        let r = ignored(one(fixture!("s3-test-event.json")));
        assert!(r.contains("bucketname"), "{r}");
    }

    #[test]
    fn s3_percent_encoded_keys_as_moto_sends_them() {
        let body = json!({"Records": [{
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-01-01T00:00:00.000Z",
            "s3": {"bucket": {"name": "ingest"}, "object": {"key": "up%2Fx%20y.mp4", "size": 3}}
        }]});
        let o = created(one(&body.to_string()));
        assert_eq!(o.key.as_str(), "up/x y.mp4");
        assert_eq!(o.etag, None);
    }

    #[test]
    fn s3_bad_fields_are_invalid() {
        let mut v: Value =
            serde_json::from_str(fixture!("s3-eventbridge-object-created.json")).unwrap();
        v["detail"]["bucket"]["name"] = json!("Not_A_Bucket");
        assert!(matches!(
            parse_message(&v.to_string()),
            Err(InboundError::Invalid {
                what: "S3 bucket name",
                ..
            })
        ));
        v["detail"]["bucket"]["name"] = json!("ok-bucket");
        v["detail"]["object"]["key"] = json!("%FF");
        assert!(matches!(
            parse_message(&v.to_string()),
            Err(InboundError::Invalid {
                what: "S3 object key",
                ..
            })
        ));
        v["detail"]["object"]["key"] = json!("k");
        v["detail"]["object"]["size"] = json!("5");
        let e = parse_message(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
        v["detail"]["object"] = json!(null);
        let e = parse_message(&v.to_string()).unwrap_err();
        assert_eq!(
            e,
            InboundError::Invalid {
                what: "S3 Object Created event",
                why: "object is missing".into()
            }
        );
    }

    #[test]
    fn s3_object_created_round_trips_through_the_bus() {
        let mut o = ObjectCreated::new(
            BucketName::parse("cuepoint-ingest").unwrap(),
            ObjectKey::parse("masters/Ep 1 + café (final).mxf").unwrap(),
        );
        o.size = Some(123_456_789);
        o.etag = s("5d41402abc4b2a76b9719d911017c592");
        o.version_id = s("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
        o.sequencer = s("0055AED6DCD90281E5");
        o.reason = s("PutObject");
        let ms = 1_795_325_848_000;
        o.event_time = Some(rfc3339_seconds(ms));
        let env = object_created_entry(&o, Some(ms))
            .into_envelope(
                "id-1".into(),
                "111122223333",
                "us-west-2",
                rfc3339_seconds(ms),
            )
            .unwrap();
        assert_eq!(created(one(&serde_json::to_string(&env).unwrap())), o);
        // the bare minimum too
        let mut bare = ObjectCreated::new(o.bucket.clone(), o.key.clone());
        let env = object_created_entry(&bare, None)
            .into_envelope("id-2".into(), "a", "r", String::new())
            .unwrap();
        bare.event_time = None;
        assert_eq!(created(one(&serde_json::to_string(&env).unwrap())), bare);
    }

    // ---- MediaConvert ----

    #[test]
    fn mediaconvert_complete_file_group_doc_example() {
        let j = job(one(fixture!("mediaconvert-complete-file-group.json")));
        assert_eq!(
            j,
            JobStateChange {
                job_id: "1536964333549-opn151".into(),
                state: JobState::Complete,
                queue: s("arn:aws:mediaconvert:us-west-2:111122223333:queues/Default"),
                user_metadata: BTreeMap::new(),
                output_group_details: vec![OutputGroupDetail {
                    output_group_type: s("FILE_GROUP"),
                    output_file_paths: vec!["s3://amzn-s3-demo-bucket/file/file.mp4".into()],
                    playlist_file_paths: vec![],
                    duration_ms: Some(180_041),
                    video: Some(VideoDetails {
                        width_px: Some(1280),
                        height_px: Some(720),
                        average_bitrate: Some(200_000)
                    }),
                }],
                error_code: None,
                error_message: None,
                timestamp_ms: Some(1_536_964_380_391),
            }
        );
        assert_eq!(j.hls_playlist(), None);
    }

    #[test]
    fn mediaconvert_complete_hls_doc_example() {
        let j = job(one(fixture!("mediaconvert-complete-hls.json")));
        assert_eq!(j.job_id, "1536964333549-opn151");
        assert_eq!(j.state, JobState::Complete);
        assert_eq!(j.timestamp_ms, Some(1_536_964_380_391));
        assert_eq!(
            j.output_group_details,
            vec![OutputGroupDetail {
                output_group_type: s("HLS_GROUP"),
                output_file_paths: vec![
                    "s3://amzn-s3-demo-bucket/hls/mainv2.m3u8".into(),
                    "s3://amzn-s3-demo-bucket/hls/mainv1.m3u8".into()
                ],
                playlist_file_paths: vec!["s3://amzn-s3-demo-bucket/hls/main.m3u8".into()],
                duration_ms: Some(180_041),
                video: Some(VideoDetails {
                    width_px: Some(426),
                    height_px: Some(240),
                    average_bitrate: None
                }),
            }]
        );
        assert_eq!(
            j.hls_playlist(),
            Some("s3://amzn-s3-demo-bucket/hls/main.m3u8")
        );
        assert_eq!(j.output_file_paths().count(), 2);
    }

    #[test]
    fn mediaconvert_complete_of_a_cuepoint_job() {
        let j = job(one(fixture!("mediaconvert-complete-cuepoint.json")));
        assert_eq!(j.job_id, "1795325848000-k3x9ab");
        assert_eq!(j.user("workflow"), Some("cuepoint"));
        assert_eq!(j.user("assetId"), Some("a0123456789abcdef0123"));
        assert_eq!(j.user("audioTracks"), Some("2"));
        assert_eq!(j.user_metadata.len(), 3);
        assert_eq!(j.output_group_details.len(), 3);
        let base = "s3://cuepoint-media/assets/a0123456789abcdef0123";
        assert_eq!(
            j.hls_playlist(),
            Some(format!("{base}/hls/index.m3u8").as_str())
        );
        assert_eq!(
            j.output_file_paths().collect::<Vec<_>>(),
            vec![
                format!("{base}/hls/index_main.m3u8"),
                format!("{base}/proxy/proxy.mp4"),
                format!("{base}/audio/audio_240p.mp4")
            ]
        );
        assert_eq!(
            j.output_group_details[1].video.as_ref().unwrap().width_px,
            Some(640)
        );
        assert!(j
            .output_group_details
            .iter()
            .all(|g| g.duration_ms == Some(600_000)));
    }

    #[test]
    fn mediaconvert_error_doc_example() {
        let j = job(one(fixture!("mediaconvert-error.json")));
        assert_eq!(
            j,
            JobStateChange {
                job_id: "1515368087458-qnoxtd".into(),
                state: JobState::Error,
                queue: s("arn:aws:mediaconvert:us-west-2:111122223333:queues/Default"),
                user_metadata: BTreeMap::new(),
                output_group_details: vec![],
                error_code: Some(1040),
                error_message: s("Example error message"),
                timestamp_ms: Some(1_515_368_120_764),
            }
        );
    }

    #[test]
    fn mediaconvert_other_statuses_are_ignored() {
        let r = ignored(one(fixture!("mediaconvert-progressing.json")));
        assert!(
            r.contains("1671477617078-2886ye") && r.contains("PROGRESSING"),
            "{r}"
        );
        let r = ignored(one(fixture!("mediaconvert-status-update.json")));
        assert!(r.contains("STATUS_UPDATE"), "{r}");
        let mut v: Value = serde_json::from_str(fixture!("mediaconvert-progressing.json")).unwrap();
        for status in [
            "SUBMITTED",
            "INPUT_INFORMATION",
            "NEW_WARNING",
            "QUEUE_HOP",
            "CANCELED",
        ] {
            v["detail"]["status"] = json!(status);
            assert!(ignored(one(&v.to_string())).contains(status));
        }
    }

    #[test]
    fn mediaconvert_bad_fields_are_invalid() {
        let mut v: Value = serde_json::from_str(fixture!("mediaconvert-error.json")).unwrap();
        v["detail"]["errorCode"] = json!("1040");
        let e = parse_message(&v.to_string()).unwrap_err();
        assert!(
            matches!(&e, InboundError::Invalid { what: "MediaConvert Job State Change", why } if why.contains("errorCode")),
            "{e}"
        );
        v["detail"]["errorCode"] = json!(1040);
        v["detail"]["userMetadata"] = json!({"workflow": 3});
        let e = parse_message(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("userMetadata.workflow"), "{e}");
        v["detail"].as_object_mut().unwrap().remove("jobId");
        assert_eq!(
            parse_message(&v.to_string()).unwrap_err(),
            InboundError::Invalid {
                what: "MediaConvert Job State Change",
                why: "jobId is missing".into()
            }
        );
        let mut v: Value =
            serde_json::from_str(fixture!("mediaconvert-complete-hls.json")).unwrap();
        v["detail"]["outputGroupDetails"][0]["outputDetails"][1]["outputFilePaths"] = json!([7]);
        let e = parse_message(&v.to_string()).unwrap_err();
        assert!(
            e.to_string()
                .contains("outputGroupDetails[0].outputDetails[1].outputFilePaths"),
            "{e}"
        );
    }

    #[test]
    fn mediaconvert_unknown_detail_type_is_unknown() {
        let mut v: Value = serde_json::from_str(fixture!("mediaconvert-error.json")).unwrap();
        v["detail-type"] = json!("MediaConvert Queue Change");
        let e = parse_message(&v.to_string()).unwrap_err();
        assert!(
            matches!(&e, InboundError::UnknownShape(m) if m.contains("MediaConvert Queue Change")),
            "{e}"
        );
    }

    #[test]
    fn mediaconvert_job_state_changes_round_trip() {
        let mut meta = BTreeMap::new();
        meta.insert("workflow".to_string(), "cuepoint".to_string());
        meta.insert("assetId".to_string(), "a0123456789abcdef0123".to_string());
        let complete = JobStateChange {
            job_id: "1795325848000-k3x9ab".into(),
            state: JobState::Complete,
            queue: s("arn:aws:mediaconvert:us-west-2:111122223333:queues/Default"),
            user_metadata: meta.clone(),
            output_group_details: vec![
                OutputGroupDetail {
                    output_group_type: s("HLS_GROUP"),
                    output_file_paths: vec!["s3://m/a/hls/index_main.m3u8".into()],
                    playlist_file_paths: vec!["s3://m/a/hls/index.m3u8".into()],
                    duration_ms: Some(600_000),
                    video: Some(VideoDetails {
                        width_px: Some(1920),
                        height_px: Some(1080),
                        average_bitrate: None,
                    }),
                },
                OutputGroupDetail {
                    output_group_type: s("FILE_GROUP"),
                    output_file_paths: vec![
                        "s3://m/a/proxy/proxy.mp4".into(),
                        "s3://m/a/proxy/other.mp4".into(),
                    ],
                    playlist_file_paths: vec![],
                    duration_ms: None,
                    video: None,
                },
            ],
            error_code: None,
            error_message: None,
            timestamp_ms: Some(1_795_326_448_123),
        };
        let error = JobStateChange {
            state: JobState::Error,
            output_group_details: vec![],
            error_code: Some(1010),
            error_message: s("Couldn't read input: no video stream"),
            ..complete.clone()
        };
        for j in [complete, error] {
            let entry = job_state_change_entry(&j, "111122223333", "us-west-2");
            assert_eq!(entry.source, "aws.mediaconvert");
            assert_eq!(entry.detail_type, "MediaConvert Job State Change");
            assert_eq!(
                entry.resources,
                vec![format!(
                    "arn:aws:mediaconvert:us-west-2:111122223333:jobs/{}",
                    j.job_id
                )]
            );
            assert_eq!(entry.time_ms, j.timestamp_ms);
            let detail: Value = serde_json::from_str(&entry.detail).unwrap();
            assert_eq!(detail["accountId"], "111122223333");
            assert_eq!(detail["status"], j.state.as_status());
            assert_eq!(
                detail.get("outputGroupDetails").is_some(),
                j.state == JobState::Complete
            );
            assert_eq!(
                detail.get("errorCode").is_some(),
                j.state == JobState::Error
            );
            let env = entry
                .into_envelope(
                    "e".into(),
                    "111122223333",
                    "us-west-2",
                    "2026-11-22T05:47:28Z".into(),
                )
                .unwrap();
            assert_eq!(job(one(&serde_json::to_string(&env).unwrap())), j);
        }
    }

    #[test]
    fn mediaconvert_entry_defaults_the_queue_like_aws() {
        let j = JobStateChange {
            job_id: "1-a".into(),
            state: JobState::Error,
            queue: None,
            user_metadata: BTreeMap::new(),
            output_group_details: vec![],
            error_code: None,
            error_message: None,
            timestamp_ms: None,
        };
        let d: Value =
            serde_json::from_str(&job_state_change_entry(&j, "000000000000", "eu-west-1").detail)
                .unwrap();
        assert_eq!(
            d,
            json!({"accountId": "000000000000", "queue": "arn:aws:mediaconvert:eu-west-1:000000000000:queues/Default",
                   "jobId": "1-a", "status": "ERROR", "userMetadata": {}})
        );
    }

    // ---- Rekognition ----

    #[test]
    fn rekognition_doc_example_raw() {
        let r = rek(one(fixture!("rekognition-label-detection-raw.json")));
        assert_eq!(
            r,
            VideoJobCompletion {
                job_id: "6de014b0-2121-4bf0-9e31-856a18719e22".into(),
                status: "SUCCEEDED".into(),
                api: "LABEL_DETECTION".into(),
                job_tag: None,
                timestamp_ms: Some(1_502_230_160_926),
                video_bucket: s("amzn-s3-demo-bucket"),
                video_key: s("video.mpg"),
                sns_message_id: None,
            }
        );
        assert_eq!(r.kind(), Some(AnalysisKind::Labels));
        assert!(r.succeeded());
    }

    #[test]
    fn rekognition_through_sns() {
        let r = rek(one(fixture!("rekognition-segments-sns.json")));
        assert_eq!(
            r,
            VideoJobCompletion {
                job_id: "2a1b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b".into(),
                status: "SUCCEEDED".into(),
                api: "StartSegmentDetection".into(),
                job_tag: s("a0123456789abcdef0123-segments"),
                timestamp_ms: Some(1_795_326_612_345),
                video_bucket: s("cuepoint-media"),
                video_key: s("assets/a0123456789abcdef0123/proxy/proxy.mp4"),
                sns_message_id: s("63a3f6b6-d533-4a47-aef9-fcf5cf758c76"),
            }
        );
        assert_eq!(r.kind(), Some(AnalysisKind::Segments));
        // the same notification with raw message delivery
        let env: Value = serde_json::from_str(fixture!("rekognition-segments-sns.json")).unwrap();
        let raw = rek(one(env["Message"].as_str().unwrap()));
        assert_eq!(
            raw,
            VideoJobCompletion {
                sns_message_id: None,
                ..r
            }
        );
    }

    #[test]
    fn rekognition_failed_raw() {
        let r = rek(one(fixture!("rekognition-celebrities-failed-raw.json")));
        assert_eq!(r.status, "FAILED");
        assert!(!r.succeeded());
        assert_eq!(r.kind(), Some(AnalysisKind::Celebrities));
        assert_eq!(
            r.job_tag.as_deref(),
            Some("a0123456789abcdef0123-celebrities")
        );
        assert_eq!(r.timestamp_ms, Some(1_795_326_700_000));
        assert_eq!(
            r.video_key.as_deref(),
            Some("assets/a0123456789abcdef0123/proxy/proxy.mp4")
        );
        assert_eq!(r.video_bucket.as_deref(), Some("cuepoint-media"));
        assert_eq!(r.sns_message_id, None);
    }

    #[test]
    fn rekognition_round_trips_raw_and_wrapped() {
        let c = VideoJobCompletion {
            job_id: "job-1".into(),
            status: "SUCCEEDED".into(),
            api: AnalysisKind::Moderation.start_api().into(),
            job_tag: s("a1-moderation"),
            timestamp_ms: Some(1_795_326_700_001),
            video_bucket: s("media-bucket"),
            video_key: s("assets/a1/proxy/proxy.mp4"),
            sns_message_id: None,
        };
        let msg = completion_message(&c);
        assert_eq!(rek(one(&msg)), c);
        let wrapped = sns_envelope(
            &msg,
            "arn:aws:sns:us-east-1:000000000000:rekognition",
            "m-1",
            "2026-11-22T05:37:28.000Z",
        );
        assert_eq!(
            rek(one(&wrapped)),
            VideoJobCompletion {
                sns_message_id: s("m-1"),
                ..c.clone()
            }
        );
        let minimal = VideoJobCompletion {
            job_tag: None,
            timestamp_ms: None,
            video_bucket: None,
            video_key: None,
            ..c
        };
        assert_eq!(rek(one(&completion_message(&minimal))), minimal);
    }

    #[test]
    fn rekognition_bad_fields_are_invalid() {
        let e = parse_message(r#"{"JobId": "j", "Status": 1, "API": "StartLabelDetection"}"#)
            .unwrap_err();
        assert_eq!(
            e,
            InboundError::Invalid {
                what: "Rekognition completion notification",
                why: "Status is 1, expected a string".into()
            }
        );
        let e = parse_message(r#"{"JobId": "j", "Status": "FAILED", "API": "x", "Timestamp": -1}"#)
            .unwrap_err();
        assert!(e.to_string().contains("Timestamp"), "{e}");
    }

    // ---- Transcribe ----

    fn transcribe(i: Inbound) -> TranscriptionJobStateChange {
        match i {
            Inbound::Transcribe(t) => t,
            other => panic!("expected Transcribe, got {other:?}"),
        }
    }

    #[test]
    fn transcribe_doc_shape_completed_and_failed() {
        use crate::events::transcribe::TranscriptionState;
        let t = transcribe(one(fixture!("transcribe-job-completed.json")));
        assert_eq!(
            t,
            TranscriptionJobStateChange {
                job_name: "cuepoint-a0123456789abcdef0123".into(),
                state: TranscriptionState::Completed,
                failure_reason: None,
            }
        );
        assert!(t.succeeded());
        let f = transcribe(one(fixture!("transcribe-job-failed.json")));
        assert_eq!(f.state, TranscriptionState::Failed);
        assert!(!f.succeeded());
        assert_eq!(f.job_name, "cuepoint-a0123456789abcdef0123");
        assert_eq!(
            crate::events::transcribe::asset_of(&f.job_name, "cuepoint")
                .unwrap()
                .as_str(),
            "a0123456789abcdef0123"
        );
    }

    #[test]
    fn transcribe_other_statuses_and_event_types_are_ignored() {
        let mut v: Value = serde_json::from_str(fixture!("transcribe-job-completed.json")).unwrap();
        v["detail"]["TranscriptionJobStatus"] = json!("IN_PROGRESS");
        assert!(ignored(one(&v.to_string())).contains("IN_PROGRESS"));
        v["detail-type"] = json!("Language Identification State Change");
        assert!(ignored(one(&v.to_string())).contains("Language Identification"));
    }

    #[test]
    fn transcribe_bad_fields_are_invalid() {
        let mut v: Value = serde_json::from_str(fixture!("transcribe-job-completed.json")).unwrap();
        v["detail"]["TranscriptionJobStatus"] = json!(3);
        let e = parse_message(&v.to_string()).unwrap_err();
        assert_eq!(
            e,
            InboundError::Invalid {
                what: "Transcribe Job State Change",
                why: "TranscriptionJobStatus is 3, expected a string".into()
            }
        );
        v["detail"] = json!({"TranscriptionJobStatus": "COMPLETED"});
        assert!(parse_message(&v.to_string())
            .unwrap_err()
            .to_string()
            .contains("TranscriptionJobName is missing"));
    }

    #[test]
    fn transcribe_round_trips_through_the_bus() {
        use crate::events::transcribe::{job_state_change_entry, TranscriptionState};
        for (state, reason) in [
            (TranscriptionState::Completed, None),
            (TranscriptionState::Failed, s("no speech model")),
        ] {
            let c = TranscriptionJobStateChange {
                job_name: "cuepoint-a1".into(),
                state,
                failure_reason: reason,
            };
            let entry = job_state_change_entry(&c, Some(1_795_326_700_000));
            assert_eq!(entry.source, "aws.transcribe");
            assert_eq!(entry.detail_type, "Transcribe Job State Change");
            let env = entry
                .into_envelope("e".into(), "111122223333", "us-west-2", "t".into())
                .unwrap();
            assert_eq!(transcribe(one(&serde_json::to_string(&env).unwrap())), c);
        }
    }

    // ---- SNS ----

    #[test]
    fn sns_wrapping_anything_unwraps_once() {
        let s3 = fixture!("s3-notification-put.json");
        let wrapped = sns_envelope(s3, "arn:aws:sns:us-east-1:1:s3-events", "m", "t");
        assert_eq!(parse_message(&wrapped).unwrap(), parse_message(s3).unwrap());
        let twice = sns_envelope(&wrapped, "arn:aws:sns:us-east-1:1:x", "m2", "t");
        assert!(
            matches!(parse_message(&twice), Err(InboundError::UnknownShape(m)) if m.contains("inside an SNS notification"))
        );
        let not_json = sns_envelope("hello", "arn:aws:sns:us-east-1:1:x", "m3", "t");
        assert!(
            matches!(parse_message(&not_json), Err(InboundError::UnknownShape(m)) if m.contains("m3") && m.contains("not JSON"))
        );
        let confirm = json!({"Type": "SubscriptionConfirmation", "MessageId": "x", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                             "Message": "You have chosen to subscribe", "SubscribeURL": "https://example.invalid/"});
        assert!(ignored(one(&confirm.to_string())).contains("SubscriptionConfirmation"));
    }

    // ---- pipeline ----

    #[test]
    fn pipeline_fixtures() {
        let id = AssetId::parse("a0123456789abcdef0123").unwrap();
        let proxy =
            S3Uri::parse("s3://cuepoint-media/assets/a0123456789abcdef0123/proxy/proxy.mp4")
                .unwrap();
        assert_eq!(
            one(fixture!("pipeline-media-prepared.json")),
            Inbound::Pipeline(PipelineEvent::new(
                id.clone(),
                PipelineDetail::MediaPrepared { proxy }
            ))
        );
        assert_eq!(
            one(fixture!("pipeline-analyses-completed.json")),
            Inbound::Pipeline(PipelineEvent::new(
                id.clone(),
                PipelineDetail::AnalysesCompleted
            ))
        );
        let vmap = S3Uri::parse("s3://cuepoint-media/assets/a0123456789abcdef0123/ad_breaks.vmap")
            .unwrap();
        assert_eq!(
            one(fixture!("pipeline-asset-completed.json")),
            Inbound::Pipeline(PipelineEvent::new(
                id.clone(),
                PipelineDetail::AssetCompleted {
                    vmap,
                    breaks: 4,
                    version: 1
                }
            ))
        );
        // through the bus
        let ev = PipelineEvent::new(
            id,
            PipelineDetail::TranscodeSubmitted {
                job_id: "1-x".into(),
            },
        );
        let env = ev
            .to_entry(None)
            .into_envelope("i".into(), "a", "r", "t".into())
            .unwrap();
        assert_eq!(
            one(&serde_json::to_string(&env).unwrap()),
            Inbound::Pipeline(ev)
        );
    }

    #[test]
    fn pipeline_mismatch_is_invalid() {
        let mut v: Value = serde_json::from_str(fixture!("pipeline-media-prepared.json")).unwrap();
        v["detail-type"] = json!("Asset Completed");
        assert!(matches!(
            parse_message(&v.to_string()),
            Err(InboundError::Invalid {
                what: "pipeline event",
                ..
            })
        ));
    }

    // ---- anything else ----

    #[test]
    fn unknown_shapes_name_what_was_seen() {
        let e = parse_message(fixture!("ec2-state-change.json")).unwrap_err();
        assert_eq!(
            e,
            InboundError::UnknownShape(
                "EventBridge event with source \"aws.ec2\" and detail-type \"EC2 Instance State-change Notification\""
                    .into()
            )
        );
        let e = parse_message(r#"{"hello": 1, "world": [2]}"#).unwrap_err();
        assert_eq!(
            e,
            InboundError::UnknownShape("JSON object with keys [hello, world]".into())
        );
        let e = parse_message("[1, 2]").unwrap_err();
        assert_eq!(
            e,
            InboundError::UnknownShape("a JSON array, expected an object".into())
        );
        let e = parse_message(r#"{"Records": [{"eventSource": "aws:sqs"}]}"#).unwrap_err();
        assert!(
            matches!(&e, InboundError::UnknownShape(m) if m.contains("aws:sqs")),
            "{e}"
        );
        let e =
            parse_message(r#"{"source": "aws.s3", "detail-type": "Object Created"}"#).unwrap_err();
        assert!(
            matches!(&e, InboundError::Invalid { what: "EventBridge event", why } if why.contains("detail")),
            "{e}"
        );
    }

    #[test]
    fn not_json() {
        assert!(matches!(
            parse_message("not json"),
            Err(InboundError::NotJson(_))
        ));
        assert!(matches!(parse_message(""), Err(InboundError::NotJson(_))));
        assert!(matches!(
            parse_message(r#"{"Records": "#),
            Err(InboundError::NotJson(_))
        ));
    }

    #[test]
    fn empty_records_are_ignored() {
        assert!(ignored(one(r#"{"Records": []}"#)).contains("no records"));
    }
}
