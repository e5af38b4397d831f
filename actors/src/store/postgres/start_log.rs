//! The start log's bound, and what the writer knows of it.
//!
//! A group commit appends one row per execution it starts attempts of (see
//! `statements::insert_starts`), and nothing removes an execution's rows until it ends; an
//! execution that runs for long (an item retried every second for days, a process that
//! crashes and resumes) would grow its log without end. So the writer counts the rows it
//! appended for each execution, and once an execution has [`COMPACT_AFTER`] of them, the
//! next group that starts one of its attempts first folds its log into one row, in the
//! same transaction: the latest start of each item, less the starts an item record already
//! shows (which the recovery rule ignores).
//!
//! A fold is done one of two ways:
//!
//! - **Replaced**: for an execution whose whole log this writer appended (it was submitted
//!   to this store, or its log was cleared since), the writer also keeps in memory what the
//!   log amounts to: each item's latest start that no item record it wrote shows yet. The
//!   fold then deletes the execution's rows and inserts that set, reading nothing (a fold
//!   read by the database re-reads and sorts every start appended since the last one).
//! - **Read**: for any other execution (one resumed after a restart, whose log an earlier
//!   process appended, or one whose last commit failed, which may or may not have landed),
//!   the database reads the log and writes the fold (`statements::fold_starts`). So are
//!   all of them once the writer had to take the runtime lock again: another runtime may
//!   have held it meanwhile and appended to them.
//!
//! Both leave the same row (up to starts an older item record shows, which the database
//! leaves out and the writer may keep; the recovery rule ignores them either way), and
//! both can be written again (a group retried after a lost answer): the rows are deleted
//! and the same row written.
//!
//! The counts and sets live in memory only: after a restart they begin empty, so an
//! execution's log holds at most about twice the bound (what one process left, and what
//! the next appends before it folds them), and its folds are read.

use std::collections::{BTreeMap, HashMap};

use super::group::Group;
use crate::model::ExecutionId;

/// The rows an execution's log may gain before it is folded into one.
pub(crate) const COMPACT_AFTER: u32 = 256;

/// The most executions counted at once; past it the counts start again and every set is
/// forgotten (a fold then comes later, never sooner, than it would have, and is read).
const MAX_COUNTED: usize = 100_000;

/// The most starts the writer keeps in its sets, over every execution (about 40 bytes
/// each); past it every set is forgotten, and those executions' folds are read.
const MAX_KNOWN: usize = 1 << 20;

/// Item index -> (attempt, crashes): the latest start of each item that no item record
/// shows yet.
type Set = BTreeMap<u32, (i64, i64)>;

/// One execution's log, as the writer knows it.
#[derive(Debug, Default)]
struct Log {
    /// Rows appended since the log was last folded or cleared.
    rows: u32,
    /// What the whole log amounts to, when this writer appended all of it.
    known: Option<Set>,
}

/// The folds of one group commit, which run before its starts are appended.
#[derive(Debug, Default)]
pub(crate) struct Folds {
    /// Executions whose logs the database folds (reading them).
    pub(crate) read: Vec<ExecutionId>,
    /// Executions whose logs are replaced by what the writer knows they amount to.
    pub(crate) replaced: Vec<ExecutionId>,
    /// The starts those replacements write: (execution, item, attempt, crashes), in order
    /// of execution (one with none gets no row).
    pub(crate) starts: Vec<(ExecutionId, u32, i64, i64)>,
}

impl Folds {
    /// Whether there is nothing to fold.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.read.is_empty() && self.replaced.is_empty()
    }

    /// Folds every log by reading it, the replaced ones too.
    pub(crate) fn read_all(&mut self) {
        self.read.append(&mut self.replaced);
        self.starts.clear();
    }

    fn folded(&self) -> impl Iterator<Item = &ExecutionId> {
        self.read.iter().chain(&self.replaced)
    }
}

/// How many rows the writer appended to each execution's log since it was last folded
/// or cleared, and what the logs it appended all of amount to.
#[derive(Debug, Default)]
pub(crate) struct StartLogRows {
    logs: HashMap<ExecutionId, Log>,
    /// Starts in every known set.
    known: usize,
}

