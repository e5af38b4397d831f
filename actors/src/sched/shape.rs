//! The shape of a plan as the scheduler sees it: blocks in order, each a DAG over a range
//! of item indices, and every item's dependencies. No item types, ids or params: those stay
//! with the plan.

use std::ops::Range;

use crate::sched::dag::BlockGraph;
use crate::sched::policy::Policy;

/// Blocks in order and every item's dependencies, by global item index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    /// The blocks, run one after the other.
    pub(crate) blocks: Vec<ShapeBlock>,
    /// For each item, the items it runs after: in its own block or an earlier one.
    pub(crate) deps: Vec<Box<[u32]>>,
    /// For each item, how its attempts are retried and bounded in time.
    pub(crate) policies: Vec<Policy>,
    /// For each item, the dependents its `notify` edges carry a refresh to when it changes
    /// something; empty when no item of the plan has such an edge.
    pub(crate) notify: Vec<Box<[u32]>>,
    /// For each item, whether it takes semaphores before each attempt; empty when no item
    /// of the plan does.
    pub(crate) guarded: Vec<bool>,
    /// For each item, whether one of the runtime's named rate limiters applies to it (set
    /// by the shell, which knows them); empty when none does.
    pub(crate) limited: Vec<bool>,
}

/// One block: its items (a range of global indices) and their DAG (local indices).
#[derive(Debug, Clone)]
pub(crate) struct ShapeBlock {
    pub(crate) range: Range<u32>,
    pub(crate) graph: BlockGraph,
}

impl Shape {
    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether item `index` takes semaphores before each attempt.
    pub(crate) fn is_guarded(&self, index: u32) -> bool {
        self.guarded.get(index as usize).copied().unwrap_or(false)
    }

    /// Whether a named rate limiter applies to item `index`.
    pub(crate) fn is_limited(&self, index: u32) -> bool {
        self.limited.get(index as usize).copied().unwrap_or(false)
    }

    /// The dependents item `index` sends a refresh to when it changes something.
    pub(crate) fn notified_by(&self, index: u32) -> &[u32] {
        self.notify.get(index as usize).map_or(&[], |d| d)
    }
}
