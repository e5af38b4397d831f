//! The Execution actor: the shell of one execution's `Run` core. It turns messages into
//! the core's inputs and performs the effects the core returns, in order; every decision
//! (what starts, what an interrupt allows, when an attempt is aborted, when it is over)
//! is the core's.
//!
//! ```text
//! Execution
//! ├── messages -> Run inputs: AttemptsEnded, Interrupt, Pause, Stop, Acked, Granted,
//! │               Deadline, Progress;
//! │               the core holds their records open, and an EndStep the actor sends
//! │               itself (behind what is queued) closes the step: one commit for all
//! └── Run effects ->  Commit   records to the store; its result is queued by the
//!                              store's acknowledgement, which wakes the actor
//!                              with one Acked for however many results are queued
//!                     Acquire / Release   semaphores, in the runtime's shared table
//!                     Take     tokens of the runtime's named rate limiters
//!                     Start    an attempt in a task of its own (`attempt`)
//!                     Cancel   the attempt's control, seen at its next cancellation point
//!                     Abort    its task, its end built here
//!                     Publish  to the event bus
//!                     Ended    tell the supervisor and Stop callers, stop
//! ```
//!
//! Files: this one has the messages, the state and the actor; `effects` performs the
//! core's effects and arms its timer; `commit` sends a step's records and takes their
//! results back; `attempts` the attempts that run (one started in its task, its end taken
//! back, one cancelled or aborted); `halt` interrupts, pauses and cancels; `publish` events
//! and the listing's counts; `stop` takes a Stop or a shutdown; `end` reports the end and
//! stops; `args` builds an execution (new or read back); `report` its status and actor
//! tree.
//!
//! One timer at most: for the core's `next_deadline()`. The attempts are tasks, not
//! actors: the state owns them, and dropping it (the actor stopped, or killed) aborts
//! those still running.

mod args;
mod attempts;
mod commit;
mod effects;
mod end;
mod halt;
mod inbox;
mod params;
mod publish;
mod report;
mod stop;

use commit::Acks;
pub(crate) use inbox::Inbox;
use params::PackedParams;
use stop::StopReply;

use std::collections::HashMap;
use std::sync::Arc;

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::broadcast;

pub use args::ExecutionArgs;
pub(crate) use halt::Halt;

use crate::attempt::{AttemptEnded, Ends, ExecutionPort, RunningAttempt};
use crate::error::StoreError;
use crate::limiters::Limiters;
use crate::model::{
    ActorNode, AttemptPort, Event, ExecutionId, ExecutionReport, ExecutionStatus,
    InterruptStrategy, Progress, Resources,
};
use crate::model::{AttemptControl, Change, ExecutionRecord};
use crate::sched::compile::CompiledPlan;
use crate::sched::run::{Run, RunConfig};
use crate::semaphores::{Grantee, Semaphores};
use crate::store::Store;
use crate::supervisor::SupervisorMsg;

pub use crate::model::STOPPED_BY_STORE;

impl crate::catalog::LiveReport for ActorRef<ExecutionMsg> {
    fn live_report(&self) -> futures::future::BoxFuture<'_, Option<ExecutionReport>> {
        Box::pin(async move {
            match self.call(ExecutionMsg::Status, None).await {
                Ok(ractor::rpc::CallResult::Success(report)) => Some(report),
                _ => None,
            }
        })
    }
}

/// The Execution actor.
#[derive(Debug, Default)]
pub struct Execution;

/// Internal messages, sent by attempt tasks, item contexts, the writer and the timer.
#[doc(hidden)]
#[derive(Debug)]
pub struct ExecutionInternal(Internal);

#[derive(Debug)]
enum Internal {
    /// Attempt ends are queued in `Ends`.
    AttemptsEnded,
    Progress {
        index: u32,
        attempt: u32,
        progress: Option<Progress>,
        message: Option<Arc<str>>,
    },
    /// Commit results are queued in `Acks`.
    Acked,
    /// The item holds the semaphores it asked for under `ticket` (another execution's
    /// attempt released them).
    Granted {
        index: u32,
        ticket: u64,
    },
    Deadline,
    /// The messages that were queued when the step opened are handled: its records go out
    /// as one commit (256 attempts ending at once make one commit request, not 256).
    EndStep,
}

