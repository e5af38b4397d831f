//! Simulation of the execution core: random plans over several blocks, random parallelism,
//! and random interleavings of commit results (some failing), attempt ends (done, failed,
//! interrupted, late), checkpoints, interrupts of every strategy, stops, deadlines and
//! crashes. A crash rebuilds the core from only the records it asked to make durable, as a
//! restart does. The invariants are checked after every step, among them that an item
//! starts with a refresh exactly when a `notify` dependency's durable Done record said it
//! changed something since the item's own last durable Done.
//!
//! Every case is replayable from its seed: `TEND_SIM_SEED=<seed> cargo test -p tend-actors
//! sim` runs that case alone; `TEND_SIM_CASES=<n>` runs more (or fewer) cases.
//!
//! Files: this one has the simulation's state, the random choice of the next input, and
//! the cases; `shell` performs the core's effects, checking each; `answers` the commits
//! and attempt ends the world answers with; `halts` interrupts, stops, pauses, cancels;
//! `crash` a crash and the restart from what is durable; `durable` what the store holds;
//! `permits` and `rates` the runtime's semaphores and rate limiters as other executions
//! use them; `checks` the checks at an attempt's start and the execution's end; `random`
//! random shapes and strategies.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::model::{ExecutionStatus, InterruptStrategy, ItemStatus};
use crate::sched::run::{ItemState, Run, RunConfig, Write};
use crate::sched::shape::Shape;

mod durable;
mod permits;
pub(super) mod random;
mod rates;
use durable::Durable;
use permits::Permits;
use random::{Rng, random_shape, random_strategy};
use rates::Rates;

const STOP_GRACE: Duration = Duration::from_millis(20);

/// An attempt running on a simulated worker.
#[derive(Debug, Clone, Copy)]
struct Running {
    attempt: u32,
    cancelled: bool,
    aborted: bool,
    /// The version of the item's latest checkpoint the attempt holds.
    holds: Option<u64>,
}

struct Sim {
    rng: Rng,
    shape: Shape,
    parallelism: usize,
    /// The core holds each step's records until the shell ends the step (as the
    /// Execution actor has it), and the steps end at random points.
    held: bool,
    run: Run,
    now: Instant,
    /// Commits issued and not answered yet, oldest first.
    pending: VecDeque<(u64, Vec<Write>)>,
    durable: Durable,
    running: BTreeMap<u32, Running>,
    /// The highest attempt number ever started, per item, across crashes.
    started: Vec<u32>,
    /// Attempts decided (start records written) by this incarnation of the core.
    decided: usize,
    /// Of those decided before an interrupt, the ones still in the open step.
    open_before: usize,
    /// Since the first interrupt: at most this many decisions in all.
    cap: Option<usize>,
    /// A commit of this incarnation failed.
    broken: bool,
    /// A pause of this incarnation was applied.
    pausing: bool,
    /// A cancel of this incarnation was applied.
    cancelling: bool,
    /// When each item's last failed attempt ended, for the retry wait check.
    failed_at: Vec<Option<Instant>>,
    failures: bool,
    /// Per item: a `notify` dependency's Done record with a change is durable, and no Done
    /// record of the item since (the model the core's refresh flags must match).
    owed: Vec<bool>,
    /// Per item: an attempt since its last durable Done began `apply` and did not succeed,
    /// or ran when the process died (so its next Done must count as a change).
    touched: Vec<bool>,
    permits: Permits,
    rates: Rates,
    ended: Option<ExecutionStatus>,
    over: bool,
    trace: Vec<String>,
    /// A check failed while commits landed (reported by the next `drain`).
    violation: Option<String>,
    /// The version the next checkpoint saved gets.
    next_checkpoint: u64,
}

