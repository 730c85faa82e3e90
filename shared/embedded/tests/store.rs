//! Asset store: conditional writes, races between writers, counters moving atomically.

mod common;

use std::sync::Arc;

use cuepoint_core::asset::{Asset, AssetState, ProbeInfo};
use cuepoint_core::domain::{BucketName, ObjectKey, S3Uri, SourceObject};
use cuepoint_embedded::EmbeddedBackend;
use cuepoint_runtime::ports::{AssetStore, AssetWrite, CounterDelta, PortError, StoreError};

fn asset(key: &str) -> Asset {
    let source = SourceObject {
        bucket: BucketName::parse("cuepoint-ingest").unwrap(),
        key: ObjectKey::parse(key).unwrap(),
        version_id: None,
        etag: Some("e1".into()),
        size: Some(10),
    };
    let prefix = S3Uri::parse("s3://cuepoint-output/assets/x/").unwrap();
    Asset::register(source, ProbeInfo::default(), prefix, common::T0)
}

fn next(a: &Asset, state: AssetState) -> Asset {
    let mut n = a.clone();
    n.version += 1;
    n.state = state;
    n.updated_at_ms += 1;
    n
}

fn create(a: &Asset) -> AssetWrite {
    AssetWrite {
        asset: a.clone(),
        expected_version: None,
        counter: None,
    }
}

fn update(prev: &Asset, new: &Asset) -> AssetWrite {
    AssetWrite {
        asset: new.clone(),
        expected_version: Some(prev.version),
        counter: None,
    }
}

fn jobs(delta: i64, max: Option<i64>) -> Option<CounterDelta> {
    Some(CounterDelta {
        name: "open-jobs".into(),
        delta,
        max,
    })
}

