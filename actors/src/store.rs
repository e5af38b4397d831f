//! The store: where executions, item records, intra-item checkpoints, artifacts and
//! runtime metadata are kept durably.
//!
//! ```text
//! Store          a cheap handle the engine holds: typed reads and commits
//! └── Backend    the trait every store implements, over model types only (backend.rs)
//!     ├── redb   the embedded default: one redb file, or redb's in-memory backend, with a
//!     │          group-commit writer thread (redb/)
//!     └── postgres  a schema in a PostgreSQL database, with a group-commit writer thread
//!                (postgres/, feature `postgres`)
//! ```
//!
//! What a backend must do is said by its trait's rules and checked by the behaviour suite
//! (`suite`, behind the feature `store-suite`), which every backend passes.

mod backend;
mod health;
#[cfg(feature = "postgres")]
mod postgres;
mod redb;
mod stored;
#[cfg(feature = "store-suite")]
pub mod suite;

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::model::{
    ArtifactId, Change, ExecutionId, ExecutionReport, KeyOwner, ListQuery, StoredSummary,
};

pub use self::redb::{DB_FILE, RedbOptions, RedbStore};
pub use backend::{
    Acknowledge, Backend, Overlay, Page, SCAN_BUDGET, StoreFailure, StoreFuture, StoreSize, Stored,
    SweepBatch,
};
#[cfg(feature = "postgres")]
pub use postgres::{CommitCounter, CommitCounts, PostgresOptions, PostgresStore, redact};
pub use stored::{LoadedExecution, StoredExecution};

/// A handle to the store: a [`Backend`] the engine reads and writes through. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Store").field(&self.backend).finish()
    }
}

impl Store {
    /// A store over `backend`.
    pub fn new(backend: impl Backend) -> Self {
        Store {
            backend: Arc::new(backend),
        }
    }

