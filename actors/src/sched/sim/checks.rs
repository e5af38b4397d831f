//! The simulation's checks at an attempt's start and at the execution's end.

use crate::model::{Checkpoint, ExecutionStatus, ItemStatus};

use super::{Running, Sim, durable};

impl Sim {
    pub(super) fn started(
        &mut self,
        index: u32,
        attempt: u32,
        resume: Option<Checkpoint>,
    ) -> Result<(), String> {
        let record = self.durable.record(index);
        // Every attempt resumes from the item's latest durable checkpoint: after a retry as
        // after an interrupt or a crash.
        let resumes = resume.as_ref().map(durable::version_of);
        check!(
            resumes == self.durable.checkpoints[index as usize],
            "attempt {attempt} of {index} resumes from checkpoint {resumes:?}, the latest durable is {:?}",
            self.durable.checkpoints[index as usize]
        );
        check!(
            record
                .as_ref()
                .is_some_and(|r| r.status == ItemStatus::Running && r.attempts == attempt),
            "attempt {attempt} of {index} started before its number was durable: {record:?}"
        );
        for &dep in self.shape.deps[index as usize].iter() {
            check!(
                self.durable.status(dep) == Some(ItemStatus::Done),
                "item {index} started before dependency {dep}'s Done record was durable"
            );
        }
        check!(
            !self.running.contains_key(&index),
            "item {index} started while it runs"
        );
        let policy = self.shape.policies[index as usize];
        let failures = record.as_ref().map_or(0, |r| r.failures);
        check!(
            policy.retries_after(failures),
            "item {index} started after {failures} failures, retry {:?}",
            policy.retries
        );
        if let Some(failed) = self.failed_at[index as usize].take() {
            let earliest = failed + policy.backoff.wait(failures, 0.0);
            check!(
                self.now >= earliest,
                "item {index} retried {:?} early",
                earliest - self.now
            );
        }
        check!(
            attempt > self.started[index as usize],
            "attempt {attempt} of {index} after attempt {} already started",
            self.started[index as usize]
        );
        check!(
            self.run.items()[index as usize].refresh == self.owed[index as usize]
                && record.as_ref().is_some_and(|r| r.refresh) == self.owed[index as usize],
            "item {index} starts with refresh {} (durable {:?}), but a refresh is owed: {}",
            self.run.items()[index as usize].refresh,
            record.as_ref().map(|r| r.refresh),
            self.owed[index as usize]
        );
        check!(
            !self.shape.is_guarded(index) || self.permits.holds(index),
            "item {index} started without holding its semaphores"
        );
        self.started[index as usize] = attempt;
        self.running.insert(
            index,
            Running {
                attempt,
                cancelled: false,
                aborted: false,
                holds: resumes,
            },
        );
        check!(
            self.running.len() <= self.parallelism,
            "{} attempts run, parallelism {}",
            self.running.len(),
            self.parallelism
        );
        Ok(())
    }

    pub(super) fn ended(
        &mut self,
        status: ExecutionStatus,
        error: Option<String>,
    ) -> Result<(), String> {
        let error = error.as_deref();
        check!(self.ended.is_none(), "ended twice");
        check!(
            self.running.is_empty(),
            "ended {status} while {:?} run",
            self.running
        );
        check!(
            self.run.ended() == Some(status),
            "the core says it ended {:?}",
            self.run.ended()
        );
        match error {
            None => check!(
                self.durable.execution == Some(status),
                "ended {status} but the store says {:?}",
                self.durable.execution
            ),
            Some(_) => check!(
                status == ExecutionStatus::Interrupted,
                "ended {status} though its final record is not durable"
            ),
        }
        let items = self.run.items();
        for (i, item) in items.iter().enumerate() {
            check!(
                item.status != ItemStatus::Running,
                "item {i} still running at the end"
            );
        }
        match status {
            ExecutionStatus::Completed => {
                for i in 0..items.len() as u32 {
                    check!(
                        self.durable.status(i) == Some(ItemStatus::Done),
                        "completed, but item {i}'s record says {:?}",
                        self.durable.status(i)
                    );
                }
            }
            ExecutionStatus::Failed => {
                check!(
                    items.iter().any(|i| i.status == ItemStatus::Failed),
                    "failed with no failed item"
                );
                for (i, item) in items.iter().enumerate() {
                    if item.status == ItemStatus::Failed {
                        let policy = self.shape.policies[i];
                        check!(
                            !policy.retries_after(item.failures),
                            "item {i} failed for good after {} failures, retry {:?}",
                            item.failures,
                            policy.retries
                        );
                    }
                }
            }
            ExecutionStatus::Interrupted | ExecutionStatus::Paused | ExecutionStatus::Cancelled => {
                check!(
                    self.cap.is_some() || self.broken || error.is_some(),
                    "{status} though no interrupt, pause, cancel, stop or store failure came"
                );
                // Cancelled exactly when a cancel was asked for, paused when a pause was (and
                // no cancel), in both cases only if the store kept every record.
                let kept = !self.broken && error.is_none();
                let expected = if self.cancelling && kept {
                    ExecutionStatus::Cancelled
                } else if self.pausing && kept {
                    ExecutionStatus::Paused
                } else {
                    ExecutionStatus::Interrupted
                };
                check!(
                    status == expected,
                    "ended {status}; cancel asked: {}, pause asked: {}, a commit failed: {}, final record failed: {}",
                    self.cancelling,
                    self.pausing,
                    self.broken,
                    error.is_some()
                );

                // (Unless a commit failed, the final record or one that held no item
                // record, as a pause request: then the store is unknown, and interrupted
                // is the truth.)
                check!(
                    error.is_some()
                        || self.broken
                        || items.iter().any(|i| i.status != ItemStatus::Done),
                    "{status} with every item done"
                );
                if let Some(cap) = self.cap
                    && !self.broken
                    && self.decided < cap
                {
                    check!(
                        self.run.ready_count() == 0,
                        "the interrupt allowed {cap} attempts, {} were decided, yet {} were ready",
                        self.decided,
                        self.run.ready_count()
                    );
                }
            }
            other => return Err(format!("ended with status {other}")),
        }
        self.ended = Some(status);
        Ok(())
    }
}
