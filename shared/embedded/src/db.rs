//! The one SQLite database: connections, schema migrations, error mapping.
//!
//! Every process opens its own connections to `<data_dir>/cuepoint.db`. The database runs in
//! WAL mode (readers never block the writer), with a busy timeout so a writer waits for another
//! process's write instead of failing, and every write transaction starts with
//! `BEGIN IMMEDIATE` (taking the write lock up front: a deferred transaction that upgrades from
//! read to write can fail with SQLITE_BUSY without waiting). Blocking SQLite calls run in
//! `tokio::task::spawn_blocking`; a small pool keeps connections (and their prepared-statement
//! caches) between calls.
//!
//! Writes go through one writer thread per open database (group commit): callers hand it their
//! work and wait; the thread takes every write waiting at that moment, runs each in a savepoint
//! of one `BEGIN IMMEDIATE` transaction and commits once. A caller hears back only after the
//! commit that holds its write (so an acknowledged write survives a killed process exactly as a
//! transaction of its own did); a write that fails rolls back to its savepoint and leaves the
//! others alone; when the commit fails, every write of the batch fails. Many small transactions
//! each rewrote the same index pages into the WAL and took SQLite's locks; a batch writes them
//! once.
//!
//! Writers of one process take turns on a mutex before asking SQLite for the write lock: SQLite
//! allows one writer at a time anyway, and a writer refused by SQLite backs off by sleeping
//! (1 ms growing to 100 ms with the stock busy timeout). The mutex wakes the next writer as soon
//! as the previous one commits. Against another process's writer the busy handler still waits,
//! in short naps (0.2 ms, then 1 ms, then 5 ms) up to the busy timeout.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cuepoint_runtime::ports::PortError;
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::EmbeddedError;

/// Idle connections kept per process at any time. More are opened under load and kept while
/// they are in use: opening one costs several files, a shared-memory mapping and a parse of
/// the schema, which a burst of readers used to pay a dozen times per asset.
const MIN_IDLE_CONNECTIONS: usize = 8;
/// Connections beyond `MIN_IDLE_CONNECTIONS` left unused this long are closed (their page
/// caches are memory an idle worker should not keep).
const IDLE_CONNECTION_LIFETIME: Duration = Duration::from_secs(10);
/// Most idle connections kept whatever their age.
const MAX_IDLE_CONNECTIONS: usize = 64;
const STATEMENT_CACHE: usize = 64;
/// Most writes one transaction of the writer thread takes (a bound on how long the write lock
/// is held against other processes).
const MAX_BATCH: usize = 256;

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
    /// Idle connections with when each was last returned, most recent last.
    idle: Mutex<Vec<(Connection, Instant)>>,
    /// The writer thread's inbox; it ends when the database is dropped.
    writer: Mutex<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    stats: Arc<WriteCounters>,
}

/// What the writer thread did so far.
#[derive(Default)]
struct WriteCounters {
    transactions: AtomicU64,
    writes: AtomicU64,
}

/// Group-commit figures of one open database (this process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Write transactions the writer thread ran (committed or not).
    pub transactions: u64,
    /// Callers' writes run in them.
    pub writes: u64,
}

