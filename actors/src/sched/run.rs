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

mod attempt;
mod commits;
mod effect;
mod halt;
mod waits;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use crate::model::{ItemState, Write};
pub(crate) use attempt::{AttemptEnd, Ending};
use attempt::{Cancel, Phase};
pub(crate) use effect::{Effect, Publish};

use crate::model::{AttemptOutcome, Checkpoint, ExecutionStatus, ItemStatus, Progress};
use crate::sched::dag::{Readiness, Start};
use crate::sched::policy::noise;
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

    /// Starts the run at `now`: skips what cannot run, starts what may.
    pub(crate) fn start(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            self.enter_block(0);
            self.pump(now);
        }
        self.step_done();
    }

    /// Acts on what is due by `now`: attempts past their timeout are cancelled, attempts
    /// past their grace aborted, retries whose wait is over made ready.
    pub(crate) fn deadline_reached(&mut self, now: Instant) {
        while let Some(&(at, index)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.due(index, now);
        }
        self.pump(now);
        self.step_done();
    }

    fn due(&mut self, index: u32, now: Instant) {
        let grace = self.config.timeout_grace;
        match &mut self.phases[index as usize] {
            Phase::Running {
                attempt,
                cancel,
                timeout_at,
                timed_out,
            } => {
                let attempt = *attempt;
                if timeout_at.is_some_and(|t| t <= now) && !*timed_out {
                    *timed_out = true;
                    if *cancel == Cancel::No {
                        self.effects.push_back(Effect::Cancel { index, attempt });
                    }
                    let abort_at = deadline(now, grace);
                    *cancel = cancel.ask(Some(abort_at));
                    self.deadlines.insert((abort_at, index));
                }
                if cancel.abort_at().is_some_and(|t| t <= now) {
                    *cancel = Cancel::Aborted;
                    self.effects.push_back(Effect::Abort { index, attempt });
                }
            }
            Phase::Throttled { .. } => self.throttle_due(index, now),
            Phase::Waiting { until } if *until <= now => {
                self.phases[index as usize] = Phase::Idle;
                self.waiting.remove(&index);
                let local = index - self.shape.blocks[self.block].range.start;
                self.readiness.again(local);
            }
            _ => {}
        }
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

    /// Attempt `attempt` of item `index` ended at `now`. Late or repeated reports are
    /// ignored.
    pub(crate) fn attempt_ended(
        &mut self,
        index: u32,
        attempt: u32,
        end: AttemptEnd,
        now: Instant,
    ) {
        let timed_out = match self.phases.get(index as usize) {
            Some(Phase::Running {
                attempt: a,
                timed_out,
                ..
            }) if *a == attempt => *timed_out,
            _ => return,
        };
        // The attempt is over: its semaphores go back at once.
        self.release(index);
        let policy = self.shape.policies[index as usize];
        let ending = match end.ending {
            Ending::StoreFailed { error } => {
                self.broken = true;
                Ending::Interrupted { error: Some(error) }
            }
            // Past its timeout the attempt has failed, whatever it returns now: a late
            // output is never stored nor handed to dependents. Only an interrupt applied
            // meanwhile keeps a stop at a cancellation point an interruption.
            Ending::Done { .. } | Ending::Failed { .. } | Ending::Interrupted { .. }
                if timed_out
                    && !(matches!(end.ending, Ending::Interrupted { .. })
                        && self.allowance.is_some()) =>
            {
                let timeout = policy.timeout.unwrap_or_default();
                Ending::Failed {
                    error: format!("timed out after {}", humantime::format_duration(timeout)),
                }
            }
            ending => ending,
        };
        let mut retry_at = None;
        self.active.remove(&index);
        let local = index - self.shape.blocks[self.block].range.start;
        // What the attempt holds is the item's latest checkpoint, for its next attempt; a
        // done item has none.
        self.checkpoints[index as usize] = match ending {
            Ending::Done { .. } => None,
            _ => end.checkpoint,
        };
        let item = &mut self.items[index as usize];
        item.crashes = 0;
        item.maybe_changed |= end.applied;
        item.progress = end.progress;
        if end.message.is_some() {
            item.message = end.message;
        }
        let status = match ending {
            Ending::Done {
                output,
                changed,
                clear_checkpoint,
            } => {
                // An earlier attempt may have done the work this one found done.
                let changed = changed || item.maybe_changed;
                item.output = Some(output);
                item.error = None;
                // What it said while it ran ("waiting for ...") is over once it is done.
                item.message = None;
                item.unchanged = !changed;
                item.maybe_changed = false;
                // Its own refresh is handled: this attempt succeeded.
                item.refresh = false;
                self.readiness
                    .done(&self.shape.blocks[self.block].graph, local);
                if clear_checkpoint {
                    self.open.writes.push(Write::ClearCheckpoint { index });
                }
                item.ended(attempt, end.at_ms, AttemptOutcome::Done, None);
                if changed {
                    self.send_refreshes(index);
                }
                ItemStatus::Done
            }
            Ending::Failed { error } => {
                item.output = None;
                item.failures = item.failures.saturating_add(1);
                item.ended(
                    attempt,
                    end.at_ms,
                    AttemptOutcome::Failed,
                    Some(error.clone()),
                );
                item.error = Some(error);
                if policy.retries_after(item.failures) {
                    if self.allowance.is_some() || self.broken {
                        // Interrupted meanwhile: no wait now; a resume retries it.
                        ItemStatus::Interrupted
                    } else {
                        let retry = item.failures;
                        let wait = policy
                            .backoff
                            .wait(retry, noise(self.config.seed, index, attempt));
                        retry_at = Some(deadline(now, wait));
                        self.waiting.insert(index);
                        ItemStatus::Retrying
                    }
                } else {
                    self.fail(index)
                }
            }
            Ending::Interrupted { error } => {
                item.ended(
                    attempt,
                    end.at_ms,
                    AttemptOutcome::Interrupted,
                    error.clone(),
                );
                item.error = error;
                ItemStatus::Interrupted
            }
            // (Made an interruption above.)
            Ending::StoreFailed { error } => {
                item.ended(
                    attempt,
                    end.at_ms,
                    AttemptOutcome::Interrupted,
                    Some(error.clone()),
                );
                item.error = Some(error);
                ItemStatus::Interrupted
            }
        };
        let record = ItemState {
            status,
            ..self.items[index as usize].clone()
        };
        self.open.writes.push(Write::Item {
            index,
            state: record,
        });
        self.open.thens.push(Then::Settle(index));
        self.phases[index as usize] = Phase::Ending { status, retry_at };
        self.pump(now);
        self.step_done();
    }

    /// Item `index` changed something: the dependents of its `notify` edges get a pending
    /// refresh, written in the commit that carries its Done record, so a crash before they
    /// run cannot lose it.
    fn send_refreshes(&mut self, index: u32) {
        for &dependent in self.shape.notified_by(index) {
            // Written even if the flag is already set: the commit that set it may yet fail,
            // and this Done record must not become durable without it.
            let item = &mut self.items[dependent as usize];
            item.refresh = true;
            let mut state = item.clone();
            // Skipped in this run: that is recorded with the final record, if at all (see
            // `finish`); until then the store has it as not run.
            if self.skipped.contains(&dependent) {
                state.status = ItemStatus::Pending;
            }
            self.open.writes.push(Write::Item {
                index: dependent,
                state,
            });
        }
    }

    /// Item `index` failed for good: its dependents are skipped.
    fn fail(&mut self, index: u32) -> ItemStatus {
        let local = index - self.shape.blocks[self.block].range.start;
        self.failed = true;
        let skipped = self
            .readiness
            .fail(&self.shape.blocks[self.block].graph, local);
        let offset = self.shape.blocks[self.block].range.start;
        for local in skipped {
            self.skip(offset + local);
        }
        ItemStatus::Failed
    }

    /// Makes block `block` current and skips the items it cannot run.
    fn enter_block(&mut self, block: usize) {
        self.block = block;
        let Some(shape) = self.shape.blocks.get(block) else {
            return;
        };
        let offset = shape.range.start;
        let items = &self.items;
        let (readiness, skipped) = Readiness::new(&shape.graph, |local| {
            match items[(offset + local) as usize].status {
                ItemStatus::Done => Start::Done,
                ItemStatus::Failed | ItemStatus::Skipped => Start::Blocked,
                _ => Start::Pending,
            }
        });
        self.failed = items[shape.range.start as usize..shape.range.end as usize]
            .iter()
            .any(|i| i.status == ItemStatus::Failed);
        self.readiness = readiness;
        for local in skipped {
            self.skip(offset + local);
        }
    }

    fn skip(&mut self, index: u32) {
        let item = &mut self.items[index as usize];
        if item.status != ItemStatus::Skipped {
            item.status = ItemStatus::Skipped;
            self.skipped.push(index);
            self.publish_item(index);
        }
    }

    fn publish_item(&mut self, index: u32) {
        let status = self.items[index as usize].status;
        self.effects
            .push_back(Effect::Publish(Publish::Item { index, status }));
    }

    /// Starts what may start; finishes when nothing runs and nothing may start.
    fn pump(&mut self, now: Instant) {
        if !self.started || self.finishing {
            return;
        }
        if self.broken {
            // Nothing new starts: waits for semaphores and rate limits end.
            self.withdraw_waiting();
        }
        loop {
            while self.active.len() < self.config.parallelism
                && !self.broken
                && self.allowance != Some(0)
            {
                let Some(local) = self.readiness.pop_ready() else {
                    break;
                };
                let index = self.shape.blocks[self.block].range.start + local;
                let counted = self.allowance.is_some();
                if let Some(allowance) = &mut self.allowance {
                    *allowance -= 1;
                }
                self.prepare(index, counted, now);
            }
            // Running attempts, or retries still to come (an interrupt ends their waits).
            if !self.active.is_empty() || !self.waiting.is_empty() {
                return;
            }
            if self.broken {
                return self.finish(ExecutionStatus::Interrupted);
            }
            // Nothing runs, and what is left of this block cannot start: interrupted.
            if !self.readiness.is_settled() {
                return self.finish(ExecutionStatus::Interrupted);
            }
            if self.failed {
                let later: Vec<u32> = self.shape.blocks[self.block + 1..]
                    .iter()
                    .flat_map(|b| b.range.clone())
                    .collect();
                for index in later {
                    self.skip(index);
                }
                return self.finish(ExecutionStatus::Failed);
            }
            // Later blocks with anything left to do (a resumed run may find them done).
            // Looked at only once the block is settled, not on every step.
            let more = self.shape.blocks[self.block + 1..]
                .iter()
                .flat_map(|b| b.range.clone())
                .any(|i| self.items[i as usize].status != ItemStatus::Done);
            if !more {
                return self.finish(ExecutionStatus::Completed);
            }
            if self.allowance.is_none() {
                self.enter_block(self.block + 1);
                continue;
            }
            return self.finish(ExecutionStatus::Interrupted);
        }
    }
}

/// `now + grace`; a grace too long for the clock is a year (and, failing that, none).
fn deadline(now: Instant, grace: Duration) -> Instant {
    now.checked_add(grace)
        .or_else(|| now.checked_add(Duration::from_secs(60 * 60 * 24 * 365)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;
