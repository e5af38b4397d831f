//! The Supervisor actor: holds the execution map and serves every request of the runtime.
//!
//! ```text
//! Supervisor  (entries: ExecutionId -> Entry, waiters, the event bus)
//! ├── Submit  -> validate, write the execution record (group commit, off the handler),
//! │              then spawn an Execution
//! ├── Resume  -> read the execution back (blocking pool), write it as running, spawn
//! ├── Interrupt / InterruptAll -> forwarded to the Execution(s)
//! ├── Status / List / Wait / Subscribe
//! ├── Stop    -> Stop every Execution, each replying once checkpointed; flush; stop
//! └── Execution <id> ... (linked children; their end arrives as a message, and the
//!                         default "stop when a child stops" handling is overridden)
//! ```
//!
//! The handler never waits on the disk: writes and reads run elsewhere and come back as
//! internal messages, so concurrent submits share group commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::broadcast;

use crate::error::{RuntimeError, StoreError};
use crate::execution::{Execution, ExecutionArgs, ExecutionMsg};
use crate::model::{
    ActorNode, ActorRole, Event, ExecutionId, ExecutionReport, ExecutionStatus, ExecutionSummary,
    InterruptStrategy, Outcome, Plan, Registry, Resources, now_ms, time_of_ms,
};
use crate::store::{LoadedExecution, Op, Store};

/// The Supervisor actor.
#[derive(Debug, Default)]
pub struct Supervisor;

/// Settings the Supervisor applies to every execution.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Items of one execution that may run at once, unless its plan says otherwise.
    pub parallelism: usize,
    /// On `Stop`, how long running attempts get to reach a cancellation point before they
    /// are aborted.
    pub stop_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            parallelism: 64,
            stop_grace: Duration::from_secs(10),
        }
    }
}

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
}

type Reply<T> = RpcReplyPort<Result<T, RuntimeError>>;

/// Messages the Supervisor handles. Each request carries its reply port.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Validate and start a plan; replies with the new execution's id once its record is
    /// durable and its Execution is running.
    Submit(Plan, Reply<ExecutionId>),
    /// One execution's full report.
    Status(ExecutionId, Reply<ExecutionReport>),
    /// Every execution, oldest first.
    List(RpcReplyPort<Vec<ExecutionSummary>>),
    /// Interrupt one running execution.
    Interrupt(ExecutionId, InterruptStrategy, Reply<()>),
    /// Interrupt every running execution; replies with their ids.
    InterruptAll(InterruptStrategy, RpcReplyPort<Vec<ExecutionId>>),
    /// Resume an interrupted execution.
    Resume(ExecutionId, Reply<()>),
    /// Replies with the outcome once the execution is no longer running.
    Wait(ExecutionId, Reply<Outcome>),
    /// The live actor tree: this supervisor, its executions and their workers.
    Tree(RpcReplyPort<ActorNode>),
    /// A receiver of every event published from now on.
    Subscribe(RpcReplyPort<broadcast::Receiver<Event>>),
    /// Stop every execution (each checkpointed), flush the store, reply, stop. The reply
    /// is an error when some execution could not make its checkpoint durable.
    Stop(Reply<()>),
    /// Internal messages.
    #[doc(hidden)]
    Internal(SupervisorInternal),
}

/// Internal supervisor messages (from tasks and executions).
#[doc(hidden)]
#[derive(Debug)]
pub struct SupervisorInternal(Internal);

enum StartReply {
    Submit(Reply<ExecutionId>),
    Resume(Reply<()>),
}

impl std::fmt::Debug for StartReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StartReply::Submit(_) => "Submit",
            StartReply::Resume(_) => "Resume",
        })
    }
}

