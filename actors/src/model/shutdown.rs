//! What a shutdown did: per execution, per lifecycle subscriber, and how long it took.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::model::{ExecutionId, ExecutionStatus, InterruptStrategy, ModuleAnswer, ShutdownReason};

/// How a shutdown stops the executions still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOrder {
    /// The interrupt every execution gets first.
    pub strategy: InterruptStrategy,
    /// Attempts still running after this long are aborted.
    pub abort_in: Duration,
    /// An execution that has not made its checkpoint durable after this long is abandoned.
    pub give_up_in: Duration,
}

/// How one execution came out of a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StopResult {
    /// It ran to its end (its status says whether it completed or failed) before it was
    /// stopped.
    Completed,
    /// It stopped with its checkpoint durable; the next start resumes it.
    Checkpointed,
    /// It did not make its checkpoint durable before the deadline (or could not): it was
    /// aborted. Its last durable records stand; the next start resumes it from them, as
    /// after a crash.
    Abandoned,
}

/// One execution in a [`ShutdownReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionShutdown {
    /// The execution.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub execution: ExecutionId,
    /// How it came out.
    pub result: StopResult,
    /// Its status once stopped (`running` for an abandoned one: its records say so).
    pub status: ExecutionStatus,
    /// For an abandoned execution, the items that were still running.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub running: Vec<Arc<str>>,
    /// Why it was abandoned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a shutdown did (`Runtime::shutdown_with` in `tend`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShutdownReport {
    /// Why it shut down.
    pub reason: ShutdownReason,
    /// The deadline it was given.
    #[serde(with = "humantime_serde")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "30s"))]
    pub deadline: Duration,
    /// How long it took.
    #[serde(with = "crate::model::serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "120ms"))]
    pub duration: Duration,
    /// Every execution that was live when it began.
    pub executions: Vec<ExecutionShutdown>,
    /// What each lifecycle subscriber answered, event by event.
    pub modules: Vec<ModuleAnswer>,
    /// Whether the store was flushed and closed cleanly.
    pub store_flushed: bool,
    /// Why not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

impl ShutdownReport {
    /// Whether nothing was lost: every execution completed or checkpointed, and the store
    /// flushed. (Subscribers that did not answer do not count.)
    pub fn is_clean(&self) -> bool {
        self.store_flushed
            && self
                .executions
                .iter()
                .all(|e| e.result != StopResult::Abandoned)
    }

    /// How many executions came out as `result`.
    pub fn count(&self, result: StopResult) -> usize {
        self.executions
            .iter()
            .filter(|e| e.result == result)
            .count()
    }
}
