//! The runtime's named rate limiters: token buckets shared by every execution, each
//! applying to the items of some kinds or carrying some tags (their `sema` tags). An
//! attempt of such an item starts only with a token from every limiter it falls under.
//! In memory only: after a restart every bucket is full.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::sched::rate::{Bucket, Rate, take_all};

/// One named limiter, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterSpec {
    /// Its name, for people and error messages.
    pub name: String,
    /// Attempt starts a second, on average (> 0).
    pub limit: f64,
    /// Attempt starts at once, at most (>= 1).
    pub burst: u32,
    /// It applies to items of these kinds ...
    pub kinds: Vec<String>,
    /// ... and to items carrying one of these tags.
    pub tags: Vec<String>,
}

/// The named limiters of one runtime.
#[derive(Debug, Default)]
pub struct Limiters {
    specs: Vec<LimiterSpec>,
    buckets: Mutex<Vec<Bucket>>,
}

impl Limiters {
    /// Limiters as `specs` say; an error names the first one that is malformed (a
    /// `limit` that is not above 0, a `burst` of 0, no kinds or tags, a name used twice).
    pub fn new(specs: Vec<LimiterSpec>) -> Result<Self, String> {
        for (i, spec) in specs.iter().enumerate() {
            let name = &spec.name;
            if name.is_empty() {
                return Err(format!("limiter {i} has an empty name"));
            }
            if specs[..i].iter().any(|s| s.name == *name) {
                return Err(format!("limiter `{name}` is defined twice"));
            }
            if !(spec.limit.is_finite() && spec.limit > 0.0) {
                return Err(format!(
                    "limiter `{name}`: `limit` must be attempt starts per second, above 0; got {}",
                    spec.limit
                ));
            }
            if spec.burst == 0 {
                return Err(format!("limiter `{name}`: `burst` must be at least 1"));
            }
            if spec.kinds.is_empty() && spec.tags.is_empty() {
                return Err(format!(
                    "limiter `{name}` applies to nothing: give it `kinds` or `tags`"
                ));
            }
        }
        let buckets = specs
            .iter()
            .map(|s| {
                Bucket::new(Rate {
                    limit: s.limit,
                    burst: s.burst,
                })
            })
            .collect();
        Ok(Limiters {
            specs,
            buckets: Mutex::new(buckets),
        })
    }

    /// Whether no limiter is configured (then no item needs looking at).
    pub(crate) fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The limiters an item of `kind` with `tags` falls under (indices, in order).
    pub(crate) fn matching(&self, kind: &str, tags: &[Arc<str>]) -> Arc<[usize]> {
        self.specs
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.kinds.iter().any(|k| k == kind)
                    || s.tags.iter().any(|t| tags.iter().any(|i| **i == **t))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// A token from each of limiters `ids` at `now`, or from none: `Err` says when all of
    /// them will have one.
    pub(crate) fn take(&self, ids: &[usize], now: Instant) -> Result<(), Instant> {
        // Bucket arithmetic does not panic; a poisoned lock still holds sound buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let picked = buckets
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| ids.contains(i))
            .map(|(_, b)| b);
        take_all(picked, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kinds: &[&str], tags: &[&str]) -> LimiterSpec {
        LimiterSpec {
            name: name.to_owned(),
            limit: 1.0,
            burst: 1,
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn items_fall_under_the_limiters_of_their_kind_or_tags() {
        let limiters = Limiters::new(vec![
            spec("by-kind", &["call"], &[]),
            spec("by-tag", &[], &["api:10"]),
        ])
        .unwrap();
        let tags: Vec<Arc<str>> = vec![Arc::from("api:10")];
        assert_eq!(&*limiters.matching("call", &[]), &[0]);
        assert_eq!(&*limiters.matching("call", &tags), &[0, 1]);
        assert_eq!(&*limiters.matching("other", &tags), &[1]);
        assert!(limiters.matching("other", &[Arc::from("api")]).is_empty());
        assert!(
            Limiters::new(vec![spec("x", &["a"], &[]), spec("x", &["b"], &[])])
                .unwrap_err()
                .contains("twice")
        );
    }
}
