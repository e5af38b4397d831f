//! Reading executions: status (asked here, or by the Catalog of one that is starting),
//! the live tree, and waiting for an outcome.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use crate::catalog::ReportSource;
use crate::error::RuntimeError;
use crate::execution::ExecutionMsg;
use crate::model::{ActorNode, ActorRole, ExecutionId, ExecutionReport, Outcome};
use crate::supervisor::{Reply, SupervisorMsg, SupervisorState};

/// The Catalog asks the Supervisor for an execution that is starting.
impl ReportSource for ActorRef<SupervisorMsg> {
    async fn report(&self, id: ExecutionId) -> Result<ExecutionReport, RuntimeError> {
        match self
            .call(|reply| SupervisorMsg::Status(id, reply), None)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(result)) => result,
            Ok(_) => Err(RuntimeError::Actor(
                "the supervisor did not answer".to_owned(),
            )),
            Err(e) => Err(RuntimeError::Actor(e.to_string())),
        }
    }
}

impl SupervisorState {
    pub(super) fn status(&mut self, id: ExecutionId, reply: Reply<ExecutionReport>) {
        let entry = match self.entry(id) {
            Ok(entry) => entry,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if entry.starting {
            // Its record may not be durable yet: answer once the start settles.
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.pending_status.push(reply);
            }
            return;
        }
        let actor = entry.actor.clone();
        let status = entry.status;
        let problem = entry.problem.clone();
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Some(actor) = actor
                && let Ok(ractor::rpc::CallResult::Success(report)) =
                    actor.call(ExecutionMsg::Status, None).await
            {
                let _ = reply.send(Ok(report));
                return;
            }
            // Not running (or it just ended): the store has its last state.
            let report = crate::catalog::stored_report(&store, id, Some(status), problem).await;
            // Released before the answer, so a caller that shuts down and reopens the
            // directory after it never finds the file still held.
            drop(store);
            let _ = reply.send(report);
        });
    }

    pub(super) fn tree(&self, myself: &ActorRef<SupervisorMsg>, reply: RpcReplyPort<ActorNode>) {
        let executions: Vec<ActorRef<ExecutionMsg>> = self
            .entries
            .values()
            .filter_map(|e| e.actor.clone())
            .collect();
        let mut root = ActorNode {
            role: ActorRole::Supervisor,
            name: "supervisor".to_owned(),
            actor_id: myself.get_id().to_string(),
            status: if self.stopping { "stopping" } else { "running" }.to_owned(),
            children: Vec::new(),
        };
        tokio::spawn(async move {
            let asks = executions.iter().map(|actor| async move {
                match actor
                    .call(ExecutionMsg::Tree, Some(Duration::from_secs(5)))
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(node)) => Some(node),
                    // It ended meanwhile: it is no longer part of the tree.
                    _ => None,
                }
            });
            root.children = futures::future::join_all(asks)
                .await
                .into_iter()
                .flatten()
                .collect();
            let _ = reply.send(root);
        });
    }

    pub(super) fn wait(&mut self, id: ExecutionId, reply: Reply<Outcome>) {
        match self.entry(id) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(entry) if entry.is_live() => {
                self.waiters.entry(id).or_default().push(reply);
            }
            Ok(entry) => {
                let status = entry.status;
                let store = self.store.clone();
                tokio::spawn(async move {
                    let outcome = store
                        .load_execution(id)
                        .await
                        .map(|stored| stored.report(status).outcome())
                        .map_err(|e| match e {
                            crate::error::StoreError::Missing(id) => {
                                RuntimeError::UnknownExecution(id)
                            }
                            e => RuntimeError::from(e),
                        });
                    drop(store);
                    let _ = reply.send(outcome);
                });
            }
        }
    }

    pub(super) fn answer_waiters_from_store(&mut self, id: ExecutionId) {
        let waiters = self.waiters.remove(&id).unwrap_or_default();
        for waiter in waiters {
            self.wait(id, waiter);
        }
    }
}
