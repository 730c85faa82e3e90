//! The embedded backend as a chaos [`Target`]: SQLite queues, store and bus and a blob
//! directory in a throw-away data directory, routed by infra/routing.json plus one audit rule.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cuepoint_core::routing::{RoutingDefinition, ROUTING_JSON};
use cuepoint_embedded::{EmbeddedBackend, EmbeddedOptions, SqliteQueue};
use cuepoint_runtime::config::Settings;
use cuepoint_runtime::ports::PortResult;
use cuepoint_workers::handlers::WorkerKind;
use serde_json::{json, Value};

use crate::harness::{Backlog, BoxError, Target};

pub const AUDIT_QUEUE: &str = "audit";

/// infra/routing.json, plus the `audit` queue and a rule sending it every terminal pipeline
/// event, with every queue's `maxReceiveCount` set to `max_receive_count`.
///
/// The redrive limit is raised because the injected fault rate (10% of *every* port call) is
/// far above production's: a handler making ten calls fails two attempts in three, and five
/// receives would dead-letter healthy work. What the run checks is that nothing is lost or
/// duplicated while retrying; dead letters are still counted and reported.
pub fn routing_text(max_receive_count: u32) -> Result<String, BoxError> {
    let mut doc: Value = serde_json::from_str(ROUTING_JSON)?;
    let queues = doc
        .get_mut("queues")
        .and_then(Value::as_array_mut)
        .ok_or("routing.json has no queues array")?;
    for q in queues.iter_mut() {
        q["maxReceiveCount"] = json!(max_receive_count);
    }
    queues.push(json!({"name": AUDIT_QUEUE, "worker": "audit", "visibilityTimeoutSeconds": 60, "maxReceiveCount": max_receive_count}));
    let rules = doc
        .get_mut("rules")
        .and_then(Value::as_array_mut)
        .ok_or("routing.json has no rules array")?;
    rules.push(json!({
        "name": "audit-terminal",
        "queue": AUDIT_QUEUE,
        "pattern": {"source": ["cuepoint.pipeline"], "detail-type": ["Asset Completed", "Asset Failed"]}
    }));
    Ok(serde_json::to_string_pretty(&doc)?)
}

struct SqliteBacklog {
    queues: Vec<Arc<SqliteQueue>>,
}

#[async_trait]
impl Backlog for SqliteBacklog {
    async fn messages_left(&self) -> PortResult<u64> {
        let mut n = 0;
        for q in &self.queues {
            let c = q.counts().await?;
            n += c.visible + c.invisible;
        }
        Ok(n)
    }
}

/// Open an embedded backend in `settings.data_dir` and describe it as a target.
pub async fn target(settings: Settings, max_receive_count: u32) -> Result<Target, BoxError> {
    let mut vars = BTreeMap::new();
    vars.insert("IngestBucket", settings.ingest_bucket.as_str());
    vars.insert("WorkflowName", settings.workflow.as_str());
    let routing = RoutingDefinition::from_json_str(&routing_text(max_receive_count)?, &vars)?;
    let topic_name = routing
        .topics()
        .first()
        .map(|t| t.name.clone())
        .ok_or("routing definition has no topic")?;
    let dir: &Path = &settings.data_dir;
    let dir = dir.to_path_buf();
    let opts = EmbeddedOptions::new(routing);
    let backend: Arc<EmbeddedBackend> =
        tokio::task::spawn_blocking(move || EmbeddedBackend::open(&dir, opts)).await??;
    let queues = WorkerKind::ALL
        .iter()
        .map(|k| (k.queue().to_string(), backend.queue(k.queue())))
        .collect();
    let backlog = SqliteBacklog {
        queues: WorkerKind::ALL
            .iter()
            .map(|k| backend.sqlite_queue(k.queue()))
            .collect(),
    };
    Ok(Target {
        name: format!("embedded ({})", backend.data_dir().display()),
        store: backend.store(),
        blobs: backend.blobs(),
        bus: backend.bus(),
        topic: backend.topic(&topic_name),
        queues,
        audit: backend.queue(AUDIT_QUEUE),
        backlog: Arc::new(backlog),
        dead_letters: Some(backend.dead_letters()),
        bus_dedups_pipeline_events: true,
        database: Some(settings.data_dir.join(cuepoint_embedded::DATABASE_FILE)),
        embedded: Some(Arc::clone(&backend)),
        settings,
    })
}
