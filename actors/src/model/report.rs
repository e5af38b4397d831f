//! What the runtime reports about an execution: a summary for lists, a full report with
//! every item, and per-item progress.

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::{AttemptOutcome, ExecutionId, ExecutionStatus, Halting, ItemStatus, Outcome};

/// How far an item's current attempt is, as the item reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// One line of a listing (`Catalog::page`): an execution without its items.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSummary {
    /// The execution.
    pub id: ExecutionId,
    /// The plan's name.
    pub name: String,
    /// Its status.
    pub status: ExecutionStatus,
    /// Number of items.
    pub items_total: usize,
    /// Number of items done.
    pub items_done: usize,
    /// How much of its running items' work is done, in items, as their reported progress
    /// says (1.5: one and a half items' worth); 0 when none runs.
    pub running_progress: f64,
    /// When it was submitted.
    pub created: SystemTime,
    /// When its status last changed, or one of its items last ended.
    pub updated: SystemTime,
    /// Why it is corrupt, when it is.
    pub error: Option<String>,
    /// Still running, but told to stop: interrupting, pausing or cancelling.
    pub halting: Option<Halting>,
}

/// Everything known about one item of an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemReport {
    /// The item's id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its params, as the plan gave them.
    pub params: serde_json::Value,
    /// The ids of the items it runs after, as the plan gave them.
    pub after: Vec<String>,
    /// Its status.
    pub status: ItemStatus,
    /// Attempts started so far (across restarts).
    pub attempts: u32,
    /// The last progress its current or last attempt reported.
    pub progress: Option<Progress>,
    /// The last message its current or last attempt reported.
    pub message: Option<String>,
    /// Its output (msgpack), once done.
    pub output: Option<Vec<u8>>,
    /// Once done: whether it changed something (`false` when its `check` found the goal
    /// state already held and no attempt of it had begun `apply` since it last
    /// succeeded).
    pub changed: Option<bool>,
    /// A refresh from a `notify` dependency is pending: its next attempt sees
    /// `ItemCtx::refresh`.
    pub refresh: bool,
    /// Why its last attempt failed.
    pub error: Option<String>,
    /// Its last few failed attempts, oldest first.
    pub errors: Vec<AttemptError>,
    /// When the attempt in flight started, while one runs.
    pub running_since: Option<SystemTime>,
    /// Its last [`ATTEMPTS_KEPT`](crate::ATTEMPTS_KEPT) ended attempts, oldest first. An
    /// attempt number up to `attempts` missing here has no end recorded: the process
    /// stopped under it, its start never became durable, or it is older than those kept.
    pub history: Vec<AttemptReport>,
}

/// How many ended attempts an item's record keeps (the newest).
pub const ATTEMPTS_KEPT: usize = 10;

/// One ended attempt of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// The attempt's number.
    pub attempt: u32,
    /// When it started; `None` when not known (it never started, or a build
    /// that did not keep starts ran it).
    pub started: Option<SystemTime>,
    /// When it ended.
    pub ended: SystemTime,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Why it failed or was interrupted, when it says.
    pub error: Option<String>,
}

/// A failed attempt of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// The attempt's number.
    pub attempt: u32,
    /// When it ended.
    pub at: std::time::SystemTime,
    /// Why it failed.
    pub error: String,
}

/// The failed attempts of `history`, as [`ItemReport::errors`] lists them.
pub(crate) fn errors_of(history: &[AttemptReport]) -> Vec<AttemptError> {
    history
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::Failed)
        .map(|a| AttemptError {
            attempt: a.attempt,
            at: a.ended,
            error: a.error.clone().unwrap_or_default(),
        })
        .collect()
}

impl ItemReport {
    /// Decodes the output into `T`; `None` when there is no output or it does not decode.
    pub fn output_as<T: DeserializeOwned>(&self) -> Option<T> {
        self.output
            .as_deref()
            .and_then(|bytes| rmp_serde::from_slice(bytes).ok())
    }

    /// The output as JSON; `None` when there is no output or it has no JSON form.
    pub fn output_json(&self) -> Option<serde_json::Value> {
        self.output_as()
    }
}

/// One block of an [`ExecutionReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlockReport {
    /// The block's name.
    pub name: String,
    /// Its items, in plan order.
    pub items: Vec<ItemReport>,
}

/// The full state of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionReport {
    /// The execution.
    pub id: ExecutionId,
    /// The plan's name.
    pub name: String,
    /// Its status.
    pub status: ExecutionStatus,
    /// When it was submitted.
    pub created: SystemTime,
    /// When its status last changed.
    pub updated: SystemTime,
    /// Why it is paused, or why it could not be resumed automatically.
    pub reason: Option<String>,
    /// Still running, but told to stop: interrupting, pausing or cancelling.
    pub halting: Option<Halting>,
    /// The blocks, in order.
    pub blocks: Vec<BlockReport>,
}

impl ExecutionReport {
    /// Every item, block after block.
    pub fn items(&self) -> impl Iterator<Item = &ItemReport> {
        self.blocks.iter().flat_map(|b| b.items.iter())
    }

    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&ItemReport> {
        self.items().find(|i| i.id == id)
    }

    /// Number of items.
    pub fn items_total(&self) -> usize {
        self.blocks.iter().map(|b| b.items.len()).sum()
    }

    /// Number of items done.
    pub fn items_done(&self) -> usize {
        self.items()
            .filter(|i| i.status == ItemStatus::Done)
            .count()
    }

    /// How much of its running items' work is done, in items, as their reported progress
    /// says.
    pub fn running_progress(&self) -> f64 {
        self.items()
            .filter(|i| i.status == ItemStatus::Running)
            .filter_map(|i| i.progress)
            .filter(|p| p.total > 0)
            .map(|p| p.done.min(p.total) as f64 / p.total as f64)
            .sum()
    }

    /// Which items are done, interrupted, failed, skipped and not started, per block.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self)
    }

    /// This report without its items.
    pub fn summary(&self) -> ExecutionSummary {
        ExecutionSummary {
            id: self.id,
            name: self.name.clone(),
            status: self.status,
            items_total: self.items_total(),
            items_done: self.items_done(),
            running_progress: self.running_progress(),
            created: self.created,
            updated: self.updated,
            error: None,
            halting: self.halting,
        }
    }
}
