//! Blob store: keys map under the blob root, escapes and symlink tricks are refused, writes are
//! atomic, listing is recursive.

mod common;

use cuepoint_core::domain::{BucketName, ObjectKey, S3Uri};
use cuepoint_runtime::ports::PortError;

fn uri(key: &str) -> S3Uri {
    S3Uri::new(
        BucketName::parse("cuepoint-output").unwrap(),
        ObjectKey::parse(key).unwrap(),
    )
}

#[tokio::test]
async fn put_get_head_round_trip_with_odd_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    for key in [
        "in/my movie é.mp4",
        "100% done/ünïcødé 🎬.mov",
        "a+b=c/%2F..x",
        "plain",
    ] {
        let u = uri(key);
        assert_eq!(blobs.get(&u).await.unwrap(), None, "{key}");
        assert_eq!(blobs.head(&u).await.unwrap(), None, "{key}");
        blobs
            .put(&u, key.as_bytes().to_vec(), "video/mp4")
            .await
            .unwrap();
        assert_eq!(
            blobs.get(&u).await.unwrap().as_deref(),
            Some(key.as_bytes()),
            "{key}"
        );
        let meta = blobs.head(&u).await.unwrap().unwrap();
        assert_eq!(meta.size, key.len() as u64);
        assert!(meta.etag.is_some());
        let path = blobs.local_path(&u).unwrap();
        assert!(
            path.starts_with(
                dir.path()
                    .canonicalize()
                    .unwrap()
                    .join("blobs/cuepoint-output")
            ),
            "{path:?}"
        );
        assert!(path.ends_with(key), "{path:?}");
        assert_eq!(
            blobs.readable_location(&u).await.unwrap(),
            path.to_str().unwrap()
        );
    }
}

#[tokio::test]
async fn etag_changes_on_rewrite_and_not_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    let u = uri("x/y.json");
    blobs
        .put(&u, b"one".to_vec(), "application/json")
        .await
        .unwrap();
    let e1 = blobs.head(&u).await.unwrap().unwrap().etag;
    assert_eq!(blobs.head(&u).await.unwrap().unwrap().etag, e1);
    blobs
        .put(&u, b"two".to_vec(), "application/json")
        .await
        .unwrap();
    assert_ne!(blobs.head(&u).await.unwrap().unwrap().etag, e1);
    assert_eq!(blobs.get(&u).await.unwrap().unwrap(), b"two");
}

#[tokio::test]
async fn escaping_keys_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    for key in [
        "../x",
        "a/../../b",
        "/etc/passwd",
        "a\\..\\..\\b",
        "a//b",
        "./a",
        "dir/",
        ".cuepoint-tmp-123",
    ] {
        let u = uri(key);
        for r in [
            blobs.put(&u, b"x".to_vec(), "text/plain").await.map(|_| ()),
            blobs.get(&u).await.map(|_| ()),
            blobs.head(&u).await.map(|_| ()),
            blobs.readable_location(&u).await.map(|_| ()),
        ] {
            match r {
                Err(PortError::Permanent(m)) => {
                    assert!(m.contains(key), "message {m:?} names the key {key:?}")
                }
                other => panic!("{key:?}: expected a permanent refusal, got {other:?}"),
            }
        }
        assert!(blobs.local_path(&u).is_none(), "{key}");
    }
    // nothing was written outside the blob root
    assert!(!dir.path().join("x").exists());
    assert!(!dir.path().join("b").exists());
}

#[tokio::test]
async fn symlinks_below_the_root_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    let bucket_dir = dir.path().join("blobs/cuepoint-output");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    std::os::unix::fs::symlink(outside.path(), bucket_dir.join("link")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        bucket_dir.join("file-link"),
    )
    .unwrap();

    for key in ["link/secret.txt", "link/new.txt", "file-link"] {
        let u = uri(key);
        assert!(
            matches!(blobs.get(&u).await, Err(PortError::Permanent(m)) if m.contains("symbolic link")),
            "{key}"
        );
        assert!(
            matches!(
                blobs.put(&u, b"pwn".to_vec(), "t").await,
                Err(PortError::Permanent(_))
            ),
            "{key}"
        );
    }
    assert_eq!(
        std::fs::read(outside.path().join("secret.txt")).unwrap(),
        b"secret"
    );
    assert!(!outside.path().join("new.txt").exists());
    // links are not listed or followed
    blobs
        .put(&uri("real/a.txt"), b"a".to_vec(), "t")
        .await
        .unwrap();
    let all = blobs.list(&uri("r")).await.unwrap();
    assert_eq!(all, vec![uri("real/a.txt")]);
    assert!(blobs.list(&uri("link/")).await.is_err());
}

#[tokio::test]
async fn list_is_recursive_under_a_prefix_and_skips_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    for k in [
        "assets/a1/hls/index.m3u8",
        "assets/a1/hls/seg 1.ts",
        "assets/a1/results/vmap.xml",
        "assets/a10/x",
        "assets/b2/y",
    ] {
        blobs.put(&uri(k), b"x".to_vec(), "t").await.unwrap();
    }
    // a crashed writer's leftover
    std::fs::write(
        dir.path()
            .join("blobs/cuepoint-output/assets/a1/.cuepoint-tmp-dead"),
        b"half",
    )
    .unwrap();
    let keys = |v: Vec<S3Uri>| {
        v.into_iter()
            .map(|u| u.key.as_str().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(blobs.list(&uri("assets/a1/")).await.unwrap()),
        [
            "assets/a1/hls/index.m3u8",
            "assets/a1/hls/seg 1.ts",
            "assets/a1/results/vmap.xml"
        ]
    );
    // a prefix is a string prefix, not a directory
    assert_eq!(keys(blobs.list(&uri("assets/a1")).await.unwrap()).len(), 4);
    assert_eq!(
        keys(blobs.list(&uri("assets/a1/hls/seg")).await.unwrap()),
        ["assets/a1/hls/seg 1.ts"]
    );
    assert!(blobs.list(&uri("nothing/here/")).await.unwrap().is_empty());
    assert!(matches!(
        blobs.list(&uri("../")).await,
        Err(PortError::Permanent(_))
    ));
}

