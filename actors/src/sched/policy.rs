//! How an item's attempts are retried, bounded in time and paced: the `retry`, `delay`,
//! `timeout`, `limit` and `burst` metaparams as the scheduler uses them.

use std::time::Duration;

use serde_json::Value;

use crate::error::PlanError;
use crate::model::ItemSpec;
use crate::sched::rate::Rate;

/// The longest wait between retries unless `delay` says otherwise.
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5 * 60);
/// How far a wait moves either way unless `delay` says otherwise.
const DEFAULT_JITTER: f64 = 0.1;

/// Retries, the wait before each and the time one attempt may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    /// How many failed attempts are retried; `None` without limit.
    pub(crate) retries: Option<u32>,
    /// The wait before each retry.
    pub(crate) backoff: Backoff,
    /// How long one attempt may run before it is cancelled and counts as failed.
    pub(crate) timeout: Option<Duration>,
    /// How often its attempts may start (`limit` a second, `burst` at once).
    pub(crate) rate: Option<Rate>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retries: Some(0),
            backoff: Backoff::default(),
            timeout: None,
            rate: None,
        }
    }
}

impl Policy {
    /// The policy an item's metaparams ask for, or an error naming the item and what is
    /// wrong.
    pub(crate) fn of(spec: &ItemSpec) -> Result<Policy, PlanError> {
        let bad = |metaparam: &'static str, reason: String| PlanError::BadMetaparam {
            item: spec.id.clone(),
            metaparam,
            reason,
        };
        let retries = match &spec.retry {
            None => Some(0),
            Some(value) => match value.as_i64() {
                Some(-1) => None,
                Some(n) if n >= 0 => {
                    Some(u32::try_from(n).map_err(|_| bad("retry", format!("is too large: {n}")))?)
                }
                _ => {
                    return Err(bad(
                        "retry",
                        format!(
                            "must be a whole number of retries, or -1 for no limit; got {}",
                            quote(value)
                        ),
                    ));
                }
            },
        };
        let backoff = match &spec.delay {
            None => Backoff::default(),
            Some(_) if retries == Some(0) => {
                return Err(bad(
                    "delay",
                    "is the wait before a retry: set `retry` as well".to_owned(),
                ));
            }
            Some(value) => Backoff::of(value).map_err(|reason| bad("delay", reason))?,
        };
        let timeout = match &spec.timeout {
            None => None,
            Some(value) => match duration(value) {
                Ok(t) if t.is_zero() => {
                    return Err(bad("timeout", "must be longer than 0s".to_owned()));
                }
                Ok(t) => Some(t),
                Err(reason) => return Err(bad("timeout", reason)),
            },
        };
        let rate = match (&spec.limit, &spec.burst) {
            (None, None) => None,
            (Some(limit), burst) => {
                let limit = limit
                    .as_f64()
                    .filter(|l| l.is_finite() && *l > 0.0)
                    .ok_or_else(|| {
                        bad(
                            "limit",
                            format!(
                                "must be attempt starts per second, a number above 0; got {}",
                                quote(limit)
                            ),
                        )
                    })?;
                let Some(burst) = burst else {
                    return Err(bad(
                        "limit",
                        "needs `burst`, how many attempts may start at once (at least 1)"
                            .to_owned(),
                    ));
                };
                let burst = burst
                    .as_u64()
                    .filter(|b| *b > 0)
                    .and_then(|b| u32::try_from(b).ok())
                    .ok_or_else(|| {
                        bad(
                            "burst",
                            format!("must be a whole number above 0; got {}", quote(burst)),
                        )
                    })?;
                Some(Rate { limit, burst })
            }
            (None, Some(_)) => {
                return Err(bad(
                    "burst",
                    "is the most starts `limit` allows at once: set `limit` as well".to_owned(),
                ));
            }
        };
        Ok(Policy {
            retries,
            backoff,
            timeout,
            rate,
        })
    }

    /// Whether an item that has failed `failures` times may run again.
    pub(crate) fn retries_after(&self, failures: u32) -> bool {
        self.retries.is_none_or(|n| failures <= n)
    }
}

