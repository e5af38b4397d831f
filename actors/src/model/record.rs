//! Durable state as data: the records an execution writes and a restart reads back. Every
//! store backend keeps these (how it encodes them is its own business); the core decides
//! over them; the recovery rule (`model::recovery`) reads them back after a crash.

use std::sync::Arc;

use crate::model::{
    AttemptOutcome, AttemptReport, Checkpoint, ExecutionId, ExecutionStatus, ExecutionSummary,
    ItemStatus, Plan, Progress, time_of_ms,
};

/// An execution's record: its plan and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    /// The execution.
    pub id: ExecutionId,
    /// Its plan (written once, when the execution is new; shared, never copied per write).
    pub plan: Arc<Plan>,
    /// Its status.
    pub status: ExecutionStatus,
    /// When it was submitted (ms since the Unix epoch).
    pub created_ms: u64,
    /// When its record last changed (ms since the Unix epoch).
    pub updated_ms: u64,
    /// Interrupted by a shutdown, not by anyone's interrupt: the next start resumes it,
    /// as it does one a crash left running.
    pub resume_on_start: bool,
    /// Why the runtime paused it (status `paused`), or why it stopped.
    pub reason: Option<String>,
    /// Still running, but asked to pause: a restart finds it paused, not to resume.
    pub pausing: bool,
    /// Still running, but asked to cancel: a restart finds it cancelled, not to resume.
    pub cancelling: bool,
    /// How many of its items are done, when whoever wrote a status other than `running`
    /// knew (the execution's final record, the startup scan); `None` otherwise. Startup
    /// takes it instead of reading every item record.
    pub items_done: Option<u64>,
}

impl ExecutionRecord {
    /// The record of a new execution of `plan`, with `status`, submitted at `now_ms`.
    pub fn new(id: ExecutionId, plan: Plan, status: ExecutionStatus, now_ms: u64) -> Self {
        ExecutionRecord {
            id,
            plan: Arc::new(plan),
            status,
            created_ms: now_ms,
            updated_ms: now_ms,
            resume_on_start: false,
            reason: None,
            pausing: false,
            cancelling: false,
            items_done: None,
        }
    }

    /// The change that stores this record (with `new`, its plan too: only when the
    /// execution is new).
    pub fn change(&self, new: bool) -> Change {
        Change::Execution {
            record: self.clone(),
            new,
        }
    }
}

/// One item as the core tracks it and as its record stores it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemState {
    /// Where it stands.
    pub status: ItemStatus,
    /// The number of the latest attempt (started, or about to start once its record is
    /// durable); 0 if none ever started.
    pub attempts: u32,
    /// How many attempts failed (what `retry` counts).
    pub failures: u32,
    /// How many attempts in a row started and never ended because the process stopped
    /// under them (counted when an execution is read back; reset when an attempt ends).
    pub crashes: u32,
    /// The progress it last reported.
    pub progress: Option<Progress>,
    /// The message it last reported with its progress.
    pub message: Option<Arc<str>>,
    /// Its output (msgpack), once done.
    pub output: Option<Arc<[u8]>>,
    /// Why its last attempt failed.
    pub error: Option<String>,
    /// The last [`ATTEMPTS_KEPT`](crate::model::ATTEMPTS_KEPT) ended attempts, oldest first.
    pub history: History,
    /// When the attempt in flight started (ms since the Unix epoch, the shell's clock);
    /// not stored.
    pub started_ms: Option<u64>,
    /// Done without running `apply` (its `check` found the goal state held).
    pub unchanged: bool,
    /// An attempt since the item's last success may have changed something: its `apply`
    /// began and the attempt did not succeed, or the process stopped under it. The next
    /// success then counts as a change (and sends refreshes) even if its `check` finds
    /// nothing to do, since the earlier attempt may have done it.
    pub maybe_changed: bool,
    /// A `notify` dependency changed something since this item last succeeded: its next
    /// attempt is told (`ItemCtx::refresh`). Set in the commit of that dependency's Done
    /// record; cleared by this item's own Done record.
    pub refresh: bool,
}

/// An item's last ended attempts, oldest first. The first is held inline: an item that
/// ends in one attempt allocates nothing for its history, and each record of it the core
/// writes copies the history without an allocation either.
pub type History = smallvec::SmallVec<[PastAttempt; 1]>;

/// An ended attempt: its number, when it started and ended (ms since the Unix epoch), how
/// and why.
#[derive(Debug, Clone, PartialEq)]
pub struct PastAttempt {
    /// Its number (the first attempt is 1).
    pub attempt: u32,
    /// When it started, when that is known.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: u64,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Why it failed or was interrupted, when it says.
    pub error: Option<String>,
}

impl PastAttempt {
    /// As a report shows it.
    pub fn report(&self) -> AttemptReport {
        AttemptReport {
            attempt: self.attempt,
            started: self.started_ms.map(time_of_ms),
            ended: time_of_ms(self.ended_ms),
            outcome: self.outcome,
            error: self.error.clone(),
        }
    }
}

/// An attempt that started and that its item's record may not show yet: until an item
/// record with at least `attempt` attempts is durable, a restart reads the item as running
/// attempt `attempt` (so a killed attempt is still counted, and its number never repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The attempt's number.
    pub attempt: u32,
    /// The item's count of attempts in a row the process stopped under.
    pub crashes: u32,
}

