//! What an Execution starts from: a new plan, or an execution read back from the store.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tokio::sync::broadcast;

use crate::error::{PlanError, RuntimeError, StoreError};
use crate::execution::Halt;
use crate::limiters::Limiters;
use crate::model::{
    Checkpoint, CompiledPlan, Event, ExecutionId, ExecutionStatus, ItemStatus, Plan, Registry,
    Resources, now_ms,
};
use crate::sched::run::ItemState;
use crate::semaphores::Semaphores;
use crate::store::{
    ExecutionRecord, ItemRecord, Op, RECORD_VERSION, Store, StoredExecution, Writer,
};
use crate::supervisor::SupervisorMsg;
use crate::tally::Tally;

/// What an Execution starts from: a new plan or one read back from the store.
pub struct ExecutionArgs {
    pub(crate) record: ExecutionRecord,
    pub(crate) plan: CompiledPlan,
    pub(crate) items: Vec<ItemState>,
    pub(crate) checkpoints: Vec<Option<Checkpoint>>,
    pub(crate) parallelism: usize,
    pub(crate) stop_grace: Duration,
    pub(crate) timeout_grace: Duration,
    /// The store's writer: an execution only writes (holding no database handle, so a
    /// runtime that stopped releases its file as soon as the supervisor is gone).
    pub(crate) writer: Writer,
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

/// An item as its stored record and checkpoint say. Only done, failed and skipped are
/// settled; anything else runs again (as interrupted once it has started, or has a
/// checkpoint). An unfinished item shows its checkpoint's progress.
///
/// A record that still says `running` is an attempt the process stopped under: once
/// `crash_limit` of those come in a row, the item is failed instead of started again (so
/// an item that takes the whole process down cannot do so forever).
fn resumed_item(
    record: Option<ItemRecord>,
    checkpoint: Option<&Checkpoint>,
    progress: Option<crate::model::Progress>,
    crash_limit: u32,
) -> ItemState {
    let record = record.unwrap_or_default();
    let crashes = match record.status {
        ItemStatus::Running => record.crashes.saturating_add(1),
        _ => record.crashes,
    };
    let mut error = record.error;
    let status = match record.status {
        s @ (ItemStatus::Done | ItemStatus::Failed | ItemStatus::Skipped) => s,
        ItemStatus::Running if crash_limit > 0 && crashes >= crash_limit => {
            error = Some(format!(
                "the process stopped during {crashes} attempts in a row; not started again"
            ));
            ItemStatus::Failed
        }
        _ if checkpoint.is_some() || record.attempts > 0 => ItemStatus::Interrupted,
        _ => ItemStatus::Pending,
    };
    ItemState {
        status,
        attempts: record.attempts,
        failures: record.failures,
        crashes,
        progress,
        message: record.message.map(Arc::from),
        output: record.output.map(Arc::from),
        error,
        unchanged: record.unchanged,
        // The process stopped under an attempt: it may have applied.
        maybe_changed: record.maybe_changed || record.status == ItemStatus::Running,
        refresh: record.refresh,
        history: record.history.iter().map(|a| a.past()).collect(),
        started_ms: None,
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
            resume_on_start: false,
            reason: None,
            pausing: false,
            cancelling: false,
            items_done: None,
        };
        let count = compiled.items.len();
        let items = vec![ItemState::default(); count];
        let checkpoints = vec![None; count];
        Ok(Self::from_parts(
            record,
            compiled,
            items,
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
        let items = items
            .into_iter()
            .zip(&checkpoints)
            .zip(progress)
            .map(|((item, checkpoint), progress)| {
                resumed_item(item, checkpoint.as_ref(), progress, crash_limit)
            })
            .collect();
        Ok(Self::from_parts(
            record,
            compiled,
            items,
            checkpoints,
            store,
            events,
        ))
    }

    fn from_parts(
        record: ExecutionRecord,
        plan: CompiledPlan,
        items: Vec<ItemState>,
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
            checkpoints,
            parallelism,
            stop_grace: Duration::from_secs(10),
            timeout_grace: Duration::from_secs(1),
            writer: store.writer().clone(),
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
    pub(crate) fn crash_records(&self) -> Result<Vec<Op>, StoreError> {
        let id = self.record.id;
        let mut ops = Vec::new();
        for (index, item) in self.items.iter().enumerate() {
            if item.crashes > 0 {
                ops.push(ItemRecord::op(id, index as u32, item)?);
            }
        }
        Ok(ops)
    }

    /// Makes the failed and skipped items pending again, with a new retry budget (their
    /// attempt numbers and past errors are kept), and returns their records to write.
    pub(crate) fn retry_failed(&mut self) -> Result<Vec<Op>, StoreError> {
        let id = self.record.id;
        let mut ops = Vec::new();
        for (index, item) in self.items.iter_mut().enumerate() {
            if matches!(item.status, ItemStatus::Failed | ItemStatus::Skipped) {
                item.status = ItemStatus::Pending;
                item.failures = 0;
                item.error = None;
                ops.push(ItemRecord::op(id, index as u32, item)?);
            }
        }
        Ok(ops)
    }

    /// The execution's id.
    pub fn id(&self) -> ExecutionId {
        self.record.id
    }

    pub(crate) fn tally(&self) -> Arc<Tally> {
        self.tally.clone()
    }
}
