//! Graph controls seen through the runtime: check before apply, refresh notifications
//! along `notify` edges, pause and resume, dry runs.

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

/// Its `check` reads its dependency `from` (if any): satisfied when that output is
/// `want`, else work to do; with `fail`, the check itself fails.
#[derive(serde::Serialize, serde::Deserialize)]
struct Probe {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    want: i64,
    #[serde(default)]
    fail: bool,
    /// Its check never answers.
    #[serde(default)]
    hang: bool,
}

impl tend::Item for Probe {
    const KIND: &'static str = "probe";
    type Output = i64;

    async fn check(&self, cx: &mut tend::ItemCtx) -> Result<tend::Check<i64>, tend::ItemError> {
        assert!(cx.is_dry_run(), "this test only dry-runs probes");
        if self.fail {
            return Err(tend::ItemError::failed("the probe cannot tell"));
        }
        if self.hang {
            std::future::pending::<()>().await;
        }
        if let Some(dep) = &self.from {
            let got: i64 = cx.input(dep)?;
            if got != self.want {
                return Ok(tend::Check::Apply);
            }
        }
        if cx.refresh() {
            return Ok(tend::Check::Apply);
        }
        Ok(tend::Check::Satisfied(self.want))
    }

    async fn apply(&self, _cx: &mut tend::ItemCtx) -> Result<i64, tend::ItemError> {
        panic!("a dry run never applies");
    }
}

fn probe(id: &str, from: Option<&str>, want: i64, fail: bool) -> ItemSpec {
    let spec = ItemSpec::new(
        id,
        &Probe {
            from: from.map(str::to_owned),
            want,
            fail,
            hang: false,
        },
    )
    .unwrap();
    match from {
        Some(dep) => spec.after([dep]),
        None => spec,
    }
}

#[tokio::test]
async fn a_dry_run_checks_every_item_in_order_and_applies_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("applied.log"));
    let rt = tend::Runtime::builder()
        .registry(tend::demo::registry().unwrap().with::<Probe>().unwrap())
        .resource(tend::demo::AppliedLog::open(&log).unwrap())
        .data_dir(&data)
        .start()
        .await
        .unwrap();
    let plan = Plan::new("dry")
        .block(
            Block::new("one")
                // Satisfied with 7: hands 7 on.
                .item(probe("seven", None, 7, false))
                // Reads 7, wants 7: satisfied. Reads 7, wants 8: would apply.
                .item(probe("same", Some("seven"), 7, false))
                .item(probe("differs", Some("seven"), 8, false))
                .item(probe("broken", None, 0, true)),
        )
        .block(
            Block::new("two")
                // `differs` would apply, so it has no output yet to read.
                .item(probe("reads-differs", Some("differs"), 8, false))
                // A notify edge from an item that would apply: checked with a refresh.
                .item(
                    ItemSpec::new(
                        "told",
                        &Probe {
                            from: None,
                            want: 1,
                            fail: false,
                            hang: false,
                        },
                    )
                    .unwrap()
                    .after(["differs"])
                    .notify(["differs"]),
                )
                .item(sleep("sleeper", 0, 1))
                // A check that never answers is cut off by the item's timeout.
                .item(
                    ItemSpec::new(
                        "hangs",
                        &Probe {
                            from: None,
                            want: 0,
                            fail: false,
                            hang: true,
                        },
                    )
                    .unwrap()
                    .timeout(std::time::Duration::from_millis(100)),
                ),
        );
    let run = rt.dry_run(&plan).await.unwrap();
    let check = |id: &str| run.item(id).unwrap().check.clone();
    assert_eq!(check("seven"), tend::CheckOutcome::Satisfied);
    assert_eq!(check("same"), tend::CheckOutcome::Satisfied);
    assert_eq!(check("differs"), tend::CheckOutcome::WouldApply);
    assert!(
        matches!(check("broken"), tend::CheckOutcome::Failed { error } if error.contains("cannot tell"))
    );
    assert!(
        matches!(check("reads-differs"), tend::CheckOutcome::Failed { error } if error.contains("differs")),
        "{:?}",
        check("reads-differs")
    );
    assert_eq!(check("told"), tend::CheckOutcome::WouldApply);
    assert!(run.item("told").unwrap().refresh);
    assert!(!run.item("same").unwrap().refresh);
    assert_eq!(check("sleeper"), tend::CheckOutcome::WouldApply);
    assert!(
        matches!(check("hangs"), tend::CheckOutcome::Failed { error } if error.contains("within 100ms")),
        "{:?}",
        check("hangs")
    );
    let changing: Vec<&str> = run.would_change().map(|i| i.id.as_str()).collect();
    assert_eq!(changing, ["differs", "told", "sleeper"]);
    // Nothing ran, nothing was written.
    assert!(applied(&log).is_empty());
    assert!(rt.list().await.unwrap().is_empty());
    // An invalid plan is the error, as for a submit.
    let bad = Plan::new("bad").block(Block::new("b").item(probe("x", Some("nope"), 0, false)));
    assert!(matches!(
        rt.dry_run(&bad).await,
        Err(RuntimeError::Plan(
            tend::PlanError::UnknownDependency { .. }
        ))
    ));
    rt.shutdown().await.unwrap();
    let rt = runtime(Some(&data), None, 2).await;
    assert!(
        rt.list().await.unwrap().is_empty(),
        "the store holds nothing"
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pause_holds_when_the_execution_actor_fails_while_it_quiesces() {
    let gates = Gates::new();
    let rt = gated_runtime(None, None, 4, gates.clone()).await;
    let plan = Plan::new("paused").block(
        Block::new("b")
            .item(gate("g1", "a", 1))
            .item(sleep("later", 0, 1).after(["g1"])),
    );
    let id = rt.submit(plan).await.unwrap();
    waiting_at(&gates, "a", 1).await;
    rt.pause(id, InterruptStrategy::FinishCurrent)
        .await
        .unwrap();
    // The actor fails before `g1` ends; the one restarted from the store pauses too.
    rt.fail_execution_actor(id, "on purpose").await.unwrap();
    gates.open("a");
    let paused = outcome(&rt, id).await;
    assert_eq!(paused.status, ExecutionStatus::Paused);
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("later").unwrap().status, ItemStatus::Pending);
    rt.resume(id).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
}

