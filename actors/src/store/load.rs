//! Reading executions back: the startup scan and one execution in full. Each read
//! transaction covers one execution, so none stays open long.

use redb::{Database, ReadTransaction, ReadableDatabase};

use crate::error::StoreError;
use crate::model::{
    AttemptReport, BlockReport, Checkpoint, ExecutionId, ExecutionReport, ExecutionStatus,
    ItemReport, ItemStatus, Plan, Progress, errors_of, time_of_ms,
};
use crate::store::records::{
    CheckpointRecord, ExecutionRecord, ItemRecord, RECORD_VERSION, StoredExecutionRecord, decode,
};
use crate::store::starts;
use crate::store::tables::{CHECKPOINTS, EXECUTIONS, ITEMS, PLANS, STARTS};

/// One execution as the startup scan found it.
#[derive(Debug)]
pub(crate) enum LoadedExecution {
    /// Its records decode.
    Sound {
        record: ExecutionRecord,
        items_done: usize,
        /// Its record still holds its plan (a store from before plans were kept apart).
        plan_inline: bool,
    },
    /// One of its records does not decode.
    Corrupt { id: ExecutionId, reason: String },
}

/// One execution with every item record and checkpoint, indexed by item.
#[derive(Debug)]
pub(crate) struct StoredExecution {
    pub(crate) record: ExecutionRecord,
    pub(crate) items: Vec<Option<ItemRecord>>,
    pub(crate) checkpoints: Vec<Option<Checkpoint>>,
}

fn read_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

/// Every execution in the live index (those whose stored status is not final), decoded as
/// far as possible. Finished executions are not read: they stay in the store until asked
/// for.
pub(crate) fn load_live(db: &Database) -> Result<Vec<LoadedExecution>, StoreError> {
    let mut raw = Vec::new();
    for id in crate::store::listing::live_ids(db)? {
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
                out.push(LoadedExecution::Sound {
                    record,
                    items_done,
                    plan_inline,
                });
            }
            Err(e @ StoreError::Decode { .. }) => out.push(LoadedExecution::Corrupt {
                id,
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
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
) -> Result<Vec<Option<ItemRecord>>, StoreError> {
    let mut key = [0u8; ulid::ULID_LEN];
    let key = id.as_key(&mut key);
    let table = txn.open_table(ITEMS).map_err(read_err)?;
    let mut items = vec![None; count];
    for entry in table.range((key, 0)..=(key, u32::MAX)).map_err(read_err)? {
        let (k, v) = entry.map_err(read_err)?;
        let (_, index) = k.value();
        let record: ItemRecord = decode(v.value(), || format!("item record {id}/{index}"))?;
        match items.get_mut(index as usize) {
            Some(slot) => *slot = Some(record),
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
    items: &mut [Option<ItemRecord>],
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
        let record = slot.take().unwrap_or_default();
        *slot = Some(if record.attempts < attempt {
            ItemRecord {
                v: RECORD_VERSION,
                status: ItemStatus::Running,
                attempts: attempt,
                crashes,
                output: None,
                error: None,
                ..record
            }
        } else {
            record
        });
    }
    Ok(())
}

fn load_checkpoints(
    txn: &ReadTransaction,
    id: ExecutionId,
    count: usize,
) -> Result<Vec<Option<Checkpoint>>, StoreError> {
    let mut key = [0u8; ulid::ULID_LEN];
    let key = id.as_key(&mut key);
    let table = txn.open_table(CHECKPOINTS).map_err(read_err)?;
    let mut checkpoints = vec![None; count];
    for entry in table.range((key, 0)..=(key, u32::MAX)).map_err(read_err)? {
        let (k, v) = entry.map_err(read_err)?;
        let (_, index) = k.value();
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

impl StoredExecution {
    /// Reads the attempts that were running as interrupted, not as cut short by a crash
    /// (their Execution actor failed, and the process lives on), and returns the ops that
    /// record them so: a later start does not count them against `crash_limit`.
    pub(crate) fn settle_killed(&mut self) -> Result<Vec<crate::store::Op>, StoreError> {
        let id = self.record.id;
        let mut ops = Vec::new();
        for (index, slot) in self.items.iter_mut().enumerate() {
            if let Some(record) = slot
                && record.status == ItemStatus::Running
            {
                record.status = ItemStatus::Interrupted;
                // Killed, so it may have applied: its next success sends refreshes.
                record.maybe_changed = true;
                ops.push(crate::store::Op::Item {
                    id,
                    index: index as u32,
                    attempts: record.attempts,
                    record: crate::store::encode(&*record)?,
                });
            }
        }
        Ok(ops)
    }

    /// The progress to show for an item: that of its checkpoint while it is unfinished (a
    /// later attempt may have reported more before it was killed), else its record's.
    pub(crate) fn item_progress(&self, index: usize) -> Option<Progress> {
        let record = self.items[index].as_ref();
        let done = record.is_some_and(|r| r.status == ItemStatus::Done);
        match &self.checkpoints[index] {
            Some(checkpoint) if !done => checkpoint.progress,
            _ => record.and_then(|r| r.progress),
        }
    }

    /// How an item stands according to its stored record.
    pub(crate) fn item_status(&self, index: usize) -> ItemStatus {
        match &self.items[index] {
            Some(r) if matches!(r.status, ItemStatus::Running | ItemStatus::Retrying) => {
                ItemStatus::Interrupted
            }
            Some(r) => r.status,
            None if self.checkpoints[index].is_some() => ItemStatus::Interrupted,
            None => ItemStatus::Pending,
        }
    }

    /// The report of an execution that is not running: `status` replaces the stored one
    /// (a stored `running` means the process stopped without checkpointing it).
    pub(crate) fn report(&self, status: ExecutionStatus) -> ExecutionReport {
        let mut index = 0;
        let blocks = self
            .record
            .plan
            .blocks
            .iter()
            .map(|block| BlockReport {
                name: block.name.clone(),
                items: block
                    .items
                    .iter()
                    .map(|spec| {
                        let record = self.items[index].clone().unwrap_or_default();
                        let status = self.item_status(index);
                        let history: Vec<AttemptReport> =
                            record.history.iter().map(|a| a.past().report()).collect();
                        let report = ItemReport {
                            id: spec.id.clone(),
                            kind: spec.kind.clone(),
                            params: spec.params.clone(),
                            after: spec.after.clone(),
                            status,
                            changed: (status == ItemStatus::Done).then_some(!record.unchanged),
                            refresh: record.refresh,
                            attempts: record.attempts,
                            progress: self.item_progress(index),
                            message: record.message,
                            output: record.output,
                            error: record.error,
                            errors: errors_of(&history),
                            running_since: None,
                            history,
                        };
                        index += 1;
                        report
                    })
                    .collect(),
            })
            .collect();
        ExecutionReport {
            id: self.record.id,
            name: self.record.plan.name.clone(),
            status,
            created: time_of_ms(self.record.created_ms),
            updated: time_of_ms(self.record.updated_ms),
            reason: self.record.reason.clone(),
            halting: None,
            blocks,
        }
    }
}
