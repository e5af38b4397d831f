//! Sending a step's records to the store, and their results coming back.

use std::time::Instant;

use ractor::ActorRef;

use crate::error::StoreError;
use crate::model::{Change, ExecutionStatus, Started, Write, now_ms};

use super::inbox::Inbox;
use super::{ExecutionMsg, ExecutionState};

/// Commit results on their way from the writer thread to the actor. The writer completes
/// commits in order and calls back in order, so the queue is in commit order; one `Acked`
/// message stands for everything queued since the last one was taken.
pub(super) type Acks = Inbox<(u64, Result<(), StoreError>)>;

impl ExecutionState {
    /// Sends one commit's records to the store; its result comes back through `acks`.
    pub(super) fn commit(
        &mut self,
        myself: &ActorRef<ExecutionMsg>,
        commit: u64,
        writes: Vec<Write>,
    ) {
        let id = self.record.id;
        let mut changes = Vec::with_capacity(writes.len());
        let mut starts = 0;
        let sent = Instant::now();
        for write in writes {
            match write {
                Write::Started {
                    index,
                    attempt,
                    crashes,
                } => {
                    starts += 1;
                    changes.push(Change::Started {
                        id,
                        index,
                        started: Started { attempt, crashes },
                    });
                }
                Write::Item {
                    index,
                    state,
                    first,
                } => changes.push(Change::Item {
                    id,
                    index,
                    state,
                    first,
                }),
                Write::ClearCheckpoint { index } => {
                    changes.push(Change::ClearCheckpoint { id, index })
                }
                Write::PauseRequested | Write::CancelRequested => {
                    if matches!(write, Write::CancelRequested) {
                        self.record.cancelling = true;
                    } else {
                        self.record.pausing = true;
                    }
                    self.record.updated_ms = now_ms();
                    changes.push(Change::Execution {
                        record: self.record.clone(),
                        new: false,
                    });
                }
                Write::Execution { status } => {
                    // A final record needs no mark: it says paused or cancelled, or the
                    // request was overtaken (completed, failed).
                    self.record.pausing = false;
                    self.record.cancelling = false;
                    let running = std::mem::replace(&mut self.record.status, status);
                    // Every item's record is in this commit or an earlier one.
                    self.record.items_done = Some(self.run.done_count() as u64);
                    let resume = self.record.resume_on_start;
                    self.record.resume_on_start = resume && status == ExecutionStatus::Interrupted;
                    self.record.updated_ms = now_ms();
                    changes.push(Change::Execution {
                        record: self.record.clone(),
                        new: false,
                    });
                    self.record.status = running;
                    self.record.resume_on_start = resume;
                    // The final record waits for every earlier commit: if none failed, each
                    // attempt that started has its item record, and the start set can go.
                    if self.store_error.is_none() {
                        changes.push(Change::ClearStarts { id });
                    }
                }
            }
        }
        if starts > 0 {
            self.start_waits.push_back((commit, starts, sent));
        }
        let (acks, myself) = (self.acks.clone(), myself.clone());
        self.store.send(
            changes,
            Box::new(move |result| {
                if acks.push((commit, result)) {
                    // If the execution is gone it was killed; nobody waits for the result.
                    let _ = myself.cast(ExecutionMsg::acked());
                }
            }),
        );
    }

    /// Commit `commit` is answered at `now`: the attempts it starts waited since it was sent
    /// (counted if `durable`, that is if they start).
    pub(super) fn start_waited(&mut self, commit: u64, durable: bool, now: Instant) {
        while let Some(&(id, starts, sent)) = self.start_waits.front() {
            if id > commit {
                break;
            }
            self.start_waits.pop_front();
            if id == commit && durable {
                crate::metrics::attempts_started(starts, now.saturating_duration_since(sent));
            }
        }
    }
}