impl StartReply {
    fn send(self, id: ExecutionId, result: Result<(), RuntimeError>) {
        match self {
            StartReply::Submit(reply) => {
                let _ = reply.send(result.map(|()| id));
            }
            StartReply::Resume(reply) => {
                let _ = reply.send(result);
            }
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
    Ended(Box<ExecutionReport>),
    /// An Execution did not apply an interrupt (it had ended); answer with its status.
    Refused { id: ExecutionId, reply: Reply<()> },
}

impl SupervisorMsg {
    pub(crate) fn execution_ended(report: ExecutionReport) -> Self {
        SupervisorMsg::Internal(SupervisorInternal(Internal::Ended(Box::new(report))))
    }
}

#[derive(Debug)]
struct Entry {
    name: String,
    status: ExecutionStatus,
    items_total: usize,
    done: Arc<AtomicUsize>,
    created_ms: u64,
    updated_ms: u64,
    actor: Option<ActorRef<ExecutionMsg>>,
    /// A submit or resume is writing the record; the actor is not spawned yet.
    starting: bool,
    /// Interrupts that arrived while starting, applied before its first item starts.
    pending_interrupts: Vec<InterruptStrategy>,
    /// Status requests that arrived while starting, answered once it runs (or failed).
    pending_status: Vec<Reply<ExecutionReport>>,
    corrupt: Option<String>,
}

impl Entry {
    fn is_live(&self) -> bool {
        self.actor.is_some() || self.starting
    }

    fn summary(&self, id: ExecutionId) -> ExecutionSummary {
        ExecutionSummary {
            id,
            name: self.name.clone(),
            status: self.status,
            items_total: self.items_total,
            items_done: self.done.load(Ordering::Relaxed),
            created: time_of_ms(self.created_ms),
            updated: time_of_ms(self.updated_ms),
            error: self.corrupt.clone(),
        }
    }
}

/// The Supervisor's state.
#[derive(Debug)]
pub struct SupervisorState {
    store: Store,
    registry: Arc<Registry>,
    settings: Settings,
    events: broadcast::Sender<Event>,
    resources: Arc<Resources>,
    entries: BTreeMap<ExecutionId, Entry>,
    waiters: HashMap<ExecutionId, Vec<Reply<Outcome>>>,
    stopping: bool,
    /// The Stop request and its result, answered once no start is in flight.
    stop_reply: Option<(Reply<()>, Result<(), RuntimeError>)>,
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
        let loaded = store.read(|s| s.load_all()).await?;
        let mut entries = BTreeMap::new();
        let mut crashed = Vec::new();
        for execution in loaded {
            match execution {
                LoadedExecution::Sound { record, items_done } => {
                    let mut status = record.status;
                    if status == ExecutionStatus::Running {
                        // The process stopped without checkpointing it: it is interrupted.
                        status = ExecutionStatus::Interrupted;
                        crashed.push(record.clone());
                    }
                    entries.insert(
                        record.id,
                        Entry {
                            name: record.plan.name.clone(),
                            status,
                            items_total: record.plan.item_count(),
                            done: Arc::new(AtomicUsize::new(items_done)),
                            created_ms: record.created_ms,
                            updated_ms: record.updated_ms,
                            actor: None,
                            starting: false,
                            pending_interrupts: Vec::new(),
                            pending_status: Vec::new(),
                            corrupt: None,
                        },
                    );
                }
                LoadedExecution::Corrupt { id, reason } => {
                    tracing::error!(execution_id = %id, %reason, "execution is corrupt");
                    let created = id
                        .created_at()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0);
                    entries.insert(
                        id,
                        Entry {
                            name: String::new(),
                            status: ExecutionStatus::Corrupt,
                            items_total: 0,
                            done: Arc::new(AtomicUsize::new(0)),
                            created_ms: created,
                            updated_ms: created,
                            actor: None,
                            starting: false,
                            pending_interrupts: Vec::new(),
                            pending_status: Vec::new(),
                            corrupt: Some(reason),
                        },
                    );
                }
            }
        }
        // Record the executions found running as interrupted, so the file says what the
        // runtime reports.
        let mut ops = Vec::with_capacity(crashed.len());
        for mut record in crashed {
            record.status = ExecutionStatus::Interrupted;
            ops.push(Op::Execution {
                id: record.id,
                record: crate::store::encode(&record)?,
            });
        }
        if !ops.is_empty() {
            tracing::info!(
                count = ops.len(),
                "executions found running at startup are now interrupted"
            );
            store.writer().commit(ops).await?;
        }
        Ok(SupervisorState {
            store,
            registry: args.registry,
            settings: args.settings,
            events: args.events,
            resources: args.resources,
            entries,
            waiters: HashMap::new(),
            stopping: false,
            stop_reply: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Submit(plan, reply) => state.submit(&myself, plan, reply),
            SupervisorMsg::Resume(id, reply) => state.resume(&myself, id, reply),
            SupervisorMsg::Status(id, reply) => state.status(id, reply),
            SupervisorMsg::List(reply) => {
                let list = state
                    .entries
                    .iter()
                    .map(|(&id, entry)| entry.summary(id))
                    .collect();
                let _ = reply.send(list);
            }
            SupervisorMsg::Interrupt(id, strategy, reply) => {
                match state.interrupt_target(id, strategy) {
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                    Ok(None) => {
                        let _ = reply.send(Ok(()));
                    }
                    Ok(Some(actor)) => {
                        // Answered once the execution says it applied the interrupt; if it
                        // had already ended, its `Ended` is queued ahead of `Refused`.
                        let myself = myself.clone();
                        tokio::spawn(async move {
                            if ask_interrupt(&actor, strategy).await {
                                let _ = reply.send(Ok(()));
                            } else {
                                let refused = Internal::Refused { id, reply };
                                let _ = myself
                                    .cast(SupervisorMsg::Internal(SupervisorInternal(refused)));
                            }
                        });
                    }
                }
            }
            SupervisorMsg::InterruptAll(strategy, reply) => {
                let live: Vec<ExecutionId> = state
                    .entries
                    .iter()
                    .filter(|(_, e)| e.is_live())
                    .map(|(&id, _)| id)
                    .collect();
                let mut interrupted = Vec::new();
                let mut asks = Vec::new();
                for id in live {
                    match state.interrupt_target(id, strategy) {
                        Ok(None) => interrupted.push(id),
                        Ok(Some(actor)) => asks.push((id, actor)),
                        Err(_) => {}
                    }
                }
                tokio::spawn(async move {
                    let asks = asks.into_iter().map(|(id, actor)| async move {
                        ask_interrupt(&actor, strategy).await.then_some(id)
                    });
                    interrupted.extend(futures::future::join_all(asks).await.into_iter().flatten());
                    interrupted.sort();
                    let _ = reply.send(interrupted);
                });
            }
            SupervisorMsg::Wait(id, reply) => state.wait(id, reply),
            SupervisorMsg::Tree(reply) => state.tree(&myself, reply),
            SupervisorMsg::Subscribe(reply) => {
                let _ = reply.send(state.events.subscribe());
            }
            SupervisorMsg::Stop(reply) => {
                let result = state.stop().await;
                // Submits and resumes still writing their record answer first (as
                // `Ready` messages), so none is left with its record written but no reply.
                state.stop_reply = Some((reply, result));
                state.finish_stop(&myself).await;
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Ready { id, args, reply })) => {
                state.spawn(&myself, id, args, reply).await;
                state.finish_stop(&myself).await;
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Refused { id, reply })) => {
                let status = state.entries.get(&id).map(|e| e.status);
                let _ = reply.send(Err(match status {
                    Some(status) if status != ExecutionStatus::Running => {
                        RuntimeError::InvalidState {
                            id,
                            action: "interrupt",
                            status,
                        }
                    }
                    _ => RuntimeError::Actor(format!(
                        "execution {id} did not acknowledge the interrupt"
                    )),
                }));
            }
            SupervisorMsg::Internal(SupervisorInternal(Internal::Ended(report))) => {
                state.ended(*report);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // An Execution that ends normally reports `Ended` first. One that failed did not:
        // its last durable state is what a resume continues from.
        if let SupervisionEvent::ActorFailed(cell, reason) = event {
            let failed = state.entries.iter_mut().find(|(_, e)| {
                e.actor
                    .as_ref()
                    .is_some_and(|a| a.get_id() == cell.get_id())
            });
            if let Some((&id, entry)) = failed {
                tracing::error!(execution_id = %id, %reason, "execution actor failed; it is now interrupted");
                entry.actor = None;
                entry.status = ExecutionStatus::Interrupted;
                entry.updated_ms = now_ms();
                for waiter in state.waiters.remove(&id).unwrap_or_default() {
                    let _ = waiter.send(Err(RuntimeError::Actor(format!(
                        "execution {id} failed: {reason}"
                    ))));
                }
            }
        }
        Ok(())
    }
}

impl SupervisorState {
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

