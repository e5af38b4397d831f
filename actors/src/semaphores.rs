//! The runtime's semaphores: one `sched::sema::Table` shared by every Execution actor,
//! behind a mutex held only for the bookkeeping of one acquire or release. An attempt
//! that gets its permits because another released them is told through its execution's
//! `Grantee` (the Execution actor implements it with a message), so this module names
//! no actor.
//!
//! Nothing of it is stored: a restart begins with every permit free, which is right,
//! since no attempt survives a restart either.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::model::ExecutionId;
use crate::sched::sema::Table;

/// An item of an execution waiting for, or holding, semaphores. Two are the same holder
/// when execution, item index and ticket match (the item id is for people).
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub(crate) execution: ExecutionId,
    pub(crate) index: u32,
    pub(crate) ticket: u64,
    pub(crate) item: Arc<str>,
}

impl PartialEq for Holder {
    fn eq(&self, other: &Self) -> bool {
        (self.execution, self.index, self.ticket) == (other.execution, other.index, other.ticket)
    }
}

impl Eq for Holder {}

impl Hash for Holder {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.execution, self.index, self.ticket).hash(state);
    }
}

/// Who holds or waits for a semaphore: an item of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemaphoreUser {
    /// The execution.
    pub execution: ExecutionId,
    /// The item's id.
    pub item: String,
}

/// One semaphore in use: its tag, its permits, who holds it and who waits (first in line
/// first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemaphoreReport {
    /// The tag that names it (`db:2`).
    pub tag: String,
    /// How many may hold it at once.
    pub size: usize,
    /// The items holding it now.
    pub holders: Vec<SemaphoreUser>,
    /// The items waiting for it, in the order they will get it.
    pub waiters: Vec<SemaphoreUser>,
}

/// The execution a waiting holder belongs to, told when the holder got every permit it
/// asked for (another execution released them).
pub(crate) trait Grantee: Send + Sync + std::fmt::Debug {
    /// Item `index` holds the permits it asked for under `ticket`. Never waits; an
    /// execution that is gone is not told.
    fn granted(&self, index: u32, ticket: u64);
}

type Waker = Arc<dyn Grantee>;

/// The semaphores of one runtime, shared by all its executions.
#[derive(Debug, Default)]
pub struct Semaphores {
    table: Mutex<Table<Holder, Waker>>,
}

impl Semaphores {
    /// No semaphore in use.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table<Holder, Waker>> {
        // The table's operations do not panic midway; a poisoned lock still holds a
        // consistent table.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `holder` asks for `tags`; true when it holds them all now, else `waker` is told
    /// later ([`Grantee::granted`]).
    pub(crate) fn acquire(&self, holder: Holder, tags: Arc<[Arc<str>]>, waker: Waker) -> bool {
        self.table().acquire(holder, tags, waker)
    }

    /// `holder` gives back what it holds or stops waiting. Returns the holders of `own`
    /// that now hold all theirs (for the caller to act on at once); the others' executions
    /// are told by message.
    pub(crate) fn release(&self, holder: Holder, own: ExecutionId) -> Vec<Holder> {
        let granted = self.table().release(holder);
        tell(granted, own)
    }

    /// Releases everything execution `id` holds or waits for (its actor is gone).
    pub(crate) fn release_execution(&self, id: ExecutionId) {
        let granted = self.table().release_all(|h| h.execution == id);
        // `id` has nobody left to tell.
        let _ = tell(granted, id);
    }

    /// Every semaphore in use, by tag.
    pub fn report(&self) -> Vec<SemaphoreReport> {
        let user = |h: Holder| SemaphoreUser {
            execution: h.execution,
            item: h.item.to_string(),
        };
        self.table()
            .snapshot()
            .into_iter()
            .map(|s| SemaphoreReport {
                tag: s.tag.to_string(),
                size: s.size,
                holders: s.holders.into_iter().map(user).collect(),
                waiters: s.waiters.into_iter().map(user).collect(),
            })
            .collect()
    }
}

/// Tells each granted holder's execution, except `own`'s, which are returned.
fn tell(granted: Vec<(Holder, Waker)>, own: ExecutionId) -> Vec<Holder> {
    let mut mine = Vec::new();
    for (holder, waker) in granted {
        if holder.execution == own {
            mine.push(holder);
        } else {
            // An execution that is gone released its waits first; nobody to tell.
            waker.granted(holder.index, holder.ticket);
        }
    }
    mine
}
