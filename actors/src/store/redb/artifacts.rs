//! Artifacts in the store: content-addressed bytes, each with a `timestamp_of_interest`
//! and the executions that reference it; and the orphan sweep's steps.
//!
//! Everything here runs on the writer thread (in a group commit's transaction, or as a
//! job in a transaction of its own), so "still unreferenced and still old" and the delete
//! are one atomic step: no reference can land between them.

use redb::{Database, Durability, ReadableTable, WriteTransaction};

use std::ops::Bound;

use super::item_keys;
use super::op::Op;
use super::tables::{
    ARTIFACT_REFS, ARTIFACT_TOI, ARTIFACTS, CHECKPOINTS, EXECUTION_ARTIFACTS, EXECUTIONS, ITEMS,
    LIVE, PLANS, STARTS,
};
use crate::error::StoreError;
use crate::model::{ArtifactId, ExecutionId};

fn fail(e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Commit(e.to_string())
}

/// Applies the artifact side of a group commit's ops (puts, touches, and the references of
/// deleted executions).
pub(crate) fn apply<'a>(
    txn: &WriteTransaction,
    ops: impl Iterator<Item = &'a Op>,
) -> Result<(), StoreError> {
    let mut artifacts = txn.open_table(ARTIFACTS).map_err(|e| fail(&e))?;
    let mut toi = txn.open_table(ARTIFACT_TOI).map_err(|e| fail(&e))?;
    let mut refs = txn.open_table(ARTIFACT_REFS).map_err(|e| fail(&e))?;
    let mut by_execution = txn.open_table(EXECUTION_ARTIFACTS).map_err(|e| fail(&e))?;
    let mut key = [0u8; ulid::ULID_LEN];
    for op in ops {
        match op {
            Op::PutArtifact {
                id,
                artifact,
                bytes,
                now_ms,
            } => {
                if artifacts
                    .get(artifact.as_slice())
                    .map_err(|e| fail(&e))?
                    .is_none()
                {
                    artifacts
                        .insert(artifact.as_slice(), bytes.as_slice())
                        .map_err(|e| fail(&e))?;
                }
                toi.insert(artifact.as_slice(), *now_ms)
                    .map_err(|e| fail(&e))?;
                let name = id.as_key(&mut key);
                refs.insert((artifact.as_slice(), name), ())
                    .map_err(|e| fail(&e))?;
                by_execution
                    .insert((name, artifact.as_slice()), ())
                    .map_err(|e| fail(&e))?;
            }
            Op::Delete { id } => {
                let name = id.as_key(&mut key);
                let mut held = Vec::new();
                for entry in by_execution
                    .range((name, [].as_slice())..=(name, [0xffu8; 33].as_slice()))
                    .map_err(|e| fail(&e))?
                {
                    let (k, _) = entry.map_err(|e| fail(&e))?;
                    held.push(k.value().1.to_vec());
                }
                for artifact in held {
                    refs.remove((artifact.as_slice(), name))
                        .map_err(|e| fail(&e))?;
                    by_execution
                        .remove((name, artifact.as_slice()))
                        .map_err(|e| fail(&e))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn begin(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write().map_err(|e| fail(&e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| fail(&e))?;
    Ok(txn)
}

/// Execution `id` references `artifact`, if it still exists (touching it); `false` if
/// the sweep deleted it. One transaction: the check and the reference.
pub(crate) fn reference(
    db: &Database,
    id: ExecutionId,
    artifact: ArtifactId,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let txn = begin(db)?;
    {
        let artifacts = txn.open_table(ARTIFACTS).map_err(|e| fail(&e))?;
        if artifacts
            .get(artifact.0.as_slice())
            .map_err(|e| fail(&e))?
            .is_none()
        {
            return Ok(false);
        }
        let mut key = [0u8; ulid::ULID_LEN];
        let name = id.as_key(&mut key);
        let mut toi = txn.open_table(ARTIFACT_TOI).map_err(|e| fail(&e))?;
        toi.insert(artifact.0.as_slice(), now_ms)
            .map_err(|e| fail(&e))?;
        let mut refs = txn.open_table(ARTIFACT_REFS).map_err(|e| fail(&e))?;
        refs.insert((artifact.0.as_slice(), name), ())
            .map_err(|e| fail(&e))?;
        let mut by_execution = txn.open_table(EXECUTION_ARTIFACTS).map_err(|e| fail(&e))?;
        by_execution
            .insert((name, artifact.0.as_slice()), ())
            .map_err(|e| fail(&e))?;
    }
    txn.commit().map_err(|e| fail(&e))?;
    Ok(true)
}

/// An artifact's bytes, touching it; `None` if it is gone.
pub(crate) fn read(
    db: &Database,
    artifact: ArtifactId,
    now_ms: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let txn = begin(db)?;
    let bytes = {
        let artifacts = txn.open_table(ARTIFACTS).map_err(|e| fail(&e))?;
        let bytes = artifacts
            .get(artifact.0.as_slice())
            .map_err(|e| fail(&e))?
            .map(|v| v.value().to_vec());
        if bytes.is_some() {
            let mut toi = txn.open_table(ARTIFACT_TOI).map_err(|e| fail(&e))?;
            toi.insert(artifact.0.as_slice(), now_ms)
                .map_err(|e| fail(&e))?;
        }
        bytes
    };
    txn.commit().map_err(|e| fail(&e))?;
    Ok(bytes)
}

/// One batch of the orphan sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SweepBatch {
    /// Artifacts looked at.
    pub(crate) scanned: usize,
    /// Of those, deleted: no reference, and a timestamp of interest before the cutoff.
    pub(crate) deleted: usize,
    /// The bytes of the artifacts it deleted.
    pub(crate) bytes: u64,
    /// Where the next batch starts; `None` after the last.
    pub(crate) next: Option<[u8; 32]>,
}

/// How many artifacts a batch looks at (or deletes) between looks at the writer's queue.
const YIELD_EVERY: usize = 16;

/// Looks at up to `limit` artifacts from `from` on and deletes those that nothing
/// references and whose timestamp of interest is before `cutoff_ms`, in one transaction.
///
/// It gives way to commits: every `YIELD_EVERY` artifacts it looks at or deletes, it looks
/// at the writer's queue, and once a commit waits it ends. If it found nothing to delete
/// by then, it ends without a commit of its own (the commit behind it waits for no write
/// of the sweep's); else it deletes a first few of those it found and commits them. The
/// next batch goes on from the first artifact this one did not delete, looking again at
/// those it only looked at. Each batch gets somewhere: it looks at `YIELD_EVERY` artifacts
/// before it first gives way, and deletes up to `YIELD_EVERY` before it gives way again.
pub(crate) fn sweep_batch(
    db: &Database,
    from: Option<[u8; 32]>,
    limit: usize,
    cutoff_ms: u64,
    queued: &std::sync::atomic::AtomicUsize,
) -> Result<SweepBatch, StoreError> {
    let waiting = || queued.load(std::sync::atomic::Ordering::Acquire) > 0;
    // Not made durable on its own: a crash can only bring back orphans, which the next
    // sweep deletes again, and the next durable commit carries these deletions with it.
    // So a batch costs no fsync, and the commits behind it wait less.
    let mut txn = db.begin_write().map_err(|e| fail(&e))?;
    txn.set_durability(Durability::None).map_err(|e| fail(&e))?;
    let mut batch = SweepBatch::default();
    let mut wrote = false;
    {
        let mut toi = txn.open_table(ARTIFACT_TOI).map_err(|e| fail(&e))?;
        let refs = txn.open_table(ARTIFACT_REFS).map_err(|e| fail(&e))?;
        let mut artifacts = txn.open_table(ARTIFACTS).map_err(|e| fail(&e))?;
        let start = from.unwrap_or([0u8; 32]);
        // Each to delete, with how many were looked at before it.
        let mut doomed: Vec<([u8; 32], usize)> = Vec::new();
        for entry in toi.range(start.as_slice()..).map_err(|e| fail(&e))? {
            let (k, v) = entry.map_err(|e| fail(&e))?;
            let Ok(artifact) = <[u8; 32]>::try_from(k.value()) else {
                continue;
            };
            let gave_way = batch.scanned % YIELD_EVERY == 0 && batch.scanned > 0 && waiting();
            if batch.scanned == limit || gave_way {
                batch.next = Some(artifact);
                break;
            }
            batch.scanned += 1;
            if v.value() >= cutoff_ms {
                continue;
            }
            let referenced = refs
                .range((artifact.as_slice(), "")..)
                .map_err(|e| fail(&e))?
                .next()
                .transpose()
                .map_err(|e| fail(&e))?
                .is_some_and(|(k, _)| k.value().0 == artifact.as_slice());
            if !referenced {
                doomed.push((artifact, batch.scanned - 1));
            }
        }
        for (n, &(artifact, before)) in doomed.iter().enumerate() {
            if n % YIELD_EVERY == 0 && n > 0 && waiting() {
                batch.next = Some(artifact);
                batch.scanned = before;
                break;
            }
            toi.remove(artifact.as_slice()).map_err(|e| fail(&e))?;
            if let Some(bytes) = artifacts
                .remove(artifact.as_slice())
                .map_err(|e| fail(&e))?
            {
                batch.bytes += bytes.value().len() as u64;
            }
            batch.deleted += 1;
            wrote = true;
        }
    }
    if wrote {
        txn.commit().map_err(|e| fail(&e))?;
    } else {
        txn.abort().map_err(|e| fail(&e))?;
    }
    Ok(batch)
}

/// Executions with records but no execution record: what a deletion left behind (none
/// today: a deletion is one transaction; older builds and other tools may leave some).
pub(crate) fn leftovers(db: &Database) -> Result<Vec<ExecutionId>, StoreError> {
    use redb::ReadableDatabase;
    let read = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
    let txn = db.begin_read().map_err(|e| read(&e))?;
    let executions = txn.open_table(EXECUTIONS).map_err(|e| read(&e))?;
    let mut found = std::collections::BTreeSet::new();
    let mut consider = |name: &str| -> Result<(), StoreError> {
        // Only a key as the writer spells it: another spelling of an id (lower case, say)
        // is no key of ours, and its deletion would delete the id's own records.
        if let Ok(id) = name.parse::<ExecutionId>()
            && id.to_string() == name
            && executions.get(name).map_err(|e| read(&e))?.is_none()
        {
            found.insert(id);
        }
        Ok(())
    };
    for table in [PLANS, STARTS] {
        let table = txn.open_table(table).map_err(|e| read(&e))?;
        for entry in table.iter().map_err(|e| read(&e))? {
            let (k, _) = entry.map_err(|e| read(&e))?;
            consider(k.value())?;
        }
    }
    // A live-index key whose record is gone (the writer keeps both in one transaction, so
    // only damage leaves one): its deletion removes the key.
    let live = txn.open_table(LIVE).map_err(|e| read(&e))?;
    for entry in live.iter().map_err(|e| read(&e))? {
        let (k, _) = entry.map_err(|e| read(&e))?;
        consider(k.value())?;
    }
    for table in [ITEMS, CHECKPOINTS] {
        let table = txn.open_table(table).map_err(|e| read(&e))?;
        // One lookup per execution: after one key, skip past all of its items.
        let mut from: Option<item_keys::ItemKey> = None;
        loop {
            let next = match &from {
                None => table.iter().map_err(|e| read(&e))?.next(),
                Some(last) => table
                    .range::<&item_keys::ItemKey>((Bound::Excluded(last), Bound::Unbounded))
                    .map_err(|e| read(&e))?
                    .next(),
            };
            let Some(entry) = next else { break };
            let (k, _) = entry.map_err(|e| read(&e))?;
            let key = *k.value();
            // (A name that is not text is no key of ours.)
            if let Ok(name) = std::str::from_utf8(item_keys::name(&key)) {
                consider(name)?;
            }
            from = Some(item_keys::last_of(&key));
        }
    }
    let by_execution = txn.open_table(EXECUTION_ARTIFACTS).map_err(|e| read(&e))?;
    for entry in by_execution.iter().map_err(|e| read(&e))? {
        let (k, _) = entry.map_err(|e| read(&e))?;
        consider(k.value().0)?;
    }
    Ok(found.into_iter().collect())
}

#[cfg(test)]
#[path = "artifacts_tests.rs"]
mod tests;
