//! The simulated store: what a restart reads back, built only from the commits the core
//! issued and that became durable.

use std::collections::BTreeMap;

use crate::model::{ExecutionStatus, ItemStatus};
use crate::sched::run::{ItemState, Write};

/// What the store holds: the records of every commit that became durable.
#[derive(Debug, Clone, Default)]
pub(super) struct Durable {
    pub(super) items: Vec<Option<ItemState>>,
    /// Started attempts by item: (attempt, crashes), as the store's start sets keep them.
    pub(super) starts: BTreeMap<u32, (u32, u32)>,
    pub(super) checkpoints: Vec<bool>,
    pub(super) execution: Option<ExecutionStatus>,
    /// The running record is marked as asked to pause.
    pub(super) pausing: bool,
}

impl Durable {
    pub(super) fn apply(&mut self, writes: &[Write]) {
        for write in writes {
            match write {
                Write::Started {
                    index,
                    attempt,
                    crashes,
                } => {
                    self.starts.insert(*index, (*attempt, *crashes));
                }
                Write::Item { index, state } => {
                    if self
                        .starts
                        .get(index)
                        .is_some_and(|&(attempt, _)| attempt <= state.attempts)
                    {
                        self.starts.remove(index);
                    }
                    self.items[*index as usize] = Some(state.clone());
                }
                Write::ClearCheckpoint { index } => self.checkpoints[*index as usize] = false,
                Write::Execution { status } => {
                    self.execution = Some(*status);
                    self.pausing = false;
                }
                Write::PauseRequested => self.pausing = true,
            }
        }
    }

    pub(super) fn status(&self, index: u32) -> Option<ItemStatus> {
        self.items[index as usize].as_ref().map(|i| i.status)
    }

    /// The item's record as a restart reads it: a started attempt newer than the record
    /// reads as running (the merge `store::load` does).
    pub(super) fn record(&self, index: u32) -> Option<ItemState> {
        let record = self.items[index as usize].clone();
        match self.starts.get(&index) {
            Some(&(attempt, crashes)) if record.as_ref().is_none_or(|r| r.attempts < attempt) => {
                let record = record.unwrap_or_default();
                Some(ItemState {
                    status: ItemStatus::Running,
                    attempts: attempt,
                    crashes,
                    output: None,
                    error: None,
                    ..record
                })
            }
            _ => record,
        }
    }

    /// The items as a restart reads them back (the rule `ExecutionArgs::resume` follows).
    pub(super) fn resumed(&self) -> Vec<ItemState> {
        (0..self.items.len() as u32)
            .map(|index| self.record(index))
            .zip(&self.checkpoints)
            .map(|(record, &checkpoint)| {
                let record = record.unwrap_or_default();
                let status = match record.status {
                    s @ (ItemStatus::Done | ItemStatus::Failed | ItemStatus::Skipped) => s,
                    _ if checkpoint || record.attempts > 0 => ItemStatus::Interrupted,
                    _ => ItemStatus::Pending,
                };
                // The process stopped under an attempt: it may have applied.
                let maybe_changed = record.maybe_changed || record.status == ItemStatus::Running;
                ItemState {
                    status,
                    maybe_changed,
                    ..record
                }
            })
            .collect()
    }
}
