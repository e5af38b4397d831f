//! [`Settings`]: what the Supervisor applies to every execution (parallelism, graces,
//! recovery at start, restart intensity) and the ceilings on a submitted plan.

use std::time::Duration;

use crate::model::Plan;

/// Settings the Supervisor applies to every execution.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Items of one execution that may run at once, unless its plan says otherwise.
    pub parallelism: usize,
    /// On `Stop`, how long running attempts get to reach a cancellation point before they
    /// are aborted.
    pub stop_grace: Duration,
    /// Past its `timeout`, how long an attempt gets to reach a cancellation point before it
    /// is aborted.
    pub timeout_grace: Duration,
    /// Resume, at start, the executions that were running when the process stopped (by a
    /// shutdown or a crash); those interrupted on purpose wait.
    pub resume_on_start: bool,
    /// How many of those are being started at once (reading them back and writing their
    /// records), so a large backlog does not hold up new submits.
    pub recovery_concurrency: usize,
    /// An item whose attempts the process stopped under this many times in a row is
    /// failed instead of started again (0: never).
    pub crash_limit: u32,
    /// A failed Execution actor is restarted from its durable state at most this many
    /// times within `restart_window`; one more failure pauses the execution.
    pub max_restarts: u32,
    /// The window `max_restarts` counts in.
    pub restart_window: Duration,
    /// A submitted plan may have at most this many items.
    pub max_items: usize,
    /// A submitted plan may ask for at most this much parallelism.
    pub max_parallelism: usize,
}

impl Settings {
    /// Whether `plan` is within the ceilings on its size; the error names the plan.
    pub fn check_size(&self, plan: &Plan) -> Result<(), crate::error::PlanError> {
        let items = plan.item_count();
        if items > self.max_items {
            return Err(crate::error::PlanError::TooManyItems {
                plan: crate::model::cut(&plan.name),
                items,
                max: self.max_items,
            });
        }
        match plan.parallelism {
            Some(parallelism) if parallelism > self.max_parallelism => {
                Err(crate::error::PlanError::ParallelismTooHigh {
                    plan: crate::model::cut(&plan.name),
                    parallelism,
                    max: self.max_parallelism,
                })
            }
            _ => Ok(()),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            parallelism: 64,
            stop_grace: Duration::from_secs(10),
            timeout_grace: Duration::from_secs(1),
            resume_on_start: true,
            recovery_concurrency: 64,
            crash_limit: 3,
            max_restarts: 3,
            restart_window: Duration::from_secs(60),
            max_items: 100_000,
            max_parallelism: 1024,
        }
    }
}
