//! Worked examples of the core, step by step (the simulation in `sched/sim.rs` covers the
//! random interleavings).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Progress;
use crate::model::{ExecutionStatus, InterruptStrategy, ItemStatus};
use crate::sched::dag::BlockGraph;
use crate::sched::policy::Policy;
use crate::sched::run::{AttemptEnd, Effect, Ending, ItemState, Publish, Run, RunConfig, Write};
use crate::sched::shape::{Shape, ShapeBlock};

/// One block: a chain 0 <- 1 <- ... <- n-1.
fn chain(n: u32) -> Shape {
    block(
        (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect(),
    )
}

/// One block of `n` items that depend on nothing.
fn independent(n: u32) -> Shape {
    block(vec![Vec::new(); n as usize])
}

/// One block whose item `i` depends on `deps[i]`.
fn block(deps: Vec<Vec<u32>>) -> Shape {
    let n = deps.len() as u32;
    Shape {
        blocks: vec![ShapeBlock {
            range: 0..n,
            graph: BlockGraph::new(deps.clone()),
        }],
        deps: deps.into_iter().map(Vec::into_boxed_slice).collect(),
        policies: vec![Policy::default(); n as usize],
        notify: Vec::new(),
        guarded: Vec::new(),
        limited: Vec::new(),
    }
}

fn config(parallelism: usize) -> RunConfig {
    RunConfig {
        parallelism,
        timeout_grace: Duration::from_secs(1),
        seed: 1,
    }
}

fn effects(run: &mut Run) -> Vec<Effect> {
    std::iter::from_fn(|| run.poll_effect()).collect()
}

fn commit_of(effects: &[Effect]) -> (u64, Vec<Write>) {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Commit { id, writes } => Some((*id, writes.clone())),
            _ => None,
        })
        .expect("a commit")
}

fn done() -> AttemptEnd {
    AttemptEnd {
        ending: Ending::Done {
            changed: true,
            output: Arc::from(vec![1u8]),
            clear_checkpoint: false,
        },
        at_ms: 0,
        progress: None,
        message: None,
        applied: true,
        checkpoint: None,
    }
}

fn record(writes: &[Write], index: u32) -> Option<(ItemStatus, u32)> {
    writes.iter().find_map(|w| match w {
        Write::Item {
            index: i, state, ..
        } if *i == index => Some((state.status, state.attempts)),
        Write::Started {
            index: i, attempt, ..
        } if *i == index => Some((ItemStatus::Running, *attempt)),
        _ => None,
    })
}

#[test]
fn a_chain_pays_one_commit_per_item() {
    let mut run = Run::new(chain(3), vec![ItemState::default(); 3], config(4));
    run.start(Instant::now());
    let (first, writes) = commit_of(&effects(&mut run));
    // The first attempt's number goes out before it starts; nothing starts yet.
    assert_eq!(record(&writes, 0), Some((ItemStatus::Running, 1)));
    run.committed(first, Ok(()), Instant::now());
    let started = effects(&mut run);
    assert!(started.contains(&Effect::Start {
        index: 0,
        attempt: 1,
        resume: None,
    }));
    run.attempt_ended(0, 1, done(), Instant::now());
    // One commit holds item 0's Done record and item 1's start record; item 1 starts only
    // once it is durable.
    let step = effects(&mut run);
    let (second, writes) = commit_of(&step);
    assert_eq!(record(&writes, 0), Some((ItemStatus::Done, 1)));
    assert_eq!(record(&writes, 1), Some((ItemStatus::Running, 1)));
    assert!(!step.iter().any(|e| matches!(e, Effect::Start { .. })));
    run.committed(second, Ok(()), Instant::now());
    assert!(effects(&mut run).contains(&Effect::Start {
        index: 1,
        attempt: 1,
        resume: None,
    }));
}

#[test]
fn the_last_done_record_and_the_final_status_share_a_commit() {
    let mut run = Run::new(chain(1), vec![ItemState::default(); 1], config(1));
    run.start(Instant::now());
    let (id, _) = commit_of(&effects(&mut run));
    run.committed(id, Ok(()), Instant::now());
    effects(&mut run);
    run.attempt_ended(0, 1, done(), Instant::now());
    let (id, writes) = commit_of(&effects(&mut run));
    assert_eq!(record(&writes, 0), Some((ItemStatus::Done, 1)));
    assert!(writes.contains(&Write::Execution {
        status: ExecutionStatus::Completed
    }));
    run.committed(id, Ok(()), Instant::now());
    assert!(effects(&mut run).contains(&Effect::Ended {
        status: ExecutionStatus::Completed,
        error: None
    }));
}