macro_rules! check {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

// After the macro, which they use.
mod answers;
mod checks;
mod crash;
mod halts;
mod shell;
use answers::done_end;

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let shape = random_shape(&mut rng);
        let parallelism = 1 + rng.below(4);
        let failures = rng.chance(30);
        let held = rng.chance(50);
        let n = shape.len();
        let permits = Permits::new(&mut rng, &shape.guarded, n);
        let rates = Rates::new(&mut rng, n);
        let mut run = Run::new(
            shape.clone(),
            vec![ItemState::default(); n],
            config(parallelism),
        )
        .with_records(vec![false; n]);
        if held {
            run.hold_commits();
        }
        Sim {
            rng,
            shape,
            parallelism,
            held,
            run,
            now: Instant::now(),
            pending: VecDeque::new(),
            durable: Durable {
                items: vec![None; n],
                starts: BTreeMap::new(),
                checkpoints: vec![None; n],
                execution: None,
                pausing: false,
                cancelling: false,
            },
            running: BTreeMap::new(),
            started: vec![0; n],
            decided: 0,
            open_before: 0,
            cap: None,
            broken: false,
            pausing: false,
            cancelling: false,
            failed_at: vec![None; n],
            failures,
            owed: vec![false; n],
            touched: vec![false; n],
            permits,
            rates,
            ended: None,
            over: false,
            trace: Vec::new(),
            violation: None,
            next_checkpoint: 1,
        }
    }

    /// A commit's records are durable.
    fn land(&mut self, writes: &[Write]) {
        for write in writes {
            if let Write::Item {
                index, first: true, ..
            } = write
                && self.durable.items[*index as usize].is_some()
            {
                self.violation.get_or_insert(format!(
                    "item {index}'s record is written as its first, but one is stored"
                ));
            }
            if let Write::Item { index, state, .. } = write
                && state.status == ItemStatus::Done
                && self.durable.status(*index) != Some(ItemStatus::Done)
            {
                if state.unchanged && self.touched[*index as usize] {
                    self.violation.get_or_insert(format!(
                        "item {index} is done unchanged, but an earlier attempt may have applied"
                    ));
                }
                self.touched[*index as usize] = false;
                self.owed[*index as usize] = false;
                if !state.unchanged {
                    for &dependent in self.shape.notified_by(*index) {
                        self.owed[dependent as usize] = true;
                    }
                }
            }
            self.durable.apply(std::slice::from_ref(write));
        }
    }

    fn note(&mut self, what: String) {
        self.trace.push(what);
    }

    /// One random input.
    fn step(&mut self) -> Result<(), String> {
        if let Some(status) = self.ended {
            if matches!(
                status,
                ExecutionStatus::Interrupted | ExecutionStatus::Paused
            ) {
                // Nothing is pending: resuming reads back exactly what the run wrote.
                check!(self.pending.is_empty(), "ended with commits unanswered");
                self.restart();
                return self.drain();
            } else {
                self.over = true;
            }
            return Ok(());
        }
        if self.run.has_open_commit()
            && (self.rng.chance(40) || (self.running.is_empty() && self.pending.is_empty()))
        {
            // The shell has drained its queue of inputs: the step's records go out.
            self.note("end of step".to_owned());
            self.run.end_step();
            return self.drain();
        }
        if self.running.is_empty() && self.pending.is_empty() {
            // A grant, an outsider's release, or a deadline (a retry wait) moves it on.
            if self.permits.has_grants() {
                self.deliver_grant();
                return self.drain();
            }
            if self.permits.outsider_holds() {
                self.outsider();
                return self.drain();
            }
            let Some(at) = self.run.next_deadline() else {
                return Err(
                    "stuck: nothing runs, nothing is being written, nothing is due, and the \
                     run has not ended"
                        .to_owned(),
                );
            };
            self.now = self.now.max(at);
            self.note("wait for the deadline".to_owned());
            self.run.deadline_reached(self.now);
            return self.drain();
        }
        let roll = self.rng.below(100);
        match roll {
            0..=34 if !self.pending.is_empty() => self.answer_commit(),
            35..=69 if !self.running.is_empty() => self.end_attempt(),
            70..=74 if !self.running.is_empty() => {
                // `cx.checkpoint` returns once durable; the attempt holds what it saved.
                let index = self.pick_running();
                let version = self.next_checkpoint;
                self.next_checkpoint += 1;
                self.note(format!("checkpoint {index} (version {version})"));
                self.durable.checkpoints[index as usize] = Some(version);
                if let Some(running) = self.running.get_mut(&index) {
                    running.holds = Some(version);
                }
                let total = 1 + self.rng.below(5) as u64;
                let progress = crate::model::Progress { done: 1, total };
                self.run.progress(index, Some(progress), None);
            }
            75..=79 => {
                let strategy = random_strategy(&mut self.rng);
                self.interrupt(strategy, false);
            }
            80..=81 => self.interrupt(InterruptStrategy::FinishCurrent, true),
            94 => {
                let strategy = random_strategy(&mut self.rng);
                self.halt(strategy, false, true);
            }
            95 => {
                let strategy = random_strategy(&mut self.rng);
                self.cancel(strategy);
            }
            82..=87 => {
                self.now += Duration::from_millis(self.rng.below(40) as u64);
                if self.run.next_deadline().is_some_and(|at| at <= self.now) {
                    self.note("deadline".to_owned());
                    self.run.deadline_reached(self.now);
                }
            }
            88..=90 => {
                let landed = self.rng.below(self.pending.len() + 1);
                self.crash(landed);
            }
            91..=93 if !self.running.is_empty() => {
                // A late report from an attempt that is no longer the running one.
                let index = self.pick_running();
                let stale = self.running[&index].attempt.saturating_sub(1);
                self.note(format!("late end of {index}/{stale}"));
                self.run.attempt_ended(index, stale, done_end(), self.now);
            }
            96..=97 if self.permits.has_grants() => self.deliver_grant(),
            98..=99 => self.outsider(),
            _ if !self.pending.is_empty() => self.answer_commit(),
            _ if !self.running.is_empty() => self.end_attempt(),
            _ => {}
        }
        self.drain()
    }
}