/// Messages an Execution handles.
#[derive(Debug)]
pub enum ExecutionMsg {
    /// Interrupt with `strategy`; the reply, if asked for, says whether it was applied
    /// (`false`: the execution had already ended). A second interrupt can only make it
    /// stricter.
    Interrupt(InterruptStrategy, Option<RpcReplyPort<bool>>),
    /// Pause: nothing new starts, running attempts go on as `strategy` allows, and once
    /// nothing runs the execution ends `paused` (durably; a restart does not resume it).
    /// The reply says whether it was applied, as for `Interrupt`.
    Pause(InterruptStrategy, Option<RpcReplyPort<bool>>),
    /// Cancel: as a pause, but once nothing runs the execution ends `cancelled`, for good
    /// (durably; a restart does not resume it). The reply says whether it was applied, as
    /// for `Interrupt`.
    Cancel(InterruptStrategy, Option<RpcReplyPort<bool>>),
    /// The execution's full report.
    Status(RpcReplyPort<ExecutionReport>),
    /// This actor and its running attempts, for the live actor tree.
    Tree(RpcReplyPort<ActorNode>),
    /// Stop: interrupt at cancellation points (aborting attempts after the stop grace),
    /// write the checkpoint, reply once it is durable, then stop.
    Stop(RpcReplyPort<Result<ExecutionReport, StoreError>>),
    /// Stop as a shutdown does: interrupt with `strategy`, abort the attempts still running
    /// after `abort_in`, write the checkpoint, reply once it is durable, then stop.
    Shutdown {
        /// The interrupt.
        strategy: InterruptStrategy,
        /// When what still runs is aborted.
        abort_in: Duration,
        /// Answered with the final status once the checkpoint is durable.
        reply: RpcReplyPort<Result<ExecutionStatus, StoreError>>,
    },
    /// Fail this actor the way a bug in it would (its handler returns `reason` as an
    /// error), to exercise the Supervisor's restart intensity. Not for normal use.
    #[doc(hidden)]
    Fail(String),
    /// Internal messages from attempt tasks, the writer and the timer.
    #[doc(hidden)]
    Internal(ExecutionInternal),
}

impl ExecutionMsg {
    pub(crate) fn attempts_ended() -> Self {
        ExecutionMsg::Internal(ExecutionInternal(Internal::AttemptsEnded))
    }

    pub(crate) fn progress(
        index: u32,
        attempt: u32,
        progress: Option<Progress>,
        message: Option<Arc<str>>,
    ) -> Self {
        ExecutionMsg::Internal(ExecutionInternal(Internal::Progress {
            index,
            attempt,
            progress,
            message,
        }))
    }

    fn acked() -> Self {
        ExecutionMsg::Internal(ExecutionInternal(Internal::Acked))
    }

    fn granted(index: u32, ticket: u64) -> Self {
        ExecutionMsg::Internal(ExecutionInternal(Internal::Granted { index, ticket }))
    }
}

/// An Execution hears by message that its item got the semaphores it waited for.
impl Grantee for ActorRef<ExecutionMsg> {
    fn granted(&self, index: u32, ticket: u64) {
        // An execution that is gone released its waits first; nobody to tell.
        let _ = self.cast(ExecutionMsg::granted(index, ticket));
    }
}

