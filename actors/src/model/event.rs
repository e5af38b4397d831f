//! Events published while executions run; [`subscribe`](crate::SupervisorMsg::Subscribe) to
//! receive them.

use std::sync::Arc;

use serde::Serialize;

use crate::model::{
    ExecutionId, ExecutionStatus, ItemStatus, LifecycleEvent, Progress, StopResult,
};

/// Something that changed. Later versions may add variants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// An execution's status changed.
    Execution {
        /// The execution.
        execution: ExecutionId,
        /// Its new status.
        status: ExecutionStatus,
    },
    /// An item's status changed.
    Item {
        /// The execution.
        execution: ExecutionId,
        /// The item's id.
        item: Arc<str>,
        /// Its new status.
        status: ItemStatus,
    },
    /// An item reported progress.
    Progress {
        /// The execution.
        execution: ExecutionId,
        /// The item's id.
        item: Arc<str>,
        /// How far it is.
        progress: Progress,
        /// Its message, if it sent one.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<Arc<str>>,
    },
    /// A shutdown stopped an execution that was live when it began: published once every
    /// execution has stopped (or been abandoned), before the flush is asked for.
    ExecutionStopped {
        /// The execution.
        execution: ExecutionId,
        /// How it came out: `checkpointed` (the next start resumes it), `completed` (it
        /// ran to its end first) or `abandoned` (its last durable records stand).
        result: StopResult,
        /// Its status once stopped.
        status: ExecutionStatus,
        /// Why it was abandoned.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Something in the life of the runtime (startup, shutdown, maintenance, health).
    Lifecycle {
        /// The event, named by its `kind`.
        event: Arc<LifecycleEvent>,
    },
    /// This subscriber fell behind and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
}
