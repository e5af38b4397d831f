//! The Execution actor: runs one execution's blocks in order and each block's items in DAG
//! order, up to its parallelism, one ItemWorker per attempt.
//!
//! ```text
//! Execution
//! ├── pump: while a slot is free and an item is ready (and the interrupt allows): spawn
//! │         an ItemWorker for it
//! ├── AttemptEnded (the item's record is already durable) -> mark done / failed /
//! │         interrupted, release dependents, pump
//! ├── Interrupt{strategy} -> stop starting items (PollNextN: after n more); for
//! │         AtCancellationPoint / Immediate send Stop to every worker
//! ├── Stop -> as Immediate with the runtime's stop grace; reply once checkpointed
//! └── nothing running and nothing may start -> write the execution record (durable),
//!           tell the supervisor, reply to Stop callers, stop
//! ```
//!
//! A dependent starts only after its dependencies' Done records are durable, because a
//! worker reports `AttemptEnded` only after its record is committed. Workers are linked
//! children; the default supervision handler (stop on a child's exit) is overridden so a
//! worker that ends, even by failing, never takes its execution down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::broadcast;

use crate::error::{PlanError, RuntimeError, StoreError};
use crate::model::{
    ActorNode, ActorRole, AttemptControl, BlockReport, CompiledPlan, CtxParts, Event, ExecutionId,
    ExecutionReport, ExecutionStatus, InterruptStrategy, ItemReport, ItemStatus, Plan, Progress,
    Registry, Resources, now_ms, time_of_ms,
};
use crate::sched::dag::{Readiness, Start};
use crate::store::{ExecutionRecord, ItemRecord, Op, RECORD_VERSION, Store, StoredExecution};
use crate::supervisor::SupervisorMsg;
use crate::worker::{Attempt, ItemWorker, ItemWorkerArgs, WorkerMsg};

/// The Execution actor.
#[derive(Debug, Default)]
pub struct Execution;

/// How one attempt ended, as the worker reports it (its record is already durable).
#[doc(hidden)]
#[derive(Debug)]
pub struct AttemptEnd {
    pub(crate) status: ItemStatus,
    pub(crate) output: Option<Arc<[u8]>>,
    pub(crate) error: Option<String>,
}

impl AttemptEnd {
    pub(crate) fn failed(error: String) -> Self {
        AttemptEnd {
            status: ItemStatus::Failed,
            output: None,
            error: Some(error),
        }
    }
}

/// Internal messages, sent by workers and item contexts.
#[doc(hidden)]
#[derive(Debug)]
pub struct ExecutionInternal(Internal);

#[derive(Debug)]
enum Internal {
    AttemptEnded {
        index: u32,
        end: AttemptEnd,
    },
    Progress {
        index: u32,
        progress: Option<Progress>,
        message: Option<Arc<str>>,
    },
}

/// Messages an Execution handles.
#[derive(Debug)]
pub enum ExecutionMsg {
    /// Interrupt with `strategy`; the reply, if asked for, says whether it was applied
    /// (`false`: the execution had already ended). A second interrupt can only make it
    /// stricter.
    Interrupt(InterruptStrategy, Option<RpcReplyPort<bool>>),
    /// The execution's full report.
    Status(RpcReplyPort<ExecutionReport>),
    /// This actor and its workers, for the live actor tree.
    Tree(RpcReplyPort<ActorNode>),
    /// Stop: interrupt at cancellation points (aborting attempts after the stop grace),
    /// write the checkpoint, reply once it is durable, then stop.
    Stop(RpcReplyPort<Result<ExecutionReport, StoreError>>),
    /// Internal messages from workers.
    #[doc(hidden)]
    Internal(ExecutionInternal),
}

impl ExecutionMsg {
    pub(crate) fn attempt_ended(index: u32, end: AttemptEnd) -> Self {
        ExecutionMsg::Internal(ExecutionInternal(Internal::AttemptEnded { index, end }))
    }

    pub(crate) fn progress(
        index: u32,
        progress: Option<Progress>,
        message: Option<Arc<str>>,
    ) -> Self {
        ExecutionMsg::Internal(ExecutionInternal(Internal::Progress {
            index,
            progress,
            message,
        }))
    }
}

