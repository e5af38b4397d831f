//! The writer's start sets: for each execution, the attempts that started and whose item
//! record does not show them yet.
//!
//! Counting attempts durably used to cost one item-record insert per start. The writer now
//! keeps each execution's set in memory and writes it as one `starts` record per execution
//! per transaction, so a transaction that starts 200 attempts makes one insert for them,
//! not 200. An item record with at least an entry's attempts supersedes the entry, which is
//! then dropped; `load` reads an entry that outlived a crash as a running attempt.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadableTable, Table};

use super::records::{RECORD_VERSION, StartsRecord, decode, encode};
use crate::error::StoreError;
use crate::model::ExecutionId;

/// Item index -> (attempt, crashes).
type Set = BTreeMap<u32, (u32, u32)>;

/// More attempts than this in one stored set is damage, not a set (it would take gigabytes
/// to read back).
const MAX_STARTS: u64 = 1 << 22;

/// The start sets of the executions written to since their set was last empty.
#[derive(Debug, Default)]
pub(crate) struct StartSets {
    sets: HashMap<ExecutionId, Set>,
    /// Executions whose set changed in the transaction being built.
    touched: Vec<ExecutionId>,
}

fn fail(e: impl std::fmt::Display) -> StoreError {
    StoreError::Commit(e.to_string())
}

impl StartSets {
    /// Attempt `attempt` of item `index` of `id` starts. The first time a set is touched
    /// it is read from `table`, so entries a crashed process left are kept.
    pub(crate) fn started(
        &mut self,
        table: &Table<&str, &[u8]>,
        id: ExecutionId,
        index: u32,
        attempt: u32,
        crashes: u32,
    ) -> Result<(), StoreError> {
        let set = match self.sets.entry(id) {
            std::collections::hash_map::Entry::Occupied(set) => set.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let mut key = [0u8; ulid::ULID_LEN];
                let stored = match table.get(id.as_key(&mut key)).map_err(fail)? {
                    // A set that does not decode is started afresh rather than failing
                    // every write batched with this one; only its crashed attempts go
                    // uncounted.
                    Some(bytes) => read(bytes.value(), id).unwrap_or_else(|e| {
                        tracing::warn!(execution_id = %id, error = %e, "start set replaced");
                        Set::new()
                    }),
                    None => Set::new(),
                };
                slot.insert(stored)
            }
        };
        set.insert(index, (attempt, crashes));
        self.touch(id);
        Ok(())
    }

    /// An item record of `index` with `attempts` attempts is written: it supersedes an
    /// entry of no more attempts. (A set not in memory is left alone: `load` ignores the
    /// entries an item record supersedes.)
    pub(crate) fn recorded(&mut self, id: ExecutionId, index: u32, attempts: u32) {
        let Some(set) = self.sets.get_mut(&id) else {
            return;
        };
        if set
            .get(&index)
            .is_some_and(|&(attempt, _)| attempt <= attempts)
        {
            set.remove(&index);
            self.touch(id);
        }
    }

    /// Execution `id` has ended with every attempt recorded: its set goes, in memory and in
    /// `table`, with whatever a crashed process left in it.
    pub(crate) fn clear(
        &mut self,
        table: &mut Table<&str, &[u8]>,
        id: ExecutionId,
    ) -> Result<(), StoreError> {
        self.sets.remove(&id);
        self.touched.retain(|t| *t != id);
        let mut key = [0u8; ulid::ULID_LEN];
        table.remove(id.as_key(&mut key)).map_err(fail)?;
        Ok(())
    }

    fn touch(&mut self, id: ExecutionId) {
        if !self.touched.contains(&id) {
            self.touched.push(id);
        }
    }

    /// Writes the sets this transaction changed into `table`, one record each; an empty
    /// set is removed and forgotten.
    pub(crate) fn write(&mut self, table: &mut Table<&str, &[u8]>) -> Result<(), StoreError> {
        let mut key = [0u8; ulid::ULID_LEN];
        for id in self.touched.drain(..) {
            let Some(set) = self.sets.get(&id) else {
                continue;
            };
            if set.is_empty() {
                table.remove(id.as_key(&mut key)).map_err(fail)?;
                self.sets.remove(&id);
                continue;
            }
            let record = StartsRecord {
                v: RECORD_VERSION,
                runs: runs(set),
            };
            table
                .insert(id.as_key(&mut key), encode(&record)?.as_slice())
                .map_err(fail)?;
        }
        Ok(())
    }

    /// The transaction did not commit: what is in memory may differ from the store, so
    /// every set is read again when next touched.
    pub(crate) fn forget(&mut self) {
        self.sets.clear();
        self.touched.clear();
    }
}

/// The set as runs of consecutive items with the same attempt and crash count.
fn runs(set: &Set) -> Vec<[u32; 4]> {
    let mut runs: Vec<[u32; 4]> = Vec::new();
    for (&index, &(attempt, crashes)) in set {
        match runs.last_mut() {
            Some([first, count, a, c])
                if *a == attempt && *c == crashes && first.checked_add(*count) == Some(index) =>
            {
                *count += 1;
            }
            _ => runs.push([index, 1, attempt, crashes]),
        }
    }
    runs
}

/// Decodes a stored start set of `id`.
pub(crate) fn read(bytes: &[u8], id: ExecutionId) -> Result<Set, StoreError> {
    let record: StartsRecord = decode(bytes, || format!("start set of {id}"))?;
    let total: u64 = record.runs.iter().map(|r| u64::from(r[1])).sum();
    if total > MAX_STARTS {
        return Err(StoreError::Decode {
            what: format!("start set of {id}"),
            reason: format!("{total} attempts, more than any execution runs at once"),
        });
    }
    let mut set = Set::new();
    for [first, count, attempt, crashes] in record.runs {
        let end = first.checked_add(count).ok_or_else(|| StoreError::Decode {
            what: format!("start set of {id}"),
            reason: format!("a run of {count} items from item {first} overflows"),
        })?;
        set.extend((first..end).map(|index| (index, (attempt, crashes))));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_and_stay_short_for_a_window_of_first_attempts() {
        let mut set = Set::new();
        set.extend((100..356).map(|i| (i, (1, 0))));
        set.remove(&200);
        set.insert(7, (3, 2));
        set.insert(8, (3, 1));
        let runs = runs(&set);
        assert_eq!(
            runs,
            vec![
                [7, 1, 3, 2],
                [8, 1, 3, 1],
                [100, 100, 1, 0],
                [201, 155, 1, 0]
            ]
        );
        let bytes = encode(&StartsRecord {
            v: RECORD_VERSION,
            runs,
        })
        .unwrap();
        let id = ExecutionId::generate();
        assert_eq!(read(&bytes, id).unwrap(), set);
        assert!(bytes.len() < 64, "{} bytes", bytes.len());
    }

    #[test]
    fn a_run_that_overflows_is_a_decode_error_not_a_panic() {
        let bytes = encode(&StartsRecord {
            v: RECORD_VERSION,
            runs: vec![[u32::MAX, 2, 1, 0]],
        })
        .unwrap();
        let id = ExecutionId::generate();
        assert!(matches!(read(&bytes, id), Err(StoreError::Decode { .. })));
    }
}
