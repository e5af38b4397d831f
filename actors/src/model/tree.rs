//! A snapshot of the live actor tree, for people looking at a running runtime.

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
    /// An ItemWorker of an execution's pool.
    ItemWorker,
}

/// One actor and its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActorNode {
    /// What it is.
    pub role: ActorRole,
    /// A name for people: `supervisor`, the execution id, `worker-<n>`.
    pub name: String,
    /// The actor's id in the process.
    pub actor_id: String,
    /// What it is doing: `running`, `stopping`, `interrupting`, `idle`, `running <item>`.
    pub status: String,
    /// Its children.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub children: Vec<ActorNode>,
}
