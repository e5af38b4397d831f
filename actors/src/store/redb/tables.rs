//! Table definitions and the metadata written when a store is created.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use super::item_keys::{ItemKey, named};
use super::records::{StoredExecutionRecord, decode, encode};
use crate::error::StoreError;

/// Execution id -> `StoredExecutionRecord` (its status; the plan is in `PLANS`).
pub(crate) const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
/// Execution id -> its `Plan`, written once at submit.
pub(crate) const PLANS: TableDefinition<&str, &[u8]> = TableDefinition::new("plans");
/// Item key (execution id, item index: see `item_keys`) -> `ItemRecord`.
pub(crate) const ITEMS: TableDefinition<&ItemKey, &[u8]> = TableDefinition::new("item_records");
/// Item key -> `CheckpointRecord`.
pub(crate) const CHECKPOINTS: TableDefinition<&ItemKey, &[u8]> =
    TableDefinition::new("item_checkpoints");
/// Formats 1 to 4 kept item records and checkpoints under tuple keys; opening such a
/// store moves them to [`ITEMS`] and [`CHECKPOINTS`].
const TUPLE_ITEMS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("items");
const TUPLE_CHECKPOINTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("checkpoints");
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
/// Execution id -> (): the executions whose stored status is not final (running,
/// interrupted, paused), written with their records. Startup reads these, not every
/// record, and a listing of those statuses pages through it.
pub(crate) const LIVE: TableDefinition<&str, ()> = TableDefinition::new("live_executions");
/// Idempotency key -> the execution that has it and the digest of its plan (see `keys`).
pub(crate) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// Execution id -> its idempotency key, for its deletion.
pub(crate) const EXECUTION_KEYS: TableDefinition<&str, &str> =
    TableDefinition::new("execution_keys");
/// Runtime metadata, e.g. `format`.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The store format this build writes: 2 keeps plans apart from execution records and has
/// start sets; 3 has the live index; 4 keeps every ended attempt of an item, with how it
/// ended, where 3 kept only failed ones (a build of format 3 would read a success as a
/// failure, or not decode it); 5 keys item records and checkpoints by 30 fixed bytes
/// (`item_keys`) in tables of new names, where 4 had tuples. This build also reads formats
/// 1 to 4 and moves them to 5 when it opens them (building the index for 1 and 2, moving
/// the item tables for all). A build of format 4 refuses format 5, so it never writes
/// item records where this build would not read them.
pub(crate) const FORMAT: &[u8] = b"tend-store-5";
/// The formats this build reads.
const READS: [&[u8]; 5] = [
    b"tend-store-1",
    b"tend-store-2",
    b"tend-store-3",
    b"tend-store-4",
    b"tend-store-5",
];
/// The formats that have the live index and plans apart: only their item tables move.
const INDEXED: [&[u8]; 2] = [b"tend-store-3", b"tend-store-4"];

/// The meta key that says a compaction is due at the next open.
pub(crate) const COMPACTION_DUE: &str = "compaction_due";

/// Whether a compaction is due (see [`COMPACTION_DUE`]).
pub(crate) fn compaction_due(db: &Database) -> Result<bool, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = txn.open_table(META).map_err(|e| e.to_string())?;
    Ok(meta
        .get(COMPACTION_DUE)
        .map_err(|e| e.to_string())?
        .is_some())
}

