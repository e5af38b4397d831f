//! [`ExecutionPort`]: the [`AttemptPort`] of one execution's attempts. Progress goes to
//! the Execution actor as a message; checkpoints and artifacts go to the store, and each
//! call resolves once the store answers.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use ractor::ActorRef;

use crate::error::{ItemError, StoreError};
use crate::execution::ExecutionMsg;
use crate::model::{ArtifactId, AttemptPort, Change, Checkpoint, ExecutionId, Progress};
use crate::store::Store;

/// How the attempts of execution `id` reach their Execution and the store.
#[derive(Debug)]
pub(crate) struct ExecutionPort {
    id: ExecutionId,
    execution: ActorRef<ExecutionMsg>,
    store: Store,
}

impl ExecutionPort {
    /// The port of execution `id`, whose actor is `execution`, writing to `store`.
    pub(crate) fn new(id: ExecutionId, execution: ActorRef<ExecutionMsg>, store: Store) -> Self {
        ExecutionPort {
            id,
            execution,
            store,
        }
    }
}

impl AttemptPort for ExecutionPort {
    fn report(
        &self,
        index: u32,
        attempt: u32,
        progress: Option<Progress>,
        message: Option<Arc<str>>,
    ) {
        // If the execution has stopped there is nobody to tell; progress is not durable.
        let _ = self
            .execution
            .cast(ExecutionMsg::progress(index, attempt, progress, message));
    }

    fn checkpoint<'a>(
        &'a self,
        index: u32,
        checkpoint: &'a Checkpoint,
    ) -> BoxFuture<'a, Result<(), ItemError>> {
        async move {
            self.store
                .commit(vec![Change::Checkpoint {
                    id: self.id,
                    index,
                    checkpoint: checkpoint.clone(),
                }])
                .await
                .map_err(|e| ItemError::Store(e.to_string()))
        }
        .boxed()
    }

    fn put_artifact(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<ArtifactId, ItemError>> {
        async move {
            self.store
                .put_artifact(self.id, bytes, crate::model::now_ms())
                .await
                .map_err(artifact_store_error)
        }
        .boxed()
    }

    fn reference_artifact(&self, artifact: ArtifactId) -> BoxFuture<'_, Result<(), ItemError>> {
        async move {
            match self
                .store
                .reference_artifact(self.id, artifact, crate::model::now_ms())
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err(ItemError::ArtifactGone {
                    artifact: artifact.to_string(),
                }),
                Err(e) => Err(artifact_store_error(e)),
            }
        }
        .boxed()
    }

    fn read_artifact(&self, artifact: ArtifactId) -> BoxFuture<'_, Result<Vec<u8>, ItemError>> {
        async move {
            match self
                .store
                .read_artifact(artifact, crate::model::now_ms())
                .await
            {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => Err(ItemError::ArtifactGone {
                    artifact: artifact.to_string(),
                }),
                Err(e) => Err(artifact_store_error(e)),
            }
        }
        .boxed()
    }
}

/// An artifact the store could not write or read: the attempt fails (and its `retry`
/// tries again), rather than stopping the execution as a checkpoint that is not durable
/// does; the item's own checkpoints say what is safe.
fn artifact_store_error(e: StoreError) -> ItemError {
    ItemError::Failed(format!("artifact store: {e}"))
}
