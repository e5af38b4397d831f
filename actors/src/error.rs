//! One error enum per public boundary: plans ([`PlanError`]), the store ([`StoreError`]),
//! the runtime's requests ([`RuntimeError`]) and an item's own work ([`ItemError`]).

use crate::model::{ExecutionId, ExecutionStatus};

/// A plan was refused before anything ran. Each variant names the culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The plan has no blocks, or only empty blocks.
    #[error("plan `{plan}` has no items")]
    Empty {
        /// The plan's name.
        plan: String,
    },
    /// Two items share an id (ids are unique across the whole plan).
    #[error("duplicate item id `{item}` (in block `{block}`)")]
    DuplicateItem {
        /// The repeated id.
        item: String,
        /// The block holding the second occurrence.
        block: String,
    },
    /// An item id is empty or contains characters outside `[A-Za-z0-9._:-]`.
    #[error("invalid item id `{item}`: use letters, digits and `._:-`, at most 128 characters")]
    InvalidId {
        /// The offending id.
        item: String,
    },
    /// `after` names an id that is not in this block nor in an earlier one.
    #[error("item `{item}` depends on unknown item `{dependency}`")]
    UnknownDependency {
        /// The item whose `after` list is wrong.
        item: String,
        /// The id it names.
        dependency: String,
    },
    /// The dependencies inside a block form a cycle.
    #[error(
        "dependency cycle of {length} item{} in block `{block}`: {}",
        if *length == 1 { "" } else { "s" },
        cycle_path(cycle, *length)
    )]
    Cycle {
        /// The block holding the cycle.
        block: String,
        /// Items on the cycle, each depending on the next: the whole cycle with its first
        /// item repeated last, or, on a cycle of more than [`CYCLE_NAMED`] items, only its
        /// first [`CYCLE_NAMED`] (so that the error stays short).
        cycle: Vec<String>,
        /// How many items the cycle has.
        length: usize,
    },
    /// No item type is registered under this kind.
    #[error("item `{item}` has unknown kind `{kind}`")]
    UnknownKind {
        /// The item.
        item: String,
        /// The kind it names.
        kind: String,
    },
    /// The params do not decode into the kind's type.
    #[error("params of item `{item}` (kind `{kind}`) do not decode: {reason}")]
    BadParams {
        /// The item.
        item: String,
        /// Its kind.
        kind: String,
        /// The decoder's message.
        reason: String,
    },
    /// A metaparam this build does not implement (every metaparam of the current format is
    /// implemented; kept for those a later format adds).
    #[error(
        "item `{item}` sets metaparam `{metaparam}`, which this version of tend does not support yet"
    )]
    Unsupported {
        /// The item.
        item: String,
        /// The metaparam's name.
        metaparam: &'static str,
    },
    /// A metaparam (`retry`, `delay`, `timeout`, `notify`, `sema`, `limit`, `burst`) does
    /// not say what it must.
    #[error("item `{item}`: metaparam `{metaparam}` {reason}")]
    BadMetaparam {
        /// The item.
        item: String,
        /// The metaparam's name.
        metaparam: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The plan has more items than the runtime takes (`Config::max_items`).
    #[error("plan `{plan}` has {items} items; this runtime takes at most {max}")]
    TooManyItems {
        /// The plan.
        plan: String,
        /// How many items it has.
        items: usize,
        /// The ceiling.
        max: usize,
    },
    /// The plan asks for more parallelism than the runtime allows
    /// (`Config::max_parallelism`).
    #[error("plan `{plan}` asks for parallelism {parallelism}; this runtime allows at most {max}")]
    ParallelismTooHigh {
        /// The plan.
        plan: String,
        /// What it asks for.
        parallelism: usize,
        /// The ceiling.
        max: usize,
    },
    /// Two item types were registered under one kind.
    #[error("kind `{kind}` is registered twice")]
    DuplicateKind {
        /// The kind.
        kind: String,
    },
    /// A plan's parallelism must be at least 1.
    #[error("plan `{plan}` has parallelism 0; it must be at least 1")]
    ZeroParallelism {
        /// The plan's name.
        plan: String,
    },
    /// A plan's idempotency key is not one.
    #[error("idempotency key `{key}` is not valid: {reason}")]
    BadKey {
        /// The key (cut to 128 characters).
        key: String,
        /// Why not.
        reason: &'static str,
    },
}

/// How many items of a dependency cycle [`PlanError::Cycle`] names at most.
pub const CYCLE_NAMED: usize = 5;

/// `a -> b -> c -> a`, or `a -> b -> ... -> a` when `cycle` is only the start of a cycle of
/// `length` items.
fn cycle_path(cycle: &[String], length: usize) -> String {
    let mut path = cycle.join(" -> ");
    if cycle.len() <= length
        && let Some(first) = cycle.first()
    {
        path.push_str(&format!(
            " -> ... ({} more) -> {first}",
            length - cycle.len()
        ));
    }
    path
}

