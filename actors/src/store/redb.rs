//! The redb backend, the embedded default: one redb file (or redb's in-memory backend)
//! holding executions, item records, intra-item checkpoints, artifacts and runtime
//! metadata.
//!
//! ```text
//! executions   &str (execution id)        -> StoredExecutionRecord (msgpack; its status)
//! plans        &str (execution id)        -> Plan            (msgpack; written at submit)
//! item_records [u8; 30] (id, index: see `item_keys`) -> ItemRecord (msgpack)
//! item_checkpoints [u8; 30] (the same)    -> CheckpointRecord (msgpack)
//! starts       &str (execution id)        -> StartsRecord    (msgpack; attempts started
//!                                            that no item record shows yet)
//! live_executions &str (execution id)     -> ()  (those whose status is not final)
//! keys         &str (idempotency key)     -> execution id + SHA-256 of its plan
//! execution_keys &str (execution id)      -> &str (its idempotency key)
//! artifacts, artifact_toi, artifact_refs, execution_artifacts: see `artifacts`
//! meta         &str                       -> bytes (`format`: tend-store-5; a store of
//!                                            format 1 to 4 is moved on when opened, a
//!                                            newer one refused)
//! ```
//!
//! Every write goes through the [`Writer`]: one OS thread that takes every pending request,
//! commits them in one `Durability::Immediate` transaction and only then acknowledges them
//! (group commit). Records are encoded on the caller's thread, before they reach it. Reads
//! use the shared database from blocking threads, in short read transactions.

mod artifacts;
#[cfg(test)]
mod cache_tests;
mod db;
mod item_keys;
mod keys;
mod listing;
mod load;
mod op;
mod records;
mod starts;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::redb::{Database, ReadableDatabase, ReadableTableMetadata};

use crate::error::StoreError;
use crate::model::{
    ArtifactId, Change, ExecutionId, ExecutionStatus, KeyOwner, ListQuery, StoredSummary,
};
use crate::store::{
    Acknowledge, Backend, LoadedExecution, Overlay, Page, StoreFailure, StoreFuture, StoreSize,
    StoredExecution, SweepBatch,
};

use listing::Sieve;
use op::{Op, Ops};
use records::{CheckpointRecord, ItemRecord, RECORD_VERSION, encode, execution_ops};
use writer::Writer;

/// The name of the database file inside the data directory.
pub const DB_FILE: &str = "tend.redb";

/// Options of the redb backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbOptions {
    /// The most bytes redb's page cache holds: pages read and pages written. Default
    /// [`RedbOptions::DEFAULT_CACHE_BYTES`]. The cache fills as the store grows (redb's
    /// own default, 1 GiB, is what a process that ran for long enough held), so this is
    /// what bounds the memory that finished executions cost a running process.
    pub cache_bytes: usize,
}

impl RedbOptions {
    /// The default page cache: 64 MiB.
    pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

    /// The default options with a page cache of `bytes`.
    pub fn with_cache_bytes(bytes: usize) -> Self {
        RedbOptions { cache_bytes: bytes }
    }

    /// A database builder with these options.
    fn builder(&self) -> ::redb::Builder {
        let mut builder = Database::builder();
        builder.set_cache_size(self.cache_bytes);
        builder
    }
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions::with_cache_bytes(Self::DEFAULT_CACHE_BYTES)
    }
}

/// The redb backend: a file (or memory) and the writer thread that owns its writes. Cheap
/// to clone.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<db::Db>,
    writer: Writer,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Creates a new, empty store at `path` so that a crash at any instant leaves either no
/// store or a whole one: it is made under another name, made durable, then renamed. (A
/// process killed while redb wrote a new file's header left a file no later start could
/// open.)
fn create_atomically(dir: &Path, path: &Path) -> Result<(), String> {
    let fresh = dir.join(format!("{DB_FILE}.new"));
    // A creation that a crash cut short never became the store.
    if fresh.exists() {
        std::fs::remove_file(&fresh).map_err(|e| e.to_string())?;
    }
    {
        let db = Database::create(&fresh).map_err(|e| e.to_string())?;
        tables::create(&db).map_err(|e| e.to_string())?;
    }
    std::fs::File::open(&fresh)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&fresh, path).map_err(|e| e.to_string())?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| e.to_string())
}

