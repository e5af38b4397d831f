//! Cancel: an execution ended for good on request. A running (or starting) one is halted
//! like a pause and ends `cancelled` once nothing runs; an interrupted or paused one is
//! written `cancelled` at once; a finished one cannot be.

use ractor::ActorRef;

use crate::error::RuntimeError;
use crate::execution::Halt;
use crate::model::{Event, ExecutionId, ExecutionStatus, InterruptStrategy, ItemStatus, now_ms};
use crate::supervisor::{Internal, Reply, SupervisorInternal, SupervisorMsg, SupervisorState};

impl SupervisorState {
    /// Cancels `id`, answering once the cancel is durable.
    pub(super) fn cancel(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        strategy: InterruptStrategy,
        reply: Reply<()>,
    ) {
        if self.stopping {
            let _ = reply.send(Err(RuntimeError::ShuttingDown));
            return;
        }
        let entry = match self.entry(id) {
            Ok(entry) => entry,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if entry.is_live() {
            return self.halt(myself, id, Halt::Cancel(strategy), reply);
        }
        match entry.status {
            ExecutionStatus::Interrupted | ExecutionStatus::Paused => {}
            status => {
                let _ = reply.send(Err(RuntimeError::InvalidState {
                    id,
                    action: "cancel",
                    status,
                }));
                return;
            }
        }
        // Nothing else starts it while its record is written.
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.starting = true;
        }
        let store = self.store.clone();
        let myself = myself.clone();
        tokio::spawn(async move {
            let result = async {
                let mut stored = store.load_execution(id).await?;
                // Attempts a failed actor left reading as running end interrupted.
                let mut ops = stored.settle_killed();
                let done = stored
                    .items
                    .iter()
                    .flatten()
                    .filter(|i| i.status == ItemStatus::Done)
                    .count();
                let record = &mut stored.record;
                record.status = ExecutionStatus::Cancelled;
                record.items_done = Some(done as u64);
                record.reason = None;
                record.resume_on_start = false;
                record.pausing = false;
                record.cancelling = false;
                record.updated_ms = now_ms();
                ops.push(record.change(false));
                store.commit(ops).await?;
                Ok::<_, RuntimeError>(())
            }
            .await;
            drop(store);
            let msg = Internal::Cancelled { id, result, reply };
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(msg)));
        });
    }

    /// The cancelled record of `id`, which was not running, is durable, or could not be
    /// written (then it stands as it was).
    pub(super) fn cancelled(
        &mut self,
        id: ExecutionId,
        result: Result<(), RuntimeError>,
        reply: Reply<()>,
    ) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.starting = false;
            entry.pending_interrupts.clear();
            if result.is_ok() {
                entry.status = ExecutionStatus::Cancelled;
                entry.updated_ms = now_ms();
                entry.problem = None;
                entry.killed_attempts = false;
                entry.halting = None;
            }
        }
        match &result {
            Ok(()) => {
                tracing::info!(execution_id = %id, "execution cancelled");
                crate::metrics::execution_ended(ExecutionStatus::Cancelled);
                let _ = self.events.send(Event::Execution {
                    execution: id,
                    status: ExecutionStatus::Cancelled,
                });
            }
            Err(e) => tracing::error!(execution_id = %id, error = %e, "cannot record the cancel"),
        }
        let _ = reply.send(result);
        self.answer_pending(id);
    }
}
