//! What an item waits for before its attempt is decided: its semaphores, then a token of
//! its own rate limit and of the runtime's named limiters it falls under. A waiting item
//! holds one of the execution's `parallelism` slots and no attempt number yet, so a wait
//! that a crash cuts short costs nothing. An interrupt, a pause or a failed commit ends
//! every wait (semaphores given back, the slot freed, the allowance that paid for it
//! refunded); what may start is then decided anew.
//!
//! ```text
//! ready ── guarded? ──▶ Acquiring ──granted──┐
//!   │                                        ▼
//!   └──────────────────────────────────▶ Throttled ── own bucket, then Effect::Take
//!                                            │  (named limiters) ──taken(Ok)──▶ begin
//!                                            └── not yet: wait until the token is there
//! ```

use std::time::Instant;

use super::{Cancel, Effect, Phase, Run, Then, Write};

impl Run {
    /// Items waiting for their semaphores.
    pub(crate) fn acquiring(&self) -> impl Iterator<Item = u32> + '_ {
        self.acquiring.iter().copied()
    }

    /// Items waiting for a rate-limit token.
    pub(crate) fn throttled(&self) -> impl Iterator<Item = u32> + '_ {
        self.throttled.iter().copied()
    }

    /// Item `index` has been picked to start (`counted`: an interrupt's allowance paid
    /// for it).
    pub(super) fn prepare(&mut self, index: u32, counted: bool, now: Instant) {
        self.active.insert(index);
        if self.shape.is_guarded(index) {
            self.acquire(index, counted);
        } else {
            self.throttle(index, counted, now);
        }
    }

    /// Asks for item `index`'s semaphores.
    fn acquire(&mut self, index: u32, counted: bool) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.phases[index as usize] = Phase::Acquiring { ticket, counted };
        self.acquiring.insert(index);
        self.permits.insert(index, ticket);
        self.effects.push_back(Effect::Acquire { index, ticket });
    }

    /// Item `index` holds every semaphore it asked for under `ticket`. A grant for a wait
    /// that was withdrawn is ignored (the shell released it).
    pub(crate) fn granted(&mut self, index: u32, ticket: u64, now: Instant) {
        let counted = match self.phases.get(index as usize) {
            Some(&Phase::Acquiring { ticket: t, counted }) if t == ticket => counted,
            _ => return,
        };
        if self.broken {
            self.withdraw(index);
        } else {
            self.acquiring.remove(&index);
            self.throttle(index, counted, now);
        }
        self.pump(now);
        self.step_done();
    }

    /// Takes the item's rate tokens, or waits for them; begins its attempt once it has.
    fn throttle(&mut self, index: u32, counted: bool, now: Instant) {
        let limited = self.shape.is_limited(index);
        let own = self
            .buckets
            .get_mut(index as usize)
            .and_then(Option::as_mut);
        if own.is_none() && !limited {
            return self.begin(index);
        }
        self.phases[index as usize] = Phase::Throttled { counted };
        self.throttled.insert(index);
        if let Some(at) = own.and_then(|bucket| bucket.ready_at(now)) {
            self.deadlines.insert((at, index));
            return;
        }
        if limited {
            // The runtime's limiters answer with `taken`; one question at a time (two due
            // deadlines in one step must not take two tokens).
            if self.taking.insert(index) {
                self.effects.push_back(Effect::Take { index });
            }
        } else {
            self.took(index, now);
        }
    }

    /// The runtime's named limiters gave item `index` a token (`Ok`), or will have one at
    /// the instant in `Err`. Ignored unless the item is waiting for one.
    pub(crate) fn taken(&mut self, index: u32, result: Result<(), Instant>, now: Instant) {
        self.taking.remove(&index);
        if !matches!(
            self.phases.get(index as usize),
            Some(Phase::Throttled { .. })
        ) {
            return;
        }
        match result {
            Ok(()) => self.took(index, now),
            Err(at) => {
                self.deadlines.insert((at, index));
            }
        }
        self.pump(now);
        self.step_done();
    }

    /// Every token it needs is there: its own is taken and the attempt begins.
    fn took(&mut self, index: u32, now: Instant) {
        if let Some(bucket) = self
            .buckets
            .get_mut(index as usize)
            .and_then(Option::as_mut)
        {
            bucket.take(now);
        }
        self.throttled.remove(&index);
        self.begin(index);
    }

    /// A throttled item's wait is over: it tries again.
    pub(super) fn throttle_due(&mut self, index: u32, now: Instant) {
        if let Some(&Phase::Throttled { counted }) = self.phases.get(index as usize) {
            self.throttle(index, counted, now);
        }
    }

    /// Gives back what item `index` holds or waits for.
    pub(super) fn release(&mut self, index: u32) {
        if let Some(ticket) = self.permits.remove(&index) {
            self.effects.push_back(Effect::Release { index, ticket });
        }
    }

    /// Item `index` stops waiting and is ready again; the allowance that paid for it is
    /// given back.
    fn withdraw(&mut self, index: u32) {
        let counted = match self.phases[index as usize] {
            Phase::Acquiring { counted, .. } | Phase::Throttled { counted } => counted,
            _ => return,
        };
        self.phases[index as usize] = Phase::Idle;
        self.active.remove(&index);
        self.acquiring.remove(&index);
        self.throttled.remove(&index);
        self.release(index);
        if counted && let Some(allowance) = &mut self.allowance {
            *allowance += 1;
        }
        let local = index - self.shape.blocks[self.block].range.start;
        self.readiness.again(local);
    }

    /// Every waiting item stops waiting (an interrupt, a pause, a failed commit: nothing
    /// may start, or what may is decided anew).
    pub(super) fn withdraw_waiting(&mut self) {
        let waiting: Vec<u32> = self
            .acquiring
            .iter()
            .chain(self.throttled.iter())
            .copied()
            .collect();
        for index in waiting {
            self.withdraw(index);
        }
    }

    /// Decides attempt `attempts + 1` of `index`: its start goes in this step's commit and
    /// the attempt starts once that commit is durable.
    pub(super) fn begin(&mut self, index: u32) {
        let item = &mut self.items[index as usize];
        item.attempts += 1;
        let attempt = item.attempts;
        let crashes = item.crashes;
        self.phases[index as usize] = Phase::Starting {
            attempt,
            before: item.status,
            cancel: Cancel::No,
        };
        // (Already in `active`: `prepare` put it there.)
        self.open.writes.push(Write::Started {
            index,
            attempt,
            crashes,
        });
        self.open.thens.push(Then::Start(index));
    }
}
