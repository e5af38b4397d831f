//! The start log's bound. A group commit appends one row per execution it starts attempts
//! of (see `statements::insert_starts`), and nothing removes an execution's rows until it
//! ends; an execution that runs for long (an item retried every second for days, a
//! process that crashes and resumes) would grow its log without end. So the writer counts
//! the rows it appended for each execution, and once an execution has
//! [`COMPACT_AFTER`] of them, the next group that starts one of its attempts first folds
//! its log into one row (the latest start of each item), in the same transaction.
//!
//! The counts live in memory only: after a restart they begin at 0, so an execution's log
//! holds at most about twice the bound (what one process left, and what the next appends
//! before it folds them).

use std::collections::HashMap;

use super::group::Group;
use crate::model::ExecutionId;

/// The rows an execution's log may gain before it is folded into one.
pub(crate) const COMPACT_AFTER: u32 = 256;

/// The most executions counted at once; past it the counts start again (a fold then comes
/// later, never sooner, than it would have).
const MAX_COUNTED: usize = 100_000;

/// How many rows the writer appended to each execution's log since it was last folded
/// or cleared.
#[derive(Debug, Default)]
pub(crate) struct StartLogRows {
    appended: HashMap<ExecutionId, u32>,
}

impl StartLogRows {
    /// The executions whose logs `group` folds before appending to them.
    pub(crate) fn due(&self, group: &Group) -> Vec<ExecutionId> {
        group
            .started_executions()
            .filter(|id| self.appended.get(id).is_some_and(|n| *n >= COMPACT_AFTER))
            .collect()
    }

    /// `group` committed, folding the logs of `folded` first.
    pub(crate) fn committed(&mut self, group: &Group, folded: &[ExecutionId]) {
        for id in folded {
            // Folded into one row, then this group's.
            self.appended.insert(*id, 1);
        }
        for id in group.started_executions() {
            if !folded.contains(&id) {
                *self.appended.entry(id).or_insert(0) += 1;
            }
        }
        for id in group.cleared_executions() {
            self.appended.remove(&id);
        }
        if self.appended.len() > MAX_COUNTED {
            self.appended.clear();
        }
    }
}
