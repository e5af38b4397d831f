//! [`AttemptPort`]: how an item attempt's context reaches its Execution and the store
//! without the model naming either. The attempt module implements it
//! (`attempt/port.rs`); the model only holds it.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::error::ItemError;
use crate::model::{ArtifactId, Checkpoint, Progress};

/// Where what an attempt produces goes: progress to its Execution, checkpoints and
/// artifacts to the store. One per execution, shared by its attempts; every call names
/// the item by its index in the execution.
pub(crate) trait AttemptPort: Send + Sync + std::fmt::Debug {
    /// Progress or a message from attempt `attempt` of item `index`. Not durable, never
    /// waits: dropped when nobody listens any more, or when that attempt has ended by the
    /// time it arrives (its end may overtake it).
    fn report(
        &self,
        index: u32,
        attempt: u32,
        progress: Option<Progress>,
        message: Option<Arc<str>>,
    );

    /// Makes `checkpoint` item `index`'s latest checkpoint; resolves once it is durable.
    /// A store that failed is [`ItemError::Store`].
    fn checkpoint<'a>(
        &'a self,
        index: u32,
        checkpoint: &'a Checkpoint,
    ) -> BoxFuture<'a, Result<(), ItemError>>;

    /// Stores `bytes` as an artifact this execution references; resolves once durable.
    fn put_artifact(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<ArtifactId, ItemError>>;

    /// Makes this execution reference `artifact`; [`ItemError::ArtifactGone`] when the
    /// sweep deleted it.
    fn reference_artifact(&self, artifact: ArtifactId) -> BoxFuture<'_, Result<(), ItemError>>;

    /// `artifact`'s bytes, touching its timestamp of interest; [`ItemError::ArtifactGone`]
    /// when the sweep deleted it.
    fn read_artifact(&self, artifact: ArtifactId) -> BoxFuture<'_, Result<Vec<u8>, ItemError>>;
}
