//! Moving through the blocks: what may start now, what a failure or a blocked dependency
//! skips, and when the run finishes (completed, failed or interrupted).

use std::time::Instant;

use super::Run;
use crate::model::{ExecutionStatus, ItemStatus};
use crate::sched::dag::{Readiness, Start};

impl Run {
    /// Starts what may start; finishes when nothing runs and nothing may start.
    pub(super) fn pump(&mut self, now: Instant) {
        if !self.started || self.finishing {
            return;
        }
        if self.broken {
            // Nothing new starts: waits for semaphores and rate limits end.
            self.withdraw_waiting();
        }
        loop {
            while self.active.len() < self.config.parallelism
                && !self.broken
                && self.allowance != Some(0)
            {
                let Some(local) = self.readiness.pop_ready() else {
                    break;
                };
                let index = self.shape.blocks[self.block].range.start + local;
                let counted = self.allowance.is_some();
                if let Some(allowance) = &mut self.allowance {
                    *allowance -= 1;
                }
                self.prepare(index, counted, now);
            }
            // Running attempts, or retries still to come (an interrupt ends their waits).
            if !self.active.is_empty() || !self.waiting.is_empty() {
                return;
            }
            if self.broken {
                return self.finish(ExecutionStatus::Interrupted);
            }
            // Nothing runs, and what is left of this block cannot start: interrupted.
            if !self.readiness.is_settled() {
                return self.finish(ExecutionStatus::Interrupted);
            }
            if self.failed {
                let later: Vec<u32> = self.shape.blocks[self.block + 1..]
                    .iter()
                    .flat_map(|b| b.range.clone())
                    .collect();
                for index in later {
                    self.skip(index);
                }
                return self.finish(ExecutionStatus::Failed);
            }
            // Later blocks with anything left to do (a resumed run may find them done).
            // Looked at only once the block is settled, not on every step.
            let more = self.shape.blocks[self.block + 1..]
                .iter()
                .flat_map(|b| b.range.clone())
                .any(|i| self.items[i as usize].status != ItemStatus::Done);
            if !more {
                return self.finish(ExecutionStatus::Completed);
            }
            if self.allowance.is_none() {
                self.enter_block(self.block + 1);
                continue;
            }
            return self.finish(ExecutionStatus::Interrupted);
        }
    }

    /// Makes block `block` current and skips the items it cannot run.
    pub(super) fn enter_block(&mut self, block: usize) {
        self.block = block;
        let Some(shape) = self.shape.blocks.get(block) else {
            return;
        };
        let offset = shape.range.start;
        let items = &self.items;
        let (readiness, skipped) = Readiness::new(&shape.graph, |local| {
            match items[(offset + local) as usize].status {
                ItemStatus::Done => Start::Done,
                ItemStatus::Failed | ItemStatus::Skipped => Start::Blocked,
                _ => Start::Pending,
            }
        });
        self.failed = items[shape.range.start as usize..shape.range.end as usize]
            .iter()
            .any(|i| i.status == ItemStatus::Failed);
        self.readiness = readiness;
        for local in skipped {
            self.skip(offset + local);
        }
    }

    /// Item `index` failed for good: its dependents are skipped.
    pub(super) fn fail(&mut self, index: u32) -> ItemStatus {
        let local = index - self.shape.blocks[self.block].range.start;
        self.failed = true;
        let skipped = self
            .readiness
            .fail(&self.shape.blocks[self.block].graph, local);
        let offset = self.shape.blocks[self.block].range.start;
        for local in skipped {
            self.skip(offset + local);
        }
        ItemStatus::Failed
    }

    fn skip(&mut self, index: u32) {
        let item = &mut self.items[index as usize];
        if item.status != ItemStatus::Skipped {
            item.status = ItemStatus::Skipped;
            self.skipped.push(index);
            self.publish_item(index);
        }
    }
}
