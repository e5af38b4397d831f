//! The group-commit writer: one task owns every write.
//!
//! It runs on a thread of its own (`tend-pg-writer`), with a single-threaded tokio runtime
//! that also drives its connection, as redb's writer has its thread: a commit's answers
//! are read as soon as they arrive, not after whatever the runtime's workers queued
//! before them (a wave of attempts, hundreds of tasks). The connection is its own, not
//! one of the pool's that reads use.
//!
//! It waits for the first pending batch, takes every other one already queued (up to
//! [`MAX_BATCH`] batches and about [`MAX_GROUP_BYTES`] bytes), merges them into one
//! [`Group`] and writes it in one transaction: `BEGIN`, one multi-row statement per table
//! and kind of change, `COMMIT`, sent together as a pipeline (one round trip once the
//! statements are prepared on the connection). Only once `COMMIT` has returned, with
//! `synchronous_commit` as the server has it, is each batch acknowledged, in order, with
//! the result. There is no delay timer: under load, batches queue while the previous
//! commit is made durable, and the next group is bigger.
//!
//! A commit that fails acknowledges its batches with the error (a lost connection as a
//! full disk on redb), and the store's [`failure`](CommitHealth::failure) says so until a commit
//! succeeds. Before each commit the runtime lock is checked and, if its connection was
//! lost, taken again ([`RuntimeLock::ensure`]).
//!
//! A group is written again, on a new connection, when its connection is lost or it loses
//! a race with another transaction (at most [`TRIES`] times). That is safe even when the
//! first `COMMIT` did reach the server and only its answer was lost: written again, a group
//! is deletions, then a fold of start logs (folding twice is folding once), upserts of
//! whole rows and start-log rows (a start written twice reads back as once), so writing it
//! twice leaves what writing it once does, and nothing else writes these rows in between.
//! (Its first try inserts the rows of items' first records instead of upserting them,
//! which is half the server's work; a row found there after all fails that try with a
//! unique violation, and the next one replaces it.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::store::health::CommitHealth;

use deadpool_postgres::Object;
use tokio::sync::{mpsc, oneshot};

use super::failure::{Trouble, describe, trouble};
use super::group::{Group, Planned};
use super::lock::{Retaken, RuntimeLock};
use super::pool::{ANSWER_TIMEOUT, Db, Doing, TRIES, Work, pipelined};
use super::rows::Row;
use super::start_log::{Folds, StartLogRows};
use crate::error::StoreError;
use crate::store::Acknowledge;

/// The most batches one transaction takes, so acknowledgements are never held back long.
const MAX_BATCH: usize = 8192;

/// About the most bytes one transaction takes (artifacts, checkpoints and outputs are
/// what weigh); a batch heavier than this alone goes in a transaction of its own.
const MAX_GROUP_BYTES: usize = 32 << 20;

