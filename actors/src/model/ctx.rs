//! `ItemCtx`: what an item attempt can ask of the runtime while it runs. It holds the
//! attempt's [`AttemptControl`] (shared with its Execution) and the execution's
//! [`AttemptPort`] (implemented beside the attempt's task), through which progress reaches the
//! Execution and checkpoints and artifacts reach the store.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ItemError;
use crate::model::{
    ArtifactId, AttemptControl, AttemptPort, Checkpoint, ExecutionId, Progress, Resources,
};

/// A dependency's id and its stored output (msgpack), if it has one.
pub(crate) type Input = (Arc<str>, Option<Arc<[u8]>>);

/// Everything an `ItemCtx` is made of; built by the Execution actor for each attempt.
pub(crate) struct CtxParts {
    pub(crate) execution_id: ExecutionId,
    pub(crate) index: u32,
    pub(crate) item_id: Arc<str>,
    pub(crate) attempt: u32,
    /// A refresh from a `notify` dependency is pending.
    pub(crate) refresh: bool,
    pub(crate) inputs: Vec<Input>,
    pub(crate) control: Arc<AttemptControl>,
    /// Where progress, checkpoints and artifacts go; `None` in a dry run, which writes
    /// nothing and tells nobody.
    pub(crate) port: Option<Arc<dyn AttemptPort>>,
    pub(crate) resources: Arc<Resources>,
}

/// The handle an item attempt uses to resume, checkpoint, report progress, read its
/// dependencies' outputs and notice interrupts.
pub struct ItemCtx {
    parts: CtxParts,
}

impl std::fmt::Debug for ItemCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemCtx")
            .field("execution_id", &self.parts.execution_id)
            .field("item_id", &self.parts.item_id)
            .field("attempt", &self.parts.attempt)
            .finish_non_exhaustive()
    }
}

impl ItemCtx {
    pub(crate) fn new(parts: CtxParts) -> Self {
        ItemCtx { parts }
    }

    /// Records that `apply` begins.
    pub(crate) fn mark_applying(&self) {
        self.parts.control.mark_applying();
    }

    /// The execution this attempt belongs to.
    pub fn execution_id(&self) -> ExecutionId {
        self.parts.execution_id
    }

    /// This item's id.
    pub fn item_id(&self) -> &str {
        &self.parts.item_id
    }

