//! Interrupts and pauses of one execution, or an interrupt of all: where the request goes
//! (the running actor, the queue of one that is starting, or nowhere, with the reason),
//! and the answer.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use crate::error::RuntimeError;
use crate::execution::{ExecutionMsg, Halt};
use crate::model::{ExecutionId, ExecutionStatus, Halting, InterruptStrategy};
use crate::supervisor::{Internal, Reply, SupervisorInternal, SupervisorMsg, SupervisorState};

impl SupervisorState {
    /// Interrupts every running execution (and queues the interrupt for those starting);
    /// replies with their ids once each has applied it.
    pub(super) fn interrupt_all(
        &mut self,
        strategy: InterruptStrategy,
        reply: RpcReplyPort<Vec<ExecutionId>>,
    ) {
        let live: Vec<ExecutionId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_live())
            .map(|(&id, _)| id)
            .collect();
        let mut interrupted = Vec::new();
        let mut asks = Vec::new();
        for id in live {
            match self.halt_target(id, Halt::Interrupt(strategy)) {
                Ok(None) => interrupted.push(id),
                Ok(Some(actor)) => asks.push((id, actor)),
                Err(_) => {}
            }
        }
        self.publish(); // (they show as interrupting before the answer)
        tokio::spawn(async move {
            let asks = asks.into_iter().map(|(id, actor)| async move {
                ask(&actor, Halt::Interrupt(strategy)).await.then_some(id)
            });
            interrupted.extend(futures::future::join_all(asks).await.into_iter().flatten());
            interrupted.sort();
            let _ = reply.send(interrupted);
        });
    }

    /// Interrupts or pauses `id`, answering once the execution applied it (or queued it, if
    /// it is starting).
    pub(super) fn halt(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        halt: Halt,
        reply: Reply<()>,
    ) {
        // A pause or cancel of an execution that is starting is applied before its first
        // item and answered once its actor has made it durable (see `answer_pauses`).
        if halt.is_recorded()
            && self.entry(id).is_ok()
            && let Some(entry) = self.entries.get_mut(&id)
            && entry.actor.is_none()
            && entry.starting
        {
            entry.pending_interrupts.push(halt);
            entry.pending_pauses.push((halt, reply));
            entry.halting = Some(outranking(entry.halting, halt.halting()));
            return;
        }
        match self.halt_target(id, halt) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(None) => {
                let _ = reply.send(Ok(()));
            }
            Ok(Some(actor)) => {
                // The Catalog shows it halting before anyone is answered.
                self.publish();
                // Answered once the execution says it applied it; if it had already ended,
                // its `Ended` is queued ahead of `Refused`.
                let myself = myself.clone();
                tokio::spawn(async move {
                    if ask(&actor, halt).await {
                        let _ = reply.send(Ok(()));
                    } else {
                        let action = halt.action();
                        let refused = Internal::Refused { id, action, reply };
                        let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(refused)));
                    }
                });
            }
        }
    }

    /// Where an interrupt or pause of `id` goes: `None` when it is queued for an execution
    /// that is starting, the actor to ask when it runs, an error when nothing runs (a
    /// paused execution cannot be paused again, nor interrupted).
    pub(super) fn halt_target(
        &mut self,
        id: ExecutionId,
        halt: Halt,
    ) -> Result<Option<ActorRef<ExecutionMsg>>, RuntimeError> {
        self.entry(id)?;
        let Some(entry) = self.entries.get_mut(&id) else {
            return Err(RuntimeError::UnknownExecution(id));
        };
        if entry.actor.is_some() || entry.starting {
            entry.halting = Some(outranking(entry.halting, halt.halting()));
        }
        if let Some(actor) = &entry.actor {
            return Ok(Some(actor.clone()));
        }
        if entry.starting {
            entry.pending_interrupts.push(halt);
            return Ok(None);
        }
        Err(RuntimeError::InvalidState {
            id,
            action: halt.action(),
            status: entry.status,
        })
    }

    /// Answers the pauses that waited for `id` to start: a running execution applied them
    /// before its first item, and it is asked again (a pause is idempotent) so the answer
    /// comes once the request is durable; otherwise they did not happen, and say why.
    pub(super) fn answer_pauses(&mut self, id: ExecutionId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if entry.starting || entry.pending_pauses.is_empty() {
            return;
        }
        let replies = std::mem::take(&mut entry.pending_pauses);
        match &entry.actor {
            Some(actor) => {
                for (halt, reply) in replies {
                    let actor = actor.clone();
                    // Asked again (idempotent): answered once the request is durable.
                    let halt = match halt {
                        Halt::Cancel(_) => Halt::Cancel(InterruptStrategy::FinishCurrent),
                        _ => Halt::Pause(InterruptStrategy::FinishCurrent),
                    };
                    tokio::spawn(async move {
                        let result = if ask(&actor, halt).await {
                            Ok(())
                        } else {
                            Err(RuntimeError::Actor(format!(
                                "execution {id} did not make the {} durable",
                                halt.action()
                            )))
                        };
                        let _ = reply.send(result);
                    });
                }
            }
            None => {
                for (halt, reply) in replies {
                    let result = match (halt, entry.status) {
                        // Paused meanwhile (its actor kept failing): what was asked holds.
                        (Halt::Pause(_), ExecutionStatus::Paused) => Ok(()),
                        (Halt::Cancel(_), ExecutionStatus::Cancelled) => Ok(()),
                        _ if self.stopping => Err(RuntimeError::ShuttingDown),
                        (halt, status) => Err(RuntimeError::InvalidState {
                            id,
                            action: halt.action(),
                            status,
                        }),
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// The execution did not apply `action`: it had ended. Answers with its status.
    pub(super) fn refused(&mut self, id: ExecutionId, action: &'static str, reply: Reply<()>) {
        let Some(status) = self.entries.get(&id).map(|e| e.status) else {
            // It ended and was let go meanwhile: the store says how it ended.
            let store = self.store.clone();
            tokio::spawn(async move {
                let found = store.summary(id).await;
                drop(store);
                let _ = reply.send(Err(match found {
                    Ok(Some(listed)) => RuntimeError::InvalidState {
                        id,
                        action,
                        status: listed.summary.status,
                    },
                    Ok(None) => RuntimeError::UnknownExecution(id),
                    Err(e) => e.into(),
                }));
            });
            return;
        };
        let _ = reply.send(Err(match Some(status) {
            Some(status) if status != ExecutionStatus::Running => {
                RuntimeError::InvalidState { id, action, status }
            }
            _ => RuntimeError::Actor(format!("execution {id} did not acknowledge the {action}")),
        }));
    }
}

/// The halting to report when `asked` comes on top of `current`: a cancel outranks a
/// pause, which outranks an interrupt (the stronger one decides the end status).
fn outranking(current: Option<Halting>, asked: Halting) -> Halting {
    let rank = |h: Halting| match h {
        Halting::Interrupting => 0,
        Halting::Pausing => 1,
        Halting::Cancelling => 2,
    };
    match current {
        Some(current) if rank(current) >= rank(asked) => current,
        _ => asked,
    }
}

/// Asks an execution to apply an interrupt or a pause; true once it has.
pub(super) async fn ask(actor: &ActorRef<ExecutionMsg>, halt: Halt) -> bool {
    let asked = actor
        .call(
            |reply| halt.message(Some(reply)),
            Some(Duration::from_secs(10)),
        )
        .await;
    matches!(asked, Ok(ractor::rpc::CallResult::Success(true)))
}
