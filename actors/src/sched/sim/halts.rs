//! Interrupts, stops, pauses and cancels sent to the core, and the cap each puts on the
//! attempts it may still decide.

use std::time::Duration;

use super::Sim;
use crate::model::InterruptStrategy;

impl Sim {
    pub(super) fn interrupt(&mut self, strategy: InterruptStrategy, stop: bool) {
        self.halt(strategy, stop, false);
    }

    pub(super) fn cancel(&mut self, strategy: InterruptStrategy) {
        self.open_before = self.run.open_starts();
        self.note(format!("cancel({strategy:?})"));
        let applied = self.run.cancel(strategy, self.now);
        self.cancelling |= applied;
        if applied {
            let limit = self.decided + self.open_before + strategy.allowance();
            self.cap = Some(self.cap.map_or(limit, |c| c.min(limit)));
        }
    }

    pub(super) fn halt(&mut self, strategy: InterruptStrategy, stop: bool, pause: bool) {
        self.open_before = self.run.open_starts();
        let applied = if stop {
            let grace = Duration::from_millis(self.rng.below(50) as u64);
            self.note(format!("stop(grace {grace:?})"));
            self.run.stop(grace, self.now)
        } else if pause {
            self.note(format!("pause({strategy:?})"));
            self.run.pause(strategy, self.now)
        } else {
            self.note(format!("interrupt({strategy:?})"));
            self.run.interrupt(strategy, self.now)
        };
        self.pausing |= applied && pause;
        if applied {
            let allowance = if stop { 0 } else { strategy.allowance() };
            // Attempts decided before the interrupt, in a commit or still in the open step.
            let limit = self.decided + self.open_before + allowance;
            self.cap = Some(self.cap.map_or(limit, |c| c.min(limit)));
        }
    }
}
