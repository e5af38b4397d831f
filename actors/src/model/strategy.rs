//! How an interrupt stops an execution.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How running and not-yet-started items react to an interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum InterruptStrategy {
    /// Running items finish; no new item starts.
    #[default]
    FinishCurrent,
    /// Up to `n` more items may start; then as `FinishCurrent`.
    PollNextN(usize),
    /// Running items stop at their next cancellation point, keeping their intra-item
    /// checkpoint; no new item starts.
    AtCancellationPoint,
    /// As `AtCancellationPoint`, then attempts still running after `grace` are aborted.
    Immediate {
        /// How long attempts get to reach a cancellation point.
        #[serde(with = "humantime_serde")]
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1s"))]
        grace: Duration,
    },
}

impl InterruptStrategy {
    /// How many more items may start after the interrupt arrives.
    pub(crate) fn allowance(&self) -> usize {
        match self {
            InterruptStrategy::PollNextN(n) => *n,
            _ => 0,
        }
    }

    /// Whether running attempts are told to stop at their next cancellation point.
    pub(crate) fn cancels_running(&self) -> bool {
        matches!(
            self,
            InterruptStrategy::AtCancellationPoint | InterruptStrategy::Immediate { .. }
        )
    }
}