/// One item as the execution tracks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemSlot {
    pub(crate) status: ItemStatus,
    pub(crate) attempts: u32,
    pub(crate) progress: Option<Progress>,
    pub(crate) message: Option<Arc<str>>,
    pub(crate) output: Option<Arc<[u8]>>,
    pub(crate) error: Option<String>,
    pub(crate) checkpoint: Option<Vec<u8>>,
}

impl ItemSlot {
    /// An item as its stored record and checkpoint say.
    fn resumed(item: ItemRecord, checkpoint: Option<Vec<u8>>) -> Self {
        let status = match item.status {
            // Only these are settled; anything else runs again.
            s @ (ItemStatus::Done | ItemStatus::Failed | ItemStatus::Skipped) => s,
            _ if checkpoint.is_some() || item.attempts > 0 => ItemStatus::Interrupted,
            _ => ItemStatus::Pending,
        };
        ItemSlot {
            status,
            attempts: item.attempts,
            progress: item.progress,
            message: item.message.map(Arc::from),
            output: item.output.map(Arc::from),
            error: item.error,
            checkpoint,
        }
    }
}

/// What an Execution starts from: a new plan or one read back from the store.
pub struct ExecutionArgs {
    pub(crate) record: ExecutionRecord,
    pub(crate) plan: CompiledPlan,
    pub(crate) slots: Vec<ItemSlot>,
    pub(crate) parallelism: usize,
    pub(crate) stop_grace: Duration,
    pub(crate) store: Store,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) supervisor: Option<ActorRef<SupervisorMsg>>,
    pub(crate) done: Arc<AtomicUsize>,
    pub(crate) resources: Arc<Resources>,
    /// Whether the running record is already durable (the Supervisor writes it first, so
    /// that concurrent submits share commits); if not, `pre_start` writes it.
    pub(crate) record_durable: bool,
    /// Interrupts that arrived before the actor ran; applied before the first item starts.
    pub(crate) interrupts: Vec<InterruptStrategy>,
}

impl std::fmt::Debug for ExecutionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionArgs")
            .field("id", &self.record.id)
            .field("name", &self.record.plan.name)
            .finish_non_exhaustive()
    }
}

impl ExecutionArgs {
    /// Arguments for a new execution of `plan`, validated against `registry`. The actor
    /// writes the execution's record durably before it starts any item.
    pub fn new(
        id: ExecutionId,
        plan: Plan,
        registry: &Registry,
        store: Store,
        events: broadcast::Sender<Event>,
    ) -> Result<Self, PlanError> {
        let compiled = CompiledPlan::compile(&plan, registry)?;
        let now = now_ms();
        let record = ExecutionRecord {
            v: RECORD_VERSION,
            id,
            plan,
            status: ExecutionStatus::Running,
            created_ms: now,
            updated_ms: now,
        };
        let slots = vec![ItemSlot::default(); compiled.items.len()];
        Ok(Self::from_parts(record, compiled, slots, store, events))
    }

    /// Arguments to resume an execution read back from the store.
    pub(crate) fn resume(
        stored: StoredExecution,
        registry: &Registry,
        store: Store,
        events: broadcast::Sender<Event>,
    ) -> Result<Self, RuntimeError> {
        let compiled = CompiledPlan::compile(&stored.record.plan, registry)?;
        let mut record = stored.record;
        record.status = ExecutionStatus::Running;
        record.updated_ms = now_ms();
        let slots = stored
            .items
            .into_iter()
            .zip(stored.checkpoints)
            .map(|(item, checkpoint)| ItemSlot::resumed(item.unwrap_or_default(), checkpoint))
            .collect();
        Ok(Self::from_parts(record, compiled, slots, store, events))
    }

    fn from_parts(
        record: ExecutionRecord,
        plan: CompiledPlan,
        slots: Vec<ItemSlot>,
        store: Store,
        events: broadcast::Sender<Event>,
    ) -> Self {
        let done = slots
            .iter()
            .filter(|s| s.status == ItemStatus::Done)
            .count();
        let parallelism = record.plan.parallelism.unwrap_or(64);
        ExecutionArgs {
            record,
            plan,
            slots,
            parallelism,
            stop_grace: Duration::from_secs(10),
            store,
            events,
            supervisor: None,
            done: Arc::new(AtomicUsize::new(done)),
            resources: Arc::new(Resources::new()),
            record_durable: false,
            interrupts: Vec::new(),
        }
    }