fn config(parallelism: usize) -> RunConfig {
    RunConfig {
        parallelism,
        timeout_grace: STOP_GRACE,
        seed: 7,
    }
}

fn run_case(seed: u64) -> Result<(), String> {
    let mut sim = Sim::new(seed);
    sim.note(format!(
        "shape {:?}, parallelism {}",
        sim.shape
            .blocks
            .iter()
            .map(|b| (b.range.clone(), b.graph.deps.clone()))
            .collect::<Vec<_>>(),
        sim.parallelism
    ));
    if sim.rng.chance(10) {
        let strategy = random_strategy(&mut sim.rng);
        sim.interrupt(strategy, false);
    }
    let now = sim.now;
    sim.run.start(now);
    let result = (|| -> Result<(), String> {
        sim.drain()?;
        for _ in 0..3000 {
            if sim.over {
                return Ok(());
            }
            sim.step()?;
        }
        Ok(())
    })();
    result.map_err(|why| {
        let from = sim.trace.len().saturating_sub(
            std::env::var("TEND_SIM_TRACE")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(60),
        );
        format!("{why}\nlast steps:\n{}", sim.trace[from..].join("\n"))
    })
}

#[test]
fn the_core_keeps_its_invariants_under_random_interleavings() {
    let seeds: Vec<u64> = match std::env::var("TEND_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("TEND_SIM_SEED is a number")],
        Err(_) => {
            let cases = std::env::var("TEND_SIM_CASES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(4000u64);
            (0..cases).collect()
        }
    };
    for seed in seeds {
        if let Err(why) = run_case(seed) {
            panic!(
                "simulation case {seed} failed (replay: TEND_SIM_SEED={seed} cargo test -p tend-actors sim): {why}"
            );
        }
    }
}