enum Request {
    Write {
        rows: Result<Vec<Row>, StoreError>,
        then: Acknowledge,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

/// What the writer has sent since the store opened: what a benchmark divides by the items
/// it ran to report round trips per item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitCounts {
    /// Transactions committed (or tried: a failed one counts too).
    pub commits: u64,
    /// Batches they took (each an execution's step, a checkpoint, ...).
    pub batches: u64,
    /// Statements sent, `BEGIN` and `COMMIT` included, and each preparation of one.
    pub statements: u64,
    /// Round trips to the server: one per transaction, and one more for a transaction
    /// that prepared statements first.
    pub round_trips: u64,
}

/// Reads a store's [`CommitCounts`]; cheap to clone, and valid after the store was handed
/// to a `Store` or a runtime (a benchmark keeps one to report round trips per item).
#[derive(Debug, Clone)]
pub struct CommitCounter(pub(crate) Arc<Counters>);

impl CommitCounter {
    /// The counts now.
    pub fn counts(&self) -> CommitCounts {
        self.0.get()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    batches: AtomicU64,
    statements: AtomicU64,
    round_trips: AtomicU64,
}

impl Counters {
    pub(crate) fn get(&self) -> CommitCounts {
        CommitCounts {
            commits: self.commits.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            statements: self.statements.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
        }
    }
}

/// Sends batches to the writer task.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Request>,
    /// Answered (or dropped) once the writer's thread has returned from its task and
    /// dropped its runtime, with the connection.
    stopped: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Writer {
    /// Starts the writer on its thread, with its connection to `db` (a pool of one); it
    /// holds `lock` for as long as it runs.
    pub(crate) fn start(
        db: Db,
        lock: RuntimeLock,
        health: Arc<CommitHealth>,
        counters: Arc<Counters>,
    ) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| db.target.open_error(format!("the writer's runtime: {e}")))?;
        let failed = |e: std::io::Error| format!("the writer's thread: {e}");
        let target = db.target.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let (done, stopped) = oneshot::channel();
        std::thread::Builder::new()
            .name("tend-pg-writer".into())
            .spawn(move || {
                runtime.block_on(run(db, lock, rx, health, counters));
                // Closes the connection its tasks drive before saying so.
                drop(runtime);
                let _ = done.send(());
            })
            .map_err(|e| target.open_error(failed(e)))?;
        Ok(Writer {
            tx,
            stopped: Mutex::new(Some(stopped)),
        })
    }

    /// Hands a batch's rows (or the error that encoding them gave: it is acknowledged in
    /// its turn) to the writer; `then` gets the result. Called at once with
    /// [`StoreError::Closed`] once the writer has stopped.
    pub(crate) fn send(&self, rows: Result<Vec<Row>, StoreError>, then: Acknowledge) {
        if let Err(mpsc::error::SendError(Request::Write { then, .. })) =
            self.tx.send(Request::Write { rows, then })
        {
            then(Err(StoreError::Closed));
        }
    }

    /// Waits until every batch sent before is committed (or failed), then gives up the
    /// lock and stops the writer; later batches get [`StoreError::Closed`].
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.tx.send(Request::Close { done }).is_ok() {
            let _ = closed.await;
        }
        let stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(stopped) = stopped {
            // It has answered `Close` and is returning.
            let _ = stopped.await;
        }
    }
}

async fn run(
    db: Db,
    mut lock: RuntimeLock,
    mut rx: mpsc::UnboundedReceiver<Request>,
    health: Arc<CommitHealth>,
    counters: Arc<Counters>,
) {
    let mut waiting: Vec<(Option<StoreError>, Acknowledge)> = Vec::new();
    let mut start_log = StartLogRows::default();
    // Every handle dropped without a close (a crash, to the store): what was queued is
    // written, then the lock goes with its connection.
    while let Some(first) = rx.recv().await {
        let mut close = None;
        let mut group = Group::default();
        let mut weight = 0;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write {
                    rows: Ok(rows),
                    then,
                } => {
                    weight += rows.iter().map(Row::weight).sum::<usize>();
                    group.merge(rows);
                    waiting.push((None, then));
                }
                // Nothing of it is written; it is answered in its turn.
                Request::Write { rows: Err(e), then } => waiting.push((Some(e), then)),
                Request::Close { done } => {
                    close = Some(done);
                    break;
                }
            }
            if waiting.len() < MAX_BATCH && weight < MAX_GROUP_BYTES {
                next = rx.try_recv().ok();
            }
        }
        let result = if group.is_empty() {
            Ok(()) // a flush: everything before it is already committed (or failed)
        } else {
            let began = Instant::now();
            let mut folds = start_log.due(&group);
            let result = commit(
                &db,
                &mut lock,
                &group,
                &mut folds,
                &mut start_log,
                &counters,
            )
            .await;
            start_log.committed(&group, &folds, result.is_ok());
            crate::metrics::committed(waiting.len(), began.elapsed());
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters
                .batches
                .fetch_add(waiting.len() as u64, Ordering::Relaxed);
            match &result {
                Ok(()) => health.succeeded(),
                Err(e) => {
                    health.failed(&e.to_string());
                    tracing::error!(error = %e, batches = waiting.len(), "store commit failed");
                }
            }
            result
        };
        // Nothing in a failed group is acknowledged as durable: every waiter gets the error.
        for (own, then) in waiting.drain(..) {
            then(own.map_or_else(|| result.clone(), Err));
        }
        if let Some(done) = close {
            lock.release().await;
            rx.close();
            while let Ok(request) = rx.try_recv() {
                match request {
                    Request::Write { then, .. } => then(Err(StoreError::Closed)),
                    Request::Close { done } => {
                        let _ = done.send(());
                    }
                }
            }
            let _ = done.send(());
            return;
        }
    }
}

