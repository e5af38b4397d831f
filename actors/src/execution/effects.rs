//! Performing the core's effects, in order: commits, attempts started in their tasks,
//! semaphores and rate tokens, cancels and aborts, events; then one timer for the core's
//! next deadline.

use std::time::Instant;

use ractor::ActorRef;

use crate::execution::{ExecutionInternal, ExecutionMsg, ExecutionState, Internal};
use crate::model::now_ms;
use crate::sched::run::Effect;
use crate::semaphores::Holder;

impl ExecutionState {
    /// Performs the core's effects in order, then arms the timer for its next deadline.
    pub(super) async fn perform(&mut self, myself: &ActorRef<ExecutionMsg>) {
        let mut began = None;
        while let Some(effect) = self.run.poll_effect() {
            match effect {
                Effect::Commit { id, writes } => self.commit(myself, id, writes),
                Effect::Start {
                    index,
                    attempt,
                    resume,
                } => {
                    // One clock read for the starts of a step, which begin within a
                    // millisecond or so.
                    let began_ms = *began.get_or_insert_with(now_ms);
                    self.start(myself, index, attempt, resume);
                    self.run.attempt_began(index, attempt, began_ms);
                }
                Effect::Acquire { index, ticket } => {
                    let holder = self.holder(index, ticket);
                    let tags = self.plan.items[index as usize].shared_tags();
                    if self.semaphores.acquire(holder, tags, self.grantee.clone()) {
                        self.run.granted(index, ticket, Instant::now());
                    }
                }
                Effect::Release { index, ticket } => {
                    let holder = self.holder(index, ticket);
                    for mine in self.semaphores.release(holder, self.record.id) {
                        self.run.granted(mine.index, mine.ticket, Instant::now());
                    }
                }
                Effect::Take { index } => {
                    let now = Instant::now();
                    let ids = self.limits.get(index as usize).map_or(&[][..], |l| l);
                    let result = self.limiters.take(ids, now);
                    self.run.taken(index, result, now);
                }
                Effect::Cancel { index, attempt } => self.cancel_attempt(index, attempt),
                Effect::Abort { index, attempt } => self.abort_attempt(index, attempt),
                Effect::HaltRecorded { durable } => {
                    if let Some(Some(reply)) = self.pause_replies.pop_front() {
                        let _ = reply.send(durable);
                    }
                }
                Effect::Publish(publish) => self.publish(publish),
                Effect::Ended { status, error } => return self.end(myself, status, error),
            }
        }
        if self.run.has_open_commit() && !self.step_queued {
            // Behind whatever is queued already; if the cast fails the actor is stopping.
            self.step_queued = myself
                .cast(ExecutionMsg::Internal(ExecutionInternal(Internal::EndStep)))
                .is_ok();
        }
        self.arm_timer(myself);
    }

    /// Item `index` as a semaphore holder under `ticket`.
    fn holder(&self, index: u32, ticket: u64) -> Holder {
        Holder {
            execution: self.record.id,
            index,
            ticket,
            item: self.plan.items[index as usize].id.clone(),
        }
    }

    fn arm_timer(&mut self, myself: &ActorRef<ExecutionMsg>) {
        let Some(at) = self.run.next_deadline() else {
            return;
        };
        if self.timer.is_some_and(|armed| armed <= at) {
            return;
        }
        self.timer = Some(at);
        let delay = at.saturating_duration_since(Instant::now());
        myself.send_after(delay, || {
            ExecutionMsg::Internal(ExecutionInternal(Internal::Deadline))
        });
    }
}