impl StartLogRows {
    /// The logs `group` folds before appending to them. A log the group clears or deletes
    /// first is not folded (a replacement would write its starts back after the clear).
    pub(crate) fn due(&self, group: &Group) -> Folds {
        let mut folds = Folds::default();
        let cleared: Vec<ExecutionId> = group.cleared_executions().collect();
        for id in group.started_executions() {
            let Some(log) = self.logs.get(&id) else {
                continue;
            };
            if log.rows < COMPACT_AFTER || cleared.contains(&id) {
                continue;
            }
            match &log.known {
                Some(set) => {
                    folds.replaced.push(id);
                    folds.starts.extend(
                        set.iter()
                            .map(|(&index, &(attempt, crashes))| (id, index, attempt, crashes)),
                    );
                }
                None => folds.read.push(id),
            }
        }
        folds
    }

    /// Forgets what every log amounts to (their folds are read from now on); the counts
    /// stay.
    pub(crate) fn forget(&mut self) {
        for log in self.logs.values_mut() {
            log.known = None;
        }
        self.known = 0;
    }

    /// `group` committed (`durable`) after `folds`, or failed: then it may or may not have
    /// landed, and the writer no longer knows what the logs it touches hold.
    pub(crate) fn committed(&mut self, group: &Group, folds: &Folds, durable: bool) {
        if !durable {
            for id in group.touched_executions() {
                if let Some(log) = self.logs.get_mut(&id) {
                    forget(&mut self.known, log);
                }
            }
            return;
        }
        // Submitted here: no row of its log exists before this group.
        for id in group.new_executions() {
            self.logs.entry(id).or_insert_with(|| Log {
                rows: 0,
                known: Some(Set::new()),
            });
        }
        for id in group.cleared_executions() {
            // Nothing is left of its log but what this group appends after the clear; it
            // has ended, so it is no longer kept (if it runs again, its folds are read).
            if let Some(mut log) = self.logs.remove(&id) {
                forget(&mut self.known, &mut log);
            }
        }
        for id in folds.folded() {
            if let Some(log) = self.logs.get_mut(id) {
                // Folded into one row, then this group's.
                log.rows = 1;
            }
        }
        for id in group.started_executions() {
            if !folds.folded().any(|f| *f == id) {
                let log = self.logs.entry(id).or_default();
                log.rows = log.rows.saturating_add(1);
            }
        }
        for (id, index, attempt, crashes) in group.starts() {
            if let Some(set) = self.logs.get_mut(&id).and_then(|log| log.known.as_mut())
                && set.insert(index, (attempt, crashes)).is_none()
            {
                self.known += 1;
            }
        }
        for (id, index, attempts) in group.recorded() {
            if let Some(set) = self.logs.get_mut(&id).and_then(|log| log.known.as_mut())
                && set
                    .get(&index)
                    .is_some_and(|&(attempt, _)| attempt <= attempts)
            {
                set.remove(&index);
                self.known -= 1;
            }
        }
        if self.logs.len() > MAX_COUNTED {
            self.logs.clear();
            self.known = 0;
        } else if self.known > MAX_KNOWN {
            self.forget();
        }
    }
}

