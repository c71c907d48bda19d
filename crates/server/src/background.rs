//! The background work of a node: the erasure worker, which runs queued deletion tasks batch by
//! batch, and the retention purge, which deletes expired records and pending updates. Both work
//! in small transactions and pause after each for as long as it took, so that they take at most
//! about half of the database's write time and requests never wait behind more than one batch.
//! Both stop between two transactions when the node shuts down; an unfinished task is resumed by
//! the next start (or by another node, which may also help with it at once: batches of one task
//! may run side by side).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_core::value::now;
use parley_core::{Task, TaskStatus};
use parley_store::{Store, StoreError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::Config;
use crate::metrics::Metrics;

/// How often the erasure worker looks for tasks it was not told about (queued by another node,
/// or left when storage was unavailable).
const TASK_POLL: Duration = Duration::from_secs(5);

/// The settings the background work takes from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub retention_interval: Duration,
    pub delete_batch: u32,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            retention_interval: Duration::from_secs(config.retention_interval_secs),
            delete_batch: config.delete_batch_size,
        }
    }
}

/// The running background work.
pub struct Background {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts the erasure worker (woken by `tasks_queued`) and the retention purge; the records
    /// they delete are counted in `metrics`.
    pub fn spawn(
        store: Arc<dyn Store>,
        tasks_queued: Arc<Notify>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Background {
        let (stop, stopping) = watch::channel(false);
        let erasure = erasure_worker(
            Arc::clone(&store),
            tasks_queued,
            settings.delete_batch,
            stopping.clone(),
            Arc::clone(&metrics),
        );
        let workers = vec![tokio::spawn(erasure), tokio::spawn(retention_purge(store, settings, stopping, metrics))];
        Background { stop, workers }
    }

    /// Lets each worker finish the transaction it is in, and waits for them to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.workers {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, "a background worker ended abnormally");
            }
        }
    }
}

/// The longest pause after a batch.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Waits after a batch that started at `started` for as long as it took (at most [`MAX_PAUSE`]),
/// or until the node stops.
async fn pause_after(started: Instant, stopping: &watch::Receiver<bool>) {
    let mut stopping = stopping.clone();
    tokio::select! {
        _ = stopped(&mut stopping) => {}
        _ = tokio::time::sleep(started.elapsed().min(MAX_PAUSE)) => {}
    }
}

/// Completes when the node stops.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

async fn erasure_worker(
    store: Arc<dyn Store>,
    tasks_queued: Arc<Notify>,
    batch: u32,
    mut stopping: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    loop {
        while !*stopping.borrow() {
            match store.next_task().await {
                Ok(Some(task)) => {
                    if run_task(store.as_ref(), task, batch, &stopping, &metrics).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for erasure tasks; trying again shortly");
                    break;
                }
            }
        }
        tokio::select! {
            _ = stopped(&mut stopping) => return,
            _ = tasks_queued.notified() => {}
            _ = tokio::time::sleep(TASK_POLL) => {}
        }
    }
}

/// Runs one task until it ends or the node stops. `Err` means storage is unavailable: the task
/// is left as it is, to be tried again later.
async fn run_task(
    store: &dyn Store,
    task: Task,
    batch: u32,
    stopping: &watch::Receiver<bool>,
    metrics: &Metrics,
) -> Result<(), ()> {
    if task.status == TaskStatus::Queued {
        tracing::info!(task = %task.id, project = %task.project_id, "erasure task started");
    }
    metrics.background("erasure", "task_started");
    let outcome = erase(store, &task, batch, stopping, metrics).await;
    metrics.background(
        "erasure",
        match outcome {
            Ok(true) => "task_done",
            Ok(false) => "task_failed",
            Err(()) => "task_paused",
        },
    );
    outcome.map(|_| ())
}

/// Erases a task's rows batch by batch and records its end: `Ok(true)` when it finished,
/// `Ok(false)` when it failed or the node stopped first, `Err` when storage is unavailable.
async fn erase(
    store: &dyn Store,
    task: &Task,
    batch: u32,
    stopping: &watch::Receiver<bool>,
    metrics: &Metrics,
) -> Result<bool, ()> {
    let mut deleted = task.deleted;
    loop {
        if *stopping.borrow() {
            return Ok(false);
        }
        let started = Instant::now();
        let erased = store.erase_batch(task, batch, now()).await;
        if let Ok(n) = erased {
            metrics.rows("records", "deleted", n);
            metrics.background("erasure", "batch");
        }
        let failure = match erased {
            Ok(n) if n < u64::from(batch) => None,
            Ok(n) => {
                deleted += n;
                pause_after(started, stopping).await;
                continue;
            }
            Err(StoreError::Unavailable(reason) | StoreError::Full(reason)) => {
                tracing::warn!(task = %task.id, error = %reason, "erasure task paused: storage unavailable or full");
                return Err(());
            }
            Err(e) => {
                tracing::error!(task = %task.id, error = %e, "erasure task failed");
                Some(format!(
                    "The deletion stopped because of an internal error after {deleted} records; send the request \
                     again to delete the rest."
                ))
            }
        };
        return match store.finish_task(task, failure.clone(), now()).await {
            Ok(()) if failure.is_none() => {
                tracing::info!(task = %task.id, project = %task.project_id, "erasure task done");
                Ok(true)
            }
            Ok(()) => Ok(false),
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "cannot record the end of an erasure task");
                Err(())
            }
        };
    }
}

async fn retention_purge(
    store: Arc<dyn Store>,
    settings: Settings,
    mut stopping: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let mut ticks = tokio::time::interval(settings.retention_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut stopping) => return,
            _ = ticks.tick() => {}
        }
        match purge_once(store.as_ref(), settings.delete_batch, &stopping, &metrics).await {
            Ok(records) => {
                metrics.rows("records", "expired", records);
                metrics.background("retention", "pass");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the retention purge did not finish; it runs again at the next interval");
            }
        }
    }
}

/// One run of the retention purge: expired pending updates, then each project's expired records,
/// a batch at a time. Answers how many records it deleted.
async fn purge_once(
    store: &dyn Store,
    batch: u32,
    stopping: &watch::Receiver<bool>,
    metrics: &Metrics,
) -> Result<u64, StoreError> {
    let started = now();
    let pending = store.purge_expired_pending_updates(started).await?;
    let mut records = 0;
    for project in store.all_project_ids().await? {
        loop {
            if *stopping.borrow() {
                return Ok(records);
            }
            let batch_started = Instant::now();
            let deleted = store.purge_expired_records(project, started, batch).await?;
            metrics.background("retention", "batch");
            records += deleted;
            if deleted < u64::from(batch) {
                break;
            }
            pause_after(batch_started, stopping).await;
        }
    }
    if records > 0 || pending > 0 {
        tracing::info!(records, pending_updates = pending, "retention purge deleted expired data");
    }
    Ok(records)
}
