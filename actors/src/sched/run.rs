//! [`Run`]: every decision of one execution, as a deterministic state machine with no
//! actors, no I/O and no clock of its own (the caller passes `now` and asks for the next
//! deadline), in the way quinn-proto keeps a QUIC connection.
//!
//! ```text
//! inputs   start(now) | attempt_ended(item, attempt, end) | interrupt(strategy, now)
//!          | pause(strategy, now) | stop(grace, now) | committed(commit, result)
//!          | granted(item, ticket) | taken(item, result) | deadline_reached(now)
//!          | progress(item, ..)
//! state    item states and attempt numbers, the current block's readiness, the interrupt
//!          allowance, items waiting (semaphores, rate tokens; see `waits`), attempts in
//!          flight (starting / running / ending), commits in flight
//! effects  Commit{writes} (one durable commit) | Acquire | Release | Take
//!          | Start{item, attempt} | Cancel | Abort | Publish | Ended{status}
//!          -- drained with poll_effect(), in order
//! ```
//!
//! Durability is decided here, not in the shell. The records a step produces go out as one
//! [`Effect::Commit`], and whatever must wait for them waits for [`Run::committed`]:
//! - An attempt's number is in a commit before the attempt starts: [`Effect::Start`] comes
//!   only once that commit is durable. It usually shares the commit of the Done record that
//!   made the item ready, so a chain pays one commit per item.
//! - A Done record is durable before any dependent starts (the dependent's start waits for
//!   the same commit, or a later one, and commits become durable in order).
//! - The final record goes out only once every earlier commit is durable, so a store that
//!   failed one commit can never hold a final status over a missing record.
//! - A failed commit leaves the store unknown: nothing new starts, the attempts whose records
//!   it held count as interrupted, and the execution ends `interrupted` once nothing runs.
//!
//! Files: this one has the state, its inputs that start the run and report progress, and
//! what the shell reads; `blocks` moves through the blocks (what starts, what is skipped,
//! when the run finishes); `waits` the semaphores and rate tokens an item waits for;
//! `attempt` an item's state and how an attempt ends; `ended` what an attempt's end
//! decides; `deadlines` timeouts, aborts and retry waits; `halt` interrupts, pauses and
//! stops; `commits` what a commit carries and what waits for it; `effect` what the shell
//! is asked to do.

mod attempt;
mod blocks;
mod commits;
mod deadlines;
mod effect;
mod ended;
mod halt;
mod waits;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use crate::model::{ItemState, Write};
pub(crate) use attempt::{AttemptEnd, Ending};
use attempt::{Cancel, Phase};
use deadlines::deadline;
pub(crate) use effect::{Effect, Publish};

use crate::model::{Checkpoint, ExecutionStatus, ItemStatus, Progress};
use crate::sched::dag::Readiness;
use crate::sched::rate::Bucket;
use crate::sched::shape::Shape;

/// What a run is configured with, beside its shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunConfig {
    /// At most this many attempts start or run at once.
    pub(crate) parallelism: usize,
    /// How long a timed-out attempt gets to reach a cancellation point before it is
    /// aborted.
    pub(crate) timeout_grace: Duration,
    /// Chooses where in their jitter band retry waits fall (the execution's id, say), so
    /// a run replays the same.
    pub(crate) seed: u64,
}

/// What waits for a commit.
#[derive(Debug, Clone, Copy)]
enum Then {
    Start(u32),
    Settle(u32),
    Finish(ExecutionStatus),
    /// A pause or cancel request: its record is durable (or not).
    HaltRecorded,
}

#[derive(Debug, Default)]
struct OpenCommit {
    writes: Vec<Write>,
    thens: Vec<Then>,
}

impl OpenCommit {
    /// Puts item `index`'s record `state` in the commit, saying whether it is the first
    /// record of the item the store gets, as `recorded` (the run's) says; then it has one.
    fn item(&mut self, recorded: &mut [bool], index: u32, state: ItemState) {
        let first = recorded
            .get_mut(index as usize)
            .is_some_and(|r| !std::mem::replace(r, true));
        self.writes.push(Write::Item {
            index,
            state,
            first,
        });
    }
}

