//! Rough throughput of the pipeline's traffic shape (ignored by default; run with
//! `cargo test -p cuepoint-embedded --test throughput -- --ignored --nocapture`).

mod common;

use std::time::{Duration, Instant};

use cuepoint_core::domain::AssetId;
use cuepoint_core::events::pipeline::{PipelineDetail, PipelineEvent};
use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run with --ignored --nocapture"]
async fn a_thousand_assets_of_bus_and_queue_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let b = EmbeddedBackend::open(dir.path(), EmbeddedOptions::new(common::routing())).unwrap();
    let assets = 1_000;
    let started = Instant::now();
    for i in 0..assets {
        let id = AssetId::parse(format!("a{i:020}")).unwrap();
        // Five distinct events per asset (distinct ids, so none is dropped as a duplicate); one
        // of them is routed to the scoring queue.
        let events: Vec<_> = (0..5)
            .map(|k| {
                let detail = match k {
                    0 => PipelineDetail::AnalysesCompleted,
                    _ => PipelineDetail::TranscodeSubmitted {
                        job_id: format!("{i}-{k}"),
                    },
                };
                PipelineEvent::new(id.clone(), detail).to_entry(None)
            })
            .collect();
        b.bus().put_events(&events).await.unwrap();
        for k in 0..9 {
            b.queue("media")
                .send(&format!("{i}-{k}"), Duration::ZERO)
                .await
                .unwrap();
        }
    }
    let sent = started.elapsed();
    let started = Instant::now();
    let mut handled = 0;
    for q in ["media", "scoring"] {
        let q = b.queue(q);
        loop {
            let got = q
                .receive(10, Duration::ZERO, Duration::from_secs(60))
                .await
                .unwrap();
            if got.is_empty() {
                break;
            }
            handled += got.len();
            for m in got {
                q.delete(&[m.receipt]).await.unwrap();
            }
        }
    }
    let drained = started.elapsed();
    assert_eq!(handled, assets * 10);
    eprintln!(
        "published {} events and sent {} messages in {sent:?}; received + deleted {handled} one by one in {drained:?}",
        assets * 5,
        assets * 9
    );
}
