//! Stopping: every execution interrupted, stopped and acknowledged (checkpointed) or, past
//! the order's deadline, abandoned; then the store flushed and the supervisor stopped.
//!
//! The stops run on a task, so the supervisor keeps answering (status, list, the `Ended`
//! of executions that finish meanwhile) while they go on; submits and resumes are refused.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};

use crate::error::{RuntimeError, StoreError};
use crate::execution::ExecutionMsg;
use crate::model::{
    ExecutionId, ExecutionShutdown, ExecutionStatus, InterruptStrategy, ItemStatus, StopOrder,
    StopResult,
};
use crate::supervisor::{Internal, Reply, SupervisorInternal, SupervisorMsg, SupervisorState};

/// What a shutdown's stop did: per execution, and whether the store flushed.
#[derive(Debug)]
pub struct Stopped {
    /// Every execution that was live when the stop began.
    pub executions: Vec<ExecutionShutdown>,
    /// The store's final flush.
    pub flush: Result<(), StoreError>,
}

/// Who waits for the stop to end.
#[derive(Debug)]
pub(super) enum StopReply {
    /// `SupervisorMsg::Stop`: an error unless every execution was checkpointed.
    Plain(Reply<()>),
    /// `SupervisorMsg::Shutdown`: the whole account.
    Report(RpcReplyPort<Stopped>),
}

/// How one execution's stop went, before the supervisor fills in what it knows.
#[derive(Debug)]
pub(super) enum Stop {
    Done(ExecutionShutdown),
    /// It had stopped before it could answer: it had just ended (its `Ended` is queued
    /// ahead of this result).
    Gone(ExecutionId),
}

impl SupervisorState {
    /// Begins stopping: the executions are stopped on a task, which reports back with
    /// `Internal::Stopped`. A second stop waits for the first.
    pub(super) fn begin_stop(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        order: StopOrder,
        reply: StopReply,
    ) {
        if self.stopping {
            self.late_stops.push(reply);
            return;
        }
        self.stopping = true;
        self.stop_flag
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let running: Vec<(ExecutionId, ActorRef<ExecutionMsg>)> = self
            .entries
            .iter()
            .filter_map(|(&id, e)| e.actor.clone().map(|a| (id, a)))
            .collect();
        let myself = myself.clone();
        tokio::spawn(async move {
            let stops = running
                .into_iter()
                .map(|(id, actor)| stop_one(id, actor, order));
            let stops = futures::future::join_all(stops).await;
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(
                Internal::Stopped { stops, reply },
            )));
        });
    }

    /// Every execution has answered or been abandoned: flush, and answer once no start is
    /// in flight.
    pub(super) async fn stopped(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        stops: Vec<Stop>,
        reply: StopReply,
    ) {
        let executions = stops
            .into_iter()
            .map(|stop| match stop {
                Stop::Done(done) => done,
                Stop::Gone(id) => {
                    let status = self
                        .entries
                        .get(&id)
                        .map_or(ExecutionStatus::Completed, |e| e.status);
                    if status.is_final() {
                        ExecutionShutdown {
                            execution: id,
                            result: StopResult::Completed,
                            status,
                            running: Vec::new(),
                            error: None,
                        }
                    } else {
                        // Its actor failed while stopping: its records still say running.
                        ExecutionShutdown {
                            execution: id,
                            result: StopResult::Abandoned,
                            status: ExecutionStatus::Running,
                            running: Vec::new(),
                            error: Some("its actor stopped before it checkpointed".to_owned()),
                        }
                    }
                }
            })
            .collect();
        self.stop_reply = Some((reply, executions));
        self.finish_stop(myself).await;
    }

    /// Answers the stop and stops the supervisor once no start is in flight.
    pub(super) async fn finish_stop(&mut self, myself: &ActorRef<SupervisorMsg>) {
        if self.stop_reply.is_none()
            || self.deleting > 0
            || self.entries.values().any(|e| e.starting)
        {
            return;
        }
        let Some((reply, executions)) = self.stop_reply.take() else {
            return;
        };
        let flush = self.store.flush().await;
        if let Err(e) = &flush {
            tracing::error!(error = %e, "flushing the store at stop failed");
        }
        // Anyone still waiting is told the runtime stopped.
        for (_, waiters) in self.waiters.drain() {
            for waiter in waiters {
                let _ = waiter.send(Err(RuntimeError::ShuttingDown));
            }
        }
        for late in std::mem::take(&mut self.late_stops) {
            answer(late, Vec::new(), flush.clone());
        }
        answer(reply, executions, flush);
        myself.stop(Some("stopped".into()));
    }
}

