//! Deadlines: attempts past their timeout asked to stop, attempts past their grace
//! aborted, retries whose wait is over made ready. The shell calls
//! [`Run::deadline_reached`] at [`Run::next_deadline`].

use std::time::{Duration, Instant};

use super::{Cancel, Effect, Phase, Run};

impl Run {
    /// Acts on what is due by `now`: attempts past their timeout are cancelled, attempts
    /// past their grace aborted, retries whose wait is over made ready.
    pub(crate) fn deadline_reached(&mut self, now: Instant) {
        while let Some(&(at, index)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.due(index, now);
        }
        self.pump(now);
        self.step_done();
    }

    fn due(&mut self, index: u32, now: Instant) {
        let grace = self.config.timeout_grace;
        match &mut self.phases[index as usize] {
            Phase::Running {
                attempt,
                cancel,
                timeout_at,
                timed_out,
            } => {
                let attempt = *attempt;
                if timeout_at.is_some_and(|t| t <= now) && !*timed_out {
                    *timed_out = true;
                    if *cancel == Cancel::No {
                        self.effects.push_back(Effect::Cancel { index, attempt });
                    }
                    let abort_at = deadline(now, grace);
                    *cancel = cancel.ask(Some(abort_at));
                    self.deadlines.insert((abort_at, index));
                }
                if cancel.abort_at().is_some_and(|t| t <= now) {
                    *cancel = Cancel::Aborted;
                    self.effects.push_back(Effect::Abort { index, attempt });
                }
            }
            Phase::Throttled { .. } => self.throttle_due(index, now),
            Phase::Waiting { until } if *until <= now => {
                self.phases[index as usize] = Phase::Idle;
                self.waiting.remove(&index);
                let local = index - self.shape.blocks[self.block].range.start;
                self.readiness.again(local);
            }
            _ => {}
        }
    }
}

/// `now + grace`; a grace too long for the clock is a year (and, failing that, none).
pub(super) fn deadline(now: Instant, grace: Duration) -> Instant {
    now.checked_add(grace)
        .or_else(|| now.checked_add(Duration::from_secs(60 * 60 * 24 * 365)))
        .unwrap_or(now)
}
