//! The Supervisor's execution map: the executions it holds in memory, and what it tells
//! the Catalog of them.
//!
//! It holds an execution while it is not finished (running, starting, interrupted,
//! paused) and, for the length of one request, a finished one that the request is about
//! (read from the store on demand). Every change made through it is published to the
//! Catalog once the message that made it is handled; finished executions that nothing
//! waits on are let go then, so memory does not grow with the executions stored.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{Catalog, LiveView};
use crate::model::ExecutionId;
use crate::supervisor::entry::Entry;

#[derive(Debug)]
pub(super) struct Entries {
    map: BTreeMap<ExecutionId, Entry>,
    /// Changed since the last publish.
    dirty: BTreeSet<ExecutionId>,
    /// Corrupt executions being deleted: back into `map` if their deletion fails, so they
    /// are still counted.
    deleting_corrupt: BTreeMap<ExecutionId, Entry>,
    catalog: Catalog,
}

impl Entries {
    pub(super) fn new(map: BTreeMap<ExecutionId, Entry>, catalog: Catalog) -> Self {
        let dirty = map.keys().copied().collect();
        Entries {
            map,
            dirty,
            deleting_corrupt: BTreeMap::new(),
            catalog,
        }
    }

    pub(super) fn get(&self, id: &ExecutionId) -> Option<&Entry> {
        self.map.get(id)
    }

    /// The entry, to change: it is published after this message.
    pub(super) fn get_mut(&mut self, id: &ExecutionId) -> Option<&mut Entry> {
        let entry = self.map.get_mut(id)?;
        self.dirty.insert(*id);
        Some(entry)
    }

    pub(super) fn insert(&mut self, id: ExecutionId, entry: Entry) {
        self.dirty.insert(id);
        self.map.insert(id, entry);
    }

    pub(super) fn remove(&mut self, id: &ExecutionId) -> Option<Entry> {
        let entry = self.map.remove(id)?;
        self.dirty.insert(*id);
        Some(entry)
    }

    /// Takes an execution out of memory for its deletion (see [`Entries::deletion_ended`]).
    pub(super) fn take_for_deletion(&mut self, id: ExecutionId) {
        if let Some(entry) = self.remove(&id).filter(|e| e.corrupt.is_some()) {
            self.deleting_corrupt.insert(id, entry);
        }
    }

    /// An execution's deletion ended: if it was not `deleted`, a corrupt one comes back.
    /// (A finished one is read from the store again when asked about.)
    pub(super) fn deletion_ended(&mut self, id: ExecutionId, deleted: bool) {
        if let Some(entry) = self.deleting_corrupt.remove(&id)
            && !deleted
        {
            self.insert(id, entry);
        }
    }

    pub(super) fn contains_key(&self, id: &ExecutionId) -> bool {
        self.map.contains_key(id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&ExecutionId, &Entry)> {
        self.map.iter()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Entry> {
        self.map.values()
    }

    /// The execution whose actor is `actor`.
    pub(super) fn of_actor(&self, actor: ractor::ActorId) -> Option<ExecutionId> {
        self.map
            .iter()
            .find(|(_, e)| e.actor.as_ref().is_some_and(|a| a.get_id() == actor))
            .map(|(&id, _)| id)
    }

    /// Lets go of the finished executions nothing waits on (`waited` says which are waited
    /// on), unless told to `keep` them, and publishes every change to the Catalog.
    pub(super) fn publish(&mut self, waited: impl Fn(&ExecutionId) -> bool, keep: bool) {
        if self.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes = Vec::with_capacity(dirty.len());
        for id in dirty {
            let idle = !keep && self.map.get(&id).is_some_and(|e| e.is_idle()) && !waited(&id);
            if idle {
                self.map.remove(&id);
            }
            changes.push((id, self.map.get(&id).map(|e| e.view(id))));
        }
        self.catalog.publish(changes);
    }
}

impl Entry {
    /// Finished, and nothing about it is under way. (A corrupt one stays: the runtime
    /// counts those it has come across, and they are few.)
    fn is_idle(&self) -> bool {
        matches!(
            self.status,
            crate::model::ExecutionStatus::Completed
                | crate::model::ExecutionStatus::Failed
                | crate::model::ExecutionStatus::Cancelled
        ) && !self.is_live()
            && self.pending_interrupts.is_empty()
            && self.pending_pauses.is_empty()
            && self.pending_status.is_empty()
    }

    fn view(&self, id: ExecutionId) -> LiveView {
        LiveView {
            summary: self.summary(id),
            tally: self.tally.clone(),
            problem: self.problem.clone(),
            corrupt: self.corrupt.clone(),
            actor: self
                .actor
                .clone()
                .map(|a| std::sync::Arc::new(a) as std::sync::Arc<dyn crate::catalog::LiveReport>),
            starting: self.starting,
        }
    }
}
