//! The group-commit writer: one OS thread owns every redb write.
//!
//! Each request carries its operations and a one-shot acknowledgement. The thread blocks for
//! the first pending request, takes every other request already queued, applies them all in
//! one `Durability::Immediate` transaction, commits, and only then acknowledges each of them
//! with the commit's result. There is no delay timer: under load, batches grow by themselves
//! because requests queue up while the previous commit is being made durable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, Durability};

use super::db::Db;
use tokio::sync::oneshot;

use super::item_keys::{ItemKey, every, item_key};
use super::keys;
use super::op::{Op, Ops};
use super::starts::StartSets;
use super::tables::{
    CHECKPOINTS, EXECUTION_KEYS, EXECUTIONS, ITEMS, KEYS, LIVE, META, PLANS, STARTS,
};
use crate::error::StoreError;

/// The most requests one transaction takes, so acknowledgements are never held back long.
const MAX_BATCH: usize = 8192;

/// Work run on the writer thread between commits, in a transaction of its own: a check
/// and a write that must be one atomic step (referencing an artifact, one batch of the
/// orphan sweep). It must be short: commits wait behind it.
pub(crate) type Job =
    Box<dyn FnOnce(Result<Arc<Database>, StoreError>) -> Result<(), StoreError> + Send>;

/// Called on the writer thread with a commit's result; it must not block.
pub(crate) type Then = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// How a request is acknowledged.
enum Ack {
    Channel(oneshot::Sender<Result<(), StoreError>>),
    Call(Then),
}

impl Ack {
    fn send(self, result: Result<(), StoreError>) {
        match self {
            Ack::Channel(tx) => {
                let _ = tx.send(result);
            }
            Ack::Call(then) => then(result),
        }
    }
}

enum Request {
    Write {
        ops: Ops,
        ack: Option<Ack>,
    },
    Close {
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    Job(Job),
    /// Compact the file (see `Db::compact`), after the writes before it.
    Compact {
        ack: oneshot::Sender<Result<bool, StoreError>>,
    },
}

/// Sends writes to the writer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Request>,
    /// Writes sent and not yet taken by the writer thread: long jobs (the orphan sweep's
    /// batches) look at it and end early, so commits wait little behind them.
    queued: Arc<AtomicUsize>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn start(db: Arc<Db>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::Builder::new()
            .name("tend-store-writer".into())
            .spawn({
                let queued = queued.clone();
                move || run(&db, &rx, &queued)
            })
            .map_err(|e| StoreError::Open {
                path: "writer thread".into(),
                reason: e.to_string(),
            })?;
        Ok(Writer {
            tx,
            queued,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Sends `ops`; the returned receiver resolves once they are durable (or failed).
    pub(crate) fn send(&self, ops: Ops) -> oneshot::Receiver<Result<(), StoreError>> {
        let (ack, rx) = oneshot::channel();
        // A failed send drops `ack`, so the receiver reports the store as closed.
        self.queued.fetch_add(1, Ordering::AcqRel);
        let _ = self.tx.send(Request::Write {
            ops,
            ack: Some(Ack::Channel(ack)),
        });
        rx
    }

    /// Sends `ops`; `then` is called with the result once they are durable (or failed), on
    /// the writer thread, so it must only hand the result on (e.g. cast a message). Called
    /// at once with [`StoreError::Closed`] when the writer has stopped.
    pub(crate) fn send_then(&self, ops: Ops, then: Then) {
        let request = Request::Write {
            ops,
            ack: Some(Ack::Call(then)),
        };
        self.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(Request::Write { ack: Some(ack), .. })) = self.tx.send(request) {
            ack.send(Err(StoreError::Closed));
        }
    }

    /// Writes `ops` and returns once they are durable.
    pub(crate) async fn commit(&self, ops: Ops) -> Result<(), StoreError> {
        self.send(ops).await.unwrap_or(Err(StoreError::Closed))
    }

    /// Stores a runtime metadata value under `key`; returns once it is durable.
    pub(crate) async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.commit(Ops::from(vec![Op::Meta {
            key: key.to_owned(),
            value: value.to_vec(),
        }]))
        .await
    }

    /// Runs `job` on the writer thread, after the writes sent before it, in its own
    /// transaction; returns what it returns.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let result = db.and_then(|db| job(&db));
            let failed = result.as_ref().err().cloned();
            let _ = tx.send(result);
            failed.map_or(Ok(()), Err)
        });
        if self.tx.send(Request::Job(job)).is_err() {
            return Err(StoreError::Closed);
        }
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Compacts the file once every write sent before it is committed; commits wait
    /// meanwhile. Returns whether the file changed (never for a store in memory).
    pub(crate) async fn compact(&self) -> Result<bool, StoreError> {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Request::Compact { ack }).is_err() {
            return Err(StoreError::Closed);
        }
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// The count of writes sent and not yet taken by the writer thread.
    pub(crate) fn queued(&self) -> Arc<AtomicUsize> {
        self.queued.clone()
    }

    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Request::Close { ack }).is_err() {
            return Ok(()); // already closed
        }
        let result = rx.await.unwrap_or(Ok(()));
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            // The thread has acknowledged Close and is returning; joining is quick.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }
}

