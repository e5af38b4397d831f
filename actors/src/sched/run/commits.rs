//! What a commit carries and what waits for it: commit results, the attempts and endings
//! they make durable, the final record, and the steps that group records into commits.

use std::time::Instant;

use crate::model::{ExecutionStatus, ItemStatus};

use super::{Cancel, Effect, Inflight, ItemState, OpenCommit, Phase, Run, Then, Write, deadline};

/// The most records a step may have and the next step's lists still start empty.
const SIZED_STEP: usize = 32;

/// Commits of one execution in flight, at most, before a step's end keeps its records open
/// (while commits are held): two, so the store always has the next one while it writes
/// one.
pub(crate) const HELD_INFLIGHT: usize = 2;

impl Run {
    /// Commit `id` is durable (`Ok`) or failed. Commits are applied in the order they were
    /// issued; a result that arrives early waits for the ones before it.
    pub(crate) fn committed(&mut self, id: u64, result: Result<(), String>, now: Instant) {
        if let Some(inflight) = self.inflight.get_mut(&id) {
            inflight.result = Some(result);
        }
        while let Some(entry) = self.inflight.first_entry() {
            let Some(result) = entry.get().result.clone() else {
                break;
            };
            let thens = entry.remove().thens;
            if result.is_err() {
                self.broken = true;
            }
            for then in thens {
                match then {
                    Then::Start(index) => self.started_attempt(index, result.is_ok(), now),
                    Then::Settle(index) => self.settled(index, &result),
                    Then::Finish(status) => self.finished(status, &result),
                    Then::HaltRecorded => self.effects.push_back(Effect::HaltRecorded {
                        durable: result.is_ok(),
                    }),
                }
            }
        }
        if self.deferred && self.inflight.len() < HELD_INFLIGHT {
            // The records a step left open can go now: the shell sees an open commit and
            // ends a step behind what is queued.
            self.deferred = false;
        }
        self.pump(now);
        self.step_done();
    }

    /// The final record is durable, or not: then the store still says running, which a
    /// restart reads as interrupted, and so does the report (skips were not recorded
    /// either).
    pub(super) fn finished(&mut self, status: ExecutionStatus, result: &Result<(), String>) {
        let status = match result {
            Ok(()) => status,
            Err(_) => {
                for &index in &self.skipped {
                    self.items[index as usize].status = ItemStatus::Pending;
                }
                ExecutionStatus::Interrupted
            }
        };
        self.ended = Some(status);
        self.effects.push_back(Effect::Ended {
            status,
            error: result.clone().err(),
        });
    }

    pub(super) fn started_attempt(&mut self, index: u32, durable: bool, now: Instant) {
        let Phase::Starting {
            attempt,
            before,
            cancel,
        } = self.phases[index as usize]
        else {
            return;
        };
        if !durable || self.broken {
            // Not known to be durable, or an earlier commit failed (a dependency's Done
            // record may be missing): it does not start. Its number stays used.
            self.phases[index as usize] = Phase::Idle;
            self.items[index as usize].status = before;
            self.active.remove(&index);
            self.release(index);
            return;
        }
        let timeout_at = self.shape.policies[index as usize]
            .timeout
            .map(|t| deadline(now, t));
        for at in timeout_at.into_iter().chain(cancel.abort_at()) {
            self.deadlines.insert((at, index));
        }
        self.phases[index as usize] = Phase::Running {
            attempt,
            cancel,
            timeout_at,
            timed_out: false,
        };
        let item = &mut self.items[index as usize];
        item.status = ItemStatus::Running;
        item.error = None;
        let resume = self.checkpoints[index as usize].take();
        self.effects.push_back(Effect::Start {
            index,
            attempt,
            resume,
        });
        self.publish_item(index);
        if cancel != Cancel::No {
            self.effects.push_back(Effect::Cancel { index, attempt });
        }
    }