/// The Execution's state: the core, and what the shell needs to perform its effects.
pub struct ExecutionState {
    _live: crate::metrics::LiveActor,
    record: ExecutionRecord,
    plan: CompiledPlan,
    run: Run,
    /// Item index -> the attempt running: its number, its task and its control (which
    /// holds the item's latest checkpoint while the attempt runs).
    running: HashMap<u32, RunningAttempt>,
    /// The items' params as submitted, packed (`record.plan` then holds `Null` in their
    /// place); `None` when the plan could not be taken (its params are then in it).
    params: Option<PackedParams>,
    /// Controls of ended attempts that nothing else holds, for the next attempts to take
    /// (an attempt's control is shared with its task, so it is its own allocation; the
    /// pool saves one per attempt). Bounded (`attempts::SPARE_CONTROLS`).
    spare_controls: Vec<Arc<AttemptControl>>,
    /// The commits that carry start records, in order: each one's id, how many starts,
    /// and when it went to the store (for the start-wait metric, one clock read a commit).
    start_waits: std::collections::VecDeque<(u64, u32, Instant)>,
    stop_grace: Duration,
    stop_replies: Vec<StopReply>,
    /// Interrupts that came while the final record was on its way: answered "not applied"
    /// once the end is reported to the supervisor.
    late_interrupts: Vec<RpcReplyPort<bool>>,
    /// Pauses applied and not yet durable, oldest first (`None` for one without a reply).
    pause_replies: std::collections::VecDeque<Option<RpcReplyPort<bool>>>,
    /// The last store error, for the Stop callers.
    store_error: Option<StoreError>,
    /// When the armed timer fires, if one is armed.
    timer: Option<Instant>,
    /// An `EndStep` is queued: the open records go out once the messages ahead of it are
    /// handled.
    step_queued: bool,
    acks: Arc<Acks>,
    /// Where the attempt tasks queue how they ended.
    ends: Arc<Ends>,
    /// The buffers the queues are taken into, kept empty between messages.
    acked: Vec<(u64, Result<(), StoreError>)>,
    ended: Vec<AttemptEnded>,
    finished: bool,
    store: Store,
    /// How its attempts reach it and the store (one for all of them).
    port: Arc<dyn AttemptPort>,
    /// How the semaphores tell it of permits granted later (itself, by message).
    grantee: Arc<dyn Grantee>,
    events: broadcast::Sender<Event>,
    supervisor: Option<ActorRef<SupervisorMsg>>,
    /// What it counts for its listing.
    tally: Arc<crate::tally::Tally>,
    /// Each running item's share of done work, in thousandths, as last counted in `tally`
    /// (only items that reported progress).
    partial: HashMap<u32, u16>,
    resources: Arc<Resources>,
    semaphores: Arc<Semaphores>,
    limiters: Arc<Limiters>,
    /// Per item, the named limiters it falls under (empty when none is configured).
    limits: Vec<Arc<[usize]>>,
}

impl std::fmt::Debug for ExecutionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionState")
            .field("id", &self.record.id)
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

