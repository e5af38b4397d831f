//! Sending a step's records to the writer, and their results coming back.

use std::sync::atomic::Ordering;
use std::time::Instant;

use ractor::ActorRef;

use crate::error::StoreError;
use crate::model::{ExecutionStatus, now_ms};
use crate::sched::run::Write;
use crate::store::{ItemRecord, Op};

use super::{ExecutionMsg, ExecutionState};

/// Commit results on their way from the writer thread to the actor. The writer completes
/// commits in order and calls back in order, so the queue is in commit order; one `Acked`
/// message stands for everything queued since the last one was taken.
#[derive(Debug, Default)]
pub(super) struct Acks {
    queue: std::sync::Mutex<Vec<(u64, Result<(), StoreError>)>>,
    /// An `Acked` is on its way.
    notified: std::sync::atomic::AtomicBool,
}

impl Acks {
    /// On the writer thread: queues a result, waking the actor unless a wake-up is pending.
    pub(super) fn push(
        &self,
        commit: u64,
        result: Result<(), StoreError>,
        actor: &ActorRef<ExecutionMsg>,
    ) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((commit, result));
        if !self.notified.swap(true, Ordering::AcqRel) {
            // If the execution is gone it was killed; nobody waits for the result.
            let _ = actor.cast(ExecutionMsg::acked());
        }
    }

    /// In the actor: every result queued so far. The flag is cleared first, so a result
    /// queued after this sends a new `Acked`.
    pub(super) fn take(&self) -> Vec<(u64, Result<(), StoreError>)> {
        self.notified.store(false, Ordering::Release);
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ExecutionState {
    /// Sends one commit's records to the writer; its result comes back through `acks`.
    pub(super) fn commit(
        &mut self,
        myself: &ActorRef<ExecutionMsg>,
        commit: u64,
        writes: Vec<Write>,
    ) {
        let id = self.record.id;
        let mut ops = Vec::with_capacity(writes.len());
        let mut failed = None;
        let mut starts = 0;
        let sent = Instant::now();
        for write in writes {
            let op = match write {
                Write::Started {
                    index,
                    attempt,
                    crashes,
                } => {
                    starts += 1;
                    Ok(Op::Started {
                        id,
                        index,
                        attempt,
                        crashes,
                    })
                }
                Write::Item { index, state } => ItemRecord::op(id, index, &state),
                Write::ClearCheckpoint { index } => Ok(Op::ClearCheckpoint { id, index }),
                Write::PauseRequested | Write::CancelRequested => {
                    if matches!(write, Write::CancelRequested) {
                        self.record.cancelling = true;
                    } else {
                        self.record.pausing = true;
                    }
                    self.record.updated_ms = now_ms();
                    match self.record.ops(false) {
                        Ok(record) => ops.extend(record),
                        Err(e) => failed = Some(e),
                    }
                    continue;
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
                    let record = self.record.ops(false);
                    self.record.status = running;
                    self.record.resume_on_start = resume;
                    match record {
                        Ok(record) => ops.extend(record),
                        Err(e) => failed = Some(e),
                    }
                    // The final record waits for every earlier commit: if none failed, each
                    // attempt that started has its item record, and the start set can go.
                    if self.store_error.is_none() {
                        ops.push(Op::ClearStarts { id });
                    }
                    continue;
                }
            };
            match op {
                Ok(op) => ops.push(op),
                Err(e) => failed = Some(e),
            }
        }
        if starts > 0 {
            self.start_waits.push_back((commit, starts, sent));
        }
        let (acks, myself) = (self.acks.clone(), myself.clone());
        match failed {
            // Nothing of it is written: to the core, a commit that failed. It goes through
            // the writer all the same (with nothing to write), so results stay in order.
            Some(e) => self.writer.send_then(
                Vec::new(),
                Box::new(move |_| acks.push(commit, Err(e), &myself)),
            ),
            None => self.writer.send_then(
                ops,
                Box::new(move |result| acks.push(commit, result, &myself)),
            ),
        }
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
