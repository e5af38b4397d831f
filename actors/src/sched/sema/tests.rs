use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{Table, size_of};
use crate::sched::sim::random::Rng;

#[test]
fn sizes_come_after_the_last_colon_and_bad_ones_are_named() {
    assert_eq!(size_of("db"), Ok(1));
    assert_eq!(size_of("db:2"), Ok(2));
    assert_eq!(size_of("tenant:acme:5"), Ok(5));
    // Not a number after the colon: part of the id.
    assert_eq!(size_of("a:b"), Ok(1));
    assert!(size_of("db:0").unwrap_err().contains("size 0"));
    assert!(size_of(":2").unwrap_err().contains("empty id"));
    assert!(size_of("").unwrap_err().contains("empty id"));
    assert!(
        size_of("db:99999999999999999999")
            .unwrap_err()
            .contains("over")
    );
}

fn tags(list: &[&str]) -> Arc<[Arc<str>]> {
    let mut sorted: Vec<&str> = list.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.into_iter().map(Arc::from).collect()
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let mut table: Table<u32, u32> = Table::default();
    assert!(table.acquire(1, tags(&["db:2"]), 1));
    assert!(table.acquire(2, tags(&["db:2"]), 2));
    assert!(!table.acquire(3, tags(&["db:2"]), 3));
    assert!(!table.acquire(4, tags(&["db:2"]), 4));
    let state = &table.snapshot()[0];
    assert_eq!(
        (state.holders.clone(), state.waiters.clone()),
        (vec![1, 2], vec![3, 4])
    );
    assert_eq!(table.release(2), vec![(3, 3)]);
    assert_eq!(table.release(1), vec![(4, 4)]);
    // One that stops waiting is simply gone from the queue.
    assert!(!table.acquire(5, tags(&["db:2"]), 5));
    assert_eq!(table.release(5), vec![]);
    table.release(3);
    table.release(4);
    assert!(table.snapshot().is_empty(), "an idle semaphore is dropped");
}

#[test]
fn an_owner_waiting_on_a_later_tag_holds_the_earlier_ones() {
    let mut table: Table<u32, ()> = Table::default();
    assert!(table.acquire(1, tags(&["b"]), ()));
    assert!(!table.acquire(2, tags(&["a", "b"]), ()));
    let snapshot = table.snapshot();
    assert_eq!(
        snapshot[0].holders,
        vec![2],
        "a is held while waiting for b"
    );
    assert_eq!(snapshot[1].waiters, vec![2]);
    assert!(!table.acquire(3, tags(&["a"]), ()));
    assert_eq!(table.release(1), vec![(2, ())]);
    assert_eq!(table.release(2), vec![(3, ())]);
}

const POOL: [&str; 6] = ["a", "a:2", "b:3", "c", "d:2", "e"];

/// Checks the table after an operation: no semaphore over its size, no queue while a
/// permit is free, nobody holding twice, and (no deadlock) whenever anyone waits, someone
/// holds everything it asked for.
fn check(table: &Table<u32, u32>, seed: u64, step: usize) {
    let snapshot = table.snapshot();
    for s in &snapshot {
        assert!(
            s.holders.len() <= s.size,
            "case {seed} step {step}: {s:?} over its size"
        );
        assert!(
            s.waiters.is_empty() || s.holders.len() == s.size,
            "case {seed} step {step}: {s:?} queues with a permit free"
        );
        let unique: BTreeSet<u32> = s.holders.iter().copied().collect();
        assert_eq!(
            unique.len(),
            s.holders.len(),
            "case {seed} step {step}: {s:?}"
        );
    }
    let waiting = snapshot.iter().any(|s| !s.waiters.is_empty());
    let progress = table.owners().any(|o| table.holds_all(o));
    assert!(
        !waiting || progress,
        "case {seed} step {step}: deadlock: someone waits and nobody holds all it asked for: {snapshot:?}"
    );
}

#[test]
fn random_tag_sets_never_exceed_a_size_never_deadlock_and_every_waiter_is_served() {
    for seed in 0..500u64 {
        let mut rng = Rng(seed);
        let mut table: Table<u32, u32> = Table::default();
        // Per owner: whether it was told it holds its tags (by acquire or a release).
        let mut told: HashMap<u32, bool> = HashMap::new();
        let owners = 2 + rng.below(12) as u32;
        for step in 0..400 {
            let owner = rng.below(owners as usize) as u32;
            match told.get(&owner) {
                None => {
                    let n = 1 + rng.below(3);
                    let picked: Vec<&str> = (0..n).map(|_| POOL[rng.below(POOL.len())]).collect();
                    let now = table.acquire(owner, tags(&picked), owner);
                    told.insert(owner, now);
                }
                Some(&holds) => {
                    // Holders release; now and then a waiter gives up.
                    if holds || rng.below(10) == 0 {
                        told.remove(&owner);
                        for (granted, waker) in table.release(owner) {
                            assert_eq!(granted, waker);
                            assert_eq!(
                                told.insert(granted, true),
                                Some(false),
                                "case {seed}: {granted} told twice"
                            );
                        }
                    }
                }
            }
            for (&o, &holds) in &told {
                assert_eq!(
                    holds,
                    table.holds_all(&o),
                    "case {seed} step {step}: owner {o}"
                );
            }
            check(&table, seed, step);
        }
        // Everyone left is served in the end: release holders until nobody is left.
        let mut steps = 0;
        loop {
            let Some(holder) = table.owners().find(|o| table.holds_all(o)).copied() else {
                break;
            };
            told.remove(&holder);
            for (granted, _) in table.release(holder) {
                told.insert(granted, true);
            }
            steps += 1;
            assert!(steps < 10_000, "case {seed}: draining does not end");
        }
        assert_eq!(table.owners().count(), 0, "case {seed}: stuck waiters left");
        assert!(table.snapshot().is_empty());
    }
}