/// About the bytes of an item record (a done item's is 60 to 120).
const ITEM_RECORD_ROOM: usize = 128;

/// Encodes a batch of changes into the writer's ops.
fn encode_changes(changes: Vec<Change>) -> Result<Ops, StoreError> {
    let mut ops = Vec::with_capacity(changes.len());
    // Room for the usual item record, so the buffer is not grown record by record.
    let items = changes
        .iter()
        .filter(|c| matches!(c, Change::Item { .. }))
        .count();
    let mut records = Vec::with_capacity(items * ITEM_RECORD_ROOM);
    for change in changes {
        match change {
            Change::Execution { record, new } => execution_ops(&record, new, &mut ops)?,
            Change::Key { key, owner } => ops.push(Op::Key { key, owner }),
            Change::Started { id, index, started } => ops.push(Op::Started {
                id,
                index,
                attempt: started.attempt,
                crashes: started.crashes,
            }),
            // redb replaces a record as cheaply as it inserts one.
            Change::Item {
                id, index, state, ..
            } => ops.push(ItemRecord::op(id, index, &state, &mut records)?),
            Change::Checkpoint {
                id,
                index,
                checkpoint,
            } => ops.push(Op::Checkpoint {
                id,
                index,
                record: encode(&CheckpointRecord {
                    v: RECORD_VERSION,
                    state: checkpoint.state,
                    progress: checkpoint.progress,
                })?,
            }),
            Change::ClearCheckpoint { id, index } => ops.push(Op::ClearCheckpoint { id, index }),
            Change::ClearStarts { id } => ops.push(Op::ClearStarts { id }),
            Change::Meta { key, value } => ops.push(Op::Meta { key, value }),
            Change::Delete { id } => ops.push(Op::Delete { id }),
            Change::PutArtifact {
                id,
                artifact,
                bytes,
                now_ms,
            } => ops.push(Op::PutArtifact {
                id,
                artifact,
                bytes,
                now_ms,
            }),
        }
    }
    Ok(Ops { ops, records })
}

impl RedbStore {
    /// Opens (or creates) `dir/tend.redb` (compacting it if a compaction is due), and
    /// starts the writer thread. A file of a newer format than this build's is refused.
    /// Blocking: call it from a blocking context.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, RedbOptions::default())
    }

    /// [`open`](Self::open) with `options` (the page cache's size). Blocking.
    pub fn open_with(dir: &Path, options: RedbOptions) -> Result<Self, StoreError> {
        let open_err = |path: &Path, e: &dyn std::fmt::Display| StoreError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(dir, &e))?;
        let path = dir.join(DB_FILE);
        if !path.exists() {
            create_atomically(dir, &path).map_err(|e| open_err(&path, &e))?;
        }
        let mut db = options
            .builder()
            .create(&path)
            .map_err(|e| open_err(&path, &e))?;
        tables::check_format(&db).map_err(|e| open_err(&path, &e))?;
        // A compaction a prune or a sweep wanted and could not do (readers held the file,
        // or the process stopped first) is done now, before the database is shared: no
        // reader can hold pages yet. Otherwise none: compacting reads the whole file, and
        // startup reads only what is not finished.
        if tables::compaction_due(&db).map_err(|e| open_err(&path, &e))? {
            db.compact().map_err(|e| open_err(&path, &e))?;
            tables::set_compaction_due(&db, false).map_err(|e| open_err(&path, &e))?;
        }
        Self::start(db, Some(path), options)
    }

    /// A store that keeps everything in memory and loses it when dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::in_memory_with(RedbOptions::default())
    }

    /// [`in_memory`](Self::in_memory) with `options` (the page cache's size).
    pub fn in_memory_with(options: RedbOptions) -> Result<Self, StoreError> {
        let db = options
            .builder()
            .create_with_backend(::redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::Open {
                path: PathBuf::from(":memory:"),
                reason: e.to_string(),
            })?;
        Self::start(db, None, options)
    }

    /// Marks the file in `dir` as written by a newer build (format `tend-store-99`), as a
    /// later version of tend would leave it: an open of it is then refused. For tests of
    /// that refusal (the behaviour suite's among them). Blocking.
    pub fn mark_newer_format(dir: &Path) -> Result<(), StoreError> {
        let path = dir.join(DB_FILE);
        tables::mark_as(&path, b"tend-store-99").map_err(|reason| StoreError::Open {
            path: path.clone(),
            reason,
        })
    }

    fn start(
        db: Database,
        path: Option<PathBuf>,
        options: RedbOptions,
    ) -> Result<Self, StoreError> {
        tables::create(&db)?;
        let db = Arc::new(db::Db::new(db, path.clone(), options));
        let writer = Writer::start(db.clone())?;
        Ok(RedbStore { db, writer, path })
    }

    /// Runs `read` on a blocking thread with the current database.
    fn read<T, F>(&self, read: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                // Held for the whole read, so a reopen waits for it.
                let database = db.get()?;
                read(&database)
            })
            .await
            .map_err(|e| StoreError::Read(format!("read task failed: {e}")))?
        })
    }

    /// The file's length in bytes; 0 in memory.
    fn file_bytes(&self) -> u64 {
        self.path
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    /// The bytes the database's pages take, measured in a transaction on the writer thread.
    async fn used_bytes(&self) -> Result<u64, StoreError> {
        self.writer
            .run(|db| {
                let err = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
                let txn = db.begin_write().map_err(|e| err(&e))?;
                let stats = txn.stats().map_err(|e| err(&e))?;
                txn.abort().map_err(|e| err(&e))?;
                Ok(stats.allocated_pages() * stats.page_size() as u64)
            })
            .await
    }

    /// Compacts the file once the writes sent before are committed, when no reader holds
    /// it (commits and reads wait meanwhile). Returns whether the file changed.
    pub async fn compact(&self) -> Result<bool, StoreError> {
        self.writer.compact().await
    }
}

