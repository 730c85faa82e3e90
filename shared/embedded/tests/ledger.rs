//! Job ledger: idempotent by (service, client token), job ids unique per service.

mod common;

use cuepoint_embedded::EmbeddedBackend;
use cuepoint_runtime::ports::{LedgerJob, LedgerService, LedgerStatus, PortError};
use serde_json::json;

fn job(service: &str, job_id: &str, token: &str, asset: &str) -> LedgerJob {
    LedgerJob {
        service: LedgerService::parse(service).unwrap(),
        job_id: job_id.into(),
        client_token: token.into(),
        asset_id: asset.into(),
        request: json!({"settings": {"inputs": [job_id]}}),
        status: LedgerStatus::Submitted,
        result: None,
        created_at_ms: common::T0,
    }
}

#[tokio::test]
async fn same_token_returns_the_first_job() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let ledger = b.ledger();
    let first = job("mediaconvert", "j1", "tok-a", "a1");
    assert_eq!(
        ledger.create_or_get(&first).await.unwrap(),
        (first.clone(), true)
    );
    // a retry with the same token but a fresh job id gets the original job back
    let retry = job("mediaconvert", "j2", "tok-a", "a1");
    assert_eq!(
        ledger.create_or_get(&retry).await.unwrap(),
        (first.clone(), false)
    );
    assert_eq!(
        ledger.get(LedgerService::MediaConvert, "j2").await.unwrap(),
        None
    );
    // the same token on another service is another job
    let rk = job("rekognition", "j1", "tok-a", "a1");
    assert!(ledger.create_or_get(&rk).await.unwrap().1);
    // a job id reused with another token is refused
    let clash = job("mediaconvert", "j1", "tok-b", "a1");
    assert!(
        matches!(ledger.create_or_get(&clash).await, Err(PortError::Permanent(m)) if m.contains("j1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_with_one_token_create_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let (b1, clock) = common::backend(&dir);
    let b2 = EmbeddedBackend::open(dir.path(), common::options(clock)).unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let ledger = if i % 2 == 0 { b1.ledger() } else { b2.ledger() };
        tasks.push(tokio::spawn(async move {
            ledger
                .create_or_get(&job("mediaconvert", &format!("j{i}"), "tok", "a1"))
                .await
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (j, new) = t.await.unwrap().unwrap();
        created += new as usize;
        ids.insert(j.job_id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every caller sees the same job: {ids:?}");
    assert_eq!(
        b1.ledger()
            .find_by_asset(LedgerService::MediaConvert, "a1")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn finish_and_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let ledger = b.ledger();
    for (id, asset) in [("j1", "a1"), ("j2", "a1"), ("j3", "a2")] {
        ledger
            .create_or_get(&job("rekognition", id, &format!("t-{id}"), asset))
            .await
            .unwrap();
    }
    ledger
        .finish(
            LedgerService::Rekognition,
            "j2",
            LedgerStatus::Complete,
            json!({"pages": 3}),
        )
        .await
        .unwrap();
    let open: Vec<_> = ledger
        .unfinished(LedgerService::Rekognition)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(open, ["j1", "j3"]);
    let j2 = ledger
        .get(LedgerService::Rekognition, "j2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (j2.status, j2.result),
        (LedgerStatus::Complete, Some(json!({"pages": 3})))
    );
    assert_eq!(
        ledger
            .find_by_asset(LedgerService::Rekognition, "a1")
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(ledger
        .unfinished(LedgerService::MediaConvert)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        ledger
            .finish(
                LedgerService::Rekognition,
                "nope",
                LedgerStatus::Error,
                json!(null)
            )
            .await,
        Err(PortError::NotFound(_))
    ));
}
