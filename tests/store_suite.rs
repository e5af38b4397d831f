//! The store's behaviour suite against the redb file backend, the in-memory one and
//! PostgreSQL (a fresh schema per check, on the server `TEND_TEST_POSTGRES_URL` names),
//! and against a deliberately broken backend (one that acknowledges a commit before it is
//! durable), which must fail it.

#[path = "support/postgres.rs"]
mod postgres;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tend::engine::error::StoreError;
use tend::engine::model::{ArtifactId, Change, ExecutionId, KeyOwner, ListQuery, StoredSummary};
use tend::engine::store::suite::{self, Subject, SubjectFuture};
use tend::engine::store::{
    Acknowledge, Backend, LoadedExecution, Overlay, Page, PostgresOptions, PostgresStore,
    RedbStore, Store, StoreFailure, StoreFuture, StoreSize, StoredExecution, SweepBatch,
};

/// How long a reopen waits for a store dropped without a close to let go of its file.
const RELEASE_PATIENCE: Duration = Duration::from_secs(20);

/// A redb file in a temporary directory; `wrap` makes the backend under test of it.
struct FileSubject {
    dir: tempfile::TempDir,
    wrap: fn(RedbStore) -> Store,
}

impl FileSubject {
    fn new(wrap: fn(RedbStore) -> Store) -> Self {
        FileSubject {
            dir: tempfile::tempdir().expect("a temporary directory"),
            wrap,
        }
    }
}

/// Opens the file in `dir`, waiting (bounded) while a store dropped without a close still
/// holds it: its writer thread finishes what was handed to it, then lets go.
fn open_file(dir: PathBuf) -> Result<RedbStore, StoreError> {
    let began = Instant::now();
    loop {
        match RedbStore::open(&dir) {
            Err(StoreError::Open { reason, .. })
                if reason.contains("already open") && began.elapsed() < RELEASE_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

impl Subject for FileSubject {
    fn open(&mut self) -> SubjectFuture<'_, Store> {
        let dir = self.dir.path().to_owned();
        let wrap = self.wrap;
        Box::pin(async move {
            let store = tokio::task::spawn_blocking(move || open_file(dir))
                .await
                .map_err(|e| StoreError::Read(e.to_string()))??;
            Ok(wrap(store))
        })
    }

    fn persistent(&self) -> bool {
        true
    }

    fn mark_newer_format(&mut self) -> SubjectFuture<'_, ()> {
        let dir = self.dir.path().to_owned();
        Box::pin(async move {
            // The store was just closed; wait for the file as an open would, and let go of
            // it at once.
            let opened = dir.clone();
            let store = tokio::task::spawn_blocking(move || open_file(opened))
                .await
                .map_err(|e| StoreError::Read(e.to_string()))??;
            store.close().await?;
            drop(store);
            tokio::task::spawn_blocking(move || RedbStore::mark_newer_format(&dir))
                .await
                .map_err(|e| StoreError::Read(e.to_string()))?
        })
    }
}

/// redb's in-memory backend: nothing outlives the store, so the checks that reopen are
/// skipped.
struct MemorySubject;

impl Subject for MemorySubject {
    fn open(&mut self) -> SubjectFuture<'_, Store> {
        Box::pin(async { Store::in_memory() })
    }

    fn persistent(&self) -> bool {
        false
    }

    fn mark_newer_format(&mut self) -> SubjectFuture<'_, ()> {
        Box::pin(async { Err(StoreError::Closed) })
    }
}

/// A schema of its own on the test server; every schema made is noted in `made`, for the
/// test to drop them at its end.
struct PostgresSubject {
    url: String,
    schema: String,
}

impl PostgresSubject {
    fn new(url: &str, made: &Mutex<Vec<String>>) -> Self {
        let schema = postgres::unique("suite");
        made.lock().unwrap().push(schema.clone());
        PostgresSubject {
            url: url.to_owned(),
            schema,
        }
    }
}

