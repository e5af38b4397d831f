//! An attempt's end: what it counts as (past its timeout it failed, whatever it
//! returned), the item's record written, a retry's wait or a failure's skips decided, and
//! the refreshes its Done record carries to `notify` dependents.

use std::time::Instant;

use super::{AttemptEnd, Effect, Ending, ItemState, Phase, Publish, Run, Then, Write, deadline};
use crate::model::{AttemptOutcome, ItemStatus};
use crate::sched::policy::noise;

impl Run {
    /// Attempt `attempt` of item `index` ended at `now`. Late or repeated reports are
    /// ignored.
    pub(crate) fn attempt_ended(
        &mut self,
        index: u32,
        attempt: u32,
        end: AttemptEnd,
        now: Instant,
    ) {
        let timed_out = match self.phases.get(index as usize) {
            Some(Phase::Running {
                attempt: a,
                timed_out,
                ..
            }) if *a == attempt => *timed_out,
            _ => return,
        };
        // The attempt is over: its semaphores go back at once.
        self.release(index);
        let policy = self.shape.policies[index as usize];
        let ending = match end.ending {
            Ending::StoreFailed { error } => {
                self.broken = true;
                Ending::Interrupted { error: Some(error) }
            }
            // Past its timeout the attempt has failed, whatever it returns now: a late
            // output is never stored nor handed to dependents. Only an interrupt applied
            // meanwhile keeps a stop at a cancellation point an interruption.
            Ending::Done { .. } | Ending::Failed { .. } | Ending::Interrupted { .. }
                if timed_out
                    && !(matches!(end.ending, Ending::Interrupted { .. })
                        && self.allowance.is_some()) =>
            {
                let timeout = policy.timeout.unwrap_or_default();
                Ending::Failed {
                    error: format!("timed out after {}", humantime::format_duration(timeout)),
                }
            }
            ending => ending,
        };
        let mut retry_at = None;
        self.active.remove(&index);
        let local = index - self.shape.blocks[self.block].range.start;
        // What the attempt holds is the item's latest checkpoint, for its next attempt; a
        // done item has none.
        self.checkpoints[index as usize] = match ending {
            Ending::Done { .. } => None,
            _ => end.checkpoint,
        };
        // A done attempt's last progress may not have reached the core: its end can
        // overtake it, and the shell drops progress of an attempt that has ended. So it is
        // published from the end, unless the core has it already.
        if matches!(ending, Ending::Done { .. })
            && end.progress != self.items[index as usize].progress
            && let Some(progress) = end.progress
        {
            self.effects.push_back(Effect::Publish(Publish::Progress {
                index,
                progress,
                message: end.message.clone(),
            }));
        }
        let item = &mut self.items[index as usize];
        item.crashes = 0;
        item.maybe_changed |= end.applied;
        item.progress = end.progress;
        if end.message.is_some() {
            item.message = end.message;
        }
        let status = match ending {
            Ending::Done {
                output,
                changed,
                clear_checkpoint,
            } => {
                // An earlier attempt may have done the work this one found done.
                let changed = changed || item.maybe_changed;
                item.output = Some(output);
                item.error = None;
                // What it said while it ran ("waiting for ...") is over once it is done.
                item.message = None;
                item.unchanged = !changed;
                item.maybe_changed = false;
                // Its own refresh is handled: this attempt succeeded.
                item.refresh = false;
                self.readiness
                    .done(&self.shape.blocks[self.block].graph, local);
                if clear_checkpoint {
                    self.open.writes.push(Write::ClearCheckpoint { index });
                }
                item.ended(attempt, end.at_ms, AttemptOutcome::Done, None);
                if changed {
                    self.send_refreshes(index);
                }
                ItemStatus::Done
            }
            Ending::Failed { error } => {
                item.output = None;
                item.failures = item.failures.saturating_add(1);
                item.ended(
                    attempt,
                    end.at_ms,
                    AttemptOutcome::Failed,
                    Some(error.clone()),
                );
                item.error = Some(error);
                if policy.retries_after(item.failures) {
                    if self.allowance.is_some() || self.broken {
                        // Interrupted meanwhile: no wait now; a resume retries it.
                        ItemStatus::Interrupted
                    } else {
                        let retry = item.failures;
                        let wait = policy
                            .backoff
                            .wait(retry, noise(self.config.seed, index, attempt));
                        retry_at = Some(deadline(now, wait));
                        self.waiting.insert(index);
                        ItemStatus::Retrying
                    }
                } else {
                    self.fail(index)
                }
            }
            Ending::Interrupted { error } => {
                item.ended(
                    attempt,
                    end.at_ms,
                    AttemptOutcome::Interrupted,
                    error.clone(),
                );
                item.error = error;
                ItemStatus::Interrupted
            }
            // (Made an interruption above.)
            Ending::StoreFailed { error } => {
                item.ended(
                    attempt,
                    end.at_ms,
                    AttemptOutcome::Interrupted,
                    Some(error.clone()),
                );
                item.error = Some(error);
                ItemStatus::Interrupted
            }
        };
        let record = ItemState {
            status,
            ..self.items[index as usize].clone()
        };
        self.open.item(&mut self.recorded, index, record);
        self.open.thens.push(Then::Settle(index));
        self.phases[index as usize] = Phase::Ending { status, retry_at };
        self.pump(now);
        self.step_done();
    }

    /// Item `index` changed something: the dependents of its `notify` edges get a pending
    /// refresh, written in the commit that carries its Done record, so a crash before they
    /// run cannot lose it.
    fn send_refreshes(&mut self, index: u32) {
        for &dependent in self.shape.notified_by(index) {
            // Written even if the flag is already set: the commit that set it may yet fail,
            // and this Done record must not become durable without it.
            let item = &mut self.items[dependent as usize];
            item.refresh = true;
            let mut state = item.clone();
            // Skipped in this run: that is recorded with the final record, if at all (see
            // `finish`); until then the store has it as not run.
            if self.skipped.contains(&dependent) {
                state.status = ItemStatus::Pending;
            }
            self.open.item(&mut self.recorded, dependent, state);
        }
    }
}