#[derive(Debug)]
struct Inflight {
    thens: Vec<Then>,
    result: Option<Result<(), String>>,
}

/// The scheduling state of one execution.
#[derive(Debug)]
pub(crate) struct Run {
    shape: Shape,
    items: Vec<ItemState>,
    /// Each item's latest durable checkpoint, handed to its next attempt (taken while an
    /// attempt holds it, given back by the attempt's end): an attempt always resumes from
    /// the latest checkpoint of the item, whichever attempt saved it.
    checkpoints: Vec<Option<Checkpoint>>,
    /// Whether each item's record is stored, or on its way in a commit (so the next one
    /// replaces it): what [`Write::Item`]'s `first` says.
    recorded: Vec<bool>,
    phases: Vec<Phase>,
    /// Items waiting for semaphores, starting or running (at most `parallelism`).
    active: BTreeSet<u32>,
    /// Items that asked for their semaphores, by ticket: waiting for them or holding them.
    permits: BTreeMap<u32, u64>,
    /// Of those, the ones still waiting.
    acquiring: BTreeSet<u32>,
    /// Items waiting for a rate-limit token.
    throttled: BTreeSet<u32>,
    /// Of those, the ones whose `Effect::Take` is not answered yet.
    taking: BTreeSet<u32>,
    /// Each item's own rate limit (`limit`, `burst`), if it has one; empty when none has.
    buckets: Vec<Option<Bucket>>,
    next_ticket: u64,
    /// Items with a retry to come: waiting for it, or for their failure's record first.
    waiting: BTreeSet<u32>,
    /// When an item may need attention (a timeout, an abort, the end of a retry wait).
    /// Entries are checked against the item's phase when due, so a stale one is harmless.
    deadlines: BTreeSet<(Instant, u32)>,
    config: RunConfig,
    block: usize,
    readiness: Readiness,
    /// Set once interrupted: how many more items may start.
    allowance: Option<usize>,
    /// Asked to pause: once quiesced it ends `paused` rather than `interrupted`.
    pausing: bool,
    /// Asked to cancel: once quiesced it ends `cancelled` (outranks a pause).
    cancelling: bool,
    started: bool,
    /// An item of the current block failed.
    failed: bool,
    /// A commit failed: the store may lack records, so nothing new starts.
    broken: bool,
    /// Steps leave their records open until [`Run::end_step`] (see [`Run::hold_commits`]).
    held: bool,
    /// A step ended while `commits::HELD_INFLIGHT` commits were in flight: its records stay open
    /// until one of them is answered (see [`Run::end_step`]).
    deferred: bool,
    /// The final record is in a commit.
    finishing: bool,
    ended: Option<ExecutionStatus>,
    /// Items skipped in this run; their records go with the final record.
    skipped: Vec<u32>,
    next_commit: u64,
    open: OpenCommit,
    inflight: BTreeMap<u64, Inflight>,
    effects: VecDeque<Effect>,
}

impl Run {
    /// A run of `shape` whose items stand as `items` say (settled: done, failed, skipped;
    /// anything else runs).
    pub(crate) fn new(shape: Shape, items: Vec<ItemState>, config: RunConfig) -> Self {
        debug_assert_eq!(shape.len(), items.len());
        let phases = vec![Phase::Idle; items.len()];
        // None at all unless some item has a rate of its own.
        let buckets = if shape.policies.iter().any(|p| p.rate.is_some()) {
            shape
                .policies
                .iter()
                .map(|p| p.rate.map(Bucket::new))
                .collect()
        } else {
            Vec::new()
        };
        Run {
            checkpoints: vec![None; items.len()],
            recorded: vec![true; items.len()],
            shape,
            items,
            phases,
            active: BTreeSet::new(),
            permits: BTreeMap::new(),
            acquiring: BTreeSet::new(),
            throttled: BTreeSet::new(),
            taking: BTreeSet::new(),
            buckets,
            next_ticket: 0,
            waiting: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            config: RunConfig {
                parallelism: config.parallelism.max(1),
                ..config
            },
            block: 0,
            readiness: Readiness::empty(),
            allowance: None,
            pausing: false,
            cancelling: false,
            started: false,
            failed: false,
            broken: false,
            held: false,
            deferred: false,
            finishing: false,
            ended: None,
            skipped: Vec::new(),
            next_commit: 0,
            open: OpenCommit::default(),
            inflight: BTreeMap::new(),
            effects: VecDeque::new(),
        }
    }

