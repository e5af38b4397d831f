//! An interrupt, a pause or a cancel asked of an execution, before it reaches its actor.

use ractor::RpcReplyPort;

use crate::execution::ExecutionMsg;
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