impl Actor for Execution {
    type Msg = ExecutionMsg;
    type State = ExecutionState;
    type Arguments = ExecutionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ExecutionMsg>,
        args: ExecutionArgs,
    ) -> Result<ExecutionState, ActorProcessingErr> {
        if !args.record_durable {
            args.store
                .commit(vec![Change::Execution {
                    record: args.record.clone(),
                    new: true,
                }])
                .await?;
        }
        let mut plan = args.plan;
        let mut shape = std::mem::take(&mut plan.shape);
        // Nothing per item unless some limiter is configured.
        let limits: Vec<Arc<[usize]>> = if args.limiters.is_empty() {
            Vec::new()
        } else {
            plan.items
                .iter()
                .map(|i| args.limiters.matching(i.kind, i.tags()))
                .collect()
        };
        if limits.iter().any(|l| !l.is_empty()) {
            shape.limited = limits.iter().map(|l| !l.is_empty()).collect();
        }
        let config = RunConfig {
            parallelism: args.parallelism,
            timeout_grace: args.timeout_grace,
            seed: args.record.id.seed(),
        };
        let mut run = Run::new(shape, args.items, config)
            .with_checkpoints(args.checkpoints)
            .with_records(args.recorded);
        // The records of every message queued behind this one share its commit (see
        // `Internal::EndStep`).
        run.hold_commits();
        let now = Instant::now();
        let mut pause_replies = std::collections::VecDeque::new();
        for halt in args.interrupts {
            match halt {
                Halt::Interrupt(strategy) => run.interrupt(strategy, now),
                Halt::Pause(strategy) => {
                    // Its caller is answered by the Supervisor, once this actor runs.
                    pause_replies.push_back(None);
                    run.pause(strategy, now)
                }
                Halt::Cancel(strategy) => {
                    pause_replies.push_back(None);
                    run.cancel(strategy, now)
                }
            };
        }
        let record = args.record;
        let grantee = Arc::new(myself.clone());
        let port = Arc::new(ExecutionPort::new(record.id, myself, args.store.clone()));
        Ok(ExecutionState {
            record,
            params: None,
            plan,
            run,
            running: HashMap::new(),
            spare_controls: Vec::new(),
            stop_grace: args.stop_grace,
            stop_replies: Vec::new(),
            late_interrupts: Vec::new(),
            pause_replies,
            store_error: None,
            timer: None,
            step_queued: false,
            start_waits: std::collections::VecDeque::new(),
            _live: crate::metrics::LiveActor::new(),
            acks: Arc::new(Acks::default()),
            ends: Arc::new(Ends::default()),
            acked: Vec::new(),
            ended: Vec::new(),
            finished: false,
            port,
            grantee,
            store: args.store,
            events: args.events,
            supervisor: args.supervisor,
            tally: args.tally,
            partial: HashMap::new(),
            resources: args.resources,
            semaphores: args.semaphores,
            limiters: args.limiters,
            limits,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<ExecutionMsg>,
        state: &mut ExecutionState,
    ) -> Result<(), ActorProcessingErr> {
        // The record is durable: only a report reads the items' params from here on. (Here,
        // not in `pre_start`, which the Supervisor waits for.)
        state.params = PackedParams::take(&mut state.record.plan);
        let _ = state.events.send(Event::Execution {
            execution: state.record.id,
            status: ExecutionStatus::Running,
        });
        tracing::info!(execution_id = %state.record.id, name = %state.record.plan.name, "execution started");
        state.run.start(Instant::now());
        state.perform(&myself).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ExecutionMsg>,
        msg: ExecutionMsg,
        state: &mut ExecutionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ExecutionMsg::Fail(reason) => {
                tracing::warn!(execution_id = %state.record.id, %reason, "failing on request");
                return Err(reason.into());
            }
            ExecutionMsg::Status(reply) => {
                let _ = reply.send(state.report());
                return Ok(());
            }
            ExecutionMsg::Tree(reply) => {
                let _ = reply.send(state.tree(&myself));
                return Ok(());
            }
            ExecutionMsg::Interrupt(strategy, reply) => {
                state.halt(Halt::Interrupt(strategy), reply);
            }
            ExecutionMsg::Pause(strategy, reply) => state.halt(Halt::Pause(strategy), reply),
            ExecutionMsg::Cancel(strategy, reply) => state.halt(Halt::Cancel(strategy), reply),
            ExecutionMsg::Stop(reply) => {
                let strategy = InterruptStrategy::Immediate {
                    grace: state.stop_grace,
                };
                if !state.stop(&myself, strategy, None, StopReply::Report(reply)) {
                    return Ok(());
                }
            }
            ExecutionMsg::Shutdown {
                strategy,
                abort_in,
                reply,
            } => {
                if !state.stop(&myself, strategy, Some(abort_in), StopReply::Status(reply)) {
                    return Ok(());
                }
            }
            ExecutionMsg::Internal(ExecutionInternal(internal)) => match internal {
                Internal::AttemptsEnded => {
                    let mut ended = std::mem::take(&mut state.ended);
                    state.ends.take(&mut ended);
                    for AttemptEnded {
                        index,
                        attempt,
                        end,
                    } in ended.drain(..)
                    {
                        state.attempt_ended(index, attempt, end);
                    }
                    state.ended = ended;
                }
                Internal::Progress {
                    index,
                    attempt,
                    progress,
                    message,
                } => {
                    // An attempt's end is queued apart from its progress and may be taken
                    // first: progress of an attempt that has ended is stale.
                    if state
                        .running
                        .get(&index)
                        .is_some_and(|running| running.attempt == attempt)
                    {
                        state.run.progress(index, progress, message)
                    }
                }
                Internal::Acked => {
                    let now = Instant::now();
                    let mut acked = std::mem::take(&mut state.acked);
                    state.acks.take(&mut acked);
                    for (commit, result) in acked.drain(..) {
                        // (After a failed commit the core starts nothing.)
                        let starts = result.is_ok() && !state.run.is_broken();
                        state.start_waited(commit, starts, now);
                        if let Err(e) = &result {
                            tracing::error!(execution_id = %state.record.id, error = %e, "a commit of this execution failed; it stops starting items");
                            state.store_error = Some(e.clone());
                        }
                        state
                            .run
                            .committed(commit, result.map_err(|e| e.to_string()), now);
                    }
                    state.acked = acked;
                }
                Internal::Granted { index, ticket } => {
                    state.run.granted(index, ticket, Instant::now())
                }
                Internal::Deadline => {
                    state.timer = None;
                    state.run.deadline_reached(Instant::now());
                }
                Internal::EndStep => {
                    state.step_queued = false;
                    state.run.end_step();
                }
            },
        }
        state.perform(&myself).await;
        Ok(())
    }
}

impl ExecutionState {
    fn id(&self) -> ExecutionId {
        self.record.id
    }
}
