//! Starting an attempt: its context (inputs, checkpoint, refresh) and a worker from the
//! pool, or a new one.

use std::sync::Arc;

use ractor::{Actor, ActorRef};

use crate::execution::{ExecutionMsg, ExecutionState};
use crate::model::{AttemptControl, Checkpoint, CtxParts};
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
}
