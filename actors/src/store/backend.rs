//! [`Backend`]: what a store must do, over model types only. The engine holds a backend
//! behind this trait ([`Store`](crate::store::Store) wraps it); how it encodes records,
//! groups commits and lays out tables is its own business. The behaviour suite
//! (`store::suite`, feature `store-suite`) says what "must" means, and every backend passes
//! it.
//!
//! Rules every backend keeps:
//! - [`commit`](Backend::commit) applies a batch of [`Change`]s all or nothing and calls its
//!   acknowledgement once, only after the batch is durable (or with the error, when nothing
//!   of it is). Batches are committed and acknowledged in the order they were handed over,
//!   from any number of callers; an empty batch is a flush (acknowledged once everything
//!   handed over before it is).
//! - Reads see every acknowledged batch, and items read back follow the recovery rule
//!   ([`merge_started`](crate::model::merge_started)).
//! - An artifact is deleted only while nothing references it and its timestamp of interest
//!   is older than the sweep's cutoff; the check and the delete are one atomic step.
//! - A store written by a newer build (a format it does not know) is refused at open with
//!   an error that says so.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::StoreError;
use crate::model::{
    ArtifactId, Change, ExecutionId, ExecutionSummary, KeyOwner, ListQuery, StoredSummary,
};
use crate::store::{LoadedExecution, StoredExecution};

/// What a backend's reads and calls return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A batch's acknowledgement: called once with the commit's result. It may be called on the
/// backend's own thread, so it must not block (hand the result on: send it, cast a
/// message).
pub type Acknowledge = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What a listing knows better than the store: the summary of an execution the runtime
/// holds in memory (its live status and counts). A backend lists that summary instead of
/// the stored one, and filters what it lists.
pub trait Overlay: Send + Sync {
    /// The runtime's summary of `id`, if it holds it.
    fn known(&self, id: ExecutionId) -> Option<ExecutionSummary>;
}

/// No overlay: every summary as stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stored;

impl Overlay for Stored {
    fn known(&self, _: ExecutionId) -> Option<ExecutionSummary> {
        None
    }
}

/// A page of executions: those in it, and the cursor to go on from (`None` at the end).
pub type Page = (Vec<ExecutionSummary>, Option<ExecutionId>);

/// How many records a filtered page reads at most before it answers with what it found and
/// a cursor to go on from, so a rare status never makes one request read the whole store.
pub const SCAN_BUDGET: usize = 20_000;

/// One batch of the orphan sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepBatch {
    /// Artifacts looked at.
    pub scanned: usize,
    /// Of those, deleted: no reference, and a timestamp of interest before the cutoff.
    pub deleted: usize,
    /// The bytes of the artifacts it deleted.
    pub bytes: u64,
    /// Where the next batch starts; `None` after the last.
    pub next: Option<ArtifactId>,
}

/// How much room a store takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreSize {
    /// The bytes its records take (what a compacted file would be, about).
    pub used_bytes: u64,
    /// The bytes it takes on this machine's disk (0 when it is not a local file).
    pub file_bytes: u64,
}

/// What went wrong with a store's last commit (a full disk, an I/O error, a lost
/// connection), until a commit succeeds again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFailure {
    /// When the first of the failures in a row happened.
    pub since: std::time::SystemTime,
    /// The last failure's message.
    pub reason: String,
    /// How many commits failed in a row.
    pub failed_commits: u64,
}