    fn submit(&mut self, myself: &ActorRef<SupervisorMsg>, plan: Plan, reply: Reply<ExecutionId>) {
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

    fn resume(&mut self, myself: &ActorRef<SupervisorMsg>, id: ExecutionId, reply: Reply<()>) {
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

    async fn spawn(
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
    fn answer_pending(&mut self, id: ExecutionId) {
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

    /// Where an interrupt of `id` goes: `None` when it is queued for an execution that is
    /// starting, the actor to ask when it runs, an error when nothing runs.
    fn interrupt_target(
        &mut self,
        id: ExecutionId,
        strategy: InterruptStrategy,
    ) -> Result<Option<ActorRef<ExecutionMsg>>, RuntimeError> {
        self.entry(id)?;
        let Some(entry) = self.entries.get_mut(&id) else {
            return Err(RuntimeError::UnknownExecution(id));
        };
        if let Some(actor) = &entry.actor {
            return Ok(Some(actor.clone()));
        }
        if entry.starting {
            entry.pending_interrupts.push(strategy);
            return Ok(None);
        }
        Err(RuntimeError::InvalidState {
            id,
            action: "interrupt",
            status: entry.status,
        })
    }

    fn status(&mut self, id: ExecutionId, reply: Reply<ExecutionReport>) {
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
            let report = store
                .read(move |s| s.load_execution(id))
                .await
                .map(|stored| {
                    let stored_status = match stored.record.status {
                        ExecutionStatus::Running if status != ExecutionStatus::Running => {
                            ExecutionStatus::Interrupted
                        }
                        s => s,
                    };
                    stored.report(stored_status)
                })
                .map_err(RuntimeError::from);
            let _ = reply.send(report);
        });
    }

    fn tree(&self, myself: &ActorRef<SupervisorMsg>, reply: RpcReplyPort<ActorNode>) {
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

    fn wait(&mut self, id: ExecutionId, reply: Reply<Outcome>) {
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
                        .read(move |s| s.load_execution(id))
                        .await
                        .map(|stored| stored.report(status).outcome())
                        .map_err(RuntimeError::from);
                    let _ = reply.send(outcome);
                });
            }
        }
    }