/// Its goal state is the flag `Applied`: `check` finds it set, `apply` sets it, and the
/// first attempt then fails (having changed the world already).
#[derive(serde::Serialize, serde::Deserialize)]
struct SetsThenFails;

struct Applied(std::sync::atomic::AtomicBool);

impl tend::Item for SetsThenFails {
    const KIND: &'static str = "sets-then-fails";
    type Output = ();

    async fn check(&self, cx: &mut tend::ItemCtx) -> Result<tend::Check<()>, tend::ItemError> {
        let set = cx
            .resource::<Applied>()
            .unwrap()
            .0
            .load(std::sync::atomic::Ordering::SeqCst);
        Ok(if set {
            tend::Check::Satisfied(())
        } else {
            tend::Check::Apply
        })
    }

    async fn apply(&self, cx: &mut tend::ItemCtx) -> Result<(), tend::ItemError> {
        cx.resource::<Applied>()
            .unwrap()
            .0
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Err(tend::ItemError::failed("changed the world, then failed"))
    }
}

#[tokio::test]
async fn a_change_made_by_a_failed_attempt_still_sends_the_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("applied.log");
    let rt = tend::Runtime::builder()
        .registry(
            tend::demo::registry()
                .unwrap()
                .with::<SetsThenFails>()
                .unwrap(),
        )
        .resource(Applied(std::sync::atomic::AtomicBool::new(false)))
        .resource(tend::demo::AppliedLog::open(&log).unwrap())
        .start()
        .await
        .unwrap();
    let plan = Plan::new("at-least-once").block(
        Block::new("b")
            .item(ItemSpec::new("writes", &SetsThenFails).unwrap().retry(1))
            .item(sleep("restarts", 0, 1).after(["writes"]).notify(["writes"])),
    );
    let id = rt.submit(plan).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    let writes = report.item("writes").unwrap();
    // The retry found the goal state held, but the failed attempt is what made it so.
    assert_eq!(writes.attempts, 2);
    assert_eq!(writes.changed, Some(true));
    assert_eq!(log_of(&log, "restarts"), ["start", "refresh", "done"]);
    rt.shutdown().await.unwrap();
}
