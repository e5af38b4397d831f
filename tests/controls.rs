//! Graph controls seen through the runtime: check before apply, refresh notifications
//! along `notify` edges, pause and resume.

#[path = "support/helpers.rs"]
mod helpers;

use helpers::*;
use tend::demo::{Gates, Sleep};
use tend::{Block, ExecutionStatus, InterruptStrategy, ItemSpec, ItemStatus, Plan, RuntimeError};

/// The first words of the applied log's lines about `item`, in order.
fn log_of(log: &std::path::Path, item: &str) -> Vec<String> {
    applied(log)
        .into_iter()
        .filter(|(_, _, i)| i == item)
        .map(|(event, _, _)| event)
        .collect()
}

#[tokio::test]
async fn check_skips_apply_and_only_a_change_sends_a_refresh_which_lasts_until_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let rt = runtime(Some(&dir.path().join("data")), Some(&log), 4).await;
    let flaky = Sleep {
        fail_times: 1,
        ..Sleep::new(0)
    };
    let plan = Plan::new("refresh").block(
        Block::new("b")
            .item(sleep("changes", 0, 1))
            .item(ItemSpec::new("same", &Sleep::new(0).satisfied()).unwrap())
            // Told by `changes` (a change), its first attempt fails: the retry is told too.
            .item(
                ItemSpec::new("told", &flaky)
                    .unwrap()
                    .after(["changes", "same"])
                    .notify(["changes", "same"])
                    .retry(1),
            )
            // Only `same` notifies it, and `same` changed nothing.
            .item(
                sleep("untold", 0, 1)
                    .after(["changes", "same"])
                    .notify(["same"]),
            )
            // No notify edge at all.
            .item(sleep("plain", 0, 1).after(["changes"])),
    );
    let id = rt.submit(plan).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    let item = |id: &str| report.item(id).unwrap().clone();
    assert_eq!(item("changes").changed, Some(true));
    assert_eq!(item("same").changed, Some(false));
    assert_eq!(item("same").status, ItemStatus::Done);
    assert_eq!(item("same").attempts, 1);
    assert_eq!(item("told").attempts, 2);
    for id in ["told", "untold", "plain"] {
        assert!(!item(id).refresh, "{id}: cleared or never set");
    }
    assert_eq!(log_of(&log, "same"), ["satisfied"], "apply skipped");
    assert_eq!(
        log_of(&log, "told"),
        ["start", "refresh", "start", "refresh", "done"]
    );
    assert_eq!(log_of(&log, "untold"), ["start", "done"]);
    assert_eq!(log_of(&log, "plain"), ["start", "done"]);
    rt.shutdown().await.unwrap();

    // Read back from the file, the same.
    let rt = runtime(Some(&dir.path().join("data")), None, 4).await;
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("same").unwrap().changed, Some(false));
    assert_eq!(report.item("changes").unwrap().changed, Some(true));
    assert!(!report.item("told").unwrap().refresh);
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refresh_owed_to_a_skipped_item_is_delivered_when_the_failed_execution_is_retried() {
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("applied.log");
    let rt = runtime(None, Some(&log), 4).await;
    let broken = Sleep {
        fail_times: 1,
        ..Sleep::new(0)
    };
    let plan = Plan::new("skipped").block(
        Block::new("b")
            .item(sleep("changes", 0, 1))
            .item(ItemSpec::new("broken", &broken).unwrap())
            .item(
                sleep("told", 0, 1)
                    .after(["changes", "broken"])
                    .notify(["changes"]),
            ),
    );
    let id = rt.submit(plan).await.unwrap();
    assert!(!outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    let told = report.item("told").unwrap();
    assert_eq!(told.status, ItemStatus::Skipped);
    assert!(told.refresh, "owed, though skipped");
    rt.retry_failed(id).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    assert_eq!(log_of(&log, "told"), ["start", "refresh", "done"]);
    rt.shutdown().await.unwrap();
}

/// Waits until `n` items wait at gate `gate`.
async fn waiting_at(gates: &Gates, gate: &str, n: usize) {
    eventually(&format!("{n} items wait at gate {gate}"), || async {
        match gates.waiting(gate) {
            w if w == n => Ok(()),
            w => Err(format!("{w} waiting")),
        }
    })
    .await
}

#[tokio::test]
async fn a_pause_quiesces_then_stays_paused_across_a_restart_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let gates = Gates::new();
    let rt = gated_runtime(Some(&data), Some(&log), 4, gates.clone()).await;
    // Two at a time: `g1` and `g2` hold at gate `a`; `later` and `free` wait their turn.
    let plan = Plan::new("paused").with_parallelism(2).block(
        Block::new("b")
            .item(gate("g1", "a", 1))
            .item(gate("g2", "a", 1))
            .item(sleep("later", 0, 1).after(["g1", "g2"]))
            .item(sleep("free", 0, 1)),
    );
    let id = rt.submit(plan).await.unwrap();
    waiting_at(&gates, "a", 2).await;
    rt.pause(id, InterruptStrategy::FinishCurrent)
        .await
        .unwrap();
    // Not quiesced yet: both still run, and say so in the tree.
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Running);
    let tree = rt.tree().await.unwrap();
    let node = tree
        .children
        .iter()
        .find(|n| n.name == id.to_string())
        .expect("the execution is in the tree");
    assert_eq!(node.status, "pausing");
    // They finish; nothing else starts; then it is paused.
    gates.open("a");
    let paused = outcome(&rt, id).await;
    assert_eq!(paused.status, ExecutionStatus::Paused);
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Paused);
    assert_eq!(report.item("g1").unwrap().status, ItemStatus::Done);
    assert_eq!(report.item("g2").unwrap().status, ItemStatus::Done);
    for item in ["later", "free"] {
        assert_eq!(
            report.item(item).unwrap().status,
            ItemStatus::Pending,
            "{item}"
        );
    }
    // Forbidden transitions are clear errors.
    for err in [
        rt.pause(id, InterruptStrategy::FinishCurrent)
            .await
            .unwrap_err(),
        rt.interrupt(id, InterruptStrategy::FinishCurrent)
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                RuntimeError::InvalidState {
                    status: ExecutionStatus::Paused,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    rt.shutdown().await.unwrap();

    // A restart does not resume it.
    let rt = gated_runtime(Some(&data), Some(&log), 4, gates.clone()).await;
    let list = rt.list().await.unwrap();
    assert_eq!(list[0].status, ExecutionStatus::Paused);
    assert_eq!(list[0].error, None, "paused on request: no fault to report");
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Paused);
    assert!(
        applied(&log)
            .iter()
            .all(|(_, _, item)| item != "later" && item != "free")
    );
    rt.resume(id).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pause_at_cancellation_points_stops_running_items_and_resume_continues_them() {
    let gates = Gates::new();
    let rt = gated_runtime(None, None, 4, gates.clone()).await;
    let plan = Plan::new("paused").block(Block::new("b").item(gate("g", "a", 3)));
    let id = rt.submit(plan).await.unwrap();
    waiting_at(&gates, "a", 1).await;
    rt.pause(id, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    let paused = outcome(&rt, id).await;
    assert_eq!(paused.status, ExecutionStatus::Paused);
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("g").unwrap().status, ItemStatus::Interrupted);
    gates.open("a");
    rt.resume(id).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    assert_eq!(rt.status(id).await.unwrap().item("g").unwrap().attempts, 2);
    rt.shutdown().await.unwrap();
}
