//! An interrupt or a pause asked of an execution, before it reaches its actor.

use ractor::RpcReplyPort;

use crate::execution::ExecutionMsg;
use crate::model::{Halting, InterruptStrategy};

/// An interrupt or a pause, as it waits for an execution that is starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Halt {
    Interrupt(InterruptStrategy),
    Pause(InterruptStrategy),
}

impl Halt {
    /// What the request is called in errors ("interrupt", "pause").
    pub(crate) fn action(self) -> &'static str {
        match self {
            Halt::Interrupt(_) => "interrupt",
            Halt::Pause(_) => "pause",
        }
    }

    /// How an execution told this stands until it has stopped.
    pub(crate) fn halting(self) -> Halting {
        match self {
            Halt::Interrupt(_) => Halting::Interrupting,
            Halt::Pause(_) => Halting::Pausing,
        }
    }

    /// The message that asks an execution to apply it.
    pub(crate) fn message(self, reply: Option<RpcReplyPort<bool>>) -> ExecutionMsg {
        match self {
            Halt::Interrupt(strategy) => ExecutionMsg::Interrupt(strategy, reply),
            Halt::Pause(strategy) => ExecutionMsg::Pause(strategy, reply),
        }
    }
}
