//! Restart intensity: a failed Execution actor is restarted from its durable state (done
//! items stay done, the killed attempt is counted), and one that fails more often than
//! `max_restarts` within `restart_window` is paused, durably and with the reason, until
//! someone resumes it; a restart of the runtime does not resume it.

#[path = "support/helpers.rs"]
mod helpers;

use std::path::Path;
use std::time::Duration;

use helpers::*;
use tend::demo::Gates;
use tend::{Block, Config, ExecutionId, ExecutionStatus, ItemStatus, Plan, Runtime};

async fn start(dir: &Path, gates: &Gates, max_restarts: u32) -> Runtime {
    Runtime::builder()
        .resource(gates.clone())
        .registry(tend::demo::registry().unwrap())
        .data_dir(dir)
        .config(Config {
            parallelism: 1,
            stop_grace: Duration::from_millis(500),
            max_restarts,
            restart_window: Duration::from_secs(3600),
            ..Config::default()
        })
        .start()
        .await
        .unwrap()
}

/// `first` (done at once), then `held` (waits at gate `g`), then `last`.
fn plan() -> Plan {
    Plan::new("supervised").block(
        Block::new("b")
            .item(sum("first", 1))
            .item(gate("held", "g", 1).after(["first"]))
            .item(sleep("last", 0, 1).after(["held"])),
    )
}

/// Waits until attempt `attempt` of `held` is running and waiting at its gate.
async fn held_at_gate(rt: &Runtime, gates: &Gates, id: ExecutionId, attempt: u32) {
    eventually(
        &format!("attempt {attempt} of `held` waiting at its gate"),
        || async {
            let report = rt.status(id).await.map_err(|e| e.to_string())?;
            let held = report.item("held").ok_or("no item `held`")?;
            let waiting = gates.waiting("g");
            if report.status == ExecutionStatus::Running
                && held.status == ItemStatus::Running
                && held.attempts == attempt
                && waiting == 1
            {
                Ok(())
            } else {
                Err(format!(
                    "execution {}, held {} attempt {}, {waiting} waiting",
                    report.status, held.status, held.attempts
                ))
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_failed_execution_actor_is_restarted_from_its_durable_state() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let rt = start(dir.path(), &gates, 3).await;
    let id = rt.submit(plan()).await.unwrap();
    held_at_gate(&rt, &gates, id, 1).await;
    // Someone already waits for the outcome; the restart must not answer them.
    let waiter = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.wait(id).await })
    };
    rt.fail_execution_actor(id, "injected fault").await.unwrap();
    // The killed attempt counts; the restarted execution runs the next one.
    held_at_gate(&rt, &gates, id, 2).await;
    assert!(
        !waiter.is_finished(),
        "the waiter was answered by the failure"
    );
    gates.open("g");
    let outcome = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(outcome.is_completed(), "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    let attempts: Vec<(&str, u32)> = report
        .items()
        .map(|i| (i.id.as_str(), i.attempts))
        .collect();
    // `first` was durably done before the failure: it did not run again.
    assert_eq!(attempts, vec![("first", 1), ("held", 2), ("last", 1)]);
    assert_eq!(report.reason, None);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_execution_whose_actor_keeps_failing_is_paused_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let rt = start(dir.path(), &gates, 1).await;
    let id = rt.submit(plan()).await.unwrap();
    held_at_gate(&rt, &gates, id, 1).await;
    let waiter = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.wait(id).await })
    };
    rt.fail_execution_actor(id, "first fault").await.unwrap();
    held_at_gate(&rt, &gates, id, 2).await;
    // The second failure within the window is one more than `max_restarts = 1` allows.
    rt.fail_execution_actor(id, "second fault").await.unwrap();
    let outcome = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, ExecutionStatus::Paused);
    let expected = "the execution actor failed 2 times within 1h; last failure: second fault";
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Paused);
    assert_eq!(report.reason.as_deref(), Some(expected));
    assert_eq!(report.item("first").unwrap().status, ItemStatus::Done);
    assert_eq!(report.item("held").unwrap().status, ItemStatus::Interrupted);
    assert_eq!(report.item("held").unwrap().attempts, 2);
    assert_eq!(gates.waiting("g"), 0, "a paused execution runs nothing");
    rt.shutdown().await.unwrap();

    // Durable: a restart of the runtime finds it paused, with its reason, and leaves it.
    let rt = start(dir.path(), &gates, 1).await;
    let listed = rt.list().await.unwrap();
    let summary = listed.iter().find(|e| e.id == id).unwrap();
    assert_eq!(summary.status, ExecutionStatus::Paused);
    assert_eq!(summary.error.as_deref(), Some(expected));
    assert_eq!(
        rt.status(id).await.unwrap().reason.as_deref(),
        Some(expected)
    );
    assert!(
        rt.interrupt(id, tend::InterruptStrategy::FinishCurrent)
            .await
            .is_err(),
        "a paused execution is not running"
    );

    // A person resumes it: it runs on from its durable state, and a failure counts anew.
    rt.resume(id).await.unwrap();
    held_at_gate(&rt, &gates, id, 3).await;
    let listed = rt.list().await.unwrap();
    assert_eq!(listed.iter().find(|e| e.id == id).unwrap().error, None);
    rt.fail_execution_actor(id, "after resume").await.unwrap();
    held_at_gate(&rt, &gates, id, 4).await;
    gates.open("g");
    let finished = helpers::outcome(&rt, id).await;
    assert!(finished.is_completed(), "{finished:?}");
    assert_eq!(
        rt.status(id).await.unwrap().item("held").unwrap().attempts,
        4
    );
    rt.shutdown().await.unwrap();
}