impl PlanError {
    /// A short machine-readable name of the error kind, e.g. `cycle`.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::Empty { .. } => "empty_plan",
            PlanError::DuplicateItem { .. } => "duplicate_item",
            PlanError::InvalidId { .. } => "invalid_id",
            PlanError::UnknownDependency { .. } => "unknown_dependency",
            PlanError::Cycle { .. } => "cycle",
            PlanError::UnknownKind { .. } => "unknown_kind",
            PlanError::BadParams { .. } => "bad_params",
            PlanError::Unsupported { .. } => "unsupported_metaparam",
            PlanError::BadMetaparam { .. } => "bad_metaparam",
            PlanError::DuplicateKind { .. } => "duplicate_kind",
            PlanError::ZeroParallelism { .. } => "zero_parallelism",
            PlanError::TooManyItems { .. } => "too_many_items",
            PlanError::ParallelismTooHigh { .. } => "parallelism_too_high",
            PlanError::BadKey { .. } => "invalid_key",
        }
    }
}

/// The store could not be opened, read or written.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created or the database file not opened; or the
    /// database could not be connected to or its schema not used.
    #[error("cannot open store at {path}: {reason}")]
    Open {
        /// The file or directory; for a database, its URL without the password.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A read failed.
    #[error("store read failed: {0}")]
    Read(String),
    /// A write transaction failed to commit; none of its records are durable.
    #[error("store commit failed: {0}")]
    Commit(String),
    /// A record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// A record could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// Which record.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// The writer thread has stopped (the store was closed).
    #[error("the store is closed")]
    Closed,
    /// No execution with this id is stored (it never was, or it was deleted).
    #[error("no execution `{0}` is stored")]
    Missing(ExecutionId),
}

/// A request to the runtime was refused or could not be served.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No execution has this id.
    #[error("unknown execution `{0}`")]
    UnknownExecution(ExecutionId),
    /// The execution's state forbids the action (e.g. resuming a completed execution).
    #[error("cannot {action} execution `{id}`: it is {status}")]
    InvalidState {
        /// The execution.
        id: ExecutionId,
        /// What was asked.
        action: &'static str,
        /// Its current status.
        status: ExecutionStatus,
    },
    /// The execution's records cannot be decoded.
    #[error("execution `{id}` is corrupt: {reason}")]
    Corrupt {
        /// The execution.
        id: ExecutionId,
        /// The decode error.
        reason: String,
    },
    /// A submit's idempotency key belongs to an execution of another plan.
    #[error(
        "idempotency key `{key}` belongs to execution `{existing}`, submitted with another plan; use another key, or delete that execution first"
    )]
    KeyConflict {
        /// The key (cut to 128 characters).
        key: String,
        /// The execution that has it.
        existing: ExecutionId,
    },
    /// The runtime is shutting down or has stopped.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// An actor could not be spawned or did not answer.
    #[error("runtime actor failure: {0}")]
    Actor(String),
}

/// An item attempt did not produce an output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The attempt stopped at a cancellation point because the execution is interrupted.
    #[error("interrupted")]
    Interrupted,
    /// The item's own work failed.
    #[error("{0}")]
    Failed(String),
    /// An intra-item checkpoint could not be read, or its state not encoded.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The store could not make a checkpoint durable (a full disk, say). Not the item's
    /// fault: the attempt ends interrupted, and runs again from its last durable
    /// checkpoint when the execution resumes.
    #[error("checkpoint not durable: {0}")]
    Store(String),
    /// A dependency's output is missing or does not decode into the requested type.
    #[error("input from `{dependency}`: {reason}")]
    Input {
        /// The dependency's item id.
        dependency: String,
        /// What went wrong.
        reason: String,
    },
    /// The attempt panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// An artifact the attempt read or referenced no longer exists: the orphan sweep
    /// deleted it while nothing referenced it. It fails the attempt like any failure, so
    /// with a `retry` policy the next attempt runs, and an item that can make the artifact
    /// again from its own inputs does so there.
    #[error(
        "artifact {artifact} no longer exists (the orphan sweep deleted it while nothing referenced it); an item that can make it again does so on retry"
    )]
    ArtifactGone {
        /// The artifact's id.
        artifact: String,
    },
}

impl ItemError {
    /// A failure of the item's own work, from anything printable.
    pub fn failed(reason: impl std::fmt::Display) -> Self {
        ItemError::Failed(reason.to_string())
    }
}

impl From<std::io::Error> for ItemError {
    fn from(e: std::io::Error) -> Self {
        ItemError::failed(e)
    }
}

impl From<String> for ItemError {
    fn from(e: String) -> Self {
        ItemError::Failed(e)
    }
}

impl From<&str> for ItemError {
    fn from(e: &str) -> Self {
        ItemError::Failed(e.to_owned())
    }
}
