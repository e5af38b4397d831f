//! The PostgreSQL backend (feature `postgres`): the store in a database the application
//! already runs, in a schema of its own (`tend` unless told), so two applications share a
//! database.
//!
//! ```text
//! version       the schema's version (one row; see `schema`)
//! executions    id (ULID) -> name, status, live, times, flags, reason, item counts
//!               (index on the live ones: startup reads those)
//! plans         id -> the plan (json), written once, at submit
//! items         (execution, idx) -> status, attempt counts, progress, message, output,
//!               error, history (json), flags
//! start_log     (execution, seq) -> arrays of idx, attempt, crashes: attempts that
//!               started and that the item's record may not show yet (the recovery
//!               rule); a row per execution per commit, folded into one (`start_log`)
//! checkpoints   (execution, idx) -> state, progress
//! keys          idempotency key -> execution, digest of its plan
//! artifacts     id (SHA-256) -> bytes, timestamp of interest
//! artifact_refs (artifact, execution)
//! meta          key -> bytes
//! ```
//!
//! - **Connections**: `tokio-postgres` with a `deadpool` pool (`PostgresOptions::pool_size`)
//!   for reads and artifact statements, one connection for the group-commit writer, and
//!   one for the runtime lock. No TLS yet:
//!   a URL that asks for it (`sslmode=require`, `verify-ca`, `verify-full`) is refused.
//!   Errors name the URL without its password ([`redact`]).
//! - **Start**: the runtime lock first (a session-level advisory lock: a second runtime on
//!   the same database and schema is refused), then the schema created or migrated under
//!   its version row (a newer version is refused, naming it).
//! - **Writes**: one task, on a thread of its own, takes every pending batch into one
//!   transaction of multi-row statements, acknowledged once `COMMIT` returns (`writer`,
//!   `group`). No transaction
//!   stays open while an item runs: a transaction lives for one group commit or one read.
//! - **Connection loss**: the commit fails as a full disk does on redb, `failure()` says so
//!   until one succeeds, and the pool connects again by itself.
//! - **Artifacts** are `bytea`; a sweep batch is one statement (`artifacts`). The database
//!   gives room back by itself (autovacuum): `reclaim` does nothing and says so.

mod artifacts;
mod failure;
mod group;
mod item_record;
mod listing;
mod load;
mod lock;
mod pool;
mod rows;
mod schema;
mod start_log;
mod statements;
mod transaction;
mod url;
mod v1;
mod writer;

use std::path::Path;
use std::sync::Arc;

use crate::error::StoreError;
use crate::model::{ArtifactId, Change, ExecutionId, KeyOwner, ListQuery, StoredSummary};
use crate::store::{
    Acknowledge, Backend, LoadedExecution, Overlay, Page, StoreFailure, StoreFuture, StoreSize,
    StoredExecution, SweepBatch,
};

pub use url::redact;
pub use writer::{CommitCounter, CommitCounts};

use crate::store::health::CommitHealth;
use lock::{RuntimeLock, Session};
use pool::{Db, Doing};
use schema::Schema;
use url::Target;
use writer::{Counters, Writer};

/// Options of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema that holds tend's tables (created if missing): `[a-z_][a-z0-9_]{0,62}`.
    /// Default `tend`.
    pub schema: String,
    /// The most connections the pool opens for reads and artifact statements. The
    /// group-commit writer holds one more of its own, and so does the runtime lock.
    /// Default 8.
    pub pool_size: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "tend".to_owned(),
            pool_size: 8,
        }
    }
}

/// The PostgreSQL backend (see the module docs).
pub struct PostgresStore {
    db: Arc<Db>,
    writer: Writer,
    health: Arc<CommitHealth>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.db.target.url)
            .field("schema", &self.db.schema.name())
            .finish()
    }
}

/// The URL and schema of a start, checked: the URL parsed (TLS refused), the schema name
/// valid.
fn checked(url: &str, schema: &str) -> Result<(Target, Schema), StoreError> {
    let target = Target::parse(url)?;
    let schema = Schema::new(schema).map_err(|reason| target.open_error(reason))?;
    Ok((target, schema))
}

