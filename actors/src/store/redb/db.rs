//! The database a store reads and writes, which the writer can reopen, and the store's
//! health.
//!
//! After an I/O error (a full disk, say) redb refuses every later operation with "Previous
//! I/O error occurred" until the database is closed and opened again. So the writer, after
//! a failed commit on a file store, reopens the database before its next commit: once the
//! disk has room again the store works again, without restarting the process. Readers take
//! the current database for one read at a time, so a reopen only waits for the reads in
//! flight.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

use crate::error::StoreError;
use crate::store::StoreFailure;
use crate::store::health::CommitHealth;
use crate::store::redb::RedbOptions;

/// How long a reopen waits for the reads in flight to finish.
const READERS_PATIENCE: Duration = Duration::from_secs(10);

/// The current database, and the store's health.
#[derive(Debug)]
pub(crate) struct Db {
    current: RwLock<Option<Arc<Database>>>,
    /// The file to reopen; `None` in memory (nothing to reopen).
    path: Option<PathBuf>,
    /// What it was opened with, to reopen it the same way.
    options: RedbOptions,
    health: CommitHealth,
    closed: AtomicBool,
}

impl Db {
    pub(crate) fn new(db: Database, path: Option<PathBuf>, options: RedbOptions) -> Self {
        Db {
            current: RwLock::new(Some(Arc::new(db))),
            path,
            options,
            health: CommitHealth::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// The database to use for one read or one commit.
    pub(crate) fn get(&self) -> Result<Arc<Database>, StoreError> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        current.clone().ok_or_else(|| {
            let why = self
                .failure()
                .map_or_else(|| "reopen pending".to_owned(), |f| f.reason);
            StoreError::Read(format!(
                "the store is being reopened after a failure: {why}"
            ))
        })
    }

    /// A commit failed with `reason`.
    pub(crate) fn failed(&self, reason: &str) {
        self.health.failed(reason);
    }

    /// A commit succeeded: the store is healthy.
    pub(crate) fn succeeded(&self) {
        self.health.succeeded();
    }

    /// The store's last failure, unless a commit has succeeded since.
    pub(crate) fn failure(&self) -> Option<StoreFailure> {
        self.health.failure()
    }

    /// The store is closed: the database is let go (its file closes once the reads in
    /// flight end, even while handles to the store remain) and later reads fail with
    /// [`StoreError::Closed`].
    pub(crate) fn close(&self) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Release);
        current.take();
    }

    /// Whether the database can be reopened (it is a file).
    pub(crate) fn reopenable(&self) -> bool {
        self.path.is_some()
    }

    /// Closes the database and opens its file again (redb checks and, if needed, repairs
    /// it). Waits for the reads in flight; new reads wait meanwhile. On failure no database
    /// is current, reads fail with the reason, and the next commit tries again.
    pub(crate) fn reopen(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = current.take() {
            let deadline = Instant::now() + READERS_PATIENCE;
            // Readers hold a clone for one read; once only ours is left, dropping it
            // closes the file.
            while Arc::strong_count(&db) > 1 {
                if Instant::now() >= deadline {
                    *current = Some(db);
                    return Err(StoreError::Commit(
                        "cannot reopen the store: reads still hold it".to_owned(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(db);
        }
        let db = self
            .options
            .builder()
            .create(path)
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        *current = Some(Arc::new(db));
        tracing::info!(path = %path.display(), "store reopened after a failure");
        Ok(())
    }

    /// Compacts the file, so the space deleted records held goes back to the file system.
    /// Only when no reader holds the database: it waits for the reads in flight (new reads
    /// wait meanwhile), and gives up if they do not end. Returns whether the file changed.
    /// Called on the writer thread, so no commit runs meanwhile.
    pub(crate) fn compact(&self) -> Result<bool, StoreError> {
        if self.path.is_none() {
            return Ok(false);
        }
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let Some(db) = current.take() else {
            return Err(StoreError::Commit(
                "cannot compact the store: it is being reopened".to_owned(),
            ));
        };
        let deadline = Instant::now() + READERS_PATIENCE;
        while Arc::strong_count(&db) > 1 {
            if Instant::now() >= deadline {
                *current = Some(db);
                return Err(StoreError::Commit(
                    "cannot compact the store: reads still hold it".to_owned(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut db = match Arc::try_unwrap(db) {
            Ok(db) => db,
            Err(db) => {
                *current = Some(db);
                return Err(StoreError::Commit(
                    "cannot compact the store: a read took it meanwhile".to_owned(),
                ));
            }
        };
        let result = db
            .compact()
            .map_err(|e| StoreError::Commit(format!("compaction failed: {e}")));
        *current = Some(Arc::new(db));
        result
    }
}
