//! The simulation's randomness: a seeded generator, and random plans, policies and
//! interrupt strategies drawn from it.

use std::time::Duration;

use crate::model::InterruptStrategy;
use crate::sched::dag::BlockGraph;
use crate::sched::policy::{Backoff, Policy};
use crate::sched::rate::Rate;
use crate::sched::shape::{Shape, ShapeBlock};

/// Mostly no retries; else a few (or, rarely, no limit), with short waits and timeouts.
pub(super) fn random_policy(rng: &mut Rng) -> Policy {
    if rng.chance(50) {
        return Policy::default();
    }
    let retries = if rng.chance(10) {
        None
    } else {
        Some(rng.below(4) as u32)
    };
    let first = Duration::from_millis(rng.below(30) as u64);
    Policy {
        retries,
        backoff: Backoff {
            first,
            max: first * 4,
            jitter: rng.below(3) as f64 / 10.0,
        },
        timeout: rng
            .chance(30)
            .then(|| Duration::from_millis(1 + rng.below(50) as u64)),
        rate: rng.chance(30).then(|| Rate {
            limit: 5.0 + rng.below(100) as f64,
            burst: 1 + rng.below(3) as u32,
        }),
    }
}

/// SplitMix64: small, seeded, and the same on every machine (the semaphore table's
/// property test draws from it too).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(super) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One to three blocks of up to eight items; edges to earlier items of the same block and,
/// now and then, to items of earlier blocks.
pub(super) fn random_shape(rng: &mut Rng) -> Shape {
    let mut shape = Shape::default();
    let blocks = 1 + rng.below(3);
    let mut notify = Vec::new();
    for b in 0..blocks {
        let start = shape.deps.len() as u32;
        let mut len = rng.below(9) as u32;
        if b == blocks - 1 && start + len == 0 {
            len = 1;
        }
        let mut local = Vec::with_capacity(len as usize);
        for j in 0..len {
            let mut deps = Vec::new();
            let mut in_block = Vec::new();
            for i in 0..j {
                if rng.chance(30) {
                    deps.push(start + i);
                    in_block.push(i);
                }
            }
            for earlier in 0..start {
                if rng.chance(8) {
                    deps.push(earlier);
                }
            }
            // Now and then an edge carries refreshes.
            for &dep in &deps {
                if rng.chance(40) {
                    notify.push((dep, start + j));
                }
            }
            shape.deps.push(deps.into_boxed_slice());
            shape.policies.push(random_policy(rng));
            local.push(in_block);
        }
        shape.blocks.push(ShapeBlock {
            range: start..start + len,
            graph: BlockGraph::new(local),
        });
    }
    // Half the cases take semaphores, on about a third of their items; a third fall under
    // a named rate limiter, on some of their items.
    if rng.chance(50) {
        shape.guarded = (0..shape.deps.len()).map(|_| rng.chance(35)).collect();
    }
    if rng.chance(30) {
        shape.limited = (0..shape.deps.len()).map(|_| rng.chance(50)).collect();
    }
    if !notify.is_empty() {
        let mut dependents = vec![Vec::new(); shape.deps.len()];
        for (upstream, dependent) in notify {
            dependents[upstream as usize].push(dependent);
        }
        shape.notify = dependents.into_iter().map(Vec::into_boxed_slice).collect();
    }
    shape
}

pub(super) fn random_strategy(rng: &mut Rng) -> InterruptStrategy {
    match rng.below(4) {
        0 => InterruptStrategy::FinishCurrent,
        1 => InterruptStrategy::PollNextN(rng.below(4)),
        2 => InterruptStrategy::AtCancellationPoint,
        _ => InterruptStrategy::Immediate {
            grace: Duration::from_millis(rng.below(50) as u64),
        },
    }
}