    /// The run's items resume from these checkpoints (by index), as stored.
    pub(crate) fn with_checkpoints(mut self, checkpoints: Vec<Option<Checkpoint>>) -> Self {
        debug_assert_eq!(checkpoints.len(), self.items.len());
        self.checkpoints = checkpoints;
        self.checkpoints.resize(self.items.len(), None);
        self
    }

    /// Which items have a record stored (by index); those without get their first record
    /// as such (`Write::Item`'s `first`), which a backend may insert without looking for
    /// one to replace. Unless told, every item is taken to have one: always right, if
    /// slower.
    pub(crate) fn with_records(mut self, recorded: Vec<bool>) -> Self {
        debug_assert_eq!(recorded.len(), self.items.len());
        self.recorded = recorded;
        self.recorded.resize(self.items.len(), true);
        self
    }

    /// The next effect to perform, in order.
    pub(crate) fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Every item, by index.
    pub(crate) fn items(&self) -> &[ItemState] {
        &self.items
    }

    /// How many items are done, counting those whose Done record is on its way.
    pub(crate) fn done_count(&self) -> usize {
        self.items
            .iter()
            .zip(&self.phases)
            .filter(|(item, phase)| {
                item.status == ItemStatus::Done
                    || matches!(
                        phase,
                        Phase::Ending {
                            status: ItemStatus::Done,
                            ..
                        }
                    )
            })
            .count()
    }

    /// At most this many attempts start or run at once.
    pub(crate) fn parallelism(&self) -> usize {
        self.config.parallelism
    }

    /// The shape being run.
    pub(crate) fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Whether an interrupt (or stop) has been applied.
    pub(crate) fn is_interrupting(&self) -> bool {
        self.allowance.is_some()
    }

    /// The final status, once [`Effect::Ended`] has been issued.
    #[cfg(test)]
    pub(crate) fn ended(&self) -> Option<ExecutionStatus> {
        self.ended
    }

    /// How many items of the current block may start now (for the simulation's checks).
    #[cfg(test)]
    pub(crate) fn ready_count(&self) -> usize {
        self.readiness.ready_len()
    }

    /// When [`deadline_reached`](Self::deadline_reached) must be called next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Tells the shell item `index` stands as its state says now.
    pub(super) fn publish_item(&mut self, index: u32) {
        let status = self.items[index as usize].status;
        self.effects
            .push_back(Effect::Publish(Publish::Item { index, status }));
    }

    /// Starts the run at `now`: skips what cannot run, starts what may.
    pub(crate) fn start(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            self.enter_block(0);
            self.pump(now);
        }
        self.step_done();
    }

    /// Progress reported by a running attempt (not durable; the checkpoint's is).
    pub(crate) fn progress(
        &mut self,
        index: u32,
        progress: Option<Progress>,
        message: Option<Arc<str>>,
    ) {
        let Some(item) = self.items.get_mut(index as usize) else {
            return;
        };
        if progress.is_some() {
            item.progress = progress;
        }
        if message.is_some() {
            item.message = message.clone();
        }
        if let Some(progress) = item.progress {
            self.effects.push_back(Effect::Publish(Publish::Progress {
                index,
                progress,
                message,
            }));
        }
    }
}

#[cfg(test)]
mod tests;
