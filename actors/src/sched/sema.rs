//! Counting semaphores named by item tags, shared by every execution of a runtime: pure
//! bookkeeping, no locks, no I/O (the runtime's shell wraps one in a mutex).
//!
//! ```text
//! acquire(owner, tags)  takes the tags in the order given (sorted by the plan), one
//!                       after the other; at the first one with no free permit, or with
//!                       someone queued ahead, the owner queues there, holding the ones
//!                       before it
//! release(owner)        gives back everything it holds (or leaves the queue it is in);
//!                       freed permits go to the queues' heads, first come first served,
//!                       and whoever now holds all its tags is returned, to be told
//! ```
//!
//! Every owner takes its tags in the same global order, so no cycle of waits can form:
//! while anyone waits, someone holds every tag it asked for and will release them (the
//! property test below checks exactly that after every operation).
//!
//! A tag is `id` or `id:N`: N (> 0, after the last colon) permits, else one. The whole
//! tag names the semaphore, so `db` and `db:1` are distinct. A semaphore exists while
//! someone holds or waits for it.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

/// The largest size a tag may give its semaphore.
pub(crate) const MAX_SIZE: usize = 1_000_000;

/// The permits of a tag: N after its last colon, else 1. `Err` says what is wrong with
/// it (an empty id, N = 0, N too large).
pub(crate) fn size_of(tag: &str) -> Result<usize, String> {
    let (id, size) = match tag.rsplit_once(':') {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            match n.parse::<usize>() {
                Ok(0) => return Err("has size 0; a semaphore needs at least 1".to_owned()),
                Ok(n) if n <= MAX_SIZE => (id, n),
                _ => return Err(format!("has a size over {MAX_SIZE}")),
            }
        }
        _ => (tag, 1),
    };
    if id.is_empty() {
        return Err("has an empty id".to_owned());
    }
    Ok(size)
}

#[derive(Debug)]
struct Semaphore<O> {
    size: usize,
    holders: Vec<O>,
    queue: VecDeque<O>,
}

#[derive(Debug)]
struct Want<W> {
    tags: Arc<[Arc<str>]>,
    /// How many of `tags` (a prefix) it holds.
    held: usize,
    /// Who to tell once it holds them all.
    waker: W,
}

/// One semaphore as people see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SemaphoreState<O> {
    pub(crate) tag: Arc<str>,
    pub(crate) size: usize,
    pub(crate) holders: Vec<O>,
    /// First in line first.
    pub(crate) waiters: Vec<O>,
}

/// Every semaphore in use, and what each owner asked for.
#[derive(Debug)]
pub(crate) struct Table<O, W> {
    semaphores: HashMap<Arc<str>, Semaphore<O>>,
    wants: HashMap<O, Want<W>>,
}

impl<O, W> Default for Table<O, W> {
    fn default() -> Self {
        Table {
            semaphores: HashMap::new(),
            wants: HashMap::new(),
        }
    }
}

impl<O: Clone + Eq + Hash, W: Clone> Table<O, W> {
    /// `owner` asks for `tags` (valid, sorted, no repeats; see [`size_of`]); true when it
    /// holds them all now. Otherwise `waker` comes back from a later [`release`](Self::release)
    /// once it does. An owner that already asked is left as it is.
    pub(crate) fn acquire(&mut self, owner: O, tags: Arc<[Arc<str>]>, waker: W) -> bool {
        if let Some(want) = self.wants.get(&owner) {
            return want.held == want.tags.len();
        }
        self.wants.insert(
            owner.clone(),
            Want {
                tags,
                held: 0,
                waker,
            },
        );
        self.advance(&owner)
    }

