//! One entry of the Supervisor's execution map, and the map as the store holds it at
//! startup.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ractor::ActorRef;

use crate::error::StoreError;
use crate::execution::{ExecutionMsg, Halt};
use crate::model::{
    ExecutionId, ExecutionReport, ExecutionStatus, ExecutionSummary, Halting, time_of_ms,
};
use crate::store::{LoadedExecution, Store};
use crate::supervisor::Reply;
use crate::tally::Tally;

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) status: ExecutionStatus,
    pub(super) items_total: usize,
    /// What its Execution counts as it goes.
    pub(super) tally: Arc<Tally>,
    pub(super) created_ms: u64,
    pub(super) updated_ms: u64,
    pub(super) actor: Option<ActorRef<ExecutionMsg>>,
    /// A submit or resume is writing the record; the actor is not spawned yet.
    pub(super) starting: bool,
    /// Interrupts and pauses that arrived while starting, applied before its first item
    /// starts.
    pub(super) pending_interrupts: Vec<Halt>,
    /// The callers of the pauses and cancels among them, answered once the execution has
    /// made the request durable (or with why it could not).
    pub(super) pending_pauses: Vec<(Halt, Reply<()>)>,
    /// Status requests that arrived while starting, answered once it runs (or failed).
    pub(super) pending_status: Vec<Reply<ExecutionReport>>,
    pub(super) corrupt: Option<String>,
    /// Why an automatic resume did not happen, or why it is paused, until the execution
    /// runs again.
    pub(super) problem: Option<String>,
    /// When its Execution actor failed, within the restart window.
    pub(super) restarts: VecDeque<Instant>,
    /// Its actor failed and the attempts it ran still read as running in the store: the
    /// next start of it counts them as interrupted, not as crashes, whoever starts it.
    pub(super) killed_attempts: bool,
    /// An interrupt or pause went to it (or waits for it to start): reported while it
    /// still runs, cleared when it runs again.
    pub(super) halting: Option<Halting>,
}

impl Entry {
    pub(super) fn is_live(&self) -> bool {
        self.actor.is_some() || self.starting
    }

    pub(super) fn summary(&self, id: ExecutionId) -> ExecutionSummary {
        let mut summary = ExecutionSummary {
            id,
            name: self.name.clone(),
            status: self.status,
            items_total: self.items_total,
            items_done: 0,
            running_progress: 0.0,
            created: time_of_ms(self.created_ms),
            updated: time_of_ms(self.updated_ms),
            error: self.corrupt.clone().or_else(|| self.problem.clone()),
            halting: self
                .halting
                .filter(|_| self.status == ExecutionStatus::Running),
        };
        self.tally.apply(&mut summary);
        summary
    }
}

impl Entry {
    /// An execution whose records decode, standing as `status`.
    fn sound(
        record: &crate::model::ExecutionRecord,
        status: ExecutionStatus,
        items_done: usize,
    ) -> Self {
        Entry {
            name: record.plan.name.clone(),
            status,
            items_total: record.plan.item_count(),
            tally: Arc::new(Tally::new(items_done)),
            created_ms: record.created_ms,
            updated_ms: record.updated_ms,
            actor: None,
            starting: false,
            pending_interrupts: Vec::new(),
            pending_pauses: Vec::new(),
            pending_status: Vec::new(),
            corrupt: None,
            problem: record.reason.clone(),
            restarts: VecDeque::new(),
            killed_attempts: false,
            halting: None,
        }
    }

    /// A stored execution as its summary reads (one the Supervisor does not hold,
    /// taken into memory for a request about it).
    pub(super) fn listed(listed: crate::model::StoredSummary) -> Self {
        let summary = listed.summary;
        if summary.status == ExecutionStatus::Corrupt {
            let reason = summary.error.unwrap_or_default();
            return Entry::corrupt(summary.id, reason);
        }
        let ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        };
        Entry {
            name: summary.name,
            status: summary.status,
            items_total: summary.items_total,
            tally: Arc::new(Tally::new(summary.items_done)),
            created_ms: ms(summary.created),
            updated_ms: listed.updated_ms,
            actor: None,
            starting: false,
            pending_interrupts: Vec::new(),
            pending_pauses: Vec::new(),
            pending_status: Vec::new(),
            corrupt: None,
            problem: listed.reason,
            restarts: VecDeque::new(),
            killed_attempts: false,
            halting: None,
        }
    }

    /// An execution whose records do not decode: listed, never run.
    fn corrupt(id: ExecutionId, reason: String) -> Self {
        let created = id
            .created_at()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Entry {
            name: String::new(),
            status: ExecutionStatus::Corrupt,
            items_total: 0,
            tally: Arc::new(Tally::new(0)),
            created_ms: created,
            updated_ms: created,
            actor: None,
            starting: false,
            pending_interrupts: Vec::new(),
            pending_pauses: Vec::new(),
            pending_status: Vec::new(),
            corrupt: Some(reason),
            problem: None,
            restarts: VecDeque::new(),
            killed_attempts: false,
            halting: None,
        }
    }
}

/// Every execution in the store's live index (finished ones stay in the store), and those
/// to resume at start: those found running (a
/// crash stopped them without a checkpoint; they are recorded as interrupted, so the file
/// says what the runtime reports) and those a shutdown checkpointed while they ran. One
/// found running that was asked to pause is recorded as paused, and waits (one asked to
/// cancel, as cancelled). Also how many of those to resume were found running: an unclean
/// stop (a crash, a kill) left them so; the others a clean shutdown checkpointed.
pub(super) async fn load(
    store: &Store,
) -> Result<(BTreeMap<ExecutionId, Entry>, Vec<ExecutionId>, usize), StoreError> {
    let loaded = store.load_live().await?;
    let mut entries = BTreeMap::new();
    let mut ops = Vec::new();
    let mut crashed = Vec::new();
    let mut unclean = 0;
    for execution in loaded {
        match execution {
            LoadedExecution::Sound {
                mut record,
                items_done,
            } => {
                record.items_done = Some(items_done as u64);
                if record.status == ExecutionStatus::Interrupted && record.resume_on_start {
                    // Checkpointed by a shutdown while it ran.
                    crashed.push(record.id);
                }
                if record.status == ExecutionStatus::Running && record.cancelling {
                    // Asked to cancel, and the process stopped before it quiesced:
                    // cancelled, as asked, for good.
                    record.status = ExecutionStatus::Cancelled;
                    record.cancelling = false;
                    record.pausing = false;
                    record.resume_on_start = false;
                    ops.push(record.change(false));
                } else if record.status == ExecutionStatus::Running && record.pausing {
                    // Asked to pause, and the process stopped before it quiesced: paused,
                    // as asked, not resumed.
                    record.status = ExecutionStatus::Paused;
                    record.pausing = false;
                    ops.push(record.change(false));
                } else if record.status == ExecutionStatus::Running {
                    // Still to resume at a start even if this one is killed before it
                    // gets to (the record no longer says running then).
                    record.status = ExecutionStatus::Interrupted;
                    record.resume_on_start = true;
                    crashed.push(record.id);
                    unclean += 1;
                    ops.push(record.change(false));
                }
                entries.insert(record.id, Entry::sound(&record, record.status, items_done));
            }
            LoadedExecution::Corrupt { id, reason } => {
                tracing::error!(execution_id = %id, %reason, "execution is corrupt");
                entries.insert(id, Entry::corrupt(id, reason));
            }
        }
    }
    if !ops.is_empty() {
        tracing::info!(
            count = ops.len(),
            "executions found running at startup are now interrupted"
        );
        store.commit(ops).await?;
    }
    Ok((entries, crashed, unclean))
}
