//! The simulated store: what a restart reads back, built only from the commits the core
//! issued and that became durable.

use std::collections::BTreeMap;

use crate::model::{Checkpoint, ExecutionStatus, ItemStatus, Started, merge_started, resumed};
use crate::sched::run::{ItemState, Write};

/// What the store holds: the records of every commit that became durable.
#[derive(Debug, Clone, Default)]
pub(super) struct Durable {
    pub(super) items: Vec<Option<ItemState>>,
    /// Started attempts by item: (attempt, crashes), as the store's start sets keep them.
    pub(super) starts: BTreeMap<u32, (u32, u32)>,
    /// Each item's latest durable checkpoint, by version (the simulation numbers them).
    pub(super) checkpoints: Vec<Option<u64>>,
    pub(super) execution: Option<ExecutionStatus>,
    /// The running record is marked as asked to pause.
    pub(super) pausing: bool,
    /// The running record is marked as asked to cancel: a restart finds it cancelled.
    pub(super) cancelling: bool,
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
                Write::Item { index, state, .. } => {
                    if self
                        .starts
                        .get(index)
                        .is_some_and(|&(attempt, _)| attempt <= state.attempts)
                    {
                        self.starts.remove(index);
                    }
                    self.items[*index as usize] = Some(state.clone());
                }
                Write::ClearCheckpoint { index } => self.checkpoints[*index as usize] = None,
                Write::Execution { status } => {
                    self.execution = Some(*status);
                    self.pausing = false;
                    self.cancelling = false;
                }
                Write::PauseRequested => self.pausing = true,
                Write::CancelRequested => self.cancelling = true,
            }
        }
    }

    pub(super) fn status(&self, index: u32) -> Option<ItemStatus> {
        self.items[index as usize].as_ref().map(|i| i.status)
    }

    /// The item's record as a restart reads it: the store's recovery rule over the
    /// record and the started attempt.
    pub(super) fn record(&self, index: u32) -> Option<ItemState> {
        let started = self
            .starts
            .get(&index)
            .map(|&(attempt, crashes)| Started { attempt, crashes });
        merge_started(self.items[index as usize].clone(), started)
    }

    /// The items as a restart reads them back: the rule `ExecutionArgs::resume` follows
    /// (with no crash limit: the simulation never fails an item for crashes).
    pub(super) fn resumed(&self) -> Vec<ItemState> {
        (0..self.items.len() as u32)
            .map(|index| self.record(index))
            .zip(&self.checkpoints)
            .map(|(record, checkpoint)| {
                let progress = record.as_ref().and_then(|r| r.progress);
                resumed(record, checkpoint.is_some(), progress, 0)
            })
            .collect()
    }
}

impl Durable {
    /// The checkpoints as a restart reads them back.
    pub(super) fn stored_checkpoints(&self) -> Vec<Option<Checkpoint>> {
        self.checkpoints
            .iter()
            .map(|v| v.map(checkpoint_of))
            .collect()
    }
}

/// The checkpoint the simulation saves as version `version`.
pub(super) fn checkpoint_of(version: u64) -> Checkpoint {
    Checkpoint {
        state: version.to_le_bytes().to_vec(),
        progress: None,
    }
}

/// The version of a checkpoint the simulation saved.
pub(super) fn version_of(checkpoint: &Checkpoint) -> u64 {
    let mut bytes = [0u8; 8];
    let n = checkpoint.state.len().min(8);
    bytes[..n].copy_from_slice(&checkpoint.state[..n]);
    u64::from_le_bytes(bytes)
}
