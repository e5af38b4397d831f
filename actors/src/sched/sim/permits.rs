//! The simulation's semaphores: a real [`Table`] shared by the simulated execution and
//! two outsiders (other executions) that take and give back tags at random, with grants
//! delivered to the core at random later steps, as messages would be.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::sched::sema::Table;

use super::Sim;
use super::random::Rng;

/// Who holds or waits for permits in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Owner {
    Item { index: u32, ticket: u64 },
    Outsider(usize),
}

const POOL: [&str; 3] = ["x", "y:2", "z:2"];
const OUTSIDERS: usize = 2;

#[derive(Debug, Default)]
pub(super) struct Permits {
    table: Table<Owner, ()>,
    /// Grants the core has not been told of yet, oldest first.
    grants: VecDeque<(u32, u64)>,
    /// The ticket each item asked under and has not released.
    asked: BTreeMap<u32, u64>,
    /// Whether each outsider is in the table.
    outsiders: [bool; OUTSIDERS],
    /// Each item's tags (empty for items that take none).
    pub(super) tags: Vec<Arc<[Arc<str>]>>,
}

fn random_tags(rng: &mut Rng) -> Arc<[Arc<str>]> {
    let mut tags: Vec<Arc<str>> = (0..1 + rng.below(2))
        .map(|_| Arc::from(POOL[rng.below(POOL.len())]))
        .collect();
    tags.sort();
    tags.dedup();
    tags.into()
}

impl Permits {
    /// Tags for each guarded item of the shape.
    pub(super) fn new(rng: &mut Rng, guarded: &[bool], n: usize) -> Self {
        let tags = (0..n)
            .map(|i| {
                if guarded.get(i).copied().unwrap_or(false) {
                    random_tags(rng)
                } else {
                    Arc::from([])
                }
            })
            .collect();
        Permits {
            tags,
            ..Permits::default()
        }
    }

    /// A restart: nothing of the semaphores survives it.
    pub(super) fn reset(&mut self) {
        let tags = std::mem::take(&mut self.tags);
        *self = Permits {
            tags,
            ..Permits::default()
        };
    }

    pub(super) fn has_grants(&self) -> bool {
        !self.grants.is_empty()
    }

    pub(super) fn outsider_holds(&self) -> bool {
        self.outsiders.iter().any(|&o| o)
    }

    pub(super) fn asked(&self) -> usize {
        self.asked.len()
    }

    /// Whether item `index` holds all its tags.
    pub(super) fn holds(&self, index: u32) -> bool {
        self.asked
            .get(&index)
            .is_some_and(|&ticket| self.table.holds_all(&Owner::Item { index, ticket }))
    }

    fn granted(&mut self, granted: Vec<(Owner, ())>) {
        for (owner, ()) in granted {
            if let Owner::Item { index, ticket } = owner {
                self.grants.push_back((index, ticket));
            }
        }
    }
}

impl Sim {
    pub(super) fn acquire(&mut self, index: u32, ticket: u64) -> Result<(), String> {
        let p = &mut self.permits;
        if !self.shape.is_guarded(index) || p.asked.contains_key(&index) {
            return Err(format!(
                "acquire {index}/{ticket}: not guarded, or it asked already: {:?}",
                p.asked
            ));
        }
        p.asked.insert(index, ticket);
        let tags = p.tags[index as usize].clone();
        if p.table.acquire(Owner::Item { index, ticket }, tags, ()) {
            p.grants.push_back((index, ticket));
        }
        Ok(())
    }

    pub(super) fn release(&mut self, index: u32, ticket: u64) -> Result<(), String> {
        let p = &mut self.permits;
        if p.asked.remove(&index) != Some(ticket) {
            return Err(format!(
                "release {index}/{ticket}, which it did not ask under"
            ));
        }
        let granted = p.table.release(Owner::Item { index, ticket });
        p.granted(granted);
        Ok(())
    }

    /// Tells the core of the oldest grant.
    pub(super) fn deliver_grant(&mut self) {
        if let Some((index, ticket)) = self.permits.grants.pop_front() {
            self.note(format!("granted {index}/{ticket}"));
            self.run.granted(index, ticket, self.now);
        }
    }

    /// An outsider takes random tags, or gives back (or stops waiting for) its own.
    pub(super) fn outsider(&mut self) {
        let k = self.rng.below(OUTSIDERS);
        if self.permits.outsiders[k] {
            self.note(format!("outsider {k} releases"));
            let p = &mut self.permits;
            p.outsiders[k] = false;
            let granted = p.table.release(Owner::Outsider(k));
            p.granted(granted);
        } else {
            let tags = random_tags(&mut self.rng);
            self.note(format!("outsider {k} asks for {tags:?}"));
            self.permits.outsiders[k] = true;
            self.permits.table.acquire(Owner::Outsider(k), tags, ());
        }
    }

    /// Items that asked are at most `parallelism` (each holds a slot) and, at the end,
    /// none.
    pub(super) fn check_permits(&self) -> Result<(), String> {
        let asked = self.permits.asked();
        if asked > self.parallelism {
            return Err(format!(
                "{asked} items asked for permits, parallelism {}",
                self.parallelism
            ));
        }
        if self.ended.is_some() && asked > 0 {
            return Err(format!(
                "ended with permits asked for: {:?}",
                self.permits.asked
            ));
        }
        Ok(())
    }
}
