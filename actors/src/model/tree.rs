//! A snapshot of the live actor tree, for people looking at a running runtime: the
//! Supervisor, its Executions, and their running attempts.

use serde::Serialize;

/// What an actor in the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActorRole {
    /// The Supervisor.
    Supervisor,
    /// An Execution.
    Execution,
    /// An attempt of an item, running in a task its Execution owns (a task, not an
    /// actor: its `actor_id` is `task-<tokio task id>`).
    Attempt,
}

/// One actor and its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActorNode {
    /// What it is.
    pub role: ActorRole,
    /// A name for people: `supervisor`, the execution id, `<item> attempt <n>`.
    pub name: String,
    /// The actor's id in the process (an attempt's: `task-<tokio task id>`).
    pub actor_id: String,
    /// What it is doing: `running`, `stopping`, `interrupting`, `running <item>`.
    pub status: String,
    /// Its children.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub children: Vec<ActorNode>,
}
