//! What an Execution tells people: its full report and its part of the live actor tree.

use ractor::ActorRef;

use crate::execution::{ExecutionMsg, ExecutionState};
use crate::model::{
    ActorNode, ActorRole, AttemptReport, BlockOutcome, BlockReport, ExecutionReport,
    ExecutionStatus, Halting, ItemReport, ItemStatus, Outcome, errors_of, time_of_ms,
};

impl ExecutionState {
    /// Every item as the core has it, by block.
    pub(super) fn report(&self) -> ExecutionReport {
        let specs = self.record.plan.blocks.iter().flat_map(|b| b.items.iter());
        let mut items = self
            .run
            .items()
            .iter()
            .zip(self.plan.items.iter())
            .zip(specs)
            .enumerate();
        let blocks = self
            .plan
            .blocks
            .iter()
            .map(|block| BlockReport {
                name: block.name.clone(),
                items: items
                    .by_ref()
                    .take(block.range.len())
                    .map(|(index, ((state, item), spec))| {
                        let history: Vec<AttemptReport> =
                            state.history.iter().map(|a| a.report()).collect();
                        ItemReport {
                            id: item.id.to_string(),
                            kind: item.kind.to_string(),
                            params: match &self.params {
                                Some(packed) => packed.get(index),
                                None => spec.params.clone(),
                            },
                            after: spec.after.clone(),
                            status: state.status,
                            attempts: state.attempts,
                            progress: state.progress,
                            message: state.message.as_deref().map(str::to_owned),
                            output: state.output.as_deref().map(<[u8]>::to_vec),
                            changed: (state.status == ItemStatus::Done).then_some(!state.unchanged),
                            refresh: state.refresh,
                            error: state.error.clone(),
                            errors: errors_of(&history),
                            running_since: state
                                .started_ms
                                .filter(|_| state.status == ItemStatus::Running)
                                .map(time_of_ms),
                            history,
                        }
                    })
                    .collect(),
            })
            .collect();
        ExecutionReport {
            id: self.record.id,
            name: self.record.plan.name.clone(),
            status: self.record.status,
            created: time_of_ms(self.record.created_ms),
            updated: self.tally.updated(time_of_ms(self.record.updated_ms)),
            reason: None,
            // Only while it runs: the final report (interrupted, paused) has stopped.
            halting: if self.record.status != ExecutionStatus::Running || self.finished {
                None
            } else if self.run.is_cancelling() {
                Some(Halting::Cancelling)
            } else if self.run.is_pausing() {
                Some(Halting::Pausing)
            } else if self.run.is_interrupting() {
                Some(Halting::Interrupting)
            } else {
                None
            },
            blocks,
        }
    }

    /// Its items by how they stand, as the core has them: what `report().outcome()` says,
    /// without building the report (at the end of a large execution that is most of the
    /// work left before its waiters hear).
    pub(super) fn outcome(&self) -> Outcome {
        let items = self.run.items();
        let blocks = self
            .plan
            .blocks
            .iter()
            .map(|block| {
                let mut out = BlockOutcome::named(block.name.clone());
                for index in block.range.clone() {
                    let index = index as usize;
                    out.add(self.plan.items[index].id.clone(), items[index].status);
                }
                out
            })
            .collect();
        Outcome {
            execution: self.record.id,
            status: self.record.status,
            blocks,
        }
    }

    /// This actor and its running attempts (tasks it owns, shown as its children).
    pub(super) fn tree(&self, myself: &ActorRef<ExecutionMsg>) -> ActorNode {
        let mut running: Vec<_> = self.running.iter().collect();
        running.sort_by_key(|(index, _)| **index);
        let children = running
            .into_iter()
            .map(|(&index, running)| {
                let item = &self.plan.items[index as usize];
                let status = if item.tags().is_empty() {
                    format!("running {}", item.id)
                } else {
                    format!("running {} holding {}", item.id, item.tags().join(", "))
                };
                ActorNode {
                    role: ActorRole::Attempt,
                    name: format!("{} attempt {}", item.id, running.attempt),
                    actor_id: format!("task-{}", running.task_id()),
                    status,
                    children: Vec::new(),
                }
            })
            .collect();
        let mut status = if self.run.is_cancelling() {
            "cancelling".to_owned()
        } else if self.run.is_pausing() {
            "pausing".to_owned()
        } else if self.run.is_interrupting() {
            "interrupting".to_owned()
        } else {
            "running".to_owned()
        };
        // Items waiting for semaphores or rate limits have no task yet: they are named
        // here.
        let waiting: Vec<String> =
            self.run
                .acquiring()
                .map(|index| {
                    let item = &self.plan.items[index as usize];
                    format!("{} for {}", item.id, item.tags().join(", "))
                })
                .chain(self.run.throttled().map(|index| {
                    format!("{} for a rate limit", self.plan.items[index as usize].id)
                }))
                .collect();
        if !waiting.is_empty() {
            status.push_str(&format!("; waiting: {}", waiting.join("; ")));
        }
        ActorNode {
            role: ActorRole::Execution,
            name: self.record.id.to_string(),
            actor_id: myself.get_id().to_string(),
            status,
            children,
        }
    }
}
