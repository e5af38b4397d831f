//! The store: one redb file (or redb's in-memory backend) holding executions, item records,
//! intra-item checkpoints and runtime metadata.
//!
//! ```text
//! executions   &str (execution id)        -> StoredExecutionRecord (msgpack; its status)
//! plans        &str (execution id)        -> Plan            (msgpack; written at submit)
//! items        (&str, u32 item index)     -> ItemRecord      (msgpack)
//! checkpoints  (&str, u32 item index)     -> CheckpointRecord (msgpack)
//! starts       &str (execution id)        -> StartsRecord    (msgpack; attempts started
//!                                            that no item record shows yet)
//! live_executions &str (execution id)     -> ()  (those whose status is not final)
//! keys         &str (idempotency key)     -> execution id + SHA-256 of its plan
//! execution_keys &str (execution id)      -> &str (its idempotency key)
//! meta         &str                       -> bytes (`format`: tend-store-4; a store of
//!                                            format 1 to 3 is moved on when opened, a
//!                                            newer one refused)
//! ```
//!
//! Every write goes through the [`Writer`]: one OS thread that takes every pending request,
//! commits them in one `Durability::Immediate` transaction and only then acknowledges them
//! (group commit). Reads use the shared `Arc<Database>` from blocking threads, in short read
//! transactions.

mod artifacts;
mod db;
mod keys;
mod listing;
mod load;
mod records;

pub(crate) use records::encode;
mod starts;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase};

use crate::error::StoreError;
use serde::de::DeserializeOwned;

use crate::model::{ExecutionId, ExecutionReport, ExecutionSummary};

pub use db::StoreFailure;
pub(crate) use keys::KeyOwner;
pub(crate) use listing::{Listed, Sieve};
pub(crate) use load::{LoadedExecution, StoredExecution};
pub(crate) use records::{CheckpointRecord, ExecutionRecord, ItemRecord, RECORD_VERSION};
pub(crate) use writer::Op;
pub use writer::Writer;

/// The name of the database file inside the data directory.
pub const DB_FILE: &str = "tend.redb";

/// A handle to the store: the database for reads and the writer for writes. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<db::Db>,
    writer: Writer,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
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

