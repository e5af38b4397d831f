//! # tend
//!
//! An actor-based supervision runtime that a Rust server embeds to run long,
//! interruptible, resumable *executions*: plans of work items that it supervises,
//! checkpoints to an embedded redb file, interrupts with a chosen strategy and resumes after
//! an interrupt, a restart or a crash, without running a finished item again.
//!
//! # Quick start
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tend::{Block, Item, ItemCtx, ItemError, ItemSpec, Plan, Registry, Runtime};
//!
//! /// Copies `chunks` chunks; resumes where an interrupted attempt stopped.
//! #[derive(Serialize, Deserialize)]
//! struct Copy {
//!     chunks: u32,
//! }
//!
//! impl Item for Copy {
//!     const KIND: &'static str = "copy";
//!     type Output = u32;
//!
//!     async fn apply(&self, cx: &mut ItemCtx) -> Result<u32, ItemError> {
//!         let start: u32 = cx.resume_point()?.unwrap_or(0);
//!         for chunk in start..self.chunks {
//!             cx.cancellation_point().await?; // stop here when interrupted
//!             // ... copy one chunk ...
//!             cx.progress(u64::from(chunk + 1), u64::from(self.chunks));
//!             cx.checkpoint(&(chunk + 1)).await?; // durable before it returns
//!         }
//!         Ok(self.chunks)
//!     }
//! }
//!
//! /// Adds up the chunks its dependencies copied.
//! #[derive(Serialize, Deserialize)]
//! struct Total;
//!
//! impl Item for Total {
//!     const KIND: &'static str = "total";
//!     type Output = u32;
//!
//!     async fn apply(&self, cx: &mut ItemCtx) -> Result<u32, ItemError> {
//!         let deps: Vec<String> = cx.dependencies().map(str::to_owned).collect();
//!         deps.iter().map(|d| cx.input::<u32>(d)).sum()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::new().with::<Copy>()?.with::<Total>()?;
//! let dir = tempfile::tempdir()?;
//! let runtime = Runtime::builder().data_dir(dir.path()).registry(registry).start().await?;
//!
//! let plan = Plan::new("copy").block(
//!     Block::new("all")
//!         .item(ItemSpec::new("a", &Copy { chunks: 3 })?)
//!         .item(ItemSpec::new("b", &Copy { chunks: 4 })?)
//!         .item(ItemSpec::new("total", &Total)?.after(["a", "b"])),
//! );
//! let id = runtime.submit(plan).await?;
//! let outcome = runtime.wait(id).await?;
//! assert!(outcome.is_completed());
//! let report = runtime.status(id).await?;
//! assert_eq!(report.item("total").and_then(|i| i.output_as::<u32>()), Some(7));
//! runtime.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Concepts
//!
//! - A [`Plan`] is a list of [`Block`]s run in order; a block is a DAG of [`ItemSpec`]s
//!   (id, kind, params, `after`).
//! - An [`Item`] is your type: its value is its persisted spec, its `apply` does the work.
//!   A [`Registry`] maps kinds to types.
//! - An execution is one run of a plan, named by an [`ExecutionId`].
//! - An [`InterruptStrategy`] says how an interrupt stops it; the [`Outcome`] says which
//!   items are done, interrupted, failed, skipped and not started.
//! - [`ItemCtx::checkpoint`] saves an item's own progress durably; a resumed attempt reads
//!   it with [`ItemCtx::resume_point`]. A dependent starts only after its dependencies'
//!   outputs are durable.
//!
//! # Layout
//!
//! This crate is the embedding surface: [`Runtime`] (in `runtime.rs`) and [`Config`] (in
//! `config.rs`). The engine, its actors and its store are in the `tend-actors` crate, whose
//! public types are re-exported here.

#[cfg(feature = "bridge")]
pub mod bridge;
mod config;
pub mod demo;
mod error;
mod runtime;

pub use config::{Config, ConfigError, LimiterConfig, SETTINGS, Setting};
pub use error::Error;
pub use runtime::{EventStream, Runtime, RuntimeBuilder};
pub use tend_actors::{
    ATTEMPTS_KEPT, ActorNode, ActorRole, Answer, AttemptError, AttemptOutcome, AttemptReport,
    Block, BlockOutcome, BlockReport, CYCLE_NAMED, Check, CheckOutcome, DryRun, DryRunBlock,
    DryRunItem, Event, ExecutionCounts, ExecutionId, ExecutionPage, ExecutionReport,
    ExecutionShutdown, ExecutionStatus, ExecutionSummary, Halting, HealthCheckType, Heard,
    InterruptStrategy, Item, ItemCtx, ItemError, ItemReport, ItemSpec, ItemStatus, LifecycleBus,
    LifecycleEvent, LifecycleKind, ListQuery, MaintenanceOperation, MaintenanceReason,
    MaintenanceReport, MaintenanceRequest, MaintenanceType, MaintenanceWork, ModuleAnswer, Notice,
    Outcome, ParseIdError, Plan, PlanError, Progress, Published, Registry, ResourceKind, Resources,
    RuntimeError, SemaphoreReport, SemaphoreUser, ShutdownReason, ShutdownReport, StopResult,
    StoreError, StoreFailure, Submitted, Urgency,
};

pub use tend_actors::janitor::SweepReport;
pub use tend_actors::model::ArtifactId;
pub use tend_actors::model::{human_millis, to_millis};
pub use tend_actors::monitor::{DiskSpace, HealthReport, Measures};

/// The engine crate, for driving the actors directly.
pub use tend_actors as engine;

/// `Result` with tend's umbrella [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The README's code, compiled as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
