//! Event bus routing (routing.json through cuepoint_core::routing), pipeline dedup by eventId,
//! batch atomicity, and SNS topic delivery.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use cuepoint_core::domain::{AssetId, S3Uri};
use cuepoint_core::events::envelope::{EventBridgeEvent, PutEventsEntry};
use cuepoint_core::events::pipeline::{PipelineDetail, PipelineEvent};
use cuepoint_core::events::{parse_message, Inbound};
use cuepoint_core::routing::RoutingDefinition;
use cuepoint_core::timefmt;
use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions, PutOutcome};
use cuepoint_runtime::ports::{PortError, ReceivedMessage};
use serde_json::{json, Value};

const VIS: Duration = Duration::from_secs(30);

async fn drain(b: &EmbeddedBackend, queue: &str) -> Vec<ReceivedMessage> {
    let q = b.queue(queue);
    let mut all = Vec::new();
    loop {
        let got = q.receive(10, Duration::ZERO, VIS).await.unwrap();
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

async fn depths(b: &EmbeddedBackend) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for q in ["ingest", "media", "analysis", "results", "scoring"] {
        let c = b.sqlite_queue(q).counts().await.unwrap();
        out.insert(q.to_string(), c.visible + c.invisible);
    }
    out
}

/// An S3 "Object Created" entry as S3 sends it to EventBridge (AWS documentation sample shape).
fn s3_object_created(bucket: &str, key: &str) -> PutEventsEntry {
    let detail = json!({
        "version": "0",
        "bucket": { "name": bucket },
        "object": { "key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08299329D189" },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject"
    });
    PutEventsEntry {
        source: "aws.s3".into(),
        detail_type: "Object Created".into(),
        detail: detail.to_string(),
        resources: vec![format!("arn:aws:s3:::{bucket}")],
        time_ms: None,
    }
}

fn asset_id() -> AssetId {
    AssetId::parse("a0123456789abcdef0123").unwrap()
}

#[tokio::test]
async fn s3_event_reaches_the_ingest_queue_in_an_eventbridge_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let bus = b.event_bus();
    let out = bus
        .put_events_outcome(&[s3_object_created("cuepoint-ingest", "in/my+movie.mp4")])
        .await
        .unwrap();
    assert_eq!(
        out,
        PutOutcome {
            enqueued: 1,
            duplicates: 0,
            unrouted: 0
        }
    );
    let got = drain(&b, "ingest").await;
    assert_eq!(got.len(), 1);
    let ev: EventBridgeEvent<Value> = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(ev.source, "aws.s3");
    assert_eq!(ev.detail_type, "Object Created");
    assert_eq!(ev.account, "000000000000");
    assert_eq!(ev.region, "local");
    assert_eq!(ev.version, "0");
    assert_eq!(ev.time, timefmt::rfc3339_seconds(common::T0));
    assert_eq!(ev.id.len(), 36);
    assert_eq!(ev.resources, ["arn:aws:s3:::cuepoint-ingest"]);
    assert_eq!(ev.detail["object"]["key"], "in/my+movie.mp4");
    // the ingest worker's parser reads it back
    match parse_message(&got[0].body).unwrap().as_slice() {
        [Inbound::S3ObjectCreated(o)] => assert_eq!(o.key.as_str(), "in/my movie.mp4"),
        other => panic!("unexpected {other:?}"),
    }
    // nothing else was routed anywhere
    let d = depths(&b).await;
    assert_eq!(d.values().sum::<u64>(), 1, "{d:?}");

    // another bucket matches no rule: counted, not an error, not enqueued
    let out = bus
        .put_events_outcome(&[s3_object_created("someone-else", "x.mp4")])
        .await
        .unwrap();
    assert_eq!(out.unrouted, 1);
    assert_eq!(bus.unrouted_count(), 1);
    assert!(drain(&b, "ingest").await.is_empty());
}

#[tokio::test]
async fn mediaconvert_completion_of_our_workflow_goes_to_media() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let entry = |status: &str, workflow: &str| {
        PutEventsEntry {
        source: "aws.mediaconvert".into(),
        detail_type: "MediaConvert Job State Change".into(),
        detail: json!({"status": status, "jobId": "1700000000000-abc123", "userMetadata": {"workflow": workflow, "assetId": "a1"}})
            .to_string(),
        resources: vec![],
        time_ms: Some(common::T0 - 5000),
    }
    };
    let out = b
        .event_bus()
        .put_events_outcome(&[
            entry("COMPLETE", "cuepoint"),
            entry("PROGRESSING", "cuepoint"),
            entry("ERROR", "other-workflow"),
        ])
        .await
        .unwrap();
    assert_eq!((out.enqueued, out.unrouted), (1, 2));
    let got = drain(&b, "media").await;
    let ev: EventBridgeEvent<Value> = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(ev.detail["status"], "COMPLETE");
    assert_eq!(
        ev.time,
        timefmt::rfc3339_seconds(common::T0 - 5000),
        "the entry's own time is kept"
    );
}

