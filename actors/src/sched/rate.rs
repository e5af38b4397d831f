//! Token buckets for rate limits: `limit` tokens a second up to `burst`, one per attempt
//! start. Pure: the caller passes `now` and is told when the next token is there.

use std::time::{Duration, Instant};

/// A rate: `limit` attempt starts a second on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Tokens added a second (> 0).
    pub(crate) limit: f64,
    /// Tokens it holds at most (>= 1).
    pub(crate) burst: u32,
}

/// A bucket of tokens, full when first used.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: Rate,
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` until first used (full).
    at: Option<Instant>,
}

impl Bucket {
    pub(crate) fn new(rate: Rate) -> Self {
        Bucket {
            rate,
            tokens: f64::from(rate.burst),
            at: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate.limit).min(f64::from(self.rate.burst));
        }
        self.at = Some(now);
    }

    /// `None` when a token is there at `now`; else when the next one will be.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            return None;
        }
        let wait = (1.0 - self.tokens) / self.rate.limit;
        // At least a microsecond, so a deadline is always in the future; a wait too long
        // for the clock is a year.
        let wait = Duration::try_from_secs_f64(wait)
            .unwrap_or(Duration::from_secs(365 * 24 * 3600))
            .max(Duration::from_micros(1));
        Some(now.checked_add(wait).unwrap_or(now))
    }

    /// Takes a token (call when [`ready_at`](Self::ready_at) said one is there).
    pub(crate) fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

/// Takes a token from every bucket of `buckets` at `now`, or from none: `Err` says when
/// all of them will have one.
pub(crate) fn take_all<'a>(
    buckets: impl IntoIterator<Item = &'a mut Bucket>,
    now: Instant,
) -> Result<(), Instant> {
    let mut buckets: Vec<&mut Bucket> = buckets.into_iter().collect();
    let latest = buckets.iter_mut().filter_map(|b| b.ready_at(now)).max();
    if let Some(at) = latest {
        return Err(at);
    }
    for bucket in buckets {
        bucket.take(now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_gives_its_burst_then_one_token_per_period() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(Rate {
            limit: 10.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(bucket.ready_at(t0), None);
            bucket.take(t0);
        }
        let next = bucket.ready_at(t0).unwrap();
        assert_eq!(next.duration_since(t0), Duration::from_millis(100));
        assert!(bucket.ready_at(t0 + Duration::from_millis(99)).is_some());
        assert_eq!(bucket.ready_at(next), None);
        // Idle for long, it holds no more than its burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.ready_at(later), None);
            bucket.take(later);
        }
        assert!(bucket.ready_at(later).is_some());
    }

    #[test]
    fn take_all_takes_from_every_bucket_or_from_none() {
        let t0 = Instant::now();
        let rate = |limit| Rate { limit, burst: 1 };
        let (mut fast, mut slow) = (Bucket::new(rate(10.0)), Bucket::new(rate(1.0)));
        assert_eq!(take_all([&mut fast, &mut slow], t0), Ok(()));
        let at = take_all([&mut fast, &mut slow], t0).unwrap_err();
        assert_eq!(
            at.duration_since(t0),
            Duration::from_secs(1),
            "the slower decides"
        );
        // The refused try took nothing: at 100 ms the fast one has its token back.
        assert_eq!(fast.ready_at(t0 + Duration::from_millis(100)), None);
    }

    #[test]
    fn over_any_window_starts_stay_within_burst_plus_rate() {
        let t0 = Instant::now();
        let rate = Rate {
            limit: 4.0,
            burst: 2,
        };
        let mut bucket = Bucket::new(rate);
        let mut now = t0;
        let mut starts = Vec::new();
        // Ask every 7 ms for 3 s; take whenever a token is there.
        while now < t0 + Duration::from_secs(3) {
            if bucket.ready_at(now).is_none() {
                bucket.take(now);
                starts.push(now);
            }
            now += Duration::from_millis(7);
        }
        for (i, a) in starts.iter().enumerate() {
            for (j, b) in starts.iter().enumerate().skip(i) {
                let window = b.duration_since(*a).as_secs_f64();
                let allowed = f64::from(rate.burst) + rate.limit * window + 1e-9;
                assert!(
                    (j - i + 1) as f64 <= allowed,
                    "{} starts in {window}s",
                    j - i + 1
                );
            }
        }
        assert!(starts.len() >= 12, "{} starts", starts.len());
    }
}
