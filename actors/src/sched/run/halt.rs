//! Interrupts, pauses and stops: what may still start, which attempts are asked to stop,
//! and when they are aborted.

use std::time::{Duration, Instant};

use crate::model::{InterruptStrategy, ItemStatus};

use super::{Cancel, Effect, Phase, Run, Then, Write, deadline};

impl Run {
    /// Applies an interrupt; false if the execution is already ending. A later interrupt
    /// can only make it stricter.
    pub(crate) fn interrupt(&mut self, strategy: InterruptStrategy, now: Instant) -> bool {
        if self.finishing {
            return false;
        }
        // Waits for semaphores are not starts: they end, and what may start is decided
        // anew under the stricter allowance.
        self.withdraw_waiting();
        let allowance = strategy.allowance();
        self.allowance = Some(self.allowance.map_or(allowance, |a| a.min(allowance)));
        if strategy.cancels_running() {
            let abort_at = match strategy {
                InterruptStrategy::Immediate { grace } => Some(deadline(now, grace)),
                _ => None,
            };
            for &index in &self.active {
                let phase = &mut self.phases[index as usize];
                match phase {
                    Phase::Starting { cancel, .. } => *cancel = cancel.ask(abort_at),
                    Phase::Running {
                        attempt, cancel, ..
                    } => {
                        if *cancel == Cancel::No {
                            self.effects.push_back(Effect::Cancel {
                                index,
                                attempt: *attempt,
                            });
                        }
                        *cancel = cancel.ask(abort_at);
                    }
                    _ => {}
                }
                if let Some(at) = abort_at {
                    self.deadlines.insert((at, index));
                }
            }
        }
        // A retry wait ends at once: the item is interrupted, and retried on resume. (One
        // whose failure is still being recorded is, once it is.)
        for index in std::mem::take(&mut self.waiting) {
            if let Phase::Waiting { .. } = self.phases[index as usize] {
                self.phases[index as usize] = Phase::Idle;
                self.items[index as usize].status = ItemStatus::Interrupted;
                self.publish_item(index);
            }
        }
        self.pump(now);
        self.step_done();
        true
    }

    /// Pauses the run: nothing new starts, running attempts go on as `strategy` allows (as
    /// an interrupt), and once nothing runs the execution ends `paused`, which a restart
    /// does not resume. The request is made durable first ([`Write::PauseRequested`], then
    /// [`Effect::HaltRecorded`]), so a crash while it quiesces leaves it paused too. False
    /// if it is already ending.
    pub(crate) fn pause(&mut self, strategy: InterruptStrategy, now: Instant) -> bool {
        if self.finishing {
            return false;
        }
        self.pausing = true;
        // Written for every pause, so each request has a commit to wait for.
        self.open.writes.push(Write::PauseRequested);
        self.open.thens.push(Then::HaltRecorded);
        self.interrupt(strategy, now)
    }

    /// Whether a pause has been applied.
    pub(crate) fn is_pausing(&self) -> bool {
        self.pausing
    }

    /// Cancels the run: as a pause (nothing new starts, running attempts go on as
    /// `strategy` allows, the request is durable before it is answered), but once nothing
    /// runs the execution ends `cancelled`, for good. A run that finishes its work anyway
    /// ends as its work says (completed, failed). False if it is already ending.
    pub(crate) fn cancel(&mut self, strategy: InterruptStrategy, now: Instant) -> bool {
        if self.finishing {
            return false;
        }
        self.cancelling = true;
        self.open.writes.push(Write::CancelRequested);
        self.open.thens.push(Then::HaltRecorded);
        self.interrupt(strategy, now)
    }

    /// Whether a cancel has been applied.
    pub(crate) fn is_cancelling(&self) -> bool {
        self.cancelling
    }

    /// Stops the run: as `Immediate { grace }`. False if it is already ending.
    pub(crate) fn stop(&mut self, grace: Duration, now: Instant) -> bool {
        self.interrupt(InterruptStrategy::Immediate { grace }, now)
    }
}
