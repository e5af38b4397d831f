//! Restart intensity: an Execution actor that fails (a bug in it, not an item's failure,
//! which its attempts' tasks contain) is restarted from its durable state; one failure more than
//! `max_restarts` within `restart_window` pauses the execution instead, durably and with
//! the reason, until someone resumes it. The Supervisor itself never fails with a child.

use std::time::Instant;

use ractor::{ActorId, ActorRef};

use crate::error::RuntimeError;
use crate::execution::ExecutionMsg;
use crate::model::{ExecutionId, ExecutionStatus, now_ms};
use crate::supervisor::start::Restart;
use crate::supervisor::{
    Internal, Reply, StartReply, SupervisorInternal, SupervisorMsg, SupervisorState,
};

impl SupervisorState {
    /// The Execution actor `actor` failed with `reason`.
    pub(super) fn execution_failed(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        actor: ActorId,
        reason: String,
    ) {
        let Some(id) = self.entries.of_actor(actor) else {
            return;
        };
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.actor = None;
        entry.status = ExecutionStatus::Interrupted;
        entry.updated_ms = now_ms();
        entry.killed_attempts = true;
        // Whatever its items held or waited for goes back: none of them runs any more.
        self.semaphores.release_execution(id);
        if self.stopping {
            // Its record still says running: the next start resumes it.
            tracing::error!(execution_id = %id, %reason, "execution actor failed while stopping");
            return self.answer_waiters_from_store(id);
        }
        let now = Instant::now();
        let window = self.settings.restart_window;
        entry
            .restarts
            .retain(|&at| now.saturating_duration_since(at) < window);
        entry.restarts.push_back(now);
        let failures = entry.restarts.len();
        if failures as u64 > u64::from(self.settings.max_restarts) {
            let why = format!(
                "the execution actor failed {failures} times within {}; last failure: {reason}",
                humantime::format_duration(window)
            );
            tracing::error!(execution_id = %id, reason = %why, "execution paused");
            return self.pause(myself, id, why);
        }
        tracing::error!(execution_id = %id, %reason, failures, "execution actor failed; restarting it from its durable state");
        // Waiters keep waiting: the restarted execution answers them when it ends.
        self.recovering += 1;
        self.restart(
            myself,
            id,
            Restart::AfterFailure,
            StartReply::Recover { tries: 0 },
        );
    }

    /// Writes execution `id` as paused with `reason`; nothing else may start it meanwhile.
    fn pause(&mut self, myself: &ActorRef<SupervisorMsg>, id: ExecutionId, reason: String) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.starting = true;
        }
        let store = self.store.clone();
        let myself = myself.clone();
        tokio::spawn(async move {
            let result = async {
                // What the failed actor sent is durable before its record is read back.
                store.flush().await?;
                let mut stored = store.load_execution(id).await?;
                let mut ops = stored.settle_killed();
                stored.record.status = ExecutionStatus::Paused;
                // Not counted here: the next start counts from the item records.
                stored.record.items_done = None;
                stored.record.reason = Some(reason.clone());
                stored.record.resume_on_start = false;
                stored.record.updated_ms = now_ms();
                ops.push(stored.record.change(false));
                store.commit(ops).await?;
                Ok::<_, RuntimeError>(reason)
            }
            .await;
            drop(store);
            let msg = Internal::Paused { id, result };
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(msg)));
        });
    }

    /// The pause record of `id` is durable, or could not be written.
    pub(super) fn paused(&mut self, id: ExecutionId, result: Result<String, RuntimeError>) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.starting = false;
        entry.updated_ms = now_ms();
        // Interrupts that came meanwhile were answered: it is not running. A later resume
        // must not apply them.
        entry.pending_interrupts.clear();
        match result {
            Ok(reason) => {
                // The pause record holds the killed attempts as interrupted.
                entry.killed_attempts = false;
                entry.status = ExecutionStatus::Paused;
                entry.problem = Some(reason);
            }
            Err(e) => {
                // Its record still says running: the next start resumes it.
                tracing::error!(execution_id = %id, error = %e, "cannot record the pause");
                entry.status = ExecutionStatus::Interrupted;
                entry.problem = Some(format!("cannot record the pause: {e}"));
            }
        }
        self.answer_pending(id);
    }

    /// Fails `id`'s actor as a bug in it would (`SupervisorMsg::FailExecution`), to
    /// exercise the restart intensity.
    pub(super) fn fail_execution(&mut self, id: ExecutionId, reason: String, reply: Reply<()>) {
        let result = match self.entry(id) {
            Ok(entry) => match &entry.actor {
                Some(actor) => actor
                    .cast(ExecutionMsg::Fail(reason))
                    .map_err(|e| RuntimeError::Actor(e.to_string())),
                None => Err(RuntimeError::InvalidState {
                    id,
                    action: "fail",
                    status: entry.status,
                }),
            },
            Err(e) => Err(e),
        };
        let _ = reply.send(result);
    }
}