/// One record the core writes for one execution; a step's records go to the store as one
/// commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Attempt `attempt` of the item is about to start; `crashes` is the item's count of
    /// attempts in a row the process stopped under (see [`Started`]).
    Started {
        /// The item (its index in the plan).
        index: u32,
        /// The attempt's number.
        attempt: u32,
        /// Attempts in a row the process stopped under.
        crashes: u32,
    },
    /// The item's record, as `state` says.
    Item {
        /// The item (its index in the plan).
        index: u32,
        /// Its state.
        state: ItemState,
        /// No record of the item is stored yet, nor on its way in an earlier commit: a
        /// backend may insert this one without looking for one to replace. `false` when
        /// unsure (a backend then replaces, which is always right).
        first: bool,
    },
    /// Remove the item's intra-item checkpoint (it is done).
    ClearCheckpoint {
        /// The item (its index in the plan).
        index: u32,
    },
    /// The execution's record with this status.
    Execution {
        /// The status.
        status: ExecutionStatus,
    },
    /// The execution's record, still running, marked as asked to pause: a restart finds
    /// it paused and does not resume it.
    PauseRequested,
    /// The execution's record, still running, marked as asked to cancel: a restart finds
    /// it cancelled and does not resume it.
    CancelRequested,
}

/// Who holds an idempotency key: the execution and the SHA-256 of the plan it was
/// submitted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOwner {
    /// The execution.
    pub id: ExecutionId,
    /// The digest of its plan.
    pub digest: [u8; 32],
}

/// An execution as a listing shows it, read from its stored record.
#[derive(Debug, Clone)]
pub struct StoredSummary {
    /// Its summary.
    pub summary: ExecutionSummary,
    /// When its record last changed, in ms since the epoch.
    pub updated_ms: u64,
    /// The reason its record holds, for a runtime that takes it into memory.
    pub reason: Option<String>,
}

impl StoredSummary {
    /// The summary of an execution whose record does not decode: `corrupt`, saying why.
    pub fn corrupt(id: ExecutionId, reason: String) -> Self {
        let created = id
            .created_at()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        StoredSummary {
            summary: ExecutionSummary {
                id,
                name: String::new(),
                status: ExecutionStatus::Corrupt,
                items_total: 0,
                items_done: 0,
                running_progress: 0.0,
                created: time_of_ms(created),
                updated: time_of_ms(created),
                error: Some(reason),
                halting: None,
            },
            updated_ms: created,
            reason: None,
        }
    }
}

/// One write to the store. A backend commits a batch of them all or nothing, with one
/// durable acknowledgement.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace an execution's record; with `new`, its plan too (written once).
    /// `new` is for an execution's first record only (its submission): a backend may take
    /// it to mean that nothing else of the execution is stored (the PostgreSQL backend then
    /// keeps what the execution's start log holds in memory, and folds it from there).
    Execution {
        /// The record.
        record: ExecutionRecord,
        /// The execution is new: store its plan.
        new: bool,
    },
    /// Give an idempotency key to the execution `owner` names (with its record).
    Key {
        /// The key.
        key: String,
        /// Its owner.
        owner: KeyOwner,
    },
    /// An attempt of an item starts (see [`Started`]).
    Started {
        /// The execution.
        id: ExecutionId,
        /// The item (its index in the plan).
        index: u32,
        /// The attempt.
        started: Started,
    },
    /// Insert or replace an item's record.
    Item {
        /// The execution.
        id: ExecutionId,
        /// The item (its index in the plan).
        index: u32,
        /// Its state.
        state: ItemState,
        /// No record of the item is stored yet, nor on its way in an earlier commit: a
        /// backend may insert this one without looking for one to replace. `false` when
        /// unsure (a backend then replaces, which is always right).
        first: bool,
    },
    /// Insert or replace an intra-item checkpoint.
    Checkpoint {
        /// The execution.
        id: ExecutionId,
        /// The item (its index in the plan).
        index: u32,
        /// The checkpoint.
        checkpoint: Checkpoint,
    },
    /// Remove an intra-item checkpoint (the item is done).
    ClearCheckpoint {
        /// The execution.
        id: ExecutionId,
        /// The item (its index in the plan).
        index: u32,
    },
    /// Forget the execution's started attempts: it has ended and every attempt it started
    /// has its item record.
    ClearStarts {
        /// The execution.
        id: ExecutionId,
    },
    /// Insert or replace a runtime metadata value.
    Meta {
        /// Its key.
        key: String,
        /// Its value.
        value: Vec<u8>,
    },
    /// Remove every record of a finished execution: its record, plan, started attempts,
    /// item records, checkpoints, idempotency key and artifact references.
    Delete {
        /// The execution.
        id: ExecutionId,
    },
    /// Store an artifact (once: the same bytes have the same id), referenced by execution
    /// `id`, with its timestamp of interest set to `now_ms`.
    PutArtifact {
        /// The execution that references it.
        id: ExecutionId,
        /// Its id (the SHA-256 of its bytes).
        artifact: [u8; 32],
        /// Its bytes.
        bytes: Vec<u8>,
        /// Now, in ms since the epoch.
        now_ms: u64,
    },
}