#[tokio::test]
async fn put_file_copies_and_accepts_in_place_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    let src = dir.path().join("upload.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let u = uri("in/big file.bin");
    blobs
        .put_file(&u, &src, "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(blobs.get(&u).await.unwrap().unwrap(), data);
    assert!(src.exists(), "the source stays");

    // the engine wrote straight into the blob path: put_file is a no-op, not a self-copy
    let out = uri("assets/a1/proxy/proxy.mp4");
    let p = blobs.local_path(&out).unwrap();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"in place").unwrap();
    blobs.put_file(&out, &p, "video/mp4").await.unwrap();
    assert_eq!(blobs.get(&out).await.unwrap().unwrap(), b"in place");

    let missing = dir.path().join("missing.bin");
    assert!(matches!(
        blobs.put_file(&u, &missing, "x").await,
        Err(PortError::NotFound(_))
    ));
}

#[tokio::test]
async fn key_that_collides_with_a_prefix_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    blobs.put(&uri("a/b"), b"x".to_vec(), "t").await.unwrap();
    // "a" is a directory here, "a/b/c" would need "a/b" to be one
    assert!(matches!(
        blobs.put(&uri("a"), b"y".to_vec(), "t").await,
        Err(PortError::Permanent(_))
    ));
    assert!(matches!(
        blobs.put(&uri("a/b/c"), b"y".to_vec(), "t").await,
        Err(PortError::Permanent(_))
    ));
    assert_eq!(blobs.get(&uri("a")).await.unwrap(), None);
    assert_eq!(blobs.get(&uri("a/b")).await.unwrap().unwrap(), b"x");
    assert!(matches!(
        blobs.readable_location(&uri("nope")).await,
        Err(PortError::NotFound(_))
    ));
}

/// Readers racing a writer see a whole old or a whole new object, never a partial one.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn writes_are_atomic_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    let u = uri("race/obj");
    let a = vec![b'a'; 256 * 1024];
    let z = vec![b'z'; 256 * 1024];
    blobs.put(&u, a.clone(), "t").await.unwrap();
    let writer = {
        let (blobs, u, a, z) = (blobs.clone(), u.clone(), a.clone(), z.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                blobs
                    .put(&u, if i % 2 == 0 { z.clone() } else { a.clone() }, "t")
                    .await
                    .unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let got = blobs.get(&u).await.unwrap().unwrap();
        assert!(got == a || got == z, "a torn read of {} bytes", got.len());
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
}

/// Writes in flight into one directory share its fsync: every write is counted and covered
/// (each one's content is there), and no more syncs run than writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn writes_into_one_directory_share_its_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    let before = b.blob_sync_stats();
    let writes: Vec<_> = (0..24)
        .map(|i| {
            let blobs = blobs.clone();
            tokio::spawn(async move {
                let key = if i % 4 == 0 {
                    format!("other/{i}.json")
                } else {
                    format!("asset/{i}.json")
                };
                blobs
                    .put(&uri(&key), format!("{i}").into_bytes(), "application/json")
                    .await
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    for i in 0..24 {
        let key = if i % 4 == 0 {
            format!("other/{i}.json")
        } else {
            format!("asset/{i}.json")
        };
        assert_eq!(
            blobs.get(&uri(&key)).await.unwrap(),
            Some(format!("{i}").into_bytes())
        );
    }
    let after = b.blob_sync_stats();
    assert_eq!(after.writes - before.writes, 24);
    let syncs = after.syncs - before.syncs;
    assert!((2..=24).contains(&syncs), "{after}");
}

/// `put_many` stores every object as `put` would, with one directory sync per directory.
#[tokio::test]
async fn put_many_syncs_each_directory_once() {
    use cuepoint_runtime::ports::BlobPut;
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = common::backend(&dir);
    let blobs = b.blobs();
    blobs
        .put(&uri("many/old.json"), b"old".to_vec(), "t")
        .await
        .unwrap();
    let before = b.blob_sync_stats();
    let objects: Vec<BlobPut> = [
        "many/a.json",
        "many/b.json",
        "many/old.json",
        "many/sub/c.csv",
    ]
    .iter()
    .map(|k| BlobPut {
        uri: uri(k),
        bytes: k.as_bytes().to_vec(),
        content_type: "application/json",
    })
    .collect();
    blobs.put_many(objects).await.unwrap();
    for k in [
        "many/a.json",
        "many/b.json",
        "many/old.json",
        "many/sub/c.csv",
    ] {
        assert_eq!(
            blobs.get(&uri(k)).await.unwrap().as_deref(),
            Some(k.as_bytes())
        );
    }
    let after = b.blob_sync_stats();
    assert_eq!(
        (after.writes - before.writes, after.syncs - before.syncs),
        (4, 2),
        "{after}"
    );
    // A refused key fails the call before anything is written.
    let bad = vec![
        BlobPut {
            uri: uri("many/d.json"),
            bytes: b"d".to_vec(),
            content_type: "t",
        },
        BlobPut {
            uri: uri("many/.cuepoint-tmp-x"),
            bytes: b"x".to_vec(),
            content_type: "t",
        },
    ];
    assert!(matches!(
        blobs.put_many(bad).await,
        Err(PortError::Permanent(_))
    ));
    assert_eq!(blobs.get(&uri("many/d.json")).await.unwrap(), None);
}
