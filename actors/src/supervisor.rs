//! The Supervisor actor: holds the execution map and serves every request of the runtime.
//!
//! ```text
//! Supervisor  (entries: ExecutionId -> Entry, waiters, the event bus)
//! ├── Submit  -> validate, write the execution record (group commit, off the handler),
//! │              then spawn an Execution
//! ├── Resume  -> read the execution back (blocking pool), write it as running, spawn
//! ├── Interrupt / Pause / Cancel / InterruptAll -> forwarded to the Execution(s); a
//! │              cancel of one that is not running writes it cancelled
//! ├── Status / List / Wait / Subscribe
//! ├── Stop    -> Stop every Execution, each replying once checkpointed; flush; stop
//! └── Execution <id> ... (linked children; their end arrives as a message, and the
//!                         default "stop when a child stops" handling is overridden)
//! ```
//!
//! The handler never waits on the disk: writes and reads run elsewhere and come back as
//! internal messages, so concurrent submits share group commits.
//!
//! Files: this one has the messages, the state, the actor and the dispatch; `settings`
//! what it applies to every execution; `entry` the execution map's entries and their
//! startup load; `entries` the map and what it publishes to the Catalog; `fetch` reading
//! an execution it does not hold; `start` submit and resume; `keys` idempotency keys;
//! `query` status, tree and wait; `halt` interrupts (of one or all) and pauses; `cancel`
//! cancels; `ended` an execution's end; `prune` deletions and retention; `stop` the
//! shutdown; `restart` what a failed Execution actor gets (a restart from its durable
//! state, or a pause once it fails too often; and a failure on request, to exercise it).

mod cancel;
mod ended;
mod entries;
mod entry;
mod fetch;
mod halt;
mod keys;
mod prune;
mod query;
mod restart;
mod settings;
mod start;
mod stop;

pub(crate) use ended::Ended;
use entries::Entries;
use entry::Entry;
use prune::DeleteReply;
pub use prune::Retention;
pub use settings::Settings;
use start::Restart;
pub use stop::Stopped;
use stop::{Stop, StopReply};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::broadcast;

use crate::error::RuntimeError;
use crate::execution::{ExecutionArgs, Halt};
use crate::limiters::Limiters;
use crate::model::{
    ActorNode, Event, ExecutionId, ExecutionReport, ExecutionStatus, InterruptStrategy, Outcome,
    Plan, Registry, Resources, StopOrder, Submitted,
};
use crate::semaphores::Semaphores;
use crate::store::Store;

/// The Supervisor actor.
#[derive(Debug, Default)]
pub struct Supervisor;

/// What the Supervisor starts from.
#[derive(Debug)]
pub struct SupervisorArgs {
    /// The store.
    pub store: Store,
    /// The item types.
    pub registry: Arc<Registry>,
    /// The settings.
    pub settings: Settings,
    /// Where events are published.
    pub events: broadcast::Sender<Event>,
    /// Shared values items read with `ItemCtx::resource`.
    pub resources: Arc<Resources>,
    /// The semaphores every execution shares.
    pub semaphores: Arc<Semaphores>,
    /// The named rate limiters every execution shares.
    pub limiters: Arc<Limiters>,
    /// Where the Supervisor publishes what it holds in memory, for reads that do not go
    /// through its mailbox.
    pub catalog: crate::catalog::Catalog,
}

type Reply<T> = RpcReplyPort<Result<T, RuntimeError>>;