#[tokio::test]
async fn create_get_update_list() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let store = b.store();
    let a = asset("in/one.mp4");
    assert_eq!(store.get(&a.id).await.unwrap(), None);
    store.commit(create(&a)).await.unwrap();
    assert_eq!(store.get(&a.id).await.unwrap(), Some(a.clone()));

    // creating again conflicts
    match store.commit(create(&a)).await {
        Err(StoreError::Conflict { asset, detail }) => {
            assert_eq!(asset, a.id);
            assert!(detail.contains("exists"), "{detail}");
        }
        other => panic!("expected conflict, got {other:?}"),
    }

    let a2 = next(&a, AssetState::Transcoding);
    store.commit(update(&a, &a2)).await.unwrap();
    assert_eq!(
        store.get(&a.id).await.unwrap().unwrap().state,
        AssetState::Transcoding
    );

    // a stale writer (still expecting version 1) loses
    let stale = next(&a, AssetState::Failed);
    match store.commit(update(&a, &stale)).await {
        Err(StoreError::Conflict { detail, .. }) => {
            assert!(detail.contains("stored version is 2"), "{detail}")
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(store.get(&a.id).await.unwrap().unwrap(), a2);

    let other = asset("in/two.mp4");
    store.commit(create(&other)).await.unwrap();
    let mut ids: Vec<_> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    let mut want = vec![a.id.clone(), other.id.clone()];
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn update_of_missing_asset_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let a = asset("in/ghost.mp4");
    match b
        .store()
        .commit(update(&a, &next(&a, AssetState::Transcoding)))
        .await
    {
        Err(StoreError::Conflict { detail, .. }) => {
            assert!(detail.contains("does not exist"), "{detail}")
        }
        other => panic!("expected conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn record_version_must_follow_expected_version() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let store = b.store();
    let mut a = asset("in/v.mp4");
    a.version = 2;
    assert!(matches!(
        store.commit(create(&a)).await,
        Err(StoreError::Port(PortError::Permanent(_)))
    ));
    a.version = 1;
    store.commit(create(&a)).await.unwrap();
    let mut skip = next(&a, AssetState::Transcoding);
    skip.version = 3;
    assert!(matches!(
        store.commit(update(&a, &skip)).await,
        Err(StoreError::Port(PortError::Permanent(_)))
    ));
    assert_eq!(store.get(&a.id).await.unwrap().unwrap().version, 1);
}

/// Two writers (separate backends = separate connections, as two processes have) race on the
/// same version, many times over: exactly one wins each round, the other gets Conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (b1, clock) = common::backend(&dir);
    let b2 = EmbeddedBackend::open(dir.path(), common::options(clock)).unwrap();
    let (s1, s2) = (b1.store(), b2.store());
    for round in 0..40 {
        let a = asset(&format!("in/race-{round}.mp4"));
        // creation race
        let (r1, r2) = tokio::join!(s1.commit(create(&a)), s2.commit(create(&a)));
        assert_eq!(
            [&r1, &r2].iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: exactly one create wins: {r1:?} {r2:?}"
        );
        // update race from the same version, different outcomes
        let x = next(&a, AssetState::Transcoding);
        let y = next(&a, AssetState::Failed);
        let (r1, r2) = tokio::join!(s1.commit(update(&a, &x)), s2.commit(update(&a, &y)));
        let winner = match (&r1, &r2) {
            (Ok(()), Err(StoreError::Conflict { .. })) => &x,
            (Err(StoreError::Conflict { .. }), Ok(())) => &y,
            other => panic!("round {round}: expected one winner and one conflict, got {other:?}"),
        };
        assert_eq!(&s1.get(&a.id).await.unwrap().unwrap(), winner);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_limit_refuses_the_whole_write() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = common::backend(&dir);
    let b2 = EmbeddedBackend::open(dir.path(), common::options(clock)).unwrap();
    let assets: Vec<Asset> = (0..10).map(|i| asset(&format!("in/cap-{i}.mp4"))).collect();
    for a in &assets {
        b.store().commit(create(a)).await.unwrap();
    }
    // Ten writers on two backends each try to take one of three slots.
    let mut tasks = Vec::new();
    for (i, a) in assets.iter().enumerate() {
        let store: Arc<dyn AssetStore> = if i % 2 == 0 { b.store() } else { b2.store() };
        let (prev, new) = (a.clone(), next(a, AssetState::Analysing));
        tasks.push(tokio::spawn(async move {
            store
                .commit(AssetWrite {
                    asset: new,
                    expected_version: Some(prev.version),
                    counter: jobs(1, Some(3)),
                })
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::CounterLimit { name, max }) => {
                assert_eq!((name.as_str(), max), ("open-jobs", 3))
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 3);
    assert_eq!(b.store().counter("open-jobs").await.unwrap(), 3);
    // the refused writes left their assets untouched
    let analysing = b
        .store()
        .list()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.state == AssetState::Analysing)
        .count();
    assert_eq!(analysing, 3);

    // a conflicting write (stale version) does not move the counter either
    let mut winner = None;
    for a in &assets {
        let stored = b.store().get(&a.id).await.unwrap().unwrap();
        if stored.state == AssetState::Analysing {
            winner = Some(stored);
            break;
        }
    }
    let winner = winner.expect("three assets won a slot");
    let mut stale = winner.clone();
    stale.version = 2;
    stale.state = AssetState::Failed;
    let r = b
        .store()
        .commit(AssetWrite {
            asset: stale,
            expected_version: Some(1),
            counter: jobs(-1, None),
        })
        .await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
    assert_eq!(b.store().counter("open-jobs").await.unwrap(), 3);
    // the right version releases its slot
    let done = next(&winner, AssetState::Analysed);
    b.store()
        .commit(AssetWrite {
            asset: done,
            expected_version: Some(2),
            counter: jobs(-1, None),
        })
        .await
        .unwrap();
    assert_eq!(b2.store().counter("open-jobs").await.unwrap(), 2);
}

#[tokio::test]
async fn counter_never_goes_below_zero_and_decrements_pass_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let store = b.store();
    let a = asset("in/c.mp4");
    store
        .commit(AssetWrite {
            asset: a.clone(),
            expected_version: None,
            counter: jobs(2, Some(2)),
        })
        .await
        .unwrap();
    assert_eq!(store.counter("open-jobs").await.unwrap(), 2);
    let a2 = next(&a, AssetState::Transcoding);
    // a decrement is allowed even with max below the current value
    store
        .commit(AssetWrite {
            asset: a2.clone(),
            expected_version: Some(1),
            counter: jobs(-5, Some(0)),
        })
        .await
        .unwrap();
    assert_eq!(store.counter("open-jobs").await.unwrap(), 0);
    assert_eq!(store.counter("never-touched").await.unwrap(), 0);
}

#[tokio::test]
async fn records_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let a = asset("in/durable.mp4");
    {
        let (b, _) = common::backend(&dir);
        b.store()
            .commit(AssetWrite {
                asset: a.clone(),
                expected_version: None,
                counter: jobs(1, None),
            })
            .await
            .unwrap();
    }
    let (b, _) = common::backend(&dir);
    assert_eq!(b.store().get(&a.id).await.unwrap(), Some(a));
    assert_eq!(b.store().counter("open-jobs").await.unwrap(), 1);
}

/// Writes waiting together share one transaction (group commit), yet each stands or falls on
/// its own: a lost condition or a refused counter move rolls back that write only, and every
/// caller hears back after the commit that holds its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_waiting_together_commit_together_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    // Another connection holds the write lock, so the writes below queue up behind it.
    let other = rusqlite::Connection::open(b.database_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let before = b.write_stats();
    let mut tasks = Vec::new();
    for i in 0..20 {
        // Each asset created twice: one of the two creates loses.
        for _ in 0..2 {
            let store = b.store();
            let a = asset(&format!("group/{i}.mov"));
            tasks.push(tokio::spawn(async move { store.commit(create(&a)).await }));
        }
    }
    for i in 0..10 {
        // Past the counter's maximum: refused, and the asset is not created either.
        let store = b.store();
        let a = asset(&format!("refused/{i}.mov"));
        tasks.push(tokio::spawn(async move {
            store
                .commit(AssetWrite {
                    asset: a,
                    expected_version: None,
                    counter: jobs(5, Some(3)),
                })
                .await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    other.execute_batch("COMMIT").unwrap();
    let mut ok = 0;
    let mut conflicts = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(StoreError::CounterLimit { .. }) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, conflicts, refused), (20, 20, 10));
    let stored = b.store().list().await.unwrap();
    assert_eq!(stored.len(), 20);
    assert!(stored
        .iter()
        .all(|a| a.source.key.as_str().starts_with("group/")));
    assert_eq!(b.store().counter("open-jobs").await.unwrap(), 0);
    let stats = b.write_stats();
    let (transactions, writes) = (
        stats.transactions - before.transactions,
        stats.writes - before.writes,
    );
    assert_eq!(writes, 50);
    // The first write waits alone for the lock; the rest go in together after it.
    assert!(
        transactions <= 3,
        "{transactions} transactions for {writes} writes"
    );
}