/// `4.1 (4100 writes in 1000 transactions)`: how many writes a commit carried on average.
impl std::fmt::Display for WriteStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} ({} writes in {} transactions)",
            self.writes as f64 / self.transactions.max(1) as f64,
            self.writes,
            self.transactions
        )
    }
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
            writer: Mutex::new(None),
            stats: Arc::default(),
        };
        // Processes opening the same fresh file at once (`cuepoint run` and a `cuepoint status`
        // beside it) can get SQLITE_BUSY without SQLite calling the busy handler (switching the
        // journal to WAL, or the first schema write): try again until the busy timeout.
        let deadline = Instant::now() + busy_timeout;
        let mut nap = Duration::from_millis(2);
        loop {
            match db.prepare_file(path) {
                Err(e) if e.is_busy() && Instant::now() < deadline => {
                    tracing::debug!(path = %path.display(), error = %e, "database busy while opening; trying again");
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(Arc::new(db)),
            }
        }
    }

    /// WAL on, schema migrated; the connection goes to the pool.
    fn prepare_file(&self, path: &Path) -> Result<(), EmbeddedError> {
        let db = self;
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
        Ok(())
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        BUSY_TIMEOUT_MS.store(
            u64::try_from(self.busy_timeout.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        conn.busy_handler(Some(busy_wait))?;
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
        // Statement journals and sorts in memory: a temporary file per statement costs more
        // than the few pages they hold.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn acquire(&self) -> Result<Connection, PortError> {
        let pooled = self
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .map(|(c, _)| c);
        match pooled {
            Some(c) => Ok(c),
            None => self
                .connect()
                .map_err(|e| sql_error(&format!("opening {}", self.path.display()), e)),
        }
    }

    fn release(&self, conn: Connection) {
        let now = Instant::now();
        let stale: Vec<(Connection, Instant)> = match self.idle.lock() {
            Ok(mut idle) => {
                if idle.len() < MAX_IDLE_CONNECTIONS {
                    idle.push((conn, now));
                }
                // The least recently used sit at the bottom of the stack.
                let keep_from = idle
                    .iter()
                    .position(|(_, t)| now.duration_since(*t) < IDLE_CONNECTION_LIFETIME)
                    .unwrap_or(idle.len())
                    .min(idle.len().saturating_sub(MIN_IDLE_CONNECTIONS));
                idle.drain(..keep_from).collect()
            }
            Err(_) => Vec::new(),
        };
        // Closed outside the lock.
        drop(stale);
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

    /// Run `f` as one write in the writer thread's next transaction (inside a savepoint of its
    /// own), and answer once that transaction committed. `f`'s error rolls back only `f`'s
    /// changes; a failed commit fails every write of its batch (transient: nothing was written).
    pub(crate) async fn write<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<PortError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Box::new(Job {
            f: Some(f),
            outcome: None,
            reply,
        }))?;
        match answer.await {
            Ok(out) => out,
            Err(_) => {
                Err(PortError::Transient("database writer stopped before answering".into()).into())
            }
        }
    }

    pub(crate) fn write_stats(&self) -> WriteStats {
        WriteStats {
            transactions: self.stats.transactions.load(Ordering::Relaxed),
            writes: self.stats.writes.load(Ordering::Relaxed),
        }
    }

    fn submit(&self, job: Box<dyn WriteJob>) -> Result<(), PortError> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let job = match writer.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                // The thread is gone (it panicked): start another.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let conn = self
            .connect()
            .map_err(|e| sql_error(&format!("opening {}", self.path.display()), e))?;
        let (tx, rx) = mpsc::channel::<Box<dyn WriteJob>>();
        let stats = Arc::clone(&self.stats);
        std::thread::Builder::new()
            .name("cuepoint-db-writer".into())
            .spawn(move || writer_loop(conn, rx, &stats))
            .map_err(|e| PortError::Transient(format!("starting the database writer: {e}")))?;
        tx.send(job)
            .map_err(|_| PortError::Transient("database writer stopped at once".into()))?;
        *writer = Some(tx);
        Ok(())
    }
}

/// What one write did inside the batch transaction.
enum Ran {
    /// Its changes stay in the transaction; the caller is told after the commit.
    Kept,
    /// It failed and its changes were rolled back; the caller gets its error after the commit.
    RolledBack,
    /// The transaction itself is no longer usable (SQLite rolled it back, or a savepoint could
    /// not be managed): the whole batch is rolled back and fails.
    Broken(PortError),
}

/// One caller's write, waiting for the writer thread.
trait WriteJob: Send {
    /// Run inside the batch transaction (once).
    fn run(&mut self, conn: &Connection) -> Ran;
    /// Answer the caller: `None` when the batch committed, or why it did not.
    fn answer(self: Box<Self>, batch_failed: Option<&PortError>);
}

struct Job<F, T, E> {
    f: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> WriteJob for Job<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<PortError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> Ran {
        let Some(f) = self.f.take() else {
            return Ran::Broken(PortError::Permanent("a write ran twice".into()));
        };
        if let Err(e) = savepoint(conn, "SAVEPOINT write") {
            return Ran::Broken(e);
        }
        let out = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
            Ok(out) => out,
            Err(_) => Err(PortError::Permanent("database write panicked".into()).into()),
        };
        // SQLite ends the whole transaction on some errors (a full disk, an I/O error).
        if conn.is_autocommit() {
            self.outcome = Some(out);
            return Ran::Broken(PortError::Transient(
                "sqlite rolled the write transaction back".into(),
            ));
        }
        let ran = if out.is_ok() {
            savepoint(conn, "RELEASE write").map(|()| Ran::Kept)
        } else {
            savepoint(conn, "ROLLBACK TO write")
                .and_then(|()| savepoint(conn, "RELEASE write"))
                .map(|()| Ran::RolledBack)
        };
        self.outcome = Some(out);
        ran.unwrap_or_else(Ran::Broken)
    }

    fn answer(self: Box<Self>, batch_failed: Option<&PortError>) {
        let out = match (self.outcome, batch_failed) {
            // Its own failure stands (its changes were rolled back either way).
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), None) => Ok(v),
            (_, Some(e)) => Err(e.clone().into()),
            (None, None) => Err(PortError::Transient("write was not run".into()).into()),
        };
        // The caller may have stopped waiting (a cancelled handler): nothing to do then.
        let _ = self.reply.send(out);
    }
}

fn savepoint(conn: &Connection, sql: &str) -> Result<(), PortError> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(|_| ())
        .sql(sql)
}

/// The writer thread: every write waiting when it looks goes into one transaction.
fn writer_loop(
    mut conn: Connection,
    inbox: mpsc::Receiver<Box<dyn WriteJob>>,
    stats: &WriteCounters,
) {
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        run_batch(&mut conn, batch);
    }
}

