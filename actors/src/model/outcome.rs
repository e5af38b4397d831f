//! The outcome of an execution: which items finished and which did not, per block.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{ExecutionId, ExecutionReport, ExecutionStatus, ItemStatus};

/// Item ids of one block, by how they ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockOutcome {
    /// The block's name.
    pub name: String,
    /// Applied, or found in their goal state.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub done: Vec<Arc<str>>,
    /// Stopped by an interrupt (or still running when the report was taken).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub interrupted: Vec<Arc<str>>,
    /// Their attempt failed.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub failed: Vec<Arc<str>>,
    /// Not run because a dependency or an earlier block failed.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub skipped: Vec<Arc<str>>,
    /// Never started.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub not_started: Vec<Arc<str>>,
}

impl BlockOutcome {
    /// Block `name`, with no items yet.
    pub(crate) fn named(name: String) -> Self {
        BlockOutcome {
            name,
            ..BlockOutcome::default()
        }
    }

    /// Item `id` stands at `status`: it goes in the list that says so.
    pub(crate) fn add(&mut self, id: Arc<str>, status: ItemStatus) {
        let list = match status {
            ItemStatus::Done => &mut self.done,
            ItemStatus::Running | ItemStatus::Interrupted | ItemStatus::Retrying => {
                &mut self.interrupted
            }
            ItemStatus::Failed => &mut self.failed,
            ItemStatus::Skipped => &mut self.skipped,
            ItemStatus::Pending => &mut self.not_started,
        };
        list.push(id);
    }
}

/// How an execution ended (or stands): its status and, per block, its items by how they
/// ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcome {
    /// The execution.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub execution: ExecutionId,
    /// Its status.
    pub status: ExecutionStatus,
    /// Per block, in order.
    pub blocks: Vec<BlockOutcome>,
}

impl Outcome {
    pub(crate) fn of(report: &ExecutionReport) -> Self {
        let blocks = report
            .blocks
            .iter()
            .map(|block| {
                let mut out = BlockOutcome::named(block.name.clone());
                for item in &block.items {
                    out.add(Arc::from(item.id.as_str()), item.status);
                }
                out
            })
            .collect();
        Outcome {
            execution: report.id,
            status: report.status,
            blocks,
        }
    }

    /// Number of items done, in all blocks.
    pub fn done(&self) -> usize {
        self.blocks.iter().map(|b| b.done.len()).sum()
    }

    /// Number of items interrupted, in all blocks.
    pub fn interrupted(&self) -> usize {
        self.blocks.iter().map(|b| b.interrupted.len()).sum()
    }

    /// Number of items failed, in all blocks.
    pub fn failed(&self) -> usize {
        self.blocks.iter().map(|b| b.failed.len()).sum()
    }

    /// Number of items skipped, in all blocks.
    pub fn skipped(&self) -> usize {
        self.blocks.iter().map(|b| b.skipped.len()).sum()
    }

    /// Number of items never started, in all blocks.
    pub fn not_started(&self) -> usize {
        self.blocks.iter().map(|b| b.not_started.len()).sum()
    }

    /// Number of items in all.
    pub fn total(&self) -> usize {
        self.done() + self.interrupted() + self.failed() + self.skipped() + self.not_started()
    }

    /// Whether every item is done.
    pub fn is_completed(&self) -> bool {
        self.status == ExecutionStatus::Completed
    }
}
