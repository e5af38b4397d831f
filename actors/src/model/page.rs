//! One page of the execution list: newest first, filtered by status, resumed from a cursor.

use crate::model::{ExecutionId, ExecutionStatus, ExecutionSummary};

/// The most executions one page holds.
pub const MAX_PAGE: usize = 1000;

/// Which executions a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// Only those with this status.
    pub status: Option<ExecutionStatus>,
    /// At most this many (cut to [`MAX_PAGE`]; 0 is taken as 1).
    pub limit: usize,
    /// Only those created before this one: the `next` of the page before.
    pub before: Option<ExecutionId>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            status: None,
            limit: 100,
            before: None,
        }
    }
}

/// A page of executions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPage {
    /// The executions.
    pub executions: Vec<ExecutionSummary>,
    /// Where the next page starts (pass it as `before`); `None` on the last page.
    pub next: Option<ExecutionId>,
}