/// Writes `group` in one transaction, again on a new connection while it loses its
/// connection or a race (see the module docs), or an item's first record meets a row
/// (which no record should: the next try replaces rows instead of inserting them).
async fn commit(
    db: &Db,
    lock: &mut RuntimeLock,
    group: &Group,
    folds: &mut Folds,
    start_log: &mut StartLogRows,
    counters: &Counters,
) -> Result<(), StoreError> {
    let mut tries = 0;
    loop {
        tries += 1;
        if lock.ensure().await? == Retaken::Yes {
            // Another runtime may have held the lock meanwhile and appended to the logs
            // this writer thought it knew: they are folded by reading them.
            start_log.forget();
            folds.read_all();
        }
        // A try after the first replaces every item row: the first may have committed.
        let statements = group.statements(&db.sql, tries > 1, folds);
        let client = db.client(Doing::Write).await?;
        let e = match tokio::time::timeout(ANSWER_TIMEOUT, write(&client, &statements, counters))
            .await
        {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => {
                // Closed: the server rolls back what it has not committed.
                drop(Object::take(client));
                return Err(db.error(
                    Doing::Write,
                    format!("no answer to a commit within {ANSWER_TIMEOUT:?}"),
                ));
            }
        };
        drop(Object::take(client));
        match trouble(&e) {
            Trouble::Lost if tries < TRIES => db.lost(),
            Trouble::Conflict | Trouble::Duplicate if tries < TRIES => {}
            _ => return Err(db.failed(Doing::Write, &e)),
        }
        tracing::warn!(
            error = %db.target.scrub(&describe(&e)),
            tries,
            "a group commit is written again"
        );
    }
}

/// One try at writing: the statements prepared (once per connection), then `BEGIN`, the
/// statements and `COMMIT` as one pipeline. The first error, if any, is the answer (the
/// server rolls the transaction back, and its `COMMIT` ends it).
async fn write(
    client: &Object,
    statements: &[Planned<'_>],
    counters: &Counters,
) -> Result<(), tokio_postgres::Error> {
    let cached = client.statement_cache.size();
    let prepared = futures::future::try_join_all(
        statements
            .iter()
            .map(|planned| client.prepare_cached(planned.sql)),
    )
    .await?;
    let fresh = client.statement_cache.size().saturating_sub(cached) as u64;
    let mut work: Vec<Work<'_, u64>> = Vec::with_capacity(statements.len() + 2);
    work.push(Box::pin(async move {
        client.batch_execute("BEGIN").await.map(|()| 0)
    }));
    for (planned, statement) in statements.iter().zip(prepared.iter()) {
        work.push(Box::pin(planned.run(client, statement)));
    }
    work.push(Box::pin(async move {
        client.batch_execute("COMMIT").await.map(|()| 0)
    }));
    let sent = work.len() as u64;
    counters
        .statements
        .fetch_add(sent + fresh, Ordering::Relaxed);
    counters
        .round_trips
        .fetch_add(1 + u64::from(fresh > 0), Ordering::Relaxed);
    crate::metrics::statements(sent + fresh);
    for result in pipelined(work).await {
        result?;
    }
    Ok(())
}
