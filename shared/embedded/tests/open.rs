//! Opening the data directory: files, WAL, migrations, concurrent openers, a newer schema.

mod common;

use cuepoint_embedded::{EmbeddedBackend, EmbeddedError, SCHEMA_VERSION};

#[test]
fn creates_database_and_blob_directory_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let b = EmbeddedBackend::open(&data, common::options(common::ManualClock::new(common::T0)))
        .unwrap();
    assert!(data.join("cuepoint.db").is_file());
    assert!(data.join("blobs").is_dir());
    assert_eq!(b.database_path(), data.join("cuepoint.db"));
    let conn = rusqlite::Connection::open(data.join("cuepoint.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn many_processes_opening_a_fresh_directory_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                EmbeddedBackend::open(&path, common::options(common::ManualClock::new(common::T0)))
                    .map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        EmbeddedBackend::open(
            dir.path(),
            common::options(common::ManualClock::new(common::T0)),
        )
        .unwrap(),
    );
    let conn = rusqlite::Connection::open(dir.path().join("cuepoint.db")).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match EmbeddedBackend::open(
        dir.path(),
        common::options(common::ManualClock::new(common::T0)),
    ) {
        Err(EmbeddedError::SchemaTooNew {
            found, supported, ..
        }) => assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a database from the future"),
    }
}

#[test]
fn a_file_in_place_of_the_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    match EmbeddedBackend::open(&file, common::options(common::ManualClock::new(common::T0))) {
        Err(e @ EmbeddedError::DataDir { .. }) => {
            assert!(e.to_string().contains("not-a-dir"), "{e}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a file as a directory"),
    }
}
