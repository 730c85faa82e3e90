//! Running workers: one consume loop per worker, all sharing the same wiring, stopped together.

use std::collections::BTreeMap;
use std::sync::Arc;

use cuepoint_runtime::consumer::{Consumer, ConsumerStats};
use cuepoint_runtime::metrics::Metrics;
use cuepoint_runtime::ports::Queue;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::context::WorkerContext;
use crate::handlers::{WorkerHandler, WorkerKind};

/// A set of running workers.
pub struct RunningWorkers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    pub stats: BTreeMap<WorkerKind, Arc<ConsumerStats>>,
}

/// Start a consume loop for each of `kinds` on its queue.
pub fn start(
    ctx: &WorkerContext,
    kinds: &[WorkerKind],
    queue: impl Fn(&str) -> Arc<dyn Queue>,
    json_metrics: bool,
) -> RunningWorkers {
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut stats = BTreeMap::new();
    for &kind in kinds {
        let handler = Arc::new(WorkerHandler {
            kind,
            ctx: ctx.clone(),
        });
        let consumer = Consumer::new(
            kind.queue(),
            queue(kind.queue()),
            handler,
            ctx.settings.consumer.clone(),
        )
        .with_metrics(Metrics::new(kind.queue(), json_metrics));
        stats.insert(kind, consumer.stats.clone());
        let mut rx = stop_rx.clone();
        tasks.spawn(consumer.run(async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }));
    }
    RunningWorkers { stop, tasks, stats }
}

impl RunningWorkers {
    /// Stop receiving, drain in-flight work, wait for every loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
