//! Executions as a backend reads them back: the startup scan's [`LoadedExecution`] and one
//! execution in full, [`StoredExecution`], with the reports and settlements made from it.

use crate::model::{
    AttemptReport, BlockReport, Change, Checkpoint, ExecutionId, ExecutionRecord, ExecutionReport,
    ExecutionStatus, ItemReport, ItemState, ItemStatus, Progress, errors_of, time_of_ms,
};

/// One execution as the startup scan found it.
#[derive(Debug)]
pub enum LoadedExecution {
    /// Its records decode.
    Sound {
        /// Its record.
        record: ExecutionRecord,
        /// How many of its items are done.
        items_done: usize,
    },
    /// One of its records does not decode.
    Corrupt {
        /// The execution.
        id: ExecutionId,
        /// Which record, and why.
        reason: String,
    },
}

/// One execution with every item record and checkpoint, indexed by item (the plan's order,
/// block by block). Items are as the recovery rule reads them back
/// ([`merge_started`](crate::model::merge_started)): an attempt that started and that no
/// record shows yet reads as running.
#[derive(Debug, Clone)]
pub struct StoredExecution {
    /// Its record.
    pub record: ExecutionRecord,
    /// Each item's record; `None` for an item that never started.
    pub items: Vec<Option<ItemState>>,
    /// Each item's intra-item checkpoint.
    pub checkpoints: Vec<Option<Checkpoint>>,
}

impl StoredExecution {
    /// Reads the attempts that were running as interrupted, not as cut short by a crash
    /// (their Execution actor failed, and the process lives on), and returns the changes
    /// that record them so: a later start does not count them against `crash_limit`.
    pub(crate) fn settle_killed(&mut self) -> Vec<Change> {
        let id = self.record.id;
        let mut changes = Vec::new();
        for (index, slot) in self.items.iter_mut().enumerate() {
            if let Some(record) = slot
                && record.status == ItemStatus::Running
            {
                record.status = ItemStatus::Interrupted;
                // Killed, so it may have applied: its next success sends refreshes.
                record.maybe_changed = true;
                changes.push(Change::Item {
                    id,
                    index: index as u32,
                    state: record.clone(),
                    first: false,
                });
            }
        }
        changes
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
                            record.history.iter().map(|a| a.report()).collect();
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
                            message: record.message.map(|m| m.to_string()),
                            output: record.output.map(|o| o.to_vec()),
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