fn run_batch(conn: &mut Connection, mut batch: Vec<Box<dyn WriteJob>>) {
    let tx = match write_tx(conn) {
        Ok(tx) => tx,
        Err(e) => {
            for job in batch {
                job.answer(Some(&e));
            }
            return;
        }
    };
    let mut broken = None;
    for job in batch.iter_mut() {
        if let Ran::Broken(e) = job.run(&tx) {
            broken = Some(e);
            break;
        }
    }
    let failed = match broken {
        // Dropping the transaction rolls back whatever is left of it.
        Some(e) => {
            drop(tx);
            Some(e)
        }
        None => tx.commit().sql("commit").err(),
    };
    for job in batch {
        job.answer(failed.as_ref());
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

/// The busy timeout of the databases this process opened (one setting per process).
static BUSY_TIMEOUT_MS: AtomicU64 = AtomicU64::new(10_000);

thread_local! {
    /// When the current wait for the write lock began.
    static BUSY_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Set while `write_tx` asks for the lock: the wait began when it asked for its turn.
    static BUSY_FROM_TURN: Cell<bool> = const { Cell::new(false) };
}

/// SQLite's busy handler: `true` to try again after a nap, `false` to give up (SQLITE_BUSY).
/// Short naps first: the other writer usually commits within a millisecond.
fn busy_wait(tries: i32) -> bool {
    let now = Instant::now();
    let since = BUSY_SINCE.with(|c| {
        let from_turn = BUSY_FROM_TURN.with(Cell::get);
        if (tries == 0 && !from_turn) || c.get().is_none() {
            c.set(Some(now));
        }
        c.get().unwrap_or(now)
    });
    let timeout = Duration::from_millis(BUSY_TIMEOUT_MS.load(Ordering::Relaxed));
    if now.duration_since(since) >= timeout {
        return false;
    }
    let nap = match tries {
        0..=19 => Duration::from_micros(200),
        20..=99 => Duration::from_millis(1),
        _ => Duration::from_millis(5),
    };
    std::thread::sleep(nap);
    true
}

/// Writers of this process take turns here before asking SQLite for the write lock.
static WRITE_TURN: WriteTurn = WriteTurn {
    taken: Mutex::new(false),
    freed: Condvar::new(),
};

struct WriteTurn {
    taken: Mutex<bool>,
    freed: Condvar,
}

impl WriteTurn {
    /// Wait for the turn up to `timeout` (the busy timeout: a writer never waits longer in all
    /// than it would have waited on SQLite alone).
    fn take(&'static self, timeout: Duration) -> Option<TurnGuard> {
        let deadline = Instant::now() + timeout;
        // Nothing is left half-done behind this flag by a panicking holder (its guard frees the
        // turn when unwinding), so a poisoned lock is still good.
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        while *taken {
            let left = deadline.checked_duration_since(Instant::now())?;
            taken = self
                .freed
                .wait_timeout(taken, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *taken = true;
        Some(TurnGuard { turn: self })
    }
}

struct TurnGuard {
    turn: &'static WriteTurn,
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        *self.turn.taken.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.turn.freed.notify_one();
    }
}

/// A write transaction holding this process's write turn until it commits or rolls back.
pub(crate) struct WriteTx<'c> {
    // Declared first: the transaction ends (commit or rollback) before the turn is passed on.
    tx: Transaction<'c>,
    _turn: TurnGuard,
}

impl<'c> WriteTx<'c> {
    pub(crate) fn commit(self) -> rusqlite::Result<()> {
        let WriteTx { tx, _turn } = self;
        tx.commit()
    }
}

impl<'c> Deref for WriteTx<'c> {
    type Target = Transaction<'c>;
    fn deref(&self) -> &Transaction<'c> {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// `BEGIN IMMEDIATE`: take the write lock now (waiting for this process's other writers, then
/// for another process's, up to the busy timeout in all).
pub(crate) fn write_tx(conn: &mut Connection) -> Result<WriteTx<'_>, PortError> {
    let timeout = Duration::from_millis(BUSY_TIMEOUT_MS.load(Ordering::Relaxed));
    let started = Instant::now();
    let turn = WRITE_TURN.take(timeout).ok_or_else(|| {
        PortError::Transient(format!(
            "sqlite begin write: database is locked (waited {timeout:?} for this process's other writers)"
        ))
    })?;
    // The busy handler measures its wait from its first try; what was spent waiting for the
    // turn counts against the same timeout.
    BUSY_SINCE.with(|c| c.set(Some(started)));
    BUSY_FROM_TURN.with(|c| c.set(true));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate);
    BUSY_FROM_TURN.with(|c| c.set(false));
    let tx = tx.map_err(|e| sql_error("begin write", e))?;
    Ok(WriteTx { tx, _turn: turn })
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
