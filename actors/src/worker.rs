//! The ItemWorker actor: runs item attempts, one at a time. An Execution keeps a pool of
//! at most `parallelism` workers and hands each free one the next ready item, so the cost
//! of spawning an actor is paid per worker, not per item.
//!
//! ```text
//! Execution ──Run(attempt)──▶ ItemWorker ──tokio task──▶ item.check / item.apply (ItemCtx)
//!                                  │  ◀── Finished(result) ──┘
//!                                  ├── writes the ItemRecord (Done / Interrupted / Failed),
//!                                  │   waits until it is durable
//!                                  └── AttemptEnded ──▶ Execution; the worker is free again
//! ```
//!
//! The attempt runs in its own task so the worker keeps receiving messages: `Stop` tells the
//! attempt to stop at its next cancellation point and, with `abort_after`, aborts it when
//! the grace runs out. Either way the item's last intra-item checkpoint is already durable
//! (`ItemCtx::checkpoint` returns only then), and the worker records the item as
//! interrupted so a resume continues from that checkpoint. A panic in the item is caught and
//! ends the attempt as failed; it never takes the worker or the execution down.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::error::ItemError;
use crate::execution::{AttemptEnd, ExecutionMsg};
use crate::model::{AttemptControl, CtxParts, DynItem, ExecutionId, ItemCtx, ItemStatus};
use crate::store::{ItemRecord, Op, RECORD_VERSION, Writer};

/// The ItemWorker actor.
#[derive(Debug, Default)]
pub struct ItemWorker;

/// What an ItemWorker needs; built by the Execution actor.
#[derive(Debug)]
pub struct ItemWorkerArgs {
    pub(crate) execution_id: ExecutionId,
    pub(crate) writer: Writer,
    pub(crate) execution: ActorRef<ExecutionMsg>,
}

/// One attempt to run (internal).
#[doc(hidden)]
pub struct Attempt {
    pub(crate) item: Arc<dyn DynItem>,
    pub(crate) ctx: CtxParts,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("item_id", &self.ctx.item_id)
            .field("attempt", &self.ctx.attempt)
            .finish_non_exhaustive()
    }
}

/// Messages an ItemWorker handles.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Stop the current attempt at its next cancellation point; abort it after
    /// `abort_after` if it has not stopped by then.
    Stop {
        /// Grace before the attempt is aborted; `None` waits for the cancellation point.
        abort_after: Option<Duration>,
    },
    /// Internal: run an attempt.
    #[doc(hidden)]
    Run(Box<Attempt>),
    /// Internal: an attempt task ended.
    #[doc(hidden)]
    Finished(AttemptResult),
    /// Internal: the grace of a `Stop` ran out for attempt number `generation`.
    #[doc(hidden)]
    Abort {
        /// Which attempt of this worker.
        generation: u64,
    },
}

/// The result of an attempt task (internal).
#[doc(hidden)]
#[derive(Debug)]
pub struct AttemptResult {
    generation: u64,
    result: Result<Vec<u8>, ItemError>,
}

/// Aborts the attempt task when dropped, so an attempt never outlives its worker (a
/// killed actor drops its state without running `post_stop`).
struct AttemptTask(AbortHandle);

impl Drop for AttemptTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The attempt a worker is running.
struct Current {
    index: u32,
    item_id: Arc<str>,
    attempt: u32,
    control: Arc<AttemptControl>,
    task: AttemptTask,
}

/// The ItemWorker's state.
pub struct ItemWorkerState {
    execution_id: ExecutionId,
    writer: Writer,
    execution: ActorRef<ExecutionMsg>,
    current: Option<Current>,
    /// Counts attempts run by this worker, so late messages of an earlier attempt are
    /// recognised and dropped.
    generation: u64,
}

impl std::fmt::Debug for ItemWorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemWorkerState")
            .field("execution_id", &self.execution_id)
            .field("item_id", &self.current.as_ref().map(|c| c.item_id.clone()))
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