impl Backend for RedbStore {
    fn commit(&self, changes: Vec<Change>, then: Acknowledge) {
        // Encoded here, on the caller's thread: the writer thread only writes bytes.
        match encode_changes(changes) {
            Ok(ops) => self.writer.send_then(ops, then),
            // Nothing of it is written. It goes through the writer all the same (with
            // nothing to write), so results stay in order.
            Err(e) => self
                .writer
                .send_then(Ops::default(), Box::new(move |_| then(Err(e)))),
        }
    }

    fn load_live(&self) -> StoreFuture<'_, Vec<LoadedExecution>> {
        Box::pin(async move {
            let (loaded, inline) = self.read(load::load_live).await?;
            if !inline.is_empty() {
                // From before plans were kept apart: each plan moves to `plans`, so later
                // status writes (which leave the plan out) keep it.
                let mut ops = Vec::with_capacity(inline.len() * 2);
                for record in &inline {
                    execution_ops(record, true, &mut ops)?;
                }
                self.writer.commit(ops.into()).await?;
            }
            Ok(loaded)
        })
    }

    fn load_execution(&self, id: ExecutionId) -> StoreFuture<'_, StoredExecution> {
        self.read(move |db| load::load_execution(db, id))
    }

    fn page(&self, query: ListQuery, overlay: Arc<dyn Overlay>) -> StoreFuture<'_, Page> {
        self.read(move |db| {
            // Those statuses are all in the live index: no finished record is read for them.
            let live_only = matches!(
                query.status,
                Some(
                    ExecutionStatus::Running
                        | ExecutionStatus::Interrupted
                        | ExecutionStatus::Paused
                )
            );
            let sieve = Sieve {
                known: |id| overlay.known(id),
                keep: query.keeper(),
            };
            listing::page(db, query.before, query.limit, live_only, &sieve)
        })
    }

    fn after(
        &self,
        after: Option<ExecutionId>,
        max: usize,
        overlay: Arc<dyn Overlay>,
    ) -> StoreFuture<'_, Page> {
        self.read(move |db| {
            let sieve = Sieve {
                known: |id| overlay.known(id),
                keep: |_: &crate::model::ExecutionSummary| true,
            };
            listing::after(db, after, max, &sieve)
        })
    }

    fn summary(&self, id: ExecutionId) -> StoreFuture<'_, Option<StoredSummary>> {
        self.read(move |db| listing::one(db, id))
    }

    fn finished(
        &self,
        after: Option<ExecutionId>,
        max: usize,
    ) -> StoreFuture<'_, (Vec<(u64, ExecutionId)>, Option<ExecutionId>)> {
        self.read(move |db| listing::finished(db, after, max))
    }

    fn key_owner(&self, key: String) -> StoreFuture<'_, Option<KeyOwner>> {
        self.read(move |db| keys::owner(db, &key))
    }

    fn execution_count(&self) -> StoreFuture<'_, u64> {
        self.read(|db| {
            let read = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
            let txn = db.begin_read().map_err(|e| read(&e))?;
            let table = txn.open_table(tables::EXECUTIONS).map_err(|e| read(&e))?;
            table.len().map_err(|e| read(&e))
        })
    }

    fn meta(&self, key: String) -> StoreFuture<'_, Option<Vec<u8>>> {
        self.read(move |db| {
            let read = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
            let txn = db.begin_read().map_err(|e| read(&e))?;
            let table = txn.open_table(tables::META).map_err(|e| read(&e))?;
            let value = table.get(key.as_str()).map_err(|e| read(&e))?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    fn reference_artifact(
        &self,
        id: ExecutionId,
        artifact: ArtifactId,
        now_ms: u64,
    ) -> StoreFuture<'_, bool> {
        Box::pin(
            self.writer
                .run(move |db| artifacts::reference(db, id, artifact, now_ms)),
        )
    }

    fn read_artifact(&self, artifact: ArtifactId, now_ms: u64) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(
            self.writer
                .run(move |db| artifacts::read(db, artifact, now_ms)),
        )
    }

    fn sweep_artifacts(
        &self,
        from: Option<ArtifactId>,
        limit: usize,
        cutoff_ms: u64,
    ) -> StoreFuture<'_, SweepBatch> {
        Box::pin(async move {
            let from = from.map(|a| *a.as_bytes());
            let queued = self.writer.queued();
            let batch = self
                .writer
                .run(move |db| artifacts::sweep_batch(db, from, limit, cutoff_ms, &queued))
                .await?;
            Ok(SweepBatch {
                scanned: batch.scanned,
                deleted: batch.deleted,
                bytes: batch.bytes,
                next: batch.next.map(ArtifactId),
            })
        })
    }

    fn leftovers(&self) -> StoreFuture<'_, Vec<ExecutionId>> {
        // A whole scan off the writer thread: the ids it finds never come back, so a
        // snapshot is enough.
        self.read(artifacts::leftovers)
    }

    fn failure(&self) -> Option<StoreFailure> {
        self.db.failure()
    }

    fn size(&self) -> StoreFuture<'_, StoreSize> {
        Box::pin(async move {
            Ok(StoreSize {
                used_bytes: self.used_bytes().await?,
                file_bytes: self.file_bytes(),
            })
        })
    }

    fn file(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// After deletions that freed about `freed` bytes: compacts the file `now` if that is
    /// at least a quarter of it (commits and reads wait meanwhile), else, from an eighth
    /// of it, notes a compaction due at the next open (when no reader holds the file and
    /// nothing waits). Files under 1 MiB are left alone. A compaction that cannot run now
    /// is noted too.
    fn reclaim(&self, freed: u64, now: bool) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let file = self.file_bytes();
            let share = if now { 4 } else { 8 };
            if self.path.is_none() || file < 1 << 20 || freed < file / share {
                return Ok(false);
            }
            if !now {
                self.writer.put_meta(tables::COMPACTION_DUE, b"1").await?;
                return Ok(false);
            }
            let began = std::time::Instant::now();
            match self.compact().await {
                Ok(changed) => {
                    tracing::info!(before = file, after = self.file_bytes(), took = ?began.elapsed(), "store compacted");
                    Ok(changed)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "compaction put off to the next start");
                    self.writer.put_meta(tables::COMPACTION_DUE, b"1").await?;
                    Err(e)
                }
            }
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let result = self.writer.close().await;
            if self.path.is_some() {
                // The file is released even while handles to this store remain. (An
                // in-memory store keeps its data for reads until the last handle goes.)
                self.db.close();
            }
            result
        })
    }
}

#[cfg(test)]
impl RedbStore {
    /// The current database, for this backend's own tests.
    pub(crate) fn database(&self) -> Arc<Database> {
        self.db.get().expect("the store is open")
    }
}