/// Connects to `schema`, waiting (bounded) while a store dropped without a close still
/// holds its lock: its writer finishes what was handed to it, then its lock
/// connection goes, and the server ends that session.
async fn connect_when_free(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
    let began = Instant::now();
    loop {
        let options = PostgresOptions {
            schema: schema.to_owned(),
            pool_size: 4,
        };
        match PostgresStore::connect(url, options).await {
            Err(StoreError::Open { reason, .. })
                if reason.contains("another runtime holds")
                    && began.elapsed() < RELEASE_PATIENCE =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

impl Subject for PostgresSubject {
    fn open(&mut self) -> SubjectFuture<'_, Store> {
        Box::pin(async move {
            connect_when_free(&self.url, &self.schema)
                .await
                .map(Store::new)
        })
    }

    fn persistent(&self) -> bool {
        true
    }

    fn mark_newer_format(&mut self) -> SubjectFuture<'_, ()> {
        Box::pin(PostgresStore::mark_newer_version(&self.url, &self.schema))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_backend_passes_the_behaviour_suite() {
    let Some(url) = postgres::url() else { return };
    let made: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = suite::run(|| PostgresSubject::new(&url, &made)).await;
    let schemas = made.lock().unwrap().clone();
    postgres::drop_schemas(&url, &schemas).await;
    assert!(report.failed.is_empty(), "{report}");
    assert!(report.skipped.is_empty(), "{report}");
    assert_eq!(report.passed, suite::check_names(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redb_file_backend_passes_the_behaviour_suite() {
    let report = suite::run(|| FileSubject::new(Store::new)).await;
    assert!(report.failed.is_empty(), "{report}");
    assert!(report.skipped.is_empty(), "{report}");
    assert_eq!(report.passed, suite::check_names(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_backend_passes_the_behaviour_suite() {
    let report = suite::run(|| MemorySubject).await;
    assert!(report.failed.is_empty(), "{report}");
    // Only what needs a reopen is skipped.
    let skipped: Vec<&str> = report.skipped.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        skipped,
        [
            "acknowledged_is_durable",
            "attempt_numbers_never_repeat",
            "a_newer_format_is_refused"
        ],
        "{report}"
    );
}

/// A backend that acknowledges each commit at once and writes it only when the next one
/// comes (a write-back cache): acknowledged before durable. Everything else is redb's.
#[derive(Debug)]
struct WriteBack {
    inner: RedbStore,
    held: Mutex<Option<Vec<Change>>>,
}

impl Backend for WriteBack {
    fn commit(&self, changes: Vec<Change>, then: Acknowledge) {
        then(Ok(()));
        let previous = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(changes);
        if let Some(previous) = previous {
            self.inner.commit(previous, Box::new(|_| {}));
        }
    }
    fn load_live(&self) -> StoreFuture<'_, Vec<LoadedExecution>> {
        self.inner.load_live()
    }
    fn load_execution(&self, id: ExecutionId) -> StoreFuture<'_, StoredExecution> {
        self.inner.load_execution(id)
    }
    fn page(
        &self,
        query: ListQuery,
        overlay: std::sync::Arc<dyn Overlay>,
    ) -> StoreFuture<'_, Page> {
        self.inner.page(query, overlay)
    }
    fn after(
        &self,
        after: Option<ExecutionId>,
        max: usize,
        overlay: std::sync::Arc<dyn Overlay>,
    ) -> StoreFuture<'_, Page> {
        self.inner.after(after, max, overlay)
    }
    fn summary(&self, id: ExecutionId) -> StoreFuture<'_, Option<StoredSummary>> {
        self.inner.summary(id)
    }
    fn finished(
        &self,
        after: Option<ExecutionId>,
        max: usize,
    ) -> StoreFuture<'_, (Vec<(u64, ExecutionId)>, Option<ExecutionId>)> {
        self.inner.finished(after, max)
    }
    fn key_owner(&self, key: String) -> StoreFuture<'_, Option<KeyOwner>> {
        self.inner.key_owner(key)
    }
    fn execution_count(&self) -> StoreFuture<'_, u64> {
        self.inner.execution_count()
    }
    fn meta(&self, key: String) -> StoreFuture<'_, Option<Vec<u8>>> {
        self.inner.meta(key)
    }
    fn reference_artifact(
        &self,
        id: ExecutionId,
        artifact: ArtifactId,
        now_ms: u64,
    ) -> StoreFuture<'_, bool> {
        self.inner.reference_artifact(id, artifact, now_ms)
    }
    fn read_artifact(&self, artifact: ArtifactId, now_ms: u64) -> StoreFuture<'_, Option<Vec<u8>>> {
        self.inner.read_artifact(artifact, now_ms)
    }
    fn sweep_artifacts(
        &self,
        from: Option<ArtifactId>,
        limit: usize,
        cutoff_ms: u64,
    ) -> StoreFuture<'_, SweepBatch> {
        self.inner.sweep_artifacts(from, limit, cutoff_ms)
    }
    fn leftovers(&self) -> StoreFuture<'_, Vec<ExecutionId>> {
        self.inner.leftovers()
    }
    fn failure(&self) -> Option<StoreFailure> {
        self.inner.failure()
    }
    fn size(&self) -> StoreFuture<'_, StoreSize> {
        self.inner.size()
    }
    fn file(&self) -> Option<&std::path::Path> {
        self.inner.file()
    }
    fn reclaim(&self, freed: u64, now: bool) -> StoreFuture<'_, bool> {
        self.inner.reclaim(freed, now)
    }
    fn close(&self) -> StoreFuture<'_, ()> {
        self.inner.close()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_acknowledges_before_durable_fails_the_suite() {
    let report = suite::run(|| {
        FileSubject::new(|inner| {
            Store::new(WriteBack {
                inner,
                held: Mutex::new(None),
            })
        })
    })
    .await;
    let failed: Vec<&str> = report.failed.iter().map(|(name, _)| *name).collect();
    assert!(
        failed.contains(&"acknowledged_is_durable"),
        "the suite did not catch an acknowledgement before durability: {report}"
    );
}