    /// The shared values items read with `ItemCtx::resource`.
    pub fn with_resources(mut self, resources: Arc<Resources>) -> Self {
        self.resources = resources;
        self
    }

    /// How many items may run at once when the plan does not say (default 64).
    pub fn with_default_parallelism(mut self, n: usize) -> Self {
        if self.record.plan.parallelism.is_none() {
            self.parallelism = n.max(1);
        }
        self
    }

    /// How long attempts get to reach a cancellation point on `Stop` before they are
    /// aborted (default 10s).
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    pub(crate) fn with_supervisor(mut self, supervisor: ActorRef<SupervisorMsg>) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// Interrupts to apply before the first item starts, in the order they arrived.
    pub(crate) fn with_interrupts(mut self, interrupts: Vec<InterruptStrategy>) -> Self {
        self.interrupts = interrupts;
        self
    }

    /// The caller has made the running record durable already.
    pub(crate) fn record_is_durable(mut self) -> Self {
        self.record_durable = true;
        self
    }

    /// The execution's id.
    pub fn id(&self) -> ExecutionId {
        self.record.id
    }

    pub(crate) fn done_counter(&self) -> Arc<AtomicUsize> {
        self.done.clone()
    }
}

/// The Execution's state.
pub struct ExecutionState {
    record: ExecutionRecord,
    plan: CompiledPlan,
    slots: Vec<ItemSlot>,
    block: usize,
    readiness: Readiness,
    /// Item index -> the worker running it.
    running: HashMap<u32, ActorRef<WorkerMsg>>,
    /// Workers with nothing to do; at most `parallelism` workers exist.
    idle: Vec<ActorRef<WorkerMsg>>,
    parallelism: usize,
    stop_grace: Duration,
    /// Set once interrupted: how many more items may start (`PollNextN`), else 0. A later
    /// interrupt can only lower it; cancelling running attempts happens when it arrives.
    interrupting: Option<usize>,
    stop_replies: Vec<RpcReplyPort<Result<ExecutionReport, StoreError>>>,
    /// Items skipped in this run, whose Skipped records are written with the final record.
    skipped: Vec<u32>,
    failed: bool,
    finished: bool,
    store: Store,
    events: broadcast::Sender<Event>,
    supervisor: Option<ActorRef<SupervisorMsg>>,
    done: Arc<AtomicUsize>,
    resources: Arc<Resources>,
}

impl std::fmt::Debug for ExecutionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionState")
            .field("id", &self.record.id)
            .field("block", &self.block)
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
        _myself: ActorRef<ExecutionMsg>,
        args: ExecutionArgs,
    ) -> Result<ExecutionState, ActorProcessingErr> {
        if !args.record_durable {
            let record = crate::store::encode(&args.record)?;
            let id = args.record.id;
            args.store
                .writer()
                .commit(vec![Op::Execution { id, record }])
                .await?;
        }
        let mut state = ExecutionState {
            record: args.record,
            plan: args.plan,
            slots: args.slots,
            block: 0,
            readiness: Readiness::new(&Default::default(), |_| Start::Done).0,
            running: HashMap::new(),
            idle: Vec::new(),
            parallelism: args.parallelism,
            stop_grace: args.stop_grace,
            interrupting: None,
            stop_replies: Vec::new(),
            skipped: Vec::new(),
            failed: false,
            finished: false,
            store: args.store,
            events: args.events,
            supervisor: args.supervisor,
            done: args.done,
            resources: args.resources,
        };
        state.enter_block(0);
        for strategy in args.interrupts {
            state.interrupt(strategy);
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<ExecutionMsg>,
        state: &mut ExecutionState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.events.send(Event::Execution {
            execution: state.record.id,
            status: ExecutionStatus::Running,
        });
        tracing::info!(execution_id = %state.record.id, name = %state.record.plan.name, "execution started");
        state.pump(&myself).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ExecutionMsg>,
        msg: ExecutionMsg,
        state: &mut ExecutionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ExecutionMsg::Status(reply) => {
                let _ = reply.send(state.report());
            }
            ExecutionMsg::Tree(reply) => {
                let _ = reply.send(state.tree(&myself));
            }
            ExecutionMsg::Interrupt(strategy, reply) => {
                let applied = !state.finished;
                if applied {
                    state.interrupt(strategy);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(applied);
                }
                if applied {
                    state.pump(&myself).await;
                }
            }
            ExecutionMsg::Stop(reply) => {
                if state.finished {
                    let _ = reply.send(Ok(state.report()));
                } else {
                    state.stop_replies.push(reply);
                    state.interrupt(InterruptStrategy::Immediate {
                        grace: state.stop_grace,
                    });
                    state.pump(&myself).await;
                }
            }
            ExecutionMsg::Internal(ExecutionInternal(Internal::AttemptEnded { index, end })) => {
                state.attempt_ended(index, end);
                state.pump(&myself).await;
            }
            ExecutionMsg::Internal(ExecutionInternal(Internal::Progress {
                index,
                progress,
                message,
            })) => state.progress(index, progress, message),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ExecutionMsg>,
        event: SupervisionEvent,
        state: &mut ExecutionState,
    ) -> Result<(), ActorProcessingErr> {
        // Workers end only when the execution stops them. One that failed (its handler
        // panicked or errored) did not report its attempt: the attempt counts as failed.
        if let SupervisionEvent::ActorFailed(cell, reason) = event {
            let failed = state
                .running
                .iter()
                .find(|(_, w)| w.get_id() == cell.get_id())
                .map(|(&index, _)| index);
            if let Some(index) = failed {
                state.attempt_ended(
                    index,
                    AttemptEnd::failed(format!("worker failed: {reason}")),
                );
            }
            // A dead worker never goes back to the pool.
            state.idle.retain(|w| w.get_id() != cell.get_id());
            if failed.is_some() {
                state.pump(&myself).await;
            }
        }
        Ok(())
    }
}

