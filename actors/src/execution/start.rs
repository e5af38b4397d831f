//! Starting an attempt: its context (inputs, checkpoint, refresh) and a worker from the
//! pool, or a new one.

use std::sync::Arc;

use ractor::{Actor, ActorRef};

use crate::execution::{ExecutionMsg, ExecutionState};
use crate::model::{AttemptControl, CtxParts};
use crate::store::StoredCheckpoint;
use crate::worker::{Attempt, ItemWorker, ItemWorkerArgs, WorkerMsg};

impl ExecutionState {
    /// Starts attempt `attempt` of item `index` on a free worker, or a new one (the pool
    /// never exceeds the parallelism, since at most that many attempts run).
    pub(super) async fn start(
        &mut self,
        myself: &ActorRef<ExecutionMsg>,
        index: u32,
        attempt: u32,
    ) -> Result<(), String> {
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
        let checkpoint = self.checkpoints[index as usize].take();
        let (resume, progress) = match checkpoint {
            Some(c) => (Some(c.state), c.progress),
            None => (None, None),
        };
        let mut run = Box::new(Attempt {
            item: compiled.item.clone(),
            ctx: CtxParts {
                execution_id: self.record.id,
                index,
                item_id: compiled.id.clone(),
                attempt,
                resume,
                refresh: items[index as usize].refresh,
                inputs,
                control: Arc::new(AttemptControl::resuming(progress)),
                writer: Some(self.writer.clone()),
                execution: Some(myself.clone()),
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
                        Err(e) => {
                            self.put_back(index, &mut run);
                            return Err(e.to_string());
                        }
                    }
                }
            };
            match worker.cast(WorkerMsg::Run(run)) {
                Ok(()) => break worker,
                Err(ractor::MessagingErr::SendErr(WorkerMsg::Run(mut back))) => {
                    if fresh {
                        self.put_back(index, &mut back);
                        return Err("a new worker refused its first attempt".to_owned());
                    }
                    run = back;
                }
                Err(e) => return Err(format!("cannot reach a worker: {e}")),
            }
        };
        self.running.insert(index, (attempt, worker));
        Ok(())
    }

    /// Keeps the checkpoint of an attempt that could not be handed to a worker.
    fn put_back(&mut self, index: u32, attempt: &mut Attempt) {
        if let Some(state) = attempt.ctx.resume.take() {
            self.checkpoints[index as usize] = Some(StoredCheckpoint {
                state,
                progress: attempt.ctx.control.checkpoint_progress(),
            });
        }
    }
}
