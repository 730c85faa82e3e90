//! Break saving and the catalog handler against in-memory ports: first delivery, redelivery,
//! a lost race, refusals.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cuepoint_core::asset::{Asset, AssetState, BreakSummary};
use cuepoint_core::domain::{BucketName, ObjectKey, SourceObject};
use cuepoint_core::events::{PipelineDetail, PipelineEvent};
use cuepoint_runtime::consumer::{Handler, HandlerError};
use cuepoint_runtime::ports::ReceivedMessage;

use super::breaks::{save, BreakInput, BreaksEdit};
use super::catalog::{Catalog, CatalogHandler};
use crate::testkit::Kit;

fn complete_asset(kit: &Kit, state: AssetState) -> Asset {
    let source = SourceObject {
        bucket: BucketName::parse("cuepoint-ingest").unwrap(),
        key: ObjectKey::parse("uploads/harbour.mov").unwrap(),
        version_id: None,
        etag: Some("e1".into()),
        size: Some(10),
    };
    let id = cuepoint_core::domain::AssetId::for_source(&source);
    let mut a = Asset::register(
        source,
        crate::testkit::probe_info(1),
        kit.ctx.results_prefix(&id),
        1,
    );
    a.state = state;
    a.breaks = vec![BreakSummary {
        timestamp: 5.0,
        score: 0.9,
        reasons: vec!["Silence".into()],
    }];
    a.results.vmap = Some(kit.ctx.result_uri(&a.id, "ad_breaks.vmap"));
    kit.put_asset(&a);
    kit.blobs.insert(
        &kit.ctx.result_uri(&a.id, "ad_breaks.vmap"),
        b"<original/>".to_vec(),
    );
    a
}

fn edit(version: u32, t: f64) -> BreaksEdit {
    BreaksEdit {
        version,
        breaks: vec![BreakInput {
            timestamp: t,
            from: Some(5.0),
        }],
        editor: Some("ed".into()),
    }
}

#[tokio::test]
async fn a_save_writes_the_record_then_the_vmap_versions_then_the_event() {
    let kit = Kit::new();
    let a = complete_asset(&kit, AssetState::Complete);
    let saved = save(&kit.ctx, &a, &edit(1, 7.0)).await.unwrap();
    assert_eq!(saved.vmap_version(), 2);
    assert_eq!(kit.asset(&a.id).edits.len(), 1);
    let read = |rel: &str| {
        kit.blobs
            .read(&kit.ctx.result_uri(&a.id, rel))
            .map(|b| String::from_utf8(b).unwrap())
    };
    assert_eq!(read("vmap/v1.vmap").as_deref(), Some("<original/>"));
    let v2 = read("vmap/v2.vmap").unwrap();
    assert!(v2.contains(r#"timeOffset="00:00:07.000""#));
    assert_eq!(read("ad_breaks.vmap").unwrap(), v2);
    let published = kit.bus.published();
    assert_eq!(kit.bus.detail_types(), ["Breaks Edited"]);
    assert_eq!(
        published[0].1["eventId"],
        format!("{}:breaks-edited-v2", a.id)
    );
    assert_eq!(published[0].1["editor"], "ed");
}

#[tokio::test]
async fn a_lost_race_writes_no_vmap_and_announces_nothing() {
    let kit = Kit::new();
    let a = complete_asset(&kit, AssetState::Complete);
    kit.store.lose_next_race();
    let err = save(&kit.ctx, &a, &edit(1, 7.0)).await.unwrap_err();
    assert_eq!(err.status, axum::http::StatusCode::CONFLICT);
    assert!(kit
        .blobs
        .read(&kit.ctx.result_uri(&a.id, "vmap/v2.vmap"))
        .is_none());
    assert!(kit.bus.published().is_empty());
}

#[tokio::test]
async fn in_flight_and_failed_assets_are_refused_before_anything_is_written() {
    for state in [AssetState::Analysing, AssetState::Failed] {
        let kit = Kit::new();
        let a = complete_asset(&kit, state);
        let err = save(&kit.ctx, &a, &edit(1, 7.0)).await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::CONFLICT, "{state}");
        assert_eq!(kit.store.commits.load(Ordering::SeqCst), 0);
        assert!(kit.bus.published().is_empty());
    }
}

fn message(ev: &PipelineEvent, n: u32) -> ReceivedMessage {
    let env = ev
        .to_entry(Some(0))
        .into_envelope(
            "id".into(),
            "000000000000",
            "local",
            "1970-01-01T00:00:00Z".into(),
        )
        .unwrap();
    ReceivedMessage {
        message_id: "m".into(),
        receipt: format!("r{n}"),
        body: serde_json::to_string(&env).unwrap(),
        receive_count: n,
        sent_at_ms: None,
    }
}

#[tokio::test]
async fn the_catalog_indexes_complete_assets_once_however_often_told() {
    let kit = Kit::new();
    let a = complete_asset(&kit, AssetState::Complete);
    kit.blobs.insert(
        &kit.ctx.result_uri(&a.id, "labels.json"),
        br#"{"Labels":[{"Timestamp":1000,"Label":{"Name":"Lighthouse","Confidence":90.0}}]}"#
            .to_vec(),
    );
    let catalog = Arc::new(Catalog::in_memory().unwrap());
    let handler = CatalogHandler {
        ctx: kit.ctx.clone(),
        catalog: catalog.clone(),
    };
    let vmap = kit.ctx.result_uri(&a.id, "ad_breaks.vmap");
    let done = PipelineEvent::new(
        a.id.clone(),
        PipelineDetail::AssetCompleted {
            vmap,
            breaks: 1,
            version: 1,
        },
    );
    handler.handle(&message(&done, 1)).await.unwrap();
    let rows = catalog.row_count(a.id.as_str()).unwrap();
    assert!(rows >= 3, "asset, label, break: {rows}");
    handler.handle(&message(&done, 2)).await.unwrap();
    assert_eq!(
        catalog.row_count(a.id.as_str()).unwrap(),
        rows,
        "a redelivery changes nothing"
    );
    let hits = catalog.search("lighthouse", 10).unwrap();
    assert_eq!(hits.assets[0].hits[0].start, 1.0);

    // An asset still in the pipeline is not catalogued; an unknown one is a poison message.
    let kit2 = Kit::new();
    let busy = complete_asset(&kit2, AssetState::Analysing);
    let h2 = CatalogHandler {
        ctx: kit2.ctx.clone(),
        catalog: catalog.clone(),
    };
    let ev = PipelineEvent::new(busy.id.clone(), PipelineDetail::AnalysesCompleted);
    h2.handle(&message(&ev, 1)).await.unwrap();
    let other = cuepoint_core::domain::AssetId::parse("a0000000000000000000f").unwrap();
    let unknown = PipelineEvent::new(
        other,
        PipelineDetail::AssetCompleted {
            vmap: kit2.ctx.result_uri(&busy.id, "x"),
            breaks: 0,
            version: 1,
        },
    );
    assert!(matches!(
        h2.handle(&message(&unknown, 1)).await,
        Err(HandlerError::Permanent(_))
    ));
}