impl ExecutionState {
    fn id(&self) -> ExecutionId {
        self.record.id
    }

    /// Makes block `block` current and marks items it cannot run as skipped.
    fn enter_block(&mut self, block: usize) {
        self.block = block;
        let Some(compiled) = self.plan.blocks.get(block) else {
            return;
        };
        let offset = compiled.range.start;
        let slots = &self.slots;
        let (readiness, skipped) = Readiness::new(&compiled.graph, |local| {
            match slots[(offset + local) as usize].status {
                ItemStatus::Done => Start::Done,
                ItemStatus::Failed | ItemStatus::Skipped => Start::Blocked,
                _ => Start::Pending,
            }
        });
        self.readiness = readiness;
        if self.slots[compiled.range.start as usize..compiled.range.end as usize]
            .iter()
            .any(|s| s.status == ItemStatus::Failed)
        {
            self.failed = true;
        }
        for local in skipped {
            self.skip(offset + local);
        }
    }

    fn skip(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        if slot.status != ItemStatus::Skipped {
            slot.status = ItemStatus::Skipped;
            self.skipped.push(index);
            self.publish_item(index);
        }
    }

    fn publish_item(&self, index: u32) {
        let _ = self.events.send(Event::Item {
            execution: self.id(),
            item: self.plan.items[index as usize].id.clone(),
            status: self.slots[index as usize].status,
        });
    }

    fn interrupt(&mut self, strategy: InterruptStrategy) {
        let allowance = self.interrupting.map_or(strategy.allowance(), |current| {
            current.min(strategy.allowance())
        });
        tracing::info!(execution_id = %self.id(), ?strategy, "interrupting");
        if strategy.cancels_running() {
            let abort_after = match strategy {
                InterruptStrategy::Immediate { grace } => Some(grace),
                _ => None,
            };
            for worker in self.running.values() {
                let _ = worker.cast(WorkerMsg::Stop { abort_after });
            }
        }
        self.interrupting = Some(allowance);
    }

