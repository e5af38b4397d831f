//! An Execution's end as the Supervisor hears it: what its entry keeps and what its
//! waiters are told, and nothing more (the full report of a large execution is costly to
//! build, and no one here reads it).

use crate::model::{ExecutionId, ExecutionStatus, Outcome};

use super::SupervisorState;

/// An Execution ended: its final record is durable, or is known not to be.
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) id: ExecutionId,
    pub(crate) status: ExecutionStatus,
    /// Why it stopped short, if the store stopped it (the summary's `error`).
    pub(crate) reason: Option<String>,
    /// When its final record was written, in ms since the epoch.
    pub(crate) updated_ms: u64,
    /// Its items by how they ended, for its waiters.
    pub(crate) outcome: Outcome,
}

impl SupervisorState {
    pub(super) fn ended(&mut self, end: Ended) {
        let Ended {
            id,
            status,
            reason,
            updated_ms,
            outcome,
        } = end;
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.actor = None;
            entry.status = status;
            entry.problem = reason;
            entry.updated_ms = updated_ms;
        }
        let mut waiters = self.waiters.remove(&id).unwrap_or_default();
        // Reads (status, counts, listing) say it ended before its waiters hear of it.
        self.publish();
        // The last waiter takes the outcome; the others get copies.
        if let Some(last) = waiters.pop() {
            for waiter in waiters {
                let _ = waiter.send(Ok(outcome.clone()));
            }
            let _ = last.send(Ok(outcome));
        }
    }
}
