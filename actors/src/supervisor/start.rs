//! Starting executions: submit (validate, write the record, spawn) and resume (read back,
//! write as running, spawn), with the requests that wait for a start to settle.

use ractor::{Actor, ActorRef};

use crate::error::{RuntimeError, StoreError};
use crate::execution::{Execution, ExecutionArgs};
use crate::model::{ExecutionId, ExecutionStatus, Plan, now_ms};
use crate::store::Op;
use crate::supervisor::entry::Entry;
use crate::supervisor::{
    Internal, Reply, StartReply, SupervisorInternal, SupervisorMsg, SupervisorState,
};

impl SupervisorState {
    pub(super) fn submit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        plan: Plan,
        reply: Reply<ExecutionId>,
    ) {
        if self.stopping {
            let _ = reply.send(Err(RuntimeError::ShuttingDown));
            return;
        }
        let id = ExecutionId::generate();
        let args = match ExecutionArgs::new(
            id,
            plan,
            &self.registry,
            self.store.clone(),
            self.events.clone(),
        ) {
            Ok(args) => args,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        let record = match crate::store::encode(&args.record) {
            Ok(record) => record,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        self.entries.insert(
            id,
            Entry {
                name: args.record.plan.name.clone(),
                status: ExecutionStatus::Running,
                items_total: args.plan.items.len(),
                done: args.done_counter(),
                created_ms: args.record.created_ms,
                updated_ms: args.record.updated_ms,
                actor: None,
                starting: true,
                pending_interrupts: Vec::new(),
                pending_status: Vec::new(),
                corrupt: None,
            },
        );
        let durable = self.store.writer().send(vec![Op::Execution { id, record }]);
        let myself = myself.clone();
        tokio::spawn(async move {
            let args = match durable.await {
                Ok(Ok(())) => Ok(Box::new(args)),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(StoreError::Closed.into()),
            };
            let msg = Internal::Ready {
                id,
                args,
                reply: StartReply::Submit(reply),
            };
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(msg)));
        });
    }

    pub(super) fn resume(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        reply: Reply<()>,
    ) {
        if self.stopping {
            let _ = reply.send(Err(RuntimeError::ShuttingDown));
            return;
        }
        let entry = match self.entry(id) {
            Ok(entry) => entry,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if entry.is_live() || entry.status != ExecutionStatus::Interrupted {
            let _ = reply.send(Err(RuntimeError::InvalidState {
                id,
                action: "resume",
                status: entry.status,
            }));
            return;
        }
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.starting = true;
            entry.status = ExecutionStatus::Running;
        }
        let store = self.store.clone();
        let registry = self.registry.clone();
        let events = self.events.clone();
        let myself = myself.clone();
        tokio::spawn(async move {
            let args = async {
                let stored = store.read(move |s| s.load_execution(id)).await?;
                let args = ExecutionArgs::resume(stored, &registry, store.clone(), events)?;
                let record = crate::store::encode(&args.record)?;
                store
                    .writer()
                    .commit(vec![Op::Execution { id, record }])
                    .await?;
                Ok::<_, RuntimeError>(Box::new(args))
            }
            .await;
            let msg = Internal::Ready {
                id,
                args,
                reply: StartReply::Resume(reply),
            };
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(msg)));
        });
    }

    pub(super) async fn spawn(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        args: Result<Box<ExecutionArgs>, RuntimeError>,
        reply: StartReply,
    ) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return reply.send(id, Err(RuntimeError::UnknownExecution(id)));
        };
        entry.starting = false;
        if self.stopping {
            // Stopping: nothing new runs. A submit whose record is durable was accepted and
            // is resumable after a restart, so it gets its id; a resume did not happen.
            entry.status = ExecutionStatus::Interrupted;
            match (args, reply) {
                (Ok(_), StartReply::Submit(reply)) => {
                    let _ = reply.send(Ok(id));
                }
                (Err(e), reply) => {
                    if matches!(reply, StartReply::Submit(_)) {
                        self.entries.remove(&id);
                    }
                    reply.send(id, Err(e));
                }
                (Ok(_), reply) => reply.send(id, Err(RuntimeError::ShuttingDown)),
            }
            return self.answer_pending(id);
        }
        let args = match args {
            Ok(args) => args,
            Err(e) => {
                // Nothing runs: a resume leaves the execution interrupted; a submit whose
                // record never became durable is forgotten.
                if matches!(reply, StartReply::Submit(_)) {
                    for status in std::mem::take(&mut entry.pending_status) {
                        let _ = status.send(Err(e.clone()));
                    }
                    self.entries.remove(&id);
                } else {
                    entry.status = ExecutionStatus::Interrupted;
                }
                reply.send(id, Err(e));
                return self.answer_pending(id);
            }
        };
        entry.done = args.done_counter();
        let args = args
            .with_default_parallelism(self.settings.parallelism)
            .with_stop_grace(self.settings.stop_grace)
            .with_resources(self.resources.clone())
            .record_is_durable()
            .with_interrupts(std::mem::take(&mut entry.pending_interrupts))
            .with_supervisor(myself.clone());
        match Execution::spawn_linked(None, Execution, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                entry.status = ExecutionStatus::Running;
                entry.updated_ms = now_ms();
                entry.actor = Some(actor);
                reply.send(id, Ok(()));
            }
            Err(e) => {
                entry.status = ExecutionStatus::Interrupted;
                reply.send(id, Err(RuntimeError::Actor(e.to_string())));
            }
        }
        self.answer_pending(id);
    }

    /// Answers the requests that waited for a start to settle: status requests in any case,
    /// waiters only if nothing runs.
    pub(super) fn answer_pending(&mut self, id: ExecutionId) {
        let (statuses, live) = match self.entries.get_mut(&id) {
            Some(entry) => (std::mem::take(&mut entry.pending_status), entry.is_live()),
            None => (Vec::new(), false),
        };
        for reply in statuses {
            self.status(id, reply);
        }
        if !live {
            self.answer_waiters_from_store(id);
        }
    }
}
