//! An attempt's task: one attempt of one item, run in a tokio task its Execution owns. No
//! actor stands between them: an actor per worker cost two channels, a task and three
//! messages per item (a `Run`, a `Finished`, an `AttemptEnded`), and about 5 KB of heap
//! per worker while an execution ran (issue 27's profile); a task costs what the item's
//! own future costs, and its end in a queue (one message wakes the Execution for all the
//! ends queued meanwhile).
//!
//! ```text
//! Execution ──spawn──▶ attempt task: item.check / item.apply (ItemCtx)
//!     ▲                     │
//!     └── Ends ◀────────────┘ (how it ended, built by `ending`, queued; the first end
//!                              queued wakes the Execution, which records them all)
//!
//! Execution ──control.cancel()──▶ the item's next cancellation point sees it
//! Execution ──abort()──▶ the task ends at once; the Execution builds its end itself
//! ```
//!
//! `Cancel` tells the attempt to stop at its next cancellation point (through its
//! [`AttemptControl`]), `Abort` ends it at once (the Execution's core decides when, from
//! the interrupt's grace). Either way the item's last intra-item checkpoint is already
//! durable (`ItemCtx::checkpoint` returns only then), so a resume continues from it. A
//! panic in the item is caught and ends the attempt as failed; it never takes the
//! execution down. A [`RunningAttempt`] aborts its task when dropped, so no attempt
//! outlives its Execution, even one killed without running `post_stop`.
//!
//! What the attempt's `ItemCtx` sends out goes through the execution's `ExecutionPort`
//! (`port`): progress to the Execution, checkpoints and artifacts to the store.

mod port;

pub(crate) use port::ExecutionPort;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use ractor::ActorRef;
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::error::ItemError;
use crate::execution::{ExecutionMsg, Inbox};
use crate::model::{Applied, AttemptControl, CtxParts, DynItem, ExecutionId, ItemCtx, now_ms};
use crate::sched::run::{AttemptEnd, Ending};

/// How attempt `attempt` of item `index` ended, queued for its Execution.
#[derive(Debug)]
pub(crate) struct AttemptEnded {
    pub(crate) index: u32,
    pub(crate) attempt: u32,
    pub(crate) end: AttemptEnd,
}

/// Where an execution's attempt tasks queue their ends: one `AttemptsEnded` message wakes
/// the Execution for however many are queued (bounded by the attempts it runs at once).
pub(crate) type Ends = Inbox<AttemptEnded>;

/// An attempt that runs: what its Execution keeps of it.
pub(crate) struct RunningAttempt {
    /// The attempt's number.
    pub(crate) attempt: u32,
    /// How it is told to stop; holds the item's latest checkpoint while it runs.
    pub(crate) control: Arc<AttemptControl>,
    item_id: Arc<str>,
    task: AbortOnDrop,
    /// When it started, for the log's duration.
    began: Instant,
}

impl std::fmt::Debug for RunningAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningAttempt")
            .field("item_id", &self.item_id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// An attempt's task, aborted when the Execution lets go of the attempt (a no-op once the
/// task has ended).
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningAttempt {
    /// Starts attempt `ctx.attempt` of `item` in a task of its own; the task queues how it
    /// ended in `ends` and wakes `execution` if it is the first there.
    pub(crate) fn spawn(
        item: Arc<dyn DynItem>,
        ctx: CtxParts,
        ends: Arc<Ends>,
        execution: ActorRef<ExecutionMsg>,
    ) -> RunningAttempt {
        // At the default level, so what an item logs itself carries which attempt of
        // which item of which execution it is.
        let span = tracing::info_span!(
            "attempt",
            execution_id = %ctx.execution_id,
            item_id = %ctx.item_id,
            attempt = ctx.attempt
        );
        tracing::debug!(parent: &span, "attempt started");
        let (execution_id, index, item_id, attempt, control) = (
            ctx.execution_id,
            ctx.index,
            ctx.item_id.clone(),
            ctx.attempt,
            ctx.control.clone(),
        );
        let began = Instant::now();
        let task = {
            let (item_id, control) = (item_id.clone(), control.clone());
            tokio::spawn(
                async move {
                    let mut cx = ItemCtx::new(ctx);
                    let result = AssertUnwindSafe(item.run(&mut cx))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|panic| Err(ItemError::Panicked(panic_message(panic))));
                    drop(cx);
                    let end = ending(execution_id, &item_id, attempt, &control, began, result);
                    // Let go before the end is queued: the Execution keeps the control
                    // for a later attempt only if nothing else holds it.
                    drop(control);
                    if ends.push(AttemptEnded {
                        index,
                        attempt,
                        end,
                    }) {
                        // If the execution is gone it was stopped; nobody waits.
                        let _ = execution.cast(ExecutionMsg::attempts_ended());
                    }
                }
                .instrument(span),
            )
        };
        RunningAttempt {
            attempt,
            control,
            item_id,
            task: AbortOnDrop(task.abort_handle()),
            began,
        }
    }

    /// Whether its task has ended (its end is then queued for the Execution).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.0.is_finished()
    }

    /// Its task's id in the process, for the live tree.
    pub(crate) fn task_id(&self) -> tokio::task::Id {
        self.task.0.id()
    }

    /// Lets go of it (its task is aborted if it still runs), keeping its control.
    pub(crate) fn into_control(self) -> Arc<AttemptControl> {
        self.control
    }

    /// Ends it at once, after its grace ran out: its task is aborted and its end is
    /// `interrupted`, from its last durable checkpoint. The task's own end, if it got as
    /// far, is not asked for: the Execution drops an end of an attempt it no longer runs.
    pub(crate) fn abort(self, execution_id: ExecutionId) -> AttemptEnd {
        self.task.0.abort();
        tracing::info!(
            %execution_id,
            item_id = %self.item_id,
            attempt = self.attempt,
            "attempt aborted after its grace ran out"
        );
        ending(
            execution_id,
            &self.item_id,
            self.attempt,
            &self.control,
            self.began,
            Err(ItemError::Interrupted),
        )
    }
}

/// How an attempt ended, as the Execution records it: from the item's result and what its
/// control holds (its last progress, its checkpoint, whether it may have applied).
fn ending(
    execution_id: ExecutionId,
    item_id: &str,
    attempt: u32,
    control: &AttemptControl,
    began: Instant,
    result: Result<Applied, ItemError>,
) -> AttemptEnd {
    let (last_progress, message) = control.last();
    let (ending, progress) = match result {
        Ok(Applied { output, changed }) => (
            Ending::Done {
                output,
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
                %execution_id,
                item_id,
                attempt,
                error,
                "attempt failed"
            );
            (Ending::Failed { error }, control.checkpoint_progress())
        }
    };
    let ran = began.elapsed();
    tracing::debug!(
        %execution_id,
        item_id,
        attempt,
        duration = %crate::model::human_millis(ran),
        ended = ending.name(),
        "attempt ended"
    );
    crate::metrics::attempt_ended(&ending, ran);
    AttemptEnd {
        ending,
        at_ms: now_ms(),
        progress,
        message,
        applied: control.applied(),
        checkpoint: control.take_checkpoint(),
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