    pub(super) fn settled(&mut self, index: u32, result: &Result<(), String>) {
        let Phase::Ending { status, retry_at } = self.phases[index as usize] else {
            return;
        };
        self.phases[index as usize] = Phase::Idle;
        let item = &mut self.items[index as usize];
        match result {
            Ok(()) => {
                item.status = status;
                // Its failure is durable: the wait for the retry begins.
                if let Some(until) = retry_at
                    && self.waiting.contains(&index)
                {
                    self.phases[index as usize] = Phase::Waiting { until };
                    self.deadlines.insert((until, index));
                } else if retry_at.is_some() {
                    // Interrupted while its failure was being recorded.
                    item.status = ItemStatus::Interrupted;
                }
            }
            Err(e) => {
                self.waiting.remove(&index);
                // The store does not know how the attempt ended: it runs again on resume.
                item.status = ItemStatus::Interrupted;
                item.output = None;
                item.error = Some(format!("cannot record the attempt: {e}"));
            }
        }
        self.publish_item(index);
    }

    /// Writes the final record, once every earlier commit is durable (else this is called
    /// again from `committed`).
    pub(super) fn finish(&mut self, status: ExecutionStatus) {
        if !self.inflight.is_empty() {
            return;
        }
        self.finishing = true;
        // Stopped short on request: cancelled or paused, unless the store failed (then what
        // it holds is unknown, and interrupted says so).
        let status = match status {
            ExecutionStatus::Interrupted if self.cancelling && !self.broken => {
                ExecutionStatus::Cancelled
            }
            ExecutionStatus::Interrupted if self.pausing && !self.broken => ExecutionStatus::Paused,
            status => status,
        };
        // With a broken store the failure that skipped them may not be recorded; a resume
        // decides again.
        if !self.broken {
            for &index in &self.skipped {
                let item = &self.items[index as usize];
                let state = ItemState {
                    status: ItemStatus::Skipped,
                    attempts: item.attempts,
                    // Still owed if a retry of the failed execution runs it.
                    refresh: item.refresh,
                    ..ItemState::default()
                };
                self.open.item(&mut self.recorded, index, state);
            }
        }
        self.open.writes.push(Write::Execution { status });
        self.open.thens.push(Then::Finish(status));
    }

    /// A commit failed: nothing starts any more.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// From now on an input leaves the records it produced open, to be joined by those of
    /// the next inputs, until the shell calls [`Run::end_step`]: a shell that drains a
    /// queue of inputs makes one commit of all of them. Whatever waits for those records
    /// waits for that commit.
    pub(crate) fn hold_commits(&mut self) {
        self.held = true;
    }

    /// Records are open that no commit carries yet and that a step's end would send
    /// (only while commits are held; not while a step is deferred, see [`Run::end_step`]).
    pub(crate) fn has_open_commit(&self) -> bool {
        !self.deferred && (!self.open.writes.is_empty() || !self.open.thens.is_empty())
    }

    /// Attempts decided whose start records are still open (not in a commit yet).
    #[cfg(test)]
    pub(crate) fn open_starts(&self) -> usize {
        self.open
            .writes
            .iter()
            .filter(|w| matches!(w, Write::Started { .. }))
            .count()
    }

    /// Ends a step: its open records go out as one commit. Unless [`HELD_INFLIGHT`]
    /// commits of this execution are in flight already: then they stay open, joined by
    /// those of the next inputs, until one of those is answered. A stream of attempt ends
    /// then makes a few large commits instead of one per message or two; what waits for
    /// the records waits at most for the commit ahead of them, which the store's group
    /// commit would have made it wait for anyway.
    pub(crate) fn end_step(&mut self) {
        if self.inflight.len() >= HELD_INFLIGHT {
            self.deferred = true;
            return;
        }
        self.flush();
    }

    pub(super) fn step_done(&mut self) {
        if !self.held {
            self.flush();
        }
    }

    /// Issues this step's commit, if it has anything in it.
    pub(super) fn flush(&mut self) {
        if self.open.writes.is_empty() && self.open.thens.is_empty() {
            return;
        }
        // After a large step the next is sized like it, so a burst of attempt ends does
        // not grow its lists from nothing; after a small one it starts empty, so an
        // execution whose items all run holds no room for records it is not writing
        // (a record is about 200 bytes).
        let sized = |len: usize| if len > SIZED_STEP { len } else { 0 };
        let next = OpenCommit {
            writes: Vec::with_capacity(sized(self.open.writes.len())),
            thens: Vec::with_capacity(sized(self.open.thens.len())),
        };
        let OpenCommit { writes, thens } = std::mem::replace(&mut self.open, next);
        let id = self.next_commit;
        self.next_commit += 1;
        self.inflight.insert(
            id,
            Inflight {
                thens,
                result: None,
            },
        );
        self.effects.push_back(Effect::Commit { id, writes });
    }
}