/// Messages the Supervisor handles. Each request carries its reply port.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Validate and start a plan; replies with the new execution's id once its record is
    /// durable and its Execution is running. A plan with an idempotency key that an
    /// execution already has is answered with that execution (`created: false`), or
    /// refused if that execution's plan was another.
    Submit(Plan, Reply<Submitted>),
    /// One execution's full report. (`Catalog::status` answers without this mailbox,
    /// but for an execution that is starting.)
    Status(ExecutionId, Reply<ExecutionReport>),
    /// Interrupt one running execution.
    Interrupt(ExecutionId, InterruptStrategy, Reply<()>),
    /// Pause one running execution: nothing new starts, running items go on as the
    /// strategy allows, and once quiesced it is `paused` (durably, not resumed at start)
    /// until resumed.
    Pause(ExecutionId, InterruptStrategy, Reply<()>),
    /// Cancel one execution for good: a running one is interrupted with the strategy and
    /// ends `cancelled` once nothing runs (durably, before the reply); an interrupted or
    /// paused one is written `cancelled` at once.
    Cancel(ExecutionId, InterruptStrategy, Reply<()>),
    /// Interrupt every running execution; replies with their ids.
    InterruptAll(InterruptStrategy, RpcReplyPort<Vec<ExecutionId>>),
    /// Resume an interrupted execution.
    Resume(ExecutionId, Reply<()>),
    /// Run a failed execution's failed and skipped items again, keeping what is done.
    RetryFailed(ExecutionId, Reply<()>),
    /// Replies with the outcome once the execution is no longer running.
    Wait(ExecutionId, Reply<Outcome>),
    /// The live actor tree: this supervisor, its executions and their running attempts.
    Tree(RpcReplyPort<ActorNode>),
    /// A receiver of every event published from now on.
    Subscribe(RpcReplyPort<broadcast::Receiver<Event>>),
    /// Stop every execution (each checkpointed), flush the store, reply, stop. The reply
    /// is an error when some execution could not make its checkpoint durable.
    Stop(Reply<()>),
    /// Stop as a shutdown does: every execution interrupted with the order's strategy,
    /// aborted past its `abort_in`, and abandoned if it has not checkpointed within
    /// `give_up_in`; then flush the store, reply with what happened to each, stop.
    Shutdown(StopOrder, RpcReplyPort<Stopped>),
    /// Delete a finished (completed, failed, cancelled or corrupt) execution with all its records.
    Delete(ExecutionId, Reply<()>),
    /// Delete every finished execution the retention no longer keeps; replies with how
    /// many were deleted.
    Prune(Retention, RpcReplyPort<Result<usize, RuntimeError>>),
    /// Fail the execution's actor as a bug in it would, to exercise restart intensity
    /// (see `ExecutionMsg::Fail`). Not for normal use.
    #[doc(hidden)]
    FailExecution(ExecutionId, String, Reply<()>),
    /// Internal messages.
    #[doc(hidden)]
    Internal(SupervisorInternal),
}

/// Internal supervisor messages (from tasks and executions).
#[doc(hidden)]
#[derive(Debug)]
pub struct SupervisorInternal(Internal);

enum StartReply {
    /// A submit, and the idempotency key it created the execution with.
    Submit(Reply<Submitted>, Option<String>),
    /// A resume or a retry of a failed execution, and the status it had before.
    Resume(Reply<()>, ExecutionStatus),
    /// An automatic resume at start (nobody waits for it), and how many tries it took.
    Recover { tries: u32 },
}

impl std::fmt::Debug for StartReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StartReply::Submit(..) => "Submit",
            StartReply::Resume(..) => "Resume",
            StartReply::Recover { .. } => "Recover",
        })
    }
}

impl StartReply {
    fn send(self, id: ExecutionId, result: Result<(), RuntimeError>) {
        match self {
            StartReply::Submit(reply, _) => {
                let _ = reply.send(result.map(|()| Submitted { id, created: true }));
            }
            StartReply::Resume(reply, _) => {
                let _ = reply.send(result);
            }
            StartReply::Recover { .. } => {}
        }
    }
}

#[derive(Debug)]
enum Internal {
    /// The execution's record is durable (or failed to be); spawn it.
    Ready {
        id: ExecutionId,
        args: Result<Box<ExecutionArgs>, RuntimeError>,
        reply: StartReply,
    },
    /// An Execution ended and wrote its final record.
    Ended(Box<Ended>),
    /// An Execution did not apply an interrupt or a pause (it had ended); answer with its
    /// status.
    Refused {
        id: ExecutionId,
        action: &'static str,
        reply: Reply<()>,
    },
    /// Try again to resume an execution left running by an unclean stop.
    Recover { id: ExecutionId, tries: u32 },
    /// A deletion's commits are done (of `ids`, those deleted and, after a failure or a
    /// stop, those whose records stayed).
    Deleted {
        ids: Vec<ExecutionId>,
        deleted: usize,
        error: Option<RuntimeError>,
        reply: DeleteReply,
    },
    /// Every execution a stop began with has answered or been abandoned.
    Stopped { stops: Vec<Stop>, reply: StopReply },
    /// The pause record of a failing execution is durable (with the reason), or not.
    Paused {
        id: ExecutionId,
        result: Result<String, RuntimeError>,
    },
    /// The store says which execution has an idempotency key, if any.
    KeyOwner {
        key: String,
        owner: Result<Option<crate::model::KeyOwner>, RuntimeError>,
    },
    /// The cancelled record of an execution that was not running is durable, or not.
    Cancelled {
        id: ExecutionId,
        result: Result<(), RuntimeError>,
        reply: Reply<()>,
    },
    /// An execution the Supervisor does not hold was read from the store for `msg`.
    Fetched {
        id: ExecutionId,
        found: Result<Option<crate::model::StoredSummary>, RuntimeError>,
        msg: Box<SupervisorMsg>,
        /// Reads of it so far, after the first.
        tries: u32,
    },
    /// A prune's scan of the store (or its size rule) chose these finished executions.
    Chosen {
        victims: Vec<ExecutionId>,
        run: prune::PruneRun,
    },
}

