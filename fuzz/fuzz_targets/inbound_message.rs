//! `parse_message` on any queue message body.
//!
//! Properties, beyond "never panics":
//! - an `Ok` is never an empty list (a body carries at least one event or one `Ignored`);
//! - a body that is not itself an SNS envelope reads the same inside one;
//! - every S3 key is decoded and valid (`ObjectKey::parse` accepts it unchanged) and
//!   `encode_key` inverts the decoding;
//! - S3, Rekognition and pipeline events re-encoded the way cuepoint itself publishes them
//!   (`object_created_entry`, `completion_message` raw and inside `sns_envelope`,
//!   `PipelineEvent::to_entry`) parse back equal;
//! - a MediaConvert event re-encoded with `job_state_change_entry` keeps everything that
//!   function is documented to keep (ids, state, metadata, paths, error fields);
//! - a Transcribe job state change re-encoded with `transcribe::job_state_change_entry` parses
//!   back equal.
#![no_main]

use cuepoint_core::domain::ObjectKey;
use cuepoint_core::events::mediaconvert::{
    default_queue_arn, job_state_change_entry, JobState, JobStateChange,
};
use cuepoint_core::events::rekognition::{completion_message, sns_envelope, VideoJobCompletion};
use cuepoint_core::events::s3::{encode_key, object_created_entry, ObjectCreated};
use cuepoint_core::events::transcribe::{self, TranscriptionJobStateChange};
use cuepoint_core::events::{parse_message, Inbound, PipelineEvent};
use libfuzzer_sys::fuzz_target;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(events) = parse_message(body) else {
        return;
    };
    assert!(!events.is_empty(), "Ok(empty) for {body:?}");
    sns_wrapping_changes_nothing(body, &events);
    for event in events {
        match event {
            Inbound::S3ObjectCreated(o) => s3_round_trip(o),
            Inbound::Rekognition(c) => rekognition_round_trip(c),
            Inbound::Pipeline(e) => pipeline_round_trip(e),
            Inbound::MediaConvert(j) => mediaconvert_round_trip(j),
            Inbound::Transcribe(t) => transcribe_round_trip(t),
            Inbound::Ignored { reason } => assert!(!reason.is_empty()),
        }
    }
});

/// Any body but an SNS envelope reads the same wrapped in one (Rekognition completions then
/// carry the envelope's message id).
fn sns_wrapping_changes_nothing(body: &str, events: &[Inbound]) {
    let v: serde_json::Value =
        serde_json::from_str(body).expect("parse_message accepted it as JSON");
    if v.get("TopicArn").is_some() && v.get("Type").is_some_and(serde_json::Value::is_string) {
        return; // an SNS envelope itself: nesting is refused by design
    }
    let wrapped = sns_envelope(
        body,
        "arn:aws:sns:us-east-1:000000000000:fuzz",
        "fuzz-wrap",
        "t",
    );
    let got = parse_message(&wrapped).unwrap_or_else(|e| panic!("wrapped body refused: {e}"));
    let want: Vec<Inbound> = events
        .iter()
        .cloned()
        .map(|e| match e {
            Inbound::Rekognition(c) => Inbound::Rekognition(VideoJobCompletion {
                sns_message_id: Some("fuzz-wrap".into()),
                ..c
            }),
            other => other,
        })
        .collect();
    assert_eq!(got, want, "SNS wrapping changed the events of {body}");
}

