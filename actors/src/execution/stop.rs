//! Stopping: a `Stop` or a shutdown's stop. The execution is interrupted, what still runs
//! is aborted once the order allows no more time, and the Stop callers are answered by
//! `end` once the checkpoint is durable.

use std::time::{Duration, Instant};

use ractor::{ActorRef, RpcReplyPort};

use crate::error::StoreError;
use crate::execution::{ExecutionMsg, ExecutionState};
use crate::model::{ExecutionReport, ExecutionStatus, InterruptStrategy};

/// Who asked an execution to stop, and what they are answered with once its checkpoint is
/// durable.
#[derive(Debug)]
pub(super) enum StopReply {
    /// A `Stop`: the full report.
    Report(RpcReplyPort<Result<ExecutionReport, StoreError>>),
    /// A shutdown's stop: the status alone. (The full report copies every item's params,
    /// output and attempts; a shutdown reads only the status, and at 100,000 items the
    /// copy is what the shutdown would wait on.)
    Status(RpcReplyPort<Result<ExecutionStatus, StoreError>>),
}

impl StopReply {
    /// Answers with `report` (built only if this caller wants it) or the error.
    pub(super) fn send(
        self,
        result: &Result<(), StoreError>,
        status: ExecutionStatus,
        report: impl FnOnce() -> ExecutionReport,
    ) {
        match self {
            StopReply::Report(reply) => {
                let _ = reply.send(result.clone().map(|()| report()));
            }
            StopReply::Status(reply) => {
                let _ = reply.send(result.clone().map(|()| status));
            }
        }
    }
}

impl ExecutionState {
    /// Stops with `strategy`; with `abort_in`, attempts still running after it are aborted
    /// whatever the strategy allows. False when nothing is left to do (it had ended, and
    /// `reply` is answered).
    pub(super) fn stop(
        &mut self,
        myself: &ActorRef<ExecutionMsg>,
        strategy: InterruptStrategy,
        abort_in: Option<Duration>,
        reply: StopReply,
    ) -> bool {
        if self.finished {
            let status = self.record.status;
            reply.send(&Ok(()), status, || self.report());
            return false;
        }
        self.stop_replies.push(reply);
        // Unless someone interrupted it first, it was running when the process stopped:
        // the next start resumes it.
        if !self.run.is_interrupting() {
            self.record.resume_on_start = true;
        }
        let now = Instant::now();
        match (strategy, abort_in) {
            // Cancellation points, then an abort: the core's own deadline does it.
            (InterruptStrategy::Immediate { grace }, abort_in) => {
                self.run.stop(abort_in.map_or(grace, |a| grace.min(a)), now);
            }
            (InterruptStrategy::AtCancellationPoint, Some(abort_in)) => {
                self.run.stop(abort_in, now);
            }
            (strategy, None) => {
                self.run.interrupt(strategy, now);
            }
            // Running attempts may finish, but not past `abort_in`: then a stricter
            // interrupt aborts what is left (an interrupt only ever gets stricter).
            (strategy, Some(abort_in)) => {
                self.run.interrupt(strategy, now);
                myself.send_after(abort_in, || {
                    ExecutionMsg::Interrupt(
                        InterruptStrategy::Immediate {
                            grace: Duration::ZERO,
                        },
                        None,
                    )
                });
            }
        }
        true
    }
}