    /// Takes `owner`'s next tags while they are free; true once it holds them all. Queues
    /// it at the first that is not.
    fn advance(&mut self, owner: &O) -> bool {
        let Some(want) = self.wants.get_mut(owner) else {
            return false;
        };
        while let Some(tag) = want.tags.get(want.held) {
            let semaphore = self
                .semaphores
                .entry(tag.clone())
                .or_insert_with(|| Semaphore {
                    // Checked at validation; a bad one is a single permit.
                    size: size_of(tag).unwrap_or(1),
                    holders: Vec::new(),
                    queue: VecDeque::new(),
                });
            if semaphore.holders.len() < semaphore.size && semaphore.queue.is_empty() {
                semaphore.holders.push(owner.clone());
                want.held += 1;
            } else {
                semaphore.queue.push_back(owner.clone());
                return false;
            }
        }
        true
    }

    /// `owner` gives back what it holds, or stops waiting. Returns the owners that hold
    /// all their tags because of it, with their wakers, in the order they got them.
    pub(crate) fn release(&mut self, owner: O) -> Vec<(O, W)> {
        let Some(want) = self.wants.remove(&owner) else {
            return Vec::new();
        };
        let mut freed = Vec::new();
        for (i, tag) in want.tags.iter().enumerate() {
            let Some(semaphore) = self.semaphores.get_mut(tag) else {
                continue;
            };
            if i < want.held {
                semaphore.holders.retain(|h| *h != owner);
                freed.push(tag.clone());
            } else if i == want.held {
                // Queued here.
                semaphore.queue.retain(|h| *h != owner);
                freed.push(tag.clone());
            }
        }
        let mut granted = Vec::new();
        // Each freed permit goes to its queue's head, which then goes on to its next tags
        // (taking free ones, or queueing). That frees nothing, so only the released
        // owner's tags have permits to hand out.
        for tag in freed {
            while let Some(semaphore) = self.semaphores.get_mut(&tag) {
                if semaphore.holders.len() >= semaphore.size {
                    break;
                }
                let Some(next) = semaphore.queue.pop_front() else {
                    break;
                };
                semaphore.holders.push(next.clone());
                if let Some(want) = self.wants.get_mut(&next) {
                    want.held += 1;
                }
                if self.advance(&next)
                    && let Some(want) = self.wants.get(&next)
                {
                    let waker = want.waker.clone();
                    granted.push((next, waker));
                }
            }
            if let Some(semaphore) = self.semaphores.get(&tag)
                && semaphore.holders.is_empty()
                && semaphore.queue.is_empty()
            {
                self.semaphores.remove(&tag);
            }
        }
        granted
    }

    /// Releases every owner `matches` picks (an execution that is gone); returns the
    /// grants, as [`release`](Self::release).
    pub(crate) fn release_all(&mut self, matches: impl Fn(&O) -> bool) -> Vec<(O, W)> {
        let owners: Vec<O> = self.wants.keys().filter(|o| matches(o)).cloned().collect();
        let mut granted: Vec<(O, W)> = Vec::new();
        for owner in owners {
            granted.retain(|(o, _)| *o != owner);
            granted.extend(self.release(owner));
        }
        granted
    }

    /// Whether `owner` holds every tag it asked for.
    #[cfg(test)]
    pub(crate) fn holds_all(&self, owner: &O) -> bool {
        self.wants
            .get(owner)
            .is_some_and(|w| w.held == w.tags.len())
    }

    /// Every owner that asked and has not released.
    #[cfg(test)]
    pub(crate) fn owners(&self) -> impl Iterator<Item = &O> + '_ {
        self.wants.keys()
    }

    /// Every semaphore in use, by tag.
    pub(crate) fn snapshot(&self) -> Vec<SemaphoreState<O>> {
        let mut all: Vec<SemaphoreState<O>> = self
            .semaphores
            .iter()
            .map(|(tag, s)| SemaphoreState {
                tag: tag.clone(),
                size: s.size,
                holders: s.holders.clone(),
                waiters: s.queue.iter().cloned().collect(),
            })
            .collect();
        all.sort_by(|a, b| a.tag.cmp(&b.tag));
        all
    }
}

#[cfg(test)]
mod tests;