impl SupervisorMsg {
    pub(crate) fn execution_ended(end: Ended) -> Self {
        SupervisorMsg::Internal(SupervisorInternal(Internal::Ended(Box::new(end))))
    }
}

/// The Supervisor's state.
#[derive(Debug)]
pub struct SupervisorState {
    _live: crate::metrics::LiveActor,
    store: Store,
    registry: Arc<Registry>,
    settings: Settings,
    events: broadcast::Sender<Event>,
    resources: Arc<Resources>,
    semaphores: Arc<Semaphores>,
    limiters: Arc<Limiters>,
    entries: Entries,
    waiters: HashMap<ExecutionId, Vec<Reply<Outcome>>>,
    /// Executions whose records a deletion is removing: requests about them are refused.
    deleting_ids: HashSet<ExecutionId>,
    /// Held by each prune under way (its scan may be stale)...
    prune_token: Arc<()>,
    /// ... and the executions taken into memory meanwhile, which it does not delete.
    touched: HashSet<ExecutionId>,
    stopping: bool,
    /// Set with `stopping`, for deletions under way: they stop between batches.
    stop_flag: Arc<std::sync::atomic::AtomicBool>,
    /// Deletions under way; a stop is answered once none is.
    deleting: usize,
    /// The stop request and what it did, answered once no start is in flight.
    stop_reply: Option<(StopReply, Vec<crate::model::ExecutionShutdown>)>,
    /// Stop requests that came while stopping, answered with the first.
    late_stops: Vec<StopReply>,
    /// Idempotency keys of submits being decided (see `keys`).
    keys: keys::Keys,
    /// Executions an unclean stop left running, still to resume, with the tries so far.
    recovery: std::collections::VecDeque<(ExecutionId, u32)>,
    /// How many of those are starting now.
    recovering: usize,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let store = args.store.clone();
        let (entries, crashed, unclean) = entry::load(&store).await?;
        let recovery: std::collections::VecDeque<_> = if args.settings.resume_on_start {
            crashed.into_iter().map(|id| (id, 0)).collect()
        } else {
            std::collections::VecDeque::new()
        };
        // Said as it was: a clean shutdown checkpointed most of these, and only those
        // found running were left so by an unclean stop (a crash, a kill).
        let checkpointed = recovery.len().saturating_sub(unclean);
        if checkpointed > 0 {
            tracing::info!(
                count = checkpointed,
                "resuming the executions the last shutdown checkpointed while they ran"
            );
        }
        if unclean > 0 && !recovery.is_empty() {
            tracing::info!(
                count = unclean,
                "resuming the executions an unclean stop (a crash or a kill) left running"
            );
        }
        Ok(SupervisorState {
            _live: crate::metrics::LiveActor::new(),
            store,
            registry: args.registry,
            settings: args.settings,
            events: args.events,
            resources: args.resources,
            semaphores: args.semaphores,
            limiters: args.limiters,
            entries: Entries::new(entries, args.catalog),
            waiters: HashMap::new(),
            deleting_ids: HashSet::new(),
            prune_token: Arc::new(()),
            touched: HashSet::new(),
            stopping: false,
            stop_flag: Arc::default(),
            deleting: 0,
            stop_reply: None,
            late_stops: Vec::new(),
            keys: keys::Keys::new(),
            recovery,
            recovering: 0,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.recover(&myself);
        state.publish();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.dispatch(&myself, msg, false).await;
        state.publish();
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // An Execution that ends normally reports `Ended` first. One that failed did not:
        // it is restarted from its durable state, or paused (see `restart`).
        if let SupervisionEvent::ActorFailed(cell, reason) = event {
            state.execution_failed(&myself, cell.get_id(), reason.to_string());
        }
        state.publish();
        Ok(())
    }
}

impl SupervisorState {
    /// Handles one message. One about an execution not in memory waits for it to be read
    /// from the store first (`fetched` once it has been).
    async fn dispatch(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        fetched: bool,
    ) {
        if let Some(id) = msg.execution()
            && !self.entries.contains_key(&id)
        {
            if self.deleting_ids.contains(&id) {
                return msg.refuse(RuntimeError::UnknownExecution(id));
            }
            if !fetched {
                return self.fetch(myself, id, msg, 0);
            }
        }
        match msg {
            SupervisorMsg::Submit(plan, reply) => self.submit(myself, plan, reply),
            SupervisorMsg::Resume(id, reply) => self.resume(myself, id, reply, Restart::Resume),
            SupervisorMsg::RetryFailed(id, reply) => {
                self.resume(myself, id, reply, Restart::RetryFailed)
            }
            SupervisorMsg::Status(id, reply) => self.status(id, reply),
            SupervisorMsg::Interrupt(id, strategy, reply) => {
                self.halt(myself, id, Halt::Interrupt(strategy), reply)
            }
            SupervisorMsg::Pause(id, strategy, reply) => {
                self.halt(myself, id, Halt::Pause(strategy), reply)
            }
            SupervisorMsg::Cancel(id, strategy, reply) => self.cancel(myself, id, strategy, reply),
            SupervisorMsg::InterruptAll(strategy, reply) => self.interrupt_all(strategy, reply),
            SupervisorMsg::Wait(id, reply) => self.wait(id, reply),
            SupervisorMsg::FailExecution(id, reason, reply) => {
                self.fail_execution(id, reason, reply)
            }
            SupervisorMsg::Tree(reply) => self.tree(myself, reply),
            SupervisorMsg::Subscribe(reply) => {
                let _ = reply.send(self.events.subscribe());
            }
            SupervisorMsg::Stop(reply) => {
                let order = stop::plain_order(self.settings.stop_grace);
                self.begin_stop(myself, order, StopReply::Plain(reply));
            }
            SupervisorMsg::Delete(id, reply) => self.delete(myself, id, reply),
            SupervisorMsg::Prune(retention, reply) => self.prune(myself, retention, reply),
            SupervisorMsg::Internal(SupervisorInternal(Internal::Deleted {
                ids,
                deleted,
                error,
                reply,
            })) => {
                self.deleted(myself, ids, deleted, error, reply);
                self.finish_stop(myself).await;
            }
            SupervisorMsg::Shutdown(order, reply) => {
                self.begin_stop(myself, order, StopReply::Report(reply));
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Stopped { stops, reply })) => {
                self.stopped(myself, stops, reply).await;
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Ready { id, args, reply })) => {
                // Submits that wait for this keyed one are answered once it is stored.
                let keyed = match &reply {
                    StartReply::Submit(_, Some(key)) => {
                        Some((key.clone(), args.as_ref().map(|_| ()).map_err(Clone::clone)))
                    }
                    _ => None,
                };
                self.spawn(myself, id, args, reply).await;
                if let Some((key, stored)) = keyed {
                    self.key_created(&key, id, stored);
                }
                self.finish_stop(myself).await;
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::KeyOwner { key, owner })) => {
                self.key_owner(myself, key, owner);
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Refused {
                id,
                action,
                reply,
            })) => {
                self.refused(id, action, reply);
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Recover { id, tries })) => {
                self.recovery.push_back((id, tries));
                self.recover(myself);
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Ended(end))) => {
                self.ended(*end);
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Fetched {
                id,
                found,
                msg,
                tries,
            })) => {
                if let Some(msg) = self.fetched(myself, id, found, *msg, tries) {
                    Box::pin(self.dispatch(myself, msg, true)).await;
                }
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Chosen { victims, run })) => {
                self.chosen(myself, victims, run);
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Paused { id, result })) => {
                self.paused(id, result);
                self.finish_stop(myself).await;
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Cancelled {
                id,
                result,
                reply,
            })) => {
                self.cancelled(id, result, reply);
                self.finish_stop(myself).await;
            }
        }
    }
}

impl SupervisorState {
    /// Publishes what changed in memory to the Catalog, letting go of the finished
    /// executions nothing waits on.
    fn publish(&mut self) {
        let waiters = &self.waiters;
        // While stopping, the shutdown report reads how each execution ended from here.
        self.entries
            .publish(|id| waiters.contains_key(id), self.stopping);
        if std::sync::Arc::strong_count(&self.prune_token) == 1 {
            self.touched.clear();
        }
    }

    fn entry(&self, id: ExecutionId) -> Result<&Entry, RuntimeError> {
        let entry = self
            .entries
            .get(&id)
            .ok_or(RuntimeError::UnknownExecution(id))?;
        match &entry.corrupt {
            Some(reason) => Err(RuntimeError::Corrupt {
                id,
                reason: reason.clone(),
            }),
            None => Ok(entry),
        }
    }
}
