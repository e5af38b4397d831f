//! Reading executions as a listing shows them, straight from the store: a page newest
//! first, one summary, the finished ones a retention looks at, and the live index startup
//! reads. Nothing here holds every execution in memory, and each read is one short read
//! transaction.

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};

use super::item_keys::{ItemKey, every};
use super::records::{StoredExecutionRecord, decode};
use super::tables::{EXECUTIONS, ITEMS, LIVE, PLANS};
use crate::error::StoreError;
use crate::model::{
    ExecutionId, ExecutionStatus, ExecutionSummary, ItemStatus, Plan, StoredSummary, time_of_ms,
};
use crate::store::SCAN_BUDGET;

fn read_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

fn parse(key: &str) -> Option<ExecutionId> {
    key.parse().ok()
}

/// The summary of execution `id` from its record `bytes`; a record that does not decode
/// reads as a corrupt execution that says why. (A read that fails is an error, not a
/// corrupt execution.)
pub(crate) fn listed(
    txn: &ReadTransaction,
    id: ExecutionId,
    bytes: &[u8],
) -> Result<StoredSummary, StoreError> {
    match summary(txn, id, bytes) {
        Err(e @ StoreError::Decode { .. }) => Ok(StoredSummary::corrupt(id, e.to_string())),
        result => result,
    }
}

fn summary(
    txn: &ReadTransaction,
    id: ExecutionId,
    bytes: &[u8],
) -> Result<StoredSummary, StoreError> {
    let mut record: StoredExecutionRecord = decode(bytes, || format!("execution record {id}"))?;
    let (name, items_total) = match (record.name.take(), record.items_total) {
        (Some(name), Some(total)) => (name, total as usize),
        // From before records said so: the plan does.
        _ => {
            let plan = match record.plan.take() {
                Some(plan) => plan,
                None => plan_of(txn, id)?,
            };
            (plan.name.clone(), plan.item_count())
        }
    };
    let items_done = match record.items_done {
        Some(done) => done as usize,
        None => done_items(txn, id)?,
    };
    Ok(StoredSummary {
        summary: ExecutionSummary {
            id,
            name,
            status: record.status,
            items_total,
            items_done,
            running_progress: 0.0,
            created: time_of_ms(record.created_ms),
            updated: time_of_ms(record.updated_ms),
            error: record.reason.clone(),
            halting: None,
        },
        updated_ms: record.updated_ms,
        reason: record.reason,
    })
}

fn plan_of(txn: &ReadTransaction, id: ExecutionId) -> Result<Plan, StoreError> {
    let table = txn.open_table(PLANS).map_err(read_err)?;
    let mut key = [0u8; ulid::ULID_LEN];
    let Some(plan) = table.get(id.as_key(&mut key)).map_err(read_err)? else {
        return Err(StoreError::Decode {
            what: format!("execution record {id}"),
            reason: "its plan is not stored".to_owned(),
        });
    };
    decode(plan.value(), || format!("plan of execution {id}"))
}

fn done_items(txn: &ReadTransaction, id: ExecutionId) -> Result<usize, StoreError> {
    let table = txn.open_table(ITEMS).map_err(read_err)?;
    let mut done = 0;
    let (first, last) = every(id).into_inner();
    for entry in table.range::<&ItemKey>(&first..=&last).map_err(read_err)? {
        let (_, v) = entry.map_err(read_err)?;
        let record: super::records::ItemRecord =
            decode(v.value(), || format!("item record of {id}"))?;
        done += usize::from(record.status == ItemStatus::Done);
    }
    Ok(done)
}

/// One execution's summary, `None` when it is not stored.
pub(crate) fn one(db: &Database, id: ExecutionId) -> Result<Option<StoredSummary>, StoreError> {
    let txn = db.begin_read().map_err(read_err)?;
    let table = txn.open_table(EXECUTIONS).map_err(read_err)?;
    let mut key = [0u8; ulid::ULID_LEN];
    let Some(bytes) = table.get(id.as_key(&mut key)).map_err(read_err)? else {
        return Ok(None);
    };
    Ok(Some(listed(&txn, id, bytes.value())?))
}

/// How a listing sees each execution: `known` gives the summary the runtime holds (an
/// execution in memory: its record is then not decoded), and `keep` says which are listed.
pub(crate) struct Sieve<K, P> {
    pub(crate) known: K,
    pub(crate) keep: P,
}

impl<K, P> Sieve<K, P>
where
    K: Fn(ExecutionId) -> Option<ExecutionSummary>,
    P: Fn(&ExecutionSummary) -> bool,
{
    fn take(
        &self,
        txn: &ReadTransaction,
        id: ExecutionId,
        bytes: &[u8],
    ) -> Result<Option<ExecutionSummary>, StoreError> {
        let summary = match (self.known)(id) {
            Some(summary) => summary,
            None => listed(txn, id, bytes)?.summary,
        };
        Ok((self.keep)(&summary).then_some(summary))
    }
}