/// A store backend (see the module docs for the rules every one keeps).
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Commits `changes` all or nothing, then calls `then` with the result: `Ok` only once
    /// they are durable. Returns at once; batches are committed and acknowledged in the
    /// order they were handed over. After [`close`](Self::close), `then` gets
    /// [`StoreError::Closed`].
    fn commit(&self, changes: Vec<Change>, then: Acknowledge);

    /// Every execution whose stored status is not final (the startup scan), each decoded
    /// as far as possible: one whose records do not decode is `Corrupt`, and the others
    /// are still read.
    fn load_live(&self) -> StoreFuture<'_, Vec<LoadedExecution>>;

    /// One execution with its item records (after the recovery rule) and checkpoints, as
    /// one snapshot. [`StoreError::Missing`] when it is not stored.
    fn load_execution(&self, id: ExecutionId) -> StoreFuture<'_, StoredExecution>;

    /// Executions before `query.before`, newest first, that `query` keeps, each as
    /// `overlay` knows it or else as stored; at most `query.limit` (taken as given) and at
    /// most [`SCAN_BUDGET`] records read, with the cursor to go on from when there may be
    /// more. A record that does not decode lists as corrupt.
    fn page(&self, query: ListQuery, overlay: Arc<dyn Overlay>) -> StoreFuture<'_, Page>;

    /// Up to `max` executions created after `after`, oldest first, each as `overlay` knows
    /// it or else as stored, and the cursor to go on from.
    fn after(
        &self,
        after: Option<ExecutionId>,
        max: usize,
        overlay: Arc<dyn Overlay>,
    ) -> StoreFuture<'_, Page>;

    /// One execution's summary as stored; `None` when it is not stored.
    fn summary(&self, id: ExecutionId) -> StoreFuture<'_, Option<StoredSummary>>;

    /// Of the `max` executions created after `after`, the finished ones (completed, failed,
    /// cancelled) with when each last changed (ms since the epoch), oldest first, and the
    /// cursor to go on from. Corrupt ones are left out.
    #[allow(clippy::type_complexity)]
    fn finished(
        &self,
        after: Option<ExecutionId>,
        max: usize,
    ) -> StoreFuture<'_, (Vec<(u64, ExecutionId)>, Option<ExecutionId>)>;

    /// Who holds idempotency key `key`.
    fn key_owner(&self, key: String) -> StoreFuture<'_, Option<KeyOwner>>;

    /// How many executions are stored.
    fn execution_count(&self) -> StoreFuture<'_, u64>;

    /// The runtime metadata value under `key`.
    fn meta(&self, key: String) -> StoreFuture<'_, Option<Vec<u8>>>;

    /// Execution `id` references `artifact`, touching its timestamp of interest, if it
    /// still exists; `false` if the sweep deleted it. The check and the reference are one
    /// atomic step, and durable when it returns.
    fn reference_artifact(
        &self,
        id: ExecutionId,
        artifact: ArtifactId,
        now_ms: u64,
    ) -> StoreFuture<'_, bool>;

    /// An artifact's bytes, touching its timestamp of interest; `None` if it is gone.
    fn read_artifact(&self, artifact: ArtifactId, now_ms: u64) -> StoreFuture<'_, Option<Vec<u8>>>;

    /// One batch of the orphan sweep, from `from` on: up to `limit` artifacts looked at, and
    /// of those deleted the ones no execution references whose timestamp of interest is
    /// before `cutoff_ms`, each check and delete one atomic step. A backend may end a batch
    /// early to let commits through.
    fn sweep_artifacts(
        &self,
        from: Option<ArtifactId>,
        limit: usize,
        cutoff_ms: u64,
    ) -> StoreFuture<'_, SweepBatch>;

    /// Executions that have records (items, checkpoints, artifact references) but no
    /// execution record: left by a deletion an older build cut short. The sweep deletes
    /// them.
    fn leftovers(&self) -> StoreFuture<'_, Vec<ExecutionId>>;

    /// What went wrong with the last commit, unless one has succeeded since.
    fn failure(&self) -> Option<StoreFailure>;

    /// How much room the store takes.
    fn size(&self) -> StoreFuture<'_, StoreSize>;

    /// The file it keeps on this machine's disk, if it is one (the disk monitor watches
    /// its file system).
    fn file(&self) -> Option<&Path>;

    /// After deletions that freed about `freed` bytes: gives room back to the file system
    /// if the backend does (`now`: at once if worth it; else later, e.g. at the next
    /// open). Returns whether it gave room back now.
    fn reclaim(&self, freed: u64, now: bool) -> StoreFuture<'_, bool>;

    /// Waits until every batch handed over before is durable (or failed), then releases
    /// the store; later commits fail with [`StoreError::Closed`].
    fn close(&self) -> StoreFuture<'_, ()>;
}
