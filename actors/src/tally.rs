//! [`Tally`]: what a running execution counts as it goes, shared with whoever lists it (the
//! Supervisor's entry, the Catalog), so a listing reads it without asking the execution.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

use crate::model::{ExecutionSummary, time_of_ms};

/// Counts an Execution keeps for its listing; only it writes them.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Items done.
    done: AtomicUsize,
    /// When an item last ended, ms since the epoch (0: none in this run).
    changed_ms: AtomicU64,
    /// How much of the running items' work is done, in thousandths of an item, as their
    /// reported progress says.
    running_permille: AtomicU64,
}

impl Tally {
    /// A tally that starts from `done` items done.
    pub(crate) fn new(done: usize) -> Self {
        Tally {
            done: AtomicUsize::new(done),
            ..Tally::default()
        }
    }

    /// One more item is done.
    pub(crate) fn item_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// An item ended (done, failed, ...) at `now_ms`.
    pub(crate) fn item_ended(&self, now_ms: u64) {
        self.changed_ms.store(now_ms, Ordering::Relaxed);
    }

    /// A running item's share of done work went from `from` to `to` thousandths.
    pub(crate) fn running_moved(&self, from: u16, to: u16) {
        if to >= from {
            self.running_permille
                .fetch_add(u64::from(to - from), Ordering::Relaxed);
        } else {
            // Never below zero: each item takes back at most what it added.
            let _ = self
                .running_permille
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(u64::from(from - to)))
                });
        }
    }

    /// Items done.
    pub(crate) fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// `summary` with these counts: its done items, its running items' progress, and an
    /// `updated` no earlier than its last item's end.
    pub(crate) fn apply(&self, summary: &mut ExecutionSummary) {
        summary.items_done = self.done();
        summary.running_progress = self.running_permille.load(Ordering::Relaxed) as f64 / 1000.0;
        summary.updated = self.updated(summary.updated);
    }

    /// `updated`, or the last item's end if that is later.
    pub(crate) fn updated(&self, updated: SystemTime) -> SystemTime {
        updated.max(time_of_ms(self.changed_ms.load(Ordering::Relaxed)))
    }
}
