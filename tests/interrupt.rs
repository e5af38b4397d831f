//! Each interrupt strategy, on one execution and on all of them, through the runtime handle.
//!
//! Items that must still run when the interrupt lands wait at a gate the test opens only
//! after the interrupt is applied, so every count below is exact on any machine.

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::time::Duration;

use helpers::*;
use tend::{Block, Event, ExecutionStatus, InterruptStrategy, ItemStatus, Plan};

fn independent(n: usize, ms: u64, steps: u32) -> Plan {
    let mut block = Block::new("all");
    for i in 0..n {
        block.push(sleep(&format!("i{i}"), ms, steps));
    }
    Plan::new("independent").block(block)
}

/// `n` independent items of `steps` steps, all waiting at gate `gate`.
fn gated(n: usize, gate_name: &str, steps: u32) -> Plan {
    let mut block = Block::new("all");
    for i in 0..n {
        block.push(gate(&format!("i{i}"), gate_name, steps));
    }
    Plan::new("gated").block(block)
}

/// A runtime running one item at a time of each of two executions of `plan`, with the
/// gates its `gate` items wait at.
async fn two_running(
    plan: Plan,
) -> (
    tend::Runtime,
    tend::demo::Gates,
    tend::ExecutionId,
    tend::ExecutionId,
) {
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(None, None, 1, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let a = rt.submit(plan.clone()).await.unwrap();
    let b = rt.submit(plan).await.unwrap();
    // Either may report first: wait until both have an item running.
    let mut running = std::collections::HashSet::new();
    wait_for(&mut events, |e| {
        if let Event::Item {
            execution,
            status: ItemStatus::Running,
            ..
        } = e
        {
            running.insert(*execution);
        }
        running.contains(&a) && running.contains(&b)
    })
    .await;
    (rt, gates, a, b)
}

#[tokio::test]
async fn finish_current_lets_running_items_finish_and_starts_none() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(None, Some(&log), 2, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(gated(6, "g", 4)).await.unwrap();
    wait_items(&mut events, id, ItemStatus::Running, 2).await;
    rt.interrupt(id, InterruptStrategy::FinishCurrent)
        .await
        .unwrap();
    // Applied: the two running items may finish now, and nothing else may start.
    gates.open("g");
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Interrupted);
    assert_eq!(outcome.done(), 2, "{outcome:?}");
    assert_eq!(outcome.not_started(), 4, "{outcome:?}");
    assert_eq!(outcome.interrupted(), 0);
    assert_eq!(assert_nothing_reapplied(&log).len(), 2);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn poll_next_n_starts_exactly_n_more_items() {
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(None, None, 1, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(gated(8, "g", 2)).await.unwrap();
    wait_items(&mut events, id, ItemStatus::Running, 1).await;
    rt.interrupt(id, InterruptStrategy::PollNextN(2))
        .await
        .unwrap();
    gates.open("g");
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Interrupted);
    // The running item plus two more.
    assert_eq!(outcome.done(), 3, "{outcome:?}");
    assert_eq!(outcome.not_started(), 5, "{outcome:?}");
    assert_eq!(
        outcome.blocks[0].done,
        ["i0", "i1", "i2"].map(Arc::<str>::from)
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn at_cancellation_point_stops_running_items_and_keeps_their_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(Some(dir.path()), None, 2, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(gated(4, "g", 20)).await.unwrap();
    // Both running items checkpoint their first step, then wait at the gate.
    wait_items(&mut events, id, ItemStatus::Running, 2).await;
    gates.release("g", 1);
    let mut progressed = std::collections::HashSet::new();
    wait_for(&mut events, |e| {
        if let Event::Progress {
            execution, item, ..
        } = e
            && *execution == id
        {
            progressed.insert(item.clone());
        }
        progressed.len() == 2
    })
    .await;
    rt.interrupt(id, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Interrupted);
    assert_eq!(
        outcome.blocks[0].interrupted,
        ["i0", "i1"].map(Arc::<str>::from),
        "{outcome:?}"
    );
    assert_eq!(outcome.not_started(), 2);
    let report = rt.status(id).await.unwrap();
    for item in ["i0", "i1"] {
        let item = report.item(item).unwrap();
        assert_eq!(item.status, ItemStatus::Interrupted);
        let progress = item.progress.expect("progress is kept");
        assert_eq!((progress.done, progress.total), (1, 20), "{progress:?}");
    }
    rt.shutdown().await.unwrap();
    drop(rt);
    // The checkpoints are in the file.
    let store = open_store(dir.path()).await;
    for item in ["i0", "i1"] {
        let step: Option<u32> = store.checkpoint(id, item).await.unwrap();
        assert_eq!(step, Some(1), "{item}");
    }
    assert_eq!(store.checkpoint::<u32>(id, "i2").await.unwrap(), None);
    store.close().await.unwrap();
}

#[tokio::test]
async fn immediate_aborts_an_attempt_that_never_reaches_a_cancellation_point() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let rt = runtime(None, Some(&log), 1).await;
    let mut events = rt.subscribe().await.unwrap();
    // One step of a minute: its only cancellation point is before it starts.
    let id = rt
        .submit(Plan::new("stuck").block(Block::new("b").item(sleep("stuck", 60_000, 1))))
        .await
        .unwrap();
    wait_items(&mut events, id, ItemStatus::Running, 1).await;
    // The attempt logs `start` in the same poll that takes it past its cancellation point
    // into the minute-long step (the test's runtime has one thread): once the line is there,
    // only the abort can end it.
    eventually("the attempt has started its step", || async {
        let lines = applied(&log);
        if lines.len() == 1 {
            Ok(())
        } else {
            Err(format!("{lines:?}"))
        }
    })
    .await;
    rt.interrupt(
        id,
        InterruptStrategy::Immediate {
            grace: Duration::from_millis(100),
        },
    )
    .await
    .unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Interrupted);
    assert_eq!(
        outcome.blocks[0].interrupted,
        ["stuck"].map(Arc::<str>::from)
    );
    let lines = applied(&log);
    assert_eq!(lines.len(), 1, "started, never done: {lines:?}");
    assert_eq!(lines[0].0, "start");
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn immediate_with_a_long_grace_still_stops_at_cancellation_points() {
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(None, None, 1, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(gated(2, "g", 30)).await.unwrap();
    wait_items(&mut events, id, ItemStatus::Running, 1).await;
    gates.release("g", 1);
    wait_for(
        &mut events,
        |e| matches!(e, Event::Progress { execution, .. } if *execution == id),
    )
    .await;
    rt.interrupt(
        id,
        InterruptStrategy::Immediate {
            grace: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.blocks[0].interrupted, ["i0"].map(Arc::<str>::from));
    assert_eq!(outcome.blocks[0].not_started, ["i1"].map(Arc::<str>::from));
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn interrupt_all_reaches_every_running_execution_and_only_those() {
    let gates = tend::demo::Gates::new();
    let rt = gated_runtime(None, None, 2, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let finished = rt.submit(independent(1, 0, 1)).await.unwrap();
    assert!(outcome(&rt, finished).await.is_completed());
    // Closed gates: nothing of `a` or `b` can finish before the interrupt.
    let a = rt.submit(gated(3, "g", 30)).await.unwrap();
    let b = rt.submit(gated(3, "g", 30)).await.unwrap();
    wait_items(&mut events, a, ItemStatus::Running, 2).await;
    let mut ids = rt
        .interrupt_all(InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, vec![a, b]);
    for id in [a, b] {
        let outcome = outcome(&rt, id).await;
        assert_eq!(outcome.status, ExecutionStatus::Interrupted);
        assert_eq!(outcome.done(), 0, "{outcome:?}");
        assert_eq!(outcome.interrupted() + outcome.not_started(), 3);
    }
    assert!(
        rt.interrupt_all(InterruptStrategy::FinishCurrent)
            .await
            .unwrap()
            .is_empty()
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn interrupt_all_with_finish_current_lets_each_running_item_finish() {
    let (rt, gates, a, b) = two_running(gated(3, "g", 3)).await;
    rt.interrupt_all(InterruptStrategy::FinishCurrent)
        .await
        .unwrap();
    gates.open("g");
    for id in [a, b] {
        let outcome = outcome(&rt, id).await;
        assert_eq!(
            outcome.blocks[0].done,
            ["i0"].map(Arc::<str>::from),
            "{outcome:?}"
        );
        assert_eq!(outcome.not_started(), 2);
    }
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn interrupt_all_applies_poll_next_n_and_immediate_to_each_execution() {
    // PollNextN(1): each execution finishes its running item and one more.
    let (rt, gates, a, b) = two_running(gated(4, "g", 3)).await;
    let mut ids = rt
        .interrupt_all(InterruptStrategy::PollNextN(1))
        .await
        .unwrap();
    gates.open("g");
    ids.sort();
    assert_eq!(ids, vec![a, b]);
    for id in [a, b] {
        let outcome = outcome(&rt, id).await;
        assert_eq!(
            outcome.blocks[0].done,
            ["i0", "i1"].map(Arc::<str>::from),
            "{outcome:?}"
        );
        assert_eq!(outcome.not_started(), 2);
    }
    rt.shutdown().await.unwrap();

    // Immediate: attempts with no cancellation point in reach are aborted after the grace.
    let (rt, _gates, a, b) = two_running(independent(2, 60_000, 1)).await;
    rt.interrupt_all(InterruptStrategy::Immediate {
        grace: Duration::from_millis(50),
    })
    .await
    .unwrap();
    for id in [a, b] {
        let outcome = outcome(&rt, id).await;
        assert_eq!(
            outcome.blocks[0].interrupted,
            ["i0"].map(Arc::<str>::from),
            "{outcome:?}"
        );
        assert_eq!(outcome.blocks[0].not_started, ["i1"].map(Arc::<str>::from));
    }
    rt.shutdown().await.unwrap();
}