/// The writer no longer knows what `log` amounts to.
fn forget(known: &mut usize, log: &mut Log) {
    if let Some(set) = log.known.take() {
        *known -= set.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::rows::{ItemRow, Row};

    fn started(id: ExecutionId, index: u32, attempt: i64) -> Row {
        Row::Started {
            execution: id,
            index,
            attempt,
            crashes: 0,
        }
    }

    fn recorded(id: ExecutionId, index: u32, attempts: i64) -> Row {
        Row::Item(
            id,
            index,
            ItemRow {
                status: "done",
                attempts,
                record: Vec::new(),
                first: false,
            },
        )
    }

    fn group(rows: Vec<Row>) -> Group {
        let mut group = Group::default();
        group.merge(rows);
        group
    }

    /// Commits groups of one start each of item 0 of `id` (and `extra`'s rows in the
    /// first) until a fold is due, and returns it.
    fn until_due(log: &mut StartLogRows, id: ExecutionId, extra: Vec<Row>) -> Folds {
        let mut first = extra;
        for attempt in 1.. {
            first.push(started(id, 0, attempt));
            let group = group(std::mem::take(&mut first));
            let folds = log.due(&group);
            if !folds.is_empty() {
                return folds;
            }
            log.committed(&group, &folds, true);
        }
        unreachable!("a fold comes after COMPACT_AFTER rows")
    }

    #[test]
    fn a_log_appended_here_is_replaced_by_what_it_amounts_to() {
        let mut log = StartLogRows::default();
        let id = ExecutionId::generate();
        let submitted = vec![
            Row::Plan(id, "{}".to_owned()),
            started(id, 1, 1),
            started(id, 2, 1),
        ];
        let first = group(submitted);
        log.committed(&first, &Folds::default(), true);
        // Item 2's record shows its attempt: its start is superseded.
        let done = group(vec![recorded(id, 2, 1)]);
        log.committed(&done, &Folds::default(), true);
        let folds = until_due(&mut log, id, Vec::new());
        assert!(folds.read.is_empty());
        assert_eq!(folds.replaced, [id]);
        // Item 0's latest start before this group's, and item 1's; item 2's is left out.
        let entries: Vec<(u32, i64)> = folds.starts.iter().map(|s| (s.1, s.2)).collect();
        assert_eq!(entries, [(0, i64::from(COMPACT_AFTER) - 1), (1, 1)]);
    }

    #[test]
    fn a_log_not_wholly_appended_here_or_after_a_failed_commit_is_read() {
        let mut log = StartLogRows::default();
        // Resumed: its log began in an earlier process.
        let resumed = ExecutionId::generate();
        let folds = until_due(&mut log, resumed, Vec::new());
        assert_eq!(
            (folds.read.as_slice(), folds.replaced.len()),
            (&[resumed][..], 0)
        );
        // Submitted here, then a commit failed: it may have landed, or not.
        let id = ExecutionId::generate();
        let first = group(vec![Row::Plan(id, "{}".to_owned()), started(id, 1, 1)]);
        log.committed(&first, &Folds::default(), true);
        let failed = group(vec![started(id, 1, 2)]);
        log.committed(&failed, &Folds::default(), false);
        let folds = until_due(&mut log, id, Vec::new());
        assert_eq!(
            (folds.read.as_slice(), folds.replaced.len()),
            (&[id][..], 0)
        );
        assert_eq!(log.known, 0);
    }

    #[test]
    fn once_forgotten_every_log_is_read() {
        let mut log = StartLogRows::default();
        let id = ExecutionId::generate();
        let mut folds = until_due(&mut log, id, vec![Row::Plan(id, "{}".to_owned())]);
        assert_eq!(folds.replaced, [id]);
        // The lock was taken again before the group was written.
        log.forget();
        folds.read_all();
        assert_eq!(
            (folds.read.as_slice(), folds.replaced.len()),
            (&[id][..], 0)
        );
        assert!(folds.starts.is_empty());
        assert_eq!(log.known, 0);
        let group = group(vec![started(id, 0, 1_000)]);
        log.committed(&group, &folds, true);
        let folds = until_due(&mut log, id, Vec::new());
        assert_eq!(
            (folds.read.as_slice(), folds.replaced.len()),
            (&[id][..], 0)
        );
    }

    #[test]
    fn a_log_cleared_in_the_group_is_not_folded() {
        let mut log = StartLogRows::default();
        let id = ExecutionId::generate();
        let folds = until_due(&mut log, id, vec![Row::Plan(id, "{}".to_owned())]);
        assert_eq!(folds.replaced, [id]);
        let cleared = group(vec![Row::ClearStarts(id), started(id, 0, 1_000)]);
        assert!(log.due(&cleared).is_empty());
        log.committed(&cleared, &Folds::default(), true);
        // It is no longer kept: what it appends next is counted afresh, its sets gone.
        assert_eq!(log.known, 0);
        assert_eq!(log.logs[&id].rows, 1);
        assert!(log.logs[&id].known.is_none());
    }
}