#[test]
fn immediate_aborts_only_after_its_grace() {
    let now = Instant::now();
    let mut run = Run::new(chain(2), vec![ItemState::default(); 2], config(1));
    run.start(Instant::now());
    let (id, _) = commit_of(&effects(&mut run));
    run.committed(id, Ok(()), Instant::now());
    effects(&mut run);
    let grace = Duration::from_secs(5);
    assert!(run.interrupt(InterruptStrategy::Immediate { grace }, now));
    assert_eq!(
        effects(&mut run),
        vec![Effect::Cancel {
            index: 0,
            attempt: 1
        }]
    );
    assert_eq!(run.next_deadline(), Some(now + grace));
    run.deadline_reached(now + grace / 2);
    assert!(effects(&mut run).is_empty(), "not yet");
    run.deadline_reached(now + grace);
    assert_eq!(
        effects(&mut run),
        vec![Effect::Abort {
            index: 0,
            attempt: 1
        }]
    );
    // The aborted attempt ends interrupted; nothing else starts, and the run ends.
    run.attempt_ended(
        0,
        1,
        AttemptEnd {
            ending: Ending::Interrupted { error: None },
            at_ms: 0,
            progress: None,
            message: None,
            applied: true,
            checkpoint: None,
        },
        now + grace,
    );
    let (id, writes) = commit_of(&effects(&mut run));
    assert_eq!(record(&writes, 0), Some((ItemStatus::Interrupted, 1)));
    assert_eq!(record(&writes, 1), None);
    run.committed(id, Ok(()), Instant::now());
    assert!(effects(&mut run).contains(&Effect::Ended {
        status: ExecutionStatus::Interrupted,
        error: None
    }));
}

#[test]
fn a_restarted_run_numbers_attempts_after_the_stored_ones() {
    // Item 0 was started three times before (its record says so) and never finished.
    let stored = ItemState {
        status: ItemStatus::Interrupted,
        attempts: 3,
        ..ItemState::default()
    };
    let mut run = Run::new(chain(1), vec![stored], config(1));
    run.start(Instant::now());
    let (id, writes) = commit_of(&effects(&mut run));
    assert_eq!(record(&writes, 0), Some((ItemStatus::Running, 4)));
    run.committed(id, Ok(()), Instant::now());
    assert!(effects(&mut run).contains(&Effect::Start {
        index: 0,
        attempt: 4,
        resume: None,
    }));
}

#[test]
fn a_step_that_ends_with_two_commits_in_flight_keeps_its_records_for_the_next_one() {
    let now = Instant::now();
    let mut run = Run::new(independent(4), vec![ItemState::default(); 4], config(4));
    run.hold_commits();
    run.start(now);
    assert!(
        effects(&mut run).is_empty(),
        "held: the starts wait for the step's end"
    );
    run.end_step();
    let (starts, _) = commit_of(&effects(&mut run));
    run.committed(starts, Ok(()), now);
    effects(&mut run);
    // Two ends, two steps: two commits in flight.
    let mut inflight = Vec::new();
    for index in [0, 1] {
        run.attempt_ended(index, 1, done(), now);
        run.end_step();
        inflight.push(commit_of(&effects(&mut run)).0);
    }
    // The third and fourth ends stay open: no commit, and once a step's end kept them,
    // nothing for the shell to end (it would end steps in a loop).
    for index in [2, 3] {
        run.attempt_ended(index, 1, done(), now);
        run.end_step();
        assert!(
            !effects(&mut run)
                .iter()
                .any(|e| matches!(e, Effect::Commit { .. })),
            "no commit while two are in flight"
        );
        assert!(!run.has_open_commit(), "deferred while two are in flight");
    }
    // One answer: the open records go out together, in one commit.
    run.committed(inflight[0], Ok(()), now);
    effects(&mut run);
    assert!(run.has_open_commit());
    run.end_step();
    let (_, writes) = commit_of(&effects(&mut run));
    assert_eq!(record(&writes, 2), Some((ItemStatus::Done, 1)));
    assert_eq!(record(&writes, 3), Some((ItemStatus::Done, 1)));
}

/// The progress one item's done attempt publishes from its end, after the core heard
/// `heard` from it and its end says `end`.
fn published_from_end(heard: Progress, end: Progress) -> Vec<Progress> {
    let mut run = Run::new(independent(1), vec![ItemState::default(); 1], config(1));
    run.start(Instant::now());
    let (id, _) = commit_of(&effects(&mut run));
    run.committed(id, Ok(()), Instant::now());
    effects(&mut run);
    run.progress(0, Some(heard), None);
    effects(&mut run);
    let end = AttemptEnd {
        progress: Some(end),
        ..done()
    };
    run.attempt_ended(0, 1, end, Instant::now());
    effects(&mut run)
        .into_iter()
        .filter_map(|e| match e {
            Effect::Publish(Publish::Progress { progress, .. }) => Some(progress),
            _ => None,
        })
        .collect()
}

#[test]
fn a_done_attempts_last_progress_is_published_from_its_end_unless_the_core_had_it() {
    let half = Progress { done: 1, total: 2 };
    let whole = Progress { done: 2, total: 2 };
    // The core heard of 1/2; the attempt's end says it got to 2/2 (that report was
    // overtaken by the end).
    assert_eq!(published_from_end(half, whole), vec![whole]);
    // An end whose progress the core already has publishes nothing more.
    assert_eq!(published_from_end(whole, whole), vec![]);
}
