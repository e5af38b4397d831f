//! [`Inbox`]: what an Execution's helpers hand it outside its mailbox. The store's writer
//! (commit results) and the attempt tasks (how each attempt ended) push to a queue of its
//! own; the first push after the actor last took the queue sends one wake-up message, and
//! the actor takes everything queued when that message comes. A wake-up stands for any
//! number of entries: no message, and no boxed message, per entry.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// A queue of `T` with one pending wake-up at most.
#[derive(Debug)]
pub(crate) struct Inbox<T> {
    queue: Mutex<Vec<T>>,
    /// A wake-up is on its way.
    notified: AtomicBool,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Inbox {
            queue: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
        }
    }
}

impl<T> Inbox<T> {
    /// Queues `entry`; `true` when the caller must send the wake-up (none is pending).
    pub(crate) fn push(&self, entry: T) -> bool {
        // (A panic while the lock was held cannot leave the Vec half-changed: push and
        // swap either happen or do not.)
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
        !self.notified.swap(true, Ordering::AcqRel)
    }

    /// In the actor: moves everything queued so far into `into`, which must be empty (it
    /// is swapped with the queue, so both buffers keep their capacity and a steady flow
    /// allocates nothing). The flag is cleared first, so an entry queued after this sends
    /// a new wake-up.
    pub(crate) fn take(&self, into: &mut Vec<T>) {
        debug_assert!(into.is_empty());
        self.notified.store(false, Ordering::Release);
        std::mem::swap(
            &mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()),
            into,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Inbox;

    #[test]
    fn one_wake_up_stands_for_everything_queued_until_the_actor_takes_it() {
        let inbox = Inbox::default();
        assert!(inbox.push(1), "the first entry wakes the actor");
        assert!(!inbox.push(2), "a wake-up is pending: no second one");
        let mut taken = Vec::new();
        inbox.take(&mut taken);
        assert_eq!(taken, [1, 2]);
        taken.clear();
        inbox.take(&mut taken);
        assert!(
            taken.is_empty(),
            "a wake-up that finds nothing takes nothing"
        );
        assert!(inbox.push(3), "after a take, the next entry wakes it again");
        inbox.take(&mut taken);
        assert_eq!(taken, [3]);
    }
}
