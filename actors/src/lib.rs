//! `tend-actors`: the engine of [tend](https://docs.rs/tend). Most users depend on `tend`,
//! which re-exports what they need; this crate is for driving the actors directly.
//!
//! # Layout
//!
//! Each layer uses only those above it (`ARCHITECTURE.md` at the repository root has the
//! whole map):
//!
//! ```text
//! model/       data: ids, the Item trait and Registry, Plan/Block/ItemSpec, reports,
//!              Outcome, events, interrupt strategies, ItemCtx (which reaches its
//!              Execution and the store through an AttemptPort the attempt's port implements);
//!              imports no store, scheduler or actor
//! sched/       pure scheduling logic: plan compilation (DAGs, policies, tags), DAG
//!              readiness, retries, the Run core of one execution, the semaphore table
//! store/       the Store handle over the Backend trait (model types only); the redb
//!              backend (store/redb/: tables, msgpack records, the group-commit writer
//!              thread); the behaviour suite every backend passes (feature store-suite)
//! actors and what they share:
//!   supervisor   the Supervisor actor: the execution map
//!   execution    the Execution actor: one execution's blocks and items
//!   attempt      one item attempt in a task its Execution owns; its ExecutionPort
//!   janitor      the Janitor actor: maintenance and health checks, on intervals and on request
//!   catalog      reads of executions without the Supervisor's mailbox
//!   semaphores   the runtime's semaphores, shared by its executions
//!   limiters     the runtime's named rate limiters, shared by its executions
//!   lifecycle    the lifecycle bus: modules subscribe to startup, shutdown, maintenance...
//!   dry_run      check every item of a plan, apply and write nothing
//!   monitor      what the Janitor watches (disk, store size, memory) and what it warns of
//! ```
//!
//! ```text
//! Runtime (in `tend`)
//! ├── Supervisor
//! │   ├── Execution <id>
//! │   │   ├── attempt <item> (a task, not an actor; one per running item)
//! │   │   └── ...
//! │   └── Execution <id> ...
//! └── Janitor
//! redb backend: one OS thread that owns every write (group commit)
//! ```

mod attempt;
pub mod catalog;
pub mod dry_run;
pub mod error;
pub mod execution;
pub mod janitor;
pub mod lifecycle;
pub mod limiters;
pub mod metrics;
pub mod model;
pub mod monitor;
mod sched;
pub mod semaphores;
pub mod store;
pub mod supervisor;
mod tally;

pub use catalog::{Catalog, ExecutionCounts, ReportSource};
pub use dry_run::{CheckOutcome, DryRun, DryRunBlock, DryRunItem};
pub use error::{CYCLE_NAMED, ItemError, PlanError, RuntimeError, StoreError};
pub use execution::{Execution, ExecutionArgs, ExecutionMsg, STOPPED_BY_STORE};
pub use janitor::{Janitor, JanitorArgs, JanitorMsg, MaintenanceReport};
pub use lifecycle::{LifecycleBus, Notice, Published};
pub use limiters::{LimiterSpec, Limiters};
pub use model::{
    ATTEMPTS_KEPT, ActorNode, ActorRole, Answer, AttemptError, AttemptOutcome, AttemptReport,
    Block, BlockOutcome, BlockReport, Check, Event, ExecutionId, ExecutionPage, ExecutionReport,
    ExecutionShutdown, ExecutionStatus, ExecutionSummary, Halting, HealthCheckType, Heard,
    InterruptStrategy, Item, ItemCtx, ItemReport, ItemSpec, ItemStatus, LifecycleEvent,
    LifecycleKind, ListQuery, MaintenanceOperation, MaintenanceReason, MaintenanceRequest,
    MaintenanceType, MaintenanceWork, ModuleAnswer, Outcome, ParseIdError, Plan, Progress,
    Registry, ResourceKind, Resources, ShutdownReason, ShutdownReport, StopOrder, StopResult,
    Submitted, Urgency,
};
pub use semaphores::{SemaphoreReport, SemaphoreUser, Semaphores};
pub use store::{Store, StoreFailure};
pub use supervisor::{Retention, Settings, Supervisor, SupervisorArgs, SupervisorMsg};
