//! Deleting finished executions: one on request, or every one a retention rule no longer
//! keeps, found by scanning the store (the Supervisor holds no finished execution). While
//! their records go, in commits of at most `BATCH` executions off the handler, requests
//! about them are refused (nothing can start them meanwhile).

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use crate::error::RuntimeError;
use crate::model::Change;
use crate::model::{ExecutionId, now_ms};
use crate::supervisor::{Internal, Reply, SupervisorInternal, SupervisorMsg, SupervisorState};

/// Executions deleted per commit.
const BATCH: usize = 256;
/// Records a prune's scan reads per read transaction.
const SCAN: usize = 10_000;

/// Which finished executions a prune deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Those that ended longer ago than this.
    pub older_than: Option<Duration>,
    /// Beyond the newest this many (by when they ended).
    pub keep_at_most: Option<usize>,
    /// The oldest (by when they ended), until the store's pages take at most this many
    /// bytes; the file is then compacted to about that size.
    pub max_store_bytes: Option<u64>,
}

/// A prune under way: what is left for its size rule, and how many it has deleted.
#[derive(Debug)]
pub(super) struct PruneRun {
    reply: RpcReplyPort<Result<usize, RuntimeError>>,
    /// Finished executions it has not deleted, oldest first (the size rule takes from
    /// here).
    rest: Vec<ExecutionId>,
    max_store_bytes: Option<u64>,
    deleted: usize,
    /// Rounds of the size rule so far.
    rounds: u32,
    /// Held until the prune ends: while any is held, the Supervisor notes what it takes
    /// into memory, and that is not deleted (the scan may predate it).
    _token: std::sync::Arc<()>,
}

/// Who waits for a deletion.
#[derive(Debug)]
pub(super) enum DeleteReply {
    One(Reply<()>),
    Prune(PruneRun),
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
    /// The store is scanned off the handler, in read transactions of `SCAN` records.
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
        let store = self.store.clone();
        let myself = myself.clone();
        let token = self.prune_token.clone();
        tokio::spawn(async move {
            let scanned = async {
                let mut finished = Vec::new();
                let mut after = None;
                loop {
                    let (chunk, next) = store.finished(after, SCAN).await?;
                    finished.extend(chunk);
                    match next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                Ok::<_, crate::error::StoreError>(finished)
            }
            .await;
            drop(store);
            match scanned {
                Ok(finished) => {
                    let (victims, rest) = choose(finished, retention, now_ms());
                    let run = PruneRun {
                        reply,
                        rest,
                        max_store_bytes: retention.max_store_bytes,
                        deleted: 0,
                        rounds: 0,
                        _token: token,
                    };
                    let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(
                        Internal::Chosen { victims, run },
                    )));
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            }
        });
    }

    /// A prune's scan chose `victims`; those the Supervisor has taken into memory since (a
    /// retry of a failed one, say) are kept.
    pub(super) fn chosen(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        victims: Vec<ExecutionId>,
        run: PruneRun,
    ) {
        if self.stopping {
            let _ = run.reply.send(Err(RuntimeError::ShuttingDown));
            return;
        }
        let victims = victims
            .into_iter()
            .filter(|id| {
                !self.entries.contains_key(id)
                    && !self.deleting_ids.contains(id)
                    && !self.touched.contains(id)
            })
            .collect();
        self.remove(myself, victims, DeleteReply::Prune(run));
    }

    fn remove(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        ids: Vec<ExecutionId>,
        reply: DeleteReply,
    ) {
        for id in &ids {
            self.entries.take_for_deletion(*id);
            self.deleting_ids.insert(*id);
        }
        let store = self.store.clone();
        let myself = myself.clone();
        let stop = self.stop_flag.clone();
        self.deleting += 1;
        tokio::spawn(async move {
            let mut deleted = 0;
            let mut error = None;
            for batch in ids.chunks(BATCH) {
                // A shutdown began: what is left stays for a later run.
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    error = Some(RuntimeError::ShuttingDown);
                    break;
                }
                let changes = batch.iter().map(|id| Change::Delete { id: *id }).collect();
                match store.commit(changes).await {
                    Ok(()) => deleted += batch.len(),
                    Err(e) => {
                        tracing::error!(error = %e, "deleting executions failed");
                        error = Some(RuntimeError::Store(e));
                        break;
                    }
                }
            }
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(
                Internal::Deleted {
                    ids,
                    deleted,
                    error,
                    reply,
                },
            )));
        });
    }

    /// A deletion's commits are done: requests about those executions are served again
    /// (from the store, where the ones not deleted still are).
    pub(super) fn deleted(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        ids: Vec<ExecutionId>,
        deleted: usize,
        error: Option<RuntimeError>,
        reply: DeleteReply,
    ) {
        self.deleting = self.deleting.saturating_sub(1);
        // The batches commit in order: the first `deleted` are gone, the rest are not.
        for (n, id) in ids.iter().enumerate() {
            self.deleting_ids.remove(id);
            self.entries.deletion_ended(*id, n < deleted);
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted finished executions");
        }
        match reply {
            DeleteReply::One(reply) => {
                let _ = reply.send(error.map_or(Ok(()), Err));
            }
            DeleteReply::Prune(mut run) => {
                run.deleted += deleted;
                match error {
                    Some(e) => {
                        let _ = run.reply.send(Err(e));
                    }
                    None => {
                        tokio::spawn(next_round(self.store.clone(), myself.clone(), run));
                    }
                }
            }
        }
    }
}

