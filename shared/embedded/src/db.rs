//! The one SQLite database: connections, schema migrations, error mapping.
//!
//! Every process opens its own connections to `<data_dir>/cuepoint.db`. The database runs in
//! WAL mode (readers never block the writer), with a busy timeout so a writer waits for another
//! process's write instead of failing, and every write transaction starts with
//! `BEGIN IMMEDIATE` (taking the write lock up front: a deferred transaction that upgrades from
//! read to write can fail with SQLITE_BUSY without waiting). Blocking SQLite calls run in
//! `tokio::task::spawn_blocking`; a small pool keeps connections (and their prepared-statement
//! caches) between calls.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cuepoint_runtime::ports::PortError;
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::EmbeddedError;

/// Idle connections kept per process; more are opened under load and closed afterwards.
const MAX_IDLE_CONNECTIONS: usize = 8;
const STATEMENT_CACHE: usize = 64;

/// Schema migrations, applied in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: queues, dedup keys, assets, counters, the job ledger.
    r#"
    CREATE TABLE messages (
        seq                 INTEGER PRIMARY KEY,
        message_id          TEXT    NOT NULL UNIQUE,
        queue               TEXT    NOT NULL,
        body                TEXT    NOT NULL,
        sent_at_ms          INTEGER NOT NULL,
        visible_at_ms       INTEGER NOT NULL,
        receive_count       INTEGER NOT NULL DEFAULT 0,
        receipt             TEXT    UNIQUE,
        failure_reason      TEXT,
        source_queue        TEXT,
        dead_lettered_at_ms INTEGER
    );
    CREATE INDEX messages_ready ON messages (queue, visible_at_ms);

    -- A dedup key is accepted once per queue, forever (it outlives the message).
    CREATE TABLE message_dedup (
        queue         TEXT    NOT NULL,
        dedup_key     TEXT    NOT NULL,
        message_id    TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (queue, dedup_key)
    ) WITHOUT ROWID;

    CREATE TABLE assets (
        id            TEXT    PRIMARY KEY,
        version       INTEGER NOT NULL,
        state         TEXT    NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        json          TEXT    NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX assets_by_state ON assets (state);

    CREATE TABLE counters (
        name  TEXT    PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE jobs (
        service       TEXT    NOT NULL,
        job_id        TEXT    NOT NULL,
        client_token  TEXT    NOT NULL,
        asset_id      TEXT    NOT NULL,
        request       TEXT    NOT NULL,
        status        TEXT    NOT NULL,
        result        TEXT,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (service, job_id),
        UNIQUE (service, client_token)
    );
    CREATE INDEX jobs_by_asset ON jobs (service, asset_id);
    CREATE INDEX jobs_by_status ON jobs (service, status);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) struct Db {
    path: PathBuf,
    busy_timeout: Duration,
    synchronous_full: bool,
    idle: Mutex<Vec<Connection>>,
}

impl Db {
    /// Open (creating if needed) and migrate the database file.
    pub(crate) fn open(
        path: &Path,
        busy_timeout: Duration,
        synchronous_full: bool,
    ) -> Result<Arc<Db>, EmbeddedError> {
        let db = Db {
            path: path.to_path_buf(),
            busy_timeout,
            synchronous_full,
            idle: Mutex::new(Vec::new()),
        };
        let open_err = |source: rusqlite::Error| EmbeddedError::Database {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = db.connect().map_err(open_err)?;
        // WAL is a property of the file: set once here, every later connection uses it.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(EmbeddedError::NoWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        migrate(&mut conn, path)?;
        db.release(conn);
        Ok(Arc::new(db))
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        // NORMAL in WAL mode survives a killed process (what the fault harness does); FULL also
        // survives power loss at one fsync per commit.
        conn.pragma_update(
            None,
            "synchronous",
            if self.synchronous_full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn acquire(&self) -> Result<Connection, PortError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(c) => Ok(c),
            None => self
                .connect()
                .map_err(|e| sql_error(&format!("opening {}", self.path.display()), e)),
        }
    }

    fn release(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE_CONNECTIONS {
                idle.push(conn);
            }
        }
    }

    /// Run `f` on a pooled connection (blocking: call from `spawn_blocking`).
    pub(crate) fn with<T, E: From<PortError>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.acquire()?;
        let out = f(&mut conn);
        // A connection left inside a transaction (should not happen: Transaction rolls back on
        // drop) is not returned to the pool.
        if conn.is_autocommit() {
            self.release(conn);
        }
        out
    }
}

/// Run blocking database work off the async runtime.
pub(crate) async fn blocking<T, E>(
    db: &Arc<Db>,
    f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<PortError> + Send + 'static,
{
    let db = Arc::clone(db);
    match tokio::task::spawn_blocking(move || db.with(f)).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => {
            Err(PortError::Permanent(format!("database task panicked: {e}")).into())
        }
        Err(e) => Err(PortError::Transient(format!("database task cancelled: {e}")).into()),
    }
}

/// `BEGIN IMMEDIATE`: take the write lock now (waiting up to the busy timeout).
pub(crate) fn write_tx(conn: &mut Connection) -> Result<Transaction<'_>, PortError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_error("begin write", e))
}

/// Map a SQLite error to a port error: a busy/locked database is transient, the rest permanent.
pub(crate) fn sql_error(what: &str, e: rusqlite::Error) -> PortError {
    let transient = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::OutOfMemory
        )
    );
    let msg = format!("sqlite {what}: {e}");
    if transient {
        PortError::Transient(msg)
    } else {
        PortError::Permanent(msg)
    }
}

/// Extension: `.sql("what")?` on rusqlite results.
pub(crate) trait SqlResultExt<T> {
    fn sql(self, what: &str) -> Result<T, PortError>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn sql(self, what: &str) -> Result<T, PortError> {
        self.map_err(|e| sql_error(what, e))
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), EmbeddedError> {
    let mig = |source: rusqlite::Error| EmbeddedError::Migration {
        path: path.to_path_buf(),
        source,
    };
    // Several processes may open a fresh file at once: the write lock makes one of them migrate
    // and the others see the result.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(mig)?;
    let found: u32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(mig)?;
    if found > SCHEMA_VERSION {
        return Err(EmbeddedError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql).map_err(mig)?;
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(mig)?;
        tracing::info!(path = %path.display(), from = found, to = SCHEMA_VERSION, "migrated database schema");
    }
    tx.commit().map_err(mig)
}
