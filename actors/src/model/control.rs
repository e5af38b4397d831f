//! [`AttemptControl`]: what a running attempt and its Execution share (the stop flag, the last
//! progress, the item's latest checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::{Checkpoint, Progress};

/// Shared between a running attempt and its Execution: the stop flag and the last progress.
#[derive(Debug, Default)]
pub(crate) struct AttemptControl {
    cancel: AtomicBool,
    /// Wakes attempts waiting in [`ItemCtx::interrupted`](crate::ItemCtx::interrupted) when
    /// `cancel` is set.
    cancelled: tokio::sync::Notify,
    /// Whether a checkpoint of this item may be stored (one was loaded or saved), so the
    /// Execution knows if there is one to clear when the item is done.
    checkpointed: AtomicBool,
    last: Mutex<(Option<Progress>, Option<Arc<str>>)>,
    /// The item's latest durable checkpoint: the one the attempt started from, or the last
    /// it saved. Handed back when the attempt ends, so its next attempt resumes from it.
    checkpoint: Mutex<Option<Checkpoint>>,
    /// `apply` began in this attempt (so it may have changed something, however it ends).
    applying: AtomicBool,
}

impl AttemptControl {
    /// The control of an attempt that resumes from `checkpoint` (the item's latest).
    pub(crate) fn resuming(checkpoint: Option<Checkpoint>) -> Self {
        let control = AttemptControl::default();
        if let Some(checkpoint) = &checkpoint {
            control.last.lock().unwrap_or_else(|p| p.into_inner()).0 = checkpoint.progress;
            control.mark_checkpointed();
        }
        *control.checkpoint() = checkpoint;
        control
    }

    /// The item's latest durable checkpoint, locked. (A poisoned lock still holds a whole
    /// value: it is only ever replaced.)
    pub(crate) fn checkpoint(&self) -> MutexGuard<'_, Option<Checkpoint>> {
        self.checkpoint.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The progress stored with the item's latest durable checkpoint.
    pub(crate) fn checkpoint_progress(&self) -> Option<Progress> {
        self.checkpoint().as_ref().and_then(|c| c.progress)
    }

    /// Takes the item's latest durable checkpoint, for its next attempt.
    pub(crate) fn take_checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint().take()
    }

    /// Tells the attempt to stop at its next cancellation point.
    pub(crate) fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
        self.cancelled.notify_waiters();
    }

    /// Resolves once the attempt is told to stop (at once if it has been).
    pub(crate) async fn cancelled(&self) {
        let notified = self.cancelled.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a cancel in between still wakes it.
        notified.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        notified.await;
    }

    /// Records that `apply` begins.
    pub(crate) fn mark_applying(&self) {
        self.applying.store(true, Ordering::Release);
    }

    /// Whether `apply` began in this attempt.
    pub(crate) fn applied(&self) -> bool {
        self.applying.load(Ordering::Acquire)
    }

    /// Records that a checkpoint of this item may be stored.
    pub(crate) fn mark_checkpointed(&self) {
        self.checkpointed.store(true, Ordering::Release);
    }

    /// Whether a checkpoint of this item may be stored.
    pub(crate) fn is_checkpointed(&self) -> bool {
        self.checkpointed.load(Ordering::Acquire)
    }

    /// Whether the attempt has been told to stop.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    /// The last progress and message the attempt reported.
    pub(crate) fn last(&self) -> (Option<Progress>, Option<Arc<str>>) {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keeps what the attempt reports (each part only when given).
    pub(crate) fn record(&self, progress: Option<Progress>, message: Option<Arc<str>>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if progress.is_some() {
            last.0 = progress;
        }
        if message.is_some() {
            last.1 = message;
        }
    }
}