    /// Starts every item that may start; finishes the execution when nothing runs and
    /// nothing may start.
    async fn pump(&mut self, myself: &ActorRef<ExecutionMsg>) {
        if self.finished {
            return;
        }
        loop {
            while self.running.len() < self.parallelism {
                if self.interrupting == Some(0) {
                    break;
                }
                let Some(local) = self.readiness.pop_ready() else {
                    break;
                };
                let index = self.plan.blocks[self.block].range.start + local;
                if let Err(e) = self.start(myself, index).await {
                    tracing::error!(execution_id = %self.id(), error = %e, "cannot spawn an item worker");
                    self.readiness.push_front(local);
                    break;
                }
                if let Some(allowance) = &mut self.interrupting {
                    *allowance -= 1;
                }
            }
            if !self.running.is_empty() {
                return;
            }
            let settled = self.readiness.is_settled();
            let more_blocks = self.block + 1 < self.plan.blocks.len();
            if settled && self.failed {
                for later in self.plan.blocks[self.block + 1..]
                    .iter()
                    .flat_map(|b| b.range.clone())
                    .collect::<Vec<_>>()
                {
                    self.skip(later);
                }
                return self.finish(myself, ExecutionStatus::Failed).await;
            }
            if settled && !more_blocks {
                return self.finish(myself, ExecutionStatus::Completed).await;
            }
            if settled && self.interrupting.is_none() {
                self.enter_block(self.block + 1);
                continue;
            }
            // Not settled and nothing runs: interrupted, or no worker could be spawned (then
            // no message would ever come to retry; it stays resumable).
            return self.finish(myself, ExecutionStatus::Interrupted).await;
        }
    }

    async fn start(&mut self, myself: &ActorRef<ExecutionMsg>, index: u32) -> Result<(), String> {
        let compiled = &self.plan.items[index as usize];
        let inputs = compiled
            .deps
            .iter()
            .map(|&d| {
                (
                    self.plan.items[d as usize].id.clone(),
                    self.slots[d as usize].output.clone(),
                )
            })
            .collect();
        let slot = &mut self.slots[index as usize];
        let attempt = slot.attempts + 1;
        let mut run = Box::new(Attempt {
            item: compiled.item.clone(),
            ctx: CtxParts {
                execution_id: self.record.id,
                index,
                item_id: compiled.id.clone(),
                attempt,
                resume: slot.checkpoint.take(),
                inputs,
                control: Arc::new(AttemptControl::default()),
                writer: self.store.writer().clone(),
                execution: myself.clone(),
                resources: self.resources.clone(),
            },
        });
        // A free worker, or a new one (the pool never exceeds `parallelism`, since at
        // most that many items run). An idle worker that died is replaced.
        let worker = loop {
            let (worker, fresh) = match self.idle.pop() {
                Some(worker) => (worker, false),
                None => {
                    let args = ItemWorkerArgs {
                        execution_id: self.record.id,
                        writer: self.store.writer().clone(),
                        execution: myself.clone(),
                    };
                    match ItemWorker::spawn_linked(None, ItemWorker, args, myself.get_cell()).await
                    {
                        Ok((worker, _)) => (worker, true),
                        Err(e) => {
                            slot.checkpoint = run.ctx.resume.take();
                            return Err(e.to_string());
                        }
                    }
                }
            };
            match worker.cast(WorkerMsg::Run(run)) {
                Ok(()) => break worker,
                Err(ractor::MessagingErr::SendErr(WorkerMsg::Run(mut back))) => {
                    if fresh {
                        slot.checkpoint = back.ctx.resume.take();
                        return Err("a new worker refused its first attempt".to_owned());
                    }
                    run = back;
                }
                Err(e) => return Err(format!("cannot reach a worker: {e}")),
            }
        };
        slot.attempts = attempt;
        slot.status = ItemStatus::Running;
        slot.error = None;
        self.running.insert(index, worker);
        self.publish_item(index);
        Ok(())
    }

    fn attempt_ended(&mut self, index: u32, end: AttemptEnd) {
        let Some(worker) = self.running.remove(&index) else {
            return; // already accounted for
        };
        self.idle.push(worker);
        let block = &self.plan.blocks[self.block];
        let local = index - block.range.start;
        let slot = &mut self.slots[index as usize];
        slot.status = end.status;
        slot.output = end.output;
        slot.error = end.error;
        match end.status {
            ItemStatus::Done => {
                self.done.fetch_add(1, Ordering::Relaxed);
                self.readiness.done(&block.graph, local);
                self.publish_item(index);
            }
            ItemStatus::Failed => {
                self.failed = true;
                let skipped = self.readiness.fail(&block.graph, local);
                self.publish_item(index);
                let offset = block.range.start;
                for local in skipped {
                    self.skip(offset + local);
                }
            }
            _ => self.publish_item(index),
        }
    }

