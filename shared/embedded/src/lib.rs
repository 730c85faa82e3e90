//! Embedded backends behind cuepoint's ports: one SQLite database (`<data_dir>/cuepoint.db`,
//! WAL mode) holds the queues, dead-letter queues, dedup keys, asset records, counters and the
//! local engine's job ledger; blobs are files under `<data_dir>/blobs/`.
//!
//! Several worker processes may open the same data directory at once (each with its own
//! connections; SQLite's locking and `BEGIN IMMEDIATE` serialize writers), or one process may
//! run every worker.

pub mod blobs;
pub mod bus;
mod db;
pub mod holder;
mod ids;
pub mod ledger;
pub mod queue;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cuepoint_core::routing::RoutingDefinition;
use cuepoint_runtime::ports::{
    AssetStore, BlobStore, Clock, DeadLetters, EventBus, JobLedger, Queue, SystemClock, Topic,
};

pub use blobs::FsBlobStore;
pub use bus::{PutOutcome, SqliteEventBus, SqliteTopic};
pub use db::{WriteStats, SCHEMA_VERSION};
pub use ids::{new_token, new_uuid};
pub use ledger::SqliteJobLedger;
pub use queue::{dead_letter_queue_name, QueueCounts, Redrive, SqliteDeadLetters, SqliteQueue};
pub use store::SqliteAssetStore;

use db::Db;
use queue::Notifiers;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "cuepoint.db";
/// The blob directory inside the data directory.
pub const BLOB_DIR: &str = "blobs";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path}: journal mode is {mode:?}, WAL is required (is the file on a network file system?)")]
    NoWal { path: PathBuf, mode: String },
    #[error("database {path}: schema migration failed: {source}")]
    Migration {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}; this build knows up to {supported} (a newer cuepoint wrote it)")]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

