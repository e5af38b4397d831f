//! Stopping: every execution checkpointed and acknowledged, then the store flushed.

use std::time::Duration;

use ractor::ActorRef;

use crate::error::RuntimeError;
use crate::execution::ExecutionMsg;
use crate::model::ExecutionId;
use crate::supervisor::{SupervisorMsg, SupervisorState};

impl SupervisorState {
    /// Answers the Stop request and stops the supervisor once no start is in flight.
    pub(super) async fn finish_stop(&mut self, myself: &ActorRef<SupervisorMsg>) {
        if self.stop_reply.is_none() || self.entries.values().any(|e| e.starting) {
            return;
        }
        if let Some((reply, mut result)) = self.stop_reply.take() {
            if let Err(e) = self.store.writer().flush().await {
                result = Err(e.into());
            }
            let _ = reply.send(result);
            myself.stop(Some("stopped".into()));
        }
    }

    /// Stops every running execution and waits until each has written its checkpoint.
    pub(super) async fn stop(&mut self) -> Result<(), RuntimeError> {
        self.stopping = true;
        let timeout = self
            .settings
            .stop_grace
            .saturating_add(Duration::from_secs(30));
        let running: Vec<(ExecutionId, ActorRef<ExecutionMsg>)> = self
            .entries
            .iter()
            .filter_map(|(&id, e)| e.actor.clone().map(|a| (id, a)))
            .collect();
        let stops = running.into_iter().map(|(id, actor)| async move {
            match actor.call(ExecutionMsg::Stop, Some(timeout)).await {
                Ok(ractor::rpc::CallResult::Success(Ok(report))) => {
                    // The execution stops itself right after replying; wait so that no
                    // actor holds the store once the supervisor has stopped.
                    let _ = actor.get_cell().wait(Some(Duration::from_secs(5))).await;
                    Ok(Some(report))
                }
                Ok(ractor::rpc::CallResult::Success(Err(e))) => {
                    tracing::error!(execution_id = %id, error = %e, "execution could not write its checkpoint at Stop");
                    Err(RuntimeError::Store(e))
                }
                Ok(ractor::rpc::CallResult::Timeout) => {
                    tracing::error!(execution_id = %id, "execution did not acknowledge Stop in time");
                    Err(RuntimeError::Actor(format!(
                        "execution {id} did not acknowledge Stop within {timeout:?}"
                    )))
                }
                // It stopped before it could answer: it had just ended, and an execution
                // writes its final record before it stops (its `Ended` is still queued).
                Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Ok(None),
            }
        });
        let mut result = Ok(());
        for stopped in futures::future::join_all(stops).await {
            match stopped {
                Ok(Some(report)) => self.ended(report),
                Ok(None) => {}
                Err(e) => result = Err(e),
            }
        }
        if let Err(e) = self.store.writer().flush().await {
            tracing::error!(error = %e, "flushing the store at stop failed");
            result = Err(e.into());
        }
        // Anyone still waiting is told the runtime stopped.
        for (_, waiters) in self.waiters.drain() {
            for waiter in waiters {
                let _ = waiter.send(Err(RuntimeError::ShuttingDown));
            }
        }
        result
    }
}
