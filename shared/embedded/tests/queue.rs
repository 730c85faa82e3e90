//! Queue semantics: visibility, receipts, redrive to the dead-letter queue, replay, delay,
//! dedup, long polling.

mod common;

use std::time::{Duration, Instant};

use cuepoint_embedded::{dead_letter_queue_name, EmbeddedBackend};
use cuepoint_runtime::ports::{PortError, Queue};

const NO_WAIT: Duration = Duration::ZERO;
const VIS: Duration = Duration::from_secs(30);

#[tokio::test]
async fn receive_hides_messages_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let q = b.queue("media");
    for i in 0..3 {
        q.send(&format!("m{i}"), Duration::ZERO).await.unwrap();
    }
    let got = q.receive(2, NO_WAIT, VIS).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["m0", "m1"]
    );
    assert!(got.iter().all(|m| m.receive_count == 1));
    let rest = q.receive(10, NO_WAIT, VIS).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(
        q.receive(10, NO_WAIT, VIS).await.unwrap().is_empty(),
        "all in flight"
    );
    let receipts: Vec<String> = got.iter().chain(&rest).map(|m| m.receipt.clone()).collect();
    q.delete(&receipts).await.unwrap();
    // deleting again (or an unknown receipt) is fine
    q.delete(&receipts).await.unwrap();
    q.delete(&["no-such-receipt".to_string()]).await.unwrap();
    let counts = b.sqlite_queue("media").counts().await.unwrap();
    assert_eq!((counts.visible, counts.invisible), (0, 0));
}

#[tokio::test]
async fn expired_visibility_redelivers_and_old_receipt_goes_stale() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = common::backend(&dir);
    let q = b.queue("media");
    q.send("job", Duration::ZERO).await.unwrap();
    let first = q.receive(1, NO_WAIT, VIS).await.unwrap().remove(0);
    clock.advance(Duration::from_secs(29));
    assert!(
        q.receive(1, NO_WAIT, VIS).await.unwrap().is_empty(),
        "still invisible"
    );
    clock.advance(Duration::from_secs(2));
    let second = q.receive(1, NO_WAIT, VIS).await.unwrap().remove(0);
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt);

    // the first consumer's receipt no longer deletes or extends
    q.delete(std::slice::from_ref(&first.receipt))
        .await
        .unwrap();
    assert_eq!(
        b.sqlite_queue("media").counts().await.unwrap().invisible,
        1,
        "stale delete is a no-op"
    );
    assert!(matches!(
        q.change_visibility(&first.receipt, VIS).await,
        Err(PortError::NotFound(_))
    ));

    // the current receipt does
    q.change_visibility(&second.receipt, Duration::from_secs(300))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(100));
    assert!(
        q.receive(1, NO_WAIT, VIS).await.unwrap().is_empty(),
        "heartbeat extended it"
    );
    q.delete(std::slice::from_ref(&second.receipt))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1000));
    assert!(
        q.receive(1, NO_WAIT, VIS).await.unwrap().is_empty(),
        "deleted for good"
    );
}

#[tokio::test]
async fn change_visibility_zero_releases_for_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let q = b.queue("scoring");
    q.send("x", Duration::ZERO).await.unwrap();
    let m = q.receive(1, NO_WAIT, VIS).await.unwrap().remove(0);
    q.change_visibility(&m.receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(1, NO_WAIT, VIS).await.unwrap();
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn too_many_receives_dead_letter_with_reason_and_replay_moves_back() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = common::backend(&dir);
    let q = b.queue("ingest"); // maxReceiveCount 5 in routing.json
    assert_eq!(b.redrive_of("ingest").unwrap().max_receive_count, 5);
    q.send("poison", Duration::ZERO).await.unwrap();
    q.send("fine", Duration::from_secs(3600)).await.unwrap();
    for i in 1..=5u32 {
        let m = q.receive(10, NO_WAIT, VIS).await.unwrap().remove(0);
        assert_eq!((m.body.as_str(), m.receive_count), ("poison", i));
        q.record_failure(&m, &format!("probe failed, attempt {i}"))
            .await
            .unwrap();
        q.change_visibility(&m.receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(7));
    // the sixth receive moves it to the DLQ instead of delivering it
    assert!(q.receive(10, NO_WAIT, VIS).await.unwrap().is_empty());
    let dl = b.dead_letters();
    let counts = dl.counts().await.unwrap();
    assert!(counts.contains(&("ingest".to_string(), 1)), "{counts:?}");
    assert!(counts.contains(&("media".to_string(), 0)), "{counts:?}");
    let listed = dl.list("ingest", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body, "poison");
    assert_eq!(listed[0].receive_count, 5);
    assert_eq!(listed[0].reason.as_deref(), Some("probe failed, attempt 5"));
    assert_eq!(listed[0].dead_lettered_at_ms, Some(common::T0 + 7000));
    // the DLQ is an ordinary queue too
    assert_eq!(
        b.sqlite_queue(&dead_letter_queue_name("ingest"))
            .counts()
            .await
            .unwrap()
            .visible,
        1
    );

    assert_eq!(dl.replay("ingest").await.unwrap(), 1);
    assert!(dl.list("ingest", 10).await.unwrap().is_empty());
    let back = q.receive(10, NO_WAIT, VIS).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        (back[0].body.as_str(), back[0].receive_count),
        ("poison", 1),
        "receive count reset"
    );
    assert_eq!(dl.replay("ingest").await.unwrap(), 0);
    assert!(matches!(
        dl.list("nope", 1).await,
        Err(PortError::NotFound(_))
    ));
    assert!(matches!(
        dl.replay("nope").await,
        Err(PortError::NotFound(_))
    ));
}

