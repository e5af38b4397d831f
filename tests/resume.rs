//! Interrupt, stop the runtime, start it again on the same directory, resume: no done item
//! is applied again, intra-item checkpoints are honoured, dependents get stored outputs.

#[path = "support/helpers.rs"]
mod helpers;

use helpers::*;
use serde_json::json;
use std::sync::Arc;
use tend::demo::{Gate, Gates};
use tend::{
    Block, Event, ExecutionStatus, InterruptStrategy, ItemSpec, ItemStatus, Plan, RuntimeError,
};

/// Layer 0: four checkpointed items of 15 steps with numeric outputs, `s<i>` waiting at
/// gate `s<i>`; layer 1: sums of them; block 2: a total of the sums.
fn layered() -> Plan {
    let mut first = Block::new("first");
    for i in 0..4 {
        let name = format!("s{i}");
        first.push(ItemSpec::new(&name, &Gate::new(&name).steps(15).output(json!(i + 1))).unwrap());
    }
    first.push(sum("pair-a", 100).after(["s0", "s1"]));
    first.push(sum("pair-b", 0).after(["s2", "s3"]));
    Plan::new("layered")
        .with_parallelism(2)
        .block(first)
        .block(Block::new("second").item(sum("total", 0).after(["pair-a", "pair-b"])))
}

#[tokio::test]
async fn interrupted_execution_resumes_after_restart_without_reapplying_done_items() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");

    let gates = Gates::new();
    let rt = gated_runtime(Some(dir.path()), Some(&log), 2, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(layered()).await.unwrap();
    // Let s0 and s1 finish, then interrupt while s2 is two steps in and s3 has started.
    gates.open("s0");
    gates.open("s1");
    wait_items(&mut events, id, ItemStatus::Done, 2).await;
    gates.release("s2", 2);
    wait_for(&mut events, |e| {
        matches!(e, Event::Progress { execution, item, progress, .. }
            if *execution == id && **item == *"s2" && progress.done == 2)
    })
    .await;
    rt.interrupt(id, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    let first = outcome(&rt, id).await;
    assert_eq!(first.status, ExecutionStatus::Interrupted);
    assert_eq!(
        first.blocks[0].done,
        ["s0", "s1"].map(Arc::<str>::from),
        "{first:?}"
    );
    assert_eq!(
        first.blocks[0].interrupted,
        ["s2", "s3"].map(Arc::<str>::from),
        "{first:?}"
    );
    let interrupted_item = "s2".to_owned();
    let checkpoint_step = rt
        .status(id)
        .await
        .unwrap()
        .item(&interrupted_item)
        .and_then(|i| i.progress)
        .map(|p| p.done)
        .unwrap();
    assert_eq!(checkpoint_step, 2);
    rt.shutdown().await.unwrap();
    drop(rt);

    // A new runtime on the same directory lists it as interrupted and resumable.
    let rt = gated_runtime(Some(dir.path()), Some(&log), 2, open_gates()).await;
    let listed = rt.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].status, ExecutionStatus::Interrupted);
    assert_eq!(listed[0].items_done, first.done());
    assert_eq!(listed[0].items_total, 7);

    let mut events = rt.subscribe().await.unwrap();
    rt.resume(id).await.unwrap();
    // The interrupted item continues after its checkpoint: its first progress report is
    // the step after the one it had saved.
    // (Progress reports only: the gate's "waiting at gate" messages repeat the saved
    // progress.)
    let first_progress = wait_for(&mut events, |e| {
        matches!(e, Event::Progress { execution, item, message: None, .. }
            if *execution == id && **item == *interrupted_item)
    })
    .await;
    let Event::Progress { progress, .. } = first_progress else {
        unreachable!()
    };
    assert_eq!(progress.done, checkpoint_step + 1);

    let done = outcome(&rt, id).await;
    assert!(done.is_completed(), "{done:?}");
    assert_eq!(done.done(), 7);
    let report = rt.status(id).await.unwrap();
    // pair-a = 100 + 1 + 2 (s0 and s1 finished before the restart), pair-b = 3 + 4.
    assert_eq!(report.item("pair-a").unwrap().output_as::<i64>(), Some(103));
    assert_eq!(report.item("pair-b").unwrap().output_as::<i64>(), Some(7));
    assert_eq!(report.item("total").unwrap().output_as::<i64>(), Some(110));
    assert_eq!(report.item(&interrupted_item).unwrap().attempts, 2);
    assert_eq!(report.item("s0").unwrap().attempts, 1);

    let done_counts = assert_nothing_reapplied(&log);
    assert_eq!(done_counts.len(), 7);
    assert!(done_counts.values().all(|&n| n == 1), "{done_counts:?}");

    assert!(matches!(
        rt.resume(id).await,
        Err(RuntimeError::InvalidState {
            status: ExecutionStatus::Completed,
            ..
        })
    ));
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_checkpoints_running_executions_and_a_restart_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    // Closed gates: neither execution can finish before the shutdown.
    let rt = runtime(Some(dir.path()), Some(&log), 4).await;
    let mut events = rt.subscribe().await.unwrap();
    let a = rt.submit(layered()).await.unwrap();
    let b = rt.submit(layered()).await.unwrap();
    wait_items(&mut events, b, ItemStatus::Running, 1).await;
    // Shutdown without an interrupt: every execution is stopped and checkpointed.
    rt.shutdown().await.unwrap();
    drop(rt);
    // The file says interrupted, and that the next start resumes them.
    let store = open_store(dir.path()).await;
    for id in [a, b] {
        assert_eq!(
            store.report(id).await.unwrap().status,
            ExecutionStatus::Interrupted
        );
    }
    store.close().await.unwrap();
    drop(store);

    // They were running when the process stopped: a restart resumes them by itself.
    let rt = gated_runtime(Some(dir.path()), Some(&log), 4, open_gates()).await;
    let listed = rt.list().await.unwrap();
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), vec![a, b]);
    for id in [a, b] {
        let outcome = outcome(&rt, id).await;
        assert!(outcome.is_completed(), "{outcome:?}");
        let report = rt.status(id).await.unwrap();
        assert_eq!(report.item("total").unwrap().output_as::<i64>(), Some(110));
    }
    let lines = applied(&log);
    for id in [a, b] {
        let done = lines
            .iter()
            .filter(|(event, exec, _)| event == "done" && *exec == id.to_string())
            .count();
        assert_eq!(done, 7, "each item of {id} done exactly once");
    }
    assert_nothing_reapplied_per_execution(&lines);
    rt.shutdown().await.unwrap();
}

