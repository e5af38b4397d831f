//! What an Execution starts from: a new plan, or an execution read back from the store.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tokio::sync::broadcast;

use crate::error::{PlanError, RuntimeError};
use crate::execution::Halt;
use crate::limiters::Limiters;
use crate::model::{
    Change, Checkpoint, Event, ExecutionId, ExecutionRecord, ExecutionStatus, ItemState,
    ItemStatus, Plan, Registry, Resources, now_ms, resumed,
};
use crate::sched::compile::CompiledPlan;
use crate::semaphores::Semaphores;
use crate::store::{Store, StoredExecution};
use crate::supervisor::SupervisorMsg;
use crate::tally::Tally;

/// What an Execution starts from: a new plan or one read back from the store.
pub struct ExecutionArgs {
    pub(crate) record: ExecutionRecord,
    pub(crate) plan: CompiledPlan,
    pub(crate) items: Vec<ItemState>,
    /// Whether each item has a record stored (or a started attempt: then one is written
    /// as it resumes or ends, replacing whatever is there).
    pub(crate) recorded: Vec<bool>,
    pub(crate) checkpoints: Vec<Option<Checkpoint>>,
    pub(crate) parallelism: usize,
    pub(crate) stop_grace: Duration,
    pub(crate) timeout_grace: Duration,
    /// The store: an execution writes its records there.
    pub(crate) store: Store,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) supervisor: Option<ActorRef<SupervisorMsg>>,
    /// What it counts as it goes, shared with whoever lists it.
    pub(crate) tally: Arc<Tally>,
    pub(crate) resources: Arc<Resources>,
    /// The runtime's semaphores (a table of its own unless the Supervisor shares one).
    pub(crate) semaphores: Arc<Semaphores>,
    /// The runtime's named rate limiters (none unless the Supervisor shares them).
    pub(crate) limiters: Arc<Limiters>,
    /// Whether the running record is already durable (the Supervisor writes it first, so
    /// that concurrent submits share commits); if not, `pre_start` writes it.
    pub(crate) record_durable: bool,
    /// Interrupts and pauses that arrived before the actor ran; applied before the first
    /// item starts.
    pub(crate) interrupts: Vec<Halt>,
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
        let record = ExecutionRecord::new(id, plan, ExecutionStatus::Running, now_ms());
        let count = compiled.items.len();
        let items = vec![ItemState::default(); count];
        let checkpoints = vec![None; count];
        Ok(Self::from_parts(
            record,
            compiled,
            items,
            vec![false; count],
            checkpoints,
            store,
            events,
        ))
    }

    /// Arguments to resume an execution read back from the store, failing items the
    /// process stopped under `crash_limit` times in a row (0: never).
    pub(crate) fn resume(
        stored: StoredExecution,
        registry: &Registry,
        store: Store,
        events: broadcast::Sender<Event>,
        crash_limit: u32,
    ) -> Result<Self, RuntimeError> {
        let compiled = CompiledPlan::compile(&stored.record.plan, registry)?;
        let progress: Vec<_> = (0..stored.items.len())
            .map(|i| stored.item_progress(i))
            .collect();
        let StoredExecution {
            mut record,
            items,
            checkpoints,
        } = stored;
        record.status = ExecutionStatus::Running;
        record.items_done = None;
        record.resume_on_start = false;
        record.reason = None;
        record.pausing = false;
        record.cancelling = false;
        record.updated_ms = now_ms();
        let recorded = items.iter().map(Option::is_some).collect();
        let items = items
            .into_iter()
            .zip(&checkpoints)
            .zip(progress)
            .map(|((item, checkpoint), progress)| {
                resumed(item, checkpoint.is_some(), progress, crash_limit)
            })
            .collect();
        Ok(Self::from_parts(
            record,
            compiled,
            items,
            recorded,
            checkpoints,
            store,
            events,
        ))
    }

    fn from_parts(
        record: ExecutionRecord,
        plan: CompiledPlan,
        items: Vec<ItemState>,
        recorded: Vec<bool>,
        checkpoints: Vec<Option<Checkpoint>>,
        store: Store,
        events: broadcast::Sender<Event>,
    ) -> Self {
        let done = items
            .iter()
            .filter(|s| s.status == ItemStatus::Done)
            .count();
        let parallelism = record.plan.parallelism.unwrap_or(64);
        ExecutionArgs {
            record,
            plan,
            items,
            recorded,
            checkpoints,
            parallelism,
            stop_grace: Duration::from_secs(10),
            timeout_grace: Duration::from_secs(1),
            store,
            events,
            supervisor: None,
            tally: Arc::new(Tally::new(done)),
            resources: Arc::new(Resources::new()),
            semaphores: Arc::new(Semaphores::new()),
            limiters: Arc::new(Limiters::default()),
            record_durable: false,
            interrupts: Vec::new(),
        }
    }

    /// The shared values items read with `ItemCtx::resource`.
    pub fn with_resources(mut self, resources: Arc<Resources>) -> Self {
        self.resources = resources;
        self
    }

    /// The semaphores shared with other executions (by default this execution has its own).
    pub fn with_semaphores(mut self, semaphores: Arc<Semaphores>) -> Self {
        self.semaphores = semaphores;
        self
    }

    /// The named rate limiters shared with other executions (by default none).
    pub fn with_limiters(mut self, limiters: Arc<Limiters>) -> Self {
        self.limiters = limiters;
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

    /// Past its `timeout`, how long an attempt gets to reach a cancellation point before it
    /// is aborted (default 1 s).
    pub fn with_timeout_grace(mut self, grace: Duration) -> Self {
        self.timeout_grace = grace;
        self
    }

    pub(crate) fn with_supervisor(mut self, supervisor: ActorRef<SupervisorMsg>) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// Interrupts and pauses to apply before the first item starts, in the order they
    /// arrived.
    pub(crate) fn with_interrupts(mut self, interrupts: Vec<Halt>) -> Self {
        self.interrupts.extend(interrupts);
        self
    }

    /// The caller has made the running record durable already.
    pub(crate) fn record_is_durable(mut self) -> Self {
        self.record_durable = true;
        self
    }

    /// The records of items counted with a crash when read back (their counts, and the
    /// failures of those at the limit), to write with the running record.
    pub(crate) fn crash_records(&self) -> Vec<Change> {
        let id = self.record.id;
        let mut changes = Vec::new();
        for (index, item) in self.items.iter().enumerate() {
            if item.crashes > 0 {
                changes.push(Change::Item {
                    id,
                    index: index as u32,
                    state: item.clone(),
                    // A record read back, or a started attempt's: either way stored.
                    first: false,
                });
            }
        }
        changes
    }

    /// Makes the failed and skipped items pending again, with a new retry budget (their
    /// attempt numbers and past errors are kept), and returns their records to write.
    pub(crate) fn retry_failed(&mut self) -> Vec<Change> {
        let id = self.record.id;
        let mut changes = Vec::new();
        for (index, item) in self.items.iter_mut().enumerate() {
            if matches!(item.status, ItemStatus::Failed | ItemStatus::Skipped) {
                item.status = ItemStatus::Pending;
                item.failures = 0;
                item.error = None;
                changes.push(Change::Item {
                    id,
                    index: index as u32,
                    state: item.clone(),
                    // A record read back, or a started attempt's: either way stored.
                    first: false,
                });
            }
        }
        changes
    }

    /// The execution's id.
    pub fn id(&self) -> ExecutionId {
        self.record.id
    }

    pub(crate) fn tally(&self) -> Arc<Tally> {
        self.tally.clone()
    }
}