fn answer(reply: StopReply, executions: Vec<ExecutionShutdown>, flush: Result<(), StoreError>) {
    match reply {
        StopReply::Report(reply) => {
            let _ = reply.send(Stopped { executions, flush });
        }
        StopReply::Plain(reply) => {
            let abandoned = executions
                .iter()
                .find(|e| e.result == StopResult::Abandoned);
            let result = match (abandoned, flush) {
                (Some(e), _) => Err(RuntimeError::Actor(format!(
                    "execution {} was not checkpointed at stop: {}",
                    e.execution,
                    e.error.as_deref().unwrap_or("no answer")
                ))),
                (None, Err(e)) => Err(e.into()),
                (None, Ok(())) => Ok(()),
            };
            let _ = reply.send(result);
        }
    }
}

/// Stops one execution: its final report once its checkpoint is durable, or abandoned
/// (aborted, with the items it was running) after `order.give_up_in`.
async fn stop_one(id: ExecutionId, actor: ActorRef<ExecutionMsg>, order: StopOrder) -> Stop {
    let StopOrder {
        strategy,
        abort_in,
        give_up_in,
    } = order;
    let began = std::time::Instant::now();
    let left = || give_up_in.saturating_sub(began.elapsed());
    let call = actor
        .call(
            |reply| ExecutionMsg::Shutdown {
                strategy,
                abort_in,
                reply,
            },
            Some(give_up_in),
        )
        .await;
    let why = match call {
        Ok(CallResult::Success(Ok(status))) => {
            // The execution stops itself right after replying; wait so that no actor holds
            // the store once the supervisor has stopped.
            let _ = actor
                .get_cell()
                .wait(Some(
                    Duration::from_secs(5)
                        .min(left())
                        .max(Duration::from_millis(10)),
                ))
                .await;
            let result = if status.is_final() {
                StopResult::Completed
            } else {
                StopResult::Checkpointed
            };
            return Stop::Done(ExecutionShutdown {
                execution: id,
                result,
                status,
                running: Vec::new(),
                error: None,
            });
        }
        Ok(CallResult::Success(Err(e))) => {
            tracing::error!(execution_id = %id, error = %e, "execution could not write its checkpoint at stop");
            format!("its checkpoint could not be made durable: {e}")
        }
        Ok(CallResult::Timeout) => {
            tracing::error!(execution_id = %id, "execution did not checkpoint before the shutdown's deadline");
            format!(
                "it did not checkpoint within {}",
                humantime::format_duration(give_up_in)
            )
        }
        Ok(CallResult::SenderError) | Err(_) => return Stop::Gone(id),
    };
    // What it was running, if it still answers; then it goes, its attempts with it.
    let running = match actor
        .call(
            ExecutionMsg::Status,
            // Within the reserve the shutdown keeps past `give_up_in`.
            Some(Duration::from_millis(200)),
        )
        .await
    {
        Ok(CallResult::Success(report)) => report
            .items()
            .filter(|i| i.status == ItemStatus::Running)
            .map(|i| Arc::from(i.id.as_str()))
            .collect(),
        _ => Vec::new(),
    };
    actor.kill();
    Stop::Done(ExecutionShutdown {
        execution: id,
        result: StopResult::Abandoned,
        status: ExecutionStatus::Running,
        running,
        error: Some(why),
    })
}

/// The order a plain `Stop` gives: cancellation points, aborts after the stop grace.
pub(super) fn plain_order(stop_grace: Duration) -> StopOrder {
    StopOrder {
        strategy: InterruptStrategy::Immediate { grace: stop_grace },
        abort_in: stop_grace,
        give_up_in: stop_grace.saturating_add(Duration::from_secs(30)),
    }
}
