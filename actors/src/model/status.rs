//! Status values of executions and items, as stored and as reported.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an execution stands. Stored in records: variants are never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExecutionStatus {
    /// Items are running or about to.
    Running,
    /// Stopped before finishing (interrupt, shutdown or crash); it can be resumed.
    Interrupted,
    /// Every item is done.
    Completed,
    /// An item failed; its dependents and later blocks were skipped.
    Failed,
    /// Its records cannot be decoded; it is listed but cannot run.
    Corrupt,
    /// Stopped by the runtime, with a reason (its Execution actor failed more often than
    /// the restart intensity allows). Nothing runs until someone resumes it; a start of
    /// the runtime does not.
    Paused,
    /// Ended for good on request (`cancel`): what ran was interrupted, and nothing runs
    /// again. Retention and deletion treat it as finished.
    Cancelled,
}

impl ExecutionStatus {
    /// The lower-case name used on the wire (`running`, `interrupted`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Interrupted => "interrupted",
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Corrupt => "corrupt",
            ExecutionStatus::Paused => "paused",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the execution will never run again (completed, failed, cancelled or
    /// corrupt).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Completed
                | ExecutionStatus::Failed
                | ExecutionStatus::Cancelled
                | ExecutionStatus::Corrupt
        )
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one item stands. Stored in records: variants are never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemStatus {
    /// Not started yet.
    #[default]
    Pending,
    /// An attempt is running.
    Running,
    /// Applied (or found already in its goal state); its output is stored.
    Done,
    /// Stopped by an interrupt; resumes from its intra-item checkpoint.
    Interrupted,
    /// Its attempt failed.
    Failed,
    /// An attempt failed and a retry is due once its wait is over.
    Retrying,
    /// Not run because a dependency or an earlier block failed.
    Skipped,
}

impl ItemStatus {
    /// The lower-case name used on the wire (`pending`, `running`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::Running => "running",
            ItemStatus::Done => "done",
            ItemStatus::Interrupted => "interrupted",
            ItemStatus::Failed => "failed",
            ItemStatus::Skipped => "skipped",
            ItemStatus::Retrying => "retrying",
        }
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a running execution is stopping, once someone asked it to: shown in place of
/// `running` until it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Halting {
    /// Interrupted: it stops as its strategy allows, then stands `interrupted`.
    Interrupting,
    /// Paused: it stops as its strategy allows, then stands `paused`.
    Pausing,
    /// Cancelled: it stops as its strategy allows, then stands `cancelled` for good.
    Cancelling,
}

impl Halting {
    /// The lower-case name used on the wire (`interrupting`, `pausing`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Halting::Interrupting => "interrupting",
            Halting::Pausing => "pausing",
            Halting::Cancelling => "cancelling",
        }
    }
}

/// How an attempt ended. Stored in records: variants are never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It returned an error, panicked or timed out (records from before outcomes were
    /// kept hold only failures: this is the default).
    #[default]
    Failed,
    /// It succeeded.
    Done,
    /// It was stopped by an interrupt, a shutdown or a store failure.
    Interrupted,
}

impl AttemptOutcome {
    /// The lower-case name used on the wire (`failed`, `done`, `interrupted`).
    pub fn as_str(&self) -> &'static str {
        match self {
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Done => "done",
            AttemptOutcome::Interrupted => "interrupted",
        }
    }
}

/// How the `reason` of an execution that a failed store write stopped begins (the rest is
/// the store's error). It stays until the execution runs again.
pub const STOPPED_BY_STORE: &str = "stopped because a store write failed";
