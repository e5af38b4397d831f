//! The world's answers to the core: commits made durable or failed, attempts that end
//! (done, failed, interrupted, aborted) and late reports of earlier attempts.

use std::sync::Arc;

use super::{Sim, durable};
use crate::sched::run::{AttemptEnd, Ending};

impl Sim {
    pub(super) fn pick_running(&mut self) -> u32 {
        let keys: Vec<u32> = self.running.keys().copied().collect();
        keys[self.rng.below(keys.len())]
    }

    pub(super) fn answer_commit(&mut self) {
        let Some((id, writes)) = self.pending.pop_front() else {
            return;
        };
        if self.failures && self.rng.chance(5) {
            self.note(format!("commit {id} fails"));
            self.broken = true;
            self.run
                .committed(id, Err("disk on fire".to_owned()), self.now);
        } else {
            self.note(format!("commit {id} durable"));
            self.land(&writes);
            self.run.committed(id, Ok(()), self.now);
        }
    }

    pub(super) fn end_attempt(&mut self) {
        let index = self.pick_running();
        let Some(running) = self.running.remove(&index) else {
            return;
        };
        let ending = if running.aborted || (running.cancelled && self.rng.chance(60)) {
            Ending::Interrupted { error: None }
        } else if self.rng.chance(15) {
            Ending::Failed {
                error: "on purpose".to_owned(),
            }
        } else if self.rng.chance(10) {
            // It fails without being told to stop (a timeout may turn an interrupted one
            // into a failure too).
            Ending::Failed {
                error: "again".to_owned(),
            }
        } else {
            Ending::Done {
                output: Arc::from(vec![index as u8]),
                changed: self.rng.chance(70),
                clear_checkpoint: self.durable.checkpoints[index as usize].is_some(),
            }
        };
        // Whether its `apply` began: then it may have changed something.
        let applied = match &ending {
            Ending::Done { changed, .. } => *changed,
            _ => self.rng.chance(50),
        };
        if applied && !matches!(ending, Ending::Done { .. }) {
            self.touched[index as usize] = true;
        }
        self.note(format!(
            "end {index}/{} {ending:?} applied {applied}",
            running.attempt
        ));
        let end = AttemptEnd {
            ending,
            at_ms: 0,
            progress: None,
            message: None,
            applied,
            checkpoint: running.holds.map(durable::checkpoint_of),
        };
        self.run
            .attempt_ended(index, running.attempt, end, self.now);
        // If it failed (a timed-out attempt that stopped counts as failed too), a retry may
        // start only after its wait from now; checked at the retry's start.
        self.failed_at[index as usize] = Some(self.now);
    }
}

/// The end of an attempt that succeeded and changed something.
pub(super) fn done_end() -> AttemptEnd {
    AttemptEnd {
        ending: Ending::Done {
            output: Arc::from(Vec::new()),
            changed: true,
            clear_checkpoint: false,
        },
        at_ms: 0,
        progress: None,
        message: None,
        applied: true,
        checkpoint: None,
    }
}