/// Gates with every gate of `layered` open.
fn open_gates() -> Gates {
    let gates = Gates::new();
    for i in 0..4 {
        gates.open(&format!("s{i}"));
    }
    gates
}

fn assert_nothing_reapplied_per_execution(lines: &[(String, String, String)]) {
    let mut done = std::collections::HashSet::new();
    for (event, exec, item) in lines {
        let key = (exec.clone(), item.clone());
        if event == "start" {
            assert!(!done.contains(&key), "{key:?} started after it was done");
        } else {
            done.insert(key);
        }
    }
}

#[tokio::test]
async fn a_resumed_execution_can_be_interrupted_and_resumed_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let gates = Gates::new();
    let rt = gated_runtime(Some(dir.path()), Some(&log), 1, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(layered()).await.unwrap();
    // Each round, s0 goes one step further (the resumed attempt continues from its
    // checkpoint), and is interrupted there.
    for step in 1..=2u64 {
        gates.release("s0", 1);
        wait_for(&mut events, |e| {
            matches!(e, Event::Progress { execution, item, progress, .. }
                if *execution == id && **item == *"s0" && progress.done == step)
        })
        .await;
        rt.interrupt(id, InterruptStrategy::AtCancellationPoint)
            .await
            .unwrap();
        let interrupted = outcome(&rt, id).await;
        assert_eq!(interrupted.status, ExecutionStatus::Interrupted);
        // The plan runs two at a time: s1 was running too, waiting at its closed gate.
        assert_eq!(
            interrupted.blocks[0].interrupted,
            ["s0", "s1"].map(Arc::<str>::from),
            "{interrupted:?}"
        );
        rt.resume(id).await.unwrap();
    }
    for i in 0..4 {
        gates.open(&format!("s{i}"));
    }
    assert!(outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("total").unwrap().output_as::<i64>(), Some(110));
    assert_nothing_reapplied(&log);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_interrupt_sent_while_a_resume_is_starting_applies_before_any_item_starts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    // Closed gates: the items started are still running when interrupted.
    let rt = runtime(Some(dir.path()), Some(&log), 2).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(layered()).await.unwrap();
    wait_items(&mut events, id, ItemStatus::Running, 2).await;
    rt.interrupt(id, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    let before = outcome(&rt, id).await;
    let starts_before = applied(&log)
        .iter()
        .filter(|(e, _, _)| e == "start")
        .count();

    // Both requests are queued before the resume has read the execution back.
    let (resumed, interrupted) = tokio::join!(
        rt.resume(id),
        rt.interrupt(id, InterruptStrategy::FinishCurrent)
    );
    resumed.unwrap();
    interrupted.unwrap();
    let after = outcome(&rt, id).await;
    assert_eq!(after.status, ExecutionStatus::Interrupted);
    assert_eq!(after.done(), before.done(), "{after:?}");
    let starts_after = applied(&log)
        .iter()
        .filter(|(e, _, _)| e == "start")
        .count();
    assert_eq!(
        starts_after, starts_before,
        "no item started after the interrupt"
    );
    rt.shutdown().await.unwrap();
}
