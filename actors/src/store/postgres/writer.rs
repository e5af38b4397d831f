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
//! Two transactions may be on the connection at once (see `transaction`): once every
//! statement of one is answered and only its `COMMIT` is still being made durable, the
//! next group is sent behind it, so the server has it the moment the first is durable
//! instead of after a round trip. The first's batches are still answered first. The start
//! logs' counts and sets are updated when a group is sent, and forgotten for what it
//! touches if it fails, so the group behind it folds what it appended.
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
//! unique violation, and the next one replaces it.) A group is sent behind another only
//! once the other's statements were answered, so a failure of its rows never leaves the
//! group behind it landed before it is written again. When both fail with their
//! connection, they are written again as one group ([`Group::absorb`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::store::health::CommitHealth;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinError;

use super::failure::{Trouble, describe, trouble};
use super::group::Group;
use super::lock::{Retaken, RuntimeLock};
use super::pool::{ANSWER_TIMEOUT, Db, Doing, TRIES};
use super::rows::Row;
use super::start_log::{Folds, StartLogRows};
use super::transaction::{self, Failure, Landed, Link, Sent};
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
    pub(crate) statements: AtomicU64,
    pub(crate) round_trips: AtomicU64,
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
    /// Starts the writer on its thread, with a connection of its own to `db`; it holds
    /// `lock` for as long as it runs.
    pub(crate) fn start(
        db: Arc<Db>,
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

/// Batches the writer answers once their transaction is answered: with their own error
/// (their rows could not be encoded), or with the transaction's result.
pub(crate) type Waiting = Vec<(Option<StoreError>, Acknowledge)>;

/// What the writer keeps between transactions.
struct State {
    db: Arc<Db>,
    lock: RuntimeLock,
    health: Arc<CommitHealth>,
    counters: Arc<Counters>,
    start_log: StartLogRows,
    /// The connection, while it has not failed.
    link: Option<Arc<Link>>,
}

async fn run(
    db: Arc<Db>,
    lock: RuntimeLock,
    mut rx: mpsc::UnboundedReceiver<Request>,
    health: Arc<CommitHealth>,
    counters: Arc<Counters>,
) {
    let mut state = State {
        db,
        lock,
        health,
        counters,
        start_log: StartLogRows::default(),
        link: None,
    };
    // Connected at once, so the first commit does not wait for a connection and its
    // statements' preparation; if this fails, the first commit connects (and says why
    // it cannot).
    if let Ok(link) = Link::connect(&state.db, &state.counters).await {
        state.link = Some(link);
    }
    // A transaction whose statements were answered, its `COMMIT` not yet.
    let mut ahead: Option<Sent> = None;
    loop {
        // The next batch, unless the transaction ahead is answered first.
        let first = match ahead.take() {
            None => rx.recv().await,
            Some(mut sent) => {
                let next = tokio::select! {
                    landed = sent.landed() => Err(landed),
                    request = rx.recv() => Ok(request),
                };
                match next {
                    Err(landed) => {
                        state.settle(sent, landed).await;
                        continue;
                    }
                    Ok(request) => {
                        ahead = Some(sent);
                        request
                    }
                }
            }
        };
        // Every handle dropped without a close (a crash, to the store): what was queued is
        // written, then the lock goes with its connection.
        let Some(first) = first else { break };
        let (group, waiting, close) = collect(first, &mut rx);
        if group.is_empty() {
            // A flush: once the transaction ahead is answered, everything before it is
            // committed (or failed).
            if let Some(sent) = ahead.take() {
                state.settle_ahead(sent).await;
            }
            for (own, then) in waiting {
                then(own.map_or(Ok(()), Err));
            }
        } else {
            ahead = state.write(group, waiting, ahead.take()).await;
        }
        if let Some(done) = close {
            if let Some(sent) = ahead.take() {
                state.settle_ahead(sent).await;
            }
            state.lock.release().await;
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
    if let Some(sent) = ahead.take() {
        state.settle_ahead(sent).await;
    }
}

/// The group of `first` and every batch already queued behind it (up to [`MAX_BATCH`]
/// batches and about [`MAX_GROUP_BYTES`]), the batches waiting for it, and a close that
/// came after them.
fn collect(
    first: Request,
    rx: &mut mpsc::UnboundedReceiver<Request>,
) -> (Group, Waiting, Option<oneshot::Sender<()>>) {
    let mut group = Group::default();
    let mut waiting = Vec::new();
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
            Request::Close { done } => return (group, waiting, Some(done)),
        }
        if waiting.len() < MAX_BATCH && weight < MAX_GROUP_BYTES {
            next = rx.try_recv().ok();
        }
    }
    (group, waiting, None)
}

/// Answers `waiting` with `result` (each batch with its own error, if it had one).
fn answer(waiting: Waiting, result: &Result<(), StoreError>) {
    for (own, then) in waiting {
        then(own.map_or_else(|| result.clone(), Err));
    }
}

impl State {
    /// The runtime lock held (taken again if its connection was lost: then the writer
    /// forgets what it knew of the start logs, and `folds` are read) and a connection.
    async fn ready(&mut self, folds: Option<&mut Folds>) -> Result<Arc<Link>, StoreError> {
        if self.lock.ensure().await? == Retaken::Yes {
            // Another runtime may have held the lock meanwhile and appended to the logs
            // this writer thought it knew: they are folded by reading them.
            self.start_log.forget();
            if let Some(folds) = folds {
                folds.read_all();
            }
        }
        if let Some(link) = &self.link {
            return Ok(link.clone());
        }
        let link = Link::connect(&self.db, &self.counters).await?;
        self.link = Some(link.clone());
        Ok(link)
    }

    /// Writes `group` for `waiting`, sent behind `ahead` on the same connection (whose
    /// statements were answered). Returns the transaction that is now ahead: this one,
    /// once its statements are answered, with its `COMMIT` to come.
    async fn write(&mut self, group: Group, waiting: Waiting, ahead: Option<Sent>) -> Option<Sent> {
        let link = match self.ready(None).await {
            Ok(link) => link,
            Err(e) => {
                if let Some(sent) = ahead {
                    self.settle_ahead(sent).await;
                }
                self.count(&waiting, Instant::now());
                self.health.failed(&e.to_string());
                tracing::error!(error = %e, batches = waiting.len(), "store commit failed");
                answer(waiting, &Err(e));
                return None;
            }
        };
        let folds = self.start_log.due(&group);
        // Counted as committed now, so the next group (sent once this one's statements are
        // answered) folds what this one appends; forgotten if it fails.
        self.start_log.committed(&group, &folds, true);
        let mut sent = self.send(&link, group, folds, false, waiting);
        if let Some(mut before) = ahead {
            let landed = before.landed().await;
            if !matches!(&landed, Ok(Landed { result: Ok(()), .. })) {
                // This one went after it on the same connection: its fate is tied to it.
                let after = sent.landed().await;
                self.settle_pair(before, landed, sent, after).await;
                return None;
            }
            self.settle(before, landed).await;
        }
        if (&mut sent.written).await.is_ok() {
            return Some(sent);
        }
        // Its statements failed, and nothing was sent after it: it can be written again.
        let landed = sent.landed().await;
        self.settle(sent, landed).await;
        None
    }

    /// Sends `group` on `link` for `waiting` (see [`transaction::send`]).
    fn send(
        &self,
        link: &Arc<Link>,
        group: Group,
        folds: Folds,
        replace_all: bool,
        waiting: Waiting,
    ) -> Sent {
        transaction::send(
            link,
            &self.db,
            &self.counters,
            group,
            folds,
            replace_all,
            waiting,
        )
    }

    /// Waits for the transaction ahead to be answered, and answers its batches.
    async fn settle_ahead(&mut self, mut sent: Sent) {
        let landed = sent.landed().await;
        self.settle(sent, landed).await;
    }

    /// Answers `sent`'s batches with how it `landed`, after writing it again while its
    /// failure allows (nothing was sent after it, or what was has been answered).
    async fn settle(&mut self, sent: Sent, landed: Result<Landed, JoinError>) {
        let result = self.outcome(landed, true).await;
        self.finish(sent.waiting, sent.began, result);
    }

    /// What a transaction that `landed` means for its batches: written again first, while
    /// its failure allows, when `again` says it may be.
    async fn outcome(
        &mut self,
        landed: Result<Landed, JoinError>,
        again: bool,
    ) -> Result<(), StoreError> {
        match landed {
            Ok(Landed { result: Ok(()), .. }) => Ok(()),
            Ok(Landed {
                group,
                folds,
                result: Err(failure),
            }) => {
                self.failed_group(&group, &folds);
                if again {
                    self.again(group, folds, failure).await
                } else {
                    Err(self.failure_error(&failure))
                }
            }
            Err(e) => self.lost_task(&e),
        }
    }

    /// The transaction ahead failed, and `after` was sent behind it on the same
    /// connection. Both failed (as they do when their connection goes): neither, the
    /// first or both landed, so they are written again as one group, which leaves what
    /// writing both leaves. Only `after` landed (its connection survived the first's
    /// failure, which no failure of a `COMMIT` is expected to allow): the first is not
    /// written again, since that would undo rows of the second, and its batches get its
    /// error.
    async fn settle_pair(
        &mut self,
        before: Sent,
        first: Result<Landed, JoinError>,
        after: Sent,
        second: Result<Landed, JoinError>,
    ) {
        match (first, second) {
            (
                Ok(Landed {
                    mut group,
                    mut folds,
                    result: Err(failure),
                }),
                Ok(Landed {
                    group: behind,
                    folds: mut behind_folds,
                    result: Err(_),
                }),
            ) => {
                self.failed_group(&group, &folds);
                self.failed_group(&behind, &behind_folds);
                group.absorb(behind);
                // Their logs are folded by reading them: what the writer knew of them is
                // forgotten.
                folds.read_all();
                behind_folds.read_all();
                folds.read.append(&mut behind_folds.read);
                folds.read.sort_unstable();
                folds.read.dedup();
                let result = self.again(group, folds, failure).await;
                let mut waiting = before.waiting;
                waiting.extend(after.waiting);
                self.finish(waiting, before.began, result);
            }
            (first, second) => {
                let result = self.outcome(first, false).await;
                self.finish(before.waiting, before.began, result);
                self.settle(after, second).await;
            }
        }
    }

    /// The writer no longer knows what the start logs `group` touches hold, and the
    /// connection it failed on is not used again.
    fn failed_group(&mut self, group: &Group, folds: &Folds) {
        self.start_log.committed(group, folds, false);
        self.link = None;
    }

    /// A transaction's task ended without an answer (it panicked): what it touched is
    /// unknown, so every start log is forgotten.
    fn lost_task(&mut self, e: &JoinError) -> Result<(), StoreError> {
        self.start_log.forget();
        self.link = None;
        Err(self
            .db
            .error(Doing::Write, format!("the commit's task failed: {e}")))
    }

    fn failure_error(&self, failure: &Failure) -> StoreError {
        match failure {
            Failure::Db(e) => self.db.failed(Doing::Write, e),
            Failure::Timeout => self.db.error(
                Doing::Write,
                format!("no answer to a commit within {ANSWER_TIMEOUT:?}"),
            ),
        }
    }

    /// Writes `group` again, on a new connection, each item row upserted (a try may have
    /// committed), while it loses its connection or a race, or an item's first record
    /// meets a row (at most [`TRIES`] tries in all). Safe even when a failed try did
    /// commit and only its answer was lost: see the module docs.
    async fn again(
        &mut self,
        mut group: Group,
        mut folds: Folds,
        mut failure: Failure,
    ) -> Result<(), StoreError> {
        let mut tries = 1;
        loop {
            match &failure {
                Failure::Db(e) => match trouble(e) {
                    Trouble::Lost if tries < TRIES => self.db.lost(),
                    Trouble::Conflict | Trouble::Duplicate if tries < TRIES => {}
                    _ => return Err(self.failure_error(&failure)),
                },
                // Closed: the server rolls back what it has not committed.
                Failure::Timeout => return Err(self.failure_error(&failure)),
            }
            if let Failure::Db(e) = &failure {
                tracing::warn!(
                    error = %self.db.target.scrub(&describe(e)),
                    tries,
                    "a group commit is written again"
                );
            }
            tries += 1;
            let link = self.ready(Some(&mut folds)).await?;
            let mut sent = self.send(&link, group, folds, true, Vec::new());
            match sent.landed().await {
                Ok(Landed { result: Ok(()), .. }) => return Ok(()),
                Ok(landed) => {
                    self.link = None;
                    group = landed.group;
                    folds = landed.folds;
                    failure = match landed.result {
                        Err(failure) => failure,
                        Ok(()) => return Ok(()),
                    };
                }
                Err(e) => return self.lost_task(&e),
            }
        }
    }

    /// Counts a group commit of `waiting` batches begun at `began`.
    fn count(&self, waiting: &Waiting, began: Instant) {
        crate::metrics::committed(waiting.len(), began.elapsed());
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .batches
            .fetch_add(waiting.len() as u64, Ordering::Relaxed);
    }

    /// Counts the group, says how the store is, and answers its batches. Nothing in a
    /// failed group is acknowledged as durable: every waiter gets the error.
    fn finish(&self, waiting: Waiting, began: Instant, result: Result<(), StoreError>) {
        self.count(&waiting, began);
        match &result {
            Ok(()) => self.health.succeeded(),
            Err(e) => {
                self.health.failed(&e.to_string());
                tracing::error!(error = %e, batches = waiting.len(), "store commit failed");
            }
        }
        answer(waiting, &result);
    }
}
