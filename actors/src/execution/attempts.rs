//! The worker pool: an attempt started with its context (inputs, checkpoint, refresh) on a
//! worker from the pool, or a new one; its end taken back, the worker idle again; a worker
//! that failed mid-attempt.

use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorId, ActorRef};

use crate::error::StoreError;
use crate::execution::{ExecutionMsg, ExecutionState};
use crate::model::{AttemptControl, Checkpoint, CtxParts, now_ms};
use crate::sched::run::{AttemptEnd, Ending};
use crate::worker::{Attempt, ItemWorker, ItemWorkerArgs, WorkerMsg};

impl ExecutionState {
    /// Starts attempt `attempt` of item `index` on a free worker, or a new one (the pool
    /// never exceeds the parallelism, since at most that many attempts run).
    pub(super) async fn start(
        &mut self,
        myself: &ActorRef<ExecutionMsg>,
        index: u32,
        attempt: u32,
        resume: Option<Checkpoint>,
    ) -> Result<(), (String, Option<Checkpoint>)> {
        let compiled = &self.plan.items[index as usize];
        let items = self.run.items();
        let inputs = self.run.shape().deps[index as usize]
            .iter()
            .map(|&d| {
                (
                    self.plan.items[d as usize].id.clone(),
                    items[d as usize].output.clone(),
                )
            })
            .collect();
        let control = Arc::new(AttemptControl::resuming(resume));
        let mut run = Box::new(Attempt {
            item: compiled.item.clone(),
            ctx: CtxParts {
                execution_id: self.record.id,
                index,
                item_id: compiled.id.clone(),
                attempt,
                refresh: items[index as usize].refresh,
                inputs,
                control: control.clone(),
                port: Some(self.port.clone()),
                resources: self.resources.clone(),
            },
        });
        // An idle worker that died is replaced.
        let worker = loop {
            let (worker, fresh) = match self.idle.pop() {
                Some(worker) => (worker, false),
                None => {
                    let args = ItemWorkerArgs {
                        execution_id: self.record.id,
                        execution: myself.clone(),
                    };
                    match ItemWorker::spawn_linked(None, ItemWorker, args, myself.get_cell()).await
                    {
                        Ok((worker, _)) => (worker, true),
                        Err(e) => return Err((e.to_string(), control.take_checkpoint())),
                    }
                }
            };
            match worker.cast(WorkerMsg::Run(run)) {
                Ok(()) => break worker,
                Err(ractor::MessagingErr::SendErr(WorkerMsg::Run(back))) => {
                    if fresh {
                        let error = "a new worker refused its first attempt".to_owned();
                        return Err((error, control.take_checkpoint()));
                    }
                    run = back;
                }
                Err(e) => {
                    let error = format!("cannot reach a worker: {e}");
                    return Err((error, control.take_checkpoint()));
                }
            }
        };
        self.running.insert(index, (attempt, worker, control));
        Ok(())
    }

    /// Attempt `attempt` of item `index` ended as its worker says: the worker is free
    /// again, and the core hears of it.
    pub(super) fn attempt_ended(&mut self, index: u32, attempt: u32, end: AttemptEnd) {
        if self
            .running
            .get(&index)
            .is_some_and(|(a, _, _)| *a == attempt)
            && let Some((_, worker, _)) = self.running.remove(&index)
        {
            self.idle.push(worker);
        }
        if let Ending::StoreFailed { error } = &end.ending
            && self.store_error.is_none()
        {
            tracing::error!(execution_id = %self.record.id, error, "a checkpoint of this execution was not made durable; it stops starting items");
            self.store_error = Some(StoreError::Commit(error.clone()));
        }
        self.run.attempt_ended(index, attempt, end, Instant::now());
    }

    /// Worker `worker` failed (its handler panicked or errored) and did not report its
    /// attempt: the attempt counts as failed. True when the core heard of an attempt (its
    /// effects are to perform).
    pub(super) fn worker_failed(
        &mut self,
        worker: ActorId,
        reason: &impl std::fmt::Display,
    ) -> bool {
        let failed = self
            .running
            .iter()
            .find(|(_, (_, w, _))| w.get_id() == worker)
            .map(|(&index, &(attempt, _, _))| (index, attempt));
        // A dead worker never goes back to the pool.
        self.idle.retain(|w| w.get_id() != worker);
        let Some((index, attempt)) = failed else {
            return false;
        };
        let Some((_, _, control)) = self.running.remove(&index) else {
            return false;
        };
        let end = AttemptEnd {
            ending: Ending::Failed {
                error: format!("worker failed: {reason}"),
            },
            at_ms: now_ms(),
            progress: control.checkpoint_progress(),
            message: None,
            // Its worker died mid-attempt: it may have applied.
            applied: true,
            checkpoint: control.take_checkpoint(),
        };
        self.run.attempt_ended(index, attempt, end, Instant::now());
        true
    }
}
