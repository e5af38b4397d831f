//! An item's state in the core, how an attempt ends, and where an attempt in flight stands.

use std::sync::Arc;
use std::time::Instant;

use crate::model::{
    ATTEMPTS_KEPT, AttemptOutcome, Checkpoint, ItemState, ItemStatus, PastAttempt, Progress,
};

impl ItemState {
    /// Keeps attempt `attempt`'s end in the history, dropping the oldest past
    /// [`ATTEMPTS_KEPT`].
    pub(super) fn ended(
        &mut self,
        attempt: u32,
        ended_ms: u64,
        outcome: AttemptOutcome,
        error: Option<String>,
    ) {
        if self.history.len() >= ATTEMPTS_KEPT {
            self.history.remove(0);
        }
        self.history.push(PastAttempt {
            attempt,
            started_ms: self.started_ms.take(),
            ended_ms,
            outcome,
            error,
        });
    }
}

impl super::Run {
    /// The shell started attempt `attempt` of item `index` at `at_ms` (its wall clock, ms
    /// since the Unix epoch): kept for reports and the attempt's history, never for a
    /// decision.
    pub(crate) fn attempt_began(&mut self, index: u32, attempt: u32, at_ms: u64) {
        if let Some(item) = self.items.get_mut(index as usize)
            && item.attempts == attempt
        {
            item.started_ms = Some(at_ms);
        }
    }
}

/// How an attempt ended, as its task reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    /// It returned its output; `changed` unless `check` found nothing to do;
    /// `clear_checkpoint` when a checkpoint of it may be stored.
    Done {
        output: Arc<[u8]>,
        changed: bool,
        clear_checkpoint: bool,
    },
    /// It stopped at a cancellation point, was aborted, or could not be run.
    Interrupted { error: Option<String> },
    /// It returned an error or panicked.
    Failed { error: String },
    /// The store could not make its checkpoint durable. Not the item's fault: it is
    /// interrupted (and runs again on resume), and, as after a failed commit, nothing new
    /// starts: the store may lack records.
    StoreFailed { error: String },
}

impl Ending {
    /// How it ended, in a word (for logs).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Ending::Done { .. } => "done",
            Ending::Interrupted { .. } => "interrupted",
            Ending::Failed { .. } => "failed",
            Ending::StoreFailed { .. } => "store_failed",
        }
    }
}

/// An attempt's end with what it last reported.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AttemptEnd {
    pub(crate) ending: Ending,
    /// When it ended, ms since the Unix epoch (the shell's clock; kept with errors).
    pub(crate) at_ms: u64,
    /// The item's progress now: the last reported when done, the progress of its last
    /// durable checkpoint otherwise.
    pub(crate) progress: Option<Progress>,
    pub(crate) message: Option<Arc<str>>,
    /// `apply` began (so it may have changed something, however the attempt ended); true
    /// when that is not known.
    pub(crate) applied: bool,
    /// The item's latest durable checkpoint as the attempt ends: the one it was started
    /// with, or the last it saved. The item's next attempt resumes from it.
    pub(crate) checkpoint: Option<Checkpoint>,
}

/// Whether an attempt in flight has been told to stop.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) enum Cancel {
    #[default]
    No,
    /// Stop at the next cancellation point; abort at `abort_at` if set.
    Asked { abort_at: Option<Instant> },
    /// The abort has been sent.
    Aborted,
}

impl Cancel {
    /// Asked to stop, aborting at the earlier of the deadlines.
    pub(super) fn ask(self, abort_at: Option<Instant>) -> Cancel {
        match self {
            Cancel::No => Cancel::Asked { abort_at },
            Cancel::Asked { abort_at: current } => Cancel::Asked {
                abort_at: match (current, abort_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            },
            Cancel::Aborted => Cancel::Aborted,
        }
    }

    pub(super) fn abort_at(self) -> Option<Instant> {
        match self {
            Cancel::Asked { abort_at } => abort_at,
            _ => None,
        }
    }
}

/// Where an item's attempt stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) enum Phase {
    /// No attempt in flight.
    #[default]
    Idle,
    /// Waiting for its semaphores ([`Effect::Acquire`](super::Effect::Acquire) `ticket`);
    /// `counted` when an interrupt's allowance paid for it (given back if it is withdrawn).
    Acquiring { ticket: u64, counted: bool },
    /// Waiting for a rate-limit token (its own, or the runtime's named limiters').
    Throttled { counted: bool },
    /// Its start record is in a commit not yet durable; `before` is the status to go back
    /// to if that commit fails.
    Starting {
        attempt: u32,
        before: ItemStatus,
        cancel: Cancel,
    },
    Running {
        attempt: u32,
        cancel: Cancel,
        /// Past it the attempt is cancelled and counts as failed.
        timeout_at: Option<Instant>,
        timed_out: bool,
    },
    /// Ended as `status`; its record is in a commit not yet durable. A failure to retry
    /// waits until `retry_at` once it is.
    Ending {
        status: ItemStatus,
        retry_at: Option<Instant>,
    },
    /// Failed; its retry may start at `until`.
    Waiting { until: Instant },
}
