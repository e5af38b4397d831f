//! Table definitions and the metadata written when a store is created.

use redb::{Database, TableDefinition};

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
/// Runtime metadata, e.g. `format`.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The store format this build writes.
pub(crate) const FORMAT: &[u8] = b"tend-store-1";

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
        let mut meta = txn.open_table(META).map_err(|e| commit(&e))?;
        meta.insert("format", FORMAT).map_err(|e| commit(&e))?;
    }
    txn.commit().map_err(|e| commit(&e))
}