/// How often a reopen that failed (the disk still full, say) is tried again while no write
/// comes to try it.
const REOPEN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

fn run(db: &Db, rx: &mpsc::Receiver<Request>, queued: &AtomicUsize) {
    let mut batch: Vec<(Ops, Option<Ack>)> = Vec::new();
    let mut starts = StartSets::default();
    // A commit failed and the database is not reopened yet (redb refuses everything after
    // an I/O error until it is).
    let mut reopen = false;
    loop {
        let first = if reopen {
            match rx.recv_timeout(REOPEN_RETRY) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    reopen = try_reopen(db);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(first) => first,
                Err(_) => return,
            }
        };
        let mut close = None;
        let mut job = None;
        let mut compact = None;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write { ops, ack } => {
                    queued.fetch_sub(1, Ordering::AcqRel);
                    batch.push((ops, ack));
                }
                Request::Close { ack } => {
                    close = Some(ack);
                    break;
                }
                // After the writes before it.
                Request::Job(j) => {
                    job = Some(j);
                    break;
                }
                Request::Compact { ack } => {
                    compact = Some(ack);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let flush = batch.iter().all(|(ops, _)| ops.ops.is_empty());
        let result = if flush {
            Ok(()) // a flush: everything before it is already committed (or failed)
        } else {
            if reopen {
                reopen = try_reopen(db);
            }
            let began = std::time::Instant::now();
            let result = db
                .get()
                .and_then(|database| commit(&database, &batch, &mut starts));
            crate::metrics::committed(batch.len(), began.elapsed());
            result
        };
        match &result {
            Ok(()) if !flush => db.succeeded(),
            Ok(()) => {}
            Err(e) => {
                starts.forget();
                db.failed(&e.to_string());
                tracing::error!(error = %e, requests = batch.len(), "store commit failed");
            }
        }
        if result.is_err() {
            // At once, and before the waiters hear of the failure: so reads work again as
            // soon as the store does, and a read made on hearing of it finds the store
            // reopened (redb refuses every read after an I/O error until then).
            reopen = try_reopen(db);
        }
        // Nothing in a failed batch is acknowledged as durable: every waiter gets the error.
        for (_, ack) in batch.drain(..) {
            if let Some(ack) = ack {
                ack.send(result.clone());
            }
        }
        if let Some(job) = job {
            if reopen {
                reopen = try_reopen(db);
            }
            // A job's transaction that failed leaves redb as a failed commit does: it is
            // said so and reopened, and the next commits do not pay for it.
            if let Err(e) = job(db.get()) {
                db.failed(&e.to_string());
                tracing::error!(error = %e, "store job failed");
                reopen = try_reopen(db);
            }
        }
        if let Some(ack) = compact {
            let result = if reopen {
                Err(StoreError::Commit(
                    "cannot compact the store: it is being reopened after a failure".to_owned(),
                ))
            } else {
                db.compact()
            };
            let _ = ack.send(result);
        }
        if let Some(ack) = close {
            let _ = ack.send(Ok(()));
            return;
        }
    }
}

/// Reopens a file store after a failure; true if it is still to do.
fn try_reopen(db: &Db) -> bool {
    if !db.reopenable() {
        return false;
    }
    match db.reopen() {
        Ok(()) => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reopen the store yet");
            true
        }
    }
}

