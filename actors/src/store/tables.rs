//! Table definitions and the metadata written when a store is created.

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::error::StoreError;

/// Execution id -> `StoredExecutionRecord` (its status; the plan is in `PLANS`).
pub(crate) const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
/// Execution id -> its `Plan`, written once at submit.
pub(crate) const PLANS: TableDefinition<&str, &[u8]> = TableDefinition::new("plans");
/// (execution id, item index) -> `ItemRecord`.
pub(crate) const ITEMS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("items");
/// (execution id, item index) -> `CheckpointRecord`.
pub(crate) const CHECKPOINTS: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("checkpoints");
/// Execution id -> `StartsRecord`: the attempts that started and have no item record yet.
pub(crate) const STARTS: TableDefinition<&str, &[u8]> = TableDefinition::new("starts");
/// Artifact id (SHA-256) -> its bytes.
pub(crate) const ARTIFACTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("artifacts");
/// Artifact id -> its `timestamp_of_interest` (ms since the epoch): set when it is made,
/// touched whenever it is referenced or read.
pub(crate) const ARTIFACT_TOI: TableDefinition<&[u8], u64> = TableDefinition::new("artifact_toi");
/// (artifact id, execution id): the execution references the artifact.
pub(crate) const ARTIFACT_REFS: TableDefinition<(&[u8], &str), ()> =
    TableDefinition::new("artifact_refs");
/// (execution id, artifact id): the same references, by execution (for its deletion).
pub(crate) const EXECUTION_ARTIFACTS: TableDefinition<(&str, &[u8]), ()> =
    TableDefinition::new("execution_artifacts");
/// Runtime metadata, e.g. `format`.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The store format this build writes: 2 keeps plans apart from execution records and has
/// start sets. This build also reads format 1 (and moves it to 2 when it opens it).
pub(crate) const FORMAT: &[u8] = b"tend-store-2";
/// The formats this build reads.
const READS: [&[u8]; 2] = [b"tend-store-1", b"tend-store-2"];

/// Checks the store's format marker: one this build reads is brought to [`FORMAT`]; any
/// other (a newer build's) is refused, so nothing is misread.
pub(crate) fn check_format(db: &Database) -> Result<(), String> {
    let found = {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let meta = txn.open_table(META).map_err(|e| e.to_string())?;
        meta.get("format")
            .map_err(|e| e.to_string())?
            .map(|v| v.value().to_vec())
    };
    match found.as_deref() {
        Some(FORMAT) => Ok(()),
        // No marker: made before markers were checked, as format 1.
        None => mark(db),
        Some(format) if READS.contains(&format) => mark(db),
        Some(format) => Err(format!(
            "its format is `{}`; this build reads {}",
            String::from_utf8_lossy(format),
            READS
                .iter()
                .map(|f| format!("`{}`", String::from_utf8_lossy(f)))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

fn mark(db: &Database) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
        meta.insert("format", FORMAT).map_err(|e| e.to_string())?;
    }
    txn.commit().map_err(|e| e.to_string())
}

/// Creates the tables and the format marker, in one durable transaction.
pub(crate) fn create(db: &Database) -> Result<(), StoreError> {
    let commit = |e: &dyn std::fmt::Display| StoreError::Commit(e.to_string());
    let txn = db.begin_write().map_err(|e| commit(&e))?;
    {
        txn.open_table(EXECUTIONS).map_err(|e| commit(&e))?;
        txn.open_table(PLANS).map_err(|e| commit(&e))?;
        txn.open_table(ITEMS).map_err(|e| commit(&e))?;
        txn.open_table(CHECKPOINTS).map_err(|e| commit(&e))?;
        txn.open_table(STARTS).map_err(|e| commit(&e))?;
        txn.open_table(ARTIFACTS).map_err(|e| commit(&e))?;
        txn.open_table(ARTIFACT_TOI).map_err(|e| commit(&e))?;
        txn.open_table(ARTIFACT_REFS).map_err(|e| commit(&e))?;
        txn.open_table(EXECUTION_ARTIFACTS)
            .map_err(|e| commit(&e))?;
        let mut meta = txn.open_table(META).map_err(|e| commit(&e))?;
        meta.insert("format", FORMAT).map_err(|e| commit(&e))?;
    }
    txn.commit().map_err(|e| commit(&e))
}
