//! The attempts that run: one started with its context (inputs, checkpoint, refresh) in a
//! task of its own, its end taken back, one aborted.

use std::sync::Arc;
use std::time::Instant;

use ractor::ActorRef;

use crate::attempt::RunningAttempt;
use crate::error::StoreError;
use crate::execution::{ExecutionMsg, ExecutionState};
use crate::model::{AttemptControl, Checkpoint, CtxParts};
use crate::sched::run::{AttemptEnd, Ending};

/// The most controls of ended attempts an Execution keeps for its next attempts (about
/// 200 bytes each, emptied), and no more than its parallelism: attempts end and start in
/// waves of up to that many. It keeps them while it runs, idle or not: as many as it ran
/// at once, up to this.
const SPARE_CONTROLS: usize = 1024;

impl ExecutionState {
    /// Starts attempt `attempt` of item `index` in a task of its own.
    pub(super) fn start(
        &mut self,
        myself: &ActorRef<ExecutionMsg>,
        index: u32,
        attempt: u32,
        resume: Option<Checkpoint>,
    ) {
        let control = self.control(resume);
        let compiled = &self.plan.items[index as usize];
        let items = self.run.items();
        let inputs = self.run.shape().deps[index as usize]
            .iter()
            .map(|&d| {
                (
                    self.plan.items[d as usize].id.clone(),
                    items[d as usize].output.clone(),
                )
            })
            .collect();
        let ctx = CtxParts {
            execution_id: self.record.id,
            index,
            item_id: compiled.id.clone(),
            attempt,
            refresh: items[index as usize].refresh,
            inputs,
            control,
            port: Some(self.port.clone()),
            resources: self.resources.clone(),
        };
        let running = RunningAttempt::spawn(
            compiled.item.clone(),
            ctx,
            self.ends.clone(),
            myself.clone(),
        );
        self.running.insert(index, running);
    }

    /// A control for an attempt that resumes from `resume`: a spare one, made anew.
    fn control(&mut self, resume: Option<Checkpoint>) -> Arc<AttemptControl> {
        let fresh = AttemptControl::resuming(resume);
        match self.spare_controls.pop() {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(control) => {
                    *control = fresh;
                    spare
                }
                // Spares are kept only while nothing else holds them, and nothing clones
                // one from the pool; made anew all the same.
                None => Arc::new(fresh),
            },
            None => Arc::new(fresh),
        }
    }

    /// Keeps the control of an ended attempt for a later one, if its task no longer holds
    /// it (the task lets it go before it queues its end) and the pool has room. It is
    /// emptied at once, so a spare holds no message or checkpoint while it waits.
    fn keep_control(&mut self, running: RunningAttempt) {
        let mut control = running.into_control();
        if self.spare_controls.len() < self.run.parallelism().min(SPARE_CONTROLS)
            && let Some(spare) = Arc::get_mut(&mut control)
        {
            *spare = AttemptControl::default();
            self.spare_controls.push(control);
        }
    }

    /// Attempt `attempt` of item `index` ended as its task says: the core hears of it. An
    /// end of an attempt that no longer runs (it was aborted meanwhile) is dropped.
    pub(super) fn attempt_ended(&mut self, index: u32, attempt: u32, end: AttemptEnd) {
        if self
            .running
            .get(&index)
            .is_none_or(|running| running.attempt != attempt)
        {
            return;
        }
        if let Some(running) = self.running.remove(&index) {
            self.keep_control(running);
        }
        if let Ending::StoreFailed { error } = &end.ending
            && self.store_error.is_none()
        {
            tracing::error!(execution_id = %self.record.id, error, "a checkpoint of this execution was not made durable; it stops starting items");
            self.store_error = Some(StoreError::Commit(error.clone()));
        }
        self.run.attempt_ended(index, attempt, end, Instant::now());
    }

    /// Asks attempt `attempt` of item `index`, if it runs, to stop at its next cancellation
    /// point.
    pub(super) fn cancel_attempt(&self, index: u32, attempt: u32) {
        if let Some(running) = self.running.get(&index)
            && running.attempt == attempt
        {
            running.control.cancel();
        }
    }

    /// Ends attempt `attempt` of item `index` at once, if it runs: it ends interrupted.
    /// One whose task has already ended keeps the end it sent (it is queued).
    pub(super) fn abort_attempt(&mut self, index: u32, attempt: u32) {
        if self
            .running
            .get(&index)
            .is_none_or(|running| running.attempt != attempt || running.is_finished())
        {
            return;
        }
        if let Some(running) = self.running.remove(&index) {
            let end = running.abort(self.record.id);
            self.run.attempt_ended(index, attempt, end, Instant::now());
        }
    }
}