impl Store {
    /// Opens (or creates) `dir/tend.redb` (compacting it if a compaction is due), and
    /// starts the writer thread.
    /// Blocking: call it from a blocking context.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let open_err = |path: &Path, e: &dyn std::fmt::Display| StoreError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(dir, &e))?;
        let path = dir.join(DB_FILE);
        if !path.exists() {
            create_atomically(dir, &path).map_err(|e| open_err(&path, &e))?;
        }
        let mut db = Database::create(&path).map_err(|e| open_err(&path, &e))?;
        tables::check_format(&db).map_err(|e| open_err(&path, &e))?;
        // A compaction a prune or a sweep wanted and could not do (readers held the file,
        // or the process stopped first) is done now, before the database is shared: no
        // reader can hold pages yet. Otherwise none: compacting reads the whole file, and
        // startup reads only what is not finished.
        if tables::compaction_due(&db).map_err(|e| open_err(&path, &e))? {
            db.compact().map_err(|e| open_err(&path, &e))?;
            tables::set_compaction_due(&db, false).map_err(|e| open_err(&path, &e))?;
        }
        Self::start(db, Some(path))
    }

    /// A store that keeps everything in memory and loses it when dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::Open {
                path: PathBuf::from(":memory:"),
                reason: e.to_string(),
            })?;
        Self::start(db, None)
    }

    fn start(db: Database, path: Option<PathBuf>) -> Result<Self, StoreError> {
        tables::create(&db)?;
        let db = Arc::new(db::Db::new(db, path.clone()));
        let writer = Writer::start(db.clone())?;
        Ok(Store { db, writer, path })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The writer.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// What went wrong with the store last (a failed commit: a full disk, an I/O error),
    /// unless a commit has succeeded since.
    pub fn failure(&self) -> Option<StoreFailure> {
        self.db.failure()
    }

    /// Every execution whose stored status is not final, decoded as far as possible: a
    /// record that fails to decode makes that one execution corrupt. Blocking.
    pub(crate) fn load_live(&self) -> Result<Vec<LoadedExecution>, StoreError> {
        load::load_live(&*self.db.get()?)
    }

    /// A page of executions before `before`, newest first, as the sieve takes them (see
    /// `listing::page`). Blocking.
    pub(crate) fn list_page<K, P>(
        &self,
        before: Option<ExecutionId>,
        limit: usize,
        live_only: bool,
        sieve: &Sieve<K, P>,
    ) -> Result<(Vec<ExecutionSummary>, Option<ExecutionId>), StoreError>
    where
        K: Fn(ExecutionId) -> Option<ExecutionSummary>,
        P: Fn(&ExecutionSummary) -> bool,
    {
        listing::page(&*self.db.get()?, before, limit, live_only, sieve)
    }

    /// Up to `max` executions created after `after`, oldest first, as the sieve takes
    /// them, and where to go on from (see `listing::after`). Blocking.
    pub(crate) fn list_after<K, P>(
        &self,
        after: Option<ExecutionId>,
        max: usize,
        sieve: &Sieve<K, P>,
    ) -> Result<(Vec<ExecutionSummary>, Option<ExecutionId>), StoreError>
    where
        K: Fn(ExecutionId) -> Option<ExecutionSummary>,
        P: Fn(&ExecutionSummary) -> bool,
    {
        listing::after(&*self.db.get()?, after, max, sieve)
    }

    /// One execution's summary; `None` when it is not stored. Blocking.
    pub(crate) fn summary(&self, id: ExecutionId) -> Result<Option<Listed>, StoreError> {
        listing::one(&*self.db.get()?, id)
    }

    /// Up to `max` finished executions created after `after`, with when each last
    /// changed, and where to go on from (see `listing::finished`). Blocking.
    #[allow(clippy::type_complexity)]
    pub(crate) fn finished(
        &self,
        after: Option<ExecutionId>,
        max: usize,
    ) -> Result<(Vec<(u64, ExecutionId)>, Option<ExecutionId>), StoreError> {
        listing::finished(&*self.db.get()?, after, max)
    }

    /// Which execution has idempotency key `key`, with the digest of its plan. Blocking.
    pub(crate) fn key_owner(&self, key: &str) -> Result<Option<KeyOwner>, StoreError> {
        keys::owner(&*self.db.get()?, key)
    }

    /// One execution with its item records and checkpoints. Blocking.
    pub(crate) fn load_execution(&self, id: ExecutionId) -> Result<StoredExecution, StoreError> {
        load::load_execution(&*self.db.get()?, id)
    }

    /// Runs `f` on a blocking thread with the database; for reads only.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Read(format!("read task failed: {e}")))?
    }

    /// Waits until every write sent before this call is durable, then stops the writer
    /// thread. Later writes fail with [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        let result = self.writer.close().await;
        if self.path.is_some() {
            // The file is released even while handles to this store remain. (An in-memory
            // store keeps its data for reads until the last handle goes.)
            self.db.close();
        }
        result
    }

    /// The report of execution `id` exactly as stored (a stored `running` stays `running`).
    /// Blocking.
    pub fn report(&self, id: ExecutionId) -> Result<ExecutionReport, StoreError> {
        let stored = self.load_execution(id)?;
        Ok(stored.report(stored.record.status))
    }

    /// The intra-item checkpoint stored for item `item` of execution `id`, decoded as `T`;
    /// `None` when there is none. Blocking.
    pub fn checkpoint<T: DeserializeOwned>(
        &self,
        id: ExecutionId,
        item: &str,
    ) -> Result<Option<T>, StoreError> {
        let stored = self.load_execution(id)?;
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

    /// The runtime metadata value under `key`, read in a new transaction. Blocking.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // Held for the whole read, so a reopen waits for it.
        let db = self.db.get()?;
        let txn = db
            .begin_read()
            .map_err(|e| StoreError::Read(e.to_string()))?;
        let table = txn
            .open_table(tables::META)
            .map_err(|e| StoreError::Read(e.to_string()))?;
        let value = table
            .get(key)
            .map_err(|e| StoreError::Read(e.to_string()))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// The bytes the database's pages take (what a compacted file would be, about),
    /// measured in a transaction on the writer thread.
    pub async fn used_bytes(&self) -> Result<u64, StoreError> {
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

    /// The file's length in bytes; 0 in memory.
    pub fn file_bytes(&self) -> u64 {
        self.path
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    /// Compacts the file once the writes sent before are committed, when no reader holds
    /// it (commits and reads wait meanwhile). Returns whether the file changed.
    pub async fn compact(&self) -> Result<bool, StoreError> {
        self.writer.compact().await
    }

    /// After deletions that freed about `freed` bytes: compacts the file `now` if that is
    /// at least a quarter of it (commits and reads wait meanwhile), else, from an eighth
    /// of it, notes a compaction due at the next open (when no reader holds the file and
    /// nothing waits). Files under 1 MiB are left alone. A compaction that cannot run now
    /// is noted too. Returns whether it compacted.
    pub async fn reclaim(&self, freed: u64, now: bool) -> Result<bool, StoreError> {
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
    }

    /// Number of executions stored. Blocking.
    pub fn execution_count(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        // Held for the whole read, so a reopen waits for it.
        let db = self.db.get()?;
        let txn = db
            .begin_read()
            .map_err(|e| StoreError::Read(e.to_string()))?;
        let table = txn
            .open_table(tables::EXECUTIONS)
            .map_err(|e| StoreError::Read(e.to_string()))?;
        table.len().map_err(|e| StoreError::Read(e.to_string()))
    }
}
