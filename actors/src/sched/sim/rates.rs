//! The simulation's rate limits: items with a `limit` of their own, and a named limiter
//! (a real [`Bucket`]) over some items, answered at once as the shell does. Checked on the
//! decisions: over any window, no more attempts of an item (or under the limiter) are
//! decided than the burst plus the rate times the window.

use std::time::Instant;

use crate::sched::rate::{Bucket, Rate, take_all};

use super::Sim;
use super::random::Rng;

#[derive(Debug)]
pub(super) struct Rates {
    named_rate: Rate,
    named: Bucket,
    /// When attempts were decided, per item with a rate of its own, in this incarnation.
    own: Vec<Vec<Instant>>,
    /// ... and of items under the named limiter.
    under_named: Vec<Instant>,
}

impl Rates {
    pub(super) fn new(rng: &mut Rng, n: usize) -> Self {
        let named_rate = Rate {
            limit: 10.0 + rng.below(200) as f64,
            burst: 1 + rng.below(3) as u32,
        };
        Rates {
            named_rate,
            named: Bucket::new(named_rate),
            own: vec![Vec::new(); n],
            under_named: Vec::new(),
        }
    }

    /// A restart: the buckets are full again, and the windows start over.
    pub(super) fn reset(&mut self) {
        self.named = Bucket::new(self.named_rate);
        self.own.iter_mut().for_each(Vec::clear);
        self.under_named.clear();
    }
}

/// Over every window of `times` (in order), no more than `burst + limit * window`.
fn within(times: &[Instant], rate: Rate) -> Result<(), String> {
    for (i, a) in times.iter().enumerate() {
        for (j, b) in times.iter().enumerate().skip(i) {
            let window = b.duration_since(*a).as_secs_f64();
            let allowed = f64::from(rate.burst) + rate.limit * window + 1e-6;
            if (j - i + 1) as f64 > allowed {
                return Err(format!(
                    "{} attempts decided within {window}s; rate {rate:?} allows {allowed}",
                    j - i + 1
                ));
            }
        }
    }
    Ok(())
}

impl Sim {
    /// The shell's answer to `Effect::Take`.
    pub(super) fn take(&mut self, index: u32) -> Result<(), String> {
        if !self.shape.is_limited(index) {
            return Err(format!(
                "take for {index}, which no named limiter applies to"
            ));
        }
        let result = take_all([&mut self.rates.named], self.now);
        self.run.taken(index, result, self.now);
        Ok(())
    }

    /// Attempt of `index` decided now (its start record went out in this step).
    pub(super) fn decided_at(&mut self, index: u32) -> Result<(), String> {
        // With held commits a step's records go out later than they were decided; the
        // windows are checked only where they go out at once.
        if self.held {
            return Ok(());
        }
        if let Some(rate) = self.shape.policies[index as usize].rate {
            let own = &mut self.rates.own[index as usize];
            own.push(self.now);
            within(own, rate).map_err(|e| format!("item {index}: {e}"))?;
        }
        if self.shape.is_limited(index) {
            self.rates.under_named.push(self.now);
            within(&self.rates.under_named, self.rates.named_rate)
                .map_err(|e| format!("named limiter: {e}"))?;
        }
        Ok(())
    }
}
