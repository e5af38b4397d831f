//! Crashes and restarts: the process dies with an unknown prefix of its unanswered
//! commits on disk, and a new core is built from only what is durable.

use std::time::Duration;

use super::{Run, Sim, config, random_strategy};
use crate::model::ExecutionStatus;

impl Sim {
    /// The process dies: running attempts vanish, and of the commits not answered yet an
    /// unknown prefix made it to disk. A restart reads the store back and resumes.
    pub(super) fn crash(&mut self, landed: usize) {
        self.note(format!("crash ({landed} unanswered commits landed)"));
        for &index in self.running.keys() {
            self.touched[index as usize] = true;
        }
        let landed: Vec<_> = self.pending.drain(..).take(landed).collect();
        for (_, writes) in landed {
            self.land(&writes);
        }
        self.pending.clear();
        self.restart();
    }

    pub(super) fn restart(&mut self) {
        self.running.clear();
        self.permits.reset();
        self.rates.reset();
        // A record asked to cancel is found cancelled at startup, not resumed.
        if matches!(
            self.durable.execution,
            Some(ExecutionStatus::Completed | ExecutionStatus::Failed | ExecutionStatus::Cancelled)
        ) || (self.durable.cancelling && self.durable.execution.is_none())
        {
            self.over = true;
            return;
        }
        self.run = Run::new(
            self.shape.clone(),
            self.durable.resumed(),
            config(self.parallelism),
        )
        .with_checkpoints(self.durable.stored_checkpoints())
        .with_records(self.durable.items.iter().map(Option::is_some).collect());
        if self.held {
            self.run.hold_commits();
        }
        // The restart's clock starts later than any wait of the run before.
        self.now += Duration::from_secs(1);
        self.failed_at.iter_mut().for_each(|f| *f = None);
        self.decided = 0;
        self.cap = None;
        self.broken = false;
        self.pausing = false;
        self.cancelling = false;
        self.ended = None;
        if self.rng.chance(10) {
            // An interrupt that came while the resume was starting.
            let strategy = random_strategy(&mut self.rng);
            self.interrupt(strategy, false);
        }
        self.note("resume".to_owned());
        self.run.start(self.now);
    }
}
