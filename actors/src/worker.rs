//! The ItemWorker actor: runs one attempt of one item.
//!
//! ```text
//! Execution ──spawn_linked──▶ ItemWorker ──tokio task──▶ item.check / item.apply (ItemCtx)
//!                                  │  ◀── Finished(result) ──┘
//!                                  ├── writes the ItemRecord (Done / Interrupted / Failed),
//!                                  │   waits until it is durable
//!                                  └── AttemptEnded ──▶ Execution, then stops
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

/// What an ItemWorker needs to run one attempt; built by the Execution actor.
pub struct ItemWorkerArgs {
    pub(crate) item: Arc<dyn DynItem>,
    pub(crate) ctx: CtxParts,
}

impl std::fmt::Debug for ItemWorkerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemWorkerArgs")
            .field("item_id", &self.ctx.item_id)
            .finish_non_exhaustive()
    }
}

/// Messages an ItemWorker handles.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Stop the attempt at its next cancellation point; abort it after `abort_after` if it
    /// has not stopped by then.
    Stop {
        /// Grace before the attempt is aborted; `None` waits for the cancellation point.
        abort_after: Option<Duration>,
    },
    /// Internal: the attempt task ended.
    #[doc(hidden)]
    Finished(AttemptResult),
    /// Internal: the grace of a `Stop` ran out.
    #[doc(hidden)]
    Abort,
}

/// The result of an attempt task (internal).
#[doc(hidden)]
#[derive(Debug)]
pub struct AttemptResult(Result<Vec<u8>, ItemError>);

/// The ItemWorker's state.
pub struct ItemWorkerState {
    execution_id: ExecutionId,
    index: u32,
    item_id: Arc<str>,
    attempt: u32,
    control: Arc<AttemptControl>,
    writer: Writer,
    execution: ActorRef<ExecutionMsg>,
    task: AbortHandle,
    ended: bool,
}

impl std::fmt::Debug for ItemWorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemWorkerState")
            .field("execution_id", &self.execution_id)
            .field("item_id", &self.item_id)
            .field("attempt", &self.attempt)
            .field("ended", &self.ended)
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
        myself: ActorRef<WorkerMsg>,
        args: ItemWorkerArgs,
    ) -> Result<ItemWorkerState, ActorProcessingErr> {
        let ItemWorkerArgs { item, ctx } = args;
        let (execution_id, index, item_id, attempt) = (
            ctx.execution_id,
            ctx.index,
            ctx.item_id.clone(),
            ctx.attempt,
        );
        let (control, writer, execution) = (
            ctx.control.clone(),
            ctx.writer.clone(),
            ctx.execution.clone(),
        );
        let span = tracing::debug_span!(
            "attempt",
            execution_id = %ctx.execution_id,
            item_id = %ctx.item_id,
            attempt = ctx.attempt
        );
        let task = tokio::spawn(
            async move {
                let mut cx = ItemCtx::new(ctx);
                let result = AssertUnwindSafe(item.run(&mut cx))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(ItemError::Panicked(panic_message(panic))));
                // If the worker is gone it was killed with its execution; nobody waits.
                let _ = myself.cast(WorkerMsg::Finished(AttemptResult(result)));
            }
            .instrument(span),
        );
        Ok(ItemWorkerState {
            execution_id,
            index,
            item_id,
            attempt,
            control,
            writer,
            execution,
            task: task.abort_handle(),
            ended: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut ItemWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Stop { abort_after } => {
                state.control.cancel();
                if let Some(grace) = abort_after {
                    myself.send_after(grace, || WorkerMsg::Abort);
                }
            }
            WorkerMsg::Abort => {
                if !state.ended {
                    state.task.abort();
                    tracing::info!(
                        execution_id = %state.execution_id,
                        item_id = %state.item_id,
                        "attempt aborted after its grace ran out"
                    );
                    end(&myself, state, Err(ItemError::Interrupted)).await;
                }
            }
            WorkerMsg::Finished(AttemptResult(result)) => {
                if !state.ended {
                    end(&myself, state, result).await;
                }
            }
        }
        Ok(())
    }
}

/// Records how the attempt ended, durably, tells the execution, and stops the worker.
async fn end(
    myself: &ActorRef<WorkerMsg>,
    state: &mut ItemWorkerState,
    result: Result<Vec<u8>, ItemError>,
) {
    state.ended = true;
    let (progress, message) = state.control.last();
    let (status, output, error) = match result {
        Ok(output) => (ItemStatus::Done, Some(output), None),
        Err(ItemError::Interrupted) => (ItemStatus::Interrupted, None, None),
        Err(e) => (ItemStatus::Failed, None, Some(e.to_string())),
    };
    let record = ItemRecord {
        v: RECORD_VERSION,
        status,
        attempts: state.attempt,
        output,
        error,
        progress,
        message: message.as_deref().map(str::to_owned),
    };
    let end = match crate::store::encode(&record) {
        Err(e) => AttemptEnd::failed(format!("cannot record the attempt: {e}")),
        Ok(bytes) => {
            let mut ops = Vec::with_capacity(2);
            ops.push(Op::Item {
                id: state.execution_id,
                index: state.index,
                record: bytes,
            });
            if status == ItemStatus::Done {
                ops.push(Op::ClearCheckpoint {
                    id: state.execution_id,
                    index: state.index,
                });
            }
            match state.writer.commit(ops).await {
                Ok(()) => AttemptEnd {
                    status,
                    output: record.output.map(Arc::from),
                    error: record.error,
                },
                Err(e) => AttemptEnd::failed(format!("cannot record the attempt: {e}")),
            }
        }
    };
    if status == ItemStatus::Failed {
        tracing::warn!(
            execution_id = %state.execution_id,
            item_id = %state.item_id,
            error = end.error.as_deref().unwrap_or(""),
            "attempt failed"
        );
    }
    let _ = state
        .execution
        .cast(ExecutionMsg::attempt_ended(state.index, end));
    myself.stop(None);
}