/// Rounds of the size rule at most: each deletes what the measured excess takes, by the
/// average size of a stored execution, then compacts and measures again.
const SIZE_ROUNDS: u32 = 3;

/// After a round of deletions: compacts the file if much of it is free, then, if the size
/// rule wants more gone, chooses the next oldest; else answers with how many were deleted.
async fn next_round(
    store: crate::store::Store,
    myself: ActorRef<SupervisorMsg>,
    mut run: PruneRun,
) {
    let result = async {
        if run.deleted > 0 {
            // What the deleted executions took, about: their share of the file.
            let left = store.execution_count().await?;
            let file = store.size().await?.file_bytes;
            let freed = file / (left + run.deleted as u64).max(1) * run.deleted as u64;
            store.reclaim(freed, true).await?;
        }
        let Some(limit) = run.max_store_bytes else {
            return Ok(None);
        };
        let used = store.size().await?.used_bytes;
        if used <= limit || run.rest.is_empty() || run.rounds == SIZE_ROUNDS {
            if used > limit {
                tracing::warn!(
                    used,
                    limit,
                    "the store is still over its size limit after a prune"
                );
            }
            return Ok(None);
        }
        let stored = store.execution_count().await?.max(1);
        let each = (used / stored).max(1);
        let count = usize::try_from((used - limit).div_ceil(each)).unwrap_or(usize::MAX);
        Ok::<_, crate::error::StoreError>(Some(count.clamp(1, run.rest.len())))
    }
    .await;
    match result {
        Ok(Some(count)) => {
            let victims = run.rest.drain(..count).collect();
            run.rounds += 1;
            let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(
                Internal::Chosen { victims, run },
            )));
        }
        Ok(None) => {
            let _ = run.reply.send(Ok(run.deleted));
        }
        Err(e) => {
            let _ = run.reply.send(Err(e.into()));
        }
    }
}

/// Of the finished executions (when each last changed, and its id), those that the age
/// and count rules of `retention` no longer keep at `now_ms`, and the others, oldest first
/// (for its size rule).
fn choose(
    mut finished: Vec<(u64, ExecutionId)>,
    retention: Retention,
    now_ms: u64,
) -> (Vec<ExecutionId>, Vec<ExecutionId>) {
    // Newest first: what a count keeps.
    finished.sort_unstable_by(|a, b| b.cmp(a));
    let cutoff = retention
        .older_than
        .map(|age| now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
    let keep = retention.keep_at_most.unwrap_or(usize::MAX);
    let (victims, mut rest): (Vec<_>, Vec<_>) = finished
        .into_iter()
        .enumerate()
        .partition(|(rank, (updated, _))| *rank >= keep || cutoff.is_some_and(|c| *updated < c));
    rest.reverse();
    (
        victims.into_iter().map(|(_, (_, id))| id).collect(),
        rest.into_iter().map(|(_, (_, id))| id).collect(),
    )
}
