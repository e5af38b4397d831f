//! [`Submitted`]: what a submit did.

use crate::model::ExecutionId;

/// The execution a submit answers with, and whether the submit created it: `false` when
/// the plan's idempotency key already belonged to an execution of the same plan, which is
/// answered instead of starting another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// The execution.
    pub id: ExecutionId,
    /// Whether this submit created it.
    pub created: bool,
}