fn commit(
    db: &Database,
    batch: &[(Ops, Option<Ack>)],
    starts: &mut StartSets,
) -> Result<(), StoreError> {
    let fail = |e: &dyn std::fmt::Display| StoreError::Commit(e.to_string());
    let mut txn = db.begin_write().map_err(|e| fail(&e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| fail(&e))?;
    {
        let mut executions = txn.open_table(EXECUTIONS).map_err(|e| fail(&e))?;
        let mut plans = txn.open_table(PLANS).map_err(|e| fail(&e))?;
        let mut items = txn.open_table(ITEMS).map_err(|e| fail(&e))?;
        let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(|e| fail(&e))?;
        let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
        let mut start_sets = txn.open_table(STARTS).map_err(|e| fail(&e))?;
        let mut live_index = txn.open_table(LIVE).map_err(|e| fail(&e))?;
        let mut idempotency = txn.open_table(KEYS).map_err(|e| fail(&e))?;
        let mut execution_keys = txn.open_table(EXECUTION_KEYS).map_err(|e| fail(&e))?;
        let mut key = [0u8; ulid::ULID_LEN];
        for (ops, op) in batch
            .iter()
            .flat_map(|(ops, _)| ops.ops.iter().map(move |op| (ops, op)))
        {
            match op {
                Op::Execution { id, record, live } => {
                    let name = id.as_key(&mut key);
                    executions
                        .insert(name, record.as_slice())
                        .map_err(|e| fail(&e))?;
                    if *live {
                        live_index.insert(name, ()).map_err(|e| fail(&e))?;
                    } else {
                        live_index.remove(name).map_err(|e| fail(&e))?;
                    }
                }
                Op::Plan { id, plan } => {
                    plans
                        .insert(id.as_key(&mut key), plan.as_slice())
                        .map_err(|e| fail(&e))?;
                }
                Op::Key { key, owner } => {
                    keys::insert(&mut idempotency, &mut execution_keys, key, owner)
                        .map_err(|e| fail(&e))?;
                }
                Op::Started {
                    id,
                    index,
                    attempt,
                    crashes,
                } => starts.started(&start_sets, *id, *index, *attempt, *crashes)?,
                Op::Item {
                    id,
                    index,
                    attempts,
                    record,
                } => {
                    // (Refused rather than written empty: a record outside its batch's
                    // buffer is a bug, and an empty record would read back as damage.)
                    let record = ops.record(record).ok_or_else(|| {
                        fail(&format!("item record {id}/{index} is outside its batch"))
                    })?;
                    items
                        .insert(&item_key(*id, *index), record)
                        .map_err(|e| fail(&e))?;
                    starts.recorded(*id, *index, *attempts);
                }
                Op::Checkpoint { id, index, record } => {
                    checkpoints
                        .insert(&item_key(*id, *index), record.as_slice())
                        .map_err(|e| fail(&e))?;
                }
                Op::ClearStarts { id } => starts.clear(&mut start_sets, *id)?,
                Op::ClearCheckpoint { id, index } => {
                    checkpoints
                        .remove(&item_key(*id, *index))
                        .map_err(|e| fail(&e))?;
                }
                Op::Meta { key, value } => {
                    meta.insert(key.as_str(), value.as_slice())
                        .map_err(|e| fail(&e))?;
                }
                Op::PutArtifact { .. } => {}
                Op::Delete { id } => {
                    starts.clear(&mut start_sets, *id)?;
                    let name = id.as_key(&mut key);
                    executions.remove(name).map_err(|e| fail(&e))?;
                    live_index.remove(name).map_err(|e| fail(&e))?;
                    plans.remove(name).map_err(|e| fail(&e))?;
                    keys::remove(&mut idempotency, &mut execution_keys, name)
                        .map_err(|e| fail(&e))?;
                    let (first, last) = every(*id).into_inner();
                    items
                        .retain_in::<&ItemKey, _>(&first..=&last, |_, _| false)
                        .map_err(|e| fail(&e))?;
                    checkpoints
                        .retain_in::<&ItemKey, _>(&first..=&last, |_, _| false)
                        .map_err(|e| fail(&e))?;
                }
            }
        }
        starts.write(&mut start_sets)?;
        let mut artifact_ops = batch
            .iter()
            .flat_map(|(ops, _)| &ops.ops)
            .filter(|op| op.is_artifacts())
            .peekable();
        if artifact_ops.peek().is_some() {
            super::artifacts::apply(&txn, artifact_ops)?;
        }
    }
    txn.commit().map_err(|e| fail(&e))
}