impl PostgresStore {
    /// Connects, creates or migrates the schema under a version row (an advisory lock
    /// so two processes starting at once do not race), refuses a newer version with an
    /// error naming it, and takes the session-level advisory lock that makes this the
    /// one runtime on this database and schema (held by a connection of its own for the
    /// store's life; a second one is refused with an error saying another runtime holds
    /// the schema). Errors name the URL without its password.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let (target, schema) = checked(url, &options.schema)?;
        if options.pool_size == 0 {
            return Err(target.open_error("pool_size is 0; it must be at least 1"));
        }
        // The lock first: a runtime refused must not migrate the schema under the one
        // that holds it.
        let mut lock = RuntimeLock::take(&target, &schema).await?;
        let Some(client) = lock.client() else {
            return Err(target.open_error("the lock's connection closed during the start"));
        };
        schema::migrate(client, &schema, &target).await?;
        let db = Arc::new(Db::new(target, schema, options.pool_size)?);
        let health = Arc::new(CommitHealth::default());
        let counters = Arc::new(Counters::default());
        let writer = Writer::start(db.clone(), lock, health.clone(), counters.clone())?;
        tracing::info!(url = %db.target.url, schema = db.schema.name(), "store connected");
        Ok(PostgresStore {
            db,
            writer,
            health,
            counters,
        })
    }

    /// For tests of the refusal: marks the schema as a newer version's.
    pub async fn mark_newer_version(url: &str, schema: &str) -> Result<(), StoreError> {
        let (target, schema) = checked(url, schema)?;
        let mut session = Session::connect(&target)
            .await
            .map_err(|e| target.open_error(failure::describe(&e)))?;
        schema::mark_newer(&mut session.client, &schema, &target).await
    }

    /// What the writer has sent since the store opened: commits, the batches they took,
    /// statements and round trips.
    pub fn commit_counts(&self) -> CommitCounts {
        self.counters.get()
    }

    /// A handle that reads [`commit_counts`](Self::commit_counts) after the store was handed
    /// on (to a `Store`, a runtime).
    pub fn commit_counter(&self) -> CommitCounter {
        CommitCounter(self.counters.clone())
    }
}

impl Backend for PostgresStore {
    fn commit(&self, changes: Vec<Change>, then: Acknowledge) {
        // Mapped here, on the caller's thread: the writer only merges and sends.
        self.writer.send(rows::encode(changes), then);
    }

    fn load_live(&self) -> StoreFuture<'_, Vec<LoadedExecution>> {
        Box::pin(load::load_live(&self.db))
    }

    fn load_execution(&self, id: ExecutionId) -> StoreFuture<'_, StoredExecution> {
        Box::pin(load::load_execution(&self.db, id))
    }

    fn page(&self, query: ListQuery, overlay: Arc<dyn Overlay>) -> StoreFuture<'_, Page> {
        Box::pin(listing::page(&self.db, query, overlay))
    }

    fn after(
        &self,
        after: Option<ExecutionId>,
        max: usize,
        overlay: Arc<dyn Overlay>,
    ) -> StoreFuture<'_, Page> {
        Box::pin(listing::after(&self.db, after, max, overlay))
    }

    fn summary(&self, id: ExecutionId) -> StoreFuture<'_, Option<StoredSummary>> {
        Box::pin(listing::one(&self.db, id))
    }

    fn finished(
        &self,
        after: Option<ExecutionId>,
        max: usize,
    ) -> StoreFuture<'_, (Vec<(u64, ExecutionId)>, Option<ExecutionId>)> {
        Box::pin(listing::finished(&self.db, after, max))
    }

    fn key_owner(&self, key: String) -> StoreFuture<'_, Option<KeyOwner>> {
        Box::pin(listing::key_owner(&self.db, key))
    }

    fn execution_count(&self) -> StoreFuture<'_, u64> {
        Box::pin(listing::execution_count(&self.db))
    }

    fn meta(&self, key: String) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(listing::meta(&self.db, key))
    }

    fn reference_artifact(
        &self,
        id: ExecutionId,
        artifact: ArtifactId,
        now_ms: u64,
    ) -> StoreFuture<'_, bool> {
        Box::pin(artifacts::reference(&self.db, id, artifact, now_ms))
    }

    fn read_artifact(&self, artifact: ArtifactId, now_ms: u64) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(artifacts::read(&self.db, artifact, now_ms))
    }

    fn sweep_artifacts(
        &self,
        from: Option<ArtifactId>,
        limit: usize,
        cutoff_ms: u64,
    ) -> StoreFuture<'_, SweepBatch> {
        Box::pin(artifacts::sweep_batch(&self.db, from, limit, cutoff_ms))
    }

    fn leftovers(&self) -> StoreFuture<'_, Vec<ExecutionId>> {
        Box::pin(artifacts::leftovers(&self.db))
    }

    fn failure(&self) -> Option<StoreFailure> {
        self.health.failure()
    }

    /// The bytes the schema's tables take, their indexes and TOAST included
    /// (`pg_total_relation_size`); no file on this machine.
    fn size(&self) -> StoreFuture<'_, StoreSize> {
        Box::pin(async move {
            let schema = self.db.schema.name().to_owned();
            let used: i64 = self
                .db
                .run(Doing::Read, |client, sql| {
                    let schema = schema.clone();
                    Box::pin(async move {
                        let statement = client.prepare_cached(&sql.size).await?;
                        client.query_one(&statement, &[&schema]).await?.try_get(0)
                    })
                })
                .await?;
            Ok(StoreSize {
                used_bytes: rows::unbig(used),
                file_bytes: 0,
            })
        })
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    /// Nothing to do: PostgreSQL's autovacuum makes the room of deleted rows reusable by
    /// itself (giving it back to the file system takes `VACUUM FULL`, which locks the
    /// tables: a database administrator's call, not the runtime's). Returns `false`.
    fn reclaim(&self, _freed: u64, _now: bool) -> StoreFuture<'_, bool> {
        Box::pin(async { Ok(false) })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.writer.close().await;
            // Reads after a close fail with `Closed`, as on redb.
            self.db.pool.close();
            Ok(())
        })
    }
}
