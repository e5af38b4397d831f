//! The domain model: what a user builds and what the runtime reports. No actors, no I/O,
//! no scheduler and no store: [`ItemCtx`], the handle an item uses while it runs, reaches
//! its Execution and the store through an `AttemptPort` the attempt module implements.
//!
//! ```text
//! Plan ── blocks, run in order
//!  └── Block ── a DAG of ItemSpec (id, kind, params, after)
//!       └── ItemSpec ──decoded by the Registry──▶ your `impl Item`
//! Execution (ExecutionId) ── one run of a plan; reported as ExecutionReport / Outcome
//! ```

mod artifact;
mod checkpoint;
mod control;
mod ctx;
mod event;
mod ids;
mod item;
mod lifecycle;
mod maintenance;
mod millis;
mod outcome;
mod page;
mod params;
mod plan;
mod port;
mod record;
mod recovery;
mod registry;
mod report;
mod resources;
mod shutdown;
mod status;
mod strategy;
mod submitted;
mod tree;

pub use artifact::{ArtifactId, ParseArtifactIdError};
pub use checkpoint::Checkpoint;
pub(crate) use control::AttemptControl;
pub(crate) use ctx::CtxParts;
pub use ctx::ItemCtx;
pub use event::Event;
pub use ids::{ExecutionId, ParseIdError};
pub(crate) use item::{Applied, DynItem};
pub use item::{Check, Item};
pub use lifecycle::{
    Answer, HealthCheckType, Heard, LifecycleEvent, LifecycleKind, MaintenanceOperation,
    MaintenanceReason, MaintenanceType, ModuleAnswer, ResourceKind, ShutdownReason, Urgency,
};
pub use maintenance::{MaintenanceRequest, MaintenanceWork};
pub(crate) use millis::serde_millis;
pub use millis::{human as human_millis, to_millis};
pub use outcome::{BlockOutcome, Outcome};
pub use page::{ExecutionPage, ListQuery, MAX_PAGE};
pub use plan::{Block, ItemSpec, MAX_KEY_BYTES, Plan};
pub(crate) use plan::{key_problem, valid_id};
pub(crate) use port::AttemptPort;
pub use record::{
    Change, ExecutionRecord, History, ItemState, KeyOwner, PastAttempt, Started, StoredSummary,
    Write,
};
pub use recovery::{merge_started, resumed};
pub use registry::Registry;
pub(crate) use report::errors_of;
pub use report::{
    ATTEMPTS_KEPT, AttemptError, AttemptReport, BlockReport, ExecutionReport, ExecutionSummary,
    ItemReport, Progress,
};
pub use resources::Resources;
pub use shutdown::{ExecutionShutdown, ShutdownReport, StopOrder, StopResult};
pub use status::{AttemptOutcome, ExecutionStatus, Halting, ItemStatus, STOPPED_BY_STORE};
pub use strategy::InterruptStrategy;
pub use submitted::Submitted;
pub use tree::{ActorNode, ActorRole};

/// Text from a request (a name, a kind, a decoder's message quoting input) for an error
/// message, cut to 128 characters so that no input is echoed at length.
pub(crate) fn cut(text: &str) -> String {
    const MAX: usize = 128;
    if text.chars().count() > MAX {
        format!("{}...", text.chars().take(MAX).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// Milliseconds since the Unix epoch, as stored in records.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `SystemTime` of a stored millisecond timestamp.
pub(crate) fn time_of_ms(ms: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}