    /// A key that is the same for every attempt of this item in this execution, across
    /// interrupts, restarts, retries and retries of a failed execution:
    /// `<execution-id>/<item-id>`. Items run at least once (an attempt cut short by a
    /// crash runs again), so hand this to external systems that can deduplicate their
    /// side effects by it.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}", self.parts.execution_id, self.parts.item_id)
    }

    /// Whether a dependency joined to this item by a `notify` edge changed something
    /// since this item last succeeded (its `check` asked for `apply` and `apply`
    /// succeeded, or an earlier attempt of it began `apply` and did not succeed: refreshes
    /// are at least once). Stays true for every attempt until one succeeds, across
    /// crashes and restarts. A `check` that sees it usually asks for `apply` (restart the service
    /// whose config changed, say).
    pub fn refresh(&self) -> bool {
        self.parts.refresh
    }

    /// Whether this is a dry run ([`Runtime::dry_run`](https://docs.rs/tend)): only
    /// `check` runs, and nothing is written (a checkpoint is an error).
    pub fn is_dry_run(&self) -> bool {
        self.parts.port.is_none()
    }

    /// Which attempt this is, counting from 1 across restarts.
    pub fn attempt(&self) -> u32 {
        self.parts.attempt
    }

    /// The state saved by the last [`checkpoint`](Self::checkpoint) of this item, in this or
    /// an earlier attempt; `None` when the item never checkpointed.
    pub fn resume_point<T: DeserializeOwned>(&self) -> Result<Option<T>, ItemError> {
        let checkpoint = self.parts.control.checkpoint();
        match checkpoint.as_ref().map(|c| &c.state) {
            None => Ok(None),
            Some(bytes) => rmp_serde::from_slice(bytes)
                .map(Some)
                .map_err(|e| ItemError::Checkpoint(format!("cannot decode resume point: {e}"))),
        }
    }

    /// Stores `bytes` as an artifact and returns its id (the SHA-256 of the bytes: the
    /// same bytes are stored once). This execution references it from now on (an output
    /// may carry the id), so the orphan sweep keeps it while the execution is stored.
    /// Returns once durable.
    pub async fn put_artifact(&self, bytes: impl Into<Vec<u8>>) -> Result<ArtifactId, ItemError> {
        self.port_for_artifacts()?.put_artifact(bytes.into()).await
    }

    /// Makes this execution reference an artifact made elsewhere (another execution's),
    /// so the orphan sweep keeps it while this execution is stored. An artifact the sweep
    /// deleted meanwhile is [`ItemError::ArtifactGone`]: a retry makes it again.
    pub async fn reference_artifact(&self, artifact: ArtifactId) -> Result<(), ItemError> {
        self.port_for_artifacts()?
            .reference_artifact(artifact)
            .await
    }

    /// An artifact's bytes; reading it touches its timestamp of interest. One the sweep
    /// deleted is [`ItemError::ArtifactGone`].
    pub async fn get_artifact(&self, artifact: ArtifactId) -> Result<Vec<u8>, ItemError> {
        self.port_for_artifacts()?.read_artifact(artifact).await
    }

    fn port_for_artifacts(&self) -> Result<&dyn AttemptPort, ItemError> {
        self.parts.port.as_deref().ok_or_else(|| {
            ItemError::failed("a dry run reads and writes no artifacts; use them in `apply`")
        })
    }

    /// Saves `state` as this item's intra-item checkpoint. Returns once it is durable; a
    /// later attempt (after an interrupt or a restart) reads it with
    /// [`resume_point`](Self::resume_point).
    ///
    /// The progress reported so far is stored with it, and is what the item shows after a
    /// restart: report the progress a state stands for before you checkpoint that state.
    pub async fn checkpoint<T: Serialize + ?Sized>(&mut self, state: &T) -> Result<(), ItemError> {
        let state = rmp_serde::to_vec_named(state)
            .map_err(|e| ItemError::Checkpoint(format!("cannot encode state: {e}")))?;
        let progress = self.parts.control.last().0;
        let Some(port) = &self.parts.port else {
            return Err(ItemError::Checkpoint(
                "a dry run writes nothing; checkpoint in `apply`, not in `check`".to_owned(),
            ));
        };
        // Marked before the write: if the attempt is aborted mid-commit, the record may land.
        self.parts.control.mark_checkpointed();
        let checkpoint = Checkpoint { state, progress };
        port.checkpoint(self.parts.index, &checkpoint).await?;
        *self.parts.control.checkpoint() = Some(checkpoint);
        Ok(())
    }

    /// A place where the item may stop: `Err(ItemError::Interrupted)` when the execution is
    /// being interrupted with `AtCancellationPoint` or `Immediate` (or is shutting down).
    /// Return that error with `?`; the item keeps its last checkpoint.
    pub async fn cancellation_point(&self) -> Result<(), ItemError> {
        if self.parts.control.is_cancelled() {
            Err(ItemError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Resolves once the attempt is asked to stop (an interrupt at cancellation points, or a
    /// shutdown); never resolves otherwise. Race it against a long wait so the wait ends
    /// with the interrupt:
    ///
    /// ```ignore
    /// tokio::select! {
    ///     reply = client.poll() => handle(reply?),
    ///     () = cx.interrupted() => return Err(ItemError::Interrupted),
    /// }
    /// ```
    pub async fn interrupted(&self) {
        self.parts.control.cancelled().await;
    }

    /// Whether the attempt has been asked to stop, without stopping it.
    pub fn is_interrupted(&self) -> bool {
        self.parts.control.is_cancelled()
    }

    /// Reports progress: `done` of `total` units.
    pub fn progress(&self, done: u64, total: u64) {
        self.report(Some(Progress { done, total }), None);
    }

    /// Reports a message for people, e.g. what the item is doing now.
    pub fn message(&self, message: impl Into<String>) {
        self.report(None, Some(Arc::from(message.into())));
    }

    /// Reports progress and a message together.
    pub fn progress_with(&self, done: u64, total: u64, message: impl Into<String>) {
        self.report(
            Some(Progress { done, total }),
            Some(Arc::from(message.into())),
        );
    }

    fn report(&self, progress: Option<Progress>, message: Option<Arc<str>>) {
        self.parts.control.record(progress, message.clone());
        // If the execution has stopped (or this is a dry run) there is nobody to tell;
        // progress is not durable.
        if let Some(port) = &self.parts.port {
            port.report(self.parts.index, self.parts.attempt, progress, message);
        }
    }

    /// The output of `dependency`, one of the ids this item runs `after`, decoded as `T`.
    pub fn input<T: DeserializeOwned>(&self, dependency: &str) -> Result<T, ItemError> {
        let Some((_, output)) = self
            .parts
            .inputs
            .iter()
            .find(|(id, _)| id.as_ref() == dependency)
        else {
            return Err(ItemError::Input {
                dependency: dependency.to_owned(),
                reason: format!("`{}` does not depend on it", self.parts.item_id),
            });
        };
        let Some(bytes) = output else {
            return Err(ItemError::Input {
                dependency: dependency.to_owned(),
                reason: "it has no stored output".to_owned(),
            });
        };
        rmp_serde::from_slice(bytes).map_err(|e| ItemError::Input {
            dependency: dependency.to_owned(),
            reason: format!("its output does not decode: {e}"),
        })
    }

    /// The application's shared value of type `T`, added with
    /// `RuntimeBuilder::resource` (or `ExecutionArgs::with_resources`).
    /// The handle does not borrow the context, so the item can keep it across
    /// `checkpoint` calls.
    pub fn resource<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.parts.resources.get_arc()
    }

    /// The ids of this item's dependencies.
    pub fn dependencies(&self) -> impl Iterator<Item = &str> {
        self.parts.inputs.iter().map(|(id, _)| id.as_ref())
    }
}