#[tokio::test]
async fn receive_skips_past_dead_letters_to_fill_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let q = b.queue("results"); // maxReceiveCount 5
    for i in 0..3 {
        q.send(&format!("bad{i}"), Duration::ZERO).await.unwrap();
    }
    for _ in 0..5 {
        for m in q.receive(10, NO_WAIT, Duration::ZERO).await.unwrap() {
            assert!(m.body.starts_with("bad"));
        }
    }
    q.send("good", Duration::ZERO).await.unwrap();
    let got = q.receive(1, NO_WAIT, VIS).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "good");
    assert!(b
        .dead_letters()
        .counts()
        .await
        .unwrap()
        .contains(&("results".to_string(), 3)));
}

#[tokio::test]
async fn queues_outside_the_routing_definition_never_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    assert!(b.redrive_of("scratch").is_none());
    let q = b.queue("scratch");
    q.send("x", Duration::ZERO).await.unwrap();
    for i in 1..=12 {
        let m = q.receive(1, NO_WAIT, Duration::ZERO).await.unwrap();
        assert_eq!(m[0].receive_count, i);
    }
}

#[tokio::test]
async fn delayed_messages_appear_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = common::backend(&dir);
    let q = b.queue("analysis");
    q.send("later", Duration::from_secs(30)).await.unwrap();
    q.send("now", Duration::ZERO).await.unwrap();
    let got = q.receive(10, NO_WAIT, VIS).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["now"]
    );
    clock.advance(Duration::from_secs(29));
    assert!(q.receive(10, NO_WAIT, VIS).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(q.receive(10, NO_WAIT, VIS).await.unwrap()[0].body, "later");
}

#[tokio::test]
async fn dedup_key_is_accepted_once_per_queue_forever() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let q = b.sqlite_queue("analysis");
    let first = q.send_dedup("one", "a1:media-prepared").await.unwrap();
    assert!(first.is_some());
    assert_eq!(
        q.send_dedup("two", "a1:media-prepared").await.unwrap(),
        None
    );
    let got = q.receive(10, NO_WAIT, VIS).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "one");
    assert_eq!(Some(got[0].message_id.clone()), first);
    q.delete(&[got[0].receipt.clone()]).await.unwrap();
    // still a duplicate after the original is gone
    assert_eq!(
        q.send_dedup("three", "a1:media-prepared").await.unwrap(),
        None
    );
    // another queue, another key space
    assert!(b
        .sqlite_queue("scoring")
        .send_dedup("one", "a1:media-prepared")
        .await
        .unwrap()
        .is_some());
    // and the key space survives reopening
    drop(q);
    let (b2, _) = common::backend(&dir);
    assert_eq!(
        b2.sqlite_queue("analysis")
            .send_dedup("four", "a1:media-prepared")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn long_poll_wakes_on_a_send_in_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let clock = common::ManualClock::new(common::T0);
    // polling so slow that only the in-process wake-up can deliver in time
    let opts = cuepoint_embedded::EmbeddedOptions {
        poll_interval: Duration::from_secs(30),
        ..common::options(clock)
    };
    let b = EmbeddedBackend::open(dir.path(), opts).unwrap();
    let q = b.queue("media");
    let sender = b.queue("media");
    let started = Instant::now();
    let waiter = tokio::spawn(async move { q.receive(1, Duration::from_secs(20), VIS).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    sender.send("wake", Duration::ZERO).await.unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got[0].body, "wake");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woke after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn long_poll_sees_another_process_by_polling_and_times_out_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (b1, clock) = common::backend(&dir);
    let b2 = EmbeddedBackend::open(dir.path(), common::options(clock)).unwrap();
    let started = Instant::now();
    assert!(b1
        .queue("media")
        .receive(1, Duration::from_millis(300), VIS)
        .await
        .unwrap()
        .is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300));

    let q = b1.queue("media");
    let waiter = tokio::spawn(async move { q.receive(1, Duration::from_secs(20), VIS).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    b2.queue("media")
        .send("from elsewhere", Duration::ZERO)
        .await
        .unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got[0].body, "from elsewhere");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn failure_reason_of_a_deleted_message_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let q = b.queue("media");
    q.send("x", Duration::ZERO).await.unwrap();
    let m = q.receive(1, NO_WAIT, VIS).await.unwrap().remove(0);
    q.delete(std::slice::from_ref(&m.receipt)).await.unwrap();
    q.record_failure(&m, "too late").await.unwrap();
}
