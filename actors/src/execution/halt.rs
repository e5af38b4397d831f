//! An interrupt, a pause or a cancel asked of an execution: as it waits for an execution
//! that is starting, and as the Execution applies it.

use std::time::Instant;

use ractor::RpcReplyPort;

use crate::execution::{ExecutionMsg, ExecutionState};
use crate::model::{Halting, InterruptStrategy};

/// An interrupt, a pause or a cancel, as it waits for an execution that is starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Halt {
    Interrupt(InterruptStrategy),
    Pause(InterruptStrategy),
    Cancel(InterruptStrategy),
}

impl Halt {
    /// What the request is called in errors ("interrupt", "pause").
    pub(crate) fn action(self) -> &'static str {
        match self {
            Halt::Interrupt(_) => "interrupt",
            Halt::Pause(_) => "pause",
            Halt::Cancel(_) => "cancel",
        }
    }

    /// How an execution told this stands until it has stopped.
    pub(crate) fn halting(self) -> Halting {
        match self {
            Halt::Interrupt(_) => Halting::Interrupting,
            Halt::Pause(_) => Halting::Pausing,
            Halt::Cancel(_) => Halting::Cancelling,
        }
    }

    /// The message that asks an execution to apply it.
    pub(crate) fn message(self, reply: Option<RpcReplyPort<bool>>) -> ExecutionMsg {
        match self {
            Halt::Interrupt(strategy) => ExecutionMsg::Interrupt(strategy, reply),
            Halt::Pause(strategy) => ExecutionMsg::Pause(strategy, reply),
            Halt::Cancel(strategy) => ExecutionMsg::Cancel(strategy, reply),
        }
    }

    /// Whether its caller is answered only once the request is durable (a pause or a
    /// cancel must hold across a crash; an interrupt is answered once applied).
    pub(crate) fn is_recorded(self) -> bool {
        !matches!(self, Halt::Interrupt(_))
    }
}

impl ExecutionState {
    /// Applies an interrupt or a pause; the reply says whether it was applied, and waits for
    /// the end when the final record is already on its way.
    pub(super) fn halt(&mut self, halt: Halt, reply: Option<RpcReplyPort<bool>>) {
        tracing::info!(execution_id = %self.record.id, ?halt, "interrupting");
        let now = Instant::now();
        let applied = !self.finished
            && match halt {
                Halt::Interrupt(strategy) => self.run.interrupt(strategy, now),
                Halt::Pause(strategy) => self.run.pause(strategy, now),
                Halt::Cancel(strategy) => self.run.cancel(strategy, now),
            };
        match (halt, reply) {
            // Answered once the request is durable (`Effect::HaltRecorded`).
            (halt, reply) if applied && halt.is_recorded() => self.pause_replies.push_back(reply),
            (_, Some(reply)) if applied || self.finished => {
                let _ = reply.send(applied);
            }
            (_, Some(reply)) => self.late_interrupts.push(reply),
            (_, None) => {}
        }
    }
}
