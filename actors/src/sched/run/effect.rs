//! What the core asks its shell to do.

use std::sync::Arc;

use crate::model::{Checkpoint, ExecutionStatus, ItemStatus, Progress, Write};

/// Something the shell must do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// Write these records in one durable transaction, then call [`Run::committed`] with
    /// `id` and the result. Commits complete in the order they are issued.
    Commit { id: u64, writes: Vec<Write> },
    /// Take item `index`'s semaphores for its next attempt, then call [`Run::granted`]
    /// with `ticket` once it holds them all (at once, or when someone releases).
    Acquire { index: u32, ticket: u64 },
    /// Give back what item `index` holds or waits for under `ticket`.
    Release { index: u32, ticket: u64 },
    /// Take a token for item `index` from every named limiter it falls under, all or
    /// none, then call [`Run::taken`] with the result (or when they will have one).
    Take { index: u32 },
    /// Start attempt `attempt` of item `index`, resuming from `resume`, the item's latest
    /// durable checkpoint (the attempt's end hands back the latest it holds then).
    Start {
        index: u32,
        attempt: u32,
        resume: Option<Checkpoint>,
    },
    /// Ask the attempt to stop at its next cancellation point.
    Cancel { index: u32, attempt: u32 },
    /// Abort the attempt now; it then ends as interrupted.
    Abort { index: u32, attempt: u32 },
    /// The oldest pause or cancel request not answered yet is durable (or its commit
    /// failed).
    HaltRecorded { durable: bool },
    /// Tell subscribers what changed.
    Publish(Publish),
    /// The execution is over; its final record is durable unless `error` says otherwise.
    Ended {
        status: ExecutionStatus,
        error: Option<String>,
    },
}

/// An event for subscribers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Publish {
    /// An item's status changed.
    Item { index: u32, status: ItemStatus },
    /// An item reported progress.
    Progress {
        index: u32,
        progress: Progress,
        message: Option<Arc<str>>,
    },
}
