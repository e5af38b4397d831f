//! The end of an execution: its final record is durable (or is known not to be); the
//! Supervisor and the callers of `Stop` are told, and the actor stops.

use ractor::ActorRef;

use crate::error::StoreError;
use crate::execution::{ExecutionMsg, ExecutionState, STOPPED_BY_STORE};
use crate::model::{Event, ExecutionReport, ExecutionStatus};
use crate::supervisor::{Ended, SupervisorMsg};

impl ExecutionState {
    /// The final record is durable (or `error` says why not): tell the supervisor and the
    /// Stop callers, then stop.
    pub(super) fn end(
        &mut self,
        myself: &ActorRef<ExecutionMsg>,
        status: ExecutionStatus,
        error: Option<String>,
    ) {
        self.finished = true;
        // Nothing runs or waits any more, so this holds no permit; said once more in case.
        self.semaphores.release_execution(self.record.id);
        self.record.status = status;
        if let Some(error) = &error {
            tracing::error!(execution_id = %self.id(), error, "cannot write the execution record");
        }
        tracing::info!(execution_id = %self.id(), %status, "execution ended");
        crate::metrics::execution_ended(status);
        let _ = self.events.send(Event::Execution {
            execution: self.record.id,
            status,
        });
        let reason = self
            .store_error
            .as_ref()
            // Said on the execution until it runs again (summary `error`, report `reason`).
            .map(|e| format!("{STOPPED_BY_STORE}: {e}"));
        if let Some(supervisor) = &self.supervisor {
            let _ = supervisor.cast(SupervisorMsg::execution_ended(Ended {
                id: self.record.id,
                status,
                reason: reason.clone(),
                updated_ms: self.record.updated_ms,
                outcome: self.outcome(),
            }));
        }
        for reply in self.late_interrupts.drain(..) {
            let _ = reply.send(false);
        }
        // (Every pause's commit came before the final record's; none is left, but if one
        // were, the final status says whether it held.)
        for reply in self.pause_replies.drain(..).flatten() {
            let _ = reply.send(status == ExecutionStatus::Paused);
        }
        let durable = match error {
            None => Ok(()),
            Some(error) => Err(self
                .store_error
                .clone()
                .unwrap_or(StoreError::Commit(error))),
        };
        // The full report, built once, only if a `Stop` asked for it. The Supervisor, a
        // shutdown and the waiters need the outcome or the status: one id per item, where
        // the report copies each item's params, output and attempts (at the end of 10,000
        // items, milliseconds that every waiter waited).
        let mut report = None;
        for reply in std::mem::take(&mut self.stop_replies) {
            reply.send(&durable, status, || {
                report
                    .get_or_insert_with(|| ExecutionReport {
                        reason: reason.clone(),
                        ..self.report()
                    })
                    .clone()
            });
        }
        myself.stop(None);
    }
}