    fn answer_waiters_from_store(&mut self, id: ExecutionId) {
        let waiters = self.waiters.remove(&id).unwrap_or_default();
        for waiter in waiters {
            self.wait(id, waiter);
        }
    }

    fn ended(&mut self, report: ExecutionReport) {
        let id = report.id;
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.actor = None;
            entry.status = report.status;
            entry.updated_ms = report
                .updated
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_else(|_| now_ms());
        }
        let waiters = self.waiters.remove(&id).unwrap_or_default();
        if !waiters.is_empty() {
            let outcome = report.outcome();
            for waiter in waiters {
                let _ = waiter.send(Ok(outcome.clone()));
            }
        }
    }

    /// Answers the Stop request and stops the supervisor once no start is in flight.
    async fn finish_stop(&mut self, myself: &ActorRef<SupervisorMsg>) {
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
    async fn stop(&mut self) -> Result<(), RuntimeError> {
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

/// Asks an execution to apply an interrupt; true once it has.
async fn ask_interrupt(actor: &ActorRef<ExecutionMsg>, strategy: InterruptStrategy) -> bool {
    let asked = actor
        .call(
            |reply| ExecutionMsg::Interrupt(strategy, Some(reply)),
            Some(Duration::from_secs(10)),
        )
        .await;
    matches!(asked, Ok(ractor::rpc::CallResult::Success(true)))
}
