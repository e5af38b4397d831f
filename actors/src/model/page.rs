//! One page of the execution list: newest first, filtered by status, resumed from a cursor.

use crate::model::{ExecutionId, ExecutionStatus, ExecutionSummary};

/// The most executions one page holds.
pub const MAX_PAGE: usize = 1000;

/// Which executions a page holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only those with this status.
    pub status: Option<ExecutionStatus>,
    /// Only those whose name or id contains this text, ignoring case.
    pub search: Option<String>,
    /// At most this many (cut to [`MAX_PAGE`]; 0 is taken as 1).
    pub limit: usize,
    /// Only those created before this one: the `next` of the page before.
    pub before: Option<ExecutionId>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            status: None,
            search: None,
            limit: 100,
            before: None,
        }
    }
}

impl ListQuery {
    /// Whether `summary` is one this query lists.
    pub fn keeps(&self, summary: &ExecutionSummary) -> bool {
        self.keeper()(summary)
    }

    /// [`keeps`](Self::keeps) for many summaries: the search text is lowercased once.
    pub(crate) fn keeper(&self) -> impl Fn(&ExecutionSummary) -> bool + use<> {
        let status = self.status;
        let search = self.search.as_deref().map(str::to_lowercase);
        move |summary| {
            status.is_none_or(|status| summary.status == status)
                && search.as_deref().is_none_or(|text| matches(summary, text))
        }
    }
}

/// Whether the name or id of `summary` contains `text` (lowercase), ignoring case.
fn matches(summary: &ExecutionSummary, text: &str) -> bool {
    let mut key = [0u8; ulid::ULID_LEN];
    // Ids are upper-case ASCII.
    summary
        .id
        .as_key(&mut key)
        .to_ascii_lowercase()
        .contains(text)
        || summary.name.to_lowercase().contains(text)
}

/// A page of executions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPage {
    /// The executions.
    pub executions: Vec<ExecutionSummary>,
    /// Where the next page starts (pass it as `before`); `None` on the last page.
    pub next: Option<ExecutionId>,
}