impl EmbeddedError {
    /// Another connection held a lock (SQLITE_BUSY / SQLITE_LOCKED): worth trying again.
    pub fn is_busy(&self) -> bool {
        match self {
            Self::Database { source, .. } | Self::Migration { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

/// How to open the embedded backend.
#[derive(Clone)]
pub struct EmbeddedOptions {
    /// Account id in event envelopes and ARNs.
    pub account: String,
    /// Region in event envelopes and ARNs.
    pub region: String,
    /// Queues (with their redrive policies), rules and topics: infra/routing.json, loaded
    /// through `RoutingDefinition::load`.
    pub routing: Arc<RoutingDefinition>,
    pub clock: Arc<dyn Clock>,
    /// How long a writer waits for another connection's write lock before failing (transient).
    pub busy_timeout: Duration,
    /// How often a long poll re-checks the database for messages sent by other processes.
    pub poll_interval: Duration,
    /// `synchronous = FULL` (survives power loss; one fsync per commit) instead of NORMAL
    /// (survives a killed process; the default).
    pub synchronous_full: bool,
}

/// How often a long poll looks at the database for messages another process sent (a send in
/// the same process wakes its pollers at once).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);

impl EmbeddedOptions {
    /// Account `000000000000`, region `local`, the system clock, a 10 s busy timeout, 50 ms
    /// polling, `synchronous = NORMAL`.
    pub fn new(routing: RoutingDefinition) -> Self {
        Self {
            account: "000000000000".into(),
            region: "local".into(),
            routing: Arc::new(routing),
            clock: Arc::new(SystemClock),
            busy_timeout: Duration::from_secs(10),
            poll_interval: DEFAULT_POLL_INTERVAL,
            synchronous_full: false,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The embedded backend of one process: hands out the port implementations.
pub struct EmbeddedBackend {
    data_dir: PathBuf,
    db: Arc<Db>,
    opts: EmbeddedOptions,
    notifiers: Arc<Notifiers>,
    store: Arc<SqliteAssetStore>,
    blobs: Arc<FsBlobStore>,
    ledger: Arc<SqliteJobLedger>,
    dead_letters: Arc<SqliteDeadLetters>,
    bus: Arc<SqliteEventBus>,
    orphans_released: u64,
}

impl EmbeddedBackend {
    /// Open (creating and migrating if needed) the database and blob directory under
    /// `data_dir`. Blocking (file and SQLite work): call it at start-up.
    pub fn open(
        data_dir: &Path,
        opts: EmbeddedOptions,
    ) -> Result<Arc<EmbeddedBackend>, EmbeddedError> {
        let dir_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EmbeddedError::DataDir { path, source }
        };
        std::fs::create_dir_all(data_dir).map_err(dir_err(data_dir))?;
        let blob_root = data_dir.join(BLOB_DIR);
        std::fs::create_dir_all(&blob_root).map_err(dir_err(&blob_root))?;
        let blob_root = std::fs::canonicalize(&blob_root).map_err(dir_err(&blob_root))?;
        let db = Db::open(
            &data_dir.join(DATABASE_FILE),
            opts.busy_timeout,
            opts.synchronous_full,
        )?;
        // Messages held by a process that is gone come back now, not after their visibility
        // timeout (best effort: they come back then anyway).
        let orphans_released = match db
            .with(|conn| queue::release_orphans(conn, opts.clock.now_ms()))
        {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(
                        released = n,
                        "messages held by a process that is gone made visible again"
                    );
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release the messages of gone processes; they return after their visibility timeout");
                0
            }
        };
        let notifiers = Arc::new(Notifiers::default());
        let sources: Vec<(String, Redrive)> = opts
            .routing
            .queues()
            .iter()
            .map(|q| (q.name.clone(), redrive_for(&q.name, q.max_receive_count)))
            .collect();
        Ok(Arc::new(EmbeddedBackend {
            data_dir: data_dir.to_path_buf(),
            store: Arc::new(SqliteAssetStore::new(Arc::clone(&db))),
            blobs: Arc::new(FsBlobStore::new(blob_root)),
            ledger: Arc::new(SqliteJobLedger::new(Arc::clone(&db))),
            dead_letters: Arc::new(SqliteDeadLetters::new(
                Arc::clone(&db),
                Arc::clone(&opts.clock),
                sources,
                Arc::clone(&notifiers),
            )),
            bus: Arc::new(SqliteEventBus::new(
                Arc::clone(&db),
                Arc::clone(&opts.clock),
                Arc::clone(&opts.routing),
                opts.account.clone(),
                opts.region.clone(),
                Arc::clone(&notifiers),
            )),
            db,
            opts,
            notifiers,
            orphans_released,
        }))
    }

    /// How many writes this process's writer thread grouped into how many transactions.
    pub fn write_stats(&self) -> WriteStats {
        self.db.write_stats()
    }

    /// How many blob writes shared how many directory fsyncs in this process.
    pub fn blob_sync_stats(&self) -> blobs::DirSyncStats {
        self.blobs.dir_sync_stats()
    }

    /// Messages this open released from processes that are gone.
    pub fn orphans_released(&self) -> u64 {
        self.orphans_released
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    pub fn options(&self) -> &EmbeddedOptions {
        &self.opts
    }

    /// The redrive policy of a queue in the routing definition (`None` for other queues,
    /// including the dead-letter queues themselves).
    pub fn redrive_of(&self, queue: &str) -> Option<Redrive> {
        self.opts
            .routing
            .queue(queue)
            .map(|q| redrive_for(&q.name, q.max_receive_count))
    }

    /// The named queue, concrete (for `send_dedup` and `counts`).
    pub fn sqlite_queue(&self, name: &str) -> Arc<SqliteQueue> {
        Arc::new(SqliteQueue::new(
            name,
            Arc::clone(&self.db),
            Arc::clone(&self.opts.clock),
            self.redrive_of(name),
            Arc::clone(&self.notifiers),
            self.opts.poll_interval,
        ))
    }

    /// The named queue. Queues in the routing definition get their redrive policy; any other
    /// name is a plain queue without one.
    pub fn queue(&self, name: &str) -> Arc<dyn Queue> {
        self.sqlite_queue(name)
    }

    pub fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        self.dead_letters.clone()
    }

    /// The event bus, routing by the routing definition.
    pub fn bus(&self) -> Arc<dyn EventBus> {
        self.bus.clone()
    }

    /// The event bus, concrete (for `put_events_outcome` and `unrouted_count`).
    pub fn event_bus(&self) -> Arc<SqliteEventBus> {
        Arc::clone(&self.bus)
    }

    /// The named topic (routing definition `topics`); ARN `arn:aws:sns:<region>:<account>:<name>`.
    pub fn topic(&self, name: &str) -> Arc<dyn Topic> {
        self.sqlite_topic(name)
    }

    pub fn sqlite_topic(&self, name: &str) -> Arc<SqliteTopic> {
        Arc::new(SqliteTopic::new(
            name,
            format!(
                "arn:aws:sns:{}:{}:{name}",
                self.opts.region, self.opts.account
            ),
            self.opts.routing.topic(name).cloned().into_iter().collect(),
            Arc::clone(&self.db),
            Arc::clone(&self.opts.clock),
            Arc::clone(&self.notifiers),
        ))
    }

    pub fn store(&self) -> Arc<dyn AssetStore> {
        self.store.clone()
    }

    pub fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }

    /// The blob store, concrete (for `path_of` and `root`).
    pub fn fs_blobs(&self) -> Arc<FsBlobStore> {
        Arc::clone(&self.blobs)
    }

    pub fn ledger(&self) -> Arc<dyn JobLedger> {
        self.ledger.clone()
    }
}

fn redrive_for(queue: &str, max_receive_count: u32) -> Redrive {
    Redrive {
        max_receive_count,
        dead_letter_queue: dead_letter_queue_name(queue),
    }
}