#[tokio::test]
async fn pipeline_events_route_by_detail_type_and_dedup_by_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let bus = b.bus();
    let proxy =
        S3Uri::parse("s3://cuepoint-output/assets/a0123456789abcdef0123/proxy/proxy.mp4").unwrap();
    let prepared = PipelineEvent::new(asset_id(), PipelineDetail::MediaPrepared { proxy });
    let analysed = PipelineEvent::new(asset_id(), PipelineDetail::AnalysesCompleted);
    let submitted = PipelineEvent::new(
        asset_id(),
        PipelineDetail::TranscodeSubmitted { job_id: "j".into() },
    );

    // the same event twice in one batch, then again in a later call (a re-announcement)
    bus.put_events(&[
        prepared.to_entry(None),
        prepared.to_entry(None),
        submitted.to_entry(None),
    ])
    .await
    .unwrap();
    let out = b
        .event_bus()
        .put_events_outcome(&[prepared.to_entry(None), analysed.to_entry(None)])
        .await
        .unwrap();
    assert_eq!(
        out,
        PutOutcome {
            enqueued: 1,
            duplicates: 1,
            unrouted: 0
        }
    );

    let analysis = drain(&b, "analysis").await;
    assert_eq!(analysis.len(), 1, "one Media Prepared delivery");
    match parse_message(&analysis[0].body).unwrap().as_slice() {
        [Inbound::Pipeline(e)] => assert_eq!(e, &prepared),
        other => panic!("unexpected {other:?}"),
    }
    let scoring = drain(&b, "scoring").await;
    assert_eq!(scoring.len(), 1);
    let d = depths(&b).await;
    assert_eq!(
        d.values().sum::<u64>(),
        2,
        "Transcode Submitted has no rule: {d:?}"
    );
    assert_eq!(b.event_bus().unrouted_count(), 1);

    // dedup outlives the delivered copy
    for m in &analysis {
        b.queue("analysis")
            .delete(std::slice::from_ref(&m.receipt))
            .await
            .unwrap();
    }
    bus.put_events(&[prepared.to_entry(None)]).await.unwrap();
    assert!(drain(&b, "analysis").await.is_empty());
    // another asset's Media Prepared is a different event
    let other = PipelineEvent::new(
        AssetId::parse("a99").unwrap(),
        PipelineDetail::AnalysesCompleted,
    );
    bus.put_events(&[other.to_entry(None)]).await.unwrap();
    assert_eq!(drain(&b, "scoring").await.len(), 1);
}

#[tokio::test]
async fn a_bad_entry_fails_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let mut bad = s3_object_created("cuepoint-ingest", "x.mp4");
    bad.detail = "{not json".into();
    let r = b
        .bus()
        .put_events(&[s3_object_created("cuepoint-ingest", "ok.mp4"), bad])
        .await;
    assert!(matches!(r, Err(PortError::Permanent(m)) if m.contains("Object Created")));
    assert!(
        drain(&b, "ingest").await.is_empty(),
        "nothing of the batch was enqueued"
    );
}

#[tokio::test]
async fn topic_wraps_in_the_sns_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let note = json!({
        "JobId": "6c4b1f0e", "Status": "SUCCEEDED", "API": "StartSegmentDetection", "JobTag": "a1",
        "Timestamp": 1_795_325_848_000u64, "Video": {"S3ObjectName": "assets/a1/proxy/proxy.mp4", "S3Bucket": "cuepoint-output"}
    })
    .to_string();
    let topic = b.sqlite_topic("rekognition");
    assert_eq!(topic.arn(), "arn:aws:sns:local:000000000000:rekognition");
    let id = b.topic("rekognition").publish(&note).await.unwrap();
    let got = drain(&b, "results").await;
    assert_eq!(got.len(), 1);
    let env: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(env["Type"], "Notification");
    assert_eq!(env["MessageId"], id.as_str());
    assert_eq!(
        env["TopicArn"],
        "arn:aws:sns:local:000000000000:rekognition"
    );
    assert_eq!(env["Message"], note.as_str());
    assert_eq!(env["Timestamp"], timefmt::rfc3339_millis(common::T0));
    match parse_message(&got[0].body).unwrap().as_slice() {
        [Inbound::Rekognition(c)] => {
            assert_eq!((c.job_id.as_str(), c.succeeded()), ("6c4b1f0e", true));
            assert_eq!(c.sns_message_id.as_deref(), Some(id.as_str()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        b.topic("no-such-topic").publish("x").await,
        Err(PortError::NotFound(_))
    ));
}

#[tokio::test]
async fn raw_message_delivery_passes_the_message_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/routing.json"
    ))
    .unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["topics"][0]["rawMessageDelivery"] = json!(true);
    let vars = BTreeMap::from([
        ("IngestBucket", "cuepoint-ingest"),
        ("WorkflowName", "cuepoint"),
    ]);
    let routing = RoutingDefinition::from_json_str(&doc.to_string(), &vars).unwrap();
    let b = EmbeddedBackend::open(dir.path(), EmbeddedOptions::new(routing)).unwrap();
    b.topic("rekognition")
        .publish(r#"{"JobId":"j","Status":"FAILED","API":"StartLabelDetection"}"#)
        .await
        .unwrap();
    let got = drain(&b, "results").await;
    assert_eq!(
        got[0].body,
        r#"{"JobId":"j","Status":"FAILED","API":"StartLabelDetection"}"#
    );
}