/// Exponential backoff: `first`, then twice as long each retry, never over `max`, each
/// wait moved by up to `jitter` of itself either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    pub(crate) first: Duration,
    pub(crate) max: Duration,
    /// From 0 (none) to 1.
    pub(crate) jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }
}

impl Backoff {
    /// A `delay` metaparam: a duration, or `{"first", "max", "jitter"}`.
    fn of(value: &Value) -> Result<Backoff, String> {
        let (first, max, jitter) = match value {
            Value::Object(fields) => {
                if let Some(unknown) = fields
                    .keys()
                    .find(|k| !matches!(k.as_str(), "first" | "max" | "jitter"))
                {
                    return Err(format!(
                        "has an unknown field `{}`; use first, max and jitter",
                        unknown.chars().take(40).collect::<String>()
                    ));
                }
                let first = fields
                    .get("first")
                    .ok_or_else(|| "needs `first`, the wait before the first retry".to_owned())
                    .and_then(duration)?;
                let max = fields.get("max").map(duration).transpose()?;
                let jitter = match fields.get("jitter") {
                    None => DEFAULT_JITTER,
                    Some(j) => j
                        .as_f64()
                        .filter(|j| (0.0..=1.0).contains(j))
                        .ok_or_else(|| {
                            format!("`jitter` must be between 0 and 1; got {}", quote(j))
                        })?,
                };
                (first, max, jitter)
            }
            other => (duration(other)?, None, DEFAULT_JITTER),
        };
        let max = max.unwrap_or(DEFAULT_MAX_DELAY.max(first));
        if max < first {
            return Err(format!(
                "`max` ({}) is shorter than `first` ({})",
                humantime::format_duration(max),
                humantime::format_duration(first)
            ));
        }
        Ok(Backoff { first, max, jitter })
    }

    /// The wait before retry number `retry` (1 for the first), with `noise` in `[0, 1)`
    /// choosing where in the jitter band it falls.
    pub(crate) fn wait(&self, retry: u32, noise: f64) -> Duration {
        let doublings = retry.saturating_sub(1).min(32);
        let base = self
            .first
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max.max(self.first));
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * noise.clamp(0.0, 1.0) - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }
}

/// A duration metaparam: a humantime string such as `"30s"`.
fn duration(value: &Value) -> Result<Duration, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("must be a duration such as \"30s\"; got {}", quote(value)))?;
    humantime::parse_duration(text).map_err(|e| format!("is not a duration: {}: {e}", quote(value)))
}

/// A value as JSON for an error message, cut to a bounded length.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// A number in `[0, 1)` that depends only on its inputs (SplitMix64), so a run's waits are
/// the same every time it is replayed.
pub(crate) fn noise(seed: u64, index: u32, attempt: u32) -> f64 {
    let mut z = seed ^ (u64::from(index) << 32) ^ u64::from(attempt);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let backoff = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(5),
            jitter: 0.0,
        };
        let waits: Vec<u64> = (1..=5).map(|r| backoff.wait(r, 0.5).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 5, 5]);
        assert_eq!(backoff.wait(u32::MAX, 0.5), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_in_its_band_and_is_reproducible() {
        let backoff = Backoff {
            first: Duration::from_secs(10),
            max: Duration::from_secs(10),
            jitter: 0.2,
        };
        for attempt in 0..200 {
            let n = noise(7, 3, attempt);
            assert!((0.0..1.0).contains(&n));
            assert_eq!(n, noise(7, 3, attempt));
            let wait = backoff.wait(1, n).as_secs_f64();
            assert!((8.0..=12.0).contains(&wait), "{wait}");
        }
        assert_ne!(noise(7, 3, 1), noise(7, 3, 2));
    }

    #[test]
    fn retries_count_failures() {
        let once = Policy {
            retries: Some(1),
            ..Policy::default()
        };
        assert!(once.retries_after(1));
        assert!(!once.retries_after(2));
        assert!(!Policy::default().retries_after(1));
        let forever = Policy {
            retries: None,
            ..Policy::default()
        };
        assert!(forever.retries_after(u32::MAX));
    }
}