    /// Opens (or creates) the redb file `dir/tend.redb`, the embedded default. Blocking:
    /// call it from a blocking context.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        RedbStore::open(dir).map(Store::new)
    }

    /// [`open`](Self::open) with `options` (the page cache's size). Blocking.
    pub fn open_with(dir: &Path, options: RedbOptions) -> Result<Self, StoreError> {
        RedbStore::open_with(dir, options).map(Store::new)
    }

    /// A redb store that keeps everything in memory and loses it when dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        RedbStore::in_memory().map(Store::new)
    }

    /// [`in_memory`](Self::in_memory) with `options` (the page cache's size).
    pub fn in_memory_with(options: RedbOptions) -> Result<Self, StoreError> {
        RedbStore::in_memory_with(options).map(Store::new)
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The file the store keeps on this machine's disk, if it is one.
    pub fn path(&self) -> Option<&Path> {
        self.backend.file()
    }

    /// Hands `changes` to the backend; `then` gets the result once they are durable (or
    /// failed). It must not block.
    pub(crate) fn send(&self, changes: Vec<Change>, then: Acknowledge) {
        self.backend.commit(changes, then);
    }

    /// Commits `changes` and returns once they are durable.
    pub async fn commit(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.backend.commit(
            changes,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Returns once every write handed over before this call is durable (or failed).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.commit(Vec::new()).await
    }

    /// Stores a runtime metadata value under `key`; returns once it is durable.
    pub async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.commit(vec![Change::Meta {
            key: key.to_owned(),
            value: value.to_vec(),
        }])
        .await
    }

    /// The runtime metadata value under `key`.
    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.meta(key.to_owned()).await
    }

    /// What went wrong with the store last (a failed commit: a full disk, an I/O error),
    /// unless a commit has succeeded since.
    pub fn failure(&self) -> Option<StoreFailure> {
        self.backend.failure()
    }

    /// Every execution whose stored status is not final (see [`Backend::load_live`]).
    pub(crate) async fn load_live(&self) -> Result<Vec<LoadedExecution>, StoreError> {
        self.backend.load_live().await
    }

    /// One execution with its item records and checkpoints.
    pub async fn load_execution(&self, id: ExecutionId) -> Result<StoredExecution, StoreError> {
        self.backend.load_execution(id).await
    }

    /// A page of executions (see [`Backend::page`]).
    pub(crate) async fn page(
        &self,
        query: ListQuery,
        overlay: Arc<dyn Overlay>,
    ) -> Result<Page, StoreError> {
        self.backend.page(query, overlay).await
    }

    /// Executions created after `after`, oldest first (see [`Backend::after`]).
    pub(crate) async fn after(
        &self,
        after: Option<ExecutionId>,
        max: usize,
        overlay: Arc<dyn Overlay>,
    ) -> Result<Page, StoreError> {
        self.backend.after(after, max, overlay).await
    }

    /// One execution's summary as stored; `None` when it is not stored.
    pub(crate) async fn summary(
        &self,
        id: ExecutionId,
    ) -> Result<Option<StoredSummary>, StoreError> {
        self.backend.summary(id).await
    }

    /// Finished executions created after `after` (see [`Backend::finished`]).
    #[allow(clippy::type_complexity)]
    pub(crate) async fn finished(
        &self,
        after: Option<ExecutionId>,
        max: usize,
    ) -> Result<(Vec<(u64, ExecutionId)>, Option<ExecutionId>), StoreError> {
        self.backend.finished(after, max).await
    }

    /// Who holds idempotency key `key`.
    pub(crate) async fn key_owner(&self, key: &str) -> Result<Option<KeyOwner>, StoreError> {
        self.backend.key_owner(key.to_owned()).await
    }

    /// Number of executions stored.
    pub async fn execution_count(&self) -> Result<u64, StoreError> {
        self.backend.execution_count().await
    }

    /// The report of execution `id` exactly as stored (a stored `running` stays `running`).
    pub async fn report(&self, id: ExecutionId) -> Result<ExecutionReport, StoreError> {
        let stored = self.load_execution(id).await?;
        Ok(stored.report(stored.record.status))
    }

    /// The intra-item checkpoint stored for item `item` of execution `id`, decoded as `T`;
    /// `None` when there is none.
    pub async fn checkpoint<T: DeserializeOwned>(
        &self,
        id: ExecutionId,
        item: &str,
    ) -> Result<Option<T>, StoreError> {
        let stored = self.load_execution(id).await?;
        let index = stored
            .record
            .plan
            .blocks
            .iter()
            .flat_map(|b| b.items.iter())
            .position(|spec| spec.id == item);
        let Some(bytes) = index.and_then(|i| stored.checkpoints[i].as_ref().map(|c| &c.state))
        else {
            return Ok(None);
        };
        rmp_serde::from_slice(bytes)
            .map(Some)
            .map_err(|e| StoreError::Decode {
                what: format!("checkpoint of {id}/{item}"),
                reason: e.to_string(),
            })
    }

    /// Stores `bytes` as an artifact referenced by execution `id`; returns once durable.
    pub(crate) async fn put_artifact(
        &self,
        id: ExecutionId,
        bytes: Vec<u8>,
        now_ms: u64,
    ) -> Result<ArtifactId, StoreError> {
        let artifact = ArtifactId::of(&bytes);
        self.commit(vec![Change::PutArtifact {
            id,
            artifact: *artifact.as_bytes(),
            bytes,
            now_ms,
        }])
        .await?;
        Ok(artifact)
    }

    /// Execution `id` references `artifact`; `false` if it no longer exists.
    pub(crate) async fn reference_artifact(
        &self,
        id: ExecutionId,
        artifact: ArtifactId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.backend.reference_artifact(id, artifact, now_ms).await
    }

    /// An artifact's bytes (touching it); `None` if it no longer exists.
    pub(crate) async fn read_artifact(
        &self,
        artifact: ArtifactId,
        now_ms: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.read_artifact(artifact, now_ms).await
    }

    /// One batch of the orphan sweep (see [`Backend::sweep_artifacts`]).
    pub(crate) async fn sweep_artifacts(
        &self,
        from: Option<ArtifactId>,
        limit: usize,
        cutoff_ms: u64,
    ) -> Result<SweepBatch, StoreError> {
        self.backend.sweep_artifacts(from, limit, cutoff_ms).await
    }

    /// Executions with records but no execution record.
    pub(crate) async fn leftovers(&self) -> Result<Vec<ExecutionId>, StoreError> {
        self.backend.leftovers().await
    }

    /// How much room the store takes.
    pub async fn size(&self) -> Result<StoreSize, StoreError> {
        self.backend.size().await
    }

    /// After deletions that freed about `freed` bytes, gives room back (see
    /// [`Backend::reclaim`]). Returns whether it did now.
    pub async fn reclaim(&self, freed: u64, now: bool) -> Result<bool, StoreError> {
        self.backend.reclaim(freed, now).await
    }

    /// Waits until every write sent before is durable, then releases the store. Later
    /// writes fail with [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        self.backend.close().await
    }
}