/// Parse a body that must hold exactly one event.
fn one(body: &str) -> Inbound {
    let mut all = parse_message(body)
        .unwrap_or_else(|e| panic!("re-encoded event does not parse: {e}\n{body}"));
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn s3_round_trip(o: ObjectCreated) {
    assert_eq!(
        ObjectKey::parse(o.key.as_str()).as_ref(),
        Ok(&o.key),
        "key not valid after decoding"
    );
    assert_eq!(
        ObjectKey::from_url_encoded(&encode_key(&o.key)).as_ref(),
        Ok(&o.key),
        "encode_key does not invert"
    );
    // The EventBridge envelope carries the event time; an empty one reads back as absent.
    let time = o.event_time.clone().unwrap_or_default();
    let env = object_created_entry(&o, None)
        .into_envelope("fuzz-1".into(), ACCOUNT, REGION, time)
        .expect("object_created_entry writes JSON");
    let text = serde_json::to_string(&env).expect("an envelope serializes");
    let want = ObjectCreated {
        event_time: o.event_time.clone().filter(|t| !t.is_empty()),
        ..o
    };
    assert_eq!(one(&text), Inbound::S3ObjectCreated(want));
}

fn rekognition_round_trip(c: VideoJobCompletion) {
    let msg = completion_message(&c);
    let raw = VideoJobCompletion {
        sns_message_id: None,
        ..c.clone()
    };
    assert_eq!(one(&msg), Inbound::Rekognition(raw));
    let wrapped = sns_envelope(
        &msg,
        "arn:aws:sns:us-east-1:000000000000:fuzz",
        "fuzz-message",
        "t",
    );
    let via_sns = VideoJobCompletion {
        sns_message_id: Some("fuzz-message".into()),
        ..c
    };
    assert_eq!(one(&wrapped), Inbound::Rekognition(via_sns));
}

fn pipeline_round_trip(e: PipelineEvent) {
    let detail = serde_json::to_string(&e).expect("pipeline events serialize");
    let back: PipelineEvent =
        serde_json::from_str(&detail).expect("a serialized pipeline event deserializes");
    assert_eq!(back, e);
    let env = e
        .to_entry(None)
        .into_envelope(
            "fuzz-1".into(),
            ACCOUNT,
            REGION,
            "1970-01-01T00:00:00Z".into(),
        )
        .expect("to_entry writes JSON");
    let text = serde_json::to_string(&env).expect("an envelope serializes");
    assert_eq!(one(&text), Inbound::Pipeline(e));
}

fn mediaconvert_round_trip(j: JobStateChange) {
    let env = job_state_change_entry(&j, ACCOUNT, REGION)
        .into_envelope(
            "fuzz-1".into(),
            ACCOUNT,
            REGION,
            "1970-01-01T00:00:00Z".into(),
        )
        .expect("job_state_change_entry writes JSON");
    let text = serde_json::to_string(&env).expect("an envelope serializes");
    let Inbound::MediaConvert(b) = one(&text) else {
        panic!("not a MediaConvert event: {text}")
    };
    assert_eq!(b.job_id, j.job_id);
    assert_eq!(b.state, j.state);
    assert_eq!(
        b.queue,
        Some(
            j.queue
                .clone()
                .unwrap_or_else(|| default_queue_arn(ACCOUNT, REGION))
        )
    );
    assert_eq!(b.user_metadata, j.user_metadata);
    assert_eq!(b.timestamp_ms, j.timestamp_ms);
    match j.state {
        JobState::Complete => {
            // One outputDetails entry per path: a group without paths loses duration and video.
            assert_eq!(b.output_group_details.len(), j.output_group_details.len());
            for (bg, jg) in b.output_group_details.iter().zip(&j.output_group_details) {
                assert_eq!(bg.output_group_type, jg.output_group_type);
                assert_eq!(bg.output_file_paths, jg.output_file_paths);
                assert_eq!(bg.playlist_file_paths, jg.playlist_file_paths);
                if !jg.output_file_paths.is_empty() {
                    assert_eq!(bg.duration_ms, jg.duration_ms);
                    assert_eq!(bg.video, jg.video);
                }
            }
            assert_eq!((b.error_code, &b.error_message), (None, &None));
        }
        JobState::Error => {
            assert!(b.output_group_details.is_empty());
            assert_eq!(b.error_code, j.error_code);
            assert_eq!(b.error_message, j.error_message);
        }
    }
}

fn transcribe_round_trip(t: TranscriptionJobStateChange) {
    let env = transcribe::job_state_change_entry(&t, None)
        .into_envelope(
            "fuzz-1".into(),
            ACCOUNT,
            REGION,
            "1970-01-01T00:00:00Z".into(),
        )
        .expect("job_state_change_entry writes JSON");
    let text = serde_json::to_string(&env).expect("an envelope serializes");
    assert_eq!(one(&text), Inbound::Transcribe(t));
}
