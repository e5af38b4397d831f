//! Starting executions: submit (validate, write the record, spawn) and resume (read back,
//! write as running, spawn), with the requests that wait for a start to settle.

use std::time::Duration;

use ractor::{Actor, ActorRef};

use crate::error::{RuntimeError, StoreError};
use crate::execution::{Execution, ExecutionArgs, Halt};
use crate::model::{
    Change, ExecutionId, ExecutionStatus, InterruptStrategy, KeyOwner, Plan, Submitted, now_ms,
};
use crate::supervisor::entry::Entry;
use crate::supervisor::{
    Internal, Reply, StartReply, SupervisorInternal, SupervisorMsg, SupervisorState,
};

/// How many times an automatic resume is tried before it is reported.
const RECOVERY_TRIES: u32 = 5;

/// What a restart of a stopped execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// Continue an interrupted execution.
    Resume,
    /// Run a failed execution's failed and skipped items again.
    RetryFailed,
    /// Continue an execution whose actor failed: the attempts it was running count as
    /// interrupted, not as crashes.
    AfterFailure,
}

impl SupervisorState {
    pub(super) fn submit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        plan: Plan,
        reply: Reply<Submitted>,
    ) {
        if self.stopping {
            let _ = reply.send(Err(RuntimeError::ShuttingDown));
            return;
        }
        if let Err(e) = self.settings.check_size(&plan) {
            let _ = reply.send(Err(e.into()));
            return;
        }
        match plan.key.clone() {
            Some(key) => self.submit_keyed(myself, key, plan, reply),
            None => {
                self.create(myself, plan, reply, None);
            }
        }
    }

    /// Validates `plan` and writes the new execution's record (with its idempotency key
    /// and the plan's digest, if keyed), then spawns it; `None` when the plan is refused
    /// (its caller is answered).
    pub(super) fn create(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        plan: Plan,
        reply: Reply<Submitted>,
        key: Option<(String, [u8; 32])>,
    ) -> Option<ExecutionId> {
        // (A keyed submit creates once its key's owner is read: a stop may have begun.)
        if self.stopping {
            let _ = reply.send(Err(RuntimeError::ShuttingDown));
            return None;
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
                return None;
            }
        };
        let mut ops = vec![args.record.change(true)];
        let key = key.map(|(key, digest)| {
            ops.push(Change::Key {
                key: key.clone(),
                owner: KeyOwner { id, digest },
            });
            key
        });
        self.entries.insert(
            id,
            Entry {
                name: args.record.plan.name.clone(),
                status: ExecutionStatus::Running,
                items_total: args.plan.items.len(),
                tally: args.tally(),
                created_ms: args.record.created_ms,
                updated_ms: args.record.updated_ms,
                actor: None,
                starting: true,
                pending_interrupts: Vec::new(),
                pending_pauses: Vec::new(),
                pending_status: Vec::new(),
                corrupt: None,
                problem: None,
                restarts: std::collections::VecDeque::new(),
                killed_attempts: false,
                halting: None,
            },
        );
        let (durable_tx, durable) = tokio::sync::oneshot::channel();
        self.store.send(
            ops,
            Box::new(move |result| {
                let _ = durable_tx.send(result);
            }),
        );
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
                reply: StartReply::Submit(reply, key),
            };
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(msg)));
        });
        Some(id)
    }

    pub(super) fn resume(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        reply: Reply<()>,
        restart: Restart,
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
        let (action, allowed) = match restart {
            Restart::Resume | Restart::AfterFailure => (
                "resume",
                matches!(
                    entry.status,
                    ExecutionStatus::Interrupted | ExecutionStatus::Paused
                ),
            ),
            Restart::RetryFailed => ("retry", entry.status == ExecutionStatus::Failed),
        };
        if entry.is_live() || !allowed {
            let _ = reply.send(Err(RuntimeError::InvalidState {
                id,
                action,
                status: entry.status,
            }));
            return;
        }
        let from = entry.status;
        if let Some(entry) = self.entries.get_mut(&id) {
            // Someone looked at it: failures before this resume no longer count.
            entry.restarts.clear();
        }
        self.restart(myself, id, restart, StartReply::Resume(reply, from));
    }

    /// Resumes, a few at a time, the executions an unclean stop left running.
    pub(super) fn recover(&mut self, myself: &ActorRef<SupervisorMsg>) {
        while self.recovering < self.settings.recovery_concurrency.max(1) && !self.stopping {
            let Some((id, tries)) = self.recovery.pop_front() else {
                return;
            };
            // Resumed by someone meanwhile, or no longer resumable: nothing to do.
            let resumable = self.entries.get(&id).is_some_and(|e| {
                !e.is_live() && e.status == ExecutionStatus::Interrupted && e.corrupt.is_none()
            });
            if resumable {
                self.recovering += 1;
                self.restart(myself, id, Restart::Resume, StartReply::Recover { tries });
            }
        }
    }

    /// Reads execution `id` back, writes it as running and hands it to `spawn`.
    pub(super) fn restart(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        restart: Restart,
        reply: StartReply,
    ) {
        let mut settle = restart == Restart::AfterFailure;
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.starting = true;
            entry.status = ExecutionStatus::Running;
            entry.problem = None;
            entry.halting = None;
            settle |= entry.killed_attempts;
        }
        let store = self.store.clone();
        let registry = self.registry.clone();
        let events = self.events.clone();
        let crash_limit = self.settings.crash_limit;
        let myself = myself.clone();
        tokio::spawn(async move {
            let args = async {
                // Whatever an earlier actor of it sent is durable before it is read back.
                store.flush().await?;
                let mut stored = store.load_execution(id).await?;
                // What the store says, not only what was in memory: a request that read it
                // before it ended (or ran again) must not start it twice.
                let found = stored.record.status;
                let allowed = match restart {
                    Restart::RetryFailed => found == ExecutionStatus::Failed,
                    Restart::Resume | Restart::AfterFailure => !found.is_final(),
                };
                if !allowed {
                    return Err(RuntimeError::InvalidState {
                        id,
                        action: if restart == Restart::RetryFailed {
                            "retry"
                        } else {
                            "resume"
                        },
                        status: found,
                    });
                }
                let killed = if settle {
                    stored.settle_killed()
                } else {
                    Vec::new()
                };
                // Asked to pause or cancel before its actor failed: the restarted one does
                // too.
                let pausing = stored.record.pausing;
                let cancelling = stored.record.cancelling;
                let mut args =
                    ExecutionArgs::resume(stored, &registry, store.clone(), events, crash_limit)?;
                if pausing {
                    args.interrupts
                        .push(Halt::Pause(InterruptStrategy::FinishCurrent));
                }
                if cancelling {
                    args.interrupts
                        .push(Halt::Cancel(InterruptStrategy::FinishCurrent));
                }
                let mut ops = vec![args.record.change(false)];
                ops.extend(killed);
                ops.extend(args.crash_records());
                if restart == Restart::RetryFailed {
                    // Their reset records go in the same commit as the running record, so
                    // a crash leaves either the failed execution or one to resume.
                    ops.extend(args.retry_failed());
                }
                store.commit(ops).await?;
                Ok::<_, RuntimeError>(Box::new(args))
            }
            .await;
            drop(store);
            let msg = Internal::Ready { id, args, reply };
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
        if let StartReply::Recover { tries } = &reply {
            let tries = *tries;
            self.recovering = self.recovering.saturating_sub(1);
            if let Err(e) = &args {
                // Retried a few times (a store error may pass), then reported: the
                // execution stays interrupted and says why, never silently stuck.
                entry.status = ExecutionStatus::Interrupted;
                if tries + 1 < RECOVERY_TRIES && !self.stopping {
                    tracing::warn!(execution_id = %id, error = %e, tries = tries + 1, "automatic resume failed; trying again");
                    // 0.25 s, 0.5 s, 1 s, 2 s: longer than the writer's reopen retry, so
                    // a store that is being reopened has time to come back.
                    let delay = Duration::from_millis(250 << tries);
                    myself.send_after(delay, move || {
                        SupervisorMsg::Internal(SupervisorInternal(Internal::Recover {
                            id,
                            tries: tries + 1,
                        }))
                    });
                } else {
                    tracing::error!(execution_id = %id, error = %e, "automatic resume failed; resume it by hand");
                    entry.problem = Some(format!("automatic resume failed: {e}"));
                }
                // Interrupts that came while it was starting were for a run that did not
                // happen; a later resume must not apply them.
                entry.pending_interrupts.clear();
                self.answer_pending(id);
                return self.recover(myself);
            }
        }
        if self.stopping {
            // Stopping: nothing new runs. A submit whose record is durable was accepted and
            // is resumable after a restart, so it gets its id; a resume did not happen
            // (and one whose record was not written keeps the status it had).
            entry.status = match (&args, &reply) {
                (Err(_), StartReply::Resume(_, before)) => *before,
                _ => ExecutionStatus::Interrupted,
            };
            match (args, reply) {
                (Ok(_), StartReply::Submit(reply, _)) => {
                    let _ = reply.send(Ok(Submitted { id, created: true }));
                }
                (Err(e), reply) => {
                    if matches!(reply, StartReply::Submit(..)) {
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
                if matches!(reply, StartReply::Submit(..)) {
                    for status in std::mem::take(&mut entry.pending_status) {
                        let _ = status.send(Err(e.clone()));
                    }
                    self.entries.remove(&id);
                } else if let StartReply::Resume(_, before) = &reply {
                    entry.status = *before;
                }
                reply.send(id, Err(e));
                return self.answer_pending(id);
            }
        };
        entry.tally = args.tally();
        // Its killed attempts are recorded as interrupted (in the commit just made).
        entry.killed_attempts = false;
        // A pause its record asked for (its actor failed while pausing) is reported too.
        if let Some(halt) = args.interrupts.first() {
            entry.halting = Some(halt.halting());
        }
        let args = args
            .with_default_parallelism(self.settings.parallelism)
            .with_stop_grace(self.settings.stop_grace)
            .with_timeout_grace(self.settings.timeout_grace)
            .with_resources(self.resources.clone())
            .with_semaphores(self.semaphores.clone())
            .with_limiters(self.limiters.clone())
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
        self.recover(myself);
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
        self.answer_pauses(id);
        if !live {
            self.answer_waiters_from_store(id);
        }
    }
}
