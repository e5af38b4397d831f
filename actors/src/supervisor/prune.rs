//! Deleting finished executions: one on request, or every one a retention rule no longer
//! keeps. The entries leave the map at once (nothing can start them meanwhile); their
//! records go in commits of at most `BATCH` executions, off the handler; an entry whose
//! commit failed comes back.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use crate::error::RuntimeError;
use crate::model::{ExecutionId, ExecutionStatus, now_ms};
use crate::store::Op;
use crate::supervisor::entry::Entry;
use crate::supervisor::{Internal, Reply, SupervisorInternal, SupervisorMsg, SupervisorState};

/// Executions deleted per commit.
const BATCH: usize = 256;

/// Which finished executions a prune deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Those that ended longer ago than this.
    pub older_than: Option<Duration>,
    /// Beyond the newest this many (by when they ended).
    pub keep_at_most: Option<usize>,
}

/// Who waits for a deletion.
#[derive(Debug)]
pub(super) enum DeleteReply {
    One(Reply<()>),
    Prune(RpcReplyPort<Result<usize, RuntimeError>>),
}

impl SupervisorState {
    /// Deletes execution `id` with its records, if it is finished (completed, failed or
    /// corrupt) and not running.
    pub(super) fn delete(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ExecutionId,
        reply: Reply<()>,
    ) {
        if self.stopping {
            let _ = reply.send(Err(RuntimeError::ShuttingDown));
            return;
        }
        let Some(entry) = self.entries.get(&id) else {
            let _ = reply.send(Err(RuntimeError::UnknownExecution(id)));
            return;
        };
        if entry.is_live() || !entry.status.is_final() {
            let _ = reply.send(Err(RuntimeError::InvalidState {
                id,
                action: "delete",
                status: entry.status,
            }));
            return;
        }
        self.remove(myself, vec![id], DeleteReply::One(reply));
    }

    /// Deletes every finished execution `retention` no longer keeps; replies with how many.
    pub(super) fn prune(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        retention: Retention,
        reply: RpcReplyPort<Result<usize, RuntimeError>>,
    ) {
        if self.stopping {
            let _ = reply.send(Err(RuntimeError::ShuttingDown));
            return;
        }
        let mut finished: Vec<(u64, ExecutionId)> = self
            .entries
            .iter()
            // Not corrupt ones: a newer build's records read as corrupt, and they may be
            // an execution that would run again after an upgrade. `delete` takes those.
            .filter(|(_, e)| {
                !e.is_live() && e.status.is_final() && e.status != ExecutionStatus::Corrupt
            })
            .map(|(&id, e)| (e.updated_ms, id))
            .collect();
        // Newest first: what a count keeps.
        finished.sort_unstable_by(|a, b| b.cmp(a));
        let cutoff = retention
            .older_than
            .map(|age| now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
        let keep = retention.keep_at_most.unwrap_or(usize::MAX);
        let victims: Vec<ExecutionId> = finished
            .into_iter()
            .enumerate()
            .filter(|(rank, (updated, _))| *rank >= keep || cutoff.is_some_and(|c| *updated < c))
            .map(|(_, (_, id))| id)
            .collect();
        self.remove(myself, victims, DeleteReply::Prune(reply));
    }

    fn remove(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        ids: Vec<ExecutionId>,
        reply: DeleteReply,
    ) {
        let removed: Vec<(ExecutionId, Entry)> = ids
            .into_iter()
            .filter_map(|id| self.entries.remove(&id).map(|e| (id, e)))
            .collect();
        let writer = self.store.writer().clone();
        let myself = myself.clone();
        let stop = self.stop_flag.clone();
        self.deleting += 1;
        tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut deleted = 0;
            let mut error = None;
            for batch in removed.chunks(BATCH) {
                // A shutdown began: what is left stays for a later run.
                if error.is_none() && stop.load(std::sync::atomic::Ordering::Relaxed) {
                    error = Some(RuntimeError::ShuttingDown);
                }
                if error.is_some() {
                    kept.extend(batch.iter().map(|(id, _)| *id));
                    continue;
                }
                let ops = batch.iter().map(|(id, _)| Op::Delete { id: *id }).collect();
                match writer.commit(ops).await {
                    Ok(()) => deleted += batch.len(),
                    Err(e) => {
                        tracing::error!(error = %e, "deleting executions failed");
                        error = Some(RuntimeError::Store(e));
                        kept.extend(batch.iter().map(|(id, _)| *id));
                    }
                }
            }
            let back = removed
                .into_iter()
                .filter(|(id, _)| kept.contains(id))
                .collect();
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(
                Internal::Deleted {
                    back,
                    deleted,
                    error,
                    reply,
                },
            )));
        });
    }

    /// A deletion's commits are done: entries whose records stayed come back.
    pub(super) fn deleted(
        &mut self,
        back: Vec<(ExecutionId, Entry)>,
        deleted: usize,
        error: Option<RuntimeError>,
        reply: DeleteReply,
    ) {
        self.deleting = self.deleting.saturating_sub(1);
        for (id, entry) in back {
            self.entries.insert(id, entry);
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted finished executions");
        }
        match reply {
            DeleteReply::One(reply) => {
                let _ = reply.send(error.map_or(Ok(()), Err));
            }
            DeleteReply::Prune(reply) => {
                let _ = reply.send(error.map_or(Ok(deleted), Err));
            }
        }
    }
}
