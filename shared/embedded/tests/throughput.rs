//! Rough throughput of the pipeline's traffic shape (ignored by default; run with
//! `cargo test -p cuepoint-embedded --test throughput -- --ignored --nocapture`).

mod common;

use std::time::{Duration, Instant};

use cuepoint_core::domain::AssetId;
use cuepoint_core::events::pipeline::{PipelineDetail, PipelineEvent};
use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn ten_thousand_events_through_bus_and_queues() {
    let dir = tempfile::tempdir().unwrap();
    let b = EmbeddedBackend::open(dir.path(), EmbeddedOptions::new(common::routing())).unwrap();
    let assets = 1_000;
    let started = Instant::now();
    for i in 0..assets {
        let id = AssetId::parse(format!("a{i:020}")).unwrap();
        let events: Vec<_> = (0..5)
            .map(|_| {
                PipelineEvent::new(id.clone(), PipelineDetail::AnalysesCompleted).to_entry(None)
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
        "sent {} messages in {sent:?}; received + deleted one by one in {drained:?}",
        assets * 10
    );
}
