//! The ItemWorker actor: runs item attempts, one at a time. An Execution keeps a pool of
//! at most `parallelism` workers and hands each free one the next attempt to start, so the
//! cost of spawning an actor is paid per worker, not per item.
//!
//! ```text
//! Execution ──Run(attempt)──▶ ItemWorker ──tokio task──▶ item.check / item.apply (ItemCtx)
//!                                  │  ◀── Finished(result) ──┘
//!                                  └── AttemptEnded(how it ended) ──▶ Execution
//!                                      (which records it; the worker is free again)
//! ```
//!
//! The attempt runs in its own task so the worker keeps receiving messages: `Cancel` tells
//! the attempt to stop at its next cancellation point, `Abort` ends it at once (the
//! Execution's core decides when, from the interrupt's grace). Either way the item's last
//! intra-item checkpoint is already durable (`ItemCtx::checkpoint` returns only then), so a
//! resume continues from it. A panic in the item is caught and ends the attempt as failed;
//! it never takes the worker or the execution down.
//!
//! What the attempt's `ItemCtx` sends out goes through the execution's `ExecutionPort`
//! (`port`): progress to the Execution, checkpoints and artifacts to the store.

mod port;

pub(crate) use port::ExecutionPort;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::error::ItemError;
use crate::execution::ExecutionMsg;
use crate::model::{Applied, AttemptControl, CtxParts, DynItem, ExecutionId, ItemCtx, now_ms};
use crate::sched::run::{AttemptEnd, Ending};

/// The ItemWorker actor.
#[derive(Debug, Default)]
pub struct ItemWorker;

/// What an ItemWorker needs; built by the Execution actor.
#[derive(Debug)]
pub struct ItemWorkerArgs {
    pub(crate) execution_id: ExecutionId,
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
    /// Ask attempt `attempt` of item `index`, if it is the one running, to stop at its next
    /// cancellation point.
    Cancel {
        /// The item's index in its execution.
        index: u32,
        /// The attempt's number.
        attempt: u32,
    },
    /// Abort attempt `attempt` of item `index`, if it is the one running: it ends as
    /// interrupted at once.
    Abort {
        /// The item's index in its execution.
        index: u32,
        /// The attempt's number.
        attempt: u32,
    },
    /// Internal: run an attempt.
    #[doc(hidden)]
    Run(Box<Attempt>),
    /// Internal: an attempt task ended.
    #[doc(hidden)]
    Finished(AttemptResult),
}

/// The result of an attempt task (internal).
#[doc(hidden)]
#[derive(Debug)]
pub struct AttemptResult {
    generation: u64,
    result: Result<Applied, ItemError>,
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
    /// When it started, for the log's duration.
    began: std::time::Instant,
}

/// The ItemWorker's state.
pub struct ItemWorkerState {
    _live: crate::metrics::LiveActor,
    execution_id: ExecutionId,
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

/// A caught panic's message.
pub(crate) fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
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
            _live: crate::metrics::LiveActor::new(),
            execution_id: args.execution_id,
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
            WorkerMsg::Run(attempt) => state.run(&myself, *attempt),
            WorkerMsg::Cancel { index, attempt } => {
                if let Some(current) = state.current_attempt(index, attempt) {
                    current.control.cancel();
                }
            }
            WorkerMsg::Abort { index, attempt } => {
                if let Some(current) = state.current_attempt(index, attempt)
                    // A task that already finished has its result queued: keep it.
                    && !current.task.0.is_finished()
                {
                    current.task.0.abort();
                    tracing::info!(
                        execution_id = %state.execution_id,
                        item_id = %current.item_id,
                        attempt,
                        "attempt aborted after its grace ran out"
                    );
                    state.end(Err(ItemError::Interrupted));
                }
            }
            WorkerMsg::Finished(AttemptResult { generation, result }) => {
                if generation == state.generation {
                    state.end(result);
                }
            }
        }
        Ok(())
    }
}

impl ItemWorkerState {
    /// The running attempt, if it is attempt `attempt` of item `index`.
    fn current_attempt(&self, index: u32, attempt: u32) -> Option<&Current> {
        self.current
            .as_ref()
            .filter(|c| c.index == index && c.attempt == attempt)
    }

    fn run(&mut self, myself: &ActorRef<WorkerMsg>, attempt: Attempt) {
        let Attempt { item, ctx } = attempt;
        if let Some(busy) = &self.current {
            // The execution hands a worker one attempt at a time; refuse rather than lose one.
            tracing::error!(item_id = %busy.item_id, "worker is busy; attempt refused");
            let _ = self.execution.cast(ExecutionMsg::attempt_ended(
                ctx.index,
                ctx.attempt,
                AttemptEnd {
                    ending: Ending::Interrupted {
                        error: Some("internal error: worker was busy".to_owned()),
                    },
                    at_ms: now_ms(),
                    progress: ctx.control.checkpoint_progress(),
                    message: None,
                    applied: false,
                    checkpoint: ctx.control.take_checkpoint(),
                },
            ));
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        // At the default level, so what an item logs itself carries which attempt of
        // which item of which execution it is.
        let span = tracing::info_span!(
            "attempt",
            execution_id = %ctx.execution_id,
            item_id = %ctx.item_id,
            attempt = ctx.attempt
        );
        tracing::debug!(parent: &span, "attempt started");
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
            began: std::time::Instant::now(),
        });
    }

    /// Tells the execution how the attempt ended; the execution records it.
    fn end(&mut self, result: Result<Applied, ItemError>) {
        let Some(current) = self.current.take() else {
            return;
        };
        let control = &current.control;
        let (last_progress, message) = control.last();
        let (ending, progress) = match result {
            Ok(Applied { output, changed }) => (
                Ending::Done {
                    output: Arc::from(output),
                    changed,
                    clear_checkpoint: control.is_checkpointed(),
                },
                last_progress,
            ),
            // Unfinished: it resumes from its checkpoint, so that is the progress it has.
            Err(ItemError::Interrupted) => (
                Ending::Interrupted { error: None },
                control.checkpoint_progress(),
            ),
            // The store failed under it: it runs again on resume, from what is durable.
            Err(e @ ItemError::Store(_)) => (
                Ending::StoreFailed {
                    error: e.to_string(),
                },
                control.checkpoint_progress(),
            ),
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(
                    execution_id = %self.execution_id,
                    item_id = %current.item_id,
                    attempt = current.attempt,
                    error,
                    "attempt failed"
                );
                (Ending::Failed { error }, control.checkpoint_progress())
            }
        };
        let ran = current.began.elapsed();
        tracing::debug!(
            execution_id = %self.execution_id,
            item_id = %current.item_id,
            attempt = current.attempt,
            duration = %crate::model::human_millis(ran),
            ended = ending.name(),
            "attempt ended"
        );
        crate::metrics::attempt_ended(&ending, ran);
        let end = AttemptEnd {
            ending,
            at_ms: now_ms(),
            progress,
            message,
            applied: control.applied(),
            checkpoint: control.take_checkpoint(),
        };
        let _ = self.execution.cast(ExecutionMsg::attempt_ended(
            current.index,
            current.attempt,
            end,
        ));
    }
}