impl Actor for ItemWorker {
    type Msg = WorkerMsg;
    type State = ItemWorkerState;
    type Arguments = ItemWorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        args: ItemWorkerArgs,
    ) -> Result<ItemWorkerState, ActorProcessingErr> {
        Ok(ItemWorkerState {
            execution_id: args.execution_id,
            writer: args.writer,
            execution: args.execution,
            current: None,
            generation: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut ItemWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Run(attempt) => state.run(&myself, *attempt).await,
            WorkerMsg::Stop { abort_after } => {
                if let Some(current) = &state.current {
                    current.control.cancel();
                    if let Some(grace) = abort_after {
                        let generation = state.generation;
                        myself.send_after(grace, move || WorkerMsg::Abort { generation });
                    }
                }
            }
            WorkerMsg::Abort { generation } => {
                if generation == state.generation
                    && let Some(current) = &state.current
                    // A task that already finished has its result queued: keep it.
                    && !current.task.0.is_finished()
                {
                    current.task.0.abort();
                    tracing::info!(
                        execution_id = %state.execution_id,
                        item_id = %current.item_id,
                        "attempt aborted after its grace ran out"
                    );
                    state.end(Err(ItemError::Interrupted)).await;
                }
            }
            WorkerMsg::Finished(AttemptResult { generation, result }) => {
                if generation == state.generation {
                    state.end(result).await;
                }
            }
        }
        Ok(())
    }
}

impl ItemWorkerState {
    async fn run(&mut self, myself: &ActorRef<WorkerMsg>, attempt: Attempt) {
        let Attempt { item, ctx } = attempt;
        if let Some(busy) = &self.current {
            // The execution hands a worker one attempt at a time; refuse rather than lose one.
            tracing::error!(item_id = %busy.item_id, "worker is busy; attempt refused");
            let _ = self.execution.cast(ExecutionMsg::attempt_ended(
                ctx.index,
                AttemptEnd::failed("internal error: worker was busy".to_owned()),
            ));
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let span = tracing::debug_span!(
            "attempt",
            execution_id = %ctx.execution_id,
            item_id = %ctx.item_id,
            attempt = ctx.attempt
        );
        let (index, item_id, attempt, control) = (
            ctx.index,
            ctx.item_id.clone(),
            ctx.attempt,
            ctx.control.clone(),
        );
        let worker = myself.clone();
        let task = tokio::spawn(
            async move {
                let mut cx = ItemCtx::new(ctx);
                let result = AssertUnwindSafe(item.run(&mut cx))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(ItemError::Panicked(panic_message(panic))));
                // If the worker is gone it was killed with its execution; nobody waits.
                let _ = worker.cast(WorkerMsg::Finished(AttemptResult { generation, result }));
            }
            .instrument(span),
        );
        self.current = Some(Current {
            index,
            item_id,
            attempt,
            control,
            task: AttemptTask(task.abort_handle()),
        });
    }

    /// Records how the attempt ended, durably, and tells the execution.
    async fn end(&mut self, result: Result<Vec<u8>, ItemError>) {
        let Some(current) = self.current.take() else {
            return;
        };
        let (progress, message) = current.control.last();
        let (status, output, error) = match result {
            Ok(output) => (ItemStatus::Done, Some(output), None),
            Err(ItemError::Interrupted) => (ItemStatus::Interrupted, None, None),
            Err(e) => (ItemStatus::Failed, None, Some(e.to_string())),
        };
        let record = ItemRecord {
            v: RECORD_VERSION,
            status,
            attempts: current.attempt,
            output,
            error,
            progress,
            message: message.as_deref().map(str::to_owned),
        };
        let end = match crate::store::encode(&record) {
            Err(e) => AttemptEnd::failed(format!("cannot record the attempt: {e}")),
            Ok(bytes) => {
                let item = Op::Item {
                    id: self.execution_id,
                    index: current.index,
                    record: bytes,
                };
                let ops = if status == ItemStatus::Done && current.control.is_checkpointed() {
                    let clear = Op::ClearCheckpoint {
                        id: self.execution_id,
                        index: current.index,
                    };
                    vec![item, clear]
                } else {
                    vec![item]
                };
                match self.writer.commit(ops).await {
                    Ok(()) => AttemptEnd {
                        status,
                        output: record.output.map(Arc::from),
                        error: record.error,
                    },
                    // Not durable: the store does not know how the attempt ended, so it
                    // counts as interrupted (a resume runs it again), never as done and
                    // never as a final failure caused by the store.
                    Err(e) => AttemptEnd {
                        status: ItemStatus::Interrupted,
                        output: None,
                        error: Some(format!("cannot record the attempt: {e}")),
                    },
                }
            }
        };
        if end.status == ItemStatus::Failed {
            tracing::warn!(
                execution_id = %self.execution_id,
                item_id = %current.item_id,
                error = end.error.as_deref().unwrap_or(""),
                "attempt failed"
            );
        }
        let _ = self
            .execution
            .cast(ExecutionMsg::attempt_ended(current.index, end));
    }
}
