//! Reading executions back: the startup scan and one execution in full. Each read
//! transaction covers one execution, so none stays open long.

use redb::{Database, ReadTransaction, ReadableDatabase};

use super::item_keys::{ItemKey, every, index as index_of};
use super::records::{CheckpointRecord, ItemRecord, StoredExecutionRecord, decode};
use super::starts;
use super::tables::{CHECKPOINTS, EXECUTIONS, ITEMS, PLANS, STARTS};
use crate::error::StoreError;
use crate::model::{
    Checkpoint, ExecutionId, ExecutionRecord, ExecutionStatus, ItemState, ItemStatus, Plan,
    Started, merge_started,
};
use crate::store::{LoadedExecution, StoredExecution};

fn read_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

/// Every execution in the live index (those whose stored status is not final), decoded as
/// far as possible. Finished executions are not read: they stay in the store until asked
/// for.
///
/// Also returns the records that still hold their plan (a store from before plans were
/// kept apart), for the caller to move their plans out.
pub(crate) fn load_live(
    db: &Database,
) -> Result<(Vec<LoadedExecution>, Vec<ExecutionRecord>), StoreError> {
    let mut raw = Vec::new();
    for id in super::listing::live_ids(db)? {
        let txn = db.begin_read().map_err(read_err)?;
        let table = txn.open_table(EXECUTIONS).map_err(read_err)?;
        let mut key = [0u8; ulid::ULID_LEN];
        match table.get(id.as_key(&mut key)).map_err(read_err)? {
            Some(value) => raw.push((id, value.value().to_vec())),
            None => tracing::warn!(
                execution_id = %id,
                "live index names a missing execution; the next orphan sweep removes it"
            ),
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut inline = Vec::new();
    for (id, bytes) in raw {
        let loaded = db.begin_read().map_err(read_err).and_then(|txn| {
            let (record, plan_inline) = execution_record(&txn, id, &bytes)?;
            // A record that is not `running` says how many items are done when it knows
            // (its execution's final record does): no item record needs reading.
            let items_done = match record.items_done {
                Some(done) if record.status != ExecutionStatus::Running => done as usize,
                _ => load_items(&txn, id, record.plan.item_count())?
                    .iter()
                    .flatten()
                    .filter(|i| i.status == ItemStatus::Done)
                    .count(),
            };
            Ok((record, plan_inline, items_done))
        });
        match loaded {
            Ok((record, plan_inline, items_done)) => {
                if plan_inline {
                    inline.push(record.clone());
                }
                out.push(LoadedExecution::Sound { record, items_done });
            }
            Err(e @ StoreError::Decode { .. }) => out.push(LoadedExecution::Corrupt {
                id,
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok((out, inline))
}

/// Decodes execution `id`'s record and finds its plan: in the record (a store from before
/// plans were kept apart; the flag says so) or in `plans`.
fn execution_record(
    txn: &ReadTransaction,
    id: ExecutionId,
    bytes: &[u8],
) -> Result<(ExecutionRecord, bool), StoreError> {
    let what = || format!("execution record {id}");
    let mut stored: StoredExecutionRecord = decode(bytes, what)?;
    if let Some(plan) = stored.plan.take() {
        return Ok((stored.with_plan(plan), true));
    }
    let table = match txn.open_table(PLANS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(StoreError::Decode {
                what: what(),
                reason: "its plan is not stored".to_owned(),
            });
        }
        Err(e) => return Err(read_err(e)),
    };
    let mut key = [0u8; ulid::ULID_LEN];
    let Some(plan) = table.get(id.as_key(&mut key)).map_err(read_err)? else {
        return Err(StoreError::Decode {
            what: what(),
            reason: "its plan is not stored".to_owned(),
        });
    };
    let plan: Plan = decode(plan.value(), || format!("plan of execution {id}"))?;
    Ok((stored.with_plan(plan), false))
}

fn load_items(
    txn: &ReadTransaction,
    id: ExecutionId,
    count: usize,
) -> Result<Vec<Option<ItemState>>, StoreError> {
    let table = txn.open_table(ITEMS).map_err(read_err)?;
    let mut items = vec![None; count];
    let (first, last) = every(id).into_inner();
    for entry in table.range::<&ItemKey>(&first..=&last).map_err(read_err)? {
        let (k, v) = entry.map_err(read_err)?;
        let index = index_of(k.value());
        let record: ItemRecord = decode(v.value(), || format!("item record {id}/{index}"))?;
        match items.get_mut(index as usize) {
            Some(slot) => *slot = Some(record.state()),
            None => {
                return Err(StoreError::Decode {
                    what: format!("item record {id}/{index}"),
                    reason: format!("the plan has only {count} items"),
                });
            }
        }
    }
    merge_starts(txn, id, &mut items)?;
    Ok(items)
}

/// Folds the execution's start set into its item records: an attempt that started and that
/// no item record shows yet (the process stopped under it) reads as a `running` record with
/// that attempt's number.
fn merge_starts(
    txn: &ReadTransaction,
    id: ExecutionId,
    items: &mut [Option<ItemState>],
) -> Result<(), StoreError> {
    let table = match txn.open_table(STARTS) {
        Ok(table) => table,
        // A store from before start sets: its running attempts are item records.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(read_err(e)),
    };
    let mut key = [0u8; ulid::ULID_LEN];
    let Some(bytes) = table.get(id.as_key(&mut key)).map_err(read_err)? else {
        return Ok(());
    };
    // A damaged set costs only the count of its crashed attempts, as in the writer: the
    // execution itself stays readable.
    let set = match starts::read(bytes.value(), id) {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(execution_id = %id, error = %e, "start set ignored");
            return Ok(());
        }
    };
    for (index, (attempt, crashes)) in set {
        let Some(slot) = items.get_mut(index as usize) else {
            tracing::warn!(execution_id = %id, index, "start set entry past the plan ignored");
            continue;
        };
        *slot = merge_started(slot.take(), Some(Started { attempt, crashes }));
    }
    Ok(())
}

fn load_checkpoints(
    txn: &ReadTransaction,
    id: ExecutionId,
    count: usize,
) -> Result<Vec<Option<Checkpoint>>, StoreError> {
    let table = txn.open_table(CHECKPOINTS).map_err(read_err)?;
    let mut checkpoints = vec![None; count];
    let (first, last) = every(id).into_inner();
    for entry in table.range::<&ItemKey>(&first..=&last).map_err(read_err)? {
        let (k, v) = entry.map_err(read_err)?;
        let index = index_of(k.value());
        let record: CheckpointRecord =
            decode(v.value(), || format!("checkpoint record {id}/{index}"))?;
        if let Some(slot) = checkpoints.get_mut(index as usize) {
            *slot = Some(Checkpoint {
                state: record.state,
                progress: record.progress,
            });
        }
    }
    Ok(checkpoints)
}

pub(crate) fn load_execution(
    db: &Database,
    id: ExecutionId,
) -> Result<StoredExecution, StoreError> {
    // One read transaction: the record, the items and the checkpoints are one snapshot.
    let txn = db.begin_read().map_err(read_err)?;
    let bytes = {
        let mut key = [0u8; ulid::ULID_LEN];
        let table = txn.open_table(EXECUTIONS).map_err(read_err)?;
        let value = table.get(id.as_key(&mut key)).map_err(read_err)?;
        match value {
            Some(v) => v.value().to_vec(),
            None => return Err(StoreError::Missing(id)),
        }
    };
    let (record, _) = execution_record(&txn, id, &bytes)?;
    let count = record.plan.item_count();
    let items = load_items(&txn, id, count)?;
    let checkpoints = load_checkpoints(&txn, id, count)?;
    Ok(StoredExecution {
        record,
        items,
        checkpoints,
    })
}