    fn progress(&mut self, index: u32, progress: Option<Progress>, message: Option<Arc<str>>) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if progress.is_some() {
            slot.progress = progress;
        }
        if message.is_some() {
            slot.message = message.clone();
        }
        if let Some(progress) = slot.progress {
            let _ = self.events.send(Event::Progress {
                execution: self.record.id,
                item: self.plan.items[index as usize].id.clone(),
                progress,
                message,
            });
        }
    }

    /// Writes the final record durably, tells the supervisor and the Stop callers, stops.
    async fn finish(&mut self, myself: &ActorRef<ExecutionMsg>, status: ExecutionStatus) {
        self.finished = true;
        // Nothing runs any more: the pool's workers are all idle. Stop them by message
        // rather than leaving them to be killed with this actor.
        for worker in self.idle.drain(..) {
            worker.stop(None);
        }
        self.record.status = status;
        self.record.updated_ms = now_ms();
        let mut ops = Vec::with_capacity(1 + self.skipped.len());
        match crate::store::encode(&self.record) {
            Ok(record) => ops.push(Op::Execution {
                id: self.record.id,
                record,
            }),
            Err(e) => {
                tracing::error!(execution_id = %self.id(), error = %e, "cannot encode the execution record")
            }
        }
        for &index in &self.skipped {
            let slot = &self.slots[index as usize];
            let record = ItemRecord {
                v: RECORD_VERSION,
                status: ItemStatus::Skipped,
                attempts: slot.attempts,
                ..ItemRecord::default()
            };
            if let Ok(record) = crate::store::encode(&record) {
                ops.push(Op::Item {
                    id: self.record.id,
                    index,
                    record,
                });
            }
        }
        let durable = self.store.writer().commit(ops).await;
        if let Err(e) = &durable {
            tracing::error!(execution_id = %self.id(), error = %e, "cannot write the execution record");
        }
        tracing::info!(execution_id = %self.id(), %status, "execution ended");
        let _ = self.events.send(Event::Execution {
            execution: self.record.id,
            status,
        });
        let report = self.report();
        if let Some(supervisor) = &self.supervisor {
            let _ = supervisor.cast(SupervisorMsg::execution_ended(report.clone()));
        }
        for reply in self.stop_replies.drain(..) {
            let _ = reply.send(durable.clone().map(|()| report.clone()));
        }
        myself.stop(None);
    }

    fn tree(&self, myself: &ActorRef<ExecutionMsg>) -> ActorNode {
        let worker = |w: &ActorRef<WorkerMsg>, status: String| ActorNode {
            role: ActorRole::ItemWorker,
            name: format!("worker-{}", w.get_id()),
            actor_id: w.get_id().to_string(),
            status,
            children: Vec::new(),
        };
        let mut running: Vec<(&u32, &ActorRef<WorkerMsg>)> = self.running.iter().collect();
        running.sort_by_key(|(index, _)| **index);
        let children = running
            .into_iter()
            .map(|(&index, w)| worker(w, format!("running {}", self.plan.items[index as usize].id)))
            .chain(self.idle.iter().map(|w| worker(w, "idle".to_owned())))
            .collect();
        ActorNode {
            role: ActorRole::Execution,
            name: self.record.id.to_string(),
            actor_id: myself.get_id().to_string(),
            status: if self.interrupting.is_some() {
                "interrupting".to_owned()
            } else {
                "running".to_owned()
            },
            children,
        }
    }

    fn report(&self) -> ExecutionReport {
        let mut slots = self.slots.iter().zip(self.plan.items.iter());
        let blocks = self
            .plan
            .blocks
            .iter()
            .map(|block| BlockReport {
                name: block.name.clone(),
                items: slots
                    .by_ref()
                    .take(block.range.len())
                    .map(|(slot, item)| ItemReport {
                        id: item.id.to_string(),
                        kind: item.kind.to_string(),
                        status: slot.status,
                        attempts: slot.attempts,
                        progress: slot.progress,
                        message: slot.message.as_deref().map(str::to_owned),
                        output: slot.output.as_deref().map(<[u8]>::to_vec),
                        error: slot.error.clone(),
                    })
                    .collect(),
            })
            .collect();
        ExecutionReport {
            id: self.record.id,
            name: self.record.plan.name.clone(),
            status: self.record.status,
            created: time_of_ms(self.record.created_ms),
            updated: time_of_ms(self.record.updated_ms),
            blocks,
        }
    }
}