/// A page as the store has it: the executions before `before`, newest first, that the
/// sieve keeps, at most `limit` of them; `next` when there may be more. With `live_only`
/// only the live index is read (the executions whose stored status is not final).
pub(crate) fn page<K, P>(
    db: &Database,
    before: Option<ExecutionId>,
    limit: usize,
    live_only: bool,
    sieve: &Sieve<K, P>,
) -> Result<(Vec<ExecutionSummary>, Option<ExecutionId>), StoreError>
where
    K: Fn(ExecutionId) -> Option<ExecutionSummary>,
    P: Fn(&ExecutionSummary) -> bool,
{
    let txn = db.begin_read().map_err(read_err)?;
    let executions = txn.open_table(EXECUTIONS).map_err(read_err)?;
    let mut key = [0u8; ulid::ULID_LEN];
    let end = before.map(|b| b.as_key(&mut key).to_owned());
    let mut out = Vec::new();
    let mut scanned = 0;
    let mut last = None;
    if live_only {
        let live = txn.open_table(LIVE).map_err(read_err)?;
        let range = match &end {
            Some(end) => live.range::<&str>(..end.as_str()),
            None => live.range::<&str>(..),
        }
        .map_err(read_err)?;
        for entry in range.rev() {
            let (k, _) = entry.map_err(read_err)?;
            let Some(id) = parse(k.value()) else { continue };
            let mut buf = [0u8; ulid::ULID_LEN];
            let Some(bytes) = executions.get(id.as_key(&mut buf)).map_err(read_err)? else {
                continue;
            };
            if out.len() == limit || scanned == SCAN_BUDGET {
                return Ok((out, last));
            }
            scanned += 1;
            last = Some(id);
            out.extend(sieve.take(&txn, id, bytes.value())?);
        }
    } else {
        let range = match &end {
            Some(end) => executions.range::<&str>(..end.as_str()),
            None => executions.range::<&str>(..),
        }
        .map_err(read_err)?;
        for entry in range.rev() {
            let (k, v) = entry.map_err(read_err)?;
            let Some(id) = parse(k.value()) else { continue };
            if out.len() == limit || scanned == SCAN_BUDGET {
                return Ok((out, last));
            }
            scanned += 1;
            last = Some(id);
            out.extend(sieve.take(&txn, id, v.value())?);
        }
    }
    Ok((out, None))
}

/// Reads up to `max` execution records created after `after`, oldest first, in one read
/// transaction, handing each to `visit`; returns where to go on from (`None` at the end).
fn walk_after(
    db: &Database,
    after: Option<ExecutionId>,
    max: usize,
    mut visit: impl FnMut(&ReadTransaction, ExecutionId, &[u8]) -> Result<(), StoreError>,
) -> Result<Option<ExecutionId>, StoreError> {
    let txn = db.begin_read().map_err(read_err)?;
    let executions = txn.open_table(EXECUTIONS).map_err(read_err)?;
    let mut key = [0u8; ulid::ULID_LEN];
    let start = after.map(|a| a.as_key(&mut key).to_owned());
    let range = match &start {
        Some(start) => executions.range::<&str>((
            std::ops::Bound::Excluded(start.as_str()),
            std::ops::Bound::Unbounded,
        )),
        None => executions.range::<&str>(..),
    }
    .map_err(read_err)?;
    let mut last = None;
    for (scanned, entry) in range.enumerate() {
        if scanned == max {
            return Ok(last);
        }
        let (k, v) = entry.map_err(read_err)?;
        let Some(id) = parse(k.value()) else { continue };
        last = Some(id);
        visit(&txn, id, v.value())?;
    }
    Ok(None)
}

/// Up to `max` executions created after `after`, oldest first, through the sieve as in
/// [`page`], and where to go on from (`None` at the end).
pub(crate) fn after<K, P>(
    db: &Database,
    after: Option<ExecutionId>,
    max: usize,
    sieve: &Sieve<K, P>,
) -> Result<(Vec<ExecutionSummary>, Option<ExecutionId>), StoreError>
where
    K: Fn(ExecutionId) -> Option<ExecutionSummary>,
    P: Fn(&ExecutionSummary) -> bool,
{
    let mut out = Vec::new();
    let next = walk_after(db, after, max, |txn, id, bytes| {
        out.extend(sieve.take(txn, id, bytes)?);
        Ok(())
    })?;
    Ok((out, next))
}

/// Of the `max` executions created after `after`, the finished ones (completed, failed or
/// cancelled), with when each last changed; and where to go on from, `None` at the end. Corrupt
/// records are left out: they may be a newer build's, and only a deletion by hand removes
/// them.
#[allow(clippy::type_complexity)]
pub(crate) fn finished(
    db: &Database,
    after: Option<ExecutionId>,
    max: usize,
) -> Result<(Vec<(u64, ExecutionId)>, Option<ExecutionId>), StoreError> {
    let mut out = Vec::new();
    let next = walk_after(db, after, max, |_, id, bytes| {
        if let Ok(record) = decode::<StoredExecutionRecord>(bytes, String::new)
            && matches!(
                record.status,
                ExecutionStatus::Completed | ExecutionStatus::Failed | ExecutionStatus::Cancelled
            )
        {
            out.push((record.updated_ms, id));
        }
        Ok(())
    })?;
    Ok((out, next))
}

/// The ids in the live index, oldest first.
pub(crate) fn live_ids(db: &Database) -> Result<Vec<ExecutionId>, StoreError> {
    let txn = db.begin_read().map_err(read_err)?;
    let live = txn.open_table(LIVE).map_err(read_err)?;
    let mut out = Vec::new();
    for entry in live.iter().map_err(read_err)? {
        let (k, _) = entry.map_err(read_err)?;
        match parse(k.value()) {
            Some(id) => out.push(id),
            None => tracing::warn!(
                key = k.value(),
                "skipping a live index key that is not an id"
            ),
        }
    }
    Ok(out)
}
