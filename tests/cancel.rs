//! Cancel (issue 22, part 3): an execution ended for good on request. A running one stops
//! as the strategy says and ends `cancelled`; an interrupted or paused one is cancelled at
//! once; either way nothing of it runs again, not even after a restart, and retention and
//! deletion treat it as finished.

#[path = "support/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::*;
use tend::demo::Gates;
use tend::{
    Block, Event, ExecutionStatus, InterruptStrategy, ItemStatus, ListQuery, Plan, RuntimeError,
};

/// `held` waits at gate `g`; `later` runs after it; `free` waits its turn (parallelism 1).
fn plan() -> Plan {
    Plan::new("to cancel").with_parallelism(1).block(
        Block::new("b")
            .item(gate("held", "g", 2))
            .item(sleep("later", 0, 1).after(["held"]))
            .item(sleep("free", 0, 1)),
    )
}

fn is_invalid(err: &RuntimeError, status: ExecutionStatus) -> bool {
    matches!(err, RuntimeError::InvalidState { status: s, .. } if *s == status)
}

#[tokio::test]
async fn a_running_execution_cancelled_stops_as_asked_and_never_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let gates = Gates::new();
    let rt = gated_runtime(Some(&data), Some(&log), 4, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();
    let id = rt.submit(plan()).await.unwrap();
    waiting_at(&gates, "g", 1).await;
    // Returns once durable, while `held` still waits at its gate.
    rt.cancel(id, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Cancelled, "{outcome:?}");
    wait_for(&mut events, |e| {
        matches!(e, Event::Execution { execution, status: ExecutionStatus::Cancelled } if *execution == id)
    })
    .await;
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Cancelled);
    assert_eq!(report.item("held").unwrap().status, ItemStatus::Interrupted);
    for item in ["later", "free"] {
        assert_eq!(report.item(item).unwrap().attempts, 0, "{item} never ran");
    }
    // Final: nothing can run it again, nor cancel it twice.
    for err in [
        rt.resume(id).await.unwrap_err(),
        rt.retry_failed(id).await.unwrap_err(),
        rt.cancel(id, InterruptStrategy::FinishCurrent)
            .await
            .unwrap_err(),
        rt.interrupt(id, InterruptStrategy::FinishCurrent)
            .await
            .unwrap_err(),
    ] {
        assert!(is_invalid(&err, ExecutionStatus::Cancelled), "{err:?}");
    }
    let page = rt
        .list_page(ListQuery {
            status: Some(ExecutionStatus::Cancelled),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.executions.iter().map(|e| e.id).collect::<Vec<_>>(),
        [id]
    );
    rt.shutdown().await.unwrap();

    // A restart does not bring it back.
    gates.open("g");
    let rt = gated_runtime(Some(&data), Some(&log), 4, gates.clone()).await;
    assert_eq!(
        rt.status(id).await.unwrap().status,
        ExecutionStatus::Cancelled
    );
    assert!(
        applied(&log)
            .iter()
            .all(|(_, _, item)| item != "later" && item != "free"),
        "{:?}",
        applied(&log)
    );
    // Deletion takes it as finished.
    rt.delete(id).await.unwrap();
    assert!(matches!(
        rt.status(id).await.unwrap_err(),
        RuntimeError::UnknownExecution(_)
    ));
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn interrupted_and_paused_executions_are_cancelled_at_once_and_retention_prunes_them() {
    let dir = tempfile::tempdir().unwrap();
    let gates = Gates::new();
    let rt = gated_runtime(Some(dir.path()), None, 4, gates.clone()).await;
    let mut events = rt.subscribe().await.unwrap();

    let interrupted = rt.submit(plan()).await.unwrap();
    waiting_at(&gates, "g", 1).await;
    rt.interrupt(interrupted, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    assert_eq!(
        outcome(&rt, interrupted).await.status,
        ExecutionStatus::Interrupted
    );
    let paused = rt.submit(plan()).await.unwrap();
    waiting_at(&gates, "g", 1).await;
    rt.pause(paused, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    assert_eq!(outcome(&rt, paused).await.status, ExecutionStatus::Paused);

    // Before the fix, neither could end: DELETE was refused and retention kept them.
    for id in [interrupted, paused] {
        assert!(is_invalid(
            &rt.delete(id).await.unwrap_err(),
            if id == interrupted {
                ExecutionStatus::Interrupted
            } else {
                ExecutionStatus::Paused
            }
        ));
        rt.cancel(id, InterruptStrategy::FinishCurrent)
            .await
            .unwrap();
        wait_for(&mut events, |e| {
            matches!(e, Event::Execution { execution, status: ExecutionStatus::Cancelled } if *execution == id)
        })
        .await;
        assert_eq!(
            rt.status(id).await.unwrap().status,
            ExecutionStatus::Cancelled
        );
        assert_eq!(outcome(&rt, id).await.status, ExecutionStatus::Cancelled);
    }
    let counts = rt.counts().await.unwrap();
    assert_eq!(
        (counts.interrupted, counts.paused),
        (0, 0),
        "no longer counted as waiting for a resume: {counts:?}"
    );
    let report = rt.maintain(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(report.pruned, 2, "{report:?}");
    assert!(rt.list().await.unwrap().is_empty());
    rt.shutdown().await.unwrap();
}