/// Notes (or clears) that a compaction is due, durably.
pub(crate) fn set_compaction_due(db: &Database, due: bool) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
        if due {
            meta.insert(COMPACTION_DUE, b"1".as_slice())
                .map_err(|e| e.to_string())?;
        } else {
            meta.remove(COMPACTION_DUE).map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

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
        Some(format) if INDEXED.contains(&format) => mark(db, false),
        // No marker: made before markers were checked, as format 1.
        None => mark(db, true),
        Some(format) if READS.contains(&format) => mark(db, true),
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

/// Brings an older store to [`FORMAT`], in one transaction (a crash leaves the old
/// format, and the next open does it again): if `index` (formats 1 and 2), builds the live
/// index from every execution record and moves plans still inside records (format 1) to
/// `plans`; moves the item tables to fixed-width keys; writes the marker.
fn mark(db: &Database, index: bool) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let txn = db.begin_write().map_err(|e| err(&e))?;
    if index {
        let mut executions = txn.open_table(EXECUTIONS).map_err(|e| err(&e))?;
        let mut plans = txn.open_table(PLANS).map_err(|e| err(&e))?;
        let mut live = txn.open_table(LIVE).map_err(|e| err(&e))?;
        let mut moved = Vec::new();
        for entry in executions.iter().map_err(|e| err(&e))? {
            let (key, value) = entry.map_err(|e| err(&e))?;
            let record: Result<StoredExecutionRecord, _> =
                decode(value.value(), || key.value().to_owned());
            // One that does not decode is indexed too: startup reports it, as it did
            // when it read every record.
            if !matches!(&record, Ok(r) if r.status.is_final()) {
                live.insert(key.value(), ()).map_err(|e| err(&e))?;
            }
            if let Ok(mut record) = record
                && let Some(plan) = record.plan.take()
            {
                record.name = Some(plan.name.clone());
                record.items_total = Some(plan.item_count() as u64);
                let plan = encode(&plan).map_err(|e| err(&e))?;
                let record = encode(&record).map_err(|e| err(&e))?;
                moved.push((key.value().to_owned(), plan, record));
            }
        }
        for (key, plan, record) in moved {
            plans
                .insert(key.as_str(), plan.as_slice())
                .map_err(|e| err(&e))?;
            executions
                .insert(key.as_str(), record.as_slice())
                .map_err(|e| err(&e))?;
        }
    }
    let moved =
        move_items(&txn, TUPLE_ITEMS, ITEMS)? + move_items(&txn, TUPLE_CHECKPOINTS, CHECKPOINTS)?;
    {
        let mut meta = txn.open_table(META).map_err(|e| err(&e))?;
        meta.insert("format", FORMAT).map_err(|e| err(&e))?;
        // The old tables' pages are free now, the file as large as both: compacted right
        // after this, in the same open.
        if moved > 0 {
            meta.insert(COMPACTION_DUE, b"1".as_slice())
                .map_err(|e| err(&e))?;
        }
    }
    txn.commit().map_err(|e| err(&e))
}

/// Moves every row of the tuple-keyed table `from` (formats 1 to 4) to `to` under its
/// fixed-width key, and deletes `from`; returns how many rows moved. (A store without
/// `from` gets it created empty by `open_table`, and deleted.) A row whose key names no
/// execution id (only damage makes one; no read ever found it) is left out, with a
/// warning.
fn move_items(
    txn: &redb::WriteTransaction,
    from: TableDefinition<(&str, u32), &[u8]>,
    to: TableDefinition<&ItemKey, &[u8]>,
) -> Result<usize, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut moved = 0;
    {
        let old = txn.open_table(from).map_err(|e| err(&e))?;
        let mut new = txn.open_table(to).map_err(|e| err(&e))?;
        for entry in old.iter().map_err(|e| err(&e))? {
            let (key, value) = entry.map_err(|e| err(&e))?;
            let (name, index) = key.value();
            match named(name, index) {
                Some(key) => {
                    new.insert(&key, value.value()).map_err(|e| err(&e))?;
                    moved += 1;
                }
                None => tracing::warn!(
                    table = from.name(),
                    key = %crate::model::cut(name),
                    index,
                    "a row whose key is no execution id is left out"
                ),
            }
        }
    }
    txn.delete_table(from).map_err(|e| err(&e))?;
    Ok(moved)
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
        txn.open_table(LIVE).map_err(|e| commit(&e))?;
        txn.open_table(ARTIFACTS).map_err(|e| commit(&e))?;
        txn.open_table(ARTIFACT_TOI).map_err(|e| commit(&e))?;
        txn.open_table(ARTIFACT_REFS).map_err(|e| commit(&e))?;
        txn.open_table(EXECUTION_ARTIFACTS)
            .map_err(|e| commit(&e))?;
        txn.open_table(KEYS).map_err(|e| commit(&e))?;
        txn.open_table(EXECUTION_KEYS).map_err(|e| commit(&e))?;
        let mut meta = txn.open_table(META).map_err(|e| commit(&e))?;
        meta.insert("format", FORMAT).map_err(|e| commit(&e))?;
    }
    txn.commit().map_err(|e| commit(&e))
}

/// Writes `marker` as the format of the file at `path` (closed: this opens it), as another
/// build of tend would leave it.
pub(crate) fn mark_as(path: &std::path::Path, marker: &[u8]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let db = Database::open(path).map_err(|e| err(&e))?;
    let txn = db.begin_write().map_err(|e| err(&e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| err(&e))?;
        meta.insert("format", marker).map_err(|e| err(&e))?;
    }
    txn.commit().map_err(|e| err(&e))
}
